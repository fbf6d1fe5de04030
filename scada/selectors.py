"""Reads of SCADA for the read models that compose the apps
(``bpmos.dashboards``)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Count
from django.db.models.functions import Trunc

from scada.models import AlarmEvent


def alarm_raised_series(
    *, start: datetime, end: datetime, bucket: str
) -> dict[datetime, int]:
    """Alarms that went active per ``bucket`` ("hour", "day", "week", UTC) over
    [start, end), whatever their state now: bucket start -> count; empty buckets
    absent. One query over the ``timestamp`` index."""
    return dict(
        AlarmEvent.objects.filter(timestamp__gte=start, timestamp__lt=end)
        .annotate(bucket=Trunc("timestamp", bucket, tzinfo=UTC))
        .order_by()
        .values("bucket")
        .annotate(n=Count("id"))
        .values_list("bucket", "n")
    )
