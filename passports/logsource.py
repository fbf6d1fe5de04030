"""The passports' ledger as a log source (``GET /api/logs``, category
``ledger``; ``bpmos/logevents.py``).

An event names the battery (serial) and what happened (the kind's label);
never the event's ``data``, which may hold restricted passport fields
(materials, composition: docs/passports.md), so every role may read it.
"""

from __future__ import annotations

from uuid import UUID

from django.db.models import Q

from bpmos.logevents import INFO, LEDGER, WARNING, LogEvent, LogQuery, LogTarget
from bpmos.logsource import Plan, Row, among, run, select, text_q
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


def _uuid_text(value: str) -> str:
    # PostgreSQL casts a uuid to its hyphenated text; SQLite stores 32 hex
    return value if len(value) == 36 else str(UUID(value))


def _event(row: Row) -> LogEvent:
    """A ledger row (``ledger_plan``'s columns) as its event."""
    occurred_at, pk, _, version, kind, actor, uuid, serial, *_ = row
    label = _LABELS.get(kind, kind)
    return LogEvent(
        id=f"{LEDGER}:{pk}",
        timestamp=occurred_at,
        category=LEDGER,
        severity=_severity(kind),
        actor=actor or None,
        action=f"passport.{kind}",
        target=LogTarget(type="passport", id=_uuid_text(uuid), label=serial),
        message=f"{serial}: {label} (v{version})",
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
    return run(ledger_plan(query))


def ledger_search_shape(term: str) -> tuple[str, ...]:
    """The event kinds whose value or label holds ``term`` (case-insensitive):
    a search matches them by kind, so they shape the page's statement
    (``bpmos.dashboards.logs.Source.search_shape``)."""
    term = term.lower()
    return tuple(
        value
        for value, label in EventKind.choices
        if term in value.lower() or term in str(label).lower()
    )


def ledger_plan(query: LogQuery) -> Plan | None:
    """``ledger_source``'s page as one SELECT (None: nothing to give)."""
    if LEDGER not in query.categories:
        return None
    qs = PassportEvent.objects.all()
    if query.severities is not None:
        kinds = _kinds_for(query.severities)
        if not kinds:
            return None
        if len(kinds) < len(EventKind.values):
            qs = qs.filter(kind__in=kinds)
    if query.search:
        matching = list(ledger_search_shape(query.search))
        qs = qs.filter(
            among(
                "passport",
                Passport.objects.filter(serial__icontains=query.search),
                Q(passport__serial__icontains=query.search),
            )
            | text_q(query, "actor_username")
            | Q(kind__in=matching)
        )
    return select(
        qs,
        query,
        ts="occurred_at",
        head=LEDGER,
        fields=(
            "version",
            "kind",
            "actor_username",
            "passport__uuid",
            "passport__serial",
        ),
        build=_event,
    )
