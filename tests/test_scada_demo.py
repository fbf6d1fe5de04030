"""The demo plant's OPC UA simulator (its values, served by a real asyncua
server) and the demo SCADA seed (idempotent, mapped to the demo machines)."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import subprocess
import sys
import time

import pytest
from asyncua import Client, ua
from django.conf import settings as django_settings
from django.core.management import call_command

from bpmos.management.commands.seed_demo import demo_modules, step_name
from lines import demo as lines_demo
from lines.models import Machine
from scada import demo, simulator
from scada.models import AlertRule, Connector, Tag, TagKind
from tests.factories_lines import make_line
from tests.support import WAIT_SECONDS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the simulator's values -------------------------------------------------------


def test_temperature_passes_the_demo_limit_within_a_minute_then_cools():
    over = [
        tick
        for tick in range(simulator.TEMPERATURE_PERIOD)
        if simulator.temperature_at(tick) > 45.0
    ]
    # 35 °C + 20 °C over 60 ticks reaches 45 °C at 30 s (a 0.2 °C ripple on top),
    # and is back under it on the way down: one excursion per period.
    assert over == list(range(31, 90))
    back = [t for t in range(60, 180) if simulator.temperature_at(t) < 43.0]
    assert back[0] == 96  # below the limit minus the demo rule's deadband
    assert [simulator.temperature_at(t) for t in range(180, 360)] == [
        simulator.temperature_at(t) for t in range(180)
    ]


def test_sorter_is_blocked_for_thirty_seconds_every_two_minutes():
    sorter = next(
        m for m in simulator.demo_machines() if m.code == simulator.BLOCKING_MACHINE
    )
    states = [sorter.state_at(tick) for tick in range(0, 300)]
    blocked = [tick for tick, state in enumerate(states) if state == "blocked"]
    assert blocked == [*range(40, 70), *range(160, 190), *range(280, 300)]
    assert set(states) == {"running", "blocked"}


def test_counters_are_cumulative_and_stop_while_blocked():
    values = [simulator.values_at(tick) for tick in range(0, 80)]
    good = [v[f"{simulator.BLOCKING_MACHINE}.GoodCount"] for v in values]
    assert good == sorted(good)  # never goes back
    assert good[40] == good[69]  # no piece while blocked
    assert good[79] > good[69]
    # The weld (blocked in the demo) and the EOL tester (idle) make nothing.
    assert {v["line-a-st-02-m1.GoodCount"] for v in values} == {0}
    assert values[0]["line-a-st-02-m1.State"] == simulator.STATE_CODE_OF["blocked"]
    # Every 40th piece of a running machine is a reject.
    at = simulator.values_at(1000)
    pieces = at["line-c-st-01-m1.GoodCount"] + at["line-c-st-01-m1.RejectCount"]
    assert at["line-c-st-01-m1.RejectCount"] == pieces // 40
    assert pieces == int(1000 // 4.4)


def test_values_are_the_same_every_run():
    assert simulator.values_at(123) == simulator.values_at(123)
    assert simulator.values_at(5) != simulator.values_at(6)  # analog ones move


async def test_simulator_serves_every_demo_tag_with_its_value():
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/bpmos/"
    # A tick an hour: the values stay those of tick 0 while the test reads.
    async with (
        asyncio.timeout(WAIT_SECONDS),  # the server's start and stop included
        simulator.PlantSimulator(endpoint=endpoint, tick_s=3600),
        Client(endpoint, timeout=5) as client,
    ):
        specs = demo.tag_specs()
        nodes = [client.get_node(spec["node_id"]) for spec in specs]
        values = await client.read_attributes(nodes, ua.AttributeIds.Value)
    expected = simulator.values_at(0)
    assert len(specs) == 11 * 4 + 3
    for spec, data in zip(specs, values, strict=True):
        assert data.StatusCode.is_good(), spec["node_id"]
        assert data.SourceTimestamp is not None
        name = spec["node_id"].split(";s=", 1)[1]
        assert data.Value.Value == expected[name], name


async def test_simulator_writes_changes_with_new_source_timestamps():
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/bpmos/"
    node = simulator.node_id(f"{simulator.TEMPERATURE_MACHINE}.Temperature")
    async with (
        asyncio.timeout(WAIT_SECONDS),  # five ticks of 50 ms, start and stop
        simulator.PlantSimulator(endpoint=endpoint, tick_s=0.05) as plant,
        Client(endpoint, timeout=5) as client,
    ):
        first = await client.get_node(node).read_data_value()
        while plant.tick < 5:
            await plant.wait_tick()
        later = await client.get_node(node).read_data_value()
    assert later.SourceTimestamp > first.SourceTimestamp
    assert later.Value.Value != first.Value.Value


# --- the demo seed ------------------------------------------------------------------


def _demo_lines() -> None:
    for spec in lines_demo.LINES:
        make_line(
            slug=spec.slug,
            name=spec.name,
            position=spec.position,
            stations=tuple((s.slug, s.name, s.ideal_seconds) for s in spec.stations),
        )


def test_seed_demo_runs_the_scada_step_after_the_lines():
    names = [step_name(module) for module in demo_modules()]
    assert names.index("scada") > names.index("lines")


@pytest.mark.django_db
def test_demo_seed_maps_the_simulator_tags_to_the_demo_machines(settings):
    settings.BPMOS_OPCUA_SIM_URL = "opc.tcp://127.0.0.1:4999/plant/"
    _demo_lines()
    lines_seen: list[str] = []
    demo.seed(lines_seen.append)

    connector = Connector.objects.get(name="Plant simulator")
    assert (connector.kind, connector.endpoint, connector.mode, connector.enabled) == (
        "opcua",
        "opc.tcp://127.0.0.1:4999/plant/",
        "subscribe",
        True,
    )
    tags = {tag.tag_name: tag for tag in Tag.objects.filter(connector=connector)}
    assert len(tags) == 47
    weld_state = tags["line-a-st-02-m1.state"]
    assert weld_state.node_id == "ns=2;s=line-a-st-02-m1.State"
    assert weld_state.kind == TagKind.STATE
    assert weld_state.machine == Machine.objects.get(code="line-a-st-02-m1")
    assert tags["line-c-st-01-m1.cycle_time"].unit == "s"
    temperature = tags["line-c-st-02-m1.temperature"]
    assert (temperature.kind, temperature.unit, temperature.machine.code) == (
        "analog",
        "°C",
        "line-c-st-02-m1",
    )
    assert tags["dry-room.dew_point"].machine is None
    assert sum(tag.machine is not None for tag in tags.values()) == 46
    rule = AlertRule.objects.get()
    assert rule.tag == temperature
    assert (rule.high_limit, rule.deadband, rule.on_delay_s, rule.severity) == (
        45.0,
        2.0,
        5,
        "high",
    )
    assert rule.escalate_after_s == 300
    assert lines_seen == [
        "scada: connector 'Plant simulator' at opc.tcp://127.0.0.1:4999/plant/, "
        "47 tags (46 mapped to machines), rule 'Grading chamber over temperature'"
    ]


@pytest.mark.django_db
def test_demo_seed_second_run_changes_nothing():
    _demo_lines()
    demo.seed(lambda line: None)
    Connector.objects.filter(name="Plant simulator").update(poll_interval_s=7)
    before = (Connector.objects.count(), Tag.objects.count(), AlertRule.objects.count())
    lines_seen: list[str] = []
    demo.seed(lines_seen.append)
    after = (Connector.objects.count(), Tag.objects.count(), AlertRule.objects.count())
    assert after == before == (1, 47, 1)
    # What an admin changed is left as it is.
    assert Connector.objects.get().poll_interval_s == 7
    assert lines_seen == ["scada: connector 'Plant simulator' already present"]


def test_opcua_simulator_command_serves_until_sigterm():
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/bpmos/"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "opcua_simulator", "--endpoint", endpoint],
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        node = simulator.node_id(f"{simulator.TEMPERATURE_MACHINE}.Temperature")
        # A process of its own: Django's start and asyncua's address space (6-9 s
        # of CPU at load 8); 30 s ran out once at load 9.
        value = asyncio.run(_read_when_up(endpoint, node, within=2 * WAIT_SECONDS))
        assert 30.0 < value < 56.0
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 0
    assert f"OPC UA plant simulator at {endpoint}" in output
    assert '"event": "opcua_simulator.stopped"' in output
    assert "asyncua.server.address_space" not in output  # no per-request lines


async def _read_when_up(endpoint: str, node: str, *, within: float):
    deadline = time.monotonic() + within
    while True:
        try:
            async with Client(endpoint, timeout=2) as client:
                return await client.get_node(node).read_value()
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.mark.django_db
def test_opcua_simulator_command_refuses_a_bad_tick():
    with pytest.raises(Exception, match="tick"):
        call_command("opcua_simulator", "--tick", "0", stdout=io.StringIO())
