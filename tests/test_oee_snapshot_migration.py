"""The data migration that bounds OEE snapshots stored before APT was bounded
by planned busy time (lines/migrations/0004_bound_stored_oee_snapshots.py,
docs/oee.md): no stored snapshot above 100 % afterwards, rows already bounded
untouched, a line's APT the sum of its stations'."""

from __future__ import annotations

from decimal import Decimal
from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from lines import services
from lines.models import OEESnapshot, Station
from tests.factories_lines import at, ingest, machine, make_line, state

migration = import_module("lines.migrations.0004_bound_stored_oee_snapshots")
FACTORS = ("availability", "performance", "quality", "oee")


def _old_row(line, station, **inputs) -> OEESnapshot:
    """A snapshot as the unbounded code stored it: run time, not APT, and the
    factors computed from it (Availability = run / PBT)."""
    return OEESnapshot.objects.create(
        line=line,
        station=station,
        window_start=at(6),
        window_end=at(7),
        shift_end=at(14),
        computed_at=at(7),
        **inputs,
    )


@pytest.mark.django_db
def test_old_snapshots_are_bounded_and_new_ones_left_alone():
    line = make_line(slug="line-m")  # two stations, one machine each
    weld = Station.objects.get(line=line, slug="st-02")
    # Shift 06:00-07:00 with 10 % planned downtime: PBT 3,240 s per machine.
    # Cell Load ran the whole hour (run 3,600 s): stored 111.1 %.
    load = _old_row(
        line,
        Station.objects.get(line=line, slug="st-01"),
        planned_busy_seconds=3240,
        run_seconds=3600,
        ideal_seconds=3000,  # 300 pieces of 10 s
        good_count=290,
        reject_count=10,
        availability=Decimal("111.1"),
        performance=Decimal("83.3"),
        quality=Decimal("96.7"),
        oee=Decimal("89.5"),
    )
    # Weld ran half of it: bounded already, stored as the code stores it now.
    weld_row = _old_row(
        line,
        weld,
        planned_busy_seconds=3240,
        run_seconds=1800,
        ideal_seconds=1800,
        good_count=90,
        reject_count=0,
        availability=Decimal("55.6"),
        performance=Decimal("100.0"),
        quality=Decimal("100.0"),
        oee=Decimal("55.6"),
    )
    # The line: raw run summed (5,400 s of 6,480 s) hides nothing above 100 %,
    # but its APT is the stations' APTs: 3,240 + 1,800 = 5,040 s.
    line_row = _old_row(
        line,
        None,
        planned_busy_seconds=6480,
        run_seconds=5400,
        ideal_seconds=4800,
        good_count=380,
        reject_count=10,
        availability=Decimal("83.3"),
        performance=Decimal("88.9"),
        quality=Decimal("97.4"),
        oee=Decimal("72.2"),
    )
    before = {f: getattr(weld_row, f) for f in (*FACTORS, "run_seconds")}

    assert migration.bound_snapshots(OEESnapshot) == 2

    load.refresh_from_db()
    assert load.run_seconds == 3240
    assert load.availability == Decimal("100.0")
    assert load.performance == Decimal("92.6")  # 3,000 / 3,240
    assert load.quality == Decimal("96.7")
    assert load.oee == Decimal("89.5")  # 1 x 0.926 x 0.967
    weld_row.refresh_from_db()
    assert {f: getattr(weld_row, f) for f in before} == before
    line_row.refresh_from_db()
    assert line_row.run_seconds == 5040
    assert line_row.availability == Decimal("77.8")  # 5,040 / 6,480
    assert line_row.performance == Decimal("95.2")  # 4,800 / 5,040
    for row in OEESnapshot.objects.all():
        for name in FACTORS:
            value = getattr(row, name)
            assert value is None or value <= 100, (row, name)
    # A second run finds nothing to change.
    assert migration.bound_snapshots(OEESnapshot) == 0


@pytest.mark.django_db
def test_snapshots_the_code_stores_now_are_left_exactly_as_they_are():
    line = make_line(slug="line-n")
    line.planned_downtime_minutes = 48
    line.save()
    ingest(machine(line, "st-01"), [state(at(5), "running")])
    ingest(machine(line, "st-02"), [state(at(5), "running"), state(at(6, 20), "down")])
    services.oee_snapshots_refresh(now=at(7))
    stored = list(OEESnapshot.objects.values())
    assert stored
    assert migration.bound_snapshots(OEESnapshot) == 0
    assert list(OEESnapshot.objects.values()) == stored


@pytest.mark.django_db
def test_the_migration_runs_on_the_historical_model():
    line = make_line(slug="line-o")
    station = Station.objects.get(line=line, slug="st-01")
    _old_row(
        line,
        station,
        planned_busy_seconds=100,
        run_seconds=250,
        ideal_seconds=0,
        good_count=0,
        reject_count=0,
        availability=Decimal("250.0"),
        performance=None,
        quality=None,
        oee=None,
    )
    name = ("lines", "0004_bound_stored_oee_snapshots")
    migration.forwards(MigrationLoader(connection).project_state(name).apps, None)
    row = OEESnapshot.objects.get(station=station)
    # APT 100 s of 100 s planned; no pieces: Performance 0, so OEE 0.
    assert (row.run_seconds, row.availability) == (100, Decimal("100.0"))
    assert (row.performance, row.quality, row.oee) == (Decimal(0), None, Decimal(0))
