"""The passport ledger: append-only in the database, hash-chained, and every
tampering through raw SQL named by ``ledger.verify`` as the first broken link.

Tampering bypasses the append-only trigger inside the test's transaction (rolled
back afterwards) the way tests/test_audit_chain.py does for the audit log: on
PostgreSQL with ``session_replication_role = replica``, on SQLite by dropping
the triggers.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from bpmos.errors import Conflict
from elog.models import AuditRecord
from passports import ledger, lifecycle
from passports.models import EventKind, Passport, PassportEvent
from tests.factories_passports import footprint, make_passport, record

TABLE = "passports_passportevent"
COLUMNS = (
    "passport_id, version, kind, occurred_at, actor_id, actor_username, data, "
    "prev_hash, hash, key_id"
)
FORGED_HASH = "f" * 64
E = EventKind


@pytest.fixture
def packs(db, make_user):
    """Three packs; the middle one (the one tampered with) has seven events:
    manufactured, qa_passed, provisioned, warehoused, held, released, reserved."""
    supervisor = make_user("supervisor", username="sam")
    first = make_passport("pack", "qa_passed", actor=supervisor)
    middle = make_passport("pack", "warehoused", actor=supervisor, on_hold=True)
    middle = record(middle, E.RELEASED, actor=supervisor)
    middle = record(middle, E.RESERVED, actor=supervisor)
    last = make_passport("pack", "dispatched", actor=supervisor)
    assert middle.version == 7
    return first, middle, last


def chain_of(passport: Passport) -> list[PassportEvent]:
    return list(PassportEvent.objects.filter(passport=passport).order_by("version"))


@contextlib.contextmanager
def trigger_bypassed():
    """A cursor that can UPDATE and DELETE ledger rows until the test rolls back."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
            yield cursor
            cursor.execute("SET LOCAL session_replication_role = origin")
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name = %s",
                [TABLE],
            )
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            yield cursor
            for _, sql in triggers:
                cursor.execute(sql)


def first_broken(**kwargs) -> dict | None:
    result = ledger.verify(**kwargs)
    assert result.ok is (result.first_broken is None)
    return result.first_broken.as_dict() if result.first_broken else None


def link(passport, version, event_id, problem, message) -> dict:
    return {
        "passportId": str(passport.pk),
        "serial": passport.serial,
        "version": version,
        "eventId": event_id,
        "problem": problem,
        "message": message,
    }


# --- an intact ledger -------------------------------------------------------------


def test_events_form_a_chain_per_passport(packs):
    for passport in packs:
        chain = chain_of(passport)
        assert [e.version for e in chain] == list(range(1, len(chain) + 1))
        assert chain[0].prev_hash == ledger.GENESIS_HASH
        assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]
        passport.refresh_from_db()
        assert passport.head_hash == chain[-1].hash
        assert lifecycle.replay(
            passport.kind, ((e.kind, e.data) for e in chain)
        ) == ledger.snapshot_of(passport)


def test_intact_ledgers_verify(packs):
    result = ledger.verify()
    assert result.as_dict() == {
        "ok": True,
        "passportsChecked": 3,
        "eventsChecked": 2 + 7 + 6,
        "firstBroken": None,
        "unverifiable": [],
    }
    assert (
        ledger.verify(passport_ids=[packs[1].pk], batch=1).as_dict()["eventsChecked"]
        == 7
    )


def test_each_event_is_audited_with_before_and_after(packs):
    _, middle, _ = packs
    audit = AuditRecord.objects.filter(
        target_type="passports.passport", target_id=str(middle.pk)
    ).order_by("seq")
    assert [a.action for a in audit] == [
        "passport.manufactured",
        "passport.qa_passed",
        "passport.provisioned",
        "passport.warehoused",
        "passport.held",
        "passport.released",
        "passport.reserved",
    ]
    reserved = audit.last()
    assert reserved.actor_username == "sam"
    assert reserved.before == {
        "state": "warehoused",
        "onHold": False,
        "custodian": {"kind": "manufacturer", "name": "BPM Energy"},
        "version": 6,
    }
    assert reserved.after == {
        "state": "reserved",
        "onHold": False,
        "custodian": {"kind": "manufacturer", "name": "BPM Energy"},
        "version": 7,
        "event": {"kind": "reserved", "data": {"reference": "SO-1001"}},
    }


