"""Benchmark of the passport ledger (docs/passports.md): append rate and verify time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_pptests \\
    REDIS_URL=redis://127.0.0.1:6379/14 \\
    .venv/bin/python -m bench.ledger [--events 2000] [--writers 4] [--verify 100000]

The bench uses its own database, ``<DATABASE_URL's name>_bench``, which it
re-creates (migrated) on every run; nothing else is touched. Live events go to
the Redis channel layer after each commit, as in production.

1. Append: ``passports.ledger.append`` as the services call it (one transaction
   per event: row lock, version check, lifecycle, event with its HMAC, the
   projection, the audit record, the outbox row, the dispatch hook; after commit
   the event is sent to Redis). One writer, then N writers in threads on N
   distinct passports, and the same N writers as N forked OS processes (each its
   own database connection and delivery thread, as gunicorn's and Celery's
   workers: the threads share one GIL, the processes do not), with the CPU
   per event of the writers, their PostgreSQL backends and Redis. Goal >= 2,000
   events/s. ``--append-only`` runs only this part.
2. Where an append's time goes: the same runs with timers around the audit
   record (and, inside it, the wait for the audit chain's global advisory lock,
   held until commit), the outbox write, the dispatch hook and the delivery
   after commit; and, for comparison only, the same appends with the audit
   record switched off (not a supported mode: every change is audited).
3. Verify: ``ledger.verify()`` over 100,000 events (10,000 packs with ten-event
   ledgers: manufactured ... delivered, serviced, telemetry), written in bulk
   with the same hashes ``append`` computes. Goal <= 6 s (<= 60 s for 1M);
   the CPU time of this process is printed too (the wall time on a shared
   machine is mostly waiting for a core).
4. Checkpoint: ``passports.checkpoints.checkpoint_build()`` over the same
   100,000 events (the first checkpoint: every chain grew, each new event's
   link and HMAC checked, one leaf per pack, the Merkle root), then the proof
   of one event and ``checkpoints_verify()``. ``--checkpoint-only`` runs
   only 3 and 4.

``--batch-only`` runs only the batch appends (``ledger.append_many``, one
transaction per pallet of ``--pallet`` events, ``--batches`` per writer, 1 then
``--writers`` writers), each with the CPU this process spent per event.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta

from bench.common import Progress, Row, cpu_seconds, setup_bench_django

APPEND_GOAL = 2_000  # events/s
VERIFY_GOAL = 6.0  # seconds for 100k events (60 s for 1M)


# --- timers around the parts of an append ------------------------------------------


class Timers:
    """Wall time spent inside patched functions, summed over threads."""

    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)
        self.lock = threading.Lock()

    def timed(self, original, label: str):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with self.lock:
                    self.totals[label] += time.perf_counter() - started

        return timed

    def wrap(self, module, name: str, label: str):
        original = getattr(module, name, None)
        if original is None:  # an older tree (A/B runs): nothing to time
            return lambda: None
        setattr(module, name, self.timed(original, label))
        return lambda: setattr(module, name, original)

    def wrap_hook(self, hooks: list, hook, label: str):
        """Time ``hook`` in its registered hook list (``ledger.APPEND_HOOKS``)."""
        index = hooks.index(hook)
        hooks[index] = self.timed(hook, label)
        return lambda: hooks.__setitem__(index, hook)


@contextmanager
def instrumented():
    from django.db.backends.base.base import BaseDatabaseWrapper

    from bpmos import events, readcache
    from bpmos.events import services as event_services
    from elog import audit
    from passports import ledger
    from passports.dispatch import services as dispatch

    timers = Timers()
    undo = [
        timers.wrap(BaseDatabaseWrapper, "_commit", "COMMIT (durable: WAL fsync)"),
        # PostgreSQL: a single append's statements go in two round trips
        # (bulk.OneTrip): the row lock with the audit chain's claim, then the
        # event, projection, audit record and outbox row (in "rest"), so the
        # audit record and outbox timers below are their Python only.
        timers.wrap(ledger, "_lock_and_claim", "row lock + audit chain claim"),
        timers.wrap(audit, "record_many", "audit record"),
        timers.wrap(audit, "_lock_chain", "  of which: audit chain lock wait"),
        timers.wrap(events, "publish_many", "outbox write (publish_many)"),
        timers.wrap(readcache, "invalidate_many", "read models dropped (Redis)"),
        timers.wrap_hook(
            ledger.APPEND_HOOKS, dispatch.on_ledger_append, "dispatch hook"
        ),
        timers.wrap(
            event_services, "_deliver_quietly", "  delivery to Redis (its thread)"
        ),
    ]
    try:
        yield timers
    finally:
        for restore in reversed(undo):
            restore()


@contextmanager
def without_audit():
    from elog import audit

    original = audit.record_many
    audit.record_many = lambda entries, **options: []
    try:
        yield
    finally:
        audit.record_many = original


# --- appends ------------------------------------------------------------------------


def append_one(passport_id: int, n: int, actor) -> None:
    """The bench's single append: the ``n``-th telemetry summary of a pack."""
    from passports import ledger
    from passports.models import EventKind

    ledger.append(
        passport=passport_id,
        kind=EventKind.TELEMETRY_SUMMARISED,
        data={"sohPercent": 97.5 - n / 1000, "socPercent": 80, "samples": 60},
        actor=actor,
    )


