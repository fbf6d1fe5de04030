"""The passports' ledger as a log source (``GET /api/logs``, category
``ledger``; ``bpmos/logevents.py``).

An event names the battery (serial) and what happened (the kind's label);
never the event's ``data``, which may hold restricted passport fields
(materials, composition: docs/passports.md), so every role may read it.
"""

from __future__ import annotations

from django.db.models import Q

from bpmos.logevents import INFO, LEDGER, WARNING, LogEvent, LogQuery, LogTarget
from bpmos.logsource import among, event_id, page, text_q
from passports.models import EventKind, Passport, PassportEvent

# Events that mean something went wrong with a battery.
_WARNING_KINDS = frozenset({EventKind.QA_FAILED, EventKind.HELD})
# Each kind's label, looked up once: ``EventKind.values`` and
# ``EventKind(kind).label`` rebuild the enum's lists on every call, which was
# the costliest part of a page (one call per row).
_LABELS = dict(EventKind.choices)


def _severity(kind: str) -> str:
    return WARNING if kind in _WARNING_KINDS else INFO


def _kinds_for(severities: frozenset[str]) -> list[str]:
    return [value for value in EventKind.values if _severity(value) in severities]


def _event(row: PassportEvent) -> LogEvent:
    passport = row.passport
    label = _LABELS.get(row.kind, row.kind)
    return LogEvent(
        id=event_id(LEDGER, row.pk),
        timestamp=row.occurred_at,
        category=LEDGER,
        severity=_severity(row.kind),
        actor=row.actor_username or None,
        action=f"passport.{row.kind}",
        target=LogTarget(type="passport", id=str(passport.uuid), label=passport.serial),
        message=f"{passport.serial}: {label} (v{row.version})",
        source="ledger",
    )


def ledger_source(query: LogQuery) -> list[LogEvent]:
    """Ledger events, newest first: one query (the ``(occurred_at, id)``
    index, scanned backwards, joined to the passport for its serial).
    ``search`` matches the serial, the kind (value or label) and the actor:
    on PostgreSQL the serial through ``passport_serial_trgm`` (one more
    query: the matching passports, whose events are then read by their
    index; ``bpmos.logsource.among``), the actor through
    ``passport_event_actor_trgm``."""
    if LEDGER not in query.categories:
        return []
    qs = PassportEvent.objects.select_related("passport").only(
        "id",
        "version",
        "kind",
        "occurred_at",
        "actor_username",
        "passport__uuid",
        "passport__serial",
    )
    if query.severities is not None:
        kinds = _kinds_for(query.severities)
        if not kinds:
            return []
        if len(kinds) < len(EventKind.values):
            qs = qs.filter(kind__in=kinds)
    if query.search:
        term = query.search.lower()
        matching = [
            value
            for value, label in EventKind.choices
            if term in value.lower() or term in str(label).lower()
        ]
        qs = qs.filter(
            among(
                "passport",
                Passport.objects.filter(serial__icontains=query.search),
                Q(passport__serial__icontains=query.search),
            )
            | text_q(query, "actor_username")
            | Q(kind__in=matching)
        )
    return [_event(row) for row in page(qs, query, ts="occurred_at", head=LEDGER)]
