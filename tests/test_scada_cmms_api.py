"""The maintenance work orders API over real HTTP (``POST /api/work-orders/create``,
``GET /api/work-orders/maintenance[/{id}]``, ``POST .../{id}/retry``) with a
real CMMS on 127.0.0.1 and Celery running its tasks in the caller; role rules;
bad input answered 400 changing nothing; the secret never in an answer. And the
admin: read-only delivery log, the retry action."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import resolve, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from bpmos.celery import app as celery_app
from elog.models import AuditRecord
from scada import maintenance
from scada.models import AlarmEvent, DeliveryState, MaintenanceWorkOrder
from tests.conftest import bearer
from tests.support import assert_envelope
from tests.test_scada_cmms_server import TOKEN, FakeCmms, cmms_connector

BODY = {
    "asset_id": "la-weld-01",
    "asset_name": "Laser welder 1",
    "description": "Chiller temperature high",
    "priority": "critical",
    "created_by_system": "scada-hmi",
    "assignee": "maintenance-shift-b",
    "scada_snapshot": {"temperature": 61.5},
}
CREATE = "/api/work-orders/create"
LIST = "/api/work-orders/maintenance"


@pytest.fixture
def eager():
    """Celery runs tasks in the caller, so the delivery queued after commit is
    made before the request answers."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    yield
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = before


@pytest.fixture
def cmms(db):
    with FakeCmms() as server:
        cmms_connector(server.url)
        yield server


def counts() -> tuple[int, int]:
    return MaintenanceWorkOrder.objects.count(), AuditRecord.objects.count()


def alarm() -> AlarmEvent:
    return AlarmEvent.objects.create(
        timestamp=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        tag_name="weld.temp",
        severity="high",
        message="Weld chiller temperature high",
    )


# --- create -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_supervisor_creates_one_and_it_is_sent(http, make_user, cmms, eager):
    supervisor = make_user("supervisor")

    response = http.post(CREATE, json=BODY, headers=bearer(supervisor))

    assert response.status_code == 201, response.text
    body = response.json()
    work_order = MaintenanceWorkOrder.objects.get()
    assert body["id"] == work_order.pk
    assert {key: body[key] for key in BODY} == BODY
    assert body["source_alarm_id"] is None
    assert body["delivery_state"] == "sent"
    assert body["attempts"] == 1
    assert body["external_id"] == "CMMS-1"
    assert body["last_error"] == ""
    assert body["created_by"] == supervisor.pk
    assert [(a["ok"], a["status_code"]) for a in body["delivery_log"]] == [(True, 201)]
    assert TOKEN not in response.text
    [post] = cmms.posts()
    assert post["json"] == {**BODY, "source_alarm_id": None}
    created = AuditRecord.objects.get(action="maintenance_work_order.created")
    assert created.actor_id == supervisor.pk
    assert created.after["asset_id"] == "la-weld-01"


@pytest.mark.django_db(transaction=True)
def test_with_no_cmms_it_is_stored_queued_saying_why(http, make_user, eager):
    response = http.post(
        CREATE, json={**BODY, "priority": "low"}, headers=bearer(make_user("admin"))
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["delivery_state"], body["attempts"]) == ("queued", 0)
    assert body["last_error"].startswith("No CMMS connector is configured")
    assert body["delivery_log"] == []


@pytest.mark.django_db(transaction=True)
def test_the_cmms_down_leaves_it_queued_and_in_the_failure_log(
    http, make_user, eager, settings
):
    settings.BPMOS_CMMS_BACKOFF_BASE_S = 3600  # the task's retry is not due yet
    with FakeCmms([503]) as cmms:
        cmms_connector(cmms.url)
        response = http.post(CREATE, json=BODY, headers=bearer(make_user("admin")))

    body = response.json()
    assert response.status_code == 201
    assert (body["delivery_state"], body["attempts"]) == ("queued", 1)
    assert body["last_error"].startswith("The CMMS answered 503 Service Unavailable")
    assert [(a["ok"], a["status_code"]) for a in body["delivery_log"]] == [(False, 503)]
    assert body["next_attempt_at"] is not None
    assert TOKEN not in response.text


BAD_BODIES = [
    ({**BODY, "priority": "urgent"}, "priority"),
    ({k: v for k, v in BODY.items() if k != "asset_id"}, "asset_id"),
    ({**BODY, "asset_name": "x" * 201}, "asset_name"),
    ({**BODY, "description": 42}, "description"),
    ({**BODY, "source_alarm_id": 987654}, "source_alarm_id"),
    ({**BODY, "source_alarm_id": "one"}, "source_alarm_id"),
    ({**BODY, "source_alarm_id": 10**20}, "source_alarm_id"),
    ({**BODY, "scada_snapshot": [1, 2]}, "scada_snapshot"),
    ({**BODY, "assignee": "y" * 101}, "assignee"),
]


