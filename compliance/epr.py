"""EPR figures: mass placed on the market, collected back and recycled, per
BWMR category, against the rules' targets (``compliance.epr_schedule``).

What counts (docs/compliance.md):

* **placed on the market**: a pack whose *first* ``dispatched`` ledger event
  falls in the period (a pack reactivated and dispatched again is counted
  once, in the period of its first dispatch);
* **collected**: a pack whose first ``end_of_life`` event falls in the period,
  or, for a pack recycled with no end-of-life event before, its first
  ``recycled`` event;
* **recycled**: a pack whose first ``recycled`` event falls in the period.

Only packs: cells and modules reach the market inside them, so counting them
too would count the same kilograms twice. Mass is the passport's ``mass_kg``;
a pack without one is counted, listed (``missingMass``) and adds nothing to
the mass, so the return shows the gap in the data instead of hiding it. A
pack's category comes from its model (``compliance.categories``); a model
with no declaration is reported under ``category: null`` ("Undeclared").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Min

from compliance import categories, epr_schedule
from compliance.models import Category, ReturnEvent
from compliance.periods import Period, fy_label, fy_parse, fy_period
from passports.models import EventKind, Kind, Passport, PassportEvent

KG = Decimal("0.001")
PERCENT = Decimal("0.01")


@dataclass(frozen=True)
class PackFact:
    """One pack's event that counts in a period (a return's row)."""

    passport_id: int
    event: str  # ReturnEvent
    occurred_at: datetime
    serial: str
    bpan: str
    model: str
    category: str | None
    chemistry: str
    mass_kg: Decimal | None
    custodian: str


def _first_events(kind: str, period: Period) -> dict[int, datetime]:
    """{pack id: its first ``kind`` event} for the packs whose first such
    event falls in the period (the database keeps only those: HAVING)."""
    rows = (
        PassportEvent.objects.filter(kind=kind, passport__kind=Kind.PACK)
        .values("passport_id")
        .annotate(first=Min("occurred_at"))
        .filter(first__gte=period.start, first__lt=period.end)
        .values_list("passport_id", "first")
    )
    return dict(rows)


def _firsts_in(period: Period) -> dict[str, dict[int, datetime]]:
    """{event: {passport_id: when}} for the packs each event counts in the period."""
    dispatched = _first_events(EventKind.DISPATCHED, period)
    end_of_life = _first_events(EventKind.END_OF_LIFE, period)
    recycled = _first_events(EventKind.RECYCLED, period)
    # A pack recycled with no end-of-life event at all is collected when it is
    # recycled; one with an end-of-life event was collected then (any period).
    ever_ended = set(
        PassportEvent.objects.filter(
            kind=EventKind.END_OF_LIFE, passport_id__in=list(recycled)
        ).values_list("passport_id", flat=True)
    )
    collected = dict(end_of_life)
    for pid, when in recycled.items():
        if pid not in ever_ended:
            collected[pid] = when
    return {
        ReturnEvent.PLACED: dispatched,
        ReturnEvent.COLLECTED: collected,
        ReturnEvent.RECYCLED: recycled,
    }


def pack_facts(period: Period) -> list[PackFact]:
    """Every pack row behind the period's figures: placed, collected, recycled
    (ordered by event, then time, then serial)."""
    firsts = _firsts_in(period)
    ids = set().union(*(set(rows) for rows in firsts.values()))
    passports = {
        row["id"]: row
        for row in Passport.objects.filter(id__in=ids).values(
            "id", "serial", "bpan", "model", "chemistry", "mass_kg", "custodian_name"
        )
    }
    cats = categories.category_map({row["model"] for row in passports.values()})
    facts = []
    for event in (ReturnEvent.PLACED, ReturnEvent.COLLECTED, ReturnEvent.RECYCLED):
        for pid, when in firsts[event].items():
            row = passports[pid]
            facts.append(
                PackFact(
                    passport_id=pid,
                    event=str(event),
                    occurred_at=when,
                    serial=row["serial"],
                    bpan=row["bpan"] or "",
                    model=row["model"],
                    category=cats.get(row["model"]),
                    chemistry=row["chemistry"],
                    mass_kg=row["mass_kg"],
                    custodian=row["custodian_name"],
                )
            )
    order = {ReturnEvent.PLACED: 0, ReturnEvent.COLLECTED: 1, ReturnEvent.RECYCLED: 2}
    facts.sort(key=lambda f: (order[f.event], f.occurred_at, f.serial))
    return facts


@dataclass
class Tally:
    count: int = 0
    mass_kg: Decimal = Decimal("0")
    missing_mass: list[str] = field(default_factory=list)

    def add(self, fact: PackFact) -> None:
        self.count += 1
        if fact.mass_kg is None:
            self.missing_mass.append(fact.serial)
        else:
            self.mass_kg += fact.mass_kg

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "massKg": _kg(self.mass_kg),
            "missingMassCount": len(self.missing_mass),
        }


def _kg(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(KG))


def tallies(facts: list[PackFact]) -> dict[str | None, dict[str, Tally]]:
    """{category: {event: Tally}} over pack facts."""
    out: dict[str | None, dict[str, Tally]] = defaultdict(
        lambda: {event: Tally() for event in ReturnEvent.values}
    )
    for fact in facts:
        out[fact.category][fact.event].add(fact)
    return out


def _basis_tallies(fy_start_year: int) -> dict[str | None, Tally]:
    """{category: Tally} of the packs placed on the market in a financial year."""
    facts = pack_facts(fy_period(fy_label(fy_start_year)))
    return {
        category: by_event[ReturnEvent.PLACED]
        for category, by_event in tallies(
            [f for f in facts if f.event == ReturnEvent.PLACED]
        ).items()
    }


class _Basis:
    """Placed-on-market tallies of earlier years, each year read once per
    ``figures`` call (portable and EV collection may share a basis year)."""

    def __init__(self) -> None:
        self._years: dict[int, dict[str | None, Tally]] = {}

    def placed(self, category: str, fy_start_year: int) -> Tally:
        if fy_start_year < 2000:  # before any financial year we can read
            return Tally()
        if fy_start_year not in self._years:
            self._years[fy_start_year] = _basis_tallies(fy_start_year)
        return self._years[fy_start_year].get(category, Tally())


def _target(row: epr_schedule.Target | None) -> dict | None:
    if row is None:
        return None
    return {"percent": float(row.percent), "citation": row.citation}


def category_figures(
    category: str | None,
    tally: dict[str, Tally],
    fy_start_year: int | None,
    basis: _Basis | None = None,
) -> dict:
    """One category's figures, with the year's targets when the period is a FY."""
    placed, collected, recycled = (
        tally[ReturnEvent.PLACED],
        tally[ReturnEvent.COLLECTED],
        tally[ReturnEvent.RECYCLED],
    )
    out = {
        "category": category,
        "label": categories.category_label(category),
        "placedOnMarket": placed.as_dict(),
        "collected": collected.as_dict(),
        "recycled": recycled.as_dict(),
        "collectionTarget": None,
        "recoveryTarget": None,
        "recycledContentTarget": None,
        "collectionGapKg": None,
        "recoveryGapKg": None,
    }
    if category is None or fy_start_year is None:
        return out
    basis = basis or _Basis()
    collection = epr_schedule.target_for(
        category, epr_schedule.COLLECTION, fy_start_year
    )
    if collection is not None:
        basis_year = fy_start_year - collection.basis_lag_years
        base = (
            placed
            if basis_year == fy_start_year
            else basis.placed(category, basis_year)
        )
        obligation = (base.mass_kg * collection.percent / 100).quantize(KG)
        out["collectionTarget"] = {
            **_target(collection),
            "basisFinancialYear": fy_label(basis_year),
            "basisMassKg": _kg(base.mass_kg),
            "basisCount": base.count,
            # Packs of the basis year without a mass: the obligation is short
            # by their share, and the return says so instead of hiding it.
            "basisMissingMassCount": len(base.missing_mass),
            "obligationKg": _kg(obligation),
        }
        out["collectionGapKg"] = _kg(max(Decimal("0"), obligation - collected.mass_kg))
    recovery = epr_schedule.target_for(category, epr_schedule.RECOVERY, fy_start_year)
    if recovery is not None:
        obligation = (collected.mass_kg * recovery.percent / 100).quantize(KG)
        out["recoveryTarget"] = {**_target(recovery), "obligationKg": _kg(obligation)}
        out["recoveryGapKg"] = _kg(max(Decimal("0"), obligation - recycled.mass_kg))
    out["recycledContentTarget"] = _target(
        epr_schedule.target_for(category, epr_schedule.RECYCLED_CONTENT, fy_start_year)
    )
    return out


def _fy_start(period: Period) -> int | None:
    fy = period.financial_year
    return fy_parse(fy) if fy else None


def period_header(period: Period) -> dict:
    """The period keys every EPR body starts with."""
    return {
        "financialYear": period.financial_year or None,
        "periodStart": period.first.isoformat(),
        "periodEnd": period.last.isoformat(),
        "timezone": str(period.start.tzinfo),
    }


def category_detail(
    period: Period, category: str | None, facts: list[PackFact] | None = None
) -> tuple[dict, list[PackFact]]:
    """One category's figures (``None``: the undeclared models) and the pack
    rows behind them, in ``pack_facts`` order."""
    facts = pack_facts(period) if facts is None else facts
    mine = [f for f in facts if f.category == category]
    row = category_figures(category, tallies(mine)[category], _fy_start(period))
    return row, mine


def figures(period: Period, facts: list[PackFact] | None = None) -> dict:
    """The period's EPR figures per category (every BWMR category, and
    "Undeclared" when any pack's model has no declaration), with targets
    when the period is exactly one financial year."""
    facts = pack_facts(period) if facts is None else facts
    fy_start = _fy_start(period)
    by_category = tallies(facts)
    basis = _Basis()
    rows = [
        category_figures(category, by_category[category], fy_start, basis)
        for category in Category.values
    ]
    if None in by_category:
        rows.append(category_figures(None, by_category[None], fy_start))
    missing = [
        {"serial": f.serial, "event": f.event, "model": f.model}
        for f in facts
        if f.mass_kg is None
    ]
    undeclared = sorted({f.model for f in facts if f.category is None})
    return {
        **period_header(period),
        "categories": rows,
        "missingMass": missing,
        "undeclaredModels": undeclared,
    }
