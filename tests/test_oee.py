"""OEE (docs/oee.md) on a small fixed data set, computed by hand and compared
exactly.

The line (tests/factories_lines.py): shifts of 480 minutes with 48 minutes of
planned downtime, so planned busy time (PBT) is 9/10 of a window. Window
[08:00, 10:00) = 7,200 s, PBT = 6,480 s per machine.

st-01 Cell Load, ideal cycle 10 s, machine M1:
  states: 07:30 running (before the window: in force at 08:00), 08:30 down,
          08:45 running, 09:40 idle
  run = 08:00-08:30 (1,800 s) + 08:45-09:40 (3,300 s) = 5,100 s
  good = 250 + 150 = 400 (07:59 and 10:00 are outside; a bad-quality 500 is
  ignored); reject = 20; produced = 420
  A = 5100/6480 = 78.70 %, P = 10 x 420 / 5100 = 82.35 %, Q = 400/420 = 95.24 %
  OEE = 10 x 400 / 6480 = 61.73 %

st-02 Weld, ideal cycle 20 s, machine M2:
  states: 08:10 running (none before the window: not running until then),
          09:00 blocked (Safety Curtain), 09:20 running (holds to 10:00)
  run = 3,000 + 2,400 = 5,400 s; good = 180, reject = 20, produced = 200
  A = 5400/6480 = 83.33 %, P = 20 x 200 / 5400 = 74.07 %, Q = 90 %
  OEE = 20 x 180 / 6480 = 55.56 %

Line (sums): PBT 12,960 s, run 10,500 s, ideal 4,200 + 4,000 = 8,200 s,
good 580, reject 40
  A = 10500/12960 = 81.02 %, P = 8200/10500 = 78.10 %, Q = 580/620 = 93.55 %
  OEE = 8200/12960 x 580/620 = 59.19 %
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db.models import F

from lines import oee, selectors, services
from lines.models import OEESnapshot
from tests.conftest import bearer
from tests.factories_lines import at, ingest, machine, make_line, reading, state

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def line():
    line = make_line()
    m1, m2 = machine(line, "st-01"), machine(line, "st-02")
    ingest(
        m1,
        [
            state(at(7, 30), "running"),
            state(at(8, 30), "down", "Jam"),
            state(at(8, 45), "running"),
            state(at(9, 40), "idle"),
            reading("good_count", at(7, 59), 99),
            reading("good_count", at(8, 20), 250),
            reading("good_count", at(9, 10), 150),
            reading("good_count", at(9, 11), 500, quality="bad"),
            reading("reject_count", at(9, 12), 20),
            reading("good_count", at(10), 77),
        ],
    )
    ingest(
        m2,
        [
            state(at(8, 10), "running"),
            state(at(9), "blocked", "Safety Curtain"),
            state(at(9, 20), "running"),
            reading("good_count", at(8, 50), 100),
            reading("good_count", at(9, 50), 80),
            reading("reject_count", at(9, 51), 20),
        ],
    )
    return line


def test_machine_inputs_by_hand(line):
    result = oee.line_oee(line, at(8), at(10))
    (s1, cell_load), (s2, weld) = result.stations
    assert (s1.slug, s2.slug) == ("st-01", "st-02")
    assert cell_load == oee.Figures(
        planned_busy=Fraction(6480),
        run=Fraction(5100),
        ideal=Fraction(4200),
        good=400,
        reject=20,
    )
    assert weld == oee.Figures(
        planned_busy=Fraction(6480),
        run=Fraction(5400),
        ideal=Fraction(4000),
        good=180,
        reject=20,
    )
    assert result.line == oee.Figures(
        planned_busy=Fraction(12960),
        run=Fraction(10500),
        ideal=Fraction(8200),
        good=580,
        reject=40,
    )


def test_ratios_are_exact(line):
    result = oee.line_oee(line, at(8), at(10))
    cell_load = result.stations[0][1]
    assert cell_load.availability == Fraction(5100, 6480)
    assert cell_load.performance == Fraction(4200, 5100)
    assert cell_load.quality == Fraction(400, 420)
    assert cell_load.oee == Fraction(4000, 6480)
    assert result.line.oee == Fraction(8200, 12960) * Fraction(580, 620)


def test_percentages_by_hand(line):
    result = oee.line_oee(line, at(8), at(10))
    D = Decimal
    assert result.stations[0][1].percentages() == {
        "availability": D("78.7"),
        "performance": D("82.4"),
        "quality": D("95.2"),
        "oee": D("61.7"),
    }
    assert result.stations[1][1].percentages() == {
        "availability": D("83.3"),
        "performance": D("74.1"),
        "quality": D("90.0"),
        "oee": D("55.6"),
    }
    assert result.line.percentages() == {
        "availability": D("81.0"),
        "performance": D("78.1"),
        "quality": D("93.5"),
        "oee": D("59.2"),
    }


def test_oee_endpoint_with_a_window(line, http, make_user):
    response = http.get(
        "/api/lines/line-a/oee",
        params={"from": "2026-03-02T08:00:00Z", "to": "2026-03-02T10:00:00Z"},
        headers=bearer(make_user("auditor")),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    computed = body.pop("computedAt")
    assert computed.endswith("Z")
    assert body == {
        "lineId": "line-a",
        "from": "2026-03-02T08:00:00Z",
        "to": "2026-03-02T10:00:00Z",
        "source": "live",
        "availability": 81.0,
        "performance": 78.1,
        "quality": 93.5,
        "oee": 59.2,
        "plannedBusyTime": 12960.0,
        "runTime": 10500.0,
        "goodCount": 580,
        "rejectCount": 40,
        "producedCount": 620,
        "stations": [
            {
                "id": "st-01",
                "name": "Cell Load",
                "availability": 78.7,
                "performance": 82.4,
                "quality": 95.2,
                "oee": 61.7,
                "plannedBusyTime": 6480.0,
                "runTime": 5100.0,
                "goodCount": 400,
                "rejectCount": 20,
                "producedCount": 420,
            },
            {
                "id": "st-02",
                "name": "Weld",
                "availability": 83.3,
                "performance": 74.1,
                "quality": 90.0,
                "oee": 55.6,
                "plannedBusyTime": 6480.0,
                "runTime": 5400.0,
                "goodCount": 180,
                "rejectCount": 20,
                "producedCount": 200,
            },
        ],
    }


def test_state_holds_to_the_window_end_and_is_clipped(line):
    # [09:30, 09:45): M1 running until 09:40 (600 s), M2 running throughout (900 s)
    result = oee.line_oee(line, at(9, 30), at(9, 45))
    assert [f.run for _, f in result.stations] == [Fraction(600), Fraction(900)]
    assert result.line.planned_busy == 2 * Fraction(900) * Fraction(9, 10)


def test_performance_is_capped_at_100(line):
    # 08:20-08:30: M1 runs 600 s and reports 250 pieces of 10 s ideal (2,500 s).
    figures = oee.line_oee(line, at(8, 20), at(8, 30)).stations[0][1]
    assert figures.ideal / figures.run == Fraction(2500, 600)
    assert figures.performance == 1
    assert figures.percentages()["performance"] == Decimal("100.0")


def test_undefined_ratios_are_null_and_a_stopped_line_is_zero():
    line = make_line(slug="line-z")
    result = oee.line_oee(line, at(8), at(9))  # no readings at all
    assert result.line.percentages() == {
        "availability": Decimal("0.0"),
        "performance": None,
        "quality": None,
        "oee": Decimal("0.0"),
    }
    empty = oee.Figures()  # nothing planned
    assert empty.percentages() == {
        "availability": None,
        "performance": None,
        "quality": None,
        "oee": None,
    }


def test_running_with_nothing_produced_has_zero_performance():
    figures = oee.Figures(planned_busy=Fraction(100), run=Fraction(50))
    assert figures.percentages() == {
        "availability": Decimal("50.0"),
        "performance": Decimal("0.0"),
        "quality": None,
        "oee": Decimal("0.0"),
    }


def test_percent_rounds_half_up():
    assert oee.percent(Fraction(1, 8)) == Decimal("12.5")
    assert oee.percent(Fraction(1234, 20000)) == Decimal("6.2")  # 6.17
    assert oee.percent(Fraction(125, 20000)) == Decimal("0.6")  # 0.625


def test_shift_window():
    line = make_line(slug="line-s")
    assert oee.shift_window(line, at(8)) == (at(6), at(14))
    assert oee.shift_window(line, at(14)) == (at(14), at(22))
    assert oee.shift_window(line, at(3)) == (
        at(22) - timedelta(days=1),
        at(6),
    )


def test_snapshot_refresh_stores_the_shift_so_far_and_serves_the_default(line):
    services.oee_snapshots_refresh(now=at(10))
    rows = OEESnapshot.objects.filter(line=line).order_by(
        F("station__position").asc(nulls_last=True)
    )
    assert [(r.station_id is None, r.window_start, r.window_end) for r in rows] == [
        (False, at(6), at(10)),
        (False, at(6), at(10)),
        (True, at(6), at(10)),
    ]
    report = selectors.line_oee_get(slug="line-a", now=at(10, 1))
    assert report.source == "snapshot"
    assert (report.start, report.end) == (at(6), at(10))
    live = oee.line_oee(line, at(6), at(10)).line.percentages()
    assert report.total.oee == live["oee"]
    assert report.total.availability == live["availability"]
    # Stale snapshots are not served as "now": computed live instead.
    stale = selectors.line_oee_get(slug="line-a", now=at(10, 30))
    assert (stale.source, stale.start, stale.end) == ("live", at(6), at(10, 30))


def test_refresh_after_the_shift_finalises_the_previous_shift(line):
    services.oee_snapshots_refresh(now=at(13, 59))
    services.oee_snapshots_refresh(now=at(14, 1))
    line_rows = OEESnapshot.objects.filter(line=line, station=None).order_by(
        "window_start"
    )
    assert [(r.window_start, r.window_end) for r in line_rows] == [
        (at(6), at(14)),
        (at(14), at(14, 1)),
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-03-02T10:00:00Z"}, "from"),
        ({"from": "2026-03-02T10:00:00Z", "to": "2026-03-02T09:00:00Z"}, "from"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}, "to"),
        ({"from": "2026-03-02T08:00:00"}, "from"),
    ],
)
def test_bad_windows_are_400(line, http, make_user, params, field):
    response = http.get(
        "/api/lines/line-a/oee", params=params, headers=bearer(make_user("operator"))
    )
    assert response.status_code == 400
    assert list(response.json()["details"]) == [field]
