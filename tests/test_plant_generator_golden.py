"""The plant generator's output pinned: a small plant (seed 5, a fixed end and
audit key) must store exactly the rows it stored before its load paths were
made cheaper (the passports and ledgers beside the readings in a second
process, the machine-hour roll-ups split over two), sequential or parallel.
The digests below were taken from the generator before those changes; a
change that alters what is stored changes them. PostgreSQL only, as
tests/test_plant_generator.py."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

from plant_generator.generate import SCALES, generate, plant_counts

pytestmark = pytest.mark.skipif(
    not settings.DB_IS_POSTGRES,
    reason="the plant generator needs PostgreSQL (COPY and set-based SQL)",
)

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SMALL = SCALES["small"]
KEY = override_settings(BPMOS_AUDIT_KEY="golden-plant-key", BPMOS_AUDIT_KEY_ID="g1")

# Each table's rows without the database's own ids (a foreign key by its
# natural key) and without the wall-clock times of the load (updated_at,
# created_at, computed_at). Audit records: their hashes chain after the base's
# records, stamped now, and their seq follows what the database held before
# (a flushed one or one with the migrations' records): their content is pinned
# in seq order, and the chains are verified (tests/test_plant_generator.py).
QUERIES = {
    "readings": "SELECT m.code, r.tag, r.ts, r.value, r.text, r.note, r.unit, "
    "r.quality FROM lines_machinereading r JOIN lines_machine m "
    "ON m.id = r.machine_id ORDER BY 1, 2, 3",
    "passports": "SELECT to_jsonb(p) - 'id' - 'updated_at' - 'parent_id' "
    "- 'predecessor_id', q.serial FROM passports_passport p LEFT JOIN "
    "passports_passport q ON q.id = p.parent_id ORDER BY p.serial",
    "events": "SELECT p.serial, e.version, e.kind, e.occurred_at, "
    "e.actor_username, e.data, e.prev_hash, e.hash, e.key_id "
    "FROM passports_passportevent e JOIN passports_passport p "
    "ON p.id = e.passport_id ORDER BY 1, 2",
    "audit": "SELECT occurred_at, actor_username, actor_role, action, "
    "target_type, target_id, target_repr, source, key_id FROM elog_auditrecord "
    "WHERE actor_username <> '' AND action <> 'readings.partitions_created' "
    "ORDER BY seq",
    "dispatch_jobs": "SELECT p.serial, j.state, j.reason FROM passports_dispatchjob j "
    "JOIN passports_passport p ON p.id = j.passport_id ORDER BY 1",
    "telemetry": "SELECT p.serial, t.ts, t.soh_percent, t.soc_percent, "
    "t.temperature_c, t.voltage_v, t.current_a FROM passports_telemetryreading t "
    "JOIN passports_passport p ON p.id = t.passport_id ORDER BY 1, 2",
    "work": "SELECT w.lot_no, w.status, w.planned_start, s.position, s.status, "
    "s.actual_start, s.actual_end, s.hold_reason FROM runbooks_workorderstage s "
    "JOIN runbooks_workorder w ON w.id = s.work_order_id ORDER BY 1, 4",
    "items": "SELECT code, status, quantity, batch_ref FROM inventory_item ORDER BY 1",
    "alarms": "SELECT a.timestamp, a.tag_name, a.status, h.at, h.change "
    "FROM scada_alarmhistory h JOIN scada_alarmevent a ON a.id = h.alarm_id "
    "ORDER BY 1, 2, 4, 5",
    "shift_log": "SELECT created_at, entry_type, body FROM elog_shiftlogentry "
    "ORDER BY 1",
    "exceptions": "SELECT raised_at, type, status FROM exceptions_plantexception "
    "ORDER BY 1",
    "machine_hours": "SELECT m.code, to_jsonb(h) - 'id' - 'machine_id' "
    "FROM lines_machinehour h JOIN lines_machine m ON m.id = h.machine_id "
    "ORDER BY 1, h.hour",
    "machine_days": "SELECT m.code, to_jsonb(d) - 'id' - 'machine_id' "
    "FROM lines_machineday d JOIN lines_machine m ON m.id = d.machine_id "
    "ORDER BY 1, d.day",
    "oee_snapshots": "SELECT l.slug, s.slug, to_jsonb(o) - 'id' - 'line_id' "
    "- 'station_id' - 'computed_at' FROM lines_oeesnapshot o "
    "LEFT JOIN lines_line l ON l.id = o.line_id "
    "LEFT JOIN lines_station s ON s.id = o.station_id "
    "ORDER BY 1, 2, o.window_start, o.window_end",
    "first_qa": "SELECT p.serial, r.occurred_at, r.passed, r.kind "
    "FROM passports_firstqaresult r JOIN passports_passport p "
    "ON p.id = r.passport_id ORDER BY 1",
    "first_qa_hours": "SELECT hour, kind, tested, passed FROM "
    "passports_firstqahour ORDER BY 1, 2",
    "telemetry_hours": "SELECT to_jsonb(t) - 'id' FROM "
    "passports_telemetrymodelhour t ORDER BY t.model, t.hour",
    "custody": "SELECT custodian_kind, units FROM passports_custodyunitcount "
    "ORDER BY 1",
}

# Taken from the generator before its load paths changed (sequential,
# every part in turn): sha256 of each query's rows as JSON.
GOLDEN = {
    "readings": ("a5477328c098a7fb5798cbfbbcc94958cea09e29283e18cdc493e05fc9c5d076"),
    "passports": ("4159daaf3aa7dc8431f55fe1d96ea79fec55c8cfb694e960315b8ec38d8fd20c"),
    "events": ("b4cff80693557c5be4567fa0c6c72b6313f829a981facdb3e2dd3d272ab21ed0"),
    "audit": ("f13f1f720b96a32f436b7e5965cbf31b208f50cbc4ddd7795d62ac3448bfdffc"),
    "dispatch_jobs": (
        "162d8e5ee1300a82cd2f729c458c5a1856bcd4a53f62de7e8337595f57a120e2"
    ),
    "telemetry": ("01a4d46be68f56ae9f61f4dc67e182d520afbe11213ad193083a36011ee8263a"),
    "work": ("5f100e7732a23932132a2cb2b59d12c27d4823fe3315c5f662efa7a08368b55d"),
    "items": ("fba9bb479a09d12f56fadceacbb8d0ff7e622826a4979d6a9e7da42cf36ef817"),
    "alarms": ("b95b2d03686dbe38a434172c9d160a6de05aecd013fb997d89a874cfa1fc1c61"),
    "shift_log": ("926261301e98ff380efd2802795e46700baf644f2e6400e84a52ae304699e147"),
    "exceptions": ("0a8b972e529668ed26771af030fb7ff41317df9ad72a9d9dcb21934d3f3340e5"),
    "machine_hours": (
        "9315e207a83428431ecf4b9bdffede368ab9126eff0ece1ae76dfe36cc110690"
    ),
    "machine_days": (
        "70cda3e0c9cfef70f809ad1ffbc06e27aa5b469e3d3e19bf1a0da2d4c073823f"
    ),
    "oee_snapshots": (
        "90ae53d9740615ba31aae4ae343e3fed910c57c6bb4c3868aad9c68035483f31"
    ),
    "first_qa": ("ed062d3039877fb46e3758596e214894c6661ccaa02b345be09360e721feac8a"),
    "first_qa_hours": (
        "822fa995855dc29ade46d965558422c4d7b126a79466572335d6a2970743ad1f"
    ),
    "telemetry_hours": (
        "2b6e94aec916e76041a5d62c7080eb0dfeb3489b808a1da38248f0b115f2092b"
    ),
    "custody": ("9be74cc85fca3ff89c744650a1024eb02c6fbad70f2308c04259796877ae16fa"),
}


def digests() -> dict[str, str]:
    found = {}
    with connection.cursor() as cursor:
        for name, sql in QUERIES.items():
            cursor.execute(sql)
            rows = json.dumps(cursor.fetchall(), default=str, sort_keys=True)
            found[name] = hashlib.sha256(rows.encode()).hexdigest()
    return found


class _Undo(Exception):
    pass


@pytest.mark.django_db
def test_a_small_plant_stores_what_it_stored_before():
    """In the caller's transaction (every part in turn), with the work orders'
    ids not starting where a fresh database starts them (earlier work, even
    rolled back, advances the sequence): the same seed, the same plant."""
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('runbooks_workorder', 'id'), "
            "nextval(pg_get_serial_sequence('runbooks_workorder', 'id')) + 7)"
        )
    with KEY:
        try:
            with transaction.atomic():
                generate(SMALL, seed=5, end=END)
                found = digests()
                raise _Undo
        except _Undo:
            pass
    assert not plant_counts()["passports"]
    assert found == GOLDEN


@pytest.mark.django_db(transaction=True)
def test_in_two_processes_a_small_plant_stores_the_same():
    """Outside any transaction (as the command runs it): the passports beside
    the readings in a second process, the machine hours split over two."""
    with KEY:
        report = generate(SMALL, seed=5, end=END, parallel=True)
        found = digests()
    assert report.parallel
    assert "passports and ledgers" in report.seconds  # the child's times came back
    assert report.total_seconds <= sum(report.seconds.values()) + 1
    assert found == GOLDEN


@pytest.mark.django_db(transaction=True)
def test_a_failure_in_the_second_process_fails_the_generator(monkeypatch):
    from plant_generator import builders

    def broken(**kwargs):
        raise ValueError("no passports today")

    monkeypatch.setattr(builders, "build_passports", broken)
    with pytest.raises(RuntimeError, match="no passports today"):
        generate(SMALL, seed=5, end=END, parallel=True)


@pytest.mark.django_db(transaction=True)
def test_a_failure_beside_the_second_process_waits_for_it(monkeypatch):
    """The parent's part fails: its error is raised once the second process
    has finished (nothing left writing into the database)."""
    from plant_generator import builders

    def broken(**kwargs):
        raise ValueError("no audit today")

    monkeypatch.setattr(builders, "build_audit", broken)
    with pytest.raises(ValueError, match="no audit today"):
        generate(SMALL, seed=5, end=END, parallel=True)
    # the second process's parts committed before the error was raised
    assert plant_counts()["telemetry"] == SMALL.telemetry


def test_the_rollup_tables_are_the_models_tables():
    from lines.models import MachineDay, MachineHour, OEESnapshot
    from passports.models import (
        CustodyUnitCount,
        FirstQaHour,
        FirstQaResult,
        TelemetryModelHour,
    )
    from plant_generator.generate import ROLLUP_TABLES

    models = (
        TelemetryModelHour,
        FirstQaResult,
        FirstQaHour,
        CustodyUnitCount,
        MachineHour,
        MachineDay,
        OEESnapshot,
    )
    assert set(ROLLUP_TABLES) == {m._meta.db_table for m in models}
