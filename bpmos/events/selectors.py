"""Reads of the outbox: what a resuming WebSocket client missed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bpmos.events.models import OutboxEvent, OutboxTopic
from bpmos.events.services import event_payload

REPLAY_LIMIT = 1000


@dataclass(frozen=True)
class Replay:
    """Events after a client's last seen id, oldest first.

    ``truncated`` means more events exist than ``REPLAY_LIMIT``: the client
    should reload its state over the REST API rather than trust the stream.
    """

    events: list[dict]
    truncated: bool


def outbox_replay(
    *, topics: Collection[str], after_id: int, limit: int = REPLAY_LIMIT
) -> Replay:
    """Committed events with id > ``after_id`` on any of ``topics``, oldest first.

    Includes events not yet delivered live: the client de-duplicates by id when
    the live copy arrives later.
    """
    event_ids = OutboxTopic.objects.filter(
        topic__in=list(topics), event_id__gt=after_id
    ).values("event_id")
    rows = list(
        OutboxEvent.objects.filter(pk__in=event_ids).order_by("id")[: limit + 1]
    )
    return Replay(
        events=[event_payload(row) for row in rows[:limit]],
        truncated=len(rows) > limit,
    )
