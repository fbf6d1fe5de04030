"""The process-wide fan-out: one group membership per topic, one encoding per
event, and memberships that survive a layer that fails or forgets them."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction
from rest_framework_simplejwt.tokens import AccessToken

from bpmos.accounts.services import user_role_change
from bpmos.events import services
from bpmos.events.consumers import EventConsumer
from bpmos.events.fanout import LocalFanout, local_fanout
from bpmos.events.models import OutboxEvent
from bpmos.events.services import group_name
from tests.support import WAIT_SECONDS


class Recorder:
    def __init__(self):
        self.texts: list[str] = []

    async def offer(self, event: dict, text: str) -> None:
        self.texts.append(text)


def message(event_id: int, topics: list[str]) -> dict:
    return {
        "type": "event.message",
        "event": {
            "id": event_id,
            "name": "station.changed",
            "topics": topics,
            "occurredAt": "2026-01-01T00:00:00Z",
            "data": {"state": "Running"},
        },
    }


async def wait_for(condition, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def stop(fanout: LocalFanout) -> None:
    """``fanout.stop()`` (which cancels its reader and watch until they end: one
    cancel and a ``gather()`` can wait for ever), failing the test if that
    takes longer than ``WAIT_SECONDS``."""
    async with asyncio.timeout(WAIT_SECONDS):
        await fanout.stop()


async def test_subscribers_of_a_process_share_one_group_membership():
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer)
    first, second = Recorder(), Recorder()
    await fanout.join(first, "lines")
    await fanout.join(second, "lines")
    try:
        assert list(layer.groups[group_name("lines")]) == [fanout.channel]
        await layer.group_send(group_name("lines"), message(7, ["lines", "line.3"]))
        await wait_for(lambda: first.texts and second.texts)
        sent = message(7, ["lines", "line.3"])["event"]
        assert json.loads(first.texts[0]) == {"type": "event", **sent}
        assert first.texts[0] is second.texts[0]  # encoded once for both
    finally:
        await stop(fanout)


async def test_last_subscriber_leaving_leaves_the_group():
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer)
    first, second = Recorder(), Recorder()
    await fanout.join(first, "lines")
    await fanout.join(second, "lines")
    try:
        await fanout.leave(first, "lines")
        assert list(layer.groups[group_name("lines")]) == [fanout.channel]
        await fanout.leave(first, "lines")  # twice: no effect
        await fanout.leave(second, "lines")
        assert group_name("lines") not in layer.groups
        assert fanout.subscribers == {}
    finally:
        await stop(fanout)


async def test_an_event_goes_only_to_subscribers_of_its_topics():
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer)
    line, other = Recorder(), Recorder()
    await fanout.join(line, "line.3")
    await fanout.join(other, "line.4")
    try:
        assert await fanout.deliver(message(9, ["lines", "line.3"])) == 1
        assert (len(line.texts), other.texts) == (1, [])
    finally:
        await stop(fanout)


# --- a layer that fails or forgets ------------------------------------------------


class FlakyLayer(InMemoryChannelLayer):
    """The in-memory layer, made to fail like an unreachable Redis while ``down``."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("the layer is down")

    async def group_add(self, group, channel):
        self._check()
        await super().group_add(group, channel)

    async def group_discard(self, group, channel):
        self._check()
        await super().group_discard(group, channel)

    async def group_send(self, group, message):
        self._check()
        await super().group_send(group, message)


def role_change(user, role: str, *, actor) -> OutboxEvent:
    with transaction.atomic():
        user_role_change(user_id=user.pk, role=role, actor=actor)
    return OutboxEvent.objects.latest("id")


async def sent_into(layer, row: OutboxEvent) -> None:
    """What a publisher does after commit: send to the row's groups, then mark
    it delivered (or count a failed attempt)."""
    try:
        for topic in row.topics:
            await layer.group_send(group_name(topic), services.event_message(row))
    except ConnectionError:
        delivered, failed = [], [row.pk]
    else:
        delivered, failed = [row.pk], []
    await sync_to_async(services.event_outcome_record)(
        delivered=delivered, failed=failed
    )


