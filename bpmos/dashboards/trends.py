"""Time series for sparklines and trend charts (``/api/dashboard/trends``):
the historical trend analysis of the responsibilities contract.

Every series is aggregated in the database (or, for OEE, from the hourly
and daily roll-ups beat keeps), per bucket of an hour, a day or an ISO week (Monday),
UTC. ``from`` is rounded down to the start of its bucket; a point is the
bucket starting at ``t``; every bucket from there up to ``to`` has a point,
with 0 (counts) or null (ratios, averages) when nothing happened in it.

Metrics (docs/dashboards.md has the definitions in full):

* ``built``: units of work orders completed (their quantity);
* ``yield``: first-pass yield, % (of the passports whose first QA result
  fell in the bucket, those that passed);
* ``lineYield``: good ÷ (good + rejected) pieces from the machines' roll-ups
  (hourly for hour buckets, daily for day and week buckets), %;
* ``oee``: OEE per active line, %, from the same roll-ups (a series per line);
* ``exceptionsOpened``: exceptions raised;
* ``alarms``: SCADA alarms that went active;
* ``soh``, ``soc``, ``temperature``: battery telemetry of one passport
  (``passport``: any identifier) or of every passport of a ``model``, the
  mean of the samples in the bucket.

Never reads raw machine readings. A fixed number of queries per metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from math import lcm
from typing import Any

from django.db import connection
from django.utils import timezone

from bpmos.dashboards.kpis import share_percent
from bpmos.errors import InvalidInput
from exceptions import selectors as exception_selectors
from lines import oee
from lines import readmodels as line_readmodels
from lines import selectors as line_selectors
from passports import selectors as passport_selectors
from runbooks import selectors as runbook_selectors
from scada import selectors as scada_selectors

BUCKETS = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}
# The most points one series may have (a sparkline or a chart, not an export).
MAX_POINTS = 2000
# Without ``from``: this many buckets before ``to``.
DEFAULT_POINTS = 24

TELEMETRY_METRICS = ("soh", "soc", "temperature")
UNITS = {
    "built": "units",
    "yield": "%",
    "lineYield": "%",
    "oee": "%",
    "exceptionsOpened": "count",
    "alarms": "count",
    "soh": "%",
    "soc": "%",
    "temperature": "°C",
}
METRICS = tuple(UNITS)


@dataclass(frozen=True)
class Point:
    t: datetime
    value: float | int | None


@dataclass(frozen=True)
class Series:
    id: str
    name: str
    points: list[Point]


@dataclass(frozen=True)
class Trend:
    metric: str
    bucket: str
    unit: str
    start: datetime
    end: datetime
    series: list[Series]


def bucket_floor(moment: datetime, bucket: str) -> datetime:
    """The start of the UTC ``bucket`` holding ``moment``."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if bucket == "hour":
        return moment
    day = moment.replace(hour=0)
    return day if bucket == "day" else day - timedelta(days=day.weekday())


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"{field}: {message}", code="validation_error", details={field: [message]}
    )


def trend_window(
    *, bucket: str, start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime, list[datetime]]:
    """The window [start rounded down, end) and its bucket starts; 400 when
    ``from`` is not before ``to`` or the window has more than ``MAX_POINTS``."""
    step = BUCKETS[bucket]
    end = end or now
    if start is None:  # the last bucket is the one holding the instant before end
        last = bucket_floor(end - timedelta(microseconds=1), bucket)
        start = last - (DEFAULT_POINTS - 1) * step
    if start >= end:
        raise _invalid("from", "Must be before to.")
    first = bucket_floor(start, bucket)
    if (end - first) / step > MAX_POINTS:
        raise _invalid(
            "from",
            f"At most {MAX_POINTS} {bucket} buckets between from and to; "
            "choose a larger bucket or a shorter window.",
        )
    starts = []
    t = first
    while t < end:
        starts.append(t)
        t += step
    return first, end, starts


