"""The bulk builders of a generated plant: each area's rows, written the way
the services' own bulk paths write them, deterministic for a seed and an end
time.

* machine readings: ``bpmos.bulk.BulkTarget.store``, the readings ingest's
  write path (binary COPY into the table, its indexes and constraints);
* audit records: hash-chained as ``elog.audit`` chains them (the same
  ``compute_hash`` and key), then COPY;
* passport ledgers: each battery's events applied through
  ``passports.lifecycle.apply`` and hashed with ``passports.ledger
  .compute_hash`` as ``ledger.append`` does, the projection set by
  ``ledger._project``, then two bulk INSERTs a batch; genealogy pack <- modules
  <- cells with the ``assembled`` events ``passport_assemble`` writes; the
  dispatch desk's jobs as its ledger hook opens and closes them;
* work orders and stages, exceptions, inventory items, alarms and their
  journal, shift-log entries: set-based ``INSERT ... SELECT`` (PostgreSQL);
* the read models and roll-ups are then rebuilt by the functions beat and the
  migrations use (``generate.finish``).

PostgreSQL only (COPY and set-based SQL). Progress goes to a ``progress(label,
total)`` factory whose result has ``advance(n)`` (rich's bar in the command,
``bench.common.Progress`` in the benches).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.db import connection

from bpmos.bulk import BulkTarget

BATCH = 100_000  # rows per COPY statement


class Bar(Protocol):
    def advance(self, n: int = 1) -> None: ...


ProgressFactory = Callable[[str, int], Bar]


class _Silent:
    def advance(self, n: int = 1) -> None:
        pass


def silent(label: str, total: int) -> Bar:
    """A progress factory that shows nothing."""
    return _Silent()


def execute(sql: str, params: Any = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextmanager
def deferred_indexes(*tables: str) -> Iterator[None]:
    """Drop the plain secondary indexes of ``tables`` for a bulk load and build
    them again after it (one sort each instead of a million inserts).

    Only indexes that back no constraint and are not unique go: the primary
    keys, unique keys and checks stay, so the load meets every guarantee the
    services rely on (a duplicate serial or ledger version still fails it);
    the rebuilt indexes are the migrations' own definitions
    (``pg_get_indexdef``). Partitioned tables are left as they are.
    """
    with connection.cursor() as cursor:
        # Checks still deferred in this transaction run now: PostgreSQL
        # alters no table with pending trigger events (they would run at
        # commit anyway, the same checks).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY(%s) AND t.relkind = 'r'
              AND NOT i.indisunique AND NOT i.indisprimary
              AND NOT EXISTS (
                  SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
            ORDER BY 1
            """,
            [list(tables)],
        )
        dropped = cursor.fetchall()
        for name, _definition in dropped:
            cursor.execute(f"DROP INDEX {name}")

    def rebuild() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _name, definition in dropped:
                cursor.execute(definition)
            cursor.execute("RESET maintenance_work_mem")

    try:
        yield
    except BaseException:
        # In a transaction its rollback brings the indexes back; in
        # autocommit the drops stood.
        if not connection.in_atomic_block:
            rebuild()
        raise
    rebuild()


@contextmanager
def deferred_keys(table: str) -> Iterator[None]:
    """Drop ``table``'s unique and foreign keys for a bulk load and add them
    back after it, with their own names and definitions
    (``pg_get_constraintdef``): each is then checked once over every row (a
    duplicate or a dangling key fails the load there), instead of row by row.
    The primary key and the checks stay."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as deferred_indexes
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = %s::regclass AND contype IN ('u', 'f')
              AND conparentid = 0
            ORDER BY contype DESC, conname
            """,
            [table],
        )
        dropped = cursor.fetchall()
        for name, _definition in dropped:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")

    def rebuild() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for name, definition in dropped:
                cursor.execute(
                    f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
                )
            cursor.execute("RESET maintenance_work_mem")

    try:
        yield
    except BaseException:
        if not connection.in_atomic_block:
            rebuild()
        raise
    rebuild()


def copy_rows(
    table: str,
    columns: tuple[str, ...],
    rows: Iterable[tuple],
    bar: Bar,
) -> int:
    """COPY text of ``rows`` (tuples of values whose ``str`` is COPY text, None
    for NULL) into ``table``, ``BATCH`` rows a statement; returns the count."""
    column_list = ", ".join(columns)
    total = 0

    def flush(buffer: io.StringIO, n: int) -> None:
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
        ):
            copy.write(buffer.getvalue())
        bar.advance(n)

    buffer, n = io.StringIO(), 0
    for row in rows:
        buffer.write(
            "\t".join("\\N" if value is None else str(value) for value in row) + "\n"
        )
        n += 1
        if n == BATCH:
            flush(buffer, n)
            total += n
            buffer, n = io.StringIO(), 0
    if n:
        flush(buffer, n)
        total += n
    return total


