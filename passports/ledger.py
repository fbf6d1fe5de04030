"""The passport ledger: append an event, verify the chains.

``append`` is the only writer of ``PassportEvent`` and of a passport's
projection (state, hold, custodian, version, head hash). In one transaction it

1. locks the passport row (FOR NO KEY UPDATE, ``bpmos.locking``);
2. refuses with 409 ``version_conflict`` when the caller said which version it
   read (``expected_version``) and the ledger has moved on, so two writers that
   read the same version cannot both extend it (the loser re-reads and
   decides again); the unique (passport, version) constraint backs this up;
3. applies the lifecycle rules (``passports.lifecycle.apply``: 409 on an
   illegal move);
4. writes the event with the previous event's hash and its own HMAC-SHA256
   (the audit keyring's current key, outside the database, as for the audit
   log; the event keeps the key's id: ``bpmos/auditkeys.py``), a
   passport's first QA result into the dashboards' roll-ups
   (``passports.rollups``), then the projection, an audit record, a unit's
   custody count when its custodian changed, and a live event;
5. announces the appended event to the hooks registered with ``on_append``
   (the dispatch desk keeps its jobs in step this way), still inside the
   transaction with the row locked, so what a hook writes commits or rolls
   back with the event. The ledger imports none of its listeners.

A service that appends to several passports in one transaction locks them all
first with ``lock_passports`` (id order): the audit chain's lock is held from a
transaction's first append to its commit, so locking a second passport after it
could deadlock against a writer holding that passport and waiting for the
audit lock.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from bpmos import bulk, events, fields
from bpmos.auditkeys import keyring
from bpmos.errors import Conflict, DomainError, InvalidInput, NotFound
from bpmos.locking import ROW_LOCK, lock_row
from elog import audit, signed
from passports import lifecycle, rollups, signatures
from passports.models import EventKind, Passport, PassportEvent

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "passport",
    "version",
    "kind",
    "occurred_at",
    "actor_username",
    "data",
    "prev_hash",
)


@dataclass(frozen=True)
class Appended:
    """What ``append`` tells its hooks: the passport (locked, projection
    updated; as it stands right after this event), the event written, and the
    lifecycle snapshots around it. A batch (``append_many``) calls the hooks
    once per event, in order, after all its rows are written: ``last`` is True
    for its last event (always for a single append), and ``shared`` is one
    dict for the whole batch, where a hook can gather work to do once at
    ``last`` (the desk counts dispatchable products once per batch)."""

    passport: Passport
    event: PassportEvent
    before: lifecycle.Snapshot
    after: lifecycle.Snapshot
    last: bool = True
    shared: dict = field(default_factory=dict)


AppendHook = Callable[[Appended], None]
# Called in order after every append (see ``on_append``).
APPEND_HOOKS: list[AppendHook] = []


def on_append(hook: AppendHook) -> AppendHook:
    """Register ``hook`` to run after every append, inside ``append``'s
    transaction (passport row locked). Registered from an ``AppConfig.ready``;
    registering the same hook again keeps one."""
    if hook not in APPEND_HOOKS:
        APPEND_HOOKS.append(hook)
    return hook


def compute_hash(fields: Mapping[str, Any], *, key: bytes | None = None) -> str:
    """HMAC-SHA256 over the canonical JSON of an event's hashed fields, with
    ``key`` (by default the audit keyring's current key).

    ``passport`` is the passport's UUID (stable across databases), so a ledger
    exported elsewhere verifies with the key alone.
    """
    content = {name: fields[name] for name in HASHED_FIELDS}
    content["passport"] = str(content["passport"])
    occurred = content["occurred_at"]
    if isinstance(occurred, datetime):
        content["occurred_at"] = occurred.astimezone(UTC).isoformat()
    canonical = audit.canonical_dump(content, "data")
    if key is None:
        key = keyring().current_key
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def snapshot_of(passport: Passport) -> lifecycle.Snapshot:
    """The lifecycle snapshot the passport row holds."""
    return lifecycle.Snapshot(
        kind=passport.kind,
        state=passport.state,
        on_hold=passport.on_hold,
        hold_reason=passport.hold_reason,
        custodian_kind=passport.custodian_kind,
        custodian_name=passport.custodian_name,
        version=passport.version,
    )


def _project(passport: Passport, snapshot: lifecycle.Snapshot) -> None:
    passport.state = snapshot.state
    passport.on_hold = snapshot.on_hold
    passport.hold_reason = snapshot.hold_reason
    passport.custodian_kind = snapshot.custodian_kind
    passport.custodian_name = snapshot.custodian_name
    passport.version = snapshot.version


PROJECTION_FIELDS = [
    "state",
    "on_hold",
    "hold_reason",
    "custodian_kind",
    "custodian_name",
    "version",
    "head_hash",
    "updated_at",
]


# The row locks on PostgreSQL, as ``lock_row`` takes them (FOR NO KEY UPDATE, no
# join), raw: compiling the ORM's query over the passport's ~80 columns, and
# its iterator, cost more Python than the rest of an append. The rows become
# instances as the ORM makes them (``from_db``, each column through its field's
# converters: the JSON columns), tested equal to the ORM's.
_PASSPORT_FIELDS = Passport._meta.concrete_fields
_PASSPORT_ATTNAMES = [f.attname for f in _PASSPORT_FIELDS]
_LOCK_SELECT = (
    "SELECT "
    + ", ".join(f'"{f.column}"' for f in _PASSPORT_FIELDS)
    + f" FROM {Passport._meta.db_table} WHERE id "
)
_LOCK_ONE_SQL = _LOCK_SELECT + "= %s FOR NO KEY UPDATE"
_LOCK_MANY_SQL = _LOCK_SELECT + "= ANY(%s) ORDER BY id FOR NO KEY UPDATE"


@functools.cache
def _passport_converters() -> list[tuple[int, list, Any]]:
    table = Passport._meta.db_table
    found = []
    for index, model_field in enumerate(_PASSPORT_FIELDS):
        column = model_field.get_col(table)
        converters = connection.ops.get_db_converters(
            column
        ) + column.get_db_converters(connection)
        if converters:
            found.append((index, converters, column))
    return found


def _locked(sql: str, param: Any) -> list[Passport]:
    """PostgreSQL: the passports ``sql`` locks, as ORM instances."""
    with connection.cursor() as cursor:
        cursor.execute(sql, [param])
        return _passports_of(cursor.fetchall())


def _passports_of(rows: list[tuple]) -> list[Passport]:
    """Rows of ``_LOCK_SELECT`` as ORM instances."""
    converters = _passport_converters()
    found = []
    for row in rows:
        values = list(row)
        for index, functions, column in converters:
            value = values[index]
            for convert in functions:
                value = convert(value, column, connection)
            values[index] = value
        found.append(Passport.from_db(connection.alias, _PASSPORT_ATTNAMES, values))
    return found


def lock_passport(passport_id: int) -> Passport:
    """Lock one passport row for the rest of the transaction (404 if missing)."""
    if connection.vendor == "postgresql" and isinstance(passport_id, int):
        found = _locked(_LOCK_ONE_SQL, passport_id)
        if not found:
            raise NotFound(f"Passport {passport_id} does not exist.")
        return found[0]
    return lock_row(
        Passport.objects.all(), what=f"Passport {passport_id}", pk=passport_id
    )


def lock_passports(ids: Iterable[int]) -> dict[int, Passport]:
    """Lock several passport rows in id order (see the module docstring)."""
    wanted = sorted(set(ids))
    if connection.vendor == "postgresql" and all(type(pk) is int for pk in wanted):
        return {p.pk: p for p in _locked(_LOCK_MANY_SQL, wanted)}
    rows = Passport.objects.select_for_update(**ROW_LOCK).filter(pk__in=wanted)
    found = {p.pk: p for p in rows.order_by("pk")}
    return found


def state_dict(passport: Passport) -> dict[str, Any]:
    """The projection as the audit log's before/after records it."""
    return {
        "state": passport.state,
        "onHold": passport.on_hold,
        "custodian": {
            "kind": passport.custodian_kind,
            "name": passport.custodian_name,
        },
        "version": passport.version,
    }


# When an event can have happened: not before the passport's manufacture, never
# before EARLIEST (no battery of this plant is older: the API-wide lower bound
# of bpmos.fields), and not later than now plus a small allowance for a
# client's clock running ahead. The ledger keeps what it accepts forever, so a
# mistyped year is refused here, for every writer.
EARLIEST = fields.EARLIEST
CLOCK_SKEW = timedelta(minutes=5)


def check_occurred_at(passport: Passport, kind: str, occurred_at: datetime) -> None:
    """Refuse (400 ``validation_error`` on ``occurredAt``) a date event ``kind``
    of ``passport`` cannot have."""
    if occurred_at > timezone.now() + CLOCK_SKEW:
        problem = "Cannot be in the future."
    elif occurred_at < EARLIEST:
        problem = fields.TOO_EARLY
    elif kind != EventKind.MANUFACTURED and occurred_at < passport.manufactured_at:
        problem = (
            "Cannot be before the battery was manufactured "
            f"({passport.manufactured_at.astimezone(UTC).isoformat()})."
        )
    else:
        return
    raise InvalidInput(
        f"Invalid input: occurredAt: {problem}",
        code="validation_error",
        details={"occurredAt": [problem]},
    )


def append(
    *,
    passport: Passport | int,
    kind: str,
    data: Mapping[str, Any] | None = None,
    actor: Any,
    expected_version: int | None = None,
    occurred_at: datetime | None = None,
    publish: bool = True,
) -> PassportEvent:
    """Append event ``kind`` to a passport's ledger (see the module docstring).

    ``passport`` may be a row the caller has already locked in this transaction
    (``lock_passport``/``lock_passports``) or an id. ``data`` must already be
    validated and JSON-able. Raises ``Conflict`` (409 ``version_conflict``) or
    ``IllegalTransition`` (409); either leaves nothing written.
    """
    with transaction.atomic():
        claim = None
        if (
            connection.vendor == "postgresql"
            and kind not in rollups.QA_RESULTS
            and (isinstance(passport, Passport) or type(passport) is int)
        ):
            # The row lock and the audit chain's try-lock and head in one
            # round trip. A QA result upserts its roll-up hour before the
            # chain's lock (rollups' lock order): it claims in ``_write``.
            passport, claim = _lock_and_claim(passport)
        elif not isinstance(passport, Passport):
            passport = lock_passport(passport)
        entry = _prepare(
            passport,
            NewEvent(
                passport=passport.pk,
                kind=kind,
                data=data,
                expected_version=expected_version,
                occurred_at=occurred_at,
            ),
            actor=actor,
            ring=keyring(),
        )
        (event,) = _write([entry], actor=actor, publish=publish, claim=claim)
    return event


def _lock_and_claim(passport: Passport | int) -> tuple[Passport, audit.ChainClaim]:
    """PostgreSQL: lock ``passport`` (unless the caller gave the row it
    locked) and claim the audit chain (``audit.chain_claim``: its try-lock
    and head) in one round trip; 404 when the passport does not exist. The
    row lock comes first, as in ``_write``'s order."""
    trip = bulk.OneTrip()
    found: list[Passport] = []
    if not isinstance(passport, Passport):
        trip.add(
            _LOCK_ONE_SQL, [passport], lambda rows: found.extend(_passports_of(rows))
        )
    claim = audit.chain_claim(trip)
    trip.run()
    if isinstance(passport, Passport):
        return passport, claim
    if not found:
        raise NotFound(f"Passport {passport} does not exist.")
    return found[0], claim


@dataclass(frozen=True)
class NewEvent:
    """One event of ``append_many``: what ``append`` takes, per event."""

    passport: int
    kind: str
    data: Mapping[str, Any] | None = None
    expected_version: int | None = None
    occurred_at: datetime | None = None


def append_many(
    *, events: Iterable[NewEvent], actor: Any, publish: bool = True
) -> list[PassportEvent]:
    """Append ``events`` in order, all or nothing, in one transaction: the same
    rules, rows, hashes and audit records as ``append`` called for each in
    turn (two events of one passport chain one after the other; each
    ``expected_version`` is checked against the version the events before it
    left). The passports are locked together in id order first
    (``lock_passports``); the events are written with one ``INSERT``, the
    projections with one ``UPDATE``, the audit records under one take of the
    chain's lock with one ``INSERT`` (``audit.record_many``), the live events
    with one outbox write and one delivery after commit. 404 when a passport
    does not exist; the first refused event's error otherwise (its ``details``
    carry ``index``), and nothing is written."""
    events = list(events)
    if not events:
        return []
    ring = keyring()
    with transaction.atomic():
        locked = lock_passports(e.passport for e in events)
        entries = []
        for index, new in enumerate(events):
            passport = locked.get(new.passport)
            if passport is None:
                raise NotFound(
                    f"Passport {new.passport} does not exist.",
                    details={"index": index, "passport": new.passport},
                )
            try:
                entries.append(_prepare(passport, new, actor=actor, ring=ring))
            except DomainError as exc:
                raise at_index(exc, index) from exc
        return _write(entries, actor=actor, publish=publish)


def at_index(error: DomainError, index: int) -> DomainError:
    """``error`` saying which event of a batch it is about (``details.index``)."""
    details = error.details if isinstance(error.details, dict) else {}
    error.details = {**details, "index": index}
    error.message = f"Event {index}: {error.message}"
    return error


@dataclass
class _Entry:
    """An event checked and hashed, the passport's projection already moved
    past it (``view`` is the passport as it stands right after it)."""

    event: PassportEvent
    passport: Passport
    view: Passport
    before: dict[str, Any]
    after_state: dict[str, Any]
    prior: lifecycle.Snapshot
    after: lifecycle.Snapshot


def _prepare(passport: Passport, new: NewEvent, *, actor: Any, ring: Any) -> _Entry:
    """Check ``new`` against ``passport`` (locked) and make its row; moves
    ``passport``'s projection past it (in memory). Raises before moving it."""
    kind, expected_version = new.kind, new.expected_version
    data = audit.normalize_json(dict(new.data or {}))
    if expected_version is not None and expected_version != passport.version:
        raise Conflict(
            f"{passport} is at version {passport.version}, not "
            f"{expected_version}: someone else changed it. Re-read and retry.",
            code="version_conflict",
            details={"expected": expected_version, "actual": passport.version},
        )
    occurred_at = new.occurred_at or timezone.now()
    check_occurred_at(passport, kind, occurred_at)
    if kind == EventKind.DISPATCHED:
        signatures.require_signed_release(passport)
    before = state_dict(passport)
    prior = snapshot_of(passport)
    after = lifecycle.apply(prior, kind, data)
    user = actor if getattr(actor, "is_authenticated", False) else None
    fields: dict[str, Any] = {
        "passport": passport.uuid,
        "version": after.version,
        "kind": kind,
        "occurred_at": occurred_at,
        "actor_username": user.get_username() if user else "",
        "data": data,
        "prev_hash": passport.head_hash or GENESIS_HASH,
    }
    digest = compute_hash(fields, key=ring.current_key)
    # Positional, by attname: the keyword path cost ~2x (a descriptor per
    # relation); the relations' caches are set below, as the keywords set them.
    event = PassportEvent(
        *_event_values(
            {
                "id": None,
                "passport_id": passport.pk,
                "version": after.version,
                "kind": kind,
                "occurred_at": occurred_at,
                "actor_id": user.pk if user else None,
                "actor_username": fields["actor_username"],
                "data": data,
                "prev_hash": fields["prev_hash"],
                "hash": digest,
                "key_id": ring.current_id,
            }
        )
    )
    if user is not None:
        event.actor = user
    _project(passport, after)
    passport.head_hash = digest
    view = _copy_row(passport)
    event.passport = view
    return _Entry(
        event=event,
        passport=passport,
        view=view,
        before=before,
        after_state=state_dict(passport),
        prior=prior,
        after=after,
    )


_EVENT_ATTNAMES = tuple(f.attname for f in PassportEvent._meta.concrete_fields)


def _event_values(values: dict[str, Any]) -> list[Any]:
    """``values`` (by attname) in ``PassportEvent``'s field order."""
    return [values[name] for name in _EVENT_ATTNAMES]


def _copy_row(passport: Passport) -> Passport:
    """``copy.copy(passport)`` without the pickle protocol's detour (its
    ``__reduce__`` looks the model up and walks every field for memoryviews;
    the passport has no binary field): the same attributes, its own state."""
    view = Passport.__new__(Passport)
    state = passport.__dict__.copy()
    state["_state"] = copy.copy(passport._state)
    state["_state"].fields_cache = passport._state.fields_cache.copy()
    view.__dict__.update(state)
    return view


def _projections_update(passports: list[Passport]) -> None:
    """SQLite: the projection of several locked passports in one statement,
    ``UPDATE ... FROM (VALUES ...)`` (``bulk_update``'s CASE expressions cost
    ~50 ms of Python per 100 rows; PostgreSQL: ``_events_and_projections``)."""
    now = timezone.now()
    fields = [
        Passport._meta.get_field(name)
        for name in PROJECTION_FIELDS
        if name != "updated_at"
    ]
    params: list[Any] = []
    for passport in passports:
        passport.updated_at = now
        params.append(passport.pk)
        for column in fields:
            value = getattr(passport, column.attname)
            params.append(column.get_db_prep_save(value, connection))
    quote = connection.ops.quote_name
    table = quote(Passport._meta.db_table)
    stamp = Passport._meta.get_field("updated_at").get_db_prep_save(now, connection)
    # SQLite 3.33+ has UPDATE ... FROM; its VALUES columns are column1...
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    sets = ", ".join(
        f"{quote(f.column)} = v.column{n + 2}" for n, f in enumerate(fields)
    )
    sql = (
        f"UPDATE {table} SET {sets}, updated_at = %s "
        f"FROM (VALUES {', '.join([row] * len(passports))}) AS v "
        f"WHERE {table}.id = v.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [stamp, *params])


_EVENT_FIELDS = [f for f in PassportEvent._meta.concrete_fields if not f.primary_key]
_STORED_PROJECTION = [Passport._meta.get_field(name) for name in PROJECTION_FIELDS]


def _event_and_projection(entry: _Entry, *, trip: bulk.OneTrip) -> None:
    """PostgreSQL: ``entry``'s event row and its passport's projection in one
    statement (a data-modifying CTE), each value prepared by its model field
    as ``bulk_create`` and ``save(update_fields=...)`` prepare it, queued on
    ``trip``; sets the event's id when the trip has run."""
    event, passport = entry.event, entry.passport
    passport.updated_at = timezone.now()
    quote = connection.ops.quote_name
    event_table = quote(PassportEvent._meta.db_table)
    passport_table = quote(Passport._meta.db_table)
    event_values = [
        f.get_db_prep_save(f.pre_save(event, add=True), connection)
        for f in _EVENT_FIELDS
    ]
    projection_values = [
        f.get_db_prep_save(getattr(passport, f.attname), connection)
        for f in _STORED_PROJECTION
    ]
    columns = ", ".join(quote(f.column) for f in _EVENT_FIELDS)
    sets = ", ".join(f"{quote(f.column)} = %s" for f in _STORED_PROJECTION)
    sql = (
        f"WITH event AS (INSERT INTO {event_table} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(_EVENT_FIELDS))}) RETURNING id), "
        f"projection AS (UPDATE {passport_table} SET {sets} WHERE id = %s) "
        "SELECT id FROM event"
    )

    def stored(rows):
        ((event.pk,),) = rows
        event._state.adding = False
        event._state.db = connection.alias

    trip.add(sql, [*event_values, *projection_values, passport.pk], stored)


def _insert_events(created: list[PassportEvent]) -> None:
    """SQLite: a batch's event rows, ids set (``bulk_create``; PostgreSQL:
    ``_events_and_projections``)."""
    models.QuerySet.bulk_create(PassportEvent.objects.all(), created)


_EVENT_TABLE = PassportEvent._meta.db_table
_JSON_EVENT_FIELDS = [(f, bulk.json_value(f)) for f in _EVENT_FIELDS]
_JSON_PROJECTION_FIELDS = [
    (f, bulk.json_value(f)) for f in _STORED_PROJECTION if f.name != "updated_at"
]


@functools.cache
def _events_and_projections_sql() -> str:
    quote = connection.ops.quote_name

    def record(fields):  # jsonb_to_recordset's column definitions
        return ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields)

    events = [f for f, _ in _JSON_EVENT_FIELDS]
    columns = ", ".join(quote(f.column) for f in events)
    projection = [f for f, _ in _JSON_PROJECTION_FIELDS]
    sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in projection)
    return (
        # The events' ids from the table's sequence, ascending in batch order
        # (as a multi-row INSERT's RETURNING gives them), ...
        "WITH ids AS MATERIALIZED (SELECT id, row_number() OVER (ORDER BY id) "
        "AS ord FROM (SELECT nextval(pg_get_serial_sequence("
        f"'{_EVENT_TABLE}', 'id')) AS id FROM generate_series(1, %s)) AS n), "
        # ... the event rows ...
        f"event AS (INSERT INTO {quote(_EVENT_TABLE)} (id, {columns}) "
        f"SELECT ids.id, {', '.join(f'e.{quote(f.column)}' for f in events)} "
        f"FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({record(events)})) "
        f"WITH ORDINALITY AS e({columns}, ord) JOIN ids USING (ord) "
        "ORDER BY ord), "
        # ... and the projections of their passports.
        f"projection AS (UPDATE {quote(Passport._meta.db_table)} AS p "
        f"SET {sets}, {quote('updated_at')} = %s "
        f"FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, {record(projection)}) "
        "WHERE p.id = v.id) "
        "SELECT id FROM ids ORDER BY ord"
    )


