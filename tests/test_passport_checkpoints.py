"""Ledger checkpoints: the periodic Merkle root over the passport chains' heads
(passports/checkpoints.py, passports/merkle.py; docs/passports.md).

The roots are checked against a computation written here from RFC 6962
(recursive, from the leaves' definition in the docs), not read from the code.
Tampering bypasses the append-only triggers inside the test's transaction
(rolled back after it).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from bpmos.auditkeys import keyring
from bpmos.errors import Conflict
from bpmos.roles import Role
from elog.models import AuditRecord
from passports import checkpoints, ledger, lifecycle, merkle
from passports.models import (
    EventKind,
    LedgerCheckpoint,
    LedgerCheckpointLeaf,
    Passport,
    PassportEvent,
)
from tests.conftest import api_as as api
from tests.factories_passports import make_passport, record

E = EventKind
TABLES = (
    "passports_passportevent",
    "passports_ledgercheckpoint",
    "passports_ledgercheckpointleaf",
)


# --- RFC 6962, written out here ---------------------------------------------------


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash, as the RFC states it (recursive)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def expected_root(previous_seq: int, previous_root: str, heads) -> str:
    """heads: [(uuid text, version, hash)]; ordered by UUID here."""
    leaves = [canonical({"previousRoot": previous_root, "seq": previous_seq})]
    leaves += [
        canonical({"hash": h, "passport": u, "version": v}) for u, v, h in sorted(heads)
    ]
    return mth(leaves).hex()


def heads_of(passports) -> list[tuple[str, int, str]]:
    found = []
    for passport in passports:
        event = PassportEvent.objects.filter(passport=passport).order_by("-version")[0]
        found.append((str(passport.uuid), event.version, event.hash))
    return found


@contextlib.contextmanager
def triggers_bypassed():
    """A cursor that can UPDATE and DELETE append-only rows until rollback."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
            yield cursor
            cursor.execute("SET LOCAL session_replication_role = origin")
            return
        saved = []
        for table in TABLES:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name = %s",
                [table],
            )
            saved += cursor.fetchall()
        for name, _ in saved:
            cursor.execute(f'DROP TRIGGER "{name}"')
        yield cursor
        for _, sql in saved:
            cursor.execute(sql)


@pytest.fixture
def packs(db, make_user):
    supervisor = make_user("supervisor", username="sam")
    first = make_passport("pack", "qa_passed", actor=supervisor)
    middle = make_passport("pack", "warehoused", actor=supervisor)
    last = make_passport("pack", "dispatched", actor=supervisor)
    return supervisor, [first, middle, last]


def fresh(passport: Passport) -> Passport:
    return Passport.objects.get(pk=passport.pk)


def problem_of() -> dict | None:
    result = checkpoints.checkpoints_verify()
    assert result.ok is (result.first_broken is None)
    return result.first_broken.as_dict() if result.first_broken else None


# --- the Merkle tree itself ---------------------------------------------------------


