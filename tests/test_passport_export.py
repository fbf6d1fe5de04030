"""A passport exported as Battery Pass JSON and as an AAS V3.0 environment
(passports/export.py), validated against the schemas kept in
passports/schemas/ (their sources named in each), honouring the access tiers,
audited. Through the real HTTP client, on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from rest_framework.test import APIClient

from elog.models import AuditRecord
from passports import export
from tests.conftest import bearer
from tests.test_passport_attributes import EV_BODY, register_body

pytestmark = pytest.mark.django_db

SCHEMAS = Path(__file__).resolve().parent.parent / "passports" / "schemas"
BATTERYPASS = json.loads((SCHEMAS / "batterypass-1.2.0-export.schema.json").read_text())
AAS = json.loads((SCHEMAS / "aas-3.0-environment.schema.json").read_text())
FORMATS = jsonschema.FormatChecker()


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    return client


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
    assert gpi["batteryIdentifier"] == "PK-EXP-00001"
    assert gpi["batteryPassportIdentifier"] == pack["id"]
    assert body["performanceAndDurability"]["ratedCapacity"] == 100.0
    assert body["carbonFootprint"]["carbonFootprintPerLifecycleStage"][
        "main_production"
    ] == pytest.approx(20.2)
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
