"""Control-UI endpoints of lines (group V) and live status (group III).

Reads only: from ``lines.selectors`` (line and station status, OEE) and
``lines.wip`` (operations, WIP, bottleneck). Lists are plain arrays: a plant
has a bounded few lines.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from lines import selectors, wip
from lines.api_tower import serializers as s

_LINE_ID = OpenApiParameter(
    "line_id", OpenApiTypes.STR, OpenApiParameter.PATH, description='"line-a"'
)
_WINDOW = [
    OpenApiParameter(
        "from",
        OpenApiTypes.DATETIME,
        description="Window start (ISO 8601 with zone). Default: this shift's start.",
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.DATETIME,
        description="Window end, clipped to now. Default: now.",
    ),
]


class LineListView(APIView):
    """Every active line with its summary health, in line order."""

    @extend_schema(tags=["lines"], responses=s.LineSummarySerializer(many=True))
    def get(self, request):
        return Response(
            s.LineSummarySerializer(selectors.line_status_list(), many=True).data
        )


class LineDetailView(APIView):
    """One line: payload C with its runbook association."""

    @extend_schema(
        tags=["lines"], parameters=[_LINE_ID], responses=s.LineDetailSerializer
    )
    def get(self, request, line_id: str):
        return Response(
            s.LineDetailSerializer(selectors.line_status_get(slug=line_id)).data
        )


class LineStationsView(APIView):
    """The line's stations in position order with their states."""

    @extend_schema(
        tags=["lines"],
        parameters=[_LINE_ID],
        responses=s.StationDetailSerializer(many=True),
    )
    def get(self, request, line_id: str):
        stations = selectors.line_station_list(slug=line_id)
        return Response(s.StationDetailSerializer(stations, many=True).data)


class LineOEEView(APIView):
    """The line's OEE and each station's (docs/oee.md), as percentages.

    Default window: this shift so far, served from the snapshot Celery beat
    keeps. With ``from`` (and optionally ``to``) it is computed from the
    readings; at most 31 days.
    """

    @extend_schema(
        tags=["lines"],
        parameters=[_LINE_ID, *_WINDOW],
        responses=s.LineOEESerializer,
    )
    def get(self, request, line_id: str):
        report = selectors.line_oee_get(
            slug=line_id,
            raw_from=request.query_params.get("from"),
            raw_to=request.query_params.get("to"),
        )
        return Response(s.LineOEESerializer(report).data)


class LiveSummaryView(APIView):
    """Plant health (% of stations not Blocked), lines by mode, plant OEE."""

    @extend_schema(tags=["live status"], responses=s.LiveSummarySerializer)
    def get(self, request):
        return Response(s.LiveSummarySerializer(selectors.live_status_summary()).data)


class LiveOperationsView(APIView):
    """Running versus blocked (held) work-order stages, and the bottleneck."""

    @extend_schema(tags=["live status"], responses=s.OperationsSerializer)
    def get(self, request):
        return Response(s.OperationsSerializer(wip.operations_snapshot()).data)


class LiveLinesView(APIView):
    """Every active line with its stations (payload C each)."""

    @extend_schema(tags=["live status"], responses=s.LineStatusSerializer(many=True))
    def get(self, request):
        return Response(
            s.LineStatusSerializer(selectors.line_status_list(), many=True).data
        )


class LiveBottlenecksView(APIView):
    """WIP by stage and the bottleneck ("Bottleneck by Stage")."""

    @extend_schema(tags=["live status"], responses=s.BottlenecksSerializer)
    def get(self, request):
        stages = wip.stage_wip_list()
        return Response(
            s.BottlenecksSerializer(
                {"bottleneck": wip.bottleneck(stages), "stages": stages}
            ).data
        )