def test_merkle_roots_and_paths_match_rfc_6962():
    assert merkle.root_of([]) == hashlib.sha256(b"").hexdigest()
    # RFC 6962's hash of the empty leaf (CT's published test vector).
    assert (
        merkle.root_of([b""])
        == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    for size in range(1, 18):
        leaves = [f"leaf {n}".encode() for n in range(size)]
        root = merkle.root_of(leaves)
        assert root == mth(leaves).hex()
        for index in range(size):
            path = merkle.audit_path(leaves, index)
            assert merkle.included(leaves[index], index, size, path, root)
            assert not merkle.included(b"other", index, size, path, root)
            if path:
                bent = [*path]
                bent[0] = "00" * 32
                assert not merkle.included(leaves[index], index, size, bent, root)
            if size > 1:
                other = (index + 1) % size
                assert not merkle.included(leaves[index], other, size, path, root)


# --- building checkpoints -----------------------------------------------------------


def test_a_checkpoint_is_the_root_of_every_head_and_the_previous_root(packs):
    supervisor, passports = packs
    checkpoint = checkpoints.checkpoint_build(actor=supervisor)
    assert checkpoint.seq == 1
    assert checkpoint.previous_root == "0" * 64
    assert checkpoint.root == expected_root(0, "0" * 64, heads_of(passports))
    assert checkpoint.leaf_count == 4
    events = PassportEvent.objects.filter(passport__in=passports)
    assert checkpoint.event_count == events.count()
    assert checkpoint.first_event_id == min(e.pk for e in events)
    assert checkpoint.last_event_id == max(e.pk for e in events)
    audited = AuditRecord.objects.get(action="ledger.checkpointed")
    assert audited.after["root"] == checkpoint.root
    assert audited.after["seq"] == 1
    assert audited.actor_id == supervisor.pk
    assert problem_of() is None


def test_the_next_checkpoint_holds_only_the_chains_that_grew(packs):
    supervisor, (_, middle, _) = packs
    one = checkpoints.checkpoint_build()
    assert checkpoints.checkpoint_build() is None  # nothing grew
    record(middle, E.HELD, actor=supervisor)
    record(middle, E.RELEASED, actor=supervisor)
    two = checkpoints.checkpoint_build()
    assert two.seq == 2
    assert two.previous_root == one.root
    assert two.root == expected_root(1, one.root, heads_of([middle]))
    assert two.leaf_count == 2
    assert two.event_count == 2
    held = PassportEvent.objects.filter(passport=middle).order_by("version")
    assert [two.first_event_id, two.last_event_id] == [e.pk for e in held][-2:]
    assert list(
        LedgerCheckpointLeaf.objects.filter(checkpoint=two).values_list(
            "passport_id", "version"
        )
    ) == [(middle.pk, fresh(middle).version)]
    assert problem_of() is None


def test_a_chain_broken_since_its_checkpoint_is_never_checkpointed(packs):
    supervisor, (_, middle, _) = packs
    checkpoints.checkpoint_build()
    record(middle, E.HELD, actor=supervisor)
    newest = PassportEvent.objects.filter(passport=middle).order_by("-version")[0]
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_passportevent SET data = %s WHERE id = %s",
            [json.dumps({"reason": "nothing"}), newest.pk],
        )
    audits = AuditRecord.objects.count()
    with pytest.raises(Conflict) as refused:
        checkpoints.checkpoint_build()
    assert refused.value.code == "ledger_broken"
    assert refused.value.details["problem"] == "altered"
    assert refused.value.details["version"] == newest.version
    assert LedgerCheckpoint.objects.count() == 1
    assert AuditRecord.objects.count() == audits


# --- what a verifier finds ------------------------------------------------------------


def test_a_tampered_event_is_found(packs):
    """Altered in place: the ledger's HMAC check names it. Altered and hashed
    again with the key (its passport's head moved along): the chain verifies,
    the checkpoint does not."""
    _, (_, middle, _) = packs
    checkpoints.checkpoint_build()
    head = PassportEvent.objects.filter(passport=middle).order_by("-version")[0]
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_passportevent SET data = %s WHERE id = %s",
            [json.dumps({"location": "elsewhere"}), head.pk],
        )
    assert ledger.verify().first_broken.problem == "altered"
    forged = ledger.compute_hash(
        {
            "passport": middle.uuid,
            "version": head.version,
            "kind": head.kind,
            "occurred_at": head.occurred_at,
            "actor_username": head.actor_username,
            "data": {"location": "elsewhere"},
            "prev_hash": head.prev_hash,
        }
    )
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_passportevent SET hash = %s WHERE id = %s",
            [forged, head.pk],
        )
        cursor.execute(
            "UPDATE passports_passport SET head_hash = %s WHERE id = %s",
            [forged, middle.pk],
        )
    assert ledger.verify().ok
    assert problem_of() == {
        "seq": 1,
        "problem": "rewritten",
        "message": f"Event {head.version} of passport {middle.pk} has another hash "
        "than checkpoint 1 recorded.",
        "passportId": str(middle.pk),
        "version": head.version,
    }


def test_a_truncated_chain_is_found(packs):
    """The newest events removed and the passport row cut back to match: the
    ledger alone looks intact; the checkpoint names the missing head."""
    _, (_, _, last) = packs
    checkpoints.checkpoint_build()
    chain = list(PassportEvent.objects.filter(passport=last).order_by("version"))
    kept = chain[:-2]
    with triggers_bypassed() as cursor:
        cursor.execute(
            "DELETE FROM passports_passportevent WHERE id IN (%s, %s)",
            [chain[-1].pk, chain[-2].pk],
        )
        snapshot = lifecycle.replay(last.kind, [(e.kind, e.data) for e in kept])
        cursor.execute(
            "UPDATE passports_passport SET version = %s, head_hash = %s, "
            "state = %s, on_hold = %s, hold_reason = %s, custodian_kind = %s, "
            "custodian_name = %s WHERE id = %s",
            [
                len(kept),
                kept[-1].hash,
                snapshot.state,
                snapshot.on_hold,
                snapshot.hold_reason,
                snapshot.custodian_kind,
                snapshot.custodian_name,
                last.pk,
            ],
        )
    assert ledger.verify().ok, ledger.verify().first_broken
    found = problem_of()
    assert found["problem"] == "truncated"
    assert found["passportId"] == str(last.pk)
    assert found["version"] == len(chain)
    with pytest.raises(Conflict) as refused:
        checkpoints.checkpoint_build()
    assert refused.value.details["problem"] == "truncated"


