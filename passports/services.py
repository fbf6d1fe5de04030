"""Every write of passports: register a battery, record a lifecycle event,
assemble cells into modules and modules into packs.

Input is checked before anything is locked or written (400 naming the field);
the lifecycle refuses illegal moves (409); ``passports.ledger.append`` writes the
event, the projection, the audit record and the live event. Provisioning lives
in ``passports.provisioning``, telemetry in ``passports.telemetry``, the dispatch
desk in ``passports.dispatch.services``; views, the admin and the demo call these.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bpmos.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from bpmos.fields import time_problem
from bpmos.filters import enum_value
from elog import audit
from elog import signatures as esign
from passports import attributes, gs1, ledger, rollups, signatures
from passports import bpan as bpan_rules
from passports.models import (
    PARENT_KIND,
    Chemistry,
    CustodianKind,
    EventKind,
    Kind,
    Passport,
    PassportEvent,
)

_MAX_TEXT = 300
# A text that becomes the custodian's name (the carrier a pack is dispatched
# with, the customer it is delivered to, the new custodian of a transfer) is
# held to that column: a carrier of 121-300 characters passed the 300 of the
# other event texts and was a 500 on PostgreSQL (docs/testing.md, "texts longer
# than their column"). A transfer's reference stays in the ledger's JSON.
CUSTODIAN_NAME_MAX = Passport._meta.get_field("custodian_name").max_length
CUSTODY_REFERENCE_MAX = 120
_EVENT_TEXT_MAX = {"carrier": CUSTODIAN_NAME_MAX, "customer": CUSTODIAN_NAME_MAX}

# A QA event's measured values (a LIMS result's capacity, resistance, …): a flat
# object of names to finite numbers or short texts.
MAX_QA_VALUES = 50
MAX_QA_VALUE_NAME = 64
MAX_QA_VALUE_TEXT = 200
_QA_KINDS = frozenset({EventKind.QA_PASSED, EventKind.QA_FAILED})


def qa_values_problem(values: Any) -> str | None:
    """Why ``values`` cannot be a QA event's measured values, or None."""
    if not isinstance(values, dict):
        return "values: an object of names to numbers or texts."
    if len(values) > MAX_QA_VALUES:
        return f"values: at most {MAX_QA_VALUES}."
    for name, value in values.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_QA_VALUE_NAME:
            return f"values: names are 1 to {MAX_QA_VALUE_NAME} characters."
        if isinstance(value, bool) or value is None:
            return f"values.{name}: a number or a text."
        if isinstance(value, int | float):
            if not math.isfinite(value) or abs(value) >= 1e15:
                return f"values.{name}: a finite number below 10^15."
        elif isinstance(value, str):
            if len(value) > MAX_QA_VALUE_TEXT:
                return f"values.{name}: at most {MAX_QA_VALUE_TEXT} characters."
        else:
            return f"values.{name}: a number or a text (values are flat)."
    return None


# --- attributes a lab measures (the LIMS's results) -------------------------------

# The EU attributes whose source is the lab (``attributes.Source.LIMS``): a
# LIMS result's ``values`` carry them under the attribute's Battery Pass key
# or its Passport field's name (any case). ``initial`` ones are the battery's first
# measurement: the first result that carries one sets it, a later one leaves
# it (the ledger keeps every measurement in its QA events); the others take
# the newest result applied.
LIMS_ATTRIBUTES: tuple[attributes.Attribute, ...] = tuple(
    a for a in attributes.ATTRIBUTES if a.source == attributes.Source.LIMS
)
LIMS_INITIAL_FIELDS = frozenset(
    {"initial_internal_resistance_mohm", "initial_self_discharge_percent"}
)
# By name casefolded: a lab's CSV header is read in lower case.
_LIMS_NAMES: dict[str, attributes.Attribute] = {
    name.casefold(): a for a in LIMS_ATTRIBUTES for name in (a.key, a.our_field)
}


def _lims_value(attribute: attributes.Attribute, raw: Any) -> Any:
    """``raw`` as the Passport field stores it; ValueError when the
    attribute's check refuses it or the field cannot hold it."""
    field = Passport._meta.get_field(attribute.our_field)
    if isinstance(field, models.DecimalField):
        value = attributes.number(raw)
        if value is None or not attributes.BY_FIELD[field.name].check(value):
            raise ValueError(attribute.label)
        value = value.quantize(Decimal(1).scaleb(-field.decimal_places))
        if value.adjusted() >= field.max_digits - field.decimal_places:
            raise ValueError(attribute.label)
        if not attributes.BY_FIELD[field.name].check(value):
            raise ValueError(attribute.label)  # rounded to zero
        return value
    if not attributes.BY_FIELD[field.name].check(raw) or len(raw) > field.max_length:
        raise ValueError(attribute.label)
    return raw


