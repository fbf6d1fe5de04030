"""Demo plant passports (docs/design.md §8): packs in every lifecycle state, with
genealogy, custody through every custodian kind, dispatch jobs live and past,
and a few weeks of field telemetry.

Everything goes through the services (``passport_register``,
``passport_event_record``, ``passport_assemble``, ``passport_second_life``, the desk's
``product_move_to_past`` / ``product_reactivate``), so each ledger, the audit
log and the event outbox hold a real history, and ``ledger.verify`` passes.
One shortcut, marked where it happens: ``provisioned`` is appended with
``ledger.append`` and data ``{"node": ..., "simulated": true}`` (the BMS is not
written over CAN here). Field telemetry takes the gateway's own path: each
in-field pack's history (an hourly BMS sample for ``TREND_DAYS`` days, so the
trend endpoint has a full window) is one batch through
``passports.telemetry.telemetry_ingest`` (stored by COPY, the passport's
summary set from the newest sample, one audit record per batch).

The story, by lot (the lots the demo work orders of ``runbooks.demo`` use, plus
older lots already in the field):

* LOT-LFP48-0403, at S11 End-of-Line Test: two packs with full genealogy,
  2 modules (8S, 25.6 V) of 8 LFP cells each: one provisioned, one failed EOL.
  Cell-level genealogy starts with this lot; earlier packs carry none.
* LOT-LFP48-0406, at S5 Module Assembly: graded spare cells, one rejected.
* LOT-ESS51-0408, at S8 Pack Assembly: one pack just registered, one QA passed
  and held.
* LOT-ESS51-0402, at S15 Custody Handover: packs warehoused (live, held, moved
  to past by hand, moved to past and reactivated), reserved (one held), and one
  dispatched to the carrier from the dispatch desk.
* LOT-LFP48-0401, dispatch completed: two packs delivered within the hour.
* older lots: packs in service at customers and at a service centre (with
  30 days of hourly telemetry: SoH slowly declining, SoC cycling daily by use,
  temperature with a daily rhythm; warranties running, expiring within 90
  days, expired), at end of life with the customer and with the recycler, and
  one recycled.
* LOT-NMC72-0187, a second life: an EV pack retired at end of life (SoH 71 %,
  too low for the scooter, fine for storage), bought back by the manufacturer
  and **repurposed** as a stationary battery through
  ``passports.secondlife.passport_second_life``: its passport is Superseded
  and links to a new passport (``RP-NMC72-0187-001``, a new BPAN, category
  Stationary), which links back; both show the EU status Repurposed. The
  public pages ``/p/<uuid>`` of both show the links.

Times are relative to the moment of seeding. Desk actions (moving to past,
reactivating) have no back-dating and happen at that moment, on recent packs.

Idempotent: the whole set is one batch, skipped when any demo serial exists.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from bpmos.accounts.models import User
from bpmos.roles import Role
from passports import ledger, secondlife, services
from passports.dispatch import services as dispatch
from passports.models import EventKind, Passport, TelemetryReading
from passports.telemetry import TREND_DAYS, telemetry_ingest

ORDER = 50  # after the users (0), the work orders (20) and the stock (40)

MANUFACTURER = "Voltstack Energy Pvt Ltd"
MANUFACTURER_ID = "EPR-BWM-MH-2024-0173"  # EPR registration (Battery Waste Rules)
SITE = "Chakan Battery Plant, Pune, IN"
MANUFACTURER_CODE = "VSE"  # BPAN positions 3-5
PLANT_CODE = "1"  # BPAN position 15
CELL_MAKER = "Kaveri Cell Technologies Ltd"
CELL_SITE = "Hosur Cell Fab, Tamil Nadu, IN"

CUSTOMERS = {
    "telecom": "Greenline Telecom Infra Ltd",
    "solar": "Suryoday Solar Homes Pvt Ltd",
    "mobility": "Yatri Electric Mobility Pvt Ltd",
}
CARRIERS = ("Deccan Freight Logistics", "Konkan Express Cargo")
SERVICE = "PowerCare Battery Services, Nagpur"
RECYCLER = "Circular Metals Recovery Pvt Ltd"

_LFP = {
    "chemistry": "LFP",
    "cathode_material": "Lithium iron phosphate (LiFePO4), carbon-coated",
    "anode_material": "Synthetic graphite",
    "electrolyte": "LiPF6 in EC/EMC/DMC",
    "critical_raw_materials": ["lithium", "natural graphite", "phosphorus"],
    "hazardous_substances": ["LiPF6 (electrolyte salt)"],
}
_NMC = {
    "chemistry": "NMC",
    "cathode_material": "Lithium nickel manganese cobalt oxide (NMC 811)",
    "anode_material": "Graphite with 5 % SiOx",
    "electrolyte": "LiPF6 in EC/EMC with FEC additive",
    "critical_raw_materials": [
        "lithium",
        "nickel",
        "cobalt",
        "manganese",
        "natural graphite",
    ],
    "hazardous_substances": ["LiPF6 (electrolyte salt)", "cobalt compounds"],
}

# EU passport attribute data per product: capacity and performance, carbon
# footprint (kg CO2e per kWh over the life cycle), materials (mass %, recycled %).
PRODUCTS: dict[str, dict[str, Any]] = {
    "PACK-LFP-48V-100AH": {
        **_LFP,
        "kind": "pack",
        "rated_capacity_ah": "100",
        "nominal_voltage_v": "51.2",
        "energy_kwh": "5.12",
        "mass_kg": "44.5",
        "expected_cycles": 4000,
        "warranty_months": 60,
        "carbon_footprint_kg_co2e_per_kwh": "68.4",
        "carbon_footprint_class": "B",
        "material_composition": {
            "cells": 71.0,
            "aluminium": 14.5,
            "copper": 4.2,
            "steel": 5.1,
            "electronics": 1.8,
            "plastics": 3.4,
        },
        "recycled_content": {"lithium": 4.0, "aluminium": 35.0, "copper": 22.0},
    },
    "PACK-LFP-51V-280AH": {
        **_LFP,
        "kind": "pack",
        "rated_capacity_ah": "280",
        "nominal_voltage_v": "51.2",
        "energy_kwh": "14.336",
        "mass_kg": "112.0",
        "expected_cycles": 6000,
        "warranty_months": 120,
        "carbon_footprint_kg_co2e_per_kwh": "58.9",
        "carbon_footprint_class": "A",
        "material_composition": {
            "cells": 76.0,
            "steel": 12.5,
            "aluminium": 4.0,
            "copper": 3.1,
            "electronics": 1.4,
            "plastics": 3.0,
        },
        "recycled_content": {"lithium": 4.0, "steel": 40.0, "copper": 22.0},
    },
    "PACK-NMC-72V-60AH": {
        **_NMC,
        "kind": "pack",
        "rated_capacity_ah": "60",
        "nominal_voltage_v": "72",
        "energy_kwh": "4.32",
        "mass_kg": "27.8",
        "expected_cycles": 1500,
        "warranty_months": 36,
        "carbon_footprint_kg_co2e_per_kwh": "91.5",
        "carbon_footprint_class": "C",
        "material_composition": {
            "cells": 74.0,
            "aluminium": 13.0,
            "copper": 5.0,
            "steel": 2.5,
            "electronics": 2.0,
            "plastics": 3.5,
        },
        "recycled_content": {
            "cobalt": 16.0,
            "lithium": 6.0,
            "nickel": 6.0,
            "lead": 0.0,
        },
    },
    "MOD-LFP-8S-100AH": {
        **_LFP,
        "kind": "module",
        "rated_capacity_ah": "100",
        "nominal_voltage_v": "25.6",
        "energy_kwh": "2.56",
        "mass_kg": "17.9",
        "expected_cycles": 4000,
        "carbon_footprint_kg_co2e_per_kwh": "61.2",
        "material_composition": {
            "cells": 88.0,
            "aluminium": 6.5,
            "copper": 3.0,
            "plastics": 2.5,
        },
    },
    "CELL-LFP-PRIS-100AH": {
        **_LFP,
        "kind": "cell",
        "rated_capacity_ah": "100",
        "nominal_voltage_v": "3.2",
        "energy_kwh": "0.32",
        "mass_kg": "1.98",
        "expected_cycles": 4000,
        "carbon_footprint_kg_co2e_per_kwh": "54.0",
        "material_composition": {
            "LiFePO4": 33.0,
            "graphite": 17.0,
            "aluminium": 16.0,
            "copper": 12.0,
            "electrolyte": 15.0,
            "separator": 3.0,
            "other": 4.0,
        },
        "recycled_content": {"lithium": 4.0},
    },
}
MODULE, CELL = "MOD-LFP-8S-100AH", "CELL-LFP-PRIS-100AH"
MODULES_PER_PACK, CELLS_PER_MODULE = 2, 8


@dataclass(frozen=True)
class PackSpec:
    """A demo pack and its life: ``steps`` are (event, hours ago, data).

    Events beyond the recordable ones: ``provisioned`` (a simulated BMS
    write), ``move_to_past`` and ``reactivate`` (the dispatch desk, now).
    ``telemetry`` is (days of readings, SoH at start, SoH at end, hours ago the
    readings end, profile). ``second_life`` is (hours ago, the change's body
    for ``secondlife.passport_second_life`` without ``serial``), done after
    the steps.
    """

    product: str
    lot: str
    made_hours_ago: float
    steps: tuple[tuple[str, float, dict[str, Any]], ...] = ()
    traced: bool = False
    telemetry: tuple[float, float, float, float, str] | None = None
    second_life: tuple[float, dict[str, Any]] | None = None


H, D = 1.0, 24.0  # hours per hour, hours per day
M = 30.44 * D  # hours per month (average)
_LFP48, _ESS51, _NMC72 = "PACK-LFP-48V-100AH", "PACK-LFP-51V-280AH", "PACK-NMC-72V-60AH"
_T, _S, _EM = CUSTOMERS["telecom"], CUSTOMERS["solar"], CUSTOMERS["mobility"]
_C1, _C2 = CARRIERS


def _made(hours: float) -> tuple[tuple[str, float, dict[str, Any]], ...]:
    """QA, BMS and warehouse, the usual way out of the line (hours ago)."""
    return (
        ("qa_passed", hours - 2, {"test": "Pack assembly audit", "note": "Torque OK"}),
        ("provisioned", hours - 3, {}),
        ("warehoused", hours - 5, {"location": "C-R1"}),
    )


def _shipped(hours: float, carrier: str, customer: str, delivered: float):
    return (
        *_made(hours),
        ("dispatched", hours - 30, {"carrier": carrier, "reference": "DO-DEMO"}),
        ("delivered", delivered, {"customer": customer, "reference": "POD-DEMO"}),
    )


PACKS: tuple[PackSpec, ...] = (
    # LOT-LFP48-0403, at End-of-Line Test: traced to the cell.
    PackSpec(
        _LFP48,
        "LOT-LFP48-0403",
        9,
        (("qa_passed", 8, {"test": "Pack assembly audit"}), ("provisioned", 6.5, {})),
        traced=True,
    ),
    PackSpec(
        _LFP48,
        "LOT-LFP48-0403",
        8,
        (
            ("qa_passed", 7, {"test": "Pack assembly audit"}),
            ("provisioned", 5.5, {}),
            (
                "qa_failed",
                1,
                {
                    "reason": "EOL insulation resistance 38 MΩ, below 100 MΩ",
                    "test": "S11 End-of-Line Test",
                },
            ),
        ),
        traced=True,
    ),
    # LOT-ESS51-0408, at Pack Assembly.
    PackSpec(_ESS51, "LOT-ESS51-0408", 0.5),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0408",
        3,
        (
            ("qa_passed", 2.5, {"test": "Pack assembly audit"}),
            ("held", 2, {"reason": "Torque audit record missing for 4 busbar joints"}),
        ),
    ),
    # LOT-ESS51-0402: finished, being dispatched.
    PackSpec(_ESS51, "LOT-ESS51-0402", 20, _made(19)),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0402",
        20,
        (
            *_made(19),
            ("held", 6, {"reason": "Capacity retest requested by QA (cell lot)"}),
        ),
    ),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0402",
        19,
        (*_made(18), ("move_to_past", 0, {"reason": "Customer order cancelled"})),
    ),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0402",
        19,
        (
            *_made(18),
            ("move_to_past", 0, {"reason": "Set aside for a field trial"}),
            ("reactivate", 0, {"reason": "Field trial postponed; back on sale"}),
        ),
    ),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0402",
        18,
        (*_made(17), ("reserved", 2, {"reference": "DO-2026-0402"})),
    ),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0402",
        18,
        (
            *_made(17),
            ("reserved", 2, {"reference": "DO-2026-0402"}),
            ("held", 1, {"reason": "Class 9 label missing on the carton"}),
        ),
    ),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0402",
        17,
        (
            *_made(16),
            ("reserved", 2, {"reference": "DO-2026-0402"}),
            ("move_to_past", 0, {"reason": "dispatched", "carrier": _C1}),
        ),
    ),
    # LOT-LFP48-0401: dispatched this morning, delivered within the hour.
    *(
        PackSpec(
            _LFP48,
            "LOT-LFP48-0401",
            18,
            (
                *_made(17),
                ("reserved", 6, {"reference": "DO-2026-0401"}),
                ("dispatched", 4, {"carrier": _C2, "reference": "DO-2026-0401"}),
                ("delivered", 0.5, {"customer": _T, "reference": "POD-2026-0401"}),
            ),
        )
        for _ in range(2)
    ),
    # Older lots, in the field.
    PackSpec(
        _LFP48,
        "LOT-LFP48-0312",
        40 * D,
        _shipped(40 * D, _C2, _T, 35 * D),
        telemetry=(TREND_DAYS, 99.6, 99.3, 0.5, "telecom"),
    ),
    PackSpec(
        _ESS51,
        "LOT-ESS51-0318",
        56 * D,
        (
            *_shipped(56 * D, _C1, _S, 50 * D),
            (
                "custody_transferred",
                3 * D,
                {"to": {"kind": "service", "name": SERVICE}},
            ),
            ("serviced", 2 * D, {"note": "Contactor replaced", "provider": SERVICE}),
        ),
        telemetry=(TREND_DAYS, 98.9, 98.7, 3 * D, "solar"),
    ),
    PackSpec(
        _NMC72,
        "LOT-NMC72-0296",
        35 * M,
        (
            *_shipped(35 * M, _C1, _EM, 34 * M),
            (
                "custody_transferred",
                60 * D,
                {"to": {"kind": "service", "name": SERVICE}},
            ),
            ("serviced", 59 * D, {"note": "BMS firmware 3.4.1", "provider": SERVICE}),
            (
                "custody_transferred",
                58 * D,
                {"to": {"kind": "customer", "name": _EM}},
            ),
        ),
        telemetry=(TREND_DAYS, 84.5, 84.0, 0.5, "mobility"),
    ),
    PackSpec(
        _NMC72,
        "LOT-NMC72-0231",
        41 * M,
        _shipped(41 * M, _C2, _EM, 40 * M),
        telemetry=(TREND_DAYS, 79.8, 79.1, 0.5, "mobility"),
    ),
    PackSpec(
        _NMC72,
        "LOT-NMC72-0198",
        50 * M,
        (
            *_shipped(50 * M, _C1, _EM, 49 * M),
            ("end_of_life", 10 * D, {"reason": "SoH 68 %, below the 70 % limit"}),
        ),
    ),
    PackSpec(
        _NMC72,
        "LOT-NMC72-0198",
        50 * M,
        (
            *_shipped(50 * M, _C1, _EM, 49 * M),
            ("end_of_life", 20 * D, {"reason": "Crash damage, enclosure breached"}),
            (
                "custody_transferred",
                12 * D,
                {"to": {"kind": "recycler", "name": RECYCLER}, "reference": "RC-118"},
            ),
        ),
    ),
    PackSpec(
        _NMC72,
        "LOT-NMC72-0165",
        55 * M,
        (
            *_shipped(55 * M, _C2, _EM, 54 * M),
            ("end_of_life", 90 * D, {"reason": "SoH 66 %, below the 70 % limit"}),
            (
                "custody_transferred",
                80 * D,
                {"to": {"kind": "recycler", "name": RECYCLER}, "reference": "RC-097"},
            ),
            ("recycled", 30 * D, {"note": "Black mass lot BM-2026-031"}),
        ),
    ),
    # LOT-NMC72-0187: retired from the road, repurposed as stationary storage
    # (last, so the other packs keep their serials and BPANs).
    PackSpec(
        _NMC72,
        "LOT-NMC72-0187",
        44 * M,
        (
            *_shipped(44 * M, _C2, _EM, 43 * M),
            (
                "end_of_life",
                40 * D,
                {"reason": "SoH 71 %, below the 75 % limit for traction use"},
            ),
        ),
        second_life=(
            20 * D,
            {
                "status": "Repurposed",
                "operator": MANUFACTURER,
                "site": SITE,
                "battery_category": "Stationary",
                "warranty_months": 24,
                "note": "Capacity test 42.4 Ah (71 %); re-housed for 48 V storage",
                "manufacturer_code": MANUFACTURER_CODE,
                "plant_code": PLANT_CODE,
            },
        ),
    ),
)

# Graded cells waiting for module assembly in LOT-LFP48-0406 (one rejected).
SPARE_CELLS = (
    ("LOT-LFP48-0406", 6, "qa_passed", {"test": "S2 OCV/IR grading"}),
    ("LOT-LFP48-0406", 6, "qa_passed", {"test": "S2 OCV/IR grading"}),
    ("LOT-LFP48-0406", 6, "qa_passed", {"test": "S2 OCV/IR grading"}),
    (
        "LOT-LFP48-0406",
        6,
        "qa_failed",
        {"reason": "IR 0.31 mΩ, above the 0.25 mΩ window", "test": "S2 OCV/IR"},
    ),
)


@dataclass
class _Seeder:
    now: datetime
    users: dict[str, User]
    counts: dict[str, int] = field(default_factory=dict)
    pack_number: int = 0
    cell_number: int = 0

    def at(self, hours_ago: float) -> str:
        return (self.now - timedelta(hours=hours_ago)).isoformat()

    def register(self, product: str, lot: str, serial: str, hours_ago: float, **more):
        spec = dict(PRODUCTS[product])
        maker = spec["kind"] == "cell"
        data = {
            **spec,
            "serial": serial,
            "model": product,
            "lot": lot,
            "manufacturer": CELL_MAKER if maker else MANUFACTURER,
            "manufacturer_id": "" if maker else MANUFACTURER_ID,
            "site": CELL_SITE if maker else SITE,
            "manufactured_at": self.at(hours_ago),
            **more,
        }
        return services.passport_register(data=data, actor=self.users["operator"])

    def record(self, passport: Passport, kind: str, hours_ago: float, data: dict):
        actor = self.users[
            "operator" if kind in ("qa_passed", "qa_failed", "warehoused") else "sup"
        ]
        if kind == "provisioned":
            # Stand-in for a confirmed BMS write over CAN (passports.provisioning).
            ledger.append(
                passport=passport.pk,
                kind=EventKind.PROVISIONED,
                data={"node": 0x20 + passport.pk % 64, "simulated": True},
                actor=actor,
                occurred_at=self.now - timedelta(hours=hours_ago),
            )
        elif kind == "move_to_past":
            dispatch.product_move_to_past(passport_id=passport.pk, actor=actor, **data)
        elif kind == "reactivate":
            dispatch.product_reactivate(passport_id=passport.pk, actor=actor, **data)
        else:
            services.passport_event_record(
                passport_id=passport.pk,
                kind=kind,
                data=data,
                occurred_at=self.at(hours_ago),
                actor=actor,
            )
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def pack(self, spec: PackSpec) -> Passport:
        self.pack_number += 1
        n = self.pack_number
        code = spec.lot.removeprefix("LOT-")
        pack = self.register(
            spec.product,
            spec.lot,
            f"PK-{code}-{n:03d}",
            spec.made_hours_ago,
            barcode=f"890{n:010d}",
            rfid=f"E2801170200000{n:010X}",
            manufacturer_code=MANUFACTURER_CODE,
            plant_code=PLANT_CODE,
            bpan_serial=f"{n:05d}",
        )
        if spec.traced:
            self.genealogy(pack, spec)
        for kind, hours_ago, data in spec.steps:
            self.record(pack, kind, hours_ago, data)
        if spec.telemetry:
            _telemetry(pack, spec.telemetry, self.now, self.users["operator"])
        if spec.second_life:
            self.second_life(pack, spec, n)
        return pack

    def second_life(self, pack: Passport, spec: PackSpec, n: int) -> Passport:
        """The pack's second life through the service: its passport is
        superseded by a new one (``RP-…``), linked both ways."""
        hours_ago, body = spec.second_life
        new, _, _ = secondlife.passport_second_life(
            passport_id=pack.pk,
            data={
                **body,
                "serial": pack.serial.replace("PK-", "RP-", 1),
                "bpan_serial": f"{n + 90000:05d}",
                "occurred_at": self.at(hours_ago),
            },
            actor=self.users["sup"],
        )
        kind = body["status"].lower()
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return new

    def genealogy(self, pack: Passport, spec: PackSpec) -> None:
        """Modules (8S) of graded cells, assembled before the pack moves on."""
        made = spec.made_hours_ago
        modules = []
        for m in range(MODULES_PER_PACK):
            cells = []
            for _ in range(CELLS_PER_MODULE):
                self.cell_number += 1
                cell = self.register(
                    CELL, spec.lot, f"CL-{self.cell_number:05d}", made + 30
                )
                self.record(cell, "qa_passed", made + 20, {"test": "S2 OCV/IR"})
                cells.append(cell.pk)
            module = self.register(
                MODULE, spec.lot, f"{pack.serial.replace('PK', 'MD')}-{m + 1}", made + 6
            )
            services.passport_assemble(
                parent_id=module.pk,
                component_ids=cells,
                actor=self.users["operator"],
                occurred_at=self.at(made + 5.5),
            )
            self.record(module, "qa_passed", made + 3, {"test": "S7 Module Test"})
            modules.append(module.pk)
        services.passport_assemble(
            parent_id=pack.pk,
            component_ids=modules,
            actor=self.users["operator"],
            occurred_at=self.at(made - 0.1),
        )

    def spare_cell(self, lot: str, hours_ago: float, kind: str, data: dict) -> None:
        self.cell_number += 1
        cell = self.register(CELL, lot, f"CL-{self.cell_number:05d}", hours_ago + 24)
        self.record(cell, kind, hours_ago, data)


# --- telemetry ------------------------------------------------------------------

# Daily state-of-charge shape per use: (base %, swing %, hour of the peak).
_PROFILES = {
    "telecom": (92.0, 6.0, 14),  # float-charged backup, short grid outages
    "solar": (58.0, 35.0, 16),  # charged by day, discharged at night
    "mobility": (55.0, 38.0, 6),  # charged overnight, driven by day
}
_EVERY = timedelta(hours=1)


def _telemetry(pack: Passport, spec: tuple, now: datetime, actor: User) -> None:
    """Hourly samples on whole hours, one batch through the telemetry service
    (stored by COPY; the passport's summary is its newest sample)."""
    days, soh_from, soh_to, ends_hours_ago, profile = spec
    base, swing, peak = _PROFILES[profile]
    rng = random.Random(pack.serial)
    end = (now - timedelta(hours=ends_hours_ago)).replace(
        minute=0, second=0, microsecond=0
    )
    steps = int(timedelta(days=days) / _EVERY)
    nominal = float(pack.nominal_voltage_v)
    rows = []
    for i in range(steps + 1):
        ts = end - _EVERY * (steps - i)
        soc = base + swing * math.cos((ts.hour - peak) / 24 * 2 * math.pi)
        soc = min(100.0, max(5.0, soc + rng.uniform(-4, 4)))
        rows.append(
            {
                "ts": ts,
                "soh_percent": round(soh_from + (soh_to - soh_from) * i / steps, 2),
                "soc_percent": round(soc, 1),
                "temperature_c": round(
                    27
                    + 6 * math.sin((ts.hour - 9) / 24 * 2 * math.pi)
                    + rng.uniform(-1.5, 1.5),
                    1,
                ),
                "voltage_v": round(nominal * (0.94 + 0.12 * soc / 100), 2),
                "current_a": round(rng.uniform(-25, 25), 1),
            }
        )
    telemetry_ingest(passport_id=pack.pk, rows=rows, actor=actor)


# --- entry point ------------------------------------------------------------------


def demo_serials() -> list[str]:
    """The serials the demo packs get (the idempotence check looks for them)."""
    return [
        f"PK-{spec.lot.removeprefix('LOT-')}-{n:03d}"
        for n, spec in enumerate(PACKS, start=1)
    ]


def seed(log) -> None:
    """Create the demo passports once."""
    if Passport.objects.filter(serial__in=demo_serials()).exists():
        log("passports: already present")
        return
    users = {
        "operator": User.objects.get(username=Role.OPERATOR.value),
        "sup": User.objects.get(username=Role.SUPERVISOR.value),
    }
    log(f"passports: building {len(PACKS)} packs, their cells, ledgers, telemetry ...")
    seeder = _Seeder(now=timezone.now(), users=users)
    for spec in PACKS:
        seeder.pack(spec)
    for lot, hours_ago, kind, data in SPARE_CELLS:
        seeder.spare_cell(lot, hours_ago, kind, data)
    second = sum(1 for spec in PACKS if spec.second_life)
    log(
        f"passports: {len(PACKS)} packs ({second} given a second life: "
        f"{second} new passport), {seeder.cell_number} cells, "
        f"{sum(s.traced for s in PACKS) * MODULES_PER_PACK} modules, "
        f"{TelemetryReading.objects.count()} telemetry readings"
    )
