"""The plant's headline figures (``/api/dashboard/summary``): Planned, Built,
Yield for the current shift, today and this week, and what is on Hold now.

Definitions (docs/dashboards.md has them with a worked example):

* **Windows**, all UTC, [start, end): the *shift* is the plant's current shift
  (the calendar of its first active line: ``lines.selectors.plant_shift_window``);
  *today* is the UTC calendar day; the *week* starts Monday 00:00 UTC (ISO).
* **Planned**: the quantity of work orders, not cancelled, whose planned end
  falls in the window (what is due in it).
* **Built**: the quantity of work orders completed in the window.
* **Yield** (first-pass yield, docs/metrics.md): of the passports whose
  first QA result (``qa_passed`` or ``qa_failed``) occurred in the window, the
  share that passed, as a percentage rounded half up to one decimal; null
  without QA results. A unit that failed and passed on retest counts as failed.
* **Line yield**: good ÷ (good + rejected) pieces the lines' machines reported
  (OEE's Quality), from the lines' OEE snapshots (one per line and shift, kept
  by beat) of the shifts that start in the window; null when none.
* **Hold** (now, not per window): stages of open work orders on hold,
  inventory items in stock on Hold, passports on hold.

Cost: one statement for every figure when computed (``bpmos.totals``: each
app's one-row aggregate, united), whatever the size of the plant, and one for
the shift's calendar; nothing scans readings. Served from read models, one
per part (``readmodels.PLAN``, ``FIRST_PASS``, ``PIECES``: keyed by the three
windows and kept until the first of them ends; ``HOLDS``; the shift from
``CALENDAR``), read from the cache together: no query while nothing changed,
then the parts a write dropped, in that one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.utils import timezone

from bpmos.dashboards import readmodels
from bpmos.totals import totals_get, totals_get_compiled
from inventory import selectors as inventory_selectors
from lines import oee
from lines import selectors as line_selectors
from lines.models import Line
from passports import selectors as passport_selectors
from runbooks import selectors as runbook_selectors

WINDOWS = ("shift", "today", "week")


@dataclass(frozen=True)
class WindowFigures:
    """Planned, Built and Yield over one window."""

    start: datetime
    end: datetime
    planned: int
    built: int
    qa_tested: int
    qa_passed: int
    yield_percent: Decimal | None
    good: int
    rejected: int
    line_yield_percent: Decimal | None


@dataclass(frozen=True)
class HoldFigures:
    """What is on hold now, per register."""

    work_order_stages: int
    inventory_items: int
    passports: int

    @property
    def total(self) -> int:
        return self.work_order_stages + self.inventory_items + self.passports


@dataclass(frozen=True)
class Summary:
    as_of: datetime
    shift: WindowFigures
    today: WindowFigures
    week: WindowFigures
    hold: HoldFigures


def share_percent(part: int, whole: int) -> Decimal | None:
    """part ÷ whole as a percentage (one decimal, half up); None for 0 ÷ 0."""
    return oee.percent(Fraction(part, whole)) if whole else None


def current_shift(now: datetime) -> line_selectors.CurrentShift | None:
    """The first active line's shift holding ``now`` (None: no active line),
    from ``readmodels.CALENDAR``: one query when a line changed or the shift
    it had ended, none otherwise."""

    def compute():
        shift = line_selectors.current_shift(now=now)
        return shift, None if shift is None else shift.end

    return readmodels.CALENDAR.get(
        "current-shift",
        compute,
        valid=lambda shift: shift is None or shift.start <= now < shift.end,
    )


def plant_shift_window(now: datetime) -> tuple[datetime, datetime]:
    """The plant's current shift (``lines.selectors.plant_shift_window``:
    the first active line's calendar, else the default one)."""
    shift = current_shift(now)
    if shift is None:
        return oee.shift_window(Line(), now)
    return shift.start, shift.end


