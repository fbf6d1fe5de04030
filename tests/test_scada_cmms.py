"""Maintenance work orders delivered to a CMMS (scada.maintenance and its
Celery tasks), against a real HTTP server on 127.0.0.1: retries with backoff
and a logged attempt each, nothing lost while the CMMS is down, one open work
order per alarm (also under a race, on PostgreSQL), the auth header never in a
log."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from bpmos.celery import BEAT_SCHEDULE
from bpmos.celery import app as celery_app
from bpmos.errors import Conflict, InvalidInput
from elog.models import AuditRecord
from scada import maintenance, tasks_maintenance
from scada.maintenance import DeliveryOutcome
from scada.models import (
    AlarmEvent,
    Connector,
    ConnectorKind,
    DeliveryAttempt,
    DeliveryState,
    MaintenanceWorkOrder,
    ScadaReading,
    Tag,
)
from tests.factories_lines import machine, make_line
from tests.support import join_or_fail
from tests.test_scada_cmms_server import (
    SECRET,
    TOKEN,
    FakeCmms,
    cmms_connector,
    free_port,
)

pytestmark = pytest.mark.django_db

LATER = timedelta(days=1)  # far enough for any backoff to be due
DATA = {
    "asset_id": "la-weld-01",
    "asset_name": "Laser welder 1",
    "description": "Chiller temperature high",
    "priority": "high",
}


@pytest.fixture
def eager():
    """Celery runs tasks in the caller (apply_async included), as a worker would."""
    # The app reads Django's settings under the CELERY_ namespace.
    before = celery_app.conf.task_always_eager
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    assert celery_app.conf.task_always_eager is True
    yield
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = before


@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor")


def attempt(work_order: MaintenanceWorkOrder, *, later: bool = True, days: int = 1):
    """One delivery attempt, ``days`` from now (so that it is due), or now."""
    now = timezone.now() + (LATER * days if later else timedelta(0))
    return maintenance.work_order_attempt(work_order_id=work_order.pk, now=now)


def log_of(work_order: MaintenanceWorkOrder) -> list[tuple[bool, int | None]]:
    return list(
        DeliveryAttempt.objects.filter(work_order=work_order)
        .order_by("id")
        .values_list("ok", "status_code")
    )


def actions_of(work_order: MaintenanceWorkOrder) -> list[str]:
    return list(
        AuditRecord.objects.filter(
            target_type="scada.maintenanceworkorder", target_id=str(work_order.pk)
        )
        .order_by("seq")
        .values_list("action", flat=True)
    )


# --- retries, backoff, the failure log ----------------------------------------------


def test_fails_twice_then_accepts_three_attempts_logged_and_sent(supervisor):
    cmms = FakeCmms([500]).start()
    cmms_connector(cmms.url)
    work_order = maintenance.work_order_create(data=DATA, actor=supervisor)
    assert work_order.delivery_state == DeliveryState.QUEUED

    first = attempt(work_order)  # 500
    work_order.refresh_from_db()
    assert first == maintenance.Attempt(DeliveryOutcome.RETRYING, 30.0)
    assert work_order.delivery_state == DeliveryState.QUEUED
    assert work_order.attempts == 1
    assert work_order.last_error.startswith("The CMMS answered 500")

    cmms.stop()  # connection refused
    second = attempt(work_order)
    work_order.refresh_from_db()
    assert second == maintenance.Attempt(DeliveryOutcome.RETRYING, 60.0)
    assert work_order.attempts == 2
    assert work_order.last_error.startswith("The CMMS could not connect")

    cmms.start()  # back, on the same port: it accepts
    third = attempt(work_order)
    cmms.stop()
    work_order.refresh_from_db()

    assert third == maintenance.Attempt(DeliveryOutcome.SENT, None)
    assert log_of(work_order) == [(False, 500), (False, None), (True, 201)]
    assert work_order.delivery_state == DeliveryState.SENT
    assert work_order.external_id == "CMMS-1"
    assert work_order.attempts == 3
    assert work_order.last_error == ""
    assert work_order.next_attempt_at is None
    assert work_order.sent_at is not None
    posts = cmms.posts()
    assert len(posts) == 2  # the refused connection never arrived
    assert posts[-1]["json"] == {
        **DATA,
        "source_alarm_id": None,
        "created_by_system": "bpmos",
        "assignee": None,
        "scada_snapshot": {},
    }
    assert {p["headers"]["Idempotency-Key"] for p in posts} == {
        f"bpmos-mwo-{work_order.pk}"
    }
    assert actions_of(work_order) == [
        "maintenance_work_order.created",
        "maintenance_work_order.delivery_failed",
        "maintenance_work_order.delivery_failed",
        "maintenance_work_order.sent",
    ]


def test_the_backoff_doubles_from_30_s_up_to_the_cap():
    assert [maintenance.backoff_s(n) for n in range(1, 9)] == [
        30.0,
        60.0,
        120.0,
        240.0,
        480.0,
        960.0,
        1920.0,
        3600.0,
    ]
    assert maintenance.backoff_s(30) == 3600.0


def test_an_attempt_that_is_not_due_sends_nothing(supervisor):
    with FakeCmms([500]) as cmms:
        cmms_connector(cmms.url)
        work_order = maintenance.work_order_create(data=DATA, actor=supervisor)
        attempt(work_order, later=False)  # due at once: fails
        again = attempt(work_order, later=False)  # 30 s not passed yet

    assert again.outcome == DeliveryOutcome.NOT_DUE
    assert 29 < again.retry_in_s <= 30
    assert len(cmms.posts()) == 1
    assert log_of(work_order) == [(False, 500)]


def test_cmms_down_entirely_loses_nothing_and_delivers_later(supervisor, settings):
    settings.BPMOS_CMMS_MAX_ATTEMPTS = 3
    port = free_port()  # nothing listens here yet
    cmms_connector(f"http://127.0.0.1:{port}")
    work_order = maintenance.work_order_create(data=DATA, actor=supervisor)

    states = []
    for _ in range(4):
        outcome = attempt(work_order).outcome
        work_order.refresh_from_db()
        states.append((outcome, work_order.delivery_state, work_order.attempts))

    assert states == [
        (DeliveryOutcome.RETRYING, DeliveryState.QUEUED, 1),
        (DeliveryOutcome.RETRYING, DeliveryState.QUEUED, 2),
        (DeliveryOutcome.RETRYING, DeliveryState.FAILED, 3),
        (DeliveryOutcome.RETRYING, DeliveryState.FAILED, 4),
    ]
    # Past the last fast retry it is failed but still tried, once an hour.
    wait = work_order.next_attempt_at - timezone.now()
    assert timedelta(minutes=59) < wait <= timedelta(hours=1)
    assert maintenance.work_orders_due(now=timezone.now()) == []
    assert maintenance.work_orders_due(now=timezone.now() + LATER) == [work_order.pk]

    with FakeCmms(port=port) as cmms:
        assert attempt(work_order).outcome == DeliveryOutcome.SENT
    work_order.refresh_from_db()
    assert work_order.delivery_state == DeliveryState.SENT
    assert work_order.external_id == "CMMS-1"
    assert log_of(work_order) == [(False, None)] * 4 + [(True, 201)]
    assert cmms.posts()[0]["json"]["asset_id"] == "la-weld-01"


def test_a_refused_work_order_waits_for_a_person_then_retry_sends_it(supervisor):
    with FakeCmms([422]) as cmms:
        cmms_connector(cmms.url)
        work_order = maintenance.work_order_create(data=DATA, actor=supervisor)
        assert attempt(work_order).outcome == DeliveryOutcome.REFUSED
        work_order.refresh_from_db()
        assert (work_order.delivery_state, work_order.next_attempt_at) == (
            DeliveryState.FAILED,
            None,
        )
        assert maintenance.work_orders_due(now=timezone.now() + LATER) == []
        assert attempt(work_order).outcome == DeliveryOutcome.NOT_DUE

        retried = maintenance.work_order_retry(
            work_order_id=work_order.pk, actor=supervisor
        )
        assert retried.delivery_state == DeliveryState.QUEUED
        assert maintenance.work_orders_due() == [work_order.pk]
        assert attempt(work_order, later=False).outcome == DeliveryOutcome.SENT

    audited = AuditRecord.objects.filter(action="maintenance_work_order.retried").get()
    assert audited.before["delivery_state"] == "failed"
    assert audited.after["delivery_state"] == "queued"
    with pytest.raises(Conflict) as refused:
        maintenance.work_order_retry(work_order_id=work_order.pk, actor=supervisor)
    assert refused.value.code == "already_sent"
    assert log_of(work_order) == [(False, 422), (True, 201)]


def test_without_a_cmms_connector_it_stays_queued_saying_why(supervisor):
    work_order = maintenance.work_order_create(data=DATA, actor=supervisor)

    first = attempt(work_order)
    meanwhile = attempt(work_order)  # looked at again within the minute
    second = attempt(work_order, days=2)
    work_order.refresh_from_db()

    assert first == second == maintenance.Attempt(DeliveryOutcome.NO_CMMS, 60.0)
    assert meanwhile.outcome == DeliveryOutcome.NOT_DUE
    assert work_order.delivery_state == DeliveryState.QUEUED
    assert work_order.attempts == 0
    assert work_order.last_error.startswith("No CMMS connector is configured")
    assert log_of(work_order) == []
    # Audited once for the reason, not at every look.
    assert actions_of(work_order) == [
        "maintenance_work_order.created",
        "maintenance_work_order.waiting",
    ]

    with FakeCmms() as cmms:
        cmms_connector(cmms.url)
        assert attempt(work_order, days=3).outcome == DeliveryOutcome.SENT


def test_several_cmms_connectors_need_one_named(supervisor, settings):
    with FakeCmms() as first, FakeCmms() as second:
        cmms_connector(first.url, name="cmms-a")
        cmms_connector(second.url, name="cmms-b")
        Connector.objects.create(
            name="cmms-off", kind=ConnectorKind.CMMS, endpoint=first.url, enabled=False
        )
        work_order = maintenance.work_order_create(data=DATA, actor=supervisor)

        assert attempt(work_order).outcome == DeliveryOutcome.NO_CMMS
        work_order.refresh_from_db()
        assert "name the one to use in BPMOS_CMMS_CONNECTOR" in work_order.last_error

        settings.BPMOS_CMMS_CONNECTOR = "cmms-off"
        assert attempt(work_order, days=2).outcome == DeliveryOutcome.NO_CMMS
        work_order.refresh_from_db()
        assert 'The CMMS connector "cmms-off"' in work_order.last_error

        settings.BPMOS_CMMS_CONNECTOR = "cmms-b"
        assert attempt(work_order, days=3).outcome == DeliveryOutcome.SENT

    assert (len(first.posts()), len(second.posts())) == (0, 1)
    work_order.refresh_from_db()
    assert work_order.connector.name == "cmms-b"


def test_a_claimed_attempt_keeps_other_workers_off_until_its_lease_ends(supervisor):
    """A worker that claimed an attempt and died leaves it to the beat once its
    lease (the timeout plus a margin) has run out; never before."""
    with FakeCmms() as cmms:
        cmms_connector(cmms.url)  # timeout_s 3: a 33 s lease
        work_order = maintenance.work_order_create(data=DATA, actor=supervisor)
        now = timezone.now()
        skipped, _connector, body = maintenance._claim(work_order.pk, now)
        assert skipped is None
        assert body["asset_id"] == "la-weld-01"

        during = maintenance.work_order_attempt(
            work_order_id=work_order.pk, now=now + timedelta(seconds=32)
        )
        assert during.outcome == DeliveryOutcome.NOT_DUE
        assert maintenance.work_orders_due(now=now + timedelta(seconds=32)) == []
        assert maintenance.work_orders_due(now=now + timedelta(seconds=34)) == [
            work_order.pk
        ]
        after = maintenance.work_order_attempt(
            work_order_id=work_order.pk, now=now + timedelta(seconds=34)
        )

    assert after.outcome == DeliveryOutcome.SENT
    assert len(cmms.posts()) == 1


def test_the_secret_never_lands_in_the_log_the_audit_or_the_work_order(supervisor):
    with FakeCmms([500, 401]) as cmms:
        cmms_connector(cmms.url)
        work_order = maintenance.work_order_create(data=DATA, actor=supervisor)
        attempt(work_order)
        attempt(work_order)

    assert [p["headers"]["Authorization"] for p in cmms.posts()] == [SECRET] * 2
    errors = list(DeliveryAttempt.objects.values_list("error", flat=True))
    assert len(errors) == 2
    assert all("[redacted]" in error for error in errors)  # echoed, then redacted
    stored = json.dumps(
        [
            list(MaintenanceWorkOrder.objects.values()),
            list(DeliveryAttempt.objects.values()),
            list(AuditRecord.objects.values("before", "after", "target_repr")),
        ],
        default=str,
    )
    assert TOKEN not in stored


# --- Celery: the retrying task and the beat ----------------------------------------


def test_the_task_retries_on_the_backoff_until_sent(supervisor, settings, eager):
    settings.BPMOS_CMMS_BACKOFF_BASE_S = 0  # each retry due at once
    with FakeCmms([500, 503]) as cmms:
        cmms_connector(cmms.url)
        with transaction.atomic():
            work_order = maintenance.work_order_create(data=DATA, actor=None)
            work_order_id = work_order.pk
        # Non-transactional test: run the after-commit hook by hand.
        result = tasks_maintenance.work_order_deliver_task.apply(args=[work_order_id])

    work_order.refresh_from_db()
    assert result.state in {"RETRY", "SUCCESS"}
    assert log_of(work_order) == [(False, 500), (False, 503), (True, 201)]
    assert work_order.delivery_state == DeliveryState.SENT
    assert work_order.external_id == "CMMS-1"


def test_the_task_stops_retrying_where_the_backoff_is_longer(supervisor, eager):
    with FakeCmms([500]) as cmms:
        cmms_connector(cmms.url)
        work_order = maintenance.work_order_create(data=DATA, actor=None)
        tasks_maintenance.work_order_deliver_task.apply(args=[work_order.pk])

    # Eager retries run at once; the attempt 30 s later is not due yet, so the
    # retry sends nothing and the chain ends: the beat takes over.
    assert log_of(work_order) == [(False, 500)]
    assert len(cmms.posts()) == 1


def test_lost_messages_are_made_up_by_the_beat(supervisor, eager, settings):
    """Work orders created while no message reached a worker (on_commit hooks
    not run here) are all delivered by the beat task's next run."""
    with FakeCmms() as cmms:
        cmms_connector(cmms.url)
        first = maintenance.work_order_create(data=DATA, actor=supervisor)
        second = maintenance.work_order_create(
            data={**DATA, "asset_id": "la-weld-02"}, actor=supervisor
        )
        sent_already = maintenance.work_order_create(
            data={**DATA, "asset_id": "la-weld-03"}, actor=supervisor
        )
        attempt(sent_already, later=False)

        queued = tasks_maintenance.work_orders_redeliver_task.apply().get()
        again = tasks_maintenance.work_orders_redeliver_task.apply().get()

    assert (queued, again) == (2, 0)
    states = MaintenanceWorkOrder.objects.order_by("id").values_list(
        "delivery_state", "attempts"
    )
    assert list(states) == [("sent", 1)] * 3
    assert sorted(p["json"]["asset_id"] for p in cmms.posts()) == [
        "la-weld-01",
        "la-weld-02",
        "la-weld-03",
    ]
    assert first.pk != second.pk


