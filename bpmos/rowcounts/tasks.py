"""Celery tasks of the kept row counts."""

from celery import shared_task

from bpmos.rowcounts import services


@shared_task
def rowcounts_compact_task() -> int:
    """Fold each kept count's deltas into one row (``services.compact``)."""
    return services.compact()
