"""Inventory over HTTP: the control-UI contract's shapes key by key (group IV,
payload D, the category summary), filters, search, pagination, the endpoints
beyond the contract, their refusals (which change nothing) and role rules."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from elog.models import AuditRecord
from inventory import services
from inventory.models import Item, ItemStatus, MovementKind, StockMovement
from tests.conftest import api_as as api
from tests.conftest import bearer
from tests.factories_inventory import (
    item_state,
    make_categories,
    make_warehouse,
    receive,
    row_counts,
)
from tests.factories_production import make_runbook, make_work_order

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"success", "error", "code", "details", "request_id"}
SHAPE_D = {"id", "sku", "location", "status", "batchRef", "age"}
DETAIL_KEYS = SHAPE_D | {
    "category",
    "locationId",
    "quantity",
    "unit",
    "reserved",
    "available",
    "holdReason",
    "receivedAt",
    "reservations",
}
RESERVATION_KEYS = {
    "id",
    "itemId",
    "sku",
    "quantity",
    "status",
    "workOrderId",
    "dispatchRef",
    "createdBy",
    "createdAt",
    "closedAt",
}
CELL1, CELL2, MOD, RM = (
    "CELL-2026-1001",
    "CELL-2026-1002",
    "MOD-2026-0001",
    "RM-ADH-001",
)
CELL_SKU = "CELL-LFP-21700"
# Track, not trace: none of these may appear in any inventory body.
TRACE_WORDS = ("passport", "warranty", "genealogy", "ledger", "custody", "history")


@pytest.fixture
def boss(make_user):
    return make_user("supervisor", username="sam")


@pytest.fixture
def stock(boss):
    """Seven categories, the warehouse, and stock in three states.

    CELL-2026-1001 Good at A-R2 (2 days old), CELL-2026-1002 Hold in bin A-R2-B1,
    MOD-2026-0001 Blocked at B-R1, RM-ADH-001 a Good 10 kg lot at A-R1.
    """
    make_categories(), make_warehouse()
    now = timezone.now()
    receive(boss, "CELL-2026-1001", received_at=now - timedelta(days=2, hours=3))
    receive(
        boss,
        "CELL-2026-1002",
        location="A-R2-B1",
        batch_ref="BATCH-INB-103",
        received_at=now - timedelta(hours=5),
    )
    receive(
        boss,
        "MOD-2026-0001",
        sku="MOD-16S-LFP",
        category="modules",
        location="B-R1",
        batch_ref="",
        received_at=now - timedelta(days=20),
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
        received_at=now - timedelta(minutes=3),
    )
    services.item_hold(item_code="CELL-2026-1002", reason="IR out of spec", actor=boss)
    services.item_block(item_code="MOD-2026-0001", reason="Cracked busbar", actor=boss)


def ok(response, status=200):
    assert response.status_code == status, response.json()
    return response.json()


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json()
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert (body["success"], body["code"]) == (False, code)
    return body


def ids(response) -> list[str]:
    return [row["id"] for row in ok(response)["results"]]


def summary(slug, name, *, total=0, good=0, hold=0, blocked=0) -> dict:
    return {
        "id": slug,
        "name": name,
        "total": total,
        "good": good,
        "hold": hold,
        "blocked": blocked,
    }


def walk_keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from walk_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from walk_keys(inner)


# --- GET /api/inventory/categories -------------------------------------------------


def test_categories_summary_counts_items_per_category_and_status(stock, boss):
    body = ok(api(boss).get("/api/inventory/categories"))
    assert body == [
        summary("cells", "Cells", total=2, good=1, hold=1),
        summary("modules", "Modules", total=1, blocked=1),
        summary("packs", "Packs"),
        summary("fg", "FG"),
        summary("raw-materials", "Raw Materials", total=1, good=1),
        summary("bms-boards", "BMS Boards"),
        summary("packaging", "Packaging"),
    ]


def test_categories_leave_out_stock_issued_to_nothing(stock, boss):
    services.item_issue(item_code="RM-ADH-001", quantity=10, actor=boss)
    body = ok(api(boss).get("/api/inventory/categories/"))
    raw = next(row for row in body if row["id"] == "raw-materials")
    assert (raw["total"], raw["good"]) == (0, 0)


def test_categories_cost_two_queries(stock, boss, django_assert_num_queries):
    # the categories, and the in-stock items counted per (category, status)
    client = APIClient()
    client.force_authenticate(boss)
    with django_assert_num_queries(2):
        client.get("/api/inventory/categories")


# --- GET /api/inventory/items ------------------------------------------------------


def test_items_are_payload_d_exactly(stock, boss):
    body = ok(api(boss).get("/api/inventory/items"))
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    for row in body["results"]:
        assert set(row) == SHAPE_D
    assert body["results"][0] == {
        "id": "CELL-2026-1001",
        "sku": "CELL-LFP-21700",
        "location": "Zone A - Rack 2",
        "status": "Good",
        "batchRef": "BATCH-INB-102",
        "age": "2 days",
    }
    by_id = {row["id"]: row for row in body["results"]}
    assert by_id["CELL-2026-1002"]["location"] == "Zone A - Rack 2 - Bin 1"
    assert by_id["CELL-2026-1002"]["status"] == "Hold"
    assert by_id["CELL-2026-1002"]["age"] == "5 hours"
    assert (by_id["MOD-2026-0001"]["status"], by_id["MOD-2026-0001"]["age"]) == (
        "Blocked",
        "2 weeks",
    )
    assert (by_id["MOD-2026-0001"]["batchRef"], by_id["RM-ADH-001"]["age"]) == (
        "",
        "3 minutes",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=cells", ["CELL-2026-1001", "CELL-2026-1002"]),
        ("category=Cells", ["CELL-2026-1001", "CELL-2026-1002"]),
        ("category=raw-materials", ["RM-ADH-001"]),
        ("category=Raw%20Materials", ["RM-ADH-001"]),
        ("category=packs", []),
        ("category=unknown", []),
        ("status=Good", ["CELL-2026-1001", "RM-ADH-001"]),
        ("status=good", ["CELL-2026-1001", "RM-ADH-001"]),
        ("status=Hold", ["CELL-2026-1002"]),
        ("status=hold", ["CELL-2026-1002"]),
        ("status=BLOCKED", ["MOD-2026-0001"]),
        ("category=cells&status=Hold", ["CELL-2026-1002"]),
        ("search=1002", ["CELL-2026-1002"]),
        ("search=mod-16s", ["MOD-2026-0001"]),  # SKU, any case
        ("search=INB-10", ["CELL-2026-1001", "CELL-2026-1002"]),  # batch ref
        ("search=LOT-ADH&status=Good", ["RM-ADH-001"]),
        ("search=zzz", []),
        ("sku=cell-lfp-21700", ["CELL-2026-1001", "CELL-2026-1002"]),
        ("location=A", ["CELL-2026-1001", "CELL-2026-1002", "RM-ADH-001"]),  # zone
        ("location=A-R2", ["CELL-2026-1001", "CELL-2026-1002"]),  # rack and its bin
        ("location=A-R2-B1", ["CELL-2026-1002"]),
        ("ordering=-id", [RM, MOD, CELL2, CELL1]),
        ("ordering=receivedAt", [MOD, CELL1, CELL2, RM]),
    ],
)
def test_items_filter_search_and_order(stock, boss, query, expected):
    assert ids(api(boss).get(f"/api/inventory/items?{query}")) == expected


def test_unknown_status_is_a_400_envelope(stock, boss):
    body = refused(
        api(boss).get("/api/inventory/items?status=Broken"), 400, "validation_error"
    )
    assert set(body["details"]) == {"status"}


def test_items_paginate(stock, boss):
    client = api(boss)
    first = ok(client.get("/api/inventory/items?page_size=3"))
    assert (first["count"], len(first["results"]), first["previous"]) == (4, 3, None)
    assert first["next"].endswith("/api/inventory/items?page=2&page_size=3")
    second = ok(client.get("/api/inventory/items?page=2&page_size=3"))
    assert [r["id"] for r in second["results"]] == ["RM-ADH-001"]
    assert (second["next"], second["previous"] is not None) == (None, True)
    refused(client.get("/api/inventory/items?page=9"), 404, "not_found")


def test_item_list_query_count_is_pinned(stock, boss, django_assert_num_queries):
    client = APIClient()
    client.force_authenticate(boss)
    with django_assert_num_queries(2):  # the count, the page
        client.get("/api/inventory/items")
    for n in range(20):
        receive(boss, f"CELL-2026-2{n:03d}", location="A-R2-B1")
    with django_assert_num_queries(2):
        assert len(client.get("/api/inventory/items").json()["results"]) == 24


# --- GET /api/inventory/items/{id} -------------------------------------------------


def test_item_detail_is_payload_d_then_quantities_and_reservations(stock, boss):
    reservation = services.item_reserve(
        item_code="RM-ADH-001", quantity=4, dispatch_ref="DSP-0042", actor=boss
    )
    body = ok(api(boss).get("/api/inventory/items/RM-ADH-001"))
    assert set(body) == DETAIL_KEYS
    received = Item.objects.get(code="RM-ADH-001").received_at
    assert body == {
        "id": "RM-ADH-001",
        "sku": "RM-ADHESIVE",
        "location": "Zone A - Rack 1",
        "status": "Good",
        "batchRef": "LOT-ADH-7",
        "age": "3 minutes",
        "category": "raw-materials",
        "locationId": "A-R1",
        "quantity": 10,
        "unit": "kg",
        "reserved": 4,
        "available": 6,
        "holdReason": "",
        "receivedAt": received.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reservations": [
            {
                "id": reservation.pk,
                "quantity": 4,
                "workOrderId": None,
                "dispatchRef": "DSP-0042",
                "createdAt": reservation.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    }


def test_held_item_has_nothing_available(stock, boss):
    body = ok(api(boss).get("/api/inventory/items/CELL-2026-1002/"))
    assert (
        body["status"],
        body["holdReason"],
        body["quantity"],
        body["available"],
    ) == (
        "Hold",
        "IR out of spec",
        1,
        0,
    )


def test_unknown_item_is_a_404_envelope(stock, boss):
    body = refused(api(boss).get("/api/inventory/items/NOPE-1"), 404, "not_found")
    assert body["error"] == "Item NOPE-1 does not exist."


def test_no_inventory_body_carries_trace_history(stock, boss):
    services.item_reserve(
        item_code="RM-ADH-001", quantity=1, dispatch_ref="DSP-1", actor=boss
    )
    client = api(boss)
    bodies = [
        ok(client.get(path))
        for path in (
            "/api/inventory/categories",
            "/api/inventory/items",
            "/api/inventory/items/RM-ADH-001",
            "/api/inventory/stock",
            "/api/inventory/locations",
            "/api/inventory/reservations",
        )
    ]
    keys = {key.lower() for body in bodies for key in walk_keys(body)}
    assert [k for k in keys if any(word in k for word in TRACE_WORDS)] == []


# --- GET /api/inventory/stock ------------------------------------------------------


def test_stock_levels_per_sku_and_location(stock, boss):
    receive(boss, "CELL-2026-1003", received_at=timezone.now())
    services.item_reserve(
        item_code="CELL-2026-1003", quantity=1, dispatch_ref="DSP-7", actor=boss
    )
    services.item_reserve(
        item_code="RM-ADH-001", quantity=4, dispatch_ref="DSP-8", actor=boss
    )
    body = ok(api(boss).get("/api/inventory/stock"))
    assert body["count"] == 4
    assert body["results"] == [
        {
            "sku": "CELL-LFP-21700",
            "category": "cells",
            "location": "Zone A - Rack 2",
            "locationId": "A-R2",
            "unit": "pcs",
            "items": 2,
            "quantity": 2,
            "good": 2,
            "hold": 0,
            "blocked": 0,
            "reserved": 1,
            "available": 1,
        },
        {
            "sku": "CELL-LFP-21700",
            "category": "cells",
            "location": "Zone A - Rack 2 - Bin 1",
            "locationId": "A-R2-B1",
            "unit": "pcs",
            "items": 1,
            "quantity": 1,
            "good": 0,
            "hold": 1,
            "blocked": 0,
            "reserved": 0,
            "available": 0,
        },
        {
            "sku": "MOD-16S-LFP",
            "category": "modules",
            "location": "Zone B - Rack 1",
            "locationId": "B-R1",
            "unit": "pcs",
            "items": 1,
            "quantity": 1,
            "good": 0,
            "hold": 0,
            "blocked": 1,
            "reserved": 0,
            "available": 0,
        },
        {
            "sku": "RM-ADHESIVE",
            "category": "raw-materials",
            "location": "Zone A - Rack 1",
            "locationId": "A-R1",
            "unit": "kg",
            "items": 1,
            "quantity": 10,
            "good": 10,
            "hold": 0,
            "blocked": 0,
            "reserved": 4,
            "available": 6,
        },
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sku=cell-lfp-21700", [(CELL_SKU, "A-R2"), (CELL_SKU, "A-R2-B1")]),
        ("location=A-R2", [(CELL_SKU, "A-R2"), (CELL_SKU, "A-R2-B1")]),
        ("location=B", [("MOD-16S-LFP", "B-R1")]),
        ("sku=RM-ADHESIVE&location=B", []),
    ],
)
def test_stock_levels_filter_by_sku_and_location(stock, boss, query, expected):
    body = ok(api(boss).get(f"/api/inventory/stock?{query}"))
    assert [(r["sku"], r["locationId"]) for r in body["results"]] == expected


def test_stock_levels_query_count_is_pinned(stock, boss, django_assert_num_queries):
    client = APIClient()
    client.force_authenticate(boss)
    with django_assert_num_queries(3):  # the count, the page, the reservations
        client.get("/api/inventory/stock")


# --- locations and reservations ----------------------------------------------------


def test_locations_list_with_paths(stock, boss):
    body = ok(api(boss).get("/api/inventory/locations?search=A-R2"))
    assert body["results"] == [
        {
            "id": "A-R2",
            "name": "Rack 2",
            "kind": "Rack",
            "path": "Zone A - Rack 2",
            "parentId": "A",
            "isActive": True,
        },
        {
            "id": "A-R2-B1",
            "name": "Bin 1",
            "kind": "Bin",
            "path": "Zone A - Rack 2 - Bin 1",
            "parentId": "A-R2",
            "isActive": True,
        },
    ]
    zone = ok(api(boss).get("/api/inventory/locations?search=Zone%20B"))["results"]
    assert [(z["id"], z["parentId"], z["kind"]) for z in zone] == [("B", None, "Zone")]


def test_reservations_list_and_filters(stock, boss):
    make_runbook()
    work_order = make_work_order(boss)
    for_wo = services.item_reserve(
        item_code="RM-ADH-001", quantity=2, work_order_id=work_order.pk, actor=boss
    )
    for_dispatch = services.item_reserve(
        item_code="CELL-2026-1001", quantity=1, dispatch_ref="DSP-9", actor=boss
    )
    services.reservation_release(reservation_id=for_dispatch.pk, actor=boss)
    client = api(boss)
    body = ok(client.get("/api/inventory/reservations"))
    assert [r["id"] for r in body["results"]] == [for_dispatch.pk, for_wo.pk]
    assert set(body["results"][0]) == RESERVATION_KEYS
    assert body["results"][0]["status"] == "Released"
    assert body["results"][0]["closedAt"] is not None

    def found(query):
        return [
            r["id"]
            for r in ok(client.get(f"/api/inventory/reservations?{query}"))["results"]
        ]

    assert found(f"workOrderId={work_order.pk}") == [for_wo.pk]
    assert found("itemId=CELL-2026-1001") == [for_dispatch.pk]
    assert found("dispatchRef=DSP-9") == [for_dispatch.pk]
    assert found("status=active") == [for_wo.pk]
    assert found("status=Released") == [for_dispatch.pk]


# --- POST reserve ------------------------------------------------------------------


def test_reserve_answers_201_with_the_reservation(stock, make_user):
    planner = make_user("planner")
    response = api(planner).post(
        "/api/inventory/items/RM-ADH-001/reserve",
        {"quantity": 4, "dispatchRef": "DSP-0042"},
        format="json",
    )
    body = ok(response, 201)
    assert set(body) == RESERVATION_KEYS
    assert {k: body[k] for k in RESERVATION_KEYS - {"id", "createdAt"}} == {
        "itemId": "RM-ADH-001",
        "sku": "RM-ADHESIVE",
        "quantity": 4,
        "status": "Active",
        "workOrderId": None,
        "dispatchRef": "DSP-0042",
        "createdBy": planner.pk,
        "closedAt": None,
    }


def test_reserve_for_a_work_order(stock, boss):
    make_runbook()
    work_order = make_work_order(boss)
    body = ok(
        api(boss).post(
            "/api/inventory/items/RM-ADH-001/reserve/",
            {"quantity": 2, "workOrderId": work_order.pk},
            format="json",
        ),
        201,
    )
    assert (body["workOrderId"], body["dispatchRef"]) == (work_order.pk, "")


def test_reserve_beyond_available_is_409_insufficient_stock(stock, boss):
    client = api(boss)
    url = "/api/inventory/items/RM-ADH-001/reserve"
    ok(client.post(url, {"quantity": 8, "dispatchRef": "DSP-1"}, format="json"), 201)
    before = row_counts()
    body = refused(
        client.post(url, {"quantity": 3, "dispatchRef": "DSP-2"}, format="json"),
        409,
        "insufficient_stock",
    )
    assert body["details"] == {"requested": 3, "available": 2}
    assert body["error"] == "Only 2 kg of RM-ADH-001 available; 3 cannot be reserved."
    assert row_counts() == before


@pytest.mark.parametrize("code", ["CELL-2026-1002", "MOD-2026-0001"])
def test_reserving_held_or_blocked_stock_is_409(stock, boss, code):
    before = row_counts()
    refused(
        api(boss).post(
            f"/api/inventory/items/{code}/reserve",
            {"quantity": 1, "dispatchRef": "DSP-1"},
            format="json",
        ),
        409,
        "stock_not_available",
    )
    assert row_counts() == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"quantity"}),
        ({"quantity": "many", "dispatchRef": "D"}, {"quantity"}),
        ({"quantity": 0, "dispatchRef": "D"}, {"quantity"}),
        ({"quantity": 1}, {"workOrderId"}),
        ({"quantity": 1, "workOrderId": 1, "dispatchRef": "D"}, {"workOrderId"}),
        ({"quantity": 1, "workOrderId": 987654}, {"workOrderId"}),
        ({"quantity": 1, "workOrderId": "x"}, {"workOrderId"}),
        ({"quantity": 1, "dispatchRef": "D" * 65}, {"dispatchRef"}),
    ],
)
def test_reserve_bad_input_is_400_with_field_details(stock, boss, body, fields):
    before = row_counts()
    response = refused(
        api(boss).post("/api/inventory/items/RM-ADH-001/reserve", body, format="json"),
        400,
        "validation_error",
    )
    assert set(response["details"]) == fields
    assert row_counts() == before


# --- POST release / consume --------------------------------------------------------


def test_release_and_consume_over_http(stock, boss, make_user):
    first = services.item_reserve(
        item_code="RM-ADH-001", quantity=3, dispatch_ref="DSP-1", actor=boss
    )
    second = services.item_reserve(
        item_code="RM-ADH-001", quantity=5, dispatch_ref="DSP-2", actor=boss
    )
    released = ok(
        api(make_user("planner")).post(
            f"/api/inventory/reservations/{first.pk}/release",
            {"reason": "Plan changed"},
            format="json",
        )
    )
    assert released["status"] == "Released"
    consumed = ok(
        api(make_user("operator")).post(
            f"/api/inventory/reservations/{second.pk}/consume"
        )
    )
    assert consumed["status"] == "Consumed"
    item = ok(api(boss).get("/api/inventory/items/RM-ADH-001"))
    assert (item["quantity"], item["reserved"], item["available"]) == (5, 0, 5)
    before = row_counts()
    refused(
        api(boss).post(f"/api/inventory/reservations/{second.pk}/release"),
        409,
        "illegal_transition",
    )
    assert row_counts() == before


# --- POST hold / release-hold / block ----------------------------------------------


def test_supervisor_holds_and_releases_with_audit(stock, boss):
    client = api(boss)
    held = ok(
        client.post(
            "/api/inventory/items/CELL-2026-1001/hold",
            {"reason": "Swollen can"},
            format="json",
        )
    )
    assert set(held) == DETAIL_KEYS
    assert (held["status"], held["holdReason"], held["available"]) == (
        "Hold",
        "Swollen can",
        0,
    )
    record = AuditRecord.objects.order_by("-id").first()
    assert (record.action, record.actor_username, record.target_id) == (
        "item.held",
        "sam",
        str(Item.objects.get(code="CELL-2026-1001").pk),
    )
    assert (record.before["status"], record.after["status"]) == ("good", "hold")
    assert record.after["hold_reason"] == "Swollen can"
    released = ok(client.post("/api/inventory/items/CELL-2026-1001/release-hold"))
    assert (released["status"], released["holdReason"]) == ("Good", "")
    record = AuditRecord.objects.order_by("-id").first()
    assert (record.action, record.before["status"], record.after["status"]) == (
        "item.hold_released",
        "hold",
        "good",
    )


def test_hold_without_a_reason_is_400_and_changes_nothing(stock, boss):
    before, state = row_counts(), item_state("CELL-2026-1001")
    for body in ({}, {"reason": "   "}, {"reason": "x" * 301}):
        response = refused(
            api(boss).post(
                "/api/inventory/items/CELL-2026-1001/hold", body, format="json"
            ),
            400,
            "validation_error",
        )
        assert set(response["details"]) == {"reason"}
    assert (row_counts(), item_state("CELL-2026-1001")) == (before, state)


def test_hold_of_a_held_item_and_release_of_a_good_one_are_409(stock, boss):
    client = api(boss)
    before = row_counts()
    refused(
        client.post(
            "/api/inventory/items/CELL-2026-1002/hold", {"reason": "x"}, format="json"
        ),
        409,
        "illegal_transition",
    )
    refused(
        client.post("/api/inventory/items/CELL-2026-1001/release-hold"),
        409,
        "illegal_transition",
    )
    assert row_counts() == before


def test_block_over_http(stock, boss):
    body = ok(
        api(boss).post(
            "/api/inventory/items/RM-ADH-001/block",
            {"reason": "Expired"},
            format="json",
        )
    )
    assert (body["status"], body["holdReason"]) == ("Blocked", "Expired")
    assert Item.objects.get(code="RM-ADH-001").status == ItemStatus.BLOCKED


@pytest.mark.parametrize("role", ["operator", "planner", "auditor"])
def test_only_supervisors_hold_release_and_block(stock, make_user, role):
    client = api(make_user(role))
    before = row_counts()
    states = [item_state(c) for c in ("CELL-2026-1001", "CELL-2026-1002")]
    for path, body in (
        ("CELL-2026-1001/hold", {"reason": "x"}),
        ("CELL-2026-1002/release-hold", {}),
        ("CELL-2026-1001/block", {"reason": "x"}),
    ):
        refused(
            client.post(f"/api/inventory/items/{path}", body, format="json"),
            403,
            "permission_denied",
        )
    assert row_counts() == before
    assert [item_state(c) for c in ("CELL-2026-1001", "CELL-2026-1002")] == states


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("operator", False), ("auditor", False), ("planner", True), ("plant-head", True)],
)
def test_who_may_reserve(stock, make_user, role, allowed):
    response = api(make_user(role)).post(
        "/api/inventory/items/RM-ADH-001/reserve",
        {"quantity": 1, "dispatchRef": "DSP-1"},
        format="json",
    )
    if allowed:
        ok(response, 201)
    else:
        refused(response, 403, "permission_denied")


# --- POST move / issue -------------------------------------------------------------


def test_move_over_http_is_recorded(stock, make_user):
    operator = make_user("operator")
    body = ok(
        api(operator).post(
            "/api/inventory/items/CELL-2026-1001/move",
            {"locationId": "B-R1", "reason": "Rebalance racks"},
            format="json",
        )
    )
    assert (body["location"], body["locationId"]) == ("Zone B - Rack 1", "B-R1")
    movement = StockMovement.objects.get(kind=MovementKind.MOVE)
    assert (
        movement.item.code,
        movement.from_location.code,
        movement.to_location.code,
        movement.moved_by,
        movement.reason,
    ) == ("CELL-2026-1001", "A-R2", "B-R1", operator, "Rebalance racks")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"reason": "x"}, {"locationId"}),
        ({"locationId": "B-R1"}, {"reason"}),
        ({"locationId": "NOPE", "reason": "x"}, {"locationId"}),
    ],
)
def test_move_bad_input_is_400_and_changes_nothing(stock, boss, body, fields):
    before, state = row_counts(), item_state("CELL-2026-1001")
    response = refused(
        api(boss).post("/api/inventory/items/CELL-2026-1001/move", body, format="json"),
        400,
        "validation_error",
    )
    assert set(response["details"]) == fields
    assert (row_counts(), item_state("CELL-2026-1001")) == (before, state)


def test_move_to_where_it_is_is_409_and_changes_nothing(stock, boss):
    """A well-formed move the item's state refuses (it is already there) is a
    409 in the envelope, like any refused state change; nothing is written
    (no movement, no audit record, no event)."""
    before, state = row_counts(), item_state("CELL-2026-1001")
    response = refused(
        api(boss).post(
            "/api/inventory/items/CELL-2026-1001/move",
            {"locationId": "A-R2", "reason": "x"},
            format="json",
        ),
        409,
        "already_at_location",
    )
    assert response["details"] == {
        "locationId": ["CELL-2026-1001 is already at Zone A - Rack 2."]
    }
    assert (row_counts(), item_state("CELL-2026-1001")) == (before, state)


def test_issue_over_http(stock, make_user):
    client = api(make_user("operator"))
    body = ok(
        client.post(
            "/api/inventory/items/RM-ADH-001/issue",
            {"quantity": 4, "reason": "Line 2"},
            format="json",
        )
    )
    assert (body["quantity"], body["available"]) == (6, 6)
    before = row_counts()
    refused(
        client.post(
            "/api/inventory/items/RM-ADH-001/issue", {"quantity": 7}, format="json"
        ),
        409,
        "insufficient_stock",
    )
    refused(
        client.post(
            "/api/inventory/items/CELL-2026-1002/issue", {"quantity": 1}, format="json"
        ),
        409,
        "stock_not_available",
    )
    assert row_counts() == before


# --- over a real socket ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_contract_endpoints_over_http(http, stock, boss):
    headers = bearer(boss)
    categories = http.get("/api/inventory/categories", headers=headers)
    assert categories.status_code == 200
    assert categories.headers["X-Request-ID"]
    items = http.get(
        "/api/inventory/items",
        params={"category": "cells", "status": "Good", "search": "CELL"},
        headers=headers,
    )
    assert items.status_code == 200
    assert [row["id"] for row in items.json()["results"]] == ["CELL-2026-1001"]
    assert http.get("/api/inventory/items").status_code == 401


# --- the list page as values() rows (bpmos.listrows) --------------------------------


def test_item_list_is_byte_for_byte_the_serializers(stock, boss):
    """Every depth of location (zone, rack, bin), each status, aged at one
    clock: the page read as values() rows prints what ItemSerializer does."""
    from inventory.api.views import ItemListView
    from tests.listrows_support import assert_same_page

    receive(boss, "CELL-2026-1003", location="A")  # a zone itself
    at = timezone.now() + timedelta(days=400)
    for path in (
        "/api/inventory/items",
        "/api/inventory/items?page_size=2&page=2",
        "/api/inventory/items?status=hold",
        "/api/inventory/items?category=cells&search=CELL",
        "/api/inventory/items?location=A",
        "/api/inventory/items?sku=none",
    ):
        assert_same_page(ItemListView, path, boss, at=at)
    body = assert_same_page(ItemListView, "/api/inventory/items", boss, at=at)
    assert b'"location":"Zone A - Rack 2 - Bin 1"' in body
    assert b'"status":"Blocked"' in body
    assert b'"age":"1 year"' in body