def seeded_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng`` (the same seed, the same UUIDs)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


# --- lines and machine readings ---------------------------------------------------

STATES = ("running", "running", "running", "ready", "idle", "blocked", "down")

# The readings ingest's table and columns (lines.services stores its batches
# through a BulkTarget of the same shape).
READINGS = BulkTarget(
    table="lines_machinereading",
    columns=("machine_id", "tag", "ts", "value", "text", "note", "unit", "quality"),
    copy_types=("int8", "varchar", "timestamptz", "float8", *["varchar"] * 4),
    conflict=("machine_id", "tag", "ts"),
)


def build_topology(lines: int, stations: int, machines_per_station: int) -> list:
    """Lines ``line-01`` ..., their stations and machines; returns the
    machines."""
    from lines.models import Line, Machine, Station

    machines = []
    for n in range(lines):
        line = Line.objects.create(
            slug=f"line-{n + 1:02d}", name=f"Line {n + 1}", position=n
        )
        for s in range(stations):
            station = Station.objects.create(
                line=line,
                slug=f"st-{s + 1:02d}",
                name=f"Station {s + 1}",
                position=s + 1,
                ideal_cycle_seconds=Decimal(10 + 5 * s),
            )
            machines.extend(
                Machine.objects.create(
                    station=station,
                    code=f"l{n + 1}-s{s + 1}-m{m + 1}",
                    name=f"Machine {m + 1}",
                    machine_type="bench",
                )
                for m in range(machines_per_station)
            )
    return machines


