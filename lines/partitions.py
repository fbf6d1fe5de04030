"""The month partitions of machine readings on PostgreSQL (docs/lines.md,
"Partitions"): created ahead, and old whole months dropped or detached by the
retention setting. The one place these rules live; beat
(``readings-partitions-maintain``) and ``manage.py readings_partitions`` call
it.

``lines_machinereading`` is partitioned by RANGE (ts) (migration lines 0007):
one partition per UTC month, ``lines_machinereading_y2026m12``, and a DEFAULT
partition for readings no month partition holds (older than the oldest one,
or a month beat has not created yet). Creating a month whose readings already
sit in the DEFAULT partition moves them into it first, in the same
transaction, so no reading is ever refused for want of a partition.

SQLite keeps a plain table: every function here does nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from elog import audit
from lines.models import MachineReading

TABLE = MachineReading._meta.db_table
DEFAULT = f"{TABLE}_default"
# Serialises maintenance runs (beat and the command) on one database.
_LOCK_KEY = 0x6C696E657370  # "linesp"


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime  # inclusive
    end: datetime  # exclusive


def month_start(value: datetime, plus: int = 0) -> datetime:
    """The first instant (UTC) of ``value``'s month, ``plus`` months on."""
    value = value.astimezone(UTC)
    index = value.year * 12 + value.month - 1 + plus
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{TABLE}_y{start.year:04d}m{start.month:02d}"


def is_partitioned() -> bool:
    """Whether readings are partitioned here (PostgreSQL after lines 0007)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [TABLE]
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def readings_partitions() -> list[Partition]:
    """The month partitions attached now, oldest first (not the DEFAULT one)."""
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        if bound == "DEFAULT":
            continue
        # FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')
        start, end = (part.split("'")[1] for part in bound.split(" TO "))
        found.append(
            Partition(
                name=name,
                start=datetime.fromisoformat(start).astimezone(UTC),
                end=datetime.fromisoformat(end).astimezone(UTC),
            )
        )
    return sorted(found, key=lambda partition: partition.start)


def default_rows() -> int:
    """How many readings the DEFAULT partition holds (0 when not partitioned)."""
    if not is_partitioned():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DEFAULT}")
        return cursor.fetchone()[0]


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _create(start: datetime) -> str:
    """Create the month partition starting at ``start``; readings of that month
    waiting in the DEFAULT partition move into it first (PostgreSQL refuses a
    partition whose rows the DEFAULT one holds)."""
    end = month_start(start, 1)
    name = partition_name(start)
    bounds = [start.isoformat(), end.isoformat()]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE ts >= %s AND ts < %s)",
            bounds,
        )
        if not cursor.fetchone()[0]:
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {TABLE} "
                "FOR VALUES FROM (%s) TO (%s)",
                bounds,
            )
            return name
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS); "
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE ts >= %s AND ts < %s "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            bounds,
        )
        cursor.execute(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            bounds,
        )
    return name


@transaction.atomic
def readings_partitions_ensure(
    *, now: datetime | None = None, ahead: int | None = None
) -> list[str]:
    """Create the month partitions from ``now``'s month to ``ahead`` months
    after it (``BPMOS_READINGS_PARTITIONS_AHEAD``) that do not exist yet;
    returns their names. Idempotent."""
    if not is_partitioned():
        return []
    _lock()
    ahead = settings.BPMOS_READINGS_PARTITIONS_AHEAD if ahead is None else ahead
    first = month_start(now or timezone.now())
    have = {partition.start for partition in readings_partitions()}
    created = [
        _create(month_start(first, plus))
        for plus in range(max(ahead, 0) + 1)
        if month_start(first, plus) not in have
    ]
    if created:
        audit.record(
            actor=None,
            action="readings.partitions_created",
            target_type="table",
            target_id=TABLE,
            after={"partitions": created},
        )
    return created


@transaction.atomic
def readings_partitions_retire(
    *,
    now: datetime | None = None,
    months: int | None = None,
    detach: bool | None = None,
) -> list[str]:
    """Drop (or, with ``detach``, detach and keep as a table of its own) every
    month partition whose whole month ended more than ``months`` calendar
    months before ``now`` (``BPMOS_READINGS_RETENTION_MONTHS``; 0 keeps
    everything). Only whole months go; the DEFAULT partition is never touched.
    Returns the partitions retired, oldest first; audited."""
    if not is_partitioned():
        return []
    months = settings.BPMOS_READINGS_RETENTION_MONTHS if months is None else months
    detach = settings.BPMOS_READINGS_RETENTION_DETACH if detach is None else detach
    if months <= 0:
        return []
    _lock()
    now = (now or timezone.now()).astimezone(UTC)
    index = now.year * 12 + now.month - 1 - months
    day = min(now.day, 28)  # the same day N months back (short months: the 28th)
    cutoff = now.replace(year=index // 12, month=index % 12 + 1, day=day)
    old = [p for p in readings_partitions() if p.end <= cutoff]
    with connection.cursor() as cursor:
        for partition in old:
            if detach:
                cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
            else:
                cursor.execute(f"DROP TABLE {partition.name}")
    retired = [partition.name for partition in old]
    if retired:
        audit.record(
            actor=None,
            action="readings.partitions_detached"
            if detach
            else "readings.partitions_dropped",
            target_type="table",
            target_id=TABLE,
            before={"partitions": retired},
            after={"retention_months": months, "cutoff": cutoff},
        )
    return retired


def readings_partitions_maintain(*, now: datetime | None = None) -> dict:
    """Beat's run: create ahead, then apply retention. Returns what changed."""
    return {
        "created": readings_partitions_ensure(now=now),
        "retired": readings_partitions_retire(now=now),
    }
