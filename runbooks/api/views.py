"""Production endpoints of the mobile contract: work orders, stages, assignments
and metrics; the control UI's gate actions. (Stage issues are exceptions:
``exceptions.api.views``.)

Views parse input, call one service (writes) or selector (reads) and serialize;
every rule (transitions, gates, stage order, assignment, validation beyond
shape) lives in ``runbooks.services``. Who may call
what is declared in ``bpmos/access.py``. URL ids arrive as strings (``re_path``
has no converters); views hand services ints, which their audit records keep.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from bpmos.listrows import ValuesListMixin
from bpmos.views import ApiViewMixin, BpmosAPIView
from runbooks import selectors, services
from runbooks.api import serializers as s
from runbooks.filters import StageFilterSet, WorkOrderFilterSet

_WORK_ORDER_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Work order id."
)
_STAGE_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Work-order stage id."
)
_USER_ID = OpenApiParameter(
    "user_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="User id."
)


def _stage_response(stage_id: int) -> Response:
    """The stage as it now stands, with its assignees."""
    return Response(
        s.WorkOrderStageSerializer(selectors.stage_get(stage_id=stage_id)).data
    )


# --- work orders -------------------------------------------------------------------


@extend_schema(tags=["work orders"])
class WorkOrderListView(ValuesListMixin, ApiViewMixin, generics.ListAPIView):
    """Work orders, newest planned start first; filter, search and order them.
    The page is read as ``values()`` rows (``bpmos.listrows``), printed as
    ``WorkOrderSerializer`` prints them."""

    queryset = selectors.work_order_list()
    serializer_class = s.WorkOrderSerializer
    values_fields = s.WORK_ORDER_ROW_FIELDS
    values_times = s.WORK_ORDER_ROW_TIMES
    kept_count = selectors.WORK_ORDERS_COUNTED
    compiled_pages = True
    filterset_class = WorkOrderFilterSet
    search_fields = ["product_code", "lot_no"]
    ordering_fields = [
        "id",
        "planned_start",
        "planned_end",
        "created_at",
        "status",
        "qty",
    ]

    def shape_rows(self, rows):
        return s.work_order_rows(rows)

    @extend_schema(
        request=s.WorkOrderCreateSerializer,
        responses={201: s.WorkOrderDetailSerializer},
    )
    def post(self, request):
        """Release a work order; its stages are created from the runbook.

        Without ``runbook`` the plant's default manufacturing runbook is used.
        400 (nothing created) unless qty > 0 and planned_start < planned_end.
        """
        values = self.validated(s.WorkOrderCreateSerializer)
        work_order = services.work_order_create(
            product_code=values["product_code"],
            lot_no=values["lot_no"],
            qty=values["qty"],
            planned_start=values["planned_start"],
            planned_end=values["planned_end"],
            runbook_slug=values.get("runbook") or None,
            actor=request.user,
        )
        detail = selectors.work_order_get(work_order_id=work_order.pk)
        return Response(
            s.WorkOrderDetailSerializer(detail).data, status=status.HTTP_201_CREATED
        )


@extend_schema(tags=["work orders"], parameters=[_WORK_ORDER_ID])
class WorkOrderDetailView(generics.RetrieveAPIView):
    """One work order with its stages (in runbook order) and their assignees."""

    queryset = selectors.work_order_detail_list()
    serializer_class = s.WorkOrderDetailSerializer


@extend_schema(tags=["work orders"], parameters=[_WORK_ORDER_ID])
class WorkOrderStagesView(BpmosAPIView):
    """The stages of one work order, in runbook order (a plain list: a work
    order has as many stages as its runbook, a bounded few)."""

    @extend_schema(responses={200: s.WorkOrderStageSerializer(many=True)})
    def get(self, request, pk: int):
        stages = selectors.work_order_stage_list(work_order_id=int(pk))
        return self.respond(s.WorkOrderStageSerializer, stages, many=True)


@extend_schema(tags=["work orders"], parameters=[_WORK_ORDER_ID])
class WorkOrderCancelView(BpmosAPIView):
    """Cancel a work order that is not finished (409 if it is); needs a reason."""

    @extend_schema(request=s.ReasonSerializer, responses={200: s.WorkOrderSerializer})
    def post(self, request, pk: int):
        data = self.validated(s.ReasonSerializer)
        work_order = services.work_order_cancel(
            work_order_id=int(pk),
            reason=data["reason"],
            actor=request.user,
        )
        return self.respond(s.WorkOrderSerializer, work_order)


@extend_schema(tags=["metrics"], parameters=[_WORK_ORDER_ID])
class WorkOrderMetricsView(BpmosAPIView):
    """Progress and timing of one work order (full definitions: docs/metrics.md).

    * ``stages_total``, ``stages_done``, ``stages_on_time``: counts of its stages.
    * ``delay_minutes``: max(0, (completed_at, or now while open) - planned_end);
      null for a cancelled work order.
    * ``efficiency_score``: 100 * sum of planned minutes / sum of actual minutes
      over its done stages that were timed (actual at least 1 minute), capped
      at 200, 1 decimal; null while none is. Above 100 is faster than planned.
    * ``on_time_percentage``: 100 * done stages on time / done stages, 1 decimal;
      null while none is done.
    """

    @extend_schema(responses={200: s.WorkOrderMetricsSerializer})
    def get(self, request, pk: int):
        return Response(selectors.work_order_metrics(work_order_id=int(pk)).as_dict())


# --- stages ------------------------------------------------------------------------


@extend_schema(tags=["stages"])
class StageListView(generics.ListAPIView):
    """Work-order stages; a worker's own with ``?assigned_to=me``."""

    queryset = selectors.stage_list()
    serializer_class = s.WorkOrderStageSerializer
    filterset_class = StageFilterSet
    search_fields = ["stage_name"]
    ordering_fields = ["id", "planned_start", "planned_end", "status", "position"]


