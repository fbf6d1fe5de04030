"""The audit key rotates without breaking older records (bpmos/auditkeys.py).

Records, ledger events and anchors are written under key A, the key is rotated
to B (A retired), more are written: everything verifies, each row naming its
key. Remove A from the keyring and A's rows are reported unverifiable with A's
id (never passed, never a crash); tampering is still found under either key.
Tampering goes through raw SQL with the append-only triggers bypassed inside
the test's transaction, as in tests/test_audit_chain.py.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from bpmos import auditkeys
from bpmos.auditkeys import build, key_id_of, keyring
from elog import anchors, audit, chain_status
from elog.models import AuditRecord
from elog.services import audit_chain_verify
from passports import ledger
from passports.models import EventKind, PassportEvent
from tests import test_passport_ledger
from tests.factories_passports import make_passport, record
from tests.test_audit_chain import TABLE, trigger_bypassed

KEY_A = "plant-key-A-" + "a" * 50
KEY_B = "plant-key-B-" + "b" * 50
ID_A, ID_B = key_id_of(KEY_A), key_id_of(KEY_B)
T0 = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def use_keys(settings, current: str, *retired: str, current_id: str = "") -> None:
    settings.BPMOS_AUDIT_KEY = current
    settings.BPMOS_AUDIT_KEY_ID = current_id
    settings.BPMOS_AUDIT_RETIRED_KEYS = list(retired)


@pytest.fixture
def anchor_file(tmp_path, settings):
    path = tmp_path / "anchors" / "audit-anchors.jsonl"
    settings.BPMOS_AUDIT_ANCHOR_FILE = str(path)
    return path


# --- the keyring ------------------------------------------------------------------


def test_a_key_id_is_the_first_8_hex_digits_of_the_keys_sha256():
    assert hashlib.sha256(KEY_A.encode()).hexdigest()[:8] == ID_A
    ring = build(KEY_A)
    assert (ring.current_id, ring.current_key, ring.retired_ids) == (
        ID_A,
        KEY_A.encode(),
        [],
    )
    assert build(KEY_A, "plant-2026").current_id == "plant-2026"


def test_retired_keys_by_fingerprint_or_with_their_given_id():
    ring = build(KEY_B, "", [KEY_A, "plant-2024:some-older-key", KEY_B])
    assert ring.current_id == ID_B
    assert ring.retired_ids == [ID_A, "plant-2024"]
    assert ring.key("plant-2024") == b"some-older-key"
    assert ring.key(ID_A) == KEY_A.encode()
    assert ring.key("unknown1") is None
    assert ring.key(None) is None


@pytest.mark.parametrize(
    ("current", "current_id", "retired", "message"),
    [
        ("", "", [], "BPMOS_AUDIT_KEY is empty"),
        (KEY_A, "has space", [], "BPMOS_AUDIT_KEY_ID: an audit key id is 1 to 16"),
        (KEY_A, "x" * 17, [], "BPMOS_AUDIT_KEY_ID: an audit key id is 1 to 16"),
        (KEY_A, "k1", [f"k1:{KEY_B}"], "Audit key id 'k1' names two different keys"),
        (KEY_A, "", [""], "BPMOS_AUDIT_RETIRED_KEYS entry 1 is empty"),
    ],
)
def test_a_keyring_that_cannot_be_read_is_refused(
    current, current_id, retired, message
):
    with pytest.raises(ImproperlyConfigured) as refused:
        build(current, current_id, retired)
    assert str(refused.value).startswith(message)


_SCRIPT = """
import json, django
django.setup()
from bpmos.auditkeys import keyring
from django.conf import settings
ring = keyring()
print(json.dumps({"current": ring.current_id, "retired": ring.retired_ids,
                  "secret": settings.SECRET_KEY}))
