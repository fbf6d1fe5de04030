"""Hourly OEE roll-ups (``MachineHour``): the figures of any window read from
roll-ups plus raw edges equal the figures computed from raw readings alone,
exactly, however state runs cross hour boundaries and whichever hours are
stale or missing.

Hand-checked rows use the data set of tests/test_oee.py (M1 of st-01):
states 07:30 running, 08:30 down, 08:45 running, 09:40 idle; good counts 99 at
07:59, 250 at 08:20, 150 at 09:10 (and a bad 500 at 09:11), reject 20 at 09:12.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpmos.celery import BEAT_SCHEDULE
from lines import oee, services
from lines.models import MachineHour, MachineReading
from tests.factories_lines import T0, at, ingest, machine, make_line, reading, state
from tests.support_hypothesis import examples

MINUTE = 60 * 10**6  # microseconds
HOUR = 60 * MINUTE


@pytest.fixture
def line(db):
    line = make_line()
    ingest(
        machine(line, "st-01"),
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
        machine(line, "st-02"),
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


def hour_rows(target) -> dict:
    return {
        row.hour: (
            row.first_change_microseconds // MINUTE,
            row.run_microseconds // MINUTE,
            row.last_state,
            row.good_count,
            row.reject_count,
            row.is_stale,
        )
        for row in MachineHour.objects.filter(machine=target)
    }


def test_hours_by_hand(line):
    assert services.machine_hours_refresh(now=at(10, 30)) == 5  # 07-10 and 08-10
    # (minutes to the first state reading, minutes running after it, last state,
    # good, reject, stale)
    assert hour_rows(machine(line, "st-01")) == {
        at(7): (30, 30, "running", 99, 0, False),
        at(8): (30, 15, "running", 250, 0, False),
        at(9): (40, 0, "idle", 150, 20, False),
        # No 10:00 row: the hour of the 10:00 count is not over, and it came
        # before any roll-up, so it is read raw until beat rolls it up.
    }
    assert hour_rows(machine(line, "st-02")) == {
        at(8): (10, 50, "running", 100, 0, False),
        at(9): (0, 40, "running", 80, 20, False),
    }


def test_window_from_hours_equals_the_hand_computed_figures(
    line, django_assert_num_queries
):
    services.machine_hours_refresh(now=at(10, 30))
    # stations with their machines (one join), hours, and the state in force
    # at 08:00 with any raw readings (none here: whole hours, all fresh)
    with django_assert_num_queries(3):
        result = oee.line_oee(line, at(8), at(10))
    assert result.line == oee.Figures(
        planned_busy=Fraction(12960),
        run=Fraction(10500),
        ideal=Fraction(8200),
        good=580,
        reject=40,
    )
    assert result == oee.line_oee(line, at(8), at(10), hourly=False)


def test_partial_edges_are_read_raw(line):
    services.machine_hours_refresh(now=at(10, 30))
    # 07:45-09:50: raw 07:45-08:00 and 09:00-09:50, roll-up 08:00-09:00.
    hourly = oee.line_oee(line, at(7, 45), at(9, 50))
    assert hourly == oee.line_oee(line, at(7, 45), at(9, 50), hourly=False)
    assert hourly.stations[0][1].run == Fraction((15 + 30 + 15 + 40) * 60)


def test_ingest_marks_hours_stale_and_refresh_rebuilds_only_them(line):
    services.machine_hours_refresh(now=at(10, 30))
    m1 = machine(line, "st-01")
    # A late state reading: M1 was blocked 08:50-08:55 after all.
    ingest(m1, [state(at(8, 50), "blocked"), state(at(8, 55), "running")])
    assert hour_rows(m1)[at(8)][-1] is True
    figures = oee.line_oee(line, at(8), at(10))
    assert figures == oee.line_oee(line, at(8), at(10), hourly=False)
    assert figures.stations[0][1].run == Fraction(5100 - 300)
    assert services.machine_hours_refresh(now=at(10, 30)) == 1
    assert hour_rows(m1)[at(8)] == (30, 10, "running", 250, 0, False)
    assert oee.line_oee(line, at(8), at(10)) == figures


def test_fresh_readings_after_the_newest_roll_up_write_no_hour_row(line):
    services.machine_hours_refresh(now=at(10, 30))
    m2 = machine(line, "st-02")
    assert max(hour_rows(m2)) == at(9)
    ingest(m2, [state(at(10, 5), "down", "Jam"), reading("good_count", at(11), 7)])
    assert max(hour_rows(m2)) == at(9)  # nothing to mark: beat rolls 10:00 up
    figures = oee.line_oee(line, at(9), at(11, 30))
    assert figures == oee.line_oee(line, at(9), at(11, 30), hourly=False)
    assert services.machine_hours_refresh(now=at(11, 30)) == 2  # 10:00 of M1 and M2
    assert hour_rows(m2)[at(10)] == (5, 0, "down", 0, 0, False)
    assert oee.line_oee(line, at(9), at(11, 30)) == figures


def test_late_readings_in_or_before_the_newest_roll_up_mark_it(line):
    services.machine_hours_refresh(now=at(10, 30))
    m2 = machine(line, "st-02")
    ingest(m2, [reading("good_count", at(9, 59), 5), state(at(6, 30), "idle")])
    rows = hour_rows(m2)
    assert (rows[at(9)][-1], rows[at(6)][-1]) == (True, True)
    assert rows[at(8)][-1] is False


def test_bad_and_other_readings_leave_hours_fresh(line):
    services.machine_hours_refresh(now=at(10, 30))
    m1 = machine(line, "st-01")
    ingest(
        m1,
        [
            reading("cycle_time", at(8, 5), 11.5),
            reading("good_count", at(8, 6), 9, quality="bad"),
        ],
    )
    assert hour_rows(m1)[at(8)][-1] is False


def test_a_resent_batch_marks_nothing(line):
    services.machine_hours_refresh(now=at(10, 30))
    m2 = machine(line, "st-02")
    assert ingest(m2, [state(at(8, 10), "running")])["accepted"] == 0
    assert hour_rows(m2)[at(8)][-1] is False


def test_refresh_is_idempotent_and_waits_for_the_hour_to_end(line):
    assert services.machine_hours_refresh(now=at(9, 59)) == 3  # M1: 07, 08; M2: 08
    assert services.machine_hours_refresh(now=at(9, 59)) == 0
    assert services.machine_hours_refresh(now=at(10)) == 2  # both machines' 09


def test_beat_refreshes_the_hours_every_minute():
    entry = BEAT_SCHEDULE["oee-hours-refresh"]
    assert entry["task"] == "lines.tasks.machine_hours_refresh_task"
    assert entry["options"]["expires"] < entry["schedule"] == 60.0


# --- roll-ups versus raw readings on random data ------------------------------------

SPAN_HOURS = 6
START = T0 - timedelta(hours=1)  # readings and windows in [07:00, 13:00)


def moment():
    """Microseconds after START: anywhere, or on / next to an hour boundary."""
    boundary = st.builds(
        lambda hour, nudge: hour * HOUR + nudge,
        st.integers(0, SPAN_HOURS),
        st.sampled_from([0, 0, 0, -1, 1, -MINUTE, MINUTE]),
    )
    anywhere = st.integers(0, SPAN_HOURS * HOUR)
    return st.one_of(boundary, anywhere).map(
        lambda us: max(0, min(SPAN_HOURS * HOUR - 1, us))
    )


reading_strategy = st.tuples(
    st.integers(0, 1),  # machine
    moment(),
    st.sampled_from(["state", "state", "state", "good_count", "reject_count"]),
    st.sampled_from(["running", "running", "idle", "down", "blocked", "ready"]),
    st.integers(0, 50),
    st.sampled_from(["good", "good", "uncertain", "bad"]),
)


def _rows(machines, drawn) -> list[tuple]:
    """Reading tuples in the ingest columns' order, unique per (machine, tag, ts)."""
    unique = {}
    for index, us, tag, code, count, quality in drawn:
        ts = START + timedelta(microseconds=us)
        value = None if tag == "state" else float(count)
        text = code if tag == "state" else ""
        unique[(machines[index].pk, tag, ts)] = (
            machines[index].pk,
            tag,
            ts,
            value,
            text,
            "",
            "",
            quality,
        )
    return list(unique.values())


