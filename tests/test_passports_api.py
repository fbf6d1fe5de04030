"""The passport and registry API: shapes key by key, identity resolution by
every identifier, restricted versus public attribute groups per role, the
lifecycle's refusals over HTTP (409 in the envelope, nothing written), the
per-kind event rules, custody, genealogy, ledger, verification and BPANs."""

import pytest
from django.db import connection

from bpmos import access
from bpmos.roles import Role
from elog.models import AuditRecord
from passports.models import (
    PUBLIC_FIELDS,
    RESTRICTED_FIELDS,
    EventKind,
    Kind,
    Passport,
    PassportEvent,
)
from tests.conftest import api_as as api
from tests.conftest import bearer
from tests.factories_passports_api import (
    a_bpan,
    append,
    counts,
    register,
    warehoused_pack,
)
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {
    "id",
    "serial",
    "kind",
    "bpan",
    "model",
    "lot",
    "state",
    "onHold",
    "holdReason",
    "custodian",
    "version",
    "manufacturedAt",
    "updatedAt",
}
PUBLIC_GROUP_KEYS = {
    "identity": {"uuid", "kind", "serial", "bpan", "gtin", "model", "lot"},
    "manufacturer": {"manufacturer", "manufacturerId", "site", "manufacturedAt"},
    "chemistry": {"chemistry", "criticalRawMaterials", "hazardousSubstances"},
    "performance": {
        "ratedCapacityAh",
        "nominalVoltageV",
        "energyKwh",
        "massKg",
        "expectedCycles",
        "warrantyMonths",
    },
    "carbonFootprint": {"carbonFootprintKgCo2ePerKwh", "carbonFootprintClass"},
}
RESTRICTED_GROUP_KEYS = {
    "identity": PUBLIC_GROUP_KEYS["identity"] | {"barcode", "rfid"},
    "materials": {
        "cathodeMaterial",
        "anodeMaterial",
        "electrolyte",
        "materialComposition",
        "recycledContent",
    },
    "stateOfHealth": {"sohPercent", "socPercent", "temperatureC", "telemetryAt"},
}
DETAIL_BASE = SUMMARY_KEYS | {
    "restricted",
    "headHash",
    "batteryStatus",
    "secondLife",
    "genealogy",
    "conformity",
    "ledger",
}
EVENT_KEYS = {
    "version",
    "kind",
    "label",
    "occurredAt",
    "actor",
    "data",
    "prevHash",
    "hash",
    "signatures",
}
REF_KEYS = {"id", "serial", "kind", "bpan", "state"}
PRIVILEGED = [Role.SUPERVISOR, Role.PLANT_HEAD, Role.AUDITOR, Role.ADMIN]
UNPRIVILEGED = [Role.OPERATOR, Role.PLANNER]


@pytest.fixture
def boss(make_user):
    return make_user(Role.SUPERVISOR, username="sam")


@pytest.fixture
def pack(boss):
    """PK-0001: a pack with every identifier, warehoused (version 4)."""
    return warehoused_pack(
        boss, "PK-0001", barcode="8901234500017", rfid="e200341201b8", bpan=a_bpan()
    )


REGISTER_BODY = {
    "kind": "Pack",
    "serial": "PK-0100",
    "model": "PK-48V-100",
    "lot": "LOT-9",
    "manufacturer": "BPM Energy",
    "site": "Pune Plant 1",
    "manufacturedAt": "2026-03-02T08:00:00Z",
    "chemistry": "LFP",
    "ratedCapacityAh": 100,
    "nominalVoltageV": "48.0",
    "energyKwh": 5.12,
    "massKg": 41.5,
    "warrantyMonths": 60,
    "cathodeMaterial": "LiFePO4",
    "criticalRawMaterials": ["lithium"],
    "materialComposition": {"lithium": 3.1},
    "barcode": "8901234500024",
    "manufacturerCode": "BPM",
    "plantCode": "P",
}


# --- register -------------------------------------------------------------------------


