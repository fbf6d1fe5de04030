"""Maintenance work orders for the CMMS: create (the contract's
``POST /api/work-orders/create``), list, detail with the delivery log, retry.
Thin: writes go through ``scada.maintenance``'s services."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status

from bpmos.idempotency import OUTSIDE
from bpmos.jsonfields import read_body
from bpmos.views import BpmosAPIView
from scada import maintenance
from scada.api import maintenance_serializers as s
from scada.api.maintenance_filters import MaintenanceWorkOrderFilterSet

TAGS = ["maintenance work orders"]
_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Work order id."
)


@extend_schema(tags=TAGS)
class WorkOrderCreateView(BpmosAPIView):
    """Store a maintenance work order (the contract's normalized schema) and
    queue it for the CMMS. 409 ``work_order_exists`` when its alarm already has
    an open one."""

    @extend_schema(
        request=s.MaintenanceWorkOrderCreateSerializer,
        responses={201: s.MaintenanceWorkOrderDetailSerializer},
    )
    def post(self, request):
        data = self.validated(s.MaintenanceWorkOrderCreateSerializer)
        created = maintenance.work_order_create(data=dict(data), actor=request.user)
        # Read back: a delivery made right after commit shows in the answer.
        work_order = maintenance.work_order_get(work_order_id=created.pk)
        return self.respond(
            s.MaintenanceWorkOrderDetailSerializer,
            work_order,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=TAGS)
class MaintenanceWorkOrderListView(generics.ListAPIView):
    """Maintenance work orders, newest first, with their delivery state;
    filter by ``delivery_state``, ``priority``, ``source_alarm``."""

    queryset = maintenance.work_order_list()
    serializer_class = s.MaintenanceWorkOrderSerializer
    filterset_class = MaintenanceWorkOrderFilterSet
    filter_backends = [DjangoFilterBackend]


@extend_schema(tags=TAGS, parameters=[_ID])
class MaintenanceWorkOrderDetailView(BpmosAPIView):
    """One maintenance work order with its delivery log (every attempt)."""

    @extend_schema(responses=s.MaintenanceWorkOrderDetailSerializer)
    def get(self, request, pk: int):
        work_order = maintenance.work_order_get(work_order_id=int(pk))
        return self.respond(s.MaintenanceWorkOrderDetailSerializer, work_order)


@extend_schema(tags=TAGS, parameters=[_ID])
class MaintenanceWorkOrderRetryView(BpmosAPIView):
    """Send a work order that is not in the CMMS yet again, now (after the CMMS,
    its credentials or the data were fixed). 409 once it is sent."""

    # Sends to the CMMS outside any transaction.
    idempotency = OUTSIDE

    @extend_schema(request=None, responses=s.MaintenanceWorkOrderDetailSerializer)
    def post(self, request, pk: int):
        read_body(request)
        maintenance.work_order_retry(work_order_id=int(pk), actor=request.user)
        work_order = maintenance.work_order_get(work_order_id=int(pk))
        return self.respond(s.MaintenanceWorkOrderDetailSerializer, work_order)
