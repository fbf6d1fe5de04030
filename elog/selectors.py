"""Reads of the audit log."""

from django.db.models import QuerySet

from bpmos.access import AUDIT_READERS
from bpmos.logevents import AUDIT, INFO, LogEvent, LogQuery, LogTarget
from bpmos.logsource import event_id, page, search_q, wants
from elog.models import AuditRecord


def audit_record_list() -> QuerySet[AuditRecord]:
    """Every audit record, newest first."""
    return AuditRecord.objects.order_by("-seq")


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
        search_q(
            query, "action", "actor_username", "target_type", "target_id", "target_repr"
        )
    )
    return [_audit_event(rec) for rec in page(qs, query, ts="occurred_at", head=AUDIT)]
