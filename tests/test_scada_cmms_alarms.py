"""End to end: a reading past a rule's limit → an ISA-18.2 alarm → left
unacknowledged, it escalates to an exception and, as its rule says, one CMMS
maintenance work order, delivered by the Celery task to a real HTTP server on
127.0.0.1 that fails twice and then accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bpmos.celery import app as celery_app
from exceptions.models import ExceptionSource, PlantException
from scada import alarms, maintenance
from scada.models import (
    AlarmEvent,
    AlertRule,
    Connector,
    ConnectorKind,
    DeliveryAttempt,
    MaintenanceWorkOrder,
    ScadaReading,
    Tag,
)
from tests.factories_lines import machine, make_line
from tests.test_scada_cmms_server import SECRET, FakeCmms, cmms_connector

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def eager():
    before = celery_app.conf.task_always_eager
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    yield
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = before


@pytest.fixture
def weld_temperature(db) -> Tag:
    line = make_line()
    plc = Connector.objects.create(
        name="plc-1", kind=ConnectorKind.OPCUA, endpoint="opc.tcp://127.0.0.1:4840"
    )
    tag = Tag.objects.create(
        connector=plc,
        node_id="ns=2;s=Weld.Temp",
        tag_name="weld.temp",
        unit="degC",
        machine=machine(line, "st-02"),
    )
    AlertRule.objects.create(
        name="Weld chiller high",
        tag=tag,
        high_limit=80.0,
        severity="high",
        message="Weld chiller temperature",
        escalate_after_s=60,
        create_work_order=True,
    )
    return tag


def read(tag: Tag, seconds: int, value: float) -> list[AlarmEvent]:
    row = ScadaReading.objects.create(
        tag=tag,
        connector_id=tag.connector_id,
        tag_name=tag.tag_name,
        timestamp=T0 + timedelta(seconds=seconds),
        value=value,
        unit="degC",
    )
    return alarms.readings_evaluate(readings=[row])


def test_alarm_to_exception_to_one_cmms_work_order(weld_temperature, eager, settings):
    settings.BPMOS_CMMS_BACKOFF_BASE_S = 0  # the task's retries are due at once
    read(weld_temperature, 0, 70.0)
    [alarm] = read(weld_temperature, 10, 91.5)

    with FakeCmms([500, 502]) as cmms:
        cmms_connector(cmms.url)
        first = alarms.alerts_process(actor=None, now=T0 + timedelta(minutes=2))
        again = alarms.alerts_process(actor=None, now=T0 + timedelta(minutes=5))
        asked_twice = maintenance.work_order_for_alarm(alarm_id=alarm.pk)

    assert (first["escalated"], first["work_orders"]) == (1, 1)
    assert (again["escalated"], again["work_orders"]) == (0, 0)
    exception = PlantException.objects.get()
    assert exception.source == ExceptionSource.ALARM
    alarm.refresh_from_db()
    assert alarm.exception_id == exception.pk

    work_order = MaintenanceWorkOrder.objects.get()
    assert asked_twice.pk == work_order.pk
    assert work_order.source_alarm_id == alarm.pk
    assert (work_order.asset_id, work_order.priority) == ("line-a-st-02-m1", "high")
    assert (work_order.delivery_state, work_order.attempts) == ("sent", 3)
    assert work_order.external_id == "CMMS-1"
    log = DeliveryAttempt.objects.filter(work_order=work_order).order_by("id")
    assert [(a.ok, a.status_code) for a in log] == [
        (False, 500),
        (False, 502),
        (True, 201),
    ]

    posts = cmms.posts()
    assert len(posts) == 3
    sent = posts[-1]
    assert sent["headers"]["Authorization"] == SECRET
    assert sent["json"]["source_alarm_id"] == alarm.pk
    assert sent["json"]["asset_name"] == "Weld machine"
    snapshot = sent["json"]["scada_snapshot"]
    assert snapshot["alarm"]["value"] == 91.5
    assert snapshot["alarm"]["limit"] == 80.0
    assert [r["value"] for r in snapshot["readings"]] == [91.5, 70.0]