@extend_schema(tags=["stages"], parameters=[_STAGE_ID])
class StageDetailView(generics.RetrieveAPIView):
    """One work-order stage with its assignees."""

    queryset = selectors.stage_list()
    serializer_class = s.WorkOrderStageSerializer


@extend_schema(tags=["metrics"], parameters=[_STAGE_ID])
class StageMetricsView(BpmosAPIView):
    """Timing of one stage (full definitions: docs/metrics.md).

    * ``planned_minutes``: planned_end - planned_start.
    * ``actual_minutes``: (actual_end, or now while running or held) -
      actual_start; null before it starts. Time on hold counts.
    * ``delay_minutes``: max(0, (actual_end if done, else now) - planned_end):
      how late it finished, or how late it already is; 0 when on time.
    * ``efficiency_score``: 100 * planned_minutes / actual_minutes for a done
      stage timed at least 1 minute, capped at 200, 1 decimal; null otherwise.
    * ``on_time``: actual_end <= planned_end for a done stage; null otherwise.
    """

    @extend_schema(responses={200: s.StageMetricsSerializer})
    def get(self, request, pk: int):
        return Response(selectors.stage_metrics(stage_id=int(pk)).as_dict())


class _StageMoveView(BpmosAPIView):
    """POST with no body: one stage move through one service."""

    @staticmethod
    def move(*, stage_id: int, actor) -> None:
        raise NotImplementedError

    @extend_schema(request=None, responses={200: s.WorkOrderStageSerializer})
    def post(self, request, pk: int):
        self.move(stage_id=int(pk), actor=request.user)
        return _stage_response(pk)


@extend_schema(tags=["stages"], parameters=[_STAGE_ID])
class StageStartView(_StageMoveView):
    """Start a planned stage. 403 ``not_assigned`` unless the caller is assigned
    (or a supervisor); 409 if an earlier stage is not done, a gate is locked,
    the work order is closed, or the stage is not planned."""

    move = staticmethod(services.stage_start)


@extend_schema(tags=["stages"], parameters=[_STAGE_ID])
class StageDoneView(_StageMoveView):
    """Finish a stage in progress; 409 while any of its gates is not Open. The
    last stage done completes the work order."""

    move = staticmethod(services.stage_finish)


@extend_schema(tags=["stages"], parameters=[_STAGE_ID])
class StageHoldView(BpmosAPIView):
    """Put a planned or running stage on hold, with a reason."""

    @extend_schema(
        request=s.ReasonSerializer, responses={200: s.WorkOrderStageSerializer}
    )
    def post(self, request, pk: int):
        data = self.validated(s.ReasonSerializer)
        services.stage_hold(stage_id=int(pk), reason=data["reason"], actor=request.user)
        return _stage_response(pk)


@extend_schema(tags=["stages"], parameters=[_STAGE_ID])
class StageResumeView(_StageMoveView):
    """Resume a held stage: back in progress if it had started, else planned."""

    move = staticmethod(services.stage_resume)


# --- assignments -------------------------------------------------------------------


@extend_schema(tags=["stages"], parameters=[_STAGE_ID])
class StageAssignmentsView(BpmosAPIView):
    """Who is assigned to a stage (a plain list); planners assign."""

    @extend_schema(responses={200: s.StageAssignmentSerializer(many=True)})
    def get(self, request, pk: int):
        assignments = selectors.stage_assignment_list(stage_id=int(pk))
        return self.respond(s.StageAssignmentSerializer, assignments, many=True)

    @extend_schema(
        request=s.StageAssignmentCreateSerializer,
        responses={201: s.StageAssignmentSerializer},
    )
    def post(self, request, pk: int):
        """Assign a user to the stage. Idempotent: assigning someone already
        assigned answers the existing assignment (and audits nothing new)."""
        data = self.validated(s.StageAssignmentCreateSerializer)
        assignment = services.stage_assign(
            stage_id=int(pk), user_id=data["user_id"], actor=request.user
        )
        return Response(
            s.StageAssignmentSerializer(assignment).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["stages"], parameters=[_STAGE_ID, _USER_ID])
class StageAssignmentDetailView(BpmosAPIView):
    """Remove a user's assignment from a stage (404 if they are not assigned)."""

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int, user_id: int):
        services.stage_unassign(
            stage_id=int(pk), user_id=int(user_id), actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- gates (control-UI contract, group II) ------------------------------------------


class GateActionView(BpmosAPIView):
    """Open, close or lock a gate (supervisors; locking needs a reason).

    Setting a gate to the state it is already in is a 409.
    """

    gate_action = ""  # "open" | "close" | "lock", set per route

    @extend_schema(
        tags=["gates"], request=s.GateActionSerializer, responses=s.GateSerializer
    )
    def post(self, request, pk: int):
        body = self.validated(s.GateActionSerializer)
        gate = services.gate_set(
            gate_id=int(pk),
            action=self.gate_action,
            reason=body.get("reason", ""),
            password=body.get("password"),
            actor=request.user,
        )
        return self.respond(s.GateSerializer, gate)
