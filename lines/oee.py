"""OEE (ISO 22400-2) per machine, station and line over a window [start, end).

Definitions (docs/oee.md has them in full, with a worked example):

* **Planned busy time** (PBT, ISO 22400 "planned busy time" = planned
  operation time - planned down time), per machine: the window's length minus
  the line's planned downtime for it, pro rata: ``window x (shift - planned
  downtime) / shift``.
* **Run time**, per machine: time in the ``running`` state inside the window.
  A state holds from its reading until the machine's next state reading; the
  state in force at ``start`` is the last state reading before it; time before
  a machine's first state reading is not running. Intervals are clipped to the
  window.
* **Actual production time** (APT), per machine: run time bounded by PBT,
  ``min(run, PBT)``. Planned down time (PDT) is a pro-rata share of the window,
  not a timetable, so the running that fell inside it is not known; a machine
  that ran longer than PBT must have run at least ``run - PBT`` of it during
  PDT, and that much (no more) is not production time (ISO 22400: APT is part
  of PBT, so APT <= PBT). Station and line APT are sums of machine APTs.
* **Produced** = good + reject counts reported inside the window.
* **Availability** = APT / PBT, so 0..100 %.
* **Performance** = ideal cycle time x produced / APT, capped at 100 %
  (a count reported while the state said otherwise, or an ideal cycle time
  set too slow, must not make a machine faster than ideal).
* **Quality** = good / produced.
* **OEE** = Availability x Performance x Quality, so 0..100 %.

A station sums its machines (each machine is a work unit with its own PBT and
the station's ideal cycle time); a line sums its stations' machines, so its
figures are time- and count-weighted. Readings of quality ``bad`` are ignored.

Undefined ratios are null: all four when PBT is 0; Performance when APT is
0; Quality when nothing was produced. OEE is 0 when Availability or Performance
is 0 (nothing effective happened), else the product, null if any factor is.

Arithmetic is exact (``Fraction`` over microseconds); percentages are rounded
half up to one decimal only at the end.

**Hourly roll-ups.** ``line_oee`` reads the whole UTC hours inside a window
from ``MachineHour`` (one row per machine and hour, kept by Celery beat) and
raw readings only for the partial hours at its edges and for hours whose row
is stale or missing. A row depends on its hour's readings alone (the state
carried in is left open), so walking the hours in order while carrying the
state gives the same run time, to the microsecond, as walking the raw
readings; counts are sums and add up exactly (docs/oee.md). APT is bounded
per machine over the whole window after the walk, in both paths alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from django.db import connection
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import TruncHour

from lines.models import (
    Line,
    Machine,
    MachineHour,
    MachineReading,
    MachineState,
    ReadingQuality,
    ReadingTag,
    Station,
)
from lines.topology import LineTopology, line_topology

_ONE_DECIMAL = Decimal("0.1")
_RUNNING = MachineState.RUNNING.value
_COUNT_TAGS = (ReadingTag.GOOD_COUNT.value, ReadingTag.REJECT_COUNT.value)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# A machine whose window needs more raw pieces than this (many stale or missing
# hours) is computed from raw readings over the whole window instead.
MAX_RAW_RANGES = 8
_STATE = ReadingTag.STATE.value
_BAD = ReadingQuality.BAD.value
_PRIOR = "(prior)"  # not a valid tag: marks the state-in-force rows of a query


def shift_window(line: Line, at: datetime) -> tuple[datetime, datetime]:
    """The shift of ``line`` that contains ``at``: (start, end), UTC."""
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    anchor = day.replace(hour=line.shift_start.hour, minute=line.shift_start.minute)
    length = timedelta(minutes=line.shift_minutes)
    start = anchor + ((at - anchor) // length) * length
    return start, start + length


def shift_calendar(at: datetime, line_slug: str) -> tuple[datetime, datetime] | None:
    """The shift log's calendar (registered in ``elog.shifts`` at start-up): the
    shift of the line ``line_slug`` containing ``at``, of the plant's default line
    (the first active one) when the slug is empty; None when no line matches."""
    lines = Line.objects.only("shift_start", "shift_minutes")
    if line_slug:
        line = lines.filter(slug=line_slug).first()
    else:
        line = lines.filter(is_active=True).order_by("position", "slug").first()
    return shift_window(line, at) if line is not None else None


def planned_busy_seconds(line: Line, start: datetime, end: datetime) -> Fraction:
    """One machine's planned busy time in [start, end), seconds (pro rata)."""
    window = _seconds(end - start)
    return window * Fraction(
        line.shift_minutes - line.planned_downtime_minutes, line.shift_minutes
    )


