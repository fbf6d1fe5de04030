"""The EU attribute set (passports/attributes.py): the registry's declarations,
registration of the typed-in attributes, the attributes and completeness
endpoints, and the one validator shared with the conformity rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bpmos.roles import Role
from passports import attributes, conformity
from passports.attributes import ATTRIBUTES, BY_KEY, Source, Tier
from passports.models import PUBLIC_FIELDS, RESTRICTED_FIELDS, EventKind, Kind, Passport
from tests.conftest import api_as as api
from tests.factories_passports_api import a_bpan, append, register

pytestmark = pytest.mark.django_db

# Written here, not read from the code: the Battery Pass v1.2 submodels.
SUBMODELS = {
    "generalProductInformation",
    "carbonFootprint",
    "circularity",
    "materialComposition",
    "performanceAndDurability",
    "labels",
    "supplyChainDueDiligence",
}
# Every typed-in attribute an EV pack needs, as a registration body (camelCase).
EV_BODY = {
    "batteryCategory": "EV",
    "economicOperator": "BPM Energy GmbH",
    "minimumVoltageV": 40,
    "maximumVoltageV": 58.4,
    "originalPowerCapabilityW": 9600,
    "ratedMaximumPowerW": 12000,
    "initialRoundTripEfficiencyPercent": 95.5,
    "initialInternalResistanceMohm": 12.5,
    "expectedLifetimeYears": 10,
    "cRateLifeCycleTest": 0.5,
    "capacityThresholdForExhaustionPercent": 70,
    "idleTemperatureMinC": -20,
    "idleTemperatureMaxC": 45,
    "carbonFootprintPerStage": {
        "raw_material_extraction": 30.1,
        "main_production": 20.2,
        "distribution": 1.1,
        "end_of_life_recycling": 10.0,
    },
    "carbonFootprintStudy": "https://bpm.example/cf-study.pdf",
    "dismantlingInformation": "https://bpm.example/dismantling.pdf",
    "sparePartSources": ["BPM Spares, spares@bpm.example"],
    "safetyMeasures": "https://bpm.example/safety.pdf",
    "extinguishingAgent": "Water",
    "endOfLifeInformation": "https://bpm.example/end-of-life",
    "labels": ["separate_collection", "ce"],
    "declarationOfConformity": "https://bpm.example/doc.pdf",
    "testReport": "https://bpm.example/test-report.pdf",
    "dueDiligenceReport": "https://bpm.example/due-diligence.pdf",
}


def register_body(serial: str, **extra) -> dict:
    return {
        "kind": "Pack",
        "serial": serial,
        "model": "PK-48V-100",
        "lot": "LOT-7",
        "manufacturer": "BPM Energy",
        "manufacturerId": "IN-EPR-0042",
        "site": "Pune Plant 1",
        "manufacturedAt": "2026-03-02T08:00:00Z",
        "chemistry": "LFP",
        "ratedCapacityAh": 100,
        "nominalVoltageV": 48,
        "energyKwh": 5.12,
        "massKg": 41.5,
        "expectedCycles": 4000,
        "warrantyMonths": 60,
        "carbonFootprintKgCo2ePerKwh": 61.4,
        "carbonFootprintClass": "B",
        "cathodeMaterial": "LiFePO4",
        "anodeMaterial": "Graphite",
        "electrolyte": "LiPF6 in EC/DMC",
        "criticalRawMaterials": ["lithium", "graphite"],
        "hazardousSubstances": ["LiPF6"],
        "materialComposition": {"lithium": 3.1, "iron": 22.0},
        "recycledContent": {"lithium": 6.0},
        "bpan": a_bpan(serial[-5:]),
        **extra,
    }


# --- the registry ---------------------------------------------------------------


def test_every_attribute_reads_passport_fields_and_declares_its_terms():
    columns = {field.name for field in Passport._meta.get_fields()}
    for attribute in ATTRIBUTES:
        assert attribute.group in SUBMODELS, attribute.key
        assert set(attribute.fields) <= columns | {"state"}, attribute.key
        assert attribute.tier in set(Tier), attribute.key
        assert attribute.source in set(Source), attribute.key
        assert attribute.mandatory <= {"ev", "industrial", "lmt", "stationary"}
        assert attribute.label, attribute.key
        if attribute.dynamic:
            assert attribute.updated_field, attribute.key
    assert len(BY_KEY) == len(ATTRIBUTES)


def test_the_tiers_are_the_regulations():
    authority = [a.key for a in ATTRIBUTES if a.tier == Tier.AUTHORITY]
    assert authority == ["resultOfTestReport"]
    legitimate = {a.key for a in ATTRIBUTES if a.tier == Tier.LEGITIMATE_INTEREST}
    assert {
        "cathodeMaterial",
        "anodeMaterial",
        "electrolyteMaterial",
        "batteryMaterials",
        "dismantlingAndRemovalInformation",
        "sparePartSources",
        "safetyMeasures",
        "stateOfHealth",
        "stateOfCharge",
        "remainingCapacity",
        "remainingEnergy",
        "numberOfFullCycles",
        "energyThroughput",
        "temperatureExtremes",
        "timeInExtremeTemperatures",
        "deepDischargeEvents",
        "overchargeEvents",
    } <= legitimate
    dynamic = {a.key for a in ATTRIBUTES if a.dynamic}
    assert "batteryStatus" in dynamic
    assert BY_KEY["batteryStatus"].tier == Tier.PUBLIC


def test_the_detail_groups_never_show_a_field_above_their_tier():
    # The public groups of the detail and the public passport hold public
    # fields only; the restricted groups nothing of the authority tier.
    for names in PUBLIC_FIELDS.values():
        for name in names:
            assert attributes.FIELD_TIER.get(name, Tier.PUBLIC) == Tier.PUBLIC, name
    for names in RESTRICTED_FIELDS.values():
        for name in names:
            assert attributes.FIELD_TIER.get(name, Tier.PUBLIC) != Tier.AUTHORITY


def test_reader_tiers_per_role(make_user):
    expected = {
        Role.OPERATOR: ["public"],
        Role.PLANNER: ["public"],
        Role.SUPERVISOR: ["public", "legitimate_interest"],
        Role.PLANT_HEAD: ["public", "legitimate_interest"],
        Role.ADMIN: ["public", "legitimate_interest", "authority"],
        Role.AUDITOR: ["public", "legitimate_interest", "authority"],
    }
    for role, tiers in expected.items():
        assert list(attributes.reader_tiers(make_user(role))) == tiers, role
    inactive = make_user(Role.AUDITOR, is_active=False)
    assert list(attributes.reader_tiers(inactive)) == ["public"]


# --- registration and the attributes endpoint -----------------------------------


def test_registration_stores_the_typed_in_attributes(make_user):
    boss = make_user(Role.SUPERVISOR)
    response = api(boss).post(
        "/api/passports", register_body("PACK-EV-00001", **EV_BODY), format="json"
    )
    assert response.status_code == 201, response.json()
    pack = Passport.objects.get(serial="PACK-EV-00001")
    assert pack.battery_category == "ev"
    assert pack.minimum_voltage_v == Decimal("40.00")
    assert pack.idle_temperature_min_c == Decimal("-20.0")
    assert pack.labels == ["separate_collection", "ce"]
    assert pack.test_report == "https://bpm.example/test-report.pdf"
    assert pack.carbon_footprint_per_stage["main_production"] == 20.2


@pytest.mark.parametrize(
    ("field", "value", "model_field"),
    [
        ("batteryCategory", "portable", "batteryCategory"),
        ("minimumVoltageV", -1, "minimumVoltageV"),
        ("minimumVoltageV", 60, "minimumVoltageV"),  # above the maximum given
        ("initialRoundTripEfficiencyPercent", 101, "initialRoundTripEfficiencyPercent"),
        ("originalPowerCapabilityW", 1e12, "originalPowerCapabilityW"),
        ("originalPowerCapabilityW", "0.05", "originalPowerCapabilityW"),
        ("cRateLifeCycleTest", True, "cRateLifeCycleTest"),
        ("expectedLifetimeYears", 0, "expectedLifetimeYears"),
        ("testReport", "ftp://x/y", "testReport"),
        ("testReport", "https://x/" + "a" * 300, "testReport"),
        ("labels", ["ce", "ce"], "labels"),
        ("labels", ["unicorn"], "labels"),
        ("carbonFootprintPerStage", {"main_production": 1}, "carbonFootprintPerStage"),
        ("sparePartSources", "BPM", "sparePartSources"),
        ("idleTemperatureMinC", 50, "idleTemperatureMinC"),  # not below the max
    ],
)
def test_a_bad_attribute_is_400_naming_it_and_nothing_is_written(
    make_user, field, value, model_field
):
    boss = make_user(Role.SUPERVISOR)
    body = register_body("PACK-EV-00002", **{**EV_BODY, field: value})
    response = api(boss).post("/api/passports", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["details"]) == [model_field]
    assert not Passport.objects.filter(serial="PACK-EV-00002").exists()


def values_by_key(body: dict) -> dict:
    return {row["key"]: row for row in body["attributes"]}


def test_attributes_endpoint_shows_each_tier_to_its_readers(make_user):
    boss = make_user(Role.SUPERVISOR)
    api(boss).post(
        "/api/passports", register_body("PACK-EV-00003", **EV_BODY), format="json"
    )
    pack = Passport.objects.get(serial="PACK-EV-00003")
    url = f"/api/passports/{pack.uuid}/attributes"

    public = api().get(url).json()
    assert public["tiers"] == ["public"]
    rows = values_by_key(public)
    assert {row["tier"] for row in rows.values()} == {"public"}
    assert rows["ratedCapacity"] == {
        "key": "ratedCapacity",
        "group": "performanceAndDurability",
        "label": "Rated capacity",
        "tier": "public",
        "unit": "Ah",
        "source": "typed_in",
        "value": 100.0,
    }
    assert rows["batteryCategory"]["value"] == "ev"
    assert rows["batteryStatus"]["value"] == "Original"
    assert rows["batteryStatus"]["lastUpdate"] == "2026-03-02T08:00:00Z"
    assert "cathodeMaterial" not in rows
    assert "resultOfTestReport" not in rows

    legit = values_by_key(api(boss).get(url).json())
    assert legit["cathodeMaterial"]["value"] == "LiFePO4"
    assert legit["stateOfHealth"] == {
        **legit["stateOfHealth"],
        "value": None,
        "lastUpdate": None,
    }
    assert "resultOfTestReport" not in legit

    auditor = values_by_key(api(make_user(Role.AUDITOR)).get(url).json())
    assert auditor["resultOfTestReport"]["value"] == (
        "https://bpm.example/test-report.pdf"
    )
    assert len(auditor) == len(ATTRIBUTES)


def test_attributes_without_a_token_answer_only_to_public_identifiers(make_user):
    boss = make_user(Role.SUPERVISOR)
    pack = register(boss, "PACK-RF-00001", barcode="BC-PRIVATE-1")
    assert api().get("/api/passports/BC-PRIVATE-1/attributes").status_code == 404
    assert api(boss).get("/api/passports/BC-PRIVATE-1/attributes").status_code == 200
    assert api().get(f"/api/passports/{pack.serial}/attributes").status_code == 200


def test_dynamic_attributes_carry_their_last_update(make_user):
    boss = make_user(Role.SUPERVISOR)
    pack = register(boss, "PACK-DY-00001")
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    Passport.objects.filter(pk=pack.pk).update(
        soh_percent=90.0,
        telemetry_at=at,
        full_cycles=120,
        usage_updated_at=at,
    )
    rows = values_by_key(api(boss).get(f"/api/passports/{pack.uuid}/attributes").json())
    assert rows["stateOfHealth"]["value"] == 90.0
    assert rows["remainingCapacity"]["value"] == 90.0  # 100 Ah x 90 %
    assert rows["remainingEnergy"]["value"] == 4.608  # 5.12 kWh x 90 %
    assert rows["remainingCapacity"]["lastUpdate"] == "2026-06-01T12:00:00Z"
    assert rows["numberOfFullCycles"] == {
        **rows["numberOfFullCycles"],
        "value": 120,
        "lastUpdate": "2026-06-01T12:00:00Z",
        "source": "telemetry",
    }
    assert "lastUpdate" not in rows["ratedCapacity"]


# --- completeness ---------------------------------------------------------------


def ev_pack(actor, serial: str, **extra) -> Passport:
    data = {
        attributes_name: value
        for attributes_name, value in {
            "battery_category": "ev",
            "economic_operator": "BPM Energy GmbH",
            "minimum_voltage_v": Decimal(40),
            "maximum_voltage_v": Decimal("58.4"),
            "original_power_capability_w": Decimal(9600),
            "rated_maximum_power_w": Decimal(12000),
            "initial_round_trip_efficiency_percent": Decimal("95.5"),
            "initial_internal_resistance_mohm": Decimal("12.5"),
            "expected_lifetime_years": 10,
            "c_rate_life_cycle_test": Decimal("0.5"),
            "capacity_threshold_for_exhaustion_percent": Decimal(70),
            "idle_temperature_min_c": Decimal(-20),
            "idle_temperature_max_c": Decimal(45),
            "carbon_footprint_per_stage": EV_BODY["carbonFootprintPerStage"],
            "carbon_footprint_study": EV_BODY["carbonFootprintStudy"],
            "dismantling_information": EV_BODY["dismantlingInformation"],
            "spare_part_sources": EV_BODY["sparePartSources"],
            "safety_measures": EV_BODY["safetyMeasures"],
            "extinguishing_agent": "Water",
            "end_of_life_information": EV_BODY["endOfLifeInformation"],
            "labels": EV_BODY["labels"],
            "declaration_of_conformity": EV_BODY["declarationOfConformity"],
            "test_report": EV_BODY["testReport"],
            "due_diligence_report": EV_BODY["dueDiligenceReport"],
            "recycled_content": {"lithium": 6.0},
            **extra,
        }.items()
    }
    return register(actor, serial, bpan=a_bpan(serial[-5:]), **data)


def test_a_complete_ev_pack_is_100_percent(make_user):
    pack = ev_pack(make_user(Role.SUPERVISOR), "PACK-CO-00001")
    result = attributes.completeness(attributes.values_of(pack))
    assert result.as_dict() == {
        "category": "EV",
        "percent": 100.0,
        "complete": True,
        "mandatory": len(result.mandatory),
        "present": len(result.mandatory),
        "missing": [],
    }
    # Not in use yet: no telemetry attribute is asked; the status is.
    keys = {a.key for a in result.mandatory}
    assert "stateOfHealth" not in keys
    assert "batteryStatus" in keys
    assert "remainingEnergy" not in keys


def test_completeness_names_what_is_missing_and_counts_it(make_user):
    boss = make_user(Role.SUPERVISOR)
    pack = ev_pack(boss, "PACK-CO-00002", labels=[], test_report="")
    body = api(make_user(Role.OPERATOR)).get(f"/api/passports/{pack.uuid}/completeness")
    assert body.status_code == 200
    data = body.json()
    assert data["missing"] == [
        {"key": "labels", "group": "labels", "label": BY_KEY["labels"].label},
        {
            "key": "resultOfTestReport",
            "group": "labels",
            "label": BY_KEY["resultOfTestReport"].label,
        },
    ]
    assert data["present"] == data["mandatory"] - 2
    expected = round(data["present"] * 100 / data["mandatory"], 1)
    assert data["percent"] == expected
    assert data["complete"] is False
    assert data["category"] == "EV"


def test_the_category_decides_what_is_mandatory(make_user):
    boss = make_user(Role.SUPERVISOR)
    # capacityThresholdForExhaustion is asked of EV batteries only.
    lmt = ev_pack(
        boss,
        "PACK-CO-00003",
        battery_category="lmt",
        capacity_threshold_for_exhaustion_percent=None,
    )
    assert attributes.completeness(attributes.values_of(lmt)).complete
    ev = ev_pack(boss, "PACK-CO-00004", capacity_threshold_for_exhaustion_percent=None)
    missing = attributes.completeness(attributes.values_of(ev)).missing
    assert [a.key for a in missing] == ["capacityThresholdForExhaustion"]
    # No category declared: what every category needs, and the category.
    none = ev_pack(boss, "PACK-CO-00005", battery_category="")
    result = attributes.completeness(attributes.values_of(none))
    assert [a.key for a in result.missing] == ["batteryCategory"]
    assert "recycledContent" not in {a.key for a in result.mandatory}


def test_a_cell_is_not_asked_what_the_pack_declares(make_user):
    cell = register(make_user(Role.SUPERVISOR), "CELL-CO-00001", kind=Kind.CELL)
    result = attributes.completeness(
        {**attributes.values_of(cell), "battery_category": "ev"}
    )
    keys = {a.key for a in result.mandatory}
    assert "labels" not in keys
    assert "batteryCategory" not in keys
    assert "ratedCapacity" in keys
    assert result.complete


def test_in_service_the_dynamic_data_is_mandatory(make_user):
    boss = make_user(Role.SUPERVISOR)
    pack = ev_pack(boss, "PACK-CO-00006")
    for kind, data in [
        (EventKind.QA_PASSED, {}),
        (EventKind.PROVISIONED, {"node": 1}),
        (EventKind.WAREHOUSED, {}),
        (EventKind.DISPATCHED, {"carrier": "DHL"}),
        (EventKind.DELIVERED, {"customer": "Fleet Co"}),
    ]:
        append(boss, pack, kind, **data)
    pack.refresh_from_db()
    assert pack.state == "in_service"
    missing = [
        a.key for a in attributes.completeness(attributes.values_of(pack)).missing
    ]
    assert missing == [
        "stateOfHealth",
        "stateOfCharge",
        "remainingCapacity",
        "remainingEnergy",
        "numberOfFullCycles",
        "energyThroughput",
        "temperatureExtremes",
        "timeInExtremeTemperatures",
        "deepDischargeEvents",
        "overchargeEvents",
    ]


def test_the_conformity_rules_call_the_same_validator(make_user):
    # A value the registry calls invalid fails the rule built on it, and the
    # other way round (the rules hold no copy of the checks).
    pairs = {
        "capacity.mass": "batteryMass",
        "identity.serial": "batteryIdentifier",
        "manufacturer.site": "manufacturingPlace",
        "carbon.class": "carbonFootprintPerformanceClass",
        "chemistry.critical_raw_materials": "criticalRawMaterials",
    }
    pack = register(make_user(Role.SUPERVISOR), "PACK-VA-00001", bpan=a_bpan("00009"))
    base = {**conformity.values_of(pack), **attributes.values_of(pack)}
    bad_values = {
        "mass_kg": [None, Decimal(0), Decimal("-1"), float("nan"), "41"],
        "serial": ["", " x", "a\x00b"],
        "site": ["", None, 5],
        "carbon_footprint_class": ["", "H", "b", "A++++"],
        "critical_raw_materials": [[], ["x", "X"], "lithium"],
    }
    for rule_id, key in pairs.items():
        rule = conformity.RULES_BY_ID[rule_id]
        attribute = BY_KEY[key]
        assert rule.passes(base)
        assert attribute.valid(base)
        for value in bad_values[attribute.fields[0]]:
            row = {**base, attribute.fields[0]: value}
            assert not rule.passes(row), (rule_id, value)
            assert not attribute.valid(row), (key, value)


def test_the_score_counts_completeness_with_the_same_validator(make_user):
    from compliance import score

    boss = make_user(Role.SUPERVISOR)
    ev_pack(boss, "PACK-SC-00001")
    ev_pack(boss, "PACK-SC-00002", labels=[])
    ev_pack(boss, "PACK-SC-00003", battery_category="", labels=[])
    snapshot = score.score_compute()
    assert snapshot.completeness["complete"] == 1
    assert snapshot.completeness["perCategory"] == {
        "ev": {"total": 2, "complete": 1},
        "undeclared": {"total": 1, "complete": 0},
    }
    assert snapshot.completeness["missing"] == [
        {"key": "labels", "count": 2},
        {"key": "batteryCategory", "count": 1},
    ]


def test_docs_table_maps_every_attribute_to_its_field_tier_and_source():
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "passports.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): [c.strip() for c in line.split("|")]
        for line in text.splitlines()
        if line.startswith("| `") and line.count("|") == 9
    }
    for attribute in ATTRIBUTES:
        row = rows.get(attribute.key)
        assert row is not None, attribute.key
        assert f"`{attribute.our_field}`" in row[3], attribute.key
        assert row[4] == (attribute.unit or ""), attribute.key
        assert row[5] == str(attribute.tier), attribute.key
        assert row[6] == str(attribute.source), attribute.key
