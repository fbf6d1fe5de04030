"""Endpoints of the read models in ``bpmos.dashboards`` (thin: one read model
call, one serializer)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from bpmos.dashboards import dispatch
from bpmos.views import BpmosAPIView
from passports.dispatch.api.serializers import DashboardStatusSerializer


class DashboardStatusView(BpmosAPIView):
    """Products live/past/dispatchable/on hold, machines by state, today's moves."""

    @extend_schema(tags=["dispatch"], responses=DashboardStatusSerializer)
    def get(self, request):
        return Response(DashboardStatusSerializer(dispatch.dispatch_status()).data)
