"""The Battery Waste Management Rules' EPR targets, in one table.

Each row says: for this category, from this financial year (and until the
next row of the same category and measure), the producer's obligation is this
percentage, under this provision. ``target_for`` answers "what applies in FY
X"; ``None`` means the schedule sets no target for that year.

Sources, as read (docs/compliance.md keeps the same list):

* BWMR 2022: Battery Waste Management Rules, 2022, G.S.R. 623(E), 22 August
  2022, Schedule II (EPR targets: A collection, B minimum recovery of battery
  materials, C minimum use of domestically recycled materials), as amended by
  G.S.R. 190(E) (14 March 2024) and G.S.R. 1013(E) (2024).
* IEA policy summary "Battery Waste Management Rules 2022" (updated 23
  October 2024) for the EV rows: recovery 70 % (2024-25), 80 % (2025-26), 90 %
  (2026-27 onwards); 70 % collection by 2027-28; domestic recycled content
  5 % in 2027-28 rising to 20 % by 2030-31.

Percentages are of mass (dry weight for recovery). Collection targets are set
against the mass placed on the market in an earlier year (``basis_lag_years``
back); recovery against the mass collected; recycled content against the
material in new batteries. Where the rules' text we read did not give a
category's figure, the row is absent rather than guessed; an amendment is a
change to this table and its test, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from compliance.models import Category

COLLECTION = "collection"
RECOVERY = "recovery"
RECYCLED_CONTENT = "recycled_content"
MEASURES = (COLLECTION, RECOVERY, RECYCLED_CONTENT)

BWMR = "BWMR 2022, Schedule II"


@dataclass(frozen=True)
class Target:
    category: str
    measure: str
    from_fy: int  # starting year of the first FY the row applies to
    percent: Decimal
    citation: str
    basis_lag_years: int = 0  # collection: placed-on-market year this many back


def _rows(category, measure, citation, pairs, lag=0):
    return [
        Target(category, measure, year, Decimal(pct), citation, lag)
        for year, pct in pairs
    ]


SCHEDULE: tuple[Target, ...] = tuple(
    # --- Part A: collection (share of the mass placed on the market) ---------
    _rows(
        Category.PORTABLE,
        COLLECTION,
        f"{BWMR}, Part A (portable)",
        [(2022, "30"), (2023, "40"), (2024, "50"), (2025, "60"), (2026, "70")],
        lag=3,
    )
    + _rows(
        Category.EV,
        COLLECTION,
        f"{BWMR}, Part A (electric vehicle)",
        [(2027, "70")],
        lag=8,
    )
    # --- Part B: minimum recovery of battery materials (dry weight) ----------
    + _rows(
        Category.PORTABLE,
        RECOVERY,
        f"{BWMR}, Part B (portable)",
        [(2024, "70"), (2025, "80"), (2026, "90")],
    )
    + _rows(
        Category.INDUSTRIAL,
        RECOVERY,
        f"{BWMR}, Part B (industrial)",
        [(2024, "70"), (2025, "80"), (2026, "90")],
    )
    + _rows(
        Category.EV,
        RECOVERY,
        f"{BWMR}, Part B (electric vehicle)",
        [(2024, "70"), (2025, "80"), (2026, "90")],
    )
    + _rows(
        Category.AUTOMOTIVE,
        RECOVERY,
        f"{BWMR}, Part B (automotive)",
        [(2022, "55"), (2023, "60")],
    )
    # --- Part C: minimum use of domestically recycled materials --------------
    + _rows(
        Category.PORTABLE,
        RECYCLED_CONTENT,
        f"{BWMR}, Part C (portable)",
        [(2027, "5"), (2028, "10"), (2029, "15"), (2030, "20")],
    )
    + _rows(
        Category.INDUSTRIAL,
        RECYCLED_CONTENT,
        f"{BWMR}, Part C (industrial)",
        [(2027, "5"), (2028, "10"), (2029, "15"), (2030, "20")],
    )
    + _rows(
        Category.EV,
        RECYCLED_CONTENT,
        f"{BWMR}, Part C (electric vehicle)",
        [(2027, "5"), (2028, "10"), (2029, "15"), (2030, "20")],
    )
    + _rows(
        Category.AUTOMOTIVE,
        RECYCLED_CONTENT,
        f"{BWMR}, Part C (automotive)",
        [(2027, "35"), (2029, "40")],
    )
)


def target_for(category: str, measure: str, fy_start_year: int) -> Target | None:
    """The row in force for a category and measure in a financial year."""
    rows = [
        row
        for row in SCHEDULE
        if row.category == category
        and row.measure == measure
        and row.from_fy <= fy_start_year
    ]
    return max(rows, key=lambda row: row.from_fy) if rows else None