def test_the_beat_entries_expire_before_their_next_run():
    entry = BEAT_SCHEDULE["scada-work-orders-redeliver"]
    assert entry["task"] == "scada.tasks_maintenance.work_orders_redeliver_task"
    assert entry["options"]["expires"] < entry["schedule"] == 60.0
    entry = BEAT_SCHEDULE["scada-work-orders-status-refresh"]
    assert entry["task"] == "scada.tasks_maintenance.work_orders_status_refresh_task"
    assert entry["options"]["expires"] < entry["schedule"] == 300.0
    for name in ("work_orders_redeliver_task", "work_orders_status_refresh_task"):
        assert f"scada.tasks_maintenance.{name}" in celery_app.tasks


# --- reading statuses back --------------------------------------------------------


def test_work_orders_the_cmms_closed_are_closed_here(supervisor):
    with FakeCmms() as cmms:
        cmms_connector(cmms.url, sync_status=True)
        done, ongoing, unknown = (
            maintenance.work_order_create(
                data={**DATA, "asset_id": f"asset-{n}"}, actor=supervisor
            )
            for n in range(3)
        )
        for work_order in (done, ongoing, unknown):
            attempt(work_order, later=False)
        MaintenanceWorkOrder.objects.filter(pk=unknown.pk).update(external_id="GONE")
        cmms.statuses["CMMS-1"] = "Completed"

        first = maintenance.work_orders_status_refresh()
        second = maintenance.work_orders_status_refresh()

    assert first == {"checked": 3, "closed": 1, "errors": 1}
    assert second == {"checked": 2, "closed": 0, "errors": 1}
    closed = MaintenanceWorkOrder.objects.filter(closed_at__isnull=False)
    assert list(closed.values_list("pk", flat=True)) == [done.pk]
    record = AuditRecord.objects.get(action="maintenance_work_order.closed")
    assert record.target_id == str(done.pk)
    assert record.after["note"] == "The CMMS reports 'Completed'."
    gets = [r["path"] for r in cmms.received if r["method"] == "GET"]
    assert gets.count("/api/v2/work-orders/CMMS-1") == 1


