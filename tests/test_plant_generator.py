"""The plant generator (plant_generator, ``manage.py generate_plant``) at the
small scale: the counts its plan promises, both hash chains verify, the
genealogy is consistent, the same seed gives the same plant, and the API reads
it. PostgreSQL only: the generator writes by COPY and set-based SQL."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction

from plant_generator import builders
from plant_generator.generate import SCALES, YEAR, generate, plant_counts

needs_postgresql = pytest.mark.skipif(
    not settings.DB_IS_POSTGRES,
    reason="the plant generator needs PostgreSQL (COPY and set-based SQL)",
)

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SMALL = SCALES["small"]


@pytest.fixture(scope="module")
def small_plant(django_db_setup, django_db_blocker):
    """The small plant (seed 1, ending at END) for the module, in a
    transaction rolled back after the last test."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield generate(SMALL, seed=1, end=END, scale="small")
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def partition_records() -> int:
    from elog.models import AuditRecord

    return AuditRecord.objects.filter(action="readings.partitions_created").count()


@needs_postgresql
def test_readings_history_is_in_month_partitions(small_plant, db):
    from lines import partitions

    months = {p.start for p in partitions.readings_partitions()}
    assert partitions.month_start(END) in months  # the history's month
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT}")
        assert cursor.fetchone()[0] == 0
        # the keys the load deferred are back, with their names
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = "
            "'lines_machinereading'::regclass AND contype IN ('u', 'f') "
            "ORDER BY 1"
        )
        names = [row[0] for row in cursor.fetchall()]
    assert "machine_reading_unique" in names
    assert any(name.startswith("lines_machinereading_machine_id") for name in names)


@needs_postgresql
def test_the_load_rebuilds_every_index_it_deferred(small_plant, db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)",
            [["passports_passportevent", "elog_auditrecord", "passports_passport"]],
        )
        names = {row[0] for row in cursor.fetchall()}
    for name in (
        "passport_event_actor_trgm",
        "passport_event_log_idx",
        "passport_event_qa_idx",
        "elog_audit_text_trgm",
        "passport_serial_trgm",
        "passport_on_hold_idx",
    ):
        assert name in names, name


@needs_postgresql
def test_small_plant_holds_what_its_plan_promises(small_plant, db):
    counts = plant_counts()
    packs, _extra = builders.ledger_plan(
        passports=SMALL.passports, events=SMALL.ledger_events
    )
    assert counts["passports"] == packs * builders.GROUP == 110
    assert counts["ledger_events"] >= SMALL.ledger_events
    assert counts["readings"] == SMALL.readings  # 2,000 over 4 machines
    # the users' registrations come first in the audit chain, then the month
    # partitions of the readings' history, as beat creates them
    assert counts["audit_records"] == SMALL.audit_records + 9 + partition_records()
    for name in ("work_orders", "items", "alarms", "alarm_history", "shift_log"):
        assert counts[name] == getattr(SMALL, name), name
    assert counts["exceptions"] == SMALL.exceptions
    assert counts["telemetry"] == SMALL.telemetry
    assert counts["work_order_stages"] == SMALL.work_orders * 12  # S1..S12
    assert counts["dispatch_jobs"] == packs
    assert counts["machine_hours"] > 0
    assert small_plant.counts == counts


def test_the_scales_grow_to_a_plant_year():
    year, month, day = SCALES["year"], SCALES["month"], SCALES["day"]
    assert year is YEAR
    assert year.readings >= 10_000_000
    assert year.passports >= 100_000
    assert year.ledger_events >= 1_000_000
    assert year.audit_records >= 1_000_000
    assert year.work_orders >= 50_000
    assert year.items >= 200_000
    assert year.alarms >= 100_000
    assert year.shift_log >= 100_000
    assert (month.readings, month.passports, month.ledger_events) == (
        833_334,
        8_334,
        83_334,
    )
    assert (day.readings, day.days, month.days, year.days) == (27_398, 1, 30, 365)


