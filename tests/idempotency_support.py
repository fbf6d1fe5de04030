"""Shared pieces of the Idempotency-Key tests: a lot to reserve over real HTTP."""

from __future__ import annotations

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from inventory.models import Reservation
from tests.factories_inventory import make_categories, make_warehouse, receive

LOT = "RM-ADH-001"
RESERVE = f"/api/inventory/items/{LOT}/reserve/"


def make_lot(actor) -> None:
    """A Good 10 kg lot of adhesive at A-R1 (``LOT``)."""
    make_categories(), make_warehouse()
    receive(
        actor,
        LOT,
        sku="RM-ADHESIVE",
        category="raw-materials",
        location="A-R1",
        quantity=10,
        unit="kg",
        batch_ref="LOT-ADH-7",
    )


def effects() -> dict[str, int]:
    """What a reservation leaves behind: its row, its audit record, its events."""
    return {
        "reservations": Reservation.objects.count(),
        "audit": AuditRecord.objects.filter(action__startswith="reservation").count(),
        "events": OutboxEvent.objects.count(),
    }