def test_statuses_are_read_only_where_the_connector_says_so(supervisor):
    with FakeCmms() as cmms:
        cmms_connector(cmms.url)
        work_order = maintenance.work_order_create(data=DATA, actor=supervisor)
        attempt(work_order, later=False)
        cmms.statuses["CMMS-1"] = "closed"

        counts = maintenance.work_orders_status_refresh()

    assert counts == {"checked": 0, "closed": 0, "errors": 0}
    assert [r["method"] for r in cmms.received] == ["POST"]


# --- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"priority": "urgent"}, "priority", "One of low, medium, high, critical."),
        ({"priority": None}, "priority", "This field is required."),
        ({"asset_id": "  "}, "asset_id", "This field is required."),
        ({"asset_name": None}, "asset_name", "This field is required."),
        ({"asset_id": "x" * 65}, "asset_id", "no more than 64 characters."),
        ({"description": 12}, "description", "Not a valid string."),
        ({"source_alarm_id": 999}, "source_alarm_id", "There is no alarm 999."),
        ({"source_alarm_id": True}, "source_alarm_id", "An alarm id"),
        ({"scada_snapshot": [1, 2]}, "scada_snapshot", "A JSON object."),
        ({"scada_snapshot": {"x": "y" * 70_000}}, "scada_snapshot", "At most 64 KB."),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(supervisor, change, field, message):
    audits = AuditRecord.objects.count()
    with pytest.raises(InvalidInput) as refused:
        maintenance.work_order_create(data={**DATA, **change}, actor=supervisor)

    assert refused.value.code == "validation_error"
    assert message in refused.value.details[field][0]
    assert MaintenanceWorkOrder.objects.count() == 0
    assert AuditRecord.objects.count() == audits


