"""The demo plant's OPC UA server: a small asyncua server whose variables the
demo connector (``scada.demo``) is mapped to, so ``make run`` shows live SCADA
readings, a station going Blocked and a temperature alarm with no setup.

Every machine of the demo lines (``lines.demo.LINES``) has four variables under
``Objects/BPM-OS Plant/<line>/<station>/<machine code>``:

* ``State`` (Int32, the code of ``STATE_CODES``): the machine's state in the demo
  seed (``StationSpec.final``), except the Cell Sorting sorter, which is
  Blocked ("downstream full") for ``BLOCKED_FOR`` seconds of every
  ``BLOCKED_EVERY``, starting ``BLOCKED_FROM`` seconds after start-up;
* ``GoodCount`` and ``RejectCount`` (UInt32): cumulative counters, as a PLC
  keeps them; a running machine makes one piece every ``1.1 * ideal`` s and
  every 40th piece is a reject;
* ``CycleTime`` (Double, s): the last piece's cycle time.

and three analog variables:

* ``line-c-st-02-m1.Temperature`` (°C): the grading rig's chamber. It idles at
  35 °C, rises to 55 °C over a minute (past the demo rule's 45 °C limit about
  30 s after start-up), cools back over a minute and rests for another, then
  again (``TEMPERATURE_PERIOD``);
* ``dry-room.DewPoint`` (°C) and ``line-p-st-03-m1.Pressure`` (bar): slow waves
  that never leave their limits.

Everything is a function of the tick number (one tick a second by default), so
the values are the same every run: ``values_at(tick)`` says what they are,
and a test can reason about them. A variable is written only when its value
changes (a PLC's value changes, not its polling), with the tick's wall-clock
time as its source timestamp; the analog ones change every tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from asyncua import Server, ua

from lines import demo as lines_demo
from scada.readings import DEFAULT_STATE_CODES

log = structlog.get_logger(__name__)

NAMESPACE_URI = "urn:bpmos:plant-simulator"
NAMESPACE_INDEX = 2  # the first namespace a fresh server registers

# The State variable's codes: the plant's PLC convention, the one the connector
# maps by default.
STATE_CODES: dict[int, str] = {
    int(code): word for code, word in DEFAULT_STATE_CODES.items()
}
STATE_CODE_OF = {word: code for code, word in STATE_CODES.items()}

BLOCKING_MACHINE = "line-c-st-03-m1"  # Cell Sorting: "downstream full" now and then
BLOCKED_FROM = 40
BLOCKED_FOR = 30
BLOCKED_EVERY = 120

TEMPERATURE_MACHINE = "line-c-st-02-m1"  # Cell Grading's chamber
TEMPERATURE_IDLE = 35.0
TEMPERATURE_PEAK = 55.0
TEMPERATURE_RISE = 60  # ticks from idle to peak (then as many back)
TEMPERATURE_PERIOD = 180
REJECT_EVERY = 40  # the 40th, 80th, ... piece is a reject


def node_id(name: str) -> str:
    """A variable's node id as a tag names it, e.g. ``ns=2;s=line-a-st-01-m1.State``."""
    return f"ns={NAMESPACE_INDEX};s={name}"


