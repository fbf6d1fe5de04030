"""Live events of lines and stations: topics ``lines`` (every line) and
``line.<id>`` (one line, by its numeric id; ``Line.topic``).

Published by ``lines.services`` when a batch of readings changes a station's
state or a line's mode, and by the OEE refresh when a line's health changes.
"""

from typing import TypedDict

from bpmos.events import Event, declare


class StationChangedPayload(TypedDict):
    lineId: str
    id: str
    name: str
    state: str  # Ready | Running | Blocked | Idle
    reason: str  # why it is Blocked; "" otherwise
    previousState: str
    changedAt: str


class LineChangedPayload(TypedDict):
    id: str
    name: str
    mode: str  # Running | Idle | Blocked | Maintenance
    health: str  # OK | Warning | Critical
    previousMode: str
    previousHealth: str
    changedAt: str


STATION_CHANGED = declare("station.changed", StationChangedPayload)
LINE_CHANGED = declare("line.changed", LineChangedPayload)


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _topics(line) -> tuple[str, ...]:
    return ("lines", line.topic)


def station_changed(line, station, *, before, after, at) -> Event:
    """A station's state (or its block reason) changed.

    ``before`` and ``after`` are ``lines.selectors.StationStatus`` values.
    """
    payload: StationChangedPayload = {
        "lineId": line.slug,
        "id": station.slug,
        "name": station.name,
        "state": after.state,
        "reason": after.reason,
        "previousState": before.state,
        "changedAt": _iso(at),
    }
    return Event(name=STATION_CHANGED, topics=_topics(line), data=payload)


def line_changed(line, *, mode, health, previous_mode, previous_health, at) -> Event:
    """A line's mode or health changed."""
    payload: LineChangedPayload = {
        "id": line.slug,
        "name": line.name,
        "mode": str(mode),
        "health": str(health),
        "previousMode": str(previous_mode),
        "previousHealth": str(previous_health),
        "changedAt": _iso(at),
    }
    return Event(name=LINE_CHANGED, topics=_topics(line), data=payload)
