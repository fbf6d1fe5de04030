"""Reads of the audit log and the electronic shift log."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.functions import Left

from bpmos import logevents
from bpmos.access import AUDIT_READERS
from bpmos.logevents import AUDIT, INFO, LogEvent, LogQuery, LogTarget
from bpmos.logsource import Plan, Row, run, select, text_q, wants
from elog.models import AuditRecord, ShiftLogEntry
from elog.models import ShiftLogEntryType as T


def audit_record_list() -> QuerySet[AuditRecord]:
    """Every audit record, newest first."""
    return AuditRecord.objects.order_by("-seq")


def shift_log_entry_list() -> QuerySet[ShiftLogEntry]:
    """Every shift-log entry, newest first, with its acknowledgement (if a
    handover) in the same query."""
    return ShiftLogEntry.objects.select_related("acknowledgement").order_by(
        "-created_at", "-id"
    )


# --- the shift log as a source of GET /api/logs (bpmos.logevents) ---------------

# An incident or a safety entry is worth a look; everything else is information.
SEVERITY_OF: dict[str, str] = {
    T.INCIDENT: logevents.WARNING,
    T.SAFETY: logevents.WARNING,
}
_MESSAGE_LENGTH = 300


def shift_log_severity(entry_type: str) -> str:
    return SEVERITY_OF.get(entry_type, logevents.INFO)


def _event_id(pk: int | str) -> str:
    return f"{logevents.SHIFT_LOG}:{pk}"


def _event(row: Row) -> LogEvent:
    """A shift-log row (``shift_log_plan``'s columns) as its event."""
    (
        created_at,
        pk,
        _,
        target_type,
        target_id,
        corrects_id,
        acknowledges_id,
        entry_type,
        operator_id,
        operator_name,
        body,
        source,
        *_,
    ) = row
    if target_type:
        target = LogTarget(target_type, target_id)
    elif corrects_id is not None:
        target = LogTarget("shift_log", corrects_id)
    elif acknowledges_id is not None:
        target = LogTarget("shift_log", acknowledges_id)
    else:
        target = None
    return LogEvent(
        id=_event_id(pk),
        timestamp=created_at,
        category=logevents.SHIFT_LOG,
        severity=shift_log_severity(entry_type),
        actor=None if operator_id is None else operator_name,
        action=f"shift_log.{entry_type}",
        target=target,
        message=body,
        source=source,
    )


def shift_log_source(query: LogQuery) -> list[LogEvent]:
    """The shift log's events for ``GET /api/logs``: newest first by
    ``(timestamp, id)`` as the merge orders them (``bpmos.logsource.select``:
    the id compared as a string, ``"shift_log:9"`` after ``"shift_log:10"``),
    at most ``query.limit``, strictly older than ``query.before``, matching
    severities (incident and safety entries are warnings, the rest info), the
    [start, end) window and ``search`` (body, operator name, entry type,
    target type and id; case-insensitive substring). One query."""
    return run(shift_log_plan(query))


def shift_log_plan(query: LogQuery) -> Plan | None:
    """``shift_log_source``'s page as one SELECT (None: nothing to give)."""
    if logevents.SHIFT_LOG not in query.categories or query.limit <= 0:
        return None
    rows = ShiftLogEntry.objects.all()
    if query.severities is not None:
        types = [t for t in T.values if shift_log_severity(t) in query.severities]
        if not types:
            return None
        if len(types) < len(T.values):
            rows = rows.filter(entry_type__in=types)
    rows = rows.filter(
        text_q(query, "body", "operator_name", "entry_type", "target_type", "target_id")
    )
    return select(
        rows,
        query,
        ts="created_at",
        head=logevents.SHIFT_LOG,
        fields=(
            "target_type",
            "target_id",
            "corrects_id",
            "acknowledges_id",
            "entry_type",
            "operator_id",
            "operator_name",
            Left("body", _MESSAGE_LENGTH),
            "source",
        ),
        build=_event,
    )


# --- the audit log as a log source (GET /api/logs, bpmos/logevents.py) ---
def _audit_event(row: Row) -> LogEvent:
    """An audit row (``audit_plan``'s columns) as its event."""
    (
        occurred_at,
        pk,
        _,
        actor_username,
        action,
        target_type,
        target_id,
        label,
        source,
    ) = row[:9]
    actor = actor_username or None
    target = (
        LogTarget(type=target_type, id=target_id, label=label) if target_type else None
    )
    what = label or (f"{target_type} {target_id}".strip() if target_type else "")
    message = f"{actor or 'system'}: {action}" + (f" {what}" if what else "")
    return LogEvent(
        id=f"{AUDIT}:{pk}",
        timestamp=occurred_at,
        category=AUDIT,
        severity=INFO,
        actor=actor,
        action=action,
        target=target,
        message=message,
        source=source or "system",
    )


def audit_source(query: LogQuery) -> list[LogEvent]:
    """The audit log's records as ``audit`` events (all ``info``), newest
    first: one query (``occurred_at``'s index, scanned backwards). Only the
    audit readers (auditors, admins) see them; the snapshots (before/after)
    are never read. ``search`` matches the action, the actor and the target
    (type, id, label)."""
    return run(audit_plan(query))


def audit_plan(query: LogQuery) -> Plan | None:
    """``audit_source``'s page as one SELECT (None: nothing to give)."""
    if AUDIT not in query.categories or not wants(query, INFO):
        return None
    if query.role is not None and query.role not in AUDIT_READERS:
        return None
    qs = AuditRecord.objects.filter(
        text_q(
            query, "action", "actor_username", "target_type", "target_id", "target_repr"
        )
    )
    return select(
        qs,
        query,
        ts="occurred_at",
        head=AUDIT,
        fields=(
            "actor_username",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "source",
        ),
        build=_audit_event,
    )