def _seconds(delta: timedelta) -> Fraction:
    return Fraction(delta // timedelta(microseconds=1), 1_000_000)


def oee_ratio(*, planned_busy, apt, ideal, good: int, reject: int) -> Fraction | None:
    """OEE = Availability x Performance x Quality from its inputs, times in
    any one unit (Fractions of seconds, or integers of a common fraction of
    a second): APT / PBT x min(1, ideal / APT) x good / produced, which is
    min(APT, ideal) / PBT x good / produced. ``None`` without planned busy
    time; 0 without APT or ideal time (Availability or Performance 0);
    ``None`` when nothing was produced (docs/oee.md, "Undefined values")."""
    if not planned_busy:
        return None
    if not apt or not ideal:
        return Fraction(0)
    produced = good + reject
    if not produced:
        return None
    return Fraction(min(apt, ideal) * good, planned_busy * produced)


def percent(ratio: Fraction | None) -> Decimal | None:
    """A ratio as a percentage, rounded half up to one decimal."""
    if ratio is None:
        return None
    exact = Decimal(ratio.numerator * 100) / Decimal(ratio.denominator)
    return exact.quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP)


@dataclass
class Figures:
    """The inputs of OEE summed over some machines, and the ratios they give."""

    planned_busy: Fraction = Fraction(0)  # seconds
    run: Fraction = Fraction(0)  # seconds in ``running``
    ideal: Fraction = Fraction(0)  # ideal cycle seconds x pieces produced
    good: int = 0
    reject: int = 0
    # Actual production time, seconds: ``min(run, planned_busy)`` of one work
    # unit (the default); a sum keeps the sum of its machines' APTs.
    apt: Fraction | None = None

    def __post_init__(self) -> None:
        if self.apt is None:
            self.apt = min(self.run, self.planned_busy)

    def add(self, other: Figures) -> None:
        self.planned_busy += other.planned_busy
        self.run += other.run
        self.apt += other.apt
        self.ideal += other.ideal
        self.good += other.good
        self.reject += other.reject

    @property
    def produced(self) -> int:
        return self.good + self.reject

    @property
    def availability(self) -> Fraction | None:
        return self.apt / self.planned_busy if self.planned_busy else None

    @property
    def performance(self) -> Fraction | None:
        if not self.planned_busy or not self.apt:
            return None
        return min(Fraction(1), self.ideal / self.apt)

    @property
    def quality(self) -> Fraction | None:
        if not self.planned_busy or not self.produced:
            return None
        return Fraction(self.good, self.produced)

    @property
    def oee(self) -> Fraction | None:
        return oee_ratio(
            planned_busy=self.planned_busy,
            apt=self.apt,
            ideal=self.ideal,
            good=self.good,
            reject=self.reject,
        )

    def percentages(self) -> dict[str, Decimal | None]:
        return {
            "availability": percent(self.availability),
            "performance": percent(self.performance),
            "quality": percent(self.quality),
            "oee": percent(self.oee),
        }

    def as_snapshot_fields(self) -> dict:
        """The fields of an ``OEESnapshot`` row (``run_seconds`` is APT, so a
        sum of rows gives the sum of their machines' APTs)."""
        return {
            "planned_busy_seconds": float(self.planned_busy),
            "run_seconds": float(self.apt),
            "ideal_seconds": float(self.ideal),
            "good_count": self.good,
            "reject_count": self.reject,
            **self.percentages(),
        }


@dataclass
class LineResult:
    """A line's figures and each station's, in station order."""

    line: Figures
    stations: list[tuple[Station, Figures]] = field(default_factory=list)


def _run_seconds(
    prior: str | None,
    changes: list[tuple[datetime, str]],
    start: datetime,
    end: datetime,
) -> Fraction:
    """Time in ``running`` within [start, end) from the state in force at start
    and the (ordered) state readings inside the window."""
    total = timedelta(0)
    state, since = prior, start
    for ts, new_state in changes:
        if state == _RUNNING:
            total += ts - since
        state, since = new_state, ts
    if state == _RUNNING:
        total += end - since
    return _seconds(total)


