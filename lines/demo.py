"""Demo plant lines (docs/design.md §8): a cell line, a module line and a pack line,
their stations and machines, two weeks of readings, and the SCADA gateway's service
account that posts them.

Readings go through ``readings_ingest`` (the API's path), one batch per machine
and day, so the audit log holds their real history. They end now, in a final
state chosen so every station state and line mode is on screen:

* Line C (Cells): every station Running (mode Running);
* Line A (Modules): Running, Blocked (Safety Curtain), Ready, Idle (mode Blocked);
* Line P (Packs): one station in Maintenance, one Ready (mode Maintenance).

Idempotent: a line whose slug exists is left as it is (with its readings), and
a run that creates no line refreshes no roll-up or OEE snapshot (beat keeps them
current), so a re-run later writes and announces nothing.
Deterministic apart from "now": each machine's history comes from a seeded
random generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from bpmos.accounts.models import User
from bpmos.accounts.services import user_register
from bpmos.roles import Role
from lines import services
from lines.models import Line, Machine, Station

ORDER = 40  # after the users (0), runbooks (20) and exceptions (30)

DAYS = 14
COUNT_EVERY = timedelta(minutes=5)
GATEWAY_USERNAME = "scada-gateway"


@dataclass(frozen=True)
class StationSpec:
    slug: str
    name: str
    ideal_seconds: str
    machine_type: str
    final: str  # the machine's state now
    reason: str = ""
    stage_code: str = ""  # the manufacturing runbook's stage it performs


@dataclass(frozen=True)
class LineSpec:
    slug: str
    name: str
    position: int
    stations: tuple[StationSpec, ...]


LINES = (
    LineSpec(
        "line-c",
        "Line C (Cells)",
        1,
        (
            StationSpec("st-01", "Cell Inbound (OCV/IR)", "4", "ocv tester", "running"),
            StationSpec("st-02", "Cell Grading", "6", "grading rig", "running"),
            StationSpec("st-03", "Cell Sorting", "5", "sorter", "running"),
        ),
    ),
    LineSpec(
        "line-a",
        "Line A (Modules)",
        2,
        (
            StationSpec("st-01", "Cell Load", "10", "pick and place", "running"),
            StationSpec(
                "st-02", "Weld", "20", "laser welder", "blocked", "Safety Curtain"
            ),
            StationSpec(
                "st-03", "Busbar & BMS Fit", "25", "screwdriving cell", "ready"
            ),
            StationSpec("st-04", "Module EOL Test", "30", "eol tester", "idle"),
        ),
    ),
    LineSpec(
        "line-p",
        "Line P (Packs)",
        3,
        (
            StationSpec("st-01", "Module Stacking", "60", "stacking robot", "running"),
            StationSpec(
                "st-02",
                "Harness & BMS",
                "90",
                "torque station",
                "maintenance",
                "Planned PM: torque tool calibration",
            ),
            StationSpec(
                "st-03", "Enclosure Seal", "45", "sealant dispenser", "running"
            ),
            StationSpec("st-04", "Pack EOL Test", "120", "pack tester", "ready"),
        ),
    ),
)

# (state, relative weight, typical minutes) of the history before the final state.
_HISTORY = (
    ("running", 70, 50),
    ("ready", 8, 10),
    ("idle", 8, 20),
    ("blocked", 7, 8),
    ("down", 4, 25),
    ("maintenance", 3, 40),
)
_REASONS = {
    "blocked": ("Safety Curtain", "Downstream full", "Door open"),
    "down": ("Servo fault", "Vacuum loss", "Jam"),
    "maintenance": ("Planned PM", "Nozzle cleaning"),
}


def _gateway(log) -> User:
    user = User.objects.filter(username=GATEWAY_USERNAME).first()
    if user is None:
        user = user_register(
            username=GATEWAY_USERNAME,
            password=settings.BPMOS_DEMO_PASSWORD,
            role=Role.OPERATOR,
            first_name="SCADA gateway",
            actor=None,
        )
        log(f"lines: service account {GATEWAY_USERNAME} (operator) created")
    return user


def _history(
    rng: random.Random, spec: StationSpec, start: datetime, end: datetime
) -> list[dict]:
    """State changes, counts and cycle times of one machine over [start, end)."""
    rows: list[dict] = []
    states = [s for s, _, _ in _HISTORY]
    weights = [w for _, w, _ in _HISTORY]
    minutes = dict((s, m) for s, _, m in _HISTORY)
    ideal = float(spec.ideal_seconds)
    cursor, state = start, "running"
    final_at = end - timedelta(minutes=rng.randint(3, 40))
    while cursor < final_at:
        row = {"tag": "state", "ts": cursor, "value": state}
        if state in _REASONS:
            row["reason"] = rng.choice(_REASONS[state])
        rows.append(row)
        stop = min(
            final_at,
            cursor + timedelta(minutes=max(1, rng.expovariate(1 / minutes[state]))),
        )
        if state == "running":
            # Counts every 5 minutes while running, at 80-98 % of ideal speed.
            tick = cursor + COUNT_EVERY
            while tick <= stop:
                made = int(COUNT_EVERY.total_seconds() / ideal * rng.uniform(0.8, 0.98))
                rejects = sum(rng.random() < 0.02 for _ in range(made))
                rows.append({"tag": "good_count", "ts": tick, "value": made - rejects})
                if rejects:
                    rows.append({"tag": "reject_count", "ts": tick, "value": rejects})
                rows.append(
                    {
                        "tag": "cycle_time",
                        "ts": tick,
                        "value": round(ideal * rng.uniform(1.02, 1.25), 2),
                        "unit": "s",
                    }
                )
                tick += COUNT_EVERY
        cursor = stop
        state = rng.choices(states, weights)[0]
    final = {"tag": "state", "ts": final_at, "value": spec.final}
    if spec.reason:
        final["reason"] = spec.reason
    rows.append(final)
    return rows


def _send(machine: Machine, rows: list[dict], actor) -> int:
    """Send a machine's rows in daily batches, as a gateway would."""
    stored = 0
    by_day: dict[object, list[dict]] = {}
    for row in rows:
        text = row["ts"].astimezone(UTC).isoformat().replace("+00:00", "Z")
        by_day.setdefault(row["ts"].date(), []).append({**row, "ts": text})
    for day in sorted(by_day):
        batch = by_day[day]
        for start in range(0, len(batch), services.MAX_BATCH):
            result = services.readings_ingest(
                machine_id=machine.pk,
                rows=batch[start : start + services.MAX_BATCH],
                actor=actor,
            )
            stored += result["accepted"]
    return stored


