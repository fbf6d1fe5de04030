"""Celery tasks of lines."""

import structlog
from celery import shared_task

from lines import services

log = structlog.get_logger(__name__)


@shared_task
def oee_snapshots_refresh_task() -> int:
    """Recompute every line's OEE snapshot for its current shift (beat)."""
    return services.oee_snapshots_refresh()


@shared_task
def machine_hours_refresh_task() -> int:
    """Roll up the complete hours that are stale or new into ``MachineHour``
    (beat), so OEE over any window reads whole hours from there."""
    return services.machine_hours_refresh()


@shared_task
def readings_partitions_maintain_task() -> dict:
    """Create the readings' month partitions ahead and apply retention (beat;
    PostgreSQL only). A role without CREATE on the schema (docs/security.md's
    ``bpmos_app``) is refused: logged, and the DEFAULT partition keeps taking
    readings until ``manage.py readings_partitions`` runs as the owner."""
    from django.db import DatabaseError

    from lines import partitions

    try:
        return partitions.readings_partitions_maintain()
    except DatabaseError as error:
        log.error("readings_partitions_refused", error=str(error))
        return {"created": [], "retired": [], "error": str(error)}
