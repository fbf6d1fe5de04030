"""Celery tasks of the event mechanism."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from bpmos.events import services


@shared_task
def events_redeliver_task() -> int:
    """Resend events still undelivered (e.g. Redis was briefly down)."""
    return services.events_redeliver(
        older_than_seconds=settings.BPMOS_EVENT_REDELIVERY_AFTER
    )


@shared_task
def events_prune_task() -> int:
    """Drop delivered events past the retention (BPMOS_EVENT_RETENTION_DAYS)."""
    return services.events_prune(
        older_than=timedelta(days=settings.BPMOS_EVENT_RETENTION_DAYS)
    )


@shared_task
def events_deliver_task(event_ids: list[int]) -> int:
    """Deliver these undelivered events (those already delivered are
    skipped): a backlog split into chunks of ids is drained by as many
    workers as take them, each chunk by one (``bench.scaleout``)."""
    return services.event_deliver(event_ids=event_ids)
