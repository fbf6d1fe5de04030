"""Reads of the audit log and the electronic shift log."""

from __future__ import annotations

from django.db.models import QuerySet

from bpmos import logevents
from bpmos.access import AUDIT_READERS
from bpmos.logevents import AUDIT, INFO, LogEvent, LogQuery, LogTarget
from bpmos.logsource import event_id, page, text_q, wants
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


def _event_id(pk: int) -> str:
    return f"{logevents.SHIFT_LOG}:{pk}"


def _event(entry: ShiftLogEntry) -> LogEvent:
    if entry.target_type:
        target = LogTarget(entry.target_type, entry.target_id)
    elif entry.corrects_id is not None:
        target = LogTarget("shift_log", str(entry.corrects_id))
    elif entry.acknowledges_id is not None:
        target = LogTarget("shift_log", str(entry.acknowledges_id))
    else:
        target = None
    return LogEvent(
        id=_event_id(entry.pk),
        timestamp=entry.created_at,
        category=logevents.SHIFT_LOG,
        severity=shift_log_severity(entry.entry_type),
        actor=None if entry.operator_id is None else entry.operator_name,
        action=f"shift_log.{entry.entry_type}",
        target=target,
        message=entry.body[:_MESSAGE_LENGTH],
        source=entry.source,
    )


def shift_log_source(query: LogQuery) -> list[LogEvent]:
    """The shift log's events for ``GET /api/logs``: newest first by
    ``(timestamp, id)`` as the merge orders them (``bpmos.logsource.page``:
    the id compared as a string, ``"shift_log:9"`` after ``"shift_log:10"``),
    at most ``query.limit``, strictly older than ``query.before``, matching
    severities (incident and safety entries are warnings, the rest info), the
    [start, end) window and ``search`` (body, operator name, entry type,
    target type and id; case-insensitive substring). One query."""
    if logevents.SHIFT_LOG not in query.categories or query.limit <= 0:
        return []
    rows = ShiftLogEntry.objects.all()
    if query.severities is not None:
        types = [t for t in T.values if shift_log_severity(t) in query.severities]
        if not types:
            return []
        if len(types) < len(T.values):
            rows = rows.filter(entry_type__in=types)
    rows = rows.filter(
        text_q(query, "body", "operator_name", "entry_type", "target_type", "target_id")
    )
    return [
        _event(entry)
        for entry in page(rows, query, ts="created_at", head=logevents.SHIFT_LOG)
    ]


# --- the audit log as a log source (GET /api/logs, bpmos/logevents.py) ---
def _audit_event(rec: AuditRecord) -> LogEvent:
    actor = rec.actor_username or None
    target = (
        LogTarget(type=rec.target_type, id=rec.target_id, label=rec.target_repr)
        if rec.target_type
        else None
    )
    what = rec.target_repr or (
        f"{rec.target_type} {rec.target_id}".strip() if rec.target_type else ""
    )
    message = f"{actor or 'system'}: {rec.action}" + (f" {what}" if what else "")
    return LogEvent(
        id=event_id(AUDIT, rec.pk),
        timestamp=rec.occurred_at,
        category=AUDIT,
        severity=INFO,
        actor=actor,
        action=rec.action,
        target=target,
        message=message,
        source=rec.source or "system",
    )


def audit_source(query: LogQuery) -> list[LogEvent]:
    """The audit log's records as ``audit`` events (all ``info``), newest
    first: one query (``occurred_at``'s index, scanned backwards). Only the
    audit readers (auditors, admins) see them; the snapshots (before/after)
    are never read. ``search`` matches the action, the actor and the target
    (type, id, label)."""
    if AUDIT not in query.categories or not wants(query, INFO):
        return []
    if query.role is not None and query.role not in AUDIT_READERS:
        return []
    qs = AuditRecord.objects.only(
        "id",
        "occurred_at",
        "actor_username",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "source",
    ).filter(
        text_q(
            query, "action", "actor_username", "target_type", "target_id", "target_repr"
        )
    )
    return [_audit_event(rec) for rec in page(qs, query, ts="occurred_at", head=AUDIT)]
