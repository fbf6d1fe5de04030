"""Outbox writes and delivery.

Delivery is at-least-once: an event can reach a client twice (after a retry),
never zero times once committed; clients de-duplicate by event id.

Who delivers: with a shared channel layer (Redis) any process can, so the
publisher delivers right after commit and ``events_redeliver`` (Celery beat)
retries what failed. With the embedded in-memory layer only the ASGI process
that holds the WebSocket connections can reach them, so elsewhere (a Celery
worker, a management command, a test process) events stay in the outbox and
the ASGI process's pump (``bpmos.events.pump``) sends them.

A send into a Redis that came back empty succeeds but reaches nobody (the
groups are gone until the server processes join them again); the row counts
as delivered, and each server process's catch-up after it re-joins
(``bpmos.events.fanout``) offers its subscribers those events from the outbox.

Hot paths (``background=True``) hand their committed rows to the process's
delivery thread (``_background``, a ``bpmos.background.BackgroundWorker``:
its database connection, drain, shutdown at exit and after a fork are that
module's).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import timedelta
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from bpmos.background import BackgroundWorker
from bpmos.bulk import OneTrip
from bpmos.events.models import OutboxEvent, OutboxTopic
from bpmos.events.types import Event

log = structlog.get_logger(__name__)

# A group_send that takes longer than this counts as failed (the row stays in
# the outbox for the next attempt): a hung Redis must not hold a request.
SEND_TIMEOUT_SECONDS = 5.0

# Set by the pump when it starts in this process (the ASGI server), with the
# event loop it runs on.
_local_pump_running = False
_local_pump_loop: asyncio.AbstractEventLoop | None = None


def group_name(topic: str) -> str:
    """The Channels group of a topic (group names allow letters, digits, . - _)."""
    return f"topic.{topic}"


def layer_is_shared() -> bool:
    """Whether the channel layer reaches other processes (Redis) or not."""
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


def can_deliver_here() -> bool:
    """Whether a group_send from this process reaches the subscribers."""
    if layer_is_shared():
        return True
    # A pump whose loop has closed is gone, and the in-memory groups it served
    # with it (a test's event loop, not a server's): sending here would mark
    # rows delivered that no one received, and the server's pump would skip
    # them.
    if _local_pump_loop is not None and _local_pump_loop.is_closed():
        return False
    return _local_pump_running


def mark_local_pump_running(
    running: bool = True, *, loop: asyncio.AbstractEventLoop | None = None
) -> None:
    """Called by the pump: this process holds the subscribers of an in-memory
    layer, on ``loop`` (while that loop is open) when given."""
    global _local_pump_running, _local_pump_loop
    _local_pump_running = running
    _local_pump_loop = loop if running else None


def event_payload(row: OutboxEvent) -> dict:
    """What a client receives for one event (without the ``type`` key)."""
    return {
        "id": row.pk,
        "name": row.name,
        "topics": list(row.topics),
        "occurredAt": row.created_at.isoformat().replace("+00:00", "Z"),
        "data": row.data,
    }


def event_message(row: OutboxEvent) -> dict:
    """The Channels message for one outbox row (``type`` routes it in the consumer)."""
    return {"type": "event.message", "event": event_payload(row)}


# Called with every event as it is stored (in the publisher's transaction);
# read models that derive something from events register here (``event_listen``),
# e.g. the role dashboards' attention changes (bpmos.dashboards.live).
_listeners: list[Callable[[Event], None]] = []


def event_listen(callback: Callable[[Event], None]) -> None:
    """Call ``callback(event)`` for every event published in this process from
    now on (once, however often it is registered). It runs inside the
    publisher's transaction: it should only schedule work (``on_commit``)."""
    if callback not in _listeners:
        _listeners.append(callback)


