"""Compliance's log source (``GET /api/logs``, category ``system``;
``bpmos/logevents.py``): scheduled returns' e-mails that failed
(``EmailDelivery``: ``retrying`` a warning, ``failed`` an error). Only the
compliance readers (COMPLIANCE_READERS: returns are theirs) see them; the
recipients' addresses are never in the message.
"""

from __future__ import annotations

from django.db.models.functions import Left

from bpmos.access import COMPLIANCE_READERS
from bpmos.logevents import ERROR, SYSTEM, WARNING, LogEvent, LogQuery, LogTarget
from bpmos.logsource import Plan, Row, run, search_q, select
from compliance.models import DeliveryStatus, EmailDelivery

EMAIL_HEAD = f"{SYSTEM}:email"
SEVERITY = {DeliveryStatus.RETRYING: WARNING, DeliveryStatus.FAILED: ERROR}


def _event(row: Row) -> LogEvent:
    """A failed e-mail (``email_plan``'s columns) as a ``system`` event."""
    created_at, pk, _, status, attempt, subject, error, schedule_id, name, *_ = row
    verb = "will retry" if status == DeliveryStatus.RETRYING else "gave up"
    return LogEvent(
        id=f"{EMAIL_HEAD}:{pk}",
        timestamp=created_at,
        category=SYSTEM,
        severity=SEVERITY[status],
        actor=None,
        action=f"compliance.email_{status}",
        target=LogTarget(type="scheduled_return", id=schedule_id, label=name),
        message=f"E-mail '{subject}' of {name} failed "
        f"(attempt {attempt}, {verb}): {error}",
        source="task",
    )


def email_source(query: LogQuery) -> list[LogEvent]:
    """Failed scheduled-return e-mails, newest first: one query (the
    ``(created_at, id)`` index of the failed ones). ``search`` matches the
    subject, the attachment's name, the schedule's name and the error."""
    return run(email_plan(query))


def email_plan(query: LogQuery) -> Plan | None:
    """``email_source``'s page as one SELECT (None: nothing to give)."""
    if SYSTEM not in query.categories:
        return None
    if query.role is not None and query.role not in COMPLIANCE_READERS:
        return None
    statuses = [
        status
        for status, severity in SEVERITY.items()
        if query.severities is None or severity in query.severities
    ]
    if not statuses:
        return None
    qs = EmailDelivery.objects.filter(status__in=statuses).filter(
        search_q(query, "subject", "attachment_name", "error", "schedule__name")
    )
    return select(
        qs,
        query,
        ts="created_at",
        head=EMAIL_HEAD,
        fields=(
            "status",
            "attempt",
            "subject",
            Left("error", 300),
            "schedule_id",
            "schedule__name",
        ),
        build=_event,
    )
