"""Celery beat's stand-in poll (``scada.tasks_collector``): it polls the
poll-mode OPC UA connectors on their interval only while no collector process
runs, against a real asyncua server."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from bpmos.celery import BEAT_SCHEDULE
from scada.collector import ALIVE_KEY
from scada.models import AlarmEvent, CommState, Connector, ScadaReading, Tag
from scada.tasks_collector import connectors_poll_due, scada_connectors_poll_task
from tests import support_opcua

pytestmark = pytest.mark.django_db


opcua_server = support_opcua.opcua_server
shared_opcua_server = support_opcua.shared_opcua_server


@pytest.fixture
def server(opcua_server):
    """The module's server, emptied for each test."""
    return opcua_server


def _connector(server, *, mode="poll", name="Oven PLC", interval=60) -> Connector:
    connector = Connector.objects.create(
        name=name,
        kind="opcua",
        endpoint=server.endpoint,
        mode=mode,
        poll_interval_s=interval,
        settings={"timeout_s": 2},
    )
    ids = server.add_variables(name.replace(" ", ""), {"Temp": 180.0})
    Tag.objects.create(
        connector=connector, node_id=ids["Temp"], tag_name=f"{connector.pk}.temp"
    )
    return connector


def test_polls_the_poll_mode_connectors_when_no_collector_runs(server):
    polled = _connector(server)
    _connector(server, mode="subscribe", name="Press PLC")  # the collector's alone

    result = scada_connectors_poll_task.apply().get()

    assert result == {"collector_running": False, "polled": [polled.pk], "failed": []}
    assert list(ScadaReading.objects.values_list("tag_name", "value")) == [
        (f"{polled.pk}.temp", 180.0)
    ]
    assert Connector.objects.get(pk=polled.pk).comm_state == CommState.OK


def test_a_connector_is_polled_once_per_interval(server):
    connector = _connector(server, interval=60)
    assert connectors_poll_due()["polled"] == [connector.pk]
    reads = len(server.read_requests)
    # Beat runs every 5 s; the connector's 60 s have not passed.
    assert connectors_poll_due() == {
        "collector_running": False,
        "polled": [],
        "failed": [],
    }
    assert len(server.read_requests) == reads


def test_stands_aside_while_the_collector_runs(server):
    _connector(server)
    cache.set(ALIVE_KEY, "now", timeout=30)

    assert connectors_poll_due() == {
        "collector_running": True,
        "polled": [],
        "failed": [],
    }
    assert server.read_requests == []
    assert not ScadaReading.objects.exists()


def test_a_server_gone_raises_the_comm_loss_alarm_then_clears_it(server):
    connector = _connector(server, interval=1)
    server.stop()

    assert connectors_poll_due()["failed"] == [connector.pk]
    connector.refresh_from_db()
    assert connector.comm_state == CommState.LOST
    alarm = AlarmEvent.objects.get(connector=connector, kind="comm_loss")
    assert alarm.active is True

    server.start()
    cache.delete(f"scada:poll-due:{connector.pk}")  # its second has passed
    assert connectors_poll_due()["polled"] == [connector.pk]
    alarm.refresh_from_db()
    assert alarm.active is False
    assert Connector.objects.get(pk=connector.pk).comm_state == CommState.OK


def test_the_stand_in_poll_is_in_the_beat_schedule_after_the_others():
    names = list(BEAT_SCHEDULE)
    entry = BEAT_SCHEDULE["scada-connectors-poll"]
    assert entry["task"] == "scada.tasks_collector.scada_connectors_poll_task"
    assert entry["options"]["expires"] < entry["schedule"]
    assert names.index("scada-connectors-poll") > names.index("oee-hours-refresh")
