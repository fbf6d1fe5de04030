"""Day roll-ups (``MachineDay``): each row is the composition of its machine's
fresh hour roll-ups of that UTC day, whatever beat re-rolled or late readings
marked stale; and the OEE and line-yield trends per day and per week read from
them equal the ones computed from the hour roll-ups alone (the reference:
``from_days=False``), exactly, for any window end.

Hand-checked: the rows of tests/test_oee_rollups.py's data set; random data:
hypothesis, readings on and next to hour and day boundaries over a weekend
into a new ISO week.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from unittest import mock

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpmos.dashboards import trends
from lines import selectors, services
from lines.models import MachineDay, MachineHour, MachineReading
from tests.factories_lines import at, ingest, machine, make_line, reading, state
from tests.support_hypothesis import examples

MINUTE = 60 * 10**6  # microseconds
HOUR_US = 60 * MINUTE
HOUR = timedelta(hours=1)


@pytest.mark.django_db
def test_day_rows_by_hand():
    line = make_line()
    m1 = machine(line, "st-01")
    # 23:30 the day before running; 08:30 down; 09:40 running; counts at 09:10.
    ingest(
        m1,
        [
            state(at(0) - timedelta(minutes=30), "running"),
            state(at(8, 30), "down", "Jam"),
            state(at(9, 40), "running"),
            reading("good_count", at(9, 10), 150),
            reading("reject_count", at(9, 12), 20),
        ],
    )
    services.machine_hours_refresh(now=at(10, 30))
    rows = {
        row.day: (
            row.hours,
            row.lead_microseconds // MINUTE,
            row.run_microseconds // MINUTE,
            row.last_state,
            row.last_hour,
            row.good_count,
            row.reject_count,
        )
        for row in MachineDay.objects.filter(machine=m1)
    }
    previous = at(0) - timedelta(days=1)
    # The day before: its 23:00 hour, 30 min before the first state reading,
    # then running. Today: no state reading until 08:30, so the carried-in
    # state holds 8 h 30 min (the lead); running 09:40-10:00 after it.
    assert rows == {
        previous: (1, 30, 30, "running", at(0) - HOUR, 0, 0),
        at(0): (10, 8 * 60 + 30, 20, "running", at(9), 150, 20),
    }
    # A late reading in 09:00 stales that hour: the day is its other 9 hours
    # until beat re-rolls it, then all 10 again.
    ingest(m1, [reading("good_count", at(9, 50), 5)])
    day = MachineDay.objects.get(machine=m1, day=at(0))
    assert (day.hours, day.run_microseconds, day.good_count, day.last_hour) == (
        9,
        0,
        0,
        at(8),
    )
    assert (day.lead_microseconds // MINUTE, day.last_state) == (8 * 60 + 30, "down")
    services.machine_hours_refresh(now=at(10, 30))
    day = MachineDay.objects.get(machine=m1, day=at(0))
    assert (day.hours, day.run_microseconds // MINUTE, day.good_count) == (10, 20, 155)


@pytest.mark.django_db
def test_day_and_week_buckets_cost_the_queries_of_hour_buckets(
    django_assert_num_queries,
):
    line = make_line()
    ingest(
        machine(line, "st-01"),
        [state(at(0) - timedelta(days=9), "running"), reading("good_count", at(2), 5)],
    )
    ingest(machine(line, "st-02"), [state(at(8), "idle")])
    services.machine_hours_refresh(now=at(10, 30))
    end = at(8, 30)  # inside a day whose 09:00 hour is rolled up: its hours read
    for metric, count in (("oee", 4), ("lineYield", 1)):
        trends.trend_get(metric=metric, bucket="hour", end=end)  # read models warm
        for bucket in ("hour", "day", "week"):
            with django_assert_num_queries(count):
                trend = trends.trend_get(metric=metric, bucket=bucket, end=end)
            assert any(p.value is not None for p in trend.series[0].points)


# --- random data: a weekend into a new ISO week --------------------------------------

START = datetime(2026, 3, 1, 18, tzinfo=UTC)  # a Sunday, 18:00
SPAN_HOURS = 54  # to Wednesday 00:00: days Sun (part), Mon, Tue; two ISO weeks


def moment():
    """Microseconds after START: anywhere, or on / next to an hour boundary
    (midnights among them)."""
    boundary = st.builds(
        lambda hour, nudge: hour * HOUR_US + nudge,
        st.integers(0, SPAN_HOURS),
        st.sampled_from([0, 0, -1, 1, -MINUTE]),
    )
    anywhere = st.integers(0, SPAN_HOURS * HOUR_US)
    return st.one_of(boundary, anywhere).map(
        lambda us: max(0, min(SPAN_HOURS * HOUR_US - 1, us))
    )


reading_strategy = st.tuples(
    st.integers(0, 1),  # machine
    moment(),
    st.sampled_from(["state", "state", "state", "good_count", "reject_count"]),
    st.sampled_from(["running", "running", "idle", "down"]),
    st.integers(0, 50),
    st.sampled_from(["good", "good", "bad"]),
)


def _store(machines, drawn) -> list[tuple]:
    """Store the drawn readings not stored yet; the ingest columns' tuples."""
    stored = set(MachineReading.objects.values_list("machine_id", "tag", "ts"))
    rows = {}
    for index, us, tag, code, count, quality in drawn:
        ts = START + timedelta(microseconds=us)
        key = (machines[index].pk, tag, ts)
        if key not in stored:
            value = None if tag == "state" else float(count)
            rows[key] = (*key, value, code if tag == "state" else "", "", "", quality)
    MachineReading.objects.bulk_create(
        MachineReading(
            machine_id=m, tag=t, ts=ts, value=v, text=x, note=n, unit=u, quality=q
        )
        for m, t, ts, v, x, n, u, q in rows.values()
    )
    return list(rows.values())


