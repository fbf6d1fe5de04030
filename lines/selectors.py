"""Reads of lines: line and station status, OEE, machines, live status.

Status reads touch only small tables (lines, stations, machines and the OEE
snapshots Celery beat keeps); none scans raw readings. Each costs a fixed
number of queries whatever the number of lines, stations or machines.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Extract
from django.utils import timezone

from bpmos.errors import InvalidInput, NotFound
from bpmos.fields import time_problem
from bpmos.rawsql import orm_instance, orm_values
from bpmos.series import per_bucket
from bpmos.totals import Totals, per_window
from lines import oee
from lines import status as st
from lines.models import (
    Line,
    Machine,
    MachineDay,
    MachineHour,
    MachineState,
    OEESnapshot,
    Station,
)
from lines.readmodels import LINE_STATUS
from lines.topology import LineTopology, line_topology
from runbooks.models import Runbook

# A snapshot older than this is not served as "now" (beat refreshes every 60 s).
SNAPSHOT_MAX_AGE = timedelta(minutes=3)
# The longest window ``/oee`` computes from raw readings.
MAX_OEE_WINDOW = timedelta(days=31)


@dataclass(frozen=True)
class StationView:
    """A station as the control UI shows it."""

    id: str  # slug, "st-01"
    name: str
    position: int
    state: st.StationState
    reason: str  # "" unless Blocked
    machine_count: int


@dataclass(frozen=True)
class RunbookRef:
    """The runbook a line executes, with its computed status."""

    id: str
    title: str
    status: str
    current_stage: str | None


@dataclass
class LineView:
    """Payload C "Line Status" and what the lists add to it."""

    line: Line
    mode: st.LineMode
    health: st.LineHealth
    stations: list[StationView]
    oee: Decimal | None  # this shift so far, %, from the snapshot
    runbook: RunbookRef | None = None
    snapshot: OEESnapshot | None = None  # the fresh line snapshot behind ``oee``

    @property
    def id(self) -> str:
        return self.line.slug

    @property
    def name(self) -> str:
        return self.line.name

    @property
    def runbook_id(self) -> str | None:
        return self.line.runbook.slug if self.line.runbook_id else None

    @property
    def topic(self) -> str:
        return self.line.topic

    @property
    def station_counts(self) -> dict[str, int]:
        counts = Counter(s.state for s in self.stations)
        return {state.name.lower(): counts[state] for state in st.StationState}


# --- snapshots -------------------------------------------------------------------


def _fresh_snapshot_rule(line: Line, now: datetime) -> tuple[datetime, datetime]:
    """What makes a snapshot of ``line`` the one served as "now": its window
    starts with the current shift, and it was computed at or after the second
    time returned."""
    return oee.shift_window(line, now)[0], now - SNAPSHOT_MAX_AGE


# Every column of a snapshot, as ``Model.from_db`` takes them.
_SNAPSHOT_FIELDS = tuple(f.attname for f in OEESnapshot._meta.concrete_fields)


def _current_snapshots(
    lines: list[Line], now: datetime, *, stations: bool = False
) -> dict[tuple[int, int | None], OEESnapshot]:
    """The fresh current-shift snapshots of ``lines``: (line id, station id) ->.

    With ``stations``, the stations' rows too (``station`` not loaded: the
    caller has the line's stations). One query, written out: the ORM's
    compilation cost more than PostgreSQL's work (~1.5 ms against ~0.3 ms
    here), and OEESnapshot's default ordering joins lines and stations for rows
    that only fill a dict."""
    if not lines:
        return {}
    rules = {line.pk: _fresh_snapshot_rule(line, now) for line in lines}
    starts = {pk: start for pk, (start, _since) in rules.items()}
    computed_since = min(since for _start, since in rules.values())
    adapt = connection.ops.adapt_datetimefield_value
    qn = connection.ops.quote_name
    windows = list(set(starts.values()))
    sql = (
        f"SELECT {', '.join(map(qn, _SNAPSHOT_FIELDS))} "
        f"FROM {qn(OEESnapshot._meta.db_table)} "
        f"WHERE line_id IN ({', '.join(['%s'] * len(starts))}) "
        f"AND window_start IN ({', '.join(['%s'] * len(windows))}) "
        "AND computed_at >= %s"
    )
    if not stations:
        sql += " AND station_id IS NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [*starts, *(adapt(w) for w in windows), adapt(computed_since)]
        )
        found = cursor.fetchall()
    snapshots = {}
    for values in found:
        row = orm_instance(OEESnapshot, _SNAPSHOT_FIELDS, values)
        if row.window_start == starts[row.line_id]:
            snapshots[(row.line_id, row.station_id)] = row
    return snapshots


def line_shift_oee(line: Line, *, now: datetime | None = None) -> Decimal | None:
    """The line's OEE (%) this shift so far, from its fresh snapshot, if any.

    The rule of ``_current_snapshots`` for one line and one value, in raw SQL:
    this runs in every readings batch that changes a machine's status, where
    the ORM's compilation cost ten times the query (2.4 ms against 0.27 ms).
    """
    window_start, computed_since = _fresh_snapshot_rule(line, now or timezone.now())
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT oee FROM {OEESnapshot._meta.db_table} WHERE line_id = %s "
            "AND station_id IS NULL AND window_start = %s AND computed_at >= %s",
            [line.pk, adapt(window_start), adapt(computed_since)],
        )
        row = cursor.fetchone()
    return None if row is None else orm_values(OEESnapshot, ["oee"], row)[0]


# --- line status -----------------------------------------------------------------


def _line_views(lines: list[Line], now: datetime) -> list[LineView]:
    """Views of ``lines``: two queries (stations with machines, snapshots)."""
    topology = line_topology([line.pk for line in lines])
    snapshots = _current_snapshots(lines, now)
    views = []
    for line in lines:
        line_machines = topology[line.pk].machine_statuses()
        mode = st.line_mode(line_machines)
        snapshot = snapshots.get((line.pk, None))
        line_oee = snapshot.oee if snapshot else None
        views.append(
            LineView(
                line=line,
                mode=mode,
                health=st.line_health(mode, oee=line_oee, target=line.oee_target),
                stations=_station_views(topology[line.pk].stations, line_machines),
                oee=line_oee,
                snapshot=snapshot,
            )
        )
    return views


def _station_views(
    stations: list[Station], machines: list[st.MachineStatus]
) -> list[StationView]:
    by_station = st.stations_by_id([s.pk for s in stations], machines)
    per_station = Counter(m.station_id for m in machines)
    return [
        StationView(
            id=s.slug,
            name=s.name,
            position=s.position,
            state=by_station[s.pk].state,
            reason=by_station[s.pk].reason,
            machine_count=per_station[s.pk],
        )
        for s in stations
    ]


def views_valid_until(views: list[LineView], now: datetime) -> datetime:
    """Until when ``views``, computed at ``now``, stay right if nothing is
    written: the first shift change, or the first of their snapshots to age
    past ``SNAPSHOT_MAX_AGE`` (its line's OEE is then no longer served)."""
    ends = [oee.shift_window(view.line, now)[1] for view in views]
    ends += [
        view.snapshot.computed_at + SNAPSHOT_MAX_AGE
        for view in views
        if view.snapshot is not None
    ]
    return min(ends, default=now + SNAPSHOT_MAX_AGE)


def line_status_list(
    *, now: datetime | None = None, with_runbook: bool = True
) -> list[LineView]:
    """Every active line's status, in line order. Three queries (lines, their
    stations and machines, snapshots); ``with_runbook=False`` leaves out the
    runbook join for callers that do not name it (``runbook_id`` then reads it)."""
    return _line_views(_active_lines(with_runbook), now or timezone.now())


# Every column of a line, as ``Model.from_db`` takes them.
_LINE_FIELDS = tuple(f.attname for f in Line._meta.concrete_fields)


def _active_lines(with_runbook: bool) -> list[Line]:
    """The active lines in line order; with ``with_runbook``, each with its
    runbook's slug loaded (the rest of the runbook deferred). One query,
    written out: the ORM's compilation of it cost more than running it."""
    qn = connection.ops.quote_name
    columns = ", ".join(f"l.{qn(name)}" for name in _LINE_FIELDS)
    sql = f"SELECT {columns}"
    if with_runbook:
        sql += (
            f", r.{qn('slug')} FROM {qn(Line._meta.db_table)} l "
            f"LEFT JOIN {qn(Runbook._meta.db_table)} r ON r.id = l.runbook_id"
        )
    else:
        sql += f" FROM {qn(Line._meta.db_table)} l"
    sql += " WHERE l.is_active ORDER BY l.position, l.slug"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        found = cursor.fetchall()
    width = len(_LINE_FIELDS)
    lines = []
    for row in found:
        line = orm_instance(Line, _LINE_FIELDS, row[:width])
        if with_runbook and line.runbook_id is not None:
            line.runbook = Runbook.from_db(
                connection.alias, ["id", "slug"], [line.runbook_id, row[width]]
            )
        lines.append(line)
    return lines


def _line_or_404(slug: str, *, with_runbook: bool = False) -> Line:
    # The slug is unique: no ordering (``first()`` would sort by Line's). The
    # runbook join only where the answer names the runbook (~0.7 ms here).
    lines = Line.objects.select_related("runbook") if with_runbook else Line.objects
    found = list(lines.filter(slug=slug).order_by())
    if not found:
        raise NotFound(f"There is no line {slug!r}.")
    return found[0]


def line_status_get(*, slug: str, now: datetime | None = None) -> LineView:
    """One line's status, its runbook (``view.line.runbook``) loaded.

    The runbook's computed status (``view.runbook``) is the control tower's, a
    read model over several apps: ``bpmos.dashboards.line_status`` adds it.
    """
    now = now or timezone.now()
    line = _line_or_404(slug, with_runbook=True)
    return _line_views([line], now)[0]


# A line slug as the URLs carry it; anything else is not looked up in the cache
# (cache keys must not hold spaces or control characters) and is a 404 anyway.
_SLUG = re.compile(r"[-\w]{1,100}", re.ASCII)


def _line_and_topology(slug: str) -> tuple[Line, LineTopology]:
    """The line ``slug`` (404 if none) with its stations and active machines.

    From the line-status read model: they change only with the writes that
    start its new generation. Computed: two queries."""

    def compute() -> tuple[tuple[Line, LineTopology], None]:
        line = _line_or_404(slug)
        return (line, line_topology([line.pk])[line.pk]), None

    if not _SLUG.fullmatch(slug):
        return compute()[0]
    return LINE_STATUS.get(f"topology:{slug}", compute)


def line_station_list(*, slug: str) -> list[StationView]:
    """One line's stations with their states, in position order."""
    _line, topology = _line_and_topology(slug)
    return _station_views(topology.stations, topology.machine_statuses())


# --- OEE -------------------------------------------------------------------------


@dataclass
class OEEPart:
    """OEE figures of one scope (a line or a station), as percentages."""

    availability: Decimal | None
    performance: Decimal | None
    quality: Decimal | None
    oee: Decimal | None
    planned_busy_seconds: float
    run_seconds: float
    good_count: int
    reject_count: int

    @property
    def produced_count(self) -> int:
        return self.good_count + self.reject_count

    @classmethod
    def of(cls, figures: oee.Figures) -> OEEPart:
        return cls(
            **figures.percentages(),
            planned_busy_seconds=round(float(figures.planned_busy), 3),
            run_seconds=round(float(figures.apt), 3),
            good_count=figures.good,
            reject_count=figures.reject,
        )

    @classmethod
    def of_snapshot(cls, row: OEESnapshot) -> OEEPart:
        return cls(
            availability=row.availability,
            performance=row.performance,
            quality=row.quality,
            oee=row.oee,
            planned_busy_seconds=round(row.planned_busy_seconds, 3),
            run_seconds=round(row.run_seconds, 3),
            good_count=row.good_count,
            reject_count=row.reject_count,
        )


@dataclass
class OEEReport:
    """A line's OEE over a window, with each station's."""

    line_id: str
    start: datetime
    end: datetime
    source: str  # "snapshot" (beat's read model) or "live" (computed now)
    computed_at: datetime
    total: OEEPart
    stations: list[tuple[Station, OEEPart]] = field(default_factory=list)


def _parse_time(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(
            f"{name}: an ISO 8601 time with a time zone, e.g. 2026-03-02T06:00:00Z.",
            code="validation_error",
            details={name: ["An ISO 8601 time with a time zone."]},
        )
    problem = time_problem(value)
    if problem is not None:
        raise InvalidInput(
            f"{name}: {problem}", code="validation_error", details={name: [problem]}
        )
    return value


def oee_window(
    line: Line, raw_from: str | None, raw_to: str | None, now: datetime
) -> tuple[datetime, datetime] | None:
    """The window a request asks for; None for the default (this shift so far).

    ``to`` defaults to now and is clipped to now (the future has no readings);
    ``from`` is required when ``to`` is given.
    """
    if not raw_from and not raw_to:
        return None
    if not raw_from:
        raise InvalidInput(
            "from: required when to is given.",
            code="validation_error",
            details={"from": ["Required when to is given."]},
        )
    start = _parse_time("from", raw_from)
    end = min(_parse_time("to", raw_to), now) if raw_to else now
    if start >= end:
        raise InvalidInput(
            "from: must be before to (and before now).",
            code="validation_error",
            details={"from": ["Must be before to and before now."]},
        )
    if end - start > MAX_OEE_WINDOW:
        raise InvalidInput(
            f"The window may span at most {MAX_OEE_WINDOW.days} days.",
            code="validation_error",
            details={"to": [f"At most {MAX_OEE_WINDOW.days} days after from."]},
        )
    return start, end


def line_oee_get(
    *,
    slug: str,
    raw_from: str | None = None,
    raw_to: str | None = None,
    now: datetime | None = None,
) -> OEEReport:
    """A line's OEE over [from, to); by default this shift so far.

    The default window is served from the beat-kept snapshot when it is fresh
    (``window_end`` is then the time it was computed up to); an explicit window,
    or a missing or stale snapshot, is computed from the readings now.
    """
    now = now or timezone.now()
    line, topology = _line_and_topology(slug)
    window = oee_window(line, raw_from, raw_to, now)
    if window is None:
        snapshots = _current_snapshots([line], now, stations=True)
        total = snapshots.get((line.pk, None))
        if total is not None:
            # The line's stations in position order, each with its snapshot.
            station_rows = []
            for station in topology.stations:
                row = snapshots.get((line.pk, station.pk))
                if row is not None:
                    row.station = station
                    station_rows.append(row)
            return OEEReport(
                line_id=line.slug,
                start=total.window_start,
                end=total.window_end,
                source="snapshot",
                computed_at=total.computed_at,
                total=OEEPart.of_snapshot(total),
                stations=[
                    (row.station, OEEPart.of_snapshot(row)) for row in station_rows
                ],
            )
        window = (oee.shift_window(line, now)[0], now)
    result = oee.line_oee(line, *window, topology=topology)
    return OEEReport(
        line_id=line.slug,
        start=window[0],
        end=window[1],
        source="live",
        computed_at=now,
        total=OEEPart.of(result.line),
        stations=[(s, OEEPart.of(f)) for s, f in result.stations],
    )


# --- live status -------------------------------------------------------------------


@dataclass(frozen=True)
class LiveSummary:
    """The plant at a glance (``/live-status/summary``)."""

    health_percent: Decimal | None
    active_lines: int
    total_lines: int
    modes: dict[str, int]
    stations: dict[str, int]
    oee: Decimal | None
    updated_at: datetime
    valid_until: datetime  # see ``views_valid_until``


def live_status_summary(*, now: datetime | None = None) -> LiveSummary:
    """Health % (stations not Blocked), lines by mode, plant OEE this shift."""
    now = now or timezone.now()
    views = line_status_list(now=now, with_runbook=False)
    stations = Counter(s.state for view in views for s in view.stations)
    total_stations = sum(stations.values())
    healthy = total_stations - stations[st.StationState.BLOCKED]
    modes = Counter(view.mode for view in views)
    plant = oee.Figures()
    for row in (view.snapshot for view in views if view.snapshot is not None):
        plant.add(
            oee.Figures(
                planned_busy=Fraction(row.planned_busy_seconds),
                run=Fraction(row.run_seconds),
                ideal=Fraction(row.ideal_seconds),
                good=row.good_count,
                reject=row.reject_count,
            )
        )
    return LiveSummary(
        health_percent=oee.percent(Fraction(healthy, total_stations))
        if total_stations
        else None,
        active_lines=modes[st.LineMode.RUNNING],
        total_lines=len(views),
        modes={mode.name.lower(): modes[mode] for mode in st.LineMode},
        stations={state.name.lower(): stations[state] for state in st.StationState},
        oee=oee.percent(plant.oee),
        updated_at=now,
        valid_until=views_valid_until(views, now),
    )


# --- machines (mobile) -------------------------------------------------------------


def machine_list() -> QuerySet[Machine]:
    """Machines with their station and line (for ids), in station order."""
    return Machine.objects.select_related("station__line").order_by(
        "station__line__position", "station__line__slug", "station__position", "id"
    )


def machine_state_counts() -> dict[str, int]:
    """Active machines by current state (display names, every state listed);
    one query. The dispatch desk's ``/dashboard/status`` shows these."""
    found = Counter(
        dict(
            Machine.objects.filter(is_active=True)
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
    )
    return {state.label: found.get(state.value, 0) for state in MachineState}


# --- dashboard figures (bpmos.dashboards; docs/dashboards.md) ----------------------


@dataclass(frozen=True)
class PieceCounts:
    """Good and rejected pieces the machines reported."""

    good: int
    reject: int


def snapshot_piece_counts(
    *, windows: dict[str, tuple[datetime, datetime]]
) -> dict[str, PieceCounts]:
    """Per named window [start, end): good and rejected pieces of every line,
    summed over the lines' OEE snapshots (one row per line and shift, kept by
    beat) of the shifts that *start* in the window. One query."""
    if not windows:
        return {}
    return snapshot_piece_totals(windows=windows).get()


def snapshot_piece_totals(*, windows: dict[str, tuple[datetime, datetime]]) -> Totals:
    """``snapshot_piece_counts`` (``windows`` not empty) as ``Totals``, not
    run: ``bpmos.totals.totals_get`` reads it with other figures in one
    statement."""
    aggregates = {}
    for name, (start, end) in windows.items():
        in_window = Q(window_start__gte=start, window_start__lt=end)
        aggregates[f"good_{name}"] = Sum("good_count", filter=in_window)
        aggregates[f"reject_{name}"] = Sum("reject_count", filter=in_window)
    first = min(start for start, _ in windows.values())
    last = max(end for _, end in windows.values())
    rows = OEESnapshot.objects.filter(
        station__isnull=True, window_start__gte=first, window_start__lt=last
    )

    return Totals(rows, aggregates, per_window(windows, PieceCounts, "good", "reject"))


def piece_counts_series(
    *, start: datetime, end: datetime, bucket: str, from_days: bool = True
) -> dict[datetime, PieceCounts]:
    """Good and rejected pieces per ``bucket`` ("hour", "day", "week", UTC)
    from the machines' fresh roll-ups of the hours in [start, end) (``start``
    a bucket start): bucket start -> counts; buckets with no roll-up absent.
    Hour buckets sum the hour roll-ups (``MachineHour``), day and week buckets
    the day roll-ups (``MachineDay``) and the hours of a last day ``end`` cuts
    short (``from_days=False``: hours for every bucket, the same counts). One
    query."""
    hours = MachineHour.objects.filter(hour__lt=end, is_stale=False)
    if bucket == "hour" or not from_days:
        rows = per_bucket(
            hours.filter(hour__gte=start),
            "hour",
            bucket,
            good=Sum("good_count"),
            reject=Sum("reject_count"),
        )
    else:
        tail = oee.day_floor(end)
        days = per_bucket(
            MachineDay.objects.filter(day__gte=start).filter(
                Q(day__lt=tail) | Q(day=tail, last_hour__lt=end)
            ),
            "day",
            bucket,
            good=Sum("good_count"),
            reject=Sum("reject_count"),
        )
        tail_hours = per_bucket(
            hours.filter(
                Exists(
                    MachineDay.objects.filter(
                        machine_id=OuterRef("machine_id"), day=tail, last_hour__gte=end
                    )
                ),
                hour__gte=max(tail, start),
            ),
            "hour",
            bucket,
            good=Sum("good_count"),
            reject=Sum("reject_count"),
        )
        rows = days.union(tail_hours, all=True)
    found: dict[datetime, PieceCounts] = {}
    for t, good, reject in rows:
        into = found.get(t)
        good, reject = good or 0, reject or 0
        found[t] = (
            PieceCounts(good=good, reject=reject)
            if into is None
            else PieceCounts(good=into.good + good, reject=into.reject + reject)
        )
    return found


@dataclass(frozen=True)
class LineThroughput:
    """One active line's output over a window (docs/metrics.md, Throughput)."""

    id: str  # slug
    name: str
    good: int  # good pieces of its last station
    per_hour: Decimal  # pieces per hour, one decimal


def throughput_per_hour(good: int, start: datetime, end: datetime) -> Decimal:
    """``good`` pieces ÷ the hours of [start, end), rounded half up to one
    decimal (0 without pieces). A window must not be empty."""
    microseconds = (end - start) // timedelta(microseconds=1)
    if microseconds <= 0:
        raise ValueError("The window must end after it starts.")
    # oee.percent rounds a ratio x 100 half up to one decimal: hand it / 100.
    return oee.percent(Fraction(good * 3600 * 10**6, microseconds) / 100)


def line_throughput_list(*, start: datetime, end: datetime) -> list[LineThroughput]:
    """Every active line's throughput over the UTC hours in [start, end) (give
    whole hours: it reads the fresh hourly roll-ups, ``MachineHour``, never raw
    readings): the good pieces of the machines at its **last** station
    (highest ``position``; earlier stations count the same pieces) ÷ the
    window's hours. Readings of quality ``bad`` are not in the roll-ups' counts.
    The plant's throughput is the sum over the lines. Two queries."""
    lines = list(Line.objects.filter(is_active=True).order_by("position", "slug"))
    last = Station.objects.filter(line_id=OuterRef("machine__station__line_id"))
    good = dict(
        MachineHour.objects.filter(
            hour__gte=start,
            hour__lt=end,
            is_stale=False,
            machine__station__line__is_active=True,
            machine__station__position=Subquery(
                last.order_by("-position").values("position")[:1]
            ),
        )
        .order_by()
        .values("machine__station__line_id")
        .annotate(good=Sum("good_count"))
        .values_list("machine__station__line_id", "good")
    )
    return [
        LineThroughput(
            id=line.slug,
            name=line.name,
            good=good.get(line.pk) or 0,
            per_hour=throughput_per_hour(good.get(line.pk) or 0, start, end),
        )
        for line in lines
    ]


class BucketInputs(NamedTuple):
    """One machine's rolled-up hours of one trend bucket, summed as OEE sums
    them: how many hours, running microseconds (the state carried in), good
    and rejected pieces."""

    hours: int
    run_us: int
    good: int
    reject: int


@dataclass
class LineBuckets:
    """One active line's OEE inputs per machine and trend bucket: machine id
    -> bucket start -> inputs, with what is the same for every hour: a
    machine-hour's planned busy time (``planned_busy_hour``, seconds) and each
    machine's ideal cycle (``ideal_cycle``, seconds). A machine's APT is
    bounded per bucket from these sums, as ``lines.oee`` does for any window.
    Plain integers, so a month of a plant's machines is cheap to sum."""

    id: str  # slug
    name: str
    planned_busy_hour: Fraction = Fraction(0)
    ideal_cycle: dict[int, Fraction] = field(default_factory=dict)
    machines: dict[int, dict[datetime, BucketInputs]] = field(default_factory=dict)


_DAY_SECONDS = 86_400
# 1970-01-01 was a Thursday: the Monday on or before a day is this many days
# back from (days since the epoch + 3) % 7.
_EPOCH_WEEKDAY_SHIFT = 3


def _bucket_epoch(epoch: int, bucket: str) -> int:
    """The start of the UTC ``bucket`` holding ``epoch`` (seconds since the
    epoch; weeks from Monday), in integers."""
    if bucket == "hour":
        return epoch - epoch % 3600
    day = epoch // _DAY_SECONDS
    if bucket == "week":
        day -= (day + _EPOCH_WEEKDAY_SHIFT) % 7
    return day * _DAY_SECONDS


def _epoch(column: str):
    """``column`` (a datetime) as whole seconds since the epoch on PostgreSQL,
    where integers load several times faster than timestamps; SQLite has no
    epoch extract, so there it stays a datetime (``_as_epoch``)."""
    if connection.vendor == "postgresql":
        return Cast(Extract(column, "epoch"), BigIntegerField())
    return F(column)


def _as_epoch(value) -> int:
    return value if isinstance(value, int) else int(value.timestamp())


def _hour_units(machine_ids: list[int], start: datetime, end: datetime) -> QuerySet:
    """The fresh hour roll-ups of [start, end) as composable units: (machine,
    epoch, hours, lead µs, run µs, last state, good, reject)."""
    return (
        MachineHour.objects.filter(
            machine_id__in=machine_ids, hour__gte=start, hour__lt=end, is_stale=False
        )
        .order_by()
        .annotate(
            u_machine=F("machine_id"),
            u_epoch=_epoch("hour"),
            u_hours=Value(1, output_field=IntegerField()),
            u_lead=F("first_change_microseconds"),
            u_run=F("run_microseconds"),
            u_state=F("last_state"),
            u_good=F("good_count"),
            u_reject=F("reject_count"),
        )
    )


_UNIT_COLUMNS = (
    "u_machine",
    "u_epoch",
    "u_hours",
    "u_lead",
    "u_run",
    "u_state",
    "u_good",
    "u_reject",
)


def _day_units(machine_ids: list[int], start: datetime, end: datetime) -> QuerySet:
    """The day roll-ups (``MachineDay``) of the days in [start, end) as
    composable units, and where ``end`` falls inside a day that has a fresh
    hour at or after it, that day's hours before ``end`` instead. One query
    (``UNION ALL``), ordered by machine and time."""
    tail = oee.day_floor(end)  # == end when the window ends at midnight
    days = (
        MachineDay.objects.filter(machine_id__in=machine_ids, day__gte=start)
        .filter(Q(day__lt=tail) | Q(day=tail, last_hour__lt=end))
        .order_by()
        .annotate(
            u_machine=F("machine_id"),
            u_epoch=_epoch("day"),
            u_hours=F("hours"),
            u_lead=F("lead_microseconds"),
            u_run=F("run_microseconds"),
            u_state=F("last_state"),
            u_good=F("good_count"),
            u_reject=F("reject_count"),
        )
    )
    tail_hours = _hour_units(machine_ids, max(tail, start), end).filter(
        Exists(
            MachineDay.objects.filter(
                machine_id=OuterRef("machine_id"), day=tail, last_hour__gte=end
            )
        )
    )
    return (
        days.values_list(*_UNIT_COLUMNS)
        .union(tail_hours.values_list(*_UNIT_COLUMNS), all=True)
        .order_by("u_machine", "u_epoch")
    )


def line_bucket_figures(
    *, start: datetime, end: datetime, bucket: str, from_days: bool = True
) -> list[LineBuckets]:
    """Every active line's OEE inputs per machine and ``bucket`` ("hour",
    "day", "week"; UTC, weeks from Monday) over the rolled-up hours in [start,
    end) (``start`` a bucket start), in line order. Never reads raw readings:
    hours not rolled up yet (the current one, stale ones) are absent, and so
    is a bucket without any. Four queries.

    Hour buckets read the hour roll-ups (``MachineHour``); day and week
    buckets the day roll-ups (``MachineDay``), and the hours of a last day
    ``end`` cuts short. ``from_days=False`` reads hours for every bucket: the
    same figures (the reference the tests compare with).

    Per machine, as ``lines.oee`` defines it: planned busy time is the hours'
    length less their share of planned downtime; run time is the running time
    of the hours, the state carried in from the machine's previous rolled-up
    hour (before ``start``: its latest fresh roll-up naming a state); counts
    and ideal time are the hours'.
    """
    lines = list(Line.objects.filter(is_active=True).order_by("position", "slug"))
    if not lines:
        return []
    topologies = line_topology([line.pk for line in lines])
    result = {
        line.pk: LineBuckets(
            id=line.slug,
            name=line.name,
            planned_busy_hour=oee.planned_busy_seconds(line, start, start + oee.HOUR),
        )
        for line in lines
    }
    machines = {}
    for line in lines:
        for machine in topologies[line.pk].machines:
            machines[machine.pk] = result[line.pk]
            result[line.pk].ideal_cycle[machine.pk] = Fraction(
                machine.station.ideal_cycle_seconds
            )
    if not machines:
        return list(result.values())
    machine_ids = list(machines)
    prior = dict(
        Machine.objects.filter(pk__in=machine_ids)
        .annotate(
            prior=Subquery(
                MachineHour.objects.filter(
                    machine_id=OuterRef("pk"), hour__lt=start, is_stale=False
                )
                .exclude(last_state="")
                .order_by("-hour")
                .values("last_state")[:1]
            )
        )
        .values_list("pk", "prior")
    )
    if bucket == "hour" or not from_days:
        # Plain columns, no UNION: the cheapest query to build and to load.
        hour_rows = (
            MachineHour.objects.filter(
                machine_id__in=machine_ids,
                hour__gte=start,
                hour__lt=end,
                is_stale=False,
            )
            .order_by("machine_id", "hour")
            .annotate(epoch=_epoch("hour"))
            .values_list(
                "machine_id",
                "epoch",
                "first_change_microseconds",
                "run_microseconds",
                "last_state",
                "good_count",
                "reject_count",
            )
        )
        units = ((m, e, 1, *rest) for m, e, *rest in hour_rows)
    else:
        units = _day_units(machine_ids, start, end)
    running = MachineState.RUNNING
    state: dict[int, str | None] = {}
    floors: dict[int, datetime] = {}  # unit's epoch -> its bucket's start
    for machine_id, epoch, hours, lead, run, last_state, good, reject in units:
        t = floors.get(epoch)
        if t is None:
            t = floors[epoch] = datetime.fromtimestamp(
                _bucket_epoch(_as_epoch(epoch), bucket), UTC
            )
        carried = state.get(machine_id, prior.get(machine_id))
        state[machine_id] = last_state or carried
        if carried == running:
            run += lead
        sums = machines[machine_id].machines.setdefault(machine_id, {})
        into = sums.get(t)
        sums[t] = (
            BucketInputs(hours, run, good, reject)
            if into is None
            else BucketInputs(
                into.hours + hours,
                into.run_us + run,
                into.good + good,
                into.reject + reject,
            )
        )
    return list(result.values())


def plant_shift_window(*, now: datetime) -> tuple[datetime, datetime]:
    """The plant's current shift [start, end), UTC: the shift calendar of the
    first active line (by position, then id); a plant with no active line
    keeps the default calendar (shifts of 480 minutes from 06:00 UTC). One
    query."""
    line = (
        Line.objects.filter(is_active=True)
        .order_by("position", "slug")
        .only("shift_start", "shift_minutes")
        .first()
    )
    return oee.shift_window(line or Line(), now)


# --- the role dashboards (bpmos.dashboards.roles) ------------------------------------


@dataclass(frozen=True)
class CurrentShift:
    """The shift running now on the plant's first active line."""

    line_id: str  # slug
    line_name: str
    start: datetime
    end: datetime


def current_shift(*, now: datetime | None = None) -> CurrentShift | None:
    """The current shift of the first active line (line order), or None when
    no line is active. One query."""
    line = Line.objects.filter(is_active=True).order_by("position", "slug").first()
    if line is None:
        return None
    start, end = oee.shift_window(line, now or timezone.now())
    return CurrentShift(line_id=line.slug, line_name=line.name, start=start, end=end)
