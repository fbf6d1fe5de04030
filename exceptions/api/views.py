"""Exceptions for the control UI: list, detail, acknowledge, resolve; and a
runbook's active exceptions. Thin: reads come from ``exceptions.selectors``,
writes from ``exceptions.services``.
"""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.filters import SearchFilter
from rest_framework.response import Response
from rest_framework.views import APIView

from bpmos.errors import NotFound
from exceptions import selectors, services
from exceptions.api import serializers as s
from exceptions.api.filters import ExceptionFilterSet
from runbooks import controltower

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


class ExceptionDetailView(APIView):
    """One exception: its resolution context and its escalation path."""

    @extend_schema(
        tags=["exceptions"],
        parameters=[EXCEPTION_ID],
        responses=s.ExceptionDetailSerializer,
    )
    def get(self, request, exception_id: str):
        return _detail(_exception_pk(exception_id))


class ExceptionAcknowledgeView(APIView):
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


class ExceptionResolveView(APIView):
    """Resolve an exception with a resolution note (supervisors)."""

    @extend_schema(
        tags=["exceptions"],
        parameters=[EXCEPTION_ID],
        request=s.ResolveSerializer,
        responses=s.ExceptionDetailSerializer,
    )
    def post(self, request, exception_id: str):
        pk = _exception_pk(exception_id)
        body = s.ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.exception_resolve(
            exception_id=pk,
            resolution_note=body.validated_data["resolutionNote"],
            actor=request.user,
        )
        return _detail(pk)


class RunbookExceptionListView(APIView):
    """A runbook's active (unresolved) exceptions, most severe first.

    A plain array, like the runbook's stages: the list is bounded by what is
    open on one runbook.
    """

    @extend_schema(
        tags=["control tower"], responses=s.ExceptionItemSerializer(many=True)
    )
    def get(self, request, runbook_id: str):
        pk = controltower.runbook_id_for(slug=runbook_id)
        rows = selectors.exception_open_list_for_runbook(runbook_id=pk)
        return Response(s.ExceptionItemSerializer(rows, many=True).data)
