"""Scale-out, measured (docs/deploy.md): the same work on one process and on
two, and the ratio of the two to linear (2x).

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N \\
    .venv/bin/python -m bench.scaleout [--clients 400] [--events 50] \\
        [--backlog 5000] [--chunk 200] [--port 8780]

Like the other benches it uses (and re-creates) ``<DATABASE_URL's name>_bench``.

1. WebSocket fan-out on the Redis channel layer: ``--clients`` subscribers of
   ``ws/events/`` (JWT, one line's topic) on one daphne process, then the same
   number split evenly over two daphne processes on the same layer. The bench
   publishes ``--events`` ``station.changed`` events through the outbox
   (``bpmos.events.publish`` in a committed transaction, as ``bench.fanout``),
   back to back, and clocks from the first commit to the last frame received:
   deliveries per second (subscribers x events / that time). Linear is twice
   the one-process rate.
2. Celery draining the outbox: a backlog of ``--backlog`` undelivered events,
   drained by ``events_deliver_task`` in chunks of ``--chunk`` ids, by one
   worker process, then by two (each ``--concurrency 1``, as two machines'
   workers would be), from the first enqueue to the last row marked
   delivered: events per second.

The alarm work that runs on Celery (``alerts_process_task``) is one periodic
pass over the open conditions, each re-checked under its row lock: a second
worker runs the same pass, it has no share of its own to take, so it is not a
scale-out path and is not measured here.

Both runs share this 2-core machine with the client (the bench process) and
whatever else runs on it: the ratio is what two processes gained here, with
the load average printed beside it; on two machines the second process has
its own cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from bench.common import (
    BASE_DIR,
    Row,
    cpu_seconds,
    percentile,
    server_env,
    setup_bench_django,
    stop_server,
)
from bench.fanout import (
    Clients,
    publish_station_change,
    raise_open_file_limit,
    setup_plant,
    start_daphne,
)

GOAL_LINEAR = 0.80
BURST_TIMEOUT_SECONDS = 120.0


def load() -> str:
    return ", ".join(f"{n:.1f}" for n in os.getloadavg())


# --- 1. WebSocket fan-out over one and two daphne processes --------------------------


async def burst(
    ports: list[int], clients_count: int, events: int, plant, servers_cpu=None
) -> dict:
    """``clients_count`` subscribers spread over ``ports``; ``events`` events
    back to back; returns deliveries/s, latencies and losses, and the CPU
    seconds the servers (``servers_cpu()``) and this process spent on them."""
    from rest_framework_simplejwt.tokens import AccessToken

    line, station, user = plant
    db_thread = ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()
    token = await loop.run_in_executor(
        db_thread, lambda: str(AccessToken.for_user(user))
    )
    clients = Clients()
    share = clients_count // len(ports)
    for port in ports:
        await clients.open(
            f"ws://127.0.0.1:{port}/ws/events/", share, token=token, topic=line.topic
        )
    n = share * len(ports)
    counter = iter(range(10**9))
    try:
        # warm-up: one event to everyone (first sends open Redis connections)
        clients.expect(n)
        await loop.run_in_executor(
            db_thread, publish_station_change, line, station, next(counter)
        )
        await asyncio.wait_for(clients.reached.wait(), BURST_TIMEOUT_SECONDS)
        clients.arrivals.clear()
        clients.expect(n * events)
        cpu_before = servers_cpu() if servers_cpu else 0.0
        own_before = time.process_time()
        sent: dict[int, float] = {}
        for _ in range(events):
            event_id, at = await loop.run_in_executor(
                db_thread, publish_station_change, line, station, next(counter)
            )
            sent[event_id] = at
        lost = 0
        try:
            await asyncio.wait_for(clients.reached.wait(), BURST_TIMEOUT_SECONDS)
        except TimeoutError:
            lost = n * events - len(clients.arrivals)
        server_cpu = (servers_cpu() - cpu_before) if servers_cpu else 0.0
        client_cpu = time.process_time() - own_before
        first = min(sent.values())
        latencies, last = [], first
        for received, frame in clients.arrivals:
            message = json.loads(frame)
            if message.get("type") == "event" and message["id"] in sent:
                latencies.append(received - sent[message["id"]])
                last = max(last, received)
        elapsed = last - first
        return {
            "processes": len(ports),
            "subscribers": n,
            "deliveries": len(latencies),
            "seconds": elapsed,
            "rate": len(latencies) / elapsed if elapsed > 0 else 0.0,
            "latencies": latencies,
            "lost": lost,
            "server_cpu": server_cpu,
            "client_cpu": client_cpu,
        }
    finally:
        await clients.close()
        await loop.run_in_executor(db_thread, _close_db)
        db_thread.shutdown()


def _close_db() -> None:
    from django.db import connection

    connection.close()


def run_fanout(*, clients: int, events: int, port: int) -> list[dict]:
    from django.conf import settings

    if not settings.REDIS_URL:
        sys.exit("The scale-out bench needs the Redis channel layer: set REDIS_URL.")
    raise_open_file_limit(clients)
    plant = setup_plant()
    results = []
    for processes in (1, 2):
        ports = [port + k for k in range(processes)]
        servers = []
        try:
            for p in ports:
                log_path = Path("/tmp") / f"bench-scaleout-daphne-{p}.log"
                servers.append(start_daphne("bpmos.asgi:application", p, log_path))
            pids = [server.pid for server in servers]
            results.append(
                asyncio.run(
                    burst(
                        ports,
                        clients,
                        events,
                        plant,
                        servers_cpu=lambda pids=pids: cpu_seconds(pids),
                    )
                )
            )
        finally:
            for server in servers:
                stop_server(server)
        r = results[-1]
        print(
            f"  fan-out on {processes} daphne: {r['deliveries']:,} deliveries in "
            f"{r['seconds']:.2f} s = {r['rate']:,.0f}/s, lost {r['lost']}; "
            f"daphne CPU {r['server_cpu']:.2f} s, the bench process's (clients, "
            f"publisher) {r['client_cpu']:.2f} s; load average {load()}",
            flush=True,
        )
    return results


# --- 2. Celery workers draining the outbox -------------------------------------------


def make_backlog(count: int) -> list[int]:
    """``count`` outbox events left undelivered (as after a Redis outage)."""
    from django.db import transaction
    from django.utils import timezone

    from bpmos import events
    from bpmos.events import services
    from bpmos.events.models import OutboxEvent
    from lines.events import station_changed
    from lines.models import Line, Station

    line = Line.objects.get(slug="fanout-line")
    station = Station.objects.get(line=line)

    ids = []
    with transaction.atomic():
        for k in range(count):
            states = ("Running", "Blocked") if k % 2 else ("Blocked", "Running")
            row = events.publish(
                station_changed(
                    line,
                    station,
                    before=SimpleNamespace(state=states[0], reason=""),
                    after=SimpleNamespace(state=states[1], reason=""),
                    at=timezone.now(),
                )
            )
            ids.append(row.pk)
    # The publisher's own after-commit delivery sends them first; wait for it,
    # then mark them all undelivered: the backlog an outage would leave.
    services._background.drain(timeout=300)
    OutboxEvent.objects.filter(pk__in=ids).update(delivered_at=None)
    return ids


def start_worker(name: str) -> subprocess.Popen:
    log_path = Path("/tmp") / f"bench-scaleout-celery-{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bpmos",
                "worker",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
                "--loglevel",
                "WARNING",
            ],
            cwd=BASE_DIR,
            env=server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process


def wait_workers(count: int, timeout: float = 90.0) -> None:
    from bpmos.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= count:
            return
    raise RuntimeError(f"{count} Celery workers did not answer in {timeout:.0f} s")


def drain(ids: list[int], chunk: int, timeout: float = 600.0) -> float:
    """Enqueue the backlog's chunks; seconds until every row is delivered."""
    from django.db import connection

    from bpmos.events.models import OutboxEvent
    from bpmos.events.tasks import events_deliver_task

    started = time.perf_counter()
    for first in range(0, len(ids), chunk):
        events_deliver_task.delay(ids[first : first + chunk])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = OutboxEvent.objects.filter(pk__in=ids, delivered_at__isnull=True)
        if not left.exists():
            return time.perf_counter() - started
        connection.close()  # a fresh snapshot each poll
        time.sleep(0.05)
    raise RuntimeError("the outbox backlog was not drained in time")