def _remove_checkpoint(seq: int) -> None:
    checkpoint = LedgerCheckpoint.objects.get(seq=seq)
    with triggers_bypassed() as cursor:
        cursor.execute(
            "DELETE FROM passports_ledgercheckpointleaf WHERE checkpoint_id = %s",
            [checkpoint.pk],
        )
        cursor.execute(
            "DELETE FROM passports_ledgercheckpoint WHERE id = %s", [checkpoint.pk]
        )


@pytest.fixture
def three_checkpoints(packs):
    supervisor, (first, middle, _) = packs
    checkpoints.checkpoint_build()
    record(first, E.HELD, actor=supervisor)
    checkpoints.checkpoint_build()
    record(middle, E.RESERVED, actor=supervisor)
    checkpoints.checkpoint_build()
    assert problem_of() is None
    return packs


def test_a_removed_checkpoint_is_found(three_checkpoints):
    _remove_checkpoint(2)
    assert problem_of() == {
        "seq": 2,
        "problem": "removed",
        "message": "Checkpoint 2 is missing before checkpoint 3.",
        "passportId": None,
        "version": None,
    }


def test_the_removed_newest_checkpoint_is_found_against_the_audit_log(
    three_checkpoints,
):
    _remove_checkpoint(3)
    found = problem_of()
    assert found["seq"] == 3
    assert found["problem"] == "removed"
    assert "audit log records checkpoint 3" in found["message"]


def test_an_altered_root_is_found(three_checkpoints):
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_ledgercheckpoint SET root = %s WHERE seq = 3", ["a" * 64]
        )
    assert problem_of()["problem"] == "altered"


def test_verify_ledger_checkpoints_command(three_checkpoints):
    out = io.StringIO()
    call_command("verify_ledger", "--checkpoints", stdout=out)
    assert "Checkpoints intact: 3 checkpoints, 5 leaves checked." in out.getvalue()
    _remove_checkpoint(2)
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_ledger", "--checkpoints", "--json", stdout=out)
    assert failed.value.returncode == 1
    body = json.loads(out.getvalue())
    assert body["ok"] is True  # the chains themselves
    assert body["checkpoints"]["firstBroken"]["problem"] == "removed"


def test_ledger_checkpoint_command(packs):
    out = io.StringIO()
    call_command("ledger_checkpoint", "--json", stdout=out)
    written = json.loads(out.getvalue())
    assert written["seq"] == 1
    assert written["root"] == LedgerCheckpoint.objects.get().root
    out = io.StringIO()
    call_command("ledger_checkpoint", stdout=out)
    assert "none written" in out.getvalue()


# --- inclusion proofs -----------------------------------------------------------------


def proof_of(user, passport, version):
    return api(user).get(
        f"/api/passports/{passport.uuid}/ledger/proof?version={version}"
    )


def test_proofs_verify_offline_and_a_modified_proof_fails(three_checkpoints, make_user):
    _, (first, middle, _) = three_checkpoints
    auditor = make_user(Role.AUDITOR)
    keys = keyring().keys
    checkpoint_one = LedgerCheckpoint.objects.get(seq=1)
    # Event 2 of the middle pack: first covered by checkpoint 1 (its head then).
    response = proof_of(auditor, middle, 2)
    assert response.status_code == 200, response.json()
    proof = response.json()
    assert proof["checkpoint"]["seq"] == 1
    assert proof["checkpoint"]["root"] == checkpoint_one.root
    assert (
        proof["event"]["hash"]
        == PassportEvent.objects.get(passport=middle, version=2).hash
    )
    assert [e["version"] for e in proof["chain"]] == list(
        range(2, proof["head"]["version"] + 1)
    )
    assert merkle.verify_proof(proof).ok
    checked = merkle.verify_proof(proof, keys=keys, root=checkpoint_one.root)
    assert checked.as_dict() == {"ok": True, "problems": [], "hmacChecked": True}
    # The newest event of the middle pack: checkpoint 3.
    newest = fresh(middle).version
    proof3 = proof_of(auditor, middle, newest).json()
    assert proof3["checkpoint"]["seq"] == 3
    assert merkle.verify_proof(proof3, keys=keys).ok

    def modified(change) -> dict:
        bent = copy.deepcopy(proof)
        change(bent)
        return bent

    tampered = [
        modified(lambda p: p["auditPath"].__setitem__(0, "0" * 64)),
        modified(lambda p: p["leaf"].__setitem__("index", p["leaf"]["index"] + 1)),
        modified(lambda p: p["head"].__setitem__("hash", "1" * 64)),
        modified(lambda p: p["event"].__setitem__("hash", "2" * 64)),
        modified(lambda p: p["checkpoint"].__setitem__("root", "3" * 64)),
        modified(lambda p: p["chain"].pop(1)),
        modified(lambda p: p["passport"].__setitem__("id", str(first.uuid))),
        modified(lambda p: p.pop("auditPath")),
    ]
    for bent in tampered:
        assert not merkle.verify_proof(bent, keys=keys).ok, bent
    # Without the key a changed event's data goes unseen; with it, not.
    data_changed = modified(lambda p: p["chain"][0]["data"].update(test="forged"))
    assert merkle.verify_proof(data_changed).ok
    assert not merkle.verify_proof(data_changed, keys=keys).ok
    # A root published elsewhere that differs: refused.
    assert not merkle.verify_proof(proof, root=proof3["checkpoint"]["root"]).ok


