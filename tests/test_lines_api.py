"""Control-UI line and live-status endpoints (contract groups III and V, payload C)
and the mobile machines endpoints: shapes key by key, the status rules, WIP and
the bottleneck, query counts.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from lines import services, wip
from lines.models import Machine
from runbooks import services as runbook_services
from runbooks.models import WorkOrderStatus
from tests import factories_production as production
from tests.conftest import bearer
from tests.factories_lines import at, ingest, machine, make_line, state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def viewer(make_user):
    client = APIClient()
    client.force_authenticate(make_user("auditor"))
    return client


@pytest.fixture
def mid_shift():
    """The clock at 10:00 the day after the readings, ticking on: the 06:00-14:00
    shift has hours to run, so a snapshot refreshed "now" is still the current
    shift's when it is read, and a payload kept until the shift's end is still
    kept. On the real clock a refresh at 13:59:59.9 and a read at 14:00:00.1
    found no current snapshot (OEE null), and a second read recomputed, at every
    shift end."""
    with time_machine.travel(at(10) + timedelta(days=1), tick=True):
        yield


@pytest.fixture
def line_a():
    """Line A: st-01 Running, st-02 Blocked (Safety Curtain), st-03 Ready,
    st-04 Idle."""
    line = make_line(
        stations=(
            ("st-01", "Cell Load", "10"),
            ("st-02", "Weld", "20"),
            ("st-03", "Seal", "15"),
            ("st-04", "EOL Test", "30"),
        )
    )
    ingest(machine(line, "st-01"), [state(at(8), "running")])
    ingest(machine(line, "st-02"), [state(at(8), "blocked", "Safety Curtain")])
    ingest(machine(line, "st-03"), [state(at(8), "ready")])
    return line


# --- payload C ---------------------------------------------------------------------


def test_line_detail_is_payload_c_with_its_runbook(viewer, make_user, line_a):
    runbook = production.make_runbook()
    line_a.runbook = runbook
    line_a.save()
    response = viewer.get("/api/lines/line-a")
    assert response.status_code == 200
    assert response.json() == {
        "id": "line-a",
        "name": "Line A (Modules)",
        "mode": "Blocked",
        "health": "Critical",
        "stations": [
            {"id": "st-01", "name": "Cell Load", "state": "Running"},
            {
                "id": "st-02",
                "name": "Weld",
                "state": "Blocked",
                "reason": "Safety Curtain",
            },
            {"id": "st-03", "name": "Seal", "state": "Ready"},
            {"id": "st-04", "name": "EOL Test", "state": "Idle"},
        ],
        "oee": None,
        "runbookId": "manufacturing",
        "topic": f"line.{line_a.pk}",
        "runbook": {
            "id": "manufacturing",
            "title": "Manufacturing Execution",
            "status": "Idle",
            "currentStage": None,
        },
    }


def test_line_without_runbook_has_null_runbook(viewer, line_a):
    body = viewer.get("/api/lines/line-a/").json()
    assert (body["runbook"], body["runbookId"]) == (None, None)


def test_unknown_line_is_404(viewer):
    response = viewer.get("/api/lines/line-z")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert viewer.get("/api/lines/line-z/stations").status_code == 404
    assert viewer.get("/api/lines/line-z/oee").status_code == 404


def test_line_list_has_summary_health(viewer, line_a):
    make_line(slug="line-b", name="Line B (Packs)", position=2)
    response = viewer.get("/api/lines")
    assert response.status_code == 200
    line_b = response.json()[1]
    assert response.json()[0] == {
        "id": "line-a",
        "name": "Line A (Modules)",
        "mode": "Blocked",
        "health": "Critical",
        "oee": None,
        "runbookId": None,
        "stationCounts": {"ready": 1, "running": 1, "blocked": 1, "idle": 1},
        "topic": f"line.{line_a.pk}",
    }
    assert (line_b["id"], line_b["mode"], line_b["health"]) == (
        "line-b",
        "Idle",
        "OK",
    )


def test_line_stations_lists_states_in_order(viewer, line_a):
    response = viewer.get("/api/lines/line-a/stations")
    assert response.json() == [
        {
            "id": "st-01",
            "name": "Cell Load",
            "state": "Running",
            "position": 1,
            "machineCount": 1,
        },
        {
            "id": "st-02",
            "name": "Weld",
            "state": "Blocked",
            "reason": "Safety Curtain",
            "position": 2,
            "machineCount": 1,
        },
        {
            "id": "st-03",
            "name": "Seal",
            "state": "Ready",
            "position": 3,
            "machineCount": 1,
        },
        {
            "id": "st-04",
            "name": "EOL Test",
            "state": "Idle",
            "position": 4,
            "machineCount": 1,
        },
    ]


def test_live_status_lines_is_payload_c_for_every_line(viewer, line_a):
    body = viewer.get("/api/live-status/lines").json()
    assert [set(line) for line in body] == [
        {"id", "name", "mode", "health", "stations", "oee", "runbookId", "topic"}
    ]
    assert body[0]["stations"][1] == {
        "id": "st-02",
        "name": "Weld",
        "state": "Blocked",
        "reason": "Safety Curtain",
    }


# --- status rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("machine_states", "station", "mode", "health"),
    [
        (["running", "idle"], ("Running", ""), "Running", "OK"),
        (["running", "down"], ("Blocked", "Down"), "Blocked", "Critical"),
        (["maintenance", "idle"], ("Blocked", "Maintenance"), "Maintenance", "Warning"),
        (["ready", "idle"], ("Ready", ""), "Idle", "OK"),
        (["idle", "idle"], ("Idle", ""), "Idle", "OK"),
        (["blocked", "maintenance"], ("Blocked", "Blocked"), "Blocked", "Critical"),
        (["maintenance", "down"], ("Blocked", "Down"), "Blocked", "Critical"),
    ],
)
def test_station_state_line_mode_and_health(
    viewer, machine_states, station, mode, health
):
    """Two machines on one station: the worst stop names the reason."""
    line = make_line(stations=(("st-01", "Weld", "20"),))
    first = machine(line, "st-01")
    second = Machine.objects.create(
        station=first.station, code="second", name="Weld 2", machine_type="weld"
    )
    for target, code in zip([first, second], machine_states, strict=True):
        ingest(target, [state(at(8), code)])
    body = viewer.get("/api/lines/line-a").json()
    assert (body["stations"][0]["state"], body["stations"][0].get("reason", "")) == (
        station
    )
    assert (body["mode"], body["health"]) == (mode, health)


def test_health_is_warning_when_shift_oee_is_below_target(mid_shift, viewer, line_a):
    ingest(machine(line_a, "st-02"), [state(at(8, 1), "running")])
    services.oee_snapshots_refresh()  # now: no readings this shift, OEE 0 %
    body = viewer.get("/api/lines/line-a").json()
    assert (body["mode"], body["oee"], body["health"]) == ("Running", 0.0, "Warning")


# --- live status -------------------------------------------------------------------


def test_live_status_summary(viewer, line_a):
    make_line(slug="line-b", name="Line B (Packs)", position=2)  # 2 idle stations
    response = viewer.get("/api/live-status/summary")
    body = response.json()
    assert body.pop("updatedAt").endswith("Z")
    assert body == {
        "healthPercent": 83.3,  # 5 of 6 stations not Blocked
        "activeLines": 0,
        "totalLines": 2,
        "lines": {"running": 0, "idle": 1, "blocked": 1, "maintenance": 0},
        "stations": {"ready": 1, "running": 1, "blocked": 1, "idle": 3},
        "oee": None,
    }


def test_live_status_summary_with_no_lines(viewer):
    body = viewer.get("/api/live-status/summary").json()
    assert (body["healthPercent"], body["totalLines"], body["oee"]) == (None, 0, None)


@pytest.fixture
def production_floor(make_user):
    """Four work orders in progress on the three-stage runbook:

    WO1 at S1 in progress; WO2 S1 done, S2 waiting; WO3 S1 done, S2 on hold;
    WO4 S1 done, S2 in progress. One planned work order (backlog, not WIP).
    """
    supervisor = make_user("supervisor")
    runbook = production.make_runbook()
    orders = [
        production.make_work_order(supervisor, runbook=runbook, lot_no=f"LOT-{n}")
        for n in range(1, 6)
    ]
    stages = [production.stages_of(order) for order in orders]
    for order_stages in stages[:4]:
        runbook_services.stage_start(stage_id=order_stages[0].pk, actor=supervisor)
    for order_stages in stages[1:4]:
        runbook_services.stage_finish(stage_id=order_stages[0].pk, actor=supervisor)
    runbook_services.stage_start(stage_id=stages[2][1].pk, actor=supervisor)
    runbook_services.stage_hold(
        stage_id=stages[2][1].pk, reason="Seal check failed", actor=supervisor
    )
    runbook_services.stage_start(stage_id=stages[3][1].pk, actor=supervisor)
    return orders, stages


def test_wip_by_stage_and_bottleneck(production_floor, django_assert_num_queries):
    orders, _ = production_floor
    assert orders[4].status == WorkOrderStatus.PLANNED
    with django_assert_num_queries(1):  # the stages with their kept WIP counts
        stages = wip.stage_wip_list()
    assert [(s.stage, s.in_progress, s.waiting, s.on_hold) for s in stages] == [
        ("S1 Cell Grading", 1, 0, 0),
        ("S2 Module Assembly", 1, 1, 1),
        ("S3 End-of-Line Test", 0, 0, 0),
    ]
    assert [s.is_bottleneck for s in stages] == [False, True, False]
    assert wip.bottleneck(stages).stage_id == "manufacturing-02"


def test_bottleneck_endpoint(viewer, production_floor):
    body = viewer.get("/api/live-status/bottlenecks").json()
    expected_s2 = {
        "runbookId": "manufacturing",
        "stageId": "manufacturing-02",
        "stage": "S2 Module Assembly",
        "inProgress": 1,
        "waiting": 1,
        "onHold": 1,
        "wip": 3,
        "isBottleneck": True,
    }
    assert body["bottleneck"] == expected_s2
    assert body["stages"][1] == expected_s2
    assert [s["wip"] for s in body["stages"]] == [1, 3, 0]


def test_no_bottleneck_without_wip(viewer):
    production.make_runbook()
    body = viewer.get("/api/live-status/bottlenecks").json()
    assert body["bottleneck"] is None
    assert [s["isBottleneck"] for s in body["stages"]] == [False, False, False]


def test_live_operations_running_versus_blocked(viewer, production_floor):
    orders, stages = production_floor
    body = viewer.get("/api/live-status/operations").json()
    assert (body["runningCount"], body["blockedCount"]) == (2, 1)
    assert {op["id"] for op in body["running"]} == {stages[0][0].pk, stages[3][1].pk}
    held = stages[2][1]
    held.refresh_from_db()
    assert body["blocked"] == [
        {
            "id": held.pk,
            "workOrderId": orders[2].pk,
            "runbookId": "manufacturing",
            "stageId": "manufacturing-02",
            "stage": "S2 Module Assembly",
            "productCode": "PACK-48V",
            "lotNo": "LOT-3",
            "status": "Blocked",
            "reason": "Seal check failed",
            "since": production.iso(held.updated_at.replace(microsecond=0)),
        }
    ]
    running = next(op for op in body["running"] if op["id"] == stages[3][1].pk)
    assert (running["status"], running["reason"]) == ("Running", "")
    assert body["bottleneck"]["stageId"] == "manufacturing-02"


def test_operations_list_the_newest_and_count_them_all(
    viewer, production_floor, monkeypatch, django_assert_num_queries
):
    _orders, stages = production_floor
    monkeypatch.setattr(wip, "OPERATIONS_LIMIT", 1)
    # Running and blocked (ranked and counted in one query), the stages' WIP.
    with django_assert_num_queries(2):
        body = viewer.get("/api/live-status/operations").json()
    assert (body["runningCount"], body["blockedCount"]) == (2, 1)
    # The most recently changed of the two running stages: S2 of the fourth order.
    assert [op["id"] for op in body["running"]] == [stages[3][1].pk]
    assert [op["id"] for op in body["blocked"]] == [stages[2][1].pk]


# --- query counts ------------------------------------------------------------------


@pytest.mark.parametrize("lines", [1, 4])
def test_status_reads_cost_fixed_queries(
    mid_shift, viewer, django_assert_num_queries, lines
):
    for n in range(lines):
        line = make_line(slug=f"line-{n}", position=n)
        ingest(machine(line, "st-01"), [state(at(8), "running")])
    # Computed: lines, stations with their machines (one join), snapshots; the
    # client is force-authenticated (no user query). The summary sums the
    # snapshots its line views read. Served again from the read model: none.
    for path in ("/api/live-status/lines", "/api/live-status/summary", "/api/lines"):
        with django_assert_num_queries(3):
            first = viewer.get(path).json()
        with django_assert_num_queries(0):
            assert viewer.get(path).json() == first
    assert len(first) == lines


def test_oee_window_reads_cost_fixed_queries(
    mid_shift, viewer, django_assert_num_queries, line_a
):
    path = "/api/lines/line-a/oee?from=2026-03-02T07:30:00Z&to=2026-03-02T09:30:00Z"
    # The line, its stations with their machines (one join), the roll-up hours,
    # the raw edges; then the line and its machines come from the read model.
    with django_assert_num_queries(4):
        first = viewer.get(path).json()
    with django_assert_num_queries(2):
        again = viewer.get(path).json()
    assert first.pop("computedAt") <= again.pop("computedAt")  # computed each time
    assert again == first
    # The default window from the beat's snapshots: one query once the line and
    # its stations are in the read model (the refresh started a new generation).
    services.oee_snapshots_refresh()
    viewer.get("/api/lines/line-a/oee")
    with django_assert_num_queries(1):
        body = viewer.get("/api/lines/line-a/oee").json()
    assert body["source"] == "snapshot"
    assert [s["id"] for s in body["stations"]] == ["st-01", "st-02", "st-03", "st-04"]
    # A station edit is in the next read.
    station = line_a.stations.get(slug="st-04")
    station.name = "End-of-line Test"
    station.save()
    names = [s["name"] for s in viewer.get(path).json()["stations"]]
    assert names[-1] == "End-of-line Test"
    stations = viewer.get("/api/lines/line-a/stations").json()
    assert stations[-1]["name"] == "End-of-line Test"


# --- read models: every write that changes a payload is seen at once --------------


def _station_states(viewer, path="/api/live-status/lines"):
    return [s["state"] for s in viewer.get(path).json()[0]["stations"]]


def test_status_change_through_ingest_is_served_at_once(viewer, line_a):
    assert _station_states(viewer) == ["Running", "Blocked", "Ready", "Idle"]
    summary = viewer.get("/api/live-status/summary").json()
    assert summary["stations"]["blocked"] == 1
    # The ingest path writes the machine's status in raw SQL.
    ingest(machine(line_a, "st-02"), [state(at(8, 5), "running")])
    assert _station_states(viewer) == ["Running", "Running", "Ready", "Idle"]
    summary = viewer.get("/api/live-status/summary").json()
    assert (summary["stations"]["blocked"], summary["healthPercent"]) == (0, 100.0)


def test_orm_edits_of_lines_and_stations_are_served_at_once(viewer, line_a):
    assert viewer.get("/api/lines").json()[0]["name"] == "Line A (Modules)"
    line_a.name = "Line A (Cells)"
    line_a.save()  # as the admin saves it
    assert viewer.get("/api/lines").json()[0]["name"] == "Line A (Cells)"
    assert _station_states(viewer)[3] == "Idle"
    weld = machine(line_a, "st-04")
    weld.status, weld.status_reason = "down", "Motor"
    weld.save()
    assert _station_states(viewer)[3] == "Blocked"
    weld.delete()
    weld.station.delete()
    assert len(_station_states(viewer)) == 3


def test_snapshot_refresh_is_served_at_once(mid_shift, viewer, line_a):
    assert viewer.get("/api/live-status/lines").json()[0]["oee"] is None
    services.oee_snapshots_refresh()  # beat: no readings this shift, OEE 0 %
    assert viewer.get("/api/live-status/lines").json()[0]["oee"] == 0.0
    assert viewer.get("/api/live-status/summary").json()["oee"] == 0.0


def test_stage_changes_are_served_at_once(viewer, make_user, production_floor):
    _orders, stages = production_floor
    body = viewer.get("/api/live-status/operations").json()
    assert (body["runningCount"], body["blockedCount"]) == (2, 1)
    s2 = viewer.get("/api/live-status/bottlenecks").json()["stages"][1]
    assert (s2["inProgress"], s2["onHold"]) == (1, 1)
    supervisor = make_user("supervisor")
    runbook_services.stage_resume(stage_id=stages[2][1].pk, actor=supervisor)
    body = viewer.get("/api/live-status/operations").json()
    assert (body["runningCount"], body["blockedCount"]) == (3, 0)
    s2 = viewer.get("/api/live-status/bottlenecks").json()["stages"][1]
    assert (s2["inProgress"], s2["onHold"], s2["wip"]) == (2, 0, 3)


# --- machines (mobile) -------------------------------------------------------------


def test_machine_list_and_detail_are_snake_case(http, make_user, line_a):
    headers = bearer(make_user("operator"))
    weld = machine(line_a, "st-02")
    listed = http.get("/api/machines", params={"status": "blocked"}, headers=headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 1
    expected = {
        "id": weld.pk,
        "code": "line-a-st-02-m1",
        "name": "Weld machine",
        "machine_type": "weld",
        "location": "Line A (Modules) bay 2",
        "status": "blocked",
        "status_reason": "Safety Curtain",
        "status_since": "2026-03-02T08:00:00Z",
        "station_id": "st-02",
        "line_id": "line-a",
        "is_active": True,
    }
    assert body["results"] == [expected]
    detail = http.get(f"/api/machines/{weld.pk}", headers=headers)
    assert detail.json() == expected
    by_line = http.get(
        "/api/machines", params={"line": "line-a", "station": "st-01"}, headers=headers
    )
    assert [m["station_id"] for m in by_line.json()["results"]] == ["st-01"]
    assert http.get("/api/machines/987654", headers=headers).status_code == 404
