"""A passport exported as Battery Pass JSON and as an AAS V3.0 environment
(passports/export.py), validated against the schemas kept in
passports/schemas/ (their sources named in each), honouring the access tiers,
audited. Through the real HTTP client, on PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from basyx.aas import model
from basyx.aas.adapter.json import read_aas_json_file

from elog.models import AuditRecord
from passports import attributes, export
from passports.models import Passport
from tests.conftest import api_as as api
from tests.test_passport_attributes import EV_BODY, register_body

pytestmark = pytest.mark.django_db

SCHEMAS = Path(__file__).resolve().parent.parent / "passports" / "schemas"
BATTERYPASS = json.loads((SCHEMAS / "batterypass-1.2.0-export.schema.json").read_text())
AAS = json.loads((SCHEMAS / "aas-3.0-environment.schema.json").read_text())
FORMATS = jsonschema.FormatChecker()


@pytest.fixture
def pack(make_user):
    boss = make_user("supervisor", username="sam")
    reply = api(boss).post(
        "/api/passports", register_body("PK-EXP-00001", **EV_BODY), format="json"
    )
    assert reply.status_code == 201, reply.content
    return reply.json()


def get(user, identifier, fmt):
    return api(user).get(f"/api/passports/{identifier}/export", {"format": fmt})


def test_the_schemas_themselves_are_valid():
    jsonschema.Draft202012Validator.check_schema(BATTERYPASS)
    jsonschema.Draft201909Validator.check_schema(AAS)


def test_batterypass_export_validates_and_holds_the_public_tier_only(pack):
    reply = get(None, pack["id"], "batterypass")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    jsonschema.Draft202012Validator(BATTERYPASS, format_checker=FORMATS).validate(body)
    assert body["tiers"] == ["public"]
    gpi = body["generalProductInformation"]
    assert gpi["productIdentifier"] == "PK-EXP-00001"
    assert "batteryIdentifier" not in gpi  # the registry's name, mapped
    assert gpi["batteryPassportIdentifier"] == pack["id"]
    # The manufacturer and the operator as the data model's contact entities,
    # with what the plant holds; the site stays a text (the data model's
    # manufacturingPlace holds a postal address only).
    assert gpi["manufacturerInformation"] == {
        "contactName": "BPM Energy",
        "identifier": "IN-EPR-0042",
    }
    assert "manufacturerIdentification" not in gpi
    assert gpi["operatorInformation"] == {"contactName": "BPM Energy GmbH"}
    assert gpi["manufacturingPlace"] == "Pune Plant 1"
    performance = body["performanceAndDurability"]
    assert performance["batteryTechicalProperties"]["ratedCapacity"] == 100.0
    assert "batteryCondition" not in performance  # its attributes are not public
    assert body["carbonFootprint"]["carbonFootprintPerLifecycleStage"] == [
        {"lifecycleStage": "RawMaterialExtraction", "carbonFootprint": 30.1},
        {"lifecycleStage": "MainProduction", "carbonFootprint": 20.2},
        {"lifecycleStage": "Distribution", "carbonFootprint": 1.1},
        {"lifecycleStage": "Recycling", "carbonFootprint": 10.0},
    ]
    # legitimate-interest and authority attributes are left out
    assert "cathodeMaterial" not in body["materialComposition"]
    assert "barcode" not in gpi
    assert "resultOfTestReport" not in body["labels"]


def test_a_supervisor_gets_the_legitimate_interest_tier_an_auditor_authority(
    pack, make_user
):
    body = get(make_user("supervisor"), pack["id"], "batterypass").json()
    jsonschema.Draft202012Validator(BATTERYPASS, format_checker=FORMATS).validate(body)
    assert body["materialComposition"]["cathodeMaterial"] == "LiFePO4"
    assert "resultOfTestReport" not in body["labels"]
    audited = get(make_user("auditor"), pack["id"], "batterypass").json()
    assert audited["labels"]["resultOfTestReport"] == (
        "https://bpm.example/test-report.pdf"
    )


def test_aas_export_validates_against_the_aas_schema(pack, make_user):
    reply = get(make_user("auditor"), pack["id"], "aas")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    jsonschema.Draft201909Validator(AAS, format_checker=FORMATS).validate(body)
    (shell,) = body["assetAdministrationShells"]
    assert shell["assetInformation"]["globalAssetId"] == f"urn:uuid:{pack['id']}"
    submodels = {sm["idShort"]: sm for sm in body["submodels"]}
    assert set(submodels) == {
        "GeneralProductInformation",
        "CarbonFootprintForBatteries",
        "Circularity",
        "MaterialComposition",
        "PerformanceAndDurability",
        "Labeling",
        "SupplyChainDueDiligence",
    }
    assert [r["keys"][0]["value"] for r in shell["submodels"]] == [
        sm["id"] for sm in body["submodels"]
    ]
    gpi = submodels["GeneralProductInformation"]
    assert gpi["semanticId"]["keys"][0]["value"] == (
        "urn:samm:io.BatteryPass.GeneralProductInformation:1.2.0"
        "#GeneralProductInformation"
    )
    elements = {e["idShort"]: e for e in gpi["submodelElements"]}
    assert elements["batteryIdentifier"] == {
        "idShort": "batteryIdentifier",
        "modelType": "Property",
        "valueType": "xs:string",
        "value": "PK-EXP-00001",
    }
    assert elements["warrantyPeriod"]["valueType"] == "xs:integer"
    materials = {
        e["idShort"]: e for e in submodels["MaterialComposition"]["submodelElements"]
    }
    assert materials["batteryMaterials"]["modelType"] == "SubmodelElementCollection"
    assert materials["criticalRawMaterials"]["modelType"] == "SubmodelElementList"


def test_the_aas_schema_refuses_what_the_metamodel_refuses(pack):
    body = get(None, pack["id"], "aas").json()
    body["submodels"][0]["submodelElements"][0]["idShort"] = "1bad name"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(AAS).validate(body)
    body = get(None, pack["id"], "aas").json()
    body["submodels"][-1]["submodelElements"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(AAS).validate(body)


def test_the_batterypass_schema_refuses_an_unknown_attribute(pack):
    body = get(None, pack["id"], "batterypass").json()
    body["circularity"]["madeUpAttribute"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(BATTERYPASS).validate(body)


def test_every_export_is_audited(pack, make_user):
    before = AuditRecord.objects.filter(action="passport.exported").count()
    get(None, pack["id"], "aas")
    planner = make_user("planner")
    get(planner, pack["id"], "batterypass")
    rows = list(AuditRecord.objects.filter(action="passport.exported").order_by("seq"))[
        before:
    ]
    assert [(r.actor_id, r.after["format"], r.after["tiers"]) for r in rows] == [
        (None, "aas", ["public"]),
        (planner.pk, "batterypass", ["public"]),
    ]


def test_an_unknown_or_missing_format_is_400(pack):
    before = AuditRecord.objects.count()
    for params in ({"format": "xml"}, {}):
        reply = api().get(f"/api/passports/{pack['id']}/export", params)
        assert reply.status_code == 400
        assert reply.json()["code"] == "validation_error"
        assert list(reply.json()["details"]) == ["format"]
    assert AuditRecord.objects.count() == before


def test_an_unknown_passport_is_404():
    assert get(None, "no-such-passport", "aas").status_code == 404


def test_id_short_makes_names_the_metamodel_accepts():
    assert export.id_short("lithium") == "lithium"
    assert export.id_short("C") == "C_"
    assert export.id_short("3 wt% Co") == "x3_wt__Co"


# --- every attribute filled, and the minimum; both exports, every tier ---------

FULL_EXTRA = {
    **EV_BODY,
    "gtin": "04012345000009",
    "barcode": "4012345000009",
    "rfid": "urn:epc:id:sgtin:4012345.000000.1",
    "renewableContentPercent": 12.5,
    "roundTripEfficiencyHalfLifePercent": 92.0,
    "initialSelfDischargePercent": 2.0,
    "lifetimeReferenceTest": "https://bpm.example/lifetime-test.pdf",
    "thirdPartyAssurances": "https://bpm.example/assurance.pdf",
}
MINIMUM_BODY = {
    "kind": "Pack",
    "serial": "PK-EXP-00003",
    "model": "PK-48V-100",
    "manufacturer": "BPM Energy",
    "site": "Pune Plant 1",
    "chemistry": "NaION",
    "ratedCapacityAh": 100,
    "nominalVoltageV": 48,
    "energyKwh": 5.12,
}
READERS = {
    "public": (None, {"public"}),
    "legitimate_interest": ("supervisor", {"public", "legitimate_interest"}),
    "authority": ("auditor", {"public", "legitimate_interest", "authority"}),
}


@pytest.fixture
def full_pack(make_user):
    """A pack with every attribute of the registry present (the telemetry and
    usage fields written as the BMS ingest writes them)."""
    boss = make_user("supervisor", username="fay")
    reply = api(boss).post(
        "/api/passports", register_body("PK-EXP-00002", **FULL_EXTRA), format="json"
    )
    assert reply.status_code == 201, reply.content
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    Passport.objects.filter(uuid=reply.json()["id"]).update(
        soh_percent=90.0,
        soc_percent=55.5,
        telemetry_at=at,
        full_cycles=120,
        energy_throughput_kwh=Decimal("614.4"),
        capacity_throughput_ah=Decimal("12000"),
        temperature_min_c=-5.5,
        temperature_max_c=41.0,
        time_above_max_temperature_s=30,
        time_below_min_temperature_s=0,
        deep_discharge_events=1,
        overcharge_events=0,
        usage_updated_at=at,
    )
    return reply.json()


@pytest.fixture
def minimum_pack(make_user):
    """A pack registered with the required fields only."""
    reply = api(make_user("supervisor", username="min")).post(
        "/api/passports", MINIMUM_BODY, format="json"
    )
    assert reply.status_code == 201, reply.content
    return reply.json()


def reader(make_user, tier):
    role, _ = READERS[tier]
    return make_user(role) if role else None


def strict_aas(body: dict):
    """The AAS export read back by the Eclipse BaSyx SDK's strict JSON decoder
    (refuses any object the AAS V3.0 metamodel refuses, instead of skipping
    it); returns the identifiables it read."""
    store = read_aas_json_file(io.StringIO(json.dumps(body)), failsafe=False)
    return {obj.id: obj for obj in store}


def exported_keys_batterypass(body: dict) -> set[str]:
    """The registry attributes the export holds, each looked up where the data
    model puts it (``export.batterypass_path``)."""
    keys = set()
    for attribute in attributes.ATTRIBUTES:
        node = body[attribute.group]
        for part in export.batterypass_path(attribute.key):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            keys.add(attribute.key)
    return keys


def exported_keys_aas(body: dict) -> set[str]:
    return {
        element["idShort"]
        for submodel in body["submodels"]
        for element in submodel.get("submodelElements", ())
    }


@pytest.mark.parametrize("tier", list(READERS))
def test_a_full_passport_exports_every_attribute_of_the_readers_tiers(
    full_pack, make_user, tier
):
    user = reader(make_user, tier)
    _, tiers = READERS[tier]
    expected = {a.key for a in attributes.ATTRIBUTES if a.tier in tiers}

    body = get(user, full_pack["id"], "batterypass").json()
    jsonschema.Draft202012Validator(BATTERYPASS, format_checker=FORMATS).validate(body)
    assert set(body["tiers"]) == tiers
    assert exported_keys_batterypass(body) == expected
    assert set(body["lastUpdate"]) == {
        ".".join(export.batterypass_path(a.key))
        for a in attributes.ATTRIBUTES
        if a.dynamic and a.tier in tiers
    }

    shell = get(user, full_pack["id"], "aas").json()
    jsonschema.Draft201909Validator(AAS, format_checker=FORMATS).validate(shell)
    assert exported_keys_aas(shell) == expected
    read = strict_aas(shell)
    assert len(read) == 1 + len(export.SUBMODELS)
    (aas_object,) = [
        o for o in read.values() if isinstance(o, model.AssetAdministrationShell)
    ]
    assert aas_object.asset_information.global_asset_id == f"urn:uuid:{full_pack['id']}"


@pytest.mark.parametrize("tier", list(READERS))
def test_a_minimum_passport_exports_only_what_it_has(minimum_pack, make_user, tier):
    user = reader(make_user, tier)
    body = get(user, minimum_pack["id"], "batterypass").json()
    jsonschema.Draft202012Validator(BATTERYPASS, format_checker=FORMATS).validate(body)
    keys = exported_keys_batterypass(body)
    assert {"batteryIdentifier", "ratedCapacity", "batteryChemistry"} <= keys
    assert not keys & {"batteryMass", "cathodeMaterial", "resultOfTestReport"}
    # No registration id held: the manufacturer entity names it and no more.
    gpi = body["generalProductInformation"]
    assert gpi["manufacturerInformation"] == {"contactName": "BPM Energy"}
    shell = get(user, minimum_pack["id"], "aas").json()
    jsonschema.Draft201909Validator(AAS, format_checker=FORMATS).validate(shell)
    assert exported_keys_aas(shell) == keys
    strict_aas(shell)
    # A submodel the reader sees nothing of has no empty element array (the
    # published AAS schema asks for one element at least when it is given).
    empty = [sm["idShort"] for sm in shell["submodels"] if "submodelElements" not in sm]
    assert "SupplyChainDueDiligence" in empty
    assert all(sm.get("submodelElements", [1]) for sm in shell["submodels"])


def test_the_aas_values_read_back_typed(full_pack, make_user):
    shell = get(make_user("auditor"), full_pack["id"], "aas").json()
    read = strict_aas(shell)
    submodels = {o.id_short: o for o in read.values() if isinstance(o, model.Submodel)}
    gpi = submodels["GeneralProductInformation"]
    assert gpi.get_referable("batteryIdentifier").value == "PK-EXP-00002"
    assert gpi.get_referable("warrantyPeriod").value == 60
    manufactured = gpi.get_referable("manufacturingDate").value
    assert manufactured == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    perf = submodels["PerformanceAndDurability"]
    assert perf.get_referable("ratedCapacity").value == 100.0
    assert perf.get_referable("numberOfFullCycles").value == 120
    soh = perf.get_referable("stateOfHealth")
    assert soh.value == 90.0
    (qualifier,) = soh.qualifier
    assert qualifier.type == "lastUpdate"
    assert qualifier.value == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_the_aas_per_stage_carbon_footprint_is_the_data_models_list(pack):
    """A SubmodelElementList of {lifecycleStage, carbonFootprint} collections,
    as the data model lists it (not a collection keyed by stage)."""
    shell = get(None, pack["id"], "aas").json()
    read = strict_aas(shell)
    (footprint,) = [
        o
        for o in read.values()
        if isinstance(o, model.Submodel) and o.id_short == "CarbonFootprintForBatteries"
    ]
    stages = footprint.get_referable("carbonFootprintPerLifecycleStage")
    assert isinstance(stages, model.SubmodelElementList)
    assert stages.type_value_list_element is model.SubmodelElementCollection
    assert [
        (
            item.get_referable("lifecycleStage").value,
            item.get_referable("carbonFootprint").value,
        )
        for item in stages
    ] == [
        ("RawMaterialExtraction", 30.1),
        ("MainProduction", 20.2),
        ("Distribution", 1.1),
        ("Recycling", 10.0),
    ]


def _rated_capacity(body: dict) -> dict:
    (performance,) = [
        sm for sm in body["submodels"] if sm["idShort"] == "PerformanceAndDurability"
    ]
    (element,) = [
        e for e in performance["submodelElements"] if e["idShort"] == "ratedCapacity"
    ]
    return element


@pytest.mark.parametrize(
    "change",
    [
        {"valueType": "xs:text"},  # not an XSD type of the metamodel
        {"value": "a hundred"},  # not in xs:double's lexical space
        {"valueType": "xs:integer", "value": "100.5"},
        {"idShort": "1 bad name"},  # AASd-002
        {"modelType": "Propertee"},
    ],
)
def test_the_strict_aas_reader_refuses_what_the_metamodel_refuses(pack, change):
    body = get(None, pack["id"], "aas").json()
    strict_aas(body)  # as exported: read
    _rated_capacity(body).update(change)
    with pytest.raises((KeyError, ValueError, TypeError)):
        strict_aas(body)


def test_aas_list_items_carry_no_id_short(full_pack, make_user):
    """AASd-120: an element of a SubmodelElementList has no idShort (the strict
    reader does not check this one)."""
    shell = get(make_user("auditor"), full_pack["id"], "aas").json()
    lists = [
        element
        for submodel in shell["submodels"]
        for element in submodel.get("submodelElements", ())
        if element["modelType"] == "SubmodelElementList"
    ]
    assert {e["idShort"] for e in lists} >= {"criticalRawMaterials", "labels"}
    assert all("idShort" not in item for e in lists for item in e["value"])


def _declared(schema: dict, places: set, prefix: tuple = ()) -> set:
    """The places the kept schema declares: its properties, entered where an
    attribute is placed deeper (a value entity's lastUpdate is its time)."""
    found = set()
    for name, sub in schema["properties"].items():
        path = (*prefix, name)
        if any(place[: len(path)] == path and place != path for place in places):
            found |= _declared(sub, places, path)
        elif not (prefix and name == "lastUpdate"):
            found.add(path)
    return found


def test_the_batterypass_schema_names_exactly_the_registrys_attributes():
    """The kept schema cannot drift from the attribute registry: every
    attribute has its property in its submodel (or in the data model's entity
    there), and no property is unknown."""
    for group in export.SUBMODELS:
        places = {
            export.batterypass_path(a.key)
            for a in attributes.ATTRIBUTES
            if a.group == group
        }
        declared = _declared(BATTERYPASS["properties"][group], places)
        assert declared == places, group


def test_the_performance_aspect_is_nested_as_the_data_model_nests_it(
    full_pack, make_user
):
    body = get(make_user("auditor"), full_pack["id"], "batterypass").json()
    performance = body["performanceAndDurability"]
    technical = performance["batteryTechicalProperties"]
    assert technical["ratedCapacity"] == 100.0
    assert "initialRoundTripEfficiency" not in technical
    assert technical["roundtripEfficiency"] == 95.5
    condition = performance["batteryCondition"]
    assert condition["roundTripEfficiencyat50PerCentCycleLife"] == 92.0
    assert condition["energyThroughput"] == 614.4
    # A dynamic attribute in its value entity, its time beside it.
    assert condition["numberOfFullCycles"] == {
        "numberOfFullCyclesValue": 120,
        "lastUpdate": "2026-06-01T12:00:00Z",
    }
    assert condition["stateOfCharge"] == {
        "stateOfChargeValue": 55.5,
        "lastUpdate": "2026-06-01T12:00:00Z",
    }
    assert body["lastUpdate"]["batteryCondition.stateOfCharge.stateOfChargeValue"] == (
        "2026-06-01T12:00:00Z"
    )
    # What 1.2.0 shapes otherwise stays at the top under the registry's name.
    assert performance["stateOfHealth"] == 90.0
    assert "ratedCapacity" not in performance
