"""The audit chain: append-only in the database, and every tampering detected.

Tampering goes through raw SQL with the append-only trigger bypassed inside the
test's transaction (rolled back afterwards): on PostgreSQL with
``session_replication_role = replica``, which is what a DBA would use; on SQLite
by dropping the triggers, the only bypass SQLite has.
"""

import contextlib
import io
import json

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from bpmos import context
from bpmos.errors import InvalidInput
from elog import audit
from elog.audit import GENESIS_HASH
from elog.models import AuditRecord
from elog.services import audit_chain_verify

TABLE = "elog_auditrecord"
COLUMNS = (
    "seq, occurred_at, actor_id, actor_username, actor_role, action, target_type, "
    "target_id, target_repr, before, after, request_id, client_address, source, "
    "prev_hash, hash, key_id"
)
FORGED_HASH = "f" * 64


@pytest.fixture
def chain(db, make_user):
    """Five genuine records (seq 1..5), as services write them."""
    admin = make_user("admin", username="ada")
    operator = make_user("operator", username="olga")
    for number in range(1, 6):
        audit.record(
            actor=admin,
            action="user.role_changed",
            target=operator,
            before={"role": "operator", "step": number},
            after={"role": "planner", "step": number},
        )
    return list(AuditRecord.objects.order_by("seq"))


@contextlib.contextmanager
def trigger_bypassed():
    """A cursor that can UPDATE and DELETE audit rows until the test rolls back."""
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


def insert_forged(cursor, *, copy_of: int, seq: int, link_to_copy: bool = True):
    """INSERT a forged record: #copy_of with another seq, action and a fake hash.

    Its prev_hash is the hash of #copy_of (``link_to_copy``) or #copy_of's own
    prev_hash; it returns the new row's id.
    """
    prev_hash = "hash" if link_to_copy else "prev_hash"
    cursor.execute(
        f"INSERT INTO {TABLE} ({COLUMNS}) "
        f"SELECT %s, occurred_at, actor_id, actor_username, actor_role, "
        f"'user.registered', target_type, target_id, target_repr, before, after, "
        f"request_id, client_address, source, {prev_hash}, %s, key_id "
        f"FROM {TABLE} WHERE seq = %s",
        [seq, FORGED_HASH, copy_of],
    )
    return AuditRecord.objects.get(hash=FORGED_HASH).pk


def verify_dict(**kwargs) -> dict:
    return audit_chain_verify(**kwargs).as_dict()


# --- an intact chain ------------------------------------------------------------------