def lims_attributes_of(values: Any) -> dict[str, Any]:
    """The Passport fields a LIMS result's ``values`` set (``{field:
    value}``); 400 naming the value when one is not valid for its attribute."""
    found: dict[str, Any] = {}
    if not isinstance(values, dict):
        return found
    for name, raw in values.items():
        attribute = _LIMS_NAMES.get(name.casefold()) if isinstance(name, str) else None
        if attribute is None:
            continue
        try:
            found[attribute.our_field] = _lims_value(attribute, raw)
        except (ValueError, TypeError, InvalidOperation):
            message = (
                f"values.{name}: not a valid {attribute.label.lower()}"
                f"{f' ({attribute.unit})' if attribute.unit else ''}."
            )
            raise _invalid({f"values.{name}": [message]}) from None
    return found


def lims_shown_values(values: Any) -> Any:
    """A LIMS result's ``values`` without those naming an attribute above the
    public tier (the test report is the authorities'): what its QA event and
    its kept result may carry, as every signed-in reader sees those. The
    passport keeps the value under its tier; the audit record has it."""
    if not isinstance(values, dict):
        return values
    return {
        name: value
        for name, value in values.items()
        if not isinstance(name, str)
        or (a := _LIMS_NAMES.get(name.casefold())) is None
        or a.tier == attributes.Tier.PUBLIC
    }


def lims_attributes_problem(values: Any) -> str | None:
    """Why a LIMS result's ``values`` cannot set its attributes, or None."""
    try:
        lims_attributes_of(values)
    except InvalidInput as error:
        return next(iter(error.details.values()))[0]
    return None


def passport_lims_attributes_record(
    *, passport_id: int, values: Any, actor: Any
) -> dict[str, Any]:
    """Set the LIMS-sourced attributes a result's ``values`` carry on the
    passport (in the caller's transaction: the result's). Returns what
    changed (``{field: value}``); audited when something did."""
    found = lims_attributes_of(values)
    if not found:
        return {}
    passport = Passport.objects.select_for_update().get(pk=passport_id)
    changed = {
        name: value
        for name, value in found.items()
        if getattr(passport, name) != value
        and not (name in LIMS_INITIAL_FIELDS and getattr(passport, name) is not None)
    }
    if not changed:
        return {}
    before = {name: getattr(passport, name) for name in changed}
    Passport.objects.filter(pk=passport_id).update(**changed)
    audit.record(
        actor=actor,
        action="passport.lims_attributes_recorded",
        target=passport,
        before=before,
        after=changed,
    )
    return changed


def _invalid(errors: dict[str, list[str]]) -> InvalidInput:
    field, messages = next(iter(errors.items()))
    return InvalidInput(
        f"Invalid input: {field}: {messages[0]}",
        code="validation_error",
        details=errors,
    )


def _text(data: dict, field: str, *, required: bool = True, limit: int = 120) -> str:
    value = data.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _invalid({field: ["This field is required."]})
        return ""
    if not isinstance(value, str):
        raise _invalid({field: ["Must be text."]})
    value = value.strip()
    if len(value) > limit:
        raise _invalid({field: [f"At most {limit} characters."]})
    return value


def _decimal(data: dict, field: str, *, required: bool = True) -> Decimal | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _invalid({field: ["This field is required."]})
        return None
    if isinstance(value, bool):
        raise _invalid({field: ["Must be a number."]})
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise _invalid({field: ["Must be a number."]}) from exc
    if not number.is_finite() or number <= 0:
        raise _invalid({field: ["Must be a positive number."]})
    return number


def _string(data: dict, field: str) -> str | None:
    """``data[field]`` as given when it is text (or absent); a number or any
    other type is refused rather than turned into text with ``str()``."""
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise _invalid({field: ["Must be text."]})
    return value


def _fits(number: Decimal, model_field: models.DecimalField) -> bool:
    """Whether ``number`` is stored by the column without loss or overflow."""
    places = model_field.decimal_places
    whole = model_field.max_digits - places
    exponent = number.as_tuple().exponent
    return abs(number) < Decimal(10) ** whole and (
        not isinstance(exponent, int) or exponent >= -places
    )


