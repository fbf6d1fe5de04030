"""Whether a passport's identity record is complete and well formed: the
validator behind the "Aadhaar Ready %" (``compliance.score``) and the
``conformity`` of each passport in the passport API.

One list of rules, ``RULES``. Each has a stable ``id`` (clients and the
score's snapshots keep it, so an id is never reused for another meaning), a
message for a person, the passport kinds it applies to, the fields it reads,
the source it comes from and a check over a mapping of field values. Checks
read plain values (a ``Passport.objects.values(*FIELDS)`` row or
``values_of(passport)``), so the score validates a plant-year of passports in
one query, without model instances. A check never raises: a value of a type it
does not expect (a JSON field holding a number, a numeric NaN) fails the rule.

What describes a battery (identity, maker, site, date, chemistry, capacity,
mass, carbon footprint) is asked of every cell, module and pack; what the
operator placing a battery on the market declares (the BPAN, its registration
id, the carbon performance class) is asked of packs, since cells and modules
reach the market inside one.

Sources (docs/compliance.md has the table):

* Regulation (EU) 2023/1542, Annex XIII point 1 (the passport's public
  information), which takes in Annex VI Part A (the battery's general
  information: manufacturer, identification, date and place of manufacture,
  chemistry, critical raw materials above 0.1 % w/w, weight), Article 7(1)
  and (2) (carbon footprint and its performance class) and points (g) and (h)
  (rated capacity, voltage);
* the draft Battery Pack Aadhaar guidelines for the BPAN (``passports.bpan``,
  which this module reuses: format and check character are checked there,
  once);
* ``passports.models.PUBLIC_FIELDS``: the attribute groups each rule belongs
  to (``group``), so a rule names the part of the passport to fix.

Extending (the rest of the EU passport: materials, recycled content, …): add
a ``Rule`` to ``RULES`` with a new id and a row to docs/compliance.md's table;
the score, the API and the admin pick it up. Messages never carry a value:
every reader of a passport sees which rules it fails, restricted fields or not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from passports import attributes
from passports import bpan as bpan_rules
from passports.models import Chemistry, Kind, Passport

ALL_KINDS = frozenset(Kind.values)
PACKS = frozenset({Kind.PACK})
# As sets, once: ``TextChoices.values`` builds a new list on every call.
CHEMISTRIES = frozenset(Chemistry.values)
_CHECK_ERRORS = (TypeError, ValueError, ArithmeticError, AttributeError)

# Lithium is on the EU's list of critical raw materials (Regulation (EU)
# 2024/1252, Annex II), so a lithium battery always declares at least one.
LITHIUM_CHEMISTRIES = frozenset(
    {Chemistry.LFP, Chemistry.NMC, Chemistry.NCA, Chemistry.LMO, Chemistry.LTO}
)
# Energy (kWh) against rated capacity (Ah) * nominal voltage (V) / 1000.
ENERGY_TOLERANCE = Decimal("0.05")
CLOCK_SKEW = timedelta(minutes=5)
# A BPAN's month is the date of manufacture in the plant's (or the issuer's)
# time zone; a UTC time may fall in the month before or after.
_OFFSETS = (timedelta(hours=-12), timedelta(0), timedelta(hours=14))
# Carbon footprint performance classes (Art. 7(2)): A is the best. The
# delegated act that fixes the scale is not adopted; a letter A-G, with "+"
# steps above A allowed, is what we accept until it is.
_CARBON_CLASS = re.compile(r"[A-G]\+{0,3}")  # fullmatch
# Printable, no spaces at either end (registration strips them).
_IDENT = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?")


@dataclass(frozen=True)
class Rule:
    """One requirement of a passport's identity record."""

    id: str  # stable: "bpan.check"; clients and snapshots keep it
    message: str  # what is wrong, for a person, without the value
    group: str  # the passport's attribute group (PUBLIC_FIELDS) to fix
    kinds: frozenset[str]
    fields: tuple[str, ...]
    source: str
    check: Callable[[Mapping[str, Any]], bool]

    def passes(self, values: Mapping[str, Any]) -> bool:
        try:
            return bool(self.check(values))
        except _CHECK_ERRORS:
            return False

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.id, "message": self.message}


