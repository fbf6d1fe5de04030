"""The bounds of OEE (docs/oee.md, "Bounds"): actual production time (APT) never
exceeds planned busy time (PBT), so Availability, Performance, Quality and OEE
all lie in 0..100 % for any pattern of running, stops and planned downtime, in
the raw path and the hourly roll-up path alike (and both still agree exactly).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lines import oee, services
from tests.factories_lines import at, ingest, machine, make_line, state
from tests.support_hypothesis import examples
from tests.test_oee_rollups import (
    SPAN_HOURS,
    START,
    _rows,
    _store,
    moment,
    reading_strategy,
)

FACTORS = ("availability", "performance", "quality", "oee")


def assert_bounded(figures: oee.Figures) -> None:
    assert 0 <= figures.apt <= figures.planned_busy
    assert figures.apt <= figures.run
    for name in FACTORS:
        value = getattr(figures, name)
        assert value is None or 0 <= value <= 1, (name, value)
        shown = figures.percentages()[name]
        assert shown is None or Decimal(0) <= shown <= Decimal(100), (name, shown)


@pytest.mark.django_db(transaction=True)
def test_running_through_planned_downtime_is_100_not_111():
    # The case: 10 % planned downtime, the machine runs the whole hour.
    line = make_line(slug="line-r")
    line.planned_downtime_minutes = 48  # of 480: 10 %
    line.save()
    ingest(machine(line, "st-01"), [state(at(7, 30), "running")])
    for hourly in (False, True):
        result = oee.line_oee(line, at(8), at(9), hourly=hourly)
        cell_load = result.stations[0][1]
        assert cell_load.run == Fraction(3600)
        assert cell_load.planned_busy == Fraction(3240)
        assert cell_load.apt == Fraction(3240)  # 360 s ran in planned downtime
        assert cell_load.availability == 1
        assert cell_load.percentages()["availability"] == Decimal("100.0")
        # The line: one machine at 100 %, one never running: 50 %, not 55.6 %.
        assert result.line.apt == Fraction(3240)
        assert result.line.availability == Fraction(1, 2)


@pytest.mark.django_db(transaction=True)
def test_snapshots_store_apt_so_the_plant_sum_stays_bounded():
    line = make_line(slug="line-s")
    ingest(machine(line, "st-01"), [state(at(5), "running")])
    services.oee_snapshots_refresh(now=at(7))  # shift 06:00-07:00 so far
    from lines.models import OEESnapshot
    from lines.selectors import live_status_summary

    row = OEESnapshot.objects.get(line=line, station__slug="st-01")
    assert row.run_seconds == row.planned_busy_seconds == 3240
    assert row.availability == Decimal("100.0")
    summary = live_status_summary(now=at(7))
    assert summary.oee is None or summary.oee <= Decimal(100)


# --- pure arithmetic: any machines, any run time, any planned downtime ----------------

machine_inputs = st.tuples(
    st.integers(0, 10**6),  # run, seconds (clipped to the window below)
    st.integers(0, 10**4),  # pieces produced
    st.integers(0, 10**4),  # of which rejected (clipped below)
    st.integers(1, 600),  # ideal cycle time, seconds
)


@settings(max_examples=examples(500), deadline=None)
@given(
    window=st.integers(1, 31 * 86400),
    shift_minutes=st.sampled_from([60, 240, 480, 720, 1440]),
    downtime_share=st.fractions(0, 1),
    machines=st.lists(machine_inputs, min_size=1, max_size=12),
)
def test_figures_are_bounded_for_any_inputs(
    window, shift_minutes, downtime_share, machines
):
    busy = Fraction(window) * (1 - downtime_share)
    total = oee.Figures()
    for run, produced, reject, ideal_cycle in machines:
        run = Fraction(min(run, window))
        reject = min(reject, produced)
        one = oee.Figures(
            planned_busy=busy,
            run=run,
            ideal=ideal_cycle * Fraction(produced),
            good=produced - reject,
            reject=reject,
        )
        assert one.apt == min(run, busy)
        assert_bounded(one)
        total.add(one)
    assert_bounded(total)
    # A sum's APT is the sum of its machines' APTs, not min(sum run, sum PBT).
    assert total.apt == sum(
        (min(Fraction(min(m[0], window)), busy) for m in machines), Fraction(0)
    )


def test_performance_is_capped_even_when_the_ideal_cycle_is_too_slow():
    # 100 pieces of an ideal 60 s in 600 s of running: 1000 % uncapped.
    figures = oee.Figures(
        planned_busy=Fraction(3600), run=Fraction(600), ideal=Fraction(6000), good=100
    )
    assert figures.performance == 1
    assert figures.oee == Fraction(600, 3600)


# --- readings in the database: both paths, any pattern ------------------------------


@pytest.mark.django_db
@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    drawn=st.lists(reading_strategy, max_size=40),
    downtime=st.integers(0, 479),
    refreshed_at=moment(),
    window=st.tuples(moment(), moment()).filter(lambda w: w[0] != w[1]),
)
def test_raw_and_hourly_figures_are_bounded_and_agree(
    drawn, downtime, refreshed_at, window
):
    with transaction.atomic():
        line = make_line(slug="line-b")
        line.planned_downtime_minutes = downtime
        line.save()
        machines = [machine(line, "st-01"), machine(line, "st-02")]
        _store(_rows(machines, drawn))
        services.machine_hours_refresh(now=START + timedelta(microseconds=refreshed_at))
        start, end = sorted(START + timedelta(microseconds=us) for us in window)
        raw = oee.line_oee(line, start, end, hourly=False)
        assert oee.line_oee(line, start, end) == raw
        for _station, figures in raw.stations:
            assert_bounded(figures)
        assert_bounded(raw.line)
        services.machine_hours_refresh(now=START + timedelta(hours=SPAN_HOURS))
        assert oee.line_oee(line, start, end) == raw
        transaction.set_rollback(True)
