"""Roll-ups of the dashboards' passport trends: small tables the trends read
instead of the raw rows (docs/dashboards.md, "Trends: the roll-up tables").

* ``TelemetryModelHour``: per battery model and UTC hour, for SoH, SoC and
  temperature the exact sum, number, lowest and highest of the samples.
  ``telemetry_hours_add`` adds the samples a batch stored, in the batch's
  transaction, with one upsert (``INSERT ... ON CONFLICT (model, hour) DO
  UPDATE SET sum = sum + excluded.sum, ...``, accepted by PostgreSQL and
  SQLite alike). Two batches for the same model-hour at once both count: the
  second waits on the first's row lock, then adds to its committed row.
* ``FirstQaResult`` and ``FirstQaHour``: a passport's first QA result and
  per hour and passport kind how many first results there were and passed.
  ``first_qa_record`` writes both in ``ledger.append``'s transaction (the
  passport row locked) when the passport gets its first ``qa_passed`` or
  ``qa_failed`` event; later results change nothing.
* ``CustodyUnitCount``: per custodian kind, the batteries that are units
  (not assembled into another): the dashboards' Custody Mix.
  ``custody_units_add`` moves the counts in the transaction of the change
  that moves them: ``services.passport_register`` (+1), ``ledger.append``
  when an event changes a unit's custodian (-1, +1),
  ``services.passport_assemble`` when a battery goes into another (-1),
  ``secondlife.passport_second_life`` when a battery's passport is superseded
  by its successor's (-1 for the old: one physical battery, counted once, as
  its successor), and ``Passport.objects.bulk_create`` (benches, fixtures).
  One upsert, as the hours; ``custody_units_rebuild`` recounts them (the data
  migrations).
* ``rebuild``: both from the raw rows, in batches (the data migration, and the
  benches after they load rows by COPY).

A battery's model and kind never change after registration, so a sample or a
result stays in the row it was added to.

Lock order: every custody count is moved while the audit chain's lock is
held (after the change's audit record), so a transaction that moves several
kinds' rows cannot wait in a cycle with one waiting for that lock.

``ledger.append`` upserts the hour row before its audit record
takes the audit chain's lock, so single appends never wait in a cycle. A
service that appended QA results to several passports in one transaction
would take an hour row after holding the audit lock; none does (the LIMS
applies each result in its own transaction). One that must should record its
results in hour order and expect PostgreSQL to break a rare deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.apps import apps as installed_apps
from django.db import connection
from django.db.models import Count, DecimalField, F, Max, Min, Sum
from django.db.models.functions import Cast, Trunc

from bpmos.bulk import upsert_add
from passports.models import (
    ROLLUP_SUM,
    CustodianKind,
    CustodyUnitCount,
    EventKind,
    FirstQaHour,
    FirstQaResult,
    Passport,
    PassportEvent,
    State,
    TelemetryModelHour,
)

# Roll-up metric -> the ``TelemetryReading`` column it sums.
TELEMETRY_COLUMNS = {
    "soh": "soh_percent",
    "soc": "soc_percent",
    "temperature": "temperature_c",
}
QA_RESULTS = (EventKind.QA_PASSED, EventKind.QA_FAILED)
PLACES = Decimal(1).scaleb(-ROLLUP_SUM["decimal_places"])


def hour_floor(moment: datetime) -> datetime:
    """The start of the UTC hour holding ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def sample_decimal(value: float) -> Decimal:
    """A sample as the roll-up sums it: its shortest decimal form to six places
    (as PostgreSQL casts ``float8`` to ``numeric``)."""
    return Decimal(repr(value)).quantize(PLACES)


def _sum_field() -> DecimalField:
    return DecimalField(
        max_digits=ROLLUP_SUM["max_digits"],
        decimal_places=ROLLUP_SUM["decimal_places"],
    )


def sample_sum(column: str) -> Sum:
    """The exact sum of a ``TelemetryReading`` column in the database."""
    return Sum(Cast(column, _sum_field()), output_field=_sum_field())


# --- telemetry ----------------------------------------------------------------------


