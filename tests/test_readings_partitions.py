"""Machine readings partitioned by month on PostgreSQL (lines 0007,
``lines.partitions``; docs/lines.md "Partitions"): invisible to the API,
created ahead by beat, readings of any allowed time stored, retention by whole
months only, roll-ups equal to raw readings across partitions. SQLite keeps a
plain table (the API tests here run on both engines)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bpmos.celery import app as celery_app
from elog.models import AuditRecord
from lines import oee, partitions, services
from lines.models import MachineHour, MachineReading
from lines.tasks import readings_partitions_maintain_task
from tests.conftest import bearer
from tests.factories_lines import ingest, iso, machine, make_line, row_counts

pytestmark = pytest.mark.django_db(transaction=True)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite keeps a plain table"
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _partitions_put_back():
    """Partitions are DDL, which the flush between tests does not undo: drop
    what a test created or detached, so the next test sees the migration's."""
    before = {p.name for p in partitions.readings_partitions()}
    yield
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE %s AND relkind = 'r'",
            [f"{partitions.TABLE}\\_y%"],
        )
        names = {row[0] for row in cursor.fetchall()}
        for name in sorted(names - before):
            cursor.execute(f"DROP TABLE {name}")


@pytest.fixture
def weld():
    return machine(make_line(), "st-02")


def day_of_readings(target, start: datetime, hours: int) -> list[dict]:
    """A state change every 2 h and a good count every 10 min from ``start``."""
    rows = []
    for step in range(hours * 6):
        when = start + timedelta(minutes=10 * step)
        if step % 12 == 0:
            code = "running" if step % 24 == 0 else "down"
            rows.append({"tag": "state", "ts": iso(when), "value": code})
        rows.append({"tag": "good_count", "ts": iso(when), "value": 2})
    return rows


def where_stored(target) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text, count(*) FROM {partitions.TABLE} "
            "WHERE machine_id = %s GROUP BY 1",
            [target.pk],
        )
        return dict(cursor.fetchall())


@postgresql_only
def test_the_table_is_partitioned_with_the_current_month_ahead_and_a_default():
    assert partitions.is_partitioned()
    now = timezone.now()
    starts = [p.start for p in partitions.readings_partitions()]
    for plus in range(4):  # the migration's AHEAD = 3
        assert partitions.month_start(now, plus) in starts
    created = partitions.readings_partitions_ensure(now=utc(2026, 1, 15), ahead=2)
    assert created == [
        f"{partitions.TABLE}_y2026m01",
        f"{partitions.TABLE}_y2026m02",
        f"{partitions.TABLE}_y2026m03",
    ]
    assert partitions.readings_partitions_ensure(now=utc(2026, 1, 15), ahead=2) == []
    record = AuditRecord.objects.get(action="readings.partitions_created")
    assert record.after == {"partitions": created}


@postgresql_only
def test_partitions_are_invisible_to_the_api(http, weld, make_user):
    viewer = bearer(make_user("plant-head"))
    rows = day_of_readings(weld, utc(2026, 2, 27, 20), 36)  # over 1 March
    assert ingest(weld, rows)["accepted"] == len(rows)
    assert set(where_stored(weld)) == {partitions.DEFAULT}
    window = {"from": "2026-02-28T00:00:00Z", "to": "2026-03-01T12:00:00Z"}

    def seen():
        answer = http.get("/api/lines/line-a/oee", params=window, headers=viewer)
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        del payload["computedAt"]  # the time of the request
        stored = list(
            MachineReading.objects.filter(machine=weld)
            .order_by("tag", "ts")
            .values_list("id", "tag", "ts", "value", "text")
        )
        return payload, stored

    before = seen()
    # The months get their partitions: their readings move out of the default.
    partitions.readings_partitions_ensure(now=utc(2026, 2, 1), ahead=1)
    february = sum(1 for row in rows if row["ts"] < "2026-03-01")
    assert where_stored(weld) == {
        f"{partitions.TABLE}_y2026m02": february,
        f"{partitions.TABLE}_y2026m03": len(rows) - february,
    }
    assert seen() == before
    # A re-send across both partitions stores nothing twice.
    assert ingest(weld, rows) == {"accepted": 0, "duplicates": len(rows)}
    assert seen() == before


