"""The control tower: where every runbook stands, computed, never stored.

Everything here is read from the runbook's *active* work orders (planned or in
progress), their stages, the runbook's gates and its unresolved exceptions
(open or acknowledged). Nothing is written; nothing is cached.

A work order's **current stage** is its first stage (by position) that is not
done.

**Status** (the contract's enum), first rule that matches:

1. ``Blocked`` when any of
   a. an unresolved exception that halts (flagged blocking, or Critical) is
      linked to the runbook;
   b. a Locked gate sits on a stage that is some active work order's current
      stage;
   c. a stage of an active work order is on Hold.
2. ``Degraded`` when any of
   a. an unresolved exception that does not halt is linked to the runbook;
   b. a Closed gate sits on some active work order's current stage;
   c. a stage of an active work order that is not done is past its
      ``planned_end`` (late; planned stages count: not started in time is late).
3. ``Running`` when a stage of an active work order is in progress.
4. ``Healthy`` when the runbook has active work orders (all waiting to start).
5. ``Idle`` otherwise.

**Block reason** (only when Blocked), by precedence exception > locked gate >
hold: an exception is a person's report with a title and a severity and says the
most; a locked gate names the interlock; a hold is usually the consequence of one
of the other two. Within a kind the most severe exception (then the oldest), the
lowest-positioned stage (then the gate with the lowest id), the lowest-positioned
held stage:

* ``"<exception type label>: <title>"`` (e.g. "Quality Failure: Seal leak");
* ``"Gate Interlock: <gate reason, else its condition>"``;
* ``"Stage Hold: <hold reason, else the stage label>"``.

**Current stage** (``Stage.label``, "S5 Module Assembly"): when Blocked, the stage
the block reason names (the exception's stage, the locked gate's stage, the held
stage); otherwise, or when the blocking exception names no stage, the stage with
the most work-order stages in progress (ties: lowest position); else the
lowest-positioned current stage of the active work orders; else null.

**Progress**: done work-order stages over all stages of active work orders, as a
whole percent rounded down (100 only when all are done); 0 with none.

**Last update**: the latest of the runbook's ``updated_at``, any of its work
orders' ``updated_at`` (completed and cancelled too), its active work orders'
stages' ``updated_at``, its gates' ``changed_at`` and any linked exception's
``updated_at`` (resolved too).

**Stage detail** status, over the stage's work-order stages of active work orders:
``Hold`` if any is held, else ``In Progress`` if any is in progress, else
``Completed`` if every active work order has it done (and there is at least one),
else ``Pending`` (also with no active work orders). Its gate is the most
restrictive of the stage's gates (Locked > Closed > Open; ties: lowest id), null
without gates; its exception the most severe unresolved one on the stage (ties:
oldest), null without.

Cost: a fixed number of queries whatever the number of runbooks, stages, gates,
work orders or exceptions (see ``_load``); everything else is Python over the
rows fetched.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    Min,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from bpmos.errors import NotFound
from exceptions import selectors as exception_selectors
from exceptions.models import ExceptionType, Severity
from passports import selectors as passport_selectors
from runbooks import work_order_counts
from runbooks.models import (
    Gate,
    GateStatus,
    GateType,
    Runbook,
    RunbookKind,
    Stage,
    StageStatus,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)

ACTIVE_WORK_ORDER = (WorkOrderStatus.PLANNED, WorkOrderStatus.IN_PROGRESS)


class RunbookHealth(StrEnum):
    """A runbook's computed status, spelled as the control UI shows it."""

    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    BLOCKED = "Blocked"
    IDLE = "Idle"
    RUNNING = "Running"


class StageState(StrEnum):
    """A template stage's status aggregated over active work orders."""

    PENDING = "Pending"
    IN_PROGRESS = "In Progress"
    HOLD = "Hold"
    COMPLETED = "Completed"


# Most restrictive first.
_GATE_RANK = {GateStatus.LOCKED: 0, GateStatus.CLOSED: 1, GateStatus.OPEN: 2}


# --- what the endpoints receive ----------------------------------------------------


