"""The dashboards' headline figures, trends and breakdowns (control-UI
contract group I). Thin: one read model call, one serializer."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from bpmos import access
from bpmos.dashboards import distributions, kpis, trends
from bpmos.dashboards.api import kpis_serializers as s
from bpmos.fields import TIME_SCHEMA
from bpmos.textfields import NOT_BLANK_PATTERN
from bpmos.views import BpmosAPIView


class DashboardSummaryView(BpmosAPIView):
    """Planned, Built and Yield for the current shift, today and this week, and
    what is on hold now (definitions: docs/dashboards.md)."""

    @extend_schema(tags=["dashboards"], responses=s.SummarySerializer)
    def get(self, request):
        return self.respond(s.SummarySerializer, kpis.summary_get())


def _query(name: str, kind, description: str, **extra) -> OpenApiParameter:
    return OpenApiParameter(
        name, kind, OpenApiParameter.QUERY, description=description, **extra
    )


class DashboardTrendsView(BpmosAPIView):
    """A metric's time series per hour, day or ISO week (UTC), for sparklines
    and charts. The telemetry metrics (soh, soc, temperature) reveal state of
    health, a restricted passport group: supervisors, plant heads, auditors and
    admins only (403 for others)."""

    @extend_schema(
        tags=["dashboards"],
        parameters=[
            _query(
                "metric",
                OpenApiTypes.STR,
                "What to follow.",
                required=True,
                enum=list(trends.METRICS),
            ),
            _query(
                "bucket",
                OpenApiTypes.STR,
                "Bucket size (default day).",
                enum=list(trends.BUCKETS),
            ),
            _query(
                "from",
                TIME_SCHEMA,
                f"Start (rounded down to its bucket); default "
                f"{trends.DEFAULT_POINTS} buckets before to.",
            ),
            _query("to", TIME_SCHEMA, "End, exclusive; default now."),
            _query(
                "passport",
                OpenApiTypes.STR,
                "Telemetry of one battery: its UUID, BPAN, serial, barcode or RFID.",
                pattern=NOT_BLANK_PATTERN,
                allow_blank=False,
            ),
            _query(
                "model",
                OpenApiTypes.STR,
                "Telemetry of every battery of a model.",
                pattern=NOT_BLANK_PATTERN,
                allow_blank=False,
            ),
        ],
        responses=s.TrendSerializer,
    )
    def get(self, request):
        query = self.validated(s.TrendQuerySerializer, query=True)
        if query["metric"] in trends.TELEMETRY_METRICS:
            access.require_action("passport-restricted", request.user)
        trend = trends.trend_get(
            metric=query["metric"],
            bucket=query["bucket"],
            start=query.get("from"),
            end=query.get("to"),
            passport=query.get("passport"),
            model=query.get("model"),
        )
        return self.respond(s.TrendSerializer, trend)


class DashboardDistributionsView(BpmosAPIView):
    """Stage Mix (WIP per stage), Custody Mix (batteries per custodian kind) and
    inventory by status."""

    @extend_schema(tags=["dashboards"], responses=s.DistributionsSerializer)
    def get(self, request):
        return self.respond(
            s.DistributionsSerializer, distributions.distributions_get()
        )