def test_records_form_a_chain_from_genesis(chain):
    assert [record.seq for record in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == GENESIS_HASH
    assert [record.prev_hash for record in chain[1:]] == [
        record.hash for record in chain[:-1]
    ]


def test_intact_chain_verifies_and_reports_its_head(chain):
    assert verify_dict() == {
        "ok": True,
        "checked": 5,
        "head_seq": 5,
        "head_hash": chain[4].hash,
        "first_broken": None,
        "unverifiable": [],
    }


def test_empty_log_verifies(db):
    assert verify_dict() == {
        "ok": True,
        "checked": 0,
        "head_seq": None,
        "head_hash": None,
        "first_broken": None,
        "unverifiable": [],
    }


def test_ipv6_client_address_is_hashed_as_stored(db):
    token = context.bind(
        context.RequestContext(
            request_id="r-6", client_address="2001:DB8:0:0:0:0:0:1", source="api"
        )
    )
    try:
        record = audit.record(actor=None, action="system.checked")
    finally:
        context.reset(token)
    record.refresh_from_db()
    assert record.client_address == "2001:db8::1"
    assert audit_chain_verify().ok is True


# --- the database refuses UPDATE and DELETE -------------------------------------------


def refusal(operation: str, seq: int) -> str:
    if connection.vendor == "postgresql":
        return f"{TABLE} is append-only: {operation} of audit record #{seq} refused"
    return f"{TABLE} is append-only: {operation} of an audit record refused"


def test_trigger_refuses_update_through_raw_sql(chain):
    with (
        pytest.raises(IntegrityError) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE {TABLE} SET action = 'user.nothing' WHERE seq = 2")
    assert str(refused.value).splitlines()[0] == refusal("UPDATE", 2)
    assert AuditRecord.objects.get(seq=2).action == "user.role_changed"
    assert audit_chain_verify().ok is True


def test_trigger_refuses_delete_through_raw_sql(chain):
    with (
        pytest.raises(IntegrityError) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 2")
    assert str(refused.value).splitlines()[0] == refusal("DELETE", 2)
    assert AuditRecord.objects.count() == 5
    assert AuditRecord.objects.get(seq=2).hash == chain[1].hash


def test_trigger_refuses_orm_update_and_delete(chain):
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditRecord.objects.filter(seq=3).update(target_repr="someone else")
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditRecord.objects.filter(seq=3).delete()
    assert AuditRecord.objects.get(seq=3).target_repr == chain[2].target_repr
    assert AuditRecord.objects.count() == 5


# --- altered --------------------------------------------------------------------------


def test_altered_content_is_named(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET actor_role = 'operator' WHERE seq = 3")
    assert verify_dict() == {
        "ok": False,
        "checked": 3,
        "head_seq": 5,
        "head_hash": chain[4].hash,
        "first_broken": {
            "seq": 3,
            "id": chain[2].pk,
            "problem": "altered",
            "message": "Record #3 does not match its hash: its content was altered.",
        },
        "unverifiable": [],
    }


def test_altered_json_snapshot_is_named(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET after = %s WHERE seq = 2",
            ['{"role": "admin", "step": 2}'],
        )
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.problem) == (2, "altered")


def test_altered_content_with_a_made_up_hash_is_named(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET target_repr = 'x', hash = %s WHERE seq = 4",
            [FORGED_HASH],
        )
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.id, broken.problem) == (4, chain[3].pk, "altered")


def test_renumbered_record_is_altered(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET seq = 9 WHERE seq = 5")
        cursor.execute(f"UPDATE {TABLE} SET seq = 5 WHERE seq = 4")
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.id, broken.problem) == (5, chain[3].pk, "altered")


def test_altered_newest_record_is_named(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET action = 'user.nothing' WHERE seq = 5")
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.id, broken.problem) == (5, chain[4].pk, "altered")
    assert broken.message == (
        "Record #5, the newest, does not match its hash: it was altered, or forged "
        "and appended (with no record after it, the two cannot be told apart)."
    )


# --- altered, one hashed field at a time ---------------------------------------------
# Written here, not read from audit.HASHED_FIELDS: a field dropped from the hash
# there leaves its alteration here unnoticed, and the test for it fails.
MOMENT = "2020-01-01 00:00:00"

# field -> the SQL expression that alters it in record #3 (parameters: the record)
ALTERED_IN_PLACE = {
    "occurred_at": "%(moment)s",
    "actor_id": "%(other_user)s",
    "actor_username": "'mallory'",
    "actor_role": "'operator'",
    "action": "'user.registered'",
    "target_type": "'accounts.group'",
    "target_id": "'424242'",
    "target_repr": "'someone else'",
    "before": "%(before)s",
    "after": "%(after)s",
    "request_id": "'r-forged'",
    "client_address": "'10.9.9.9'",
    "source": "'admin'",
    "prev_hash": "%(prev_hash)s",
}


def test_every_stored_column_but_the_hash_is_covered_here():
    # key_id is not hashed (it names the key that made the hash); its
    # alteration is tested in tests/test_audit_keys.py.
    columns = {field.column for field in AuditRecord._meta.concrete_fields}
    assert columns - {"id", "hash", "key_id"} == {"seq", *ALTERED_IN_PLACE}


@pytest.mark.parametrize("field", sorted(ALTERED_IN_PLACE))
def test_each_hashed_field_altered_names_its_record(chain, field):
    params = {
        "moment": MOMENT + ("+00:00" if connection.vendor == "postgresql" else ""),
        "other_user": chain[2].target_id,  # the operator; the actor was the admin
        "before": '{"role": "operator", "step": 33}',
        "after": '{"role": "admin", "step": 3}',
        "prev_hash": chain[0].hash,  # a real hash, of another record
    }
    with trigger_bypassed() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET {field} = {ALTERED_IN_PLACE[field]} WHERE seq = 3",
            params,
        )
    altered = AuditRecord.objects.get(seq=3)
    assert getattr(altered, field) != getattr(chain[2], field)  # it did change
    assert verify_dict()["first_broken"] == {
        "seq": 3,
        "id": chain[2].pk,
        "problem": "altered",
        "message": "Record #3 does not match its hash: its content was altered.",
    }


def test_seq_altered_names_its_record(chain):
    # seq is hashed too. In the middle a changed seq shows as a gap anyway; on
    # the newest record (#5 renumbered #6) only its hash tells it from a chain
    # whose #5 was removed.
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET seq = 6 WHERE seq = 5")
    assert verify_dict()["first_broken"] == {
        "seq": 6,
        "id": chain[4].pk,
        "problem": "altered",
        "message": "Record #6, the newest, does not match its hash: it was altered, "
        "or forged and appended (with no record after it, the two cannot be told "
        "apart).",
    }


# --- removed --------------------------------------------------------------------------


def test_removed_record_is_named_at_the_gap(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 3")
    assert verify_dict() == {
        "ok": False,
        "checked": 3,
        "head_seq": 5,
        "head_hash": chain[4].hash,
        "first_broken": {
            "seq": 4,
            "id": chain[3].pk,
            "problem": "removed",
            "message": "Record #3 is missing before record #4.",
        },
        "unverifiable": [],
    }


def test_removed_run_of_records_is_named(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq IN (2, 3)")
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.id, broken.problem, broken.message) == (
        4,
        chain[3].pk,
        "removed",
        "Records #2 to #3 are missing before record #4.",
    )


def test_removed_first_record_is_named(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 1")
    result = audit_chain_verify()
    assert (result.checked, result.first_broken.seq, result.first_broken.problem) == (
        1,
        2,
        "removed",
    )


def test_removed_newest_records_need_the_external_anchor(chain):
    anchor = {"anchor_seq": 5, "anchor_hash": chain[4].hash}
    assert audit_chain_verify(**anchor).ok is True
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq >= 4")
    alone = audit_chain_verify()
    assert (alone.ok, alone.head_seq, alone.head_hash) == (True, 3, chain[2].hash)
    assert verify_dict(**anchor) == {
        "ok": False,
        "checked": 3,
        "head_seq": 3,
        "head_hash": chain[2].hash,
        "first_broken": {
            "seq": 4,
            "id": None,
            "problem": "removed",
            "message": (
                "Records #4 to #5 are missing: the chain ends at #3 but the external "
                "anchor names #5; the newest records were removed."
            ),
        },
        "unverifiable": [],
    }


def test_anchor_with_another_hash_is_reported(chain):
    broken = audit_chain_verify(anchor_seq=2, anchor_hash="a" * 64).first_broken
    assert (broken.seq, broken.id, broken.problem) == (2, chain[1].pk, "altered")


def test_anchor_needs_both_parts(db):
    with pytest.raises(InvalidInput) as refused:
        audit_chain_verify(anchor_seq=3)
    assert refused.value.details == {
        "anchor_hash": ["64 lower-case hexadecimal characters are required."]
    }


# --- inserted -------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_inserted_record_is_named(chain, batch_size):
    # seq is unique, so a forger makes room by renumbering #3..#5 to #4..#6 and
    # puts a record linking to #2 at #3; the real #3 (now #4) still links to #2.
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET seq = seq + 100 WHERE seq >= 3")
        cursor.execute(f"UPDATE {TABLE} SET seq = seq - 99 WHERE seq >= 100")
        forged_id = insert_forged(cursor, copy_of=2, seq=3)
    assert verify_dict(batch_size=batch_size) == {
        "ok": False,
        "checked": 3,
        "head_seq": 6,
        "head_hash": chain[4].hash,
        "first_broken": {
            "seq": 3,
            "id": forged_id,
            "problem": "inserted",
            "message": (
                "Record #3 does not match its hash and record #4 links past it to "
                "record #2: it was inserted."
            ),
        },
        "unverifiable": [],
    }


def test_inserted_record_before_the_first_is_named(chain):
    with trigger_bypassed() as cursor:
        forged_id = insert_forged(cursor, copy_of=1, seq=0, link_to_copy=False)
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.id, broken.problem, broken.message) == (
        0,
        forged_id,
        "inserted",
        "Record #0 does not match its hash and record #1 links past it to the "
        "start of the chain: it was inserted.",
    )


def test_forged_record_appended_needs_no_bypass_and_is_detected(chain):
    with connection.cursor() as cursor:  # INSERT is allowed: the log appends
        forged_id = insert_forged(cursor, copy_of=5, seq=6)
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.id, broken.problem) == (6, forged_id, "altered")


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs the unique constraint on seq dropped; SQLite cannot drop it",
)
def test_replayed_genuine_record_is_inserted(chain):
    with trigger_bypassed() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks
        constraints = connection.introspection.get_constraints(cursor, TABLE)
        (unique_seq,) = [
            name
            for name, info in constraints.items()
            if info["unique"] and info["columns"] == ["seq"] and not info["index"]
        ]
        cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{unique_seq}"')
        cursor.execute(
            f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE} "
            "WHERE seq = 3"
        )
    replay = AuditRecord.objects.filter(seq=3).order_by("id").last()
    assert replay.pk != chain[2].pk
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.id, broken.problem, broken.message) == (
        3,
        replay.pk,
        "inserted",
        f"Record #3 (id {replay.pk}) repeats the sequence number of the record "
        "before it: it does not belong to the chain.",
    )


