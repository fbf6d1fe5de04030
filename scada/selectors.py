"""Reads of SCADA for the read models that compose the apps
(``bpmos.dashboards``): alarm series for trends, alarms waiting for an
acknowledgement, and the connectors' communication health."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q

from bpmos.series import per_bucket
from scada.models import AlarmEvent, AlarmState, CommState, Connector

# ISA-18.2's states an operator must still acknowledge.
UNACKNOWLEDGED = (AlarmState.UNACK_ACTIVE, AlarmState.UNACK_RTN)
_SEVERITY_FIRST = ("critical", "high", "medium", "low")


def alarm_unacknowledged_list(*, limit: int = 50) -> list[AlarmEvent]:
    """Open alarms not yet acknowledged, oldest first. One query."""
    return list(
        AlarmEvent.objects.filter(status__in=UNACKNOWLEDGED).order_by(
            "timestamp", "id"
        )[:limit]
    )


def alarm_unacknowledged_count() -> int:
    """How many alarms wait for an acknowledgement. One query."""
    return AlarmEvent.objects.filter(status__in=UNACKNOWLEDGED).count()


def connector_health() -> dict[str, int]:
    """Enabled connectors by communication state, with the total and the
    disabled ones: {"total", "enabled", "ok", "lost", "unknown", "disabled"}.
    One query."""
    enabled = Q(enabled=True)
    found = Connector.objects.aggregate(
        n_total=Count("id"),
        n_enabled=Count("id", filter=enabled),
        n_ok=Count("id", filter=enabled & Q(comm_state=CommState.OK)),
        n_lost=Count("id", filter=enabled & Q(comm_state=CommState.LOST)),
        n_unknown=Count("id", filter=enabled & Q(comm_state=CommState.UNKNOWN)),
    )
    counts = {key.removeprefix("n_"): value for key, value in found.items()}
    counts["disabled"] = counts["total"] - counts["enabled"]
    return counts


def connector_lost_list(*, limit: int = 50) -> list[Connector]:
    """Enabled connectors whose link is lost, longest lost first. One query."""
    return list(
        Connector.objects.filter(enabled=True, comm_state=CommState.LOST)
        .only("id", "name", "kind", "last_error", "last_error_at", "updated_at")
        .order_by("last_error_at", "id")[:limit]
    )


def alarm_raised_series(
    *, start: datetime, end: datetime, bucket: str
) -> dict[datetime, int]:
    """Alarms that went active per ``bucket`` ("hour", "day", "week", UTC) over
    [start, end), whatever their state now: bucket start -> count; empty buckets
    absent. One query over the ``timestamp`` index."""
    return dict(
        per_bucket(
            AlarmEvent.objects.filter(timestamp__gte=start, timestamp__lt=end),
            "timestamp",
            bucket,
            n=Count("id"),
        )
    )