# --- value checks: the attribute registry's (passports.attributes), so a
# value the completeness calls valid is valid here too --------------------------

_text = attributes.is_text
_number = attributes.number
_positive = attributes.is_positive
_names = attributes.is_names


def _valid(key: str) -> Callable[[Mapping[str, Any]], bool]:
    """The check of attribute ``key`` (``passports.attributes.BY_KEY``)."""
    return attributes.BY_KEY[key].valid


# --- the rules' checks ----------------------------------------------------------


def _bpan_present(v: Mapping[str, Any]) -> bool:
    return isinstance(v["bpan"], str) and v["bpan"] != ""


def _bpan_parsed(v: Mapping[str, Any]) -> bpan_rules.BPAN | None:
    """The stored BPAN's parts when it is valid and stored as lookups find it
    (compact: upper case, no separators), else None."""
    if not _bpan_present(v):
        return None
    try:
        parsed = bpan_rules.parse(v["bpan"])
    except bpan_rules.BPANError:
        return None
    return parsed if parsed.value == v["bpan"] else None


def _bpan_check(v: Mapping[str, Any]) -> bool:
    # A missing BPAN is bpan.present's failure, not this one's.
    return not _bpan_present(v) or _bpan_parsed(v) is not None


def _rounded(value: Any, cap: int | None = None) -> set[int]:
    """The whole numbers a quantity may be written as (any rounding)."""
    number = _number(value)
    if number is None:
        return set()
    whole = {math.floor(number), math.ceil(number)}
    return {min(n, cap) for n in whole} if cap is not None else whole


def _months(when: Any) -> set[tuple[int, int]]:
    if not isinstance(when, datetime) or timezone.is_naive(when):
        return set()
    return {((when + shift).year, (when + shift).month) for shift in _OFFSETS}


def _bpan_matches(v: Mapping[str, Any]) -> bool:
    parsed = _bpan_parsed(v)
    if parsed is None:  # missing or invalid: the two rules above say so
        return True
    return (
        parsed.chemistry == v["chemistry"]
        and parsed.nominal_voltage_v in _rounded(v["nominal_voltage_v"])
        and parsed.energy_kwh in _rounded(v["energy_kwh"], cap=99)
        and (parsed.year, parsed.month) in _months(v["manufactured_at"])
    )


def _energy_consistent(v: Mapping[str, Any]) -> bool:
    energy = _number(v["energy_kwh"])
    capacity = _number(v["rated_capacity_ah"])
    voltage = _number(v["nominal_voltage_v"])
    if None in (energy, capacity, voltage) or min(energy, capacity, voltage) <= 0:
        return True  # a missing quantity is its own rule's failure
    expected = capacity * voltage / 1000
    return abs(energy - expected) <= expected * ENERGY_TOLERANCE


_ANNEX_VI = "Reg. (EU) 2023/1542 Annex XIII 1(a) → Annex VI Part A"

