"""Celery tasks of lines."""

from celery import shared_task

from lines import services


@shared_task
def oee_snapshots_refresh_task() -> int:
    """Recompute every line's OEE snapshot for its current shift (beat)."""
    return services.oee_snapshots_refresh()


@shared_task
def machine_hours_refresh_task() -> int:
    """Roll up the complete hours that are stale or new into ``MachineHour``
    (beat), so OEE over any window reads whole hours from there."""
    return services.machine_hours_refresh()
