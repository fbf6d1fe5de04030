"""Factories for inventory tests: categories, a small warehouse, items received
through the service (so they look exactly like real receipts).

The warehouse: Zone A (racks A-R1 "Rack 1" and A-R2 "Rack 2", bin A-R2-B1
"Bin 1" on rack 2) and Zone B (rack B-R1 "Rack 1"); Q-Z is an inactive zone.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from inventory import services
from inventory.models import (
    Category,
    Item,
    Location,
    LocationKind,
    Reservation,
    StockMovement,
    Tracking,
)

CATEGORIES = [
    ("cells", "Cells", Tracking.SERIALISED),
    ("modules", "Modules", Tracking.SERIALISED),
    ("packs", "Packs", Tracking.SERIALISED),
    ("fg", "FG", Tracking.SERIALISED),
    ("raw-materials", "Raw Materials", Tracking.BATCH),
    ("bms-boards", "BMS Boards", Tracking.SERIALISED),
    ("packaging", "Packaging", Tracking.BATCH),
]


def make_categories() -> dict[str, Category]:
    """The plant's seven categories, in order, by slug."""
    return {
        slug: Category.objects.create(
            slug=slug, name=name, tracking=tracking, position=position
        )
        for position, (slug, name, tracking) in enumerate(CATEGORIES, start=1)
    }


def make_warehouse() -> dict[str, Location]:
    """Two zones with racks and a bin, plus an inactive zone; by code."""

    def place(code, name, kind, parent=None, *, active=True) -> Location:
        return Location.objects.create(
            code=code, name=name, kind=kind, parent=parent, is_active=active
        )

    zone_a = place("A", "Zone A", LocationKind.ZONE)
    rack_a1 = place("A-R1", "Rack 1", LocationKind.RACK, zone_a)
    rack_a2 = place("A-R2", "Rack 2", LocationKind.RACK, zone_a)
    bin_a2 = place("A-R2-B1", "Bin 1", LocationKind.BIN, rack_a2)
    zone_b = place("B", "Zone B", LocationKind.ZONE)
    rack_b1 = place("B-R1", "Rack 1", LocationKind.RACK, zone_b)
    closed = place("Q", "Zone Q", LocationKind.ZONE, active=False)
    return {
        loc.code: loc
        for loc in (zone_a, rack_a1, rack_a2, bin_a2, zone_b, rack_b1, closed)
    }


def receive(
    actor,
    code: str,
    *,
    sku: str = "CELL-LFP-21700",
    category: str = "cells",
    location: str = "A-R2",
    quantity: int = 1,
    unit: str = "pcs",
    batch_ref: str = "BATCH-INB-102",
    received_at: datetime | None = None,
) -> Item:
    """An item received by ``actor`` through ``item_receive``."""
    return services.item_receive(
        code=code,
        sku=sku,
        category_slug=category,
        location_code=location,
        quantity=quantity,
        unit=unit,
        batch_ref=batch_ref,
        received_at=received_at or timezone.now(),
        actor=actor,
    )


def row_counts() -> dict[str, int]:
    """How many rows every table an inventory write touches holds now.

    Compare before and after a refused request: nothing may have changed.
    """
    return {
        "items": Item.objects.count(),
        "reservations": Reservation.objects.count(),
        "movements": StockMovement.objects.count(),
        "audit": AuditRecord.objects.count(),
        "events": OutboxEvent.objects.count(),
    }


def item_state(code: str) -> tuple:
    """What a refused write must leave untouched on an item."""
    item = Item.objects.get(code=code)
    return (item.status, item.hold_reason, item.quantity, item.location_id)