@pytest.mark.django_db(transaction=True)
def test_bad_input_is_400_and_changes_nothing(http, make_user, cmms, eager):
    headers = bearer(make_user("supervisor"))
    before = counts()
    for bad, field in BAD_BODIES:
        response = http.post(CREATE, json=bad, headers=headers)
        body = assert_envelope(response, 400, "validation_error")
        assert field in body["details"], (field, body)
    not_an_object = http.post(CREATE, json=[BODY], headers=headers)
    assert_envelope(not_an_object, 400, "validation_error")

    assert counts() == before
    assert cmms.posts() == []


@pytest.mark.django_db(transaction=True)
def test_a_second_work_order_for_an_alarm_is_409(http, make_user, eager):
    source = alarm()
    opened = maintenance.work_order_for_alarm(alarm_id=source.pk)
    before = counts()

    response = http.post(
        CREATE,
        json={**BODY, "source_alarm_id": source.pk},
        headers=bearer(make_user("supervisor")),
    )

    body = assert_envelope(response, 409, "work_order_exists")
    assert body["details"] == {"work_order_id": opened.pk}
    assert counts() == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("operator", 403),
        ("planner", 403),
        ("auditor", 403),
        ("supervisor", 201),
        ("plant-head", 201),
        ("admin", 201),
    ],
)
def test_supervisors_and_above_create(http, make_user, eager, role, status):
    response = http.post(CREATE, json=BODY, headers=bearer(make_user(role)))
    assert response.status_code == status, response.text
    assert MaintenanceWorkOrder.objects.count() == (1 if status == 201 else 0)


@pytest.mark.django_db(transaction=True)
def test_anonymous_callers_are_401(http):
    assert_envelope(http.post(CREATE, json=BODY), 401, "not_authenticated")
    assert_envelope(http.get(LIST), 401, "not_authenticated")


# --- list, detail, retry -----------------------------------------------------------


def make(**extra) -> MaintenanceWorkOrder:
    data = {**BODY, **{k: v for k, v in extra.items() if k in BODY}}
    work_order = maintenance.work_order_create(data=data, actor=None)
    state = {k: v for k, v in extra.items() if k not in BODY}
    if state:
        MaintenanceWorkOrder.objects.filter(pk=work_order.pk).update(**state)
    return work_order


@pytest.mark.django_db
def test_everyone_signed_in_lists_with_filters(make_user):
    client = APIClient()
    client.force_authenticate(make_user("auditor"))
    source = alarm()
    sent = make(priority="high", delivery_state="sent", external_id="CMMS-9")
    failed = make(priority="low", delivery_state="failed", last_error="boom")
    queued = make(priority="low", source_alarm_id=source.pk)

    def ids(**params) -> list[int]:
        response = client.get(LIST, params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [queued.pk, failed.pk, sent.pk]
    assert ids(delivery_state="sent") == [sent.pk]
    assert ids(delivery_state=["queued", "failed"]) == [queued.pk, failed.pk]
    assert ids(priority="low") == [queued.pk, failed.pk]
    assert ids(source_alarm=source.pk) == [queued.pk]
    row = client.get(LIST, {"delivery_state": "failed"}).json()["results"][0]
    assert {k: row[k] for k in ("delivery_state", "attempts", "last_error")} == {
        "delivery_state": "failed",
        "attempts": 0,
        "last_error": "boom",
    }
    assert "delivery_log" not in row
    bad = client.get(LIST, {"delivery_state": "lost"})
    assert_envelope(bad, 400, "validation_error")


@pytest.mark.django_db
def test_the_list_costs_two_queries_however_many_rows(
    make_user, django_assert_num_queries
):
    client = APIClient()
    client.force_authenticate(make_user("operator"))
    make()
    with django_assert_num_queries(2):
        client.get(LIST)
    for _ in range(6):
        make()
    with django_assert_num_queries(2):
        assert client.get(LIST).json()["count"] == 7


@pytest.mark.django_db(transaction=True)
def test_detail_shows_the_delivery_log(http, make_user, eager):
    with FakeCmms([500]) as cmms:
        cmms_connector(cmms.url)
        work_order = make()  # the first attempt, after commit: 500
        MaintenanceWorkOrder.objects.filter(pk=work_order.pk).update(
            next_attempt_at=timezone.now()
        )
        maintenance.work_order_attempt(work_order_id=work_order.pk)

    response = http.get(f"{LIST}/{work_order.pk}", headers=bearer(make_user("auditor")))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["delivery_state"], body["attempts"]) == ("sent", 2)
    log = body["delivery_log"]
    assert [(a["ok"], a["status_code"]) for a in log] == [(False, 500), (True, 201)]
    assert log[0]["error"].startswith("The CMMS answered 500")
    assert set(log[0]) == {"id", "at", "ok", "status_code", "error", "duration_ms"}
    assert TOKEN not in response.text
    missing = http.get(f"{LIST}/999999", headers=bearer(make_user("auditor")))
    assert_envelope(missing, 404, "not_found")