@dataclass(frozen=True)
class GateView:
    """A gate as the control UI shows it (labels, not stored values)."""

    id: int
    status: str  # "Open" | "Closed" | "Locked"
    type: str  # "Validation", ...
    condition: str
    reason: str


@dataclass(frozen=True)
class StageExceptionView:
    """The most severe unresolved exception on a stage."""

    id: str  # "EX-001"
    type: str  # "Quality Failure"
    severity: str  # "Critical"


@dataclass(frozen=True)
class StageDetail:
    """Payload B: one template stage with its aggregated status."""

    id: str  # stage slug, "mfg-05"
    name: str  # "Module Assembly (S5)"
    status: StageState
    gate: GateView | None
    exception: StageExceptionView | None


@dataclass(frozen=True)
class RunbookSummary:
    """Payload A, plus progress."""

    id: str  # runbook slug, "manufacturing"
    title: str
    status: RunbookHealth
    current_stage: str | None
    block_reason: str | None
    roles: list[str]
    last_update: datetime
    progress: int


@dataclass(frozen=True)
class WorkOrderCounts:
    planned: int = 0
    in_progress: int = 0
    completed: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class RunbookDetail:
    """A runbook summary with its template facts and work-order counts.

    ``custody`` and ``warranty`` are the contract's "current custody and warranty
    context": read from the battery passports of the lots of the runbook's work
    orders (any status), by ``passports.selectors``; None when those lots have
    no passports (so a runbook of any kind gets them once its lots do).
    """

    summary: RunbookSummary
    kind: str  # label, "Manufacturing"
    description: str
    sequential: bool
    stage_count: int
    work_orders: WorkOrderCounts
    custody: passport_selectors.CustodyContext | None = None
    warranty: passport_selectors.WarrantyContext | None = None


# --- loading -------------------------------------------------------------------


@dataclass
class _Activity:
    """A runbook's active work orders' stages, as aggregates (no stage row).

    ``work_orders``: the active work orders that have stages; ``current``: the
    template stages that are some active work order's current stage;
    ``statuses``: per template stage, its active work-order stages by status;
    ``late``: whether a stage not done is past its planned end; ``first_hold``:
    the held stage first by (position, work order), as ``(position, work
    order id, stage id, hold reason)``.
    """

    work_orders: int = 0
    current: set[int] = field(default_factory=set)
    statuses: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    late: bool = False
    first_hold: tuple[int, int, int, str] | None = None


@dataclass
class _Snapshot:
    """Everything the computations read, fetched in bulk."""

    runbooks: list[Runbook]
    stages: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    gates: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    # runbook id -> its active work orders' stages, aggregated
    activity: dict[int, _Activity] = field(
        default_factory=lambda: defaultdict(_Activity)
    )
    exceptions: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    exception_changes: dict[int, datetime] = field(default_factory=dict)
    # runbook id -> the latest ``updated_at`` of its active work orders' stages
    stage_changes: dict[int, datetime] = field(default_factory=dict)