# --- from an alarm: one open work order per alarm -----------------------------------


@pytest.fixture
def temperature_tag(db):
    line = make_line()
    field = Connector.objects.create(
        name="plc-1", kind=ConnectorKind.OPCUA, endpoint="opc.tcp://127.0.0.1:4840"
    )
    return Tag.objects.create(
        connector=field,
        node_id="ns=2;s=Weld.Temp",
        tag_name="weld.temp",
        unit="degC",
        machine=machine(line, "st-02"),
    )


def raise_alarm(tag: Tag | None, **extra) -> AlarmEvent:
    fields = {
        "timestamp": datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
        "tag": tag,
        "tag_name": tag.tag_name if tag else "",
        "severity": "critical",
        "message": "Weld chiller temperature high",
        "value": 61.5,
        "limit": 55.0,
        **extra,
    }
    return AlarmEvent.objects.create(**fields)


def test_an_alarm_opens_one_work_order_however_often_asked(temperature_tag):
    for minute in range(12):
        ScadaReading.objects.create(
            timestamp=datetime(2026, 12, 3, 8, 48 + minute, tzinfo=UTC),
            tag=temperature_tag,
            tag_name="weld.temp",
            value=50.0 + minute,
            unit="degC",
        )
    alarm = raise_alarm(temperature_tag)

    first = maintenance.work_order_for_alarm(alarm_id=alarm.pk)
    second = maintenance.work_order_for_alarm(alarm_id=alarm.pk)

    assert first.pk == second.pk
    assert MaintenanceWorkOrder.objects.count() == 1
    assert (first.asset_id, first.asset_name) == ("line-a-st-02-m1", "Weld machine")
    assert first.priority == "critical"
    assert first.source_alarm_id == alarm.pk
    assert first.created_by_system == "bpmos-scada"
    assert first.delivery_state == DeliveryState.QUEUED
    assert first.description.startswith(
        f"SCADA alarm {alarm.pk} (critical): Weld chiller temperature high; "
        "value 61.5; limit 55"
    )
    snapshot = first.scada_snapshot
    assert snapshot["alarm"]["id"] == alarm.pk
    assert snapshot["alarm"]["alarm_state"] == "unack_active"
    assert snapshot["alarm"]["value"] == 61.5
    assert [r["value"] for r in snapshot["readings"]] == [61.0 - n for n in range(10)]
    assert snapshot["readings"][0]["timestamp"] == "2026-12-03T08:59:00+00:00"
    assert actions_of(first) == ["maintenance_work_order.created"]


