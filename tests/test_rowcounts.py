"""Kept row counts (bpmos.rowcounts): always COUNT(*) of the rows they keep,
whatever writes the table (ORM, bulk, raw SQL, COPY, TRUNCATE), compacted or
not; the list pages answer ``count`` from them only while nothing narrows the
list."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from bpmos.rowcounts import services as rowcounts
from bpmos.rowcounts.models import RowCountDelta
from inventory import selectors as inventory_selectors
from inventory.models import Item
from passports import selectors as passport_selectors
from runbooks import selectors as runbook_selectors
from tests.conftest import bearer
from tests.factories_inventory import make_categories, make_warehouse, receive
from tests.factories_production import make_runbook, make_work_order

pytestmark = [pytest.mark.django_db, pytest.mark.postgresql_only]

KEPT = {
    runbook_selectors.WORK_ORDERS_COUNTED: runbook_selectors.work_order_list,
    passport_selectors.PASSPORTS_COUNTED: passport_selectors.passport_list,
    inventory_selectors.ITEMS_COUNTED: inventory_selectors.item_list,
}


def assert_kept_counts_exact() -> None:
    for name, rows in KEPT.items():
        assert rowcounts.kept(name, rows()) == rows().count(), name


@pytest.fixture
def stock(make_user):
    boss = make_user("supervisor")
    make_categories(), make_warehouse()
    for n in range(5):
        receive(boss, f"CELL-{n}")
    Item.objects.filter(code__in=["CELL-0", "CELL-3"]).update(quantity=0)  # issued
    return boss


def test_items_in_stock_follow_every_kind_of_write(stock):
    assert rowcounts.kept(inventory_selectors.ITEMS_COUNTED, Item.objects.none()) == 3
    Item.objects.filter(code="CELL-0").update(quantity=4)  # into stock
    Item.objects.filter(code__in=["CELL-1", "CELL-2"]).update(quantity=0)  # out
    Item.objects.filter(code="CELL-4").update(status="hold")  # no change
    assert_kept_counts_exact()
    template = Item.objects.get(code="CELL-4")
    Item.objects.bulk_create(
        [
            Item(
                code=f"BULK-{n}",
                sku=template.sku,
                category_id=template.category_id,
                location_id=template.location_id,
                quantity=n,
                unit=template.unit,
                received_at=template.received_at,
            )
            for n in range(4)
        ]
    )
    assert_kept_counts_exact()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM inventory_item WHERE code LIKE 'BULK-%%'")
        cursor.execute(
            "INSERT INTO inventory_item (code, sku, category_id, location_id, "
            "status, hold_reason, batch_ref, quantity, unit, received_at, "
            "created_at, updated_at) SELECT 'RAW-' || code, sku, category_id, "
            "location_id, status, hold_reason, batch_ref, quantity + 1, unit, "
            "received_at, created_at, updated_at FROM inventory_item"
        )
    assert_kept_counts_exact()
    assert rowcounts.kept(inventory_selectors.ITEMS_COUNTED, Item.objects.none()) == 7


def test_copy_and_truncate_are_counted(stock):
    rows = list(
        Item.objects.values_list(
            "sku", "category_id", "location_id", "status", "unit", "received_at"
        )
    )
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY inventory_item (code, sku, category_id, location_id, status, "
            "hold_reason, batch_ref, quantity, unit, received_at, created_at, "
            "updated_at) FROM STDIN"
        ) as copy:
            for n, (sku, category, location, status, unit, at) in enumerate(rows):
                copy.write_row(
                    (
                        f"COPY-{n}",
                        sku,
                        category,
                        location,
                        status,
                        "",
                        "",
                        n,
                        unit,
                        at,
                        at,
                        at,
                    )
                )
        assert_kept_counts_exact()
        # The deferred foreign-key checks first: TRUNCATE refuses to run
        # while trigger events are pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE inventory_item CASCADE")
    assert_kept_counts_exact()
    receive(stock, "AFTER-TRUNCATE")
    assert rowcounts.kept(inventory_selectors.ITEMS_COUNTED, Item.objects.none()) == 1


def test_compaction_keeps_the_sum_in_one_row_a_count(stock):
    runbook = make_runbook()
    for n in range(3):
        make_work_order(stock, runbook=runbook, lot_no=f"LOT-{n}")
    before = {name: rowcounts.kept(name, rows()) for name, rows in KEPT.items()}
    work_orders = runbook_selectors.WORK_ORDERS_COUNTED
    assert RowCountDelta.objects.filter(name=work_orders).count() > 1
    assert rowcounts.compact() >= 2  # the work orders' and the items'
    assert {name: rowcounts.kept(name, rows()) for name, rows in KEPT.items()} == before
    for name in KEPT:
        assert RowCountDelta.objects.filter(name=name).count() <= 1
    assert rowcounts.compact() == 0
    assert_kept_counts_exact()


def test_recount_mends_writes_made_with_triggers_off(stock):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE inventory_item SET quantity = 9")
        cursor.execute("SET LOCAL session_replication_role = origin")
    name = inventory_selectors.ITEMS_COUNTED
    assert rowcounts.kept(name, Item.objects.none()) == 3  # not seen
    assert (
        rowcounts.recount(name=name, table="inventory_item", condition="quantity > 0")
        == 5
    )
    assert_kept_counts_exact()


def test_the_item_page_counts_kept_whole_and_counted_when_filtered(
    stock, django_assert_num_queries
):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(stock)["Authorization"])
    Item.objects.filter(code="CELL-4").update(status="hold")
    with django_assert_num_queries(3):  # user, kept count, page
        whole = client.get("/api/inventory/items?category=&status=")
    with django_assert_num_queries(3):  # user, COUNT(*), page
        held = client.get("/api/inventory/items?status=hold")
    assert (whole.json()["count"], held.json()["count"]) == (3, 1)


def test_the_beat_task_compacts(stock):
    from bpmos.celery import BEAT_SCHEDULE, app
    from bpmos.rowcounts.tasks import rowcounts_compact_task

    entry = BEAT_SCHEDULE["rowcounts-compact"]
    assert entry["task"] == "bpmos.rowcounts.tasks.rowcounts_compact_task"
    assert entry["task"] in app.tasks
    assert entry["options"]["expires"] < entry["schedule"]
    assert rowcounts_compact_task() == 1  # the items' deltas
    assert (
        RowCountDelta.objects.filter(name=inventory_selectors.ITEMS_COUNTED).count()
        == 1
    )
    assert_kept_counts_exact()