def test_a_reading_from_long_ago_is_stored_and_one_from_the_future_refused(
    http, weld, make_user
):
    gateway = bearer(make_user("operator", username="scada-gateway"))
    url = f"/api/machines/{weld.pk}/readings"
    old = {"tag": "temperature", "ts": "2001-01-01T00:00:00Z", "value": 20.5}
    answer = http.post(url, json=[old], headers=gateway)
    assert answer.status_code == 201, answer.text
    stored = MachineReading.objects.get(machine=weld)
    assert (stored.ts, stored.value) == (utc(2001, 1, 1), 20.5)
    if connection.vendor == "postgresql":
        assert where_stored(weld) == {partitions.DEFAULT: 1}
    counts = row_counts()
    ahead = iso(timezone.now() + timedelta(days=40))
    answer = http.post(
        url, json=[{"tag": "temperature", "ts": ahead, "value": 1}], headers=gateway
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False
    assert body["details"]["rows"] == {"0": {"ts": ["Is in the future."]}}
    assert row_counts() == counts


@postgresql_only
def test_retention_drops_only_whole_months_past_the_setting(weld):
    partitions.readings_partitions_ensure(now=utc(2026, 1, 15), ahead=3)
    times = [
        utc(2025, 12, 31, 23, 59),  # default partition
        utc(2026, 1, 31, 23, 59),
        utc(2026, 2, 1, 0, 0),
        utc(2026, 3, 10),
        utc(2026, 4, 10),
    ]
    ingest(weld, [{"tag": "temperature", "ts": iso(t), "value": 1.0} for t in times])

    def stored():
        return sorted(MachineReading.objects.values_list("ts", flat=True))

    # 2 months back from 20 April is 20 February: only January ended before.
    assert partitions.readings_partitions_retire(now=utc(2026, 4, 20), months=0) == []
    retired = partitions.readings_partitions_retire(now=utc(2026, 4, 20), months=2)
    assert retired == [f"{partitions.TABLE}_y2026m01"]
    assert stored() == [times[0], *times[2:]]
    record = AuditRecord.objects.get(action="readings.partitions_dropped")
    assert record.before == {"partitions": retired}
    # Detached, a month stays a table of its own, out of every read.
    retired = partitions.readings_partitions_retire(
        now=utc(2026, 5, 20), months=2, detach=True
    )
    assert retired == [f"{partitions.TABLE}_y2026m02"]
    assert stored() == [times[0], *times[3:]]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ts FROM {partitions.TABLE}_y2026m02")
        assert [row[0] for row in cursor.fetchall()] == [times[2]]
    assert partitions.default_rows() == 1  # never touched by retention


@postgresql_only
def test_roll_ups_equal_raw_readings_across_partitions(weld):
    partitions.readings_partitions_ensure(now=utc(2026, 2, 1), ahead=1)
    rows = day_of_readings(weld, utc(2026, 2, 28, 18), 12)
    ingest(weld, rows)
    assert len(where_stored(weld)) == 2
    written = services.machine_hours_refresh(now=utc(2026, 3, 2))
    assert written > 0
    raw = oee.machine_hours(weld.pk, utc(2026, 2, 28, 18), utc(2026, 3, 2))
    stored = {
        row.hour: row
        for row in MachineHour.objects.filter(machine=weld, is_stale=False)
    }
    assert set(stored) == set(raw)
    for hour, inputs in raw.items():
        for field, value in inputs.as_row_fields().items():
            assert getattr(stored[hour], field) == value, (hour, field)


def test_beat_runs_the_maintenance(settings):
    schedule = celery_app.conf.beat_schedule["readings-partitions-maintain"]
    assert schedule["task"] == "lines.tasks.readings_partitions_maintain_task"
    settings.BPMOS_READINGS_RETENTION_MONTHS = 0
    result = readings_partitions_maintain_task()
    assert result == {"created": [], "retired": []}  # the migration made them


@postgresql_only
def test_the_command_creates_ahead_and_lists(capsys):
    call_command("readings_partitions", "--ahead", "5")
    out = capsys.readouterr().out
    fourth, fifth = (
        partitions.partition_name(partitions.month_start(timezone.now(), plus))
        for plus in (4, 5)
    )
    assert f"created: {fourth}, {fifth}" in out
    assert f"{partitions.DEFAULT}  (default: 0 readings)" in out


@postgresql_only
def test_a_window_read_touches_only_the_months_it_covers(weld):
    partitions.readings_partitions_ensure(now=utc(2026, 1, 15), ahead=3)
    window = MachineReading.objects.filter(
        machine=weld, tag="state", ts__gte=utc(2026, 2, 3), ts__lt=utc(2026, 2, 4)
    )
    plan = window.explain()
    assert f"{partitions.TABLE}_y2026m02" in plan
    for other in ("y2026m01", "y2026m03", "y2026m04", "default"):
        assert f"{partitions.TABLE}_{other}" not in plan