def _load(
    runbooks: list[Runbook], *, now: datetime, with_changes: bool = True
) -> _Snapshot:
    """Fetch stages, gates, active work-order stages and unresolved exceptions.

    Five queries (six ``with_changes``), whatever the sizes involved. The
    runbooks are passed in already fetched, annotated with ``last_work_order``.
    The active work orders' stages come aggregated by the database (per
    template stage, status and position; late, the latest change, the first
    held work order) and each active work order with its current stage and
    its stages' latest change: a few dozen rows, not the thousands of stage
    rows (and their timestamps) a runbook's active work orders have, which
    were most of the control tower's time in Python.
    """
    snapshot = _Snapshot(runbooks=runbooks)
    ids = [runbook.pk for runbook in runbooks]
    if not ids:
        return snapshot
    runbook_of_stage: dict[int, int] = {}
    for row in (
        Stage.objects.filter(runbook_id__in=ids)
        .order_by("runbook_id", "position")
        .values_list("id", "runbook_id", "slug", "code", "name", "position", named=True)
    ):
        snapshot.stages[row.runbook_id].append(row)
        runbook_of_stage[row.id] = row.runbook_id
    for row in (
        Gate.objects.filter(stage__runbook_id__in=ids)
        .order_by("id")
        .values_list(
            "id",
            "stage_id",
            "type",
            "condition",
            "status",
            "reason",
            "changed_at",
            named=True,
        )
    ):
        snapshot.gates[row.stage_id].append(row)
    # The active work orders first, then their stages by the ids: joined in
    # one statement, the planner may hash every stage the plant ever ran
    # (a sequential scan that grows with the plant) to keep a few thousand.
    # (Each work order's latest stage change and current stage by its own
    # stages' index, not a join the planner may hash over every stage.)
    stages_of = WorkOrderStage.objects.filter(work_order=OuterRef("pk")).order_by()
    last_stage_change = Subquery(
        stages_of.order_by("-updated_at").values("updated_at")[:1]
    )
    current_stage = Subquery(
        stages_of.exclude(status=StageStatus.DONE)
        .order_by("position")
        .values("stage_id")[:1]
    )
    active: list[int] = []
    for work_order_id, runbook_id, last, current in (
        WorkOrder.objects.filter(runbook_id__in=ids, status__in=ACTIVE_WORK_ORDER)
        .order_by()
        .annotate(last=last_stage_change, current=current_stage)
        .values_list("id", "runbook_id", "last", "current")
    ):
        active.append(work_order_id)
        if last is None:  # no stages: not counted, as no stage row of it is
            continue
        activity = snapshot.activity[runbook_id]
        activity.work_orders += 1
        if current is not None:
            activity.current.add(current)
        known = snapshot.stage_changes.get(runbook_id)
        if known is None or last > known:
            snapshot.stage_changes[runbook_id] = last
    if not active:
        return _with_exceptions(snapshot, ids, with_changes=with_changes)
    late = Q(planned_end__lt=now) & ~Q(status=StageStatus.DONE)
    # A held stage's reason is part of its group (other statuses group on ""),
    # so the first held row by (position, work order) is the first of the
    # groups by (position, lowest work order).
    reason = Case(
        When(status=StageStatus.HOLD, then=F("hold_reason")),
        default=Value(""),
        output_field=CharField(),
    )
    for row in (
        WorkOrderStage.objects.filter(work_order_id__in=active)
        .annotate(reason=reason)
        .order_by()
        .values("stage_id", "status", "position", "reason")
        .annotate(
            n=Count("id"),
            late=Count("id", filter=late),
            first_work_order=Min("work_order_id"),
        )
        .values_list(
            "stage_id",
            "status",
            "position",
            "reason",
            "n",
            "late",
            "first_work_order",
            named=True,
        )
    ):
        activity = snapshot.activity[runbook_of_stage[row.stage_id]]
        activity.statuses[row.stage_id][row.status] += row.n
        activity.late = activity.late or row.late > 0
        if row.status == StageStatus.HOLD:
            hold = (row.position, row.first_work_order, row.stage_id, row.reason)
            if activity.first_hold is None or hold[:2] < activity.first_hold[:2]:
                activity.first_hold = hold
    return _with_exceptions(snapshot, ids, with_changes=with_changes)


def _with_exceptions(
    snapshot: _Snapshot, ids: list[int], *, with_changes: bool
) -> _Snapshot:
    for row in exception_selectors.exception_open_rows(runbook_ids=ids):
        snapshot.exceptions[row.linked_runbook_id].append(row)
    if with_changes:
        snapshot.exception_changes = (
            exception_selectors.exception_last_change_by_runbook(runbook_ids=ids)
        )
    return snapshot


def _runbooks():
    """Runbooks with ``last_work_order``, their work orders' latest
    ``updated_at``: one descent of the (runbook, updated_at) index per runbook,
    not an aggregate over every work order the runbook ever had."""
    latest = (
        WorkOrder.objects.filter(runbook=OuterRef("pk"))
        .order_by("-updated_at")
        .values("updated_at")[:1]
    )
    return Runbook.objects.annotate(last_work_order=Subquery(latest))