def assert_days_compose_their_hours(machines) -> None:
    """Every day row against its fresh hours walked by hand, once with the
    state carried into the day running and once not."""
    for target in machines:
        hours: dict[datetime, list] = {}
        for row in MachineHour.objects.filter(machine=target, is_stale=False).order_by(
            "hour"
        ):
            day = row.hour.replace(hour=0)
            hours.setdefault(day, []).append(row)
        days = {row.day: row for row in MachineDay.objects.filter(machine=target)}
        assert set(days) == set(hours)  # no row for a day without fresh hours
        for day, rows in hours.items():
            got = days[day]
            assert got.hours == len(rows)
            assert got.good_count == sum(r.good_count for r in rows)
            assert got.reject_count == sum(r.reject_count for r in rows)
            assert got.last_hour == rows[-1].hour
            named = [r.last_state for r in rows if r.last_state]
            assert got.last_state == (named[-1] if named else "")
            for carried_in in ("running", "idle"):
                run, carried = 0, carried_in
                for r in rows:
                    run += r.run_microseconds
                    if carried == "running":
                        run += r.first_change_microseconds
                    carried = r.last_state or carried
                assert (
                    got.run_microseconds
                    + (got.lead_microseconds if carried_in == "running" else 0)
                    == run
                )


def assert_trends_equal_the_hours_path(window) -> None:
    first, last = sorted(window)
    for bucket in ("day", "week"):
        start = trends.bucket_floor(START + timedelta(microseconds=first), bucket)
        end = START + timedelta(microseconds=last)
        days = selectors.line_bucket_figures(start=start, end=end, bucket=bucket)
        hours = selectors.line_bucket_figures(
            start=start, end=end, bucket=bucket, from_days=False
        )
        assert [line.machines for line in days] == [line.machines for line in hours]
        for metric, selector in (
            ("oee", "line_bucket_figures"),
            ("lineYield", "piece_counts_series"),
        ):
            ask = partial(
                trends.trend_get, metric=metric, bucket=bucket, start=start, end=end
            )
            reference = partial(getattr(selectors, selector), from_days=False)
            with mock.patch.object(selectors, selector, reference):
                from_hours = ask()
            assert ask() == from_hours


