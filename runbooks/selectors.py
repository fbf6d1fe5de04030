"""Reads of production execution for the mobile API: work orders, their stages,
assignments, and the stage and work-order metrics (stage issues are exceptions:
``exceptions.selectors``).

Querysets here carry the ``select_related``/``prefetch_related`` their
serializers need, so a list costs a fixed number of queries whatever its length.
(The control tower's computed runbook status is a read model over several apps:
``bpmos.dashboards.controltower``.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from bpmos.compiled import rows_get
from bpmos.errors import NotFound
from bpmos.series import per_bucket
from bpmos.totals import Totals, per_window
from runbooks.models import (
    Runbook,
    StageAssignment,
    StageStatus,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)


# --- runbooks ---------------------------------------------------------------------
def runbook_id_get(*, slug: str) -> int:
    """The primary key of the runbook ``slug``; ``NotFound`` when there is none."""
    pk = Runbook.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if pk is None:
        raise NotFound(f"There is no runbook {slug!r}.")
    return pk


# --- work orders and stages --------------------------------------------------------


def _assignments_prefetch() -> Prefetch:
    return Prefetch(
        "assignments",
        queryset=StageAssignment.objects.select_related("user").order_by(
            "assigned_at", "id"
        ),
    )


# The kept count (bpmos.rowcounts; this app's migration "kept_count") of
# ``work_order_list()``'s rows (every work order).
WORK_ORDERS_COUNTED = "runbooks.work_orders"


def work_order_list() -> QuerySet[WorkOrder]:
    """Every work order with its runbook, newest planned start first."""
    return WorkOrder.objects.select_related("runbook").order_by("-planned_start", "-id")


def work_order_detail_list() -> QuerySet[WorkOrder]:
    """Work orders with their stages (in runbook order) and each stage's assignees."""
    return work_order_list().prefetch_related(
        Prefetch(
            "stages",
            queryset=WorkOrderStage.objects.select_related("stage")
            .prefetch_related(_assignments_prefetch())
            .order_by("position"),
        )
    )


def work_order_get(*, work_order_id: int) -> WorkOrder:
    """One work order with its stages and their assignees; 404 if there is none."""
    work_order = work_order_detail_list().filter(pk=work_order_id).first()
    if work_order is None:
        raise NotFound(f"Work order {work_order_id} does not exist.")
    return work_order


def stage_list() -> QuerySet[WorkOrderStage]:
    """Every work-order stage with its template code and assignees."""
    return (
        WorkOrderStage.objects.select_related("stage")
        .prefetch_related(_assignments_prefetch())
        .order_by("work_order_id", "position")
    )


def work_order_stage_list(*, work_order_id: int) -> QuerySet[WorkOrderStage]:
    """The stages of one work order in runbook order; 404 if it does not exist."""
    if not WorkOrder.objects.filter(pk=work_order_id).exists():
        raise NotFound(f"Work order {work_order_id} does not exist.")
    return stage_list().filter(work_order_id=work_order_id)


def stage_get(*, stage_id: int) -> WorkOrderStage:
    """One work-order stage with its assignees; 404 if there is none."""
    stage = stage_list().filter(pk=stage_id).first()
    if stage is None:
        raise NotFound(f"Stage {stage_id} does not exist.")
    return stage


def stage_assignment_list(*, stage_id: int) -> QuerySet[StageAssignment]:
    """Who is assigned to one stage, earliest first; 404 if the stage does not exist."""
    if not WorkOrderStage.objects.filter(pk=stage_id).exists():
        raise NotFound(f"Stage {stage_id} does not exist.")
    return (
        StageAssignment.objects.filter(work_order_stage_id=stage_id)
        .select_related("user")
        .order_by("assigned_at", "id")
    )


# --- metrics (definitions: docs/metrics.md) ---------------------------------------


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# A done stage that took less than this was not timed (started and done in one
# go, recorded after the fact): it has no efficiency and adds nothing to its
# work order's.
MIN_TIMED_MINUTES = 1.0
# Less planned than a second is no plan (durations are planned in seconds at
# the finest); it also keeps the ratio off float underflow (5e-324 minutes
# planned against 200 taken gave 0.0, outside the (0, 200] of docs/metrics.md).
MIN_PLANNED_MINUTES = 1 / 60
# Efficiency is shown up to this: "at least twice as fast as planned". Beyond
# it the plan, not the work, is what the number measures.
EFFICIENCY_CAP = 200.0


