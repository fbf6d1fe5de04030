"""The outbox pump of the embedded mode (in-memory channel layer).

An in-memory layer only reaches the WebSocket clients of its own process, so
events published by a Celery worker, a management command or any other process
wait in the outbox until the ASGI process sends them. The first WebSocket
connection starts one asyncio task in the server's event loop that polls the
outbox and delivers what is undelivered; it also marks this process as able to
deliver, so the after-commit delivery of events published here (HTTP views
served by the same daphne) goes straight out.

With a shared layer (Redis) nothing starts: every process delivers after
commit and the Celery beat task retries.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from channels.db import database_sync_to_async

from bpmos.events import services

log = structlog.get_logger(__name__)

POLL_INTERVAL_SECONDS = 0.25  # latency of events published by other processes
BATCH_SIZE = 500

_task: asyncio.Task | None = None


def ensure_started() -> None:
    """Start the pump in the running event loop unless it already runs there."""
    global _task
    if services.layer_is_shared():
        return
    loop = asyncio.get_running_loop()
    if _task is not None and not _task.done() and _task.get_loop() is loop:
        return
    _task = loop.create_task(_run(), name="bpmos-outbox-pump")
    services.mark_local_pump_running(loop=loop)
    log.info("outbox_pump_started")


async def pump_once(*, limit: int = BATCH_SIZE) -> int:
    """Send one batch of undelivered events; returns how many were delivered."""
    rows = await database_sync_to_async(services.events_undelivered)(limit=limit)
    if not rows:
        return 0
    delivered, failed = await services.adeliver_rows(rows)
    await database_sync_to_async(services.event_outcome_record)(
        delivered=delivered, failed=failed
    )
    return len(delivered)


async def _run() -> None:
    while True:
        try:
            sent = await pump_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A locked or restarting database: try again on the next tick.
            log.warning("outbox_pump_failed", exc_info=True)
            sent = 0
        if sent < BATCH_SIZE:  # a full batch means a backlog: go on at once
            await asyncio.sleep(POLL_INTERVAL_SECONDS)


async def stop() -> None:
    """Stop the pump of this process (server shutdown, tests)."""
    global _task
    task, _task = _task, None
    services.mark_local_pump_running(False)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
