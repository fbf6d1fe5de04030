"""The role dashboards: ``GET /api/dashboard/{role}/summary`` and
``/attention`` (thin: the read models are ``bpmos.dashboards.roles`` and
``bpmos.dashboards.attention``; who may read whose is
``bpmos.access.DASHBOARD_READERS``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from bpmos import access
from bpmos.dashboards import attention, roles
from bpmos.dashboards.api import roles_serializers as s
from bpmos.errors import Forbidden, NotFound
from bpmos.roles import Role
from bpmos.views import BpmosAPIView

ROLE = OpenApiParameter(
    "role",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=list(Role.values),
    description="The dashboard's role slug. Unknown: 404; not yours to read: 403.",
)


def _dashboard_role(request, role: str) -> str:
    """``role`` if it names a dashboard the caller may read; else 404 or 403."""
    if role not in Role.values:
        raise NotFound(
            f"There is no dashboard for the role {role[:40]!r}.",
            code="not_found",
            details={"role": list(Role.values)},
        )
    if not access.may_read_dashboard(request.user.role, role):
        raise Forbidden(
            "Your role may not read this dashboard.", code="permission_denied"
        )
    return role


class RoleSummaryView(BpmosAPIView):
    """The role's KPI cards (an operator's shift and assigned stages, the plant
    head's bottleneck by stage and OEE, the auditor's compliance score and audit
    chain state, the admin's connector and user health). A role reads its own
    dashboard and those of the roles below it (docs/dashboards.md)."""

    @extend_schema(
        tags=["dashboard"],
        operation_id="dashboard_role_summary",
        parameters=[ROLE],
        responses={200: s.RoleSummarySerializer},
    )
    def get(self, request, role: str):
        role = _dashboard_role(request, role)
        return self.respond(
            s.RoleSummarySerializer, roles.role_summary(role=role, user=request.user)
        )


class RoleAttentionView(BpmosAPIView):
    """What needs action now in the role's list (blocked stages, gates awaiting
    approval, unacknowledged alarms, escalated exceptions, holds to release,
    returns to approve, ...), most severe first, each with a link."""

    @extend_schema(
        tags=["dashboard"],
        operation_id="dashboard_role_attention",
        parameters=[ROLE],
        responses={200: s.AttentionListSerializer},
    )
    def get(self, request, role: str):
        role = _dashboard_role(request, role)
        # Written out by the read model (the serializer's shape, the schema).
        return Response(attention.attention_body(role=role, user=request.user))