def _attribute_values(data: dict) -> dict[str, Any]:
    """The EU attribute set's typed-in fields (``attributes.REGISTERED_FIELDS``)
    from a registration body, each checked by its attribute's own check and
    against its column; absent ones are left to their defaults."""
    fields: dict[str, Any] = {}
    for name in attributes.REGISTERED_FIELDS:
        value = data.get(name)
        if value is None or value in ("", [], {}):
            continue  # not declared
        model_field = Passport._meta.get_field(name)
        attribute = attributes.BY_FIELD.get(name)
        label = attribute.label if attribute else name
        if name == "battery_category":
            found = (
                enum_value(attributes.BatteryCategory, value)
                if isinstance(value, str)
                else None
            )
            if found is None:
                raise _invalid(
                    {name: ["One of " + ", ".join(attributes.BatteryCategory.labels)]}
                )
            fields[name] = found
            continue
        if isinstance(model_field, models.DecimalField):
            if isinstance(value, bool) or not isinstance(
                value, int | float | str | Decimal
            ):
                raise _invalid({name: ["Must be a number."]})
            try:
                number = Decimal(str(value))
            except (InvalidOperation, ValueError) as exc:
                raise _invalid({name: ["Must be a number."]}) from exc
            # A temperature bound belongs to a pair: any finite number.
            check = attribute.check if attribute else (lambda _n: True)
            if (
                not number.is_finite()
                or not check(number)
                or not _fits(number, model_field)
            ):
                raise _invalid(
                    {
                        name: [
                            f"Not a valid {label}: at most "
                            f"{model_field.decimal_places} decimal places"
                            # A column with no attribute of its own (the
                            # idle temperature bounds) has no unit: a 500 was
                            # "None has no attribute unit".
                            + (
                                f", {attribute.unit}."
                                if attribute and attribute.unit
                                else "."
                            )
                        ]
                    }
                )
            fields[name] = number
            continue
        if isinstance(model_field, models.PositiveSmallIntegerField):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not (0 < value <= 32767)
            ):
                raise _invalid({name: ["A whole number, 1 to 32767."]})
            fields[name] = value
            continue
        if isinstance(model_field, models.URLField):
            if not attributes.is_url(value) or len(value) > model_field.max_length:
                raise _invalid(
                    {
                        name: [
                            "An http(s) address, at most "
                            f"{model_field.max_length} characters."
                        ]
                    }
                )
            fields[name] = value
            continue
        if isinstance(model_field, models.CharField):
            fields[name] = _text(data, name, limit=model_field.max_length)
            continue
        # JSON: the stage map, the spare-part sources, the labels.
        if attribute is None or not attribute.check(value):
            hint = {
                "carbon_footprint_per_stage": "kg CO2e per kWh (0 or more) for "
                "each of " + ", ".join(attributes.CARBON_STAGES) + ".",
                "labels": "A list of distinct labels: "
                + ", ".join(sorted(attributes.LABELS))
                + ".",
            }.get(name, "A list of distinct names.")
            raise _invalid({name: [hint]})
        if name == "carbon_footprint_per_stage" and not all(
            isinstance(v, int | float) and not isinstance(v, bool)
            for v in value.values()
        ):
            raise _invalid({name: ["Numbers, kg CO2e per kWh."]})
        fields[name] = value
    low = fields.get("idle_temperature_min_c")
    high = fields.get("idle_temperature_max_c")
    if low is not None and high is not None and low >= high:
        raise _invalid({"idle_temperature_min_c": ["Below the maximum."]})
    low, high = fields.get("minimum_voltage_v"), fields.get("maximum_voltage_v")
    if low is not None and high is not None and low >= high:
        raise _invalid({"minimum_voltage_v": ["Below the maximum voltage."]})
    return fields


def _when(value: Any, field: str = "occurredAt") -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed but no such date ("0000-01-01")
        parsed = None
    if parsed is None:
        raise _invalid({field: ["An ISO 8601 date-time, e.g. 2026-11-23T10:00:00Z."]})
    if timezone.is_naive(parsed):
        raise _invalid({field: ["Give a time zone (Z or +05:30)."]})
    if parsed > timezone.now() + ledger.CLOCK_SKEW:
        raise _invalid({field: ["Cannot be in the future."]})
    problem = time_problem(parsed)
    if problem is not None:
        raise _invalid({field: [problem]})
    return parsed