def summary_windows(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    """The shift, today and this week around ``now`` (the shift: one query at
    most)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    week = day - timedelta(days=day.weekday())
    return {
        "shift": plant_shift_window(now),
        "today": (day, day + timedelta(days=1)),
        "week": (week, week + timedelta(days=7)),
    }


def summary_get(*, now: datetime | None = None) -> Summary:
    """The summary at ``now`` (default: the current time). Each part comes
    from its read model while nothing it counts changed and its windows hold
    ``now``; the parts a write dropped are computed together, in one
    statement (``bpmos.totals``), and the parts are read from the cache and
    stored in one round trip each."""
    now = now or timezone.now()
    windows = summary_windows(now)
    key = ":".join(
        f"{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}" for start, end in windows.values()
    )
    until = min(end for _, end in windows.values())

    def valid(_found) -> bool:
        return all(readmodels.in_window(s, e, now) for s, e in windows.values())

    parts = readmodels.get_together(
        {
            "plan": (readmodels.PLAN, key, valid),
            "first_pass": (readmodels.FIRST_PASS, key, valid),
            "pieces": (readmodels.PIECES, key, valid),
            "hold": (readmodels.HOLDS, "hold", None),
        },
        lambda missing: summary_parts(windows, missing, until=until),
    )
    plan, first_pass, pieces = parts["plan"], parts["first_pass"], parts["pieces"]
    figures = {
        name: WindowFigures(
            start=start,
            end=end,
            planned=plan[name].planned,
            built=plan[name].built,
            qa_tested=first_pass[name].tested,
            qa_passed=first_pass[name].passed,
            yield_percent=share_percent(
                first_pass[name].passed, first_pass[name].tested
            ),
            good=pieces[name].good,
            rejected=pieces[name].reject,
            line_yield_percent=share_percent(
                pieces[name].good, pieces[name].good + pieces[name].reject
            ),
        )
        for name, (start, end) in windows.items()
    }
    return Summary(
        as_of=now,
        shift=figures["shift"],
        today=figures["today"],
        week=figures["week"],
        hold=parts["hold"],
    )


def summary_parts(
    windows: dict[str, tuple[datetime, datetime]],
    names: set[str],
    *,
    until: datetime,
) -> dict[str, tuple[object, datetime | None]]:
    """The summary's parts ``names`` (of "plan", "first_pass", "pieces",
    "hold") over ``windows``, each with the time it stops being right (the
    windowed parts: ``until``; the holds: only a write changes them). One
    statement, however many parts (``bpmos.totals``)."""

    def make():
        totals = {}
        if "plan" in names:
            totals["plan"] = runbook_selectors.work_order_plan_and_built_totals(
                windows=windows
            )
        if "first_pass" in names:
            totals["first_pass"] = passport_selectors.first_pass_totals(windows=windows)
        if "pieces" in names:
            totals["pieces"] = line_selectors.snapshot_piece_totals(windows=windows)
        if "hold" in names:
            totals.update({name: hold() for name, hold in HOLD_TOTALS.items()})
        return totals

    # The statement depends on the parts and the windows only (compiled once
    # per shift's windows: bpmos.totals).
    shape = ("summary", tuple(sorted(names)), tuple(windows.items()))
    found = totals_get_compiled(shape, make)
    parts = {
        name: (found[name], until)
        for name in ("plan", "first_pass", "pieces")
        if name in names
    }
    if "hold" in names:
        parts["hold"] = (
            HoldFigures(
                work_order_stages=found["hold_stages"],
                inventory_items=found["hold_items"],
                passports=found["hold_passports"],
            ),
            None,
        )
    return parts


# The three registers' holds (``hold_figures``), each ``Totals`` made when read.
HOLD_TOTALS = {
    "hold_stages": runbook_selectors.work_order_stage_hold_totals,
    "hold_items": inventory_selectors.item_on_hold_totals,
    "hold_passports": passport_selectors.passport_hold_totals,
}


def hold_figures() -> HoldFigures:
    """What is on hold now, from the database: the three registers' counts in
    one statement."""
    found = totals_get({name: make() for name, make in HOLD_TOTALS.items()})
    return HoldFigures(
        work_order_stages=found["hold_stages"],
        inventory_items=found["hold_items"],
        passports=found["hold_passports"],
    )
