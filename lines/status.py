"""Station state, line mode and line health: computed from machine statuses.

The rules (documented in docs/lines.md):

**Station state** (contract enum Ready / Running / Blocked / Idle), over the
station's active machines, first rule that matches:

1. ``Blocked`` when a machine is down, blocked or in maintenance; ``reason`` is
   that machine's reason as reported, else its state's label ("Down"); with
   several, the worst (down > blocked > maintenance), then the lowest id;
2. ``Running`` when a machine is running;
3. ``Ready`` when a machine is ready;
4. ``Idle`` otherwise (all idle, or no machines).

**Line mode** (Running / Idle / Blocked / Maintenance), over the line's machines:
``Blocked`` when one is down or blocked (an unplanned stop); else
``Maintenance`` when one is in maintenance; else ``Running`` when one is
running; else ``Idle``.

**Line health** (OK / Warning / Critical): ``Critical`` when the mode is
Blocked; ``Warning`` when the mode is Maintenance or the line's OEE this shift
is below its target; ``OK`` otherwise (also before any OEE is known).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from lines.models import MachineState


class StationState(StrEnum):
    """A station's state as the control UI shows it."""

    READY = "Ready"
    RUNNING = "Running"
    BLOCKED = "Blocked"
    IDLE = "Idle"


class LineMode(StrEnum):
    """A line's mode as the control UI shows it."""

    RUNNING = "Running"
    IDLE = "Idle"
    BLOCKED = "Blocked"
    MAINTENANCE = "Maintenance"


class LineHealth(StrEnum):
    """A line's health as the control UI shows it."""

    OK = "OK"
    WARNING = "Warning"
    CRITICAL = "Critical"


# Worst first: which stopped machine names a blocked station's reason.
_STOP_RANK = {
    MachineState.DOWN: 0,
    MachineState.BLOCKED: 1,
    MachineState.MAINTENANCE: 2,
}


@dataclass(frozen=True)
class MachineStatus:
    """What the computations need of one machine."""

    id: int
    station_id: int
    status: str  # a MachineState value
    reason: str = ""


@dataclass(frozen=True)
class StationStatus:
    """A station's computed state and, when Blocked, why."""

    state: StationState
    reason: str = ""


def station_status(machines: Iterable[MachineStatus]) -> StationStatus:
    """The state of a station whose machines are ``machines``."""
    machines = list(machines)
    stopped = sorted(
        (m for m in machines if m.status in _STOP_RANK),
        key=lambda m: (_STOP_RANK[m.status], m.id),
    )
    if stopped:
        worst = stopped[0]
        return StationStatus(
            StationState.BLOCKED,
            worst.reason or MachineState(worst.status).label,
        )
    statuses = {m.status for m in machines}
    if MachineState.RUNNING in statuses:
        return StationStatus(StationState.RUNNING)
    if MachineState.READY in statuses:
        return StationStatus(StationState.READY)
    return StationStatus(StationState.IDLE)


def line_mode(machines: Iterable[MachineStatus]) -> LineMode:
    """The mode of a line whose machines are ``machines``."""
    statuses = {m.status for m in machines}
    if statuses & {MachineState.DOWN, MachineState.BLOCKED}:
        return LineMode.BLOCKED
    if MachineState.MAINTENANCE in statuses:
        return LineMode.MAINTENANCE
    if MachineState.RUNNING in statuses:
        return LineMode.RUNNING
    return LineMode.IDLE


def line_health(
    mode: LineMode, *, oee: Decimal | None, target: Decimal | None
) -> LineHealth:
    """A line's health from its mode and its OEE (percent) this shift."""
    if mode == LineMode.BLOCKED:
        return LineHealth.CRITICAL
    if mode == LineMode.MAINTENANCE:
        return LineHealth.WARNING
    if oee is not None and target is not None and oee < target:
        return LineHealth.WARNING
    return LineHealth.OK


def stations_by_id(
    station_ids: Iterable[int], machines: Iterable[MachineStatus]
) -> dict[int, StationStatus]:
    """Every station's status, for stations ``station_ids`` (machines grouped)."""
    grouped: dict[int, list[MachineStatus]] = {pk: [] for pk in station_ids}
    for machine in machines:
        grouped.setdefault(machine.station_id, []).append(machine)
    return {pk: station_status(group) for pk, group in grouped.items()}
