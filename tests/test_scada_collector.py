"""The collector process (``scada.collector``) against real asyncua servers:
subscriptions and polls stored, configuration changes picked up without a
restart, a server that goes away and comes back (communication-loss alarm,
reconnection, resubscription, no duplicate readings), and the demo plant's
temperature alarm and Blocked station through the simulator.

Each test runs the collector's event loop in a thread of its own, as its
process would, against the test database (committed data: ``transaction``)."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.db import OperationalError

from lines import demo as lines_demo
from lines.models import Machine, MachineReading
from scada import demo, simulator
from scada import readings as readings_module
from scada.collector import ALIVE_KEY
from scada.models import (
    AlarmEvent,
    CommState,
    Connector,
    ConnectorMode,
    ScadaReading,
    Tag,
    TagKind,
)
from tests.conftest import api_as as api
from tests.factories_lines import make_line
from tests.scada_collector_support import (
    FAST,
    collector_thread,
    run_collector,
    simulator_thread,
    wait_until,
)
from tests.support_opcua import OpcUaTestServer, free_port

__all__ = ["run_collector"]  # a fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server_pool():
    """The module's started test servers (an asyncua server takes seconds to
    start), lent to its tests by ``opcua_servers``."""
    pool: list[OpcUaTestServer] = []
    yield pool
    for server in pool:
        server.close()


@pytest.fixture
def opcua_servers(server_pool):
    """``opcua_servers()`` -> a started test server with no variables: the
    pool's next one, emptied (started again if a test stopped it);
    ``started=False``: a new one not listening yet, its variables served once
    it ``start()``s (closed at the end)."""
    lent = 0
    made: list[OpcUaTestServer] = []

    def make(*, started: bool = True) -> OpcUaTestServer:
        nonlocal lent
        if not started:
            server = OpcUaTestServer()
            made.append(server)
            return server
        if lent == len(server_pool):
            server_pool.append(OpcUaTestServer())
        server = server_pool[lent]
        lent += 1
        server.reset()
        return server

    yield make
    for server in made:
        server.close()


def make_connector(server, *, name="Line 1 PLC", mode=ConnectorMode.SUBSCRIBE, **kw):
    return Connector.objects.create(
        name=name,
        kind="opcua",
        endpoint=server.endpoint,
        mode=mode,
        poll_interval_s=kw.pop("poll_interval_s", 1),
        settings={"timeout_s": 2},
        **kw,
    )


def make_tag(connector, node_id, tag_name, unit="", **kw):
    return Tag.objects.create(
        connector=connector, node_id=node_id, tag_name=tag_name, unit=unit, **kw
    )


def values(tag_name: str) -> list:
    """The tag's stored values, oldest first."""
    return list(
        ScadaReading.objects.filter(tag_name=tag_name)
        .order_by("timestamp", "id")
        .values_list("value", flat=True)
    )


def comm_alarm(connector) -> AlarmEvent | None:
    return AlarmEvent.objects.filter(connector=connector, kind="comm_loss").first()


# --- subscriptions and polls ---------------------------------------------------------


def test_subscribed_values_are_stored_as_they_change(opcua_servers, run_collector):
    server = opcua_servers()
    ids = server.add_variables("Line1", {"Temp": 20.0, "Pressure": 1.5})
    connector = make_connector(server)
    make_tag(connector, ids["Temp"], "line1.temp", "°C")
    make_tag(connector, ids["Pressure"], "line1.pressure", "bar")
    run_collector()

    wait_until(lambda: values("line1.temp") == [20.0], within=30)
    wait_until(lambda: values("line1.pressure") == [1.5], within=30)
    server.set_value(ids["Temp"], 21.5)
    server.set_value(ids["Temp"], 22.0)
    wait_until(lambda: values("line1.temp") == [20.0, 21.5, 22.0], within=30)

    reading = ScadaReading.objects.filter(tag_name="line1.temp").latest("timestamp")
    assert (reading.unit, reading.quality, reading.connector_id) == (
        "°C",
        "good",
        connector.pk,
    )
    connector.refresh_from_db()
    assert connector.comm_state == CommState.OK
    assert connector.last_ok_at is not None
    assert cache.get(ALIVE_KEY) is not None  # the stand-in poll stands aside


