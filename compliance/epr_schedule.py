"""The Battery Waste Management Rules' EPR targets, in one table.

Each row says: for this category, from this financial year (and until the
next row of the same category and measure), the producer's obligation is this
percentage, under this provision. ``target_for`` answers "what applies in FY
X"; ``None`` means the schedule sets no target for that year.

Sources, as read (docs/compliance.md keeps the same list, with what each row
rests on):

* BWMR 2022: Battery Waste Management Rules, 2022, S.O. 3984(E), 22 August
  2022 (MoEFCC), Schedule II (EPR targets: collection and minimum recovery of
  battery materials), as amended by the Battery Waste Management (Amendment)
  Rules, 2023 (25 October 2023; Schedule II amended, the EV targets
  replaced), the (Amendment) Rules, 2024 (EPR certificate prices) and the
  (Second Amendment) Rules, 2024 (20 June 2024), which substituted the table
  of rule 4(14): minimum use of domestically recycled materials, by category,
  2027-28 to 2030-31 onwards (portable and EV 5/10/15/20 %, automotive and
  industrial 35/35/40/40 %).
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
# The recycled-content table is rule 4(14), as the Second Amendment Rules 2024
# substituted it (it was never Schedule II's).
RULE_4_14 = "BWMR 2022, rule 4(14) (Second Amendment Rules 2024)"


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
    # --- rule 4(14): minimum use of domestically recycled materials ---------
    + _rows(
        Category.PORTABLE,
        RECYCLED_CONTENT,
        f"{RULE_4_14}, portable",
        [(2027, "5"), (2028, "10"), (2029, "15"), (2030, "20")],
    )
    + _rows(
        Category.INDUSTRIAL,
        RECYCLED_CONTENT,
        f"{RULE_4_14}, industrial",
        [(2027, "35"), (2029, "40")],
    )
    + _rows(
        Category.EV,
        RECYCLED_CONTENT,
        f"{RULE_4_14}, electric vehicle",
        [(2027, "5"), (2028, "10"), (2029, "15"), (2030, "20")],
    )
    + _rows(
        Category.AUTOMOTIVE,
        RECYCLED_CONTENT,
        f"{RULE_4_14}, automotive",
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
