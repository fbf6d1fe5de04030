"""An event that committed late is not lost to a resuming client.

Outbox ids are taken when an event is stored, so a transaction that stored
its event first and committed last publishes a smaller id after a greater one.
A client that saw the greater id live and reconnected before the smaller one
was sent resumes with ``last_event_id`` = the greater id: the replay must
still give it the smaller one (``bpmos.events.selectors.outbox_replay``).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from bpmos import events
from bpmos.events.models import OutboxEvent
from bpmos.events.selectors import MISSED_LOOKBACK, outbox_replay
from bpmos.events.types import Event
from tests.support import join_or_fail


def _publish(topics=("users",), n: int = 1) -> int:
    with transaction.atomic():
        return events.publish(
            Event(name="user.registered", topics=topics, data={"n": n})
        ).pk


def _ids(after: int) -> list[int]:
    return [
        event["id"] for event in outbox_replay(topics=["users"], after_id=after).events
    ]


@pytest.mark.django_db
def test_smaller_ids_sent_after_the_last_seen_are_replayed():
    early, sent_before, never_sent, old = (_publish(n=n) for n in range(4))
    seen = _publish(n=4)
    newer = _publish(n=5)
    now = timezone.now()
    rows = OutboxEvent.objects
    rows.filter(pk=seen).update(delivered_at=now)
    rows.filter(pk=early).update(delivered_at=now + timedelta(seconds=1))  # late
    rows.filter(pk=sent_before).update(delivered_at=now - timedelta(seconds=1))
    rows.filter(pk=never_sent).update(delivered_at=None)
    rows.filter(pk=old).update(
        delivered_at=now + timedelta(seconds=2),
        created_at=now - MISSED_LOOKBACK - timedelta(minutes=1),
    )
    rows.filter(pk=newer).update(delivered_at=now - timedelta(seconds=5))
    assert _ids(seen) == [early, never_sent, newer]
    # newer was sent first of all (5 s ago): everything sent since, or never
    # sent, within the lookback, comes again; a client de-duplicates by id
    assert _ids(newer) == [early, sent_before, never_sent, seen]


@pytest.mark.django_db
def test_an_event_seen_before_its_own_send_replays_what_was_sent_since_it_was_stored():
    before = _publish(n=0)
    seen = _publish(n=1)
    rows = OutboxEvent.objects
    stored = rows.get(pk=seen).created_at
    rows.filter(pk=seen).update(delivered_at=None)  # the client had it by replay
    rows.filter(pk=before).update(delivered_at=stored + timedelta(milliseconds=1))
    assert _ids(seen) == [before]
    rows.filter(pk=before).update(delivered_at=stored - timedelta(milliseconds=1))
    assert _ids(seen) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one writer at a time"
)
def test_a_transaction_that_commits_last_is_replayed_to_a_client_that_saw_the_next():
    """Two real transactions: the first stores its event and waits while the
    second stores, commits and is sent; a client that saw the second's id
    resumes and gets the first one once it has committed."""
    stored, release, done = threading.Event(), threading.Event(), {}

    def slow() -> None:
        try:
            with transaction.atomic():
                done["id"] = events.publish(
                    Event(name="user.registered", topics=("users",), data={"n": 1})
                ).pk
                stored.set()
                assert release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    assert stored.wait(30)
    fast = _publish(n=2)
    assert done["id"] < fast  # the slow one took the smaller id
    assert _ids(fast) == []  # not committed yet: nothing to give
    release.set()
    join_or_fail(thread)
    assert _ids(fast) == [done["id"]]
    assert done["id"] in _ids(done["id"] - 1)