def _events_and_projections(
    created: list[PassportEvent], passports: list[Passport]
) -> None:
    """PostgreSQL: a batch's event rows and its passports' projections in one
    statement and one round trip (data-modifying CTEs; each side's rows in one
    JSON parameter, each value as its field prepares it:
    ``bpmos.bulk.json_value``); sets the events' ids. It replaced a COPY of
    the events (two round trips, their ids in a third) and an ``UPDATE ...
    FROM (VALUES ...)`` whose 800 parameters psycopg split and quoted one by
    one."""
    now = timezone.now()
    events = [
        {
            f.column: to_json(f.pre_save(event, add=True))
            for f, to_json in _JSON_EVENT_FIELDS
        }
        for event in created
    ]
    projections = []
    for passport in passports:
        passport.updated_at = now
        row = {"id": passport.pk}
        for f, to_json in _JSON_PROJECTION_FIELDS:
            row[f.column] = to_json(getattr(passport, f.attname))
        projections.append(row)
    stamp = Passport._meta.get_field("updated_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _events_and_projections_sql(),
            [len(events), json.dumps(events), stamp, json.dumps(projections)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    for pk, event in zip(ids, created, strict=True):
        event.pk = pk
        event._state.adding = False
        event._state.db = connection.alias


def _clash(entries: list[_Entry]) -> Conflict:
    return Conflict(
        f"{entries[0].view} was extended concurrently. Re-read and retry.",
        code="version_conflict",
        details={"expected": entries[0].prior.version},
    )


def _audit_entries(entries: list[_Entry], actor: Any) -> list[dict[str, Any]]:
    """The audit records of ``entries`` (``audit.record_many``'s entries)."""
    return [
        {
            "actor": actor,
            "action": f"passport.{entry.event.kind}",
            "target": entry.view,
            "before": entry.before
            if entry.event.kind != EventKind.MANUFACTURED
            else None,
            "after": {
                **entry.after_state,
                "event": {"kind": entry.event.kind, "data": entry.event.data},
            },
        }
        for entry in entries
    ]


def _live_events(entries: list[_Entry]) -> list[events.Event]:
    from passports import events as passport_events

    return [passport_events.changed(entry.view, entry.event) for entry in entries]


def _write_one(
    entry: _Entry, *, actor: Any, publish: bool, claim: audit.ChainClaim | None
) -> PassportEvent:
    """PostgreSQL, one event: ``_write``'s rows in one round trip (the event
    and the projection, the audit record, the outbox row: ``bulk.OneTrip``),
    after the audit chain's claim (made with the row lock by
    ``_lock_and_claim``; here, after its first-QA roll-up, for a QA result)."""
    if entry.event.kind in rollups.QA_RESULTS:  # before the chain's lock
        rollups.first_qa_record(passport=entry.view, event=entry.event)
    trip = bulk.OneTrip()
    if claim is None:
        claim = audit.chain_claim(trip)
        trip.run()
    _event_and_projection(entry, trip=trip)
    audit.record_many(
        _audit_entries([entry], actor), stage_when_busy=True, claim=claim, trip=trip
    )
    if publish:  # delivered after commit, as in ``_write``
        events.publish_many(_live_events([entry]), background=True, trip=trip)
    try:
        # No savepoint: append's own atomic block is one when nested, and the
        # row lock makes a clash on (passport, version) unreachable.
        trip.run()
    except (IntegrityError, UniqueViolation) as exc:  # the row lock prevents it
        raise _clash([entry]) from exc
    _custody([entry])
    _hooks([entry])
    return entry.event


def _write(
    entries: list[_Entry],
    *,
    actor: Any,
    publish: bool,
    claim: audit.ChainClaim | None = None,
) -> list[PassportEvent]:
    """Store prepared entries (in the caller's transaction, rows locked): the
    events, first-QA roll-ups, projections, audit records, custody counts,
    live events, then the hooks, each event in order. PostgreSQL: one event
    in one round trip (``_write_one``, with ``claim`` when the lock took it)."""
    fused = connection.vendor == "postgresql"
    if fused and len(entries) == 1:
        return [_write_one(entries[0], actor=actor, publish=publish, claim=claim)]
    created = [entry.event for entry in entries]
    # The locked rows hold the projection after their last event.
    finals = {entry.passport.pk: entry.passport for entry in entries}
    try:
        # No savepoint: append's own atomic block is one when nested, and the
        # row lock makes a clash on (passport, version) unreachable.
        if fused:  # a batch's events and projections in one statement
            _events_and_projections(created, list(finals.values()))
        else:
            _insert_events(created)
    except (IntegrityError, UniqueViolation) as exc:  # the row locks prevent it
        raise _clash(entries) from exc
    for entry in entries:
        if entry.event.kind in rollups.QA_RESULTS:  # the trends' first-pass roll-ups
            rollups.first_qa_record(passport=entry.view, event=entry.event)
    if fused:
        pass  # the projections went with the events
    elif len(finals) == 1:
        (only,) = finals.values()
        only.save(update_fields=PROJECTION_FIELDS)
    else:
        _projections_update(list(finals.values()))
    audit.record_many(_audit_entries(entries, actor), stage_when_busy=True)
    _custody(entries)
    if publish:
        # Delivered after commit by this process's delivery thread (a shared
        # layer): the writer does not wait for Redis; the outbox row is
        # committed with the event, so ``events_redeliver`` sends what that
        # thread does not.
        events.publish_many(_live_events(entries), background=True)
    _hooks(entries)
    return created


def _custody(entries: list[_Entry]) -> None:
    """The custody counts the entries moved (after their audit records: with
    the chain's lock, rollups' lock order)."""
    custody: dict[str, int] = {}
    for entry in entries:
        before, after = entry.prior.custodian_kind, entry.after.custodian_kind
        if entry.view.parent_id is None and before != after:
            custody[before] = custody.get(before, 0) - 1
            custody[after] = custody.get(after, 0) + 1
    rollups.custody_units_add(custody)


def _hooks(entries: list[_Entry]) -> None:
    """The append hooks, each event in order (``Appended``)."""
    shared: dict = {}
    for index, entry in enumerate(entries):
        appended = Appended(
            passport=entry.view,
            event=entry.event,
            before=entry.prior,
            after=entry.after,
            last=index == len(entries) - 1,
            shared=shared,
        )
        for hook in APPEND_HOOKS:
            hook(appended)


# --- verification -------------------------------------------------------------


@dataclass(frozen=True)
class BrokenLink:
    """The first place a passport's ledger breaks."""

    passport_id: int
    serial: str
    version: int
    event_id: int | None
    # altered | removed | inserted | reordered | projection | unverifiable
    problem: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "passportId": str(self.passport_id),
            "serial": self.serial,
            "version": self.version,
            "eventId": self.event_id,
            "problem": self.problem,
            "message": self.message,
        }


@dataclass(frozen=True)
class UnverifiableEvents:
    """The events (walked so far) signed with one key the keyring lacks."""

    key_id: str
    events: int
    passports: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "events": self.events,
            "passports": self.passports,
        }


