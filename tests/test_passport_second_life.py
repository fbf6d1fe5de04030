"""Second life (passports/secondlife.py): repurposing, re-use and
remanufacturing give the battery a new passport linked to the old one both
ways, with events on both ledgers, the EU status, BPAN rules, refusals (409,
nothing written) and the HTTP route, on the project's database."""

from __future__ import annotations

import pytest

from bpmos.errors import Conflict, IllegalTransition, InvalidInput
from bpmos.roles import Role
from elog.models import AuditRecord
from passports import attributes, ledger, secondlife, selectors
from passports.models import BatteryStatus, EventKind, Passport, PassportEvent, State
from tests.conftest import bearer
from tests.factories_passports import footprint, make_passport, record

pytestmark = pytest.mark.django_db

E = EventKind


def _change(passport, status="Repurposed", actor=None, **extra):
    data = {
        "status": status,
        "serial": f"SL-{passport.serial}-{status[:3]}",
        "operator": "Second Life Storage Pvt Ltd",
        **extra,
    }
    if passport.kind == "pack" and status != "Reused" and "bpan" not in extra:
        data.setdefault("manufacturer_code", "SLS")
        data.setdefault("plant_code", "2")
    return secondlife.passport_second_life(
        passport_id=passport.pk, data=data, actor=actor
    )


def _status(passport) -> str | None:
    passport.refresh_from_db()
    return attributes.eu_status(
        state=passport.state, battery_status=passport.battery_status
    )


def test_repurposed_pack_gets_a_new_passport_linked_both_ways(make_user):
    actor = make_user(Role.SUPERVISOR)
    old = make_passport("pack", State.IN_SERVICE, actor=actor)
    audits = AuditRecord.objects.count()

    new, old_event, genesis = _change(
        old, actor=actor, battery_category="Stationary", model="ESS-LFP-5"
    )

    old.refresh_from_db()
    assert old.state == State.SUPERSEDED
    assert old.battery_status == BatteryStatus.REPURPOSED
    assert new.predecessor_id == old.pk
    assert list(old.successors.all()) == [new]
    # The old chain's last event names the successor...
    assert old_event.kind == E.REPURPOSED
    assert old_event.version == old.version
    assert old_event.data == {
        "successor": {"id": str(new.uuid), "serial": new.serial, "bpan": new.bpan},
        "operator": "Second Life Storage Pvt Ltd",
    }
    # ...and the new chain's first names the predecessor.
    assert (genesis.kind, genesis.version) == (E.REGISTERED_FROM, 1)
    assert genesis.data["predecessor"] == {
        "id": str(old.uuid),
        "serial": old.serial,
        "bpan": old.bpan,
    }
    assert genesis.data["status"] == "repurposed"
    # A new battery for the market: held by the operator, a new BPAN.
    assert new.state == State.MANUFACTURED
    assert (new.custodian_kind, new.custodian_name) == (
        "manufacturer",
        "Second Life Storage Pvt Ltd",
    )
    assert new.manufacturer == "Second Life Storage Pvt Ltd"
    assert new.bpan is not None
    assert new.bpan != old.bpan
    assert new.bpan.startswith("INSLS")
    # Inherited unless overridden.
    assert (new.chemistry, new.rated_capacity_ah) == (
        old.chemistry,
        old.rated_capacity_ah,
    )
    assert (new.model, new.battery_category) == ("ESS-LFP-5", "stationary")
    assert _status(new) == _status(old) == "Repurposed"
    # Audited: one record per ledger event.
    actions = list(
        AuditRecord.objects.order_by("id")[audits:].values_list("action", flat=True)
    )
    assert actions == ["passport.repurposed", "passport.registered_from"]
    assert ledger.verify().ok


def test_reused_pack_keeps_its_bpan_which_moves_to_the_new_passport(make_user):
    actor = make_user(Role.SUPERVISOR)
    old = make_passport("pack", State.IN_SERVICE, actor=actor)
    bpan = old.bpan

    new, old_event, _ = _change(old, "Reused", actor=actor)

    old.refresh_from_db()
    assert new.bpan == bpan
    assert old.bpan is None
    assert old_event.kind == E.REUSED
    assert old_event.data["successor"]["bpan"] == bpan
    assert selectors.resolve(bpan) == new
    assert _status(new) == "Reused"
    moved = AuditRecord.objects.get(action="passport.bpan_transferred")
    assert moved.before == {"bpan": bpan}
    assert moved.after["to"]["id"] == str(new.uuid)


def test_reused_pack_refuses_a_new_bpan():
    old = make_passport("pack", State.IN_SERVICE)
    before = footprint(old)
    with pytest.raises(InvalidInput) as caught:
        _change(old, "Reused", manufacturer_code="SLS", plant_code="2")
    assert list(caught.value.details) == ["bpan"]
    assert footprint(old) == before


def test_repurposed_pack_needs_a_new_bpan():
    old = make_passport("pack", State.IN_SERVICE)
    before = footprint(old)
    with pytest.raises(InvalidInput) as caught:
        secondlife.passport_second_life(
            passport_id=old.pk,
            data={"status": "Repurposed", "serial": "SL-X", "operator": "Op"},
            actor=None,
        )
    assert list(caught.value.details) == ["bpan"]
    assert footprint(old) == before
    assert not Passport.objects.filter(serial="SL-X").exists()


def test_remanufactured_from_end_of_life_and_waste_again():
    old = make_passport("module", State.END_OF_LIFE)
    assert _status(old) == "Waste"
    new, old_event, _ = _change(old, "Remanufactured")
    assert old_event.kind == E.REMANUFACTURED
    assert _status(old) == _status(new) == "Remanufactured"
    assert new.bpan is None  # modules carry none
    # The new battery lives its own life: its end makes it Waste.
    new = record(new, E.END_OF_LIFE)
    assert _status(new) == "Waste"
    values = attributes.values_of(new)
    assert attributes.BY_KEY["batteryStatus"].read(values) == "Waste"
    assert attributes.BY_KEY["batteryStatus"].valid(values)


