"""Stock in the Django admin: receipts, holds, blocks and reservation releases go
through the services; CSV export; auditors only read."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from elog.models import AuditRecord
from inventory import services
from inventory.models import (
    Item,
    ItemStatus,
    LocationKind,
    MovementKind,
    Reservation,
    StockMovement,
)
from tests.factories_inventory import (
    item_state,
    make_categories,
    make_warehouse,
    receive,
    row_counts,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def stock(make_user):
    categories, places = make_categories(), make_warehouse()
    boss = make_user("supervisor")
    receive(
        boss,
        "CELL-2026-1001",
        received_at=timezone.now() - timedelta(days=2, hours=1),
    )
    receive(
        boss,
        "RM-ADH-001",
        sku="RM-ADHESIVE",
        category="raw-materials",
        location="A-R1",
        quantity=10,
        unit="kg",
        batch_ref="LOT-ADH-7",
    )
    services.item_reserve(
        item_code="RM-ADH-001", quantity=4, dispatch_ref="DSP-0042", actor=boss
    )
    return categories, places, boss


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("admin", username="ada"))
    return client


def changelist(model: str) -> str:
    return reverse(f"admin:inventory_{model}_changelist")


def post_action(client, model: str, action: str, ids, **extra):
    return client.post(
        changelist(model),
        {"action": action, "_selected_action": [str(i) for i in ids], **extra},
    )


def pk(code: str) -> int:
    return Item.objects.get(code=code).pk


def test_changelists_filter_and_search(admin_client, stock):
    for model in ("category", "location", "item", "reservation", "stockmovement"):
        assert admin_client.get(changelist(model)).status_code == 200, model
    page = admin_client.get(changelist("item"), {"status__exact": "good", "q": "ADH"})
    assert [i.code for i in page.context["cl"].result_list] == ["RM-ADH-001"]
    category = stock[0]["cells"].pk
    page = admin_client.get(changelist("item"), {"category__id__exact": category})
    assert [i.code for i in page.context["cl"].result_list] == ["CELL-2026-1001"]
    page = admin_client.get(changelist("item"), {"q": "LOT-ADH-7"})
    assert [i.code for i in page.context["cl"].result_list] == ["RM-ADH-001"]
    detail = admin_client.get(
        reverse("admin:inventory_item_change", args=[pk("RM-ADH-001")])
    )
    assert detail.status_code == 200
    assert "DSP-0042" in detail.content.decode()  # its reservation, inline


def test_the_location_filter_offers_every_path_in_one_query(admin_client, stock):
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(changelist("item"))
    spec = next(s for s in page.context["cl"].filter_specs if s.title == "location")
    offered = [choice["display"] for choice in spec.choices(page.context["cl"])][1:]
    assert sorted(offered) == sorted(str(place) for place in stock[1].values())
    assert "A-R2-B1" not in offered  # paths, not codes: zone / rack / bin
    location_reads = [
        q for q in queries.captured_queries if 'FROM "inventory_location"' in q["sql"]
    ]
    assert len(location_reads) == 1


def test_adding_an_item_is_a_receipt_through_the_service(admin_client, stock):
    categories, places, _ = stock
    response = admin_client.post(
        reverse("admin:inventory_item_add"),
        {
            "code": "PACK-2026-0001",
            "sku": "PACK-48V-100AH",
            "category": categories["packs"].pk,
            "location": places["B-R1"].pk,
            "quantity": 1,
            "unit": "pcs",
            "batch_ref": "WO-7",
            "received_at_0": "2026-03-02",
            "received_at_1": "08:00:00",
        },
    )
    assert response.status_code == 302, response.context["errors"]
    item = Item.objects.get(code="PACK-2026-0001")
    assert (item.status, item.location.code) == (ItemStatus.GOOD, "B-R1")
    record = AuditRecord.objects.get(action="item.received", target_id=str(item.pk))
    assert (record.actor_username, record.source) == ("ada", "admin")
    assert StockMovement.objects.get(item=item).kind == MovementKind.RECEIPT


def test_the_add_form_shows_the_service_rules(admin_client, stock):
    categories, places, _ = stock
    before = row_counts()
    response = admin_client.post(
        reverse("admin:inventory_item_add"),
        {
            "code": "CELL-2026-1001",  # exists
            "sku": "CELL-LFP-21700",
            "category": categories["cells"].pk,
            "location": places["Q"].pk,  # inactive
            "quantity": 5,  # serialised
            "unit": "pcs",
            "received_at_0": "2026-03-02",
            "received_at_1": "08:00:00",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"code", "location", "quantity"}
    assert row_counts() == before


def test_item_change_form_keeps_ruled_fields_read_only(admin_client, stock):
    item_id = pk("CELL-2026-1001")
    url = reverse("admin:inventory_item_change", args=[item_id])
    page = admin_client.get(url)
    assert set(page.context["adminform"].form.fields) == {"sku", "batch_ref"}
    response = admin_client.post(
        url,
        {
            "sku": "CELL-LFP-21700",
            "batch_ref": "BATCH-INB-999",
            "status": "blocked",
            "quantity": 50,
            "reservations-TOTAL_FORMS": 0,
            "reservations-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    item = Item.objects.get(pk=item_id)
    assert (item.batch_ref, item.status, item.quantity) == ("BATCH-INB-999", "good", 1)
    record = AuditRecord.objects.get(action="inventory.item.admin_changed")
    assert (record.before, record.after) == (
        {"batch_ref": "BATCH-INB-102"},
        {"batch_ref": "BATCH-INB-999"},
    )


def test_hold_release_and_block_actions_go_through_the_services(admin_client, stock):
    item_id = pk("CELL-2026-1001")
    post_action(admin_client, "item", "hold_items", [item_id], reason="Swollen can")
    assert item_state("CELL-2026-1001")[:2] == (ItemStatus.HOLD, "Swollen can")
    record = AuditRecord.objects.filter(action="item.held").get()
    assert (record.actor_username, record.source) == ("ada", "admin")
    assert (record.before["status"], record.after["status"]) == ("good", "hold")
    post_action(admin_client, "item", "release_holds", [item_id])
    assert item_state("CELL-2026-1001")[:2] == (ItemStatus.GOOD, "")
    post_action(admin_client, "item", "block_items", [item_id], reason="Dropped")
    assert item_state("CELL-2026-1001")[:2] == (ItemStatus.BLOCKED, "Dropped")


def test_hold_without_a_reason_changes_nothing(admin_client, stock):
    before = row_counts()
    response = post_action(
        admin_client, "item", "hold_items", [pk("CELL-2026-1001")], reason=" "
    )
    assert response.status_code == 302
    assert row_counts() == before
    assert item_state("CELL-2026-1001")[0] == ItemStatus.GOOD


def test_a_refused_action_is_reported_not_applied(admin_client, stock):
    before = row_counts()
    response = admin_client.post(
        changelist("item"),
        {"action": "release_holds", "_selected_action": [pk("CELL-2026-1001")]},
        follow=True,
    )
    assert "is Good, not on Hold" in response.content.decode()
    assert row_counts() == before


def test_the_csv_export_escapes_a_formula_typed_as_a_hold_reason(admin_client, stock):
    """CSV injection (OWASP): a hold reason or a batch reference typed as a
    formula leaves the export as text (a leading quote), never as a formula;
    a plain negative figure would stay a number (bpmos.csvsafe)."""
    boss = stock[2]
    services.item_hold(
        item_code="CELL-2026-1001", reason='=HYPERLINK("http://x")', actor=boss
    )
    response = post_action(admin_client, "item", "export_csv", [pk("CELL-2026-1001")])
    (row,) = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["hold_reason"] == '\'=HYPERLINK("http://x")'
    assert row["quantity"] == "1"  # a number stays a number


def test_csv_export(admin_client, stock):
    response = post_action(
        admin_client,
        "item",
        "export_csv",
        [pk("CELL-2026-1001"), pk("RM-ADH-001")],
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="inventory-items-'
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["id"] for r in rows] == ["CELL-2026-1001", "RM-ADH-001"]
    cell, lot = rows
    assert {k: cell[k] for k in ("location", "status", "quantity", "age")} == {
        "location": "Zone A - Rack 2",
        "status": "Good",
        "quantity": "1",
        "age": "2 days",
    }
    assert {k: lot[k] for k in ("category", "unit", "reserved", "available")} == {
        "category": "Raw Materials",
        "unit": "kg",
        "reserved": "4",
        "available": "6",
    }


def test_admin_releases_a_reservation_through_the_service(admin_client, stock):
    reservation = Reservation.objects.get()
    post_action(admin_client, "reservation", "release_reservations", [reservation.pk])
    reservation.refresh_from_db()
    assert reservation.status == "released"
    record = AuditRecord.objects.get(action="reservation.released")
    assert record.after["reason"] == "Released in the admin"


def test_reservations_and_movements_are_read_only(admin_client, stock):
    assert (
        admin_client.get(reverse("admin:inventory_reservation_add")).status_code == 403
    )
    assert (
        admin_client.get(reverse("admin:inventory_stockmovement_add")).status_code
        == 403
    )
    movement = StockMovement.objects.first()
    page = admin_client.get(
        reverse("admin:inventory_stockmovement_change", args=[movement.pk])
    )
    assert b'name="_save"' not in page.content


def test_a_bin_must_sit_on_a_rack(admin_client, stock):
    places = stock[1]
    response = admin_client.post(
        reverse("admin:inventory_location_add"),
        {
            "code": "A-B9",
            "name": "Bin 9",
            "kind": LocationKind.BIN,
            "parent": places["A"].pk,
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"parent"}


def test_auditors_browse_read_only(client, make_user, stock):
    client.force_login(make_user("auditor"))
    for model in ("category", "location", "item", "reservation", "stockmovement"):
        assert client.get(changelist(model)).status_code == 200, model
    listing = client.get(changelist("item"))
    choices = listing.context["action_form"].fields["action"].choices
    assert [name for name, _ in choices] == ["", "export_csv"]
    before = row_counts()
    post_action(client, "item", "hold_items", [pk("CELL-2026-1001")], reason="x")
    assert row_counts() == before
    assert item_state("CELL-2026-1001")[0] == ItemStatus.GOOD


def test_other_roles_have_no_admin(client, make_user, stock):
    client.force_login(make_user("supervisor"))
    response = client.get(changelist("item"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