def test_register_answers_201_with_the_detail(make_user):
    operator = make_user(Role.OPERATOR, username="olga")
    response = api(operator).post("/api/passports", REGISTER_BODY, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == DETAIL_BASE | set(PUBLIC_GROUP_KEYS)
    passport = Passport.objects.get(serial="PK-0100")
    assert body["id"] == str(passport.uuid)
    assert (body["kind"], body["state"], body["version"]) == ("Pack", "Manufactured", 1)
    assert body["custodian"] == {"kind": "Manufacturer", "name": "BPM Energy"}
    assert body["restricted"] is False  # an operator reads the public groups
    assert body["bpan"] == passport.bpan
    # Issued (passports.bpan): IN BPM L 048 05 26 3 P K0100 + check character.
    assert passport.bpan[:20] == "INBPML04805263PK0100"
    assert body["manufacturedAt"] == "2026-03-02T08:00:00Z"
    assert body["performance"] == {
        "ratedCapacityAh": 100.0,
        "nominalVoltageV": 48.0,
        "energyKwh": 5.12,
        "massKg": 41.5,
        "expectedCycles": None,
        "warrantyMonths": 60,
    }
    assert body["genealogy"] == {"parent": None, "componentCount": 0}
    [event] = body["ledger"]
    assert set(event) == EVENT_KEYS
    assert (event["version"], event["kind"], event["actor"]) == (
        1,
        "manufactured",
        "olga",
    )
    assert event["hash"] == passport.head_hash == body["headHash"]
    assert event["prevHash"] == "0" * 64


def test_register_refusals_name_the_camel_case_field(make_user):
    operator = make_user(Role.OPERATOR)
    audits = AuditRecord.objects.count()
    cases = [
        (
            {k: v for k, v in REGISTER_BODY.items() if k != "ratedCapacityAh"},
            "ratedCapacityAh",
        ),
        ({**REGISTER_BODY, "energyKwh": -1}, "energyKwh"),
        ({**REGISTER_BODY, "ratedCapacity": 5}, "ratedCapacity"),
        ({**REGISTER_BODY, "kind": "Drone"}, "kind"),
        ({**REGISTER_BODY, "bpan": "IN-NOT-A-BPAN"}, "bpan"),
        ({**REGISTER_BODY, "materialComposition": {"li": 140}}, "materialComposition"),
    ]
    for payload, field in cases:
        response = api(operator).post("/api/passports", payload, format="json")
        body = assert_envelope(response, 400, "validation_error")
        assert list(body["details"]) == [field], body
        assert field in body["error"]
    assert Passport.objects.count() == 0
    assert AuditRecord.objects.count() == audits


def test_register_refuses_a_taken_identifier(boss, pack):
    body = {**REGISTER_BODY, "serial": "PK-0001"}
    response = api(boss).post("/api/passports", body, format="json")
    result = assert_envelope(response, 409, "duplicate_identifier")
    assert result["details"] == {"serial": ["Already registered."]}
    assert Passport.objects.count() == 1


def test_auditors_register_nothing(make_user):
    response = api(make_user(Role.AUDITOR)).post(
        "/api/passports", REGISTER_BODY, format="json"
    )
    assert_envelope(response, 403, "permission_denied")
    assert Passport.objects.count() == 0


# --- list and registry ----------------------------------------------------------------


@pytest.fixture
def fleet(boss, pack):
    """PK-0001 warehoused; PK-0002 QA failed and on hold (lot LOT-8); a module
    and a cell, manufactured."""
    other = register(boss, "PK-0002", lot="LOT-8")
    append(boss, other, EventKind.QA_FAILED, reason="IR too high")
    append(boss, other, EventKind.HELD, reason="Investigation")
    register(boss, "MD-0001", kind=Kind.MODULE)
    register(boss, "CL-0001", kind=Kind.CELL)
    return pack


def serials(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["serial"] for row in response.json()["results"]]


def test_list_shape_and_pagination(make_user, fleet):
    response = api(make_user()).get("/api/passports?ordering=serial&page_size=3")
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    assert body["previous"] is None
    assert "page=2" in body["next"]
    assert [r["serial"] for r in body["results"]] == ["CL-0001", "MD-0001", "PK-0001"]
    row = body["results"][2]
    assert set(row) == SUMMARY_KEYS
    assert row == {
        "id": str(fleet.uuid),
        "serial": "PK-0001",
        "kind": "Pack",
        "bpan": fleet.bpan,
        "model": "PK-48V-100",
        "lot": "LOT-7",
        "state": "Warehoused",
        "onHold": False,
        "holdReason": "",
        "custodian": {"kind": "Manufacturer", "name": "BPM Energy"},
        "version": 4,
        "manufacturedAt": row["manufacturedAt"],
        "updatedAt": row["updatedAt"],
    }
    assert row["manufacturedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=Pack", ["PK-0001", "PK-0002"]),
        ("kind=cell", ["CL-0001"]),
        ("state=QA%20Failed", ["PK-0002"]),
        ("state=qa_failed", ["PK-0002"]),
        ("state=Warehoused", ["PK-0001"]),
        ("custodianKind=Manufacturer", ["CL-0001", "MD-0001", "PK-0001", "PK-0002"]),
        ("custodianKind=customer", []),
        ("lot=LOT-8", ["PK-0002"]),
        ("onHold=true", ["PK-0002"]),
        ("onHold=false", ["CL-0001", "MD-0001", "PK-0001"]),
        ("search=PK-00", ["PK-0001", "PK-0002"]),
        ("search=8901234500017", ["PK-0001"]),
        ("search=MD-16S", ["MD-0001"]),
    ],
)
def test_list_filters_and_search(make_user, fleet, query, expected):
    response = api(make_user()).get(f"/api/passports?{query}&ordering=serial")
    assert serials(response) == expected


