"""The dynamic data of a pack's passport (Regulation (EU) 2023/1542, Art. 14
and Annex VII; Battery Pass data model v1.2 "performanceAndDurability"):
full cycles, energy and capacity throughput, temperature extremes and the
time spent beyond the temperature limits, deep-discharge and overcharge
events, derived from the pack's BMS samples; with state of health, state of
charge (the telemetry summary), remaining capacity and energy (SoH times the
rated figures) and the status (the ledger's state) they are the passport's
dynamic attributes, each with its ``lastUpdate`` (``passports.attributes``).

Nothing here scans raw samples when a passport is read. Each telemetry batch
folds its new samples into the pack's running state (``PackUsage``: the last
sample and exact running totals) in the batch's transaction
(``telemetry.telemetry_ingest`` calls ``usage_add``), and writes the summary
onto the passport (``full_cycles`` ... ``usage_updated_at``). Samples are
folded in time order; a batch holding a sample older than the newest one
folded (a gateway re-sending an old buffer) is merged through its window
(``late_window``, ``merge``): the stored samples around it folded with and
without it, from the state just before it, the difference added. It reads
the batch's neighbours and span, not the pack's history, and the answer is
exactly the fold of the whole history in time order, whatever the arrival
order (property-tested). ``usage_rebuild`` refolds a pack from all its
samples (a repair).

The rules (``fold``; pure, so its bounds are property-tested):

* interval ``[t_i, t_{i+1})`` holds sample ``i``'s values (zero-order hold);
  an interval longer than ``MAX_GAP`` (the pack was off or unreported) adds
  no energy, charge or time;
* energy throughput: sum of ``|V * I| * dt`` (charged and discharged), kWh;
  capacity throughput: sum of ``|I| * dt``, Ah;
* full cycles: the SoC's travel (sum of ``|SoC change|``, percentage points,
  across gaps too) over 200, rounded down: one cycle is 100 % down and up;
* temperature extremes: the lowest and highest sample; time above / below:
  the intervals whose temperature is above the passport's declared
  temperature range's top (``idle_temperature_max_c``) or below its bottom,
  or ``DEFAULT_TEMPERATURE_RANGE`` where none is declared;
* a deep-discharge event: a sample entering "SoC below ``DEEP_DISCHARGE_SOC``
  or voltage below the declared minimum voltage"; an overcharge event: one
  entering "voltage above the declared maximum voltage". A sample that
  reports neither measurement keeps the state it was in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Protocol

from passports import attributes
from passports.models import PackUsage, Passport, TelemetryReading

MAX_GAP = timedelta(minutes=15)
DEEP_DISCHARGE_SOC = 5.0
DEFAULT_TEMPERATURE_RANGE = (-20.0, 60.0)
# A sample as folded: (ts, soh, soc, temperature, voltage, current).
Sample = tuple
# The Passport fields ``usage_add`` writes.
SUMMARY_FIELDS = (
    "full_cycles",
    "energy_throughput_kwh",
    "capacity_throughput_ah",
    "temperature_min_c",
    "temperature_max_c",
    "time_above_max_temperature_s",
    "time_below_min_temperature_s",
    "deep_discharge_events",
    "overcharge_events",
    "usage_updated_at",
)


@dataclass(frozen=True)
class Limits:
    """What a pack's samples are judged against (from its passport)."""

    temperature_min: float = DEFAULT_TEMPERATURE_RANGE[0]
    temperature_max: float = DEFAULT_TEMPERATURE_RANGE[1]
    voltage_min: float | None = None
    voltage_max: float | None = None


