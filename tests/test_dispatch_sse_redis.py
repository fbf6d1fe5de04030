"""The dispatch desk's SSE stream when Redis goes away: a real redis-server of
the test's own, killed and started again empty under a real daphne, with a real
HTTP client (httpx streaming) on the stream.

Before the fix, a stream had a group membership and a Redis channel of its own. An
outage ended it, and one that outlived a quick restart kept its heartbeats but
never got another event; opening it with Redis down answered daphne's HTML
500. Now it is a subscriber of the process's fan-out (bpmos.events.fanout), as
the WebSockets are (tests/test_live_redis_restart.py): it stays open, and the
fan-out re-joins the group and catches up from the outbox once Redis is back.

Runs on PostgreSQL and on SQLite alike (the server and this process share the
test database and this Redis); skipped only without a ``redis-server``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from bpmos.events.models import OutboxEvent
from passports.dispatch import services as dispatch
from passports.models import JobState
from tests.dispatch_support import latest_job, make_pack
from tests.support import ENVELOPE_KEYS, daphne_server

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/api/live-products/dispatchable/stream"
CHECK_SECONDS = 0.5  # the server's BPMOS_EVENT_LAYER_CHECK_SECONDS here
HEARTBEAT = 0.5  # the server's BPMOS_SSE_HEARTBEAT_SECONDS here
PREFIX = "sse-restart"  # channel-layer prefix of the server and of this process
DELIVERY_DEADLINE = 20.0  # seconds for a phase's events to reach the stream


@pytest.fixture
def server(redis_server, tmp_path) -> Iterator[str]:
    """daphne on the test database and the test's own Redis (its channel layer
    and its cache); yields the stream's URL."""
    with daphne_server(
        tmp_path / "daphne.log",
        REDIS_URL=redis_server.url,
        BPMOS_REDIS_PREFIX=PREFIX,
        BPMOS_EVENT_LAYER_CHECK_SECONDS=str(CHECK_SECONDS),
        BPMOS_SSE_HEARTBEAT_SECONDS=str(HEARTBEAT),
    ) as port:
        yield f"http://127.0.0.1:{port}{STREAM}"


@pytest.fixture
def own_layer(redis_server):
    """This process publishes to the test's Redis, as a gunicorn worker would."""
    layers = redis_server.channel_layer_settings(PREFIX)
    with override_settings(CHANNEL_LAYERS=layers):
        yield


class Stream:
    """An open SSE response, read message by message; heartbeats counted."""

    def __init__(self, response: httpx.Response):
        self.lines = response.iter_lines()
        self.heartbeats = 0

    def next(self, deadline: float) -> dict | None:
        """The next message ({"id", "data"}), or None once ``deadline`` passed
        (the server's heartbeats wake the reader every HEARTBEAT seconds).
        Fails if the stream ends: it must outlive the outage."""
        event_id, data = None, []
        for line in self.lines:
            if line == "":
                if data:
                    return {"id": event_id, "data": json.loads("\n".join(data))}
            elif line.startswith(":"):
                self.heartbeats += 1
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "id":
                    event_id = value
                elif name == "data":
                    data.append(value)
            if not data and time.monotonic() >= deadline:
                return None
        pytest.fail("the stream ended")

    def read_until(self, expected: list[OutboxEvent], wait: float) -> list[dict]:
        """Messages until every row of ``expected`` came (or the deadline),
        then whatever else comes within ``wait`` seconds (duplicates, strays)."""
        deadline = time.monotonic() + DELIVERY_DEADLINE
        want = {str(row.pk) for row in expected}
        messages: list[dict] = []
        settled = False
        while True:
            if not settled and want <= {m["id"] for m in messages}:
                settled, deadline = True, time.monotonic() + wait
            message = self.next(deadline)
            if message is None:
                return messages
            messages.append(message)


