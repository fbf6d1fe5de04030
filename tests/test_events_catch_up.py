"""What tests/test_redis_outage_changes.py found, kept as small tests.

- A server process's catch-up after Redis came back empty offered its
  subscribers every event of the last seconds before the outage, those sent
  before a subscriber had even joined included: a client that subscribed
  without ``last_event_id`` got 20 events older than its subscription, after
  newer ones (a stage's ``held`` after its later ``resumed``).
- Live events that arrived while the catch-up was still offering the
  outbox's events went out between them: out of id order.
- A client away through the outage resumed with ``last_event_id`` and got the
  first 1,000 events and ``truncated``, not the 1,354 it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken

from bpmos.accounts.services import user_role_change
from bpmos.events import selectors, services
from bpmos.events.consumers import EventConsumer
from bpmos.events.fanout import LocalFanout
from bpmos.events.models import OutboxEvent
from bpmos.events.services import group_name
from tests.support import WAIT_SECONDS

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 400  # events sent at once, past channels_redis's default capacity of 100


class Recorder:
    """A subscriber that keeps the ids it is offered, in order."""

    def __init__(self):
        self.ids: list[int] = []

    async def offer(self, event: dict, text: str) -> None:
        self.ids.append(event["id"])


def role_change(user, role: str, *, actor) -> OutboxEvent:
    with transaction.atomic():
        user_role_change(user_id=user.pk, role=role, actor=actor)
    return OutboxEvent.objects.latest("id")


async def sent_into(layer, row: OutboxEvent) -> None:
    """What a publisher does after commit: send, then mark the row delivered."""
    for topic in row.topics:
        await layer.group_send(group_name(topic), services.event_message(row))
    await sync_to_async(services.event_outcome_record)(delivered=[row.pk], failed=[])


async def stop(fanout: LocalFanout) -> None:
    """``fanout.stop()``, failing the test if it takes over ``WAIT_SECONDS``."""
    async with asyncio.timeout(WAIT_SECONDS):
        await fanout.stop()


async def wait_for(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def people(make_user):
    return (
        await sync_to_async(make_user)("admin"),
        await sync_to_async(make_user)("operator"),
    )


async def test_a_catch_up_offers_no_event_sent_before_the_subscriber_joined(people):
    admin, operator = people
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer, check_seconds=0.05)
    early = Recorder()
    await fanout.join(early, "users")
    try:
        before = await sync_to_async(role_change)(operator, "planner", actor=admin)
        await sent_into(layer, before)
        await wait_for(lambda: early.ids == [before.pk])
        late = Recorder()
        await fanout.join(late, "users")  # after ``before`` went out

        layer.groups.clear()  # Redis restarted empty
        missed = await sync_to_async(role_change)(operator, "operator", actor=admin)
        await sent_into(layer, missed)  # into a group with no members

        await wait_for(lambda: fanout.recoveries == 1 and late.ids)
        await asyncio.sleep(0.2)
        # ``early`` is offered both (the consumer drops what it had by id);
        # ``late`` only what was sent after it joined.
        assert early.ids == [before.pk, before.pk, missed.pk]
        assert late.ids == [missed.pk]
    finally:
        await stop(fanout)


class SlowRecorder(Recorder):
    """Takes a while over each event offered, as a connection being written to
    does; a live event is published while it handles the first one."""

    def __init__(self, publish_live):
        super().__init__()
        self.publish_live = publish_live

    async def offer(self, event: dict, text: str) -> None:
        await super().offer(event, text)
        if len(self.ids) == 1:
            await self.publish_live()
        await asyncio.sleep(0.05)  # the reader has the live event meanwhile


async def test_live_events_wait_until_the_catch_up_is_offered(people):
    admin, operator = people
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer, check_seconds=0.05)
    live_rows: list[OutboxEvent] = []

    async def publish_live() -> None:
        row = await sync_to_async(role_change)(operator, "auditor", actor=admin)
        live_rows.append(row)
        await sent_into(layer, row)

    recorder = SlowRecorder(publish_live)
    await fanout.join(recorder, "users")
    try:
        layer.groups.clear()  # Redis restarted empty
        missed = []
        for role in ("planner", "operator", "planner"):
            row = await sync_to_async(role_change)(operator, role, actor=admin)
            await sent_into(layer, row)  # gone
            missed.append(row.pk)

        await wait_for(lambda: len(recorder.ids) == 4)
        await asyncio.sleep(0.2)
        assert recorder.ids == [*missed, live_rows[0].pk]  # in id order
    finally:
        await stop(fanout)


async def resumed(user, last_event_id: int) -> tuple[list[int], dict]:
    """A client resuming from ``last_event_id`` (in process): the ids replayed
    and the ``replayed`` message."""
    token = await sync_to_async(AccessToken.for_user)(user)
    communicator = WebsocketCommunicator(
        EventConsumer.as_asgi(),
        "/ws/events/",
        headers=[(b"authorization", f"Bearer {token}".encode())],
    )
    connected, _ = await communicator.connect()
    assert connected
    try:
        assert (await communicator.receive_json_from())["type"] == "authenticated"
        await communicator.send_json_to(
            {"action": "subscribe", "topics": ["users"], "last_event_id": last_event_id}
        )
        assert (await communicator.receive_json_from())["type"] == "subscribed"
        ids = []
        while True:
            message = await communicator.receive_json_from(timeout=5)
            if message["type"] != "event":
                return ids, message
            ids.append(message["id"])
    finally:
        await communicator.disconnect()


async def test_a_resume_sends_more_than_one_page(people, monkeypatch):
    admin, operator = people
    monkeypatch.setattr(selectors, "REPLAY_LIMIT", 3)  # pages of 3
    monkeypatch.setattr(selectors, "REPLAY_MAX_EVENTS", 7)
    seen = await sync_to_async(role_change)(operator, "planner", actor=admin)
    missed = [
        (await sync_to_async(role_change)(operator, role, actor=admin)).pk
        for role in ("operator", "planner") * 3
    ]
    ids, replayed = await resumed(admin, seen.pk)
    assert ids == missed  # 6: two pages
    assert (replayed["count"], replayed["truncated"]) == (6, False)

    more = (await sync_to_async(role_change)(operator, "operator", actor=admin)).pk
    await sync_to_async(role_change)(operator, "planner", actor=admin)
    ids, replayed = await resumed(admin, seen.pk)
    assert ids == [*missed, more]  # the first 7 of 8: the client reloads over REST
    assert (replayed["type"], replayed["count"], replayed["truncated"]) == (
        "replayed",
        7,
        True,
    )


# --- a burst larger than a channel's capacity ---------------------------------------


class SlowReader(Recorder):
    """A subscriber whose connection takes a while over each event (1,000
    clients on one process take ~0.1 s an event: docs/websocket.md)."""

    async def offer(self, event: dict, text: str) -> None:
        await super().offer(event, text)
        await asyncio.sleep(0.005)


@pytest.mark.skipif(
    not settings.REDIS_URL, reason="the channel capacity is channels_redis's"
)
async def test_a_burst_of_events_is_not_dropped_while_the_reader_is_busy():
    """The resend task sent the 1,000 events of an outage into the process's one
    channel at once, faster than its reader hands them on; channels_redis drops
    what exceeds a channel's capacity (100 by default, logged "over capacity"),
    and a live event sent meanwhile would have gone with them unnoticed (it is
    marked delivered). The layer's capacity (bpmos/settings.py) holds such a
    burst."""
    layer = get_channel_layer()
    fanout = LocalFanout(layer)
    reader = SlowReader()
    topic = f"line.{uuid.uuid4().int % 10**9}"
    await fanout.join(reader, topic)
    try:
        for n in range(1, BURST + 1):
            await layer.group_send(
                group_name(topic),
                {
                    "type": "event.message",
                    "event": {"id": n, "topics": [topic], "name": "x", "data": {}},
                },
            )
        with contextlib.suppress(TimeoutError):
            await wait_for(lambda: len(reader.ids) == BURST, timeout=20)
        assert reader.ids == list(range(1, BURST + 1)), len(reader.ids)
    finally:
        await stop(fanout)