def efficiency_score(planned: float, actual: float | None) -> float | None:
    """``100 x planned / actual`` minutes, capped at ``EFFICIENCY_CAP``; None
    when the work was not timed (``actual`` None or under
    ``MIN_TIMED_MINUTES``) or nothing was planned (under
    ``MIN_PLANNED_MINUTES``). Always in (0, 200] otherwise (docs/metrics.md)."""
    if actual is None or actual < MIN_TIMED_MINUTES or planned < MIN_PLANNED_MINUTES:
        return None
    return min(EFFICIENCY_CAP, 100 * planned / actual)


def _timed(planned: float, actual: float | None) -> bool:
    """Whether a done stage counts toward its work order's efficiency."""
    return efficiency_score(planned, actual) is not None


@dataclass(frozen=True)
class StageMetrics:
    """Timing of one work-order stage; see docs/metrics.md for each definition."""

    stage_id: int
    work_order_id: int
    status: str
    planned_minutes: float
    actual_minutes: float | None
    delay_minutes: float
    efficiency_score: float | None
    on_time: bool | None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WorkOrderMetrics:
    """Progress and timing of one work order; see docs/metrics.md."""

    work_order_id: int
    status: str
    stages_total: int
    stages_done: int
    stages_on_time: int
    delay_minutes: float | None
    efficiency_score: float | None
    on_time_percentage: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _is_done(stage: WorkOrderStage) -> bool:
    return stage.status == StageStatus.DONE and stage.actual_end is not None


def _planned_and_actual(
    stage: WorkOrderStage, now: datetime
) -> tuple[float, float | None]:
    """Exact planned and actual minutes (actual is None before the stage starts)."""
    planned = _minutes(stage.planned_end - stage.planned_start)
    actual = (
        _minutes((stage.actual_end or now) - stage.actual_start)
        if stage.actual_start
        else None
    )
    return planned, actual


def _stage_metrics(stage: WorkOrderStage, now: datetime) -> StageMetrics:
    done = _is_done(stage)
    planned, actual = _planned_and_actual(stage, now)
    delay = max(0.0, _minutes((stage.actual_end if done else now) - stage.planned_end))
    efficiency = efficiency_score(planned, actual) if done else None
    return StageMetrics(
        stage_id=stage.pk,
        work_order_id=stage.work_order_id,
        status=stage.status,
        planned_minutes=_round(planned),
        actual_minutes=_round(actual),
        delay_minutes=_round(delay),
        efficiency_score=_round(efficiency),
        on_time=stage.actual_end <= stage.planned_end if done else None,
    )


def stage_metrics(*, stage_id: int, now: datetime | None = None) -> StageMetrics:
    """Planned and actual minutes, delay, efficiency and on-time of one stage.

    ``now`` stands in for the end of a stage still running (tests pass a fixed
    one); it defaults to the current time.
    """
    stage = WorkOrderStage.objects.filter(pk=stage_id).first()
    if stage is None:
        raise NotFound(f"Stage {stage_id} does not exist.")
    return _stage_metrics(stage, now or timezone.now())


def _timed_sums(
    done: list[WorkOrderStage], now: datetime
) -> tuple[float, float | None]:
    """Planned and actual minutes summed over the timed ``done`` stages (exact
    durations, not the per-stage rounded minutes); actual None if none was."""
    planned_sum, actual_sum = 0.0, None
    for stage in done:
        planned, actual = _planned_and_actual(stage, now)
        if _timed(planned, actual):  # done always started, unless edited by hand
            planned_sum += planned
            actual_sum = (actual_sum or 0.0) + actual
    return planned_sum, actual_sum


def work_order_metrics(
    *, work_order_id: int, now: datetime | None = None
) -> WorkOrderMetrics:
    """Stages done, delay, efficiency and on-time percentage of one work order.

    Efficiency and on-time percentage are over its done stages only; the delay is
    the work order's own (its completion against its planned end). ``now`` as in
    ``stage_metrics``.
    """
    work_order = WorkOrder.objects.filter(pk=work_order_id).first()
    if work_order is None:
        raise NotFound(f"Work order {work_order_id} does not exist.")
    now = now or timezone.now()
    stages = list(WorkOrderStage.objects.filter(work_order_id=work_order_id))
    done = [stage for stage in stages if _is_done(stage)]
    on_time = [stage for stage in done if stage.actual_end <= stage.planned_end]
    planned_sum, actual_sum = _timed_sums(done, now)
    if work_order.status == WorkOrderStatus.CANCELLED:
        delay = None  # it will never finish: a delay would grow for ever
    else:
        end = work_order.completed_at or now
        delay = max(0.0, _minutes(end - work_order.planned_end))
    return WorkOrderMetrics(
        work_order_id=work_order.pk,
        status=work_order.status,
        stages_total=len(stages),
        stages_done=len(done),
        stages_on_time=len(on_time),
        delay_minutes=_round(delay),
        efficiency_score=_round(efficiency_score(planned_sum, actual_sum)),
        on_time_percentage=_round(100 * len(on_time) / len(done)) if done else None,
    )