def _fill(starts: list[datetime], values: dict[datetime, Any], empty) -> list[Point]:
    by_start = {t.astimezone(UTC): value for t, value in values.items()}
    return [Point(t=t, value=by_start.get(t, empty)) for t in starts]


def _plant(points: list[Point]) -> list[Series]:
    return [Series(id="plant", name="Plant", points=points)]


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _built(start, end, bucket, starts, **_) -> list[Series]:
    found = runbook_selectors.work_order_built_series(
        start=start, end=end, bucket=bucket
    )
    return _plant(_fill(starts, found, 0))


def _yield(start, end, bucket, starts, **_) -> list[Series]:
    found = passport_selectors.first_pass_series(start=start, end=end, bucket=bucket)
    ratios = {t: _float(share_percent(n.passed, n.tested)) for t, n in found.items()}
    return _plant(_fill(starts, ratios, None))


def _line_yield(start, end, bucket, starts, **_) -> list[Series]:
    found = line_selectors.piece_counts_series(start=start, end=end, bucket=bucket)
    ratios = {
        t: _float(share_percent(counts.good, counts.good + counts.reject))
        for t, counts in found.items()
    }
    return _plant(_fill(starts, ratios, None))


def _oee(start, end, bucket, starts, **_) -> list[Series]:
    series = []
    for line in line_selectors.line_bucket_figures(start=start, end=end, bucket=bucket):
        # A machine-hour's planned busy time is the same for every machine
        # and hour of the line: P = num / den seconds.
        num, den = (
            line.planned_busy_hour.numerator,
            line.planned_busy_hour.denominator,
        )
        # Ideal cycles as integers over one denominator: ideal time sums in
        # integers too (Fractions hashed or added per machine cost more than
        # the rest of the loop).
        scale = lcm(*(cycle.denominator for cycle in line.ideal_cycle.values()))
        # Per bucket, in integers: hours, running µs, the APT's two parts
        # (µs of the machines that ran less than planned, hours of those that
        # did not), ideal time x scale, good, rejected.
        totals: dict[datetime, list] = {}
        for machine_id, buckets in line.machines.items():
            cycle = int(line.ideal_cycle[machine_id] * scale)
            # The machine's inputs per bucket, summed before its APT is
            # bounded by its planned busy time (ISO 22400, per work unit and
            # window: docs/oee.md).
            for t, (count, run_us, good, reject) in buckets.items():
                into = totals.get(t)
                if into is None:
                    into = totals[t] = [0, 0, 0, 0, 0, 0, 0]
                into[0] += count
                into[1] += run_us
                # APT = min(run, P x hours), compared exactly in integers
                if run_us * den < num * count * 1_000_000:
                    into[2] += run_us
                else:
                    into[3] += count
                into[4] += cycle * (good + reject)
                into[5] += good
                into[6] += reject
        # OEE in integers of one unit, 1 / (den x 10^6 x scale) s, so each
        # bucket costs one Fraction (oee.oee_ratio: the definition Figures
        # uses too).
        unit_apt, unit_hour = den * scale, num * 1_000_000 * scale
        unit_ideal = den * 1_000_000
        values = {}
        for t, (
            count,
            _run_us,
            apt_us,
            apt_hours,
            ideal,
            good,
            reject,
        ) in totals.items():
            ratio = oee.oee_ratio(
                planned_busy=unit_hour * count,
                apt=apt_us * unit_apt + unit_hour * apt_hours,
                ideal=ideal * unit_ideal,
                good=good,
                reject=reject,
            )
            values[t] = _float(oee.percent(ratio))
        series.append(
            Series(id=line.id, name=line.name, points=_fill(starts, values, None))
        )
    return series


def _exceptions(start, end, bucket, starts, **_) -> list[Series]:
    found = exception_selectors.exception_opened_series(
        start=start, end=end, bucket=bucket
    )
    return _plant(_fill(starts, found, 0))