def event_publish(*, event: Event, background: bool = False) -> OutboxEvent:
    """Store ``event`` in the outbox within the current transaction.

    Delivery is scheduled with ``on_commit``: a rollback discards both the row
    and the delivery, so nothing rolled back is ever announced. With
    ``background`` (hot paths: readings ingest) and a shared layer, the
    committed row is handed to this process's delivery thread instead of
    being sent before the request answers (``_background``); what that
    thread does not deliver stays in the outbox for ``events_redeliver``.
    """
    row = _store(event)
    # The hook runs only if the row's transaction (and any savepoint around
    # it) committed, so the row in hand is what was stored: no need to read it
    # back.
    if background and layer_is_shared():
        transaction.on_commit(lambda: _background.submit(row))
    else:
        transaction.on_commit(lambda: _deliver_quietly([row]))
    for listener in _listeners:
        listener(event)
    return row


def event_publish_many(
    *,
    events: Sequence[Event],
    background: bool = False,
    trip: OneTrip | None = None,
) -> list[OutboxEvent]:
    """``event_publish`` of several events at once, in order: on PostgreSQL one
    statement whatever their number (their ids, the rows and topic rows),
    and one delivery of all of them after commit (one send round, one
    ``delivered_at`` update). The ledger's appends publish this way, with
    ``background`` (as ``event_publish``'s: the committed rows go to this
    process's delivery thread when the layer is shared).

    ``trip`` (PostgreSQL): the outbox statement is queued there, sent with
    the caller's own statements (``bpmos.bulk.OneTrip``); the list returned
    holds the rows once the trip has run."""
    if not events:
        return []
    if connection.vendor != "postgresql":
        rows = [_store(event) for event in events]
    elif trip is not None:
        rows = []
        sql, params, made = _outbox_statement(events)
        trip.add(sql, params, lambda found: rows.extend(made(found)))
    else:
        rows = _outbox_insert_many_postgresql(events)
    if background and layer_is_shared():
        transaction.on_commit(lambda: _background.submit_many(rows))
    else:
        transaction.on_commit(lambda: _deliver_quietly(rows))
    for listener in _listeners:
        # A listener may take the whole batch at once (``listener.many``): the
        # read models' cache drops one round trip per batch, not per event.
        many = getattr(listener, "many", None)
        if many is not None:
            many(list(events))
            continue
        for event in events:
            listener(event)
    return rows


def _store(event: Event) -> OutboxEvent:
    if connection.vendor == "postgresql":
        (row,) = _outbox_insert_many_postgresql([event])
        return row
    topics = list(dict.fromkeys(event.topics))
    text = json.dumps(dict(event.data), cls=DjangoJSONEncoder)
    row = OutboxEvent.objects.create(
        name=event.name, topics=topics, data=json.loads(text)
    )
    OutboxTopic.objects.bulk_create(OutboxTopic(event=row, topic=t) for t in topics)
    return row


_OUTBOX_TABLE = OutboxEvent._meta.db_table
_OUTBOX_INSERT_MANY = (
    # One round trip for a batch: its ids from the table's sequence (ascending
    # in publishing order, as a multi-row INSERT's RETURNING gives them), the
    # rows and their topic rows, from one JSON document (one parameter: a
    # client-side-bound array of each column quoted every value in Python).
    "WITH ids AS MATERIALIZED (SELECT id, row_number() OVER (ORDER BY id) AS ord "
    f"FROM (SELECT nextval(pg_get_serial_sequence('{_OUTBOX_TABLE}', 'id')) AS id "
    "FROM generate_series(1, %s)) AS n), "
    "src AS MATERIALIZED (SELECT ids.id, ids.ord, e.name, e.topics, e.data "
    "FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) "
    "AS (name varchar, topics jsonb, data jsonb)) WITH ORDINALITY "
    "AS e(name, topics, data, ord) JOIN ids USING (ord)), "
    f"event AS (INSERT INTO {_OUTBOX_TABLE} "
    "(id, name, topics, data, created_at, attempts) "
    "SELECT id, name, topics, data, %s, 0 FROM src ORDER BY ord), "
    f"topic AS (INSERT INTO {OutboxTopic._meta.db_table} (event_id, topic) "
    "SELECT src.id, t.topic FROM src, "
    "jsonb_array_elements_text(src.topics) WITH ORDINALITY AS t(topic, n) "
    "ORDER BY src.ord, t.n) "
    "SELECT id FROM ids ORDER BY ord"
)


