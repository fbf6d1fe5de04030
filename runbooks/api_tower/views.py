"""Control-UI runbook endpoints (contract group II) and the gate actions.

Reads come from ``runbooks.controltower`` (computed, never stored); gate writes
go through ``runbooks.services.gate_set``.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from runbooks import controltower, services
from runbooks.api_tower import serializers as s


class ControlTowerRunbookListView(APIView):
    """Every active runbook's computed status, current stage and progress.

    A plain array (the contract's "all active runbooks"), ordered by id.
    """

    @extend_schema(
        tags=["control tower"], responses=s.RunbookSummarySerializer(many=True)
    )
    def get(self, request):
        summaries = controltower.runbook_summary_list()
        return Response(s.RunbookSummarySerializer(summaries, many=True).data)


class RunbookDetailView(APIView):
    """One runbook: its summary, template facts, work-order counts and context."""

    @extend_schema(tags=["control tower"], responses=s.RunbookDetailSerializer)
    def get(self, request, runbook_id: str):
        detail = controltower.runbook_detail_get(slug=runbook_id)
        return Response(s.RunbookDetailSerializer(detail).data)


class RunbookStageListView(APIView):
    """The runbook's stages in order, each with its aggregated status and gate."""

    @extend_schema(tags=["control tower"], responses=s.StageDetailSerializer(many=True))
    def get(self, request, runbook_id: str):
        stages = controltower.runbook_stage_list(slug=runbook_id)
        return Response(s.StageDetailSerializer(stages, many=True).data)


class GateActionView(APIView):
    """Open, close or lock a gate (supervisors; locking needs a reason).

    Setting a gate to the state it is already in is a 409.
    """

    gate_action = ""  # "open" | "close" | "lock", set per route

    @extend_schema(
        tags=["gates"], request=s.GateActionSerializer, responses=s.GateSerializer
    )
    def post(self, request, pk: int):
        body = s.GateActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        gate = services.gate_set(
            gate_id=int(pk),
            action=self.gate_action,
            reason=body.validated_data.get("reason", ""),
            actor=request.user,
        )
        return Response(s.GateSerializer(gate).data)