@pytest.mark.django_db(transaction=True)
async def test_groups_the_layer_forgot_are_joined_again_and_missed_events_offered(
    make_user,
):
    admin, operator = (
        await sync_to_async(make_user)("admin"),
        await sync_to_async(make_user)("operator"),
    )
    layer = InMemoryChannelLayer()
    fanout = LocalFanout(layer, check_seconds=0.05)
    recorder = Recorder()
    await fanout.join(recorder, "users")
    try:
        layer.groups.clear()  # what a Redis restarted empty does to every group
        row = await sync_to_async(role_change)(operator, "planner", actor=admin)
        await sent_into(layer, row)  # to a group with no members: gone
        await sync_to_async(row.refresh_from_db)()
        assert row.delivered_at is not None  # the resend task will not retry it

        await wait_for(lambda: recorder.texts, timeout=5)
        assert [json.loads(t)["id"] for t in recorder.texts] == [row.pk]
        assert fanout.recoveries == 1
        assert list(layer.groups[group_name("users")]) == [fanout.channel]

        later = await sync_to_async(role_change)(operator, "operator", actor=admin)
        await sent_into(layer, later)  # live again
        await wait_for(lambda: len(recorder.texts) == 2)
        assert [json.loads(t)["id"] for t in recorder.texts] == [row.pk, later.pk]
    finally:
        await stop(fanout)


@pytest.mark.django_db(transaction=True)
async def test_joining_while_the_layer_is_down_joins_once_it_answers(make_user):
    admin, operator = (
        await sync_to_async(make_user)("admin"),
        await sync_to_async(make_user)("operator"),
    )
    layer = FlakyLayer()
    layer.down = True
    fanout = LocalFanout(layer, check_seconds=0.05)
    recorder = Recorder()
    try:
        await fanout.join(recorder, "users")  # does not raise
        assert list(fanout.subscribers["users"]) == [recorder]
        assert group_name("users") not in layer.groups
        row = await sync_to_async(role_change)(operator, "planner", actor=admin)
        await sent_into(layer, row)  # fails: stays in the outbox
        await asyncio.sleep(0.3)
        assert (recorder.texts, fanout.recoveries) == ([], 0)

        layer.down = False
        await wait_for(lambda: recorder.texts)
        assert [json.loads(t)["id"] for t in recorder.texts] == [row.pk]
        assert fanout.recoveries == 1
        assert list(layer.groups[group_name("users")]) == [fanout.channel]
    finally:
        await stop(fanout)


async def test_leaving_while_the_layer_is_down_still_removes_the_subscriber():
    layer = FlakyLayer()
    fanout = LocalFanout(layer, check_seconds=0.05)
    first, second = Recorder(), Recorder()
    await fanout.join(first, "lines")
    await fanout.join(second, "line.3")
    layer.down = True
    try:
        await fanout.leave_all(first, ["lines"])  # does not raise
        await fanout.leave(second, "line.3")
        assert fanout.subscribers == {}
    finally:
        await stop(fanout)


# --- the consumer leaves the fan-out however its connection ends ------------------


async def signed_in_subscriber(user) -> WebsocketCommunicator:
    token = await sync_to_async(AccessToken.for_user)(user)
    communicator = WebsocketCommunicator(
        EventConsumer.as_asgi(),
        "/ws/events/",
        headers=[(b"authorization", f"Bearer {token}".encode())],
    )
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "authenticated"
    await communicator.send_json_to({"action": "subscribe", "topics": ["users"]})
    assert await communicator.receive_json_from() == {
        "type": "subscribed",
        "topics": ["users"],
    }
    return communicator


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("end", ["close", "cancelled"])
async def test_a_connection_leaves_the_fan_out_however_it_ends(make_user, end):
    admin = await sync_to_async(make_user)("admin")
    fanout = local_fanout(get_channel_layer())
    communicator = await signed_in_subscriber(admin)
    try:
        assert len(fanout.subscribers["users"]) == 1
        if end == "close":
            await communicator.disconnect()
        else:  # an error or a server shutdown: no websocket.disconnect handled
            communicator.future.cancel()
            with pytest.raises(asyncio.CancelledError):
                async with asyncio.timeout(WAIT_SECONDS):
                    await communicator.future
        assert fanout.subscribers == {}
    finally:
        await stop(fanout)
