"""Benchmark of the dashboards (docs/dashboards.md) and the log stream
(docs/logs.md): server time of every dashboard endpoint and of ``/api/logs``
over a large bench plant.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_bench \\
    REDIS_URL=redis://127.0.0.1:6379/10 \\
    .venv/bin/python -m bench.dashboards [--readings 1000000] [--log-rows 1000000] \\
        [--telemetry 1000000] [--days 30] [--repeat 30] [--reuse [--only-logs]]

The bench uses its own database, ``<DATABASE_URL's name>_bench``, which it
re-creates (migrated) on every run; nothing else is touched.

1. Build the bench plant: the demo plant (``seed_demo``: users, runbooks and
   gates, lines, stock, connectors, returns), then in bulk, spread over the
   last ``--days`` days:
   * lines x stations x machines and ``--readings`` machine readings (COPY, as
     ``bench.lines``), with the hourly OEE roll-ups and the OEE snapshots built
     by the beat functions (``machine_hours_refresh``, ``oee_snapshots_refresh``);
   * work orders with their stages (completed, in progress with stages on hold,
     planned), exceptions (some escalated), inventory items (some on hold),
     alarms (some unacknowledged);
   * ``--log-rows`` log rows over the stream's sources: audit records (hash
     chained as ``elog.audit`` does, COPY), shift-log entries, passport ledger
     events (packs, modules and cells, each ledger hashed as
     ``passports.ledger.append`` does: manufactured, QA results with some
     failures and retests, provisioning, custody moves, holds) and the alarm
     journal;
   * ``--telemetry`` battery telemetry samples (SoH, SoC, temperature) of
     packs of two models (COPY).
2. Time each request server-side, in process, through the whole Django stack
   (``django.test.Client`` with a real ``Authorization: Bearer <JWT>`` header:
   middleware, authentication, view, serialization), as a role that may read
   it, ``--repeat`` times: p50 and p99, the 15 ms goal, and the number of
   queries of one request. The endpoints: ``/api/dashboard/summary``,
   ``/trends`` for every metric (OEE per line, telemetry per pack and per
   model) over a day (hourly) and a month (daily), ``/distributions``, each
   role's ``/summary`` and ``/attention``, and ``/api/logs``: the first page, a
   page deep in the stream (its cursor followed ``--deep-pages`` pages down),
   each category, a severity, a time window, a common and a rare search term.
   The summary, the distributions and the role dashboards come from read
   models (``bpmos.dashboards.readmodels``): each is timed "served" (nothing
   changed) and "after a write" (its read models dropped before each request,
   untimed). ``--only-read-models`` times only those, ``--only-logs`` only
   ``/api/logs``.
3. The machine-speed factor, as ``bench.lines`` prints it (50 readings
   through a ModelSerializer, against docs/performance.md's 1.85 ms), so the
   figures compare across machines.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.common import Progress, percentile, setup_bench_django

GOAL_MS = 15.0
BATCH = 100_000  # rows per COPY statement


# --- bulk loading -------------------------------------------------------------------


def copy_rows(table: str, columns: tuple[str, ...], rows, total: int, label: str):
    """COPY text of ``rows`` (tuples of already-escaped text, None for NULL)
    into ``table``, ``BATCH`` rows a statement."""
    from django.db import connection

    progress = Progress(label, total)
    column_list = ", ".join(columns)

    def flush(buffer: io.StringIO, n: int) -> None:
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
        ):
            copy.write(buffer.getvalue())
        progress.advance(n)

    buffer, n = io.StringIO(), 0
    for row in rows:
        buffer.write(
            "\t".join("\\N" if value is None else str(value) for value in row) + "\n"
        )
        n += 1
        if n == BATCH:
            flush(buffer, n)
            buffer, n = io.StringIO(), 0
    if n:
        flush(buffer, n)


def execute(sql: str, params=()) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def build_lines(lines: int, stations: int, machines: int, readings: int, days: int):
    """The bench lines and their readings over ``days`` days (COPY); returns
    the number of readings."""
    from bench.lines import STATES, build_plant

    built = build_plant(lines, stations, machines)
    per_machine = readings // len(built)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    step = timedelta(seconds=days * 86400 / per_machine)

    def rows():
        for machine in built:
            rng = random.Random(machine.pk)
            ts = end - step * per_machine
            for i in range(per_machine):
                ts += step
                stamp = ts.isoformat()
                if i % 40 == 0:
                    state = rng.choice(STATES)
                    note = "Safety Curtain" if state == "blocked" else ""
                    yield (machine.pk, "state", stamp, None, state, note, "", "good")
                elif i % 3 == 0:
                    value = round(rng.uniform(10, 14), 2)
                    yield (machine.pk, "cycle_time", stamp, value, "", "", "", "good")
                elif i % 17 == 0:
                    yield (machine.pk, "reject_count", stamp, 1.0, "", "", "", "good")
                else:
                    value = float(rng.randint(1, 3))
                    yield (machine.pk, "good_count", stamp, value, "", "", "", "good")

    copy_rows(
        "lines_machinereading",
        ("machine_id", "tag", "ts", "value", "text", "note", "unit", "quality"),
        rows(),
        per_machine * len(built),
        "machine readings",
    )
    return per_machine * len(built)


def build_work(days: int, orders: int, now: datetime) -> None:
    """Work orders of the default manufacturing runbook over ``days`` days:
    completed, cancelled, in progress (a stage on hold now and then), planned;
    with every stage."""
    from runbooks.models import Runbook

    runbook = (
        Runbook.objects.filter(kind="manufacturing").order_by("-is_default").first()
    )
    span = days * 86400
    # status by position: the last 60 are in progress, the 100 before planned.
    execute(
        """
        INSERT INTO runbooks_workorder (runbook_id, product_code, lot_no, qty,
            planned_start, planned_end, status, started_at, completed_at,
            created_at, updated_at)
        SELECT %(runbook)s, 'PACK-LFP-48V', 'BL-' || n, 1 + n %% 20,
            start, start + interval '8 hours',
            CASE WHEN n > %(orders)s - 60 THEN 'in_progress'
                 WHEN n > %(orders)s - 160 THEN 'planned'
                 WHEN n %% 50 = 0 THEN 'cancelled' ELSE 'completed' END,
            CASE WHEN n > %(orders)s - 160 AND n <= %(orders)s - 60 THEN NULL
                 ELSE start END,
            CASE WHEN n > %(orders)s - 160 OR n %% 50 = 0 THEN NULL
                 ELSE start + interval '7 hours' END,
            start, start
        FROM (SELECT n, %(now)s - make_interval(secs => %(span)s)
                 + make_interval(secs => %(span)s::float8 * n / %(orders)s) AS start
              FROM generate_series(1, %(orders)s) AS n) AS o
        """,
        {"runbook": runbook.pk, "orders": orders, "span": span, "now": now},
    )
    execute(
        """
        INSERT INTO runbooks_workorderstage (work_order_id, stage_id, position,
            stage_name, planned_start, planned_end, actual_start, actual_end,
            status, hold_reason, updated_at)
        SELECT w.id, s.id, s.position, s.name, w.planned_start, w.planned_end,
            CASE WHEN w.status = 'completed'
                   OR (w.status = 'in_progress' AND s.position <= w.id %% 5 + 1)
                 THEN w.planned_start END,
            CASE WHEN w.status = 'completed'
                   OR (w.status = 'in_progress' AND s.position <= w.id %% 5)
                 THEN w.planned_start + interval '1 hour' END,
            CASE WHEN w.status = 'completed' THEN 'done'
                 WHEN w.status = 'in_progress' AND s.position <= w.id %% 5 THEN 'done'
                 WHEN w.status = 'in_progress' AND s.position = w.id %% 5 + 1
                   THEN CASE WHEN w.id %% 4 = 0 THEN 'hold' ELSE 'in_progress' END
                 ELSE 'planned' END,
            CASE WHEN w.status = 'in_progress' AND s.position = w.id %% 5 + 1
                   AND w.id %% 4 = 0 THEN 'Bench hold' ELSE '' END,
            w.planned_start
        FROM runbooks_workorder w JOIN runbooks_stage s ON s.runbook_id = w.runbook_id
        WHERE w.lot_no LIKE 'BL-%%'
        """
    )
    # Loaded by SQL, past the services that keep the stages' WIP counts.
    from runbooks import stage_wip

    stage_wip.rebuild()


def build_registers(days: int, now: datetime, exceptions: int, items: int) -> None:
    """Exceptions (most resolved, some escalated), inventory items (some on
    hold or blocked, some used up)."""
    span = days * 86400
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
        {"count": exceptions, "span": span, "now": now},
    )
    execute(
        """
        INSERT INTO inventory_item (code, sku, category_id, location_id, status,
            hold_reason, batch_ref, quantity, unit, received_at, created_at,
            updated_at)
        SELECT 'BENCH-IT-' || n, 'CELL-LFP-21700', c.id, l.id,
            CASE WHEN n %% 100 = 0 THEN 'hold' WHEN n %% 150 = 0 THEN 'blocked'
                 ELSE 'good' END,
            CASE WHEN n %% 100 = 0 THEN 'Bench hold' ELSE '' END,
            'BATCH-' || n / 100, CASE WHEN n %% 7 = 0 THEN 0 ELSE 1 + n %% 30 END,
            'pcs', %(now)s, %(now)s, %(now)s
        FROM generate_series(1, %(count)s) AS n,
             (SELECT id FROM inventory_category ORDER BY id LIMIT 1) AS c,
             (SELECT id FROM inventory_location ORDER BY id LIMIT 1) AS l
        """,
        {"count": items, "now": now},
    )


def build_alarms(days: int, now: datetime, alarms: int, history: int) -> None:
    """Alarms (most closed; a few unacknowledged) and their journal
    (``history`` rows: activated, acknowledged, returned, shelved ...)."""
    span = days * 86400
    execute(
        """
        INSERT INTO scada_alarmevent (timestamp, tag_name, kind, status, severity,
            area, message, value, "limit", active, acknowledged_at, returned_at,
            closed_at, shelve_reason, updated_at)
        SELECT at, 'TT-' || (100 + n %% 400), 'limit',
            CASE WHEN n > %(count)s - 40 THEN 'unack_active' ELSE 'normal' END,
            (ARRAY['low','medium','high','critical'])[1 + n %% 4],
            'Area ' || (1 + n %% 6), 'Temperature high', 61.5, 60.0,
            n > %(count)s - 40,
            CASE WHEN n <= %(count)s - 40 THEN at + interval '2 minutes' END,
            CASE WHEN n <= %(count)s - 40 THEN at + interval '10 minutes' END,
            CASE WHEN n <= %(count)s - 40 THEN at + interval '10 minutes' END,
            '', at
        FROM (SELECT n, %(now)s - make_interval(secs => %(span)s)
                 + make_interval(secs => %(span)s::float8 * n / %(count)s) AS at
              FROM generate_series(1, %(count)s) AS n) AS a
        """,
        {"count": alarms, "span": span, "now": now},
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
          ON a.id = (SELECT min(id) FROM scada_alarmevent) + (n / 5) %% %(alarms)s
        """,
        {"history": history, "alarms": alarms, "now": now},
    )


