"""The demo seed's stock: every category, location and status, real history
through the services, and a second run that adds nothing."""

import pytest
from django.core.management import call_command
from django.db.models import Count

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from inventory import demo
from inventory.models import (
    Category,
    Item,
    ItemStatus,
    Location,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockMovement,
)

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Category,
            Location,
            Item,
            Reservation,
            StockMovement,
            AuditRecord,
            OutboxEvent,
        )
    }


def test_demo_seeds_stock_in_every_category_location_and_status(demo_plant):
    assert list(Category.objects.values_list("name", flat=True)) == [
        "Cells",
        "Modules",
        "Packs",
        "FG",
        "Raw Materials",
        "BMS Boards",
        "Packaging",
    ]
    statuses = {
        (row["category__slug"], row["status"])
        for row in Item.objects.filter(quantity__gt=0)
        .values("category__slug", "status")
        .annotate(n=Count("id"))
    }
    assert statuses == {
        (slug, status) for slug, _, _ in demo.CATEGORIES for status in ItemStatus.values
    }
    empty = Location.objects.filter(items__isnull=True).values_list("code", flat=True)
    assert list(empty) == []
    assert Location.objects.filter(kind="bin").exists()
    kinds = set(StockMovement.objects.values_list("kind", flat=True))
    assert kinds == set(MovementKind.values)
    assert set(Reservation.objects.values_list("status", flat=True)) == set(
        ReservationStatus.values
    )
    assert AuditRecord.objects.filter(action="item.held").count() == 7
    assert AuditRecord.objects.filter(action="item.blocked").count() == 7


def test_demo_stock_is_seeded_once(demo_plant):
    first = counts()
    call_command("seed_demo", stdout=None)
    assert counts() == first
