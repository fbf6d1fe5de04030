"""Passports for the API, telemetry and admin tests, made through the services
(the ledger, its audit records and its hashes are the real ones)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from elog.models import AuditRecord
from passports import bpan as bpan_rules
from passports import ledger, services
from passports.models import EventKind, Kind, Passport, PassportEvent

# The smallest body ``POST /api/passports/`` registers (a pack).
REGISTER_BODY = {
    "kind": "Pack",
    "serial": "PK-RULE-1",
    "model": "PK-48V-100",
    "manufacturer": "BPM Energy",
    "site": "Pune Plant 1",
    "chemistry": "LFP",
    "ratedCapacityAh": "100",
    "nominalVoltageV": "48.0",
    "energyKwh": "5.12",
}


def a_bpan(serial: str = "00001", *, plant: str = "P") -> str:
    return bpan_rules.issue(
        manufacturer="BPM",
        chemistry="LFP",
        nominal_voltage_v=48,
        energy_kwh=5.12,
        made=date(2026, 3, 2),
        plant=plant,
        serial=serial,
    )


def register(actor, serial: str, kind: str = Kind.PACK, **extra) -> Passport:
    data = {
        "kind": kind,
        "serial": serial,
        "model": {"pack": "PK-48V-100", "module": "MD-16S", "cell": "LFP-21700"}[kind],
        "lot": "LOT-7",
        "manufacturer": "BPM Energy",
        "manufacturer_id": "IN-EPR-0042",
        "site": "Pune Plant 1",
        "chemistry": "LFP",
        "rated_capacity_ah": Decimal("100.00"),
        "nominal_voltage_v": Decimal("48.00"),
        "energy_kwh": Decimal("5.120"),
        "mass_kg": Decimal("41.500"),
        "expected_cycles": 4000,
        "warranty_months": 60,
        "carbon_footprint_kg_co2e_per_kwh": Decimal("61.40"),
        "carbon_footprint_class": "B",
        "cathode_material": "LiFePO4",
        "anode_material": "Graphite",
        "electrolyte": "LiPF6 in EC/DMC",
        "critical_raw_materials": ["lithium", "graphite"],
        "hazardous_substances": ["LiPF6"],
        "material_composition": {"lithium": 3.1, "iron": 22.0},
        "recycled_content": {"lithium": 6.0},
        **extra,
    }
    return services.passport_register(data=data, actor=actor)


def append(actor, passport: Passport, kind: str, **data) -> PassportEvent:
    return ledger.append(passport=passport.pk, kind=kind, data=data, actor=actor)


def warehoused_pack(actor, serial: str, **extra) -> Passport:
    """A pack that passed QA, was provisioned and sits in the warehouse."""
    pack = register(actor, serial, **extra)
    append(actor, pack, EventKind.QA_PASSED)
    append(actor, pack, EventKind.PROVISIONED, node=1)
    append(actor, pack, EventKind.WAREHOUSED, location="B-R1")
    pack.refresh_from_db()
    return pack


def counts(passport: Passport) -> tuple[int, int, int]:
    """(ledger events, passport version, audit records): what a refusal must
    leave as it was."""
    passport.refresh_from_db()
    return (
        PassportEvent.objects.filter(passport=passport).count(),
        passport.version,
        AuditRecord.objects.count(),
    )