# --- dashboard figures (bpmos.dashboards.kpis and .trends; docs/dashboards.md) -----


@dataclass(frozen=True)
class PlanAndBuilt:
    """Units planned and built in one window (work-order quantities)."""

    planned: int
    built: int


def work_order_plan_and_built(
    *, windows: dict[str, tuple[datetime, datetime]]
) -> dict[str, PlanAndBuilt]:
    """Per named window [start, end): **planned**, the quantity of work orders
    not cancelled whose planned end falls in it (due in it), and **built**, the
    quantity of work orders completed in it. One query, however many windows."""
    if not windows:
        return {}
    return work_order_plan_and_built_totals(windows=windows).get()


def work_order_plan_and_built_totals(
    *, windows: dict[str, tuple[datetime, datetime]]
) -> Totals:
    """``work_order_plan_and_built`` (``windows`` not empty) as ``Totals``,
    not run: ``bpmos.totals.totals_get`` reads it with other figures in one
    statement."""
    aggregates = {}
    for name, (start, end) in windows.items():
        aggregates[f"planned_{name}"] = Sum(
            "qty",
            filter=Q(planned_end__gte=start, planned_end__lt=end)
            & ~Q(status=WorkOrderStatus.CANCELLED),
        )
        aggregates[f"built_{name}"] = Sum(
            "qty",
            filter=Q(
                status=WorkOrderStatus.COMPLETED,
                completed_at__gte=start,
                completed_at__lt=end,
            ),
        )
    # Only the rows some window can count (each aggregate filters its own).
    first = min(start for start, _ in windows.values())
    last = max(end for _, end in windows.values())
    rows = WorkOrder.objects.filter(
        Q(planned_end__gte=first, planned_end__lt=last)
        | Q(completed_at__gte=first, completed_at__lt=last)
    )

    return Totals(
        rows, aggregates, per_window(windows, PlanAndBuilt, "planned", "built")
    )


def work_order_built_series(
    *, start: datetime, end: datetime, bucket: str
) -> dict[datetime, int]:
    """Units built (completed work orders' quantities) per ``bucket`` ("hour",
    "day", "week", UTC) over [start, end): bucket start -> units; empty buckets
    absent. One query."""
    return dict(
        per_bucket(
            WorkOrder.objects.filter(
                status=WorkOrderStatus.COMPLETED,
                completed_at__gte=start,
                completed_at__lt=end,
            ),
            "completed_at",
            bucket,
            units=Sum("qty"),
        )
    )


def work_order_stage_hold_count() -> int:
    """Stages of open work orders on hold now. One query."""
    return work_order_stage_hold_totals().get()


def work_order_stage_hold_totals() -> Totals:
    """``work_order_stage_hold_count`` as ``Totals``, not run."""
    return Totals(
        WorkOrderStage.objects.filter(
            status=StageStatus.HOLD,
            work_order__status__in=[
                WorkOrderStatus.PLANNED,
                WorkOrderStatus.IN_PROGRESS,
            ],
        ),
        {"n": Count("pk")},
        lambda totals: int(totals["n"]),
    )


# --- attention (the role dashboards, bpmos.dashboards.attention) -------------------

# How many rows of one kind an attention list carries at most (its count is exact).
ATTENTION_LIMIT = 50


def stage_blocked_list(
    *, user_id: int | None = None, limit: int = ATTENTION_LIMIT
) -> list[WorkOrderStage]:
    """Stages on Hold of work orders in progress, longest held first; only the
    ones assigned to ``user_id`` when given. One query."""
    stages = WorkOrderStage.objects.filter(
        status=StageStatus.HOLD, work_order__status=WorkOrderStatus.IN_PROGRESS
    )
    if user_id is not None:
        stages = stages.filter(assignments__user_id=user_id)
    return list(
        stages.select_related("work_order").order_by("updated_at", "id")[:limit]
    )


