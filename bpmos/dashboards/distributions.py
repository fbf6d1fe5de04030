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

from bpmos.compiled import statements_get
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
    nothing it counts changed, in one cache round trip; those dropped
    computed again in one query (``bpmos.compiled.statements_get``)."""
    parts = readmodels.get_together(
        {
            "stages": (readmodels.STAGE_WIP, "stages", None),
            "custody": (readmodels.CUSTODY, "custody", None),
            "stock": (readmodels.STOCK, "stock", None),
        },
        _computed,
    )
    custody, stock = parts["custody"], parts["stock"]
    return Distributions(
        stage_mix=parts["stages"],
        custody_mix=[
            CustodyShare(kind=label, count=custody[value])
            for value, label in CustodianKind.choices
        ],
        inventory_by_status=[
            StatusShare(status=label, count=stock[value])
            for value, label in ItemStatus.choices
        ],
    )


# name -> (its statement, its reader): the parts of the distributions.
_PARTS = {
    "stages": (wip.stage_wip_statement, wip.stage_wip_read),
    "custody": (
        passport_selectors.custody_mix_statement,
        passport_selectors.custody_mix_read,
    ),
    "stock": (
        inventory_selectors.item_status_statement,
        inventory_selectors.item_status_read,
    ),
}


def _computed(missing: set[str]) -> dict:
    """The parts ``missing`` (not served), computed in one query: name ->
    (payload, None: only a write changes it)."""
    names = [name for name in _PARTS if name in missing]  # one shape per set
    rows = statements_get({name: _PARTS[name][0]() for name in names})
    return {name: (_PARTS[name][1](rows[name]), None) for name in names}
