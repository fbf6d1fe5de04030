"""One channel-layer subscription per process and topic, not one per client.

With one Channels group membership per WebSocket, every event wakes every
connection's own receive loop (a channel-layer read, a dispatch and a hop to
the database thread each): for 1,000 subscribers that is most of a process's
time per event. Here the process joins a topic's group once, with one channel
of its own, reads each event once, encodes it once and hands the text to the
local subscribers of its topics.

Who may follow a topic is still decided by the consumer before it joins; the
consumer also keeps de-duplicating by event id and holds events back while it
is busy with a client's request (a subscribe's replay), so clients see the
same order as with a group per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from typing import Protocol

import structlog

from bpmos.events.services import group_name

log = structlog.get_logger(__name__)

ENCODED_EVENTS_KEPT = 256
# Channels drops a group member after the layer's group_expiry (a day by
# default); the process renews its memberships well before that.
GROUP_RENEW_SECONDS = 3600.0
# Let the server write out what is queued every so many subscribers, so the
# first clients get an event before the last ones are even handed it.
YIELD_EVERY = 50


class Subscriber(Protocol):
    async def offer(self, event: dict, text: str) -> None: ...


class EncodedEvents:
    """The JSON text of recent events by id: an event's text never changes."""

    def __init__(self, size: int):
        self._texts: dict[int, str] = {}
        self._size = size

    def text(self, event: dict) -> str:
        text = self._texts.get(event["id"])
        if text is None:
            text = json.dumps({"type": "event", **event})
            if len(self._texts) >= self._size:
                del self._texts[next(iter(self._texts))]  # the oldest
            self._texts[event["id"]] = text
        return text


class LocalFanout:
    """The subscribers of this process (one event loop), by topic."""

    def __init__(self, layer):
        self.layer = layer
        self.channel: str | None = None
        self.subscribers: dict[str, dict[Subscriber, None]] = {}
        self.texts = EncodedEvents(ENCODED_EVENTS_KEPT)
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    async def join(self, subscriber: Subscriber, topic: str) -> None:
        """Deliver ``topic``'s events to ``subscriber`` from now on."""
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                loop = asyncio.get_running_loop()
                self._tasks = [
                    loop.create_task(self._read(), name="bpmos-fanout-read"),
                    loop.create_task(self._renew(), name="bpmos-fanout-renew"),
                ]
            members = self.subscribers.get(topic)
            if not members:
                # Joined before the caller reads its replay: an event committed
                # in between is in the replay or arrives live, never lost.
                await self.layer.group_add(group_name(topic), self.channel)
                members = self.subscribers[topic] = {}
            members[subscriber] = None

    async def leave(self, subscriber: Subscriber, topic: str) -> None:
        """Stop delivering ``topic`` to ``subscriber``."""
        async with self._lock:
            members = self.subscribers.get(topic)
            if members is None or subscriber not in members:
                return
            del members[subscriber]
            if not members:
                del self.subscribers[topic]
                await self.layer.group_discard(group_name(topic), self.channel)

    async def deliver(self, message: dict) -> int:
        """Offer one group message to the local subscribers of its topics."""
        if message.get("type") != "event.message":
            return 0
        event = message["event"]
        text = self.texts.text(event)
        targets: dict[Subscriber, None] = {}
        for topic in event["topics"]:
            targets.update(self.subscribers.get(topic, {}))
        for n, subscriber in enumerate(targets, start=1):
            try:
                await subscriber.offer(event, text)
            except Exception:  # one broken connection must not starve the rest
                log.warning("event_offer_failed", event_id=event["id"], exc_info=True)
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return len(targets)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis away: what was published meanwhile stays undelivered in
                # the outbox and the beat task sends it again.
                log.warning("fanout_receive_failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            await self.deliver(message)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(GROUP_RENEW_SECONDS)
            with contextlib.suppress(Exception):
                async with self._lock:
                    for topic in list(self.subscribers):
                        await self.layer.group_add(group_name(topic), self.channel)


_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def local_fanout(layer) -> LocalFanout:
    """The fan-out of the running event loop (one per server process) and layer."""
    loop = asyncio.get_running_loop()
    fanout = _by_loop.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _by_loop[loop] = LocalFanout(layer)
    return fanout