def test_only_the_first_break_is_reported(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET action = 'x' WHERE seq IN (2, 4)")
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 5")
    broken = audit_chain_verify().first_broken
    assert (broken.seq, broken.problem) == (2, "altered")


# --- manage.py verify_audit -----------------------------------------------------------


def test_command_reports_an_intact_chain(chain):
    out = io.StringIO()
    call_command("verify_audit", stdout=out, no_color=True)
    assert out.getvalue() == (
        f"Audit chain intact: 5 records checked.\nHead: seq 5 hash {chain[4].hash}\n"
    )


def test_command_fails_with_exit_code_1_and_names_the_break(chain):
    with trigger_bypassed() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 2")
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit", stdout=out, no_color=True)
    assert failed.value.returncode == 1
    assert out.getvalue() == (
        f"Audit chain BROKEN at record #3 (id {chain[2].pk}): removed.\n"
        "Record #2 is missing before record #3.\n"
        f"2 records checked; newest record: seq 5 hash {chain[4].hash}\n"
    )


def test_command_prints_json(chain):
    out = io.StringIO()
    call_command("verify_audit", "--json", "--batch-size", "2", stdout=out)
    assert json.loads(out.getvalue()) == verify_dict()


def test_command_checks_an_anchor(chain):
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command(
            "verify_audit",
            "--anchor-seq",
            "9",
            "--anchor-hash",
            chain[4].hash,
            stdout=out,
            no_color=True,
        )
    assert failed.value.returncode == 1
    assert (
        out.getvalue().splitlines()[0]
        == "Audit chain BROKEN at record #6 (id None): removed."
    )


@pytest.mark.django_db(transaction=True)
def test_command_process_exit_status(make_user):
    # What cron or a monitoring probe sees: SystemExit(1) when broken, none when ok.
    audit.record(actor=make_user("admin"), action="user.registered")
    execute_from_command_line(["manage.py", "verify_audit"])
    with connection.cursor() as cursor:
        insert_forged(cursor, copy_of=1, seq=2)
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "verify_audit"])
    assert exited.value.code == 1


@pytest.mark.django_db
def test_chain_verifies_with_large_and_fractional_numbers_in_snapshots():
    from elog import audit
    from elog.services import audit_chain_verify

    audit.record(
        actor=None,
        action="test.numbers",
        before={"big": 1e20, "huge": 12345678901234567890.0, "small": 1e-7},
        after={"tenth": 0.1, "neg": -2.5e16, "nested": [1.0, {"x": 3e300}]},
    )
    result = audit_chain_verify()
    assert result.ok is True
    assert result.first_broken is None
