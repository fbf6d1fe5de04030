"""A bounded soak of a production-style deployment: mixed
traffic of every role at a plant's rate, 200 WebSocket clients, for
``--minutes`` (default 20); then zero 5xx, zero lost events and memory that
stops growing, or a non-zero exit.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos \\
    REDIS_URL=redis://127.0.0.1:6379/12 \\
    .venv/bin/python -m bench.soak [--minutes 20] [--clients 200] [--reuse]

1. The soak database ``<DATABASE_URL's name>_soak`` is re-created, migrated
   and seeded with the demo plant (``seed_demo``); ``--reuse`` keeps the one a
   previous run left (migrated only), which saves the two minutes of seeding
   while iterating.
2. The deployment of docs/deploy.md, on this machine, with
   ``BPMOS_ENV=production`` (a random ``DJANGO_SECRET_KEY``): gunicorn sync
   workers for the REST API, one daphne for ``/ws/``, a Celery worker and
   Celery beat on Redis. The clients send ``X-Forwarded-Proto: https`` as the
   reverse proxy does (production redirects plain HTTP).
3. The traffic, for ``--minutes`` (``asyncio``, ``httpx``, ``websockets``),
   each kind one or a few closed loops at a plant's pace (``KINDS``):
   SCADA-style readings batches of every machine, stage moves (a planner opens
   work orders and assigns their stages, the operator starts, holds, resumes
   and finishes them), inventory moves, the dispatch desk (moves to past and
   reactivations, its list and status), dashboard polls of every role,
   ``/api/logs`` reads and passport lookups (signed in and public). Each role
   signs in once through ``/api/auth/login``.
   ``--clients`` WebSocket clients (six roles, a plant screen's topics each)
   subscribe from the outbox's last id before the traffic and record every
   event id they get; a dropped connection resumes from its last id.
4. Before the traffic every beat task is queued ``WARM_UP_ROUNDS`` times and
   run (``warm_up_periodic_tasks``). Every ``--sample-seconds`` (30) the RSS
   of every server process (gunicorn's master and workers, daphne, the Celery
   worker and its pool, beat) is read from ``/proc``.
5. After the traffic: the clients are given until every event is in (at most
   ``DRAIN_SECONDS``), then the table: requests, p50/p99 and 5xx per kind;
   events expected (the outbox's rows on each client's topics since the
   start) against delivered, per client; the RSS curve of each process and
   the slope of its last third. Exit 1 on any 5xx or transport error, any lost
   event, a server that died, or memory still growing (the last third grew by
   more than ``max(GROWTH_MB, GROWTH_SHARE x RSS)``; judged only with at least
   ``MIN_TAIL_SAMPLES`` samples in the last third).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import (
    BASE_DIR,
    daphne_command,
    free_port,
    http_answers,
    percentile,
    recreate_database,
    server_env,
    start_server,
    stop_server,
)

PASSWORD_ENV = "BPMOS_DEMO_PASSWORD"
DEMO_PASSWORD = "bpmos-demo-2026"
ROLES = ("operator", "planner", "supervisor", "plant-head", "auditor", "admin")
GUNICORN_WORKERS = 4  # docs/deploy.md
DRAIN_SECONDS = 90.0  # beat resends undelivered events every 5 s
CONNECT_CONCURRENCY = 20
GROWTH_MB = 3.0
GROWTH_SHARE = 0.03
MIN_TAIL_SAMPLES = 6
HTTP_TIMEOUT = 60.0
START_TIMEOUT = 300.0  # four workers importing Django on a loaded machine
WARM_UP_ROUNDS = 4  # each beat task, queued this many times before the traffic
READINGS_PER_BATCH = 20
READINGS_EVERY_SECONDS = 5.0  # each machine's gateway posts a batch this often


# --- the soak database and the deployment --------------------------------------


def soak_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("The soak needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL.")
    parts = urlsplit(url)
    return parts._replace(path=parts.path.rstrip("/") + "_soak").geturl()


def production_env() -> None:
    """This process's environment becomes the deployment's (inherited by the
    servers): production settings on the soak database."""
    os.environ["DATABASE_URL"] = soak_database_url()
    os.environ["BPMOS_ENV"] = "production"
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ["BPMOS_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bpmos.settings"
    os.environ.setdefault("BPMOS_DATA_DIR", "/tmp/bpmos-soak")


def setup_soak_django(*, reuse: bool) -> None:
    url = os.environ["DATABASE_URL"]
    name = urlsplit(url).path.lstrip("/")
    if not reuse:
        recreate_database(url)
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bpmos.accounts.models import User

    if reuse and User.objects.filter(username="operator").exists():
        print(f"soak database: {name} (reused)")
        return
    started = time.perf_counter()
    call_command("seed_demo", verbosity=0)
    print(
        f"soak database: {name} (re-created, demo plant seeded in "
        f"{time.perf_counter() - started:.0f} s)"
    )


@dataclass
class Deployment:
    api_port: int
    ws_port: int
    processes: dict = field(default_factory=dict)  # name -> Popen

    def alive(self) -> dict[str, int | None]:
        return {name: p.poll() for name, p in self.processes.items()}


def start_deployment(logs: Path) -> Deployment:
    env = server_env()
    env["BPMOS_ENV"] = "production"
    env["BPMOS_ACCESS_TOKEN_MINUTES"] = "240"  # outlives the run
    bin_dir = Path(sys.executable).parent
    deployment = Deployment(api_port=free_port(), ws_port=free_port())
    gunicorn = [
        str(bin_dir / "gunicorn"),
        "bpmos.wsgi:application",
        "--workers",
        str(GUNICORN_WORKERS),
        "--bind",
        f"127.0.0.1:{deployment.api_port}",
        "--timeout",
        "120",
    ]
    deployment.processes["gunicorn"] = start_server(
        "gunicorn",
        gunicorn,
        deployment.api_port,
        logs / "gunicorn.log",
        ready=http_answers,
        env=env,
        timeout=START_TIMEOUT,
    )
    deployment.processes["daphne"] = start_server(
        "daphne",
        daphne_command(deployment.ws_port),
        deployment.ws_port,
        logs / "daphne.log",
        env=env,
        timeout=START_TIMEOUT,
    )
    celery = str(bin_dir / "celery")
    for name, command in (
        (
            "celery worker",
            [
                celery,
                "-A",
                "bpmos",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
                "--without-gossip",
                "--without-mingle",
            ],
        ),
        ("celery beat", [celery, "-A", "bpmos", "beat", "--loglevel", "WARNING"]),
    ):
        deployment.processes[name] = start_server(
            name,
            command,
            0,
            logs / f"{name.replace(' ', '-')}.log",
            ready=lambda _port: True,
            env=env,
        )
    return deployment


def warm_up_periodic_tasks(rounds: int = WARM_UP_ROUNDS) -> int:
    """Queue every beat task ``rounds`` times and wait until the worker has run
    them all; returns how many were sent.

    A task's first run in a pool process imports and caches what it needs (a
    step of a few MB of RSS, flat after). The 15-minute tasks (the audit
    chain's verification and anchor) would otherwise first run 15 minutes into
    a 20-minute soak, in its last third, and read as growth. ``rounds`` above
    the pool's size makes each process likely to run each task once.
    """
    import redis

    from bpmos.celery import BEAT_SCHEDULE, app

    sent = 0
    for _ in range(rounds):
        for entry in BEAT_SCHEDULE.values():
            app.send_task(entry["task"])
            sent += 1
    broker = redis.Redis.from_url(app.conf.broker_url)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if not broker.llen("celery") and not broker.hlen("unacked"):
            break
        time.sleep(1)
    broker.close()
    return sent


def stop_deployment(deployment: Deployment) -> None:
    for process in reversed(list(deployment.processes.values())):
        stop_server(process)


# --- memory -----------------------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def server_processes(deployment: Deployment) -> dict[str, int]:
    """Every server process by a label: each top process and its children
    (gunicorn's workers, the Celery pool)."""
    found = {}
    for name, process in deployment.processes.items():
        found[name] = process.pid
        for n, child in enumerate(sorted(children(process.pid)), 1):
            found[f"{name} child {n} (pid {child})"] = child
    return found


@dataclass
class Memory:
    samples: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def sample(self, deployment: Deployment, at: float) -> None:
        for label, pid in server_processes(deployment).items():
            value = rss_mb(pid)
            if value is not None:
                self.samples[label].append((at, value))


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB a minute."""
    if len(points) < 2:
        return 0.0
    xs = [t / 60 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return (
        sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
        if den
        else 0.0
    )


def memory_verdict(points: list[tuple[float, float]]) -> tuple[float, str]:
    """(slope of the last third in MB/min, "flat" | "GROWING" | "too short")."""
    start = points[0][0] + (points[-1][0] - points[0][0]) * 2 / 3
    tail = [p for p in points if p[0] >= start]
    slope = slope_mb_per_min(tail)
    if len(tail) < MIN_TAIL_SAMPLES:
        return slope, "too short"
    minutes = (tail[-1][0] - tail[0][0]) / 60
    allowed = max(GROWTH_MB, GROWTH_SHARE * statistics.fmean(v for _, v in tail))
    return slope, "GROWING" if slope * minutes > allowed else "flat"


# --- the plant, read once before the traffic ----------------------------------------


@dataclass
class Plant:
    machines: list[int]
    lines: list[int]
    items: list[str]
    locations: list[str]
    desk: list[str]  # products the desk moves to past and back
    passports: list[tuple[str, str]]  # (serial, uuid)
    users: dict[str, int]
    baseline: int  # the outbox's last id before the traffic


def read_plant() -> Plant:
    from bpmos.accounts.models import User
    from bpmos.events.models import OutboxEvent
    from inventory.models import Item, Location
    from lines.models import Line, Machine
    from passports.dispatch.selectors import dispatchable_queryset
    from passports.models import Passport

    users = {
        role: User.objects.filter(username=role).values_list("pk", flat=True).get()
        for role in ROLES
    }
    desk = list(dispatchable_queryset().values_list("serial", flat=True)[:4])
    return Plant(
        machines=list(Machine.objects.order_by("pk").values_list("pk", flat=True)),
        lines=list(Line.objects.order_by("pk").values_list("pk", flat=True)),
        items=list(
            Item.objects.filter(status="good", quantity__gt=0)
            .order_by("code")
            .values_list("code", flat=True)[:12]
        ),
        locations=list(
            Location.objects.filter(is_active=True, kind="bin").values_list(
                "code", flat=True
            )
        ),
        desk=desk,
        passports=[
            (serial, str(uuid))
            for serial, uuid in Passport.objects.order_by("pk").values_list(
                "serial", "uuid"
            )[:60]
        ],
        users=users,
        baseline=OutboxEvent.objects.order_by("-pk")
        .values_list("pk", flat=True)
        .first()
        or 0,
    )


def outbox_by_topic(topics: set[str], after: int, upto: int) -> dict[str, set[int]]:
    """Event ids stored on each of ``topics`` in (after, upto]."""
    from django.db import connection

    from bpmos.events.models import OutboxTopic

    by_topic: dict[str, set[int]] = defaultdict(set)
    rows = OutboxTopic.objects.filter(
        topic__in=topics, event_id__gt=after, event_id__lte=upto
    ).values_list("topic", "event_id")
    for topic, event_id in rows:
        by_topic[topic].add(event_id)
    connection.close()
    return by_topic


def outbox_last_id() -> int:
    from django.db import connection

    from bpmos.events.models import OutboxEvent

    last = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    connection.close()
    return last or 0


def outbox_undelivered(upto: int) -> int:
    from django.db import connection

    from bpmos.events.models import OutboxEvent

    count = OutboxEvent.objects.filter(pk__lte=upto, delivered_at__isnull=True).count()
    connection.close()
    return count


# --- HTTP traffic ---------------------------------------------------------------------


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def server_errors(self, kind: str) -> int:
        return sum(n for status, n in self.statuses[kind].items() if status >= 500)


class Api:
    """One httpx client for the REST API (gunicorn), timing every request by kind."""

    def __init__(self, port: int, stats: Stats):
        self.client = httpx_async_client(port)
        self.stats = stats
        self.tokens: dict[str, str] = {}

    async def login(self) -> None:
        password = os.environ.get(PASSWORD_ENV, DEMO_PASSWORD)
        for role in ROLES:
            response = await self.client.post(
                "/api/auth/login", json={"username": role, "password": password}
            )
            response.raise_for_status()
            self.tokens[role] = response.json()["access"]

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        role: str | None,
        body=None,
        expect=(200, 201),
    ):
        """One request; returns its JSON body on an expected status, else None."""
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        started = time.perf_counter()
        try:
            response = await self.client.request(
                method, path, json=body, headers=headers
            )
        except Exception as exc:  # httpx.TransportError, a timeout: counted, shown
            self.stats.statuses[kind][599] += 1
            self.stats.errors[kind].append(f"{method} {path}: {exc!r}"[:300])
            return None
        self.stats.latencies[kind].append(time.perf_counter() - started)
        self.stats.statuses[kind][response.status_code] += 1
        if response.status_code >= 500 or response.status_code not in expect:
            if len(self.stats.errors[kind]) < 20:
                self.stats.errors[kind].append(
                    f"{method} {path} -> {response.status_code} {response.text[:200]}"
                )
            return None
        return response.json() if response.content else {}


def httpx_async_client(port: int):
    import httpx

    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"X-Forwarded-Proto": "https"},  # as the reverse proxy says
        timeout=HTTP_TIMEOUT,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


async def paced(stop: asyncio.Event, every: float, step, rng: random.Random):
    """Run ``step()`` about every ``every`` seconds (jittered) until ``stop``."""
    await asyncio.sleep(rng.uniform(0, every))
    while not stop.is_set():
        started = time.monotonic()
        await step()
        pause = max(0.0, every * rng.uniform(0.5, 1.5) - (time.monotonic() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def readings_loop(api: Api, machine: int, stop, rng):
    """A SCADA gateway's batches for one machine: counts, cycle times, and a
    state change now and then (which moves the station, and its live events)."""
    state = {"last": datetime.now(UTC), "n": 0, "blocked": False}

    async def step():
        now = datetime.now(UTC)
        count = READINGS_PER_BATCH
        gap = max((now - state["last"]) / count, timedelta(milliseconds=1))
        rows = []
        for i in range(count):
            ts = state["last"] + gap * (i + 1)
            if i == 0 and rng.random() < 0.1:  # a state change every ~50 s
                state["blocked"] = not state["blocked"]
                row = {
                    "tag": "state",
                    "ts": iso(ts),
                    "value": "blocked" if state["blocked"] else "running",
                }
                if state["blocked"]:
                    row["reason"] = "Safety Curtain"
                rows.append(row)
            elif i % 3 == 0:
                rows.append(
                    {
                        "tag": "cycle_time",
                        "ts": iso(ts),
                        "value": round(rng.uniform(10, 14), 2),
                    }
                )
            elif i % 17 == 0:
                rows.append({"tag": "reject_count", "ts": iso(ts), "value": 1})
            else:
                rows.append(
                    {"tag": "good_count", "ts": iso(ts), "value": rng.randint(1, 3)}
                )
        state["last"] = now
        await api.call(
            "readings batch",
            "POST",
            f"/api/machines/{machine}/readings",
            role="operator",
            body=rows,
        )

    return paced(stop, READINGS_EVERY_SECONDS, step, rng)


def stages_loop(api: Api, plant: Plant, stop, rng):
    """A planner opens a work order and assigns its stages to the operator, who
    starts, holds, resumes and finishes them one after the other; a stage the
    runbook refuses (a gate, 409) ends that work order (the planner cancels it)."""
    operator = plant.users["operator"]
    counter = itertools.count(1)
    queue: list[int] = []
    current: dict = {"wo": None}

    async def new_work_order() -> None:
        now = datetime.now(UTC)
        n = next(counter)
        order = await api.call(
            "stage moves",
            "POST",
            "/api/workorders/",
            role="planner",
            body={
                "product_code": "BP-48V-100",
                "lot_no": f"SOAK-{n:05d}",
                "qty": 10,
                "planned_start": iso(now),
                "planned_end": iso(now + timedelta(hours=8)),
            },
            expect=(201,),
        )
        if order is None:
            return
        current["wo"] = order["id"]
        for stage in order.get("stages", []):
            await api.call(
                "stage moves",
                "POST",
                f"/api/stages/{stage['id']}/assignments",
                role="planner",
                body={"user_id": operator},
                expect=(200, 201),
            )
            queue.append(stage["id"])

    async def step():
        if not queue:
            if current["wo"] is not None:
                await api.call(
                    "stage moves",
                    "POST",
                    f"/api/workorders/{current['wo']}/cancel",
                    role="planner",
                    body={"reason": "soak"},
                    expect=(200, 409),
                )
            await new_work_order()
            return
        stage = queue[0]
        for action, body in (
            ("start", None),
            ("hold", {"reason": "Material shortage"}),
            ("resume", None),
            ("done", None),
        ):
            if (
                await api.call(
                    "stage moves",
                    "POST",
                    f"/api/stages/{stage}/{action}",
                    role="operator",
                    body=body,
                    expect=(200,),
                )
                is None
            ):
                queue.clear()  # refused (a gate, an order): the next work order
                return
            if stop.is_set():
                break
        queue.pop(0)

    return paced(stop, 2.0, step, rng)


def inventory_loop(api: Api, plant: Plant, stop, rng):
    async def step():
        item = rng.choice(plant.items)
        detail = await api.call(
            "inventory moves", "GET", f"/api/inventory/items/{item}", role="operator"
        )
        where = detail.get("locationId") if detail else None
        to = rng.choice([loc for loc in plant.locations if loc != where])
        await api.call(
            "inventory moves",
            "POST",
            f"/api/inventory/items/{item}/move",
            role="operator",
            body={"locationId": to, "reason": "re-slot"},
        )

    return paced(stop, 3.0, step, rng)


def dispatch_loop(api: Api, plant: Plant, stop, rng):
    """The desk takes a product off for inspection and reactivates it."""
    off: list[str] = []

    async def step():
        await api.call(
            "dispatch desk", "GET", "/api/live-products/dispatchable", role="supervisor"
        )
        if off and (rng.random() < 0.5 or len(off) == len(plant.desk)):
            product = off.pop(0)
            await api.call(
                "dispatch desk",
                "POST",
                "/api/products/lifecycle",
                role="supervisor",
                body={
                    "productId": product,
                    "action": "reactivate",
                    "reason": "inspected",
                },
            )
        else:
            product = rng.choice([p for p in plant.desk if p not in off])
            if (
                await api.call(
                    "dispatch desk",
                    "POST",
                    "/api/live-products/dispatchable",
                    role="supervisor",
                    body={"productId": product, "reason": "held for inspection"},
                )
                is not None
            ):
                off.append(product)
        await api.call(
            "dispatch desk", "GET", "/api/dashboard/status", role="plant-head"
        )

    return paced(stop, 4.0, step, rng)


def dashboards_loop(api: Api, stop, rng):
    day = iso(datetime.now(UTC) - timedelta(days=1))
    paths = [
        ("plant-head", "/api/dashboard/summary"),
        ("plant-head", "/api/dashboard/distributions"),
        ("plant-head", f"/api/dashboard/trends?metric=oee&bucket=hour&from={day}"),
        *((role, f"/api/dashboard/{role}/summary") for role in ROLES),
        *((role, f"/api/dashboard/{role}/attention") for role in ROLES),
    ]

    async def step():
        role, path = rng.choice(paths)
        await api.call("dashboard polls", "GET", path, role=role)

    return paced(stop, 0.5, step, rng)


def logs_loop(api: Api, stop, rng):
    READERS = ("auditor", "supervisor", "plant-head", "admin")
    queries = [
        "",
        "?category=audit",
        "?severity=error,critical",
        "?search=torque",
        "?category=ledger",
    ]

    async def step():
        query = rng.choice(queries)
        # The audit category is for auditors and admins (403 for the rest).
        readers = ("auditor", "admin") if "audit" in query else READERS
        page = await api.call(
            "logs reads", "GET", f"/api/logs{query}", role=rng.choice(readers)
        )
        if page and page.get("next") and rng.random() < 0.3:
            following = urlsplit(page["next"])
            await api.call(
                "logs reads",
                "GET",
                f"{following.path}?{following.query}",
                role="auditor",
            )

    return paced(stop, 2.0, step, rng)


def passports_loop(api: Api, plant: Plant, stop, rng):
    async def step():
        serial, uuid = rng.choice(plant.passports)
        choice = rng.random()
        if choice < 0.4:
            await api.call(
                "passport lookups",
                "GET",
                f"/api/passports/lookup?identifier={serial}",
                role=rng.choice(ROLES),
            )
        elif choice < 0.8:
            await api.call(
                "passport lookups",
                "GET",
                f"/api/passports/{uuid}",
                role=rng.choice(ROLES),
            )
        else:  # the QR code's public page: throttled per client address (429)
            await api.call(
                "passport lookups",
                "GET",
                f"/api/passports/{uuid}/public",
                role=None,
                expect=(200, 429),
            )

    return paced(stop, 1.0, step, rng)


# --- WebSocket clients ---------------------------------------------------------


def client_plan(n: int, plant: Plant) -> list[tuple[str, list[str]]]:
    """(role, topics) of ``n`` clients: plant screens, line screens, desks,
    the floor's phones, each user's attention list."""
    lines = [f"line.{pk}" for pk in plant.lines]
    shapes = [
        ("plant-head", ["lines", "alerts", f"attention.{plant.users['plant-head']}"]),
        ("operator", ["runbooks", "inventory", f"attention.{plant.users['operator']}"]),
        ("supervisor", ["dispatch", "exceptions", "alerts"]),
        ("planner", ["runbooks", f"attention.{plant.users['planner']}"]),
        ("auditor", ["audit", "passports", "dispatch"]),
        ("admin", ["users", "lines", "inventory", "exceptions"]),
    ]
    plan = []
    for k in range(n):
        role, topics = shapes[k % len(shapes)]
        if k % 4 == 3:  # a line's own screen
            topics = [lines[k % len(lines)], "alerts"]
            role = "operator"
        plan.append((role, topics))
    return plan


@dataclass
class WsClient:
    role: str
    topics: list[str]
    received: set[int] = field(default_factory=set)
    frames: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)

    def expected(self, by_topic: dict[str, set[int]]) -> set[int]:
        """The event ids the outbox stored on this client's topics."""
        return set().union(*(by_topic.get(t, set()) for t in self.topics))

    def lost(self, by_topic: dict[str, set[int]]) -> set[int]:
        """Expected and never received (duplicates and order do not matter)."""
        return self.expected(by_topic) - self.received


async def ws_client(
    client: WsClient,
    url: str,
    token: str,
    baseline: int,
    stop: asyncio.Event,
    gate: asyncio.Semaphore,
    connected: asyncio.Queue,
) -> None:
    """Subscribe from ``baseline`` and record every event id until ``stop``;
    a dropped connection resumes from the highest id seen."""
    from websockets.asyncio.client import connect

    first = True
    while not stop.is_set():
        resume = max(client.received, default=baseline)
        try:
            async with gate:
                ws = await connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {token}"},
                    max_queue=None,
                    open_timeout=60,
                    ping_interval=20,
                    ping_timeout=60,
                )
                hello = json.loads(await ws.recv())
                if hello.get("type") != "authenticated":
                    raise RuntimeError(f"not authenticated: {hello}")
                await ws.send(
                    json.dumps(
                        {
                            "action": "subscribe",
                            "topics": client.topics,
                            "last_event_id": resume,
                        }
                    )
                )
            if first:
                await connected.put(1)
                first = False
            reader = asyncio.ensure_future(_read(ws, client))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not reader.done():
                await ws.close()
                reader.cancel()
                return
            reader.result()
        except Exception as exc:  # a refused or dropped connection: reconnect
            # (daphne drops a handshake its application has not accepted
            # within 5 s: --websocket_connect_timeout, on a loaded machine)
            client.errors.append(repr(exc)[:200])
        if not stop.is_set():
            client.reconnects += 1
            await asyncio.sleep(1)


async def _read(ws, client: WsClient) -> None:
    async for frame in ws:
        client.frames += 1
        message = json.loads(frame)
        if message.get("type") == "event":
            client.received.add(message["id"])
        elif message.get("type") == "error":
            client.errors.append(str(message)[:200])


# --- the run -------------------------------------------------------------------


async def soak(args, plant: Plant, deployment: Deployment, memory: Memory):
    from bench.fanout import raise_open_file_limit

    raise_open_file_limit(args.clients)
    stats = Stats()
    api = Api(deployment.api_port, stats)
    await api.login()
    rng = random.Random(args.seed)

    # The WebSocket clients first: all subscribed (from the baseline) before
    # the traffic starts.
    stop_ws = asyncio.Event()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connected: asyncio.Queue = asyncio.Queue()
    url = f"ws://127.0.0.1:{deployment.ws_port}/ws/events/"
    clients = [
        WsClient(role, topics) for role, topics in client_plan(args.clients, plant)
    ]
    ws_tasks = [
        asyncio.create_task(
            ws_client(
                c, url, api.tokens[c.role], plant.baseline, stop_ws, gate, connected
            )
        )
        for c in clients
    ]
    for _ in clients:
        await asyncio.wait_for(connected.get(), 300)
    print(f"{len(clients)} WebSocket clients subscribed", flush=True)

    stop = asyncio.Event()
    loops = [
        readings_loop(api, m, stop, random.Random(rng.random())) for m in plant.machines
    ]
    loops += [
        stages_loop(api, plant, stop, random.Random(rng.random())),
        inventory_loop(api, plant, stop, random.Random(rng.random())),
        dispatch_loop(api, plant, stop, random.Random(rng.random())),
        dashboards_loop(api, stop, random.Random(rng.random())),
        dashboards_loop(api, stop, random.Random(rng.random())),
        logs_loop(api, stop, random.Random(rng.random())),
        passports_loop(api, plant, stop, random.Random(rng.random())),
    ]
    traffic = [asyncio.create_task(loop) for loop in loops]
    started = time.monotonic()
    duration = args.minutes * 60
    loadavg: list[float] = []
    memory.sample(deployment, 0.0)
    next_sample = args.sample_seconds
    while (elapsed := time.monotonic() - started) < duration:
        await asyncio.sleep(min(1.0, duration - elapsed))
        elapsed = time.monotonic() - started
        if elapsed >= next_sample:
            memory.sample(deployment, elapsed)
            loadavg.append(os.getloadavg()[0])
            next_sample += args.sample_seconds
            done = sum(sum(c.values()) for c in stats.statuses.values())
            bad = sum(stats.server_errors(k) for k in stats.statuses)
            print(
                f"  {elapsed / 60:5.1f} min  {done:>7,} requests  5xx {bad}  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            dead = {n: rc for n, rc in deployment.alive().items() if rc is not None}
            if dead:
                print(f"server(s) died: {dead}")
                break
    memory.sample(deployment, time.monotonic() - started)
    stop.set()
    await asyncio.gather(*traffic)
    seconds = time.monotonic() - started
    await api.client.aclose()

    # Drain: every event stored up to now must reach every client on its topics.
    upto = await asyncio.to_thread(outbox_last_id)
    topics = {t for c in clients for t in c.topics}
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        by_topic = await asyncio.to_thread(
            outbox_by_topic, topics, plant.baseline, upto
        )
        missing = sum(len(c.lost(by_topic)) for c in clients)
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    undelivered = await asyncio.to_thread(outbox_undelivered, upto)
    stop_ws.set()
    await asyncio.gather(*ws_tasks)
    return stats, clients, by_topic, seconds, loadavg, undelivered, upto


def report(
    stats,
    clients,
    by_topic,
    seconds,
    loadavg,
    memory,
    deployment,
    undelivered,
    plant,
    upto,
) -> bool:
    ok = True
    print(
        f"\n== soak: {seconds / 60:.1f} min, {len(clients)} WebSocket clients, "
        f"gunicorn x{GUNICORN_WORKERS} + daphne + Celery worker and beat =="
    )
    print(
        f"{'kind':<18} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'5xx':>5}  other statuses"
    )
    total = 0
    for kind in sorted(stats.statuses):
        count = sum(stats.statuses[kind].values())
        total += count
        lat = stats.latencies[kind]
        p50 = percentile(lat, 50) * 1000 if lat else float("nan")
        p99 = percentile(lat, 99) * 1000 if lat else float("nan")
        bad = stats.server_errors(kind)
        others = ", ".join(
            f"{s}: {n}"
            for s, n in sorted(stats.statuses[kind].items())
            if s not in (200, 201)
        )
        print(
            f"{kind:<18} {count:>9,} {count / seconds:>7.1f} {p50:>8.1f} "
            f"{p99:>8.1f} {bad:>5}  {others}"
        )
        if bad:
            ok = False
    print(f"{'all':<18} {total:>9,} {total / seconds:>7.1f}")
    for kind, errors in stats.errors.items():
        for error in errors[:5]:
            print(f"  {kind}: {error}")

    lost_total, expected_total, delivered_total = 0, 0, 0
    worst: list[tuple[int, int, WsClient]] = []
    for c in clients:
        expected = c.expected(by_topic)
        lost = expected - c.received
        lost_total += len(lost)
        expected_total += len(expected)
        delivered_total += len(expected & c.received)
        if lost:
            worst.append((len(lost), len(expected), c))
    per_client = [len(c.expected(by_topic)) for c in clients]
    print(
        f"\nevents: outbox ids {plant.baseline + 1}..{upto}; per client expected "
        f"{min(per_client)}..{max(per_client)} (sum {expected_total:,}), delivered "
        f"{delivered_total:,}, lost {lost_total}; reconnects "
        f"{sum(c.reconnects for c in clients)}; undelivered outbox rows {undelivered}"
    )
    by_shape: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for c, n in zip(clients, per_client, strict=True):
        row = by_shape[f"{c.role} {'+'.join(c.topics)}"]
        row[0] += 1
        row[1] += n
        row[2] += len(c.received & c.expected(by_topic))
    print(f"  {'client kind':<52} {'clients':>7} {'expected':>9} {'delivered':>9}")
    for shape, (n, exp, got) in sorted(by_shape.items()):
        print(f"  {shape:<52} {n:>7} {exp:>9,} {got:>9,}")
    for n, e, c in sorted(worst, key=lambda w: -w[0])[:5]:
        print(f"  LOST {n}/{e}: {c.role} {c.topics} errors {c.errors[:2]}")
    if lost_total:
        ok = False

    print(
        f"\nmemory (RSS MB, sampled every {int(seconds and memory_interval(memory))} s"
        f"; slope of the last third, MB/min):"
    )
    for label, points in memory.samples.items():
        values = [v for _, v in points]
        slope, verdict = (
            memory_verdict(points) if len(points) > 1 else (0.0, "too short")
        )
        thirds = [
            values[0],
            values[len(values) // 3],
            values[2 * len(values) // 3],
            values[-1],
        ]
        print(
            f"  {label:<36} {' -> '.join(f'{v:6.1f}' for v in thirds)}  max "
            f"{max(values):6.1f}  slope {slope:+6.2f}  {verdict}"
        )
        if verdict == "GROWING":
            ok = False
    if loadavg:
        print(
            f"\nload average (1 min) during the run: mean "
            f"{statistics.fmean(loadavg):.1f}, max {max(loadavg):.1f} "
            f"({os.cpu_count()} cores)"
        )
    dead = {n: rc for n, rc in deployment.alive().items() if rc is not None}
    if dead:
        print(f"servers that died: {dead}")
        ok = False
    print("\nRESULT: " + ("PASS" if ok else "FAIL"))
    return ok


def memory_interval(memory: Memory) -> float:
    points = next(iter(memory.samples.values()), [])
    return points[1][0] - points[0][0] if len(points) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the soak database a previous run seeded",
    )
    args = parser.parse_args()

    production_env()
    setup_soak_django(reuse=args.reuse)
    plant = read_plant()
    from django.db import connection

    connection.close()
    logs = Path("/tmp") / f"bench-soak-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    deployment = start_deployment(logs)
    print(
        f"deployment up (logs in {logs}): gunicorn :{deployment.api_port}, "
        f"daphne :{deployment.ws_port}, Celery worker and beat",
        flush=True,
    )
    started = time.perf_counter()
    sent = warm_up_periodic_tasks()
    print(
        f"warm-up: {sent} periodic tasks run in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    memory = Memory()
    try:
        results = asyncio.run(soak(args, plant, deployment, memory))
        ok = report(*results[:5], memory, deployment, *results[5:6], plant, results[6])
        samples = {label: points for label, points in memory.samples.items()}
        (logs / "memory.json").write_text(json.dumps(samples))
    finally:
        stop_deployment(deployment)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
