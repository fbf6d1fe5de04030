"""The one WebSocket endpoint, ``ws/events/``: authenticate, subscribe, forward.

The protocol is documented in docs/websocket.md. This consumer holds no
business rule: who may follow a topic is ``bpmos.access.may_subscribe``, token
checks are ``bpmos.events.authentication``, the replay is a selector.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import structlog
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from pyroaring import BitMap64

from bpmos import access, parsers
from bpmos.errors import envelope
from bpmos.events import pump, replay
from bpmos.events.authentication import (
    Subscriber,
    SubscriberRejected,
    bearer_token,
    subscriber_authenticate,
    subscriber_reload,
)
from bpmos.events.fanout import local_fanout

log = structlog.get_logger(__name__)

CLOSE_UNAUTHENTICATED = 4401  # bad, expired or missing token (HTTP 401 + 4000)
MAX_TOPICS_PER_MESSAGE = 100
# A client's message is an authenticate, a subscribe or an unsubscribe: a
# token and at most 100 topic names fit in a few KB. Anything larger is
# answered with an error and closed with 4413 (HTTP 413 + 4000, as 4401 is
# 401: a server may not send RFC 6455's own 1009 through daphne, which allows
# only 1000 and 3000-4999).
MAX_MESSAGE_CHARS = 65_536
CLOSE_TOO_BIG = 4413


class DeliveredIds:
    """Every event id a connection has sent, exactly, to drop the second copy
    of an at-least-once delivery whenever it comes.

    Copies come from a resume's replay (up to ``REPLAY_MAX_EVENTS``, 10,000)
    against the live sends held meanwhile, from the resend task after an
    outage, from a fan-out's catch-up, and from a second subscribe with a
    ``last_event_id``. A bounded "last N ids" (4,096, once) let a copy through
    as soon as more than N events came between the two. Ids are not sent in
    id order (a transaction that stored first may commit last), so a "highest
    id sent" watermark would drop a late event instead: the set has to be
    exact. A Roaring bitmap (pyroaring) keeps it small: 8 KB for a whole run
    of 65,536 ids, 2 bytes an id where they are sparse (a client of one topic
    among many), so a connection holds about 1 bit per event published while
    it is open.
    """

    def __init__(self) -> None:
        self._ids = BitMap64()

    def add(self, event_id: int) -> bool:
        """Remember ``event_id``; False when it was already sent."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        return True

    def __len__(self) -> int:
        return len(self._ids)