# --- register -----------------------------------------------------------------


OPTIONAL_TEXT = (
    "lot",
    "manufacturer_id",
    "cathode_material",
    "anode_material",
    "electrolyte",
    "carbon_footprint_class",
)
_JSON_LISTS = ("critical_raw_materials", "hazardous_substances")
_JSON_MAPS = ("material_composition", "recycled_content")
# A registration's whole numbers, 0 up to what their columns hold.
WHOLE_NUMBER_LIMITS = {"expected_cycles": 2_147_483_647, "warranty_months": 32_767}


def _gtin(data: dict[str, Any], *, serial: str) -> str:
    """The GTIN-14 of ``data["gtin"]`` ("" when none); with a GTIN the serial
    must be a GS1 serial number (AI 21), so the pair makes a Digital Link."""
    given = data.get("gtin")
    if given in (None, ""):
        return ""
    if not isinstance(given, str):
        raise _invalid({"gtin": ["8, 12, 13 or 14 digits, as a string."]})
    try:
        gtin = gs1.gtin_normalize(given)
        gs1.serial_check(serial)
    except gs1.GS1Error as exc:
        field = "gtin" if "GTIN" in str(exc) else "serial"
        raise _invalid({field: [str(exc)]}) from exc
    return gtin


def passport_register(*, data: dict[str, Any], actor: Any) -> Passport:
    """Register a battery: its passport and the ``manufactured`` event.

    ``data`` uses the model's field names (the API maps camelCase onto them).
    A pack without a BPAN is issued one (``passports.bpan.issue``) when
    ``manufacturer_code`` and ``plant_code`` are given; a BPAN given is validated.
    """
    fields = registration_fields(data)
    return passport_create(
        fields=fields,
        actor=actor,
        genesis_kind=EventKind.MANUFACTURED,
        genesis_data={
            "manufacturer": fields["manufacturer"],
            "site": fields["site"],
            "lot": fields["lot"],
            "model": fields["model"],
        },
    )