"""


def _settings_keyring(data_dir: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BPMOS_", "PYTEST_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "bpmos.settings",
        "BPMOS_DATA_DIR": str(data_dir),
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=Path(django_settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_settings_embedded_default_and_retired_keys_from_the_environment(tmp_path):
    # The embedded default signs with its generated key, named by its fingerprint.
    done = _settings_keyring(tmp_path / "one")
    assert done.returncode == 0, done.stderr
    embedded = json.loads(done.stdout.splitlines()[-1])
    assert embedded["current"] == key_id_of(embedded["secret"])
    assert embedded["retired"] == []
    done = _settings_keyring(
        tmp_path / "two",
        BPMOS_AUDIT_KEY=KEY_B,
        BPMOS_AUDIT_KEY_ID="plant-2026",
        BPMOS_AUDIT_RETIRED_KEYS=f"{KEY_A},plant-2024:older-key",
    )
    assert done.returncode == 0, done.stderr
    given = json.loads(done.stdout.splitlines()[-1])
    assert (given["current"], given["retired"]) == ("plant-2026", [ID_A, "plant-2024"])
    # A keyring that cannot be read refuses to start.
    done = _settings_keyring(
        tmp_path / "three", BPMOS_AUDIT_KEY=KEY_B, BPMOS_AUDIT_KEY_ID="no spaces"
    )
    assert done.returncode != 0
    assert "BPMOS_AUDIT_KEY_ID: an audit key id is 1 to 16" in done.stderr


# --- the audit chain ----------------------------------------------------------------


@pytest.fixture
def rotated_chain(db, make_user, settings):
    """Records #1-#3 under key A, then the key rotated to B (A retired) and
    records #4-#5 under B (#5 through the hot path's ``record_quick``)."""
    admin = make_user("admin", username="ada")
    use_keys(settings, KEY_A)
    for step in range(3):
        audit.record(actor=admin, action="user.role_changed", after={"step": step})
    use_keys(settings, KEY_B, KEY_A)
    audit.record(actor=admin, action="user.role_changed", after={"step": 3})
    with transaction.atomic():
        audit.record_quick(actor=admin, action="reading.approved", after={"step": 4})
    return list(AuditRecord.objects.order_by("seq"))


def test_records_name_their_key_and_verify_across_a_rotation(rotated_chain):
    assert [r.key_id for r in rotated_chain] == [ID_A, ID_A, ID_A, ID_B, ID_B]
    assert audit_chain_verify().as_dict() == {
        "ok": True,
        "checked": 5,
        "head_seq": 5,
        "head_hash": rotated_chain[4].hash,
        "first_broken": None,
        "unverifiable": [],
    }


def test_a_retired_key_keeps_the_id_it_was_given(db, make_user, settings):
    use_keys(settings, KEY_A, current_id="plant-2025")
    first = audit.record(actor=make_user("admin"), action="user.registered")
    assert first.key_id == "plant-2025"
    use_keys(settings, KEY_B, f"plant-2025:{KEY_A}")
    audit.record(actor=None, action="system.checked")
    assert audit_chain_verify().ok is True
    use_keys(settings, KEY_B, KEY_A)  # the same key under its fingerprint: unknown id
    assert audit_chain_verify().first_broken.problem == "unverifiable"


def test_records_of_a_key_taken_out_of_the_keyring_are_unverifiable(
    rotated_chain, settings
):
    use_keys(settings, KEY_B)
    assert audit_chain_verify().as_dict() == {
        "ok": False,
        "checked": 5,
        "head_seq": 5,
        "head_hash": rotated_chain[4].hash,
        "first_broken": {
            "seq": 1,
            "id": rotated_chain[0].pk,
            "problem": "unverifiable",
            "message": (
                f"Record #1 is signed with audit key '{ID_A}', which the keyring "
                f"({ID_B}) does not hold: it cannot be verified. Unverifiable: 3 "
                f"records between #1 and #3 with key '{ID_A}'. Add the key to "
                "BPMOS_AUDIT_RETIRED_KEYS (docs/security.md)."
            ),
        },
        "unverifiable": [{"key_id": ID_A, "records": 3, "first_seq": 1, "last_seq": 3}],
    }


@pytest.mark.parametrize(("seq", "key"), [(2, "A"), (4, "B")])
def test_tampering_is_found_under_either_key(rotated_chain, seq, key):
    assert rotated_chain[seq - 1].key_id == {"A": ID_A, "B": ID_B}[key]
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET actor_role = 'operator' WHERE seq = %s", [seq]
        )
    result = audit_chain_verify()
    assert (result.ok, result.first_broken.seq, result.first_broken.problem) == (
        False,
        seq,
        "altered",
    )


def test_tampering_past_unverifiable_records_is_still_found(rotated_chain, settings):
    use_keys(settings, KEY_B)
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET target_repr = 'x' WHERE seq = 4")
    result = audit_chain_verify().as_dict()
    assert result["first_broken"] == {
        "seq": 4,
        "id": rotated_chain[3].pk,
        "problem": "altered",
        "message": "Record #4 does not match its hash: its content was altered.",
    }
    assert result["unverifiable"] == [
        {"key_id": ID_A, "records": 3, "first_seq": 1, "last_seq": 3}
    ]