def run_celery(*, backlog: int, chunk: int) -> list[dict]:
    from bpmos.events.models import OutboxEvent

    results = []
    for processes in (1, 2):
        ids = make_backlog(backlog)
        workers = [start_worker(f"scaleout{k}") for k in range(processes)]
        try:
            wait_workers(processes)
            pids = [worker.pid for worker in workers]
            cpu_before = cpu_seconds(pids)
            seconds = drain(ids, chunk)
            cpu = cpu_seconds(pids) - cpu_before
        finally:
            for worker in workers:
                stop_server(worker)
        results.append(
            {"processes": processes, "events": len(ids), "seconds": seconds, "cpu": cpu}
        )
        OutboxEvent.objects.filter(pk__in=ids).delete()
        print(
            f"  outbox on {processes} worker(s): {len(ids):,} events in "
            f"{seconds:.2f} s; the workers' CPU {cpu:.2f} s; load average {load()}",
            flush=True,
        )
    return results


# --- report ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=400)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--port", type=int, default=8780, help="first daphne port")
    parser.add_argument("--only", default="fanout,celery")
    args = parser.parse_args(argv)
    chosen = set(args.only.split(","))

    setup_bench_django()
    print(f"load average at the start {load()} (2 cores, shared)")
    out: dict = {"fanout": [], "celery": []}
    if "fanout" in chosen:
        out["fanout"] = run_fanout(
            clients=args.clients, events=args.events, port=args.port
        )
    if "celery" in chosen:
        if "fanout" not in chosen:
            setup_plant()
        out["celery"] = run_celery(backlog=args.backlog, chunk=args.chunk)

    print(f"\n== scale-out: one process and two; load average now {load()} ==")
    if out["fanout"]:
        one, two = out["fanout"]
        for r in out["fanout"]:
            lost = f", LOST {r['lost']}" if r["lost"] else ""
            print(
                f"  WebSocket fan-out, {r['processes']} daphne: {r['subscribers']} "
                f"subscribers x {args.events} events in {r['seconds']:.2f} s = "
                f"{r['rate']:,.0f} deliveries/s; p50 "
                f"{percentile(r['latencies'], 50) * 1000:.0f} ms, p99 "
                f"{percentile(r['latencies'], 99) * 1000:.0f} ms{lost}"
            )
        ratio = two["rate"] / (2 * one["rate"]) if one["rate"] else 0.0
        print(f"  fan-out, 2 daphne: {ratio:.0%} of linear (goal >= 80 %)")
        if one["server_cpu"] and two["server_cpu"]:
            print(
                "  deliveries per daphne CPU-second: one "
                f"{_per_cpu(one, 'deliveries', 'server_cpu'):,.0f}, two "
                f"{_per_cpu(two, 'deliveries', 'server_cpu'):,.0f} (what a second"
                " process with its own core adds)"
            )
    if out["celery"]:
        one, two = out["celery"]
        for r in out["celery"]:
            print(
                f"  outbox drain, {r['processes']} Celery worker process(es): "
                f"{r['events']:,} events in {r['seconds']:.2f} s = "
                f"{r['events'] / r['seconds']:,.0f} events/s"
            )
        ratio = one["seconds"] / (2 * two["seconds"])
        print(f"  outbox drain, 2 workers: {ratio:.0%} of linear (goal >= 80 %)")
        if one["cpu"] and two["cpu"]:
            print(
                "  events per worker CPU-second: one "
                f"{_per_cpu(one, 'events', 'cpu'):,.0f}, two "
                f"{_per_cpu(two, 'events', 'cpu'):,.0f}"
            )
    return out