@dataclass(frozen=True)
class LedgerVerification:
    """The outcome of a walk over the ledgers. ``unverifiable`` lists, per key
    id, the events signed with a key the audit keyring does not hold (up to
    the first break): their links and lifecycle were checked, their content
    could not be; ``ok`` is then False."""

    ok: bool
    passports: int
    events: int
    first_broken: BrokenLink | None
    unverifiable: tuple[UnverifiableEvents, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passportsChecked": self.passports,
            "eventsChecked": self.events,
            "firstBroken": self.first_broken.as_dict() if self.first_broken else None,
            "unverifiable": [run.as_dict() for run in self.unverifiable],
        }


class _Unknown:
    """Events whose key the keyring lacks, per key id, and the first of them."""

    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        self.passports: dict[str, set[int]] = {}
        self.first: tuple[Passport, PassportEvent] | None = None

    def add(self, passport: Passport, event: PassportEvent) -> None:
        self.events[event.key_id] = self.events.get(event.key_id, 0) + 1
        self.passports.setdefault(event.key_id, set()).add(passport.pk)
        self.first = self.first or (passport, event)

    def runs(self) -> tuple[UnverifiableEvents, ...]:
        return tuple(
            UnverifiableEvents(key_id, n, len(self.passports[key_id]))
            for key_id, n in self.events.items()
        )

    def broken(self, known: Iterable[str]) -> BrokenLink | None:
        if self.first is None:
            return None
        passport, event = self.first
        runs = "; ".join(
            f"{run.events} event{'s' if run.events > 1 else ''} of "
            f"{run.passports} passport{'s' if run.passports > 1 else ''} with key "
            f"{run.key_id!r}"
            for run in self.runs()
        )
        return BrokenLink(
            passport_id=passport.pk,
            serial=passport.serial,
            version=event.version,
            event_id=event.pk,
            problem="unverifiable",
            message=(
                f"Event {event.version} is signed with audit key {event.key_id!r}, "
                f"which the keyring ({', '.join(known)}) does not hold: it cannot "
                f"be verified. Unverifiable: {runs}. Add the key to "
                "BPMOS_AUDIT_RETIRED_KEYS (docs/security.md)."
            ),
        )


