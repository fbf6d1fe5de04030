"""Work orders over HTTP (mobile contract): create, list, detail, stages, cancel."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from runbooks import services
from runbooks.models import WorkOrder, WorkOrderStage
from tests.conftest import bearer
from tests.factories_production import (
    T0,
    iso,
    make_runbook,
    make_work_order,
    row_counts,
    stages_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {
    "product_code": "PACK-48V",
    "lot_no": "LOT-7",
    "qty": 20,
    "planned_start": "2026-03-02T08:00:00Z",
    "planned_end": "2026-03-02T11:00:00Z",
}
WORK_ORDER_KEYS = {
    "id",
    "product_code",
    "lot_no",
    "qty",
    "planned_start",
    "planned_end",
    "status",
    "runbook",
    "started_at",
    "completed_at",
    "created_by",
    "created_at",
}


def expected_stage(stage: WorkOrderStage, **changes) -> dict:
    stage.refresh_from_db()
    return {
        "id": stage.pk,
        "work_order_id": stage.work_order_id,
        "stage_name": stage.stage_name,
        "stage_code": stage.stage.code,
        "planned_start": iso(stage.planned_start),
        "planned_end": iso(stage.planned_end),
        "actual_start": iso(stage.actual_start),
        "actual_end": iso(stage.actual_end),
        "status": stage.status,
        "hold_reason": stage.hold_reason,
        "assignees": [],
        **changes,
    }


def expected_work_order(work_order: WorkOrder) -> dict:
    work_order.refresh_from_db()
    return {
        "id": work_order.pk,
        "product_code": work_order.product_code,
        "lot_no": work_order.lot_no,
        "qty": work_order.qty,
        "planned_start": iso(work_order.planned_start),
        "planned_end": iso(work_order.planned_end),
        "status": work_order.status,
        "runbook": work_order.runbook.slug,
        "started_at": iso(work_order.started_at),
        "completed_at": iso(work_order.completed_at),
        "created_by": work_order.created_by_id,
        "created_at": iso(work_order.created_at),
    }


# --- create ------------------------------------------------------------------------


def test_planner_creates_work_order_with_stages_of_default_runbook(http, make_user):
    make_runbook()
    planner = make_user("planner")
    response = http.post("/api/workorders/", json=BODY, headers=bearer(planner))
    assert response.status_code == 201, response.text
    work_order = WorkOrder.objects.get()
    body = response.json()
    assert set(body) == WORK_ORDER_KEYS | {"stages"}
    assert {k: v for k, v in body.items() if k != "stages"} == expected_work_order(
        work_order
    )
    assert body["runbook"] == "manufacturing"
    assert body["status"] == "planned"
    assert body["created_by"] == planner.pk
    windows = [
        ("Cell Grading (S1)", "S1", "2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z"),
        ("Module Assembly (S2)", "S2", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
        ("End-of-Line Test (S3)", "S3", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"),
    ]
    assert body["stages"] == [
        {
            "id": stage.pk,
            "work_order_id": work_order.pk,
            "stage_name": name,
            "stage_code": code,
            "planned_start": start,
            "planned_end": end,
            "actual_start": None,
            "actual_end": None,
            "status": "planned",
            "hold_reason": "",
            "assignees": [],
        }
        for stage, (name, code, start, end) in zip(
            stages_of(work_order), windows, strict=True
        )
    ]
    record = AuditRecord.objects.get(action="workorder.created")
    assert record.actor_id == planner.pk
    assert record.target_id == str(work_order.pk)
    assert record.before is None
    assert record.after == {
        "runbook": "manufacturing",
        "product_code": "PACK-48V",
        "lot_no": "LOT-7",
        "qty": 20,
        "planned_start": "2026-03-02T08:00:00Z",
        "planned_end": "2026-03-02T11:00:00Z",
        "status": "planned",
    }
    assert list(OutboxEvent.objects.values_list("name", flat=True)) == [
        "workorder.created"
    ]


def test_create_with_named_runbook_and_no_trailing_slash(http, make_user):
    make_runbook()
    make_runbook(slug="dispatch", is_default=False)
    response = http.post(
        "/api/workorders",
        json={**BODY, "runbook": "dispatch"},
        headers=bearer(make_user("supervisor")),
    )
    assert response.status_code == 201
    assert response.json()["runbook"] == "dispatch"
    assert [s["stage_code"] for s in response.json()["stages"]] == ["S1", "S2", "S3"]
    assert WorkOrderStage.objects.filter(stage__runbook__slug="dispatch").count() == 3


@pytest.mark.parametrize(
    ("changes", "details"),
    [
        pytest.param({"qty": 0}, {"qty": ["Must be greater than 0."]}, id="qty-zero"),
        pytest.param(
            {"qty": -5}, {"qty": ["Must be greater than 0."]}, id="qty-negative"
        ),
        pytest.param(
            {"qty": "many"}, {"qty": ["A valid integer is required."]}, id="qty-text"
        ),
        pytest.param(
            {"planned_end": "2026-03-02T07:00:00Z"},
            {"planned_end": ["Must be after planned_start."]},
            id="window-reversed",
        ),
        pytest.param(
            {"planned_end": BODY["planned_start"]},
            {"planned_end": ["Must be after planned_start."]},
            id="window-empty",
        ),
        pytest.param(
            {"qty": 0, "planned_end": "2026-03-02T07:00:00Z"},
            {
                "qty": ["Must be greater than 0."],
                "planned_end": ["Must be after planned_start."],
            },
            id="both-rules",
        ),
        pytest.param(
            {"runbook": "nope"},
            {"runbook": ["Unknown runbook 'nope'."]},
            id="unknown-runbook",
        ),
        pytest.param(
            {"product_code": ""},
            {"product_code": ["This field may not be blank."]},
            id="blank-product",
        ),
        pytest.param(
            {"lot_no": "L" * 65},
            {"lot_no": ["Ensure this field has no more than 64 characters."]},
            id="long-lot",
        ),
    ],
)
def test_create_refuses_bad_input_and_creates_nothing(
    http, make_user, changes, details
):
    make_runbook()
    planner = make_user("planner")
    before = row_counts()
    response = http.post(
        "/api/workorders/", json={**BODY, **changes}, headers=bearer(planner)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"] == details
    assert row_counts() == before


def test_create_with_missing_fields_names_each_one(http, make_user):
    make_runbook()
    before = row_counts()
    response = http.post(
        "/api/workorders/", json={}, headers=bearer(make_user("admin"))
    )
    assert response.status_code == 400
    required = ["This field is required."]
    assert response.json()["details"] == {
        "product_code": required,
        "lot_no": required,
        "qty": required,
        "planned_start": required,
        "planned_end": required,
    }
    assert row_counts() == before


def test_create_with_bad_datetime_is_400(http, make_user):
    make_runbook()
    before = row_counts()
    response = http.post(
        "/api/workorders/",
        json={**BODY, "planned_start": "tomorrow"},
        headers=bearer(make_user("planner")),
    )
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"planned_start"}
    assert row_counts() == before


def test_create_without_runbook_when_no_default_is_400(http, make_user):
    make_runbook(is_default=False)
    before = row_counts()
    response = http.post(
        "/api/workorders/", json=BODY, headers=bearer(make_user("planner"))
    )
    assert response.status_code == 400
    assert response.json()["details"] == {
        "runbook": ["Name a runbook; no default is configured."]
    }
    assert row_counts() == before


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_planners_create_work_orders(http, make_user, role):
    make_runbook()
    before = row_counts()
    response = http.post("/api/workorders/", json=BODY, headers=bearer(make_user(role)))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert row_counts() == before


def test_create_needs_a_token(http, db):
    make_runbook()
    response = http.post("/api/workorders/", json=BODY)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert WorkOrder.objects.count() == 0


# --- list, detail, stages ----------------------------------------------------------


@pytest.fixture
def three_orders(make_user):
    """Three work orders on two runbooks; the second is cancelled."""
    planner = make_user("planner")
    manufacturing = make_runbook()
    dispatch = make_runbook(slug="dispatch", is_default=False)
    first = make_work_order(planner, runbook=manufacturing, lot_no="LOT-1")
    second = make_work_order(
        planner,
        runbook=manufacturing,
        start=T0 + timedelta(days=1),
        product_code="PACK-72V",
        lot_no="LOT-2",
    )
    third = make_work_order(
        planner, runbook=dispatch, start=T0 + timedelta(days=2), lot_no="LOT-3"
    )
    services.work_order_cancel(work_order_id=second.pk, reason="dup", actor=planner)
    return first, second, third


def listed_ids(http, user, query: str = "") -> list[int]:
    response = http.get(f"/api/workorders/{query}", headers=bearer(user))
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["results"]]


def test_list_is_paginated_newest_planned_first(http, make_user, three_orders):
    first, second, third = three_orders
    response = http.get("/api/workorders/", headers=bearer(make_user("operator")))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    assert body["results"] == [
        expected_work_order(third),
        expected_work_order(second),
        expected_work_order(first),
    ]
    page = http.get(
        "/api/workorders/?page_size=2&page=2", headers=bearer(make_user("auditor"))
    ).json()
    assert page["count"] == 3
    assert [row["id"] for row in page["results"]] == [first.pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=planned", ["third", "first"]),
        ("?status=cancelled", ["second"]),
        ("?status=planned&status=cancelled", ["third", "second", "first"]),
        ("?runbook=dispatch", ["third"]),
        ("?runbook=manufacturing", ["second", "first"]),
        ("?product_code=PACK-72V", ["second"]),
        ("?lot_no=LOT-3", ["third"]),
        ("?search=72V", ["second"]),
        ("?search=lot-1", ["first"]),
        ("?ordering=planned_start", ["first", "second", "third"]),
        ("?ordering=-id", ["third", "second", "first"]),
        ("?status=planned&runbook=manufacturing", ["first"]),
    ],
)
def test_list_filters_search_and_ordering(
    http, make_user, three_orders, query, expected
):
    names = dict(zip(["first", "second", "third"], three_orders, strict=True))
    ids = listed_ids(http, make_user("operator"), query)
    assert ids == [names[name].pk for name in expected]


def test_list_refuses_an_unknown_status_filter(http, make_user, three_orders):
    response = http.get(
        "/api/workorders/?status=sideways", headers=bearer(make_user("operator"))
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["details"]) == {"status"}


def test_detail_has_the_stages(http, make_user, three_orders):
    first = three_orders[0]
    for path in (f"/api/workorders/{first.pk}", f"/api/workorders/{first.pk}/"):
        response = http.get(path, headers=bearer(make_user("auditor")))
        assert response.status_code == 200
        assert response.json() == {
            **expected_work_order(first),
            "stages": [expected_stage(stage) for stage in stages_of(first)],
        }


def test_stages_of_a_work_order_in_runbook_order(http, make_user, three_orders):
    first = three_orders[0]
    response = http.get(
        f"/api/workorders/{first.pk}/stages", headers=bearer(make_user("operator"))
    )
    assert response.status_code == 200
    assert response.json() == [expected_stage(stage) for stage in stages_of(first)]
    assert [row["stage_code"] for row in response.json()] == ["S1", "S2", "S3"]


@pytest.mark.parametrize("suffix", ["", "/stages", "/metrics"])
def test_unknown_work_order_is_404(http, make_user, suffix):
    response = http.get(
        f"/api/workorders/987654{suffix}", headers=bearer(make_user("operator"))
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- cancel ------------------------------------------------------------------------


def test_planner_cancels_a_work_order_and_it_is_audited(http, make_user):
    make_runbook()
    planner = make_user("planner")
    work_order = make_work_order(planner)
    response = http.post(
        f"/api/workorders/{work_order.pk}/cancel",
        json={"reason": "Customer withdrew the order"},
        headers=bearer(planner),
    )
    assert response.status_code == 200
    assert response.json() == expected_work_order(work_order)
    assert response.json()["status"] == "cancelled"
    record = AuditRecord.objects.get(action="workorder.cancelled")
    assert record.actor_id == planner.pk
    assert record.before["status"] == "planned"
    assert record.after["status"] == "cancelled"
    assert record.after["reason"] == "Customer withdrew the order"


def test_cancel_twice_is_409_and_changes_nothing(http, make_user):
    make_runbook()
    planner = make_user("planner")
    work_order = make_work_order(planner)
    services.work_order_cancel(work_order_id=work_order.pk, reason="x", actor=planner)
    before = row_counts()
    response = http.post(
        f"/api/workorders/{work_order.pk}/cancel",
        json={"reason": "again"},
        headers=bearer(planner),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert row_counts() == before


def test_cancel_of_a_completed_work_order_is_409(http, make_user):
    make_runbook()
    supervisor = make_user("supervisor")
    work_order = make_work_order(supervisor)
    for stage in stages_of(work_order):
        services.stage_start(stage_id=stage.pk, actor=supervisor)
        services.stage_finish(stage_id=stage.pk, actor=supervisor)
    before = row_counts()
    response = http.post(
        f"/api/workorders/{work_order.pk}/cancel",
        json={"reason": "too late"},
        headers=bearer(supervisor),
    )
    assert response.status_code == 409
    assert response.json()["details"] == {"from": "completed", "to": "cancelled"}
    assert row_counts() == before
    work_order.refresh_from_db()
    assert work_order.status == "completed"


def test_cancel_needs_a_reason(http, make_user):
    make_runbook()
    planner = make_user("planner")
    work_order = make_work_order(planner)
    before = row_counts()
    for body in ({}, {"reason": "   "}):
        response = http.post(
            f"/api/workorders/{work_order.pk}/cancel",
            json=body,
            headers=bearer(planner),
        )
        assert response.status_code == 400
        assert set(response.json()["details"]) == {"reason"}
    assert row_counts() == before
    work_order.refresh_from_db()
    assert work_order.status == "planned"


def test_operator_cannot_cancel(http, make_user):
    make_runbook()
    work_order = make_work_order(make_user("planner"))
    before = row_counts()
    response = http.post(
        f"/api/workorders/{work_order.pk}/cancel",
        json={"reason": "no"},
        headers=bearer(make_user("operator")),
    )
    assert response.status_code == 403
    assert row_counts() == before


def test_cancel_unknown_work_order_is_404(http, make_user):
    response = http.post(
        "/api/workorders/987654/cancel",
        json={"reason": "x"},
        headers=bearer(make_user("planner")),
    )
    assert response.status_code == 404


# --- query counts (in-process client: no live-server thread in the count) ----------


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("orders", [1, 6])
def test_list_query_count_does_not_grow_with_rows(
    make_user, django_assert_num_queries, orders
):
    runbook = make_runbook()
    planner = make_user("planner")
    for n in range(orders):
        make_work_order(planner, runbook=runbook, lot_no=f"LOT-{n}")
    client = APIClient()
    client.credentials(**{"HTTP_AUTHORIZATION": bearer(planner)["Authorization"]})
    # user, count, page (work orders joined with their runbook)
    with django_assert_num_queries(3):
        response = client.get("/api/workorders/")
    assert response.status_code == 200
    assert response.json()["count"] == orders


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("assignees", [0, 3])
def test_detail_query_count_does_not_grow_with_assignees(
    make_user, django_assert_num_queries, assignees
):
    make_runbook()
    planner = make_user("planner")
    work_order = make_work_order(planner)
    for stage in stages_of(work_order):
        for _ in range(assignees):
            services.stage_assign(
                stage_id=stage.pk, user_id=make_user("operator").pk, actor=planner
            )
    client = APIClient()
    client.credentials(**{"HTTP_AUTHORIZATION": bearer(planner)["Authorization"]})
    # user, work order + runbook, its stages + templates, their assignments + users
    with django_assert_num_queries(4):
        response = client.get(f"/api/workorders/{work_order.pk}")
    assert response.status_code == 200
    assert [len(s["assignees"]) for s in response.json()["stages"]] == [assignees] * 3


# --- the list page as values() rows (bpmos.listrows) --------------------------------


@pytest.mark.django_db(transaction=False)
def test_list_page_is_byte_for_byte_the_serializers(make_user):
    from datetime import UTC, datetime

    from runbooks.api.views import WorkOrderListView
    from tests.listrows_support import assert_same_page

    runbook, other = make_runbook(), make_runbook(slug="rework", is_default=False)
    planner = make_user("planner")
    orders = [
        make_work_order(
            planner,
            runbook=other if n % 3 == 0 else runbook,
            lot_no=f"LOT-{n}",
            qty=n + 1,
            start=T0 + timedelta(hours=n % 4),
        )
        for n in range(7)
    ]
    # Started and completed times (one with microseconds), no creator, each status.
    WorkOrder.objects.filter(pk=orders[1].pk).update(
        status="in_progress",
        started_at=datetime(2026, 3, 2, 8, 0, 1, 250_000, tzinfo=UTC),
    )
    WorkOrder.objects.filter(pk=orders[2].pk).update(
        status="completed",
        started_at=T0,
        completed_at=T0 + timedelta(hours=2),
        created_by=None,
    )
    WorkOrder.objects.filter(pk=orders[3].pk).update(status="cancelled")
    at = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    for path in (
        "/api/workorders/",
        "/api/workorders/?page_size=3&page=2",
        "/api/workorders/?ordering=qty",
        "/api/workorders/?ordering=-status&runbook=rework",
        "/api/workorders/?status=planned&status=completed&search=LOT-",
        "/api/workorders/?lot_no=LOT-nothing",
    ):
        assert_same_page(WorkOrderListView, path, planner, at=at)
    body = assert_same_page(WorkOrderListView, "/api/workorders/", planner, at=at)
    assert b'"started_at":"2026-03-02T08:00:01.250000Z"' in body
    assert b'"created_by":null' in body
