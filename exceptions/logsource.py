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
from django.db.models.functions import Left

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
from bpmos.logsource import Plan, Row, run, search_q, select
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

# The journal's columns a page reads (``select``), the exception's through
# its join; the actor may be absent (the beat task's escalations).
_FIELDS = (
    "kind",
    "level",
    "role",
    Left("note", 300),
    "actor__username",
    "exception_id",
    "exception__title",
    "exception__severity",
)
_SEVERITY_LABELS = {value: str(label) for value, label in Severity.choices}


def _exception_number(term: str) -> int | None:
    """The exception a term names by its code (``EX-12``), if it does."""
    term = term.strip().upper()
    if term.startswith("EX-") and term[3:].isdigit() and int(term[3:]) < 2**63:
        return int(term[3:])
    return None


def exception_search_shape(term: str) -> tuple | None:
    """None for a term that names an exception by its code (the page's
    statement then matches its id, a value of the term's own): such a search
    is not cached (``bpmos.dashboards.logs.Source.search_shape``)."""
    return None if _exception_number(term) is not None else ()


def _search(query: LogQuery) -> Q:
    cond = search_q(
        query, "kind", "role", "note", "actor__username", "exception__title"
    )
    number = _exception_number(query.search or "")
    if number is not None:
        cond |= Q(exception_id=number)
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


def _message(
    kind: str, level: str, role: str, note: str, code: str, title: str, severity: str
) -> str:
    role = role.replace("-", " ")
    if kind == ExceptionEventKind.ESCALATED:
        text = f"{code} escalated to level {level} ({role}): {title}"
    elif kind == ExceptionEventKind.RAISED:
        label = _SEVERITY_LABELS.get(severity, severity)
        text = f"{code} raised ({label}): {title}"
    else:
        text = f"{code} {kind}: {title}"
    if note:
        text += f": {note}"
    return text


def _event(row: Row) -> LogEvent:
    """A journal row (``_FIELDS``) as a ``system`` event."""
    at, pk, _, kind, level, role, note, actor, exception_id, title, severity, *_ = row
    code = f"EX-{int(exception_id):03d}"
    return LogEvent(
        id=f"{HEAD}:{pk}",
        timestamp=at,
        category=SYSTEM,
        severity=SEVERITY.get(severity, WARNING) if kind in _ALERTING else INFO,
        actor=actor,
        action=f"exception.{kind}",
        target=LogTarget(type="exception", id=code, label=title),
        message=_message(kind, level, role, note, code, title, severity),
        source="task" if kind == ExceptionEventKind.ESCALATED else "exceptions",
    )


def exception_source(query: LogQuery) -> list[LogEvent]:
    """The exceptions' journal as ``system`` events."""
    return run(exception_plan(query))


def exception_plan(query: LogQuery) -> Plan | None:
    """``exception_source``'s page as one SELECT (None: nothing to give)."""
    if SYSTEM not in query.categories:
        return None
    severity = _severity_q(query)
    if severity is None:
        return None
    qs = ExceptionEvent.objects.filter(_search(query)).filter(severity)
    return select(qs, query, ts="at", head=HEAD, fields=_FIELDS, build=_event)