def test_proof_refusals(three_checkpoints, make_user):
    supervisor, (_, _, last) = three_checkpoints
    admin = make_user(Role.ADMIN)
    record(last, E.DELIVERED, actor=supervisor)
    newest = fresh(last).version
    response = proof_of(admin, last, newest)
    assert response.status_code == 409
    assert response.json()["code"] == "not_checkpointed"
    assert proof_of(admin, last, newest + 1).status_code == 404
    for bad in ("0", "x", "", "-1", "1.5"):
        response = proof_of(admin, last, bad)
        assert response.status_code == 400, bad
        assert response.json()["details"] == {"version": ["A whole number from 1."]}
    assert api(admin).get(f"/api/passports/{last.uuid}/ledger/proof").status_code == 400


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.AUDITOR, 200),
        (Role.ADMIN, 200),
        (Role.SUPERVISOR, 403),
        (Role.PLANT_HEAD, 403),
        (Role.PLANNER, 403),
        (Role.OPERATOR, 403),
        (None, 401),
    ],
)
def test_who_may_ask_for_a_proof(packs, make_user, role, status):
    _, (first, _, _) = packs
    checkpoints.checkpoint_build()
    user = make_user(role) if role else None
    assert proof_of(user, first, 1).status_code == status


# --- append-only, and the beat task ---------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE passports_ledgercheckpoint SET root = 'x'",
        "DELETE FROM passports_ledgercheckpoint",
        "UPDATE passports_ledgercheckpointleaf SET version = 99",
        "DELETE FROM passports_ledgercheckpointleaf",
    ],
)
def test_checkpoints_and_leaves_are_append_only(packs, statement):
    checkpoints.checkpoint_build()
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert problem_of() is None


def test_the_beat_task_checkpoints_and_refuses_quietly(packs):
    from bpmos.celery import BEAT_SCHEDULE, app
    from passports.tasks import ledger_checkpoint_task

    entry = BEAT_SCHEDULE["ledger-checkpoint"]
    assert entry["task"] == "passports.tasks.ledger_checkpoint_task"
    assert entry["task"] in app.tasks
    assert ledger_checkpoint_task() == 1
    assert ledger_checkpoint_task() is None  # nothing grew
    supervisor, (_, middle, _) = packs
    record(middle, E.HELD, actor=supervisor)
    newest = PassportEvent.objects.filter(passport=middle).order_by("-version")[0]
    with triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_passportevent SET kind = %s WHERE id = %s",
            ["released", newest.pk],
        )
    assert ledger_checkpoint_task() is None  # refused: logged, nothing written
    assert LedgerCheckpoint.objects.count() == 1


OFFLINE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("merkle", sys.argv[1])
merkle = sys.modules["merkle"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(merkle)
given = json.load(sys.stdin)
keys = {k: v.encode() for k, v in given["keys"].items()}
check = merkle.verify_proof(given["proof"], keys=keys, root=given["root"])
assert not any(name.split(".")[0] == "django" for name in sys.modules)
print(json.dumps(check.as_dict()))
"""


def test_a_proof_checks_offline_with_the_standard_library_alone(packs, make_user):
    """merkle.py loaded from its file by a bare interpreter (no Django, no
    settings, no database), given the proof as JSON, the key and the root."""
    _, (first, _, _) = packs
    checkpoint = checkpoints.checkpoint_build()
    proof = proof_of(make_user(Role.AUDITOR), first, 2).json()
    given = {
        "proof": proof,
        "keys": {kid: key.decode() for kid, key in keyring().keys.items()},
        "root": checkpoint.root,
    }
    done = subprocess.run(
        [sys.executable, "-I", "-c", OFFLINE, merkle.__file__],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        env={},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "ok": True,
        "problems": [],
        "hmacChecked": True,
    }