def test_a_closed_work_order_lets_the_alarm_open_another(temperature_tag):
    alarm = raise_alarm(temperature_tag)
    first = maintenance.work_order_for_alarm(alarm_id=alarm.pk)
    MaintenanceWorkOrder.objects.filter(pk=first.pk).update(closed_at=timezone.now())

    second = maintenance.work_order_for_alarm(alarm_id=alarm.pk)

    assert second.pk != first.pk
    assert MaintenanceWorkOrder.objects.filter(closed_at__isnull=True).count() == 1


def test_the_asset_falls_back_to_the_tag_then_the_connector(temperature_tag):
    temperature_tag.machine = None
    temperature_tag.save()
    by_tag = maintenance.work_order_for_alarm(alarm_id=raise_alarm(temperature_tag).pk)
    comm_loss = raise_alarm(
        None,
        kind="comm_loss",
        connector=temperature_tag.connector,
        severity="high",
        value=None,
        limit=None,
        message="Communication lost with plc-1",
    )
    by_connector = maintenance.work_order_for_alarm(alarm_id=comm_loss.pk)

    assert (by_tag.asset_id, by_tag.asset_name) == ("weld.temp", "weld.temp")
    assert (by_connector.asset_id, by_connector.asset_name) == (
        f"connector-{temperature_tag.connector_id}",
        "plc-1",
    )
    assert by_connector.priority == "high"
    assert by_connector.scada_snapshot["readings"] == []