def _runbook_or_404(slug: str, *, with_changes: bool = True) -> Runbook:
    runbooks = _runbooks() if with_changes else Runbook.objects.all()
    runbook = runbooks.filter(slug=slug).first()
    if runbook is None:
        raise NotFound(f"There is no runbook {slug!r}.")
    return runbook


# --- computing -----------------------------------------------------------------


def _label(stage) -> str:
    return f"{stage.code} {stage.name}"


def _exception_code(pk: int) -> str:
    return f"EX-{pk:03d}"


def _summarise(runbook: Runbook, snapshot: _Snapshot, now: datetime) -> RunbookSummary:
    stages = snapshot.stages[runbook.pk]
    stage_by_id = {stage.id: stage for stage in stages}
    activity = snapshot.activity.get(runbook.pk) or _Activity()
    current_stage_ids = activity.current
    totals: Counter = Counter()
    for counts in activity.statuses.values():
        totals.update(counts)
    exceptions = snapshot.exceptions.get(runbook.pk, [])

    def gates_on(stage_ids, status):
        return [
            gate
            for stage in stages
            if stage.id in stage_ids
            for gate in snapshot.gates.get(stage.id, [])
            if gate.status == status
        ]

    halting = [row for row in exceptions if row.halts]  # already most severe first
    locked = gates_on(current_stage_ids, GateStatus.LOCKED)  # by position, then id
    held = activity.first_hold  # first by position, then work order

    status: RunbookHealth
    block_reason: str | None = None
    blocked_stage_id: int | None = None
    if halting or locked or held:
        status = RunbookHealth.BLOCKED
        if halting:
            exc = halting[0]
            block_reason = f"{ExceptionType(exc.type).label}: {exc.title}"
            blocked_stage_id = exc.linked_stage_id
        elif locked:
            gate = locked[0]
            block_reason = f"Gate Interlock: {gate.reason or gate.condition}"
            blocked_stage_id = gate.stage_id
        else:
            _, _, blocked_stage_id, hold_reason = held
            block_reason = "Stage Hold: " + (
                hold_reason or _label(stage_by_id[blocked_stage_id])
            )
    elif exceptions or gates_on(current_stage_ids, GateStatus.CLOSED) or activity.late:
        status = RunbookHealth.DEGRADED
    elif totals[StageStatus.IN_PROGRESS]:
        status = RunbookHealth.RUNNING
    elif activity.work_orders:
        status = RunbookHealth.HEALTHY
    else:
        status = RunbookHealth.IDLE

    current_stage = stage_by_id.get(blocked_stage_id) if blocked_stage_id else None
    if current_stage is None:
        running = Counter(
            {
                stage_id: counts[StageStatus.IN_PROGRESS]
                for stage_id, counts in activity.statuses.items()
                if counts[StageStatus.IN_PROGRESS]
            }
        )
        if running:
            current_stage = min(
                (stage_by_id[stage_id] for stage_id in running),
                key=lambda stage: (-running[stage.id], stage.position),
            )
        elif current_stage_ids:
            current_stage = min(
                (stage_by_id[stage_id] for stage_id in current_stage_ids),
                key=lambda stage: stage.position,
            )

    all_stages = sum(totals.values())
    progress = totals[StageStatus.DONE] * 100 // all_stages if all_stages else 0

    changes = [
        runbook.updated_at,
        getattr(runbook, "last_work_order", None),
        snapshot.exception_changes.get(runbook.pk),
        snapshot.stage_changes.get(runbook.pk),
        *(
            gate.changed_at
            for stage in stages
            for gate in snapshot.gates.get(stage.id, [])
        ),
    ]
    return RunbookSummary(
        id=runbook.slug,
        title=runbook.title,
        status=status,
        current_stage=_label(current_stage) if current_stage else None,
        block_reason=block_reason,
        roles=list(runbook.roles or []),
        last_update=max(change for change in changes if change is not None),
        progress=progress,
    )


