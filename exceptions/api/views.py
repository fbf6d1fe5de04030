"""Exceptions for the control UI: list, detail, acknowledge, resolve; and a
runbook's active exceptions. Stage issues for the mobile app (an issue is an
exception raised on a work-order stage). Thin: reads come from ``exceptions.selectors``,
writes from ``exceptions.services``.
"""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.filters import SearchFilter
from rest_framework.response import Response

from bpmos import access
from bpmos.errors import NotFound
from bpmos.views import BpmosAPIView
from exceptions import selectors, services
from exceptions.api import serializers as s
from exceptions.api.filters import ExceptionFilterSet, IssueFilterSet
from exceptions.models import ExceptionStatus
from runbooks import selectors as runbook_selectors

EXCEPTION_ID = OpenApiParameter(
    "exception_id",
    str,
    OpenApiParameter.PATH,
    description='"EX-001" or the number alone ("1").',
)


def _exception_pk(raw: str) -> int:
    return int(raw.upper().removeprefix("EX-"))


def _detail(pk: int) -> Response:
    exc = selectors.exception_get(exception_id=pk)
    if exc is None:
        raise NotFound(f"Exception EX-{pk:03d} does not exist.")
    return Response(s.ExceptionDetailSerializer(exc).data)


@extend_schema(tags=["exceptions"])
class ExceptionListView(generics.ListAPIView):
    """Every exception, newest first; filter, search the title, order."""

    queryset = selectors.exception_list()
    serializer_class = s.ExceptionItemSerializer
    filterset_class = ExceptionFilterSet
    filter_backends = [DjangoFilterBackend, SearchFilter]
    search_fields = ["title"]


class ExceptionDetailView(BpmosAPIView):
    """One exception: its resolution context and its escalation path."""

    @extend_schema(
        tags=["exceptions"],
        parameters=[EXCEPTION_ID],
        responses=s.ExceptionDetailSerializer,
    )
    def get(self, request, exception_id: str):
        return _detail(_exception_pk(exception_id))


class ExceptionAcknowledgeView(BpmosAPIView):
    """Acknowledge an open exception: it stops escalating."""

    @extend_schema(
        tags=["exceptions"],
        parameters=[EXCEPTION_ID],
        request=None,
        responses=s.ExceptionDetailSerializer,
    )
    def post(self, request, exception_id: str):
        pk = _exception_pk(exception_id)
        services.exception_acknowledge(exception_id=pk, actor=request.user)
        return _detail(pk)


class ExceptionResolveView(BpmosAPIView):
    """Resolve an exception with a resolution note (supervisors)."""

    @extend_schema(
        tags=["exceptions"],
        parameters=[EXCEPTION_ID],
        request=s.ResolveSerializer,
        responses=s.ExceptionDetailSerializer,
    )
    def post(self, request, exception_id: str):
        pk = _exception_pk(exception_id)
        body = self.validated(s.ResolveSerializer)
        services.exception_resolve(
            exception_id=pk,
            resolution_note=body["resolutionNote"],
            actor=request.user,
        )
        return _detail(pk)


class RunbookExceptionListView(BpmosAPIView):
    """A runbook's active (unresolved) exceptions, most severe first.

    A plain array, like the runbook's stages: the list is bounded by what is
    open on one runbook.
    """

    @extend_schema(
        tags=["control tower"], responses=s.ExceptionItemSerializer(many=True)
    )
    def get(self, request, runbook_id: str):
        pk = runbook_selectors.runbook_id_get(slug=runbook_id)
        rows = selectors.exception_open_list_for_runbook(runbook_id=pk)
        return self.respond(s.ExceptionItemSerializer, rows, many=True)


# --- stage issues (mobile contract) -------------------------------------------------

_STAGE_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Work-order stage id."
)
_ISSUE_ID = OpenApiParameter(
    "issue_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Issue id."
)


@extend_schema(tags=["issues"], parameters=[_STAGE_ID])
class StageIssueCreateView(BpmosAPIView):
    """Raise an issue on a stage; it becomes an exception that escalates until
    acknowledged. Anyone on the floor may raise one, assigned or not."""

    @extend_schema(request=s.IssueCreateSerializer, responses={201: s.IssueSerializer})
    def post(self, request, pk: int):
        data = self.validated(s.IssueCreateSerializer)
        issue = services.stage_issue_raise(
            stage_id=int(pk),
            type=data["type"],
            description=data["description"],
            severity=data.get("severity"),
            actor=request.user,
        )
        return self.respond(s.IssueSerializer, issue, status=status.HTTP_201_CREATED)


@extend_schema(tags=["issues"], parameters=[_STAGE_ID])
class StageIssuesView(BpmosAPIView):
    """The issues of one stage, newest first (a plain list)."""

    @extend_schema(responses={200: s.IssueSerializer(many=True)})
    def get(self, request, pk: int):
        issues = selectors.stage_issue_list(stage_id=int(pk))
        return self.respond(s.IssueSerializer, issues, many=True)


@extend_schema(tags=["issues"], parameters=[_STAGE_ID, _ISSUE_ID])
class StageIssueDetailView(BpmosAPIView):
    """Move an issue along open → ack → resolved.

    ``{"status": "ack"}``: anyone on the floor. ``{"status": "resolved",
    "resolution_note": "..."}``: supervisors, plant heads and admins only
    (``ACTIONS["issue-resolve"]`` in bpmos/access.py); the note is required.
    An open issue may be resolved directly; anything else out of order is 409.
    """

    # The PATCH body is read whole (``validated()``): its schema says so.
    patch_is_partial = False

    @extend_schema(request=s.IssueUpdateSerializer, responses={200: s.IssueSerializer})
    def patch(self, request, pk: int, issue_id: int):
        data = self.validated(s.IssueUpdateSerializer)
        target = data["status"]
        if target == ExceptionStatus.RESOLVED:
            access.require_action("issue-resolve", request.user)
        else:
            access.require_action("issue-acknowledge", request.user)
        issue = selectors.stage_issue_get(stage_id=int(pk), issue_id=int(issue_id))
        if target == ExceptionStatus.RESOLVED:
            issue = services.exception_resolve(
                exception_id=issue.pk,
                resolution_note=data["resolution_note"],
                actor=request.user,
            )
        else:
            issue = services.exception_acknowledge(
                exception_id=issue.pk, actor=request.user
            )
        return self.respond(s.IssueSerializer, issue)


@extend_schema(tags=["issues"])
class IssueListView(generics.ListAPIView):
    """Every stage issue, newest first; filter by status, type, severity, stage."""

    queryset = selectors.issue_list()
    serializer_class = s.IssueSerializer
    filterset_class = IssueFilterSet
    search_fields = ["description", "title"]
    ordering_fields = ["id", "created_at", "status", "type"]
