"""Control-UI endpoints that compose several apps: the control tower's runbook
reads (contract group II) and a line with its runbook's status (group V).

They come from ``bpmos.dashboards.controltower`` (computed, never stored). The
gate actions of the same contract group are runbook writes: ``runbooks.api``.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from bpmos.dashboards import controltower, line_status
from bpmos.dashboards.api_tower import serializers as s
from bpmos.views import BpmosAPIView
from lines.api_tower import serializers as line_s
from lines.api_tower.views import LINE_ID


class ControlTowerRunbookListView(BpmosAPIView):
    """Every active runbook's computed status, current stage and progress.

    A plain array (the contract's "all active runbooks"), ordered by id.
    """

    @extend_schema(
        tags=["control tower"], responses=s.RunbookSummarySerializer(many=True)
    )
    def get(self, request):
        summaries = controltower.runbook_summary_list()
        return self.respond(s.RunbookSummarySerializer, summaries, many=True)


class RunbookDetailView(BpmosAPIView):
    """One runbook: its summary, template facts, work-order counts and context."""

    @extend_schema(tags=["control tower"], responses=s.RunbookDetailSerializer)
    def get(self, request, runbook_id: str):
        detail = controltower.runbook_detail_get(slug=runbook_id)
        return self.respond(s.RunbookDetailSerializer, detail)


class RunbookStageListView(BpmosAPIView):
    """The runbook's stages in order, each with its aggregated status and gate."""

    @extend_schema(tags=["control tower"], responses=s.StageDetailSerializer(many=True))
    def get(self, request, runbook_id: str):
        stages = controltower.runbook_stage_list(slug=runbook_id)
        return self.respond(s.StageDetailSerializer, stages, many=True)


class LineDetailView(BpmosAPIView):
    """One line: payload C with its runbook association."""

    @extend_schema(
        tags=["lines"], parameters=[LINE_ID], responses=line_s.LineDetailSerializer
    )
    def get(self, request, line_id: str):
        return Response(
            line_s.LineDetailSerializer(
                line_status.line_with_runbook_get(slug=line_id)
            ).data
        )
