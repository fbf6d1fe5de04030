"""Stock: categories, locations (zone → rack → bin), items, reservations and the
movements that change where (or how much of) an item is.

Inventory *tracks*: where an item is now and in what state. It keeps no battery
identity or warranty history (that is the passports' *trace*).

Statuses are ``TextChoices`` with a transition table beside them; only the
services in ``inventory/services.py`` change a status, a quantity or a location.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from bpmos.transitions import StatusTransitions


class Tracking(models.TextChoices):
    """How a category's stock is counted."""

    SERIALISED = "serialised", "Serialised"  # one item = one unit (a cell, a pack)
    BATCH = "batch", "Batch"  # one item = a lot of some quantity (adhesive, boxes)


class Category(models.Model):
    """A kind of stock the plant keeps: Cells, Modules, Packs, FG, Raw Materials…"""

    slug = models.SlugField(max_length=50, unique=True, help_text="API id, e.g. cells")
    name = models.CharField(max_length=100, unique=True)
    tracking = models.CharField(
        max_length=20, choices=Tracking.choices, default=Tracking.SERIALISED
    )
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Order in which the control UI lists the categories."
    )

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class LocationKind(models.TextChoices):
    ZONE = "zone", "Zone"
    RACK = "rack", "Rack"
    BIN = "bin", "Bin"


# The kind a location's parent must be (a zone has none).
PARENT_KIND: dict[str, str | None] = {
    LocationKind.ZONE: None,
    LocationKind.RACK: LocationKind.ZONE,
    LocationKind.BIN: LocationKind.RACK,
}


