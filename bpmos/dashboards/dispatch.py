"""The dispatch desk's dashboard (``GET /api/dashboard/status``, dispatch
contract): products from the desk's selectors, machines from the lines', and
today's desk moves. It reads both apps, so it lives here rather than in either
(passports never imports lines)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from lines import selectors as line_selectors
from passports.dispatch import selectors as dispatch_selectors


@dataclass(frozen=True)
class MachineCounts:
    """Active machines by current state (display names, every state listed)."""

    total: int
    by_state: dict[str, int]


@dataclass(frozen=True)
class DispatchStatus:
    """What the desk's dashboard shows at ``timestamp``."""

    products: dispatch_selectors.ProductCounts
    machines: MachineCounts
    statistics: dispatch_selectors.DispatchStatistics
    timestamp: datetime


def dispatch_status(*, now: datetime | None = None) -> DispatchStatus:
    """Products live/past/dispatchable/on hold, machines by state, today's
    moves (five queries)."""
    now = now or timezone.now()
    machines = line_selectors.machine_state_counts()
    return DispatchStatus(
        products=dispatch_selectors.product_counts(),
        machines=MachineCounts(total=sum(machines.values()), by_state=machines),
        statistics=dispatch_selectors.dispatch_statistics(now=now),
        timestamp=now,
    )
