"""``GET /api/live-products/dispatchable/stream``: the dispatch desk's live
stream, Server-Sent Events served by the ASGI app (docs/dispatch.md).

It receives exactly as the WebSocket endpoint does: it is a subscriber of the
process's fan-out (``bpmos.events.fanout.local_fanout``) for the ``dispatch``
topic, so whatever ``bpmos.events.publish`` delivers there (after commit, from
the outbox) reaches it, with the in-memory layer (embedded mode: this process's
outbox pump) or Redis. Like a WebSocket it holds no channel of its own on the
layer: a Redis outage or restart does not end it, and the fan-out re-joins the
group and catches up from the outbox once Redis is back; a stream opened while
Redis is down works the same way. It holds no business rule: the token is
checked by ``bpmos.events.authentication``, who may read by ``bpmos.access``,
and a resume is ``bpmos.events.replay`` (page after page of ``outbox_replay``).

Wire format: every message is on the default event, so ``onmessage`` sees it::

    id: 42
    data: {"type": "product_moved_to_past", "data": {"productId": …}}

``id`` is the outbox event id (``EventSource`` sends it back as
``Last-Event-ID`` when it reconnects, and the events after it are replayed);
``connection_established`` and other stream notices carry no id, so they never
move the client's resume point. A comment line (``: heartbeat``) goes out every
``BPMOS_SSE_HEARTBEAT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

import structlog
from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from bpmos import access
from bpmos.errors import dependency_down, envelope
from bpmos.events import pump
from bpmos.events.authentication import (
    SubscriberRejected,
    bearer_token,
    subscriber_authenticate,
    subscriber_reload,
)
from bpmos.events.consumers import DeliveredIds
from bpmos.events.fanout import local_fanout
from bpmos.events.replay import replay
from passports.dispatch.api import tickets
from passports.events import DISPATCH_TOPIC

log = structlog.get_logger(__name__)

PATH = "/api/live-products/dispatchable/stream"
ROUTE_NAME = "dispatch-stream"
RETRY_MILLISECONDS = 3000  # how soon EventSource reconnects after a drop


def sse(data: dict, *, event_id: int | None = None) -> bytes:
    """One SSE message on the default event (JSON has no raw newlines)."""
    text = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}data: {text}\n\n".encode()


def _headers(scope) -> list[tuple[bytes, bytes]]:
    return list(scope.get("headers") or [])


def _header(scope, name: bytes) -> str | None:
    for key, value in _headers(scope):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _last_event_id(scope, query: dict[str, list[str]]) -> int | None | str:
    """The client's resume point: the Last-Event-ID header (EventSource sends it
    on reconnection) or ``?lastEventId=`` (a fresh EventSource cannot set the
    header). ``"bad"`` when one was sent but is not a whole number."""
    raw = _header(scope, b"last-event-id")
    if raw is None or not raw.strip():
        raw = (query.get("lastEventId") or [""])[0]
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdecimal() or len(raw) > 18:  # int("²") fails
        return "bad"
    return int(raw)


def _authenticate(scope, query: dict[str, list[str]]):
    """(user, expires_at) of the caller, or raise ``SubscriberRejected``.

    ``Authorization: Bearer`` (fetch-based clients) or ``?ticket=`` (plain
    EventSource). A JWT is never read from the URL: proxies and access logs
    keep URLs, and a ticket there is single use and short lived.
    """
    token = bearer_token(_headers(scope))
    if token is not None:
        subscriber = subscriber_authenticate(token=token)
        return subscriber.user, subscriber.expires_at
    ticket = (query.get("ticket") or [""])[0]
    if ticket:
        grant = tickets.ticket_redeem(ticket=ticket)
        if grant is None:
            raise SubscriberRejected(
                "The stream ticket is unknown, used or expired; ask for a new one.",
                code="ticket_not_valid",
            )
        # As the bearer path checks the token's generation: a deactivation
        # since the ticket was issued voids it, reactivated or not.
        user = subscriber_reload(
            user_id=grant.user_id, token_generation=grant.token_generation
        )
        return user, grant.expires_at
    raise SubscriberRejected(
        "Authentication credentials were not provided: send 'Authorization: "
        "Bearer <token>' or a stream ticket (?ticket=).",
        code="not_authenticated",
    )


class DispatchStreamConsumer(AsyncConsumer):
    """One SSE connection: authenticate, follow the dispatch topic, forward."""

    async def __call__(self, scope, receive, send) -> None:
        # Unlike Channels' consumer, no channel of its own on the layer (as
        # bpmos.events.consumers.EventConsumer): the process's fan-out offers it
        # the topic's events. A group membership and a layer read per stream
        # ended the stream when Redis went away, and one that outlived a quick
        # restart kept its heartbeats but never got another event.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = None
        self.base_send = send
        self.fanout = local_fanout(self.channel_layer)
        self.started = self.joined = self.closing = False
        self.tasks: list[asyncio.Task] = []
        # Events offered while a message is handled wait here: the response
        # starts, and a resume's replay is written, before anything live.
        self.held: list[dict] | None = None
        # The stream's own notices (its credential ran out), handled in the
        # dispatch loop like the client's messages.
        self.notices: asyncio.Queue[dict] = asyncio.Queue()
        try:
            await await_many_dispatch([receive, self.notices.get], self.dispatch)
        except StopConsumer:
            pass
        finally:
            # Whatever ends the stream (a disconnect, an error, a cancellation).
            await self._cleanup()

    async def dispatch(self, message: dict) -> None:
        self.held = []
        try:
            await super().dispatch(message)
        except BaseException:
            self.held = None
            raise
        while self.held:
            await self._forward(self.held.pop(0))
        self.held = None

    async def http_request(self, message) -> None:
        if message.get("more_body"):
            return  # a GET has no body worth reading; wait for its end
        if self.started:
            return
        self.started = True
        self.request_id = uuid.uuid4().hex
        self.seen = DeliveredIds()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            user, expires_at = await database_sync_to_async(_authenticate)(
                self.scope, query
            )
        except SubscriberRejected as exc:
            await self._refuse(401, exc.message, exc.code, exc.details)
            return
        except Exception as exc:
            down = dependency_down(exc)  # the database or Redis: 503, not a 500
            if down is None:
                raise
            await self._refuse(down.status_code, down.message, down.code, down.details)
            return
        role = getattr(user, "role", None)
        if not (
            access.allows(access.rule_for(ROUTE_NAME, "GET"), role)
            and access.may_subscribe(role, DISPATCH_TOPIC)
        ):
            await self._refuse(
                403, "Your role may not perform this action.", "permission_denied"
            )
            return
        last_event_id = _last_event_id(self.scope, query)
        if last_event_id == "bad":
            await self._refuse(
                400,
                "Last-Event-ID must be a whole number.",
                "validation_error",
                {"lastEventId": ["A whole number."]},
            )
            return

        pump.ensure_started()  # embedded mode: deliver what other processes publish
        # Join before reading the replay, so an event committed in between is
        # either replayed or arrives live (then dropped as a duplicate). With
        # the layer away the fan-out still registers the stream, joins the
        # group once the layer answers and catches up from the outbox.
        await self.fanout.join(self, DISPATCH_TOPIC)
        self.joined = True
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache, no-transform"),
                    (b"x-accel-buffering", b"no"),  # nginx: do not buffer
                    (b"x-request-id", self.request_id.encode()),
                ],
            }
        )
        await self._write(
            f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            + sse(
                {
                    "type": "connection_established",
                    "data": {
                        "topic": DISPATCH_TOPIC,
                        "user": {
                            "id": user.pk,
                            "username": user.username,
                            "role": user.role,
                        },
                        "expiresAt": expires_at.isoformat().replace("+00:00", "Z"),
                        "lastEventId": last_event_id,
                        "heartbeatSeconds": settings.BPMOS_SSE_HEARTBEAT_SECONDS,
                    },
                }
            )
        )
        log.info(
            "dispatch_stream_opened",
            user=user.username,
            request_id=self.request_id,
            last_event_id=last_event_id,
        )
        if last_event_id is not None:
            count, truncated = await replay(
                [DISPATCH_TOPIC], last_event_id, self._forward
            )
            await self._write(
                sse(
                    {
                        "type": "replayed",
                        "data": {"count": count, "truncated": truncated},
                    }
                )
            )
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self._heartbeat()))
        remaining = (expires_at - datetime.now(tz=UTC)).total_seconds()
        self.tasks.append(loop.create_task(self._expire_after(remaining)))

    # --- live events: the process's fan-out offers each one (bpmos.events.fanout) ---

    async def offer(self, event: dict, text: str) -> None:
        if self.held is not None:
            self.held.append(event)
        else:
            await self._forward(event)

    # --- the stream's own notices ------------------------------------------------

    async def stream_expire(self, message: dict) -> None:
        """The credential that opened the stream ran out: say so, end it."""
        self.closing = True  # nothing more after the last body
        await self._write(
            sse(
                {
                    "type": "connection_closing",
                    "data": {"reason": "token_expired"},
                }
            ),
            more_body=False,
        )
        raise StopConsumer

    async def http_disconnect(self, message: dict) -> None:
        self.closing = True
        raise StopConsumer

    # --- plumbing --------------------------------------------------------------

    async def _forward(self, event: dict) -> None:
        if (
            not self.closing
            and DISPATCH_TOPIC in event["topics"]
            and self.seen.add(event["id"])
        ):
            await self._write(
                sse(
                    {"type": event["name"], "data": event["data"]}, event_id=event["id"]
                )
            )

    async def _write(self, body: bytes, *, more_body: bool = True) -> None:
        await self.send(
            {"type": "http.response.body", "body": body, "more_body": more_body}
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(settings.BPMOS_SSE_HEARTBEAT_SECONDS)
            await self._write(b": heartbeat\n\n")

    async def _expire_after(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))
        # Through the dispatch loop, so the end runs between two messages.
        self.notices.put_nowait({"type": "stream.expire"})

    async def _cleanup(self) -> None:
        self.closing = True
        tasks, self.tasks = self.tasks, []
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        for task in tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.joined:
            self.joined = False
            await self.fanout.leave(self, DISPATCH_TOPIC)

    async def _refuse(self, status: int, message: str, code: str, details=None):
        log.info("dispatch_stream_refused", code=code, request_id=self.request_id)
        body = envelope(
            message=message, code=code, details=details, request_id=self.request_id
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"x-request-id", self.request_id.encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="api"'))
        await self.send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await self._write(json.dumps(body).encode(), more_body=False)
        raise StopConsumer