@dataclass(frozen=True)
class MachineSpec:
    """One demo machine as the simulator runs it."""

    code: str
    line_name: str
    station_name: str
    state: str  # its steady state (the demo seed's final state)
    cycle_s: float  # the time a piece takes while running

    def state_at(self, tick: int) -> str:
        if (
            self.code == BLOCKING_MACHINE
            and tick >= BLOCKED_FROM
            and (tick - BLOCKED_FROM) % BLOCKED_EVERY < BLOCKED_FOR
        ):
            return "blocked"
        return self.state

    def running_ticks(self, tick: int) -> int:
        """Ticks spent running in [0, tick)."""
        if self.state != "running":
            return 0
        if self.code != BLOCKING_MACHINE or tick <= BLOCKED_FROM:
            return tick
        cycles, into = divmod(tick - BLOCKED_FROM, BLOCKED_EVERY)
        blocked = cycles * BLOCKED_FOR + min(into, BLOCKED_FOR)
        return tick - blocked

    def pieces_at(self, tick: int) -> int:
        return int(self.running_ticks(tick) // self.cycle_s)


def demo_machines() -> list[MachineSpec]:
    """The machines of the demo lines, with the codes ``lines.demo`` gives them."""
    machines = []
    for line in lines_demo.LINES:
        for station in line.stations:
            machines.append(
                MachineSpec(
                    code=f"{line.slug}-{station.slug}-m1",
                    line_name=line.name,
                    station_name=station.name,
                    state=station.final,
                    cycle_s=round(float(station.ideal_seconds) * 1.1, 2),
                )
            )
    return machines


def temperature_at(tick: int) -> float:
    """The grading chamber: up for a minute, down for a minute, a minute's rest."""
    phase = tick % TEMPERATURE_PERIOD
    span = TEMPERATURE_PEAK - TEMPERATURE_IDLE
    if phase < TEMPERATURE_RISE:
        base = TEMPERATURE_IDLE + span * phase / TEMPERATURE_RISE
    elif phase < 2 * TEMPERATURE_RISE:
        base = TEMPERATURE_PEAK - span * (phase - TEMPERATURE_RISE) / TEMPERATURE_RISE
    else:
        base = TEMPERATURE_IDLE
    # A small ripple so the value changes every tick, even at rest.
    return round(base + 0.2 * math.sin(2 * math.pi * tick / 10), 2)


@dataclass(frozen=True)
class AnalogSpec:
    name: str  # the variable's node name, also its tag name in the demo
    browse_path: tuple[str, ...]  # folders under the plant object
    unit: str

    def value_at(self, tick: int) -> float:
        if self.name == f"{TEMPERATURE_MACHINE}.Temperature":
            return temperature_at(tick)
        if self.name == "dry-room.DewPoint":
            return round(-45.0 + 2.0 * math.sin(tick / 30), 2)
        return round(4.0 + 0.3 * math.sin(tick / 7), 3)  # sealant pressure


ANALOGS = (
    AnalogSpec(
        f"{TEMPERATURE_MACHINE}.Temperature",
        ("Line C (Cells)", "Cell Grading", TEMPERATURE_MACHINE),
        "°C",
    ),
    AnalogSpec("dry-room.DewPoint", ("Dry Room",), "°C"),
    AnalogSpec(
        "line-p-st-03-m1.Pressure",
        ("Line P (Packs)", "Enclosure Seal", "line-p-st-03-m1"),
        "bar",
    ),
)

_MACHINE_VARIABLES = (
    ("State", ua.VariantType.Int32),
    ("GoodCount", ua.VariantType.UInt32),
    ("RejectCount", ua.VariantType.UInt32),
    ("CycleTime", ua.VariantType.Double),
)


def values_at(tick: int, machines: list[MachineSpec] | None = None) -> dict[str, Any]:
    """Every variable's value at a tick, by node name (``<code>.State``, ...)."""
    values: dict[str, Any] = {}
    for machine in machines if machines is not None else demo_machines():
        pieces = machine.pieces_at(tick)
        rejects = pieces // REJECT_EVERY
        values[f"{machine.code}.State"] = STATE_CODE_OF[machine.state_at(tick)]
        values[f"{machine.code}.GoodCount"] = pieces - rejects
        values[f"{machine.code}.RejectCount"] = rejects
        # The last piece's time: a few percent around the nominal, by piece.
        values[f"{machine.code}.CycleTime"] = (
            round(machine.cycle_s * (1 + 0.04 * math.sin(pieces)), 2) if pieces else 0.0
        )
    for analog in ANALOGS:
        values[analog.name] = analog.value_at(tick)
    return values


class PlantSimulator:
    """The asyncua server of the demo plant. ``async with`` it (or ``start()``
    / ``stop()``), or ``run()`` it until cancelled.

    ``tick_s`` is the real time between ticks (a test speeds the plant up);
    ``tick`` counts them from 0 (start-up).
    """

    def __init__(self, *, endpoint: str, tick_s: float = 1.0) -> None:
        self.endpoint = endpoint
        self.tick_s = tick_s
        self.tick = 0
        self.machines = demo_machines()
        self.server = Server()
        self._variables: dict[str, tuple[Any, ua.VariantType]] = {}
        self._last: dict[str, Any] = {}
        self._task: asyncio.Task | None = None
        self._ticked = asyncio.Event()

    async def _build(self) -> None:
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_server_name("BPM-OS plant simulator")
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        index = await self.server.register_namespace(NAMESPACE_URI)
        if index != NAMESPACE_INDEX:  # pragma: no cover - asyncua's own numbering
            raise RuntimeError(f"namespace index {index}, expected {NAMESPACE_INDEX}")
        plant = await self.server.nodes.objects.add_object(index, "BPM-OS Plant")
        folders: dict[tuple[str, ...], Any] = {}

        async def folder(path: tuple[str, ...]):
            if path not in folders:
                parent = await folder(path[:-1]) if len(path) > 1 else plant
                folders[path] = await parent.add_object(index, path[-1])
            return folders[path]

        first = values_at(0, self.machines)
        for machine in self.machines:
            parent = await folder(
                (machine.line_name, machine.station_name, machine.code)
            )
            for name, variant in _MACHINE_VARIABLES:
                key = f"{machine.code}.{name}"
                await self._add(parent, index, key, name, first[key], variant)
        for analog in ANALOGS:
            parent = await folder(analog.browse_path)
            leaf = analog.name.rsplit(".", 1)[1]
            await self._add(
                parent,
                index,
                analog.name,
                leaf,
                first[analog.name],
                ua.VariantType.Double,
            )

    async def _add(self, parent, index, key, name, value, variant) -> None:
        node = await parent.add_variable(
            ua.NodeId(key, index),
            ua.QualifiedName(name, index),
            ua.Variant(value, variant),
        )
        self._variables[key] = (node, variant)

    async def _write(self, tick: int) -> int:
        """Write the variables whose value changed at ``tick``; returns how many."""
        now = datetime.now(UTC)
        changed = 0
        for key, value in values_at(tick, self.machines).items():
            if self._last.get(key) == value:
                continue
            node, variant = self._variables[key]
            await node.write_value(
                ua.DataValue(
                    ua.Variant(value, variant),
                    SourceTimestamp=now,
                    ServerTimestamp=now,
                )
            )
            self._last[key] = value
            changed += 1
        return changed

    async def start(self) -> PlantSimulator:
        await self._build()
        await self.server.start()
        await self._write(0)
        self._task = asyncio.create_task(self._ticks(), name="plant-simulator")
        log.info(
            "opcua_simulator.started",
            endpoint=self.endpoint,
            variables=len(self._variables),
            tick_s=self.tick_s,
        )
        return self

    async def _ticks(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = 0
        while True:
            tick += 1
            # Scheduled from the start, so the ticks do not drift with write time.
            await asyncio.sleep(max(0.0, started + tick * self.tick_s - loop.time()))
            try:
                await self._write(tick)
            except Exception:  # a write must never end the plant
                log.exception("opcua_simulator.write_failed", tick=tick)
            self.tick = tick
            ticked, self._ticked = self._ticked, asyncio.Event()
            ticked.set()

    async def wait_tick(self) -> int:
        """Wait for the next tick to be written; returns its number."""
        await self._ticked.wait()
        return self.tick

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.server.stop()
        log.info("opcua_simulator.stopped", endpoint=self.endpoint, tick=self.tick)

    async def __aenter__(self) -> PlantSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        async with self:
            await stop.wait()
