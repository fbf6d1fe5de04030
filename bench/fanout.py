"""Benchmark of WebSocket fan-out (docs/websocket.md): delivery latency of live
events to N subscribers of one daphne, ours versus plain Channels, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_lines \\
    REDIS_URL=redis://127.0.0.1:6379/7 \\
    .venv/bin/python -m bench.fanout [--clients 100,1000] [--events 20]

Production serving (docs/design.md §2): WebSockets under daphne, one process, with the
Redis channel layer. Run alone it uses (and re-creates) the database
``<DATABASE_URL's name>_bench`` like ``bench.lines``; ``bench.lines`` runs it
at the end on its own bench database.

For each N, two daphne processes one after the other, N ``websockets`` clients
each:

* ceiling: ``bench.fanout_ceiling``, a bare Channels consumer in one group;
  the bench ``group_send``s the pre-encoded text of a real event to it.
* ours: ``bpmos.asgi``'s ``ws/events/``; every client signs in with a JWT
  (Authorization header) and subscribes to ``line.<id>``; the bench publishes
  ``station.changed`` events with ``bpmos.events.publish`` in a committed
  transaction, as ``lines.services`` does, and the after-commit delivery sends
  them on.

Latency is per client per event: from the commit (ceiling: the group_send)
to the client's receipt, clocked in this process. Events go one at a time,
the next once every client has the previous one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from bench.common import (
    Progress,
    Row,
    daphne_command,
    free_port,
    ms,
    percentile,
    setup_bench_django,
    start_server,
    stop_server,
)

CONNECT_CONCURRENCY = 50
EVENT_TIMEOUT_SECONDS = 15.0
WARMUP_EVENTS = 2


# --- servers ---------------------------------------------------------------------


def start_daphne(application: str, port: int, log_path: Path) -> subprocess.Popen:
    """One daphne process serving ``application``; returns once it listens."""
    return start_server("daphne", daphne_command(port, application), port, log_path)


def raise_open_file_limit(clients: int) -> None:
    """Each client is a socket here (and one in daphne, which inherits this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * clients + 256
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            sys.exit(f"ulimit -n is {hard} (hard); {wanted} needed for {clients}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# --- clients -----------------------------------------------------------------------


class Clients:
    """N WebSocket clients of one server; every frame they get, with its time."""

    def __init__(self) -> None:
        self.connections: list = []
        self.readers: list[asyncio.Task] = []
        self.arrivals: list[tuple[float, str]] = []
        self.target = 0
        self.reached = asyncio.Event()

    async def open(self, url: str, count: int, *, token: str | None, topic: str):
        from websockets.asyncio.client import connect

        progress = Progress(f"connect {count}", count)
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> None:
            async with gate:
                headers = {"Authorization": f"Bearer {token}"} if token else None
                ws = await connect(
                    url,
                    additional_headers=headers,
                    compression=None,
                    max_queue=None,
                    ping_interval=None,
                    open_timeout=60,
                )
                if token:  # ours: signed in by the header; now the topic
                    hello = json.loads(await ws.recv())
                    assert hello["type"] == "authenticated", hello
                    await ws.send(
                        json.dumps({"action": "subscribe", "topics": [topic]})
                    )
                    reply = json.loads(await ws.recv())
                    assert reply["type"] == "subscribed", reply
                self.connections.append(ws)
                self.readers.append(asyncio.create_task(self._read(ws)))
                progress.advance()

        await asyncio.gather(*(one() for _ in range(count)))

    async def _read(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        arrivals, clock = self.arrivals, time.perf_counter
        try:
            async for frame in ws:
                arrivals.append((clock(), frame))
                if len(arrivals) >= self.target:
                    self.reached.set()
        except ConnectionClosed:
            pass

    def expect(self, total: int) -> None:
        self.target = total
        self.reached = asyncio.Event()
        if len(self.arrivals) >= total:
            self.reached.set()

    async def close(self) -> None:
        await asyncio.gather(
            *(asyncio.wait_for(ws.close(), 5) for ws in self.connections),
            return_exceptions=True,
        )
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def run_events(
    label: str, clients: Clients, count: int, send
) -> tuple[list[float], int]:
    """Send ``count`` events one at a time; returns (latencies, deliveries lost).

    ``send()`` sends one event and returns (event id, its commit time).
    """
    n = len(clients.connections)
    sent_at: dict[int, float] = {}
    clients.arrivals.clear()
    for _ in range(WARMUP_EVENTS):  # first sends open connections, fill caches
        clients.expect(len(clients.arrivals) + n)
        await send()
        await asyncio.wait_for(clients.reached.wait(), EVENT_TIMEOUT_SECONDS)
    clients.arrivals.clear()
    progress = Progress(label, count * n)
    lost = 0
    for k in range(count):
        clients.expect((k + 1) * n - lost)
        event_id, at = await send()
        sent_at[event_id] = at
        try:
            await asyncio.wait_for(clients.reached.wait(), EVENT_TIMEOUT_SECONDS)
        except TimeoutError:
            lost += clients.target - len(clients.arrivals)
        progress.advance(n)
        await asyncio.sleep(0.05)
    latencies = []
    for received, frame in clients.arrivals:
        message = json.loads(frame)
        if message.get("type") == "event" and message["id"] in sent_at:
            latencies.append(received - sent_at[message["id"]])
    return latencies, lost


# --- the two paths -------------------------------------------------------------


def setup_plant():
    """A line, one station, a plant-screen user; returns (line, station, user)."""
    from decimal import Decimal

    from bpmos.accounts.models import User
    from lines.models import Line, Station

    line = Line.objects.create(slug="fanout-line", name="Fan-out line", position=99)
    station = Station.objects.create(
        line=line,
        slug="st-01",
        name="Cell stacking",
        position=1,
        ideal_cycle_seconds=Decimal(12),
    )
    user = User.objects.create(username="fanout-screen", role="plant-head")
    return line, station, user


def publish_station_change(line, station, k: int) -> tuple[int, float]:
    """One ``station.changed`` through the outbox; returns (event id, commit time)."""
    from django.db import transaction
    from django.utils import timezone

    from bpmos import events
    from lines.events import station_changed

    states = ("Running", "Blocked")
    before = SimpleNamespace(state=states[k % 2], reason="")
    after = SimpleNamespace(
        state=states[(k + 1) % 2],
        reason="Safety Curtain" if states[(k + 1) % 2] == "Blocked" else "",
    )
    committed: list[float] = []
    with transaction.atomic():
        # Registered before publish's own on_commit hook, so it runs first:
        # the instant the commit returned, before the delivery starts.
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        row = events.publish(
            station_changed(
                line, station, before=before, after=after, at=timezone.now()
            )
        )
    return row.pk, committed[0]


async def measure_ours(n: int, events_count: int, plant, port: int):
    from rest_framework_simplejwt.tokens import AccessToken

    line, station, user = plant
    db_thread = ThreadPoolExecutor(1)  # Django's connection is per thread
    loop = asyncio.get_running_loop()
    counter = iter(range(10**9))

    async def send():
        return await loop.run_in_executor(
            db_thread, publish_station_change, line, station, next(counter)
        )

    token = await loop.run_in_executor(
        db_thread, lambda: str(AccessToken.for_user(user))
    )
    clients = Clients()
    await clients.open(
        f"ws://127.0.0.1:{port}/ws/events/", n, token=token, topic=line.topic
    )
    try:
        return await run_events(f"ours x{n}", clients, events_count, send)
    finally:
        await clients.close()
        await loop.run_in_executor(db_thread, _close_db)
        db_thread.shutdown()


def _close_db() -> None:
    from django.db import connection

    connection.close()


async def measure_ceiling(n: int, events_count: int, template: dict, port: int):
    from channels.layers import get_channel_layer

    from bench.fanout_ceiling import GROUP

    layer = get_channel_layer()
    counter = iter(range(1, 10**9))

    async def send():
        event_id = next(counter)
        text = json.dumps({**template, "id": event_id})
        at = time.perf_counter()
        await layer.group_send(GROUP, {"type": "bench.message", "text": text})
        return event_id, at

    clients = Clients()
    await clients.open(f"ws://127.0.0.1:{port}/", n, token=None, topic="")
    try:
        return await run_events(f"ceiling x{n}", clients, events_count, send)
    finally:
        await clients.close()


def event_template(plant) -> dict:
    """What a client of ours receives for one event, to send the ceiling the same."""
    from bpmos.events.models import OutboxEvent
    from bpmos.events.services import event_payload

    line, station, _ = plant
    event_id, _ = publish_station_change(line, station, 0)
    return {"type": "event", **event_payload(OutboxEvent.objects.get(pk=event_id))}


def fmt(values: list[float]) -> str:
    if not values:
        return "no deliveries"
    return ms(values, decimals=1, count=False)


def run(*, clients: list[int], events_count: int) -> list[dict]:
    """Measure and print; Django must be set up on a migrated bench database.
    Returns per subscriber count ``{"n", "ceiling", "ours"}`` (latencies in s,
    lost deliveries)."""
    from django.conf import settings

    if not settings.REDIS_URL:
        sys.exit("The fan-out bench needs the Redis channel layer: set REDIS_URL.")
    raise_open_file_limit(max(clients))
    plant = setup_plant()
    template = event_template(plant)
    payload_bytes = len(json.dumps(template))
    results = []
    for n in clients:
        row = {"n": n}
        for name, application in (
            ("ceiling", "bench.fanout_ceiling:application"),
            ("ours", "bpmos.asgi:application"),
        ):
            port = free_port()
            log_path = Path("/tmp") / f"bench-fanout-{name}-{port}.log"
            server = start_daphne(application, port, log_path)
            try:
                if name == "ceiling":
                    measured = asyncio.run(
                        measure_ceiling(n, events_count, template, port)
                    )
                else:
                    measured = asyncio.run(measure_ours(n, events_count, plant, port))
            finally:
                stop_server(server)
            row[name] = measured
        results.append(row)

    print(
        f"\n== WebSocket fan-out: one daphne, Redis layer, {payload_bytes}-byte "
        f"event, {events_count} events, commit -> receive =="
    )
    for row in results:
        n = row["n"]
        (ceiling, ceiling_lost), (ours, ours_lost) = row["ceiling"], row["ours"]
        lost = f"  LOST {ceiling_lost}/{ours_lost}" if ceiling_lost or ours_lost else ""
        print(f"  {n:>5} subscribers  bare Channels (ceiling)  {fmt(ceiling)}{lost}")
        ratio = ""
        if ours and ceiling:
            ratio = (
                f"  p99 {percentile(ours, 99) / percentile(ceiling, 99):.2f}x "
                "the ceiling"
            )
        print(f"  {n:>5} subscribers  ws/events/ (ours)        {fmt(ours)}{ratio}")
    print("  goal: 1,000 subscribers p99 <= 400 ms per daphne process")
    return results


GOAL_P99 = 0.400  # 1,000 subscribers, one daphne process


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the bench (``argv``: its options); returns ``run``'s results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients", default="100,1000", help="comma-separated subscriber counts"
    )
    parser.add_argument("--events", type=int, default=20, help="events per count")
    args = parser.parse_args(argv)
    clients = [int(n) for n in args.clients.split(",") if n.strip()]

    setup_bench_django()
    return run(clients=clients, events_count=args.events)


def rows(argv: list[str] | None = None) -> list[Row]:
    """The bench's lines of ``make bench``'s table (bench/suite.py): p99
    commit -> receive per subscriber count, against bare Channels."""
    out = []
    for row in main(argv):
        (ceiling, _), (ours, lost) = row["ceiling"], row["ours"]
        p99 = percentile(ours, 99) if ours else float("inf")
        out.append(
            Row(
                "fanout",
                f"WebSocket fan-out p99, {row['n']:,} subscribers",
                p99 * 1000,
                "ms",
                "<= 400 ms at 1,000, none lost",
                p99 <= GOAL_P99 and not lost,
                ceiling=percentile(ceiling, 99) * 1000 if ceiling else None,
                lower_is_better=True,
            )
        )
    return out


if __name__ == "__main__":
    main()