def append_events(passport_id: int, count: int, actor, progress: Progress) -> None:
    from django.db import connections

    try:
        for n in range(count):
            append_one(passport_id, n, actor)
            progress.advance()
    finally:
        connections.close_all()


def measure_appends(
    label: str, passports: list[int], per_writer: int, actor, *, cpu: bool = False
) -> float:
    """Events/s with one thread per passport in ``passports`` (threads of
    this one process: they share its GIL with the delivery thread). ``cpu``:
    print the CPU this process spent per event meanwhile."""
    total = per_writer * len(passports)
    progress = Progress(label, total)
    threads = [
        threading.Thread(target=append_events, args=(pk, per_writer, actor, progress))
        for pk in passports
    ]
    started, spent = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = total / (time.perf_counter() - started)
    if cpu:
        per_event = (time.process_time() - spent) / total
        load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
        print(
            f"  {label}: {rate:,.0f} events/s; CPU of this process "
            f"{per_event * 1000:.2f} ms an event; load average {load}"
        )
    return rate


# --- the writers as OS processes (gunicorn / Celery workers) --------------------------


def _backend_pids(exclude: int | None = None) -> list[int]:
    """The PostgreSQL backends connected to this bench's database (the
    writers' and their delivery threads'), from ``pg_stat_activity``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall() if pid != exclude]


def _redis_cpu() -> float | None:
    """Redis's own CPU seconds so far (``INFO cpu``; a shared server: every
    client's commands count), or None without Redis."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def _process_writer(passport_id, count, actor_id, ready, finish, done, finished):
    """One writer process: its own Django connection (the parent closed
    its own before the fork), ``count`` appends between the two barriers,
    then its delivery thread drained, as a worker's at exit."""
    from django.db import connection

    from bpmos.accounts.models import User
    from bpmos.events import services as event_services

    actor = User.objects.get(pk=actor_id)
    connection.ensure_connection()
    ready.wait()
    for n in range(count):
        append_one(passport_id, n, actor)
    finished.put(time.perf_counter())  # CLOCK_MONOTONIC: one clock for all
    event_services._background.drain(timeout=60)
    finish.wait()  # the parent reads every process's CPU now
    done.wait()
    connection.close()