def registration_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A registration body (model field names) checked and turned into the new
    passport's columns, BPAN issued when asked; 400 naming the field. Writes
    nothing."""
    errors: dict[str, list[str]] = {}
    kind = data.get("kind")
    if kind not in Kind.values:
        errors["kind"] = [f"One of {', '.join(Kind.values)}."]
    chemistry = data.get("chemistry")
    if chemistry not in Chemistry.values:
        errors["chemistry"] = [f"One of {', '.join(Chemistry.values)}."]
    if errors:
        raise _invalid(errors)
    fields: dict[str, Any] = {
        "kind": kind,
        "chemistry": chemistry,
        "serial": _text(data, "serial", limit=64),
        "model": _text(data, "model", limit=64),
        "manufacturer": _text(data, "manufacturer"),
        "site": _text(data, "site"),
        "rated_capacity_ah": _decimal(data, "rated_capacity_ah"),
        "nominal_voltage_v": _decimal(data, "nominal_voltage_v"),
        "energy_kwh": _decimal(data, "energy_kwh"),
        "mass_kg": _decimal(data, "mass_kg", required=False),
        "carbon_footprint_kg_co2e_per_kwh": _decimal(
            data, "carbon_footprint_kg_co2e_per_kwh", required=False
        ),
    }
    for name in OPTIONAL_TEXT:
        # The column's length: a lot of 65-120 characters, or a carbon class
        # of 5, was a 500 on PostgreSQL (the campaign of 2026-12-05).
        limit = Passport._meta.get_field(name).max_length
        fields[name] = _text(data, name, required=False, limit=limit)
    for name in ("barcode", "rfid"):
        fields[name] = _text(data, name, required=False, limit=64).upper() or None
    for name in _JSON_LISTS:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid({name: ["A list of names."]})
        fields[name] = value
    for name in _JSON_MAPS:
        value = data.get(name, {})
        if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100
            for v in value.values()
        ):
            raise _invalid({name: ["A map of material to percent (0-100)."]})
        fields[name] = value
    for name, most in WHOLE_NUMBER_LIMITS.items():
        value = data.get(name)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value <= most
        ):
            # Past the column was a 500 on PostgreSQL ("integer out of range").
            raise _invalid({name: [f"A whole number, 0 to {most:,}."]})
        if value is not None:
            fields[name] = value
    fields.update(_attribute_values(data))
    fields["gtin"] = _gtin(data, serial=fields["serial"])
    made = _when(data.get("manufactured_at"), "manufactured_at") or timezone.now()
    fields["manufactured_at"] = made

    given = _string(data, "bpan")
    manufacturer_code = _string(data, "manufacturer_code")
    plant_code = _string(data, "plant_code")
    bpan_serial = _string(data, "bpan_serial")
    if given:
        if kind != Kind.PACK:
            raise _invalid({"bpan": ["Only packs carry a BPAN."]})
        try:
            fields["bpan"] = bpan_rules.parse(given).value
        except bpan_rules.BPANError as exc:
            raise _invalid({"bpan": [str(exc)]}) from exc
    elif kind == Kind.PACK and manufacturer_code and plant_code:
        try:
            fields["bpan"] = bpan_rules.issue(
                manufacturer=manufacturer_code,
                chemistry=chemistry,
                nominal_voltage_v=float(fields["nominal_voltage_v"]),
                energy_kwh=float(fields["energy_kwh"]),
                made=made.date(),
                plant=plant_code,
                serial=(
                    bpan_serial or re.sub(r"[^0-9A-Za-z]", "", fields["serial"])[-5:]
                )
                .upper()
                .rjust(5, "0"),
            )
        except bpan_rules.BPANError as exc:
            raise _invalid({"bpan": [str(exc)]}) from exc

    return fields


def passport_create(
    *,
    fields: dict[str, Any],
    actor: Any,
    genesis_kind: str,
    genesis_data: dict[str, Any],
) -> Passport:
    """Store a passport of ``registration_fields`` and its first ledger event
    (``manufactured``, or ``registered_from`` for a second-life battery:
    ``passports.secondlife``), in one transaction; 409
    ``duplicate_identifier`` when an identifier is taken."""
    try:
        with transaction.atomic():
            passport = Passport.objects.create(
                **fields,
                state="",
                custodian_kind=CustodianKind.MANUFACTURER,
                custodian_name=fields["manufacturer"],
            )
            ledger.append(
                passport=passport,
                kind=genesis_kind,
                data=genesis_data,
                actor=actor,
                occurred_at=fields["manufactured_at"],
            )
            # A new unit in its custodian's count (after the audit record:
            # with the chain's lock, as every custody count moves).
            rollups.custody_units_add(rollups.custody_units_of([passport]))
    except IntegrityError as exc:
        taken = [
            name
            for name in ("serial", "barcode", "rfid", "bpan")
            if fields.get(name)
            and Passport.objects.filter(**{name: fields[name]}).exists()
        ]
        raise Conflict(
            "Another passport already has this "
            + (", ".join(taken) or "identifier")
            + ".",
            code="duplicate_identifier",
            details={name: ["Already registered."] for name in taken},
        ) from exc
    return passport


# --- lifecycle events -----------------------------------------------------------

# Events a caller records through ``passport_event_record``, with the data each needs.
# manufactured, provisioned, assembled, moved_to_past and reactivated have their
# own services (register, provisioning, assemble, the dispatch desk).
_RECORDABLE: dict[str, tuple[tuple[str, bool], ...]] = {
    EventKind.QA_PASSED: (("test", False), ("note", False)),
    EventKind.QA_FAILED: (("reason", True), ("test", False)),
    EventKind.WAREHOUSED: (("location", False),),
    EventKind.RESERVED: (("reference", True),),
    EventKind.RESERVATION_RELEASED: (("note", False),),
    EventKind.HELD: (("reason", True),),
    EventKind.RELEASED: (("note", False),),
    EventKind.DISPATCHED: (("carrier", True), ("reference", False)),
    EventKind.DELIVERED: (("customer", True), ("reference", False)),
    EventKind.SERVICED: (("note", True), ("provider", False)),
    EventKind.END_OF_LIFE: (("reason", True),),
    EventKind.RECYCLED: (("note", False),),
}
RECORDABLE_KINDS = (*tuple(_RECORDABLE), EventKind.CUSTODY_TRANSFERRED)


def _event_data(kind: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _invalid({"data": ["An object."]})
    if kind == EventKind.CUSTODY_TRANSFERRED:
        to = raw.get("to")
        if not isinstance(to, dict):
            raise _invalid({"data.to": ["{ kind, name } of the new custodian."]})
        if to.get("kind") not in CustodianKind.values:
            raise _invalid(
                {"data.to.kind": [f"One of {', '.join(CustodianKind.values)}."]}
            )
        try:
            name = _text(to, "name", limit=CUSTODIAN_NAME_MAX)
        except InvalidInput as exc:
            raise _invalid({"data.to.name": exc.details["name"]}) from exc
        try:
            reference = _text(
                raw, "reference", required=False, limit=CUSTODY_REFERENCE_MAX
            )
        except InvalidInput as exc:
            raise _invalid({"data.reference": exc.details["reference"]}) from exc
        return {"to": {"kind": to["kind"], "name": name}, "reference": reference}
    data: dict[str, Any] = {}
    for field, required in _RECORDABLE[kind]:
        try:
            limit = _EVENT_TEXT_MAX.get(field, _MAX_TEXT)
            value = _text(raw, field, required=required, limit=limit)
        except InvalidInput as exc:
            raise _invalid({f"data.{field}": exc.details[field]}) from exc
        if value:
            data[field] = value
    if kind in _QA_KINDS and raw.get("values") not in (None, {}):
        if problem := qa_values_problem(raw["values"]):
            field, _, message = problem.partition(": ")
            raise _invalid({f"data.{field}": [message[:1].upper() + message[1:]]})
        data["values"] = dict(raw["values"])
    return data


def passport_event_record(
    *,
    passport_id: int,
    kind: Any,
    data: Any = None,
    expected_version: Any = None,
    occurred_at: Any = None,
    actor: Any,
    password: Any = None,
) -> PassportEvent:
    """Record one lifecycle event (held, dispatched, delivered, …) on a passport.

    A signed step (``signatures.SIGNED_KINDS``: the QA release, ``released``)
    needs the actor's re-entered ``password``: it is checked first (a wrong
    one is audited, and nothing else is written), and the signature is bound
    to the new event's hash in the same transaction. Other kinds take none."""
    new = _new_event(
        passport_id=passport_id,
        kind=kind,
        data=data,
        expected_version=expected_version,
        occurred_at=occurred_at,
    )
    meaning = signatures.SIGNED_KINDS.get(new.kind)
    if meaning is None:
        if password is not None:
            raise _invalid({"password": ["Only a signed step takes a password."]})
        checked = None
    else:
        checked = esign.signature_check(
            signer=actor, password=password, meaning=meaning
        )
    with transaction.atomic():
        event = ledger.append(
            passport=passport_id,
            kind=new.kind,
            data=new.data,
            actor=actor,
            expected_version=new.expected_version,
            occurred_at=new.occurred_at,
        )
        if checked is not None:
            signatures.signed_record(event=event, checked=checked)
    return event


