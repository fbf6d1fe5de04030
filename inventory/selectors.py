"""Reads of stock: the category summary, items, stock levels, reservations,
locations.

"In stock" means quantity > 0: an item issued to nothing stays in the database
(its movements and reservations point at it) but leaves the lists, the counts
and the stock levels. Querysets carry the joins their serializers need, so a
page costs a fixed number of queries whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from bpmos.compiled import rows_get
from bpmos.errors import NotFound
from bpmos.totals import Totals
from inventory.models import (
    Category,
    Item,
    ItemStatus,
    Location,
    Reservation,
    ReservationStatus,
    available_quantity,
)

IN_STOCK = Q(quantity__gt=0)
ACTIVE = Q(status=ReservationStatus.ACTIVE)


def category_summary_list() -> list[Category]:
    """Every category with its in-stock items counted per status (``total``,
    ``good``, ``hold``, ``blocked``). Two queries: the categories, and the
    in-stock items counted per (category, status) on the partial index of
    in-stock items (an index-only count, not a join of every item to its
    category and a group over the join).

    Counts are items (what the items list shows: a serialised unit, or a lot),
    not quantities: a category's lots may be counted in different units.
    """
    counts: dict[int, dict[str, int]] = {}
    for category_id, status, n in (
        Item.objects.filter(IN_STOCK)
        .order_by()
        .values_list("category_id", "status")
        .annotate(n=Count("*"))
    ):
        counts.setdefault(category_id, {})[status] = n
    categories = list(Category.objects.order_by("position", "name"))
    for category in categories:
        found = counts.get(category.pk, {})
        category.total = sum(found.values())
        category.good = found.get(ItemStatus.GOOD, 0)
        category.hold = found.get(ItemStatus.HOLD, 0)
        category.blocked = found.get(ItemStatus.BLOCKED, 0)
    return categories


# The kept count (bpmos.rowcounts; this app's migration "kept_count") of
# ``item_list()``'s rows (items in stock, ``IN_STOCK``).
ITEMS_COUNTED = "inventory.items_in_stock"


def item_list() -> QuerySet[Item]:
    """Items in stock with their category and full location path, by code."""
    return (
        Item.objects.filter(IN_STOCK)
        .select_related("category", "location__parent__parent")
        .order_by("code")
    )


def _active_reservations() -> Prefetch:
    return Prefetch(
        "reservations",
        queryset=Reservation.objects.filter(ACTIVE).order_by("created_at", "id"),
        to_attr="active_reservations",
    )


def item_get(*, item_code: str) -> Item:
    """One item (in stock or not) with its active reservations, their total
    (``reserved``) and what is ``available``; 404 if there is none."""
    item = (
        Item.objects.select_related("category", "location__parent__parent")
        .prefetch_related(_active_reservations())
        .filter(code=item_code)
        .first()
    )
    if item is None:
        raise NotFound(f"Item {item_code} does not exist.")
    item.reserved = sum(r.quantity for r in item.active_reservations)
    item.available = available_quantity(
        status=item.status, quantity=item.quantity, reserved=item.reserved
    )
    return item


def reservation_list() -> QuerySet[Reservation]:
    """Every reservation with its item, newest first."""
    return Reservation.objects.select_related("item").order_by("-created_at", "-id")


def location_list() -> QuerySet[Location]:
    """Every location with its parents (for its path), by code."""
    return Location.objects.select_related("parent__parent").order_by("code")


# --- stock levels ------------------------------------------------------------------


@dataclass(frozen=True)
class StockLevel:
    """In-stock quantities of one SKU at one location (docs/inventory.md)."""

    sku: str
    category: str
    location: str
    location_id: str
    unit: str
    items: int
    quantity: int
    good: int
    hold: int
    blocked: int
    reserved: int
    available: int


_GROUP = (
    "sku",
    "unit",
    "category__slug",
    "location_id",
    "location__code",
    "location__name",
    "location__parent__name",
    "location__parent__parent__name",
)


def stock_level_groups(
    *, sku: str | None = None, location: str | None = None
) -> QuerySet:
    """In-stock quantities grouped per SKU, unit and location (one row each).

    ``location`` is a location code; a zone or rack includes what sits under it.
    """
    items = Item.objects.filter(IN_STOCK)
    if sku:
        items = items.filter(sku__iexact=sku)
    if location:
        items = items.filter(
            Q(location__code__iexact=location)
            | Q(location__parent__code__iexact=location)
            | Q(location__parent__parent__code__iexact=location)
        )

    def status_sum(status: str) -> Sum:
        return Sum("quantity", filter=Q(status=status), default=0)

    return (
        items.values(*_GROUP)
        .annotate(
            item_count=Count("id"),
            total=Sum("quantity"),
            good=status_sum(ItemStatus.GOOD),
            hold=status_sum(ItemStatus.HOLD),
            blocked=status_sum(ItemStatus.BLOCKED),
        )
        .order_by("sku", "location__code", "unit")
    )


def stock_levels(groups) -> list[StockLevel]:
    """The page of ``stock_level_groups`` with what is reserved and available
    (one more query for the whole page)."""
    groups = list(groups)
    if not groups:
        return []
    keys = Q()
    for group in groups:
        keys |= Q(
            item__sku=group["sku"],
            item__unit=group["unit"],
            item__location_id=group["location_id"],
        )
    reserved = {
        (row["item__sku"], row["item__unit"], row["item__location_id"]): row
        for row in Reservation.objects.filter(ACTIVE, keys, item__quantity__gt=0)
        .values("item__sku", "item__unit", "item__location_id")
        .annotate(
            total=Sum("quantity"),
            good=Sum("quantity", filter=Q(item__status=ItemStatus.GOOD), default=0),
        )
        .order_by()
    }
    levels = []
    for group in groups:
        held = reserved.get(
            (group["sku"], group["unit"], group["location_id"]), {"total": 0, "good": 0}
        )
        names = [
            group["location__parent__parent__name"],
            group["location__parent__name"],
            group["location__name"],
        ]
        levels.append(
            StockLevel(
                sku=group["sku"],
                category=group["category__slug"],
                location=" - ".join(n for n in names if n),
                location_id=group["location__code"],
                unit=group["unit"],
                items=group["item_count"],
                quantity=group["total"],
                good=group["good"],
                hold=group["hold"],
                blocked=group["blocked"],
                reserved=held["total"],
                available=max(group["good"] - held["good"], 0),
            )
        )
    return levels


# --- age ---------------------------------------------------------------------------

# (threshold, seconds per unit, unit name): the first row whose threshold the age
# is under names it. Days run to two weeks, weeks to eight, then 30-day months,
# then 365-day years (docs/inventory.md).
_MINUTE, _HOUR, _DAY = 60, 3600, 86400
_AGE_UNITS = (
    (_HOUR, _MINUTE, "minute"),
    (_DAY, _HOUR, "hour"),
    (14 * _DAY, _DAY, "day"),
    (56 * _DAY, 7 * _DAY, "week"),
    (365 * _DAY, 30 * _DAY, "month"),
)


def item_age(received_at: datetime, *, now: datetime) -> str:
    """How long an item has been in stock, as the control UI shows it: "2 days".

    Whole units, rounded down; "1 day" but "2 days"; a receipt in the future
    (a clock ahead of ours) is "0 minutes".
    """
    seconds = max((now - received_at).total_seconds(), 0)
    size, name = next(
        ((size, name) for under, size, name in _AGE_UNITS if seconds < under),
        (365 * _DAY, "year"),
    )
    count = int(seconds // size)
    return f"{count} {name}" + ("" if count == 1 else "s")


def item_status_counts() -> dict[str, int]:
    """Items in stock per status (stored values, every status listed). Items,
    not quantities, as the category summary counts them. One query."""
    return item_status_read(rows_get(*item_status_statement()))


def item_status_statement() -> tuple:
    """``item_status_counts`` as (shape, make) for ``bpmos.compiled``: rows
    of ``status`` and ``n``, read by ``item_status_read``."""
    return ("item_status_counts",), lambda: (
        Item.objects.filter(IN_STOCK)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
    )


def item_status_read(rows: list[dict]) -> dict[str, int]:
    """``item_status_counts`` of the rows of ``item_status_statement``."""
    found = {row["status"]: row["n"] for row in rows}
    return {status: found.get(status, 0) for status in ItemStatus.values}


# --- attention (the role dashboards, bpmos.dashboards.attention) -------------------


def item_on_hold_list(*, limit: int = 50) -> list[dict]:
    """Items in stock on Hold (a supervisor releases or blocks them), longest
    held first: ``code``, ``sku``, ``hold_reason``, ``updated_at`` of each
    (the attention list's item). One query, compiled once
    (``bpmos.compiled``)."""
    return rows_get(*item_on_hold_statement(limit=limit))


def item_on_hold_statement(*, limit: int = 50) -> tuple:
    """``item_on_hold_list`` as (shape, make) for ``bpmos.compiled``."""
    return (
        ("item_on_hold_list", limit),
        lambda: Item.objects.filter(IN_STOCK, status=ItemStatus.HOLD)
        .order_by("updated_at", "id")
        .values("code", "sku", "hold_reason", "updated_at")[:limit],
    )


def item_on_hold_count() -> int:
    """How many items in stock are on Hold. One query."""
    return item_on_hold_totals().get()


def item_on_hold_totals() -> Totals:
    """``item_on_hold_count`` as ``Totals``, not run (``inventory_item_on_hold``)."""
    return Totals(
        Item.objects.filter(IN_STOCK, status=ItemStatus.HOLD),
        {"n": Count("pk")},
        lambda totals: int(totals["n"]),
    )
