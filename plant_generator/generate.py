"""Generate a plant of a given scale: ``generate(plan, seed=..., end=...)``.

A plan is the number of rows of each kind and the days of history they span;
``SCALES`` holds the four named ones. ``year`` is the issue's plant-year
(docs/performance.md): 10M machine readings, 100k passports with genealogy,
1M ledger events, 1M audit records, 50k work orders, 200k inventory items,
100k alarms and 100k shift-log entries. ``month`` and ``day`` are the same
plant over 30 days and one day (1/12 and 1/365 of it); ``small`` is what the
tests use (seconds).

The plant is a pure function of the plan, the seed and the end time: the same
three give the same rows (UUIDs, hashes, values and times), only the
database's own ids may differ.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.db import connection, connections, transaction

from plant_generator import builders
from plant_generator.builders import ProgressFactory


@dataclass(frozen=True)
class Plan:
    """How much of each kind a plant holds."""

    days: float
    readings: int
    passports: int
    ledger_events: int
    audit_records: int
    work_orders: int
    items: int
    alarms: int
    alarm_history: int
    shift_log: int
    exceptions: int
    telemetry: int
    lines: int = 5
    stations: int = 5
    machines_per_station: int = 2


YEAR = Plan(
    days=365,
    readings=10_000_000,
    passports=100_000,
    ledger_events=1_000_000,
    audit_records=1_000_000,
    work_orders=50_000,
    items=200_000,
    alarms=100_000,
    alarm_history=200_000,
    shift_log=100_000,
    exceptions=10_000,
    telemetry=1_000_000,
)


def scaled(plan: Plan, fraction: float, days: float) -> Plan:
    """``plan`` times ``fraction`` (counts rounded up), over ``days`` days."""
    counts = {
        name: -(-int(value * fraction * 1000) // 1000)
        for name, value in asdict(plan).items()
        if name not in ("days", "lines", "stations", "machines_per_station")
    }
    return replace(plan, days=days, **counts)


SCALES: dict[str, Plan] = {
    "small": Plan(
        days=2,
        readings=2_000,
        passports=110,
        ledger_events=600,
        audit_records=500,
        work_orders=40,
        items=200,
        alarms=50,
        alarm_history=100,
        shift_log=60,
        exceptions=25,
        telemetry=500,
        lines=2,
        stations=2,
        machines_per_station=1,
    ),
    "day": scaled(YEAR, 1 / 365, 1),
    "month": scaled(YEAR, 1 / 12, 30),
    "year": YEAR,
}


@dataclass
class Report:
    """What was built and how long each part took (seconds)."""

    scale: str
    seed: int
    end: datetime
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    telemetry_packs: list[tuple[int, str]] = field(default_factory=list)
    # The whole run, start to end: less than the parts' sum when some ran
    # side by side (``parallel``).
    elapsed: float | None = None
    parallel: bool = False

    @property
    def total_seconds(self) -> float:
        if self.elapsed is not None:
            return self.elapsed
        return sum(self.seconds.values())


def forked(work: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``work()`` in a forked process with its own database connection
    (the parent's are closed first: it must hold no transaction); returns
    ``join()``, which waits for it and returns its result or raises its
    error. The child writes nothing to the console (the parent's progress
    display runs a thread whose locks a fork may copy held)."""
    if connection.in_atomic_block:
        raise RuntimeError("forked() needs the parent out of any transaction")
    connections.close_all()
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def run() -> None:
        try:
            outcome = ("ok", work())
        except BaseException:
            outcome = ("error", traceback.format_exc())
        try:
            connections.close_all()
        finally:
            send.send(outcome)

    process = context.Process(target=run, daemon=True)
    process.start()
    send.close()

    def join() -> Any:
        try:
            status, value = receive.recv()
        except EOFError:
            status, value = "error", "(no answer)"
        process.join()
        receive.close()
        if status != "ok":
            raise RuntimeError(
                f"a part run in a second process failed (exit code "
                f"{process.exitcode}):\n{value}"
            )
        return value

    return join


# The tables a plant's counts are read from, by the plan's names.
TABLES = {
    "readings": "lines_machinereading",
    "passports": "passports_passport",
    "ledger_events": "passports_passportevent",
    "audit_records": "elog_auditrecord",
    "work_orders": "runbooks_workorder",
    "work_order_stages": "runbooks_workorderstage",
    "items": "inventory_item",
    "alarms": "scada_alarmevent",
    "alarm_history": "scada_alarmhistory",
    "shift_log": "elog_shiftlogentry",
    "exceptions": "exceptions_plantexception",
    "telemetry": "passports_telemetryreading",
    "dispatch_jobs": "passports_dispatchjob",
    "machine_hours": "lines_machinehour",
}


