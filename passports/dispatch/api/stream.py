"""``GET /api/live-products/dispatchable/stream``: the dispatch desk's live
stream, Server-Sent Events served by the ASGI app (docs/dispatch.md).

It receives exactly as the WebSocket endpoint does: it joins the Channels group
of the ``dispatch`` topic (``bpmos.events.services.group_name``), so whatever
``bpmos.events.publish`` delivers there (after commit, from the outbox) reaches
it, with the in-memory layer (embedded mode: this process's outbox pump) or
Redis. It holds no business rule: the token is checked by
``bpmos.events.authentication``, who may read by ``bpmos.access``, and a resume
is ``bpmos.events.selectors.outbox_replay``.

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
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from bpmos import access
from bpmos.errors import dependency_down, envelope
from bpmos.events import pump, selectors
from bpmos.events.authentication import (
    SubscriberRejected,
    bearer_token,
    subscriber_authenticate,
    subscriber_reload,
)
from bpmos.events.consumers import SEEN_IDS_KEPT, RecentIds
from bpmos.events.services import group_name
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
        return subscriber_reload(user_id=grant.user_id), grant.expires_at
    raise SubscriberRejected(
        "Authentication credentials were not provided: send 'Authorization: "
        "Bearer <token>' or a stream ticket (?ticket=).",
        code="not_authenticated",
    )


class DispatchStreamConsumer(AsyncConsumer):
    """One SSE connection: authenticate, join the dispatch group, forward."""

    async def http_request(self, message) -> None:
        if message.get("more_body"):
            return  # a GET has no body worth reading; wait for its end
        if getattr(self, "started", False):
            return
        self.started = True
        self.request_id = uuid.uuid4().hex
        self.joined = False
        self.seen = RecentIds(SEEN_IDS_KEPT)
        self.tasks: list[asyncio.Task] = []
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
        # either replayed or arrives live (then dropped as a duplicate).
        await self.channel_layer.group_add(
            group_name(DISPATCH_TOPIC), self.channel_name
        )
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
            replay = await database_sync_to_async(selectors.outbox_replay)(
                topics=[DISPATCH_TOPIC], after_id=last_event_id
            )
            for event in replay.events:
                await self._forward(event)
            await self._write(
                sse(
                    {
                        "type": "replayed",
                        "data": {
                            "count": len(replay.events),
                            "truncated": replay.truncated,
                        },
                    }
                )
            )
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self._heartbeat()))
        remaining = (expires_at - datetime.now(tz=UTC)).total_seconds()
        self.tasks.append(loop.create_task(self._expire_after(remaining)))

    # --- the channel layer calls these ----------------------------------------

    async def event_message(self, message: dict) -> None:
        event = message["event"]
        if DISPATCH_TOPIC in event["topics"]:
            await self._forward(event)

    async def stream_expire(self, message: dict) -> None:
        """The credential that opened the stream ran out: say so, end it."""
        await self._write(
            sse(
                {
                    "type": "connection_closing",
                    "data": {"reason": "token_expired"},
                }
            ),
            more_body=False,
        )
        await self._cleanup()
        raise StopConsumer

    async def http_disconnect(self, message: dict) -> None:
        await self._cleanup()
        raise StopConsumer

    # --- plumbing --------------------------------------------------------------

    async def _forward(self, event: dict) -> None:
        if self.seen.add(event["id"]):
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
        # Through the layer, so the end runs in the consumer's own dispatch loop.
        await self.channel_layer.send(self.channel_name, {"type": "stream.expire"})

    async def _cleanup(self) -> None:
        for task in getattr(self, "tasks", []):
            task.cancel()
        for task in getattr(self, "tasks", []):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []
        if getattr(self, "joined", False):
            self.joined = False
            await self.channel_layer.group_discard(
                group_name(DISPATCH_TOPIC), self.channel_name
            )

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