_OUTBOX_COLUMNS = [
    "id",
    "name",
    "topics",
    "data",
    "created_at",
    "delivered_at",
    "attempts",
]


def _outbox_statement(
    events: Sequence[Event],
) -> tuple[str, list, Callable[[list], list[OutboxEvent]]]:
    """PostgreSQL: the statement that stores ``events`` as ``_store`` would
    (one event: ``_OUTBOX_INSERT``; more: ``_OUTBOX_INSERT_MANY``), its
    parameters, and what makes the rows from the ids it returns; the data as
    ``_store`` stores it (``DjangoJSONEncoder``'s JSON, as jsonb)."""
    created_at = timezone.now()
    if len(events) == 1:
        (event,) = events
        topics = list(dict.fromkeys(event.topics))
        text = json.dumps(dict(event.data), cls=DjangoJSONEncoder)
        params = [event.name, json.dumps(topics), text, created_at, topics]

        def made_one(found: list) -> list[OutboxEvent]:
            ((pk,),) = found
            values = [pk, event.name, topics, json.loads(text), created_at, None, 0]
            return [OutboxEvent.from_db(connection.alias, _OUTBOX_COLUMNS, values)]

        return _OUTBOX_INSERT, params, made_one
    rows = [
        {
            "name": event.name,
            "topics": list(dict.fromkeys(event.topics)),
            "data": dict(event.data),
        }
        for event in events
    ]
    text = json.dumps(rows, cls=DjangoJSONEncoder)

    def made(found: list) -> list[OutboxEvent]:
        ids = [pk for (pk,) in found]
        return [
            OutboxEvent.from_db(
                connection.alias,
                _OUTBOX_COLUMNS,
                [pk, row["name"], row["topics"], row["data"], created_at, None, 0],
            )
            # The data as the database holds it (the encoder's JSON, read back).
            for pk, row in zip(ids, json.loads(text), strict=True)
        ]

    return _OUTBOX_INSERT_MANY, [len(rows), text, created_at], made


def _outbox_insert_many_postgresql(events: Sequence[Event]) -> list[OutboxEvent]:
    """The rows ``_store`` would store for ``events``, in one statement."""
    sql, params, made = _outbox_statement(events)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return made(cursor.fetchall())


_OUTBOX_INSERT = (
    # One statement for the event row and its topic rows (the two ORM inserts
    # cost ~3 ms on this machine against ~0.4 ms for this; it runs in every
    # status-changing readings batch and every ledger append).
    f"WITH event AS (INSERT INTO {OutboxEvent._meta.db_table} "
    "(name, topics, data, created_at, attempts) "
    "VALUES (%s, %s::jsonb, %s::jsonb, %s, 0) RETURNING id), "
    f"topic AS (INSERT INTO {OutboxTopic._meta.db_table} (event_id, topic) "
    "SELECT event.id, name FROM event, unnest(%s::varchar[]) AS name) "
    "SELECT id FROM event"
)


def _deliver_quietly(rows: list[OutboxEvent]) -> None:
    # After commit the change is durable; a delivery failure must not turn the
    # caller's successful request into an error. The redelivery path retries.
    try:
        if can_deliver_here():
            _deliver_rows(rows)
    except Exception:
        log.warning(
            "event_delivery_deferred",
            event_ids=[row.pk for row in rows],
            exc_info=True,
        )


# How long a send to the shared layer may take before it is given up (the rows
# stay in the outbox, redelivered by beat): far above a healthy send (~1 ms).
SEND_TIMEOUT_SECONDS = 30.0


