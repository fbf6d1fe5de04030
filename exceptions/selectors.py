"""Reads of exceptions: the querysets behind the control UI and the control tower.

An exception belongs to the runbook it names; one raised with only a stage or a
work order (an alarm, a manual entry) belongs to that stage's or work order's
runbook. ``linked_runbook_*`` annotations carry that, so every reader uses one
definition.

An exception *halts* its runbook (``halts``) when it is flagged blocking or is
Critical: a critical deviation stops the line whether or not anyone ticked the
flag.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from bpmos.compiled import rows_get
from bpmos.errors import NotFound
from bpmos.series import per_bucket
from bpmos.totals import Totals
from exceptions.models import (
    SEVERITY_RANK,
    ExceptionStatus,
    PlantException,
    Severity,
)
from runbooks.models import WorkOrderStage

UNRESOLVED = (ExceptionStatus.OPEN, ExceptionStatus.ACKNOWLEDGED)

HALTS = ExpressionWrapper(
    Q(is_blocking=True) | Q(severity=Severity.CRITICAL), output_field=BooleanField()
)
SEVERITY_ORDER = Case(
    *(When(severity=value, then=Value(rank)) for value, rank in SEVERITY_RANK.items()),
    output_field=IntegerField(),
)


# How an exception reaches its runbook, nearest first (its own, else its
# stage's, else its work order's), and its template stage (its own, else its
# work-order stage's): the one definition every reader below builds on.
RUNBOOK_PATHS = ("runbook", "stage__runbook", "work_order__runbook")
STAGE_PATHS = ("stage", "work_order_stage__stage")


def _linked(queryset: QuerySet[PlantException]) -> QuerySet[PlantException]:
    return queryset.annotate(
        linked_runbook_id=Coalesce(*(f"{path}_id" for path in RUNBOOK_PATHS)),
        linked_runbook_slug=Coalesce(*(F(f"{path}__slug") for path in RUNBOOK_PATHS)),
        linked_runbook_title=Coalesce(*(F(f"{path}__title") for path in RUNBOOK_PATHS)),
        linked_stage_id=Coalesce(*(f"{path}_id" for path in STAGE_PATHS)),
        halts=HALTS,
        severity_rank=SEVERITY_ORDER,
    )


def exception_list() -> QuerySet[PlantException]:
    """Every exception, newest first, with its runbook, stage and blocking flag.

    One query per page: the stage comes along (``blocks`` names it) and the runbook
    is annotated, never fetched per row.
    """
    return _linked(PlantException.objects.select_related("stage")).order_by(
        "-raised_at", "-id"
    )


def exception_get(*, exception_id: int) -> PlantException | None:
    """One exception with everything its detail shows, or None."""
    return (
        _linked(
            PlantException.objects.select_related(
                "stage", "raised_by", "acknowledged_by", "resolved_by"
            )
        )
        .filter(pk=exception_id)
        .first()
    )


def exception_open_list_for_runbook(*, runbook_id: int) -> QuerySet[PlantException]:
    """A runbook's unresolved exceptions, most severe first, then oldest first."""
    return (
        exception_list()
        .filter(status__in=UNRESOLVED, linked_runbook_id=runbook_id)
        .order_by("severity_rank", "raised_at", "id")
    )


def _linked_ids(queryset: QuerySet[PlantException]) -> QuerySet[PlantException]:
    """``linked_runbook_id`` and ``linked_stage_id`` as ``_linked`` defines them,
    each link read by primary key in a subquery that ``COALESCE`` reaches only
    when the exception has no nearer link: joined instead, the planner hashed
    every work order the plant ever had (50,000 in a plant-year) to link the
    few hundred unresolved exceptions. For the control tower, which needs the
    ids only."""

    def by_key(path: str):
        if "__" not in path:
            return F(f"{path}_id")
        hop, rest = path.split("__", 1)
        model = PlantException._meta.get_field(hop).related_model
        return Subquery(
            model.objects.filter(pk=OuterRef(f"{hop}_id"))
            .order_by()
            .values(f"{rest}_id")[:1]
        )

    return queryset.annotate(
        linked_runbook_id=Coalesce(
            *map(by_key, RUNBOOK_PATHS), output_field=BigIntegerField()
        ),
        linked_stage_id=Coalesce(
            *map(by_key, STAGE_PATHS), output_field=BigIntegerField()
        ),
    )


def exception_open_rows(*, runbook_ids: list[int]) -> list:
    """Unresolved exceptions of these runbooks as light rows (one query).

    Each row: ``id, linked_runbook_id, linked_stage_id, type, severity, title,
    halts, severity_rank, raised_at``; the control tower needs nothing more.
    """
    return list(
        _linked_ids(PlantException.objects.all())
        .annotate(halts=HALTS, severity_rank=SEVERITY_ORDER)
        .filter(status__in=UNRESOLVED, linked_runbook_id__in=runbook_ids)
        .order_by("severity_rank", "raised_at", "id")
        .values_list(
            "id",
            "linked_runbook_id",
            "linked_stage_id",
            "type",
            "severity",
            "title",
            "halts",
            "severity_rank",
            "raised_at",
            named=True,
        )
    )


