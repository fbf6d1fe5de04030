"""Work in progress per template stage, kept where it changes
(``StageWipCount``; docs/dashboards.md, "Read models").

**WIP at a stage** (``lines.wip`` reads it), over work orders in progress
(started, not finished): their stages at it in progress (``in_progress``), on
hold (``on_hold``), and planned with no earlier stage of their work order
still open (``waiting``: the work has arrived and waits to start).

A work order's *contribution* is what its stages add to those counts: none
unless it is in progress. Every write that can change one runs inside
``kept(work_order_id)``: the contribution is read before the write (the work
order's row is locked by then) and after it, and the difference is added to
the counts in the same transaction, with one upsert
(``bpmos.bulk.upsert_add``: ``INSERT ... ON CONFLICT (stage_id) DO UPDATE SET
in_progress = in_progress + excluded...``, PostgreSQL and SQLite alike). The
writers: the stage services (start, finish, hold, resume),
``work_order_cancel``, and
``WorkOrderStage.objects.bulk_create`` (fixtures, benches). ``rebuild``
recounts them from the stages (the data migration; a bench after loading by
SQL), ``recount`` is what they must always equal.

Lock order: the services add their difference after their audit record, with
the audit chain's lock held, and upsert the stages' rows in id order, so two
transactions never wait on each other's count rows in a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.apps import apps as installed_apps
from django.db.models import Count, Exists, OuterRef, Q

from bpmos.bulk import upsert_add
from runbooks.models import (
    StageStatus,
    StageWipCount,
    WorkOrderStage,
    WorkOrderStatus,
)

# stage id -> [in progress, on hold, waiting]
Counts = dict[int, list[int]]

# The kept row's key and counter columns, the counters in ``Counts`` order.
_KEY = "stage_id"
_COUNTERS = ("in_progress", "on_hold", "waiting")


def contributions(work_order_ids: Iterable[int]) -> Counts:
    """What the work orders ``work_order_ids`` add to the WIP counts now,
    summed per stage (a work order not in progress adds nothing). One query
    over their stages (the (work order, position) index); none for no id."""
    ids = sorted(set(work_order_ids))
    counts: Counts = {}
    if not ids:
        return counts
    rows = (
        WorkOrderStage.objects.filter(
            work_order_id__in=ids, work_order__status=WorkOrderStatus.IN_PROGRESS
        )
        .order_by("work_order_id", "position")
        .values_list("work_order_id", "stage_id", "status")
    )
    current, open_before = None, False
    for work_order_id, stage_id, status in rows:
        if work_order_id != current:
            current, open_before = work_order_id, False
        slot = None
        if status == StageStatus.IN_PROGRESS:
            slot = 0
        elif status == StageStatus.HOLD:
            slot = 1
        elif status == StageStatus.PLANNED and not open_before:
            slot = 2
        if slot is not None:
            counts.setdefault(stage_id, [0, 0, 0])[slot] += 1
        if status != StageStatus.DONE:
            open_before = True
    return counts


def add(deltas: Counts) -> None:
    """Add ``deltas`` to the counts, in the caller's transaction: one upsert
    (stages in id order; ``bpmos.bulk.upsert_add``), nothing when every delta
    is 0."""
    upsert_add(StageWipCount, (_KEY,), _COUNTERS, deltas)


def difference(after: Counts, before: Counts) -> Counts:
    """``after`` less ``before``, per stage."""
    return {
        stage_id: [
            a - b
            for a, b in zip(
                after.get(stage_id, (0, 0, 0)),
                before.get(stage_id, (0, 0, 0)),
                strict=True,
            )
        ]
        for stage_id in after.keys() | before.keys()
    }


@contextmanager
def kept(*work_order_ids: int) -> Iterator[None]:
    """Keep the WIP counts of ``work_order_ids`` across the writes in the
    block: their contribution before and after it (a query each), and the
    difference added. Nothing is added when the block raises (its
    transaction rolls back). Call it with the work orders' rows locked, and
    let the block write its audit record first (module docstring)."""
    if not work_order_ids:
        yield
        return
    before = contributions(work_order_ids)
    yield
    add(difference(contributions(work_order_ids), before))


def maybe_in_progress(stages: Iterable[WorkOrderStage]) -> set[int]:
    """The work orders of ``stages`` that may be in progress: all of them but
    those whose row the stages carry and that is not (no query)."""
    ids = set()
    for stage in stages:
        known = WorkOrderStage.work_order.field.get_cached_value(stage, None)
        if known is None or known.status == WorkOrderStatus.IN_PROGRESS:
            ids.add(stage.work_order_id)
    return ids


def recount(*, models=None) -> Counts:
    """The WIP counts from the work-order stages themselves, as ``lines.wip``
    computed them per request before the counts were kept: what the counts
    must always equal. One query over every open stage of the work orders in
    progress. ``models``: a migration's app registry."""
    stages = (models or installed_apps).get_model("runbooks", "WorkOrderStage")
    earlier_open = stages.objects.filter(
        work_order_id=OuterRef("work_order_id"), position__lt=OuterRef("position")
    ).exclude(status=StageStatus.DONE)
    rows = (
        stages.objects.filter(
            work_order__status=WorkOrderStatus.IN_PROGRESS,
            status__in=[StageStatus.IN_PROGRESS, StageStatus.HOLD, StageStatus.PLANNED],
        )
        .values("stage_id")
        .annotate(
            in_progress=Count("id", filter=Q(status=StageStatus.IN_PROGRESS)),
            on_hold=Count("id", filter=Q(status=StageStatus.HOLD)),
            waiting=Count(
                "id", filter=Q(status=StageStatus.PLANNED) & ~Exists(earlier_open)
            ),
        )
        .values_list("stage_id", "in_progress", "on_hold", "waiting")
        .order_by()
    )
    return {
        stage_id: [in_progress, on_hold, waiting]
        for stage_id, in_progress, on_hold, waiting in rows
        if in_progress or on_hold or waiting
    }


def kept_counts() -> Counts:
    """The counts as kept (stages with some WIP). One query."""
    rows = StageWipCount.objects.values_list(_KEY, *_COUNTERS)
    return {stage_id: list(values) for stage_id, *values in rows if any(values)}


def rebuild(*, models=None) -> Counts:
    """Replace the counts with a ``recount`` (the data migration; a bench
    after loading work orders by SQL). Run it in a transaction or with no
    writer about. ``models``: a migration's app registry."""
    models = models or installed_apps
    counts = models.get_model("runbooks", "StageWipCount")
    found = recount(models=models)
    counts.objects.all().delete()
    counts.objects.bulk_create(
        counts(stage_id=stage_id, in_progress=a, on_hold=b, waiting=c)
        for stage_id, (a, b, c) in sorted(found.items())
    )
    return found