def test_list_search_by_bpan_and_ordering(make_user, fleet):
    client = api(make_user())
    assert serials(client.get(f"/api/passports?search={fleet.bpan[:12]}")) == [
        "PK-0001"
    ]
    assert serials(client.get("/api/passports?ordering=-serial")) == [
        "PK-0002",
        "PK-0001",
        "MD-0001",
        "CL-0001",
    ]


def test_list_refuses_an_unknown_state(make_user, fleet):
    response = api(make_user()).get("/api/passports?state=Lost")
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == ["state"]


def test_registry_lists_the_last_event(make_user, fleet, django_assert_num_queries):
    client = api(make_user(Role.PLANNER))
    with django_assert_num_queries(3):  # user, count, page
        response = client.get("/api/registry?ordering=serial")
    rows = {row["serial"]: row for row in response.json()["results"]}
    assert set(rows["PK-0002"]) == SUMMARY_KEYS | {"lastEvent"}
    last = rows["PK-0002"]["lastEvent"]
    event = PassportEvent.objects.get(passport__serial="PK-0002", version=3)
    assert last == {
        "version": 3,
        "kind": "held",
        "label": "Put on hold",
        "occurredAt": event.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert rows["PK-0001"]["lastEvent"]["kind"] == "warehoused"
    assert rows["CL-0001"]["lastEvent"]["kind"] == "manufactured"
    filtered = client.get("/api/registry?onHold=true")
    assert serials(filtered) == ["PK-0002"]


def test_registry_detail_is_the_trace(make_user, pack):
    client = api(make_user(Role.AUDITOR))
    assert (
        client.get("/api/registry/PK-0001").json()
        == client.get("/api/passports/PK-0001").json()
    )


# --- identity resolution --------------------------------------------------------------


def _identifiers(pack) -> dict[str, str]:
    bpan = pack.bpan
    return {
        "uuid": str(pack.uuid),
        "serial": "PK-0001",
        "barcode": "8901234500017",
        "rfid": "e200341201b8",  # stored upper-case; typed in lower
        "bpan": bpan,
    }


def test_lookup_by_every_identifier(make_user, pack):
    client = api(make_user())
    hyphenated = "-".join(pack.bpan[i : i + 5] for i in range(0, 21, 5)).lower()
    cases = [*_identifiers(pack).items(), ("bpan", hyphenated)]
    for matched, identifier in cases:
        response = client.get("/api/passports/lookup", {"identifier": identifier})
        assert response.status_code == 200, (identifier, response.json())
        body = response.json()
        assert set(body) == {"matchedBy", "passport"}
        assert body["matchedBy"] == matched, identifier
        assert body["passport"]["id"] == str(pack.uuid)
        assert set(body["passport"]) == SUMMARY_KEYS


def test_detail_resolves_every_identifier(make_user, pack):
    client = api(make_user())
    spaced = " ".join(pack.bpan[i : i + 7] for i in range(0, 21, 7)).lower()
    for identifier in [*_identifiers(pack).values(), spaced]:
        response = client.get(f"/api/passports/{identifier}")
        assert response.status_code == 200, (identifier, response.json())
        assert response.json()["id"] == str(pack.uuid)


def test_unknown_and_ambiguous_identifiers(boss, make_user, pack):
    # PK-0002's serial is PK-0001's barcode: the same string names two passports.
    other = register(boss, "8901234500017")
    client = api(make_user())
    assert_envelope(client.get("/api/passports/NOPE-1"), 404, "not_found")
    assert_envelope(
        client.get("/api/passports/lookup", {"identifier": "NOPE-1"}), 404, "not_found"
    )
    body = assert_envelope(
        client.get("/api/passports/8901234500017"), 409, "ambiguous_identifier"
    )
    assert sorted(body["details"]["matches"]) == sorted(
        [str(pack.uuid), str(other.uuid)]
    )
    # The UUID still names each one.
    assert client.get(f"/api/passports/{other.uuid}").json()["serial"] == (
        "8901234500017"
    )
    missing = assert_envelope(
        client.get("/api/passports/lookup"), 400, "validation_error"
    )
    assert list(missing["details"]) == ["identifier"]


# --- restricted versus public ---------------------------------------------------------


def test_the_restricted_rule_is_declared_once():
    assert access.ACTIONS["passport-restricted"] == frozenset(PRIVILEGED)
    # The groups the API builds are exactly the model's declaration.
    assert set(PUBLIC_GROUP_KEYS) == set(PUBLIC_FIELDS)
    assert {"materials", "stateOfHealth"} == set(RESTRICTED_FIELDS) - set(PUBLIC_FIELDS)


@pytest.mark.parametrize("role", UNPRIVILEGED)
def test_detail_without_restricted_groups(make_user, pack, role):
    body = api(make_user(role)).get("/api/passports/PK-0001").json()
    assert body["restricted"] is False
    assert set(body) == DETAIL_BASE | set(PUBLIC_GROUP_KEYS)
    for group, keys in PUBLIC_GROUP_KEYS.items():
        assert set(body[group]) == keys, group
    text = str(body)
    for secret in ("8901234500017", "E200341201B8", "LiFePO4", "Graphite"):
        assert secret not in text


@pytest.mark.parametrize("role", PRIVILEGED)
def test_detail_with_restricted_groups(make_user, pack, role):
    body = api(make_user(role)).get("/api/passports/PK-0001").json()
    assert body["restricted"] is True
    groups = set(PUBLIC_GROUP_KEYS) | set(RESTRICTED_GROUP_KEYS)
    assert set(body) == DETAIL_BASE | groups | {"telemetry"}
    assert set(body["identity"]) == RESTRICTED_GROUP_KEYS["identity"]
    assert set(body["materials"]) == RESTRICTED_GROUP_KEYS["materials"]
    assert set(body["stateOfHealth"]) == RESTRICTED_GROUP_KEYS["stateOfHealth"]
    assert (body["identity"]["barcode"], body["identity"]["rfid"]) == (
        "8901234500017",
        "E200341201B8",
    )
    assert body["materials"] == {
        "cathodeMaterial": "LiFePO4",
        "anodeMaterial": "Graphite",
        "electrolyte": "LiPF6 in EC/DMC",
        "materialComposition": {"lithium": 3.1, "iron": 22.0},
        "recycledContent": {"lithium": 6.0},
    }
    assert body["stateOfHealth"] == {
        "sohPercent": None,
        "socPercent": None,
        "temperatureC": None,
        "telemetryAt": None,
    }
    assert body["telemetry"]["readings"] == 0
    assert [e["kind"] for e in body["ledger"]] == [
        "manufactured",
        "qa_passed",
        "provisioned",
        "warehoused",
    ]
    assert body["chemistry"] == {
        "chemistry": "LFP",
        "criticalRawMaterials": ["lithium", "graphite"],
        "hazardousSubstances": ["LiPF6"],
    }
    assert body["carbonFootprint"] == {
        "carbonFootprintKgCo2ePerKwh": 61.4,
        "carbonFootprintClass": "B",
    }


def test_public_passport_needs_no_token_and_shows_public_groups_only(pack):
    response = api().get(f"/api/passports/{pack.bpan.lower()}/public")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {
        "id",
        "serial",
        "kind",
        "state",
        "batteryStatus",
        "secondLife",
        "history",
    } | set(PUBLIC_GROUP_KEYS)
    assert body["batteryStatus"] == "Original"
    assert body["secondLife"] == {"predecessor": None, "successors": []}
    for group, keys in PUBLIC_GROUP_KEYS.items():
        assert set(body[group]) == keys
    assert body["history"][0] == {
        "version": 1,
        "kind": "manufactured",
        "label": "Manufactured",
        "occurredAt": body["history"][0]["occurredAt"],
    }
    assert [e["version"] for e in body["history"]] == [1, 2, 3, 4]
    text = str(body)
    for secret in ("sam", "8901234500017", "E200341201B8", "LiFePO4", "B-R1"):
        assert secret not in text  # no actor, barcode, RFID, materials, event data


def test_public_passport_does_not_answer_to_restricted_identifiers(pack):
    client = api()
    assert client.get(f"/api/passports/{pack.uuid}/public").status_code == 200
    assert client.get("/api/passports/PK-0001/public").status_code == 200
    assert_envelope(client.get("/api/passports/8901234500017/public"), 404, "not_found")
    assert_envelope(client.get("/api/passports/E200341201B8/public"), 404, "not_found")


def test_everything_else_needs_a_token(pack):
    for path in ("/api/passports", "/api/passports/PK-0001", "/api/registry"):
        assert_envelope(api().get(path), 401, "not_authenticated")


# --- ledger ---------------------------------------------------------------------------


def test_ledger_is_paginated_in_order_and_chained(make_user, pack):
    client = api(make_user())
    body = client.get("/api/passports/PK-0001/ledger?page_size=3").json()
    assert body["count"] == 4
    first, second, third = body["results"]
    assert set(first) == EVENT_KEYS
    assert [e["version"] for e in body["results"]] == [1, 2, 3]
    assert second["prevHash"] == first["hash"]
    assert third["prevHash"] == second["hash"]
    assert third == {
        "version": 3,
        "kind": "provisioned",
        "label": "Provisioned",
        "occurredAt": third["occurredAt"],
        "actor": "sam",
        "data": {"node": 1},
        "prevHash": second["hash"],
        "hash": PassportEvent.objects.get(passport=pack, version=3).hash,
        "signatures": [],
    }
    rest = client.get(body["next"]).json()["results"]
    assert [e["kind"] for e in rest] == ["warehoused"]
    assert rest[0]["hash"] == Passport.objects.get(pk=pack.pk).head_hash


# --- events ---------------------------------------------------------------------------


def test_an_operator_records_qa(make_user, boss):
    register(boss, "PK-0003")
    operator = make_user(Role.OPERATOR, username="olga")
    response = api(operator).post(
        "/api/passports/PK-0003/events",
        {"kind": "qa_passed", "data": {"test": "EOL-7", "note": "ok"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"event", "passport"}
    assert set(body["event"]) == EVENT_KEYS
    assert (body["event"]["version"], body["event"]["actor"]) == (2, "olga")
    assert body["event"]["data"] == {"test": "EOL-7", "note": "ok"}
    assert (body["passport"]["state"], body["passport"]["version"]) == (
        "QA Passed",
        2,
    )
    assert AuditRecord.objects.filter(action="passport.qa_passed").count() == 1


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("held", {"reason": "x"}),
        ("dispatched", {"carrier": "BlueDart"}),
        ("end_of_life", {"reason": "x"}),
        ("custody_transferred", {"to": {"kind": "recycler", "name": "R"}}),
    ],
)
def test_supervisor_kinds_are_refused_to_the_floor(make_user, pack, kind, data):
    before = counts(pack)
    response = api(make_user(Role.OPERATOR)).post(
        "/api/passports/PK-0001/events", {"kind": kind, "data": data}, format="json"
    )
    assert_envelope(response, 403, "permission_denied")
    assert counts(pack) == before


def test_every_recordable_kind_has_an_action_rule():
    from passports.services import RECORDABLE_KINDS

    floor = {"qa_passed", "qa_failed", "warehoused", "reserved", "serviced"}
    for kind in RECORDABLE_KINDS:
        rule = access.ACTIONS[f"passport-event.{kind}"]
        assert rule <= access.POLICY["passport-events"]["POST"]
        if kind in floor:
            assert rule == access.SHOP_FLOOR, kind
        if kind in {"held", "released", "dispatched", "delivered", "end_of_life"}:
            assert rule == access.SUPERVISORS, kind


def test_hold_blocks_dispatch_with_409_and_changes_nothing(boss, pack):
    client = api(boss)
    held = client.post(
        "/api/passports/PK-0001/events",
        {"kind": "held", "data": {"reason": "Cell imbalance"}},
        format="json",
    )
    assert held.status_code == 201
    assert held.json()["passport"]["onHold"] is True
    assert held.json()["passport"]["holdReason"] == "Cell imbalance"
    before = counts(pack)
    response = client.post(
        "/api/passports/PK-0001/events",
        {"kind": "dispatched", "data": {"carrier": "BlueDart"}},
        format="json",
    )
    body = assert_envelope(response, 409, "on_hold")
    assert body["details"] == {
        "state": "warehoused",
        "event": "dispatched",
        "onHold": True,
    }
    assert counts(pack) == before
    assert Passport.objects.get(pk=pack.pk).state == "warehoused"


@pytest.mark.parametrize(
    ("kind", "data", "code"),
    [
        ("delivered", {"customer": "Acme"}, "illegal_transition"),
        ("recycled", {}, "illegal_transition"),
        ("qa_passed", {}, "illegal_transition"),
    ],
)
def test_illegal_transitions_are_409_and_change_nothing(boss, pack, kind, data, code):
    before = counts(pack)
    response = api(boss).post(
        "/api/passports/PK-0001/events", {"kind": kind, "data": data}, format="json"
    )
    assert_envelope(response, 409, code)
    assert counts(pack) == before


def test_dispatching_a_failed_pack_is_refused(boss):
    failed = register(boss, "PK-0009")
    append(boss, failed, EventKind.QA_FAILED, reason="Leak")
    before = counts(failed)
    response = api(boss).post(
        "/api/passports/PK-0009/events",
        {"kind": "dispatched", "data": {"carrier": "BlueDart"}},
        format="json",
    )
    assert_envelope(response, 409, "illegal_transition")
    assert counts(failed) == before


def test_expected_version_conflict(boss, pack):
    before = counts(pack)
    response = api(boss).post(
        "/api/passports/PK-0001/events",
        {"kind": "reserved", "data": {"reference": "SO-1"}, "expectedVersion": 3},
        format="json",
    )
    body = assert_envelope(response, 409, "version_conflict")
    assert body["details"] == {"expected": 3, "actual": 4}
    assert counts(pack) == before
    ok = api(boss).post(
        "/api/passports/PK-0001/events",
        {"kind": "reserved", "data": {"reference": "SO-1"}, "expectedVersion": 4},
        format="json",
    )
    assert ok.status_code == 201
    assert ok.json()["passport"]["state"] == "Reserved"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "teleported"}, "kind"),
        ({}, "kind"),
        ({"kind": "held", "data": {}}, "data.reason"),
        ({"kind": "held", "data": "no"}, "data"),
        (
            {"kind": "held", "data": {"reason": "x"}, "expectedVersion": "4"},
            "expectedVersion",
        ),
        (
            {"kind": "held", "data": {"reason": "x"}, "occurredAt": "yesterday"},
            "occurredAt",
        ),
        (
            {
                "kind": "held",
                "data": {"reason": "x"},
                "occurredAt": "2099-01-01T00:00:00Z",
            },
            "occurredAt",
        ),
    ],
)
def test_bad_event_input_is_400_naming_the_field(boss, pack, payload, field):
    before = counts(pack)
    response = api(boss).post("/api/passports/PK-0001/events", payload, format="json")
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == [field]
    assert counts(pack) == before


