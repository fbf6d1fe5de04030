"""Reports (control-UI contract group VIII): the registry per role, each
report's preview over real data made through the apps' services (its shape,
exact values, its empty state), strict parameters, and the CSV download's
escaping. Through the real test client (``/api/reports``)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from bpmos.fields import utc_text
from bpmos.roles import Role
from compliance.models import CategoryDeclaration
from compliance.periods import fy_current, local_date
from compliance.reports.base import report_get
from compliance.reports.csvout import escape_cell, report_csv
from elog.models import AuditRecord
from exceptions import services as exception_services
from inventory import services as inventory_services
from lines import oee
from lines import services as line_services
from lines.models import OEESnapshot, Station
from passports.models import PassportEvent
from tests.conftest import api_as as api
from tests.factories_inventory import make_categories, make_warehouse, receive
from tests.factories_lines import at, ingest, machine, make_line, reading, state
from tests.factories_passports import make_passport
from tests.factories_tower import (
    finish_through,
    make_runbook,
    make_work_order,
    raise_exception,
    start,
)

pytestmark = pytest.mark.django_db

ALL_REPORTS = [
    "production-by-work-order",
    "oee-by-line-shift",
    "exceptions-escalations",
    "inventory-ageing-holds",
    "passport-ledger-extract",
    "epr-return",
    "audit-extract",
]
OPERATIONAL = ALL_REPORTS[:4]
PREVIEW_KEYS = {
    "reportId",
    "title",
    "generatedAt",
    "parameters",
    "columns",
    "rows",
    "totalRows",
    "truncated",
    "summary",
    "charts",
    "isEmpty",
    "emptyMessage",
    "isDemo",
}


@pytest.fixture
def auditor(make_user):
    return api(make_user(Role.AUDITOR, username="audrey"))


@pytest.fixture
def boss(make_user):
    return make_user(Role.SUPERVISOR, username="sam")


def preview(client, report_id: str, **params):
    response = client.get(f"/api/reports/{report_id}/preview", params)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == PREVIEW_KEYS
    assert body["reportId"] == report_id
    assert body["isDemo"] is False
    return body


def today() -> date:
    return local_date(timezone.now())


def default_span() -> dict:
    last = today()
    return {"from": (last - timedelta(days=29)).isoformat(), "to": last.isoformat()}


def column_keys(report_id: str) -> list[str]:
    return [column.key for column in report_get(report_id).columns]


def assert_empty(body: dict, message: str) -> None:
    assert body["isEmpty"] is True
    assert body["emptyMessage"] == message
    assert (body["rows"], body["totalRows"], body["truncated"]) == ([], 0, False)


# --- the registry and who sees what ------------------------------------------


def test_an_auditor_lists_every_report_in_the_contract_shape(auditor):
    response = auditor.get("/api/reports")
    assert response.status_code == 200
    body = response.json()
    assert [r["id"] for r in body] == ALL_REPORTS
    oee_report = body[1]
    assert set(oee_report) == {
        "id",
        "title",
        "description",
        "category",
        "parameters",
        "columns",
        "charts",
        "formats",
    }
    assert oee_report["charts"] == ["oee-trend"]
    assert oee_report["formats"] == ["csv", "pdf"]
    assert [p["name"] for p in oee_report["parameters"]] == ["from", "to", "line"]
    assert oee_report["parameters"][0] == {
        "name": "from",
        "type": "date",
        "label": "From (plant day)",
        "required": False,
        "default": "30 days before to",
        "choices": [],
    }
    assert oee_report["columns"][8] == {
        "key": "oee",
        "label": "OEE %",
        "type": "percent",
    }


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        (Role.OPERATOR, []),
        (Role.PLANNER, OPERATIONAL),
        (Role.SUPERVISOR, ALL_REPORTS[:6]),
        (Role.PLANT_HEAD, ALL_REPORTS[:6]),
        (Role.ADMIN, ALL_REPORTS),
    ],
)
def test_the_list_shows_only_the_reports_the_role_may_open(make_user, role, visible):
    response = api(make_user(role)).get("/api/reports")
    assert response.status_code == 200
    assert [r["id"] for r in response.json()] == visible


def test_an_auditor_opens_every_report(auditor):
    for report_id in ALL_REPORTS:
        preview(auditor, report_id)


@pytest.mark.parametrize(
    ("role", "report_id"),
    [
        *((Role.OPERATOR, report_id) for report_id in ALL_REPORTS),
        (Role.PLANNER, "audit-extract"),
        (Role.PLANNER, "passport-ledger-extract"),
        (Role.PLANNER, "epr-return"),
        (Role.SUPERVISOR, "audit-extract"),
    ],
)
def test_a_report_the_role_may_not_open_is_403(make_user, role, report_id):
    response = api(make_user(role)).get(f"/api/reports/{report_id}/preview")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_an_unknown_report_is_404_and_no_token_is_401(auditor):
    response = auditor.get("/api/reports/no-such-report/preview")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert APIClient().get("/api/reports").status_code == 401


# --- parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("report_id", "params", "field"),
    [
        ("audit-extract", {"from": "yesterday"}, "from"),
        ("audit-extract", {"from": "2026-02-30"}, "from"),
        ("audit-extract", {"to": "2026-1-5"}, "to"),
        ("audit-extract", {"from": ""}, "from"),
        ("audit-extract", {"from": "1999-12-31"}, "from"),
        ("audit-extract", {"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ("audit-extract", {"from": "2025-01-01", "to": "2026-01-02"}, "to"),
        ("audit-extract", {"from": "2024-01-01"}, "from"),
        ("audit-extract", {"action": "item\x00received"}, "action"),
        ("audit-extract", {"actor": "x" * 101}, "actor"),
        ("audit-extract", {"actor": "sam\n"}, "actor"),
        ("audit-extract", {"to": "2026-01-05\n"}, "to"),
        ("oee-by-line-shift", {"line": "line-z"}, "line"),
        ("production-by-work-order", {"runbook": "nope"}, "runbook"),
        ("production-by-work-order", {"line": "line-z"}, "line"),
        ("exceptions-escalations", {"severity": "urgent"}, "severity"),
        ("inventory-ageing-holds", {"category": "unicorns"}, "category"),
        ("inventory-ageing-holds", {"status": "lost"}, "status"),
        ("passport-ledger-extract", {"event": "teleported"}, "event"),
        ("epr-return", {"fy": "2026-28"}, "fy"),
        ("epr-return", {"fy": "2026"}, "fy"),
        # Another report's parameter (the preview's schema lists them all).
        ("epr-return", {"to": "2026-05-01"}, "to"),
        ("inventory-ageing-holds", {"from": "2026-05-01"}, "from"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(auditor, report_id, params, field):
    response = auditor.get(f"/api/reports/{report_id}/preview", params)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["details"]) == [field]


def test_defaults_are_the_last_30_plant_days_and_are_echoed(auditor):
    body = preview(auditor, "audit-extract")
    assert body["parameters"] == {**default_span(), "action": None, "actor": None}
    body = preview(auditor, "epr-return")
    assert body["parameters"] == {"fy": fy_current()}


def test_a_unicode_username_is_a_valid_actor(auditor):
    body = preview(auditor, "audit-extract", actor="José.m@plant")
    assert body["parameters"]["actor"] == "José.m@plant"


def test_a_span_of_366_days_is_allowed(auditor):
    body = preview(
        auditor, "audit-extract", **{"from": "2025-01-01", "to": "2026-01-01"}
    )
    assert body["parameters"]["to"] == "2026-01-01"


# --- production ------------------------------------------------------------------


def test_production_preview_rows_summary_and_chart(auditor, boss):
    runbook = make_runbook()
    order = make_work_order(runbook, boss, start=timezone.now() - timedelta(hours=2))
    finish_through(order, "S2", boss)
    start(order, "S3", boss)
    done = make_work_order(
        runbook, boss, start=timezone.now() - timedelta(hours=3), lot_no="LOT-3"
    )
    finish_through(done, "S6", boss)
    make_work_order(runbook, boss, lot_no="LOT-2")  # planned: not worked
    body = preview(auditor, "production-by-work-order")

    assert body["totalRows"] == 9
    assert [c["key"] for c in body["columns"]] == column_keys(
        "production-by-work-order"
    )
    assert [(r["workOrder"], r["stageCode"], r["status"]) for r in body["rows"]] == [
        (f"WO-{order.pk}", "S1", "Done"),
        (f"WO-{order.pk}", "S2", "Done"),
        (f"WO-{order.pk}", "S3", "In Progress"),
        *((f"WO-{done.pk}", f"S{n}", "Done") for n in range(1, 7)),
    ]
    first = body["rows"][0]
    assert (first["productCode"], first["lotNo"], first["quantity"]) == (
        "MOD-48V",
        "LOT-1",
        10,
    )
    assert first["runbook"] == "manufacturing"
    assert first["stageName"] == "Cell Inbound (S1)"
    assert first["actualEnd"] is not None
    assert body["rows"][2]["actualEnd"] is None
    assert body["rows"][2]["actualMinutes"] is None
    assert body["summary"] == [
        {"label": "Work orders worked", "value": 2},
        {"label": "Stages completed", "value": 8},
        {"label": "Work orders completed", "value": 1},
        {"label": "Units completed", "value": 10},
        {"label": "Stages on hold", "value": 0},
    ]
    (chart,) = body["charts"]
    assert (chart["id"], chart["kind"]) == ("production-per-day", "bar")
    stages, units = chart["series"]
    assert (stages["name"], units["name"]) == ("Stages completed", "Units completed")
    assert len(stages["points"]) == 30
    assert stages["points"][-1] == {"x": today().isoformat(), "y": 8.0}
    assert units["points"][-1] == {"x": today().isoformat(), "y": 10.0}
    assert sum(p["y"] for p in stages["points"]) == 8.0
    assert sum(p["y"] for p in units["points"]) == 10.0
    assert body["isEmpty"] is False
    assert body["emptyMessage"] is None


def test_production_filters_by_runbook_and_line(auditor, boss):
    runbook = make_runbook()
    other = make_runbook("dispatch", title="Dispatch", prefix="dsp")
    order = make_work_order(runbook, boss, start=timezone.now() - timedelta(hours=1))
    finish_through(order, "S1", boss)
    make_line(slug="line-d", runbook=other)
    make_line(slug="line-m", runbook=runbook, position=2)
    assert preview(auditor, "production-by-work-order", line="line-m")["totalRows"] == 1
    body = preview(auditor, "production-by-work-order", runbook="dispatch")
    assert body["totalRows"] == 0
    body = preview(auditor, "production-by-work-order", line="line-d")
    assert body["totalRows"] == 0


def test_production_empty_state(auditor):
    body = preview(
        auditor,
        "production-by-work-order",
        **{"from": "2020-01-01", "to": "2020-01-31"},
    )
    assert_empty(
        body, "No work-order stages were worked between 2020-01-01 and 2020-01-31."
    )
    points = body["charts"][0]["series"][0]["points"]
    assert len(points) == 31
    assert points[0] == {"x": "2020-01-01", "y": 0.0}


# --- OEE ---------------------------------------------------------------------------


@pytest.fixture
def oee_line():
    line = make_line()
    ingest(
        machine(line, "st-01"),
        [
            state(at(7, 30), "running"),
            state(at(8, 30), "down", "Jam"),
            state(at(8, 45), "running"),
            reading("good_count", at(8, 20), 250),
            reading("reject_count", at(9, 12), 20),
        ],
    )
    ingest(
        machine(line, "st-02"),
        [state(at(8, 10), "running"), reading("good_count", at(8, 50), 100)],
    )
    line_services.oee_snapshots_refresh(now=at(10))
    return line


def _oee_row(line, start, end, figures, *, complete=True) -> dict:
    return {
        "day": local_date(start).isoformat(),
        "line": line.slug,
        "lineName": line.name,
        "shiftStart": utc_text(start),
        "shiftEnd": utc_text(end),
        **{k: None if v is None else float(v) for k, v in figures.items()},
        "isComplete": complete,
    }


def _percentages(figures: oee.Figures) -> dict:
    return {
        **figures.percentages(),
        "goodCount": figures.good,
        "rejectCount": figures.reject,
    }


def test_oee_preview_one_row_per_line_and_shift(auditor, oee_line):
    # A line whose machines never reported has no shifts to show.
    make_line(slug="line-b", name="Line B", position=2)
    body = preview(
        auditor, "oee-by-line-shift", **{"from": "2026-03-02", "to": "2026-03-02"}
    )
    # The plant day 2026-03-02 (IST) is 03-01 18:30 to 03-02 18:30 UTC; the
    # machines first reported at 07:30, so its shifts are 06:00 and 14:00. The
    # 06:00 shift's snapshot was taken at 10:00 (not final): computed instead.
    first = oee.line_oee(oee_line, at(6), at(14)).line
    second = oee.line_oee(oee_line, at(14), at(22)).line
    assert first.good == 350
    assert body["totalRows"] == 2
    assert body["rows"] == [
        _oee_row(oee_line, at(6), at(14), _percentages(first)),
        _oee_row(oee_line, at(14), at(22), _percentages(second)),
    ]
    day = oee.line_oee(oee_line, at(6), at(18, 30)).line
    day_oee = float(oee.percent(day.oee))
    assert body["summary"] == [
        {"label": "Shifts", "value": 2},
        {"label": "OEE over the period %", "value": day_oee},
        {"label": "Good pieces", "value": 350},
        {"label": "Reject pieces", "value": 20},
    ]
    assert body["charts"] == [
        {
            "id": "oee-trend",
            "title": "OEE per day and line",
            "kind": "line",
            "xLabel": "Day",
            "yLabel": "OEE %",
            "series": [
                {"name": "line-a", "points": [{"x": "2026-03-02", "y": day_oee}]}
            ],
        }
    ]


def test_oee_reads_a_finished_shift_from_its_snapshot(auditor, oee_line):
    line_services.oee_snapshots_refresh(now=at(13, 59))
    line_services.oee_snapshots_refresh(now=at(14, 1))  # finalises 06:00-14:00
    snapshot = OEESnapshot.objects.get(line=oee_line, station=None, window_start=at(6))
    assert snapshot.window_end == snapshot.shift_end
    # The ideal cycle time changes afterwards: the shift's record stands.
    Station.objects.filter(line=oee_line).update(ideal_cycle_seconds=1)
    now_computed = oee.line_oee(oee_line, at(6), at(14)).line.percentages()
    assert now_computed["performance"] != snapshot.performance
    body = preview(
        auditor,
        "oee-by-line-shift",
        **{"from": "2026-03-02", "to": "2026-03-02", "line": "line-a"},
    )
    recorded = {
        "availability": snapshot.availability,
        "performance": snapshot.performance,
        "quality": snapshot.quality,
        "oee": snapshot.oee,
        "goodCount": snapshot.good_count,
        "rejectCount": snapshot.reject_count,
    }
    assert body["rows"][0] == _oee_row(oee_line, at(6), at(14), recorded)


def test_oee_empty_state_for_a_line_without_data(auditor, oee_line):
    make_line(slug="line-b", name="Line B", position=2)
    body = preview(
        auditor,
        "oee-by-line-shift",
        **{"from": "2026-03-01", "to": "2026-03-03", "line": "line-b"},
    )
    assert_empty(
        body,
        "No shifts with machine data on line-b between 2026-03-01 and 2026-03-03.",
    )
    assert body["charts"][0]["series"] == []


def test_oee_span_is_at_most_92_days(auditor):
    response = auditor.get(
        "/api/reports/oee-by-line-shift/preview",
        {"from": "2026-01-01", "to": "2026-04-03"},  # 93 days
    )
    assert response.status_code == 400
    assert response.json()["details"] == {
        "to": ["from and to may span at most 92 days."]
    }


# --- exceptions ---------------------------------------------------------------------


def test_exceptions_preview_with_escalation_and_timings(auditor, boss):
    runbook = make_runbook()
    critical = raise_exception(
        boss, runbook=runbook, severity="critical", title="Seal leak"
    )
    low = raise_exception(boss, severity="low", title="Smudge")
    exception_services.exception_acknowledge(exception_id=low.pk, actor=boss)
    exception_services.exception_resolve(
        exception_id=low.pk, resolution_note="Wiped", actor=boss
    )
    # Unacknowledged past its 5 minutes: beat escalates it to the supervisor.
    later = timezone.now() + timedelta(minutes=6)
    assert exception_services.exceptions_escalate_overdue(now=later) == 1
    body = preview(auditor, "exceptions-escalations")
    assert body["totalRows"] == 2
    first, second = body["rows"]
    assert set(first) == set(column_keys("exceptions-escalations"))
    assert first["id"] == f"EX-{critical.pk:03d}"
    assert (first["severity"], first["status"], first["title"]) == (
        "Critical",
        "Open",
        "Seal leak",
    )
    assert (first["runbook"], first["isBlocking"]) == ("Manufacturing Execution", True)
    assert (first["escalationLevel"], first["responsibleRole"]) == (1, "Supervisor")
    assert first["lastEscalatedAt"] == utc_text(later)
    assert second["lastEscalatedAt"] is None
    assert first["resolvedAt"] is None
    assert first["minutesToResolve"] is None
    assert (second["status"], second["type"]) == ("Resolved", "Process Deviation")
    assert second["minutesToResolve"] == 0.0
    assert body["summary"] == [
        {"label": "Raised", "value": 2},
        {"label": "Unresolved", "value": 1},
        {"label": "Escalated", "value": 1},
        {"label": "Critical", "value": 1},
        {"label": "From alarms", "value": 0},
    ]
    only = preview(auditor, "exceptions-escalations", severity="low")
    assert [r["title"] for r in only["rows"]] == ["Smudge"]


def test_exceptions_empty_state(auditor):
    body = preview(auditor, "exceptions-escalations")
    span = default_span()
    assert_empty(
        body, f"No exceptions were raised between {span['from']} and {span['to']}."
    )


# --- inventory ----------------------------------------------------------------------


@pytest.fixture
def stock(boss):
    make_categories()
    make_warehouse()
    now = timezone.now()
    receive(boss, "CELL-OLD", received_at=now - timedelta(days=100, hours=1))
    receive(boss, "CELL-NEW", received_at=now - timedelta(days=3, hours=1))
    receive(boss, "PACK-1", category="packs", sku="PACK-48V", received_at=now)
    inventory_services.item_hold(
        item_code="CELL-NEW", reason='=HYPERLINK("http://x")', actor=boss
    )


def test_inventory_preview_oldest_first_with_age_and_holds(auditor, stock):
    body = preview(auditor, "inventory-ageing-holds")
    assert body["parameters"] == {"category": None, "status": None}
    assert [
        (r["item"], r["ageDays"], r["ageBand"], r["status"]) for r in body["rows"]
    ] == [
        ("CELL-OLD", 100, "91-180 days", "Good"),
        ("CELL-NEW", 3, "0-7 days", "Hold"),
        ("PACK-1", 0, "0-7 days", "Good"),
    ]
    old = body["rows"][0]
    assert (old["sku"], old["category"], old["location"]) == (
        "CELL-LFP-21700",
        "Cells",
        "Zone A - Rack 2",
    )
    assert body["rows"][1]["holdReason"] == '=HYPERLINK("http://x")'
    assert body["summary"] == [
        {"label": "Items in stock", "value": 3},
        {"label": "On hold", "value": 1},
        {"label": "Blocked", "value": 0},
        {"label": "Older than 90 days", "value": 1},
    ]
    held = preview(auditor, "inventory-ageing-holds", status="hold", category="cells")
    assert [r["item"] for r in held["rows"]] == ["CELL-NEW"]


def test_inventory_empty_state(auditor, stock):
    body = preview(auditor, "inventory-ageing-holds", status="blocked")
    assert_empty(body, "No items in stock match.")


# --- passports --------------------------------------------------------------------


def test_passport_ledger_extract_rows_with_hashes(auditor, boss):
    pack = make_passport("pack", "warehoused", actor=boss)
    body = preview(auditor, "passport-ledger-extract")
    events = list(PassportEvent.objects.filter(passport=pack).order_by("version"))
    assert body["totalRows"] == 4
    assert [r["event"] for r in body["rows"]] == [
        "Manufactured",
        "QA passed",
        "Provisioned",
        "Warehoused",
    ]
    last = body["rows"][3]
    assert last == {
        "occurredAt": last["occurredAt"],
        "serial": pack.serial,
        "kind": "Pack",
        "model": "PACK-LFP",
        "version": 4,
        "event": "Warehoused",
        "actor": "sam",
        "data": '{"location":"FG-A-01"}',
        "hash": events[3].hash,
        "prevHash": events[2].hash,
    }
    assert body["summary"][:2] == [
        {"label": "Events", "value": 4},
        {"label": "Passports", "value": 1},
    ]
    only = preview(auditor, "passport-ledger-extract", event="qa_passed", kind="pack")
    assert [r["version"] for r in only["rows"]] == [2]
    none = preview(auditor, "passport-ledger-extract", kind="cell")
    span = default_span()
    assert_empty(
        none, f"No passport ledger events between {span['from']} and {span['to']}."
    )


# --- EPR ----------------------------------------------------------------------------


def test_epr_return_rows_summary_and_chart(auditor, boss):
    CategoryDeclaration.objects.create(model="PACK-LFP", category="ev")
    pack = make_passport("pack", "dispatched", actor=boss, mass_kg="42.5")
    make_passport("pack", "warehoused", actor=boss, mass_kg="40")  # not placed
    body = preview(auditor, "epr-return")
    fy = fy_current()
    assert body["parameters"] == {"fy": fy}
    assert body["totalRows"] == 1
    (row,) = body["rows"]
    assert {k: v for k, v in row.items() if k != "occurredAt"} == {
        "event": "Placed on the market (first dispatch)",
        "serial": pack.serial,
        "bpan": pack.bpan,
        "model": "PACK-LFP",
        "category": "Electric vehicle",
        "chemistry": "LFP",
        "massKg": 42.5,
        "custodian": pack.custodian_name,
    }
    assert body["summary"][:2] == [
        {"label": "Placed on the market (packs)", "value": 1},
        {"label": "Placed on the market (kg)", "value": 42.5},
    ]
    (chart,) = body["charts"]
    assert (chart["id"], chart["kind"], chart["yLabel"]) == (
        "epr-vs-target",
        "bar",
        "kg",
    )
    placed = chart["series"][0]
    assert placed["name"] == "Placed on the market"
    assert placed["points"] == [
        {"x": "Portable", "y": 0.0},
        {"x": "Automotive", "y": 0.0},
        {"x": "Industrial", "y": 0.0},
        {"x": "Electric vehicle", "y": 42.5},
    ]
    assert [s["name"] for s in chart["series"]] == [
        "Placed on the market",
        "Collected",
        "Collection obligation",
        "Recycled",
        "Recovery obligation",
    ]


def test_epr_return_empty_state(auditor):
    body = preview(auditor, "epr-return", fy="2001-02")
    assert_empty(
        body, "No packs were placed on the market, collected or recycled in FY 2001-02."
    )


# --- audit ------------------------------------------------------------------------


def test_audit_extract_in_chain_order_filtered_by_action_and_actor(auditor, boss):
    make_categories()
    make_warehouse()
    receive(boss, "CELL-1")
    receive(boss, "CELL-2")
    inventory_services.item_hold(item_code="CELL-1", reason="Dent", actor=boss)
    body = preview(auditor, "audit-extract", action="item.")
    records = list(
        AuditRecord.objects.filter(action__startswith="item.").order_by("seq")
    )
    assert [r["seq"] for r in body["rows"]] == [r.seq for r in records]
    assert [r["action"] for r in body["rows"]] == [
        "item.received",
        "item.received",
        "item.held",
    ]
    held = body["rows"][2]
    assert (held["actor"], held["role"], held["targetId"]) == (
        "sam",
        "supervisor",
        records[2].target_id,
    )
    assert held["hash"] == records[2].hash
    assert body["summary"] == [
        {"label": "Records", "value": 3},
        {"label": "Actors", "value": 1},
    ]
    nobody = preview(auditor, "audit-extract", actor="nobody")
    span = default_span()
    assert_empty(nobody, f"No audit records between {span['from']} and {span['to']}.")


def test_preview_truncates_at_50_rows(auditor, boss):
    make_categories()
    make_warehouse()
    for n in range(53):
        receive(boss, f"CELL-{n:03d}")
    body = preview(auditor, "inventory-ageing-holds")
    assert (len(body["rows"]), body["totalRows"], body["truncated"]) == (50, 53, True)


# --- CSV ----------------------------------------------------------------------------


def test_csv_has_the_labels_and_escapes_a_hostile_cell(stock):
    report = report_get("inventory-ageing-holds")
    params = report.parse({})
    text = b"".join(report_csv(report, params)).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [column.label for column in report.columns]
    assert len(rows) == 4
    held = rows[2]
    assert held[0] == "CELL-NEW"
    assert held[5] == '\'=HYPERLINK("http://x")'
    assert held[7] == "1"  # a number stays a number
    assert rows[1][10] == "100"


def test_csv_of_an_empty_report_is_the_header_alone():
    report = report_get("audit-extract")
    params = report.parse({"from": "2020-01-01", "to": "2020-01-02"})
    assert (
        b"".join(report_csv(report, params))
        == (",".join(c.label for c in report.columns) + "\r\n").encode()
    )


def test_echoed_parameters_parse_back_to_the_same(stock):
    for report_id in ALL_REPORTS:
        report = report_get(report_id)
        params = report.parse({})
        assert report.parse(report.echo(params)) == params


def _preview_queries(client, report_id: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        preview(client, report_id)
    return len(queries)


def test_a_preview_costs_the_same_queries_for_more_rows(auditor, boss):
    """No query per row (N+1) in any row-reading report: each report's preview
    is measured with one set of rows and again with more."""
    make_categories()
    make_warehouse()
    runbook = make_runbook()

    def add_data(n: int) -> None:
        order = make_work_order(
            runbook, boss, start=timezone.now() - timedelta(hours=1), lot_no=f"L{n}"
        )
        finish_through(order, "S2", boss)
        raise_exception(boss, runbook=runbook, stage=None, title=f"Drift {n}")
        receive(boss, f"CELL-{n}")
        make_passport("pack", "warehoused", actor=boss)

    report_ids = [r for r in ALL_REPORTS if r not in {"oee-by-line-shift"}]
    add_data(1)
    before = {r: _preview_queries(auditor, r) for r in report_ids}
    add_data(2)
    add_data(3)
    after = {r: _preview_queries(auditor, r) for r in report_ids}
    assert after == before


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+91 98450", "'+91 98450"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("-5", "-5"),
        (-12.25, "-12.25"),
        ("Rack 2 - Bin 1", "Rack 2 - Bin 1"),
        (None, ""),
        (True, "true"),
        (0, "0"),
    ],
)
def test_escape_cell(value, cell):
    assert escape_cell(value) == cell


def test_the_list_reads_nothing_but_the_caller(auditor, django_assert_num_queries):
    auditor.get("/api/reports")  # warm: the registry fills on first use
    with django_assert_num_queries(1):  # the token's user
        assert auditor.get("/api/reports").status_code == 200