class _SenderLoop:
    """One asyncio loop per process, in a daemon thread, for sends from
    synchronous code (gunicorn workers, Celery, commands) to a shared layer.

    ``async_to_sync`` there starts a new thread and event loop for every call,
    and channels_redis opens its connections per loop: each event paid for a
    thread, a loop and a Redis connection (~10 ms on this machine). This loop
    and its connections live as long as the process; a forked child starts
    its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="bpmos-event-sender", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine, timeout: float = SEND_TIMEOUT_SECONDS):
        """Run ``coroutine`` on the loop and wait for its result, at most
        ``timeout`` seconds: a layer that stops answering without closing its
        connections (a Redis behind a dropped route) would otherwise hold the
        caller, the process's delivery thread, for good. Past it the send is
        cancelled and ``TimeoutError`` raised; the rows stay undelivered in the
        outbox for ``events_redeliver``."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise


_sender_loop = _SenderLoop()


def _deliver_handed_over(rows: list[OutboxEvent]) -> None:
    _deliver_quietly(rows)  # looked up at each call: bench/ledger.py times it


# How long the delivery thread waits, once a row arrives, for more to send with
# it. None: a row handed over goes out at once (rows that arrive while a send
# is on still share the next one). A 10 ms wait saved the thread ~1.6 ms of CPU
# an event at ~300 single appends a second, but a lingering event could reach a
# client after a later one another request delivered at commit, a readings
# batch's station change after the next request's stage hold
# (tests/test_redis_outage_changes.py caught it: 1433 before 1432).
DELIVERY_LINGER_SECONDS = 0.0

# One daemon thread per process (bpmos.background) that delivers committed
# outbox rows handed to it (``event_publish(background=True)``), in the order
# they were handed over, so the request that published them answers without
# waiting for Redis and for the ``delivered_at`` update (its own commit). Rows
# queued together are sent and marked in one go (at most 500).
#
# At-least-once still holds: the rows are committed before they are handed
# over, and a row this thread never reaches (the process ended, Redis down) is
# undelivered in the outbox, where ``events_redeliver`` (beat) finds it.
_background = BackgroundWorker(
    "bpmos-event-delivery",
    _deliver_handed_over,
    max_batch=500,
    linger_seconds=DELIVERY_LINGER_SECONDS,
)


def _send(rows: list[OutboxEvent]) -> tuple[list[int], list[int]]:
    """``adeliver_rows`` from synchronous code: on the process's sender loop
    for a shared layer; through ``async_to_sync`` for the in-memory layer,
    whose groups live on the ASGI server's own loop (which ``async_to_sync``
    reaches from that server's worker threads)."""
    if layer_is_shared():
        return _sender_loop.run(adeliver_rows(rows))
    return async_to_sync(adeliver_rows)(rows)


def _deliver_rows(rows: list[OutboxEvent]) -> tuple[list[int], list[int]]:
    """Send ``rows`` and record the outcome; returns (delivered, failed) ids."""
    delivered, failed = _send(rows)
    event_outcome_record(delivered=delivered, failed=failed)
    return delivered, failed