def test_a_manual_work_order_for_an_alarm_with_an_open_one_is_a_conflict(
    temperature_tag, supervisor
):
    alarm = raise_alarm(temperature_tag)
    opened = maintenance.work_order_for_alarm(alarm_id=alarm.pk)
    audits = AuditRecord.objects.count()

    with pytest.raises(Conflict) as refused:
        maintenance.work_order_create(
            data={**DATA, "source_alarm_id": alarm.pk}, actor=supervisor
        )

    assert refused.value.code == "work_order_exists"
    assert refused.value.details == {"work_order_id": opened.pk}
    assert MaintenanceWorkOrder.objects.count() == 1
    assert AuditRecord.objects.count() == audits


@pytest.mark.postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_asked_at_once_open_one_work_order(temperature_tag):
    """Worker A has opened the work order but not committed; worker B does not
    see it, inserts, waits on the unique index, and once A commits returns A's
    work order instead of failing or opening a second."""
    alarm = raise_alarm(temperature_tag)
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def worker_b():
        try:
            results["b"] = maintenance.work_order_for_alarm(alarm_id=alarm.pk).pk
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        results["a"] = maintenance.work_order_for_alarm(alarm_id=alarm.pk).pk
        b = threading.Thread(target=worker_b, daemon=True)
        b.start()
        _wait_until_blocked_on_a_lock()
    join_or_fail(b)

    assert not errors, errors
    assert results["a"] == results["b"]
    assert MaintenanceWorkOrder.objects.count() == 1


