"""Inventory endpoints: the control-UI contract's (group IV) and what the UI and
the other areas need beyond it (docs/inventory.md).

Views parse input, call one service (writes) or selector (reads) and serialize;
every rule lives in ``inventory.services``. Who may call what is declared in
``bpmos/access.py``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.filters import SearchFilter
from rest_framework.response import Response

from bpmos.filters import FilterBackend
from bpmos.listrows import ValuesListMixin
from bpmos.views import BpmosAPIView
from inventory import selectors, services
from inventory.api import serializers as s
from inventory.filters import ItemFilterSet, ReservationFilterSet

_ITEM_ID = OpenApiParameter(
    "item_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description='Item id, e.g. "CELL-2026-1001".',
)
_RESERVATION_ID = OpenApiParameter(
    "pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="Reservation id."
)


def _item_response(item_code: str) -> Response:
    """The item as it now stands, with its active reservations."""
    return Response(
        s.ItemDetailSerializer(selectors.item_get(item_code=item_code)).data
    )


# --- reads -------------------------------------------------------------------------


@extend_schema(tags=["inventory"])
class CategorySummaryView(BpmosAPIView):
    """Every category with its in-stock items counted per status (a plain array,
    in the plant's category order)."""

    @extend_schema(responses=s.CategorySummarySerializer(many=True))
    def get(self, request):
        categories = selectors.category_summary_list()
        return self.respond(s.CategorySummarySerializer, categories, many=True)


@extend_schema(tags=["inventory"])
class ItemListView(ValuesListMixin, generics.ListAPIView):
    """Items in stock, in payload D, by id; filter by ``category``, ``status``,
    ``sku``, ``location``; ``search`` matches id, SKU and batch reference.
    The page is read as ``values()`` rows (``bpmos.listrows``), printed as
    ``ItemSerializer`` prints them."""

    queryset = selectors.item_list()
    serializer_class = s.ItemSerializer
    values_fields = s.ITEM_ROW_FIELDS
    kept_count = selectors.ITEMS_COUNTED
    compiled_pages = True
    filterset_class = ItemFilterSet
    filter_backends = [FilterBackend, SearchFilter]
    search_fields = ["code", "sku", "batch_ref"]

    def shape_rows(self, rows):
        return s.item_rows(rows)


@extend_schema(tags=["inventory"], parameters=[_ITEM_ID])
class ItemDetailView(BpmosAPIView):
    """One item: payload D, then its quantities, category, location id and
    active reservations (even once all of it was issued)."""

    @extend_schema(responses=s.ItemDetailSerializer)
    def get(self, request, item_id: str):
        return _item_response(item_id)


@extend_schema(
    tags=["inventory"],
    parameters=[
        OpenApiParameter("sku", OpenApiTypes.STR, description="One SKU (any case)."),
        OpenApiParameter(
            "location",
            OpenApiTypes.STR,
            description="A location id; a zone or rack includes what sits under it.",
        ),
    ],
)
class StockLevelListView(generics.ListAPIView):
    """In-stock quantities per SKU and location, by SKU then location."""

    serializer_class = s.StockLevelSerializer
    filter_backends: list = []

    def get_queryset(self):
        params = self.request.query_params if self.request else {}
        return selectors.stock_level_groups(
            sku=params.get("sku") or None, location=params.get("location") or None
        )

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        levels = selectors.stock_levels(page)
        return self.get_paginated_response(self.get_serializer(levels, many=True).data)


@extend_schema(tags=["inventory"])
class LocationListView(generics.ListAPIView):
    """Zones, racks and bins, by id; ``search`` matches id and name."""

    queryset = selectors.location_list()
    serializer_class = s.LocationSerializer
    filter_backends = [SearchFilter]
    search_fields = ["code", "name"]


@extend_schema(tags=["inventory"])
class ReservationListView(generics.ListAPIView):
    """Reservations, newest first; filter by ``itemId``, ``workOrderId``,
    ``dispatchRef``, ``status``."""

    queryset = selectors.reservation_list()
    serializer_class = s.ReservationSerializer
    filterset_class = ReservationFilterSet
    filter_backends = [FilterBackend]


# --- reservations ------------------------------------------------------------------


@extend_schema(tags=["inventory"], parameters=[_ITEM_ID])
class ItemReserveView(BpmosAPIView):
    """Reserve a quantity of an item for a work order or a dispatch.

    409 ``stock_not_available`` (Hold or Blocked), ``insufficient_stock`` (more
    than is available), ``work_order_closed``; 400 with field details otherwise.
    """

    @extend_schema(
        request=s.ItemReserveSerializer, responses={201: s.ReservationSerializer}
    )
    def post(self, request, item_id: str):
        values = self.validated(s.ItemReserveSerializer)
        reservation = services.item_reserve(
            item_code=item_id,
            quantity=values["quantity"],
            work_order_id=values.get("workOrderId"),
            dispatch_ref=values.get("dispatchRef", ""),
            actor=request.user,
        )
        return Response(
            s.ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED
        )


@extend_schema(tags=["inventory"], parameters=[_RESERVATION_ID])
class ReservationReleaseView(BpmosAPIView):
    """Release an active reservation (optional ``reason``); 409 otherwise."""

    @extend_schema(
        request=s.ReservationReleaseSerializer, responses=s.ReservationSerializer
    )
    def post(self, request, pk: str):
        data = self.validated(s.ReservationReleaseSerializer)
        reservation = services.reservation_release(
            reservation_id=int(pk),
            reason=data["reason"],
            actor=request.user,
        )
        return self.respond(s.ReservationSerializer, reservation)


@extend_schema(tags=["inventory"], parameters=[_RESERVATION_ID])
class ReservationConsumeView(BpmosAPIView):
    """Issue a reservation's quantity to its work order or dispatch; 409 while
    the item is on Hold or Blocked or the reservation is not active."""

    @extend_schema(request=None, responses=s.ReservationSerializer)
    def post(self, request, pk: str):
        reservation = services.reservation_consume(
            reservation_id=int(pk), actor=request.user
        )
        return self.respond(s.ReservationSerializer, reservation)


# --- item actions ------------------------------------------------------------------


@extend_schema(tags=["inventory"], parameters=[_ITEM_ID])
class ItemIssueView(BpmosAPIView):
    """Issue unreserved stock (to the line, a lab, scrap); 409 beyond what is
    available or while the item is on Hold or Blocked."""

    @extend_schema(request=s.ItemIssueSerializer, responses=s.ItemDetailSerializer)
    def post(self, request, item_id: str):
        data = self.validated(s.ItemIssueSerializer)
        services.item_issue(
            item_code=item_id,
            quantity=data["quantity"],
            reason=data["reason"],
            actor=request.user,
        )
        return _item_response(item_id)


class _ReasonActionView(BpmosAPIView):
    """POST {reason}: one status change through one service."""

    @staticmethod
    def act(*, item_code: str, reason: str, actor) -> None:
        raise NotImplementedError

    @extend_schema(request=s.ItemReasonSerializer, responses=s.ItemDetailSerializer)
    def post(self, request, item_id: str):
        data = self.validated(s.ItemReasonSerializer)
        self.act(item_code=item_id, reason=data["reason"], actor=request.user)
        return _item_response(item_id)


@extend_schema(tags=["inventory"], parameters=[_ITEM_ID])
class ItemHoldView(_ReasonActionView):
    """Put an item on Hold with a reason (a Blocked one too, for re-inspection);
    409 if it is already on Hold."""

    act = staticmethod(services.item_hold)


@extend_schema(tags=["inventory"], parameters=[_ITEM_ID])
class ItemBlockView(_ReasonActionView):
    """Block an item with a reason; 409 if it is already Blocked."""

    act = staticmethod(services.item_block)


@extend_schema(tags=["inventory"], parameters=[_ITEM_ID])
class ItemReleaseHoldView(BpmosAPIView):
    """Release a held item back to Good; 409 unless it is on Hold."""

    @extend_schema(request=None, responses=s.ItemDetailSerializer)
    def post(self, request, item_id: str):
        services.item_release_hold(item_code=item_id, actor=request.user)
        return _item_response(item_id)


@extend_schema(tags=["inventory"], parameters=[_ITEM_ID])
class ItemMoveView(BpmosAPIView):
    """Move a whole item to another location, with a reason; recorded as a
    stock movement. 400 for an unknown or inactive location; 409
    ``already_at_location`` for the one it is at."""

    @extend_schema(request=s.ItemMoveSerializer, responses=s.ItemDetailSerializer)
    def post(self, request, item_id: str):
        data = self.validated(s.ItemMoveSerializer)
        services.item_move(
            item_code=item_id,
            location_code=data["locationId"],
            reason=data["reason"],
            actor=request.user,
        )
        return _item_response(item_id)
