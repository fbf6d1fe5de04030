"""Second life: a battery repurposed, prepared for re-use or remanufactured
gets a new passport linked to the old one both ways (Regulation (EU)
2023/1542, Art. 77(6): "a new battery passport linked to the battery passport
of the original battery"; the draft BPAN guidelines: a new BPAN when
repurposing or recycling changes the battery's attributes).

``passport_second_life`` is the one place the rule lives. In one transaction:

1. the old passport's ledger gets ``repurposed``, ``reused`` or
   ``remanufactured`` naming its successor; the lifecycle allows it from In
   Service or End of Life only, not on hold (409 otherwise), and the old
   passport becomes Superseded: no further event;
2. the new passport is registered with the old one's typed-in attributes,
   overridden by what the request gives, held by the economic operator who
   places it on the market (its ``manufacturer``); its ledger starts with
   ``registered_from`` naming its predecessor; ``predecessor`` links it back
   and ``battery_status`` says Repurposed, Reused or Remanufactured (on both
   passports: the battery the old passport describes is now that);
3. a pack's BPAN: repurposed and remanufactured packs get a new BPAN (given, or
   issued from ``manufacturer_code`` and ``plant_code``); a pack prepared for
   re-use keeps its BPAN, which passes to the new passport (audited as
   ``passport.bpan_transferred``), so the number on the pack leads to the
   passport that is current.

Both ledger events are audited and published by ``ledger.append``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from bpmos.errors import InvalidInput
from bpmos.filters import enum_value
from elog import audit
from passports import attributes, ledger, rollups, services
from passports.models import (
    BatteryStatus,
    EventKind,
    Kind,
    Passport,
    PassportEvent,
    State,
)

# The EU status a change gives, and the old chain's event for it.
CHANGES: dict[str, str] = {
    BatteryStatus.REPURPOSED: EventKind.REPURPOSED,
    BatteryStatus.REUSED: EventKind.REUSED,
    BatteryStatus.REMANUFACTURED: EventKind.REMANUFACTURED,
}
# Changes after which a pack carries a new BPAN (its attributes change).
NEW_BPAN = frozenset({BatteryStatus.REPURPOSED, BatteryStatus.REMANUFACTURED})
# The old passport's typed-in columns the new one starts from (identifiers,
# the ledger's projection, telemetry and genealogy are its own).
INHERITED: tuple[str, ...] = (
    "kind",
    "chemistry",
    "model",
    "lot",
    "manufacturer_id",
    "cathode_material",
    "anode_material",
    "electrolyte",
    "critical_raw_materials",
    "material_composition",
    "recycled_content",
    "hazardous_substances",
    "rated_capacity_ah",
    "nominal_voltage_v",
    "energy_kwh",
    "mass_kg",
    "expected_cycles",
    "warranty_months",
    "carbon_footprint_kg_co2e_per_kwh",
    "carbon_footprint_class",
    *attributes.REGISTERED_FIELDS,
)
# What the request may not give: it is the change's own (or never changes).
_NOT_GIVEN = frozenset({"kind", "manufacturer", "manufactured_at"})


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid input: {field}: {message}",
        code="validation_error",
        details={field: [message]},
    )


def _status(value: Any) -> str:
    found = enum_value(BatteryStatus, value) if isinstance(value, str) else None
    if found not in CHANGES:
        raise _invalid("status", "One of Repurposed, Reused, Remanufactured.")
    return found


def _inherited(passport: Passport) -> dict[str, Any]:
    values = {name: getattr(passport, name) for name in INHERITED}
    return {name: value for name, value in values.items() if value not in (None, "")}


@transaction.atomic
def passport_second_life(
    *, passport_id: int, data: dict[str, Any], actor: Any
) -> tuple[Passport, PassportEvent, PassportEvent]:
    """Give the battery of passport ``passport_id`` a second life (see the
    module docstring). ``data`` (model field names): ``status``, ``serial``,
    ``operator`` (the economic operator), ``site``?, ``note``?,
    ``expected_version``? (of the old passport), ``occurred_at``?, and any
    registration field to override. Returns the new passport, the old
    chain's event and the new chain's first event; 400/409 write nothing."""
    status = _status(data.get("status"))
    operator = services._text(data, "operator")
    note = services._text(data, "note", required=False, limit=300)
    expected_version = data.get("expected_version")
    if expected_version is not None and (
        not isinstance(expected_version, int)
        or isinstance(expected_version, bool)
        or expected_version < 1
    ):
        raise _invalid("expected_version", "The version you read: 1 or more.")
    for name in _NOT_GIVEN:
        if name in data:
            raise _invalid(name, "Set by the change itself; not given.")
    when = services._when(data.get("occurred_at"))

    old = ledger.lock_passport(passport_id)
    overrides = {
        key: value
        for key, value in data.items()
        if key not in {"status", "operator", "note", "expected_version", "occurred_at"}
    }
    body = {
        **_inherited(old),
        "site": old.site,
        **overrides,
        "manufacturer": operator,
        "manufactured_at": (when or timezone.now()).isoformat(),
    }
    keeps_bpan = old.kind == Kind.PACK and status not in NEW_BPAN
    if old.kind == Kind.PACK:
        given = any(body.get(k) for k in ("bpan", "manufacturer_code", "plant_code"))
        if keeps_bpan and given:
            raise _invalid(
                "bpan", "A pack prepared for re-use keeps its BPAN; give none."
            )
        if not keeps_bpan and not (
            body.get("bpan")
            or (body.get("manufacturer_code") and body.get("plant_code"))
        ):
            raise _invalid(
                "bpan",
                "A repurposed or remanufactured pack gets a new BPAN: give bpan, "
                "or manufacturerCode and plantCode to issue one.",
            )
    fields = services.registration_fields(body)
    if keeps_bpan:
        fields["bpan"] = old.bpan
    fields["uuid"] = uuid.uuid4()
    fields["predecessor"] = old
    fields["battery_status"] = status

    # The old chain first: the lifecycle refuses (409) before anything new
    # exists, and the event names the successor the same transaction creates.
    successor = {"id": str(fields["uuid"]), "serial": fields["serial"]}
    successor["bpan"] = fields.get("bpan")
    old_event = ledger.append(
        passport=old,
        kind=CHANGES[status],
        data={"successor": successor, "operator": operator}
        | ({"note": note} if note else {}),
        actor=actor,
        expected_version=expected_version,
        occurred_at=when,
    )
    Passport.objects.filter(pk=old.pk).update(battery_status=status)
    # The same battery: the successor is counted in custody, the old is not
    # (after the event's audit record, as every custody count moves).
    if old.parent_id is None:
        rollups.custody_units_add({old.custodian_kind: -1})
    if keeps_bpan and old.bpan:
        # The number on the pack now names the new passport.
        Passport.objects.filter(pk=old.pk).update(bpan=None)
        audit.record(
            actor=actor,
            action="passport.bpan_transferred",
            target=old,
            before={"bpan": old.bpan},
            after={"bpan": None, "to": successor},
        )
    new = services.passport_create(
        fields=fields,
        actor=actor,
        genesis_kind=EventKind.REGISTERED_FROM,
        genesis_data={
            "predecessor": {
                "id": str(old.uuid),
                "serial": old.serial,
                "bpan": old.bpan,
            },
            "status": status,
            "manufacturer": operator,
            "site": fields["site"],
            "lot": fields["lot"],
            "model": fields["model"],
        }
        | ({"note": note} if note else {}),
    )
    genesis = new.events.get(version=1)
    return new, old_event, genesis


def lineage(passport: Passport) -> dict[str, Any]:
    """The passports linked to ``passport`` by second-life changes: the one it
    came from and the ones that came from it."""

    def ref(other: Passport) -> dict[str, Any]:
        return {
            "id": str(other.uuid),
            "serial": other.serial,
            "bpan": other.bpan,
            "batteryStatus": attributes.eu_status(
                state=other.state, battery_status=other.battery_status
            ),
        }

    # No query for a battery that never changed (nearly all of them).
    predecessor = passport.predecessor if passport.predecessor_id else None
    successors = (
        list(passport.successors.order_by("id"))
        if passport.state == State.SUPERSEDED
        else []
    )
    return {
        "predecessor": ref(predecessor) if predecessor else None,
        "successors": [ref(p) for p in successors],
    }