def _per_cpu(result: dict, work: str, cpu: str) -> float:
    return result[work] / result[cpu] if result[cpu] else 0.0


MEASURED = "(measured: the 2nd process's own cost)"


def rows(argv: list[str] | None = None) -> list[Row]:
    """``make bench``'s lines: the two-process rate against linear (twice the
    one-process rate) as the ceiling, so the ratio column is the share of
    linear. Beside each, the work done per CPU-second of the servers' own
    processes with two against one (one's as the ceiling): what a second
    process costs per unit of work, whether or not it had a core of its own
    in this run (the wall-clock ratio's limit on a shared 2-core machine)."""
    out = main(argv)
    found = []
    if out["fanout"]:
        one, two = out["fanout"]
        found.append(
            Row(
                "scaleout",
                f"WebSocket fan-out, 2 daphne ({two['subscribers']} subscribers)",
                two["rate"],
                "deliveries/s",
                ">= 80 % of 2x one daphne, none lost",
                two["rate"] >= GOAL_LINEAR * 2 * one["rate"] and not two["lost"],
                ceiling=2 * one["rate"],
            )
        )
        if one["server_cpu"] and two["server_cpu"]:
            found.append(
                Row(
                    "scaleout",
                    "fan-out deliveries per daphne CPU-second, 2 daphne",
                    _per_cpu(two, "deliveries", "server_cpu"),
                    "/CPU-s",
                    MEASURED,
                    True,
                    ceiling=_per_cpu(one, "deliveries", "server_cpu"),
                )
            )
    if out["celery"]:
        one, two = out["celery"]
        rate_one = one["events"] / one["seconds"]
        rate_two = two["events"] / two["seconds"]
        found.append(
            Row(
                "scaleout",
                "outbox drain, 2 Celery worker processes",
                rate_two,
                "events/s",
                ">= 80 % of 2x one worker",
                rate_two >= GOAL_LINEAR * 2 * rate_one,
                ceiling=2 * rate_one,
            )
        )
        if one["cpu"] and two["cpu"]:
            found.append(
                Row(
                    "scaleout",
                    "outbox events per worker CPU-second, 2 workers",
                    _per_cpu(two, "events", "cpu"),
                    "/CPU-s",
                    MEASURED,
                    True,
                    ceiling=_per_cpu(one, "events", "cpu"),
                )
            )
    return found


if __name__ == "__main__":
    main()