def test_stale_expected_version_is_refused_and_writes_nothing(packs):
    _, middle, _ = packs
    before = footprint(middle)
    with pytest.raises(Conflict) as caught:
        ledger.append(
            passport=middle.pk,
            kind=E.TELEMETRY_SUMMARISED,
            data={"soh": 99},
            actor=None,
            expected_version=6,
        )
    assert (caught.value.code, caught.value.status_code) == ("version_conflict", 409)
    assert caught.value.details == {"expected": 6, "actual": 7}
    assert footprint(middle) == before
    event = ledger.append(
        passport=middle.pk,
        kind=E.TELEMETRY_SUMMARISED,
        data={"soh": 99},
        actor=None,
        expected_version=7,
    )
    assert (event.version, event.prev_hash) == (8, chain_of(middle)[6].hash)


def test_data_is_hashed_as_stored_whatever_its_numbers(packs):
    _, middle, _ = packs
    ledger.append(
        passport=middle.pk,
        kind=E.TELEMETRY_SUMMARISED,
        data={
            "big": 1e20,
            "huge": 2**60,
            "tenth": 0.1,
            "nested": [1.0, {"x": -2.5e16}],
        },
        actor=None,
    )
    assert ledger.verify().ok is True


# --- the database refuses UPDATE and DELETE ---------------------------------------


def refusal(operation: str, event_id: int) -> str:
    if connection.vendor == "postgresql":
        return (
            f"{TABLE} is append-only: {operation} of ledger event #{event_id} refused"
        )
    return f"{TABLE} is append-only: {operation} of a ledger event refused"


def test_trigger_refuses_raw_update_and_delete(packs):
    _, middle, _ = packs
    event = chain_of(middle)[2]
    for statement, operation in (
        (f"UPDATE {TABLE} SET kind = 'recycled' WHERE id = %s", "UPDATE"),
        (f"DELETE FROM {TABLE} WHERE id = %s", "DELETE"),
    ):
        with (
            pytest.raises(IntegrityError) as refused,
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
        assert str(refused.value).splitlines()[0] == refusal(operation, event.pk)
    assert chain_of(middle)[2].kind == E.PROVISIONED
    assert ledger.verify().ok is True


def test_trigger_refuses_orm_update_and_delete(packs):
    _, middle, _ = packs
    with pytest.raises(IntegrityError), transaction.atomic():
        PassportEvent.objects.filter(passport=middle).update(data={})
    with pytest.raises(IntegrityError), transaction.atomic():
        PassportEvent.objects.filter(passport=middle, version=7).delete()
    assert len(chain_of(middle)) == 7
    assert ledger.verify().ok is True


# --- tampering, each named as the first broken link ---------------------------------


def test_altered_data_is_named(packs):
    _, middle, _ = packs
    event = chain_of(middle)[3]
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET data = %s WHERE id = %s",
            ['{"location": "somewhere else"}', event.pk],
        )
    assert first_broken() == link(
        middle, 4, event.pk, "altered", "Event 4 was altered."
    )
    result = ledger.verify()
    assert (result.passports, result.events) == (2, 2 + 7)


def test_altered_kind_is_named(packs):
    _, middle, _ = packs
    event = chain_of(middle)[4]
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET kind = 'telemetry_summarised' WHERE id = %s",
            [event.pk],
        )
    assert first_broken() == link(
        middle, 5, event.pk, "altered", "Event 5 was altered."
    )


def test_altered_actor_is_named(packs):
    _, middle, _ = packs
    event = chain_of(middle)[1]
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET actor_username = 'nobody' WHERE id = %s", [event.pk]
        )
    assert first_broken() == link(
        middle, 2, event.pk, "altered", "Event 2 was altered."
    )


def test_altered_time_is_named(packs):
    _, middle, _ = packs
    event = chain_of(middle)[0]
    moved = (
        "2020-01-01 00:00:00+00:00"
        if connection.vendor == "postgresql"
        else "2020-01-01 00:00:00"
    )
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET occurred_at = %s WHERE id = %s", [moved, event.pk]
        )
    assert first_broken() == link(
        middle, 1, event.pk, "altered", "Event 1 was altered."
    )


def test_altered_newest_event_is_named(packs):
    _, middle, _ = packs
    event = chain_of(middle)[6]
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET data = '{{}}' WHERE id = %s", [event.pk])
    assert first_broken() == link(
        middle,
        7,
        event.pk,
        "altered",
        "Event 7, the newest, does not match its hash: it was altered, or forged "
        "and appended.",
    )


