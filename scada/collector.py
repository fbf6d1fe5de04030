"""The collector process (``manage.py scada_collector``; docs/scada.md, "The
collector process"): one asyncio loop that keeps a session open to every
enabled OPC UA connector and stores what it hears.

* Subscribe mode: monitored items on every enabled tag; value changes are
  buffered and stored every ``BPMOS_COLLECTOR_FLUSH_S`` (``readings_store`` in
  the database thread).
* Poll mode: every tag read (batched) each ``poll_interval_s``.
* Changes: every ``BPMOS_COLLECTOR_WATCH_S`` it compares the connectors' and
  tags' latest ``updated_at`` and counts with what it last saw; on a
  difference it reloads them and restarts only the connectors whose
  configuration (or tags) changed, starts the new ones and stops the disabled
  or deleted ones.
* Links: a heartbeat every ``BPMOS_COLLECTOR_HEARTBEAT_S`` (and every read)
  must answer within ``BPMOS_COLLECTOR_TIMEOUT_S``; the first failure marks the
  connector ``lost`` (``comm_state``, ``last_error``) and raises its
  communication-loss alarm. It then reconnects with a doubling backoff capped
  at ``BPMOS_COLLECTOR_BACKOFF_MAX_S``, resubscribes, marks it ``ok`` and
  clears the alarm.
* Repeats: the store skips a reading it has (tag and source timestamp); a
  server that restarts re-sends its values with new source timestamps, so the
  first value of each tag after a reconnection is dropped here when it equals
  the last one heard (value and quality).

One connector's failure never touches the others (each runs in its own task),
and a database error is logged and retried (the batch is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, connections, transaction
from django.db.models import Count, Max
from django.utils import timezone

from scada import alarms
from scada import readings as readings_module
from scada.models import CommState, Connector, ConnectorKind, ConnectorMode, Tag

log = structlog.get_logger(__name__)

# The cache key a running collector refreshes (Celery's poll task stands aside
# while it is there: scada.tasks_collector).
ALIVE_KEY = "scada:collector:alive"
# A batch that cannot be stored (the database is down) is kept and retried; past
# this many buffered readings per connector the oldest are dropped (and logged).
MAX_BUFFERED = 50_000
# How often a connector that stays up refreshes its ``last_ok_at``.
LAST_OK_EVERY_S = 10.0
# A connector's task that has not reached its server yet retries every second
# for this long before it reports the link lost: processes started together
# (``make run``: the simulator and the collector) need not race.
START_GRACE_S = 5.0
_RETRY_DB_ERRORS = (DatabaseError, InterfaceError)


@dataclass(frozen=True)
class TagSpec:
    """What the collector needs of a tag; a change restarts its connector."""

    id: int
    node_id: str
    tag_name: str
    unit: str
    kind: str
    machine_id: int | None


@dataclass(frozen=True)
class ConnectorSpec:
    """A connector's configuration as the collector runs it (its comm state and
    timestamps excluded: writing them must not restart it)."""

    id: int
    name: str
    endpoint: str
    mode: str
    poll_interval_s: int
    settings_key: str
    tags: tuple[TagSpec, ...]
    record: Connector = field(compare=False, hash=False, repr=False)
    tag_records: tuple[Tag, ...] = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Fingerprint:
    connectors: tuple[Any, int]
    tags: tuple[Any, int]


def fingerprint_read() -> Fingerprint:
    """Latest ``updated_at`` and count of the connectors and of the tags: a
    change in any of them (an edit, an addition, a deletion) is worth a reload."""
    c = Connector.objects.aggregate(at=Max("updated_at"), n=Count("id"))
    t = Tag.objects.aggregate(at=Max("updated_at"), n=Count("id"))
    return Fingerprint((c["at"], c["n"]), (t["at"], t["n"]))


def connector_specs_load() -> dict[int, ConnectorSpec]:
    """The enabled OPC UA connectors with their enabled tags (two queries)."""
    connectors = list(
        Connector.objects.filter(kind=ConnectorKind.OPCUA, enabled=True).order_by("id")
    )
    tags: dict[int, list[Tag]] = {c.pk: [] for c in connectors}
    for tag in (
        Tag.objects.filter(connector_id__in=tags, enabled=True)
        .select_related("connector")
        .order_by("id")
    ):
        tags[tag.connector_id].append(tag)
    specs = {}
    for connector in connectors:
        records = tuple(tags[connector.pk])
        specs[connector.pk] = ConnectorSpec(
            id=connector.pk,
            name=connector.name,
            endpoint=connector.endpoint,
            mode=connector.mode,
            poll_interval_s=connector.poll_interval_s,
            settings_key=json.dumps(
                [connector.settings, connector.credentials], sort_keys=True, default=str
            ),
            tags=tuple(
                TagSpec(t.pk, t.node_id, t.tag_name, t.unit, t.kind, t.machine_id)
                for t in records
            ),
            record=connector,
            tag_records=records,
        )
    return specs


def service_account():
    """The user the collector stores readings as (``BPMOS_COLLECTOR_USERNAME``,
    the SCADA gateway's service account); None (the system) when it is absent."""
    from bpmos.accounts.models import User

    return User.objects.filter(
        username=settings.BPMOS_COLLECTOR_USERNAME, is_active=True
    ).first()


def readings_store_atomic(*, connector_id: int, readings: list[dict], actor):
    """``readings_store`` in a transaction of its own: a batch is stored, fed to
    lines and evaluated whole, or not at all (and then retried)."""
    with transaction.atomic():
        return readings_module.readings_store(
            connector_id=connector_id, readings=readings, actor=actor
        )


@transaction.atomic
def comm_ok(*, connector_id: int) -> None:
    """The link answers: ``comm_state`` ok, ``last_ok_at`` now, and the
    communication-loss alarm cleared when the state was anything else (also
    one a collector that stopped while the link was lost left behind)."""
    connector = Connector.objects.filter(pk=connector_id)
    was_ok = connector.filter(comm_state=CommState.OK).exists()
    # update(): leaves updated_at alone, so the collector's own bookkeeping is
    # not mistaken for a configuration change.
    connector.update(comm_state=CommState.OK, last_ok_at=timezone.now())
    if not was_ok:
        alarms.comm_loss_clear(connector_id=connector_id)


@transaction.atomic
def comm_lost(*, connector_id: int, error: str) -> None:
    """The link is gone: ``comm_state`` lost, the error, and the
    communication-loss alarm (one open per connector; raising it again while
    it is active changes nothing)."""
    Connector.objects.filter(pk=connector_id).update(
        comm_state=CommState.LOST, last_error=error, last_error_at=timezone.now()
    )
    alarms.comm_loss_raise(connector_id=connector_id, error=error)


@transaction.atomic
def comm_unknown(*, connector_id: int) -> None:
    """A connector the collector stops watching (disabled): its state is no
    longer known, and a communication-loss alarm it had is cleared."""
    connector = Connector.objects.filter(pk=connector_id)
    was_lost = connector.filter(comm_state=CommState.LOST).exists()
    connector.update(comm_state=CommState.UNKNOWN)
    if was_lost:
        alarms.comm_loss_clear(connector_id=connector_id)


def comm_unwatched(*, connector_ids: list[int]) -> None:
    """The collector stops: a link it last saw up is no longer known to be (a
    lost one stays lost, with its alarm, until a collector sees it again)."""
    Connector.objects.filter(pk__in=connector_ids, comm_state=CommState.OK).update(
        comm_state=CommState.UNKNOWN
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "No answer within the timeout."
    return str(exc) or type(exc).__name__


class _Link:
    """One connector's run: its session, its buffer and its link state."""

    def __init__(self, collector: Collector, spec: ConnectorSpec) -> None:
        self.collector = collector
        self.spec = spec
        self.log = log.bind(connector_id=spec.id, connector=spec.name)
        self.buffer: list[dict] = []
        # Tags whose first value since the last (re)connection is still to come.
        self.fresh: set[str] = set()
        self.lost = False  # as last written to the database
        self.last_ok_written = 0.0
        self.started = time.monotonic()
        self.connected_once = False

    # --- the task ---------------------------------------------------------------

    async def run(self) -> None:
        """Connect, collect until the link fails, back off, again; until cancelled."""
        backoff = 1.0
        state = self.collector.link_state.setdefault(self.spec.id, {})
        self.lost = state.get("lost", False)
        while True:
            client = self.collector.connector_factory(self.spec.record)
            try:
                # A session takes a few exchanges (more with security): longer
                # than one answer.
                await asyncio.wait_for(client.connect(), self.collector.timeout_s * 3)
                self.log.info("collector.connected", endpoint=self.spec.endpoint)
                self.connected_once = True
                await self._mark_ok()
                backoff = 1.0
                self.fresh = {tag.tag_name for tag in self.spec.tags}
                if self.spec.mode == ConnectorMode.SUBSCRIBE:
                    await self._subscribed(client)
                else:
                    await self._polled(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._mark_lost(exc)
            finally:
                await self._close(client)
                state["lost"] = self.lost
            if self._in_start_grace():
                await asyncio.sleep(1.0)
                continue
            self.log.info("collector.reconnect_wait", seconds=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.collector.backoff_max_s)

    async def _close(self, client) -> None:
        # Shielded: a stop that cancels the task still lets the session close
        # (and the cancellation goes on: a task that swallowed it would run on).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.shield(client.disconnect()), self.collector.timeout_s
            )

    # --- subscribe mode ---------------------------------------------------------

    async def _subscribed(self, client) -> None:
        collector = self.collector
        if self.spec.tag_records:
            await asyncio.wait_for(
                client.subscribe(
                    list(self.spec.tag_records),
                    self._on_raw(client),
                    self.spec.poll_interval_s * 1000,
                ),
                collector.timeout_s * 2,
            )
            self.log.info("collector.subscribed", tags=len(self.spec.tag_records))
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(collector.flush_s)
            await self._flush()
            if time.monotonic() - last_beat >= collector.heartbeat_s:
                await asyncio.wait_for(client.heartbeat(), collector.timeout_s)
                last_beat = time.monotonic()
                await self._mark_ok()

    def _on_raw(self, client) -> Callable[[Any], None]:
        def on_raw(raw: Any) -> None:
            # asyncua's notification handler: never raise into it.
            try:
                items = raw if isinstance(raw, list) else [raw]
                self._buffer(client.normalize(items))
            except Exception:
                self.log.exception("collector.normalize_failed")

        return on_raw

    # --- poll mode --------------------------------------------------------------

    async def _polled(self, client) -> None:
        collector = self.collector
        interval = float(self.spec.poll_interval_s)
        next_poll = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_poll:
                next_poll = now + interval
                if self.spec.tag_records:
                    raw = await asyncio.wait_for(
                        client.read(list(self.spec.tag_records)),
                        collector.timeout_s * 2,
                    )
                    self._buffer(client.normalize(raw))
                else:
                    await asyncio.wait_for(client.heartbeat(), collector.timeout_s)
                await self._mark_ok()
                await self._flush()
            else:
                # Between polls longer than a heartbeat, the link is still checked.
                await asyncio.wait_for(client.heartbeat(), collector.timeout_s)
                await self._mark_ok()
                await self._flush()  # retries a batch the database refused
            await asyncio.sleep(
                max(0.0, min(collector.heartbeat_s, next_poll - time.monotonic()))
            )

    # --- readings ---------------------------------------------------------------

    def _buffer(self, normalized: list[dict]) -> None:
        last = self.collector.last_values.setdefault(self.spec.id, {})
        for reading in normalized:
            name = reading.get("tag_name")
            heard = (reading.get("value"), reading.get("quality"))
            if name in self.fresh:
                self.fresh.discard(name)
                # A restarted server re-sends what it had with a new source
                # timestamp: the same value and quality is no new reading.
                if last.get(name) == heard:
                    continue
            last[name] = heard
            self.buffer.append(reading)
        if len(self.buffer) > MAX_BUFFERED:
            dropped = len(self.buffer) - MAX_BUFFERED
            del self.buffer[:dropped]
            self.log.warning("collector.buffer_overflow", dropped=dropped)

    async def _flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        try:
            result = await database_sync_to_async(readings_store_atomic)(
                connector_id=self.spec.id,
                readings=batch,
                actor=self.collector.actor,
            )
        except _RETRY_DB_ERRORS as exc:
            self.buffer[:0] = batch  # kept, in order, for the next flush
            self.log.warning(
                "collector.store_failed", error=_describe(exc), kept=len(batch)
            )
            return
        except Exception:
            # A batch the store refuses (bad data) would be refused again.
            self.log.exception("collector.store_refused", dropped=len(batch))
            return
        self.log.debug("collector.stored", readings=len(batch), result=result)

    # --- link state ---------------------------------------------------------------

    async def _mark_ok(self) -> None:
        now = time.monotonic()
        if not self.lost and now - self.last_ok_written < LAST_OK_EVERY_S:
            return
        try:
            await database_sync_to_async(comm_ok)(connector_id=self.spec.id)
        except Exception as exc:
            self.log.warning("collector.state_write_failed", error=_describe(exc))
            return  # tried again on the next heartbeat
        if self.lost:
            self.log.info("collector.link_restored")
        self.lost, self.last_ok_written = False, now

    def _in_start_grace(self) -> bool:
        return (
            not self.connected_once
            and not self.lost
            and time.monotonic() - self.started < self.collector.start_grace_s
        )

    async def _mark_lost(self, exc: BaseException) -> None:
        error = _describe(exc)
        await self._flush()  # what was heard before the loss is still stored
        if self._in_start_grace():
            self.log.info("collector.not_reached_yet", error=error)
            return
        self.log.warning("collector.link_lost", error=error, was_lost=self.lost)
        if self.lost:
            return
        try:
            await database_sync_to_async(comm_lost)(
                connector_id=self.spec.id, error=f"{self.spec.endpoint}: {error}"
            )
        except Exception as state_exc:
            self.log.warning("collector.state_write_failed", error=_describe(state_exc))
            return  # tried again after the next failed attempt
        self.lost = True


def _default_factory(record: Connector):
    from scada.connectors.opcua import OpcUaConnector

    return OpcUaConnector(record)


class Collector:
    """The process's state: one task per enabled OPC UA connector."""

    def __init__(
        self,
        *,
        heartbeat_s: float | None = None,
        timeout_s: float | None = None,
        backoff_max_s: float | None = None,
        watch_s: float | None = None,
        flush_s: float | None = None,
        start_grace_s: float = START_GRACE_S,
        connector_factory: Callable[[Connector], Any] = _default_factory,
    ) -> None:
        self.heartbeat_s = heartbeat_s or settings.BPMOS_COLLECTOR_HEARTBEAT_S
        self.timeout_s = timeout_s or settings.BPMOS_COLLECTOR_TIMEOUT_S
        self.backoff_max_s = backoff_max_s or settings.BPMOS_COLLECTOR_BACKOFF_MAX_S
        self.watch_s = watch_s or settings.BPMOS_COLLECTOR_WATCH_S
        self.flush_s = flush_s or settings.BPMOS_COLLECTOR_FLUSH_S
        self.start_grace_s = start_grace_s
        self.connector_factory = connector_factory
        self.actor = None
        self.specs: dict[int, ConnectorSpec] = {}
        self.tasks: dict[int, asyncio.Task] = {}
        # Kept across a connector's restarts: the last value heard per tag, and
        # whether its link was lost.
        self.last_values: dict[int, dict[str, tuple]] = {}
        self.link_state: dict[int, dict[str, bool]] = {}
        self._fingerprint: Fingerprint | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until ``stop`` is set; then close every session."""
        log.info(
            "collector.started", watch_s=self.watch_s, heartbeat_s=self.heartbeat_s
        )
        try:
            while not stop.is_set():
                await self.watch()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.watch_s)
        finally:
            watched = list(self.tasks)
            await self.stop_all()
            with contextlib.suppress(Exception):
                await database_sync_to_async(comm_unwatched)(connector_ids=watched)
            with contextlib.suppress(Exception):
                await database_sync_to_async(cache.delete)(ALIVE_KEY)
            with contextlib.suppress(Exception):
                await database_sync_to_async(connections.close_all)()
            log.info("collector.stopped")

    async def watch(self) -> None:
        """One look at the configuration (and the liveness mark); never raises."""
        try:
            await database_sync_to_async(cache.set)(
                ALIVE_KEY, timezone.now().isoformat(), timeout=self.watch_s * 3 + 5
            )
        except Exception as exc:
            log.warning("collector.alive_mark_failed", error=_describe(exc))
        try:
            fingerprint = await database_sync_to_async(fingerprint_read)()
            if fingerprint == self._fingerprint:
                return
            specs = await database_sync_to_async(connector_specs_load)()
            self.actor = await database_sync_to_async(service_account)()
        except Exception as exc:
            log.warning("collector.config_read_failed", error=_describe(exc))
            return  # the next look tries again
        await self.apply(specs)
        self._fingerprint = fingerprint

    async def apply(self, specs: dict[int, ConnectorSpec]) -> None:
        """Start, restart and stop connectors' tasks to match ``specs``."""
        for connector_id in list(self.tasks):
            if connector_id not in specs:
                await self._stop(connector_id)
                log.info("collector.connector_stopped", connector_id=connector_id)
                with contextlib.suppress(Exception):
                    await database_sync_to_async(comm_unknown)(
                        connector_id=connector_id
                    )
                self.link_state.pop(connector_id, None)
        for connector_id, spec in specs.items():
            running = self.tasks.get(connector_id)
            if running is not None and not running.done():
                if self.specs.get(connector_id) == spec:
                    continue
                await self._stop(connector_id)
                log.info("collector.connector_changed", connector_id=connector_id)
            self.specs[connector_id] = spec
            self.tasks[connector_id] = asyncio.create_task(
                self._guarded(_Link(self, spec)), name=f"collector-{connector_id}"
            )
        self.specs = {pk: spec for pk, spec in self.specs.items() if pk in specs}

    async def _guarded(self, link: _Link) -> None:
        """A bug in one connector's task is logged, and the task starts over."""
        while True:
            try:
                await link.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                link.log.exception("collector.task_failed")
                await asyncio.sleep(self.backoff_max_s)

    async def _stop(self, connector_id: int) -> None:
        task = self.tasks.pop(connector_id, None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    async def stop_all(self) -> None:
        for connector_id in list(self.tasks):
            await self._stop(connector_id)


def collector_alive() -> bool:
    """Whether a collector process refreshed its mark lately."""
    return cache.get(ALIVE_KEY) is not None