class EventConsumer(AsyncJsonWebsocketConsumer):
    """Live domain events for signed-in clients, by topic, resumable by event id."""

    async def __call__(self, scope, receive, send) -> None:
        # Unlike Channels' consumer, no channel of its own on the layer: the
        # process's fan-out hands it its events. A layer read per connection
        # raised when Redis went away, which closed every connection with 1011
        # and skipped disconnect(): the dead connections stayed on the fan-out,
        # which then never joined its groups again.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = None
        self.base_send = send
        self.topics: set[str] = set()
        self.deadline: asyncio.Task | None = None
        self.fanout = local_fanout(self.channel_layer)
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            # Whatever ends the connection (a close, an error, a cancellation).
            await self._release()

    async def connect(self) -> None:
        self.connection_id = uuid.uuid4().hex
        self.user = None
        self.seen = DeliveredIds()
        self.closing = False
        # Events offered while a client's request is handled wait here, so a
        # subscribe's replay comes before what went live meanwhile.
        self.held: list[tuple[dict, str]] | None = None
        # Accept first: a refused handshake cannot carry a close code or message.
        await self.accept()
        pump.ensure_started()
        try:
            token = bearer_token(self.scope["headers"])
        except SubscriberRejected as exc:
            await self._reject(exc)
            return
        # The query string is never read: proxies and access logs keep URLs.
        if token is not None:
            await self._authenticate(token)
        else:
            self._close_after(
                settings.BPMOS_WS_AUTH_TIMEOUT,
                SubscriberRejected(
                    "Authenticate within "
                    f"{settings.BPMOS_WS_AUTH_TIMEOUT:g} seconds of connecting.",
                    code="authentication_timeout",
                ),
            )

    async def disconnect(self, code: int) -> None:
        await self._release()

    async def _release(self) -> None:
        if self.deadline is not None and self.deadline is not asyncio.current_task():
            self.deadline.cancel()
        topics, self.topics = self.topics, set()
        await self.fanout.leave_all(self, topics)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if self.closing:
            return
        size = len(text_data if text_data is not None else bytes_data or b"")
        if size > MAX_MESSAGE_CHARS:
            log.info("websocket_message_too_large", size=size)
            self.closing = True
            await self._leave(sorted(self.topics))
            await self._error(
                f"A message may be at most {MAX_MESSAGE_CHARS} characters.",
                code="message_too_large",
                details={"limit": MAX_MESSAGE_CHARS, "size": size},
            )
            await self.close(code=CLOSE_TOO_BIG)
            return
        try:
            content = parsers.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if not isinstance(content, dict):
            await self._error("Send one JSON object per message.", code="parse_error")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict, **kwargs) -> None:
        action = content.get("action")
        if action == "authenticate":
            token = content.get("token")
            if not isinstance(token, str) or not token:
                await self._reject(
                    SubscriberRejected("A token is required.", code="not_authenticated")
                )
                return
            await self._authenticate(token)
        elif self.user is None:
            await self._reject(
                SubscriberRejected(
                    "Authenticate before anything else.", code="not_authenticated"
                )
            )
        elif action == "subscribe":
            await self._subscribe(content)
        elif action == "unsubscribe":
            await self._unsubscribe(content)
        else:
            await self._error(
                f"Unknown action {str(action)[:40]!r}.",
                code="unknown_action",
                details={"actions": ["authenticate", "subscribe", "unsubscribe"]},
            )

    async def dispatch(self, message: dict) -> None:
        # Only the client's own messages come here (websocket.*): events come
        # from the fan-out through offer(), without Channels' dispatch and its
        # hop to the database thread before every handler (for N subscribers,
        # N serialised hops per event, once the largest cost of a fan-out).
        self.held = []
        try:
            await super().dispatch(message)
        except BaseException:
            self.held = None
            raise
        while self.held:
            await self._deliver(*self.held.pop(0))
        self.held = None

    # --- live events: the process's fan-out offers each one (bpmos.events.fanout) ---

    async def offer(self, event: dict, text: str) -> None:
        if self.held is not None:
            self.held.append((event, text))
        else:
            await self._deliver(event, text)

    async def _deliver(self, event: dict, text: str) -> None:
        if (
            not self.closing
            and self.topics.intersection(event["topics"])
            and self.seen.add(event["id"])
        ):
            await self.send(text_data=text)

    # --- actions ---

    async def _authenticate(self, token: str) -> None:
        try:
            subscriber: Subscriber = await database_sync_to_async(
                subscriber_authenticate
            )(token=token)
        except SubscriberRejected as exc:
            await self._reject(exc)
            return
        user = subscriber.user
        if self.user is not None and user.pk != self.user.pk:
            await self._reject(
                SubscriberRejected(
                    "This connection belongs to another user.", code="user_mismatch"
                )
            )
            return
        self.user = user
        # A refreshed token may come with a changed role: keep only what it allows.
        await self._drop_topics_no_longer_allowed()
        remaining = (subscriber.expires_at - datetime.now(tz=UTC)).total_seconds()
        self._close_after(
            remaining,
            SubscriberRejected(
                "The access token expired; send a fresh one with 'authenticate'.",
                code="token_expired",
            ),
        )
        await self.send_json(
            {
                "type": "authenticated",
                "user": {"id": user.pk, "username": user.username, "role": user.role},
                "expiresAt": subscriber.expires_at.isoformat().replace("+00:00", "Z"),
            }
        )

    async def _subscribe(self, content: dict) -> None:
        topics = _topic_list(content.get("topics"))
        last_event_id = content.get("last_event_id")
        if topics is None or not (
            last_event_id is None or (type(last_event_id) is int and last_event_id >= 0)
        ):
            await self._error(
                "Send 'topics' as a non-empty list of topic names and, optionally, "
                "'last_event_id' as a whole number.",
                code="validation_error",
            )
            return
        try:  # the current role, not the one at connection time
            self.user = await database_sync_to_async(subscriber_reload)(
                user_id=self.user.pk, token_generation=self.user.token_generation
            )
        except SubscriberRejected as exc:
            await self._reject(exc)
            return
        allowed = [
            t
            for t in topics
            if access.may_subscribe(self.user.role, t, user_id=self.user.pk)
        ]
        unknown = [t for t in topics if access.topic_rule(t) is None]
        forbidden = [t for t in topics if t not in allowed and t not in unknown]
        # Join before reading the replay, so an event committed in between is
        # either in the replay or arrives live (then de-duplicated), never lost.
        for topic in allowed:
            await self.fanout.join(self, topic)
        self.topics.update(allowed)
        if allowed:
            await self.send_json({"type": "subscribed", "topics": allowed})
        if forbidden or unknown:
            await self._error(
                "You may not subscribe to: " + ", ".join(forbidden + unknown) + ".",
                code="topic_not_allowed",
                details={"forbidden": forbidden, "unknown": unknown},
            )
        if allowed and last_event_id is not None:
            count, truncated = await self._replay(allowed, last_event_id)
            await self.send_json(
                {
                    "type": "replayed",
                    "topics": allowed,
                    "count": count,
                    "truncated": truncated,
                }
            )

    async def _unsubscribe(self, content: dict) -> None:
        topics = _topic_list(content.get("topics"))
        if topics is None:
            await self._error(
                "Send 'topics' as a non-empty list of topic names.",
                code="validation_error",
            )
            return
        left = [t for t in topics if t in self.topics]
        await self._leave(left)
        await self.send_json({"type": "unsubscribed", "topics": left})

    async def _replay(self, topics: list[str], last_event_id: int) -> tuple[int, bool]:
        """Send what the client missed since ``last_event_id``
        (``bpmos.events.replay``); returns (how many, whether more remain)."""
        return await replay.replay(topics, last_event_id, self._forward)

    # --- plumbing ---

    async def _forward(self, event: dict) -> None:
        await self._deliver(event, self.fanout.texts.text(event))

    async def _leave(self, topics: list[str]) -> None:
        self.topics.difference_update(topics)
        await self.fanout.leave_all(self, topics)

    async def _drop_topics_no_longer_allowed(self) -> None:
        lost = sorted(
            t
            for t in self.topics
            if not access.may_subscribe(self.user.role, t, user_id=self.user.pk)
        )
        if lost:
            await self._leave(lost)
            await self.send_json(
                {"type": "unsubscribed", "topics": lost, "reason": "forbidden"}
            )

    def _close_after(self, seconds: float, reason: SubscriberRejected) -> None:
        if self.deadline is not None:
            self.deadline.cancel()

        async def close_later() -> None:
            await asyncio.sleep(max(seconds, 0))
            await self._reject(reason)

        self.deadline = asyncio.get_running_loop().create_task(close_later())

    async def _reject(self, exc: SubscriberRejected) -> None:
        log.info("websocket_rejected", code=exc.code, connection_id=self.connection_id)
        if self.closing:
            return
        self.closing = True
        if self.deadline is not None and self.deadline is not asyncio.current_task():
            self.deadline.cancel()
        await self._leave(sorted(self.topics))
        self.user = None
        await self._error(exc.message, code=exc.code, details=exc.details)
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _error(self, message: str, *, code: str, details=None) -> None:
        body = envelope(
            message=message,
            code=code,
            details=details,
            request_id=self.connection_id,
        )
        await self.send_json({"type": "error", **body})


def _topic_list(value) -> list[str] | None:
    """A de-duplicated list of topic names, or None when the input is not one."""
    if (
        not isinstance(value, list)
        or not value
        or len(value) > MAX_TOPICS_PER_MESSAGE
        or not all(isinstance(t, str) and 0 < len(t) <= 100 for t in value)
    ):
        return None
    return list(dict.fromkeys(value))