def build_shift_log(days: int, now: datetime, count: int) -> None:
    """``count`` shift-log entries (notes, incidents, safety, quality,
    maintenance, readings approved), in 8 h shifts from 06:00 UTC."""
    span = days * 86400
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
        {"count": count, "span": span, "now": now},
    )


def build_audit(days: int, now: datetime, count: int, actors) -> None:
    """``count`` audit records after the demo's, hash-chained as
    ``elog.audit`` chains them (COPY)."""
    from bpmos.auditkeys import keyring
    from elog import audit
    from elog.models import AuditRecord

    key_id = keyring().current_id
    last = AuditRecord.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev = last if last else (0, audit.GENESIS_HASH)
    step = timedelta(seconds=days * 86400 / count)
    start = now - step * count
    actions = ("update", "create", "status_change", "approve", "login")
    targets = ("runbooks.workorder", "inventory.item", "lines.machine", "scada.alarm")

    def rows():
        nonlocal seq, prev
        for n in range(count):
            actor = actors[n % len(actors)]
            seq += 1
            target = targets[n % len(targets)]
            fields = {
                "seq": seq,
                "occurred_at": start + step * n,
                "actor_id": actor.pk,
                "actor_username": actor.username,
                "actor_role": actor.role,
                "action": actions[n % len(actions)],
                "target_type": target,
                "target_id": str(n % 5000),
                "target_repr": f"BL-{n % 5000}"
                if n % 3001
                else f"Rare flux capacitor {n}",
                "before": None,
                "after": None,
                "request_id": "",
                "client_address": None,
                "source": "api",
                "prev_hash": prev,
            }
            prev = audit.compute_hash(fields)
            yield (
                seq,
                fields["occurred_at"].isoformat(),
                actor.pk,
                actor.username,
                actor.role,
                fields["action"],
                target,
                fields["target_id"],
                fields["target_repr"],
                None,
                None,
                "",
                None,
                "api",
                fields["prev_hash"],
                prev,
                key_id,
            )

    copy_rows(
        "elog_auditrecord",
        (*audit.HASHED_FIELDS, "hash", "key_id"),
        rows(),
        count,
        "audit records",
    )