def measure_processes(
    label: str, passports: list[int], per_writer: int, actor
) -> tuple[float, dict[str, float]]:
    """Events/s with one forked OS process per passport (each its own
    database connection and delivery thread, as gunicorn's workers), and the
    CPU spent per event: the writer processes (their delivery threads
    included), their PostgreSQL backends, Redis (a shared server)."""
    import multiprocessing

    from django.db import connection, connections

    context = multiprocessing.get_context("fork")
    parties = len(passports) + 1
    ready, finish, done = (context.Barrier(parties) for _ in range(3))
    finished = context.Queue()
    from bpmos.events import services as event_services

    event_services._background.drain(timeout=60)  # no thread busy at the fork
    connections.close_all()  # no connection is shared with the children
    processes = [
        context.Process(
            target=_process_writer,
            args=(pk, per_writer, actor.pk, ready, finish, done, finished),
        )
        for pk in passports
    ]
    for process in processes:
        process.start()
    pids = [process.pid for process in processes]
    connection.ensure_connection()
    backends = lambda: cpu_seconds(_backend_pids())  # noqa: E731
    ready.wait()
    started = time.perf_counter()
    cpu = {"writers": cpu_seconds(pids), "postgres": backends()}
    redis_before = _redis_cpu()
    ends = [finished.get() for _ in processes]
    finish.wait()
    cpu = {
        "writers": cpu_seconds(pids) - cpu["writers"],
        "postgres": backends() - cpu["postgres"],
    }
    if redis_before is not None:
        cpu["redis"] = _redis_cpu() - redis_before
    done.wait()
    for process in processes:
        process.join()
    total = per_writer * len(passports)
    rate = total / (max(ends) - started)
    per_event = {name: seconds / total for name, seconds in cpu.items()}
    parts = ", ".join(f"{name} {s * 1000:.2f}" for name, s in per_event.items())
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(
        f"  {label}: {rate:,.0f} events/s; CPU per event "
        f"{sum(per_event.values()) * 1000:.2f} ms ({parts} ms); load average {load}"
    )
    return rate, per_event


def append_batches(
    passport_ids: list[int], batches: int, actor, progress: Progress
) -> None:
    """``batches`` batch appends, each one event on every passport of
    ``passport_ids`` (a pallet), through ``ledger.append_many``."""
    from django.db import connections

    from passports import ledger
    from passports.models import EventKind

    try:
        for n in range(batches):
            ledger.append_many(
                events=[
                    ledger.NewEvent(
                        passport=pk,
                        kind=EventKind.TELEMETRY_SUMMARISED,
                        data={"sohPercent": 97.5 - n / 1000, "samples": 60},
                    )
                    for pk in passport_ids
                ],
                actor=actor,
            )
            progress.advance(len(passport_ids))
    finally:
        connections.close_all()


def measure_batches(label: str, pallets: list[list[int]], batches: int, actor) -> float:
    """Events/s with one thread per pallet, each appending ``batches`` batches."""
    total = batches * sum(len(p) for p in pallets)
    progress = Progress(label, total)
    threads = [
        threading.Thread(target=append_batches, args=(p, batches, actor, progress))
        for p in pallets
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started)


def report_breakdown(timers: Timers, elapsed_total: float, events: int) -> None:
    per_event = elapsed_total / events
    print(f"    per event (sum over writers)        {per_event * 1000:7.3f} ms")
    accounted = 0.0
    for label, seconds in timers.totals.items():
        if not label.startswith("  "):
            accounted += seconds
        print(
            f"    {label:<36}{seconds / events * 1000:7.3f} ms"
            f"  {seconds / elapsed_total:6.1%}"
        )
    rest = elapsed_total - accounted
    print(
        f"    {'rest (BEGIN, event+audit+outbox trip)':<36}"
        f"{rest / events * 1000:7.3f} ms  {rest / elapsed_total:6.1%}"
    )


def run_breakdown(label: str, passports: list[int], per_writer: int, actor) -> float:
    with instrumented() as timers:
        rate = measure_appends(label, passports, per_writer, actor)
    events = per_writer * len(passports)
    # Thread-seconds spent: each writer was busy for the whole run.
    busy = events / rate * len(passports)
    report_breakdown(timers, busy, events)
    return rate


# --- a big ledger for verify, written in bulk -----------------------------------------

CHAIN = (
    ("manufactured", {"manufacturer": "BPM Energy", "site": "Pune", "lot": "L1"}),
    ("qa_passed", {"test": "EOL-1"}),
    ("provisioned", {"bmsFirmware": "2.4.1", "nodeId": 17}),
    ("warehoused", {"location": "FG-A-01"}),
    ("reserved", {"reference": "SO-1001"}),
    ("dispatched", {"carrier": "BlueDart"}),
    ("delivered", {"customer": "Ather Energy"}),
    ("serviced", {"note": "Cell balancing"}),
    ("telemetry_summarised", {"sohPercent": 96.5, "samples": 120}),
    ("telemetry_summarised", {"sohPercent": 95.25, "samples": 118}),
)


