"""A runbook's work orders by status, kept where they change
(``RunbookWorkOrderCount``; docs/dashboards.md, "Read models").

The runbook detail of the control UI shows how many of a runbook's work
orders are planned, in progress, completed and cancelled. Counted per read,
that is an index scan of every work order the runbook ever had (50,000 over
a plant-year, 12-20 ms); kept, it is one row.

A work order's status moves only in the services, each of which adds its move
here in its own transaction, after its audit record (the lock order of
``runbooks.stage_wip``: the count row is taken with the audit chain's lock
held, so two writers never wait on each other in a cycle): ``work_order_create``
(+1 planned), ``stage_start`` on a planned work order (planned -> in progress),
``stage_finish`` of its last open stage (in progress -> completed),
``work_order_cancel`` (its status -> cancelled), and
``WorkOrder.objects.bulk_create`` (fixtures, benches: each row's status).
Work orders are never deleted (the admin is read-only; a runbook's work
orders protect it). ``rebuild`` recounts them from the work orders (the data
migration; the plant generator after loading work orders by SQL);
``recount`` is what they must always equal.

One upsert per move (``bpmos.bulk.upsert_add``: ``INSERT ... ON CONFLICT
(runbook_id) DO UPDATE SET planned = planned + excluded.planned, ...``,
PostgreSQL and SQLite alike).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps as installed_apps
from django.db.models import Count

from bpmos.bulk import upsert_add
from runbooks.models import RunbookWorkOrderCount, WorkOrderStatus

# The kept columns, in WorkOrderStatus order.
STATUSES = (
    WorkOrderStatus.PLANNED,
    WorkOrderStatus.IN_PROGRESS,
    WorkOrderStatus.COMPLETED,
    WorkOrderStatus.CANCELLED,
)

# runbook id -> [planned, in progress, completed, cancelled]
Counts = dict[int, list[int]]

# The kept row's key and counter columns, the counters in ``STATUSES`` order.
_KEY = "runbook_id"
_COUNTERS = ("planned", "in_progress", "completed", "cancelled")


def _slot(status: str) -> int:
    return STATUSES.index(status)


def of(work_orders: Iterable) -> Counts:
    """The counts ``work_orders`` (model instances) add, per runbook (no query)."""
    counts: Counts = {}
    for work_order in work_orders:
        row = counts.setdefault(work_order.runbook_id, [0, 0, 0, 0])
        row[_slot(work_order.status)] += 1
    return counts


def moved(*, runbook_id: int, before: str | None, after: str) -> None:
    """A work order of ``runbook_id`` went from ``before`` (None: it is new)
    to ``after``: one upsert in the caller's transaction."""
    row = [0, 0, 0, 0]
    if before is not None:
        row[_slot(before)] -= 1
    row[_slot(after)] += 1
    add({runbook_id: row})


def add(deltas: Counts) -> None:
    """Add ``deltas`` to the counts, in the caller's transaction: one upsert
    (runbooks in id order; ``bpmos.bulk.upsert_add``), nothing when every
    delta is 0."""
    upsert_add(RunbookWorkOrderCount, (_KEY,), _COUNTERS, deltas)


def counts_of(runbook_id: int) -> list[int]:
    """One runbook's kept counts, [planned, in progress, completed, cancelled]
    (zeros for a runbook never given a work order). One query."""
    # Unordered: ``first()`` would order by the runbook, a join to its slug.
    rows = list(
        RunbookWorkOrderCount.objects.filter(runbook_id=runbook_id)
        .order_by()
        .values_list(*_COUNTERS)
    )
    return list(rows[0]) if rows else [0, 0, 0, 0]


def kept_counts() -> Counts:
    """The counts as kept (runbooks with some work order). One query."""
    rows = RunbookWorkOrderCount.objects.values_list(_KEY, *_COUNTERS)
    return {runbook_id: list(values) for runbook_id, *values in rows if any(values)}


def recount(*, models=None) -> Counts:
    """The counts from the work orders themselves, as the runbook detail
    counted them per request before they were kept: what the counts must
    always equal. One query. ``models``: a migration's app registry."""
    work_orders = (models or installed_apps).get_model("runbooks", "WorkOrder")
    counts: Counts = {}
    rows = (
        work_orders.objects.order_by()
        .values_list("runbook_id", "status")
        .annotate(n=Count("id"))
    )
    for runbook_id, status, n in rows:
        counts.setdefault(runbook_id, [0, 0, 0, 0])[_slot(status)] += n
    return counts


def rebuild(*, models=None) -> Counts:
    """Replace the counts with a ``recount`` (the data migration; the plant
    generator after loading work orders by SQL). Run it in a transaction or
    with no writer about. ``models``: a migration's app registry."""
    models = models or installed_apps
    kept = models.get_model("runbooks", "RunbookWorkOrderCount")
    found = recount(models=models)
    kept.objects.all().delete()
    kept.objects.bulk_create(
        kept(
            runbook_id=runbook_id,
            planned=a,
            in_progress=b,
            completed=c,
            cancelled=d,
        )
        for runbook_id, (a, b, c, d) in sorted(found.items())
    )
    return found