def test_events_on_an_unknown_passport_are_404(boss):
    response = api(boss).post(
        "/api/passports/NOPE/events", {"kind": "qa_passed"}, format="json"
    )
    assert_envelope(response, 404, "not_found")


# --- custody --------------------------------------------------------------------------


def _delivered(boss, pack):
    append(boss, pack, EventKind.DISPATCHED, carrier="BlueDart")
    append(boss, pack, EventKind.DELIVERED, customer="Acme Fleet")


def test_custody_transfer_follows_the_chain(boss, pack):
    _delivered(boss, pack)
    response = api(boss).post(
        f"/api/passports/{pack.uuid}/custody",
        {"to": {"kind": "Service", "name": "QuickFix"}, "reference": "RMA-1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["event"]["kind"] == "custody_transferred"
    assert body["event"]["data"] == {
        "to": {"kind": "service", "name": "QuickFix"},
        "reference": "RMA-1",
    }
    assert body["passport"]["custodian"] == {"kind": "Service", "name": "QuickFix"}
    assert body["passport"]["state"] == "In Service"


def test_custody_cannot_skip_a_link(boss, pack):
    before = counts(pack)
    client = api(boss)
    response = client.post(
        "/api/passports/PK-0001/custody",
        {"to": {"kind": "customer", "name": "Acme"}},
        format="json",
    )
    assert_envelope(response, 409, "custody_violation")
    response = client.post(
        "/api/passports/PK-0001/custody",
        {"to": {"kind": "recycler", "name": "ReCell"}},  # not at end of life
        format="json",
    )
    assert_envelope(response, 409, "custody_violation")
    assert counts(pack) == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "to"),
        ({"to": {"kind": "pirate", "name": "X"}}, "to.kind"),
        ({"to": {"kind": "service"}}, "to.name"),
        (
            {"to": {"kind": "service", "name": "Q"}, "expectedVersion": 0},
            "expectedVersion",
        ),
    ],
)
def test_custody_input_errors_name_the_field(boss, pack, payload, field):
    before = counts(pack)
    response = api(boss).post("/api/passports/PK-0001/custody", payload, format="json")
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == [field]
    assert counts(pack) == before


