"""Shapes of the inventory API: the control-UI contract's (group IV, payload D)
and the endpoints beyond it, in the same style: camelCase, display enums
("Good", "Hold", "Blocked"), times as "2026-01-15T10:30:00Z".

Track, not trace: no passport, genealogy or warranty field appears here.
Input serializers check shape and type only; the rules (quantity > 0, one of
workOrderId/dispatchRef, known locations, availability) are the services'.
"""

import functools

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import PositiveCountField, choice_labels, utc_datetime
from bpmos.listrows import labels_of
from inventory.models import ItemStatus, LocationKind, ReservationStatus, Unit
from inventory.selectors import item_age

_MAX_INT = 2_147_483_647


# The display enums, named once for the OpenAPI schema (ENUM_NAME_OVERRIDES).
ITEM_STATUSES = choice_labels(ItemStatus)
RESERVATION_STATUSES = choice_labels(ReservationStatus)
LOCATION_KINDS = choice_labels(LocationKind)
UNITS = Unit.values

# --- output ------------------------------------------------------------------------


class CategorySummarySerializer(serializers.Serializer):
    """One category with its in-stock items counted per status."""

    id = serializers.CharField(source="slug", help_text='"cells"')
    name = serializers.CharField(help_text='"Cells"')
    total = serializers.IntegerField(help_text="Items in stock (units or lots).")
    good = serializers.IntegerField()
    hold = serializers.IntegerField()
    blocked = serializers.IntegerField()


class ItemSerializer(serializers.Serializer):
    """Payload D "Inventory Item", exactly."""

    id = serializers.CharField(source="code", help_text='"CELL-2026-1001"')
    sku = serializers.CharField(help_text='"CELL-LFP-21700"')
    location = serializers.CharField(
        source="location.path", help_text='"Zone A - Rack 2"'
    )
    status = serializers.ChoiceField(choices=ITEM_STATUSES, source="get_status_display")
    batchRef = serializers.CharField(source="batch_ref", help_text='"BATCH-INB-102"')
    age = serializers.SerializerMethodField(help_text='Since receipt: "2 days".')

    @extend_schema_field(str)
    def get_age(self, item) -> str:
        # One clock per response, so every row of a page is aged alike.
        now = self.context.setdefault("now", timezone.now())
        return item_age(item.received_at, now=now)


# ``ItemSerializer`` for ``values()`` rows (``bpmos.listrows``): the list
# page's rows without model instances (the item, its location and two parents)
# or a field object per value. A location is at most three deep
# (``Location``), so its path is in the row.
ITEM_ROW_FIELDS = (
    "code",
    "sku",
    "location__name",
    "location__parent__name",
    "location__parent__parent__name",
    "status",
    "batch_ref",
    "received_at",
)


def item_rows(rows: list[dict]) -> list[dict]:
    """What ``ItemSerializer`` prints for the same items (the tests compare
    them), from ``ITEM_ROW_FIELDS`` rows; aged by one clock, as it does."""
    statuses = _item_status_labels()
    now = timezone.now()
    return [
        {
            "id": row["code"],
            "sku": row["sku"],
            "location": " - ".join(
                name
                for name in (
                    row["location__parent__parent__name"],
                    row["location__parent__name"],
                    row["location__name"],
                )
                if name is not None
            ),
            "status": statuses.get(row["status"], row["status"]),
            "batchRef": row["batch_ref"],
            "age": item_age(row["received_at"], now=now),
        }
        for row in rows
    ]


@functools.cache
def _item_status_labels() -> dict:
    return labels_of(ItemSerializer().fields["status"], ItemStatus.choices)


class ItemReservationSerializer(serializers.Serializer):
    """An active reservation, as listed on its item."""

    id = serializers.IntegerField()
    quantity = serializers.IntegerField()
    workOrderId = serializers.IntegerField(source="work_order_id", allow_null=True)
    dispatchRef = serializers.CharField(source="dispatch_ref")
    createdAt = utc_datetime(source="created_at")


class ItemDetailSerializer(ItemSerializer):
    """Payload D, then quantities, category, location id and active reservations."""

    category = serializers.CharField(source="category.slug", help_text='"cells"')
    locationId = serializers.CharField(source="location.code")
    quantity = serializers.IntegerField(help_text="Physically there.")
    unit = serializers.ChoiceField(choices=UNITS)
    reserved = serializers.IntegerField(help_text="Active reservations' total.")
    available = serializers.IntegerField(
        help_text="quantity - reserved while Good; 0 on Hold or Blocked."
    )
    holdReason = serializers.CharField(
        source="hold_reason", help_text="Why it is on Hold or Blocked."
    )
    receivedAt = utc_datetime(source="received_at")
    reservations = ItemReservationSerializer(
        source="active_reservations", many=True, help_text="Active ones, oldest first."
    )


class ReservationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    itemId = serializers.CharField(source="item.code")
    sku = serializers.CharField(source="item.sku")
    quantity = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=RESERVATION_STATUSES, source="get_status_display"
    )
    workOrderId = serializers.IntegerField(source="work_order_id", allow_null=True)
    dispatchRef = serializers.CharField(source="dispatch_ref")
    createdBy = serializers.IntegerField(
        source="created_by_id", allow_null=True, help_text="User id."
    )
    createdAt = utc_datetime(source="created_at")
    closedAt = utc_datetime(
        source="closed_at", allow_null=True, help_text="Released or consumed at."
    )


class StockLevelSerializer(serializers.Serializer):
    """One SKU at one location (definitions: docs/inventory.md)."""

    sku = serializers.CharField()
    category = serializers.CharField()
    location = serializers.CharField(help_text='"Zone A - Rack 2 - Bin 1"')
    locationId = serializers.CharField(source="location_id")
    unit = serializers.ChoiceField(choices=UNITS)
    items = serializers.IntegerField(help_text="Units or lots.")
    quantity = serializers.IntegerField()
    good = serializers.IntegerField()
    hold = serializers.IntegerField()
    blocked = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField(help_text="good - reserved on Good items.")


class LocationSerializer(serializers.Serializer):
    id = serializers.CharField(source="code", help_text='"A-R2"')
    name = serializers.CharField(help_text='"Rack 2"')
    kind = serializers.ChoiceField(choices=LOCATION_KINDS, source="get_kind_display")
    path = serializers.CharField(help_text='"Zone A - Rack 2"')
    parentId = serializers.CharField(
        source="parent.code", allow_null=True, default=None
    )
    isActive = serializers.BooleanField(source="is_active")


# --- input -------------------------------------------------------------------------


class ItemReserveSerializer(serializers.Serializer):
    quantity = PositiveCountField(help_text="At least 1.")
    workOrderId = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=_MAX_INT,
        help_text="The work order it is for; or give dispatchRef.",
    )
    dispatchRef = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The dispatch it is for; or give workOrderId.",
    )


class ItemReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class ReservationReleaseSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=300, required=False, allow_blank=True, default=""
    )


class ItemMoveSerializer(serializers.Serializer):
    locationId = serializers.CharField(max_length=50, help_text='Where to: "B-R1".')
    reason = serializers.CharField(max_length=300)


class ItemIssueSerializer(serializers.Serializer):
    quantity = PositiveCountField(help_text="At least 1.")
    reason = serializers.CharField(
        max_length=300, required=False, allow_blank=True, default=""
    )