def _stage_for(code: str):
    from runbooks.models import Stage

    if not code:
        return None
    return Stage.objects.filter(runbook__slug="manufacturing", code=code).first()


def seed(log) -> None:
    """Create the missing demo lines with two weeks of readings each."""
    from runbooks.models import Runbook

    gateway = _gateway(log)
    manufacturing = Runbook.objects.filter(slug="manufacturing").first()
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - timedelta(days=DAYS)
    created = 0
    for spec in LINES:
        if Line.objects.filter(slug=spec.slug).exists():
            log(f"lines: {spec.slug} already present")
            continue
        log(f"lines: {spec.slug}: {DAYS} days of readings for its machines ...")
        line = Line.objects.create(
            slug=spec.slug,
            name=spec.name,
            position=spec.position,
            runbook=manufacturing,
            shift_start=time(6, 0),
            shift_minutes=480,
            planned_downtime_minutes=30,
            oee_target=Decimal("65.0"),
        )
        stored = 0
        for position, station_spec in enumerate(spec.stations, start=1):
            station = Station.objects.create(
                line=line,
                slug=station_spec.slug,
                name=station_spec.name,
                position=position,
                ideal_cycle_seconds=Decimal(station_spec.ideal_seconds),
                runbook_stage=_stage_for(station_spec.stage_code),
            )
            machine = Machine.objects.create(
                station=station,
                code=f"{spec.slug}-{station_spec.slug}-m1",
                name=f"{station_spec.name} #1",
                machine_type=station_spec.machine_type,
                location=f"{spec.name}, bay {position}",
            )
            rng = random.Random(f"{spec.slug}/{station_spec.slug}")
            stored += _send(machine, _history(rng, station_spec, start, now), gateway)
        created += 1
        log(f"lines: {spec.slug} with {len(spec.stations)} stations, {stored} readings")
    if not created:
        # Refreshing now would roll up hours and shifts the clock has reached
        # since the first run and announce health changes: not the seed's work.
        return
    hours = services.machine_hours_refresh(now=now)
    log(f"lines: {hours} machine-hours of OEE rolled up")
    services.oee_snapshots_refresh(now=now)