def _alarms(start, end, bucket, starts, **_) -> list[Series]:
    found = scada_selectors.alarm_raised_series(start=start, end=end, bucket=bucket)
    return _plant(_fill(starts, found, 0))


def _telemetry(
    start, end, bucket, starts, *, metric, passport=None, model=None
) -> list[Series]:
    if passport is not None:
        found = passport_selectors.telemetry_series(
            metric=metric, start=start, end=end, bucket=bucket, passport_id=passport.pk
        )
        series_id, name = str(passport.uuid), passport.serial
    else:
        found = passport_selectors.telemetry_series(
            metric=metric, start=start, end=end, bucket=bucket, model=model
        )
        series_id, name = model, model
    means = {t: round(point.mean, 2) for t, point in found.items()}
    return [Series(id=series_id, name=name, points=_fill(starts, means, None))]


def _ceil_hour(moment: datetime) -> datetime:
    floor = bucket_floor(moment, "hour")
    return floor if floor == moment else floor + BUCKETS["hour"]


def _from_rollups(compute: Callable[..., list[Series]]) -> Callable[..., list[Series]]:
    """``compute`` (an OEE or line-yield trend) served from the roll-ups' read
    model (``lines.readmodels.ROLLUPS``) until beat writes roll-ups or a line or
    machine changes. The roll-ups are whole hours, so a window [first, end)
    holds the same rows and buckets as [first, end rounded up to the hour):
    that is the key, and a dashboard polling "the last 24 hours" is served
    from the cache all hour. Inside a transaction it computes (a payload there
    may count uncommitted writes)."""

    def cached(start, end, bucket, starts, **extra) -> list[Series]:
        if connection.in_atomic_block:
            return compute(start, end, bucket, starts, **extra)
        key = f"trend:{compute.__name__}:{bucket}:{start.isoformat()}:"
        key += _ceil_hour(end).isoformat()
        return line_readmodels.ROLLUPS.get(
            key, lambda: (compute(start, end, bucket, starts, **extra), None)
        )

    return cached


_COMPUTE: dict[str, Callable[..., list[Series]]] = {
    "built": _built,
    "yield": _yield,
    "lineYield": _from_rollups(_line_yield),
    "oee": _from_rollups(_oee),
    "exceptionsOpened": _exceptions,
    "alarms": _alarms,
    **dict.fromkeys(TELEMETRY_METRICS, _telemetry),
}


def trend_get(
    *,
    metric: str,
    bucket: str = "day",
    start: datetime | None = None,
    end: datetime | None = None,
    passport: str | None = None,
    model: str | None = None,
    now: datetime | None = None,
) -> Trend:
    """The series of ``metric`` per ``bucket`` over [start, end) (see the
    module docstring). ``passport`` (an identifier) or ``model``: exactly one,
    and only for the telemetry metrics. 400 for a bad combination, 404 for an
    unknown passport."""
    if metric not in UNITS:
        raise _invalid("metric", f"One of {', '.join(METRICS)}.")
    if bucket not in BUCKETS:
        raise _invalid("bucket", f"One of {', '.join(BUCKETS)}.")
    if metric in TELEMETRY_METRICS:
        if bool(passport) == bool(model):
            raise _invalid(
                "passport", "Give exactly one of passport or model for telemetry."
            )
    elif passport or model:
        field = "passport" if passport else "model"
        raise _invalid(field, "Only for the telemetry metrics (soh, soc, temperature).")
    first, last, starts = trend_window(
        bucket=bucket, start=start, end=end, now=now or timezone.now()
    )
    extra: dict[str, Any] = {}
    if metric in TELEMETRY_METRICS:
        extra = {
            "metric": metric,
            "passport": passport_selectors.resolve(passport) if passport else None,
            "model": model,
        }
    series = _COMPUTE[metric](first, last, bucket, starts, **extra)
    return Trend(
        metric=metric,
        bucket=bucket,
        unit=UNITS[metric],
        start=first,
        end=last,
        series=series,
    )
