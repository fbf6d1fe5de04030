"""Time series in the database: rows grouped by a UTC bucket of a time column.

The dashboards' trends read counts and sums per hour, day or week from several
apps; each app's selector filters its own rows and groups them here, so the
grouping (``Trunc`` in UTC, no default ordering in the GROUP BY) is written
once.
"""

from __future__ import annotations

from datetime import UTC

from django.db.models import QuerySet
from django.db.models.functions import Trunc


def per_bucket(queryset: QuerySet, time_field: str, bucket: str, **aggregates):
    """``queryset`` grouped by ``bucket`` ("hour", "day", "week") of
    ``time_field`` in UTC: rows ``(bucket start, *aggregates)`` in the order
    the aggregates are given; buckets without rows absent. One query."""
    return (
        queryset.annotate(bucket=Trunc(time_field, bucket, tzinfo=UTC))
        .order_by()
        .values("bucket")
        .annotate(**aggregates)
        .values_list("bucket", *aggregates)
    )