async def adeliver_rows(rows: Iterable[OutboxEvent]) -> tuple[list[int], list[int]]:
    """Send rows to their groups, in order; returns (delivered ids, failed ids).

    Stops at the first failure: a channel layer that failed one send (Redis down
    or hung) would fail the rest too, each after its own timeout. Rows after the
    failed one are neither delivered nor failed; they stay in the outbox
    untouched for the next attempt.

    With channels_redis's layer, consecutive rows of the same topics go
    together (``_group_send_many``: each group's members read once, every
    message in one pipeline); a failure there fails the first row of the run
    and leaves the rest untouched (some may have reached their subscribers:
    sent again later, which delivery at least once allows).
    """
    layer = get_channel_layer()
    delivered: list[int] = []
    if _sends_in_batches(layer):
        rows = list(rows)
        start = 0
        while start < len(rows):
            end = start + 1
            while end < len(rows) and rows[end].topics == rows[start].topics:
                end += 1
            run = rows[start:end]
            messages = [event_message(row) for row in run]
            try:
                async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                    for topic in run[0].topics:
                        await _group_send_many(layer, group_name(topic), messages)
            except Exception:
                log.warning("event_send_failed", event_id=run[0].pk, exc_info=True)
                return delivered, [run[0].pk]
            delivered.extend(row.pk for row in run)
            start = end
        return delivered, []
    for row in rows:
        message = event_message(row)
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                for topic in row.topics:
                    await layer.group_send(group_name(topic), message)
        except Exception:
            log.warning("event_send_failed", event_id=row.pk, exc_info=True)
            return delivered, [row.pk]
        delivered.append(row.pk)
    return delivered, []


def _sends_in_batches(layer) -> bool:
    """Whether ``layer`` is channels_redis's own (its ``group_send`` not
    replaced: a subclass or a test's stand-in gets each message through it)."""
    return (
        type(layer) is RedisChannelLayer
        and "group_send" not in vars(layer)
        and hasattr(layer, "_map_channel_keys_to_connection")
    )


# channels_redis 4.3's group_send script (``RedisChannelLayer.group_send``):
# each message to each member channel under its capacity.
_GROUP_SEND_LUA = """
local over_capacity = 0
local current_time = ARGV[#ARGV - 1]
local expiry = ARGV[#ARGV]
for i=1,#KEYS do
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


async def _group_send_many(
    layer: RedisChannelLayer, group: str, messages: list[dict]
) -> None:
    """``layer.group_send(group, message)`` for each of ``messages``, in
    order, as channels_redis 4.3 sends one (the same keys, expiries,
    capacities and script), in two Redis round trips whatever their number:
    the group's members read once (with its expired members dropped), then
    every message to every member in one pipeline per Redis host. One
    ``group_send`` a message took two round trips with no member and four with
    some: the delivery thread's Python for each of them competed with the
    writers for the process's GIL."""
    assert layer.require_valid_group_name(group), "Group name not valid"
    key = layer._group_key(group)
    lookup = layer.connection(layer.consistent_hash(group)).pipeline(transaction=False)
    lookup.zremrangebyscore(key, min=0, max=int(time.time()) - layer.group_expiry)
    lookup.zrange(key, 0, -1)
    _, members = await lookup.execute()
    channel_names = [member.decode("utf8") for member in members]
    if not channel_names:
        return  # no subscriber anywhere: group_send sends nothing either
    pipes: dict[int, Any] = {}
    expiring: dict[int, int] = {}  # per pipeline: its expiry commands, first
    for message in messages:
        by_index, payloads, capacities = layer._map_channel_keys_to_connection(
            channel_names, message
        )
        for index, channel_keys in by_index.items():
            pipe = pipes.get(index)
            if pipe is None:  # the members' expired messages, once per batch
                pipe = pipes[index] = layer.connection(index).pipeline(
                    transaction=False
                )
                oldest = int(time.time()) - int(layer.expiry)
                for channel_key in channel_keys:
                    pipe.zremrangebyscore(channel_key, min=0, max=oldest)
                expiring[index] = len(channel_keys)
            args = [payloads[k] for k in channel_keys]
            args += [capacities[k] for k in channel_keys]
            args += [time.time(), layer.expiry]
            pipe.eval(_GROUP_SEND_LUA, len(channel_keys), *channel_keys, *args)
    for index, pipe in pipes.items():
        results = await pipe.execute()
        over = sum(results[expiring[index] :])  # each script's channels over capacity
        if over:
            log.info("event_channels_over_capacity", group=group, sends=over)


