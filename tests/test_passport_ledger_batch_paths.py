"""The batch path's cuts (docs/passports.md, "Ledger throughput") write what
the unoptimised paths write.

- ``append_many`` on PostgreSQL writes a batch's events and projections in one
  statement (``ledger._events_and_projections``); a pallet of events, two on
  some passports, with big numbers, non-ASCII text and microseconds, writes
  the same rows, hashes, projections, audit records, outbox rows and topic
  rows as the same events appended one by one; a clash is still a 409 with
  nothing written; its statements do not grow with the batch.
- ``audit.canonical_dump`` (``canonical_numbers`` only when the JSON has a run
  of 16 digits) gives the text the old ``json.dumps`` of ``canonical_numbers``
  gave, so both hashes are unchanged.
- ``bpmos.bulk.insert_rows`` (one ``INSERT`` from one JSON parameter) stores
  what the ORM stores; ``json_value`` refuses a field class it does not know.
- The outbox's batch statement stores what ``_store`` stores, one by one.
- ``Passport.choice_label`` is ``get_<field>_display``.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bpmos import bulk, context
from bpmos.errors import Conflict
from bpmos.events import Event
from bpmos.events import services as event_services
from bpmos.events.models import OutboxEvent, OutboxTopic
from elog import audit
from elog.models import AuditRecord
from elog.services import audit_chain_verify
from passports import ledger
from passports.models import EventKind, Passport, PassportEvent
from tests.factories_passports import make_passport

E = EventKind


class _Undo(Exception):
    pass


def _old_canonical(content: dict, *numbers: str) -> str:
    """The canonical JSON as compute_hash made it before canonical_dump."""
    content = dict(content)
    for name in numbers:
        content[name] = audit.canonical_numbers(content[name])
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"sohPercent": 97.5, "samples": 60},
        {"big": 2**53, "bigger": -(2**60), "float": 1e20, "small": 2**53 - 1},
        {"list": [2**63, [2**70, {"x": -(2**53)}]], "f": 9007199254740993.0},
        {"serial": "1234567890123456789", "n": 1234567890123456},
        {"note": "Zelle \u2013 \u96fb\u6c60", "quote": 'a "b" \\ c', "t": True},
    ],
)
def test_canonical_dump_is_the_old_canonical_json(data):
    content = {
        "seq": 12,
        "before": data,
        "after": {"event": {"data": data}, "version": 3},
        "prev_hash": "0123456789012345678901234567890123456789abcdefabcdefabcdefabcd",
        "occurred_at": "2026-12-04T10:00:00.123456+00:00",
    }
    assert audit.canonical_dump(content, "before", "after") == _old_canonical(
        content, "before", "after"
    )
    event = {"data": data or {}, "version": 2, "kind": "serviced"}
    assert audit.canonical_dump(event, "data") == _old_canonical(event, "data")


def test_json_value_refuses_a_field_class_it_does_not_know():
    with pytest.raises(TypeError, match="no JSON form"):
        bulk.json_value(models.DecimalField(max_digits=5, decimal_places=2))


def _audit_columns() -> list[str]:
    return [f.attname for f in AuditRecord._meta.concrete_fields if f.name != "id"]


@pytest.mark.django_db
@pytest.mark.postgresql_only
def test_insert_rows_stores_what_the_orm_stores(make_user):
    boss = make_user("supervisor")
    pack = make_passport("pack", "warehoused")
    entries = [
        {
            "actor": boss,
            "action": "passport.serviced",
            "target": pack,
            "before": None,
            "after": {"n": 2**60, "at": timezone.now(), "text": "\u96fb\u6c60"},
        },
        {"actor": None, "action": "system.checked", "before": {"a": [1, None]}},
    ]
    token = context.bind(
        context.RequestContext(
            request_id="req-1", client_address="2001:DB8::0:1", source="api"
        )
    )
    try:
        last = AuditRecord.objects.order_by("-seq").first()
        first = audit._entry_fields(entries[0], (last.seq, last.hash), {})
        rows = [
            first,
            audit._entry_fields(entries[1], (first["seq"], first["hash"]), {}),
        ]
    finally:
        context.reset(token)
    # The same fields, once through the ORM and once through insert_rows.
    with transaction.atomic():
        for row in rows:
            AuditRecord.objects.create(**row)
        orm = list(
            AuditRecord.objects.filter(seq__in=[r["seq"] for r in rows])
            .order_by("seq")
            .values_list(*_audit_columns())
        )
        transaction.set_rollback(True)
    with transaction.atomic():
        bulk.insert_rows(AuditRecord, audit._FIELD_NAMES, rows)
        fast = list(
            AuditRecord.objects.filter(seq__in=[r["seq"] for r in rows])
            .order_by("seq")
            .values_list(*_audit_columns())
        )
        transaction.set_rollback(True)
    assert fast == orm
    assert len(fast) == 2
    assert fast[0][_audit_columns().index("client_address")] == "2001:db8::1"
    assert fast[1][_audit_columns().index("after")] is None  # SQL NULL, as the ORM


@pytest.mark.django_db
@pytest.mark.postgresql_only
def test_the_outbox_batch_stores_what_single_stores_store():
    events = [
        Event(name="passport.changed", topics=("passports",), data={"n": 1}),
        Event(
            name="product_moved_to_past",
            topics=("dispatch", "passports", "dispatch"),
            data={"at": timezone.now(), "text": "\u2713", "big": 2**60},
        ),
        Event(name="product_reactivated", topics=("dispatch",), data={}),
    ]

    def stored(rows):
        ids = [row.pk for row in rows]
        return (
            [
                (row.name, row.topics, row.data, row.delivered_at, row.attempts)
                for row in OutboxEvent.objects.filter(pk__in=ids).order_by("pk")
            ],
            sorted(
                OutboxTopic.objects.filter(event_id__in=ids).values_list(
                    "event__name", "topic"
                )
            ),
            [(row.name, row.topics, row.data) for row in rows],
        )

    with transaction.atomic():
        singles = stored([event_services._store(event) for event in events])
        transaction.set_rollback(True)
    with transaction.atomic():
        rows = event_services._outbox_insert_many_postgresql(events)
        batch = stored(rows)
        transaction.set_rollback(True)
    assert [row.pk for row in rows] == sorted(row.pk for row in rows)
    assert batch == singles
    assert batch[1] == [
        ("passport.changed", "passports"),
        ("product_moved_to_past", "dispatch"),
        ("product_moved_to_past", "passports"),
        ("product_reactivated", "dispatch"),
    ]


@pytest.mark.django_db
@pytest.mark.postgresql_only
def test_the_raw_row_locks_make_the_instances_the_orm_makes():
    packs = [make_passport("pack", "warehoused") for _ in range(3)]
    Passport.objects.filter(pk=packs[0].pk).update(
        labels=["CE", "UN38.3"],
        material_composition={"cathode": {"LFP": 91.5}, "big": 2**60},
        hold_reason="Recall \u2013 2026",
    )

    def attributes(passport):
        return {k: v for k, v in passport.__dict__.items() if k != "_state"}

    ids = [p.pk for p in packs]
    with transaction.atomic():
        locked = ledger.lock_passports(reversed(ids))
        one = ledger.lock_passport(ids[0])
    orm = {p.pk: p for p in Passport.objects.filter(pk__in=ids)}
    assert list(locked) == ids  # id order
    assert {pk: attributes(p) for pk, p in locked.items()} == {
        pk: attributes(p) for pk, p in orm.items()
    }
    assert attributes(one) == attributes(orm[ids[0]])
    assert one.labels == ["CE", "UN38.3"]
    assert not one._state.adding
    assert one._state.db == "default"


@pytest.mark.django_db
def test_choice_label_is_the_display_of_every_choice():
    pack = Passport(kind="pack", state="warehoused")
    for name in ("kind", "state", "custodian_kind"):
        for value, _label in Passport._meta.get_field(name).flatchoices:
            setattr(pack, name, value)
            assert pack.choice_label(name) == getattr(pack, f"get_{name}_display")()
    pack.state = "no-such-state"
    assert pack.choice_label("state") == pack.get_state_display() == "no-such-state"


# --- a pallet, batch against singles -----------------------------------------


def _effects(passports, seq, outbox):
    ids = [p.pk for p in passports]
    events = list(
        PassportEvent.objects.filter(passport_id__in=ids)
        .order_by("passport_id", "version")
        .values_list(
            "passport_id",
            "version",
            "kind",
            "occurred_at",
            "actor_id",
            "actor_username",
            "data",
            "prev_hash",
            "hash",
            "key_id",
        )
    )
    projections = list(
        Passport.objects.filter(pk__in=ids)
        .order_by("pk")
        .values_list(
            "state",
            "on_hold",
            "hold_reason",
            "custodian_kind",
            "custodian_name",
            "version",
            "head_hash",
        )
    )
    audits = list(
        AuditRecord.objects.filter(seq__gt=seq)
        .order_by("seq")
        .values_list(
            "actor_id",
            "actor_username",
            "actor_role",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "before",
            "after",
            "source",
            "key_id",
        )
    )
    rows = OutboxEvent.objects.filter(pk__gt=outbox).order_by("pk")
    live = [
        (name, topics, {k: v for k, v in data.items() if k != "count"})
        for name, topics, data in rows.values_list("name", "topics", "data")
    ]
    # The ledger's own events in order; the desk announces its changes after a
    # batch's last event (single appends: after each), so those as a set.
    live = (
        [row for row in live if row[0] == "passport.changed"],
        sorted(repr(row) for row in live if row[0] != "passport.changed"),
    )
    topics = sorted(
        OutboxTopic.objects.filter(event_id__gt=outbox).values_list(
            "event__name", "topic"
        )
    )
    return events, projections, audits, live, topics


@pytest.mark.django_db
def test_a_pallet_batch_writes_what_the_same_single_appends_write(make_user):
    boss = make_user("supervisor")
    packs = [make_passport("pack", "warehoused", actor=boss) for _ in range(12)]
    at = timezone.now().replace(microsecond=123456) + timedelta(seconds=2)
    packs[0].refresh_from_db()
    plan = [
        ledger.NewEvent(
            pack.pk,
            E.TELEMETRY_SUMMARISED,
            {"sohPercent": 97.5 - n / 8, "n": n, "big": 2**60 + n, "t": "\u96fb"},
            None,
            at + timedelta(microseconds=n),
        )
        for n, pack in enumerate(packs)
    ]
    plan += [  # a second event on some: the chain goes on inside the batch
        ledger.NewEvent(
            packs[0].pk, E.TELEMETRY_SUMMARISED, {}, packs[0].version + 1, at
        ),
        ledger.NewEvent(packs[5].pk, E.HELD, {"reason": "Recall"}, None, at),
        ledger.NewEvent(packs[5].pk, E.RELEASED, {}, None, at),
    ]
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    seq = last or 0
    outbox = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    outbox = outbox or 0
    seen: dict = {}

    def singles_then_undo():
        with transaction.atomic():
            for new in plan:
                ledger.append(
                    passport=new.passport,
                    kind=new.kind,
                    data=new.data,
                    actor=boss,
                    expected_version=new.expected_version,
                    occurred_at=new.occurred_at,
                )
            seen["effects"] = _effects(packs, seq, outbox)
            raise _Undo

    with pytest.raises(_Undo):
        singles_then_undo()
    singles = seen["effects"]
    written = ledger.append_many(events=plan, actor=boss)
    batch = _effects(packs, seq, outbox)
    assert batch[0] == singles[0]  # same rows, times, prev_hash and hash
    assert batch[1] == singles[1]  # projections (head hashes included)
    assert batch[2] == singles[2]  # one audit record per event, same content
    assert len(batch[2]) == len(plan)
    assert batch[3] == singles[3]  # the same live events, in order
    assert batch[4] == singles[4]  # and topic rows
    assert [e.pk for e in written] == sorted(e.pk for e in written)
    assert [(e.passport_id, e.version) for e in written] == [
        (row.passport_id, row.version)
        for row in PassportEvent.objects.filter(pk__in=[e.pk for e in written])
        .order_by("pk")
        .only("passport_id", "version")
    ]
    assert all(not e._state.adding for e in written)
    assert ledger.verify(passport_ids=[p.pk for p in packs]).ok
    assert audit_chain_verify().ok


@pytest.mark.django_db
@pytest.mark.postgresql_only
def test_a_batch_is_the_same_statements_whatever_its_size(make_user):
    boss = make_user("supervisor")
    packs = [make_passport("pack", "warehoused") for _ in range(30)]

    def statements(pallet):
        with CaptureQueriesContext(connection) as queries:
            ledger.append_many(
                events=[
                    ledger.NewEvent(p.pk, E.TELEMETRY_SUMMARISED, {"n": 1})
                    for p in pallet
                ],
                actor=boss,
            )
        words = [q["sql"].split()[0] for q in queries.captured_queries]
        # The test's own transaction makes append_many's atomic a savepoint.
        return [w for w in words if w not in ("SAVEPOINT", "RELEASE")]

    small, large = statements(packs[:3]), statements(packs[3:])
    assert small == large
    # Lock, events + projections, the chain's try-lock and head, the audit
    # rows, the outbox (the read models' cache is Redis, not counted here).
    assert len(large) == 5


@pytest.mark.django_db
@pytest.mark.postgresql_only
def test_a_single_append_is_two_statements(make_user):
    """The row lock with the audit chain's try-lock and head, then the event
    and projection with the audit record and the outbox row (``OneTrip``);
    it was five (lock, event + projection, try-lock + head, audit, outbox)."""
    boss = make_user("supervisor")
    pack = make_passport("pack", "warehoused")
    with CaptureQueriesContext(connection) as queries:
        event = ledger.append(
            passport=pack.pk, kind=E.TELEMETRY_SUMMARISED, data={"n": 1}, actor=boss
        )
    words = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [w for w in words if w not in ("SAVEPOINT", "RELEASE")] == ["SELECT", "WITH"]
    assert event.pk is not None
    assert not event._state.adding
    assert ledger.verify(passport_ids=[pack.pk]).ok


@pytest.mark.django_db
@pytest.mark.postgresql_only
def test_a_version_clash_in_the_batch_statement_is_a_409_with_nothing_written(
    make_user,
):
    boss = make_user("supervisor")
    one, two = (make_passport("pack", "warehoused") for _ in range(2))
    one.refresh_from_db()
    # An event row the projection does not know of: the next version exists.
    PassportEvent.objects.bulk_create(
        [
            PassportEvent(
                passport=one,
                version=one.version + 1,
                kind=E.SERVICED,
                occurred_at=timezone.now(),
                data={},
                prev_hash=one.head_hash,
                hash="f" * 64,
            )
        ]
    )
    before = (
        PassportEvent.objects.count(),
        AuditRecord.objects.count(),
        OutboxEvent.objects.count(),
        list(Passport.objects.order_by("pk").values_list("version", "head_hash")),
    )
    with pytest.raises(Conflict) as clash, transaction.atomic():
        ledger.append_many(
            events=[
                ledger.NewEvent(two.pk, E.TELEMETRY_SUMMARISED, {"n": 1}),
                ledger.NewEvent(one.pk, E.TELEMETRY_SUMMARISED, {"n": 2}),
            ],
            actor=boss,
        )
    assert clash.value.code == "version_conflict"
    assert clash.value.status_code == 409
    assert (
        PassportEvent.objects.count(),
        AuditRecord.objects.count(),
        OutboxEvent.objects.count(),
        list(Passport.objects.order_by("pk").values_list("version", "head_hash")),
    ) == before
