"""Breakdowns for the dashboards' charts (``/api/dashboard/distributions``).

* **Stage Mix**: work in progress per stage of every active runbook
  (``lines.wip``: in progress, waiting, on hold, over work orders in progress),
  with each runbook's bottleneck flagged.
* **Custody Mix**: batteries as units (a pack counts once with its modules and
  cells) per custodian kind, every kind in chain order.
* **Inventory by status**: items in stock per status (Good, Hold, Blocked).

Cost: three queries when computed, whatever the size of the plant; each
breakdown is served from its read model (``readmodels.STAGE_WIP``,
``CUSTODY``, ``STOCK``) until a write changes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpmos.dashboards import readmodels
from inventory import selectors as inventory_selectors
from inventory.models import ItemStatus
from lines import wip
from passports import selectors as passport_selectors
from passports.models import CustodianKind


@dataclass(frozen=True)
class CustodyShare:
    kind: str  # display label, "Manufacturer"
    count: int


@dataclass(frozen=True)
class StatusShare:
    status: str  # display label, "Hold"
    count: int


@dataclass(frozen=True)
class Distributions:
    stage_mix: list[wip.StageWip]
    custody_mix: list[CustodyShare]
    inventory_by_status: list[StatusShare]


def stage_wip_list() -> list[wip.StageWip]:
    """WIP per stage of every active runbook (``lines.wip``), from its read
    model (``readmodels.STAGE_WIP``) while no work order, stage or runbook
    changed; also the planner's and plant head's bottleneck cards."""
    return readmodels.STAGE_WIP.get("stages", lambda: (wip.stage_wip_list(), None))


def distributions_get() -> Distributions:
    """The three breakdowns, as they are now; each from its read model while
    nothing it counts changed (one query each to compute it again)."""
    custody = readmodels.CUSTODY.get(
        "custody", lambda: (passport_selectors.custody_mix(), None)
    )
    stock = readmodels.STOCK.get(
        "stock", lambda: (inventory_selectors.item_status_counts(), None)
    )
    return Distributions(
        stage_mix=stage_wip_list(),
        custody_mix=[
            CustodyShare(kind=label, count=custody[value])
            for value, label in CustodianKind.choices
        ],
        inventory_by_status=[
            StatusShare(status=label, count=stock[value])
            for value, label in ItemStatus.choices
        ],
    )