def machine_figures(
    machines: list[Machine], start: datetime, end: datetime, line: Line
) -> dict[int, Figures]:
    """Each machine's OEE inputs over [start, end); three queries in all.

    ``machines`` carry ``station`` (for its ideal cycle time).
    """
    ids = [m.pk for m in machines]
    good_readings = MachineReading.objects.filter(machine_id__in=ids).exclude(
        quality=ReadingQuality.BAD
    )
    prior_state = (
        MachineReading.objects.filter(
            machine_id=OuterRef("pk"), tag=ReadingTag.STATE, ts__lt=start
        )
        .exclude(quality=ReadingQuality.BAD)
        .order_by("-ts")
        .values("text")[:1]
    )
    prior = dict(
        Machine.objects.filter(pk__in=ids)
        .annotate(prior=Subquery(prior_state))
        .values_list("pk", "prior")
    )
    changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for machine_id, ts, text in (
        good_readings.filter(tag=ReadingTag.STATE, ts__gte=start, ts__lt=end)
        .order_by("machine_id", "ts")
        .values_list("machine_id", "ts", "text")
    ):
        changes[machine_id].append((ts, text))
    counts: dict[tuple[int, str], float] = {
        (row["machine_id"], row["tag"]): row["total"] or 0
        for row in good_readings.filter(
            tag__in=[ReadingTag.GOOD_COUNT, ReadingTag.REJECT_COUNT],
            ts__gte=start,
            ts__lt=end,
        )
        .values("machine_id", "tag")
        .annotate(total=Sum("value"))
        .order_by()
    }
    busy = planned_busy_seconds(line, start, end)
    figures: dict[int, Figures] = {}
    for machine in machines:
        good = int(counts.get((machine.pk, ReadingTag.GOOD_COUNT), 0))
        reject = int(counts.get((machine.pk, ReadingTag.REJECT_COUNT), 0))
        ideal_cycle = Fraction(machine.station.ideal_cycle_seconds)
        figures[machine.pk] = Figures(
            planned_busy=busy,
            run=_run_seconds(prior.get(machine.pk), changes[machine.pk], start, end),
            ideal=ideal_cycle * (good + reject),
            good=good,
            reject=reject,
        )
    return figures


def line_oee(
    line: Line,
    start: datetime,
    end: datetime,
    *,
    hourly: bool = True,
    topology: LineTopology | None = None,
) -> LineResult:
    """OEE inputs of a line and its stations over [start, end).

    ``hourly``: read whole hours from the roll-ups (the same figures, exactly);
    False computes everything from raw readings. ``topology``: the line's
    stations and machines if the caller has them (read here otherwise).
    """
    if topology is None:
        topology = line_topology([line.pk])[line.pk]
    stations, machines = topology.stations, topology.machines
    compute = machine_figures_from_hours if hourly else machine_figures
    per_machine = compute(machines, start, end, line) if machines else {}
    result = LineResult(line=Figures())
    per_station = {s.pk: Figures() for s in stations}
    for machine in machines:
        per_station[machine.station_id].add(per_machine[machine.pk])
        result.line.add(per_machine[machine.pk])
    result.stations = [(s, per_station[s.pk]) for s in stations]
    return result


# --- hourly roll-ups ---------------------------------------------------------------


