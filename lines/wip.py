"""Work in progress by stage, the bottleneck, and running versus blocked
operations, from the work orders of production execution (``runbooks``).

Read-only over the runbooks tables (no rule of theirs is needed: only which
work-order stages are in progress, on hold or waiting).

**WIP at a stage**, over work orders in progress (started, not finished):

* ``inProgress``: their stages at it that are in progress;
* ``onHold``: their stages at it that are on hold;
* ``waiting``: work orders whose current stage (first not done) is it and is
  still planned: the work has arrived and waits to start.

Work orders not yet started are backlog, not WIP. ``wip`` is the sum.

**Bottleneck**: the stage with the most WIP (ties: more waiting, then the
earlier stage); none while no stage has WIP. Each runbook has its own; the
plant's is the greatest of those.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber

from bpmos.compiled import rows_get
from runbooks.models import (
    Stage,
    StageStatus,
    WorkOrderStage,
    WorkOrderStatus,
)

# Most operations listed per kind (the counts are always complete).
OPERATIONS_LIMIT = 100


@dataclass
class StageWip:
    """WIP at one template stage."""

    runbook_id: str
    stage_id: str  # slug, "mfg-05"
    stage: str  # "S5 Module Assembly"
    position: int
    in_progress: int = 0
    waiting: int = 0
    on_hold: int = 0
    is_bottleneck: bool = False

    @property
    def wip(self) -> int:
        return self.in_progress + self.waiting + self.on_hold

    def rank(self) -> tuple:
        return (self.wip, self.waiting, -self.position)


def stage_wip_list() -> list[StageWip]:
    """WIP of every stage of every active runbook, by runbook and position.

    One query: the stages with the counts the runbooks' services keep
    (``runbooks.stage_wip``, a row per stage, equal at every commit to the
    count over the work-order stages that ``runbooks.stage_wip.recount``
    makes), compiled once (``bpmos.compiled``).
    """
    return stage_wip_read(rows_get(*stage_wip_statement()))


def stage_wip_statement() -> tuple:
    """``stage_wip_list`` as (shape, make) for ``bpmos.compiled``: a row per
    stage, read by ``stage_wip_read``."""
    return ("stage_wip_list",), lambda: (
        Stage.objects.filter(runbook__is_active=True)
        .order_by("runbook__slug", "position")
        .values(
            "runbook__slug",
            "slug",
            "code",
            "name",
            "position",
            "wip_count__in_progress",
            "wip_count__on_hold",
            "wip_count__waiting",
        )
    )


def stage_wip_read(rows: list[dict]) -> list[StageWip]:
    """``stage_wip_list`` of the rows of ``stage_wip_statement``."""
    stages = [
        StageWip(
            runbook_id=row["runbook__slug"],
            stage_id=row["slug"],
            stage=f"{row['code']} {row['name']}",
            position=row["position"],
            in_progress=row["wip_count__in_progress"] or 0,
            waiting=row["wip_count__waiting"] or 0,
            on_hold=row["wip_count__on_hold"] or 0,
        )
        for row in rows
    ]
    by_runbook: dict[str, list[StageWip]] = defaultdict(list)
    for wip in stages:
        by_runbook[wip.runbook_id].append(wip)
    for group in by_runbook.values():
        top = max(group, key=StageWip.rank)
        top.is_bottleneck = top.wip > 0
    return stages


def bottleneck(stages: list[StageWip]) -> StageWip | None:
    """The plant's bottleneck among ``stages`` (see the module docstring)."""
    candidates = [s for s in stages if s.is_bottleneck]
    return max(candidates, key=StageWip.rank) if candidates else None


@dataclass(frozen=True)
class Operation:
    """A work-order stage being worked (Running) or on hold (Blocked)."""

    id: int
    work_order_id: int
    runbook_id: str
    stage_id: str
    stage: str
    product_code: str
    lot_no: str
    status: str  # "Running" | "Blocked"
    reason: str
    since: datetime | None


@dataclass(frozen=True)
class Operations:
    running_count: int
    blocked_count: int
    running: list[Operation]
    blocked: list[Operation]
    bottleneck: StageWip | None


# What a work-order stage's status is called here.
_LABELS = {StageStatus.IN_PROGRESS: "Running", StageStatus.HOLD: "Blocked"}


def _operations() -> dict[str, tuple[int, list[Operation]]]:
    """Running and blocked operations: status -> (how many, the most recently
    changed ``OPERATIONS_LIMIT`` of them). One query: each status's rows are
    ranked and counted by window functions."""
    by_status = [F("status")]
    newest_first = [F("updated_at").desc(), F("id").desc()]
    listed = (
        WorkOrderStage.objects.filter(
            status__in=list(_LABELS), work_order__status=WorkOrderStatus.IN_PROGRESS
        )
        .annotate(
            rank=Window(RowNumber(), partition_by=by_status, order_by=newest_first),
            total=Window(Count("id"), partition_by=by_status),
        )
        .filter(rank__lte=OPERATIONS_LIMIT)
        .order_by("status", "-updated_at", "-id")
        .values_list(
            "id",
            "status",
            "total",
            "work_order_id",
            "work_order__runbook__slug",
            "stage__slug",
            "stage__code",
            "stage__name",
            "work_order__product_code",
            "work_order__lot_no",
            "hold_reason",
            "actual_start",
            "updated_at",
            named=True,
        )
    )
    counts = dict.fromkeys(_LABELS, 0)
    operations: dict[str, list[Operation]] = {status: [] for status in _LABELS}
    for row in listed:
        counts[row.status] = row.total
        operations[row.status].append(
            Operation(
                id=row.id,
                work_order_id=row.work_order_id,
                runbook_id=row.work_order__runbook__slug,
                stage_id=row.stage__slug,
                stage=f"{row.stage__code} {row.stage__name}",
                product_code=row.work_order__product_code,
                lot_no=row.work_order__lot_no,
                status=_LABELS[row.status],
                reason=row.hold_reason,
                # A running stage since it started; a held one since it was held.
                since=row.actual_start
                if row.status == StageStatus.IN_PROGRESS
                else row.updated_at,
            )
        )
    return {status: (counts[status], operations[status]) for status in _LABELS}


def operations_snapshot() -> Operations:
    """Running versus blocked work-order stages, and the plant's bottleneck."""
    found = _operations()
    running_count, running = found[StageStatus.IN_PROGRESS]
    blocked_count, blocked = found[StageStatus.HOLD]
    return Operations(
        running_count=running_count,
        blocked_count=blocked_count,
        running=running,
        blocked=blocked,
        bottleneck=bottleneck(stage_wip_list()),
    )