def build_ledgers(events: int, batch: int = 1000, prefix: str = "BENCH") -> int:
    """``events`` // 10 packs with ten-event ledgers, hashed as ``append`` does,
    written by the plant generator's bulk path (``plant_generator.builders
    .write_ledgers``: lifecycle, the same HMAC, COPY)."""
    from decimal import Decimal

    from django.db import transaction
    from django.utils import timezone

    from passports.models import Passport
    from plant_generator.builders import write_ledgers

    packs = events // len(CHAIN)
    progress = Progress(f"build {events:,}-event set", packs * len(CHAIN))
    start = timezone.now() - timedelta(days=30)
    chain = list(CHAIN)
    times = [start + timedelta(hours=version) for version in range(1, len(chain) + 1)]
    for first in range(0, packs, batch):
        ledgers = [
            (
                Passport(
                    kind="pack",
                    serial=f"{prefix}-{n:07d}",
                    model="PACK-LFP-48V",
                    manufacturer="BPM Energy",
                    site="Pune",
                    manufactured_at=start,
                    chemistry="LFP",
                    rated_capacity_ah=Decimal(100),
                    nominal_voltage_v=Decimal("51.2"),
                    energy_kwh=Decimal("5.12"),
                    state="",
                    custodian_kind="manufacturer",
                    custodian_name="BPM Energy",
                ),
                chain,
                times,
            )
            for n in range(first, min(first + batch, packs))
        ]
        with transaction.atomic():
            write_ledgers(ledgers, actor_username="bench", bar=progress)
    return packs


