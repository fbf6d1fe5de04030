"""Live events of SCADA alarms (topic ``alerts``; docs/scada.md).

One event per alarm change, named ``alarm.<change>``, whose data is the alarm as
the API lists it (snake_case, the connectors contract); and the start and end
of an area's alarm flood.
"""

from __future__ import annotations

from typing import TypedDict

from bpmos.events import Event, declare
from bpmos.fields import utc_text


class AlarmPayload(TypedDict):
    id: int
    timestamp: str
    tag_name: str
    kind: str
    alarm_state: str
    active: bool
    severity: str
    area: str
    message: str
    value: float | None
    limit: float | None
    rule_id: int | None
    connector_id: int | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    shelved_until: str | None
    exception_id: int | None


class FloodPayload(TypedDict):
    id: int
    area: str
    started_at: str
    ended_at: str | None
    alarm_count: int
    peak_rate: int


# What happened to the alarm: raised (a new occurrence), reactivated (an open
# one went active again), returned (back to normal, waiting for or closed by
# acknowledgement), the operator's and admin's actions, the shelf expiring, and
# the escalation to an exception.
ALARM_CHANGES = (
    "raised",
    "reactivated",
    "returned",
    "acknowledged",
    "shelved",
    "unshelved",
    "shelve_expired",
    "suppressed",
    "unsuppressed",
    "removed_from_service",
    "returned_to_service",
    "escalated",
)
ALARM_EVENTS = {
    change: declare(f"alarm.{change}", AlarmPayload) for change in ALARM_CHANGES
}
FLOOD_EVENTS = {
    change: declare(f"alarm_flood.{change}", FloodPayload)
    for change in ("started", "ended")
}


def alarm_payload(alarm) -> AlarmPayload:
    """The alarm's live shape (the API's list row, without computed flags)."""
    return {
        "id": alarm.pk,
        "timestamp": utc_text(alarm.timestamp),
        "tag_name": alarm.tag_name,
        "kind": alarm.kind,
        "alarm_state": alarm.status,
        "active": alarm.active,
        "severity": alarm.severity,
        "area": alarm.area,
        "message": alarm.message,
        "value": alarm.value,
        "limit": alarm.limit,
        "rule_id": alarm.rule_id,
        "connector_id": alarm.connector_id,
        "acknowledged_at": utc_text(alarm.acknowledged_at),
        "acknowledged_by": (
            alarm.acknowledged_by.username if alarm.acknowledged_by_id else None
        ),
        "shelved_until": utc_text(alarm.shelved_until),
        "exception_id": alarm.exception_id,
    }


def alarm_event(alarm, change: str) -> Event:
    """The event for ``change`` (one of ``ALARM_CHANGES``) to ``alarm``."""
    return Event(
        name=ALARM_EVENTS[change], topics=("alerts",), data=alarm_payload(alarm)
    )


def flood_event(flood, change: str) -> Event:
    """The event for a flood that ``started`` or ``ended``."""
    payload: FloodPayload = {
        "id": flood.pk,
        "area": flood.area,
        "started_at": utc_text(flood.started_at),
        "ended_at": utc_text(flood.ended_at),
        "alarm_count": flood.alarm_count,
        "peak_rate": flood.peak_rate,
    }
    return Event(name=FLOOD_EVENTS[change], topics=("alerts",), data=payload)
