"""Battery telemetry: BMS samples of a pack in the field (SoH, SoC, temperature,
voltage, current), ingested in batches and summarised on the passport.

``telemetry_ingest`` is built like ``lines.services.readings_ingest``: the whole
batch is checked in plain Python first (one bad row and nothing is stored; the
400 names the row index and field), then stored in one statement that skips
what is already stored (unique passport + ts), so a gateway may re-send a batch
safely: on PostgreSQL COPY straight into the table in a savepoint and, only
when that meets a duplicate, COPY into a temporary table and one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` the new ones; on
SQLite one ``INSERT ... ON CONFLICT DO NOTHING`` a row. The samples that were
new are added to the model's hourly roll-up (``passports.rollups``: one upsert)
in the same transaction. One audit record per batch.

Telemetry is not a lifecycle change, so a batch appends nothing to the ledger:
the ledger is the tamper-evident record of what happened to a battery (one
event per decision or move), and a gateway posting every minute would bury
those events under thousands of samples and make every verification walk them.
The passport's summary fields (``soh_percent``, ``soc_percent``,
``temperature_c``, ``telemetry_at``) are written here directly; they are not
part of the ledger's projection, so ``ledger.verify`` never depends on them.
``EventKind.TELEMETRY_SUMMARISED`` stays available for a deliberate snapshot
(at a service visit or end of life), which is a decision, not a sample.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, TypedDict

from django.db import transaction
from django.db.models import Avg, Count, Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from bpmos.batch import (
    FUTURE_TOLERANCE,
    MAX_BATCH,
    BatchWords,
    RowError,
    batch_validate,
)
from bpmos.bulk import BulkTarget
from bpmos.errors import Conflict
from bpmos.fields import time_problem
from elog import audit
from passports import dynamic, ledger, rollups
from passports.models import Kind, Passport, TelemetryReading

# Days of daily trend ``telemetry_summary`` returns by default, and at most.
TREND_DAYS = 30
MAX_TREND_DAYS = 365

# Measurement -> (column, lowest, highest) ; None: no bound on that side.
MEASUREMENTS: dict[str, tuple[str, float | None, float | None]] = {
    "sohPercent": ("soh_percent", 0.0, 100.0),
    "socPercent": ("soc_percent", 0.0, 100.0),
    "temperatureC": ("temperature_c", -40.0, 125.0),
    "voltageV": ("voltage_v", 0.0, 2000.0),
    "currentA": ("current_a", -5000.0, 5000.0),
}
# The model's own names are accepted too (the demo and tasks build rows in Python).
_ALIASES = {column: name for name, (column, _, _) in MEASUREMENTS.items()}
_COLUMNS = ("passport_id", "ts", *(column for column, _, _ in MEASUREMENTS.values()))
_SUMMARY_FIELDS = ("soh_percent", "soc_percent", "temperature_c")


class IngestResult(TypedDict):
    accepted: int  # samples stored now
    duplicates: int  # already stored, or repeated within the batch


# --- validation (plain Python) ---------------------------------------------------


def _parse_ts(raw: Any, latest: datetime) -> datetime:
    value: datetime | None = None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            value = None
    if value is None:
        raise RowError("ts", "Required: an ISO 8601 time with a time zone.")
    if value.tzinfo is None:
        raise RowError("ts", "Needs a time zone (e.g. 2026-03-02T08:00:00Z).")
    # Both bounds before astimezone, which overflows near year 1 and 9999.
    if value > latest:
        raise RowError("ts", "Is in the future.")
    problem = time_problem(value)  # the lower bound, as the schema states it
    if problem is not None:
        raise RowError("ts", problem)
    value = value.astimezone(UTC)
    return value


def _measurement(raw: Any, name: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise RowError(name, "Must be a number.")
    value = float(raw)
    _, low, high = MEASUREMENTS[name]
    if not math.isfinite(value):
        raise RowError(name, "Must be a finite number.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise RowError(name, f"Must be between {low:g} and {high:g}.")
    return value


def _check_row(row: Any, passport_id: int, latest: datetime) -> tuple:
    """One sample as the tuple of ``_COLUMNS``; raises ``RowError``."""
    if not isinstance(row, dict):
        raise RowError("row", "Must be an object.")
    values: dict[str, Any] = {}
    for key, raw in row.items():
        name = _ALIASES.get(key, key)
        if key == "ts":
            continue
        if name not in MEASUREMENTS:
            raise RowError(key, "Unknown field.")
        if name in values:  # the field and its alias: which one was meant?
            raise RowError(key, f"An alias of {name}: give one of them.")
        values[name] = _measurement(raw, name)
    ts = _parse_ts(row.get("ts"), latest)
    if all(values.get(name) is None for name in MEASUREMENTS):
        raise RowError("row", "Holds no measurement.")
    return (passport_id, ts, *(values.get(name) for name in MEASUREMENTS))


_SAMPLE_WORDS = BatchWords(
    noun="sample",
    max_rows_key="maxReadings",
    repeat_message="Repeats an earlier sample's time with other values.",
)
_SAMPLE_KEY = itemgetter(1)  # ts: a passport's sample is unique by it


def telemetry_validate(*, passport_id: int, rows: Any) -> tuple[list[tuple], int]:
    """The batch of samples checked by ``bpmos.batch.batch_validate``: the rows
    to store and how many repeat within the batch (400 naming each bad row)."""
    latest = timezone.now() + FUTURE_TOLERANCE
    return batch_validate(
        rows=rows,
        check_row=lambda row: _check_row(row, passport_id, latest),
        key=_SAMPLE_KEY,
        words=_SAMPLE_WORDS,
        max_rows=MAX_BATCH,
    )


# --- storing ---------------------------------------------------------------------


_SAMPLES = BulkTarget(
    table=TelemetryReading._meta.db_table,
    columns=_COLUMNS,
    copy_types=("int8", "timestamptz", *["float8"] * len(MEASUREMENTS)),
    conflict=("passport_id", "ts"),
)


def _store(rows: list[tuple], *, model: str) -> list[tuple]:
    """COPY (or one INSERT a row on SQLite), skipping samples already stored,
    and add what was new to the model's hourly roll-ups (one upsert). Returns
    the new rows."""
    new = _SAMPLES.store_new(rows)
    rollups.telemetry_hours_add(model=model, samples=(row[1:5] for row in new))
    return new


def _latest_values(passport_id: int) -> dict[str, Any]:
    """Each summary field's newest non-null value, and the newest sample's time."""
    readings = TelemetryReading.objects.filter(passport_id=passport_id)
    latest: dict[str, Any] = {
        "telemetry_at": readings.aggregate(at=Max("ts"))["at"],
    }
    for column in _SUMMARY_FIELDS:
        latest[column] = (
            readings.filter(**{f"{column}__isnull": False})
            .order_by("-ts")
            .values_list(column, flat=True)
            .first()
        )
    return latest


@transaction.atomic
def telemetry_ingest(*, passport_id: int, rows: Any, actor: Any) -> IngestResult:
    """Store a batch of a pack's BMS samples; skip what is already stored.

    ``rows`` is a list of ``{ts, sohPercent?, socPercent?, temperatureC?,
    voltageV?, currentA?}`` (the model's snake_case names are accepted too).
    The whole batch is checked first (400 naming the row index and field;
    nothing stored). Only packs carry a BMS (409 ``telemetry_packs_only``).
    The passport's summary becomes each measurement's newest value by ``ts``
    (a late batch of older samples does not overwrite newer ones). One audit
    record per batch; nothing is appended to the ledger (module docstring).
    """
    checked, _repeats = telemetry_validate(passport_id=passport_id, rows=rows)
    passport = ledger.lock_passport(passport_id)
    if passport.kind != Kind.PACK:
        raise Conflict(
            f"{passport} has no BMS; telemetry is recorded for packs.",
            code="telemetry_packs_only",
            details={"kind": passport.kind},
        )
    new = _store(checked, model=passport.model)
    accepted = len(new)
    # The usage summary (cycles, throughput, extremes, events): the new
    # samples folded into the pack's running state (passports.dynamic).
    usage = dynamic.usage_add(passport, (row[1:] for row in new))
    before = {name: getattr(passport, name) for name in (*_SUMMARY_FIELDS,)}
    before["telemetry_at"] = passport.telemetry_at
    after = _latest_values(passport.pk) if accepted else before
    if after != before:
        for name, value in after.items():
            setattr(passport, name, value)
        # Not the ledger's projection: ``updated_at`` and ``version`` stay.
        Passport.objects.filter(pk=passport.pk).update(**after)
    times = [row[1] for row in checked]
    audit.record(
        actor=actor,
        action="passport.telemetry_ingested",
        target=passport,
        before=before if after != before else None,
        after={
            "accepted": accepted,
            "duplicates": len(rows) - accepted,
            "firstTs": min(times),
            "lastTs": max(times),
            **({"summary": after} if after != before else {}),
            **({"usage": usage} if usage else {}),
        },
    )
    return {"accepted": accepted, "duplicates": len(rows) - accepted}


# --- summary -----------------------------------------------------------------------


def _round(value: float | None, places: int = 2) -> float | None:
    return None if value is None else round(value, places)


def telemetry_summary(
    passport: Passport, *, days: int = TREND_DAYS, now: datetime | None = None
) -> dict[str, Any]:
    """Latest values and daily trends of the last ``days`` days (UTC days).

    ``daily``: per day with samples, the number of samples, mean SoH and SoC,
    lowest and highest temperature (all computed in SQL); ``sohChange`` is the
    last day's mean SoH minus the first day's in the window (None with fewer
    than two days that report SoH). camelCase, as the API returns it.
    """
    now = now or timezone.now()
    since = (now - timedelta(days=days - 1)).astimezone(UTC)
    since = since.replace(hour=0, minute=0, second=0, microsecond=0)
    readings = TelemetryReading.objects.filter(passport=passport)
    totals = readings.aggregate(count=Count("id"), first=Min("ts"), last=Max("ts"))
    rows = (
        readings.filter(ts__gte=since, ts__lte=now)
        .annotate(day=TruncDate("ts", tzinfo=UTC))
        .values("day")
        .annotate(
            readings=Count("id"),
            soh=Avg("soh_percent"),
            soc=Avg("soc_percent"),
            tmin=Min("temperature_c"),
            tmax=Max("temperature_c"),
        )
        .order_by("day")
    )
    daily = [
        {
            "day": row["day"].isoformat(),
            "readings": row["readings"],
            "sohAvg": _round(row["soh"]),
            "socAvg": _round(row["soc"]),
            "temperatureMin": _round(row["tmin"]),
            "temperatureMax": _round(row["tmax"]),
        }
        for row in rows
    ]
    soh_days = [day["sohAvg"] for day in daily if day["sohAvg"] is not None]
    return {
        "latest": {
            "sohPercent": passport.soh_percent,
            "socPercent": passport.soc_percent,
            "temperatureC": passport.temperature_c,
            "at": passport.telemetry_at,
        },
        "readings": totals["count"],
        "firstAt": totals["first"],
        "lastAt": totals["last"],
        "days": days,
        "daily": daily,
        "sohChange": (
            _round(soh_days[-1] - soh_days[0]) if len(soh_days) >= 2 else None
        ),
    }