def _telemetry_upsert_sql() -> str:
    table = TelemetryModelHour._meta.db_table
    names = ["model", "hour", "last_ts"]
    updates = [
        f"last_ts = CASE WHEN excluded.last_ts > {table}.last_ts "
        f"THEN excluded.last_ts ELSE {table}.last_ts END"
    ]
    for metric in TELEMETRY_COLUMNS:
        low, high = f"{metric}_min", f"{metric}_max"
        names += [f"{metric}_sum", f"{metric}_count", low, high]
        updates += [
            f"{metric}_sum = {table}.{metric}_sum + excluded.{metric}_sum",
            f"{metric}_count = {table}.{metric}_count + excluded.{metric}_count",
            # LEAST/GREATEST are PostgreSQL's and SQLite's min/max return null
            # on a null; a CASE means the same on both.
            f"{low} = CASE WHEN {table}.{low} IS NULL OR excluded.{low} < "
            f"{table}.{low} THEN excluded.{low} ELSE {table}.{low} END",
            f"{high} = CASE WHEN {table}.{high} IS NULL OR excluded.{high} > "
            f"{table}.{high} THEN excluded.{high} ELSE {table}.{high} END",
        ]
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES {{values}} "
        f"ON CONFLICT (model, hour) DO UPDATE SET {', '.join(updates)}"
    )


_TELEMETRY_UPSERT = _telemetry_upsert_sql()
_TELEMETRY_WIDTH = 3 + 4 * len(TELEMETRY_COLUMNS)


def telemetry_hours_add(*, model: str, samples: Iterable[tuple]) -> int:
    """Add ``samples`` of battery ``model`` that were just stored (``(ts, soh,
    soc, temperature)``, None where a sample has no value) to their hours'
    roll-ups, in the caller's transaction: one statement. Returns the number
    of hours touched."""
    hours: dict[datetime, list] = {}
    last: dict[datetime, datetime] = {}
    for ts, *values in samples:
        hour = hour_floor(ts)
        into = hours.get(hour)
        if into is None:
            into = hours[hour] = [[Decimal(0), 0, None, None] for _ in values]
            last[hour] = ts
        elif ts > last[hour]:
            last[hour] = ts
        for figures, value in zip(into, values, strict=True):
            if value is None:
                continue
            figures[0] += sample_decimal(value)
            figures[1] += 1
            if figures[2] is None or value < figures[2]:
                figures[2] = value
            if figures[3] is None or value > figures[3]:
                figures[3] = value
    if not hours:
        return 0
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for hour, figures in sorted(hours.items()):  # one lock order for every writer
        params += [model, adapt(hour), adapt(last[hour])]
        for total, count, low, high in figures:
            params += [adapt_decimal(total), count, low, high]
    marks = "(" + ", ".join(["%s"] * _TELEMETRY_WIDTH) + ")"
    sql = _TELEMETRY_UPSERT.format(values=", ".join([marks] * len(hours)))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    return len(hours)


def adapt_decimal(value: Decimal):
    """A sum as the connection stores it."""
    return connection.ops.adapt_decimalfield_value(
        value, ROLLUP_SUM["max_digits"], ROLLUP_SUM["decimal_places"]
    )


# --- first QA results ---------------------------------------------------------------


def _qa_hours_add(counts: dict[tuple[datetime, str], list[int]]) -> None:
    """Add (tested, passed) per (hour, passport kind): one upsert
    (``bpmos.bulk.upsert_add``), nothing when there is nothing to add."""
    adapt = connection.ops.adapt_datetimefield_value
    upsert_add(
        FirstQaHour,
        ("hour", "kind"),
        ("tested", "passed"),
        {(adapt(hour), kind): tally for (hour, kind), tally in counts.items()},
    )


def first_qa_record(*, passport: Passport, event: PassportEvent) -> bool:
    """Record ``event`` (a ``qa_passed``/``qa_failed`` just appended, the
    passport row locked by ``ledger.append``) as the passport's first QA
    result unless it has one; True when it was the first. One query for a
    later result (the check), three for a first one."""
    if FirstQaResult.objects.filter(passport_id=passport.pk).exists():
        return False
    passed = event.kind == EventKind.QA_PASSED
    FirstQaResult.objects.create(
        passport_id=passport.pk,
        occurred_at=event.occurred_at,
        passed=passed,
        kind=passport.kind,
    )
    _qa_hours_add({(hour_floor(event.occurred_at), passport.kind): [1, int(passed)]})
    return True