def hour_floor(at: datetime) -> datetime:
    """The start of the UTC hour holding ``at``."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_floor(at: datetime) -> datetime:
    """The start of the UTC day holding ``at``."""
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class DayInputs:
    """One machine's fresh hours of one UTC day, composed (a ``MachineDay``
    row): ``lead``, how long the state carried in from before the day holds
    (the first changes of its hours up to and including the first one with a
    state reading); ``run``, running time after that lead; ``last_state``, the
    state in force after its last hour ("" without any state reading)."""

    hours: int
    lead_microseconds: int
    run_microseconds: int
    last_state: str
    last_hour: datetime
    good: int
    reject: int

    def as_row_fields(self) -> dict:
        """The fields of a ``MachineDay`` row."""
        return {
            "hours": self.hours,
            "lead_microseconds": self.lead_microseconds,
            "run_microseconds": self.run_microseconds,
            "last_state": self.last_state,
            "last_hour": self.last_hour,
            "good_count": self.good,
            "reject_count": self.reject,
        }


def day_inputs(rows) -> dict[datetime, DayInputs]:
    """Hour rows ``(hour, first_change µs, run µs, last_state, good, reject)``
    in time order (one machine's fresh ``MachineHour`` rows) composed per UTC
    day: day start -> ``DayInputs``. The state is carried from hour to hour as
    ``lines.selectors`` carries it, so a day's ``run`` plus its ``lead`` when
    the state carried into the day is ``running`` equals the sum of its
    hours' running time."""
    days: dict[datetime, list] = {}
    for hour, first_change, run, last_state, good, reject in rows:
        day = day_floor(hour)
        # hours, lead, run, last state, last hour, good, reject
        into = days.get(day)
        if into is None:
            into = days[day] = [0, 0, 0, "", hour, 0, 0]
        if not into[3]:  # no state reading yet today: the carried state holds
            into[1] += first_change
        elif into[3] == _RUNNING:
            into[2] += first_change
        into[0] += 1
        into[2] += run
        into[3] = last_state or into[3]
        into[4] = hour
        into[5] += good
        into[6] += reject
    return {day: DayInputs(*values) for day, values in days.items()}


def hour_ceil(at: datetime) -> datetime:
    """The first UTC hour start at or after ``at``."""
    floor = hour_floor(at)
    return floor if floor == at else floor + HOUR


@dataclass(frozen=True)
class HourInputs:
    """One machine's OEE inputs over one hour, independent of earlier hours.

    ``first_change``: how long the state in force at the hour's start holds
    (the whole hour without a state reading); ``run``: running time from the
    first state reading to the hour's end; ``last_state``: the state in force
    at the end, "" without a state reading (the carried-in state goes on).
    """

    first_change: timedelta
    run: timedelta
    last_state: str
    good: int
    reject: int

    def as_row_fields(self) -> dict:
        """The fields of a ``MachineHour`` row."""
        return {
            "first_change_microseconds": self.first_change // timedelta(microseconds=1),
            "run_microseconds": self.run // timedelta(microseconds=1),
            "last_state": self.last_state,
            "good_count": self.good,
            "reject_count": self.reject,
        }


def hour_inputs(
    hour: datetime, changes: list[tuple[datetime, str]], good: int, reject: int
) -> HourInputs:
    """An hour's inputs from its (ordered) state readings and count sums."""
    if not changes:
        return HourInputs(HOUR, timedelta(0), "", good, reject)
    run = timedelta(0)
    since, state = changes[0]
    for ts, new_state in changes[1:]:
        if state == _RUNNING:
            run += ts - since
        state, since = new_state, ts
    if state == _RUNNING:
        run += hour + HOUR - since
    return HourInputs(changes[0][0] - hour, run, state, good, reject)


def machine_hours(
    machine_id: int, start: datetime, end: datetime
) -> dict[datetime, HourInputs]:
    """A machine's inputs for every hour in [start, end) (hour starts); two
    queries. What ``MachineHour`` stores."""
    readings = MachineReading.objects.filter(
        machine_id=machine_id, ts__gte=start, ts__lt=end
    ).exclude(quality=ReadingQuality.BAD)
    changes: dict[datetime, list[tuple[datetime, str]]] = defaultdict(list)
    for ts, text in (
        readings.filter(tag=ReadingTag.STATE).order_by("ts").values_list("ts", "text")
    ):
        changes[hour_floor(ts)].append((ts, text))
    counts: dict[tuple[datetime, str], float] = {
        (hour_floor(row["hour"]), row["tag"]): row["total"] or 0
        for row in readings.filter(tag__in=_COUNT_TAGS)
        .annotate(hour=TruncHour("ts", tzinfo=UTC))
        .values("hour", "tag")
        .annotate(total=Sum("value"))
        .order_by()
    }
    hours: dict[datetime, HourInputs] = {}
    hour = hour_floor(start)
    while hour < end:
        hours[hour] = hour_inputs(
            hour,
            changes.get(hour, []),
            int(counts.get((hour, ReadingTag.GOOD_COUNT), 0)),
            int(counts.get((hour, ReadingTag.REJECT_COUNT), 0)),
        )
        hour += HOUR
    return hours


# One piece of a machine's window: [start, end) and its roll-up row, or None
# when it is read from raw readings.
_Piece = tuple[datetime, datetime, tuple | None]


def _pieces(
    start: datetime, end: datetime, rows: dict[datetime, tuple]
) -> list[_Piece]:
    """[start, end) cut into roll-up hours and merged raw ranges, in order."""
    pieces: list[_Piece] = []

    def raw(a: datetime, b: datetime) -> None:
        if a >= b:
            return
        if pieces and pieces[-1][2] is None and pieces[-1][1] == a:
            pieces[-1] = (pieces[-1][0], b, None)
        else:
            pieces.append((a, b, None))

    first, last = hour_ceil(start), hour_floor(end)
    raw(start, first)
    hour = first
    while hour < last:
        row = rows.get(hour)
        if row is None:
            raw(hour, hour + HOUR)
        else:
            pieces.append((hour, hour + HOUR, row))
        hour += HOUR
    raw(last, end)
    if sum(1 for piece in pieces if piece[2] is None) > MAX_RAW_RANGES:
        return [(start, end, None)]
    return pieces


def machine_figures_from_hours(
    machines: list[Machine], start: datetime, end: datetime, line: Line
) -> dict[int, Figures]:
    """Each machine's OEE inputs over [start, end), the same as
    ``machine_figures`` but reading whole hours from ``MachineHour``; raw
    readings only for the partial hours at the edges and for hours whose row
    is stale or missing. Two queries.
    """
    first, last = hour_ceil(start), hour_floor(end)
    if first >= last:  # no whole hour inside
        return machine_figures(machines, start, end, line)
    ids = [m.pk for m in machines]
    rows = _fresh_hours(ids, first, last)
    pieces = {pk: _pieces(start, end, rows[pk]) for pk in ids}
    # Machines usually share their raw ranges (the window's edges): one term
    # per distinct set of ranges keeps the query (and building it) small.
    by_ranges: dict[tuple, list[int]] = defaultdict(list)
    for pk, machine_pieces in pieces.items():
        ranges = tuple((a, b) for a, b, row in machine_pieces if row is None)
        if ranges:
            by_ranges[ranges].append(pk)
    prior, changes, counts = _raw_inputs(ids, start, by_ranges)
    busy = planned_busy_seconds(line, start, end)
    figures: dict[int, Figures] = {}
    for machine in machines:
        run, good, reject = _walk(
            prior.get(machine.pk), pieces[machine.pk], changes[machine.pk]
        )
        good += int(counts.get((machine.pk, ReadingTag.GOOD_COUNT), 0))
        reject += int(counts.get((machine.pk, ReadingTag.REJECT_COUNT), 0))
        ideal_cycle = Fraction(machine.station.ideal_cycle_seconds)
        figures[machine.pk] = Figures(
            planned_busy=busy,
            run=_seconds(run),
            ideal=ideal_cycle * (good + reject),
            good=good,
            reject=reject,
        )
    return figures


# A datetime column as whole seconds since the epoch, per database vendor: the
# roll-up rows' hours are matched to the window's hours by number, not parsed
# (a 24 h window of 10 machines is 240 timestamps; Django's time-zone-aware
# loader parses each in Python, ~3 ms of the read on this machine).
_EPOCH_SECONDS = {
    "postgresql": "EXTRACT(EPOCH FROM hour)::bigint",
    "sqlite": "CAST(strftime('%%s', hour) AS INTEGER)",
}


def _fresh_hours(
    ids: list[int], first: datetime, last: datetime
) -> dict[int, dict[datetime, tuple]]:
    """The fresh roll-up rows of machines ``ids`` for the hours in [first,
    last): machine id -> hour -> (first change us, run us, last state, good,
    reject). One query."""
    hours = {}
    hour = first
    while hour < last:
        hours[int(hour.timestamp())] = hour
        hour += HOUR
    adapt = connection.ops.adapt_datetimefield_value
    rows: dict[int, dict[datetime, tuple]] = defaultdict(dict)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT machine_id, {_EPOCH_SECONDS[connection.vendor]}, "
            "first_change_microseconds, run_microseconds, last_state, good_count, "
            f"reject_count FROM {MachineHour._meta.db_table} "
            f"WHERE machine_id IN ({_marks(ids)}) AND hour >= %s AND hour < %s "
            "AND NOT is_stale",
            [*ids, adapt(first), adapt(last)],
        )
        for machine_id, seconds, *inputs in cursor.fetchall():
            rows[machine_id][hours[seconds]] = tuple(inputs)
    return rows