# One ledger per battery: the first ``length`` events of this, a failed QA
# retested on every 20th, a hold on every 150th (packs only beyond manufacture).
LEDGER = (
    ("manufactured", {"manufacturer": "BPM Energy", "site": "Pune", "lot": "L1"}),
    ("qa_passed", {"test": "EOL-1"}),
    ("provisioned", {"bmsFirmware": "2.4.1", "nodeId": 17}),
    ("warehoused", {"location": "FG-A-01"}),
    ("reserved", {"reference": "SO-1001"}),
    ("dispatched", {"carrier": "BlueDart"}),
    ("delivered", {"customer": "Ather Energy"}),
    ("serviced", {"note": "Cell balancing"}),
    ("telemetry_summarised", {"sohPercent": 96.5, "samples": 120}),
)
MODELS = ("PACK-LFP-48V", "PACK-NMC-72V")


def build_passports(days: int, now: datetime, events: int, batch: int = 1000):
    """Batteries with hash-chained ledgers (as ``bench.ledger`` writes them)
    until ``events`` ledger events; returns (passports, events, pack ids)."""
    from django.db import transaction

    from bpmos.auditkeys import keyring
    from passports import ledger, lifecycle
    from passports.models import Passport, PassportEvent

    progress = Progress("passport ledger", events)
    written = made = 0
    packs: list[tuple[int, str]] = []
    average = 4.0  # events per battery, as the plan below works out
    estimate = int(events / average) + 1
    step = timedelta(seconds=days * 86400 / estimate)
    start = now - timedelta(days=days)
    while written < events:
        with transaction.atomic():
            plans = []
            size = max(50, min(batch, int((events - written) / average) + 1))
            for n in range(made, made + size):
                kind = ("cell", "module", "pack", "pack")[n % 4]
                # packs: 3 to 9 events; modules and cells: 2 to 4
                length = 3 + n % 7 if kind == "pack" else 2 + n % 3
                chain = list(LEDGER[:length])
                if n % 20 == 0:
                    chain[1:2] = [("qa_failed", {"test": "EOL-1"}), chain[1]]
                if n % 150 == 0:
                    chain.append(("held", {"reason": "Bench hold"}))
                plans.append((n, kind, chain))
            # Each ledger hashed and projected before anything is written (the
            # UUIDs are made in Python), so each batch is two bulk INSERTs.
            rows, ledgers = [], []
            for n, kind, chain in plans:
                passport = Passport(
                    kind=kind,
                    serial=f"BENCH-{kind.upper()}-{n:07d}",
                    model=MODELS[n % 2] if kind == "pack" else f"{kind.upper()}-LFP",
                    manufacturer="BPM Energy",
                    site="Pune",
                    manufactured_at=start + step * n,
                    chemistry="LFP",
                    rated_capacity_ah=Decimal(100),
                    nominal_voltage_v=Decimal("51.2"),
                    energy_kwh=Decimal("5.12"),
                    state="",
                    custodian_kind="manufacturer",
                    custodian_name="BPM Energy",
                )
                snapshot = lifecycle.Snapshot(kind=kind)
                prev = ledger.GENESIS_HASH
                version = 0
                at = start + step * n
                chained = []
                for event_kind, data in chain:
                    try:
                        after = lifecycle.apply(snapshot, event_kind, data)
                    except Exception:  # a move this kind may not make: stop there
                        break
                    snapshot, version = after, version + 1
                    at = min(at + timedelta(hours=2), now - timedelta(seconds=1))
                    fields = {
                        "passport": passport.uuid,
                        "version": version,
                        "kind": event_kind,
                        "occurred_at": at,
                        "actor_username": "bench",
                        "data": data,
                        "prev_hash": prev,
                    }
                    prev = ledger.compute_hash(fields)
                    chained.append((fields, prev))
                ledger._project(passport, snapshot)
                passport.head_hash = prev
                rows.append(passport)
                ledgers.append(chained)
            Passport.objects.bulk_create(rows)
            new_events = [
                PassportEvent(
                    passport=passport,
                    version=fields["version"],
                    kind=fields["kind"],
                    occurred_at=fields["occurred_at"],
                    actor_username="bench",
                    data=fields["data"],
                    prev_hash=fields["prev_hash"],
                    hash=digest,
                    key_id=keyring().current_id,
                )
                for passport, chained in zip(rows, ledgers, strict=True)
                for fields, digest in chained
            ]
            PassportEvent.objects.bulk_create(new_events, batch_size=5000)
            packs += [(p.pk, p.model) for p in rows if p.kind == "pack"]
        made += size
        written += len(new_events)
        progress.advance(len(new_events))
    return made, written, packs


