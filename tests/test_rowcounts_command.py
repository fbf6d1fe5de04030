"""``manage.py recount_rows``: the kept row counts (bpmos.rowcounts) set again
from their tables after writes made with the triggers off, each count
printed before and after, a count that moved audited (docs/security.md,
"Backup and restore")."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from bpmos.rowcounts import services as rowcounts
from elog.models import AuditRecord
from inventory import selectors as inventory_selectors
from inventory.models import Item
from tests.factories_inventory import make_categories, make_warehouse, receive
from tests.test_rowcounts import assert_kept_counts_exact

pytestmark = pytest.mark.django_db

ITEMS = inventory_selectors.ITEMS_COUNTED


@pytest.fixture
def stock(make_user):
    """Five items received, two of them issued (3 in stock), then all of them
    set in stock with the triggers off: the kept count still says 3."""
    boss = make_user("supervisor")
    make_categories(), make_warehouse()
    for n in range(5):
        receive(boss, f"CELL-{n}")
    Item.objects.filter(code__in=["CELL-0", "CELL-3"]).update(quantity=0)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE inventory_item SET quantity = 9")
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert rowcounts.kept(ITEMS, Item.objects.none()) == 3
    return boss


def _run(*names: str) -> list[str]:
    out = StringIO()
    call_command("recount_rows", *names, stdout=out, no_color=True)
    return out.getvalue().splitlines()


def _recounted() -> list[tuple]:
    return list(
        AuditRecord.objects.filter(action="rowcount.recounted")
        .order_by("seq")
        .values_list("actor_id", "target_type", "target_id", "before", "after")
    )


@pytest.mark.postgresql_only
def test_every_kept_count_is_recounted_and_a_moved_one_audited(stock):
    assert _run() == [
        "inventory.items_in_stock (inventory_item WHERE quantity > 0): 3 -> 5, audited",
        "passports.passports (passports_passport WHERE TRUE): 0, unchanged",
        "runbooks.work_orders (runbooks_workorder WHERE TRUE): 0, unchanged",
    ]
    assert_kept_counts_exact()
    assert _recounted() == [
        (None, "rowcount", ITEMS, {"count": 3}, {"count": 5}),
    ]
    # Again: nothing moves, nothing is audited.
    assert _run(ITEMS) == [
        "inventory.items_in_stock (inventory_item WHERE quantity > 0): 5, unchanged"
    ]
    assert len(_recounted()) == 1


@pytest.mark.postgresql_only
def test_only_the_named_counts(stock):
    assert _run("runbooks.work_orders") == [
        "runbooks.work_orders (runbooks_workorder WHERE TRUE): 0, unchanged"
    ]
    assert rowcounts.kept(ITEMS, Item.objects.none()) == 3  # not recounted
    assert _recounted() == []


@pytest.mark.postgresql_only
def test_an_unknown_count_is_refused_and_nothing_recounted(stock):
    with pytest.raises(CommandError, match=r"No such kept count: nothing\.here"):
        _run(ITEMS, "nothing.here")
    assert rowcounts.kept(ITEMS, Item.objects.none()) == 3
    assert _recounted() == []


@pytest.mark.postgresql_only
def test_the_kept_counts_are_those_of_the_applied_migrations():
    assert rowcounts.kept_counts_applied() == {
        ITEMS: rowcounts.KeptCount(ITEMS, "inventory_item", "quantity > 0"),
        "passports.passports": rowcounts.KeptCount(
            "passports.passports", "passports_passport", "TRUE"
        ),
        "runbooks.work_orders": rowcounts.KeptCount(
            "runbooks.work_orders", "runbooks_workorder", "TRUE"
        ),
    }


def test_sqlite_keeps_no_counts():
    if connection.vendor == "postgresql":
        pytest.skip("the embedded default's answer")
    assert _run() == [
        "sqlite: no kept row counts (the list pages count their rows per request)."
    ]
    assert rowcounts.kept_counts_applied() == {}