def first_qa_refresh(*, passport_ids: Iterable[int]) -> int:
    """Recompute the first QA results of ``passport_ids`` from their ledgers
    and move the hourly counts with them: for ledger rows written in bulk
    (``PassportEvent.objects.bulk_create``: benches, fixtures) rather than by
    ``ledger.append``. Four queries at most; returns the first results kept."""
    ids = sorted(set(passport_ids))
    if not ids:
        return 0
    counts: dict[tuple[datetime, str], list[int]] = {}
    old = FirstQaResult.objects.filter(passport_id__in=ids)
    for occurred_at, passed, kind in old.values_list("occurred_at", "passed", "kind"):
        tally = counts.setdefault((hour_floor(occurred_at), kind), [0, 0])
        tally[0] -= 1
        tally[1] -= int(passed)
    old.delete()
    first: dict[int, tuple] = {}
    for passport_id, event_kind, occurred_at, kind in (
        PassportEvent.objects.filter(passport_id__in=ids, kind__in=QA_RESULTS)
        .order_by("passport_id", "version")
        .values_list("passport_id", "kind", "occurred_at", "passport__kind")
    ):
        first.setdefault(passport_id, (event_kind, occurred_at, kind))
    rows = []
    for passport_id, (event_kind, occurred_at, kind) in first.items():
        passed = event_kind == EventKind.QA_PASSED
        rows.append(
            FirstQaResult(
                passport_id=passport_id,
                occurred_at=occurred_at,
                passed=passed,
                kind=kind,
            )
        )
        tally = counts.setdefault((hour_floor(occurred_at), kind), [0, 0])
        tally[0] += 1
        tally[1] += int(passed)
    FirstQaResult.objects.bulk_create(rows, batch_size=2000)
    _qa_hours_add({key: tally for key, tally in counts.items() if any(tally)})
    return len(rows)


# --- custody of the units ------------------------------------------------------------


def custody_units_of(passports: Iterable[Passport]) -> dict[str, int]:
    """How many of ``passports`` are units (no parent, not superseded by a
    second life's passport), per custodian kind."""
    counts: dict[str, int] = {}
    for passport in passports:
        if passport.parent_id is None and passport.state != State.SUPERSEDED:
            kind = passport.custodian_kind
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def custody_units_add(deltas: Mapping[str, int]) -> None:
    """Add ``deltas`` (custodian kind -> units, negative to take away) to the
    custody counts, in the caller's transaction: one upsert, nothing when
    every delta is 0. Callers hold the audit chain's lock (module docstring)."""
    upsert_add(
        CustodyUnitCount,
        ("custodian_kind",),
        ("units",),
        {kind: (n,) for kind, n in deltas.items()},
    )


def custody_units_rebuild(*, models=None) -> dict[str, int]:
    """The custody counts recounted from the passports, replacing what was
    there (every kind gets a row, 0 included). ``models``: the migration's
    app registry (default: the installed models). Run it in a transaction or
    with no writer about. Returns the counts."""
    models = models or installed_apps
    counts = models.get_model("passports", "CustodyUnitCount")
    found = dict(
        models.get_model("passports", "Passport")
        .objects.filter(parent__isnull=True)
        .exclude(state=State.SUPERSEDED)
        .order_by()
        .values("custodian_kind")
        .annotate(n=Count("pk"))
        .values_list("custodian_kind", "n")
    )
    totals = {kind: found.pop(kind, 0) for kind in CustodianKind.values} | found
    counts.objects.all().delete()
    counts.objects.bulk_create(
        counts(custodian_kind=kind, units=n) for kind, n in totals.items()
    )
    return totals


# --- rebuild ------------------------------------------------------------------------

# The rebuild's batches: days of telemetry, passports of the ledger.
REBUILD_DAYS = 7
REBUILD_PASSPORTS = 5000