class _Row(NamedTuple):
    """An event as ``verify`` reads it (the columns it checks)."""

    pk: int
    passport_id: int
    version: int
    kind: str
    occurred_at: datetime | str  # str: the UTC ISO text (PostgreSQL)
    actor_username: str
    data: Any
    prev_hash: str
    hash: str
    key_id: str


_DUMP = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), default=str
).encode  # compute_hash's json.dumps options, without json.dumps' per-call setup
_STR = json.encoder.encode_basestring_ascii  # what _DUMP does with a str
_BIG_INT = re.compile(r"\d{16}")  # 2**53 has 16 digits


def _row_digest(row: _Row, passport_uuid: str, key: bytes) -> str:
    """``compute_hash`` of a row ``verify`` read, byte for byte, faster: the
    canonical JSON of ``HASHED_FIELDS`` (sorted keys: actor_username, data,
    kind, occurred_at, passport, prev_hash, version) put together from its
    parts. ``row.occurred_at`` is already the UTC ISO text ``compute_hash``
    makes; ``canonical_numbers`` only changes integers of 16 digits or more,
    so it runs only when the data's JSON has a run of 16 digits.
    ``tests/test_passport_ledger_verify.py`` checks it against
    ``compute_hash``."""
    data = _DUMP(row.data)
    if _BIG_INT.search(data):
        data = _DUMP(audit.canonical_numbers(row.data))
    canonical = (
        f'{{"actor_username":{_STR(row.actor_username)},"data":{data},'
        f'"kind":{_STR(row.kind)},"occurred_at":"{row.occurred_at}",'
        f'"passport":"{passport_uuid}","prev_hash":{_STR(row.prev_hash)},'
        f'"version":{int(row.version)}}}'
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _event_fields(event: PassportEvent | _Row, passport_uuid) -> dict[str, Any]:
    return {
        "passport": passport_uuid,
        "version": event.version,
        "kind": event.kind,
        "occurred_at": event.occurred_at,
        "actor_username": event.actor_username,
        "data": event.data,
        "prev_hash": event.prev_hash,
    }


def _check_one(
    passport: Passport,
    chain: list[PassportEvent],
    keys: Mapping[str, bytes],
    unknown: _Unknown,
) -> BrokenLink | None:
    """The first break of one passport's ledger, or None. An event whose key
    ``keys`` lacks is added to ``unknown`` and checked for all but its HMAC."""

    def broken(event, problem, message, version=None):
        return BrokenLink(
            passport_id=passport.pk,
            serial=passport.serial,
            version=version if version is not None else event.version,
            event_id=event.pk if event is not None else None,
            problem=problem,
            message=message,
        )

    prev_hash = GENESIS_HASH
    expected_version = 1
    snapshot = lifecycle.Snapshot(kind=passport.kind)
    uuid_text = str(passport.uuid)
    for index, event in enumerate(chain):
        if event.version > expected_version:
            return broken(
                event,
                "removed",
                f"Event {expected_version} is missing before event {event.version}.",
                version=expected_version,
            )
        if event.version < expected_version:
            return broken(event, "inserted", f"Event {event.version} appears twice.")
        key = keys.get(event.key_id)
        if key is None:
            unknown.add(passport, event)
        elif not hmac.compare_digest(
            _row_digest(event, uuid_text, key)
            if isinstance(event.occurred_at, str)
            else compute_hash(_event_fields(event, passport.uuid), key=key),
            event.hash,
        ):
            # Look one event ahead, as the audit chain does: without the key a
            # forger cannot make a valid hash, and (passport, version) is
            # unique, so an event forged into the middle renumbers its
            # successors, and the next one still links to the event before it.
            following = chain[index + 1] if index + 1 < len(chain) else None
            if following is None:
                return broken(
                    event,
                    "altered",
                    f"Event {event.version}, the newest, does not match its hash: "
                    "it was altered, or forged and appended.",
                )
            later = {e.hash: e.version for e in chain[index + 1 :]}
            if event.prev_hash in later:
                return broken(
                    event,
                    "reordered",
                    f"Event {event.version} links to event "
                    f"{later[event.prev_hash]} after it: the events were "
                    "renumbered out of order.",
                )
            if following.prev_hash == prev_hash:
                before = (
                    f"event {event.version - 1}" if index else "the start of the ledger"
                )
                return broken(
                    event,
                    "inserted",
                    f"Event {event.version} does not match its hash and event "
                    f"{following.version} links past it to {before}: it was "
                    "inserted.",
                )
            return broken(event, "altered", f"Event {event.version} was altered.")
        if event.prev_hash != prev_hash:
            return broken(
                event,
                "inserted",
                f"Event {event.version} does not follow event {event.version - 1}.",
            )
        try:
            snapshot = lifecycle.apply(snapshot, event.kind, event.data)
        except Exception:
            return broken(
                event, "altered", f"Event {event.version} breaks the lifecycle rules."
            )
        prev_hash = event.hash
        expected_version += 1
    last = chain[-1] if chain else None
    head = last.hash if last else ""
    if passport.head_hash != head and passport.version > len(chain):
        # The passport's head names an event the ledger no longer holds.
        return broken(
            None,
            "removed",
            f"Event {len(chain) + 1} is missing: the ledger ends at event "
            f"{len(chain)} but the passport says {passport.version} events, the "
            "last with another hash.",
            version=len(chain) + 1,
        )
    if passport.version != len(chain) or passport.head_hash != head:
        return broken(
            last,
            "projection",
            f"The passport says {passport.version} events; its ledger holds "
            f"{len(chain)}"
            + (
                ", ending at the head hash it records."
                if passport.head_hash == head
                else f", ending at another hash than its head {passport.head_hash}."
            ),
            version=len(chain),
        )
    if snapshot_of(passport) != snapshot:
        return broken(
            last,
            "projection",
            "The passport's state or custodian differs from what its ledger says.",
        )
    return None


# PostgreSQL: the events as ``_row_digest`` hashes them, the time already the
# UTC ISO text ``compute_hash`` makes (``isoformat``: no fraction when it is 0).
_ROWS_SQL = (
    "SELECT id, passport_id, version, kind, "
    "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
    "actor_username, data, prev_hash, hash, key_id "
    f"FROM {PassportEvent._meta.db_table} WHERE passport_id = ANY(%s) "
    "ORDER BY passport_id, version, id"
)


def _rows_of(passport_ids: list[int]) -> Iterable[_Row]:
    """The events of ``passport_ids`` in chain order, as plain tuples (no model
    instance, no field converters per event)."""
    if connection.vendor != "postgresql":
        rows = (
            PassportEvent.objects.filter(passport_id__in=passport_ids)
            .order_by("passport_id", "version", "pk")
            .values_list(*_Row._fields)
        )
        yield from map(_Row._make, rows)
        return
    loads = json.loads
    with connection.cursor() as cursor:
        cursor.execute(_ROWS_SQL, [list(passport_ids)])
        while batch := cursor.fetchmany(5000):
            for pk, pid, version, kind, at, actor, data, prev, digest, kid in batch:
                if at.endswith(".000000"):
                    at = at[:-7]
                yield _Row(
                    pk,
                    pid,
                    version,
                    kind,
                    at + "+00:00",
                    actor,
                    loads(data) if isinstance(data, str) else data,
                    prev,
                    digest,
                    kid,
                )


def verify(
    *, passport_ids: Iterable[int] | None = None, batch: int = 500
) -> LedgerVerification:
    """Walk every ledger (or those of ``passport_ids``) and name the first break.

    Each event's HMAC is checked with the key its ``key_id`` names in the audit
    keyring (current or retired). Events signed with a key the keyring lacks
    are unverifiable: the walk checks the rest of them and goes on; without a
    break, ``first_broken`` names the first of them (``unverifiable``).
    """
    ring = keyring()
    unknown = _Unknown()
    qs = Passport.objects.order_by("pk")
    if passport_ids is not None:
        qs = qs.filter(pk__in=list(passport_ids))
    checked_passports = checked_events = 0
    ids = list(qs.values_list("pk", flat=True))
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        passports = {p.pk: p for p in Passport.objects.filter(pk__in=chunk)}
        chains: dict[int, list[_Row]] = {pk: [] for pk in chunk}
        for event in _rows_of(chunk):
            chains[event.passport_id].append(event)
        for pk in chunk:
            checked_passports += 1
            checked_events += len(chains[pk])
            problem = _check_one(passports[pk], chains[pk], ring.keys, unknown)
            if problem is not None:
                return LedgerVerification(
                    False, checked_passports, checked_events, problem, unknown.runs()
                )
    problem = unknown.broken(ring.keys)
    return LedgerVerification(
        problem is None, checked_passports, checked_events, problem, unknown.runs()
    )


def _verified() -> signed.Verified:
    result = verify()
    counts = f"{result.passports} passports, {result.events} events checked"
    if result.ok:
        return signed.Verified(True, f"intact, {counts}")
    broken = result.first_broken
    return signed.Verified(
        False,
        f"BROKEN at passport {broken.serial} event {broken.version} "
        f"({broken.problem}): {broken.message} ({counts})",
    )


def register_signed_chain() -> None:
    """Tell ``manage.py audit_keys`` (``elog.signed``) about the ledgers."""
    signed.register(
        signed.SignedChain(
            name="passport ledgers",
            key_ids=lambda: signed.rows_per_key(PassportEvent.objects.all()),
            verify=_verified,
        )
    )