def test_deleted_event_is_named_at_the_gap(packs):
    _, middle, _ = packs
    chain = chain_of(middle)
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [chain[2].pk])
    assert first_broken() == link(
        middle,
        3,
        chain[3].pk,
        "removed",
        "Event 3 is missing before event 4.",
    )


def test_deleted_first_event_is_named(packs):
    _, middle, _ = packs
    chain = chain_of(middle)
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [chain[0].pk])
    assert first_broken() == link(
        middle, 1, chain[1].pk, "removed", "Event 1 is missing before event 2."
    )


def test_deleted_newest_event_is_named_against_the_passport_head(packs):
    _, middle, _ = packs
    chain = chain_of(middle)
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [chain[6].pk])
    assert first_broken() == link(
        middle,
        7,
        None,
        "removed",
        "Event 7 is missing: the ledger ends at event 6 but the passport says 7 "
        "events, the last with another hash.",
    )


def test_deleted_whole_ledger_is_named(packs):
    first, _, _ = packs
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE passport_id = %s", [first.pk])
    broken = first_broken()
    assert (broken["passportId"], broken["version"], broken["problem"]) == (
        str(first.pk),
        1,
        "removed",
    )


def insert_forged(cursor, *, passport, copy_of: int, version: int, link_to_copy=True):
    """INSERT event ``copy_of`` of ``passport`` again at ``version`` with a made-up
    hash, linked to the copied event (or to what the copy linked to)."""
    prev = "hash" if link_to_copy else "prev_hash"
    cursor.execute(
        f"INSERT INTO {TABLE} ({COLUMNS}) "
        f"SELECT passport_id, %s, 'qa_passed', occurred_at, actor_id, actor_username, "
        f"data, {prev}, %s, key_id FROM {TABLE} "
        "WHERE passport_id = %s AND version = %s",
        [version, FORGED_HASH, passport.pk, copy_of],
    )
    return PassportEvent.objects.get(hash=FORGED_HASH).pk


def test_inserted_event_is_named(packs):
    # (passport, version) is unique, so a forger makes room by renumbering
    # events 3..7 to 4..8 and puts an event linking to event 2 at 3; the real
    # event 3 (now 4) still links to event 2.
    _, middle, _ = packs
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET version = version + 100 "
            "WHERE passport_id = %s AND version >= 3",
            [middle.pk],
        )
        cursor.execute(
            f"UPDATE {TABLE} SET version = version - 99 "
            "WHERE passport_id = %s AND version >= 100",
            [middle.pk],
        )
        forged = insert_forged(cursor, passport=middle, copy_of=2, version=3)
    assert first_broken() == link(
        middle,
        3,
        forged,
        "inserted",
        "Event 3 does not match its hash and event 4 links past it to event 2: "
        "it was inserted.",
    )


def test_inserted_event_before_the_first_is_named(packs):
    _, middle, _ = packs
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET version = version + 100 WHERE passport_id = %s",
            [middle.pk],
        )
        cursor.execute(
            f"UPDATE {TABLE} SET version = version - 99 WHERE passport_id = %s",
            [middle.pk],
        )
        forged = insert_forged(
            cursor, passport=middle, copy_of=2, version=1, link_to_copy=False
        )
    broken = first_broken()
    assert (broken["version"], broken["eventId"], broken["problem"]) == (
        1,
        forged,
        "inserted",
    )
    assert broken["message"] == (
        "Event 1 does not match its hash and event 2 links past it to the start "
        "of the ledger: it was inserted."
    )


def test_forged_event_appended_needs_no_bypass_and_is_named(packs):
    _, middle, _ = packs
    with connection.cursor() as cursor:  # INSERT is allowed: the ledger appends
        forged = insert_forged(cursor, passport=middle, copy_of=7, version=8)
    broken = first_broken()
    assert (broken["version"], broken["eventId"], broken["problem"]) == (
        8,
        forged,
        "altered",
    )


def test_event_copied_from_another_passport_is_named(packs):
    # A genuine event of another pack does not belong here: its hash names
    # that pack's UUID.
    first, middle, _ = packs
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} ({COLUMNS}) SELECT %s, 8, kind, occurred_at, "
            f"actor_id, actor_username, data, prev_hash, hash, key_id FROM {TABLE} "
            "WHERE passport_id = %s AND version = 2",
            [middle.pk, first.pk],
        )
    broken = first_broken()
    assert (broken["passportId"], broken["version"], broken["problem"]) == (
        str(middle.pk),
        8,
        "altered",
    )


