"""Runbooks (workflow templates), their stages, gates and steps; work orders
that execute a runbook, their stages, and who is assigned to them.

Statuses are ``TextChoices`` with a transition table beside them; only the
services in ``runbooks/services.py`` change a status, through
``require_transition``.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from bpmos.transitions import StatusTransitions


class RunbookKind(models.TextChoices):
    MANUFACTURING = "manufacturing", "Manufacturing"
    DISPATCH = "dispatch", "Dispatch"
    QUALITY = "quality", "Quality"
    MAINTENANCE = "maintenance", "Maintenance"


class Runbook(models.Model):
    """A workflow template of ordered stages (e.g. "Manufacturing Execution").

    Its status, current stage, progress and block reason are never stored:
    ``runbooks.selectors`` computes them from work orders, gates and exceptions.
    """

    slug = models.SlugField(
        max_length=50, unique=True, help_text="API id, e.g. manufacturing"
    )
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=RunbookKind.choices)
    description = models.TextField(blank=True)
    roles = models.JSONField(
        default=list,
        blank=True,
        help_text='Who works it, as shown: ["Planner", "Operator"]',
    )
    sequential = models.BooleanField(
        default=True,
        help_text="Stages run in order: one starts after the one before is done.",
    )
    is_default = models.BooleanField(
        default=False,
        help_text="The default manufacturing runbook, for work orders naming none.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="one_default_runbook",
            )
        ]

    def __str__(self) -> str:
        return self.title


class Stage(models.Model):
    """One stage of a runbook template, e.g. S5 Module Assembly."""

    runbook = models.ForeignKey(
        Runbook, on_delete=models.PROTECT, related_name="stages"
    )
    slug = models.SlugField(max_length=50, unique=True, help_text="API id, e.g. mfg-05")
    code = models.CharField(max_length=10, help_text="Plant stage code, e.g. S5")
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField()
    standard_minutes = models.PositiveIntegerField(
        default=60, help_text="Planned duration of this stage per work order."
    )

    class Meta:
        ordering = ["runbook", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["runbook", "position"], name="stage_position_unique"
            ),
            models.UniqueConstraint(
                fields=["runbook", "code"], name="stage_code_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """As the control UI shows a stage: "Module Assembly (S5)"."""
        return f"{self.name} ({self.code})"

    @property
    def label(self) -> str:
        """As the control tower shows the current stage: "S5 Module Assembly"."""
        return f"{self.code} {self.name}"


class GateStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    LOCKED = "locked", "Locked"


class GateType(models.TextChoices):
    VALIDATION = "validation", "Validation"
    SAFETY = "safety", "Safety"
    QUALITY = "quality", "Quality"
    APPROVAL = "approval", "Approval"
    INTERLOCK = "interlock", "Interlock"


class Gate(models.Model):
    """An interlock on a stage: work at the stage cannot finish unless it is Open.

    Closed means the condition is not yet met; Locked means someone locked it
    with a reason (e.g. "Seal Check Failed") and only a supervisor unlocks it.
    """

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="gates")
    type = models.CharField(
        max_length=20, choices=GateType.choices, default=GateType.VALIDATION
    )
    condition = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=GateStatus.choices, default=GateStatus.OPEN
    )
    reason = models.CharField(max_length=300, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["stage", "id"]

    def __str__(self) -> str:
        return f"{self.stage.code} {self.condition} ({self.status})"


class Step(models.Model):
    """One instruction of a stage's work."""

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    instruction = models.CharField(max_length=300)

    class Meta:
        ordering = ["stage", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "position"], name="step_position_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stage.code}.{self.position} {self.instruction}"


class WorkOrderStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In Progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


WORK_ORDER_TRANSITIONS: dict[str, set[str]] = {
    WorkOrderStatus.PLANNED: {WorkOrderStatus.IN_PROGRESS, WorkOrderStatus.CANCELLED},
    WorkOrderStatus.IN_PROGRESS: {WorkOrderStatus.COMPLETED, WorkOrderStatus.CANCELLED},
    WorkOrderStatus.COMPLETED: set(),
    WorkOrderStatus.CANCELLED: set(),
}


class WorkOrderQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Work orders written in bulk (fixtures, benches) keep their runbooks'
        work-order counts (``runbooks.work_order_counts``): one upsert after
        the INSERT."""
        from runbooks import work_order_counts

        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            # Which rows went in is not known here: the counts would drift.
            raise ValueError(
                "Work orders written in bulk keep their runbooks' counts; insert "
                "or update them on conflict by SQL, then work_order_counts.rebuild()."
            )
        objs = list(objs)
        created = super().bulk_create(objs, *args, **kwargs)
        work_order_counts.add(work_order_counts.of(objs))
        return created


class WorkOrder(StatusTransitions, models.Model):
    """An order to make ``qty`` of a product (lot ``lot_no``) by running a runbook."""

    TRANSITIONS = WORK_ORDER_TRANSITIONS

    runbook = models.ForeignKey(
        Runbook, on_delete=models.PROTECT, related_name="work_orders"
    )
    product_code = models.CharField(max_length=64)
    lot_no = models.CharField(max_length=64)
    qty = models.PositiveIntegerField()
    planned_start = models.DateTimeField()
    planned_end = models.DateTimeField()
    status = models.CharField(
        max_length=20, choices=WorkOrderStatus.choices, default=WorkOrderStatus.PLANNED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkOrderQuerySet.as_manager()

    class Meta:
        ordering = ["-planned_start", "-id"]
        indexes = [
            models.Index(fields=["status", "runbook"]),
            # The work-order list's order: a page read off the index, not a
            # sort of every work order ever made.
            models.Index(fields=["-planned_start", "-id"], name="work_order_list_idx"),
            # The control tower's last update of a runbook (its work orders'
            # latest change) and a runbook's lots (its custody and warranty
            # context): one index range per runbook.
            models.Index(
                fields=["runbook", "updated_at"], name="work_order_runbook_change_idx"
            ),
            models.Index(
                fields=["runbook", "lot_no"], name="work_order_runbook_lot_idx"
            ),
            # The dashboards' Planned and Built per window (summary): two
            # index ranges instead of every work order ever made.
            models.Index(fields=["planned_end"], name="work_order_planned_end_idx"),
            models.Index(
                fields=["completed_at"],
                condition=Q(completed_at__isnull=False),
                name="work_order_completed_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(qty__gt=0), name="work_order_qty_positive"
            ),
            models.CheckConstraint(
                condition=Q(planned_start__lt=F("planned_end")),
                name="work_order_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"WO-{self.pk} {self.product_code} lot {self.lot_no}"

    @property
    def transition_subject(self) -> str:
        return f"Work order {self.pk}"


class StageStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In Progress"
    HOLD = "hold", "Hold"
    DONE = "done", "Done"


STAGE_TRANSITIONS: dict[str, set[str]] = {
    StageStatus.PLANNED: {StageStatus.IN_PROGRESS, StageStatus.HOLD},
    StageStatus.IN_PROGRESS: {StageStatus.DONE, StageStatus.HOLD},
    StageStatus.HOLD: {StageStatus.PLANNED, StageStatus.IN_PROGRESS},  # resume
    StageStatus.DONE: set(),
}


class WorkOrderStageQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Stages written in bulk keep the WIP counts (``runbooks.stage_wip``)
        of the work orders they belong to: nothing to do (no query) for the
        stages of a work order known not to be in progress, as
        ``work_order_create`` writes them."""
        from runbooks import stage_wip

        objs = list(objs)
        with stage_wip.kept(*stage_wip.maybe_in_progress(objs)):
            return super().bulk_create(objs, *args, **kwargs)


class WorkOrderStage(StatusTransitions, models.Model):
    """One stage of one work order, created from the runbook's stage template."""

    TRANSITIONS = STAGE_TRANSITIONS

    work_order = models.ForeignKey(
        WorkOrder, on_delete=models.CASCADE, related_name="stages"
    )
    stage = models.ForeignKey(
        Stage, on_delete=models.PROTECT, related_name="work_order_stages"
    )
    position = models.PositiveSmallIntegerField()
    stage_name = models.CharField(max_length=120)
    planned_start = models.DateTimeField()
    planned_end = models.DateTimeField()
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=StageStatus.choices, default=StageStatus.PLANNED
    )
    hold_reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkOrderStageQuerySet.as_manager()

    class Meta:
        ordering = ["work_order", "position"]
        indexes = [
            models.Index(fields=["stage", "status"]),
            # Stages on hold (the summary's hold count, the blocked-stage
            # cards and attention items, longest held first): a handful of
            # rows instead of a walk of the (stage, status) index.
            models.Index(
                fields=["updated_at", "id"],
                condition=Q(status="hold"),
                name="wo_stage_on_hold_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["work_order", "position"],
                name="work_order_stage_position_unique",
            )
        ]

    def __str__(self) -> str:
        return f"WO-{self.work_order_id} {self.stage_name} ({self.status})"

    @property
    def transition_subject(self) -> str:
        return f"Stage {self.pk} ({self.stage_name})"


class StageWipCount(models.Model):
    """Work in progress at one template stage, over the work orders in
    progress (``lines.wip``'s definitions: in progress, on hold, waiting),
    kept by ``runbooks.stage_wip`` in the transaction of every change that
    moves it, so the Stage Mix and the bottleneck read a row per stage
    instead of every open work-order stage."""

    stage = models.OneToOneField(
        Stage, on_delete=models.CASCADE, primary_key=True, related_name="wip_count"
    )
    in_progress = models.IntegerField(default=0)
    on_hold = models.IntegerField(default=0)
    waiting = models.IntegerField(default=0)

    class Meta:
        ordering = ["stage"]

    def __str__(self) -> str:
        return (
            f"{self.stage_id}: {self.in_progress} in progress, "
            f"{self.on_hold} on hold, {self.waiting} waiting"
        )


class RunbookWorkOrderCount(models.Model):
    """A runbook's work orders by status, kept by
    ``runbooks.work_order_counts`` in the transaction of every change that
    moves them (create, start, complete, cancel, ``bulk_create``), so a
    runbook's detail reads one row instead of counting its work orders (tens
    of thousands over a plant-year). Work orders are never deleted (the
    admin is read-only; a runbook with work orders is protected)."""

    runbook = models.OneToOneField(
        Runbook,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="work_order_count",
    )
    planned = models.IntegerField(default=0)
    in_progress = models.IntegerField(default=0)
    completed = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)

    class Meta:
        ordering = ["runbook"]

    def __str__(self) -> str:
        return (
            f"{self.runbook_id}: {self.planned} planned, {self.in_progress} in "
            f"progress, {self.completed} completed, {self.cancelled} cancelled"
        )


class StageAssignment(models.Model):
    """A user assigned to a work-order stage: only they (or a supervisor) move it."""

    work_order_stage = models.ForeignKey(
        WorkOrderStage, on_delete=models.CASCADE, related_name="assignments"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="stage_assignments",
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["work_order_stage", "assigned_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["work_order_stage", "user"], name="stage_assignment_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.work_order_stage}"