def test_a_record_removed_among_unverifiable_ones_is_found(rotated_chain, settings):
    # Without the key a record's content cannot be checked, its place can.
    use_keys(settings, KEY_B)
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 2")
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.problem, broken.message) == (
        3,
        "removed",
        "Record #2 is missing before record #3.",
    )


def test_a_changed_key_id_is_found(rotated_chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET key_id = %s WHERE seq = 2", [ID_B])
        cursor.execute(f"UPDATE {TABLE} SET key_id = 'forged' WHERE seq = 5")
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.problem) == (2, "altered")
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET key_id = %s WHERE seq = 2", [ID_A])
    result = audit_chain_verify()
    assert (result.ok, result.first_broken.seq, result.first_broken.problem) == (
        False,
        5,
        "unverifiable",
    )
    assert [run.key_id for run in result.unverifiable] == ["forged"]


def test_the_trigger_still_refuses_to_update_a_key_id(rotated_chain):
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditRecord.objects.filter(seq=1).update(key_id=ID_B)
    assert AuditRecord.objects.get(seq=1).key_id == ID_A


def test_verify_audit_names_the_unverifiable_records(rotated_chain, settings):
    use_keys(settings, KEY_B)
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit", stdout=out, no_color=True)
    assert failed.value.returncode == 1
    assert out.getvalue().splitlines()[:2] == [
        f"Audit chain BROKEN at record #1 (id {rotated_chain[0].pk}): unverifiable.",
        f"Record #1 is signed with audit key '{ID_A}', which the keyring ({ID_B}) "
        f"does not hold: it cannot be verified. Unverifiable: 3 records between #1 "
        f"and #3 with key '{ID_A}'. Add the key to BPMOS_AUDIT_RETIRED_KEYS "
        "(docs/security.md).",
    ]


def test_the_stored_chain_state_shows_unverifiable(
    rotated_chain, settings, anchor_file
):
    use_keys(settings, KEY_B)
    status = chain_status.audit_chain_status_refresh()
    assert (status["ok"], status["firstBroken"]["seq"]) == (False, 1)
    assert status["firstBroken"]["problem"] == "unverifiable"


def test_the_auditors_attention_item_says_unverifiable(
    rotated_chain, settings, anchor_file
):
    from bpmos.dashboards import attention

    use_keys(settings, KEY_B)
    chain_status.audit_chain_status_refresh()
    (item,) = attention._chain("auditor", None, {})
    assert item.title.startswith(
        f"Audit chain unverifiable: Record #1 is signed with audit key '{ID_A}'"
    )
    assert item.severity == "Critical"


def test_an_append_costs_no_query_for_its_key(db, settings, django_assert_num_queries):
    use_keys(settings, KEY_B, KEY_A)
    keyring()  # the settings' keyring parsed once, as the first append would
    # PostgreSQL: savepoint, advisory lock, the chain's head, INSERT, release;
    # SQLite: the same without the lock.
    expected = 5 if connection.vendor == "postgresql" else 4
    with django_assert_num_queries(expected):
        audit.record(actor=None, action="system.checked")


# --- the passport ledgers ------------------------------------------------------------


@pytest.fixture
def rotated_ledgers(db, make_user, settings):
    """A pack warehoused under key A (4 events); after the rotation to B it is
    reserved (event 5) and a second pack is made (events under B only)."""
    use_keys(settings, KEY_A)
    actor = make_user("supervisor")
    first = make_passport("pack", "warehoused", actor=actor)
    use_keys(settings, KEY_B, KEY_A)
    first = record(first, EventKind.RESERVED, actor=actor)
    second = make_passport("pack", "qa_passed", actor=actor)
    return first, second


def events_of(passport) -> list[PassportEvent]:
    return list(PassportEvent.objects.filter(passport=passport).order_by("version"))


def test_ledger_events_name_their_key_and_verify_across_a_rotation(rotated_ledgers):
    first, second = rotated_ledgers
    assert [e.key_id for e in events_of(first)] == [ID_A] * 4 + [ID_B]
    assert [e.key_id for e in events_of(second)] == [ID_B, ID_B]
    assert ledger.verify().as_dict() == {
        "ok": True,
        "passportsChecked": 2,
        "eventsChecked": 7,
        "firstBroken": None,
        "unverifiable": [],
    }


