"""Group I dashboards: /api/dashboard/summary, /trends, /distributions.

A small fixed plant is built through the services (time frozen with
time-machine where a service stamps "now"), and every figure is worked out by
hand in the comments next to it. Then: the payloads key by key, the empty
plant's empty states, 400s for bad parameters, the telemetry role rule, and
pinned query counts.

The plant's clock: NOW is Wednesday 2026-03-04 10:30 UTC, so the plant shift
(line A's calendar: 06:00, 14:00, 22:00) is 06:00-14:00, today is 03-04 and the
ISO week starts Monday 03-02.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from exceptions import services as exception_services
from inventory import services as inventory_services
from lines import services as line_services
from passports import telemetry
from passports.models import Kind, State
from runbooks import services as runbook_services
from runbooks.models import WorkOrderStage
from scada.models import AlarmEvent
from tests.conftest import bearer
from tests.factories_inventory import make_categories, make_warehouse, receive
from tests.factories_lines import ingest, machine, make_line, reading, state
from tests.factories_passports import make_passport, record
from tests.factories_tower import make_runbook

NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
SUMMARY_KEYS = {"asOf", "shift", "today", "week", "hold"}
WINDOW_KEYS = {
    "from",
    "to",
    "planned",
    "built",
    "qaTested",
    "qaPassed",
    "yieldPercent",
    "good",
    "rejected",
    "lineYieldPercent",
}
HOLD_KEYS = {"total", "workOrderStages", "inventoryItems", "passports"}
TREND_KEYS = {"metric", "bucket", "unit", "from", "to", "series"}
SERIES_KEYS = {"id", "name", "points"}
DISTRIBUTION_KEYS = {"stageMix", "custodyMix", "inventoryByStatus"}
STAGE_KEYS = {
    "runbookId",
    "stageId",
    "stage",
    "inProgress",
    "waiting",
    "onHold",
    "wip",
    "isBottleneck",
}
ENVELOPE_KEYS = {"success", "error", "code", "details", "request_id"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def boss(make_user):
    return make_user("supervisor")


# --- the fixed plant ------------------------------------------------------------------


def _work_order(boss, qty: int, due: datetime, lot: str):
    return runbook_services.work_order_create(
        product_code="PACK-48V",
        lot_no=lot,
        qty=qty,
        planned_start=due - timedelta(hours=2),
        planned_end=due,
        actor=boss,
        runbook_slug="manufacturing",
    )


def _stages(work_order) -> list[WorkOrderStage]:
    return list(work_order.stages.order_by("position"))


def _complete(work_order, boss, when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        for stage in _stages(work_order):
            runbook_services.stage_start(stage_id=stage.pk, actor=boss)
            runbook_services.stage_finish(stage_id=stage.pk, actor=boss)


def build_production(boss) -> None:
    """Work orders of a two-stage runbook:

     qty  due (planned end)   what became of it
     10   03-04 12:00 shift   completed 03-04 09:00 (shift, today, week)
     20   03-04 20:00 today   S1 on hold (in progress)
      5   03-03 12:00 week    completed 03-03 15:00 (week)
      7   03-04 11:00 shift   cancelled: never planned
    100   03-10 09:00         not due this week
      3   03-01 12:00         completed 03-01 13:00: last week
      1   03-10 09:00         S1 done, S2 waiting
    """
    make_runbook(stages=[("S1", "Cell Stacking"), ("S2", "Module Assembly")])
    with time_machine.travel(at(1, 8), tick=False):
        orders = {
            lot: _work_order(boss, qty, due, lot)
            for lot, qty, due in [
                ("A", 10, at(4, 12)),
                ("B", 20, at(4, 20)),
                ("C", 5, at(3, 12)),
                ("D", 7, at(4, 11)),
                ("E", 100, at(10, 9)),
                ("F", 3, at(1, 12)),
                ("G", 1, at(10, 9)),
            ]
        }
    _complete(orders["F"], boss, at(1, 13))
    _complete(orders["C"], boss, at(3, 15))
    _complete(orders["A"], boss, at(4, 9))
    with time_machine.travel(at(4, 9, 30), tick=False):
        s1 = _stages(orders["B"])[0]
        runbook_services.stage_start(stage_id=s1.pk, actor=boss)
        runbook_services.stage_hold(stage_id=s1.pk, reason="Seal leak", actor=boss)
        runbook_services.work_order_cancel(
            work_order_id=orders["D"].pk, reason="Duplicate", actor=boss
        )
        g1 = _stages(orders["G"])[0]
        runbook_services.stage_start(stage_id=g1.pk, actor=boss)
        runbook_services.stage_finish(stage_id=g1.pk, actor=boss)


def build_lines() -> None:
    """Line A (06:00 shifts) and line B (12-hour shifts from 00:00).

    Line A, machine st-01: 02:00 good 40 reject 10 (night shift from 03-03
    22:00); 08:00 good 90 reject 10. Machine st-02: 08:20 good 150.
    Line B: 09:00 good 20 reject 30 (its shift from 03-04 00:00).
    Snapshots refreshed at 05:00 and at NOW, as beat would.
    """
    line_a = make_line(slug="line-a", name="Line A", position=1)
    line_b = make_line(slug="line-b", name="Line B", position=2)
    line_b.shift_start, line_b.shift_minutes = time(0, 0), 720
    line_b.planned_downtime_minutes = 72
    line_b.save()
    with time_machine.travel(NOW, tick=False):
        m1, m2 = machine(line_a, "st-01"), machine(line_a, "st-02")
        ingest(
            m1,
            [
                reading("good_count", at(4, 2), 40),
                reading("reject_count", at(4, 2), 10),
                state(at(4, 8), "running"),
                reading("good_count", at(4, 8, 10), 90),
                reading("reject_count", at(4, 8, 10), 10),
                state(at(4, 8, 30), "idle"),
            ],
        )
        ingest(
            m2, [state(at(4, 8), "running"), reading("good_count", at(4, 8, 20), 150)]
        )
        ingest(
            machine(line_b, "st-01"),
            [
                reading("good_count", at(4, 9), 20),
                reading("reject_count", at(4, 9), 30),
            ],
        )
    line_services.oee_snapshots_refresh(now=at(4, 5))
    line_services.oee_snapshots_refresh(now=NOW)
    line_services.machine_hours_refresh(now=NOW)


def build_stock_and_passports(boss) -> None:
    """Items: one Good, one on Hold, one Blocked. Passports (units): a
    warehoused pack, a held pack, a dispatched pack, a delivered pack, and a
    module holding a cell (the cell is not a unit)."""
    make_categories()
    make_warehouse()
    for code in ("I-1", "I-2", "I-3"):
        receive(boss, code)
    inventory_services.item_hold(item_code="I-2", reason="Swollen", actor=boss)
    inventory_services.item_block(item_code="I-3", reason="Dented", actor=boss)
    make_passport(Kind.PACK, State.WAREHOUSED, actor=boss)
    make_passport(Kind.PACK, on_hold=True, actor=boss)
    make_passport(Kind.PACK, State.DISPATCHED, actor=boss)
    make_passport(Kind.PACK, State.IN_SERVICE, actor=boss)
    make_passport(Kind.CELL, State.ASSEMBLED, actor=boss)


def build_qa(boss) -> None:
    """First QA results: P1 passed and P2 failed at 03-04 09:00 (shift); P3
    passed at 03-04 03:00 (today); P4 failed at 03-03 10:00 and passed on
    retest at 03-04 09:30 (its first result is the failure, in the week)."""
    for when, result in [
        (at(4, 9), State.QA_PASSED),
        (at(4, 9), State.QA_FAILED),
        (at(4, 3), State.QA_PASSED),
    ]:
        with time_machine.travel(when, tick=False):
            make_passport(Kind.PACK, result, actor=boss)
    with time_machine.travel(at(3, 10), tick=False):
        p4 = make_passport(Kind.PACK, State.QA_FAILED, actor=boss)
    with time_machine.travel(at(4, 9, 30), tick=False):
        record(p4, "qa_passed", actor=boss)


# --- summary --------------------------------------------------------------------------


@pytest.mark.django_db
def test_summary_figures_of_the_fixed_plant(boss):
    build_production(boss)
    build_lines()
    build_stock_and_passports(boss)
    build_qa(boss)

    with time_machine.travel(NOW, tick=False):
        response = api(boss).get("/api/dashboard/summary")

    assert response.status_code == 200
    assert response.json() == {
        "asOf": "2026-03-04T10:30:00Z",
        # Due in the shift: A (10); D is cancelled. Built: A.
        # First QA results: P1 passed, P2 failed -> 50.0 %.
        # Pieces: line A's 06:00 shift: good 90 + 150, rejected 10 -> 96.0 %.
        # Line B's shift started at 00:00, before the plant's shift.
        "shift": {
            "from": "2026-03-04T06:00:00Z",
            "to": "2026-03-04T14:00:00Z",
            "planned": 10,
            "built": 10,
            "qaTested": 2,
            "qaPassed": 1,
            "yieldPercent": 50.0,
            "good": 240,
            "rejected": 10,
            "lineYieldPercent": 96.0,
        },
        # Due today: A + B = 30. QA: plus P3 -> 2 of 3 -> 66.7 % (P4's pass
        # today was a retest). Pieces: A's 06:00 shift and B's 00:00 shift:
        # 260 good, 40 rejected -> 86.666 -> 86.7 %.
        "today": {
            "from": "2026-03-04T00:00:00Z",
            "to": "2026-03-05T00:00:00Z",
            "planned": 30,
            "built": 10,
            "qaTested": 3,
            "qaPassed": 2,
            "yieldPercent": 66.7,
            "good": 260,
            "rejected": 40,
            "lineYieldPercent": 86.7,
        },
        # Due this week: A + B + C = 35; built A + C = 15 (F was last week).
        # QA: plus P4's failure -> 2 of 4 -> 50.0 %. Pieces: plus A's night
        # shift from 03-03 22:00 (40, 10): 300 and 50 -> 85.714 -> 85.7 %.
        "week": {
            "from": "2026-03-02T00:00:00Z",
            "to": "2026-03-09T00:00:00Z",
            "planned": 35,
            "built": 15,
            "qaTested": 4,
            "qaPassed": 2,
            "yieldPercent": 50.0,
            "good": 300,
            "rejected": 50,
            "lineYieldPercent": 85.7,
        },
        # B's S1; item I-2; the held pack.
        "hold": {
            "total": 3,
            "workOrderStages": 1,
            "inventoryItems": 1,
            "passports": 1,
        },
    }


@pytest.mark.django_db
def test_summary_of_an_empty_plant_is_zeros_and_nulls(boss):
    with time_machine.travel(NOW, tick=False):
        body = api(boss).get("/api/dashboard/summary").json()
    assert set(body) == SUMMARY_KEYS
    empty = {
        "planned": 0,
        "built": 0,
        "qaTested": 0,
        "qaPassed": 0,
        "yieldPercent": None,
        "good": 0,
        "rejected": 0,
        "lineYieldPercent": None,
    }
    # No line: the default calendar (06:00 UTC, 480 minutes).
    assert body["shift"] == {
        "from": "2026-03-04T06:00:00Z",
        "to": "2026-03-04T14:00:00Z",
        **empty,
    }
    for name in ("today", "week"):
        assert set(body[name]) == WINDOW_KEYS
        assert {k: body[name][k] for k in empty} == empty
    assert body["hold"] == dict.fromkeys(HOLD_KEYS, 0)


@pytest.mark.django_db(transaction=True)
def test_summary_over_a_real_socket_has_the_contract_keys(http, make_user):
    user = make_user("operator")
    response = http.get("/api/dashboard/summary", headers=bearer(user))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SUMMARY_KEYS
    assert set(body["shift"]) == WINDOW_KEYS
    assert set(body["hold"]) == HOLD_KEYS


# --- trends ---------------------------------------------------------------------------


def _trend(user, **params):
    with time_machine.travel(NOW, tick=False):
        return api(user).get("/api/dashboard/trends", params)


def _points(body, index: int = 0) -> list:
    return [(p["t"], p["value"]) for p in body["series"][index]["points"]]


@pytest.mark.django_db
def test_oee_trend_per_line_from_the_hourly_rollups(boss):
    build_lines()
    response = _trend(
        boss, metric="oee", bucket="hour", **{"from": "2026-03-04T08:00:00Z"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TREND_KEYS
    assert body["metric"] == "oee"
    assert body["unit"] == "%"
    assert (body["from"], body["to"]) == ("2026-03-04T08:00:00Z", NOW_TEXT)
    assert [(s["id"], s["name"]) for s in body["series"]] == [
        ("line-a", "Line A"),
        ("line-b", "Line B"),
    ]
    assert all(set(s) == SERIES_KEYS for s in body["series"])
    # Line A, 08:00: planned busy 2 x 3240 s; run 1800 (st-01 until 08:30) +
    # 3600 (st-02); ideal 100 x 10 s + 150 x 20 s = 4000 s; 240 good of 250.
    # OEE = 4000/6480 x 240/250 = 0.59259 -> 59.3. 09:00: st-02 runs, nothing
    # made: Performance 0 -> OEE 0. 10:00 is not rolled up yet: null.
    assert _points(body, 0) == [
        ("2026-03-04T08:00:00Z", 59.3),
        ("2026-03-04T09:00:00Z", 0.0),
        ("2026-03-04T10:00:00Z", None),
    ]
    # Line B's machine never reported a state: run 0 -> Availability 0 -> 0.
    assert _points(body, 1) == [
        ("2026-03-04T08:00:00Z", None),  # its first roll-up is 09:00
        ("2026-03-04T09:00:00Z", 0.0),
        ("2026-03-04T10:00:00Z", None),
    ]
    # One day: A's 08:00 and 09:00 hours together (the night hours come
    # before 08:00 but from 00:00 count too: st-01 reported at 02:00, so its
    # roll-ups start there; st-02's at 08:00).
    day = _trend(boss, metric="oee", bucket="day", **{"from": "2026-03-04T08:00:00Z"})
    # st-01 02:00-09:00 (8 hours, running 08:00-08:30) and st-02 08:00-09:00
    # (2 hours running): planned busy 10 x 3240 = 32400 s; ideal 4000 s (the
    # 40 + 10 pieces at 02:00 add 500 s: 4500 s); good 280 of 300.
    # OEE = 4500/32400 x 280/300 = 0.12963 -> 13.0.
    assert _points(day.json(), 0) == [("2026-03-04T00:00:00Z", 13.0)]


NOW_TEXT = "2026-03-04T10:30:00Z"


@pytest.mark.django_db
def test_first_pass_yield_trend_from_the_ledger(boss):
    build_qa(boss)
    body = _trend(boss, metric="yield", **{"from": "2026-03-02T00:00:00Z"}).json()
    assert body["unit"] == "%"
    # 03-03: P4 failed; 03-04: P1, P3 passed, P2 failed (P4's retest is not
    # a first result).
    assert _points(body) == [
        ("2026-03-02T00:00:00Z", None),
        ("2026-03-03T00:00:00Z", 0.0),
        ("2026-03-04T00:00:00Z", 66.7),
    ]


@pytest.mark.django_db
def test_line_yield_trend_from_the_hourly_rollups(boss):
    build_lines()
    body = _trend(
        boss, metric="lineYield", bucket="hour", **{"from": "2026-03-04T07:00:00Z"}
    ).json()
    assert body["series"][0]["id"] == "plant"
    # 07:00 rolled up, nothing made; 08:00 240 of 250; 09:00 line B 20 of 50.
    assert _points(body) == [
        ("2026-03-04T07:00:00Z", None),
        ("2026-03-04T08:00:00Z", 96.0),
        ("2026-03-04T09:00:00Z", 40.0),
        ("2026-03-04T10:00:00Z", None),
    ]


@pytest.mark.django_db
def test_built_exceptions_and_alarms_trends_count_per_bucket(boss):
    build_production(boss)
    for when, title in [(at(3, 9), "a"), (at(4, 8), "b"), (at(4, 9), "c")]:
        with time_machine.travel(when, tick=False):
            exception_services.exception_raise(
                type="process_deviation", title=title, actor=boss
            )
    for when in (at(2, 23), at(4, 1), at(4, 2)):
        AlarmEvent.objects.create(timestamp=when, message="High temp")

    window = {"bucket": "day", "from": "2026-03-02T00:00:00Z"}
    built = _trend(boss, metric="built", **window).json()
    assert built["unit"] == "units"
    # C (5) on 03-03, A (10) on 03-04; F was on 03-01, before from.
    assert _points(built) == [
        ("2026-03-02T00:00:00Z", 0),
        ("2026-03-03T00:00:00Z", 5),
        ("2026-03-04T00:00:00Z", 10),
    ]
    opened = _trend(boss, metric="exceptionsOpened", **window).json()
    assert _points(opened) == [
        ("2026-03-02T00:00:00Z", 0),
        ("2026-03-03T00:00:00Z", 1),
        ("2026-03-04T00:00:00Z", 2),
    ]
    alarms = _trend(boss, metric="alarms", **window).json()
    assert _points(alarms) == [
        ("2026-03-02T00:00:00Z", 1),
        ("2026-03-03T00:00:00Z", 0),
        ("2026-03-04T00:00:00Z", 2),
    ]
    weekly = _trend(boss, metric="built", bucket="week", to="2026-03-09T00:00:00Z")
    # 24 weeks up to the week of 03-02 (to is the start of the next one); the
    # last two: F (3), then A + C.
    assert weekly.json()["from"] == "2025-09-22T00:00:00Z"
    assert len(weekly.json()["series"][0]["points"]) == 24
    assert _points(weekly.json())[-2:] == [
        ("2026-02-23T00:00:00Z", 3),
        ("2026-03-02T00:00:00Z", 15),
    ]


@pytest.mark.django_db
def test_telemetry_trends_per_pack_and_per_model(boss, make_user):
    one = make_passport(Kind.PACK, State.WAREHOUSED, actor=boss)
    two = make_passport(Kind.PACK, State.WAREHOUSED, actor=boss)
    with time_machine.travel(NOW, tick=False):
        telemetry.telemetry_ingest(
            passport_id=one.pk,
            rows=[
                {"ts": "2026-03-03T10:00:00Z", "sohPercent": 99.0},
                {"ts": "2026-03-03T16:00:00Z", "sohPercent": 98.0},
                {"ts": "2026-03-04T10:00:00Z", "sohPercent": 97.0},
            ],
            actor=boss,
        )
        telemetry.telemetry_ingest(
            passport_id=two.pk,
            rows=[{"ts": "2026-03-03T12:00:00Z", "sohPercent": 90.0}],
            actor=boss,
        )
    window = {"metric": "soh", "bucket": "day", "from": "2026-03-03T00:00:00Z"}

    mine = _trend(boss, passport=one.serial, **window).json()
    assert mine["series"][0]["id"] == str(one.uuid)
    assert mine["series"][0]["name"] == one.serial
    # 03-03: (99 + 98) / 2.
    assert _points(mine) == [
        ("2026-03-03T00:00:00Z", 98.5),
        ("2026-03-04T00:00:00Z", 97.0),
    ]
    model = _trend(boss, model="PACK-LFP", **window).json()
    # 03-03: (99 + 98 + 90) / 3 = 95.666 -> 95.67.
    assert _points(model) == [
        ("2026-03-03T00:00:00Z", 95.67),
        ("2026-03-04T00:00:00Z", 97.0),
    ]
    # Nothing of another model: an empty series, not an error.
    other = _trend(boss, model="NOPE", **window).json()
    assert _points(other) == [
        ("2026-03-03T00:00:00Z", None),
        ("2026-03-04T00:00:00Z", None),
    ]
    # State of health is restricted: operators and planners may not follow it.
    refused = _trend(make_user("operator"), model="PACK-LFP", **window)
    assert refused.status_code == 403
    assert set(refused.json()) == ENVELOPE_KEYS
    unknown = _trend(boss, passport="NO-SUCH", **window)
    assert unknown.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "metric"),
        ({"metric": "nope"}, "metric"),
        ({"metric": ""}, "metric"),
        ({"metric": "built", "bucket": "minute"}, "bucket"),
        ({"metric": "built", "from": "yesterday"}, "from"),
        ({"metric": "built", "from": ""}, "from"),
        ({"metric": "built", "to": "9999-12-31T23:59:59Z"}, "to"),
        ({"metric": "built", "from": "0001-01-01T00:00:00Z"}, "from"),
        ({"metric": "built", "from": NOW_TEXT, "to": "2026-03-04T09:00:00Z"}, "from"),
        # 2000.5 hours: 2001 points.
        (
            {"metric": "built", "bucket": "hour", "from": "2025-12-11T02:00:00Z"},
            "from",
        ),
        ({"metric": "built", "passport": "P-1"}, "passport"),
        ({"metric": "alarms", "model": "PACK-LFP"}, "model"),
        ({"metric": "soh"}, "passport"),
        ({"metric": "soc", "passport": "P-1", "model": "M"}, "passport"),
        ({"metric": "soh", "model": "x" * 65}, "model"),
        ({"metric": "soh", "passport": "P\x00"}, "passport"),
        ({"metric": "built", "to": "99999999999999999999"}, "to"),
        ({"metric": "built", "from": "2026-03-04T10:00:00+99:00"}, "from"),
    ],
)
def test_trend_parameters_are_checked(boss, params, field):
    response = _trend(boss, **params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert field in body["details"]


@pytest.mark.django_db
def test_the_longest_window_is_accepted(boss):
    # 2000 hours exactly, ending at NOW.
    start = NOW - timedelta(hours=1999, minutes=30)
    body = _trend(
        boss,
        metric="alarms",
        bucket="hour",
        **{"from": start.isoformat().replace("+00:00", "Z")},
    ).json()
    assert len(body["series"][0]["points"]) == 2000


@pytest.mark.django_db
def test_trends_of_an_empty_plant_are_empty_states(boss):
    for metric, empty in [
        ("built", 0),
        ("yield", None),
        ("lineYield", None),
        ("exceptionsOpened", 0),
        ("alarms", 0),
    ]:
        body = _trend(boss, metric=metric, bucket="hour").json()
        points = body["series"][0]["points"]
        # Default: 24 buckets ending with the one holding NOW.
        assert len(points) == 24
        assert points[-1]["t"] == "2026-03-04T10:00:00Z"
        assert {p["value"] for p in points} == {empty}
    assert _trend(boss, metric="oee").json()["series"] == []


# --- distributions --------------------------------------------------------------------


@pytest.mark.django_db
def test_distributions_of_the_fixed_plant(boss):
    build_production(boss)
    build_stock_and_passports(boss)

    response = api(boss).get("/api/dashboard/distributions")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == DISTRIBUTION_KEYS
    # B is held at S1; G waits at S2 (S1 done). S2 wins the tie on waiting.
    assert body["stageMix"] == [
        {
            "runbookId": "manufacturing",
            "stageId": "mfg-01",
            "stage": "S1 Cell Stacking",
            "inProgress": 0,
            "waiting": 0,
            "onHold": 1,
            "wip": 1,
            "isBottleneck": False,
        },
        {
            "runbookId": "manufacturing",
            "stageId": "mfg-02",
            "stage": "S2 Module Assembly",
            "inProgress": 0,
            "waiting": 1,
            "onHold": 0,
            "wip": 1,
            "isBottleneck": True,
        },
    ]
    # Units: warehoused, held and the module (with its cell) at the
    # manufacturer; the dispatched pack with the carrier; the delivered one
    # with the customer.
    assert body["custodyMix"] == [
        {"kind": "Manufacturer", "count": 3},
        {"kind": "Logistics", "count": 1},
        {"kind": "Customer", "count": 1},
        {"kind": "Service", "count": 0},
        {"kind": "Recycler", "count": 0},
    ]
    assert body["inventoryByStatus"] == [
        {"status": "Good", "count": 1},
        {"status": "Hold", "count": 1},
        {"status": "Blocked", "count": 1},
    ]


@pytest.mark.django_db
def test_distributions_of_an_empty_plant(boss):
    body = api(boss).get("/api/dashboard/distributions").json()
    assert body == {
        "stageMix": [],
        "custodyMix": [
            {"kind": kind, "count": 0}
            for kind in ("Manufacturer", "Logistics", "Customer", "Service", "Recycler")
        ],
        "inventoryByStatus": [
            {"status": status, "count": 0} for status in ("Good", "Hold", "Blocked")
        ],
    }


# --- roles and query counts -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "planner", "auditor"])
def test_every_role_reads_the_plant_figures(make_user, role):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(make_user(role))["Authorization"])
    for path in (
        "/api/dashboard/summary",
        "/api/dashboard/trends?metric=built",
        "/api/dashboard/distributions",
    ):
        assert client.get(path).status_code == 200
    assert APIClient().get("/api/dashboard/summary").status_code == 401


QUERY_COUNTS = {
    # the caller, then every part in one statement (bpmos.totals)
    "/api/dashboard/summary": 2,
    "/api/dashboard/distributions": 1,  # its three parts in one statement
    "/api/dashboard/trends?metric=built": 1,
    "/api/dashboard/trends?metric=yield": 1,
    "/api/dashboard/trends?metric=lineYield": 1,
    "/api/dashboard/trends?metric=oee": 4,
    "/api/dashboard/trends?metric=exceptionsOpened": 1,
    "/api/dashboard/trends?metric=alarms": 1,
    "/api/dashboard/trends?metric=soh&model=PACK-LFP": 1,
    "/api/dashboard/trends?metric=soc&model=PACK-LFP": 1,
    "/api/dashboard/trends?metric=temperature&model=PACK-LFP": 1,
    # the passport's identifier resolved, then its samples
    "/api/dashboard/trends?metric=soh&passport=P-LOOKUP": 2,
    "/api/dashboard/trends?metric=soc&passport=P-LOOKUP": 2,
    "/api/dashboard/trends?metric=temperature&passport=P-LOOKUP": 2,
    # other buckets cost the same
    "/api/dashboard/trends?metric=oee&bucket=hour": 4,
    "/api/dashboard/trends?metric=yield&bucket=week": 1,
}


@pytest.mark.django_db
def test_query_counts_do_not_grow_with_the_plant(boss, django_assert_num_queries):
    make_passport(Kind.PACK, State.WAREHOUSED, actor=boss, serial="P-LOOKUP")
    make_line(slug="line-z", name="Line Z", position=9)
    client = api(boss)

    def check():
        for path, count in QUERY_COUNTS.items():
            with (
                time_machine.travel(NOW, tick=False),
                django_assert_num_queries(count),
            ):
                assert client.get(path).status_code == 200, path

    check()
    build_production(boss)
    build_lines()
    build_stock_and_passports(boss)
    build_qa(boss)
    make_line(slug="line-c", name="Line C", position=3)
    check()


@pytest.mark.django_db
def test_the_distributions_in_one_statement_equal_each_part_read_alone(
    boss, django_assert_num_queries
):
    """The three breakdowns computed together (``distributions._computed``,
    one statement) are each as its selector computes it alone, and the
    custody mix as recounted over the passports themselves."""
    from bpmos.dashboards import distributions
    from inventory import selectors as inventory_selectors
    from lines import wip
    from passports import selectors as passport_selectors

    build_production(boss)
    build_stock_and_passports(boss)
    with django_assert_num_queries(1):
        together = distributions._computed({"stages", "custody", "stock"})
    assert together == {
        "stages": (wip.stage_wip_list(), None),
        "custody": (passport_selectors.custody_mix(), None),
        "stock": (inventory_selectors.item_status_counts(), None),
    }
    assert together["custody"][0] == passport_selectors.custody_mix_recount()
    assert together["stages"][0]
    assert any(together["stock"][0].values())
    with django_assert_num_queries(1):  # two parts dropped: one statement
        assert distributions._computed({"custody", "stock"}) == {
            "custody": together["custody"],
            "stock": together["stock"],
        }