@pytest.mark.parametrize(
    "state",
    [State.WAREHOUSED, State.QA_FAILED, State.DISPATCHED, State.RECYCLED],
)
def test_refused_outside_in_service_and_end_of_life(state):
    old = make_passport("pack", state)
    before = footprint(old)
    passports = Passport.objects.count()
    with pytest.raises(IllegalTransition) as caught:
        _change(old)
    assert caught.value.code == "illegal_transition"
    assert footprint(old) == before
    assert Passport.objects.count() == passports


def test_refused_on_hold():
    old = make_passport("pack", State.IN_SERVICE, on_hold=True)
    before = footprint(old)
    with pytest.raises(IllegalTransition) as caught:
        _change(old)
    assert caught.value.code == "on_hold"
    assert footprint(old) == before


def test_superseded_takes_no_further_event():
    old = make_passport("cell", State.IN_SERVICE)
    _change(old, "Reused")
    old.refresh_from_db()
    before = footprint(old)
    with pytest.raises(IllegalTransition):
        _change(old, "Reused", serial="SL-AGAIN")
    with pytest.raises(IllegalTransition):
        record(old, E.HELD)
    with pytest.raises(IllegalTransition):
        record(old, E.END_OF_LIFE)
    assert footprint(old) == before


def test_stale_version_is_409_and_nothing_written():
    old = make_passport("cell", State.IN_SERVICE)
    before = footprint(old)
    with pytest.raises(Conflict) as caught:
        _change(old, "Reused", expected_version=old.version - 1)
    assert caught.value.code == "version_conflict"
    assert footprint(old) == before


def test_duplicate_serial_is_409_and_the_old_chain_untouched():
    old = make_passport("cell", State.IN_SERVICE)
    other = make_passport("cell")
    before = footprint(old)
    with pytest.raises(Conflict) as caught:
        _change(old, "Reused", serial=other.serial)
    assert caught.value.code == "duplicate_identifier"
    assert footprint(old) == before


def test_replay_of_both_chains_matches_their_rows():
    old = make_passport("cell", State.IN_SERVICE)
    new, _, _ = _change(old, "Repurposed")
    for passport in (old, new):
        passport.refresh_from_db()
        events = PassportEvent.objects.filter(passport=passport).order_by("version")
        snapshot = ledger.lifecycle.replay(
            passport.kind, [(e.kind, e.data) for e in events]
        )
        assert (snapshot.state, snapshot.version) == (passport.state, passport.version)


# --- HTTP --------------------------------------------------------------------------


def test_http_second_life_and_both_details(http, make_user):
    supervisor = make_user(Role.SUPERVISOR)
    old = make_passport("pack", State.IN_SERVICE, actor=supervisor)
    response = http.post(
        f"/api/passports/{old.uuid}/second-life",
        json={
            "status": "repurposed",
            "serial": "SL-HTTP-1",
            "operator": "Second Life Storage Pvt Ltd",
            "manufacturerCode": "SLS",
            "plantCode": "2",
            "batteryCategory": "Stationary",
            "note": "Stationary storage, 48 V rack",
        },
        headers=bearer(supervisor),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"passport", "predecessor", "events"}
    assert body["predecessor"]["state"] == "Superseded"
    assert body["passport"]["serial"] == "SL-HTTP-1"
    assert [e["kind"] for e in body["events"]] == ["repurposed", "registered_from"]
    new_id = body["passport"]["id"]

    old_detail = http.get(f"/api/passports/{old.uuid}", headers=bearer(supervisor))
    assert old_detail.json()["batteryStatus"] == "Repurposed"
    assert old_detail.json()["secondLife"] == {
        "predecessor": None,
        "successors": [
            {
                "id": new_id,
                "serial": "SL-HTTP-1",
                "bpan": body["passport"]["bpan"],
                "batteryStatus": "Repurposed",
            }
        ],
    }
    public = http.get(f"/api/passports/{new_id}/public").json()
    assert public["batteryStatus"] == "Repurposed"
    assert public["secondLife"]["predecessor"]["id"] == str(old.uuid)
    assert public["secondLife"]["successors"] == []
    attrs = http.get(f"/api/passports/{new_id}/attributes").json()["attributes"]
    assert {a["key"]: a["value"] for a in attrs}["batteryStatus"] == "Repurposed"


def test_http_refusals(http, make_user):
    supervisor, operator = make_user(Role.SUPERVISOR), make_user(Role.OPERATOR)
    old = make_passport("pack", State.WAREHOUSED)
    url = f"/api/passports/{old.uuid}/second-life"
    body = {"status": "Reused", "serial": "SL-HTTP-2", "operator": "Op"}
    before = footprint(old)

    forbidden = http.post(url, json=body, headers=bearer(operator))
    assert forbidden.status_code == 403
    unknown = http.post(url, json={**body, "colour": 1}, headers=bearer(supervisor))
    assert unknown.status_code == 400
    assert unknown.json()["details"] == {"colour": ["Unknown field."]}
    bad_status = http.post(
        url, json={**body, "status": "Original"}, headers=bearer(supervisor)
    )
    assert bad_status.status_code == 400
    assert list(bad_status.json()["details"]) == ["status"]
    illegal = http.post(url, json=body, headers=bearer(supervisor))
    assert illegal.status_code == 409
    assert illegal.json()["code"] == "illegal_transition"
    assert footprint(old) == before
    assert not Passport.objects.filter(serial="SL-HTTP-2").exists()