def stage_assignment_counts(*, user_id: int) -> dict[str, int]:
    """The open stages assigned to ``user_id`` (of work orders planned or in
    progress) by status slug: planned, in_progress, hold. One query."""
    from django.db.models import Count

    rows = (
        WorkOrderStage.objects.filter(
            assignments__user_id=user_id,
            work_order__status__in=[
                WorkOrderStatus.PLANNED,
                WorkOrderStatus.IN_PROGRESS,
            ],
        )
        .exclude(status=StageStatus.DONE)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {StageStatus.PLANNED: 0, StageStatus.IN_PROGRESS: 0, StageStatus.HOLD: 0}
    counts.update({row["status"]: row["n"] for row in rows})
    return {str(k): v for k, v in counts.items()}


def work_order_status_counts() -> dict[str, int]:
    """Work orders by status slug (every status present, zeros included). One query."""
    from django.db.models import Count

    counts = dict.fromkeys(WorkOrderStatus.values, 0)
    for row in WorkOrder.objects.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def gate_awaiting_list(*, limit: int = ATTENTION_LIMIT) -> list[dict]:
    """``gate_awaiting_statement`` read (``bpmos.compiled.rows_get``)."""
    return rows_get(*gate_awaiting_statement(limit=limit))


def gate_awaiting_statement(*, limit: int = ATTENTION_LIMIT) -> tuple:
    """Gates not Open (Closed: condition not met yet; Locked: a supervisor must
    unlock) on a stage some work order in progress has not finished yet, i.e.
    gates holding up work now. Locked first, then oldest change: ``id``,
    ``condition``, ``status``, ``reason``, ``changed_at``, ``stage__code``,
    ``stage__runbook__slug`` of each: (shape, make) for ``bpmos.compiled``,
    which compiles the statement once."""
    from django.db.models import Case, Exists, IntegerField, OuterRef, Value, When

    from runbooks.models import Gate, GateStatus

    def make():
        pending = WorkOrderStage.objects.filter(
            stage_id=OuterRef("stage_id"),
            work_order__status=WorkOrderStatus.IN_PROGRESS,
        ).exclude(status=StageStatus.DONE)
        return (
            Gate.objects.filter(status__in=[GateStatus.CLOSED, GateStatus.LOCKED])
            .filter(Exists(pending))
            .annotate(
                locked_first=Case(
                    When(status=GateStatus.LOCKED, then=Value(0)),
                    default=Value(1),
                    output_field=IntegerField(),
                )
            )
            .order_by("locked_first", "changed_at", "id")
            .values(
                "id",
                "condition",
                "status",
                "reason",
                "changed_at",
                "stage__code",
                "stage__runbook__slug",
            )[:limit]
        )

    return ("gate_awaiting_list", limit), make


def stage_assignee_ids(*, stage_ids) -> set[int]:
    """Ids of the users assigned to the work-order stages ``stage_ids``. One query."""
    return set(
        StageAssignment.objects.filter(work_order_stage_id__in=list(stage_ids))
        .values_list("user_id", flat=True)
        .distinct()
    )


def stage_blocked_count() -> int:
    """How many stages of work orders in progress are on Hold. One query."""
    return stage_blocked_totals().get()


def stage_blocked_totals() -> Totals:
    """``stage_blocked_count`` as ``Totals``, not run."""
    return Totals(
        WorkOrderStage.objects.filter(
            status=StageStatus.HOLD, work_order__status=WorkOrderStatus.IN_PROGRESS
        ),
        {"n": Count("pk")},
        lambda totals: int(totals["n"]),
    )


def gate_awaiting_count() -> int:
    """How many gates ``gate_awaiting_list`` would list, uncapped. One query."""
    return gate_awaiting_totals().get()


def gate_awaiting_totals() -> Totals:
    """``gate_awaiting_count`` as ``Totals``, not run."""
    from django.db.models import Exists, OuterRef

    from runbooks.models import Gate, GateStatus

    pending = WorkOrderStage.objects.filter(
        stage_id=OuterRef("stage_id"),
        work_order__status=WorkOrderStatus.IN_PROGRESS,
    ).exclude(status=StageStatus.DONE)
    return Totals(
        Gate.objects.filter(status__in=[GateStatus.CLOSED, GateStatus.LOCKED]).filter(
            Exists(pending)
        ),
        {"n": Count("pk")},
        lambda totals: int(totals["n"]),
    )


def gate_not_open_exists(*, work_order_ids) -> bool:
    """Whether the runbook of any of ``work_order_ids`` has a gate not Open. One
    query."""
    from runbooks.models import Gate, GateStatus

    return Gate.objects.filter(
        status__in=[GateStatus.CLOSED, GateStatus.LOCKED],
        stage__runbook__work_orders__id__in=list(work_order_ids),
    ).exists()