def test_ledger_events_of_a_removed_key_are_unverifiable(rotated_ledgers, settings):
    first, _ = rotated_ledgers
    use_keys(settings, KEY_B)
    assert ledger.verify().as_dict() == {
        "ok": False,
        "passportsChecked": 2,
        "eventsChecked": 7,
        "firstBroken": {
            "passportId": str(first.pk),
            "serial": first.serial,
            "version": 1,
            "eventId": events_of(first)[0].pk,
            "problem": "unverifiable",
            "message": (
                f"Event 1 is signed with audit key '{ID_A}', which the keyring "
                f"({ID_B}) does not hold: it cannot be verified. Unverifiable: 4 "
                f"events of 1 passport with key '{ID_A}'. Add the key to "
                "BPMOS_AUDIT_RETIRED_KEYS (docs/security.md)."
            ),
        },
        "unverifiable": [{"keyId": ID_A, "events": 4, "passports": 1}],
    }


@pytest.mark.parametrize(("version", "key"), [(2, "A"), (5, "B")])
def test_ledger_tampering_is_found_under_either_key(rotated_ledgers, version, key):
    first, _ = rotated_ledgers
    event = events_of(first)[version - 1]
    assert event.key_id == {"A": ID_A, "B": ID_B}[key]
    with test_passport_ledger.trigger_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_passportevent SET actor_username = 'mallory' "
            "WHERE id = %s",
            [event.pk],
        )
    broken = ledger.verify().first_broken
    assert (broken.passport_id, broken.version, broken.problem) == (
        first.pk,
        version,
        "altered",
    )


def test_ledger_tampering_past_unverifiable_events_is_still_found(
    rotated_ledgers, settings
):
    first, _ = rotated_ledgers
    use_keys(settings, KEY_B)
    event = events_of(first)[4]
    with test_passport_ledger.trigger_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_passportevent SET actor_username = 'mallory' "
            "WHERE id = %s",
            [event.pk],
        )
    result = ledger.verify()
    assert (result.first_broken.version, result.first_broken.problem) == (
        5,
        "altered",
    )
    assert [run.as_dict() for run in result.unverifiable] == [
        {"keyId": ID_A, "events": 4, "passports": 1}
    ]


def test_verify_ledger_exits_1_on_unverifiable_events(rotated_ledgers, settings):
    use_keys(settings, KEY_B)
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_ledger", stdout=out, no_color=True)
    assert failed.value.returncode == 1
    assert "): unverifiable.\n" in out.getvalue()


# --- the anchors ---------------------------------------------------------------------


def _legacy_line(key: str, seq: int, head_hash: str, at: str) -> str:
    """An anchor as version 1 wrote it: no key id."""
    body = json.dumps(
        {"v": 1, "seq": seq, "hash": head_hash, "at": at},
        sort_keys=True,
        separators=(",", ":"),
    )
    sig = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"v": 1, "seq": seq, "hash": head_hash, "at": at, "sig": sig})


def test_anchors_written_under_a_retired_key_still_verify(
    db, make_user, settings, anchor_file
):
    admin = make_user("admin")
    use_keys(settings, KEY_A)
    audit.record(actor=admin, action="user.registered")
    audit.record(actor=admin, action="user.registered")
    under_a = anchors.audit_anchor_write(now=T0)
    assert under_a.key_id == ID_A
    use_keys(settings, KEY_B, KEY_A)
    assert anchors.anchors_read().anchors == [under_a]
    assert anchors.verify_against_anchors().ok is True
    audit.record(actor=admin, action="user.registered")
    under_b = anchors.audit_anchor_write(now=T0)
    assert [
        json.loads(line)["kid"] for line in anchor_file.read_text().splitlines()
    ] == [
        ID_A,
        ID_B,
    ]
    assert anchors.anchors_read().anchors == [under_a, under_b]
    # A taken out of the keyring: its anchor is unverifiable, named, not used.
    use_keys(settings, KEY_B)
    found = anchors.anchors_read()
    assert (found.anchors, found.bad_lines, found.unknown_keys) == (
        [under_b],
        [],
        {1: ID_A},
    )
    err = io.StringIO()
    with pytest.raises(CommandError):  # the chain's A records are unverifiable
        call_command("verify_audit", "--anchors", stdout=io.StringIO(), stderr=err)
    assert err.getvalue() == (
        f"{anchor_file}: line 1 is signed with audit key '{ID_A}', which the "
        "keyring does not hold: unverifiable, ignored.\n"
    )