def test_reordered_versions_are_named(packs):
    _, middle, _ = packs
    chain = chain_of(middle)
    with trigger_bypassed() as cursor:
        for event_id, version in (
            (chain[4].pk, 100),
            (chain[5].pk, 5),
            (chain[4].pk, 6),
        ):
            cursor.execute(
                f"UPDATE {TABLE} SET version = %s WHERE id = %s", [version, event_id]
            )
    # Event 6 (released) now sits at 5, linking to the event now at 6.
    assert first_broken() == link(
        middle,
        5,
        chain[5].pk,
        "reordered",
        "Event 5 links to event 6 after it: the events were renumbered out of order.",
    )


def test_rotated_versions_are_named(packs):
    # Events 3, 4, 5 renumbered 5, 3, 4: event 4 now first, linking to 3 (now 5).
    _, middle, _ = packs
    chain = chain_of(middle)
    with trigger_bypassed() as cursor:
        for event_id, version in (
            (chain[2].pk, 100),
            (chain[3].pk, 3),
            (chain[4].pk, 4),
            (chain[2].pk, 5),
        ):
            cursor.execute(
                f"UPDATE {TABLE} SET version = %s WHERE id = %s", [version, event_id]
            )
    broken = first_broken()
    assert (broken["version"], broken["eventId"], broken["problem"]) == (
        3,
        chain[3].pk,
        "reordered",
    )
    assert broken["message"] == (
        "Event 3 links to event 5 after it: the events were renumbered out of order."
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("state", "warehoused"),
        ("on_hold", True),
        ("custodian_kind", "customer"),
        ("custodian_name", "Someone Else"),
    ],
)
def test_projection_tampering_is_named(packs, column, value):
    _, middle, _ = packs
    Passport.objects.filter(pk=middle.pk).update(**{column: value})
    assert first_broken() == link(
        middle,
        7,
        chain_of(middle)[6].pk,
        "projection",
        "The passport's state or custodian differs from what its ledger says.",
    )


def test_projection_version_tampering_is_named(packs):
    _, middle, _ = packs
    last = chain_of(middle)[6]
    for version in (9, 5):
        Passport.objects.filter(pk=middle.pk).update(version=version)
        assert first_broken() == link(
            middle,
            7,
            last.pk,
            "projection",
            f"The passport says {version} events; its ledger holds 7, ending at "
            "the head hash it records.",
        )


def test_projection_head_hash_tampering_is_named(packs):
    _, middle, _ = packs
    Passport.objects.filter(pk=middle.pk).update(head_hash="a" * 64)
    broken = first_broken()
    assert (broken["version"], broken["problem"]) == (7, "projection")


def test_only_the_first_break_is_reported(packs):
    first, middle, last = packs
    Passport.objects.filter(pk=last.pk).update(state="recycled")
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE passport_id = %s AND version = 5", [middle.pk]
        )
    assert (first_broken()["passportId"], first_broken()["version"]) == (
        str(middle.pk),
        5,
    )
    assert ledger.verify(passport_ids=[first.pk]).ok is True
    broken = ledger.verify(passport_ids=[last.pk], batch=1).first_broken
    assert (broken.passport_id, broken.problem) == (last.pk, "projection")


# --- altered, one hashed field at a time ------------------------------------------
# The fields are written here, not read from ledger.HASHED_FIELDS: a field dropped
# from the hash there leaves its alteration here unnoticed, and its test fails.
# Each alters the middle pack's event 4 (warehoused) in place, except the two a
# change of which shows as something else unless the hash covers them.


def _moved_a_second(cursor, event, chain):
    moved = connection.ops.adapt_datetimefield_value(
        event.occurred_at + timedelta(seconds=1)
    )
    cursor.execute(
        f"UPDATE {TABLE} SET occurred_at = %s WHERE id = %s", [moved, event.pk]
    )


def _set(column, value):
    def alter(cursor, event, chain):
        cursor.execute(
            f"UPDATE {TABLE} SET {column} = %s WHERE id = %s", [value, event.pk]
        )

    return alter


def _swapped_with_the_next(cursor, event, chain):
    following = chain[event.version]
    cursor.execute(f"UPDATE {TABLE} SET version = 100 WHERE id = %s", [event.pk])
    cursor.execute(
        f"UPDATE {TABLE} SET version = %s WHERE id = %s", [event.version, following.pk]
    )
    cursor.execute(
        f"UPDATE {TABLE} SET version = %s WHERE id = %s", [following.version, event.pk]
    )


