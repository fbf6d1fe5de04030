"""The alert rules' logic (scada.alarm_evaluation), property-tested with
hypothesis: deadband, on-delay, off-delay, bad-quality readings, and the
timers' tick. No database: ``evaluate`` and ``tick`` are pure.

Readings are (seconds after the previous one, value, quality); the value holds
between readings. A "run" is a maximal sequence of consecutive good readings
that all meet a condition (beyond the limit; back inside the deadband).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scada.alarm_evaluation import (
    Limits,
    Outcome,
    RuleState,
    Sample,
    alert_rule_problems,
    evaluate,
    exceeded,
    tick,
)
from tests.support_hypothesis import examples

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HIGH = 80.0

values = st.floats(min_value=40, max_value=120, allow_nan=False, width=32)
qualities = st.sampled_from(["good", "good", "good", "uncertain", "bad"])
readings = st.lists(
    st.tuples(st.integers(min_value=1, max_value=20), values, qualities),
    max_size=60,
)


def samples(steps) -> list[Sample]:
    at, out = T0, []
    for gap, value, quality in steps:
        at += timedelta(seconds=gap)
        out.append(Sample(at=at, value=float(value), quality=quality))
    return out


def run(limits: Limits, steps) -> list[tuple[Sample, RuleState, Outcome, datetime]]:
    """Each sample with the state before it, and what it caused."""
    state, trace = RuleState(), []
    for sample in samples(steps):
        before = state
        state, outcome, at = evaluate(limits, state, sample)
        trace.append((sample, before, outcome, at))
    return trace


def good(trace):
    return [row for row in trace if row[0].quality != "bad"]


def runs(rows, condition) -> list[list]:
    """Maximal runs of consecutive rows whose sample meets ``condition``."""
    found, current = [], []
    for row in rows:
        if condition(row[0].value):
            current.append(row)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


# --- deadband (no delays) ---


@settings(max_examples=examples(300), deadline=None)
@given(
    steps=readings,
    deadband=st.floats(min_value=0, max_value=15, allow_nan=False),
    low=st.none() | st.just(50.0),
)
def test_deadband_active_exactly_while_beyond_or_not_yet_deadband_inside(
    steps, deadband, low
):
    limits = Limits(high=HIGH, low=low, deadband=deadband)
    for sample, before, outcome, _ in good(run(limits, steps)):
        value = sample.value
        beyond = value > HIGH or (low is not None and value < low)
        if before.in_alarm and before.side == "high":
            back = not beyond and value <= HIGH - deadband
        elif before.in_alarm:
            back = not beyond and value >= low + deadband
        if not before.in_alarm:
            assert outcome == (Outcome.ACTIVATED if beyond else Outcome.NONE)
        else:
            assert outcome == (Outcome.RETURNED if back else Outcome.NONE)


@settings(max_examples=examples(200), deadline=None)
@given(
    deadband=st.floats(min_value=0.5, max_value=10, allow_nan=False),
    wiggle=st.lists(st.floats(min_value=0, max_value=0.99), min_size=1, max_size=40),
)
def test_value_wandering_inside_the_deadband_never_returns_or_chatters(
    deadband, wiggle
):
    """Once active, a value that stays above the limit minus the deadband (even
    crossing the limit back and forth) keeps one activation and no return."""
    limits = Limits(high=HIGH, deadband=deadband)
    steps = [(1, HIGH + 1, "good")] + [
        (1, HIGH - deadband * fraction, "good") for fraction in wiggle
    ]
    outcomes = [row[2] for row in run(limits, steps)]
    assert outcomes[0] == Outcome.ACTIVATED
    assert Outcome.RETURNED not in outcomes
    assert outcomes.count(Outcome.ACTIVATED) == 1


@settings(max_examples=examples(200), deadline=None)
@given(steps=readings, on=st.integers(0, 40), off=st.integers(0, 40))
def test_bad_quality_readings_change_nothing(steps, on, off):
    limits = Limits(high=HIGH, deadband=2, on_delay_s=on, off_delay_s=off)
    with_bad = [(o, a) for _, _, o, a in run(limits, steps) if o != Outcome.NONE]
    # Drop the bad readings, keeping the good ones at the same times.
    at, kept = 0, []
    for gap, value, quality in steps:
        at += gap
        if quality != "bad":
            kept.append((at, value, quality))
    without = [
        (at - prev, value, quality)
        for (at, value, quality), prev in zip(
            kept, [0] + [row[0] for row in kept], strict=False
        )
    ]
    assert [(o, a) for _, _, o, a in run(limits, without) if o != Outcome.NONE] == (
        with_bad
    )


# --- on-delay and off-delay ---


@settings(max_examples=examples(400), deadline=None)
@given(steps=readings, on=st.integers(0, 60))
def test_on_delay_activates_when_beyond_for_the_delay_and_not_before(steps, on):
    limits = Limits(high=HIGH, on_delay_s=on)  # no off-delay, no deadband
    rows = good(run(limits, steps))
    delay = timedelta(seconds=on)
    for streak in runs(rows, lambda v: v > HIGH):
        first = streak[0]
        if first[1].in_alarm:
            continue  # it was already active when the streak began
        activations = [row for row in streak if row[2] == Outcome.ACTIVATED]
        lasted = streak[-1][0].at - first[0].at
        if lasted < delay:
            assert activations == []  # never before the delay
            continue
        # Exactly one, at the first reading at or past the delay, dated to the
        # moment the delay elapsed.
        assert len(activations) == 1
        hit = activations[0]
        assert hit[3] == first[0].at + delay
        position = streak.index(hit)
        assert hit[0].at >= first[0].at + delay
        if position > 0:
            assert streak[position - 1][0].at < first[0].at + delay
    # And nothing activates on a reading within the limit.
    assert all(row[0].value > HIGH for row in rows if row[2] == Outcome.ACTIVATED)


@settings(max_examples=examples(400), deadline=None)
@given(
    steps=readings,
    off=st.integers(0, 60),
    deadband=st.floats(min_value=0, max_value=10, allow_nan=False),
)
def test_off_delay_returns_when_back_for_the_delay_and_not_before(steps, off, deadband):
    limits = Limits(high=HIGH, deadband=deadband, off_delay_s=off)
    rows = good(run(limits, steps))
    delay = timedelta(seconds=off)
    for streak in runs(rows, lambda v: v <= HIGH - deadband):
        first = streak[0]
        if not first[1].in_alarm:
            continue  # nothing to return from
        returns = [row for row in streak if row[2] == Outcome.RETURNED]
        lasted = streak[-1][0].at - first[0].at
        if lasted < delay:
            assert returns == []
            continue
        assert len(returns) == 1
        hit = returns[0]
        assert hit[3] == first[0].at + delay
        position = streak.index(hit)
        if position > 0:
            assert streak[position - 1][0].at < first[0].at + delay
    assert all(
        row[0].value <= HIGH - deadband for row in rows if row[2] == Outcome.RETURNED
    )


@settings(max_examples=examples(300), deadline=None)
@given(
    steps=readings,
    on=st.integers(0, 60),
    off=st.integers(0, 60),
    wait=st.integers(0, 120),
)
def test_tick_is_a_reading_of_the_held_value(steps, on, off, wait):
    """A timer that elapses without a reading does what a reading of the last
    value would have done at that moment."""
    limits = Limits(high=HIGH, deadband=3, on_delay_s=on, off_delay_s=off)
    state = RuleState()
    for sample in samples(steps):
        state, _, _ = evaluate(limits, state, sample)
    if state.last_at is None:
        return
    now = state.last_at + timedelta(seconds=wait)
    ticked, outcome, at = tick(limits, state, now)
    if wait == 0:
        assert outcome == Outcome.NONE
        return
    read, read_outcome, read_at = evaluate(
        limits, state, Sample(at=now, value=state.last_value)
    )
    assert (outcome, at) == (read_outcome, read_at)
    assert ticked.in_alarm == read.in_alarm


def test_exceeded_is_strict_and_names_the_side():
    limits = Limits(high=80, low=20)
    assert [exceeded(limits, v) for v in (80, 80.01, 20, 19.99, 50)] == [
        "",
        "high",
        "",
        "low",
        "",
    ]


def test_older_or_repeated_reading_is_ignored():
    limits = Limits(high=80)
    state, outcome, _ = evaluate(limits, RuleState(), Sample(T0, 90.0))
    assert outcome == Outcome.ACTIVATED
    same, outcome, _ = evaluate(limits, state, Sample(T0, 10.0))
    assert (same, outcome) == (state, Outcome.NONE)


# --- the rule check ---


def test_rule_problems():
    assert alert_rule_problems(high_limit=None, low_limit=None, deadband=0) == {
        "high_limit": ["Give a high limit, a low limit or both."]
    }
    assert alert_rule_problems(high_limit=10, low_limit=10, deadband=0) == {
        "low_limit": ["Must be below the high limit."]
    }
    assert alert_rule_problems(high_limit=80, low_limit=None, deadband=-1) == {
        "deadband": ["Must be a finite number of at least 0."]
    }
    assert list(alert_rule_problems(high_limit=30, low_limit=20, deadband=10)) == [
        "deadband"
    ]
    assert alert_rule_problems(high_limit=30, low_limit=20, deadband=9.5) == {}
    assert alert_rule_problems(high_limit=float("inf"), low_limit=None, deadband=0) == {
        "high_limit": ["Must be a finite number."]
    }
