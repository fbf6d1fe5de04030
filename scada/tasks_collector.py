"""Celery tasks of SCADA collector: the stand-in poll.

The collector process (``manage.py scada_collector``) keeps the OPC UA sessions
and runs the polls. Where it does not run (a deployment that leaves it out, or
while it is down), beat's ``scada-connectors-poll`` polls the poll-mode OPC UA
connectors on their interval instead; while the collector's liveness mark is
fresh the task does nothing. Subscriptions need the long-lived process: beat
cannot stand in for them.
"""

from __future__ import annotations

import structlog
from celery import shared_task
from django.core.cache import cache

from bpmos.errors import DomainError
from scada import alarms, collector, readings
from scada.models import CommState, Connector, ConnectorKind, ConnectorMode

log = structlog.get_logger(__name__)


def connectors_poll_due() -> dict:
    """Poll each enabled poll-mode OPC UA connector whose interval has passed
    since its last stand-in poll, unless a collector process is running.
    Returns {"collector_running": bool, "polled": [...ids], "failed": [...ids]}."""
    if collector.collector_alive():
        return {"collector_running": True, "polled": [], "failed": []}
    actor = collector.service_account()
    polled, failed = [], []
    for connector_id, interval in Connector.objects.filter(
        kind=ConnectorKind.OPCUA, enabled=True, mode=ConnectorMode.POLL
    ).values_list("id", "poll_interval_s"):
        # add() is atomic: two overlapping runs never poll a connector twice
        # within its interval.
        if not cache.add(f"scada:poll-due:{connector_id}", 1, timeout=interval):
            continue
        was_ok = Connector.objects.filter(
            pk=connector_id, comm_state=CommState.OK
        ).exists()
        try:
            # Marks the connector's comm state itself (ok, or lost on a failure).
            readings.connector_poll(connector_id=connector_id, actor=actor)
        except DomainError as exc:  # the server cannot be read (503), disabled (409)
            failed.append(connector_id)
            log.warning("scada.poll_failed", connector_id=connector_id, error=str(exc))
            collector.comm_lost(connector_id=connector_id, error=str(exc))
            continue
        polled.append(connector_id)
        if not was_ok:
            alarms.comm_loss_clear(connector_id=connector_id)
    return {"collector_running": False, "polled": polled, "failed": failed}


@shared_task
def scada_connectors_poll_task() -> dict:
    """Poll the due poll-mode OPC UA connectors when no collector runs."""
    return connectors_poll_due()