def _raw_inputs(
    ids: list[int], start: datetime, by_ranges: dict[tuple, list[int]]
) -> tuple[
    dict[int, str | None],
    dict[int, list[tuple[datetime, str]]],
    dict[tuple[int, str], float],
]:
    """Each machine's state in force at ``start``, and its state readings and
    count sums in its raw ranges (``by_ranges``: ranges -> machine ids), in one
    query written out: the ORM spent more building the union than PostgreSQL
    running it, and each round trip costs more than the work."""
    adapt = connection.ops.adapt_datetimefield_value
    readings, machines = MachineReading._meta.db_table, Machine._meta.db_table
    terms, range_params = [], []
    for ranges, machine_ids in by_ranges.items():
        times = " OR ".join(["(ts >= %s AND ts < %s)"] * len(ranges))
        terms.append(f"(machine_id IN ({_marks(machine_ids)}) AND ({times}))")
        range_params += [*machine_ids, *(adapt(t) for r in ranges for t in r)]
    parts, params = [], []
    if terms:
        where = f"quality <> %s AND ({' OR '.join(terms)})"
        # The typed columns come first, so both databases type the union's.
        parts.append(
            f"SELECT machine_id, tag, ts, text, NULL FROM {readings} "
            f"WHERE tag = %s AND {where}"
        )
        params += [_STATE, _BAD, *range_params]
        parts.append(
            f"SELECT machine_id, tag, NULL, '', SUM(value) FROM {readings} "
            f"WHERE tag IN (%s, %s) AND {where} GROUP BY machine_id, tag"
        )
        params += [*_COUNT_TAGS, _BAD, *range_params]
    parts.append(
        f"SELECT m.id, %s, NULL, (SELECT r.text FROM {readings} r "
        "WHERE r.machine_id = m.id AND r.tag = %s AND r.ts < %s AND r.quality <> %s "
        f"ORDER BY r.ts DESC LIMIT 1), NULL FROM {machines} m "
        f"WHERE m.id IN ({_marks(ids)})"
    )
    params += [_PRIOR, _STATE, adapt(start), _BAD, *ids]
    prior: dict[int, str | None] = {}
    changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    counts: dict[tuple[int, str], float] = {}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for machine_id, tag, ts, text, total in cursor.fetchall():
            if tag == _PRIOR:
                prior[machine_id] = text
            elif tag == _STATE:
                changes[machine_id].append((_aware(ts), text))
            else:
                counts[(machine_id, tag)] = total or 0
    for machine_changes in changes.values():
        machine_changes.sort()
    return prior, changes, counts


def _marks(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _aware(value: datetime | str) -> datetime:
    """A time from a raw query: SQLite gives naive UTC (or text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _walk(
    state: str | None,
    pieces: list[_Piece],
    changes: list[tuple[datetime, str]],
) -> tuple[timedelta, int, int]:
    """Run time and the roll-ups' counts over ``pieces`` in order, carrying the
    state from ``state`` (in force at the first piece's start). ``changes`` are
    the machine's state readings inside the raw pieces, in time order."""
    run = timedelta(0)
    good = reject = 0
    upcoming = iter(changes)
    pending = next(upcoming, None)
    for piece_start, piece_end, row in pieces:
        if row is None:
            since = piece_start
            while pending is not None and pending[0] < piece_end:
                ts, new_state = pending
                if state == _RUNNING:
                    run += ts - since
                state, since = new_state, ts
                pending = next(upcoming, None)
            if state == _RUNNING:
                run += piece_end - since
            continue
        first_change, hour_run, last_state, hour_good, hour_reject = row
        if state == _RUNNING:
            run += timedelta(microseconds=first_change)
        run += timedelta(microseconds=hour_run)
        state = last_state or state
        good += hour_good
        reject += hour_reject
    return run, good, reject
