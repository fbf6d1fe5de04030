"""Compliance's log source (``GET /api/logs``, category ``system``;
``bpmos/logevents.py``): scheduled returns' e-mails that failed
(``EmailDelivery``: ``retrying`` a warning, ``failed`` an error). Only the
compliance readers (COMPLIANCE_READERS: returns are theirs) see them; the
recipients' addresses are never in the message.
"""

from __future__ import annotations

from bpmos.access import COMPLIANCE_READERS
from bpmos.logevents import ERROR, SYSTEM, WARNING, LogEvent, LogQuery, LogTarget
from bpmos.logsource import event_id, page, search_q
from compliance.models import DeliveryStatus, EmailDelivery

EMAIL_HEAD = f"{SYSTEM}:email"
SEVERITY = {DeliveryStatus.RETRYING: WARNING, DeliveryStatus.FAILED: ERROR}


def email_source(query: LogQuery) -> list[LogEvent]:
    """Failed scheduled-return e-mails, newest first: one query (the
    ``(created_at, id)`` index of the failed ones). ``search`` matches the
    subject, the attachment's name, the schedule's name and the error."""
    if SYSTEM not in query.categories:
        return []
    if query.role is not None and query.role not in COMPLIANCE_READERS:
        return []
    statuses = [
        status
        for status, severity in SEVERITY.items()
        if query.severities is None or severity in query.severities
    ]
    if not statuses:
        return []
    qs = (
        EmailDelivery.objects.filter(status__in=statuses)
        .select_related("schedule")
        .only(
            "id",
            "created_at",
            "status",
            "attempt",
            "subject",
            "attachment_name",
            "error",
            "schedule__id",
            "schedule__name",
        )
        .filter(
            search_q(query, "subject", "attachment_name", "error", "schedule__name")
        )
    )
    events = []
    for row in page(qs, query, ts="created_at", head=EMAIL_HEAD):
        verb = "will retry" if row.status == DeliveryStatus.RETRYING else "gave up"
        events.append(
            LogEvent(
                id=event_id(EMAIL_HEAD, row.pk),
                timestamp=row.created_at,
                category=SYSTEM,
                severity=SEVERITY[row.status],
                actor=None,
                action=f"compliance.email_{row.status}",
                target=LogTarget(
                    type="scheduled_return",
                    id=str(row.schedule.pk),
                    label=row.schedule.name,
                ),
                message=f"E-mail '{row.subject}' of {row.schedule.name} failed "
                f"(attempt {row.attempt}, {verb}): {row.error[:300]}",
                source="task",
            )
        )
    return events
