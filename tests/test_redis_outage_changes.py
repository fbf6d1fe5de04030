"""Redis stopped for a minute while 1,000 changes are made: nothing is lost.

The production topology, every part real (docs/design.md §2): the REST API
under gunicorn (2 sync workers), the WebSocket endpoint under daphne, a Celery
worker and Celery beat (whose ``events_redeliver`` resends what the
publishers could not send), all on a redis-server of this test's own (channel
layer, cache and broker alike; the shared Redis is never touched) and on the
test database. Real WebSocket clients (``websockets``) follow the topics the
changes publish on and record every event id.

Then Redis is killed, and 1,000 changes are made through the HTTP API while
it stays down for ``OUTAGE`` seconds (``BPMOS_TEST_REDIS_OUTAGE_SECONDS``,
default 60, as CI runs it; longer if the changes take longer): stage holds and
resumes, inventory moves and machine state readings. Every one must answer
2xx and be committed. Redis then comes back empty, and:

- every client that stayed connected gets every event of its topics exactly
  once, in id order, with no gap (on the connection it had: nobody
  reconnects);
- a client that left before the outage, and one that left as it began and came
  back halfway (Redis still down: its replay comes from the database), resume
  with ``last_event_id`` and get exactly what they missed, then the live
  events after it;
- the resend task (Celery beat and worker) marks every outbox row delivered.

``BPMOS_TEST_REDIS_OUTAGE_CHANGES`` may lower the count for a local run. Runs
on PostgreSQL and on SQLite alike (the servers share the test database);
skipped only without a ``redis-server``. Every wait has a deadline; nothing
asserts a speed.

docs/websocket.md ("When Redis goes away") and docs/security.md (outages)
describe the guarantees and this test's figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from websockets.sync.client import ClientConnection, connect

from bpmos.events.models import OutboxEvent, OutboxTopic
from inventory.models import Item, StockMovement
from lines.models import Machine, MachineReading
from runbooks import services as runbook_services
from runbooks.models import WorkOrderStage
from tests.conftest import bearer
from tests.factories_inventory import make_categories, make_warehouse, receive
from tests.factories_lines import make_line
from tests.factories_production import make_runbook, make_work_order, stages_of
from tests.support import (
    OwnRedis,
    ServerFailed,
    daphne_server,
    free_port,
    http_answers,
    server_env,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.django_db(transaction=True)

OUTAGE = float(os.environ.get("BPMOS_TEST_REDIS_OUTAGE_SECONDS") or 60)
CHANGES = int(os.environ.get("BPMOS_TEST_REDIS_OUTAGE_CHANGES") or 1000)
LANES = 4  # HTTP clients making changes at once, each on objects of its own
PREFIX = "redis-outage"  # the servers' BPMOS_REDIS_PREFIX
TOPICS = ["runbooks", "inventory", "lines"]
# Seconds for every event to reach every client once Redis is back (the
# server checks its layer every 2 s, BPMOS_EVENT_LAYER_CHECK_SECONDS), and for
# the resend task to have marked the outage's rows: the worker finds the
# broker again after up to 30 s (Celery's reconnection backs off 2 s more each
# try), beat then hands it the task every 5 s, 1,000 rows a run.
DELIVERY_DEADLINE = 30.0
RESEND_DEADLINE = 60.0


# --- processes ------------------------------------------------------------------


def _env(redis: OwnRedis, **extra: str) -> dict[str, str]:
    """A production process's environment on the test database and ``redis``
    (channel layer, cache and Celery broker)."""
    return server_env(
        REDIS_URL=redis.url,
        CELERY_BROKER_URL=redis.url,
        BPMOS_REDIS_PREFIX=PREFIX,
        DATABASE_CONN_MAX_AGE="60",
        **extra,
    )


def _celery(kind: str, redis: OwnRedis, log: Path) -> subprocess.Popen:
    """``celery worker`` or ``celery beat`` as the Procfile runs them."""
    if kind == "worker":
        args = ["worker", "--concurrency", "1", "--without-gossip", "--without-mingle"]
    else:
        args = ["beat", "--schedule", str(log.with_suffix(".schedule"))]
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bpmos", *args, "--loglevel", "INFO"],
        cwd=settings.BASE_DIR,
        env=_env(redis),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class Plant:
    api: str  # gunicorn's base URL
    ws: str  # daphne's ws/events/ URL
    logs: Path


@pytest.fixture
def plant(redis_server, tmp_path) -> Iterator[Plant]:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "bpmos.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60",
    ]  # fmt: skip
    try:
        gunicorn = start_server(
            "gunicorn",
            command,
            port,
            tmp_path / "gunicorn.log",
            ready=http_answers,
            env=_env(redis_server),
        )
    except ServerFailed as failure:
        pytest.fail(str(failure))
    celery: list[subprocess.Popen] = []
    try:
        with daphne_server(
            tmp_path / "daphne.log",
            REDIS_URL=redis_server.url,
            CELERY_BROKER_URL=redis_server.url,
            BPMOS_REDIS_PREFIX=PREFIX,
        ) as ws_port:
            # Started last: on a loaded 2-core machine four processes booting
            # at once kept gunicorn from answering within a minute.
            celery.append(_celery("worker", redis_server, tmp_path / "worker.log"))
            celery.append(_celery("beat", redis_server, tmp_path / "beat.log"))
            yield Plant(
                api=f"http://127.0.0.1:{port}",
                ws=f"ws://127.0.0.1:{ws_port}/ws/events/",
                logs=tmp_path,
            )
    finally:
        stop_server(gunicorn)
        for process in celery:
            _stop_group(process)


@pytest.fixture
def own_layer(redis_server):
    """This process publishes (the setup's events) to the test's Redis, as a
    gunicorn worker would: sent and marked delivered before any client
    subscribes. (On SQLite without it they stayed in the outbox, and the resend
    task sent them live to the clients that subscribed after they were made.)"""
    with override_settings(CHANNEL_LAYERS=redis_server.channel_layer_settings(PREFIX)):
        yield


# --- WebSocket clients ------------------------------------------------------------


@dataclass
class Client:
    """A signed-in client following ``topics``; records every event id it is
    sent, across its connections, in arrival order. A reader thread per
    connection keeps reading, as a browser does."""

    url: str
    token: str
    topics: list[str]
    ids: list[int] = field(default_factory=list)
    replays: list[dict] = field(default_factory=list)
    strays: list[dict] = field(default_factory=list)
    ws: ClientConnection | None = None
    reader: threading.Thread | None = None

    def open(self, last_event_id: int | None = None) -> None:
        self.ws = connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            proxy=None,
            open_timeout=10,
        )
        assert json.loads(self.ws.recv(timeout=10))["type"] == "authenticated"
        request = {"action": "subscribe", "topics": self.topics}
        if last_event_id is not None:
            request["last_event_id"] = last_event_id
        self.ws.send(json.dumps(request))
        subscribed = json.loads(self.ws.recv(timeout=10))
        assert subscribed == {"type": "subscribed", "topics": self.topics}
        self.reader = threading.Thread(target=self._read, args=(self.ws,), daemon=True)
        self.reader.start()

    def _read(self, ws: ClientConnection) -> None:
        for text in ws:
            message = json.loads(text)
            if message["type"] == "event":
                self.ids.append(message["id"])
            elif message["type"] == "replayed":
                self.replays.append(message)
            else:
                self.strays.append(message)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.reader.join(timeout=10)
            self.ws = None

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0


def wait_for(clients: list[Client], expected: dict[str, list[int]], deadline: float):
    """Until each client has the ids ``expected[topics key]`` (or the deadline)."""
    while time.monotonic() < deadline:
        if all(set(expected[key(c)]) <= set(c.ids) for c in clients):
            return
        time.sleep(0.2)


def key(client: Client) -> str:
    return ",".join(client.topics)


def stored(topics: list[str], after: int = 0) -> list[int]:
    """Ids of the outbox events on ``topics`` with id > ``after``, in order."""
    return list(
        OutboxTopic.objects.filter(topic__in=topics, event_id__gt=after)
        .values_list("event_id", flat=True)
        .distinct()
        .order_by("event_id")
    )


def differences(client: Client, expected: list[int]) -> dict:
    """What is wrong with a client's ids: missing, extra, repeated, out of order."""
    seen, repeated, backwards = set(), [], []
    for previous, current in zip([0, *client.ids], client.ids, strict=False):
        if current in seen:
            repeated.append(current)
        elif current < previous:
            backwards.append((previous, current))
        seen.add(current)
    return {
        "missing": sorted(set(expected) - seen)[:50],
        "extra": sorted(seen - set(expected))[:50],
        "repeated": repeated[:50],
        "backwards": backwards[:50],
        "replays": client.replays,
    }


# --- the plant's objects and the changes ------------------------------------------


@dataclass
class Lane:
    """What one HTTP client changes: a running stage of its own work order, an
    item of its own, a machine of its own."""

    stage: WorkOrderStage
    item: str
    machine: int
    held: bool = False
    at_b: bool = False
    running: bool = False


def make_lanes(operator, planner) -> list[Lane]:
    runbook = make_runbook()
    make_categories()
    make_warehouse()
    line = make_line(
        stations=tuple((f"st-{n:02d}", f"Station {n}", "10") for n in range(LANES))
    )
    machines = list(
        Machine.objects.filter(station__line=line)
        .order_by("station__position")
        .values_list("pk", flat=True)
    )
    lanes = []
    for n in range(LANES):
        work_order = make_work_order(planner, runbook=runbook, lot_no=f"LOT-{n}")
        first = stages_of(work_order)[0]
        runbook_services.stage_assign(
            stage_id=first.pk, user_id=operator.pk, actor=planner
        )
        runbook_services.stage_start(stage_id=first.pk, actor=operator)
        code = f"CELL-OUT-{n}"
        receive(planner, code)
        lanes.append(Lane(stage=first, item=code, machine=machines[n]))
    return lanes


def change(http: httpx.Client, lane: Lane, n: int, started) -> tuple[str, int]:
    """The ``n``-th change of a lane: a stage hold or resume, an item move, or a
    machine state reading; returns (what, HTTP status)."""
    kind = n % 3
    if kind == 0:
        verb = "resume" if lane.held else "hold"
        body = {"reason": f"Outage check {n}"} if verb == "hold" else {}
        response = http.post(f"/api/stages/{lane.stage.pk}/{verb}", json=body)
        lane.held = not lane.held
        return f"stage.{verb}", response.status_code
    if kind == 1:
        where = "A-R2" if lane.at_b else "B-R1"
        response = http.post(
            f"/api/inventory/items/{lane.item}/move",
            json={"locationId": where, "reason": f"Outage check {n}"},
        )
        lane.at_b = not lane.at_b
        return "item.move", response.status_code
    lane.running = not lane.running
    ts = started + timedelta(milliseconds=n)
    response = http.post(
        f"/api/machines/{lane.machine}/readings",
        json={
            "tag": "state",
            "ts": ts.isoformat().replace("+00:00", "Z"),
            "value": "running" if lane.running else "idle",
        },
    )
    return "reading", response.status_code


def make_changes(
    api: str, headers: dict, lanes: list[Lane], count: int, *, at_once: bool
) -> list:
    """``count`` changes spread over the lanes; the lanes ``at_once`` (each
    lane's changes one after another) or one lane after the other.

    Event ids are taken when an event is stored, so concurrent writers can
    commit (and send) a greater id before a smaller one. Live, that reaches a
    client out of order, rightly; so the changes made while clients receive
    live are made one at a time, and those made during the outage, when
    nothing goes out live, at once.
    """
    started = timezone.now() - timedelta(minutes=30)

    def run(index: int) -> list[tuple[str, int]]:
        lane = lanes[index]
        with httpx.Client(base_url=api, headers=headers, timeout=30) as http:
            return [
                change(http, lane, n, started) for n in range(index, count, len(lanes))
            ]

    with ThreadPoolExecutor(len(lanes) if at_once else 1) as pool:
        return [
            answer for answers in pool.map(run, range(len(lanes))) for answer in answers
        ]


def test_a_minute_without_redis_under_1000_changes_loses_nothing(
    plant, redis_server, own_layer, make_user
):
    test_started = time.monotonic()
    admin = make_user("admin")
    operator = make_user("operator", username="olga")
    lanes = make_lanes(operator, make_user("planner"))
    headers = bearer(operator)
    token = str(AccessToken.for_user(admin))
    clients = {
        "all": Client(plant.ws, token, TOPICS),
        "all-2": Client(plant.ws, token, TOPICS),
        "inventory": Client(plant.ws, token, ["inventory"]),
        "lines": Client(plant.ws, token, ["lines"]),
        # leaves before the outage, comes back after it
        "away": Client(plant.ws, token, TOPICS),
        # leaves as the outage starts, comes back halfway through it
        "back-early": Client(plant.ws, token, ["runbooks", "inventory"]),
    }
    start = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()
    start = start or 0
    for client in clients.values():
        client.open()
    everyone = list(clients.values())
    try:
        # Before: a few changes, delivered live.
        before = make_changes(plant.api, headers, lanes, 12, at_once=False)
        assert {status for _, status in before} <= {200, 201}, before
        wait_for(
            everyone,
            {key(c): stored(c.topics, start) for c in everyone},
            time.monotonic() + DELIVERY_DEADLINE,
        )
        clients["away"].close()

        # The outage: 1,000 changes, every one answered 2xx. One client leaves
        # and comes back halfway, between two halves (so its replay, from the
        # database, has every event stored before it: none commits late).
        redis_server.kill()
        down_at = time.monotonic()
        outbox_before = OutboxEvent.objects.count()
        back_early = clients["back-early"]
        back_early.close()
        half = CHANGES // 2
        during = make_changes(plant.api, headers, lanes, half, at_once=True)
        back_early.open(last_event_id=back_early.last_id)
        during += make_changes(plant.api, headers, lanes, CHANGES - half, at_once=True)
        changes_took = time.monotonic() - down_at
        refused = [
            (what, status) for what, status in during if status not in (200, 201)
        ]
        assert refused == []
        assert len(during) == CHANGES
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        outage_events = OutboxEvent.objects.count() - outbox_before
        assert outage_events >= CHANGES  # every change committed its event(s)
        undelivered = OutboxEvent.objects.filter(delivered_at__isnull=True).count()
        assert undelivered >= CHANGES  # nothing was sent while Redis was down

        # Redis comes back empty: every group membership is gone.
        last_stored = OutboxEvent.objects.latest("id").pk
        redis_server.start()
        back_at = time.monotonic()
        down_for = back_at - down_at
        clients["away"].open(last_event_id=clients["away"].last_id)
        expected = {key(c): stored(c.topics, start) for c in everyone}
        wait_for(everyone, expected, back_at + DELIVERY_DEADLINE)
        delivered_in = time.monotonic() - back_at

        # The resend task marks what the publishers could not send delivered
        # (the rows stored until Redis returned: a background task may be
        # sending a newer one right now).
        deadline = time.monotonic() + RESEND_DEADLINE
        unsent = OutboxEvent.objects.filter(
            pk__lte=last_stored, delivered_at__isnull=True
        )
        while unsent.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        resent_in = time.monotonic() - back_at
        assert not unsent.exists(), (
            timezone.now(),
            list(unsent.values("id", "name", "created_at", "attempts")[:20]),
        )

        # After: live again, on every connection.
        after = make_changes(plant.api, headers, lanes, 12, at_once=False)
        assert {status for _, status in after} <= {200, 201}, after
        expected = {key(c): stored(c.topics, start) for c in everyone}
        wait_for(everyone, expected, time.monotonic() + DELIVERY_DEADLINE)
        time.sleep(1.0)  # whatever else may come (a duplicate, a stray)

        # Every change is in the database.
        assert StockMovement.objects.filter(
            reason__startswith="Outage check"
        ).count() == sum(
            1 for what, _ in before + during + after if what == "item.move"
        )
        assert MachineReading.objects.filter(tag="state").count() == sum(
            1 for what, _ in before + during + after if what == "reading"
        )
        for lane in lanes:
            lane.stage.refresh_from_db()
            assert (lane.stage.status == "hold") == lane.held
            assert Item.objects.get(code=lane.item).location.code == (
                "B-R1" if lane.at_b else "A-R2"
            )

        report = {
            name: (len(c.ids), len(expected[key(c)]), c.replays)
            for name, c in clients.items()
        }
        print(
            f"\nRedis down {down_for:.0f} s, {CHANGES} changes in "
            f"{changes_took:.1f} s, {outage_events} events; all delivered "
            f"{delivered_in:.1f} s after Redis returned, all marked by the resend "
            f"task after {resent_in:.1f} s; test body "
            f"{time.monotonic() - test_started:.0f} s; {report}"
        )
        for name, client in clients.items():
            assert client.strays == [], name
            # Exactly once, in order, no gap.
            assert client.ids == expected[key(client)], (
                name,
                differences(client, expected[key(client)]),
            )
    finally:
        for client in everyone:
            client.close()
