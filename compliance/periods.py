"""Financial years and periods in plant time.

India's financial year runs 1 April to 31 March; BWMR returns are filed per
financial year. Day boundaries are midnight in the plant's time zone
(``BPMOS_PLANT_TIMEZONE``, default Asia/Kolkata), so a pack dispatched at 23:30
IST on 31 March belongs to the year that ends that day even though it is
18:00 UTC. Everything here is pure: no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

_FY = re.compile(r"(?P<start>[0-9]{4})-(?P<end>[0-9]{2})")


def plant_zone() -> ZoneInfo:
    return ZoneInfo(settings.BPMOS_PLANT_TIMEZONE)


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last`` inclusive, in plant time."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("The period ends before it starts.")

    @property
    def start(self) -> datetime:
        """The period's first instant (aware, plant midnight)."""
        return datetime.combine(self.first, time.min, tzinfo=plant_zone())

    @property
    def end(self) -> datetime:
        """The instant after the period (exclusive bound)."""
        return datetime.combine(
            self.last + timedelta(days=1), time.min, tzinfo=plant_zone()
        )

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def financial_year(self) -> str:
        """``"2026-27"`` when the period is exactly one financial year, else ""."""
        fy = fy_of(self.first)
        return fy if fy_period(fy) == self else ""


def fy_label(start_year: int) -> str:
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def fy_parse(label: str) -> int:
    """The starting year of ``"2026-27"``; ValueError for anything else."""
    match = _FY.fullmatch(label) if isinstance(label, str) else None
    if not match:
        raise ValueError('A financial year is written "2026-27" (April to March).')
    start = int(match["start"])
    if (start + 1) % 100 != int(match["end"]):
        raise ValueError(f'"{label}" is not a financial year: 2026-27 follows 2026.')
    if not 2000 <= start <= 2099:
        raise ValueError("Financial years from 2000-01 to 2099-00 are supported.")
    return start


def fy_period(label: str) -> Period:
    start = fy_parse(label)
    return Period(date(start, 4, 1), date(start + 1, 3, 31))


def fy_of(day: date) -> str:
    """The financial year a plant-time day falls in."""
    return fy_label(day.year if day.month >= 4 else day.year - 1)


def fy_current(now: datetime | None = None) -> str:
    from django.utils import timezone

    moment = (now or timezone.now()).astimezone(plant_zone())
    return fy_of(moment.date())


def local_date(at: datetime) -> date:
    """The plant-time day of an instant."""
    return at.astimezone(plant_zone()).date()