def _rebuild_telemetry(models, days: int) -> int:
    readings = models.get_model("passports", "TelemetryReading").objects
    hours = models.get_model("passports", "TelemetryModelHour")
    span = readings.aggregate(first=Min("ts"), last=Max("ts"))
    if span["first"] is None:
        return 0
    aggregates = {"last_ts": Max("ts")}
    for metric, column in TELEMETRY_COLUMNS.items():
        aggregates |= {
            f"{metric}_sum": sample_sum(column),
            f"{metric}_count": Count(column),
            f"{metric}_min": Min(column),
            f"{metric}_max": Max(column),
        }
    start, made = hour_floor(span["first"]), 0
    while start <= span["last"]:
        end = start + timedelta(days=days)
        rows = (
            readings.filter(ts__gte=start, ts__lt=end)
            .annotate(
                model_code=F("passport__model"),
                hour_start=Trunc("ts", "hour", tzinfo=UTC),
            )
            .order_by()
            .values("model_code", "hour_start")
            .annotate(**aggregates)
        )
        batch = [
            hours(
                model=row.pop("model_code"),
                hour=row.pop("hour_start"),
                **{
                    name: (value or Decimal(0)) if name.endswith("_sum") else value
                    for name, value in row.items()
                },
            )
            for row in rows
        ]
        hours.objects.bulk_create(batch, batch_size=2000)
        made += len(batch)
        start = end
    return made


def _rebuild_first_qa(models, passports: int) -> int:
    """Each passport's lowest-version QA result, ``passports`` at a time (by
    id); no DISTINCT ON, so the same on both engines."""
    events = models.get_model("passports", "PassportEvent").objects
    results = models.get_model("passports", "FirstQaResult")
    hours = models.get_model("passports", "FirstQaHour")
    batteries = models.get_model("passports", "Passport").objects
    ids = list(
        events.filter(kind__in=QA_RESULTS)
        .order_by("passport_id")
        .values_list("passport_id", flat=True)
        .distinct()
    )
    counts: dict[tuple[datetime, str], list[int]] = {}
    made = 0
    for at in range(0, len(ids), passports):
        chunk = ids[at : at + passports]
        kinds = dict(batteries.filter(pk__in=chunk).values_list("pk", "kind"))
        first: dict[int, tuple] = {}
        for passport_id, kind, occurred_at in (
            events.filter(passport_id__in=chunk, kind__in=QA_RESULTS)
            .order_by("passport_id", "version")
            .values_list("passport_id", "kind", "occurred_at")
        ):
            first.setdefault(passport_id, (kind, occurred_at))
        rows = []
        for passport_id, (kind, occurred_at) in first.items():
            passed = kind == EventKind.QA_PASSED
            battery_kind = kinds[passport_id]
            rows.append(
                results(
                    passport_id=passport_id,
                    occurred_at=occurred_at,
                    passed=passed,
                    kind=battery_kind,
                )
            )
            tally = counts.setdefault((hour_floor(occurred_at), battery_kind), [0, 0])
            tally[0] += 1
            tally[1] += int(passed)
        results.objects.bulk_create(rows, batch_size=2000)
        made += len(rows)
    hours.objects.bulk_create(
        [
            hours(hour=hour, kind=kind, tested=tested, passed=passed)
            for (hour, kind), (tested, passed) in sorted(counts.items())
        ],
        batch_size=2000,
    )
    return made


def rebuild(
    *, models=None, days: int = REBUILD_DAYS, passports: int = REBUILD_PASSPORTS
) -> dict[str, int]:
    """Both roll-ups from the raw rows, replacing what was there: the
    telemetry ``days`` at a time, the first QA results ``passports`` at a
    time. ``models``: the migration's app registry (default: the installed
    models). Run it in a transaction (the migration's) or with no writer about
    (a bench after loading by COPY). Returns the rows made per table."""
    models = models or installed_apps
    for name in ("TelemetryModelHour", "FirstQaHour", "FirstQaResult"):
        models.get_model("passports", name).objects.all().delete()
    return {
        "telemetryModelHours": _rebuild_telemetry(models, days),
        "firstQaResults": _rebuild_first_qa(models, passports),
        "firstQaHours": models.get_model("passports", "FirstQaHour").objects.count(),
    }