RULES: tuple[Rule, ...] = (
    Rule(
        id="identity.kind",
        message="The kind is not cell, module or pack.",
        group="identity",
        kinds=ALL_KINDS,
        fields=("kind",),
        source="passports.models.Kind",
        check=lambda v: v["kind"] in ALL_KINDS,
    ),
    Rule(
        id="identity.serial",
        message="The serial number is missing or not printable text.",
        group="identity",
        kinds=ALL_KINDS,
        fields=("serial",),
        source=f"{_ANNEX_VI} (3): information identifying the battery",
        check=_valid("batteryIdentifier"),
    ),
    Rule(
        id="identity.model",
        message="The model (product code) is missing.",
        group="identity",
        kinds=ALL_KINDS,
        fields=("model",),
        source=f"{_ANNEX_VI} (3): information identifying the battery (model)",
        check=_valid("batteryModel"),
    ),
    Rule(
        id="bpan.present",
        message="The pack has no BPAN (Battery Pack Aadhaar Number).",
        group="identity",
        kinds=PACKS,
        fields=("bpan",),
        source="MoRTH draft Battery Pack Aadhaar guidelines (2 Jan 2026)",
        check=_bpan_present,
    ),
    Rule(
        id="bpan.check",
        message=(
            "The BPAN is not valid: wrong length, a section of the wrong shape, "
            "a check character that does not match, or not stored compact."
        ),
        group="identity",
        kinds=PACKS,
        fields=("bpan",),
        source="MoRTH draft BPAN guidelines; passports.bpan (ISO 7064 MOD 37,36)",
        check=_bpan_check,
    ),
    Rule(
        id="bpan.matches",
        message=(
            "The BPAN's chemistry, voltage, energy or month of manufacture "
            "differ from the passport's."
        ),
        group="identity",
        kinds=PACKS,
        fields=(
            "bpan",
            "chemistry",
            "nominal_voltage_v",
            "energy_kwh",
            "manufactured_at",
        ),
        source="MoRTH draft BPAN guidelines: descriptor (BDS) and identifier (BI)",
        check=_bpan_matches,
    ),
    Rule(
        id="manufacturer.name",
        message="The manufacturer's name is missing.",
        group="manufacturer",
        kinds=ALL_KINDS,
        fields=("manufacturer",),
        source=f"{_ANNEX_VI} (1): information identifying the manufacturer",
        check=_valid("manufacturerInformation"),
    ),
    Rule(
        id="manufacturer.id",
        message="The pack's manufacturer registration id is missing.",
        group="manufacturer",
        # The operator placing the battery on the market registers; cells and
        # modules reach the market inside a pack (as compliance.epr counts).
        kinds=PACKS,
        fields=("manufacturer_id",),
        source=(
            f"{_ANNEX_VI} (1) and Art. 38(7): the manufacturer placing the "
            "battery on the market, identified uniquely; BWMR 2022 producer "
            "registration"
        ),
        check=_valid("manufacturerIdentification"),
    ),
    Rule(
        id="manufacturer.site",
        message="The place of manufacture is missing.",
        group="manufacturer",
        kinds=ALL_KINDS,
        fields=("site",),
        source=f"{_ANNEX_VI} (5): place of manufacture",
        check=_valid("manufacturingPlace"),
    ),
    Rule(
        id="manufacturer.date",
        message="The date of manufacture is missing, before 2000 or in the future.",
        group="manufacturer",
        kinds=ALL_KINDS,
        fields=("manufactured_at",),
        source=f"{_ANNEX_VI} (4): date of manufacture (month and year)",
        check=_valid("manufacturingDate"),
    ),
    Rule(
        id="chemistry.declared",
        message="The chemistry is not one of LFP, NMC, NCA, LMO, LTO, NaION.",
        group="chemistry",
        kinds=ALL_KINDS,
        fields=("chemistry",),
        source=f"{_ANNEX_VI} (6) and Annex XIII 1(b): chemistry",
        check=_valid("batteryChemistry"),
    ),
    Rule(
        id="chemistry.critical_raw_materials",
        message=(
            "The critical raw materials are not declared (a lithium battery "
            "contains at least lithium) or the list is malformed."
        ),
        group="chemistry",
        kinds=ALL_KINDS,
        fields=("critical_raw_materials", "chemistry"),
        source=f"{_ANNEX_VI} (9) and Annex XIII 1(b): critical raw materials",
        check=_valid("criticalRawMaterials"),
    ),
    Rule(
        id="capacity.rated_capacity",
        message="The rated capacity (Ah) is missing or not a positive number.",
        group="performance",
        kinds=ALL_KINDS,
        fields=("rated_capacity_ah",),
        source="Reg. (EU) 2023/1542 Annex XIII 1(g): rated capacity (Ah)",
        check=_valid("ratedCapacity"),
    ),
    Rule(
        id="capacity.nominal_voltage",
        message="The nominal voltage (V) is missing or not a positive number.",
        group="performance",
        kinds=ALL_KINDS,
        fields=("nominal_voltage_v",),
        source="Reg. (EU) 2023/1542 Annex XIII 1(h): nominal voltage",
        check=_valid("nominalVoltage"),
    ),
    Rule(
        id="capacity.energy",
        message="The energy (kWh) is missing or not a positive number.",
        group="performance",
        kinds=ALL_KINDS,
        fields=("energy_kwh",),
        source=(
            "Reg. (EU) 2023/1542 Art. 7(1)(d): carbon footprint per kWh of "
            "energy; BPAN descriptor (energy)"
        ),
        check=_valid("ratedEnergy"),
    ),
    Rule(
        id="capacity.energy_consistent",
        message=(
            "The energy (kWh) differs from rated capacity times nominal voltage "
            "by more than 5 %."
        ),
        group="performance",
        kinds=ALL_KINDS,
        fields=("energy_kwh", "rated_capacity_ah", "nominal_voltage_v"),
        source="Annex XIII 1(g) and (h): the declared quantities agree",
        check=_energy_consistent,
    ),
    Rule(
        id="capacity.mass",
        message="The mass (kg) is missing or not a positive number.",
        group="performance",
        kinds=ALL_KINDS,
        fields=("mass_kg",),
        source=f"{_ANNEX_VI}: weight; BWMR 2022 EPR returns are in kg",
        check=_valid("batteryMass"),
    ),
    Rule(
        id="carbon.footprint",
        message="The carbon footprint (kg CO2e per kWh) is missing or not positive.",
        group="carbonFootprint",
        kinds=ALL_KINDS,
        fields=("carbon_footprint_kg_co2e_per_kwh",),
        source="Reg. (EU) 2023/1542 Art. 7(1)(d) and Annex XIII 1(c)",
        check=_valid("batteryCarbonFootprint"),
    ),
    Rule(
        id="carbon.class",
        message="The pack's carbon footprint performance class (A-G) is missing.",
        group="carbonFootprint",
        kinds=PACKS,
        fields=("carbon_footprint_class",),
        source=(
            "Reg. (EU) 2023/1542 Art. 7(2) and Annex XIII 1(c): declared per "
            "battery model, so per pack"
        ),
        check=_valid("carbonFootprintPerformanceClass"),
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
# Every field a rule reads: what the score asks the database for.
FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(name for rule in RULES for name in ("kind", *rule.fields))
)
# Rules per kind, in RULES order. A kind the model does not know (only a
# direct write makes one) gets the rules every kind has, and fails identity.kind.
_BY_KIND: dict[str, tuple[Rule, ...]] = {
    kind: tuple(rule for rule in RULES if kind in rule.kinds) for kind in ALL_KINDS
}
_COMMON = tuple(rule for rule in RULES if rule.kinds == ALL_KINDS)

if len(RULES_BY_ID) != len(RULES):
    raise RuntimeError("passports.conformity: two rules share an id.")


def rules_for(kind: str) -> tuple[Rule, ...]:
    return _BY_KIND.get(kind, _COMMON)


def failing(values: Mapping[str, Any]) -> list[Rule]:
    """The rules ``values`` (one passport's ``FIELDS``) fails, in RULES order.

    ``Rule.passes`` written out inline: the score calls this for every
    passport of the plant, about twenty rules each."""
    failed = []
    for rule in rules_for(values["kind"]):
        try:
            ok = rule.check(values)
        except _CHECK_ERRORS:
            ok = False
        if not ok:
            failed.append(rule)
    return failed


def values_stream(
    *, chunk_size: int = 5000, extra_fields: tuple[str, ...] = ()
) -> Iterator[dict[str, Any]]:
    """Every passport's ``FIELDS`` (and ``extra_fields``), streamed in chunks (a
    server-side cursor on PostgreSQL): one query, no model instances, memory
    bounded by a chunk."""
    names = tuple(dict.fromkeys((*FIELDS, *extra_fields)))
    rows = Passport.objects.order_by().values(*names)
    return rows.iterator(chunk_size=chunk_size)


def values_of(passport: Passport) -> dict[str, Any]:
    """A passport's ``FIELDS`` as the score reads them from the database."""
    return {name: getattr(passport, name) for name in FIELDS}


@dataclass(frozen=True)
class Conformity:
    """One passport against the rules: ready when it fails none."""

    failing: tuple[Rule, ...]

    @property
    def ready(self) -> bool:
        return not self.failing

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "failingRules": [rule.as_dict() for rule in self.failing],
        }


def passport_conformity(passport: Passport) -> Conformity:
    return Conformity(failing=tuple(failing(values_of(passport))))
