"""Control-UI endpoints of lines (group V) and live status (group III).

Reads only: from ``lines.selectors`` (line and station status, OEE) and
``lines.wip`` (operations, WIP, bottleneck). Lists are plain arrays: a plant
has a bounded few lines.

The plant-wide payloads the screens poll (the line lists, the summary,
operations and bottlenecks) are served from their read models
(``lines.readmodels``): computed once for every write that changes them, not
once per request. The functions ending in ``_payload`` compute them.
"""

from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from bpmos.fields import TIME_SCHEMA
from bpmos.views import BpmosAPIView
from lines import selectors, wip
from lines.api_tower import serializers as s
from lines.readmodels import LINE_STATUS, OPERATIONS

Payload = tuple[Any, datetime | None]  # what a read model computes (bpmos.readcache)


def _line_views_payload(serializer: type[serializers.Serializer]) -> Payload:
    now = timezone.now()
    views = selectors.line_status_list(now=now)
    return serializer(views, many=True).data, selectors.views_valid_until(views, now)


def line_list_payload() -> Payload:
    return _line_views_payload(s.LineSummarySerializer)


def live_lines_payload() -> Payload:
    return _line_views_payload(s.LineStatusSerializer)


def live_summary_payload() -> Payload:
    summary = selectors.live_status_summary()
    return s.LiveSummarySerializer(summary).data, summary.valid_until


def operations_payload() -> Payload:
    return s.OperationsSerializer(wip.operations_snapshot()).data, None


def bottlenecks_payload() -> Payload:
    stages = wip.stage_wip_list()
    data = s.BottlenecksSerializer(
        {"bottleneck": wip.bottleneck(stages), "stages": stages}
    ).data
    return data, None


LINE_ID = OpenApiParameter(
    "line_id", OpenApiTypes.STR, OpenApiParameter.PATH, description='"line-a"'
)
_WINDOW = [
    OpenApiParameter(
        "from",
        TIME_SCHEMA,
        description="Window start (ISO 8601 with zone). Default: this shift's start.",
    ),
    OpenApiParameter(
        "to",
        TIME_SCHEMA,
        description="Window end, clipped to now. Default: now.",
    ),
]


class LineListView(BpmosAPIView):
    """Every active line with its summary health, in line order."""

    @extend_schema(tags=["lines"], responses=s.LineSummarySerializer(many=True))
    def get(self, request):
        return Response(LINE_STATUS.get("lines", line_list_payload))


class LineStationsView(BpmosAPIView):
    """The line's stations in position order with their states."""

    @extend_schema(
        tags=["lines"],
        parameters=[LINE_ID],
        responses=s.StationDetailSerializer(many=True),
    )
    def get(self, request, line_id: str):
        stations = selectors.line_station_list(slug=line_id)
        return self.respond(s.StationDetailSerializer, stations, many=True)


class LineOEEView(BpmosAPIView):
    """The line's OEE and each station's (docs/oee.md), as percentages.

    Default window: this shift so far, served from the snapshot Celery beat
    keeps. With ``from`` (and optionally ``to``) it is computed from the
    readings; at most 31 days.
    """

    @extend_schema(
        tags=["lines"],
        parameters=[LINE_ID, *_WINDOW],
        responses=s.LineOEESerializer,
    )
    def get(self, request, line_id: str):
        report = selectors.line_oee_get(
            slug=line_id,
            raw_from=request.query_params.get("from"),
            raw_to=request.query_params.get("to"),
        )
        return self.respond(s.LineOEESerializer, report)


class LiveSummaryView(BpmosAPIView):
    """Plant health (% of stations not Blocked), lines by mode, plant OEE."""

    @extend_schema(tags=["live status"], responses=s.LiveSummarySerializer)
    def get(self, request):
        return Response(LINE_STATUS.get("summary", live_summary_payload))


class LiveOperationsView(BpmosAPIView):
    """Running versus blocked (held) work-order stages, and the bottleneck."""

    @extend_schema(tags=["live status"], responses=s.OperationsSerializer)
    def get(self, request):
        return Response(OPERATIONS.get("operations", operations_payload))


class LiveLinesView(BpmosAPIView):
    """Every active line with its stations (payload C each)."""

    @extend_schema(tags=["live status"], responses=s.LineStatusSerializer(many=True))
    def get(self, request):
        return Response(LINE_STATUS.get("live-lines", live_lines_payload))


class LiveBottlenecksView(BpmosAPIView):
    """WIP by stage and the bottleneck ("Bottleneck by Stage")."""

    @extend_schema(tags=["live status"], responses=s.BottlenecksSerializer)
    def get(self, request):
        return Response(OPERATIONS.get("bottlenecks", bottlenecks_payload))