def _new_event(
    *,
    passport_id: int,
    kind: Any,
    data: Any,
    expected_version: Any,
    occurred_at: Any,
) -> ledger.NewEvent:
    """The checked input of one recorded event (400 naming the field)."""
    if kind not in RECORDABLE_KINDS:
        raise _invalid({"kind": [f"One of {', '.join(RECORDABLE_KINDS)}."]})
    if expected_version is not None and (
        not isinstance(expected_version, int)
        or isinstance(expected_version, bool)
        or expected_version < 1
    ):
        raise _invalid({"expectedVersion": ["The version you read: 1 or more."]})
    return ledger.NewEvent(
        passport=passport_id,
        kind=kind,
        data=_event_data(kind, data),
        expected_version=expected_version,
        occurred_at=_when(occurred_at),
    )


# A batch is one request and one transaction: a pallet, a rack, a shipment.
BATCH_MAX_EVENTS = 1000


def passport_events_record_batch(
    *, events: Any, actor: Any, may_record: Any = None
) -> list[PassportEvent]:
    """Record many lifecycle events in one transaction, all or nothing
    (``ledger.append_many``: the same rows, hashes and audit records as
    recording each in turn with ``passport_event_record``).

    ``events`` is a list of ``{passport, kind, data?, expectedVersion?,
    occurredAt?}``; ``passport`` is any identifier ``selectors.resolve``
    accepts. 400 names the field as ``events[i].<field>``; 404/409 name the
    event as ``details.index``. ``may_record(kind)`` (the view's role check)
    is called once per kind before anything is resolved or locked.
    """
    from passports import selectors

    if not isinstance(events, list) or not events:
        raise _invalid({"events": ["A non-empty list of events."]})
    if len(events) > BATCH_MAX_EVENTS:
        raise _invalid({"events": [f"At most {BATCH_MAX_EVENTS} events."]})
    for index, item in enumerate(events):
        if not isinstance(item, dict):
            raise _invalid({f"events[{index}]": ["An object."]})
        identifier = item.get("passport")
        if not isinstance(identifier, str) or not identifier.strip():
            raise _invalid(
                {f"events[{index}].passport": ["The passport's UUID or identifier."]}
            )
        if item.get("kind") not in RECORDABLE_KINDS:
            raise _invalid(
                {f"events[{index}].kind": [f"One of {', '.join(RECORDABLE_KINDS)}."]}
            )
        if item.get("kind") in signatures.SIGNED_KINDS:
            raise _invalid(
                {
                    f"events[{index}].kind": [
                        "A signed step: record it on its own, with your password."
                    ]
                }
            )
    if may_record is not None:
        for kind in dict.fromkeys(item["kind"] for item in events):
            may_record(kind)
    found = selectors.resolve_many([item["passport"] for item in events])
    checked = []
    for index, item in enumerate(events):
        try:
            passport = found[item["passport"]]
            if isinstance(passport, Exception):
                raise passport
            checked.append(
                _new_event(
                    passport_id=passport.pk,
                    kind=item["kind"],
                    data=item.get("data"),
                    expected_version=item.get("expectedVersion"),
                    occurred_at=item.get("occurredAt"),
                )
            )
        except InvalidInput as exc:
            raise _invalid(
                {f"events[{index}].{key}": value for key, value in exc.details.items()}
            ) from exc
        except (NotFound, Conflict) as exc:
            raise ledger.at_index(exc, index) from exc
    return ledger.append_many(events=checked, actor=actor)