@needs_postgresql
def test_both_chains_verify(small_plant, db):
    out = StringIO()
    call_command("verify_audit", stdout=out)
    records = SMALL.audit_records + 9 + partition_records()
    assert f"Audit chain intact: {records} records checked." in out.getvalue()
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    counts = plant_counts()
    assert out.getvalue().strip() == (
        f"Ledger intact: {counts['passports']} passports, "
        f"{counts['ledger_events']} events checked."
    )


@needs_postgresql
def test_genealogy_is_pack_from_modules_from_cells(small_plant, db):
    from passports.models import Passport

    packs = Passport.objects.filter(kind="pack")
    assert packs.count() == 10
    assert not packs.exclude(parent=None).exists()
    for pack in packs:
        modules = list(pack.components.all())
        assert len(modules) == builders.MODULES_PER_PACK
        for module in modules:
            assert module.kind == "module"
            assert module.state == "assembled"
            cells = list(module.components.all())
            assert len(cells) == builders.CELLS_PER_MODULE
            assert {cell.kind for cell in cells} == {"cell"}
            assert {cell.state for cell in cells} == {"assembled"}
            # the assembled event names the parent it went into
            for child, parent in [(module, pack), *((c, module) for c in cells)]:
                event = child.events.get(kind="assembled")
                assert event.data == {
                    "parent": str(parent.uuid),
                    "parentSerial": parent.serial,
                }
    assert not Passport.objects.filter(kind__in=["module", "cell"], parent=None)


@needs_postgresql
def test_packs_at_the_plant_are_on_the_dispatch_desk(small_plant, db):
    from passports.dispatch import selectors as dispatch
    from passports.models import Passport

    # 3 % of 10 packs, at least one: the newest, warehoused and live
    live = [p.serial for p in dispatch.dispatchable_list()]
    assert live == ["GEN-PACK-0000009"]
    shipped = Passport.objects.filter(kind="pack", state="in_service")
    assert shipped.count() == 9
    assert {job.state for p in shipped for job in p.dispatch_jobs.all()} == {"OFF"}


@needs_postgresql
@pytest.mark.django_db
def test_the_command_refuses_a_database_with_a_plant(small_plant):
    from django.core.management.base import CommandError

    held = r"2,000 readings, 110 passports, 40 work_orders, 200 items"
    with pytest.raises(CommandError, match=rf"already holds a plant \({held}\)"):
        call_command("generate_plant", scale="small", stdout=StringIO())
    assert plant_counts()["passports"] == 110  # nothing added


@pytest.mark.skipif(settings.DB_IS_POSTGRES, reason="the SQLite refusal")
@pytest.mark.django_db
def test_on_sqlite_the_command_refuses_and_writes_nothing():
    from django.core.management.base import CommandError

    from bpmos.accounts.models import User

    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command("generate_plant", scale="small", stdout=StringIO())
    assert not User.objects.exists()
    with pytest.raises(RuntimeError, match="needs PostgreSQL"):
        generate(SMALL)


@needs_postgresql
@pytest.mark.django_db
def test_a_duplicate_reading_fails_the_load_when_its_key_comes_back():
    from django.db import IntegrityError

    from lines.models import Line, Machine, MachineReading, Station

    line = Line.objects.create(slug="dup-line", name="Dup", position=90)
    station = Station.objects.create(
        line=line, slug="st-01", name="S", position=1, ideal_cycle_seconds=10
    )
    machine = Machine.objects.create(station=station, code="dup-m1", name="M")
    row = (machine.pk, "good_count", END, 1.0, "", "", "", "good")
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        builders.deferred_keys("lines_machinereading"),
    ):
        builders.READINGS.store([row, row])  # no unique key to refuse it
    # rolled back: no rows, and the key is there again
    assert not MachineReading.objects.filter(machine=machine).exists()
    builders.READINGS.store([row])
    assert builders.READINGS.store([row]) == 0  # a re-send is skipped