def build_telemetry(days: int, now: datetime, count: int, packs, per_pack: int):
    """``count`` BMS samples of the first packs, ``per_pack`` each, evenly
    over ``days`` days (COPY)."""
    chosen = packs[: max(1, count // per_pack)]
    step = timedelta(seconds=days * 86400 / per_pack)
    start = now - step * per_pack

    def rows():
        for pk, _model in chosen:
            rng = random.Random(pk)
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
        len(chosen) * per_pack,
        "telemetry samples",
    )
    return chosen, len(chosen) * per_pack


# --- the measurements ---------------------------------------------------------------


class Timer:
    """Times GETs through the whole Django stack and keeps the table rows."""

    def __init__(self, repeat: int):
        from django.test import Client

        self.client = Client()
        self.repeat = repeat
        self.rows: list[tuple[str, str, float, float, int]] = []

    def get(
        self,
        label: str,
        path: str,
        token: str,
        *,
        repeat: int | None = None,
        before=None,
    ):
        """Times ``path``; returns the last response's JSON. ``before()``, if
        given, runs (untimed) before each timed request: a write's effect."""
        from django.db import connection

        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        response = self.client.get(path, **headers)  # warm, and the check
        assert response.status_code == 200, (path, response.content[:300])
        queries = []

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        if before is not None:
            before()
        with connection.execute_wrapper(count):
            self.client.get(path, **headers)
        times = []
        for _ in range(repeat or self.repeat):
            if before is not None:
                before()
            started = time.perf_counter()
            response = self.client.get(path, **headers)
            times.append(time.perf_counter() - started)
        p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
        self.rows.append((label, path, p50, p99, len(queries)))
        mark = "ok" if p99 <= GOAL_MS else "MISS"
        print(
            f"  {label:<44} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
            f"{len(queries):>3} q  {mark}",
            flush=True,
        )
        return response.json()

    def table(self, factor: float) -> None:
        print(
            f"\n== summary (goal: p99 <= {GOAL_MS:.0f} ms server time; this machine "
            f"~{GOAL_MS * factor:.0f} ms) =="
        )
        print(f"  {'request':<44} {'p50 ms':>8} {'p99 ms':>8} {'queries':>8}  goal")
        for label, _path, p50, p99, queries in self.rows:
            goal = "meets" if p99 <= GOAL_MS else "misses"
            print(f"  {label:<44} {p50:8.2f} {p99:8.2f} {queries:>8}  {goal}")


def dashboard_requests(
    timer: Timer,
    tokens: dict,
    now: datetime,
    pack,
    model: str,
    *,
    skip_trends: bool = False,
    only_oee_trends: bool = False,
):
    from urllib.parse import urlencode

    from bpmos.dashboards import readmodels, trends

    # The summary, the distributions and the role dashboards come from read
    # models (bpmos.dashboards.readmodels): "served" is a read while nothing
    # changes (every screen's poll), "after a write" the first read after a
    # write dropped the payloads: every part of it, the worst case (its read
    # models invalidated before each request).
    def read_model_requests(label: str, path: str, token: str, *models) -> None:
        if only_oee_trends:
            return
        timer.get(f"{label} (served)", path, token)
        if not models:
            return

        def write() -> None:
            for model in models:
                model.invalidate()

        timer.get(f"{label} (after a write)", path, token, before=write)

    head = tokens["plant-head"]
    rm = readmodels
    read_model_requests(
        "summary",
        "/api/dashboard/summary",
        head,
        rm.PLAN,
        rm.FIRST_PASS,
        rm.PIECES,
        rm.HOLDS,
    )
    read_model_requests(
        "distributions",
        "/api/dashboard/distributions",
        head,
        rm.STAGE_WIP,
        rm.CUSTODY,
        rm.STOCK,
    )
    day = {"bucket": "hour", "from": (now - timedelta(days=1)).isoformat()}
    month = {"bucket": "day", "from": (now - timedelta(days=30)).isoformat()}
    # 12 weeks: the roll-up metrics only (the plant's history is --days long)
    weeks = {"bucket": "week", "from": (now - timedelta(weeks=12)).isoformat()}
    rolled_up = ("lineYield", "oee")
    for metric in () if skip_trends else trends.METRICS:
        if only_oee_trends and metric not in (*rolled_up, "built"):
            continue
        targets = [{}]
        if metric in trends.TELEMETRY_METRICS:
            targets = [{"passport": pack}, {"model": model}]
        spans = [("day", day), ("month", month)]
        if metric in rolled_up:
            spans.append(("12 weeks", weeks))
        for target in targets:
            for span, window in spans:
                query = urlencode({"metric": metric, **window, **target})
                what = next(iter(target), "")
                timer.get(
                    f"trends {metric} {what} {span}".replace("  ", " "),
                    f"/api/dashboard/trends?{query}",
                    head,
                )
    for role in ("operator", "supervisor", "plant-head", "admin", "auditor"):
        read_model_requests(
            f"{role} summary",
            f"/api/dashboard/{role}/summary",
            tokens[role],
            rm.ROLE_SUMMARY[role],
            *((rm.STAGE_WIP,) if role in ("planner", "plant-head") else ()),
        )
        read_model_requests(
            f"{role} attention",
            f"/api/dashboard/{role}/attention",
            tokens[role],
            *((rm.ATTENTION[role],) if role in rm.ATTENTION else ()),
        )


def roll_up_trend_times(now: datetime, repeat: int) -> None:
    """The OEE and line-yield trends computed in process (``trends.trend_get``,
    no HTTP stack): from the day roll-ups for day and week buckets, and from
    the hour roll-ups alone (``from_days=False``, the path before the day
    roll-ups) on the same data; p50 / p99 ms."""
    from functools import partial
    from unittest import mock

    from bpmos.dashboards import trends
    from lines import selectors

    spans = {
        "day": ("hour", now - timedelta(days=1)),
        "month": ("day", now - timedelta(days=30)),
        "12 weeks": ("week", now - timedelta(weeks=12)),
    }
    selector_of = {"oee": "line_bucket_figures", "lineYield": "piece_counts_series"}
    print("\n== OEE / lineYield trends in process (trend_get), p50 / p99 ms ==")
    for metric, selector in selector_of.items():
        for span, (bucket, start) in spans.items():
            figures = []
            for from_days in (True, False):
                patched = partial(getattr(selectors, selector), from_days=from_days)
                times = []
                with mock.patch.object(selectors, selector, patched):
                    for _ in range(repeat):
                        started = time.perf_counter()
                        trends.trend_get(
                            metric=metric, bucket=bucket, start=start, end=now
                        )
                        times.append((time.perf_counter() - started) * 1000)
                figures.append(
                    f"{statistics.median(times):8.2f} {percentile(times, 99):8.2f}"
                )
            print(
                f"  {metric:9} {span:8} ({bucket:4})  days path {figures[0]}"
                f"   hours path {figures[1]}"
            )


def log_requests(timer: Timer, token: str, now: datetime, deep_pages: int):
    from urllib.parse import urlencode

    from bpmos.logevents import CATEGORIES

    first = timer.get("logs first page", "/api/logs", token)
    # Follow the cursor down, untimed, then time the page found there.
    path = first["next"]
    progress = Progress("walk the log stream", deep_pages)
    for _ in range(deep_pages):
        page = timer.client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").json()
        path = page["next"]
        progress.advance()
    deep = path.split("/api/logs", 1)[1]
    timer.get(f"logs page {deep_pages + 2} (deep)", f"/api/logs{deep}", token)
    for category in CATEGORIES:
        timer.get(f"logs category={category}", f"/api/logs?category={category}", token)
    timer.get(
        "logs severity=error,critical", "/api/logs?severity=error,critical", token
    )
    window = urlencode(
        {
            "from": (now - timedelta(days=12)).isoformat(),
            "to": (now - timedelta(days=11)).isoformat(),
        }
    )
    timer.get("logs 1-day window 11 days back", f"/api/logs?{window}", token)
    timer.get("logs search common (torque)", "/api/logs?search=torque", token)
    timer.get(
        "logs search rare (flux capacitor)",
        "/api/logs?search=flux%20capacitor",
        token,
        repeat=max(5, timer.repeat // 3),
    )


def machine_factor(repeat: int) -> float:
    from bench.lines import REFERENCE_SERIALIZER, serializer_times

    reference = statistics.median(serializer_times(repeat))
    factor = reference / REFERENCE_SERIALIZER
    print(
        f"machine: 50 readings, ModelSerializer {reference * 1000:.2f} ms"
        f" (docs/performance.md: {REFERENCE_SERIALIZER * 1000:.2f} ms), {factor:.1f}x;"
        f" the {GOAL_MS:.0f} ms goal is ~{GOAL_MS * factor:.0f} ms of this machine's"
        " time"
    )
    return factor


def reuse_bench_django() -> None:
    """Django on the bench database a previous run built, migrated."""
    import os
    import sys

    from bench.common import BASE_DIR, bench_database_url

    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ["BPMOS_LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print("bench database: reused, migrated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--telemetry", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30, help="the plant's history")
    parser.add_argument("--repeat", type=int, default=30, help="samples per request")
    parser.add_argument("--deep-pages", type=int, default=200)
    parser.add_argument(
        "--only-read-models",
        action="store_true",
        help="time only the summary, distributions and role dashboards",
    )
    parser.add_argument(
        "--only-oee-trends",
        action="store_true",
        help="time only the OEE and line-yield trends (and built, the floor),"
        " through the stack and in process",
    )
    parser.add_argument(
        "--only-logs",
        action="store_true",
        help="time only /api/logs (with --reuse: a before/after of the stream)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time again over the bench database a previous run built (migrated"
        " first: a before/after of a change on the same data)",
    )
    args = parser.parse_args()

    import os

    os.environ["BPMOS_ACCESS_TOKEN_MINUTES"] = "240"  # outlives the run
    if args.reuse:
        reuse_bench_django()
    else:
        setup_bench_django()
    from django.conf import settings
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from bpmos.accounts.models import User

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if not args.reuse:
        started = time.perf_counter()
        call_command("seed_demo", verbosity=0)
        print(f"demo plant seeded in {time.perf_counter() - started:.0f} s")
    now = datetime.now(UTC).replace(microsecond=0)
    users = {
        role: User.objects.filter(role=role, is_active=True).order_by("pk").first()
        or User.objects.create(username=f"bench-{role}", role=role)
        for role in (
            "operator",
            "planner",
            "supervisor",
            "plant-head",
            "admin",
            "auditor",
        )
    }
    tokens = {role: str(AccessToken.for_user(user)) for role, user in users.items()}

    if args.reuse:
        chosen = reused_packs()
        readings = 0
    else:
        chosen, readings = build_plant(args, now, list(users.values()))
    report_plant(readings)
    print()
    factor = machine_factor(200)
    timer = Timer(args.repeat)
    pack_pk, model = chosen[0]
    from passports.models import Passport

    pack = Passport.objects.get(pk=pack_pk).serial
    if not args.only_logs:
        print("\n== dashboards ==")
        dashboard_requests(
            timer,
            tokens,
            now,
            pack,
            model,
            skip_trends=args.only_read_models,
            only_oee_trends=args.only_oee_trends,
        )
    if args.only_oee_trends:
        roll_up_trend_times(now, args.repeat)
    elif not args.only_read_models:
        print("\n== /api/logs (as an auditor: every category) ==")
        log_requests(timer, tokens["auditor"], now, args.deep_pages)
    timer.table(factor)
    machine_factor(200)  # again: how much the machine's speed moved meanwhile


def build_plant(args, now: datetime, actors: list):
    """Everything of step 1 after the demo plant; returns the packs with
    telemetry ((pk, model)) and the number of readings."""
    from django.db import connection

    from lines import services

    # The log rows: 30 % audit, 20 % shift log, 30 % ledger, 20 % alarm journal.
    audit_rows = args.log_rows * 3 // 10
    shift_rows = args.log_rows * 2 // 10
    ledger_rows = args.log_rows * 3 // 10
    alarm_rows = args.log_rows - audit_rows - shift_rows - ledger_rows
    started = time.perf_counter()
    readings = build_lines(5, 5, 2, args.readings, args.days)
    build_work(args.days, 6000, now)
    build_registers(args.days, now, exceptions=3000, items=20_000)
    build_alarms(args.days, now, alarms=max(100, alarm_rows // 10), history=alarm_rows)
    build_shift_log(args.days, now, shift_rows)
    build_audit(args.days, now, audit_rows, actors)
    _passports, _events, packs = build_passports(args.days, now, ledger_rows)
    chosen, _samples = build_telemetry(args.days, now, args.telemetry, packs, 500)
    print(f"bulk load {time.perf_counter() - started:.0f} s")

    from passports import rollups

    started = time.perf_counter()
    made = rollups.rebuild()  # the telemetry came by COPY, past the ingest
    print(
        f"passport trend roll-ups {time.perf_counter() - started:.1f} s"
        f" ({made['telemetryModelHours']:,} model-hours,"
        f" {made['firstQaResults']:,} first QA results)"
    )

    started = time.perf_counter()
    hours = services.machine_hours_refresh()
    print(
        f"OEE hourly roll-ups (beat) {time.perf_counter() - started:.0f} s"
        f" ({hours:,} machine-hours)"
    )
    started = time.perf_counter()
    services.oee_snapshots_refresh()
    print(f"OEE snapshots (beat) {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have by now
    return chosen, readings


def reused_packs() -> list[tuple[int, str]]:
    """The packs with telemetry of a previous run's plant."""
    from passports.models import Passport, TelemetryReading

    pk = TelemetryReading.objects.order_by("passport_id").values_list(
        "passport_id", flat=True
    )[0]
    return [(pk, Passport.objects.get(pk=pk).model)]


def report_plant(readings: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in (
            "lines_machinereading",
            "lines_machinehour",
            "passports_telemetryreading",
            "elog_auditrecord",
            "elog_shiftlogentry",
            "passports_passportevent",
            "scada_alarmhistory",
            "passports_passport",
            "runbooks_workorder",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    log_total = sum(
        counts[t]
        for t in (
            "elog_auditrecord",
            "elog_shiftlogentry",
            "passports_passportevent",
            "scada_alarmhistory",
        )
    )
    print(
        f"bench plant: {counts['lines_machinereading']:,} readings "
        f"({counts['lines_machinehour']:,} machine-hours), "
        f"{counts['passports_telemetryreading']:,} telemetry samples, "
        f"{log_total:,} log rows (audit {counts['elog_auditrecord']:,}, shift log "
        f"{counts['elog_shiftlogentry']:,}, ledger "
        f"{counts['passports_passportevent']:,}, alarm journal "
        f"{counts['scada_alarmhistory']:,}), "
        f"{counts['passports_passport']:,} passports, "
        f"{counts['runbooks_workorder']:,} work orders"
        + (f"; {readings:,} readings asked" if readings else " (reused)")
    )


if __name__ == "__main__":
    main()