def plant_counts() -> dict[str, int]:
    """The rows of each kind in the database (exact counts)."""
    counts = {}
    with connection.cursor() as cursor:
        for name, table in TABLES.items():
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[name] = cursor.fetchone()[0]
    return counts


def base(log=lambda line: None) -> list:
    """What every plant needs first: one user per role, the runbook
    templates, the inventory categories and bins. Returns the users (audit
    actors), in role order."""
    from bpmos.accounts import demo as accounts_demo
    from bpmos.accounts.models import User
    from bpmos.roles import Role
    from inventory import demo as inventory_demo
    from runbooks import demo as runbooks_demo

    accounts_demo.seed(log)
    runbooks_demo.seed_runbooks(log)
    inventory_demo.seed_places()
    return [User.objects.get(username=role.value) for role in Role]


def generate(
    plan: Plan,
    *,
    seed: int = 1,
    end: datetime | None = None,
    scale: str = "custom",
    progress: ProgressFactory = builders.silent,
    log=lambda line: None,
    finish: bool = True,
    parallel: bool | None = None,
) -> Report:
    """Build ``plan``'s plant up to ``end`` (default: now, to the minute).
    With ``finish``, the roll-ups and read models are rebuilt as beat would
    have them (``finish_plant``). PostgreSQL only.

    ``parallel`` (default: when called outside any transaction, as the
    command is): the passports, ledgers and telemetry are built in a second
    process beside the readings, work orders ... and audit records (they
    share no table, sequence or chain), and the machine-hour roll-ups are
    split over two processes by machine. The same rows either way, each
    part still in its own transaction; only the database's ids of rows
    written side by side may interleave differently."""
    if connection.vendor != "postgresql":
        raise RuntimeError(
            "generate_plant needs PostgreSQL (COPY and set-based SQL): set "
            "DATABASE_URL."
        )
    if parallel is None:
        parallel = not connection.in_atomic_block
    clock = time.perf_counter()
    end = end or datetime.now(UTC).replace(second=0, microsecond=0)
    report = Report(scale=scale, seed=seed, end=end, parallel=parallel)

    def step(name: str, work, tables: tuple[str, ...] = (), say=log, into=None):
        """One part in one transaction, its commit not waited for on disk
        (the load only: a crash loses the plant, which is built again), the
        plain indexes of ``tables`` built after its rows (``deferred_indexes``)."""
        say(f"{name} ...")
        started = time.perf_counter()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
            with builders.deferred_indexes(*tables):
                result = work()
        seconds = report.seconds if into is None else into
        seconds[name] = time.perf_counter() - started
        say(f"{name}: {seconds[name]:.1f} s")
        return result

    actors = step("base (users, runbooks, bins)", lambda: base(log))
    machines = step(
        "lines",
        lambda: builders.build_topology(
            plan.lines, plan.stations, plan.machines_per_station
        ),
    )

    def passports_part(progress, say, into) -> tuple[dict, list]:
        """The passports and their ledgers, then the packs' telemetry."""
        built = step(
            "passports and ledgers",
            lambda: builders.build_passports(
                days=plan.days,
                end=end,
                passports=plan.passports,
                events=plan.ledger_events,
                seed=seed,
                bar=progress("ledger events", plan.ledger_events),
            ),
            ("passports_passport", "passports_passportevent", "passports_dispatchjob"),
            say,
            into,
        )
        per_pack = 500 if plan.telemetry >= 5000 else 50
        packs = step(
            "battery telemetry",
            lambda: builders.build_telemetry(
                days=plan.days,
                end=end,
                count=plan.telemetry,
                packs=built.packs,
                per_pack=per_pack,
                seed=seed,
                bar=progress("telemetry samples", plan.telemetry),
            ),
            ("passports_telemetryreading",),
            say,
            into,
        )
        return into, packs

    if parallel:
        # Beside everything up to the audit records: no table, sequence or
        # hash chain in common. Its times come back with its telemetry packs.
        log("passports and ledgers, battery telemetry: in a second process ...")
        waiting = forked(lambda: passports_part(builders.silent, lambda line: None, {}))

        def join() -> None:
            seconds, report.telemetry_packs = waiting()
            report.seconds.update(seconds)
            for name, took in seconds.items():
                log(f"{name} (second process): {took:.1f} s")
            for label, total in (
                ("ledger events", plan.ledger_events),
                ("telemetry samples", plan.telemetry),
            ):
                progress(label, total).advance(total)

    def main_part() -> None:
        """The readings, work orders, exceptions, items, alarms, shift log
        and audit records (in this order: the readings' partitions are
        audited before the generated audit records)."""
        step(
            "machine readings",
            lambda: builders.build_readings(
                machines,
                readings=plan.readings,
                days=plan.days,
                end=end,
                seed=seed,
                bar=progress("machine readings", plan.readings),
            ),
        )
        step(
            "work orders",
            lambda: builders.build_work(
                days=plan.days, orders=plan.work_orders, end=end
            ),
            ("runbooks_workorder", "runbooks_workorderstage"),
        )
        step(
            "exceptions",
            lambda: builders.build_exceptions(
                days=plan.days, end=end, count=plan.exceptions
            ),
            ("exceptions_plantexception",),
        )
        step(
            "inventory items",
            lambda: builders.build_items(end=end, count=plan.items),
            ("inventory_item",),
        )
        step(
            "alarms",
            lambda: builders.build_alarms(
                days=plan.days, end=end, alarms=plan.alarms, history=plan.alarm_history
            ),
            ("scada_alarmevent", "scada_alarmhistory"),
        )
        step(
            "shift log",
            lambda: builders.build_shift_log(
                days=plan.days, end=end, count=plan.shift_log
            ),
            ("elog_shiftlogentry",),
        )
        step(
            "audit records",
            lambda: builders.build_audit(
                days=plan.days,
                end=end,
                count=plan.audit_records,
                actors=actors,
                bar=progress("audit records", plan.audit_records),
            ),
            ("elog_auditrecord",),
        )

    if parallel:
        try:
            main_part()
        except BaseException:
            # No second process left writing into the database: wait for
            # it (its own error, if any, is the lesser news).
            with contextlib.suppress(Exception):
                join()
            raise
        join()
    else:
        main_part()
        _, report.telemetry_packs = passports_part(progress, log, None)
    if finish:
        if parallel:
            log("roll-ups and read models ...")
            started = time.perf_counter()
            finish_plant(end, parallel=True)
            report.seconds["roll-ups and read models"] = time.perf_counter() - started
            log(f"roll-ups and read models: {time.perf_counter() - started:.1f} s")
        else:
            step("roll-ups and read models", lambda: finish_plant(end))
    report.counts = plant_counts()
    report.elapsed = time.perf_counter() - clock
    return report