def _stage_detail(stage, snapshot: _Snapshot, runbook_id: int) -> StageDetail:
    activity = snapshot.activity.get(runbook_id) or _Activity()
    statuses = activity.statuses.get(stage.id) or Counter()
    if statuses[StageStatus.HOLD]:
        state = StageState.HOLD
    elif statuses[StageStatus.IN_PROGRESS]:
        state = StageState.IN_PROGRESS
    elif activity.work_orders and statuses[StageStatus.DONE] == activity.work_orders:
        state = StageState.COMPLETED
    else:
        state = StageState.PENDING

    gates = snapshot.gates.get(stage.id, [])
    gate = min(gates, key=lambda g: (_GATE_RANK[g.status], g.id), default=None)
    exception = next(
        (
            row
            for row in snapshot.exceptions.get(runbook_id, [])
            if row.linked_stage_id == stage.id
        ),
        None,
    )  # rows come most severe first, then oldest
    return StageDetail(
        id=stage.slug,
        name=f"{stage.name} ({stage.code})",
        status=state,
        gate=GateView(
            id=gate.id,
            status=GateStatus(gate.status).label,
            type=GateType(gate.type).label,
            condition=gate.condition,
            reason=gate.reason,
        )
        if gate
        else None,
        exception=StageExceptionView(
            id=_exception_code(exception.id),
            type=ExceptionType(exception.type).label,
            severity=Severity(exception.severity).label,
        )
        if exception
        else None,
    )


# --- the selectors the API calls -------------------------------------------------


def runbook_summary_list(*, now: datetime | None = None) -> list[RunbookSummary]:
    """Payload A for every active runbook, ordered by id (slug).

    Seven queries in all, however many runbooks, work orders or exceptions.
    """
    now = now or timezone.now()
    runbooks = list(_runbooks().filter(is_active=True).order_by("slug"))
    snapshot = _load(runbooks, now=now)
    return [_summarise(runbook, snapshot, now) for runbook in runbooks]


def runbook_detail_get(*, slug: str, now: datetime | None = None) -> RunbookDetail:
    """One runbook (active or not) with its summary, template facts and counts.

    Raises ``NotFound`` for an unknown slug. Eight queries, ten when the
    runbook has work orders (the custody and warranty context of their lots).
    """
    now = now or timezone.now()
    runbook = _runbook_or_404(slug)
    snapshot = _load([runbook], now=now)
    counts = _work_order_counts(runbook)
    # The lots stay in the database (a subquery the passports' queries join
    # on): a plant-year's runbook has tens of thousands of them.
    lots = (
        WorkOrder.objects.filter(runbook=runbook).values("lot_no")
        if counts != WorkOrderCounts()
        else None
    )
    return RunbookDetail(
        summary=_summarise(runbook, snapshot, now),
        kind=RunbookKind(runbook.kind).label,
        description=runbook.description,
        sequential=runbook.sequential,
        stage_count=len(snapshot.stages[runbook.pk]),
        work_orders=counts,
        custody=(
            passport_selectors.custody_context(lots=lots) if lots is not None else None
        ),
        warranty=(
            passport_selectors.warranty_context(lots=lots, now=now)
            if lots is not None
            else None
        ),
    )


def _work_order_counts(runbook: Runbook) -> WorkOrderCounts:
    """The runbook's work orders by status: one query of the row the
    runbooks' services keep (``runbooks.work_order_counts``), not a count of
    its work orders (50,000 over a plant-year)."""
    planned, in_progress, completed, cancelled = work_order_counts.counts_of(runbook.pk)
    return WorkOrderCounts(
        planned=planned,
        in_progress=in_progress,
        completed=completed,
        cancelled=cancelled,
    )


def runbook_stage_list(*, slug: str) -> list[StageDetail]:
    """Payload B for each stage of a runbook, in order. Six queries."""
    runbook = _runbook_or_404(slug, with_changes=False)
    snapshot = _load([runbook], now=timezone.now(), with_changes=False)
    return [
        _stage_detail(stage, snapshot, runbook.pk)
        for stage in snapshot.stages[runbook.pk]
    ]
