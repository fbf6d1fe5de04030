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

The layer can fail or forget (Redis restarted empty loses every group). The
fan-out notices either way: its reader's receive fails, or a probe it sends
itself through a group of its own every ``BPMOS_EVENT_LAYER_CHECK_SECONDS``
does not come back. It then re-joins every topic it has subscribers for as
soon as the layer answers, and hands its subscribers, from the outbox, what
they may have missed meanwhile: events sent into the forgetful layer were
marked delivered, so the resend task would not send them again. Each
subscriber is offered only the events it was following when they were sent
(or that are not sent yet), and live events that arrive during the catch-up
wait until it is done, so a client gets the events in id order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
import weakref
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from bpmos.events import selectors
from bpmos.events.services import SEND_TIMEOUT_SECONDS, group_name

log = structlog.get_logger(__name__)

ENCODED_EVENTS_KEPT = 256
# Channels drops a group member after the layer's group_expiry (a day by
# default); the process renews its memberships well before that.
GROUP_RENEW_SECONDS = 3600.0
# Let the server write out what is queued every so many subscribers, so the
# first clients get an event before the last ones are even handed it.
YIELD_EVERY = 50
PROBE_TYPE = "fanout.probe"
# The catch-up after a recovery starts this long before the last check that
# found the memberships in place: an event stored (created_at) a little
# earlier may have been committed and sent only after that check.
CATCH_UP_MARGIN = timedelta(seconds=10)


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

    def __init__(self, layer, *, check_seconds: float | None = None):
        self.layer = layer
        self.channel: str | None = None
        # By topic: each subscriber and when it joined that topic.
        self.subscribers: dict[str, dict[Subscriber, datetime]] = {}
        self.texts = EncodedEvents(ENCODED_EVENTS_KEPT)
        self.check_seconds = (
            settings.BPMOS_EVENT_LAYER_CHECK_SECONDS
            if check_seconds is None
            else check_seconds
        )
        # A probe not back within this counts as lost memberships; a false
        # alarm (a reader busy that long) costs a re-join and a catch-up only.
        self.probe_timeout = max(2 * self.check_seconds, 1.0)
        self.recoveries = 0  # how often the memberships were restored
        self._probe_group = f"bpmos.fanout.{uuid.uuid4().hex}"
        self._probes_sent = self._probes_seen = 0
        self._probe_seen = asyncio.Event()
        self._lost = asyncio.Event()  # the layer failed or forgot us
        self._losses = 0
        self._confirmed_at: datetime = timezone.now()  # memberships known good
        self._lock = asyncio.Lock()  # orders group_add/group_discard per topic
        self._tasks: list[asyncio.Task] = []
        # Live messages the reader received during a catch-up, delivered after it.
        self._held: list[dict] | None = None

    async def join(self, subscriber: Subscriber, topic: str) -> None:
        """Deliver ``topic``'s events to ``subscriber`` from now on.

        Joined before the caller reads its replay: an event committed in
        between is in the replay or arrives live, never lost. With the layer
        away the subscriber is still registered; the group is joined when the
        layer answers again, and the catch-up covers the time between.
        """
        async with self._lock:
            if self.channel is None:
                await self._start()
            members = self.subscribers.setdefault(topic, {})
            first = not members
            members.setdefault(subscriber, timezone.now())
            if first:
                try:
                    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                        await self.layer.group_add(group_name(topic), self.channel)
                except Exception:
                    log.warning("fanout_join_deferred", topic=topic, exc_info=True)
                    self._mark_lost()

    async def leave(self, subscriber: Subscriber, topic: str) -> None:
        """Stop delivering ``topic`` to ``subscriber``."""
        await self.leave_all(subscriber, [topic])

    async def leave_all(self, subscriber: Subscriber, topics: Iterable[str]) -> None:
        """Stop delivering ``topics`` to ``subscriber``.

        The subscriber is off every list before the first await, so a
        connection cancelled while leaving (a server shutdown) never stays
        behind. Leaving a group is best effort: with the layer away the
        membership lapses with the layer's group expiry, and a message for a
        topic nobody here follows is dropped.
        """
        emptied = []
        for topic in topics:
            members = self.subscribers.get(topic)
            if members is not None and subscriber in members:
                del members[subscriber]
                if not members:
                    emptied.append(topic)
        if not emptied:
            return
        async with self._lock:
            for topic in emptied:
                if self.subscribers.get(topic):  # someone joined meanwhile
                    continue
                self.subscribers.pop(topic, None)
                try:
                    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                        await self.layer.group_discard(group_name(topic), self.channel)
                except Exception:
                    log.warning("fanout_leave_failed", topic=topic, exc_info=True)

    async def deliver(
        self, message: dict, *, sent_at: datetime | None = None, stored: bool = False
    ) -> int:
        """Offer one group message to the local subscribers of its topics.

        ``stored``: an event read back from the outbox (a catch-up), sent live
        at ``sent_at`` (None: not yet). It goes only to the subscribers that
        followed one of its topics when it was sent: one that joined later
        did not miss it (an older event after the newer ones it has seen).
        """
        if message.get("type") != "event.message":
            return 0
        event = message["event"]
        text = self.texts.text(event)
        targets: dict[Subscriber, None] = {}
        for topic in event["topics"]:
            for subscriber, joined_at in self.subscribers.get(topic, {}).items():
                if not stored or sent_at is None or joined_at < sent_at:
                    targets[subscriber] = None
        for n, subscriber in enumerate(targets, start=1):
            try:
                await subscriber.offer(event, text)
            except Exception:  # one broken connection must not starve the rest
                log.warning("event_offer_failed", event_id=event["id"], exc_info=True)
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return len(targets)

    async def stop(self) -> None:
        """Stop the reader and the watch (tests; the server just exits)."""
        # Cancelled again until they end: a cancel that lands as an
        # asyncio.timeout's deadline passes is taken for the timeout in Python
        # 3.11, and the watch then carries on. A single cancel and gather() hung
        # a test run on PostgreSQL and Redis for good.
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        self._tasks = []
        self.channel = None  # a later join starts afresh

    # --- the reader and the watch -------------------------------------------------

    async def _start(self) -> None:
        self.channel = await self.layer.new_channel()
        self._confirmed_at = timezone.now()
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await self.layer.group_add(self._probe_group, self.channel)
        except Exception:
            self._mark_lost()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(), name="bpmos-fanout-read"),
            loop.create_task(self._watch(), name="bpmos-fanout-watch"),
        ]

    def _mark_lost(self) -> None:
        self._losses += 1
        self._lost.set()

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis away: the watch re-joins once it answers again; what
                # was published meanwhile is in the outbox.
                if not self._lost.is_set():
                    log.warning("fanout_receive_failed", exc_info=True)
                self._mark_lost()
                await asyncio.sleep(min(self.check_seconds, 1.0))
                continue
            if message.get("type") == PROBE_TYPE:
                self._probes_seen = max(self._probes_seen, message["n"])
                self._probe_seen.set()
                continue
            if self._held is not None:  # a catch-up runs: after it
                self._held.append(message)
                continue
            await self.deliver(message)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            if self._lost.is_set():
                if not await self._recover():
                    await asyncio.sleep(self.check_seconds)
                renewed = loop.time()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.check_seconds):
                    await self._lost.wait()  # the reader or a join saw a failure
            if self._lost.is_set():
                continue
            if not await self._probe():
                log.warning("fanout_memberships_lost", group=self._probe_group)
                self._mark_lost()
            elif loop.time() - renewed >= GROUP_RENEW_SECONDS:
                with contextlib.suppress(Exception):
                    await self._rejoin()
                renewed = loop.time()

    async def _probe(self) -> bool:
        """Whether a message sent to this process's own group comes back."""
        self._probes_sent += 1
        n = self._probes_sent
        started = timezone.now()
        try:
            async with asyncio.timeout(self.probe_timeout):
                await self.layer.group_send(
                    self._probe_group, {"type": PROBE_TYPE, "n": n}
                )
                while self._probes_seen < n:
                    self._probe_seen.clear()
                    await self._probe_seen.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        self._confirmed_at = started
        return True

    async def _rejoin(self) -> list[str]:
        """Join this process's groups again (adding to a group is idempotent)."""
        async with self._lock:
            topics = list(self.subscribers)
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await self.layer.group_add(self._probe_group, self.channel)
                for topic in topics:
                    await self.layer.group_add(group_name(topic), self.channel)
        return topics

    async def _recover(self) -> bool:
        """Re-join once the layer answers, then offer what may have been missed."""
        losses, since = self._losses, self._confirmed_at - CATCH_UP_MARGIN
        rejoined_at = timezone.now()
        # From the re-join on, live messages wait for the catch-up: the
        # outbox's older events first, in id order, then what came live.
        self._held = []
        try:
            try:
                topics = await self._rejoin()
            except asyncio.CancelledError:
                raise
            except Exception:
                return False  # still away
            if self._losses == losses:
                self._lost.clear()
            self._confirmed_at = rejoined_at
            self.recoveries += 1
            try:
                offered = await self._catch_up(topics=topics, since=since)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away too: try the whole recovery again
                log.warning("fanout_catch_up_failed", exc_info=True)
                self._confirmed_at = since + CATCH_UP_MARGIN
                self._mark_lost()
                return False
            log.info("fanout_recovered", topics=len(topics), events_offered=offered)
            return True
        finally:
            await self._release_held()

    async def _release_held(self) -> None:
        """Deliver the live messages held during a catch-up, in arrival order
        (more may arrive meanwhile), then let the reader deliver again."""
        while self._held:
            await self.deliver(self._held.pop(0))
        self._held = None

    async def _catch_up(self, *, topics: list[str], since: datetime) -> int:
        """Offer the outbox's events that this process may have missed since
        ``since`` to its subscribers (they drop what they had by event id)."""
        if not topics:
            return 0
        offered, after_id = 0, 0
        while True:
            page = await database_sync_to_async(selectors.outbox_missed)(
                topics=topics, since=since, after_id=after_id
            )
            for event, sent_at in zip(page.events, page.sent_at, strict=True):
                await self.deliver(
                    {"type": "event.message", "event": event},
                    sent_at=sent_at,
                    stored=True,
                )
            offered += len(page.events)
            if not page.truncated:
                return offered
            after_id = page.events[-1]["id"]


_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def local_fanout(layer) -> LocalFanout:
    """The fan-out of the running event loop (one per server process) and layer."""
    loop = asyncio.get_running_loop()
    fanout = _by_loop.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _by_loop[loop] = LocalFanout(layer)
    return fanout
