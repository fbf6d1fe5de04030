"""Demo SCADA (docs/design.md §8, docs/scada.md): the connector "Plant
simulator" to the OPC UA server ``manage.py opcua_simulator`` serves
(``BPMOS_OPCUA_SIM_URL``), a tag for each of its variables mapped to the demo
machines (state, good count, reject count, cycle time) and to three analog
values, and an alert rule on the grading chamber's temperature. With
``make run`` (simulator and collector in the Procfile) the lines show live
readings, Cell Sorting goes Blocked and the temperature alarm comes within a
minute, with no setup.

The readings are stored as the SCADA gateway's service account, which
``lines.demo`` makes (``scada-gateway``, ``BPMOS_COLLECTOR_USERNAME``).

Idempotent: a connector, tag or rule whose name exists is left as it is (an
admin may have changed it).
"""

from __future__ import annotations

from django.conf import settings

from lines.models import Machine
from scada import simulator
from scada.models import (
    AlarmSeverity,
    AlertRule,
    Connector,
    ConnectorKind,
    ConnectorMode,
    Tag,
    TagKind,
)

ORDER = 60  # after the lines (40), whose machines the tags map

CONNECTOR_NAME = "Plant simulator"
TEMPERATURE_TAG = f"{simulator.TEMPERATURE_MACHINE}.temperature"
TEMPERATURE_RULE = "Grading chamber over temperature"

# (variable, kind, unit) of every demo machine.
_MACHINE_TAGS = (
    ("State", TagKind.STATE, ""),
    ("GoodCount", TagKind.GOOD_COUNT, ""),
    ("RejectCount", TagKind.REJECT_COUNT, ""),
    ("CycleTime", TagKind.CYCLE_TIME, "s"),
)
_ANALOG_TAG_NAMES = {
    f"{simulator.TEMPERATURE_MACHINE}.Temperature": TEMPERATURE_TAG,
    "dry-room.DewPoint": "dry-room.dew_point",
    "line-p-st-03-m1.Pressure": "line-p-st-03-m1.sealant_pressure",
}


def tag_specs() -> list[dict]:
    """The demo tags: node id, tag name, kind, unit and machine code."""
    specs = []
    for machine in simulator.demo_machines():
        for variable, kind, unit in _MACHINE_TAGS:
            specs.append(
                {
                    "node_id": simulator.node_id(f"{machine.code}.{variable}"),
                    "tag_name": f"{machine.code}.{kind}",
                    "kind": kind,
                    "unit": unit,
                    "machine": machine.code,
                    "area": "",
                }
            )
    for analog in simulator.ANALOGS:
        code = analog.browse_path[-1] if len(analog.browse_path) > 1 else ""
        specs.append(
            {
                "node_id": simulator.node_id(analog.name),
                "tag_name": _ANALOG_TAG_NAMES[analog.name],
                "kind": TagKind.ANALOG,
                "unit": analog.unit,
                "machine": code,
                "area": "" if code else "dry-room",
            }
        )
    return specs


def seed(log) -> None:
    """The simulator's connector, its tags and the temperature rule, when absent."""
    connector, created = Connector.objects.get_or_create(
        name=CONNECTOR_NAME,
        defaults={
            "kind": ConnectorKind.OPCUA,
            "endpoint": settings.BPMOS_OPCUA_SIM_URL,
            "mode": ConnectorMode.SUBSCRIBE,
            "poll_interval_s": 1,
        },
    )
    if not created:
        log(f"scada: connector {CONNECTOR_NAME!r} already present")
        return
    machines = {m.code: m for m in Machine.objects.filter(code__startswith="line-")}
    tags = []
    for spec in tag_specs():
        if Tag.objects.filter(tag_name=spec["tag_name"]).exists():
            continue
        tags.append(
            Tag(
                connector=connector,
                node_id=spec["node_id"],
                tag_name=spec["tag_name"],
                kind=spec["kind"],
                unit=spec["unit"],
                machine=machines.get(spec["machine"]),
                area=spec["area"],
            )
        )
    Tag.objects.bulk_create(tags)
    temperature = Tag.objects.get(tag_name=TEMPERATURE_TAG)
    AlertRule.objects.get_or_create(
        name=TEMPERATURE_RULE,
        defaults={
            "tag": temperature,
            "high_limit": 45.0,
            "deadband": 2.0,
            "on_delay_s": 5,
            "off_delay_s": 5,
            "severity": AlarmSeverity.HIGH,
            "message": "Cell grading chamber above 45 °C",
            "escalate_after_s": 300,
        },
    )
    mapped = sum(1 for tag in tags if tag.machine is not None)
    log(
        f"scada: connector {CONNECTOR_NAME!r} at {connector.endpoint}, "
        f"{len(tags)} tags ({mapped} mapped to machines), rule {TEMPERATURE_RULE!r}"
    )