def event_outcome_record(*, delivered: Sequence[int], failed: Sequence[int]) -> None:
    """Mark sent events delivered and count one more attempt on each tried event.

    Outside a transaction (the publisher's delivery after commit) the marks
    commit without waiting for the WAL flush (``synchronous_commit = off`` for
    this transaction only): a mark lost in a crash only means the event is
    sent again by ``events_redeliver``, which delivery at least once allows
    and clients de-duplicate by id. It saved the publisher a second durable
    commit per event (docs/passports.md, "Ledger throughput")."""
    if not (delivered or failed):
        return
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # One round trip, no BEGIN or COMMIT of its own: the statements of one
        # simple-protocol query run as one (implicit) transaction, in which
        # SET LOCAL holds (it took four round trips: the delivery thread's
        # share of a ledger append's time, with a batch of one at low rates).
        trip = OneTrip()
        trip.add("SET LOCAL synchronous_commit TO OFF")
        table = connection.ops.quote_name(OutboxEvent._meta.db_table)
        if delivered:
            trip.add(
                f"UPDATE {table} SET delivered_at = %s, attempts = attempts + 1 "
                "WHERE id = ANY(%s)",
                [timezone.now(), list(delivered)],
            )
        if failed:
            trip.add(
                f"UPDATE {table} SET attempts = attempts + 1 WHERE id = ANY(%s)",
                [list(failed)],
            )
        trip.run()
        return
    _outcome_write(delivered=delivered, failed=failed)


def _outcome_write(*, delivered: Sequence[int], failed: Sequence[int]) -> None:
    if delivered:
        OutboxEvent.objects.filter(pk__in=delivered).update(
            delivered_at=timezone.now(), attempts=F("attempts") + 1
        )
    if failed:
        OutboxEvent.objects.filter(pk__in=failed).update(attempts=F("attempts") + 1)


def events_undelivered(
    *, limit: int, older_than_seconds: float = 0.0
) -> list[OutboxEvent]:
    """Undelivered outbox rows, oldest first (the partial index covers this)."""
    rows = OutboxEvent.objects.filter(delivered_at__isnull=True)
    if older_than_seconds > 0:
        cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
        rows = rows.filter(created_at__lte=cutoff)
    return list(rows.order_by("id")[:limit])


def event_deliver(*, event_ids: Iterable[int]) -> int:
    """Deliver the given undelivered events if this process can reach subscribers.

    Returns how many were delivered.
    """
    if not can_deliver_here():
        return 0
    rows = list(
        OutboxEvent.objects.filter(
            pk__in=list(event_ids), delivered_at__isnull=True
        ).order_by("id")
    )
    if not rows:
        return 0
    delivered, _failed = _deliver_rows(rows)
    return len(delivered)


def events_redeliver(*, older_than_seconds: float, limit: int = 1000) -> int:
    """Deliver events still undelivered after ``older_than_seconds`` (beat task).

    The age threshold keeps this from racing the publisher's own after-commit
    delivery of fresh events. Returns how many were delivered.
    """
    if not can_deliver_here():
        return 0
    rows = events_undelivered(limit=limit, older_than_seconds=older_than_seconds)
    if not rows:
        return 0
    delivered, failed = _deliver_rows(rows)
    if failed:
        log.warning("event_redelivery_incomplete", delivered=len(delivered))
    return len(delivered)


def events_prune(*, older_than: timedelta, batch_size: int = 5000) -> int:
    """Delete delivered events older than ``older_than``; returns how many.

    Undelivered events are never pruned, whatever their age. A client resuming
    from an event id older than the retention simply gets what is left. Deletes
    run in batches so a large backlog never holds one long transaction.
    """
    cutoff = timezone.now() - older_than
    removed = 0
    while True:
        ids = list(
            OutboxEvent.objects.filter(
                delivered_at__isnull=False, created_at__lt=cutoff
            )
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return removed
        with transaction.atomic():
            OutboxTopic.objects.filter(event_id__in=ids).delete()
            OutboxEvent.objects.filter(id__in=ids).delete()
        removed += len(ids)
