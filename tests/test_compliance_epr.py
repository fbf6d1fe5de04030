"""EPR figures (BWMR 2022) of a small fixed fleet, computed by hand and
compared exactly: categories, financial-year boundaries in plant time (23:30
IST on 31 March, 00:10 IST on 1 April), packs without a mass, an undeclared
model, a pack dispatched twice, end of life and recycling, the year's targets
and gaps, the basis-year collection obligation; the API (400, 404, roles,
pagination); the category declarations (service, admin, audit, demo).

The fleet (every pack through the passport services, times in IST):

=======  ==========  =========  ==========================================
pack     model       mass kg    events
=======  ==========  =========  ==========================================
IND-1    industrial  100.000    dispatched 2026-03-31 23:30 (FY 2025-26)
IND-2    industrial  200.500    dispatched 2026-04-01 00:10 (FY 2026-27)
IND-3    industrial  (none)     dispatched 2026-06-15 10:00
EV-1     ev           27.800    dispatched 2026-05-01, end of life
                                2026-08-01, recycled 2026-09-01
EV-2     ev           30.000    dispatched 2024-05-10, end of life
                                2026-07-10
EV-3     ev           25.250    dispatched 2026-03-20 and again 2026-05-05
PRT-1    portable     10.000    dispatched 2023-06-15 (FY 2023-24)
PRT-2    portable     (none)    dispatched 2023-09-01 (FY 2023-24)
PRT-3    portable      4.000    dispatched 2023-07-01, end of life
                                2026-09-15
UND-1    undeclared   50.000    dispatched 2026-07-01
MOD-1    (a module,   17.900    dispatched 2026-07-01: modules never count
         industrial)
=======  ==========  =========  ==========================================
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from bpmos.errors import InvalidInput
from compliance import categories, demo, epr, epr_schedule
from compliance.models import CategoryDeclaration
from compliance.periods import Period, fy_current, fy_period
from elog.models import AuditRecord
from passports import ledger, services
from passports.demo import PRODUCTS
from passports.models import EventKind, Passport, PassportEvent
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db

IST = ZoneInfo("Asia/Kolkata")
E = EventKind
INDUSTRIAL, EV, PORTABLE = "PACK-ESS-A", "PACK-EV-B", "PACK-PRT-C"
UNDECLARED_MODEL = "PACK-MYSTERY"
MODULE_MODEL = "MOD-ESS-A"
_numbers = itertools.count(1)


def ist(text: str) -> datetime:
    """``"2026-03-31 23:30"`` in plant time (IST)."""
    return datetime.fromisoformat(text).replace(tzinfo=IST)


def _register(serial: str, model: str, mass: str | None, kind: str = "pack"):
    data = {
        "kind": kind,
        "chemistry": "LFP",
        "serial": serial,
        "model": model,
        "manufacturer": "BPM Energy",
        "site": "Pune Plant 1",
        "rated_capacity_ah": 100,
        "nominal_voltage_v": 51.2,
        "energy_kwh": 5.12,
        "manufactured_at": ist("2023-01-10 09:00").isoformat(),
    }
    if kind == "pack":
        data.update(manufacturer_code="BPM", plant_code="P")
        data["bpan_serial"] = f"{next(_numbers):05d}"
    if mass is not None:
        data["mass_kg"] = mass
    return services.passport_register(data=data, actor=None)


def _record(passport, kind, when: str, **data):
    services.passport_event_record(
        passport_id=passport.pk,
        kind=kind,
        data=data,
        occurred_at=ist(when).isoformat(),
        actor=None,
    )


def _ship(passport, when: str, *, kind: str = "pack"):
    """QA, BMS (packs) and warehouse just after midnight of ``when``'s day,
    then the dispatch at ``when``."""
    day = when[:10]
    _record(passport, E.QA_PASSED, f"{day} 00:00", test="EOL-1")
    if kind == "pack":
        ledger.append(
            passport=passport.pk,
            kind=E.PROVISIONED,
            data={"bmsFirmware": "2.4.1", "nodeId": 17},
            actor=None,
            occurred_at=ist(f"{day} 00:01"),
        )
    _record(passport, E.WAREHOUSED, f"{day} 00:02", location="FG-A-01")
    _record(passport, E.DISPATCHED, when, carrier="BlueDart")


def _end_of_life(passport, delivered: str, end: str):
    _record(passport, E.DELIVERED, delivered, customer="Yatri Mobility")
    _record(passport, E.END_OF_LIFE, end, reason="SoH below 70 %")


def _recycle(passport, when: str):
    services.passport_event_record(
        passport_id=passport.pk,
        kind=E.CUSTODY_TRANSFERRED,
        data={"to": {"kind": "recycler", "name": "GreenCycle"}},
        occurred_at=ist(when).isoformat(),
        actor=None,
    )
    _record(passport, E.RECYCLED, when, note="Black mass recovered")


def _dispatch_again(passport, when: str):
    """A second ``dispatched`` event on a pack's chain. The lifecycle has no
    way back from Dispatched to the warehouse (the desk's reactivation needs a
    shippable pack), so no service can write one: this row is written the way
    ``ledger.append`` writes it (hash-chained) but past the lifecycle, as a
    ledger imported from an older system could hold it (``ledger.verify``
    flags it). EPR must still count the pack once, in its first dispatch's
    year, whatever the ledger holds."""
    passport = Passport.objects.get(pk=passport.pk)
    fields = {
        "passport": passport.uuid,
        "version": passport.version + 1,
        "kind": E.DISPATCHED,
        "occurred_at": ist(when),
        "actor_username": "",
        "data": {"carrier": "Konkan Express Cargo"},
        "prev_hash": passport.head_hash,
    }
    digest = ledger.compute_hash(fields)
    PassportEvent.objects.create(
        passport=passport,
        version=fields["version"],
        kind=fields["kind"],
        occurred_at=fields["occurred_at"],
        data=fields["data"],
        prev_hash=fields["prev_hash"],
        hash=digest,
    )
    Passport.objects.filter(pk=passport.pk).update(
        version=fields["version"], head_hash=digest
    )


@pytest.fixture
def fleet():
    """The fleet of the module docstring; returns {serial: Passport}."""
    for model, category in (
        (INDUSTRIAL, "industrial"),
        (EV, "ev"),
        (PORTABLE, "portable"),
        (MODULE_MODEL, "industrial"),
    ):
        categories.category_declare(model=model, category=category, actor=None)
    packs = {
        "IND-1": _register("IND-1", INDUSTRIAL, "100.000"),
        "IND-2": _register("IND-2", INDUSTRIAL, "200.500"),
        "IND-3": _register("IND-3", INDUSTRIAL, None),
        "EV-1": _register("EV-1", EV, "27.800"),
        "EV-2": _register("EV-2", EV, "30.000"),
        "EV-3": _register("EV-3", EV, "25.250"),
        "PRT-1": _register("PRT-1", PORTABLE, "10.000"),
        "PRT-2": _register("PRT-2", PORTABLE, None),
        "PRT-3": _register("PRT-3", PORTABLE, "4.000"),
        "UND-1": _register("UND-1", UNDECLARED_MODEL, "50.000"),
        "MOD-1": _register("MOD-1", MODULE_MODEL, "17.900", kind="module"),
    }
    _ship(packs["IND-1"], "2026-03-31 23:30")
    _ship(packs["IND-2"], "2026-04-01 00:10")
    _ship(packs["IND-3"], "2026-06-15 10:00")
    _ship(packs["EV-1"], "2026-05-01 11:00")
    _end_of_life(packs["EV-1"], "2026-05-03 12:00", "2026-08-01 09:00")
    _recycle(packs["EV-1"], "2026-09-01 15:00")
    _ship(packs["EV-2"], "2024-05-10 11:00")
    _end_of_life(packs["EV-2"], "2024-05-12 12:00", "2026-07-10 09:00")
    _ship(packs["EV-3"], "2026-03-20 11:00")
    _dispatch_again(packs["EV-3"], "2026-05-05 11:00")
    _ship(packs["PRT-1"], "2023-06-15 11:00")
    _ship(packs["PRT-2"], "2023-09-01 11:00")
    _ship(packs["PRT-3"], "2023-07-01 11:00")
    _end_of_life(packs["PRT-3"], "2023-07-03 12:00", "2026-09-15 09:00")
    _ship(packs["UND-1"], "2026-07-01 11:00")
    _ship(packs["MOD-1"], "2026-07-01 11:00", kind="module")
    return {serial: Passport.objects.get(pk=p.pk) for serial, p in packs.items()}


def tally(count: int, mass: float, missing: int = 0) -> dict:
    return {"count": count, "massKg": mass, "missingMassCount": missing}


NONE = tally(0, 0.0)
BWMR = "BWMR 2022, Schedule II"

# FY 2026-27, by hand. Percentages: epr_schedule (EV and industrial recovery
# 90 % from 2026-27; portable collection 70 % of FY 2023-24's mass, recovery
# 90 %; automotive recovery 60 % from 2023-24; no recycled-content minimum
# before 2027-28; no collection target for industrial, nor for EV before
# 2027-28).
FY_2026_27 = {
    "financialYear": "2026-27",
    "periodStart": "2026-04-01",
    "periodEnd": "2027-03-31",
    "timezone": "Asia/Kolkata",
    "categories": [
        {
            "category": "portable",
            "label": "Portable",
            "placedOnMarket": NONE,
            "collected": tally(1, 4.0),  # PRT-3
            "recycled": NONE,
            "collectionTarget": {
                "percent": 70.0,
                "citation": f"{BWMR}, Part A (portable)",
                "basisFinancialYear": "2023-24",
                "basisMassKg": 14.0,  # PRT-1 10 + PRT-3 4; PRT-2 has no mass
                "basisCount": 3,
                "basisMissingMassCount": 1,
                "obligationKg": 9.8,  # 70 % of 14
            },
            "recoveryTarget": {
                "percent": 90.0,
                "citation": f"{BWMR}, Part B (portable)",
                "obligationKg": 3.6,  # 90 % of 4 collected
            },
            "recycledContentTarget": None,
            "collectionGapKg": 5.8,  # 9.8 - 4
            "recoveryGapKg": 3.6,  # nothing recycled
        },
        {
            "category": "automotive",
            "label": "Automotive",
            "placedOnMarket": NONE,
            "collected": NONE,
            "recycled": NONE,
            "collectionTarget": None,
            "recoveryTarget": {
                "percent": 60.0,
                "citation": f"{BWMR}, Part B (automotive)",
                "obligationKg": 0.0,
            },
            "recycledContentTarget": None,
            "collectionGapKg": None,
            "recoveryGapKg": 0.0,
        },
        {
            "category": "industrial",
            "label": "Industrial",
            # IND-2 (00:10 IST on 1 April) and IND-3 (no mass); not IND-1
            # (23:30 IST on 31 March), nor the module MOD-1.
            "placedOnMarket": tally(2, 200.5, 1),
            "collected": NONE,
            "recycled": NONE,
            "collectionTarget": None,
            "recoveryTarget": {
                "percent": 90.0,
                "citation": f"{BWMR}, Part B (industrial)",
                "obligationKg": 0.0,
            },
            "recycledContentTarget": None,
            "collectionGapKg": None,
            "recoveryGapKg": 0.0,
        },
        {
            "category": "ev",
            "label": "Electric vehicle",
            # EV-1 only: EV-2 was placed in 2024-25, EV-3 first in 2025-26.
            "placedOnMarket": tally(1, 27.8),
            "collected": tally(2, 57.8),  # EV-1 27.8 + EV-2 30
            "recycled": tally(1, 27.8),  # EV-1
            "collectionTarget": None,
            "recoveryTarget": {
                "percent": 90.0,
                "citation": f"{BWMR}, Part B (electric vehicle)",
                "obligationKg": 52.02,  # 90 % of 57.8
            },
            "recycledContentTarget": None,
            "collectionGapKg": None,
            "recoveryGapKg": 24.22,  # 52.02 - 27.8
        },
        {
            "category": None,
            "label": "Undeclared",
            "placedOnMarket": tally(1, 50.0),  # UND-1
            "collected": NONE,
            "recycled": NONE,
            "collectionTarget": None,
            "recoveryTarget": None,
            "recycledContentTarget": None,
            "collectionGapKg": None,
            "recoveryGapKg": None,
        },
    ],
    "missingMass": [{"serial": "IND-3", "event": "placed", "model": INDUSTRIAL}],
    "undeclaredModels": [UNDECLARED_MODEL],
}


def _row(figures: dict, category: str | None) -> dict:
    return next(row for row in figures["categories"] if row["category"] == category)


def test_fy_2026_27_figures_match_the_hand_computation(fleet):
    assert epr.figures(fy_period("2026-27")) == FY_2026_27


def test_fy_boundary_is_midnight_in_plant_time(fleet):
    before = epr.figures(fy_period("2025-26"))
    # 23:30 IST on 31 March 2026 is 18:00 UTC: still FY 2025-26.
    assert _row(before, "industrial")["placedOnMarket"] == tally(1, 100.0)
    facts = epr.pack_facts(fy_period("2025-26"))
    assert [(f.serial, f.event) for f in facts if f.category == "industrial"] == [
        ("IND-1", "placed")
    ]
    after = [f.serial for f in epr.pack_facts(fy_period("2026-27"))]
    assert "IND-1" not in after
    assert after[:2] == ["IND-2", "EV-1"]  # placed, by time


def test_a_pack_dispatched_twice_counts_once_in_its_first_year(fleet):
    assert (
        PassportEvent.objects.filter(passport=fleet["EV-3"], kind=E.DISPATCHED).count()
        == 2
    )
    earlier = epr.figures(fy_period("2025-26"))
    assert _row(earlier, "ev")["placedOnMarket"] == tally(1, 25.25)  # EV-3
    # Its second dispatch (5 May 2026) adds nothing to FY 2026-27.
    later = [f for f in epr.pack_facts(fy_period("2026-27")) if f.serial == "EV-3"]
    assert later == []


def test_the_basis_year_holds_the_portable_packs_placed_then(fleet):
    basis = epr.figures(fy_period("2023-24"))
    # PRT-2 is counted and named, never a silent zero.
    assert _row(basis, "portable")["placedOnMarket"] == tally(3, 14.0, 1)
    assert basis["missingMass"] == [
        {"serial": "PRT-2", "event": "placed", "model": PORTABLE}
    ]


@pytest.mark.parametrize(
    ("category", "measure", "percents"),
    [
        # FY 2023-24 .. 2031-32; None: no target that year.
        ("ev", "recovery", [None, 70, 80, 90, 90, 90, 90, 90, 90]),
        ("industrial", "recovery", [None, 70, 80, 90, 90, 90, 90, 90, 90]),
        ("portable", "recovery", [None, 70, 80, 90, 90, 90, 90, 90, 90]),
        ("automotive", "recovery", [60, 60, 60, 60, 60, 60, 60, 60, 60]),
        ("ev", "recycled_content", [None, None, None, None, 5, 10, 15, 20, 20]),
        ("portable", "recycled_content", [None, None, None, None, 5, 10, 15, 20, 20]),
        ("industrial", "recycled_content", [None] * 4 + [35, 35, 40, 40, 40]),
        ("automotive", "recycled_content", [None] * 4 + [35, 35, 40, 40, 40]),
        ("ev", "collection", [None, None, None, None, 70, 70, 70, 70, 70]),
        ("portable", "collection", [40, 50, 60, 70, 70, 70, 70, 70, 70]),
        ("industrial", "collection", [None] * 9),
    ],
)
def test_the_schedule_by_year(category, measure, percents):
    found = []
    for year in range(2023, 2032):
        row = epr_schedule.target_for(category, measure, year)
        found.append(None if row is None else int(row.percent))
    assert found == percents


def test_recycled_content_minimums_start_in_fy_2027_28(fleet):
    figures = epr.figures(fy_period("2027-28"))
    assert _row(figures, "ev")["recycledContentTarget"] == {
        "percent": 5.0,
        "citation": "BWMR 2022, rule 4(14) (Second Amendment Rules 2024), "
        "electric vehicle",
    }
    assert _row(figures, "industrial")["recycledContentTarget"]["percent"] == 35.0
    # EV collection starts too: 70 % of FY 2019-20's mass (8 years back): none.
    assert _row(figures, "ev")["collectionTarget"]["basisFinancialYear"] == "2019-20"
    assert _row(figures, "ev")["collectionTarget"]["obligationKg"] == 0.0


def test_a_period_that_is_not_a_financial_year_has_no_targets(fleet):
    figures = epr.figures(Period(date(2026, 4, 1), date(2026, 6, 30)))
    ev = _row(figures, "ev")
    assert figures["financialYear"] is None
    assert ev["placedOnMarket"] == tally(1, 27.8)
    assert (ev["collectionTarget"], ev["recoveryTarget"], ev["recoveryGapKg"]) == (
        None,
        None,
        None,
    )


def test_changing_a_declaration_moves_the_packs(fleet):
    categories.category_declare(model=UNDECLARED_MODEL, category="ev", actor=None)
    figures = epr.figures(fy_period("2026-27"))
    assert _row(figures, "ev")["placedOnMarket"] == tally(2, 77.8)
    assert [row["category"] for row in figures["categories"]] == [
        "portable",
        "automotive",
        "industrial",
        "ev",
    ]
    assert figures["undeclaredModels"] == []


# --- the API ------------------------------------------------------------------

EPR_URL = "/api/compliance/epr"


def test_the_api_answers_the_hand_computed_figures(fleet, http, client_as):
    headers, _ = client_as("auditor")
    response = http.get(EPR_URL, params={"fy": "2026-27"}, headers=headers)
    assert response.status_code == 200
    assert response.json() == FY_2026_27
    # The trailing slash is optional.
    assert http.get(f"{EPR_URL}/?fy=2026-27", headers=headers).json() == FY_2026_27


def test_one_category_with_its_pack_rows(fleet, http, client_as):
    headers, _ = client_as("supervisor")
    response = http.get(
        f"{EPR_URL}/industrial", params={"fy": "2026-27"}, headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["figures"] == _row(FY_2026_27, "industrial")
    assert (body["financialYear"], body["count"], body["next"]) == ("2026-27", 2, None)
    assert body["results"] == [
        {
            "serial": "IND-2",
            "bpan": fleet["IND-2"].bpan,
            "model": INDUSTRIAL,
            "event": "placed",
            "occurredAt": "2026-03-31T18:40:00Z",  # 00:10 IST on 1 April
            "massKg": 200.5,
            "custodian": "BlueDart",
        },
        {
            "serial": "IND-3",
            "bpan": fleet["IND-3"].bpan,
            "model": INDUSTRIAL,
            "event": "placed",
            "occurredAt": "2026-06-15T04:30:00Z",
            "massKg": None,
            "custodian": "BlueDart",
        },
    ]


def test_category_rows_filter_by_event_and_paginate(fleet, http, client_as):
    headers, _ = client_as("plant-head")
    url = f"{EPR_URL}/ev/"
    collected = http.get(
        url, params={"fy": "2026-27", "event": "collected"}, headers=headers
    ).json()
    assert [(r["serial"], r["event"]) for r in collected["results"]] == [
        ("EV-2", "collected"),  # 10 July
        ("EV-1", "collected"),  # 1 August
    ]
    assert collected["results"][1]["custodian"] == "GreenCycle"
    first = http.get(
        url, params={"fy": "2026-27", "page_size": 3}, headers=headers
    ).json()
    assert first["count"] == 4
    assert [(r["serial"], r["event"]) for r in first["results"]] == [
        ("EV-1", "placed"),
        ("EV-2", "collected"),
        ("EV-1", "collected"),
    ]
    second = http.get(first["next"], headers=headers).json()
    assert [(r["serial"], r["event"]) for r in second["results"]] == [
        ("EV-1", "recycled")
    ]
    assert second["next"] is None


def test_undeclared_packs_have_their_own_rows(fleet, http, client_as):
    headers, _ = client_as("admin")
    body = http.get(
        f"{EPR_URL}/undeclared", params={"fy": "2026-27"}, headers=headers
    ).json()
    assert body["figures"] == _row(FY_2026_27, None)
    assert [(r["serial"], r["massKg"]) for r in body["results"]] == [("UND-1", 50.0)]


def test_an_empty_category_answers_zeros(fleet, http, client_as):
    headers, _ = client_as("auditor")
    body = http.get(
        f"{EPR_URL}/automotive", params={"fy": "2026-27"}, headers=headers
    ).json()
    assert body["figures"] == _row(FY_2026_27, "automotive")
    assert (body["count"], body["results"]) == (0, [])


def test_the_default_is_the_current_financial_year(http, client_as):
    headers, _ = client_as("auditor")
    body = http.get(EPR_URL, headers=headers).json()
    assert body["financialYear"] == fy_current()
    # An empty value is a 400 (its schema's minLength), not a silent default.
    for url in (EPR_URL, f"{EPR_URL}/ev"):
        response = http.get(f"{url}?fy=", headers=headers)
        assert list(assert_envelope(response, 400, "validation_error")["details"]) == [
            "fy"
        ]
    assert [row["category"] for row in body["categories"]] == [
        "portable",
        "automotive",
        "industrial",
        "ev",
    ]


@pytest.mark.parametrize("fy", ["2000-01", "2099-00"])
def test_the_first_and_last_financial_years_answer(http, client_as, fy):
    headers, _ = client_as("auditor")
    body = http.get(EPR_URL, params={"fy": fy}, headers=headers).json()
    assert (body["financialYear"], body["periodStart"], body["periodEnd"]) == (
        fy,
        f"{fy[:4]}-04-01",
        f"{int(fy[:4]) + 1}-03-31",
    )


@pytest.mark.parametrize(
    "fy",
    [
        "2026",
        "2026-28",
        "26-27",
        "2026-27x",
        "2026-27 2027-28",
        "1999-00",
        "\uff12\uff10\uff12\uff16-27",  # full-width digits
        "9" * 50,
    ],
)
def test_a_bad_financial_year_is_a_400_naming_fy(http, client_as, fy):
    headers, _ = client_as("auditor")
    for url in (EPR_URL, f"{EPR_URL}/ev"):
        response = http.get(url, params={"fy": fy}, headers=headers)
        body = assert_envelope(response, 400, "validation_error")
        assert list(body["details"]) == ["fy"]


def test_a_bad_event_is_a_400(http, client_as):
    headers, _ = client_as("auditor")
    response = http.get(f"{EPR_URL}/ev", params={"event": "sold"}, headers=headers)
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == ["event"]


@pytest.mark.parametrize("category", ["bogus", "EV", "Undeclared", "None", "987654"])
def test_an_unknown_category_is_a_404(http, client_as, category):
    headers, _ = client_as("auditor")
    response = http.get(f"{EPR_URL}/{category}", headers=headers)
    assert_envelope(response, 404, "category_not_found")


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("operator", 403),
        ("planner", 403),
        ("supervisor", 200),
        ("plant-head", 200),
        ("auditor", 200),
        ("admin", 200),
    ],
)
def test_who_reads_the_epr_routes(http, client_as, role, status):
    headers, _ = client_as(role)
    for url in (EPR_URL, f"{EPR_URL}/ev", "/api/compliance/categories"):
        assert http.get(url, headers=headers).status_code == status, url


def test_no_token_is_a_401(http):
    assert http.get(EPR_URL).status_code == 401


def test_the_categories_endpoint(fleet, http, client_as):
    headers, _ = client_as("auditor")
    body = http.get("/api/compliance/categories", headers=headers).json()
    assert body["categories"] == [
        {"value": "portable", "label": "Portable"},
        {"value": "automotive", "label": "Automotive"},
        {"value": "industrial", "label": "Industrial"},
        {"value": "ev", "label": "Electric vehicle"},
    ]
    assert [
        (d["model"], d["category"], d["label"], d["note"]) for d in body["declarations"]
    ] == [
        (MODULE_MODEL, "industrial", "Industrial", ""),
        (INDUSTRIAL, "industrial", "Industrial", ""),
        (EV, "ev", "Electric vehicle", ""),
        (PORTABLE, "portable", "Portable", ""),
    ]
    assert body["undeclared"] == [
        {"model": UNDECLARED_MODEL, "kind": "pack", "passports": 1, "countsInEpr": True}
    ]


# --- declarations: the service, the admin, the demo ----------------------------


def test_declaring_is_audited_and_idempotent(make_user):
    admin = make_user("admin")
    row = categories.category_declare(
        model=" PACK-X ", category="ev", note="Two-wheelers", actor=admin
    )
    assert (row.model, row.category, row.note) == ("PACK-X", "ev", "Two-wheelers")
    categories.category_declare(
        model="PACK-X", category="ev", note="Two-wheelers", actor=admin
    )
    categories.category_declare(model="PACK-X", category="industrial", actor=admin)
    records = AuditRecord.objects.filter(action__startswith="category.").order_by("seq")
    assert [(r.action, r.before, r.after) for r in records] == [
        (
            "category.declared",
            None,
            {"model": "PACK-X", "category": "ev", "note": "Two-wheelers"},
        ),
        (
            "category.changed",
            {"category": "ev", "note": "Two-wheelers"},
            {"category": "industrial", "note": ""},
        ),
    ]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"model": "", "category": "ev"}, "model"),
        ({"model": "X" * 65, "category": "ev"}, "model"),
        ({"model": 7, "category": "ev"}, "model"),
        ({"model": "PACK-X", "category": "lead-acid"}, "category"),
        ({"model": "PACK-X", "category": "ev", "note": "n" * 301}, "note"),
    ],
)
def test_a_bad_declaration_is_refused_and_writes_nothing(data, field):
    with pytest.raises(InvalidInput) as refused:
        categories.category_declare(**data, actor=None)
    assert list(refused.value.details) == [field]
    assert CategoryDeclaration.objects.count() == 0
    assert not AuditRecord.objects.filter(action__startswith="category.").exists()


CHANGELIST = "admin:compliance_categorydeclaration_changelist"


def test_an_admin_declares_changes_and_removes_in_the_admin(client, make_user):
    admin = make_user("admin")
    client.force_login(admin)
    add = reverse("admin:compliance_categorydeclaration_add")
    response = client.post(
        add, {"model": "PACK-NEW", "category": "ev", "note": "Scooters"}
    )
    assert response.status_code == 302
    row = CategoryDeclaration.objects.get(model="PACK-NEW")
    change = reverse("admin:compliance_categorydeclaration_change", args=[row.pk])
    response = client.post(change, {"category": "industrial", "note": "Storage"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.model, row.category, row.note) == ("PACK-NEW", "industrial", "Storage")
    search = client.get(reverse(CHANGELIST), {"q": "NEW"})
    assert [r.pk for r in search.context["cl"].result_list] == [row.pk]
    delete = reverse("admin:compliance_categorydeclaration_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not CategoryDeclaration.objects.exists()
    records = AuditRecord.objects.filter(action__startswith="category.").order_by("seq")
    assert [(r.action, r.actor_id, r.before, r.after) for r in records] == [
        (
            "category.declared",
            admin.pk,
            None,
            {"model": "PACK-NEW", "category": "ev", "note": "Scooters"},
        ),
        (
            "category.changed",
            admin.pk,
            {"category": "ev", "note": "Scooters"},
            {"category": "industrial", "note": "Storage"},
        ),
        (
            "category.undeclared",
            admin.pk,
            {"model": "PACK-NEW", "category": "industrial", "note": "Storage"},
            None,
        ),
    ]


def test_an_auditor_reads_the_admin_and_changes_nothing(client, make_user):
    row = categories.category_declare(model="PACK-A", category="ev", actor=None)
    client.force_login(make_user("auditor"))
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert (
        client.get(reverse("admin:compliance_categorydeclaration_add")).status_code
        == 403
    )
    change = reverse("admin:compliance_categorydeclaration_change", args=[row.pk])
    assert client.post(change, {"category": "portable"}).status_code == 403
    delete = reverse("admin:compliance_categorydeclaration_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert row.category == "ev"


def test_the_demo_declares_its_pack_models_once(make_user):
    make_user("admin", username="admin")
    lines: list[str] = []
    demo.seed(lines.append)
    demo.seed(lines.append)
    declared = dict(CategoryDeclaration.objects.values_list("model", "category"))
    assert declared == {
        "PACK-LFP-48V-100AH": "industrial",
        "PACK-LFP-51V-280AH": "industrial",
        "PACK-NMC-72V-60AH": "ev",
    }
    # Every demo pack model, and only those: cells and modules stay undeclared.
    packs = {model for model, spec in PRODUCTS.items() if spec["kind"] == "pack"}
    assert set(declared) == packs
    assert [line for line in lines if "categor" in line] == [
        "compliance: 3 product categories declared",
        "compliance: categories already declared",
    ]
    assert AuditRecord.objects.filter(action="category.declared").count() == 3


def test_the_demo_leaves_an_admins_change_alone(make_user):
    admin = make_user("admin", username="admin")
    categories.category_declare(
        model="PACK-NMC-72V-60AH", category="portable", actor=admin
    )
    demo.seed(lambda line: None)
    assert CategoryDeclaration.objects.get(model="PACK-NMC-72V-60AH").category == (
        "portable"
    )
    assert CategoryDeclaration.objects.count() == 3


def test_the_figures_take_a_fixed_number_of_queries(fleet, django_assert_num_queries):
    # Per period read: first dispatch, end of life and recycling (each grouped
    # in the database), end of life of the packs recycled (none asked when
    # none was), the passports, their categories. FY 2026-27 (6) reads one
    # basis year too (portable: 2023-24, nothing recycled: 5).
    with django_assert_num_queries(11):
        figures = epr.figures(fy_period("2026-27"))
    assert figures == FY_2026_27