def test_custody_is_for_supervisors(make_user, pack):
    response = api(make_user(Role.OPERATOR)).post(
        "/api/passports/PK-0001/custody",
        {"to": {"kind": "recycler", "name": "R"}},
        format="json",
    )
    assert_envelope(response, 403, "permission_denied")


# --- genealogy ------------------------------------------------------------------------


def test_assemble_and_read_the_genealogy_both_ways(make_user, boss):
    pack = register(boss, "PK-0200")
    module = register(boss, "MD-0200", kind=Kind.MODULE, barcode="MOD-BC-1")
    cells = [
        register(boss, f"CL-020{n}", kind=Kind.CELL, rfid=f"AB0{n}") for n in (1, 2)
    ]
    for passport in [module, *cells]:
        append(boss, passport, EventKind.QA_PASSED)
    operator = api(make_user(Role.OPERATOR))
    response = operator.post(
        "/api/passports/MD-0200/components",
        {"components": ["CL-0201", "ab02"]},  # a serial and an RFID tag
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert [c["serial"] for c in response.json()["components"]] == [
        "CL-0201",
        "CL-0202",
    ]
    response = operator.post(
        f"/api/passports/{pack.uuid}/components",
        {"components": ["mod-bc-1"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    tree = operator.get("/api/passports/PK-0200/genealogy").json()
    assert set(tree) == {"passport", "ancestors", "components"}
    assert tree["ancestors"] == []
    [mod] = tree["components"]
    assert set(mod) == REF_KEYS | {"components"}
    assert (mod["serial"], mod["kind"], mod["state"]) == (
        "MD-0200",
        "Module",
        "Assembled",
    )
    assert [(c["serial"], c["kind"]) for c in mod["components"]] == [
        ("CL-0201", "Cell"),
        ("CL-0202", "Cell"),
    ]
    up = operator.get("/api/passports/CL-0202/genealogy").json()
    assert [a["serial"] for a in up["ancestors"]] == ["MD-0200", "PK-0200"]
    assert up["components"] == []
    detail = operator.get("/api/passports/MD-0200").json()
    assert detail["genealogy"]["componentCount"] == 2
    assert detail["genealogy"]["parent"]["serial"] == "PK-0200"
    assert set(detail["genealogy"]["parent"]) == REF_KEYS


def test_assembly_refusals_write_nothing(boss):
    module = register(boss, "MD-0300", kind=Kind.MODULE)
    cell = register(boss, "CL-0301", kind=Kind.CELL)
    append(boss, cell, EventKind.QA_PASSED)
    client = api(boss)
    before = counts(cell)
    missing = client.post(
        "/api/passports/MD-0300/components",
        {"components": ["CL-0301", "CL-GONE"]},
        format="json",
    )
    body = assert_envelope(missing, 404, "not_found")
    assert body["details"]["components"] == {
        "1": ["CL-GONE: No passport has this identifier."]
    }
    wrong = client.post(
        "/api/passports/CL-0301/components",
        {"components": ["MD-0300"]},  # a module does not go into a cell
        format="json",
    )
    assert_envelope(wrong, 400, "validation_error")
    empty = client.post("/api/passports/MD-0300/components", {}, format="json")
    assert list(assert_envelope(empty, 400, "validation_error")["details"]) == [
        "components"
    ]
    assert counts(cell) == before
    assert Passport.objects.get(pk=cell.pk).parent_id is None
    assert Passport.objects.get(pk=module.pk).components.count() == 0


# --- verification ---------------------------------------------------------------------


def test_verify_is_for_audit_readers_and_finds_a_forged_projection(make_user, pack):
    auditor = api(make_user(Role.AUDITOR))
    body = auditor.get("/api/passports/verify").json()
    assert body == {
        "ok": True,
        "passportsChecked": 1,
        "eventsChecked": 4,
        "firstBroken": None,
        "unverifiable": [],
    }
    assert_envelope(
        api(make_user(Role.SUPERVISOR)).get("/api/passports/verify"),
        403,
        "permission_denied",
    )
    # The passport row is not append-only; forge its state behind the ledger.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE passports_passport SET state = 'dispatched' WHERE id = %s",
            [pack.pk],
        )
    body = auditor.get("/api/passports/verify", {"identifier": pack.bpan}).json()
    assert body["ok"] is False
    assert body["firstBroken"]["problem"] == "projection"
    assert body["firstBroken"]["serial"] == "PK-0001"


# --- BPAN -----------------------------------------------------------------------------


def test_bpan_validate(make_user):
    client = api(make_user(Role.AUDITOR))
    good = a_bpan("12345")
    for written in (good, "-".join([good[:5], good[5:11], good[11:]]).lower()):
        response = client.post("/api/bpan/validate", {"bpan": written}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json() == {
            "valid": True,
            "bpan": good,
            "parts": {
                "bpan": good,
                "country": "IN",
                "manufacturerCode": "BPM",
                "chemistry": "LFP",
                "nominalVoltageV": 48,
                "energyKwh": 5,
                "manufactured": "2026-03",
                "plantCode": "P",
                "serial": "12345",
            },
        }
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    for bad, words in [
        (wrong_check, "check character"),
        (good[:-1], "21 characters"),
        ("", "required"),
    ]:
        response = client.post("/api/bpan/validate", {"bpan": bad}, format="json")
        body = assert_envelope(response, 400, "validation_error")
        assert list(body["details"]) == ["bpan"]
        assert words in body["details"]["bpan"][0]


# --- over a real socket ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_over_http_public_without_token_and_trace_with_one(http, make_user):
    boss = make_user(Role.SUPERVISOR, username="sam")
    pack = warehoused_pack(boss, "PK-0500", bpan=a_bpan("00500"))
    public = http.get(f"/api/passports/{pack.bpan}/public")
    assert public.status_code == 200
    assert public.json()["serial"] == "PK-0500"
    assert "materials" not in public.json()
    # A stale token does not stop the public page.
    stale = http.get(
        f"/api/passports/{pack.uuid}/public",
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert stale.status_code == 200
    trace = http.get("/api/passports/PK-0500", headers=bearer(boss))
    assert trace.json()["restricted"] is True
    assert len(trace.json()["ledger"]) == 4
    assert http.get("/api/passports/PK-0500").status_code == 401


def test_query_counts_do_not_grow_with_the_data(
    make_user, fleet, django_assert_num_queries
):
    client = api(make_user(Role.AUDITOR))
    with django_assert_num_queries(3):  # user, count, page
        assert client.get("/api/passports").json()["count"] == 4
    # user, resolve, ledger, its signatures, components count, telemetry totals,
    # daily trend
    with django_assert_num_queries(7):
        body = client.get("/api/passports/PK-0001").json()
    assert len(body["ledger"]) == 4


# --- the list page as values() rows (bpmos.listrows) --------------------------------


def test_list_page_is_byte_for_byte_the_serializers(make_user, fleet):
    from datetime import UTC, datetime

    from passports.api.views import PassportListView
    from tests.listrows_support import assert_same_page

    user = make_user()
    at = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    for path in (
        "/api/passports",
        "/api/passports?ordering=serial&page_size=3",
        "/api/passports?ordering=-version&page=2&page_size=2",
        "/api/passports?kind=pack&onHold=true",
        "/api/passports?search=PK-&custodianKind=manufacturer",
        "/api/passports?lot=LOT-none",
    ):
        assert_same_page(PassportListView, path, user, at=at)
    body = assert_same_page(PassportListView, "/api/passports", user, at=at)
    assert b'"bpan":null' in body
    assert b'"onHold":true' in body
