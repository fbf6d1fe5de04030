"""Electronic signatures (21 CFR Part 11 style): the QA release (``released``)
and the gate override (unlocking a Locked gate) need the signer's re-entered
password; the signature is bound to the ledger event's (or gate change's)
hash and shown in the trace; a site may require a signed dispatch release
before dispatch. Through the real HTTP client, on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from elog import signatures as esign
from elog.models import AuditRecord, ElectronicSignature
from passports.models import EventKind, PassportEvent
from runbooks import services as runbook_services
from runbooks.models import Gate, GateStatus
from tests.conftest import PASSWORD
from tests.conftest import api_as as api
from tests.factories_passports_api import append, warehoused_pack
from tests.factories_production import gate_of, make_runbook

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(make_user):
    return make_user("supervisor", username="sam", first_name="Sam", last_name="Rao")


@pytest.fixture
def held_pack(boss):
    pack = warehoused_pack(boss, "PK-SIG-1")
    append(boss, pack, EventKind.HELD, reason="Seal check")
    pack.refresh_from_db()
    return pack


def release(user, pack, **body):
    return api(user).post(
        f"/api/passports/{pack.uuid}/events",
        {"kind": "released", "data": {"note": "OK"}, **body},
        format="json",
    )


def counts():
    return (
        PassportEvent.objects.count(),
        ElectronicSignature.objects.count(),
        AuditRecord.objects.count(),
    )


# --- QA release -------------------------------------------------------------------


def test_a_qa_release_without_a_password_is_400_and_writes_nothing(boss, held_pack):
    before = counts()
    reply = release(boss, held_pack)
    assert reply.status_code == 400
    body = reply.json()
    assert body["success"] is False
    assert body["code"] == "validation_error"
    assert list(body["details"]) == ["password"]
    assert counts() == before
    held_pack.refresh_from_db()
    assert held_pack.on_hold is True


def test_a_wrong_password_is_403_audited_and_releases_nothing(boss, held_pack):
    events, signatures, audits = counts()
    reply = release(boss, held_pack, password="not-my-password")
    assert reply.status_code == 403
    assert reply.json()["code"] == "signature_invalid"
    assert counts() == (events, signatures, audits + 1)
    failed = AuditRecord.objects.order_by("-seq").first()
    assert failed.action == "signature.failed"
    assert failed.actor_id == boss.pk
    assert failed.after == {"meaning": "qa_release", "failures": 1}
    held_pack.refresh_from_db()
    assert held_pack.on_hold is True


def test_a_qa_release_is_signed_bound_to_its_event_and_shown_in_the_trace(
    boss, held_pack
):
    reply = release(boss, held_pack, password=PASSWORD)
    assert reply.status_code == 201, reply.content
    event = PassportEvent.objects.get(passport=held_pack, kind=EventKind.RELEASED)
    sig = ElectronicSignature.objects.get()
    assert (sig.signer_id, sig.signer_username, sig.signer_name) == (
        boss.pk,
        "sam",
        "Sam Rao",
    )
    assert (sig.meaning, sig.method) == ("qa_release", "password")
    assert sig.bound_hash == event.hash
    assert sig.record_id == str(event.pk)
    assert esign.signature_valid(sig)
    shown = reply.json()["event"]["signatures"]
    assert [(s["signer"], s["meaning"], s["boundHash"]) for s in shown] == [
        ("sam", "qa_release", event.hash)
    ]
    trace = api(boss).get(f"/api/passports/{held_pack.uuid}").json()
    by_version = {e["version"]: e["signatures"] for e in trace["ledger"]}
    assert by_version[event.version][0]["signerName"] == "Sam Rao"
    assert by_version[event.version][0]["meaningLabel"] == "QA release"
    assert all(not sigs for v, sigs in by_version.items() if v != event.version)
    ledger = api(boss).get(f"/api/passports/{held_pack.uuid}/ledger").json()
    assert ledger["results"][-1]["signatures"][0]["hash"] == sig.hash
    assert AuditRecord.objects.filter(action="signature.signed").count() == 1


def test_a_signature_is_append_only_and_its_hash_covers_its_binding(boss, held_pack):
    release(boss, held_pack, password=PASSWORD)
    sig = ElectronicSignature.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        ElectronicSignature.objects.filter(pk=sig.pk).update(bound_hash="0" * 64)
    sig.bound_hash = "0" * 64  # copied onto another record: the hash says no
    assert not esign.signature_valid(sig)


def test_a_password_on_an_unsigned_kind_is_400(boss):
    pack = warehoused_pack(boss, "PK-SIG-2")
    before = counts()
    reply = api(boss).post(
        f"/api/passports/{pack.uuid}/events",
        {"kind": "held", "data": {"reason": "x"}, "password": PASSWORD},
        format="json",
    )
    assert reply.status_code == 400
    assert "password" in reply.json()["details"]
    assert counts() == before


def test_a_batch_cannot_hold_a_qa_release(boss, held_pack):
    before = counts()
    reply = api(boss).post(
        "/api/passports/events/batch",
        {"events": [{"passport": str(held_pack.uuid), "kind": "released"}]},
        format="json",
    )
    assert reply.status_code == 400
    assert list(reply.json()["details"]) == ["events[0].kind"]
    assert counts() == before


def test_too_many_wrong_passwords_lock_signing(boss, held_pack, settings):
    settings.BPMOS_SIGNATURE_FAILURE_LIMIT = 2
    assert release(boss, held_pack, password="bad-1").status_code == 403
    assert release(boss, held_pack, password="bad-2").status_code == 403
    locked = release(boss, held_pack, password=PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["code"] == "signature_locked"
    actions = list(
        AuditRecord.objects.filter(action__startswith="signature.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["signature.failed", "signature.failed", "signature.locked_out"]
    assert ElectronicSignature.objects.count() == 0


# --- gate override ----------------------------------------------------------------


@pytest.fixture
def locked_gate(boss):
    gate = gate_of(make_runbook())
    runbook_services.gate_set(gate_id=gate.pk, action="lock", reason="Seal", actor=boss)
    return gate


def test_unlocking_a_gate_without_a_password_is_400_and_changes_nothing(
    boss, locked_gate
):
    before = AuditRecord.objects.count()
    reply = api(boss).post(f"/api/gates/{locked_gate.pk}/open", {}, format="json")
    assert reply.status_code == 400
    assert list(reply.json()["details"]) == ["password"]
    locked_gate.refresh_from_db()
    assert locked_gate.status == GateStatus.LOCKED
    assert AuditRecord.objects.count() == before


def test_unlocking_a_gate_with_a_wrong_password_is_403(boss, locked_gate):
    reply = api(boss).post(
        f"/api/gates/{locked_gate.pk}/open", {"password": "nope"}, format="json"
    )
    assert reply.status_code == 403
    assert reply.json()["code"] == "signature_invalid"
    assert Gate.objects.get(pk=locked_gate.pk).status == GateStatus.LOCKED
    assert ElectronicSignature.objects.count() == 0


def test_a_gate_override_is_signed_and_bound_to_the_change(boss, locked_gate):
    reply = api(boss).post(
        f"/api/gates/{locked_gate.pk}/open", {"password": PASSWORD}, format="json"
    )
    assert reply.status_code == 200, reply.content
    assert "password" not in reply.json()
    sig = ElectronicSignature.objects.get()
    assert (sig.meaning, sig.record_type, sig.record_id) == (
        "gate_override",
        "runbooks.gate",
        str(locked_gate.pk),
    )
    unlocked = AuditRecord.objects.get(action="gate.unlocked")
    change = unlocked.after["change"]
    assert (change["from"], change["to"], change["actor"]) == ("locked", "open", "sam")
    assert unlocked.after["changeHash"] == sig.bound_hash
    assert runbook_services.gate_change_hash(change) == sig.bound_hash
    assert unlocked.after["signature"] == sig.hash


def test_opening_a_closed_gate_needs_no_signature(boss):
    gate = gate_of(make_runbook())
    runbook_services.gate_set(gate_id=gate.pk, action="close", actor=boss)
    reply = api(boss).post(f"/api/gates/{gate.pk}/open", {}, format="json")
    assert reply.status_code == 200
    assert ElectronicSignature.objects.count() == 0


# --- signed dispatch release --------------------------------------------------------


def dispatch(user, pack):
    return api(user).post(
        f"/api/passports/{pack.uuid}/events",
        {"kind": "dispatched", "data": {"carrier": "BlueDart"}},
        format="json",
    )


def sign_release(user, pack, **body):
    return api(user).post(
        f"/api/passports/{pack.uuid}/signatures",
        {"meaning": "dispatch_release", **body},
        format="json",
    )


def test_dispatch_needs_a_signed_release_when_the_site_says_so(boss, settings):
    settings.BPMOS_DISPATCH_REQUIRES_SIGNED_RELEASE = True
    pack = warehoused_pack(boss, "PK-SIG-3")
    before = counts()
    refused = dispatch(boss, pack)
    assert refused.status_code == 409
    assert refused.json()["code"] == "signed_release_required"
    assert counts() == before
    assert sign_release(boss, pack).status_code == 400  # no password
    assert sign_release(boss, pack, password="bad").status_code == 403
    signed = sign_release(boss, pack, password=PASSWORD, version=pack.version)
    assert signed.status_code == 201, signed.content
    head = PassportEvent.objects.get(passport=pack, version=pack.version)
    assert signed.json()["event"]["signatures"][0]["boundHash"] == head.hash
    assert dispatch(boss, pack).status_code == 201


def test_a_hold_voids_an_earlier_dispatch_release(boss, settings):
    settings.BPMOS_DISPATCH_REQUIRES_SIGNED_RELEASE = True
    pack = warehoused_pack(boss, "PK-SIG-4")
    assert sign_release(boss, pack, password=PASSWORD).status_code == 201
    append(boss, pack, EventKind.HELD, reason="Recheck")
    assert release(boss, pack, password=PASSWORD).status_code == 201
    assert dispatch(boss, pack).json()["code"] == "signed_release_required"


def test_signing_a_version_that_is_not_the_head_is_409(boss):
    pack = warehoused_pack(boss, "PK-SIG-5")
    reply = sign_release(boss, pack, password=PASSWORD, version=1)
    assert reply.status_code == 409
    assert reply.json()["code"] == "version_conflict"
    assert ElectronicSignature.objects.count() == 0


def test_an_operator_cannot_sign_a_dispatch_release(make_user, boss):
    pack = warehoused_pack(boss, "PK-SIG-6")
    operator = make_user("operator")
    assert sign_release(operator, pack, password=PASSWORD).status_code == 403
    assert ElectronicSignature.objects.count() == 0


def test_without_the_setting_dispatch_needs_no_signature(boss):
    pack = warehoused_pack(boss, "PK-SIG-7")
    assert dispatch(boss, pack).status_code == 201
