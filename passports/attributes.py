"""The battery passport's attribute set, declared once: every attribute of the
Battery Pass consortium's data model v1.2 (DIN DKE SPEC 99100) that applies to a
battery made here, with its unit, its access tier, where its value comes from,
the battery categories for which it is mandatory, and the check that says its
value is present and valid.

Everything that asks "which attributes", "who may see it" or "is it there" reads
``ATTRIBUTES``: the attributes endpoint and the admin (tiers), the completeness of
a passport and of the plant (``completeness``, used by ``compliance.score``), the
conformity rules (``passports.conformity`` calls the value checks below, never
copies of them), docs/passports.md's table.

Tiers (Regulation (EU) 2023/1542, Art. 77(2) and Annex XIII):

* ``public``: Annex XIII point 1, anyone holding the identifier;
* ``legitimate_interest``: points 2 and 4 (detailed composition, dismantling,
  safety, and the state-of-health data of Art. 14): persons with a legitimate
  interest, here the roles ``bpmos.access.ACTIONS["passport-restricted"]`` names;
* ``authority``: point 3 (results of test reports proving compliance): notified
  bodies, market surveillance and the Commission, here the auditor role (and
  the admin, who may do everything: ``ACTIONS["passport-authority"]``).

Sources: ``typed_in`` (registration), ``ledger`` (derived from the passport's
events), ``telemetry`` (the pack's BMS samples or usage summary), ``lims`` (lab
results recorded as QA events). Categories: EV, industrial, LMT and stationary
(stationary battery energy storage), the four the passport is required for
(Art. 77(1)); a passport whose category is not declared is measured against
what every category needs, and misses ``batteryCategory``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import models
from django.utils import timezone

from bpmos.fields import EARLIEST


class Tier(StrEnum):
    PUBLIC = "public"
    LEGITIMATE_INTEREST = "legitimate_interest"
    AUTHORITY = "authority"


class Source(StrEnum):
    TYPED_IN = "typed_in"
    LEDGER = "ledger"
    TELEMETRY = "telemetry"
    LIMS = "lims"


class BatteryCategory(models.TextChoices):
    """The EU battery categories that need a passport (Art. 77(1))."""

    EV = "ev", "EV"
    INDUSTRIAL = "industrial", "Industrial"
    LMT = "lmt", "LMT"
    STATIONARY = "stationary", "Stationary"


ALL = frozenset(BatteryCategory.values)
EV_INDUSTRIAL = frozenset({BatteryCategory.EV, BatteryCategory.INDUSTRIAL})
# Art. 14: state-of-health data for stationary storage, LMT and EV batteries.
ART14 = frozenset({BatteryCategory.EV, BatteryCategory.LMT, BatteryCategory.STATIONARY})
NONE: frozenset[str] = frozenset()

# The carbon footprint's life-cycle stages (Art. 7(1)(c)).
CARBON_STAGES = (
    "raw_material_extraction",
    "main_production",
    "distribution",
    "end_of_life_recycling",
)
# Labels a battery may carry (Art. 13, Annex VI Part B).
LABELS = frozenset(
    {
        "separate_collection",
        "cadmium",
        "lead",
        "ce",
        "qr_code",
        "capacity",
        "carbon_footprint_class",
    }
)
LITHIUM_CHEMISTRIES = frozenset({"LFP", "NMC", "NCA", "LMO", "LTO"})
CLOCK_SKEW = timedelta(minutes=5)
# Ledger states in which a battery is used: the dynamic data exists from then on.
IN_USE_STATES = frozenset({"in_service"})
WASTE_STATES = frozenset({"end_of_life", "recycled"})

_IDENT = re.compile(r"[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?")
# An http(s) address as RFC 3986 writes it (the schema's ``format: uri``
# agrees): ASCII, percent-escapes well formed, a port of digits, "#" once. A
# link with a control character or a space was taken and the schema called it
# invalid (the campaign of 2026-12-05).
_PCT = r"%[0-9A-Fa-f]{2}"
_SUB = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCHAR = rf"(?:[{_SUB}:@]|{_PCT})"
_URL_TEXT = (
    r"[Hh][Tt][Tt][Pp][Ss]?://(?![/$.?#])"
    rf"(?:(?:[{_SUB}:]|{_PCT})*@)?(?:[{_SUB}]|{_PCT})+(?::[0-9]*)?"
    rf"(?:/(?:{_PCHAR}|/)*)?(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
)
_URL = re.compile(_URL_TEXT)


# Python's ``\\s`` (``str.isspace()``) as an ECMA 262 class: ECMA's has more.
SPACE_CLASS = (
    "["
    + "".join(
        f"\\u{ord(c):04x}"
        for c in (
            "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
            "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
            "\u2028\u2029\u202f\u205f\u3000"
        )
    )
    + "]"
)
# The two checks above as the schema states them (passports.api.serializers),
# with lookaheads: Schemathesis draws nothing from a negated class holding a
# non-ASCII character (bpmos.textfields).
TEXT_PATTERN = rf"^(?!{SPACE_CLASS})(?![\s\S]*{SPACE_CLASS}$)[^\u0000-\u001f\u007f]+$"
URL_PATTERN = "^" + _URL_TEXT + "$"


# --- value checks (pure; never raise for a value of an unexpected type) ---------


def is_text(value: Any) -> bool:
    """Printable text, no spaces at either end, not blank."""
    return isinstance(value, str) and _IDENT.fullmatch(value) is not None


def number(value: Any) -> Decimal | None:
    """A finite number as a Decimal, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int | float) and math.isfinite(value):
        return Decimal(str(value))
    return None


