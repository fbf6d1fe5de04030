"""Factories for lines tests: a line of two stations with one machine each,
readings sent through the ingestion service (as the API stores them).

The line's shifts: 06:00, 14:00, 22:00 UTC, 480 minutes each with 48 minutes
of planned downtime, so planned busy time is 90 % of any window.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from lines import services
from lines.models import Line, Machine, MachineReading, Station

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(hours: int, minutes: int = 0, seconds: int = 0) -> datetime:
    """A time on the factory's day: at(8, 30) is 08:30 UTC."""
    return T0.replace(hour=hours, minute=minutes, second=seconds)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_line(
    *,
    slug: str = "line-a",
    name: str = "Line A (Modules)",
    runbook=None,
    stations: tuple = (("st-01", "Cell Load", "10"), ("st-02", "Weld", "20")),
    position: int = 1,
) -> Line:
    """A line with ``stations`` (slug, name, ideal cycle s), one machine each.

    Machines are coded ``<line slug>-<station slug>-m1``.
    """
    line = Line.objects.create(
        slug=slug,
        name=name,
        position=position,
        runbook=runbook,
        shift_start=time(6, 0),
        shift_minutes=480,
        planned_downtime_minutes=48,
        oee_target=Decimal("60.0"),
    )
    for index, (station_slug, station_name, ideal) in enumerate(stations, start=1):
        station = Station.objects.create(
            line=line,
            slug=station_slug,
            name=station_name,
            position=index,
            ideal_cycle_seconds=Decimal(ideal),
        )
        Machine.objects.create(
            station=station,
            code=f"{slug}-{station_slug}-m1",
            name=f"{station_name} machine",
            machine_type=station_name.lower(),
            location=f"{name} bay {index}",
        )
    return line


def machine(line: Line, station_slug: str) -> Machine:
    """The (first) machine at a station of ``line``."""
    return Machine.objects.filter(
        station__line=line, station__slug=station_slug
    ).first()


def reading(tag: str, when: datetime, value, **extra) -> dict:
    return {"tag": tag, "ts": iso(when), "value": value, **extra}


def state(when: datetime, code: str, reason: str = "") -> dict:
    extra = {"reason": reason} if reason else {}
    return reading("state", when, code, **extra)


def ingest(target: Machine, rows: list[dict], actor=None) -> dict:
    """Send ``rows`` through the ingestion service."""
    return services.readings_ingest(machine_id=target.pk, rows=rows, actor=actor)


def row_counts() -> dict[str, int]:
    """Rows an ingestion touches; compare before and after a refused batch."""
    return {
        "readings": MachineReading.objects.count(),
        "audit": AuditRecord.objects.count(),
        "events": OutboxEvent.objects.count(),
    }


def window(start: datetime, minutes: int) -> tuple[datetime, datetime]:
    return start, start + timedelta(minutes=minutes)
