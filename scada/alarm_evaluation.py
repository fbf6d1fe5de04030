"""The alert rules' logic, pure: limits, deadband, on-delay and off-delay over
(limits, state, reading), with no database (tests/test_scada_alarms_properties.py
checks it with hypothesis). ``scada.alarms`` keeps each rule's ``RuleState`` on
its row and acts on the outcomes; ``alert_rule_problems`` is the one check of a
rule's limits (the API's service and the admin's form)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from scada.models import Quality


@dataclass(frozen=True)
class Limits:
    """A rule's limits, as ``evaluate`` needs them."""

    high: float | None = None
    low: float | None = None
    deadband: float = 0.0
    on_delay_s: int = 0
    off_delay_s: int = 0


@dataclass(frozen=True)
class RuleState:
    """What a rule knows between readings.

    ``pending_since`` is set while it is not in alarm and the latest reading is
    beyond a limit (the on-delay runs); ``clearing_since`` while it is in alarm
    and the latest reading is back inside the deadband (the off-delay runs).
    ``side`` is the limit exceeded ("high"/"low"), while pending or in alarm.
    """

    in_alarm: bool = False
    side: str = ""
    pending_since: datetime | None = None
    clearing_since: datetime | None = None
    last_at: datetime | None = None
    last_value: float | None = None


@dataclass(frozen=True)
class Sample:
    at: datetime
    value: float | None
    quality: str = Quality.GOOD


class Outcome(StrEnum):
    NONE = "none"
    ACTIVATED = "activated"
    RETURNED = "returned"


def exceeded(limits: Limits, value: float) -> str:
    """ "high" or "low" when ``value`` is beyond that limit (strictly), else ""."""
    if limits.high is not None and value > limits.high:
        return "high"
    if limits.low is not None and value < limits.low:
        return "low"
    return ""


def back_to_normal(limits: Limits, side: str, value: float) -> bool:
    """Whether ``value`` is within no limit and ``deadband`` inside the one
    (``side``) the alarm went off on."""
    if exceeded(limits, value):
        return False
    if side == "high" and limits.high is not None:
        return value <= limits.high - limits.deadband
    if side == "low" and limits.low is not None:
        return value >= limits.low + limits.deadband
    return True


def evaluate(
    limits: Limits, state: RuleState, sample: Sample
) -> tuple[RuleState, Outcome, datetime | None]:
    """One reading through one rule: the new state, what happened, and when.

    A bad-quality reading, one without a number, or one not newer than the last
    evaluated is ignored. The value holds between readings, so a delay is met
    when the condition has held since ``pending_since``/``clearing_since`` for
    the delay: the alarm activates (returns) at that moment, which the reading
    may come after.
    """
    value = sample.value
    if (
        sample.quality == Quality.BAD
        or value is None
        or not math.isfinite(value)
        or (state.last_at is not None and sample.at <= state.last_at)
    ):
        return state, Outcome.NONE, None
    side = exceeded(limits, value)
    seen = replace(state, last_at=sample.at, last_value=value)
    if not state.in_alarm:
        if not side:
            return replace(seen, side="", pending_since=None), Outcome.NONE, None
        since = state.pending_since or sample.at
        due = since + timedelta(seconds=limits.on_delay_s)
        if sample.at >= due:
            active = replace(seen, in_alarm=True, side=side, pending_since=None)
            return replace(active, clearing_since=None), Outcome.ACTIVATED, due
        return replace(seen, side=side, pending_since=since), Outcome.NONE, None
    if not back_to_normal(limits, state.side, value):
        kept = replace(seen, side=side or state.side, clearing_since=None)
        return kept, Outcome.NONE, None
    since = state.clearing_since or sample.at
    due = since + timedelta(seconds=limits.off_delay_s)
    if sample.at >= due:
        return _normal(seen), Outcome.RETURNED, due
    return replace(seen, clearing_since=since), Outcome.NONE, None


def tick(
    limits: Limits, state: RuleState, now: datetime
) -> tuple[RuleState, Outcome, datetime | None]:
    """The delays' timers at ``now`` with no new reading (the last value holds):
    the same outcome as a reading of the last value at ``now``."""
    if not state.in_alarm and state.pending_since is not None:
        due = state.pending_since + timedelta(seconds=limits.on_delay_s)
        if now >= due:
            active = replace(state, in_alarm=True, pending_since=None)
            return active, Outcome.ACTIVATED, due
    if state.in_alarm and state.clearing_since is not None:
        due = state.clearing_since + timedelta(seconds=limits.off_delay_s)
        if now >= due:
            return _normal(state), Outcome.RETURNED, due
    return state, Outcome.NONE, None


def _normal(state: RuleState) -> RuleState:
    return replace(
        state, in_alarm=False, side="", pending_since=None, clearing_since=None
    )


def alert_rule_problems(
    *, high_limit: float | None, low_limit: float | None, deadband: float | None
) -> dict[str, list[str]]:
    """What is wrong with a rule's limits (field -> messages); {} when nothing.
    The API's service and the admin's form both check with it."""
    problems: dict[str, list[str]] = {}
    for name, value in (("high_limit", high_limit), ("low_limit", low_limit)):
        if value is not None and not math.isfinite(value):
            problems[name] = ["Must be a finite number."]
    if high_limit is None and low_limit is None:
        problems["high_limit"] = ["Give a high limit, a low limit or both."]
    deadband = 0.0 if deadband is None else deadband
    if not math.isfinite(deadband) or deadband < 0:
        problems["deadband"] = ["Must be a finite number of at least 0."]
    if problems:
        return problems
    if high_limit is not None and low_limit is not None:
        if low_limit >= high_limit:
            problems["low_limit"] = ["Must be below the high limit."]
        elif deadband >= high_limit - low_limit:
            problems["deadband"] = [
                "Must be smaller than the gap between the limits, or the "
                "alarm could never return to normal."
            ]
    return problems