@pytest.mark.postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_creates_for_one_alarm_at_once_store_one(temperature_tag, make_user):
    """The same race through ``work_order_create``: the loser is a 409
    ``work_order_exists`` naming the winner, not a 500 and not a second row."""
    alarm = raise_alarm(temperature_tag)
    boss = make_user("supervisor")
    data = {**DATA, "source_alarm_id": alarm.pk}
    refused: list[BaseException] = []

    def worker_b():
        try:
            maintenance.work_order_create(data=data, actor=boss)
        except BaseException as exc:  # checked in the main thread
            refused.append(exc)
        finally:
            connection.close()

    with transaction.atomic():
        winner = maintenance.work_order_create(data=data, actor=boss)
        b = threading.Thread(target=worker_b, daemon=True)
        b.start()
        _wait_until_blocked_on_a_lock()
    join_or_fail(b)

    [error] = refused
    assert isinstance(error, Conflict)
    assert (error.code, error.details) == (
        "work_order_exists",
        {"work_order_id": winner.pk},
    )
    assert MaintenanceWorkOrder.objects.count() == 1


def _wait_until_blocked_on_a_lock(timeout: float = 10.0) -> None:
    """Until another connection of this database waits on a lock (B's insert
    on the unique index), checked from a connection of our own."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    deadline = time.monotonic() + timeout
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    ) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("worker B never waited on the unique index")


def test_an_unknown_alarm_is_not_found():
    from bpmos.errors import NotFound

    with pytest.raises(NotFound):
        maintenance.work_order_for_alarm(alarm_id=424242)


def test_the_payload_is_the_contracts_normalized_schema(temperature_tag):
    work_order = maintenance.work_order_for_alarm(
        alarm_id=raise_alarm(temperature_tag).pk
    )
    assert set(maintenance.payload(work_order)) == {
        "asset_id",
        "asset_name",
        "description",
        "priority",
        "source_alarm_id",
        "created_by_system",
        "assignee",
        "scada_snapshot",
    }
