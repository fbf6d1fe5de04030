"""A resuming client's catch-up, shared by the WebSocket and the dispatch
desk's SSE stream: what it missed since its last event id, page after page
(one read each, ``selectors.REPLAY_LIMIT`` events), up to
``selectors.REPLAY_MAX_EVENTS``. A client away through an outage of a minute
misses more than one page (tests/test_redis_outage_changes.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async

from bpmos.events import selectors


async def replay(
    topics: list[str], last_event_id: int, forward: Callable[[dict], Awaitable[None]]
) -> tuple[int, bool]:
    """Hand each missed event to ``forward`` in id order; returns (how many
    were read, whether more remain past ``REPLAY_MAX_EVENTS``: the client
    then reloads its state over the REST API)."""
    read, start_after = 0, 0
    while True:
        page = await database_sync_to_async(selectors.outbox_replay)(
            topics=topics,
            after_id=last_event_id,
            start_after=start_after,
            limit=min(selectors.REPLAY_LIMIT, selectors.REPLAY_MAX_EVENTS - read),
        )
        for event in page.events:
            await forward(event)
        read += len(page.events)
        if not page.truncated or read >= selectors.REPLAY_MAX_EVENTS:
            return read, page.truncated
        start_after = page.events[-1]["id"]
