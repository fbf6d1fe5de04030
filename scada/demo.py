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
from scada import configuration, simulator
from scada.alarm_rules import alert_rule_create
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
    """The simulator's connector, its tags and the temperature rule, when absent
    (made through the configuration services: checked and audited)."""
    if Connector.objects.filter(name=CONNECTOR_NAME).exists():
        log(f"scada: connector {CONNECTOR_NAME!r} already present")
        return
    connector = configuration.connector_create(
        actor=None,
        name=CONNECTOR_NAME,
        kind=ConnectorKind.OPCUA,
        endpoint=settings.BPMOS_OPCUA_SIM_URL,
        mode=ConnectorMode.SUBSCRIBE,
        poll_interval_s=1,
    )
    machines = {m.code: m for m in Machine.objects.filter(code__startswith="line-")}
    made, mapped = 0, 0
    for spec in tag_specs():
        machine = machines.get(spec["machine"])
        if machine is None and spec["kind"] != TagKind.ANALOG:
            continue  # a machine tag needs its machine (the lines demo makes them)
        if Tag.objects.filter(tag_name=spec["tag_name"]).exists():
            continue
        configuration.tag_create(
            actor=None,
            connector=connector,
            node_id=spec["node_id"],
            tag_name=spec["tag_name"],
            kind=spec["kind"],
            unit=spec["unit"],
            machine=machine,
            area=spec["area"],
        )
        made += 1
        mapped += machine is not None
    temperature = Tag.objects.get(tag_name=TEMPERATURE_TAG)
    if not AlertRule.objects.filter(name=TEMPERATURE_RULE).exists():
        alert_rule_create(
            data={
                "name": TEMPERATURE_RULE,
                "tag": temperature.pk,
                "high_limit": 45.0,
                "deadband": 2.0,
                "on_delay_s": 5,
                "off_delay_s": 5,
                "severity": AlarmSeverity.HIGH,
                "message": "Cell grading chamber above 45 °C",
                "escalate_after_s": 300,
            },
            actor=None,
        )
    log(
        f"scada: connector {CONNECTOR_NAME!r} at {connector.endpoint}, "
        f"{made} tags ({mapped} mapped to machines), rule {TEMPERATURE_RULE!r}"
    )