class Location(models.Model):
    """A place stock sits: a zone, a rack in a zone, or a bin on a rack.

    Its ``path`` is what the control UI shows ("Zone A - Rack 2"); it is computed
    from the parents, never stored, so renaming a zone renames every path under it.
    The hierarchy is at most three deep, so ``select_related("parent__parent")``
    reads a whole path in the same query.
    """

    code = models.SlugField(
        max_length=50, unique=True, help_text="API id, e.g. A-R2-B1"
    )
    name = models.CharField(max_length=100, help_text='e.g. "Zone A", "Rack 2"')
    kind = models.CharField(max_length=10, choices=LocationKind.choices)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    is_active = models.BooleanField(
        default=True, help_text="Inactive locations take no new stock."
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind=LocationKind.ZONE) & Q(parent__isnull=True))
                | (~Q(kind=LocationKind.ZONE) & Q(parent__isnull=False)),
                name="location_zone_is_root",
            ),
            models.UniqueConstraint(
                fields=["parent", "name"], name="location_name_unique_in_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.path

    def clean(self) -> None:
        expected = PARENT_KIND.get(self.kind)
        parent = self.parent
        if expected is None and parent is not None:
            raise ValidationError({"parent": "A zone has no parent."})
        if expected is not None and (parent is None or parent.kind != expected):
            raise ValidationError(
                {
                    "parent": f"A {LocationKind(self.kind).label.lower()} sits in a "
                    f"{LocationKind(expected).label.lower()}."
                }
            )

    @property
    def path(self) -> str:
        """ "Zone A - Rack 2 - Bin 1": the names from the zone down."""
        names, node = [], self
        while node is not None:
            names.append(node.name)
            node = node.parent
        return " - ".join(reversed(names))


class ItemStatus(models.TextChoices):
    GOOD = "good", "Good"
    HOLD = "hold", "Hold"  # quality or a supervisor is looking at it
    BLOCKED = "blocked", "Blocked"  # must not be used (rejected, damaged, recalled)


ITEM_TRANSITIONS: dict[str, set[str]] = {
    ItemStatus.GOOD: {ItemStatus.HOLD, ItemStatus.BLOCKED},
    ItemStatus.HOLD: {ItemStatus.GOOD, ItemStatus.BLOCKED},  # release, or block
    # Blocked stock comes back only through a hold (re-inspection), never straight
    # to Good.
    ItemStatus.BLOCKED: {ItemStatus.HOLD},
}


class Unit(models.TextChoices):
    PIECES = "pcs", "pcs"
    KILOGRAMS = "kg", "kg"
    METRES = "m", "m"
    LITRES = "l", "l"
    ROLLS = "roll", "roll"
    BOXES = "box", "box"


def available_quantity(*, status: str, quantity: int, reserved: int) -> int:
    """What may still be reserved or issued: the unreserved rest of Good stock.

    Hold and Blocked stock has none available, whatever its quantity.
    """
    if status != ItemStatus.GOOD:
        return 0
    return max(quantity - reserved, 0)


class Item(StatusTransitions, models.Model):
    """Stock at a location: one serialised unit, or one batch lot of a quantity.

    ``quantity`` is what is physically there (1 for a serialised unit, 0 once all
    of it was issued); ``available`` is what may still be reserved or issued.
    """

    TRANSITIONS = ITEM_TRANSITIONS

    code = models.CharField(
        max_length=64, unique=True, help_text='API id, e.g. "CELL-2026-1001"'
    )
    sku = models.CharField(max_length=64, help_text='e.g. "CELL-LFP-21700"')
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="items"
    )
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="items"
    )
    status = models.CharField(
        max_length=10, choices=ItemStatus.choices, default=ItemStatus.GOOD
    )
    hold_reason = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why the item is on Hold or Blocked; empty while Good.",
    )
    batch_ref = models.CharField(max_length=64, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit = models.CharField(max_length=10, choices=Unit.choices, default=Unit.PIECES)
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        indexes = [
            models.Index(fields=["category", "status"]),
            # The category summary: in-stock items counted per (category,
            # status) from the index alone.
            models.Index(
                fields=["category", "status"],
                condition=models.Q(quantity__gt=0),
                name="inventory_item_in_stock_idx",
            ),
            models.Index(fields=["sku", "location"]),
            models.Index(fields=["batch_ref"]),
            # Items in stock on Hold, longest held first: the supervisor's
            # attention list and count (inventory.selectors.item_on_hold_*).
            # The (category, status) index served them by a scan per category.
            models.Index(
                fields=["updated_at", "id"],
                condition=models.Q(status="hold", quantity__gt=0),
                name="inventory_item_on_hold",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def transition_subject(self) -> str:
        return f"Item {self.code}"


class ReservationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RELEASED = "released", "Released"  # given back: the stock is available again
    CONSUMED = "consumed", "Consumed"  # issued to the work order or dispatch


RESERVATION_TRANSITIONS: dict[str, set[str]] = {
    ReservationStatus.ACTIVE: {ReservationStatus.RELEASED, ReservationStatus.CONSUMED},
    ReservationStatus.RELEASED: set(),
    ReservationStatus.CONSUMED: set(),
}


class Reservation(StatusTransitions, models.Model):
    """A quantity of an item promised to a work order or to a dispatch.

    Active reservations of an item never add up to more than its quantity:
    ``inventory.services.item_reserve`` checks that under the item's row lock.
    """

    TRANSITIONS = RESERVATION_TRANSITIONS

    item = models.ForeignKey(
        Item, on_delete=models.PROTECT, related_name="reservations"
    )
    quantity = models.PositiveIntegerField()
    work_order = models.ForeignKey(
        "runbooks.WorkOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reservations",
    )
    dispatch_ref = models.CharField(
        max_length=64, blank=True, help_text='A dispatch reference, e.g. "DSP-0042"'
    )
    status = models.CharField(
        max_length=10,
        choices=ReservationStatus.choices,
        default=ReservationStatus.ACTIVE,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["item", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="reservation_quantity_positive"
            ),
            models.CheckConstraint(
                condition=(Q(work_order__isnull=False) & Q(dispatch_ref=""))
                | (Q(work_order__isnull=True) & ~Q(dispatch_ref="")),
                name="reservation_for_one_purpose",
            ),
        ]

    def __str__(self) -> str:
        return f"R-{self.pk} {self.quantity} x {self.item_id} for {self.purpose}"

    @property
    def purpose(self) -> str:
        """What the stock is promised to: "WO-12" or the dispatch reference."""
        return f"WO-{self.work_order_id}" if self.work_order_id else self.dispatch_ref

    @property
    def transition_subject(self) -> str:
        return f"Reservation {self.pk}"


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", "Receipt"  # arrived at its first location
    MOVE = "move", "Move"  # from one location to another
    ISSUE = "issue", "Issue"  # left stock (to the line, to a dispatch)


class StockMovement(models.Model):
    """One recorded change of where stock is, or of how much of it there is.

    Append-only: written by the services, read by people; never edited.
    """

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=10, choices=MovementKind.choices)
    from_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    quantity = models.PositiveIntegerField()
    reservation = models.ForeignKey(
        Reservation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="movements",
        help_text="The reservation an issue consumed, if any.",
    )
    reason = models.CharField(max_length=300, blank=True)
    moved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    moved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-moved_at", "-id"]
        indexes = [models.Index(fields=["item", "moved_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity} x {self.item_id}"
