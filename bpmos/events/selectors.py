"""Reads of the outbox: what a resuming WebSocket client, or a server process
whose channel layer failed, missed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from bpmos.events.models import OutboxEvent, OutboxTopic
from bpmos.events.services import event_payload

REPLAY_LIMIT = 1000  # events per page of a replay (one read)
# Events a WebSocket resume sends at most, page after page: enough for a
# client that was away through a minute of outage at 1,000 changes a minute
# and more (tests/test_redis_outage_changes.py); beyond it the client is told
# to reload its state over the REST API (``truncated``).
REPLAY_MAX_EVENTS = 10 * REPLAY_LIMIT
# How far before a recovery's start its catch-up looks for events sent late
# (a transaction that stored its event earlier and committed after).
MISSED_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class Replay:
    """Events after a client's last seen id, oldest first.

    ``truncated`` means more events exist than the page's limit: the next
    page starts after the last one's id (``start_after``).
    ``sent_at`` (``outbox_missed`` only) says when each event was sent live,
    None for one not sent yet: a subscriber that joined after an event was
    sent was not following it then and is not offered it again.
    """

    events: list[dict]
    truncated: bool
    sent_at: tuple[datetime | None, ...] = ()


def outbox_replay(
    *,
    topics: Collection[str],
    after_id: int,
    start_after: int = 0,
    limit: int = REPLAY_LIMIT,
) -> Replay:
    """What a client that last saw event ``after_id`` may have missed on
    ``topics``, oldest first: every committed event with a greater id, and
    the events with a smaller one that were sent after it (or are not sent
    yet).

    Ids are taken when an event is stored, not when its transaction commits:
    a transaction that stored its event first and committed last publishes a
    smaller id after a greater one. A client that saw the greater one and then
    lost its connection before the smaller one was sent would never get it
    from "id > after_id" alone. So the replay also takes the events stored up
    to ``MISSED_LOOKBACK`` before ``after_id`` whose live send came after its
    own (or after it was stored, if its own has not come) or has not come. The client
    may get some of them twice: it de-duplicates by id (docs/websocket.md).

    One page of at most ``limit`` events with an id greater than
    ``start_after``; the next page starts after the last event's id.
    """
    topic_rows = OutboxTopic.objects.filter(topic__in=list(topics))
    newer = Q(pk__in=topic_rows.filter(event_id__gt=after_id).values("event_id"))
    seen = (
        OutboxEvent.objects.filter(pk=after_id)
        .values("created_at", "delivered_at")
        .first()
    )
    if seen is not None:
        # Sent after it (one send of several events goes in id order, so one
        # sent in the same instant went before it), or, if it has not been
        # sent itself (the client had it from a replay), since it was stored.
        sent_after = seen["delivered_at"] or seen["created_at"]
        late = Q(delivered_at__isnull=True) | Q(delivered_at__gt=sent_after)
        newer |= Q(
            late,
            pk__in=topic_rows.filter(event_id__lt=after_id).values("event_id"),
            created_at__gte=seen["created_at"] - MISSED_LOOKBACK,
        )
    rows = OutboxEvent.objects.filter(newer)
    if start_after:
        rows = rows.filter(pk__gt=start_after)
    rows = list(rows.order_by("id")[: limit + 1])
    return Replay(
        events=[event_payload(row) for row in rows[:limit]],
        truncated=len(rows) > limit,
    )


def outbox_missed(
    *,
    topics: Collection[str],
    since: datetime,
    after_id: int = 0,
    limit: int = REPLAY_LIMIT,
) -> Replay:
    """Events on ``topics`` a server process may have missed while its
    channel layer was failing or had forgotten its groups, oldest first:
    stored since ``since``, sent (marked delivered) since then, or not sent
    yet; with id > ``after_id`` (the next page).

    Read once per recovery. The scan is bounded to events stored within
    ``MISSED_LOOKBACK`` before ``since`` (the ``created_at`` index).
    """
    rows = OutboxEvent.objects.filter(
        pk__in=OutboxTopic.objects.filter(
            topic__in=list(topics), event_id__gt=after_id
        ).values("event_id"),
        created_at__gte=since - MISSED_LOOKBACK,
    ).filter(
        Q(created_at__gte=since)
        | Q(delivered_at__gte=since)
        | Q(delivered_at__isnull=True)
    )
    rows = list(rows.order_by("id")[: limit + 1])
    return Replay(
        events=[event_payload(row) for row in rows[:limit]],
        truncated=len(rows) > limit,
        sent_at=tuple(row.delivered_at for row in rows[:limit]),
    )


def latest_event_id(*, topics: Collection[str]) -> int:
    """The id of the newest event stored on any of ``topics`` (0: none): where a
    page that rendered its state now resumes its live stream from, so nothing
    committed after the render is missed."""
    newest = (
        OutboxTopic.objects.filter(topic__in=list(topics))
        .order_by("-event_id")
        .values_list("event_id", flat=True)
        .first()
    )
    return newest or 0