@pytest.mark.django_db
@settings(
    max_examples=examples(10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    early=st.lists(reading_strategy, max_size=30),
    late=st.lists(reading_strategy, max_size=6),
    refreshed_at=st.integers(1, SPAN_HOURS),
    window=st.tuples(moment(), moment()).filter(lambda w: w[0] != w[1]),
)
def test_days_equal_their_hours_and_trends_the_hours_path(
    early, late, refreshed_at, window
):
    with transaction.atomic():
        line = make_line(slug="line-d")
        machines = [machine(line, "st-01"), machine(line, "st-02")]
        _store(machines, early)
        services.machine_hours_refresh(now=START + refreshed_at * HOUR)
        assert_days_compose_their_hours(machines)
        # Late readings mark their rolled-up hours stale: their days drop them.
        late_rows = _store(machines, late)
        for target in machines:
            services.machine_hours_mark_stale(
                machine_id=target.pk, rows=[r for r in late_rows if r[0] == target.pk]
            )
        assert_days_compose_their_hours(machines)
        assert_trends_equal_the_hours_path(window)
        # Beat re-rolls the stale hours and rolls up the rest.
        services.machine_hours_refresh(now=START + SPAN_HOURS * HOUR)
        assert_days_compose_their_hours(machines)
        assert_trends_equal_the_hours_path(window)
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_rollup_trends_are_served_until_beat_writes_roll_ups(
    django_assert_num_queries,
):
    """Outside a transaction (a web request) the OEE and line-yield trends are
    read models (``lines.readmodels.ROLLUPS``): a second read of the same
    window, even with a later ``to`` in the same hour, runs no query; beat's
    next roll-up drops them and the new figures are served."""
    from bpmos.dashboards.trends import trend_get

    line = make_line()
    m1 = machine(line, "st-01")
    ingest(
        m1,
        [
            state(at(8), "running"),
            reading("good_count", at(8, 10), 90),
            reading("reject_count", at(8, 12), 10),
        ],
    )
    services.machine_hours_refresh(now=at(9, 30))
    window = {"bucket": "hour", "start": at(8), "now": at(12)}

    def values(metric: str, end: datetime) -> list:
        trend = trend_get(metric=metric, end=end, **window)
        return [point.value for point in trend.series[0].points]

    first = values("lineYield", at(9, 40))
    assert first == [90.0, None]
    with django_assert_num_queries(0):
        assert values("lineYield", at(9, 55)) == first  # same hour: same rows
    oee_first = values("oee", at(9, 40))
    with django_assert_num_queries(0):
        assert values("oee", at(9, 41)) == oee_first
    # beat rolls up 09:00 (a late count in it too): served no more
    ingest(
        m1, [reading("good_count", at(9, 5), 50), reading("reject_count", at(9, 6), 50)]
    )
    services.machine_hours_refresh(now=at(10, 30))
    assert values("lineYield", at(9, 55)) == [90.0, 50.0]  # the 09:00 roll-up
    assert values("oee", at(9, 41)) != oee_first


@pytest.mark.django_db
def test_a_refresh_of_some_machines_leaves_the_others():
    """``machine_hours_refresh(machine_ids=)`` (the plant generator splits
    the machines over two processes): only those machines' hours and days,
    and the two halves together store what one refresh of all stores."""
    line = make_line()
    m1, m2 = machine(line, "st-01"), machine(line, "st-02")
    for m in (m1, m2):
        ingest(
            m,
            [
                state(at(0) - timedelta(minutes=30), "running"),
                state(at(8, 30), "down", "Jam"),
                reading("good_count", at(9, 10), 150),
            ],
        )

    def stored():
        return sorted(
            MachineHour.objects.values_list(
                "machine__code", "hour", "run_microseconds", "good_count", "is_stale"
            )
        ) + sorted(
            MachineDay.objects.values_list(
                "machine__code", "day", "hours", "run_microseconds", "good_count"
            )
        )

    with transaction.atomic():
        services.machine_hours_refresh(now=at(10, 30))
        whole = stored()
        transaction.set_rollback(True)
    assert not MachineHour.objects.exists()
    services.machine_hours_refresh(now=at(10, 30), machine_ids=[m2.pk])
    assert set(MachineHour.objects.values_list("machine_id", flat=True)) == {m2.pk}
    assert set(MachineDay.objects.values_list("machine_id", flat=True)) == {m2.pk}
    services.machine_hours_refresh(now=at(10, 30), machine_ids=[m1.pk])
    assert stored() == whole
    assert len(whole) > 4