@pytest.mark.django_db(transaction=True)
def test_retry_sends_a_failed_one_and_refuses_a_sent_one(http, make_user, eager):
    supervisor = bearer(make_user("supervisor"))
    with FakeCmms([422]) as cmms:
        cmms_connector(cmms.url)
        created = http.post(CREATE, json=BODY, headers=supervisor).json()
        assert (created["delivery_state"], created["next_attempt_at"]) == (
            "failed",
            None,
        )
        operator = http.post(
            f"{LIST}/{created['id']}/retry", headers=bearer(make_user("operator"))
        )
        assert_envelope(operator, 403, "permission_denied")

        retried = http.post(f"{LIST}/{created['id']}/retry", headers=supervisor)

    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["delivery_state"], body["attempts"], body["external_id"]) == (
        "sent",
        2,
        "CMMS-1",
    )
    before = counts()
    again = http.post(f"{LIST}/{created['id']}/retry", headers=supervisor)
    assert_envelope(again, 409, "already_sent")
    assert counts() == before
    unknown = http.post(f"{LIST}/999999/retry", headers=supervisor)
    assert_envelope(unknown, 404, "not_found")


def test_the_production_work_order_routes_are_untouched():
    assert resolve("/api/workorders/").url_name == "workorder-list"
    assert resolve(CREATE).url_name == "maintenance-work-order-create"
    assert resolve(f"{LIST}/5/retry").url_name == "maintenance-work-order-retry"


# --- admin -------------------------------------------------------------------------

CHANGELIST = "admin:scada_maintenanceworkorder_changelist"


def act(client, work_orders, action: str = "retry"):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [w.pk for w in work_orders]},
        follow=True,
    )


@pytest.mark.django_db
def test_admin_shows_the_delivery_log_read_only(client, make_user):
    work_order = make(delivery_state="failed", last_error="The CMMS answered 500")
    work_order.delivery_log.create(ok=False, status_code=500, error="boom 500")
    client.force_login(make_user("auditor"))

    listing = client.get(reverse(CHANGELIST), {"delivery_state__exact": "failed"})
    page = client.get(
        reverse("admin:scada_maintenanceworkorder_change", args=[work_order.pk])
    )

    assert listing.status_code == 200
    assert [w.pk for w in listing.context["cl"].result_list] == [work_order.pk]
    # Auditors retry nothing: the back-office's CSV export is their one action.
    choices = listing.context["action_form"].fields["action"].choices
    assert [value for value, _ in choices if value] == ["export_csv"]
    assert page.status_code == 200
    assert "boom 500" in page.content.decode()
    inline = page.context["inline_admin_formsets"][0]
    assert inline.has_add_permission is False
    assert inline.has_change_permission is False


@pytest.mark.django_db
def test_admin_retry_goes_through_the_service(client, make_user):
    admin_user = make_user("admin")
    failed = make(delivery_state="failed", next_attempt_at=None)
    sent = make(delivery_state="sent", external_id="CMMS-3", next_attempt_at=None)
    client.force_login(admin_user)

    response = act(client, [failed, sent])

    text = response.content.decode()
    assert f"MWO-{sent.pk}: MWO-{sent.pk} was already sent to the CMMS" in text
    assert "Queued 1 work order(s)." in text
    failed.refresh_from_db()
    assert failed.delivery_state == DeliveryState.QUEUED
    assert failed.next_attempt_at is not None
    record = AuditRecord.objects.get(action="maintenance_work_order.retried")
    assert (record.actor_id, record.target_id) == (admin_user.pk, str(failed.pk))


@pytest.mark.django_db
def test_admin_closes_through_the_service_and_the_alarm_may_open_another(
    client, make_user
):
    source = alarm()
    opened = maintenance.work_order_for_alarm(alarm_id=source.pk)
    client.force_login(make_user("admin"))

    response = act(client, [opened], action="close")

    assert "Closed 1 work order(s)." in response.content.decode()
    opened.refresh_from_db()
    assert opened.closed_at is not None
    closed = AuditRecord.objects.filter(action="maintenance_work_order.closed")
    assert closed.count() == 1
    reopened = maintenance.work_order_for_alarm(alarm_id=source.pk)
    assert reopened.pk != opened.pk
