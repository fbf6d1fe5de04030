"""The exceptions' journal as a log source (``GET /api/logs``;
``bpmos/logevents.py``).

``exception_source``: every step of every exception (``ExceptionEvent``:
raised, acknowledged, escalated, resolved) as a ``system`` event, id
``system:exception:<pk>``. All four kinds are ``system`` events: an
escalation is the system acting (the beat task), and the other steps are what
it acts on, so a reader following escalations sees when each exception began
and ended in the same category (their audit records stay in ``audit``, the
auditors' and admins'). Severity: raised and escalated take the exception's
(low info, medium warning, high error, critical critical); acknowledged and
resolved are info (the exception is being dealt with). The target is the
exception (``exception``, ``EX-<id>``, its title); ``source`` is ``task`` for
an escalation (the beat task), ``exceptions`` otherwise. ``search`` matches
the exception's title, the step's kind, role, note and actor, and ``EX-<id>``.

One query per page, newest first, over the journal's ``(at, id)`` index.
"""

from __future__ import annotations

from django.db.models import Q

from bpmos.logevents import (
    CRITICAL,
    ERROR,
    INFO,
    SYSTEM,
    WARNING,
    LogEvent,
    LogQuery,
    LogTarget,
)
from bpmos.logsource import event_id, page, search_q
from exceptions.models import ExceptionEvent, ExceptionEventKind, Severity

HEAD = f"{SYSTEM}:exception"

SEVERITY = {
    Severity.LOW: INFO,
    Severity.MEDIUM: WARNING,
    Severity.HIGH: ERROR,
    Severity.CRITICAL: CRITICAL,
}
# Kinds whose severity is the exception's; the others are info.
_ALERTING = (ExceptionEventKind.RAISED, ExceptionEventKind.ESCALATED)

_FIELDS = (
    "id",
    "at",
    "kind",
    "level",
    "role",
    "note",
    "actor__username",
    "exception__id",
    "exception__title",
    "exception__severity",
)


def _search(query: LogQuery) -> Q:
    cond = search_q(
        query, "kind", "role", "note", "actor__username", "exception__title"
    )
    term = (query.search or "").strip().upper()
    if term.startswith("EX-") and term[3:].isdigit() and int(term[3:]) < 2**63:
        cond |= Q(exception_id=int(term[3:]))
    return cond


def _severity_q(query: LogQuery) -> Q | None:
    """The rows of the asked severities (None: none at all)."""
    if query.severities is None:
        return Q()
    levels = [k for k, v in SEVERITY.items() if v in query.severities]
    cond = Q(kind__in=_ALERTING, exception__severity__in=levels) if levels else None
    if INFO in query.severities:
        info = ~Q(kind__in=_ALERTING)
        cond = info if cond is None else cond | info
    return cond


def _message(row: ExceptionEvent) -> str:
    exc = row.exception
    code = exc.code
    role = row.role.replace("-", " ")
    if row.kind == ExceptionEventKind.ESCALATED:
        text = f"{code} escalated to level {row.level} ({role}): {exc.title}"
    elif row.kind == ExceptionEventKind.RAISED:
        text = f"{code} raised ({exc.get_severity_display()}): {exc.title}"
    else:
        text = f"{code} {row.kind}: {exc.title}"
    if row.note:
        text += f": {row.note[:300]}"
    return text


def exception_source(query: LogQuery) -> list[LogEvent]:
    """The exceptions' journal as ``system`` events."""
    if SYSTEM not in query.categories:
        return []
    severity = _severity_q(query)
    if severity is None:
        return []
    qs = (
        ExceptionEvent.objects.select_related("exception", "actor")
        .only(*_FIELDS)
        .filter(_search(query))
        .filter(severity)
    )
    events = []
    for row in page(qs, query, ts="at", head=HEAD):
        exc = row.exception
        actor = row.actor.username if row.actor_id else None
        events.append(
            LogEvent(
                id=event_id(HEAD, row.pk),
                timestamp=row.at,
                category=SYSTEM,
                severity=SEVERITY.get(exc.severity, WARNING)
                if row.kind in _ALERTING
                else INFO,
                actor=actor,
                action=f"exception.{row.kind}",
                target=LogTarget(type="exception", id=exc.code, label=exc.title),
                message=_message(row),
                source="task"
                if row.kind == ExceptionEventKind.ESCALATED
                else "exceptions",
            )
        )
    return events