def finish_plant(end: datetime, *, parallel: bool = False) -> None:
    """What beat and the services would have kept up to date while the plant
    ran: the passport roll-ups, the machine-hour OEE roll-ups and snapshots,
    the dashboards' cached read models; then the planner's statistics.

    ``parallel`` (outside any transaction, nothing else writing): every
    other machine's hours are rolled up in a second process, beside the
    passport roll-ups and the rest of the machines here (each machine's
    hours and days depend on its own readings only)."""
    from bpmos.dashboards import readmodels
    from bpmos.readcache import invalidate_many
    from lines import services as line_services
    from lines.models import Machine
    from passports import rollups

    with connection.cursor() as cursor:
        # The roll-ups below read the loaded tables: plan them on statistics.
        cursor.execute("ANALYZE")
    if parallel:
        ids = list(Machine.objects.order_by("pk").values_list("pk", flat=True))

        def hours(machine_ids: list[int]) -> int:
            with connection.cursor() as cursor:
                # The load's commits are not waited for on disk (as its parts').
                cursor.execute("SET synchronous_commit = off")
            return line_services.machine_hours_refresh(now=end, machine_ids=machine_ids)

        waiting = forked(lambda: hours(ids[1::2]))
        try:
            with transaction.atomic():
                rollups.rebuild()
                rollups.custody_units_rebuild()
            hours(ids[0::2])
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        finally:
            waiting()
    else:
        rollups.rebuild()
        rollups.custody_units_rebuild()
        line_services.machine_hours_refresh(now=end)
    line_services.oee_snapshots_refresh(now=end)
    invalidate_many(readmodels.ALL)
    with connection.cursor() as cursor:
        # The loaded tables were analysed above and have not changed since:
        # only the roll-ups' own tables are (a second whole-database ANALYZE
        # sampled every readings partition again).
        cursor.execute(f"ANALYZE {', '.join(ROLLUP_TABLES)}")


# What finish_plant writes (analysed after it).
ROLLUP_TABLES = (
    "passports_telemetrymodelhour",
    "passports_firstqaresult",
    "passports_firstqahour",
    "passports_custodyunitcount",
    "lines_machinehour",
    "lines_machineday",
    "lines_oeesnapshot",
)