def exception_last_change_by_runbook(*, runbook_ids: list[int]) -> dict:
    """The latest ``updated_at`` of any exception (resolved too) per runbook id.

    One query: the three ways an exception links to its runbook
    (``RUNBOOK_PATHS``: its own runbook, else its stage's, else its work
    order's) each grouped on
    its own foreign key's index, joined by ``UNION ALL``. Not the ``COALESCE``
    of the three over every exception: that read every exception the plant
    ever raised and joined them to every work order it ever ran.
    """
    newest = Max("updated_at")
    arms = []
    for index, path in enumerate(RUNBOOK_PATHS):
        hop = path.split("__", 1)[0]
        # Only the exceptions with no nearer link, and (said outright, so the
        # planner weighs the exceptions that have this hop, not every
        # exception, against every work order) those that have it.
        nearer = {f"{p.split('__', 1)[0]}__isnull": True for p in RUNBOOK_PATHS[:index]}
        arms.append(
            PlantException.objects.order_by()
            .filter(
                **nearer, **{f"{hop}__isnull": False}, **{f"{path}_id__in": runbook_ids}
            )
            .values_list(f"{path}_id")
            .annotate(last=newest)
        )
    first, *rest = arms
    found: dict = {}
    for runbook_id, last in first.union(*rest, all=True):
        if last is not None and (runbook_id not in found or last > found[runbook_id]):
            found[runbook_id] = last
    return found


# --- stage issues (exceptions raised on a work-order stage) --------------------------


def issue_list() -> QuerySet[PlantException]:
    """Every exception raised on a work-order stage (the mobile app's issues).

    Annotated with ``created_at`` (the contract's name for ``raised_at``) so the
    API can order by it.
    """
    return (
        PlantException.objects.filter(work_order_stage__isnull=False)
        .annotate(created_at=F("raised_at"))
        .order_by("-raised_at", "-id")
    )


def stage_issue_list(*, stage_id: int) -> QuerySet[PlantException]:
    """The issues of one stage, newest first; 404 if the stage does not exist."""
    if not WorkOrderStage.objects.filter(pk=stage_id).exists():
        raise NotFound(f"Stage {stage_id} does not exist.")
    return issue_list().filter(work_order_stage_id=stage_id)


def stage_issue_get(*, stage_id: int, issue_id: int) -> PlantException:
    """One issue of one stage; 404 unless the issue was raised on that stage."""
    issue = issue_list().filter(pk=issue_id, work_order_stage_id=stage_id).first()
    if issue is None:
        raise NotFound(f"Stage {stage_id} has no issue {issue_id}.")
    return issue


# --- dashboard figures (bpmos.dashboards.trends) ------------------------------------


def exception_opened_series(
    *, start: datetime, end: datetime, bucket: str
) -> dict[datetime, int]:
    """Exceptions raised per ``bucket`` ("hour", "day", "week", UTC) over
    [start, end), whatever became of them: bucket start -> count; empty buckets
    absent. One query over the ``raised_at`` index."""
    return dict(
        per_bucket(
            PlantException.objects.filter(raised_at__gte=start, raised_at__lt=end),
            "raised_at",
            bucket,
            n=Count("id"),
        )
    )


# --- attention (the role dashboards, bpmos.dashboards.attention) -------------------


def exception_escalated_list(*, role: str, limit: int = 50) -> list[dict]:
    """Unresolved exceptions escalated (level >= 1) whose responsible role is
    now ``role`` (``ESCALATION_PATH``), most severe and oldest first: ``id``,
    ``title``, ``severity``, ``escalation_level``, ``raised_at`` of each. One
    query, compiled once per role (``bpmos.compiled``)."""
    statement = exception_escalated_statement(role=role, limit=limit)
    return [] if statement is None else rows_get(*statement)


def exception_escalated_statement(*, role: str, limit: int = 50) -> tuple | None:
    """``exception_escalated_list`` as (shape, make) for ``bpmos.compiled``;
    None when no exception escalates to ``role``."""
    from exceptions.models import ESCALATION_PATH

    if role not in ESCALATION_PATH[1:]:
        return None
    level = ESCALATION_PATH.index(role)
    top = len(ESCALATION_PATH) - 1
    levels = (
        Q(escalation_level__gte=level) if level == top else Q(escalation_level=level)
    )
    return (
        ("exception_escalated_list", role, limit),
        lambda: PlantException.objects.filter(levels, status__in=UNRESOLVED)
        .annotate(severity_rank=SEVERITY_ORDER)
        .order_by("severity_rank", "raised_at", "id")
        .values("id", "title", "severity", "escalation_level", "raised_at")[:limit],
    )


def exception_escalated_count(*, role: str) -> int:
    """How many exceptions ``exception_escalated_list`` would list, uncapped."""
    from exceptions.models import ESCALATION_PATH

    if role not in ESCALATION_PATH[1:]:
        return 0
    return exception_escalated_totals(role=role).get()


def exception_escalated_totals(*, role: str) -> Totals:
    """``exception_escalated_count`` as ``Totals``, not run (a role no
    exception escalates to: none matches)."""
    from exceptions.models import ESCALATION_PATH

    if role in ESCALATION_PATH[1:]:
        level = ESCALATION_PATH.index(role)
        top = len(ESCALATION_PATH) - 1
        levels = (
            Q(escalation_level__gte=level)
            if level == top
            else Q(escalation_level=level)
        )
        rows = PlantException.objects.filter(levels, status__in=UNRESOLVED)
    else:
        rows = PlantException.objects.filter(pk__isnull=True)
    return Totals(rows, {"n": Count("pk")}, lambda totals: int(totals["n"]))