# --- genealogy ------------------------------------------------------------------


def passport_assemble(
    *,
    parent_id: int,
    component_ids: list[int],
    actor: Any,
    occurred_at: Any = None,
) -> list[PassportEvent]:
    """Put cells into a module, or modules into a pack: each component's ledger
    gets ``assembled`` (with its parent), its ``parent`` is set. ``occurred_at``
    (ISO 8601, not in the future) records an assembly done earlier, as
    ``passport_event_record`` does."""
    when = _when(occurred_at)
    if not isinstance(component_ids, list) or not component_ids:
        raise _invalid({"components": ["A non-empty list of passports."]})
    if len(set(component_ids)) != len(component_ids):
        raise _invalid({"components": ["A passport is listed twice."]})
    if parent_id in component_ids:
        raise _invalid({"components": ["A passport cannot contain itself."]})
    with transaction.atomic():
        locked = ledger.lock_passports([parent_id, *component_ids])
        if parent_id not in locked:
            raise NotFound(f"Passport {parent_id} does not exist.")
        missing = [pk for pk in component_ids if pk not in locked]
        if missing:
            raise NotFound(
                f"Passport {missing[0]} does not exist.", details={"missing": missing}
            )
        parent = locked[parent_id]
        if parent.state in (
            "end_of_life",
            "recycled",
            "dispatched",
            "in_service",
            "superseded",
        ):
            raise IllegalTransition(
                f"{parent} is {parent.get_state_display()}; nothing can be "
                "assembled into it.",
                details={"state": parent.state},
            )
        written = []
        assembled: dict[str, int] = {}
        for pk in component_ids:
            child = locked[pk]
            goes_into = PARENT_KIND[child.kind]
            if goes_into != parent.kind:
                raise _invalid(
                    {
                        "components": [
                            f"{child} cannot go into a {parent.kind}; a "
                            f"{child.kind} goes into "
                            f"{'a ' + goes_into if goes_into else 'nothing'}."
                        ]
                    }
                )
            if child.parent_id is not None:
                raise Conflict(
                    f"{child} is already in passport {child.parent_id}.",
                    code="already_assembled",
                    details={"component": child.pk, "parent": child.parent_id},
                )
            event = ledger.append(
                passport=child,
                kind=EventKind.ASSEMBLED,
                data={"parent": str(parent.uuid), "parentSerial": parent.serial},
                actor=actor,
                occurred_at=when,
            )
            child.parent = parent
            child.save(update_fields=["parent"])
            written.append(event)
            # No longer a unit: out of its custodian's count.
            assembled[child.custodian_kind] = assembled.get(child.custodian_kind, 0) - 1
        rollups.custody_units_add(assembled)
        return written
