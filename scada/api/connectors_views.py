"""The connectors, tags and readings API and the contract's ``/api/scada/test``
and ``/api/scada/poll`` (docs/scada.md). Thin: writes go to
``scada.configuration`` and ``scada.readings``; who may call what is in
``bpmos/access.py``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import filters as drf_filters
from rest_framework import generics, status
from rest_framework.response import Response

from bpmos.errors import NotFound
from bpmos.fields import TIME_SCHEMA
from bpmos.filters import FilterBackend
from bpmos.idempotency import OUTSIDE
from bpmos.textfields import NOT_BLANK_PATTERN
from bpmos.views import ApiViewMixin, BpmosAPIView
from scada import configuration, readings
from scada.api import connectors_serializers as s
from scada.api.connectors_filters import (
    ConnectorFilterSet,
    OrderingFilter,
    ReadingFilterSet,
    TagFilterSet,
)
from scada.models import Connector, ScadaReading, Tag

# Named as the schema's path template names it ({id}: drf-spectacular shows
# a ``pk`` group as ``id``); a parameter named ``pk`` was a second, phantom one.
# search, a strict ordering (unknown fields are a 400), the FilterSet.
_LIST_FILTERS = [FilterBackend, drf_filters.SearchFilter, OrderingFilter]

_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The id."
)


def _partial(view: BpmosAPIView, serializer_class) -> dict:
    serializer = serializer_class(data=view.request.data, partial=True)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _connector(pk: int) -> Connector:
    connector = Connector.objects.filter(pk=pk).first()
    if connector is None:
        raise NotFound(f"Connector {pk} does not exist.")
    return connector


def _tag(pk: int) -> Tag:
    tag = Tag.objects.filter(pk=pk).first()
    if tag is None:
        raise NotFound(f"Tag {pk} does not exist.")
    return tag


# --- connectors ---------------------------------------------------------------


@extend_schema(tags=["scada"])
class ConnectorListView(ApiViewMixin, generics.ListAPIView):
    """Connectors by name; filter by ``kind``, ``enabled``, ``mode``,
    ``comm_state``; ``search`` matches the name and endpoint."""

    queryset = Connector.objects.order_by("name", "id")
    serializer_class = s.ConnectorSerializer
    filterset_class = ConnectorFilterSet
    filter_backends = _LIST_FILTERS
    search_fields = ["name", "endpoint"]
    ordering_fields = ["name", "id", "kind", "updated_at"]

    @extend_schema(
        request=s.ConnectorWriteSerializer, responses={201: s.ConnectorSerializer}
    )
    def post(self, request):
        """Configure a connector (admins). The endpoint must fit the kind
        (``opc.tcp://`` for OPC UA, ``http(s)://`` for a CMMS or LIMS)."""
        values = self.validated(s.ConnectorWriteSerializer)
        connector = configuration.connector_create(actor=request.user, **values)
        return self.respond(
            s.ConnectorSerializer, connector, status=status.HTTP_201_CREATED
        )


@extend_schema(tags=["scada"], parameters=[_ID])
class ConnectorDetailView(BpmosAPIView):
    """One connector; change only what is sent; delete it with its tags."""

    @extend_schema(responses=s.ConnectorSerializer)
    def get(self, request, pk: int):
        return self.respond(s.ConnectorSerializer, _connector(int(pk)))

    @extend_schema(request=s.ConnectorWriteSerializer, responses=s.ConnectorSerializer)
    def patch(self, request, pk: int):
        changes = _partial(self, s.ConnectorWriteSerializer)
        connector = configuration.connector_update(
            connector_id=int(pk), actor=request.user, **changes
        )
        return self.respond(s.ConnectorSerializer, connector)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        configuration.connector_delete(connector_id=int(pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["scada"], parameters=[_ID])
class ConnectorBrowseView(BpmosAPIView):
    """The OPC UA server's variables under Objects (node id, browse path, data
    type, and the tag already mapped to each), to map tags without typing.
    503 ``connector_unavailable`` when the server cannot be reached."""

    # Reads the OPC UA server outside any transaction.
    idempotency = OUTSIDE

    @extend_schema(
        request=s.BrowseRequestSerializer,
        responses=s.BrowseNodeSerializer(many=True),
    )
    def post(self, request, pk: int):
        body = self.validated(s.BrowseRequestSerializer)
        nodes = readings.connector_browse(
            connector_id=int(pk), actor=request.user, limit=body["limit"]
        )
        return self.respond(s.BrowseNodeSerializer, nodes, many=True)


# --- tags ---------------------------------------------------------------------


@extend_schema(tags=["scada"])
class TagListView(ApiViewMixin, generics.ListAPIView):
    """Tags by name; filter by ``connector``, ``machine``, ``kind``,
    ``enabled``, ``area``; ``search`` matches the name and node id."""

    queryset = Tag.objects.order_by("tag_name", "id")
    serializer_class = s.TagSerializer
    filterset_class = TagFilterSet
    filter_backends = _LIST_FILTERS
    search_fields = ["tag_name", "node_id"]
    ordering_fields = ["tag_name", "id", "updated_at"]

    @extend_schema(request=s.TagWriteSerializer, responses={201: s.TagSerializer})
    def post(self, request):
        """Map a node of an OPC UA connector to a tag (admins)."""
        values = self.validated(s.TagWriteSerializer)
        tag = configuration.tag_create(actor=request.user, **values)
        return self.respond(s.TagSerializer, tag, status=status.HTTP_201_CREATED)


@extend_schema(tags=["scada"], parameters=[_ID])
class TagDetailView(BpmosAPIView):
    """One tag; change only what is sent; delete it (its readings stay)."""

    @extend_schema(responses=s.TagSerializer)
    def get(self, request, pk: int):
        return self.respond(s.TagSerializer, _tag(int(pk)))

    @extend_schema(request=s.TagWriteSerializer, responses=s.TagSerializer)
    def patch(self, request, pk: int):
        changes = _partial(self, s.TagWriteSerializer)
        tag = configuration.tag_update(tag_id=int(pk), actor=request.user, **changes)
        return self.respond(s.TagSerializer, tag)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk: int):
        configuration.tag_delete(tag_id=int(pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- readings -----------------------------------------------------------------


@extend_schema(
    tags=["scada"],
    parameters=[
        OpenApiParameter(
            "tag",
            OpenApiTypes.STR,
            description="Tag names, comma-separated (e.g. line1.temp,line1.good).",
            pattern=NOT_BLANK_PATTERN,
            allow_blank=False,
        ),
        OpenApiParameter(
            "from", TIME_SCHEMA, description="From this time (inclusive)."
        ),
        OpenApiParameter(
            "to", TIME_SCHEMA, description="Before this time (exclusive)."
        ),
    ],
)
class ReadingListView(generics.ListAPIView):
    """Normalized readings, newest first; filter by ``tag``, ``connector``,
    ``from``, ``to``, ``quality``, ``alarm_state``."""

    queryset = ScadaReading.objects.order_by("-timestamp", "-id")
    serializer_class = s.ReadingSerializer
    filterset_class = ReadingFilterSet
    # Newest first, always: no ordering and no search parameter (they were
    # shown in the schema and ignored).
    filter_backends = [FilterBackend]


# --- the contract's actions ---------------------------------------------------


@extend_schema(tags=["scada"])
class ScadaTestView(BpmosAPIView):
    """Try a connector's link: 200 either way, ``ok`` says whether it worked
    and ``error`` why not (supervisors and admins)."""

    # Reads the connector's server outside any transaction.
    idempotency = OUTSIDE

    @extend_schema(request=s.ConnectorRefSerializer, responses=s.TestResultSerializer)
    def post(self, request):
        body = self.validated(s.ConnectorRefSerializer)
        result = readings.connector_test(
            connector_id=body["connector"], actor=request.user
        )
        return self.respond(s.TestResultSerializer, result)


@extend_schema(tags=["scada"])
class ScadaPollView(BpmosAPIView):
    """Read an OPC UA connector's enabled tags once and store the readings:
    fetch, normalize, store (supervisors and admins). 409 when the connector
    is disabled; 503 ``connector_unavailable`` when its server cannot be read."""

    # Reads the OPC UA server outside any transaction.
    idempotency = OUTSIDE

    @extend_schema(request=s.ConnectorRefSerializer, responses=s.PollResultSerializer)
    def post(self, request):
        body = self.validated(s.ConnectorRefSerializer)
        result = readings.connector_poll(
            connector_id=body["connector"], actor=request.user
        )
        return self.respond(s.PollResultSerializer, result)