def build_readings(
    machines: list, *, readings: int, days: float, end: datetime, seed: int, bar: Bar
) -> int:
    """``readings`` machine readings spread evenly over the machines and the
    ``days`` before ``end``: every 40th a state change, a third cycle times,
    some rejects, the rest good counts. Returns how many were stored."""
    from lines import partitions

    per_machine = max(1, readings // len(machines))
    step = timedelta(seconds=days * 86400 / per_machine)
    stored = 0
    # The month partitions beat would have created as the plant ran (ahead
    # of each month), so the history does not all land in DEFAULT.
    first = partitions.month_start(end - step * per_machine)
    months = (end.year - first.year) * 12 + end.month - first.month
    partitions.readings_partitions_ensure(now=first, ahead=months)
    with deferred_keys(READINGS.table):
        stored = _readings_rows(machines, per_machine, step, end, seed, bar)
    return stored


def _readings_rows(machines, per_machine, step, end, seed, bar) -> int:
    stored = 0
    for machine in machines:
        rng = random.Random(f"{seed}:{machine.code}")
        ts = end - step * per_machine
        rows: list[tuple] = []
        for i in range(per_machine):
            ts += step
            if i % 40 == 0:
                state = rng.choice(STATES)
                note = "Safety Curtain" if state == "blocked" else ""
                row = (machine.pk, "state", ts, None, state, note, "", "good")
            elif i % 3 == 0:
                value = round(rng.uniform(10, 14), 2)
                row = (machine.pk, "cycle_time", ts, value, "", "", "", "good")
            elif i % 17 == 0:
                row = (machine.pk, "reject_count", ts, 1.0, "", "", "", "good")
            else:
                value = float(rng.randint(1, 3))
                row = (machine.pk, "good_count", ts, value, "", "", "", "good")
            rows.append(row)
            if len(rows) == BATCH:
                stored += READINGS.store(rows)
                bar.advance(len(rows))
                rows = []
        if rows:
            stored += READINGS.store(rows)
            bar.advance(len(rows))
    return stored


# --- work orders, exceptions, inventory ---------------------------------------------


def build_work(*, days: float, orders: int, end: datetime) -> None:
    """Work orders of the default manufacturing runbook over ``days`` days:
    completed, cancelled, in progress (a stage on hold now and then), planned;
    with every stage. The last 60 are in progress, the 100 before planned."""
    from runbooks import stage_wip, work_order_counts
    from runbooks.models import Runbook

    runbook = (
        Runbook.objects.filter(kind="manufacturing").order_by("-is_default").first()
    )
    in_progress, planned = min(60, orders // 4), min(100, orders // 4)
    execute(
        """
        INSERT INTO runbooks_workorder (runbook_id, product_code, lot_no, qty,
            planned_start, planned_end, status, started_at, completed_at,
            created_at, updated_at)
        SELECT %(runbook)s, 'PACK-LFP-48V', 'BL-' || n, 1 + n %% 20,
            start, start + interval '8 hours',
            CASE WHEN n > %(orders)s - %(wip)s THEN 'in_progress'
                 WHEN n > %(orders)s - %(later)s THEN 'planned'
                 WHEN n %% 50 = 0 THEN 'cancelled' ELSE 'completed' END,
            CASE WHEN n > %(orders)s - %(later)s AND n <= %(orders)s - %(wip)s
                 THEN NULL ELSE start END,
            CASE WHEN n > %(orders)s - %(later)s OR n %% 50 = 0 THEN NULL
                 ELSE start + interval '7 hours' END,
            start, start
        FROM (SELECT n, %(now)s - make_interval(secs => %(span)s)
                 + make_interval(secs => %(span)s::float8 * n / %(orders)s) AS start
              FROM generate_series(1, %(orders)s) AS n) AS o
        """,
        {
            "runbook": runbook.pk,
            "orders": orders,
            "wip": in_progress,
            "later": in_progress + planned,
            "span": days * 86400,
            "now": end,
        },
    )
    execute(
        """
        INSERT INTO runbooks_workorderstage (work_order_id, stage_id, position,
            stage_name, planned_start, planned_end, actual_start, actual_end,
            status, hold_reason, updated_at)
        SELECT w.id, s.id, s.position, s.name, w.planned_start, w.planned_end,
            CASE WHEN w.status = 'completed'
                   OR (w.status = 'in_progress' AND s.position <= w.n %% 5 + 1)
                 THEN w.planned_start END,
            CASE WHEN w.status = 'completed'
                   OR (w.status = 'in_progress' AND s.position <= w.n %% 5)
                 THEN w.planned_start + interval '1 hour' END,
            CASE WHEN w.status = 'completed' THEN 'done'
                 WHEN w.status = 'in_progress' AND s.position <= w.n %% 5 THEN 'done'
                 WHEN w.status = 'in_progress' AND s.position = w.n %% 5 + 1
                   THEN CASE WHEN w.n %% 4 = 0 THEN 'hold' ELSE 'in_progress' END
                 ELSE 'planned' END,
            CASE WHEN w.status = 'in_progress' AND s.position = w.n %% 5 + 1
                   AND w.n %% 4 = 0 THEN 'Bench hold' ELSE '' END,
            w.planned_start
        FROM (
            -- n, the order's number in its lot ('BL-' || n), not its id: the
            -- ids follow the sequence, which other work (and rolled-back
            -- transactions) advance, so the same seed gives the same stages.
            SELECT *, substr(lot_no, 4)::int AS n FROM runbooks_workorder
            WHERE lot_no LIKE 'BL-%%'
        ) w JOIN runbooks_stage s ON s.runbook_id = w.runbook_id
        """
    )
    # Loaded by SQL, past the services that keep the stages' WIP counts and
    # the runbooks' work-order counts.
    stage_wip.rebuild()
    work_order_counts.rebuild()


def build_exceptions(*, days: float, end: datetime, count: int) -> None:
    """Exceptions, most resolved, some open and escalated."""
    execute(
        """
        INSERT INTO exceptions_plantexception (type, severity, status, source, title,
            description, is_blocking, raised_at, escalation_level, escalation_log,
            acknowledged_at, resolved_at, resolution_note, updated_at)
        SELECT (ARRAY['quality_failure','equipment_fault','material_shortage',
                      'process_deviation','other'])[1 + n %% 5],
            (ARRAY['low','medium','high','critical'])[1 + n %% 4],
            CASE WHEN n %% 25 = 0 THEN 'open' WHEN n %% 25 = 1 THEN 'ack'
                 ELSE 'resolved' END,
            'manual', 'Bench exception ' || n, '', false, at,
            CASE WHEN n %% 25 = 0 THEN n %% 3 ELSE 0 END, '[]'::jsonb,
            CASE WHEN n %% 25 <> 0 THEN at + interval '5 minutes' END,
            CASE WHEN n %% 25 > 1 THEN at + interval '1 hour' END, '', at
        FROM (SELECT n, %(now)s - make_interval(secs => %(span)s)
                 + make_interval(secs => %(span)s::float8 * n / %(count)s) AS at
              FROM generate_series(1, %(count)s) AS n) AS e
        """,
        {"count": count, "span": days * 86400, "now": end},
    )


def build_items(*, end: datetime, count: int) -> None:
    """Inventory items over the categories and bins: some on hold or blocked,
    some used up."""
    execute(
        """
        INSERT INTO inventory_item (code, sku, category_id, location_id, status,
            hold_reason, batch_ref, quantity, unit, received_at, created_at,
            updated_at)
        SELECT 'BENCH-IT-' || n, 'CELL-LFP-21700',
            c.ids[1 + n %% array_length(c.ids, 1)],
            l.ids[1 + n %% array_length(l.ids, 1)],
            CASE WHEN n %% 100 = 0 THEN 'hold' WHEN n %% 150 = 0 THEN 'blocked'
                 ELSE 'good' END,
            CASE WHEN n %% 100 = 0 THEN 'Bench hold' ELSE '' END,
            'BATCH-' || n / 100, CASE WHEN n %% 7 = 0 THEN 0 ELSE 1 + n %% 30 END,
            'pcs', %(now)s, %(now)s, %(now)s
        FROM generate_series(1, %(count)s) AS n,
             (SELECT array_agg(id ORDER BY id) AS ids FROM inventory_category) AS c,
             (SELECT array_agg(id ORDER BY id) AS ids FROM inventory_location) AS l
        """,
        {"count": count, "now": end},
    )


# --- alarms, shift log, audit --------------------------------------------------------


def build_alarms(*, days: float, end: datetime, alarms: int, history: int) -> None:
    """Alarms (most closed; the last 40 unacknowledged) and their journal
    (``history`` rows: activated, acknowledged, returned, shelved ...)."""
    unacked = min(40, alarms // 4)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM scada_alarmevent")
        (before,) = cursor.fetchone()
    execute(
        """
        INSERT INTO scada_alarmevent (timestamp, tag_name, kind, status, severity,
            area, message, value, "limit", active, acknowledged_at, returned_at,
            closed_at, shelve_reason, updated_at)
        SELECT at, 'TT-' || (100 + n %% 400), 'limit',
            CASE WHEN n > %(count)s - %(open)s THEN 'unack_active' ELSE 'normal' END,
            (ARRAY['low','medium','high','critical'])[1 + n %% 4],
            'Area ' || (1 + n %% 6), 'Temperature high', 61.5, 60.0,
            n > %(count)s - %(open)s,
            CASE WHEN n <= %(count)s - %(open)s THEN at + interval '2 minutes' END,
            CASE WHEN n <= %(count)s - %(open)s THEN at + interval '10 minutes' END,
            CASE WHEN n <= %(count)s - %(open)s THEN at + interval '10 minutes' END,
            '', at
        FROM (SELECT n, %(now)s - make_interval(secs => %(span)s)
                 + make_interval(secs => %(span)s::float8 * n / %(count)s) AS at
              FROM generate_series(1, %(count)s) AS n) AS a
        """,
        {"count": alarms, "open": unacked, "span": days * 86400, "now": end},
    )
    execute(
        """
        INSERT INTO scada_alarmhistory (alarm_id, at, change, from_state, to_state,
            area, value, note)
        SELECT a.id, least(a.timestamp + make_interval(secs => 60 * (n %% 5)),
                           %(now)s - interval '1 second'),
            (ARRAY['activated','acknowledged','returned','shelved','unshelved'])
                [1 + n %% 5],
            'normal', 'unack_active', a.area, 61.5,
            CASE WHEN n %% 5 = 1 THEN 'Checked the chiller' ELSE '' END
        FROM generate_series(0, %(history)s - 1) AS n
        JOIN scada_alarmevent a
          ON a.id = (SELECT min(id) FROM scada_alarmevent WHERE id > %(before)s)
                    + (n / 5) %% %(alarms)s
        """,
        {"history": history, "alarms": alarms, "now": end, "before": before},
    )


def build_shift_log(*, days: float, end: datetime, count: int) -> None:
    """``count`` shift-log entries (notes, incidents, safety, quality,
    maintenance, readings approved), in 8 h shifts from 06:00 UTC."""
    execute(
        """
        INSERT INTO elog_shiftlogentry (plant_id, operator_name, entry_type, body,
            metadata, line, shift_start, shift_end, target_type, target_id,
            automatic, source, request_id, created_at)
        SELECT 'bench', 'bench-operator',
            (ARRAY['note','incident','safety','quality','maintenance',
                   'readings_approved'])[1 + n %% 6],
            CASE WHEN n %% 997 = 0 THEN 'Coolant pump cavitation heard at ' || n
                 ELSE 'Line running, checked torque on station ' || (n %% 10) END,
            '{}'::jsonb, 'line-01', s, s + interval '8 hours', '', '', false, 'api',
            '', at
        FROM (SELECT n, at, to_timestamp(
                  floor((extract(epoch FROM at) - 21600) / 28800) * 28800 + 21600) AS s
              FROM (SELECT n, %(now)s - make_interval(secs => %(span)s)
                       + make_interval(secs => %(span)s::float8 * n / %(count)s) AS at
                    FROM generate_series(1, %(count)s) AS n) AS t) AS e
        """,
        {"count": count, "span": days * 86400, "now": end},
    )


def build_audit(
    *, days: float, end: datetime, count: int, actors: list, bar: Bar
) -> int:
    """``count`` audit records after those already in the chain, hash-chained
    as ``elog.audit`` chains them (its ``compute_hash`` and current key), by
    COPY. The caller holds the chain (no writer about: a generator's or a
    bench's database)."""
    from bpmos.auditkeys import keyring
    from elog import audit
    from elog.models import AuditRecord

    ring = keyring()
    key_id, key = ring.current_id, ring.current_key
    last = AuditRecord.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev = last if last else (0, audit.GENESIS_HASH)
    step = timedelta(seconds=days * 86400 / count)
    start = end - step * count
    actions = ("update", "create", "status_change", "approve", "login")
    targets = ("runbooks.workorder", "inventory.item", "lines.machine", "scada.alarm")
    people = [(actor.pk, actor.username, actor.role) for actor in actors]
    # audit.compute_hash in a tight loop: the same canonical JSON (sorted
    # keys, no spaces) and HMAC; the first record is checked against it.
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    new_hmac, sha256 = hmac.new, hashlib.sha256

    def rows():
        nonlocal seq, prev
        for n in range(count):
            actor_id, username, role = people[n % len(people)]
            seq += 1
            at = (start + step * n).astimezone(UTC).isoformat()
            target = targets[n % len(targets)]
            target_id = str(n % 5000)
            target_repr = f"BL-{n % 5000}" if n % 3001 else f"Rare flux capacitor {n}"
            action = actions[n % len(actions)]
            fields = {
                "seq": seq,
                "occurred_at": at,
                "actor_id": actor_id,
                "actor_username": username,
                "actor_role": role,
                "action": action,
                "target_type": target,
                "target_id": target_id,
                "target_repr": target_repr,
                "before": None,
                "after": None,
                "request_id": "",
                "client_address": None,
                "source": "api",
                "prev_hash": prev,
            }
            digest = new_hmac(key, dumps(fields).encode(), sha256).hexdigest()
            if n == 0 and digest != audit.compute_hash(
                {**fields, "occurred_at": start}, key=key
            ):
                raise RuntimeError("the audit hash differs from audit.compute_hash")
            yield (
                seq,
                at,
                actor_id,
                username,
                role,
                action,
                target,
                target_id,
                target_repr,
                None,
                None,
                "",
                None,
                "api",
                prev,
                digest,
                key_id,
            )
            prev = digest

    return copy_rows(
        "elog_auditrecord", (*audit.HASHED_FIELDS, "hash", "key_id"), rows(), bar
    )


# --- passports: genealogy and ledgers ------------------------------------------------

MODULES_PER_PACK = 2
CELLS_PER_MODULE = 4
GROUP = 1 + MODULES_PER_PACK * (1 + CELLS_PER_MODULE)  # passports per pack
MODELS = ("PACK-LFP-48V", "PACK-NMC-72V")
MANUFACTURER = "BPM Energy"
# A component's serial (of its number) and model, and the hours before its
# pack's manufacture its ledger runs from and to: a cell is made and fitted in
# its module before the module is made and fitted in its pack.
COMPONENTS = {
    "module": ("GEN-MOD-{:08d}", "MOD-LFP", (3, 1)),
    "cell": ("GEN-CELL-{:09d}", "CELL-LFP", (6, 4)),
}
# Share of the packs (the newest) still at the plant: warehoused, some
# reserved, every 10th of them on hold: the dispatch desk's live list.
AT_PLANT = 0.03

Chain = list[tuple[str, dict[str, Any]]]


def component_chain(index: int) -> Chain:
    """A cell's or module's ledger: manufactured, QA (every 20th fails once
    and passes its re-test), assembled into its parent (data added later)."""
    chain: Chain = [("manufactured", {"manufacturer": MANUFACTURER, "site": "Pune"})]
    if index % 20 == 0:
        chain.append(("qa_failed", {"test": "EOL-1"}))
    chain.append(("qa_passed", {"test": "EOL-1"}))
    chain.append(("assembled", {}))
    return chain


def pack_chain(index: int, packs: int, extra: int) -> Chain:
    """A pack's ledger: manufactured, QA, provisioned, warehoused; the newest
    ``AT_PLANT`` share stays there (some reserved, every 10th held); the rest
    are reserved, dispatched, delivered and in service, with ``extra``
    telemetry summaries and services (every 150th held and released once)."""
    chain: Chain = [
        ("manufactured", {"manufacturer": MANUFACTURER, "site": "Pune"}),
        ("qa_passed", {"test": "EOL-1"}),
        ("provisioned", {"bmsFirmware": "2.4.1", "nodeId": 1 + index % 127}),
        ("warehoused", {"location": f"FG-A-{1 + index % 40:02d}"}),
    ]
    if index >= packs - at_plant(packs):
        if index % 3 == 0:
            chain.append(("reserved", {"reference": f"SO-{1000 + index}"}))
        if index % 10 == 0:
            chain.append(("held", {"reason": "Awaiting QA sign-off"}))
        return chain
    chain += [
        ("reserved", {"reference": f"SO-{1000 + index}"}),
        ("dispatched", {"carrier": "BlueDart"}),
        ("delivered", {"customer": "Ather Energy"}),
    ]
    for n in range(extra):
        if index % 150 == 0 and n == 0:
            chain.append(("held", {"reason": "Field inspection"}))
            chain.append(("released", {"reason": "Inspection passed"}))
        elif n % 12 == 11:
            chain.append(("serviced", {"note": "Cell balancing"}))
        else:
            soh = round(100 - 0.05 * n - (index % 7) * 0.1, 1)
            chain.append(("telemetry_summarised", {"sohPercent": soh, "samples": 120}))
    return chain


def at_plant(packs: int) -> int:
    return max(1, int(packs * AT_PLANT))


def ledger_plan(*, passports: int, events: int) -> tuple[int, int]:
    """(packs, extra events per pack in service) so that the plant holds at
    least ``passports`` passports and ``events`` ledger events."""
    packs = max(1, -(-passports // GROUP))
    components = sum(len(component_chain(i)) for i in range(packs * (GROUP - 1)))
    base = sum(len(pack_chain(i, packs, 0)) for i in range(packs))
    in_service = packs - at_plant(packs)
    missing = max(0, events - components - base)
    extra = -(-missing // in_service) if in_service else 0
    return packs, extra


@dataclass
class LedgerBuilt:
    passports: int = 0
    events: int = 0
    packs: list[tuple[int, str]] | None = None  # (pk, model), for telemetry


# A ledger to write: the (unsaved) passport, its events' (kind, data) and
# their times.
Ledger = tuple[Any, Chain, list[datetime]]

EVENT_COLUMNS = (
    "passport_id",
    "version",
    "kind",
    "occurred_at",
    "actor_username",
    "data",
    "prev_hash",
    "hash",
    "key_id",
)


class LedgerHasher:
    """``passports.ledger.compute_hash`` in a tight loop: the same canonical
    JSON and HMAC, without its per-call field copying and key look-up. The
    first event of every batch is also hashed by ``compute_hash`` itself and
    must agree (a change there fails the generator, not the verifier)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.dumps = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), default=str
        ).encode

    def __call__(
        self,
        passport: str,
        version: int,
        kind: str,
        at: str,
        actor: str,
        data: dict,
        prev: str,
    ) -> str:
        from elog.audit import canonical_numbers

        canonical = self.dumps(
            {
                "passport": passport,
                "version": version,
                "kind": kind,
                "occurred_at": at,
                "actor_username": actor,
                "data": canonical_numbers(data),
                "prev_hash": prev,
            }
        )
        return hmac.new(self.key, canonical.encode(), hashlib.sha256).hexdigest()


def allocate_ids(table: str, n: int) -> list[int]:
    """``n`` ids from ``table``'s id sequence (what its inserts would take)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
            "FROM generate_series(1, %s)",
            [table, n],
        )
        return [row[0] for row in cursor.fetchall()]


def write_ledgers(
    ledgers: list[Ledger], *, actor_username: str, bar: Bar | None = None
) -> int:
    """Write passports (parents before their children in ``ledgers``; a
    child's ``parent`` is the parent's object) and their hash-chained ledgers
    as ``ledger.append`` writes them: each event applied through
    ``passports.lifecycle.apply`` (an illegal move raises, as it would fail an
    append), hashed as ``ledger.compute_hash`` hashes, the passport's
    projection set by ``ledger._project``; then the passports and the events
    by COPY. Sets each passport's ``pk``. Returns the events written.

    The one bulk path of generated ledgers: the plant generator's and the
    ledger bench's."""
    from bpmos.auditkeys import keyring
    from passports import ledger, lifecycle
    from passports.models import Passport

    ring = keyring()
    key_id, hasher = ring.current_id, LedgerHasher(ring.current_key)
    apply, genesis = lifecycle.apply, ledger.GENESIS_HASH
    ids = allocate_ids(Passport._meta.db_table, len(ledgers))
    for (passport, _chain, _times), pk in zip(ledgers, ids, strict=True):
        passport.pk = pk
    events: list[tuple] = []
    append = events.append
    for n, (passport, chain, times) in enumerate(ledgers):
        if passport.parent is not None:
            passport.parent_id = passport.parent.pk
        snapshot = lifecycle.Snapshot(kind=passport.kind)
        prev, who, pk = genesis, str(passport.uuid), passport.pk
        for (kind, data), at in zip(chain, times, strict=True):
            snapshot = apply(snapshot, kind, data)
            stamp = at.astimezone(UTC).isoformat()
            digest = hasher(
                who, snapshot.version, kind, stamp, actor_username, data, prev
            )
            if n == 0 and snapshot.version == 1:
                fields = {
                    "passport": passport.uuid,
                    "version": 1,
                    "kind": kind,
                    "occurred_at": at,
                    "actor_username": actor_username,
                    "data": data,
                    "prev_hash": prev,
                }
                if digest != ledger.compute_hash(fields):
                    raise RuntimeError("LedgerHasher differs from ledger.compute_hash")
            append(
                (
                    pk,
                    snapshot.version,
                    kind,
                    stamp,
                    actor_username,
                    json.dumps(data),
                    prev,
                    digest,
                    key_id,
                )
            )
            prev = digest
        ledger._project(passport, snapshot)
        passport.head_hash = prev
    fields = [f for f in Passport._meta.concrete_fields]
    now = datetime.now(UTC)
    for passport, _chain, _times in ledgers:
        passport.updated_at = now
    copy_tuples(
        Passport._meta.db_table,
        tuple(f.column for f in fields),
        [
            tuple(f.get_db_prep_save(getattr(p, f.attname), connection) for f in fields)
            for p, _chain, _times in ledgers
        ],
    )
    copy_tuples(PASSPORT_EVENTS, EVENT_COLUMNS, events)
    if bar is not None:
        bar.advance(len(events))
    return len(events)


PASSPORT_EVENTS = "passports_passportevent"


def copy_tuples(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """COPY (text) of Python values, adapted by psycopg row by row in C."""
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def build_passports(
    *,
    days: float,
    end: datetime,
    passports: int,
    events: int,
    seed: int,
    bar: Bar,
    batch: int = 1000,
) -> LedgerBuilt:
    """Packs with their modules and cells (``GROUP`` passports a pack), each
    with its hash-chained ledger (``write_ledgers``), the packs' dispatch
    jobs; ``batch`` packs a COPY. Packs are made evenly over ``days`` days up
    to ``end``; a pack's ledger spreads from its manufacture to ``end``."""
    from passports import bpan
    from passports.dispatch.selectors import DISPATCHED_REASON
    from passports.models import JobState, Passport

    packs, extra = ledger_plan(passports=passports, events=events)
    rng = random.Random(f"{seed}:passports")
    span = timedelta(days=days)
    start = end - span
    built = LedgerBuilt(packs=[])
    latest = end - timedelta(minutes=1)

    def new_passport(kind: str, serial: str, model: str, made: datetime) -> Passport:
        return Passport(
            uuid=seeded_uuid(rng),
            kind=kind,
            serial=serial,
            model=model,
            lot=f"L-{made:%Y%m%d}",
            manufacturer=MANUFACTURER,
            site="Pune",
            manufactured_at=made,
            chemistry="LFP",
            rated_capacity_ah=Decimal(100),
            nominal_voltage_v=Decimal("51.2"),
            energy_kwh=Decimal("5.12"),
            state="",
            custodian_kind="manufacturer",
            custodian_name=MANUFACTURER,
        )

    def evenly(first: datetime, last: datetime, n: int) -> list[datetime]:
        if n == 1:
            return [first]
        gap = (last - first) / (n - 1)
        return [first + gap * i for i in range(n)]

    def component(kind: str, number: int, parent: Passport, made: datetime) -> Ledger:
        """Module or cell ``number``'s ledger (``component_chain``) ending in its
        assembly into ``parent``, over its ``COMPONENTS`` hours before its
        pack's manufacture (``made``): manufactured first."""
        serial, model, hours = COMPONENTS[kind]
        passport = new_passport(kind, serial.format(number), model, made)
        passport.parent = parent
        chain = component_chain(number)
        into = {"parent": str(parent.uuid), "parentSerial": parent.serial}
        chain[-1] = ("assembled", into)
        first, last = (made - timedelta(hours=h) for h in hours)
        times = evenly(first, last, len(chain))
        passport.manufactured_at = times[0]
        return passport, chain, times

    for first in range(0, packs, batch):
        levels: tuple[list, list, list] = ([], [], [])  # packs, modules, cells
        for p in range(first, min(packs, first + batch)):
            made = start + span * (p + 1) / (packs + 1)
            pack = new_passport("pack", f"GEN-PACK-{p:07d}", MODELS[p % 2], made)
            pack.barcode = f"BC{p:010d}"
            pack.rfid = f"E280{p:020X}"
            pack.bpan = bpan.issue(
                manufacturer="BPM",
                chemistry="LFP",
                nominal_voltage_v=51.2,
                energy_kwh=5.12,
                made=date(made.year, made.month, made.day),
                plant="1",
                serial=p,
            )
            chain = pack_chain(p, packs, extra)
            levels[0].append((pack, chain, evenly(made, max(made, latest), len(chain))))
            for m in range(MODULES_PER_PACK):
                number = p * MODULES_PER_PACK + m
                module = component("module", number, pack, made)
                levels[1].append(module)
                levels[2].extend(
                    component("cell", number * CELLS_PER_MODULE + c, module[0], made)
                    for c in range(CELLS_PER_MODULE)
                )
        ledgers = [*levels[0], *levels[1], *levels[2]]  # parents first
        built.events += write_ledgers(ledgers, actor_username="generator", bar=bar)
        # The dispatch desk's jobs, as its ledger hook keeps them: opened
        # when warehoused, closed when dispatched.
        now = datetime.now(UTC)
        copy_tuples(
            "passports_dispatchjob",
            ("passport_id", "state", "reason", "created_at", "updated_at"),
            [
                (pack.pk, JobState.ON.value, "warehoused", now, now)
                if pack.state in ("warehoused", "reserved")
                else (pack.pk, JobState.OFF.value, DISPATCHED_REASON, now, now)
                for pack, _chain, _times in levels[0]
            ],
        )
        built.packs += [(pack.pk, pack.model) for pack, _c, _t in levels[0]]
        built.passports += len(ledgers)
    return built


def build_telemetry(
    *,
    days: float,
    end: datetime,
    count: int,
    packs: list,
    per_pack: int,
    seed: int,
    bar: Bar,
) -> list[tuple[int, str]]:
    """``count`` BMS samples of the first packs, ``per_pack`` each, evenly
    over ``days`` days (COPY); returns those packs ((pk, model))."""
    chosen = packs[: max(1, count // per_pack)]
    step = timedelta(seconds=days * 86400 / per_pack)
    start = end - step * per_pack

    def rows():
        for index, (pk, _model) in enumerate(chosen):
            rng = random.Random(f"{seed}:telemetry:{index}")
            soh = 100.0
            for i in range(per_pack):
                soh -= rng.uniform(0, 0.004)
                yield (
                    pk,
                    (start + step * i).isoformat(),
                    round(soh, 2),
                    round(rng.uniform(20, 95), 1),
                    round(rng.uniform(22, 41), 1),
                    round(rng.uniform(48, 54), 2),
                    round(rng.uniform(-40, 40), 1),
                )

    copy_rows(
        "passports_telemetryreading",
        (
            "passport_id",
            "ts",
            "soh_percent",
            "soc_percent",
            "temperature_c",
            "voltage_v",
            "current_a",
        ),
        rows(),
        bar,
    )
    return chosen