def measure_verify_and_checkpoint(events: int) -> dict:
    """Build ``events`` in bulk, verify them, then checkpoint them (one root
    over every chain), prove one event and verify the checkpoints."""
    from django.db import connection

    from passports import checkpoints, ledger, merkle
    from passports.models import Passport

    print("\n== verify ==")
    packs = build_ledgers(events)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE passports_passport")
        cursor.execute("ANALYZE passports_passportevent")
    started, cpu = time.perf_counter(), time.process_time()
    result = ledger.verify()
    verify_seconds = time.perf_counter() - started
    verify_cpu = time.process_time() - cpu
    assert result.ok, result.first_broken
    print(f"  verify {result.events:,} events: {verify_seconds:.2f} s")

    print("\n== checkpoint ==")
    started, cpu = time.perf_counter(), time.process_time()
    checkpoint = checkpoints.checkpoint_build()
    checkpoint_seconds = time.perf_counter() - started
    checkpoint_cpu = time.process_time() - cpu
    # The next checkpoint after 1,000 packs grew by one event each: what a
    # periodic checkpoint costs when a tenth of the packs moved.
    grown = list(Passport.objects.order_by("pk").values_list("pk", flat=True))
    grown = grown[:: max(1, len(grown) // 1000)][:1000]
    for start in range(0, len(grown), 100):
        ledger.append_many(
            events=[
                ledger.NewEvent(
                    passport=pk, kind="telemetry_summarised", data={"samples": 1}
                )
                for pk in grown[start : start + 100]
            ],
            actor=None,
            publish=False,
        )
    started = time.perf_counter()
    second = checkpoints.checkpoint_build()
    next_seconds = time.perf_counter() - started
    passport = Passport.objects.order_by("pk").first()
    started = time.perf_counter()
    proof = checkpoints.event_proof(passport=passport, version=1)
    proof_seconds = time.perf_counter() - started
    assert merkle.verify_proof(proof).ok
    started = time.perf_counter()
    marks = checkpoints.checkpoints_verify()
    marks_seconds = time.perf_counter() - started
    assert marks.ok, marks.first_broken
    found = {
        "result": result,
        "packs": packs,
        "verify_seconds": verify_seconds,
        "verify_cpu": verify_cpu,
        "verify_events": result.events,
        "checkpoint_events": checkpoint.event_count,
        "checkpoint_leaves": checkpoint.leaf_count,
        "checkpoint_seconds": checkpoint_seconds,
        "checkpoint_cpu": checkpoint_cpu,
        "next_events": second.event_count,
        "next_leaves": second.leaf_count,
        "next_seconds": next_seconds,
        "proof_seconds": proof_seconds,
        "proof_path": len(proof["auditPath"]),
        "checkpoints_verify_seconds": marks_seconds,
    }
    print_checkpoint(found)
    return found


def print_checkpoint(found: dict) -> None:
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(
        f"  checkpoint of {found['checkpoint_events']:,} events, "
        f"{found['checkpoint_leaves']:,} leaves: {found['checkpoint_seconds']:.2f} s "
        f"(CPU of this process {found['checkpoint_cpu']:.2f} s); the next, "
        f"{found['next_events']:,} events in {found['next_leaves']:,} leaves: "
        f"{found['next_seconds']:.2f} s; proof of one "
        f"event {found['proof_seconds'] * 1000:.0f} ms ({found['proof_path']} "
        f"hashes in its path); checkpoints_verify "
        f"{found['checkpoints_verify_seconds']:.2f} s; load average {load}"
    )


def pallets_for(writers: int, pallet: int) -> list[list[int]]:
    """``writers + 1`` pallets of ``pallet`` bulk-built packs (ten-event
    ledgers), one for the single writer and one for each of the others."""
    from passports.models import Passport

    build_ledgers(10 * pallet * (writers + 1), prefix="PALLET")
    ids = list(
        Passport.objects.filter(serial__startswith="PALLET-")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return [ids[n * pallet : (n + 1) * pallet] for n in range(writers + 1)]


def passport_updates() -> tuple[int, int]:
    """PostgreSQL's count of passport row updates so far, and of those HOT
    (heap-only: no index written), from ``pg_stat_user_tables``; (0, 0)
    elsewhere. Only the cumulative counters of the finished backends (the
    writers' threads close their connections) are read."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0, 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname = 'passports_passport'"
        )
        return cursor.fetchone()


def hot_share(before: tuple[int, int], expected: int) -> str:
    """How many of the ``expected`` passport updates since ``before`` were HOT.
    The writers' counters reach the statistics when their backends exit, so
    this polls (up to 5 s) until the updates are all counted."""
    deadline = time.monotonic() + 5
    while True:
        updates, hot = passport_updates()
        updates -= before[0]
        hot -= before[1]
        if updates >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if not updates:
        return "HOT updates: not counted"
    return f"HOT updates {hot:,} of {updates:,} ({100 * hot / updates:.0f} %)"


def measure_batch_only(args) -> dict:
    """``--batch-only``: the batch appends alone, each run's rate with the
    CPU this process spent per event (the writers' threads and the delivery
    thread after commit) and the load average; then verify of their ledgers."""
    from bpmos.accounts.models import User
    from passports import ledger

    actor = User.objects.create(username="bench-supervisor", role="supervisor")
    pallets = pallets_for(args.writers, args.pallet)
    measure_batches("batch warm-up", pallets[:1], 1, actor)
    found = {}
    for label, chosen in (
        ("1 writer", pallets[:1]),
        (f"{args.writers} writers", pallets[1:]),
    ):
        updates = passport_updates()
        cpu = time.process_time()
        rate = measure_batches(f"batch, {label}", chosen, args.batches, actor)
        per_event = (time.process_time() - cpu) / (args.batches * args.pallet)
        per_event /= len(chosen)
        load = os.getloadavg()[0]
        hot = hot_share(updates, args.batches * args.pallet * len(chosen))
        print(
            f"  batch append, {args.pallet} events a batch, {label}: "
            f"{rate:,.0f} events/s (goal >= {APPEND_GOAL:,}/s); CPU of this "
            f"process {per_event * 1000:.3f} ms an event; load average {load:.1f}; "
            f"{hot}"
        )
        found[label] = rate
    ids = [pk for pallet in pallets for pk in pallet]
    result = ledger.verify(passport_ids=ids)
    assert result.ok, result.first_broken
    return found


def main(argv: list[str] | None = None) -> dict:
    """Run the bench (``argv``: its options); returns the figures ``rows``
    reads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="per append run")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writers")
    parser.add_argument("--verify", type=int, default=100_000, help="events to verify")
    parser.add_argument("--pallet", type=int, default=100, help="events per batch")
    parser.add_argument("--batches", type=int, default=10, help="batches per writer")
    parser.add_argument(
        "--checkpoint-only",
        action="store_true",
        help="only build the verify set, verify it and checkpoint it",
    )
    parser.add_argument(
        "--batch-only",
        action="store_true",
        help="only the batch appends (1 and --writers writers), with CPU per event",
    )
    parser.add_argument(
        "--append-only",
        action="store_true",
        help="only the single appends: 1 writer, --writers threads and processes",
    )
    args = parser.parse_args(argv)
    if args.checkpoint_only:
        setup_bench_django()
        return measure_verify_and_checkpoint(args.verify)
    if args.batch_only:
        setup_bench_django()
        return measure_batch_only(args)

    setup_bench_django()
    from django.conf import settings
    from django.db import connection

    if not os.environ.get("REDIS_URL"):
        print("note: REDIS_URL is not set; live events stay in the outbox")

    from bpmos.accounts.models import User
    from passports import ledger
    from tests.factories_passports import make_passport

    actor = User.objects.create(username="bench-supervisor", role="supervisor")
    writers = [
        make_passport("pack", "warehoused", actor=actor).pk
        for _ in range(args.writers + 1)
    ]
    single, crowd = writers[:1], writers[1:]
    per_writer = max(1, args.events // args.writers)
    print(
        f"PostgreSQL {connection.pg_version // 10000}, channel layer "
        f"{settings.CHANNEL_LAYERS['default']['BACKEND'].rsplit('.', 1)[-1]}; "
        f"appends of telemetry_summarised, one transaction each"
    )

    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        ledger.append(
            passport=single[0],
            kind="telemetry_summarised",
            data={"probe": 1},
            actor=actor,
        )
    words = [" ".join(q["sql"].split()[:2]).upper() for q in queries.captured_queries]
    print(f"one append = {len(queries)} statements, delivery after commit included:")
    print("  " + " | ".join(words))
    print("\n== append ==")
    measure_appends("warm-up", single, 200, actor)
    one = measure_appends("1 writer", single, args.events, actor, cpu=True)
    many = measure_appends(
        f"{args.writers} writers, threads", crowd, per_writer, actor, cpu=True
    )
    many_processes, process_cpu = measure_processes(
        f"{args.writers} writers, processes", crowd, per_writer, actor
    )
    if args.append_only:
        ok = ledger.verify(passport_ids=writers)
        assert ok.ok, ok.first_broken
        return {"one": one, "many": many, "many_processes": many_processes}

    print("\n== where the time goes (instrumented runs) ==")
    print("  1 writer")
    run_breakdown("1 writer (timed)", single, args.events // 2, actor)
    print(f"  {args.writers} writers")
    run_breakdown(f"{args.writers} writers (timed)", crowd, per_writer // 2, actor)
    print("\n== batch append (ledger.append_many: one transaction per pallet) ==")
    pallets = pallets_for(args.writers, args.pallet)
    pallet_ids = [pk for pallet in pallets for pk in pallet]
    measure_batches("batch warm-up", pallets[:1], 1, actor)
    batch_one = measure_batches("batch, 1 writer", pallets[:1], args.batches, actor)
    batch_many = measure_batches(
        f"batch, {args.writers} writers", pallets[1:], args.batches, actor
    )
    with without_audit():
        one_bare = measure_appends(
            "1 writer, no audit", single, args.events // 2, actor
        )
        many_bare = measure_appends(
            f"{args.writers} writers, no audit", crowd, per_writer // 2, actor
        )
    ok = ledger.verify(passport_ids=writers + pallet_ids)
    assert ok.ok, ok.first_broken

    found = measure_verify_and_checkpoint(args.verify)
    result, packs = found["result"], found["packs"]
    verify_seconds, verify_cpu = found["verify_seconds"], found["verify_cpu"]

    print("\n== results ==")
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"  machine: {os.cpu_count()} cores, load average {load} (shared)")
    goal = f"(goal >= {APPEND_GOAL:,}/s)"
    print(f"  append, 1 writer                 {one:>9,.0f} events/s {goal}")
    print(
        f"  append, {args.writers} writers, distinct packs, threads of one process "
        f"{many:>7,.0f} events/s"
    )
    print(
        f"  append, {args.writers} writers, distinct packs, {args.writers} processes "
        f"{many_processes:>7,.0f} events/s {goal}; CPU per event "
        + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in process_cpu.items())
    )
    print(
        f"  batch append, {args.pallet} events a batch, 1 writer "
        f"{batch_one:>9,.0f} events/s {goal}"
    )
    print(
        f"  batch append, {args.pallet} events a batch, {args.writers} writers "
        f"{batch_many:>7,.0f} events/s"
    )
    print("  for comparison, without the audit record (not a supported mode):")
    print(f"    1 writer                       {one_bare:>9,.0f} events/s")
    print(
        f"    {args.writers} writers                      {many_bare:>9,.0f} events/s"
    )
    print(
        f"  verify {result.events:,} events of {result.passports:,} passports "
        f"({packs:,} bulk-built)  {verify_seconds:6.2f} s "
        f"({result.events / verify_seconds:,.0f} events/s; goal <= {VERIFY_GOAL:.0f} s"
        f" for 100k); CPU of this process {verify_cpu:6.2f} s"
        f" ({verify_cpu / max(1, result.events) * 1e6:.0f} us an event)"
    )
    print_checkpoint(found)
    return {
        **found,
        "one": one,
        "many": many,
        "many_processes": many_processes,
        "process_cpu": process_cpu,
        "writers": args.writers,
        "one_bare": one_bare,
        "many_bare": many_bare,
        "pallet": args.pallet,
        "batch_one": batch_one,
        "batch_many": batch_many,
        "verify_seconds": verify_seconds,
        "verify_events": result.events,
    }


def rows(argv: list[str] | None = None) -> list[Row]:
    """The bench's lines of ``make bench``'s table (bench/suite.py). The
    append's ceiling is the same appends without the audit record (no
    supported mode, the nearest bound this bench measures)."""
    found = main(argv)
    per_100k = found["verify_seconds"] * 100_000 / max(1, found["verify_events"])
    return [
        Row(
            "ledger",
            "append, 1 writer",
            found["one"],
            "events/s",
            f">= {APPEND_GOAL:,}/s",
            found["one"] >= APPEND_GOAL,
            ceiling=found["one_bare"],
        ),
        Row(
            "ledger",
            f"append, {found['writers']} writers (threads of one process)",
            found["many"],
            "events/s",
            f">= {APPEND_GOAL:,}/s",
            found["many"] >= APPEND_GOAL,
            ceiling=found["many_bare"],
        ),
        Row(
            "ledger",
            f"append, {found['writers']} writers ({found['writers']} processes)",
            found["many_processes"],
            "events/s",
            f">= {APPEND_GOAL:,}/s",
            found["many_processes"] >= APPEND_GOAL,
        ),
        Row(
            "ledger",
            f"batch append, {found['pallet']} events a batch, 1 writer",
            found["batch_one"],
            "events/s",
            f">= {APPEND_GOAL:,}/s",
            found["batch_one"] >= APPEND_GOAL,
        ),
        Row(
            "ledger",
            f"batch append, {found['pallet']} a batch, {found['writers']} writers",
            found["batch_many"],
            "events/s",
            f">= {APPEND_GOAL:,}/s",
            found["batch_many"] >= APPEND_GOAL,
        ),
        Row(
            "ledger",
            f"checkpoint of {found['checkpoint_events']:,} events (one root)",
            found["checkpoint_seconds"],
            "s",
            "(measured)",
            True,
            lower_is_better=True,
        ),
        Row(
            "ledger",
            f"verify {found['verify_events']:,} events (per 100k)",
            per_100k,
            "s",
            f"<= {VERIFY_GOAL:.0f} s per 100k",
            per_100k <= VERIFY_GOAL,
            lower_is_better=True,
        ),
    ]


if __name__ == "__main__":
    main()