def test_poll_mode_reads_every_tag_in_one_batch_each_interval(
    opcua_servers, run_collector
):
    server = opcua_servers()
    ids = server.add_variables("Oven", {"Zone1": 180.0, "Zone2": 175.0, "Zone3": 0.0})
    connector = make_connector(server, mode=ConnectorMode.POLL, poll_interval_s=1)
    for name in ("Zone1", "Zone2", "Zone3"):
        make_tag(connector, ids[name], f"oven.{name.lower()}", "°C")
    run_collector()

    wait_until(lambda: values("oven.zone1") == [180.0], within=30)
    server.set_value(ids["Zone1"], 181.0)
    wait_until(lambda: values("oven.zone1") == [180.0, 181.0], within=30)
    # Unchanged values keep their source timestamps: polled again, not stored.
    assert values("oven.zone2") == [175.0]
    # Every poll is one Read of all three nodes (the one-node Reads between
    # them are the heartbeat's: the server's clock).
    assert {n for n in server.read_requests if n != 1} == {3}


def test_a_tag_added_through_the_api_is_collected_without_a_restart(
    opcua_servers, run_collector, make_user
):
    server = opcua_servers()
    ids = server.add_variables("Line1", {"Temp": 20.0, "Speed": 3.0})
    connector = make_connector(server)
    make_tag(connector, ids["Temp"], "line1.temp")
    run_collector()
    wait_until(lambda: values("line1.temp") == [20.0], within=30)

    response = api(make_user("admin")).post(
        "/api/scada/tags",
        {
            "connector": connector.pk,
            "node_id": ids["Speed"],
            "tag_name": "line1.speed",
            "unit": "m/s",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    wait_until(lambda: values("line1.speed") == [3.0], within=30)
    server.set_value(ids["Speed"], 3.5)
    wait_until(lambda: values("line1.speed") == [3.0, 3.5], within=30)
    # The restart of the connector's session re-sent Temp's value: not stored again.
    assert values("line1.temp") == [20.0]


def test_a_connector_added_and_a_tag_moved_are_picked_up(opcua_servers, run_collector):
    first, second = opcua_servers(), opcua_servers()
    a = first.add_variables("Press", {"Force": 10.0})
    b = second.add_variables("Press", {"Force": 99.0})
    connector = make_connector(first)
    tag = make_tag(connector, a["Force"], "press.force")
    run_collector()
    wait_until(lambda: values("press.force") == [10.0], within=30)

    # A second connector, then the tag moved to it (its node on the other server).
    other = make_connector(second, name="Line 2 PLC")
    tag.connector = other
    tag.node_id = b["Force"]
    tag.save()
    wait_until(lambda: values("press.force") == [10.0, 99.0], within=30)
    wait_until(
        lambda: Connector.objects.get(pk=other.pk).comm_state == CommState.OK,
        within=30,
    )


def test_a_connector_disabled_through_the_api_stops_and_the_others_go_on(
    opcua_servers, run_collector, make_user
):
    first, second = opcua_servers(), opcua_servers()
    a = first.add_variables("L1", {"Temp": 1.0})
    b = second.add_variables("L2", {"Temp": 1.0})
    one = make_connector(first, name="one")
    two = make_connector(second, name="two")
    make_tag(one, a["Temp"], "l1.temp")
    make_tag(two, b["Temp"], "l2.temp")
    run_collector()
    wait_until(
        lambda: values("l1.temp") == [1.0] and values("l2.temp") == [1.0], within=30
    )

    response = api(make_user("admin")).patch(
        f"/api/scada/connectors/{one.pk}", {"enabled": False}, format="json"
    )
    assert response.status_code == 200, response.content
    # Once the collector let go of the first server's session, its values are
    # no longer heard; the second connector's still are.
    wait_until(lambda: first.call(_subscription_count(first)) == 0, within=30)
    first.set_value(a["Temp"], 2.0)
    second.set_value(b["Temp"], 2.0)
    wait_until(lambda: values("l2.temp") == [1.0, 2.0], within=30)
    second.set_value(b["Temp"], 3.0)
    wait_until(lambda: values("l2.temp") == [1.0, 2.0, 3.0], within=30)
    assert values("l1.temp") == [1.0]
    # No longer watched: its link's state is not known.
    assert Connector.objects.get(pk=one.pk).comm_state == CommState.UNKNOWN
    assert Connector.objects.get(pk=two.pk).comm_state == CommState.OK


async def _subscription_count(server) -> int:
    """The subscriptions the server holds (the collector's, while it listens)."""
    return len(server._server.iserver.subscription_service.subscriptions)


def test_a_stopped_collector_leaves_its_links_unknown_and_its_mark_gone(
    opcua_servers,
):
    server = opcua_servers()
    ids = server.add_variables("Line1", {"Temp": 20.0})
    connector = make_connector(server)
    make_tag(connector, ids["Temp"], "line1.temp")
    _collector, thread = collector_thread(**FAST)
    try:
        wait_until(lambda: values("line1.temp") == [20.0], within=30)
        assert cache.get(ALIVE_KEY) is not None
    finally:
        thread.stop()
    assert Connector.objects.get(pk=connector.pk).comm_state == CommState.UNKNOWN
    assert cache.get(ALIVE_KEY) is None
    assert server.call(_subscription_count(server)) == 0  # its session closed


def test_a_batch_the_database_refuses_is_kept_and_stored_later(
    opcua_servers, run_collector, monkeypatch
):
    # The database fails the first two flushes (as while PostgreSQL restarts).
    store = readings_module.readings_store
    failures = []

    def flaky_store(**kwargs):
        if len(failures) < 2:
            failures.append(len(kwargs["readings"]))
            raise OperationalError("server closed the connection unexpectedly")
        return store(**kwargs)

    monkeypatch.setattr(readings_module, "readings_store", flaky_store)
    server = opcua_servers()
    ids = server.add_variables("Line1", {"Temp": 20.0})
    connector = make_connector(server)
    make_tag(connector, ids["Temp"], "line1.temp")
    run_collector()
    wait_until(lambda: len(failures) == 2, within=30)
    server.set_value(ids["Temp"], 21.0)
    wait_until(lambda: values("line1.temp") == [20.0, 21.0], within=30)
    assert failures == [1, 1]  # the first value, kept through both failures
    assert Connector.objects.get(pk=connector.pk).comm_state == CommState.OK


# --- a server that goes away and comes back ------------------------------------------


def test_server_outage_raises_comm_loss_then_resumes_without_duplicates(
    opcua_servers, run_collector
):
    server, other_server = opcua_servers(), opcua_servers()
    ids = server.add_variables("Line1", {"Temp": 20.0, "State": 1})
    other_ids = other_server.add_variables("Line2", {"Temp": 30.0})
    connector = make_connector(server)
    make_tag(connector, ids["Temp"], "line1.temp")
    make_tag(connector, ids["State"], "line1.state")
    other = make_connector(other_server, name="Line 2 PLC")
    make_tag(other, other_ids["Temp"], "line2.temp")
    # The production defaults: heartbeat 2 s, timeout 3 s, backoff up to 10 s.
    run_collector(heartbeat_s=2.0, timeout_s=3.0, backoff_max_s=10.0, flush_s=0.5)
    wait_until(lambda: values("line1.temp") == [20.0], within=30)
    server.set_value(ids["Temp"], 21.0)
    wait_until(lambda: values("line1.temp") == [20.0, 21.0], within=30)

    server.stop()
    lost = wait_until(
        lambda: Connector.objects.filter(pk=connector.pk, comm_state="lost").first(),
        within=30,
    )
    assert connector.endpoint in lost.last_error
    assert lost.last_error_at is not None
    alarm = wait_until(lambda: comm_alarm(connector), within=30)
    assert (alarm.active, alarm.status, alarm.severity) == (
        True,
        "unack_active",
        "high",
    )
    # The other connector's server is still heard meanwhile.
    other_server.set_value(other_ids["Temp"], 31.0)
    wait_until(lambda: values("line2.temp") == [30.0, 31.0], within=30)
    assert Connector.objects.get(pk=other.pk).comm_state == CommState.OK
    assert comm_alarm(other) is None

    server.start()  # same port, same node ids, the same values (new timestamps)
    wait_until(
        lambda: Connector.objects.get(pk=connector.pk).comm_state == CommState.OK,
        within=30,
    )
    alarm.refresh_from_db()
    assert (alarm.active, alarm.status) == (False, "unack_rtn")
    server.set_value(ids["Temp"], 22.0)
    wait_until(lambda: values("line1.temp") == [20.0, 21.0, 22.0], within=30)
    # The values re-sent on resubscription were not stored again.
    assert values("line1.state") == [1.0]
    assert ScadaReading.objects.filter(connector=connector).count() == 4


def test_a_server_down_at_start_is_reported_and_joined_when_it_comes(
    opcua_servers, run_collector
):
    server = opcua_servers(started=False)  # nothing listens on its port yet
    ids = server.add_variables("Line1", {"Temp": 5.0})
    connector = make_connector(server)
    make_tag(connector, ids["Temp"], "line1.temp")
    # Its start grace (tested below) shortened: reported lost after 1 s, not 5.
    run_collector(start_grace_s=1.0)
    wait_until(
        lambda: Connector.objects.get(pk=connector.pk).comm_state == CommState.LOST,
        within=30,
    )
    server.start()
    wait_until(lambda: values("line1.temp") == [5.0], within=30)
    assert Connector.objects.get(pk=connector.pk).comm_state == CommState.OK


def test_a_server_that_starts_just_after_the_collector_raises_no_alarm(
    opcua_servers, run_collector
):
    # make run starts the simulator and the collector together: the collector
    # retries every second for its first seconds (5 by default; 30 here, for a
    # test server's start on a busy machine) before it reports the link lost.
    server = opcua_servers(started=False)  # nothing listens on its port yet
    ids = server.add_variables("Line1", {"Temp": 5.0})
    connector = make_connector(server)
    make_tag(connector, ids["Temp"], "line1.temp")
    run_collector(start_grace_s=30.0)
    time.sleep(1.5)  # the collector's first attempts fail
    assert Connector.objects.get(pk=connector.pk).comm_state == CommState.UNKNOWN
    server.start()
    wait_until(lambda: values("line1.temp") == [5.0], within=30)
    assert Connector.objects.get(pk=connector.pk).comm_state == CommState.OK
    assert comm_alarm(connector) is None


# --- the demo plant -----------------------------------------------------------


def test_demo_plant_blocks_a_station_and_raises_the_temperature_alarm(
    settings, run_collector
):
    settings.BPMOS_OPCUA_SIM_URL = f"opc.tcp://127.0.0.1:{free_port()}/bpmos/"
    for spec in lines_demo.LINES:
        make_line(
            slug=spec.slug,
            name=spec.name,
            position=spec.position,
            stations=tuple((s.slug, s.name, s.ideal_seconds) for s in spec.stations),
        )
    demo.seed(lambda line: None)
    # Five ticks a second: the sorter blocks at tick 40 (8 s), the chamber
    # passes 45 °C at tick 31 (6 s) and stays above for 12 s, more than the
    # rule's 5 s on-delay.
    _plant, runner = simulator_thread(endpoint=settings.BPMOS_OPCUA_SIM_URL, tick_s=0.2)
    try:
        run_collector(watch_s=0.5, flush_s=0.5)
        sorter = simulator.BLOCKING_MACHINE
        wait_until(
            lambda: Machine.objects.get(code=sorter).status == "blocked", within=40
        )
        alarm = wait_until(
            lambda: AlarmEvent.objects.filter(
                tag_name=demo.TEMPERATURE_TAG, kind="limit"
            ).first(),
            within=40,
        )
        assert alarm.severity == "high"
        assert alarm.value > 45.0
        # Counts reach lines as increments of the PLC's cumulative counters.
        made = wait_until(
            lambda: MachineReading.objects.filter(
                machine__code="line-c-st-01-m1", tag="good_count", value__gt=0
            ).count(),
            within=20,
        )
        assert made > 0
        assert Tag.objects.filter(kind=TagKind.STATE).count() == 11
    finally:
        runner.stop()
