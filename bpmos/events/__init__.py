"""Live events, one mechanism (docs/design.md §7).

``publish(event)`` stores the event in the caller's transaction (the outbox)
and delivers it to the Channels groups of its topics after commit. See
``bpmos.events.services`` for delivery and re-delivery.
"""

from bpmos.events.types import Event, declare


def publish(event: Event, *, background: bool = False):
    """Store ``event`` now; deliver it to subscribers once the transaction commits
    (with ``background``, from this process's delivery thread rather than
    before the caller returns: hot paths such as readings ingest)."""
    from bpmos.events.services import event_publish  # app registry must be ready

    return event_publish(event=event, background=background)


def publish_many(events, *, background: bool = False, trip=None):
    """``publish`` of several events, in order, in one statement; one delivery
    of all of them after commit (``bpmos.events.services.event_publish_many``;
    ``background`` as for ``publish``; ``trip``: queue the statement on a
    ``bpmos.bulk.OneTrip``)."""
    from bpmos.events.services import event_publish_many

    return event_publish_many(events=events, background=background, trip=trip)


__all__ = ["Event", "declare", "publish", "publish_many"]
