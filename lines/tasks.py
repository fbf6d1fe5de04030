"""Celery tasks of lines."""

from celery import shared_task

from lines import services


@shared_task
def oee_snapshots_refresh_task() -> int:
    """Recompute every line's OEE snapshot for its current shift (beat)."""
    return services.oee_snapshots_refresh()
