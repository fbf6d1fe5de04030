"""Live delivery survives a Redis restart: a real redis-server of the test's own,
killed and started again empty, twice in a row, under a real daphne, with real
WebSocket clients.

Before the fix, after such a restart every write succeeded but delivery silently
stopped for good (the process never re-joined the groups the restart wiped).
docs/design.md §7: nothing committed goes unannounced when Redis is briefly down.

The Redis here is started by the test on a free port (never the shared one);
the server checks its layer every ``CHECK_SECONDS``
(``BPMOS_EVENT_LAYER_CHECK_SECONDS``) so the test does not wait for minutes.
Runs on PostgreSQL and on SQLite alike (the server and this process share the
test database and this Redis); skipped only without a ``redis-server``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from django.db import transaction
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken
from websockets.sync.client import ClientConnection, connect

from bpmos.accounts.services import user_role_change
from bpmos.events.models import OutboxEvent
from bpmos.events.services import events_redeliver
from tests.support import daphne_server

pytestmark = pytest.mark.django_db(transaction=True)

CHECK_SECONDS = 0.5  # the server's BPMOS_EVENT_LAYER_CHECK_SECONDS here
PREFIX = "live-restart"  # channel-layer prefix of the server and of this process
CLIENTS = 3
WRITES = 10  # per phase
DELIVERY_DEADLINE = 20.0  # seconds for a phase's events to reach every client


@pytest.fixture
def server(redis_server, tmp_path) -> Iterator[str]:
    """daphne on the test database and the test's own Redis; yields the ws URL."""
    with daphne_server(
        tmp_path / "daphne.log",
        REDIS_URL=redis_server.url,
        BPMOS_REDIS_PREFIX=PREFIX,
        BPMOS_EVENT_LAYER_CHECK_SECONDS=str(CHECK_SECONDS),
    ) as port:
        yield f"ws://127.0.0.1:{port}/ws/events/"


@pytest.fixture
def own_layer(redis_server):
    """This process publishes to the test's Redis, as a gunicorn worker would."""
    layers = redis_server.channel_layer_settings(PREFIX)
    with override_settings(CHANNEL_LAYERS=layers):
        yield


class Client:
    """A signed-in WebSocket client subscribed to ``users``; keeps every event id."""

    def __init__(self, url: str, user):
        self.ws: ClientConnection = connect(
            url,
            additional_headers={
                "Authorization": f"Bearer {AccessToken.for_user(user)}"
            },
            proxy=None,
            open_timeout=5,
        )
        assert self.next()["type"] == "authenticated"
        self.ws.send(json.dumps({"action": "subscribe", "topics": ["users"]}))
        assert self.next() == {"type": "subscribed", "topics": ["users"]}
        self.ids: list[int] = []

    def next(self, timeout: float = 5.0) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def read_until(self, expected: set[int], deadline: float) -> None:
        """Read events until every id in ``expected`` came (or the deadline)."""
        while not expected <= set(self.ids):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                message = self.next(timeout=remaining)
            except TimeoutError:
                return
            assert message["type"] == "event", message
            self.ids.append(message["id"])

    def read_rest(self, wait: float = 1.0) -> None:
        """Whatever else arrives within ``wait`` seconds (duplicates, strays)."""
        while True:
            try:
                message = self.next(timeout=wait)
            except TimeoutError:
                return
            assert message["type"] == "event", message
            self.ids.append(message["id"])


def writes(operator, admin, n: int) -> list[int]:
    """``n`` committed role changes (one ``user.role_changed`` event each)."""
    ids = []
    for i in range(n):
        with transaction.atomic():
            user_role_change(
                user_id=operator.pk,
                role="planner" if i % 2 == 0 else "operator",
                actor=admin,
            )
        ids.append(OutboxEvent.objects.latest("id").pk)
    return ids


def wait_for_everyone(clients: list[Client], expected: list[int]) -> None:
    deadline = time.monotonic() + DELIVERY_DEADLINE
    for client in clients:
        client.read_until(set(expected), deadline)
    missing = [sorted(set(expected) - set(c.ids)) for c in clients]
    assert missing == [[]] * len(clients), f"events not received: {missing}"


def test_delivery_resumes_after_redis_restarts_empty(
    redis_server, server, own_layer, make_user
):
    admin, operator = make_user("admin"), make_user("operator")
    clients = [Client(server, admin) for _ in range(CLIENTS)]
    try:
        before = writes(operator, admin, WRITES)
        wait_for_everyone(clients, before)

        everything = list(before)
        for _ in range(2):  # twice in a row: recovery must not be a one-off
            redis_server.kill()
            outage = writes(operator, admin, WRITES)  # every write commits
            assert (
                list(
                    OutboxEvent.objects.filter(pk__in=outage).values_list(
                        "delivered_at", flat=True
                    )
                )
                == [None] * WRITES
            )

            redis_server.start()  # empty: every group membership is gone
            after = writes(operator, admin, WRITES)  # at once, racing the recovery

            # The outage's events and those right after the restart reach every
            # client, on the connection it already had, without the resend task.
            wait_for_everyone(clients, outage + after)

            # The resend task (Celery beat) then sends the outage's rows once
            # more: marked delivered now; the consumers drop the copies by id.
            assert events_redeliver(older_than_seconds=0) == WRITES
            assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()
            everything += outage + after
        later = writes(operator, admin, WRITES)
        wait_for_everyone(clients, later)
        for client in clients:
            client.read_rest()

        everything += later
        for client in clients:
            assert sorted(client.ids) == sorted(everything)  # each exactly once
    finally:
        for client in clients:
            client.ws.close()