def limits_of(passport: Any) -> Limits:
    low, high = passport.idle_temperature_min_c, passport.idle_temperature_max_c
    declared = low is not None and high is not None and low < high
    return Limits(
        temperature_min=float(low) if declared else DEFAULT_TEMPERATURE_RANGE[0],
        temperature_max=float(high) if declared else DEFAULT_TEMPERATURE_RANGE[1],
        voltage_min=_float(passport.minimum_voltage_v),
        voltage_max=_float(passport.maximum_voltage_v),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Usage:
    """The running state (``PackUsage``'s fields, less the passport)."""

    last_ts: datetime | None = None
    last_soc: float | None = None
    last_temperature: float | None = None
    last_voltage: float | None = None
    last_current: float | None = None
    soc_travel: Decimal = Decimal(0)
    energy_wh: Decimal = Decimal(0)
    charge_ah: Decimal = Decimal(0)
    above_s: Decimal = Decimal(0)
    below_s: Decimal = Decimal(0)
    temperature_min: float | None = None
    temperature_max: float | None = None
    deep_discharges: int = 0
    overcharges: int = 0
    in_deep_discharge: bool = False
    in_overcharge: bool = False
    samples: int = 0


_STATE_FIELDS = tuple(f.name for f in fields(Usage))


MICRO = 1_000_000
_US_PER_HOUR = 3_600 * MICRO
_MAX_GAP_US = MAX_GAP // timedelta(microseconds=1)
_ONE_US = timedelta(microseconds=1)


def _micro(value: float) -> int:
    """A sample in millionths of its unit (the totals are whole millionths)."""
    return round(value * MICRO)


def _ints(value: Decimal) -> int:
    return int(value.scaleb(6))


def _decimal(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def fold(state: Usage, samples: Iterable[Sample], limits: Limits) -> Usage:
    """``state`` with ``samples`` (in time order, each newer than
    ``state.last_ts``) added. Pure. The totals are kept in whole millionths
    (of a percentage point, Wh, Ah, second), each interval's share rounded
    down, so folding in any number of batches gives the same state."""
    last_ts, last_soc = state.last_ts, state.last_soc
    held_t, held_v, held_i = (
        state.last_temperature,
        state.last_voltage,
        state.last_current,
    )
    travel, energy, charge = (
        _ints(state.soc_travel),
        _ints(state.energy_wh),
        _ints(state.charge_ah),
    )
    above, below = _ints(state.above_s), _ints(state.below_s)
    t_min, t_max = state.temperature_min, state.temperature_max
    deeps, overs = state.deep_discharges, state.overcharges
    in_deep, in_over = state.in_deep_discharge, state.in_overcharge
    count = state.samples
    hot, cold = limits.temperature_max, limits.temperature_min
    v_low, v_high = limits.voltage_min, limits.voltage_max
    for ts, _soh, soc, temperature, voltage, current in samples:
        if last_ts is not None:
            if ts <= last_ts:
                raise ValueError("fold: samples must be newer than the state.")
            dt = (ts - last_ts) // _ONE_US
            if dt <= _MAX_GAP_US:
                if held_i is not None:
                    amps = abs(_micro(held_i))
                    charge += amps * dt // _US_PER_HOUR
                    if held_v is not None:
                        watts = abs(_micro(held_v)) * amps
                        energy += watts * dt // (_US_PER_HOUR * MICRO)
                if held_t is not None:
                    if held_t > hot:
                        above += dt
                    elif held_t < cold:
                        below += dt
        if soc is not None:
            if last_soc is not None:
                travel += abs(_micro(soc) - _micro(last_soc))
            last_soc = soc
        if temperature is not None:
            if t_min is None or temperature < t_min:
                t_min = temperature
            if t_max is None or temperature > t_max:
                t_max = temperature
        if soc is not None or voltage is not None:
            deep = (soc is not None and soc < DEEP_DISCHARGE_SOC) or (
                voltage is not None and v_low is not None and voltage < v_low
            )
            if deep and not in_deep:
                deeps += 1
            in_deep = deep
        if voltage is not None and v_high is not None:
            over = voltage > v_high
            if over and not in_over:
                overs += 1
            in_over = over
        last_ts, held_t, held_v, held_i = ts, temperature, voltage, current
        count += 1
    return Usage(
        last_ts=last_ts,
        last_soc=last_soc,
        last_temperature=held_t,
        last_voltage=held_v,
        last_current=held_i,
        soc_travel=_decimal(travel),
        energy_wh=_decimal(energy),
        charge_ah=_decimal(charge),
        above_s=_decimal(above),
        below_s=_decimal(below),
        temperature_min=t_min,
        temperature_max=t_max,
        deep_discharges=deeps,
        overcharges=overs,
        in_deep_discharge=in_deep,
        in_overcharge=in_over,
        samples=count,
    )


def summary(state: Usage) -> dict[str, Any]:
    """The Passport's usage fields from ``state`` (None before any sample)."""
    if state.last_ts is None:
        return dict.fromkeys(SUMMARY_FIELDS)
    return {
        "full_cycles": int(
            (state.soc_travel / 200).to_integral_value(rounding=ROUND_FLOOR)
        ),
        "energy_throughput_kwh": (state.energy_wh / 1000).quantize(Decimal("0.001")),
        "capacity_throughput_ah": state.charge_ah.quantize(Decimal("0.01")),
        "temperature_min_c": state.temperature_min,
        "temperature_max_c": state.temperature_max,
        "time_above_max_temperature_s": int(
            state.above_s.to_integral_value(rounding=ROUND_FLOOR)
        ),
        "time_below_min_temperature_s": int(
            state.below_s.to_integral_value(rounding=ROUND_FLOOR)
        ),
        "deep_discharge_events": state.deep_discharges,
        "overcharge_events": state.overcharges,
        "usage_updated_at": state.last_ts,
    }


# --- a late batch ---------------------------------------------------------------------
#
# Every figure is a sum over the history's samples (``samples``), over its
# consecutive pairs (energy, charge, time above / below: the pair of
# consecutive samples; SoC travel: of consecutive samples with SoC; the events:
# of consecutive samples with SoC or voltage, resp. with voltage), or a min / max.
# A late batch changes only the pairs around its samples, so its effect is the
# difference of two folds of that window alone: the window with the batch minus
# the window without it, both folded from the state just before the window.

# What the fold carries from a sample to the next one, and which samples
# carry it: the held values (every sample), the SoC, the overcharge state (a
# sample with voltage); the deep-discharge state is carried by a sample with SoC
# or voltage, the nearer of the first two found.
ANY, SOC, VOLTAGE = "any", "soc", "voltage"


def carries(sample: Sample, carrier: str) -> bool:
    if carrier == SOC:
        return sample[2] is not None
    if carrier == VOLTAGE:
        return sample[4] is not None
    return True


class SampleStore(Protocol):
    """A pack's stored samples (the late batch's included), as ``Sample``s."""

    def nearest(self, ts: datetime, carrier: str, *, after: bool) -> Sample | None:
        """The stored sample nearest before (``after``: after) ``ts``,
        exclusive, that ``carries`` ``carrier``."""

    def between(self, low: datetime | None, high: datetime | None) -> list[Sample]:
        """The stored samples with ``low < ts <= high`` in time order (None:
        unbounded on that side)."""

    def count(self, first: datetime, last: datetime) -> int:
        """How many stored samples have ``first <= ts <= last``."""


@dataclass(frozen=True)
class Neighbours:
    """The stored samples nearest one side of a late batch that carry what the
    fold carries (``carries``); None where there is none. The deep-discharge
    state's carrier is the nearer of ``soc`` and ``voltage``."""

    any: Sample | None = None
    soc: Sample | None = None
    voltage: Sample | None = None


def _neighbours(store: SampleStore, ts: datetime, *, after: bool) -> Neighbours:
    """At most three indexed look-ups, one when the nearest sample carries all."""
    near = store.nearest(ts, ANY, after=after)
    if near is None:
        return Neighbours()
    soc, voltage = (
        near if carries(near, carrier) else store.nearest(ts, carrier, after=after)
        for carrier in (SOC, VOLTAGE)
    )
    return Neighbours(any=near, soc=soc, voltage=voltage)


@dataclass(frozen=True)
class Window:
    """What a late batch changes: the stored samples from the one after the
    batch's nearest predecessor to the last one whose pair the batch changes,
    without (``old``) and with (``merged``) the batch, the state they are
    folded from (``entry``), and the batch's neighbours after it (whose held
    values outlive the window)."""

    entry: Usage
    old: list[Sample]
    merged: list[Sample]
    after: Neighbours


def late_window(new: Sequence[Sample], store: SampleStore, limits: Limits) -> Window:
    """The window of ``new`` (the batch's samples, in time order, already in
    ``store``). Reads the batch's neighbours, how many samples are stored
    within its span, and the stored samples from its nearest predecessor to
    its last changed pair (past its last sample only, when none of them lies
    within its span: the batch's own are not read back), nothing else."""
    first, last = new[0][0], new[-1][0]
    before = _neighbours(store, first, after=False)
    after = _neighbours(store, last, after=True)
    # The state before the window: the fold of the samples whose values it
    # holds (each carrier's nearest), with no totals.
    context = {s[0]: s for s in (before.any, before.soc, before.voltage) if s}
    held = fold(Usage(), [context[ts] for ts in sorted(context)], limits)
    entry = Usage(
        last_ts=held.last_ts,
        last_soc=held.last_soc,
        last_temperature=held.last_temperature,
        last_voltage=held.last_voltage,
        last_current=held.last_current,
        in_deep_discharge=held.in_deep_discharge,
        in_overcharge=held.in_overcharge,
    )
    ends = [s[0] for s in (after.any, after.soc, after.voltage) if s]
    end = max(ends) if ends else None
    if store.count(first, last) == len(new):
        # Nothing stored within the batch's span (a hole filled, a buffer
        # older than all): the window is the batch and what follows it.
        old = store.between(last, end)
        return Window(entry=entry, old=old, merged=[*new, *old], after=after)
    merged = store.between(held.last_ts, end)
    batch = {s[0] for s in new}
    old = [s for s in merged if s[0] not in batch]
    return Window(entry=entry, old=old, merged=merged, after=after)


_SUMS = (
    "soc_travel",
    "energy_wh",
    "charge_ah",
    "above_s",
    "below_s",
    "deep_discharges",
    "overcharges",
    "samples",
)


def _extreme(pick: Any, *values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def merge(state: Usage, window: Window, limits: Limits) -> Usage:
    """``state`` with a late batch's ``window`` folded in: each sum plus the
    window's difference (exact: whole millionths), the extremes merged, and
    each held value the merged window's where no stored sample after the batch
    carries it. Pure; equals the fold of the whole history in time order."""
    old = fold(window.entry, window.old, limits)
    new = fold(window.entry, window.merged, limits)
    after = window.after
    tail = state if after.any else new
    return Usage(
        last_ts=tail.last_ts,
        last_temperature=tail.last_temperature,
        last_voltage=tail.last_voltage,
        last_current=tail.last_current,
        last_soc=(state if after.soc else new).last_soc,
        in_deep_discharge=(
            state if after.soc or after.voltage else new
        ).in_deep_discharge,
        in_overcharge=(state if after.voltage else new).in_overcharge,
        temperature_min=_extreme(min, state.temperature_min, new.temperature_min),
        temperature_max=_extreme(max, state.temperature_max, new.temperature_max),
        **{
            name: getattr(state, name) + getattr(new, name) - getattr(old, name)
            for name in _SUMS
        },
    )


def usage_next(
    state: Usage | None, new: Sequence[Sample], store: SampleStore, limits: Limits
) -> Usage:
    """``state`` with ``new`` (a batch's samples not stored before, in time
    order, now in ``store``): folded on when all are newer than the state,
    merged through their window (``late_window``) otherwise."""
    if state is None or state.last_ts is None or new[0][0] > state.last_ts:
        return fold(state or Usage(), new, limits)
    return merge(state, late_window(new, store, limits), limits)


# --- the database ------------------------------------------------------------------


def usage_state(passport_id: int) -> Usage | None:
    """The pack's running state as stored (None before its first sample)."""
    row = PackUsage.objects.filter(passport_id=passport_id).first()
    if row is None:
        return None
    return Usage(**{name: getattr(row, name) for name in _STATE_FIELDS})


def _save(passport: Passport, state: Usage) -> dict[str, Any]:
    PackUsage.objects.update_or_create(
        passport_id=passport.pk,
        defaults={name: getattr(state, name) for name in _STATE_FIELDS},
    )
    values = summary(state)
    Passport.objects.filter(pk=passport.pk).update(**values)
    for name, value in values.items():
        setattr(passport, name, value)
    return values


_SAMPLE_COLUMNS = (
    "ts",
    "soh_percent",
    "soc_percent",
    "temperature_c",
    "voltage_v",
    "current_a",
)


class StoredSamples:
    """A pack's samples in the database (``SampleStore``): each look-up one
    range of the (passport, ts) index."""

    _NOT_NULL = {SOC: "soc_percent", VOLTAGE: "voltage_v"}

    def __init__(self, passport_id: int):
        self.rows = TelemetryReading.objects.filter(passport_id=passport_id)

    def nearest(self, ts: datetime, carrier: str, *, after: bool) -> Sample | None:
        rows = self.rows.filter(ts__gt=ts) if after else self.rows.filter(ts__lt=ts)
        if carrier in self._NOT_NULL:
            rows = rows.filter(**{f"{self._NOT_NULL[carrier]}__isnull": False})
        order = "ts" if after else "-ts"
        return rows.order_by(order).values_list(*_SAMPLE_COLUMNS).first()

    def between(self, low: datetime | None, high: datetime | None) -> list[Sample]:
        rows = self.rows
        if low is not None:
            rows = rows.filter(ts__gt=low)
        if high is not None:
            rows = rows.filter(ts__lte=high)
        return list(rows.order_by("ts").values_list(*_SAMPLE_COLUMNS))

    def count(self, first: datetime, last: datetime) -> int:
        return self.rows.filter(ts__gte=first, ts__lte=last).count()


def usage_rebuild(passport: Passport) -> dict[str, Any]:
    """Refold ``passport``'s usage from all its samples (a repair, or after
    its declared limits changed). In the caller's transaction, the passport
    row locked."""
    samples = (
        TelemetryReading.objects.filter(passport_id=passport.pk)
        .order_by("ts")
        .values_list(*_SAMPLE_COLUMNS)
        .iterator(chunk_size=5000)
    )
    return _save(passport, fold(Usage(), samples, limits_of(passport)))


def usage_add(passport: Passport, samples: Iterable[Sample]) -> dict[str, Any] | None:
    """Fold the samples a telemetry batch just stored (``(ts, soh, soc,
    temperature, voltage, current)``) into ``passport``'s usage, in the
    batch's transaction (the passport row locked): a late one through its
    window only (``usage_next``). None when there were none."""
    new = sorted(samples, key=lambda sample: sample[0])
    if not new:
        return None
    state = usage_next(
        usage_state(passport.pk), new, StoredSamples(passport.pk), limits_of(passport)
    )
    return _save(passport, state)


def dynamic_attributes(passport: Passport, *, last_event_at: Any = None) -> dict:
    """Each dynamic attribute of ``passport`` as ``{key: {"value",
    "lastUpdate", "tier", "source"}}``, read from its stored fields (what
    ``/attributes`` shows of them, before the tier filter)."""
    values = attributes.values_of(passport, last_event_at=last_event_at)
    return {
        a.key: {
            "value": a.read(values),
            "lastUpdate": a.last_update(values),
            "tier": a.tier,
            "source": a.source,
        }
        for a in attributes.ATTRIBUTES
        if a.dynamic
    }


def as_mapping(state: Usage) -> Mapping[str, Any]:
    return {name: getattr(state, name) for name in _STATE_FIELDS}