def _passport_renamed(cursor, event, chain):
    # The hash names the passport by its UUID: a ledger moved to (or shown as)
    # another identity no longer verifies, from its first event on.
    Passport.objects.filter(pk=event.passport_id).update(uuid=uuid.uuid4())


# field -> (how it is altered, the version named broken, the problem, the message)
ALTERED_FIELDS = {
    "kind": (_set("kind", "serviced"), 4, "altered", "Event 4 was altered."),
    "occurred_at": (_moved_a_second, 4, "altered", "Event 4 was altered."),
    "actor_username": (
        _set("actor_username", "mallory"),
        4,
        "altered",
        "Event 4 was altered.",
    ),
    "data": (
        _set("data", '{"location": "somewhere else"}'),
        4,
        "altered",
        "Event 4 was altered.",
    ),
    "prev_hash": (
        lambda cursor, event, chain: _set("prev_hash", chain[0].hash)(
            cursor, event, chain
        ),
        4,
        "altered",
        "Event 4 was altered.",
    ),
    "version": (
        _swapped_with_the_next,
        4,
        "reordered",
        "Event 4 links to event 5 after it: the events were renumbered out of order.",
    ),
    "passport": (_passport_renamed, 1, "altered", "Event 1 was altered."),
}


def test_every_stored_column_but_three_is_covered_here():
    # Not hashed: the row id, the hash itself, and actor_id (the user row); the
    # actor's username is hashed here and the audit record of the same event
    # hashes actor_id, so a swapped actor_id is caught by the audit chain only.
    # Nor key_id, the key that made the hash (tests/test_audit_keys.py).
    columns = {field.column for field in PassportEvent._meta.concrete_fields}
    assert columns - {"id", "hash", "actor_id", "key_id"} == {
        "passport_id" if field == "passport" else field for field in ALTERED_FIELDS
    }


@pytest.mark.parametrize("field", sorted(ALTERED_FIELDS))
def test_each_hashed_field_altered_names_its_event(packs, field):
    _, middle, _ = packs
    chain = chain_of(middle)
    alter, version, problem, message = ALTERED_FIELDS[field]
    with trigger_bypassed() as cursor:
        alter(cursor, chain[3], chain)
    named = next(e for e in chain_of(middle) if e.version == version)
    assert first_broken() == link(middle, version, named.pk, problem, message)


# --- manage.py verify_ledger ---------------------------------------------------------


def test_command_reports_intact_ledgers(packs):
    out = io.StringIO()
    call_command("verify_ledger", stdout=out, no_color=True)
    assert out.getvalue() == "Ledger intact: 3 passports, 15 events checked.\n"


def test_command_fails_with_exit_code_1_and_names_the_break(packs):
    _, middle, _ = packs
    chain = chain_of(middle)
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [chain[2].pk])
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_ledger", stdout=out, no_color=True)
    assert failed.value.returncode == 1
    assert out.getvalue() == (
        f"Ledger BROKEN: passport {middle.serial} (id {middle.pk}), event 3 "
        f"(id {chain[3].pk}): removed.\n"
        "Event 3 is missing before event 4.\n"
        "2 passports, 8 events checked.\n"
    )


def test_command_prints_json_and_checks_one_passport(packs):
    first, middle, _ = packs
    Passport.objects.filter(pk=middle.pk).update(state="qa_failed")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_ledger", "--json", "--batch-size", "1", stdout=out)
    assert json.loads(out.getvalue()) == ledger.verify().as_dict()
    assert json.loads(out.getvalue())["firstBroken"]["problem"] == "projection"
    out = io.StringIO()
    call_command(
        "verify_ledger", "--passport", first.bpan.lower(), "--json", stdout=out
    )
    assert json.loads(out.getvalue()) == {
        "ok": True,
        "passportsChecked": 1,
        "eventsChecked": 2,
        "firstBroken": None,
        "unverifiable": [],
    }


def test_command_refuses_an_unknown_passport(packs):
    with pytest.raises(CommandError) as failed:
        call_command("verify_ledger", "--passport", "NOPE-1")
    assert (str(failed.value), failed.value.returncode) == (
        "No passport has this identifier.",
        2,
    )


@pytest.mark.django_db(transaction=True)
def test_command_process_exit_status():
    # What cron or a monitoring probe sees: SystemExit(1) when broken, none when ok.
    pack = make_passport("pack", "qa_passed")
    execute_from_command_line(["manage.py", "verify_ledger"])
    with connection.cursor() as cursor:
        insert_forged(cursor, passport=pack, copy_of=2, version=3)
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "verify_ledger"])
    assert exited.value.code == 1