def _store(rows: list[tuple]) -> None:
    MachineReading.objects.bulk_create(
        MachineReading(
            machine_id=m, tag=t, ts=ts, value=v, text=x, note=n, unit=u, quality=q
        )
        for m, t, ts, v, x, n, u, q in rows
    )


@pytest.mark.django_db
@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    early=st.lists(reading_strategy, max_size=40),
    late=st.lists(reading_strategy, max_size=8),
    refreshed_at=moment(),
    window=st.tuples(moment(), moment()).filter(lambda w: w[0] != w[1]),
    dropped=st.sets(st.integers(0, SPAN_HOURS - 1), max_size=3),
)
def test_hours_plus_raw_edges_equal_raw_readings(
    early, late, refreshed_at, window, dropped
):
    with transaction.atomic():
        line = make_line(slug="line-h")
        machines = [machine(line, "st-01"), machine(line, "st-02")]
        _store(_rows(machines, early))
        services.machine_hours_refresh(now=START + timedelta(microseconds=refreshed_at))
        # Some hours lost (rebuilt by no one yet) and late readings since.
        MachineHour.objects.filter(
            machine=machines[0],
            hour__in=[START + timedelta(hours=h) for h in dropped],
        ).delete()
        stored = {
            (m, t, ts)
            for m, t, ts in MachineReading.objects.values_list(
                "machine_id", "tag", "ts"
            )
        }
        late_rows = [r for r in _rows(machines, late) if r[:3] not in stored]
        _store(late_rows)
        for target in machines:
            services.machine_hours_mark_stale(
                machine_id=target.pk, rows=[r for r in late_rows if r[0] == target.pk]
            )
        start, end = sorted(START + timedelta(microseconds=us) for us in window)
        raw = oee.line_oee(line, start, end, hourly=False)
        assert oee.line_oee(line, start, end) == raw
        # And once beat has caught up with everything:
        services.machine_hours_refresh(now=START + timedelta(hours=SPAN_HOURS))
        assert oee.line_oee(line, start, end) == raw
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_demo_seed_builds_the_hours(monkeypatch):
    from lines import demo
    from lines.models import Line

    monkeypatch.setattr(demo, "DAYS", 1)
    demo.seed(lambda message: None)
    rows = MachineHour.objects.filter(is_stale=False)
    assert rows.count() >= 24 * 3  # a day of hours for each line's machines
    line = Line.objects.get(slug="line-a")
    last = rows.order_by("-hour").values_list("hour", flat=True).first()
    start, end = last - timedelta(hours=20, minutes=17), last + timedelta(minutes=42)
    assert oee.line_oee(line, start, end) == oee.line_oee(
        line, start, end, hourly=False
    )