@contextmanager
def open_stream(url: str, headers: dict[str, str]) -> Iterator[Stream]:
    with (
        httpx.Client(timeout=httpx.Timeout(5.0)) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        yield Stream(response)


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def settle_outbox() -> int:
    """Mark what the fixtures published as delivered; the last id so far."""
    OutboxEvent.objects.filter(delivered_at__isnull=True).update(
        delivered_at=timezone.now()
    )
    return OutboxEvent.objects.latest("pk").pk


def dispatch_rows(after: int) -> list[OutboxEvent]:
    """The ``dispatch`` topic's events after ``after``, oldest first."""
    return [
        row
        for row in OutboxEvent.objects.filter(pk__gt=after).order_by("pk")
        if "dispatch" in row.topics
    ]


def moves(actor, packs) -> list[OutboxEvent]:
    """Each pack moved to past or back (two committed events each)."""
    mark = OutboxEvent.objects.latest("pk").pk
    for pack in packs:
        if latest_job(pack).state == JobState.ON:
            dispatch.product_move_to_past(
                passport_id=pack.pk, reason="recount", actor=actor
            )
        else:
            dispatch.product_reactivate(passport_id=pack.pk, actor=actor)
    rows = dispatch_rows(mark)
    assert len(rows) == 2 * len(packs)
    return rows


def as_messages(rows: list[OutboxEvent]) -> list[dict]:
    return [
        {"id": str(row.pk), "data": {"type": row.name, "data": row.data}}
        for row in rows
    ]


def assert_caught_up(received: list[dict], expected: list[OutboxEvent]) -> None:
    """Every expected event exactly once, as stored. The catch-up may also
    offer older events of its window (stored up to 10 s before the last good
    check) that this stream never had: only those, once each, as stored."""
    ids = [message["id"] for message in received]
    assert len(ids) == len(set(ids)), f"duplicates: {ids}"
    by_id = {message["id"]: message for message in received}
    assert [by_id.get(str(row.pk)) for row in expected] == as_messages(expected)
    wanted = {str(row.pk) for row in expected}
    extras = [message for message in received if message["id"] not in wanted]
    older = OutboxEvent.objects.filter(
        pk__in=[int(message["id"]) for message in extras],
        pk__lt=expected[0].pk,
    ).order_by("pk")
    assert sorted(extras, key=lambda m: int(m["id"])) == as_messages(list(older))


def test_open_stream_gets_events_after_redis_restarts_empty(
    redis_server, server, own_layer, make_user
):
    sam = make_user("supervisor")
    packs = [make_pack(sam, f"PK-R{i}") for i in range(3)]
    settle_outbox()
    with open_stream(server, bearer(make_user("operator"))) as stream:
        assert stream.next(time.monotonic() + 5)["data"]["type"] == (
            "connection_established"
        )
        before = moves(sam, packs)
        assert stream.read_until(before, wait=0) == as_messages(before)

        redis_server.kill()
        outage = moves(sam, packs)  # every move commits; its send fails
        assert [row.delivered_at for row in outage] == [None] * len(outage)
        redis_server.start()  # empty: the server's group membership is gone
        after = moves(sam, packs)  # at once, racing the server's recovery

        # On the same response, without a reconnect: the outage's events and
        # those sent into the forgetful Redis, each exactly once.
        received = stream.read_until(outage + after, wait=2 * CHECK_SECONDS)
        assert_caught_up(received, outage + after)

        later = moves(sam, packs)  # live again
        assert stream.read_until(later, wait=0) == as_messages(later)
        assert stream.heartbeats > 0


def test_stream_opened_while_redis_is_down_works_and_catches_up(
    redis_server, server, own_layer, make_user
):
    sam = make_user("supervisor")
    packs = [make_pack(sam, f"PK-D{i}") for i in range(2)]
    seen = settle_outbox()

    redis_server.kill()
    missed = moves(sam, packs)  # before the stream opens: replayed from the outbox
    headers = {**bearer(make_user("planner")), "Last-Event-ID": str(seen)}
    with open_stream(server, headers) as stream:
        hello = stream.next(time.monotonic() + 5)
        assert hello["data"]["type"] == "connection_established"
        assert hello["data"]["data"]["lastEventId"] == seen
        replayed = [stream.next(time.monotonic() + 5) for _ in range(5)]
        assert replayed == [
            *as_messages(missed),
            {
                "id": None,
                "data": {"type": "replayed", "data": {"count": 4, "truncated": False}},
            },
        ]

        outage = moves(sam, packs)  # while the stream is open and Redis down
        redis_server.start()
        received = stream.read_until(outage, wait=2 * CHECK_SECONDS)
        assert_caught_up(received, outage)

        later = moves(sam, packs)
        assert stream.read_until(later, wait=0) == as_messages(later)


def test_ticket_with_redis_down_is_503(redis_server, server):
    """A ticket lives in the cache (Redis): with Redis down it cannot be
    redeemed; the answer is a 503 in the envelope, never a 500."""
    redis_server.kill()
    response = httpx.get(f"{server}?ticket=" + "t" * 43, timeout=10)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body == {
        "success": False,
        "error": "Redis is unavailable; try again shortly.",
        "code": "dependency_unavailable",
        "details": {"dependency": "redis"},
        "request_id": response.headers["x-request-id"],
    }