def is_positive(value: Any) -> bool:
    found = number(value)
    return found is not None and found > 0


def is_percent(value: Any) -> bool:
    found = number(value)
    return found is not None and 0 <= found <= 100


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_names(value: Any) -> bool:
    """A list of names, each non-blank text, no name twice (may be empty)."""
    return (
        isinstance(value, list)
        and all(is_text(name) for name in value)
        and len({name.casefold() for name in value}) == len(value)
    )


def is_nonempty_names(value: Any) -> bool:
    return is_names(value) and bool(value)


def is_url(value: Any) -> bool:
    return isinstance(value, str) and _URL.fullmatch(value) is not None


def is_percent_map(value: Any) -> bool:
    """``{material: percent}``, at least one, each 0-100."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(is_text(k) and is_percent(v) for k, v in value.items())
    )


def is_stage_map(value: Any) -> bool:
    """kg CO2e per kWh for every life-cycle stage, none negative."""
    if not isinstance(value, dict) or set(value) != set(CARBON_STAGES):
        return False
    return all((n := number(v)) is not None and n >= 0 for v in value.values())


def is_labels(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v in LABELS for v in value)
        and len(set(value)) == len(value)
    )


def is_manufacture_date(value: Any) -> bool:
    """An aware time, not before 2000-01-01 nor more than 5 minutes ahead."""
    return is_time(value) and EARLIEST <= value <= timezone.now() + CLOCK_SKEW


def is_chemistry(value: Any) -> bool:
    from passports.models import Chemistry

    return isinstance(value, str) and value in Chemistry.values


def critical_raw_materials_declared(values: Mapping[str, Any]) -> bool:
    """A lithium battery declares at least lithium (Regulation (EU) 2024/1252,
    Annex II); a sodium-ion battery may declare none."""
    return (
        bool(values.get("critical_raw_materials"))
        or values.get("chemistry") not in LITHIUM_CHEMISTRIES
    )


def is_category(value: Any) -> bool:
    return value in ALL


def is_time(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None


# --- the registry ---------------------------------------------------------------


def _field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda v: v.get(name)


@dataclass(frozen=True)
class Attribute:
    """One attribute of the passport.

    ``key`` is the Battery Pass data model's name, ``group`` its submodel;
    ``fields`` the Passport fields it reads (the first is "our field"),
    ``value`` computes it from a mapping of those fields (a
    ``Passport.objects.values()`` row or ``values_of``), ``check`` whether that
    value is present and valid. ``mandatory``: the categories that must have
    it; ``packs_only``: declared for the battery placed on the market, so not
    asked of cells and modules; ``dynamic``: changes in use, carries a
    ``lastUpdate`` (read from ``updated_field``) and is asked once the battery
    is in use."""

    key: str
    group: str
    label: str
    fields: tuple[str, ...]
    unit: str | None
    tier: Tier
    source: Source
    mandatory: frozenset[str]
    check: Callable[[Any], bool]
    value: Callable[[Mapping[str, Any]], Any] | None = None
    packs_only: bool = False
    dynamic: bool = False
    updated_field: str | None = None
    annex: str = ""
    derived: bool = False
    row_check: Callable[[Mapping[str, Any]], bool] | None = None

    @property
    def our_field(self) -> str:
        return self.fields[0]

    def read(self, values: Mapping[str, Any]) -> Any:
        return (self.value or _field(self.our_field))(values)

    def valid(self, values: Mapping[str, Any]) -> bool:
        """Present and valid. The one validator: completeness, the conformity
        rules and so the compliance score all call this."""
        try:
            if self.row_check is not None:
                return bool(self.check(self.read(values))) and bool(
                    self.row_check(values)
                )
            return bool(self.check(self.read(values)))
        except (TypeError, ValueError, ArithmeticError, AttributeError, KeyError):
            return False

    @property
    def owns(self) -> tuple[str, ...]:
        """The Passport fields this attribute is (none for a derived one)."""
        return () if self.derived else self.fields

    def last_update(self, values: Mapping[str, Any]) -> Any:
        return values.get(self.updated_field) if self.updated_field else None


def _scaled(share_field: str, base_field: str) -> Callable[[Mapping[str, Any]], Any]:
    """``base * share / 100`` (remaining capacity and energy from SoH)."""

    def compute(v: Mapping[str, Any]) -> Decimal | None:
        share, base = number(v.get(share_field)), number(v.get(base_field))
        if share is None or base is None:
            return None
        return (base * share / 100).quantize(Decimal("0.001"))

    return compute


# The EU battery status's values (Annex XIII 4(c); Battery Pass "batteryStatus").
BATTERY_STATUSES = ("Original", "Repurposed", "Reused", "Remanufactured", "Waste")
_STATUS_LABEL = {label.lower(): label for label in BATTERY_STATUSES}


def eu_status(*, state: str | None, battery_status: str | None) -> str | None:
    """The EU battery status: Waste once the ledger says its life ended (end of
    life, recycled), else what its last second-life change made of it
    (``Passport.battery_status``: Repurposed, Reused, Remanufactured), else
    Original. None for a passport with no ledger yet."""
    if not state:
        return None
    if state in WASTE_STATES:
        return "Waste"
    return _STATUS_LABEL.get(battery_status or "original", "Original")


def _status(v: Mapping[str, Any]) -> str | None:
    return eu_status(state=v.get("state"), battery_status=v.get("battery_status"))


def _temperatures(v: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = ("temperature_min_c", "temperature_max_c")
    if all(v.get(k) is None for k in keys):
        return None
    return {
        "minimumC": v.get("temperature_min_c"),
        "maximumC": v.get("temperature_max_c"),
    }


def _extreme_time(v: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = ("time_above_max_temperature_s", "time_below_min_temperature_s")
    if all(v.get(k) is None for k in keys):
        return None
    return {
        "aboveMaximumS": v.get("time_above_max_temperature_s"),
        "belowMinimumS": v.get("time_below_min_temperature_s"),
    }


def _both(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and all(
        check(v) for v in value.values()
    )


P, L, A = Tier.PUBLIC, Tier.LEGITIMATE_INTEREST, Tier.AUTHORITY
TYPED, LEDGER, TELEMETRY, LIMS = (
    Source.TYPED_IN,
    Source.LEDGER,
    Source.TELEMETRY,
    Source.LIMS,
)
GPI, CF, CIRC, MAT, PERF, LAB, DD = (
    "generalProductInformation",
    "carbonFootprint",
    "circularity",
    "materialComposition",
    "performanceAndDurability",
    "labels",
    "supplyChainDueDiligence",
)


def _a(key, group, label, fields, unit, tier, source, mandatory, check, **kw):
    if isinstance(fields, str):
        fields = (fields,)
    return Attribute(
        key=key,
        group=group,
        label=label,
        fields=fields,
        unit=unit,
        tier=tier,
        source=source,
        mandatory=mandatory,
        check=check,
        **kw,
    )


ATTRIBUTES: tuple[Attribute, ...] = (
    # --- general product information: identifiers, manufacturer, site ---
    _a("batteryPassportIdentifier", GPI, "Passport identifier (UUID)", "uuid",
       None, P, TYPED, ALL, lambda v: v is not None, annex="XIII 1(a), Art. 77(3)"),
    _a("batteryIdentifier", GPI, "Serial number", "serial", None, P, TYPED, ALL,
       is_text, annex="VI A(3)"),
    _a("batteryModel", GPI, "Model (product code)", "model", None, P, TYPED, ALL,
       is_text, annex="VI A(3)"),
    _a("productionLot", GPI, "Production lot", "lot", None, P, TYPED, NONE,
       is_text, annex="VI A(3)"),
    _a("gtin", GPI, "GTIN (GS1 trade item number)", "gtin", None, P, TYPED, NONE,
       is_text, annex="Art. 13(6), Art. 77(3): the QR code's GS1 Digital Link"),
    _a("bpan", GPI, "Battery Pack Aadhaar Number", "bpan", None, P, TYPED, NONE,
       is_text, packs_only=True, annex="BPAN draft guidelines"),
    _a("barcode", GPI, "Barcode", "barcode", None, L, TYPED, NONE, is_text),
    _a("rfid", GPI, "RFID tag (EPC)", "rfid", None, L, TYPED, NONE, is_text),
    _a("batteryCategory", GPI, "Battery category", "battery_category", None, P,
       TYPED, ALL, is_category, packs_only=True, annex="XIII 1(a), Art. 77(1)"),
    _a("batteryStatus", GPI, "Battery status", ("state", "battery_status"), None,
       P, LEDGER, ALL, lambda v: v in BATTERY_STATUSES, value=_status, derived=True,
       dynamic=True, updated_field="last_event_at", annex="XIII 4(c)"),
    _a("manufacturerInformation", GPI, "Manufacturer", "manufacturer", None, P,
       TYPED, ALL, is_text, annex="VI A(1)"),
    _a("manufacturerIdentification", GPI, "Manufacturer registration id",
       "manufacturer_id", None, P, TYPED, ALL, is_text, packs_only=True,
       annex="VI A(1), Art. 38(7)"),
    _a("operatorInformation", GPI, "Economic operator placing it on the market",
       "economic_operator", None, P, TYPED, NONE, is_text, packs_only=True,
       annex="XIII 1(a)"),
    _a("manufacturingPlace", GPI, "Place of manufacture", "site", None, P, TYPED,
       ALL, is_text, annex="VI A(5)"),
    _a("manufacturingDate", GPI, "Date of manufacture", "manufactured_at", None,
       P, TYPED, ALL, is_manufacture_date, annex="VI A(4)"),
    _a("batteryMass", GPI, "Weight", "mass_kg", "kg", P, TYPED, ALL, is_positive,
       annex="VI A(7)"),
    _a("warrantyPeriod", GPI, "Commercial warranty period", "warranty_months",
       "months", P, TYPED, EV_INDUSTRIAL | {BatteryCategory.STATIONARY},
       is_count, packs_only=True, annex="XIII 1(m)"),
    # --- chemistry, materials, critical raw materials, hazardous substances ---
    _a("batteryChemistry", MAT, "Chemistry", "chemistry", None, P, TYPED, ALL,
       is_chemistry, annex="VI A(6), XIII 1(b)"),
    _a("criticalRawMaterials", MAT, "Critical raw materials above 0.1 % w/w",
       "critical_raw_materials", None, P, TYPED, ALL, is_names,
       row_check=critical_raw_materials_declared,
       annex="VI A(9), XIII 1(b)"),
    _a("hazardousSubstances", MAT, "Hazardous substances (other than mercury, "
       "cadmium, lead)", "hazardous_substances", None, P, TYPED, ALL, is_names,
       annex="XIII 1(b)"),
    _a("cathodeMaterial", MAT, "Cathode material", "cathode_material", None, L,
       TYPED, ALL, is_text, annex="XIII 2(a)"),
    _a("anodeMaterial", MAT, "Anode material", "anode_material", None, L, TYPED,
       ALL, is_text, annex="XIII 2(a)"),
    _a("electrolyteMaterial", MAT, "Electrolyte", "electrolyte", None, L, TYPED,
       ALL, is_text, annex="XIII 2(a)"),
    _a("batteryMaterials", MAT, "Material composition (mass share)",
       "material_composition", "%", L, TYPED, ALL, is_percent_map,
       annex="XIII 2(a)"),
    # --- circularity: recycled and renewable content, dismantling, safety ---
    _a("recycledContent", CIRC, "Recycled content (pre- and post-consumer)",
       "recycled_content", "%", P, TYPED, EV_INDUSTRIAL, is_percent_map,
       packs_only=True, annex="XIII 1(e), Art. 8"),
    _a("renewableContent", CIRC, "Renewable content", "renewable_content_percent",
       "%", P, TYPED, NONE, is_percent, packs_only=True, annex="XIII 1(f)"),
    _a("dismantlingAndRemovalInformation", CIRC, "Dismantling information "
       "(diagrams, sequences, tools)", "dismantling_information", None, L, TYPED,
       ALL, is_url, packs_only=True, annex="XIII 2(c)"),
    _a("sparePartSources", CIRC, "Part numbers and spare-part sources",
       "spare_part_sources", None, L, TYPED, ALL, is_nonempty_names,
       packs_only=True, annex="XIII 2(b)"),
    _a("safetyMeasures", CIRC, "Safety measures and instructions",
       "safety_measures", None, L, TYPED, ALL, is_url, packs_only=True,
       annex="XIII 2(d)"),
    _a("extinguishingAgent", CIRC, "Usable extinguishing agent",
       "extinguishing_agent", None, P, TYPED, ALL, is_text, packs_only=True,
       annex="XIII 1(a) → VI A(11)"),
    _a("endOfLifeInformation", CIRC, "Waste prevention, separate collection, "
       "end-of-life information", "end_of_life_information", None, P, TYPED,
       ALL, is_url, packs_only=True, annex="XIII 1(a) → Art. 60(1)"),
    # --- capacity and performance ---
    _a("ratedCapacity", PERF, "Rated capacity", "rated_capacity_ah", "Ah", P,
       TYPED, ALL, is_positive, annex="XIII 1(g)"),
    _a("nominalVoltage", PERF, "Nominal voltage", "nominal_voltage_v", "V", P,
       TYPED, ALL, is_positive, annex="XIII 1(h)"),
    _a("minimumVoltage", PERF, "Minimum voltage", "minimum_voltage_v", "V", P,
       TYPED, ALL, is_positive, packs_only=True, annex="XIII 1(h)"),
    _a("maximumVoltage", PERF, "Maximum voltage", "maximum_voltage_v", "V", P,
       TYPED, ALL, is_positive, packs_only=True, annex="XIII 1(h)"),
    _a("ratedEnergy", PERF, "Rated (usable) energy", "energy_kwh", "kWh", P,
       TYPED, ALL, is_positive, annex="Art. 7(1)(d)"),
    _a("originalPowerCapability", PERF, "Original power capability",
       "original_power_capability_w", "W", P, TYPED, ALL, is_positive,
       packs_only=True, annex="XIII 1(i)"),
    _a("ratedMaximumPower", PERF, "Maximum permitted power",
       "rated_maximum_power_w", "W", P, TYPED, EV_INDUSTRIAL, is_positive,
       packs_only=True, annex="XIII 1(i)"),
    _a("initialRoundTripEfficiency", PERF, "Initial round-trip energy efficiency",
       "initial_round_trip_efficiency_percent", "%", P, TYPED, EV_INDUSTRIAL
       | {BatteryCategory.STATIONARY}, is_percent, packs_only=True,
       annex="XIII 1(n)"),
    _a("roundTripEfficiencyAt50PerCentCycleLife", PERF, "Round-trip energy "
       "efficiency at 50 % of cycle life",
       "round_trip_efficiency_half_life_percent", "%", P, LIMS, NONE, is_percent,
       packs_only=True, annex="XIII 1(n)"),
    _a("initialInternalResistance", PERF, "Initial internal resistance (pack)",
       "initial_internal_resistance_mohm", "mΩ", P, LIMS, EV_INDUSTRIAL
       | {BatteryCategory.STATIONARY}, is_positive, packs_only=True,
       annex="XIII 1(o)"),
    _a("initialSelfDischarge", PERF, "Initial self-discharge rate",
       "initial_self_discharge_percent", "% per month", P, LIMS, NONE,
       is_percent, packs_only=True, annex="Annex IV B(6)"),
    # --- durability ---
    _a("expectedNumberOfCycles", PERF, "Expected lifetime in cycles",
       "expected_cycles", "cycles", P, TYPED, ALL, is_positive, packs_only=True,
       annex="XIII 1(j)"),
    _a("expectedLifetime", PERF, "Expected lifetime in calendar years",
       "expected_lifetime_years", "years", P, TYPED, ALL, is_positive,
       packs_only=True, annex="XIII 1(j)"),
    _a("cRateLifeCycleTest", PERF, "C-rate of the cycle-life test",
       "c_rate_life_cycle_test", "C", P, TYPED, EV_INDUSTRIAL
       | {BatteryCategory.STATIONARY}, is_positive, packs_only=True,
       annex="XIII 1(p)"),
    _a("lifetimeReferenceTest", PERF, "Reference test for the expected lifetime",
       "lifetime_reference_test", None, P, TYPED, NONE, is_url, packs_only=True,
       annex="XIII 1(j)"),
    _a("capacityThresholdForExhaustion", PERF, "Capacity threshold for "
       "exhaustion (EV)", "capacity_threshold_for_exhaustion_percent", "%", P,
       TYPED, frozenset({BatteryCategory.EV}), is_percent, packs_only=True,
       annex="XIII 1(k)"),
    _a("temperatureRangeIdleState", PERF, "Temperature range the battery "
       "withstands when not in use", ("idle_temperature_min_c",
       "idle_temperature_max_c"), "°C", P, TYPED, ALL,
       lambda v: v is not None and _both(lambda t: number(t) is not None)(v)
       and number(v["minimumC"]) < number(v["maximumC"]),
       value=lambda v: None
       if v.get("idle_temperature_min_c") is None
       and v.get("idle_temperature_max_c") is None
       else {"minimumC": v.get("idle_temperature_min_c"),
             "maximumC": v.get("idle_temperature_max_c")},
       packs_only=True, annex="XIII 1(l)"),
    # --- carbon footprint, per life-cycle stage, with class ---
    _a("batteryCarbonFootprint", CF, "Carbon footprint per functional unit",
       "carbon_footprint_kg_co2e_per_kwh", "kg CO2e/kWh", P, TYPED,
       EV_INDUSTRIAL | {BatteryCategory.LMT}, is_positive, annex="XIII 1(c), "
       "Art. 7(1)(d)"),
    _a("carbonFootprintPerLifecycleStage", CF, "Carbon footprint per life-cycle "
       "stage", "carbon_footprint_per_stage", "kg CO2e/kWh", P, TYPED,
       EV_INDUSTRIAL | {BatteryCategory.LMT}, is_stage_map, packs_only=True,
       annex="Art. 7(1)(c)"),
    _a("carbonFootprintPerformanceClass", CF, "Carbon footprint performance "
       "class", "carbon_footprint_class", None, P, TYPED,
       EV_INDUSTRIAL | {BatteryCategory.LMT},
       lambda v: isinstance(v, str) and re.fullmatch(r"[A-G]\+{0,3}", v) is not None,
       packs_only=True, annex="Art. 7(2)"),
    _a("carbonFootprintStudy", CF, "Web link to the carbon footprint study",
       "carbon_footprint_study", None, P, TYPED,
       EV_INDUSTRIAL | {BatteryCategory.LMT}, is_url, packs_only=True,
       annex="Art. 7(1)(f)"),
    # --- labels and conformity ---
    _a("labels", LAB, "Symbols and labels on the battery", "labels", None, P,
       TYPED, ALL, is_labels, packs_only=True, annex="XIII 1(r), Art. 13"),
    _a("declarationOfConformity", LAB, "EU declaration of conformity",
       "declaration_of_conformity", None, P, TYPED, ALL, is_url,
       packs_only=True, annex="XIII 1(s), Art. 18"),
    _a("resultOfTestReport", LAB, "Results of test reports proving compliance",
       "test_report", None, A, LIMS, ALL, is_url, packs_only=True,
       annex="XIII 3"),
    # --- supply-chain due diligence ---
    _a("supplyChainDueDiligenceReport", DD, "Due diligence report",
       "due_diligence_report", None, P, TYPED,
       EV_INDUSTRIAL | {BatteryCategory.LMT}, is_url, packs_only=True,
       annex="XIII 1(d), Art. 52"),
    _a("thirdPartyAssurances", DD, "Third-party verification of the due "
       "diligence policy", "third_party_assurances", None, P, TYPED, NONE,
       is_url, packs_only=True, annex="Art. 51"),
    # --- dynamic: state of health and usage (Art. 14, Annex XIII 4) ---
    _a("stateOfHealth", PERF, "State of health", "soh_percent", "%", L,
       TELEMETRY, ART14, is_percent, packs_only=True, dynamic=True,
       updated_field="telemetry_at", annex="XIII 4(a), Art. 14"),
    _a("stateOfCharge", PERF, "State of charge", "soc_percent", "%", L,
       TELEMETRY, ART14, is_percent, packs_only=True, dynamic=True,
       updated_field="telemetry_at", annex="Art. 14, Annex VII"),
    _a("remainingCapacity", PERF, "Remaining capacity", ("soh_percent",
       "rated_capacity_ah"), "Ah", L, TELEMETRY, ART14, is_positive,
       value=_scaled("soh_percent", "rated_capacity_ah"), derived=True,
       packs_only=True,
       dynamic=True, updated_field="telemetry_at", annex="Annex VII A(1)"),
    _a("remainingEnergy", PERF, "Remaining energy", ("soh_percent",
       "energy_kwh"), "kWh", L, TELEMETRY, frozenset({BatteryCategory.EV}),
       is_positive, value=_scaled("soh_percent", "energy_kwh"), derived=True,
       packs_only=True,
       dynamic=True, updated_field="telemetry_at", annex="Annex VII"),
    _a("numberOfFullCycles", PERF, "Number of full charge-discharge cycles",
       "full_cycles", "cycles", L, TELEMETRY, ART14, is_count, packs_only=True,
       dynamic=True, updated_field="usage_updated_at", annex="Annex VII B(4)"),
    _a("energyThroughput", PERF, "Energy throughput", "energy_throughput_kwh",
       "kWh", L, TELEMETRY, ART14 | {BatteryCategory.INDUSTRIAL},
       lambda v: (n := number(v)) is not None and n >= 0, packs_only=True,
       dynamic=True, updated_field="usage_updated_at", annex="Annex VII B(2)"),
    _a("capacityThroughput", PERF, "Capacity throughput",
       "capacity_throughput_ah", "Ah", L, TELEMETRY, NONE,
       lambda v: (n := number(v)) is not None and n >= 0, packs_only=True,
       dynamic=True, updated_field="usage_updated_at", annex="Annex VII B(3)"),
    _a("temperatureExtremes", PERF, "Lowest and highest temperature recorded",
       ("temperature_min_c", "temperature_max_c"), "°C", L, TELEMETRY, ART14,
       lambda v: v is not None and _both(lambda t: number(t) is not None)(v),
       value=_temperatures, packs_only=True, dynamic=True,
       updated_field="usage_updated_at", annex="Annex VII B(7)"),
    _a("timeInExtremeTemperatures", PERF, "Time spent above and below the "
       "temperature limits", ("time_above_max_temperature_s",
       "time_below_min_temperature_s"), "s", L, TELEMETRY, ART14,
       lambda v: v is not None and _both(is_count)(v), value=_extreme_time,
       packs_only=True, dynamic=True, updated_field="usage_updated_at",
       annex="Annex VII B(7)"),
    _a("deepDischargeEvents", PERF, "Deep-discharge events",
       "deep_discharge_events", "events", L, TELEMETRY, ART14, is_count,
       packs_only=True, dynamic=True, updated_field="usage_updated_at",
       annex="Annex VII B(6)"),
    _a("overchargeEvents", PERF, "Overcharge events", "overcharge_events",
       "events", L, TELEMETRY, ART14, is_count, packs_only=True, dynamic=True,
       updated_field="usage_updated_at", annex="Annex VII B(6)"),
)  # fmt: skip

BY_KEY: dict[str, Attribute] = {attribute.key: attribute for attribute in ATTRIBUTES}
# Every Passport field an attribute reads, plus what completeness needs.
FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            "kind",
            "state",
            "battery_category",
            *(name for a in ATTRIBUTES for name in a.fields),
            *(a.updated_field for a in ATTRIBUTES if a.updated_field),
        )
    )
)
# Fields read that are not Passport columns (computed by the selector).
COMPUTED_FIELDS = frozenset({"last_event_at"})
STORED_FIELDS: tuple[str, ...] = tuple(n for n in FIELDS if n not in COMPUTED_FIELDS)
TIER_ORDER = (Tier.PUBLIC, Tier.LEGITIMATE_INTEREST, Tier.AUTHORITY)
# Each Passport field's tier: the most restrictive tier of the attributes that
# own it. A derived attribute (remaining capacity from the SoH and the rated
# capacity, the status from the ledger's state) owns no field: it shows
# another's under its own tier.
FIELD_TIER: dict[str, Tier] = {}
for _attribute in ATTRIBUTES:
    for _name in _attribute.owns:
        FIELD_TIER[_name] = max(
            FIELD_TIER.get(_name, Tier.PUBLIC), _attribute.tier, key=TIER_ORDER.index
        )
# Fields no attribute owns that show tiered data: the latest temperature and
# the lastUpdate of the state of health and of the usage summary.
FIELD_TIER.update(
    {
        "temperature_c": Tier.LEGITIMATE_INTEREST,
        "telemetry_at": Tier.LEGITIMATE_INTEREST,
        "usage_updated_at": Tier.LEGITIMATE_INTEREST,
    }
)
# Typed in at registration beyond the original groups (the services check
# each with its attribute's own check): the fields of the EU attribute set.
REGISTERED_FIELDS: tuple[str, ...] = (
    "battery_category",
    "economic_operator",
    "minimum_voltage_v",
    "maximum_voltage_v",
    "original_power_capability_w",
    "rated_maximum_power_w",
    "initial_round_trip_efficiency_percent",
    "round_trip_efficiency_half_life_percent",
    "initial_internal_resistance_mohm",
    "initial_self_discharge_percent",
    "expected_lifetime_years",
    "c_rate_life_cycle_test",
    "lifetime_reference_test",
    "capacity_threshold_for_exhaustion_percent",
    "idle_temperature_min_c",
    "idle_temperature_max_c",
    "carbon_footprint_per_stage",
    "carbon_footprint_study",
    "renewable_content_percent",
    "dismantling_information",
    "spare_part_sources",
    "safety_measures",
    "extinguishing_agent",
    "end_of_life_information",
    "labels",
    "declaration_of_conformity",
    "test_report",
    "due_diligence_report",
    "third_party_assurances",
)
# The attribute that is a field alone (its check validates a typed-in value).
BY_FIELD: dict[str, Attribute] = {
    a.fields[0]: a for a in ATTRIBUTES if len(a.fields) == 1 and not a.derived
}
if len(BY_KEY) != len(ATTRIBUTES):
    raise RuntimeError("passports.attributes: two attributes share a key.")


def reader_tiers(user: Any) -> tuple[Tier, ...]:
    """The tiers ``user`` may read: public for anyone; legitimate interest for
    the roles ``ACTIONS["passport-restricted"]`` names; authority for those
    ``ACTIONS["passport-authority"]`` names (auditor, admin). The one rule every
    route that shows passport data applies."""
    from bpmos import access

    role = getattr(user, "role", None) if getattr(user, "is_active", False) else None
    tiers = [Tier.PUBLIC]
    if access.allows(access.ACTIONS.get("passport-restricted"), role):
        tiers.append(Tier.LEGITIMATE_INTEREST)
    if access.allows(access.ACTIONS.get("passport-authority"), role):
        tiers.append(Tier.AUTHORITY)
    return tuple(tiers)


def tiers_below(tier: Tier) -> tuple[Tier, ...]:
    """``tier`` and every less restrictive one."""
    return TIER_ORDER[: TIER_ORDER.index(tier) + 1]


def fields_of(tiers: Iterable[Tier]) -> frozenset[str]:
    allowed = set(tiers)
    return frozenset(name for name, tier in FIELD_TIER.items() if tier in allowed)


def hidden_fields(tiers: Iterable[Tier]) -> frozenset[str]:
    """Passport fields a reader holding ``tiers`` must not be shown."""
    allowed = set(tiers)
    return frozenset(name for name, tier in FIELD_TIER.items() if tier not in allowed)


# --- completeness ---------------------------------------------------------------


def applies(attribute: Attribute, values: Mapping[str, Any]) -> bool:
    """Whether ``attribute`` is mandatory for this passport: for its category
    (with none declared, what every category needs), its kind (market-level
    attributes are asked of packs), and for telemetry once it is in use."""
    category = values.get("battery_category") or None
    if category in ALL:
        if category not in attribute.mandatory:
            return False
    elif attribute.mandatory != ALL:
        return False
    if attribute.packs_only and values.get("kind") != "pack":
        return False
    return not (attribute.dynamic and attribute.source == Source.TELEMETRY) or (
        values.get("state") in IN_USE_STATES
    )


@dataclass(frozen=True)
class Completeness:
    """One passport against its category's mandatory attributes."""

    category: str | None
    mandatory: tuple[Attribute, ...]
    missing: tuple[Attribute, ...]

    @property
    def present(self) -> int:
        return len(self.mandatory) - len(self.missing)

    @property
    def percent(self) -> float | None:
        if not self.mandatory:
            return None
        value = Decimal(self.present * 100) / Decimal(len(self.mandatory))
        return float(value.quantize(Decimal("0.1")))

    @property
    def complete(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": (
                BatteryCategory(self.category).label if self.category in ALL else None
            ),
            "percent": self.percent,
            "complete": self.complete,
            "mandatory": len(self.mandatory),
            "present": self.present,
            "missing": [
                {"key": a.key, "group": a.group, "label": a.label} for a in self.missing
            ],
        }


def completeness(values: Mapping[str, Any]) -> Completeness:
    """Which mandatory attributes of its category ``values`` (a passport's
    ``FIELDS``) has present and valid, and which it misses (registry order)."""
    mandatory = tuple(a for a in ATTRIBUTES if applies(a, values))
    missing = tuple(a for a in mandatory if not a.valid(values))
    category = values.get("battery_category") or None
    return Completeness(category=category, mandatory=mandatory, missing=missing)


def values_of(passport: Any, *, last_event_at: Any = None) -> dict[str, Any]:
    """A passport's ``FIELDS`` as a mapping (what a ``values()`` row holds)."""
    values = {
        name: getattr(passport, name) for name in FIELDS if name not in COMPUTED_FIELDS
    }
    values["last_event_at"] = last_event_at
    return values