def test_a_version_1_anchor_verifies_with_whichever_key_signed_it(
    db, make_user, settings, anchor_file
):
    use_keys(settings, KEY_A)
    head = audit.record(actor=make_user("admin"), action="user.registered")
    anchor_file.parent.mkdir(parents=True)
    anchor_file.write_text(
        _legacy_line(KEY_A, head.seq, head.hash, "2026-12-03T18:00:00Z") + "\n"
    )
    use_keys(settings, KEY_B, KEY_A)
    (legacy,) = anchors.anchors_read().anchors
    assert (legacy.seq, legacy.hash, legacy.key_id) == (head.seq, head.hash, ID_A)
    use_keys(settings, KEY_B)  # no key of the keyring signed it: not an anchor
    assert anchors.anchors_read().bad_lines == [1]


def test_an_anchor_naming_a_key_it_was_not_signed_with_is_refused(
    db, settings, anchor_file
):
    use_keys(settings, KEY_B, KEY_A)
    forged = {
        "v": 2,
        "seq": 3,
        "hash": "0" * 64,
        "at": "2026-12-03T18:00:00Z",
        "kid": ID_A,
        "sig": anchors._signature(3, "0" * 64, "2026-12-03T18:00:00Z", ID_A, b"guess"),
    }
    anchor_file.parent.mkdir(parents=True)
    anchor_file.write_text(json.dumps(forged) + "\n")
    found = anchors.anchors_read()
    assert (found.anchors, found.bad_lines, found.unknown_keys) == ([], [1], {})


# --- manage.py audit_keys ------------------------------------------------------------


def test_audit_keys_lists_the_keyring_and_checks_the_chains(
    rotated_chain, rotated_ledgers, settings, anchor_file
):
    use_keys(settings, KEY_B, KEY_A)
    anchors.audit_anchor_write(now=T0)
    records = {
        key_id: AuditRecord.objects.filter(key_id=key_id).count()
        for key_id in (ID_A, ID_B)
    }
    out = io.StringIO()
    call_command("audit_keys", "--check", stdout=out, no_color=True)
    assert out.getvalue().splitlines() == [
        "Audit keyring:",
        f"  current  {ID_B}",
        f"  retired  {ID_A}",
        f"audit anchors: {ID_B} 1",
        f"audit log: {min(records)} {records[min(records)]}, "
        f"{max(records)} {records[max(records)]}",
        f"passport ledgers: {min(ID_A, ID_B)} {4 if ID_A < ID_B else 3}, "
        f"{max(ID_A, ID_B)} {3 if ID_A < ID_B else 4}",
        "audit anchors: 1 anchors verified",
        f"audit log: intact, {sum(records.values())} records checked",
        "passport ledgers: intact, 2 passports, 7 events checked",
    ]
    use_keys(settings, KEY_B)
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("audit_keys", "--check", stdout=out, no_color=True)
    assert failed.value.returncode == 1
    assert f"{ID_A} {records[ID_A]} (NOT IN THE KEYRING)" in out.getvalue()
    assert "audit log: BROKEN at record #1 (unverifiable)" in out.getvalue()
    assert "passport ledgers: BROKEN at passport" in out.getvalue()


# --- the migration -------------------------------------------------------------------

BEFORE_KEY_IDS = [
    ("elog", "0005_log_search_indexes"),
    ("passports", "0007_trend_rollups"),
]


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_rows_the_key_in_use(make_user, settings):
    # Rows written before the key ids existed were signed with the key of the
    # time: the migration names the key in use when it runs. Here that key is
    # KEY_A under a given id, so the ids differ from what the rows held.
    use_keys(settings, KEY_A)
    make_passport("pack", "qa_passed", actor=make_user("supervisor"))
    latest = [
        ("elog", "0006_auditrecord_key_id"),
        ("passports", "0008_passportevent_key_id"),
    ]
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_KEY_IDS)
    try:
        use_keys(settings, KEY_A, current_id="plant-2025")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
    audited = set(AuditRecord.objects.values_list("key_id", flat=True))
    events = set(PassportEvent.objects.values_list("key_id", flat=True))
    assert (audited, events) == ({"plant-2025"}, {"plant-2025"})
    assert audit_chain_verify().ok is True
    assert ledger.verify().ok is True
    # The append-only triggers survived (SQLite rebuilds the tables).
    for table in (TABLE, "passports_passportevent"):
        with (
            pytest.raises(IntegrityError),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"UPDATE {table} SET key_id = 'x'")
    assert auditkeys.keyring().current_id == "plant-2025"
