"""Every write of production execution: work orders, stages, gates, assignments.

Each function locks what it changes (the work order first, then its stages, so
concurrent moves of one work order queue up instead of deadlocking), checks the
rule, writes, audits and publishes. Views, tasks and the admin call these.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from bpmos import events
from bpmos.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from bpmos.fields import time_problem
from bpmos.locking import ROW_LOCK, lock_row
from bpmos.roles import Role
from elog import audit, shiftlog
from elog import signatures as esign
from elog.models import ShiftLogEntryType, SignatureMeaning
from runbooks import events as runbook_events
from runbooks import stage_wip, work_order_counts
from runbooks.models import (
    Gate,
    GateStatus,
    Runbook,
    StageAssignment,
    StageStatus,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)

# Roles that may move any stage, assigned or not.
STAGE_OVERSEERS = {Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN}
# Roles that can be assigned to work a stage (the auditor writes nothing).
ASSIGNABLE_ROLES = {
    Role.OPERATOR,
    Role.PLANNER,
    Role.SUPERVISOR,
    Role.PLANT_HEAD,
    Role.ADMIN,
}


def _stage_snapshot(stage: WorkOrderStage) -> dict:
    return {
        "status": stage.status,
        "actual_start": stage.actual_start,
        "actual_end": stage.actual_end,
        "hold_reason": stage.hold_reason,
    }


def _work_order_snapshot(work_order: WorkOrder) -> dict:
    return {
        "runbook": work_order.runbook.slug,
        "product_code": work_order.product_code,
        "lot_no": work_order.lot_no,
        "qty": work_order.qty,
        "planned_start": work_order.planned_start,
        "planned_end": work_order.planned_end,
        "status": work_order.status,
    }


# --- work orders -----------------------------------------------------------------


def _resolve_runbook(runbook_slug: str | None) -> Runbook:
    if runbook_slug:
        runbook = Runbook.objects.filter(slug=runbook_slug, is_active=True).first()
        if runbook is None:
            raise InvalidInput(
                f"There is no active runbook {runbook_slug!r}.",
                code="validation_error",
                details={"runbook": [f"Unknown runbook {runbook_slug!r}."]},
            )
        return runbook
    runbook = Runbook.objects.filter(is_default=True, is_active=True).first()
    if runbook is None:
        raise InvalidInput(
            "No runbook was named and the plant has no default manufacturing runbook.",
            code="validation_error",
            details={"runbook": ["Name a runbook; no default is configured."]},
        )
    return runbook


def _spread_window(start: datetime, end: datetime, weights: list[int]) -> list[tuple]:
    """Split [start, end) into consecutive windows proportional to ``weights``."""
    total = sum(weights) or len(weights)
    span = end - start
    windows, cursor, acc = [], start, 0
    for weight in weights:
        acc += weight or 1
        stop = start + span * acc / total if acc < total else end
        windows.append((cursor, stop))
        cursor = stop
    return windows


@transaction.atomic
def work_order_create(
    *,
    product_code: str,
    lot_no: str,
    qty: int,
    planned_start: datetime,
    planned_end: datetime,
    actor,
    runbook_slug: str | None = None,
) -> WorkOrder:
    """Create a work order and its stages from the runbook's template.

    A work order that names no runbook (as the mobile app sends them) gets the
    plant's default manufacturing runbook. Stage windows split the planned
    window in proportion to each stage's standard duration.
    """
    errors: dict[str, list[str]] = {}
    if qty is None or qty <= 0:
        errors["qty"] = ["Must be greater than 0."]
    for name, when in (("planned_start", planned_start), ("planned_end", planned_end)):
        problem = time_problem(when) if when else None
        if problem is not None:  # the API's bounds, for every caller
            errors[name] = [problem]
    if planned_start and planned_end and planned_start >= planned_end:
        errors.setdefault("planned_end", ["Must be after planned_start."])
    if errors:
        raise InvalidInput(
            "Invalid input. " + next(iter(errors.values()))[0],
            code="validation_error",
            details=errors,
        )
    runbook = _resolve_runbook(runbook_slug)
    templates = list(runbook.stages.order_by("position"))
    if not templates:
        raise InvalidInput(
            f"Runbook {runbook.slug!r} has no stages.",
            code="validation_error",
            details={"runbook": ["The runbook has no stages."]},
        )
    work_order = WorkOrder.objects.create(
        runbook=runbook,
        product_code=product_code,
        lot_no=lot_no,
        qty=qty,
        planned_start=planned_start,
        planned_end=planned_end,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    windows = _spread_window(
        planned_start, planned_end, [t.standard_minutes for t in templates]
    )
    WorkOrderStage.objects.bulk_create(
        WorkOrderStage(
            work_order=work_order,
            stage=template,
            position=template.position,
            stage_name=template.display_name,
            planned_start=window[0],
            planned_end=window[1],
        )
        for template, window in zip(templates, windows, strict=True)
    )
    audit.record(
        actor=actor,
        action="workorder.created",
        target=work_order,
        after=_work_order_snapshot(work_order),
    )
    work_order_counts.moved(runbook_id=runbook.pk, before=None, after=work_order.status)
    # The connectors contract's auto-entry, in this transaction (docs/logs.md).
    shiftlog.auto_entry(
        entry_type=ShiftLogEntryType.WORK_ORDER_CREATED,
        actor=actor,
        body=(
            f"Work order {work_order.pk} created: {product_code} lot {lot_no}, "
            f"qty {qty} ({runbook.slug})"
        ),
        target=work_order,
        metadata={
            "kind": "production",
            "work_order_id": work_order.pk,
            "runbook": runbook.slug,
            "product_code": product_code,
            "lot_no": lot_no,
            "qty": qty,
        },
    )
    events.publish(runbook_events.work_order_event(work_order, "created"))
    return work_order


@transaction.atomic
def work_order_cancel(*, work_order_id: int, reason: str, actor) -> WorkOrder:
    """Cancel a work order that is not finished; its open stages stay as they are."""
    work_order = _lock_work_order(work_order_id)
    if not reason.strip():
        raise InvalidInput(
            "A reason is required to cancel.",
            code="validation_error",
            details={"reason": ["Required."]},
        )
    work_order.require_transition(to=WorkOrderStatus.CANCELLED)
    with stage_wip.kept(work_order.pk):
        before = _work_order_snapshot(work_order)
        work_order.status = WorkOrderStatus.CANCELLED
        work_order.save(update_fields=["status", "updated_at"])
        audit.record(
            actor=actor,
            action="workorder.cancelled",
            target=work_order,
            before=before,
            after={**_work_order_snapshot(work_order), "reason": reason},
        )
        work_order_counts.moved(
            runbook_id=work_order.runbook_id,
            before=before["status"],
            after=work_order.status,
        )
        events.publish(runbook_events.work_order_event(work_order, "cancelled"))
    return work_order


def _lock_work_order(work_order_id: int) -> WorkOrder:
    return lock_row(
        WorkOrder.objects.select_related("runbook"),
        what=f"Work order {work_order_id}",
        pk=work_order_id,
    )


# --- stages ------------------------------------------------------------------------


def _lock_stage(stage_id: int) -> WorkOrderStage:
    """Lock a work-order stage and its work order (work order first)."""
    work_order_id = (
        WorkOrderStage.objects.filter(pk=stage_id)
        .values_list("work_order_id", flat=True)
        .first()
    )
    if work_order_id is None:
        raise NotFound(f"Stage {stage_id} does not exist.")
    _lock_work_order(work_order_id)
    return (
        WorkOrderStage.objects.select_for_update(**ROW_LOCK)
        .select_related("work_order__runbook", "stage__runbook")
        .get(pk=stage_id)
    )


def _require_may_move(stage: WorkOrderStage, actor) -> None:
    if getattr(actor, "role", None) in STAGE_OVERSEERS:
        return
    if not StageAssignment.objects.filter(work_order_stage=stage, user=actor).exists():
        raise Forbidden(
            "Only an operator assigned to this stage, or a supervisor, may move it.",
            code="not_assigned",
        )


def _require_work_order_open(work_order: WorkOrder) -> None:
    # A cancelled (or completed) work order is closed: none of its stages moves,
    # or a stage left running at cancellation could still be finished or resumed.
    if work_order.status in {WorkOrderStatus.COMPLETED, WorkOrderStatus.CANCELLED}:
        raise IllegalTransition(
            f"Work order {work_order.pk} is {work_order.get_status_display()}; "
            "its stages no longer move.",
            code="work_order_closed",
        )


def _gates(stage: WorkOrderStage) -> list[Gate]:
    # Locked, so a gate cannot be locked between this check and our commit.
    return list(
        Gate.objects.select_for_update(**ROW_LOCK)
        .filter(stage_id=stage.stage_id)
        .order_by("id")
    )


def _gate_list(gates: list[Gate]) -> list[dict]:
    return [
        {
            "id": g.pk,
            "status": g.get_status_display(),
            "condition": g.condition,
            "reason": g.reason,
        }
        for g in gates
    ]


def _require_not_locked(stage: WorkOrderStage) -> None:
    locked = [g for g in _gates(stage) if g.status == GateStatus.LOCKED]
    if locked:
        gate = locked[0]
        raise IllegalTransition(
            f"{stage.stage_name} is behind a locked gate: "
            f"{gate.reason or gate.condition}.",
            code="gate_locked",
            details={"gates": _gate_list(locked)},
        )


def _require_gates_open(stage: WorkOrderStage) -> None:
    shut = [g for g in _gates(stage) if g.status != GateStatus.OPEN]
    if shut:
        gate = shut[0]
        what = "locked" if gate.status == GateStatus.LOCKED else "closed"
        raise IllegalTransition(
            f"{stage.stage_name} cannot finish: gate '{gate.condition}' is {what}"
            + (f" ({gate.reason})." if gate.reason else "."),
            code="gate_not_open",
            details={"gates": _gate_list(shut)},
        )


def _require_earlier_stages_done(stage: WorkOrderStage) -> None:
    if not stage.work_order.runbook.sequential:
        return
    pending = (
        WorkOrderStage.objects.filter(
            work_order_id=stage.work_order_id, position__lt=stage.position
        )
        .exclude(status=StageStatus.DONE)
        .order_by("position")
        .first()
    )
    if pending is not None:
        raise IllegalTransition(
            f"{pending.stage_name} must be done before {stage.stage_name} starts.",
            code="stage_out_of_order",
            details={
                "blocking_stage_id": pending.pk,
                "blocking_stage": pending.stage_name,
            },
        )


def _save_stage(
    stage: WorkOrderStage, before: dict, *, action: str, actor, change: str
) -> None:
    stage.save(
        update_fields=[
            "status",
            "actual_start",
            "actual_end",
            "hold_reason",
            "updated_at",
        ]
    )
    audit.record(
        actor=actor,
        action=action,
        target=stage,
        before=before,
        after=_stage_snapshot(stage),
    )
    events.publish(runbook_events.stage_event(stage, change))


@transaction.atomic
def stage_start(*, stage_id: int, actor) -> WorkOrderStage:
    """Start a work-order stage.

    Refused (409) unless it is planned, its work order is still open, the stages
    before it are done (sequential runbooks) and none of its gates is locked; only
    an assigned operator or a supervisor may start it (403). The first started
    stage puts its work order in progress.
    """
    stage = _lock_stage(stage_id)
    _require_may_move(stage, actor)
    work_order = stage.work_order
    _require_work_order_open(work_order)
    stage.require_transition(to=StageStatus.IN_PROGRESS)
    if stage.status != StageStatus.PLANNED:
        raise IllegalTransition(
            f"{stage.stage_name} is on hold; resume it instead of starting it.",
            details={"from": stage.status, "to": StageStatus.IN_PROGRESS},
        )
    _require_earlier_stages_done(stage)
    _require_not_locked(stage)
    with stage_wip.kept(work_order.pk):
        before = _stage_snapshot(stage)
        now = timezone.now()
        stage.status, stage.actual_start = StageStatus.IN_PROGRESS, now
        _save_stage(
            stage, before, action="stage.started", actor=actor, change="started"
        )
        if work_order.status == WorkOrderStatus.PLANNED:
            wo_before = _work_order_snapshot(work_order)
            work_order.status, work_order.started_at = WorkOrderStatus.IN_PROGRESS, now
            work_order.save(update_fields=["status", "started_at", "updated_at"])
            audit.record(
                actor=actor,
                action="workorder.started",
                target=work_order,
                before=wo_before,
                after=_work_order_snapshot(work_order),
            )
            work_order_counts.moved(
                runbook_id=work_order.runbook_id,
                before=WorkOrderStatus.PLANNED,
                after=WorkOrderStatus.IN_PROGRESS,
            )
            events.publish(runbook_events.work_order_event(work_order, "started"))
    return stage


@transaction.atomic
def stage_finish(*, stage_id: int, actor) -> WorkOrderStage:
    """Finish (done) a stage in progress; refused while any of its gates is not Open
    and on a cancelled work order.

    Finishing the last open stage completes the work order.
    """
    stage = _lock_stage(stage_id)
    _require_may_move(stage, actor)
    _require_work_order_open(stage.work_order)
    stage.require_transition(to=StageStatus.DONE)
    _require_gates_open(stage)
    with stage_wip.kept(stage.work_order_id):
        before = _stage_snapshot(stage)
        now = timezone.now()
        stage.status, stage.actual_end = StageStatus.DONE, now
        _save_stage(
            stage, before, action="stage.completed", actor=actor, change="completed"
        )
        work_order = stage.work_order
        remaining = (
            WorkOrderStage.objects.filter(work_order_id=work_order.pk)
            .exclude(status=StageStatus.DONE)
            .exists()
        )
        if not remaining and work_order.status == WorkOrderStatus.IN_PROGRESS:
            work_order.status, work_order.completed_at = WorkOrderStatus.COMPLETED, now
            work_order.save(update_fields=["status", "completed_at", "updated_at"])
            audit.record(
                actor=actor,
                action="workorder.completed",
                target=work_order,
                after=_work_order_snapshot(work_order),
            )
            work_order_counts.moved(
                runbook_id=work_order.runbook_id,
                before=WorkOrderStatus.IN_PROGRESS,
                after=WorkOrderStatus.COMPLETED,
            )
            events.publish(runbook_events.work_order_event(work_order, "completed"))
    return stage


@transaction.atomic
def stage_hold(*, stage_id: int, reason: str, actor) -> WorkOrderStage:
    """Put a planned or running stage of an open work order on hold, with a reason."""
    if not (reason or "").strip():
        raise InvalidInput(
            "A reason is required to hold a stage.",
            code="validation_error",
            details={"reason": ["Required."]},
        )
    stage = _lock_stage(stage_id)
    _require_may_move(stage, actor)
    _require_work_order_open(stage.work_order)
    stage.require_transition(to=StageStatus.HOLD)
    with stage_wip.kept(stage.work_order_id):
        before = _stage_snapshot(stage)
        stage.status, stage.hold_reason = StageStatus.HOLD, reason.strip()[:300]
        _save_stage(stage, before, action="stage.held", actor=actor, change="held")
    return stage


@transaction.atomic
def stage_resume(*, stage_id: int, actor) -> WorkOrderStage:
    """Resume a held stage where it was: in progress if it had started, else planned.

    Refused (409) on a closed work order, and back to in progress while a gate
    of the stage is locked.
    """
    stage = _lock_stage(stage_id)
    _require_may_move(stage, actor)
    _require_work_order_open(stage.work_order)
    target = StageStatus.IN_PROGRESS if stage.actual_start else StageStatus.PLANNED
    # Checked before the table so the message says why ("not on hold") rather
    # than "In Progress cannot become In Progress".
    if stage.status != StageStatus.HOLD:
        raise IllegalTransition(
            f"{stage.stage_name} is not on hold.",
            details={"from": stage.status, "to": target},
        )
    if target == StageStatus.IN_PROGRESS:
        # Back to work is a start in all but name: not behind a locked gate.
        _require_not_locked(stage)
    with stage_wip.kept(stage.work_order_id):
        before = _stage_snapshot(stage)
        stage.status, stage.hold_reason = target, ""
        _save_stage(
            stage, before, action="stage.resumed", actor=actor, change="resumed"
        )
    return stage


@transaction.atomic
def stage_assign(*, stage_id: int, user_id: int, actor) -> StageAssignment:
    """Assign a user to a work-order stage (planners and supervisors)."""
    from bpmos.accounts.models import User

    stage = _lock_stage(stage_id)
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise InvalidInput(
            f"User {user_id} does not exist.",
            code="validation_error",
            details={"user_id": [f"Unknown user {user_id}."]},
        )
    if not user.is_active or user.role not in ASSIGNABLE_ROLES:
        raise InvalidInput(
            f"{user.username} cannot be assigned work.",
            code="validation_error",
            details={"user_id": ["Inactive, or an auditor."]},
        )
    _require_work_order_open(stage.work_order)
    if stage.status == StageStatus.DONE:
        raise IllegalTransition(f"{stage.stage_name} is done; it takes no assignments.")
    assignment, created = StageAssignment.objects.get_or_create(
        work_order_stage=stage,
        user=user,
        defaults={
            "assigned_by": actor if getattr(actor, "is_authenticated", False) else None
        },
    )
    if created:
        audit.record(
            actor=actor,
            action="stage.assigned",
            target=stage,
            after={"user_id": user.pk, "username": user.username},
        )
        events.publish(runbook_events.stage_event(stage, "assigned"))
    return assignment


@transaction.atomic
def stage_unassign(*, stage_id: int, user_id: int, actor) -> None:
    """Remove a user's assignment from a stage."""
    stage = _lock_stage(stage_id)
    deleted, _ = StageAssignment.objects.filter(
        work_order_stage=stage, user_id=user_id
    ).delete()
    if not deleted:
        raise NotFound(f"User {user_id} is not assigned to stage {stage_id}.")
    audit.record(
        actor=actor,
        action="stage.unassigned",
        target=stage,
        before={"user_id": user_id},
    )
    events.publish(runbook_events.stage_event(stage, "unassigned"))


# --- gates -------------------------------------------------------------------------

GATE_ACTIONS = {
    "open": GateStatus.OPEN,
    "close": GateStatus.CLOSED,
    "lock": GateStatus.LOCKED,
}


def gate_set(
    *, gate_id: int, action: str, actor, reason: str = "", password: Any = None
) -> Gate:
    """Open, close or lock a gate (supervisor actions). Locking needs a reason.

    Unlocking is opening or closing a locked gate. Setting a gate to the state it
    is in is refused (409) so two supervisors cannot both believe they acted
    (locking a locked gate too: no password is asked for a change refused anyway).

    Unlocking overrides an interlock: it is a signed step (meaning
    ``gate_override``). The actor's re-entered ``password`` is checked before
    anything is locked (a wrong one is audited; 403, nothing else written), and
    the signature is bound to the hash of the gate change (gate, from, to,
    reason, time, actor), which the ``gate.unlocked`` audit record carries too.
    """
    checked = None
    unlocking = action in GATE_ACTIONS and action != "lock"
    if password is not None or (unlocking and _gate_is_locked(gate_id)):
        checked = esign.signature_check(
            signer=actor, password=password, meaning=SignatureMeaning.GATE_OVERRIDE
        )
    return _gate_set(
        gate_id=gate_id, action=action, actor=actor, reason=reason, checked=checked
    )


def _gate_is_locked(gate_id: int) -> bool:
    return Gate.objects.filter(pk=gate_id, status=GateStatus.LOCKED).exists()


def gate_change_hash(change: dict) -> str:
    """SHA-256 of the canonical JSON of a gate change: what a gate override's
    signature is bound to."""
    canonical = json.dumps(change, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@transaction.atomic
def _gate_set(*, gate_id: int, action: str, actor, reason: str, checked) -> Gate:
    if action not in GATE_ACTIONS:
        raise InvalidInput(
            f"Unknown gate action {action!r}.",
            code="validation_error",
            details={"action": [f"One of {sorted(GATE_ACTIONS)}."]},
        )
    reason = (reason or "").strip()
    if action == "lock" and not reason:
        raise InvalidInput(
            "A reason is required to lock a gate.",
            code="validation_error",
            details={"reason": ["Required to lock."]},
        )
    gate = lock_row(
        Gate.objects.select_related("stage__runbook"),
        what=f"Gate {gate_id}",
        pk=gate_id,
    )
    target = GATE_ACTIONS[action]
    if gate.status == target:
        raise IllegalTransition(
            f"The gate '{gate.condition}' is already {gate.get_status_display()}.",
            details={"from": gate.status, "to": target},
        )
    if gate.status == GateStatus.LOCKED and checked is None:
        # Locked between the check above and this row lock: still a signed step.
        raise InvalidInput(
            "Gate override is a signed step: re-enter your password to sign it.",
            code="validation_error",
            details={"password": ["Required: your password, to sign."]},
        )
    before = {"status": gate.status, "reason": gate.reason}
    gate.status = target
    gate.reason = reason[:300]
    gate.changed_by = actor if getattr(actor, "is_authenticated", False) else None
    gate.changed_at = timezone.now()
    gate.save(update_fields=["status", "reason", "changed_by", "changed_at"])
    verb = {"open": "opened", "close": "closed", "lock": "locked"}[action]
    after = {"status": gate.status, "reason": gate.reason}
    if before["status"] == GateStatus.LOCKED:
        verb = "unlocked"
        change = {
            "gate": gate.pk,
            "from": before["status"],
            "to": gate.status,
            "reason": gate.reason,
            "at": gate.changed_at.astimezone(UTC).isoformat(),
            "actor": actor.get_username(),
        }
        bound = gate_change_hash(change)
        signature = esign.signature_record(
            checked=checked,
            record_type="runbooks.gate",
            record_id=gate.pk,
            bound_hash=bound,
            signed_at=gate.changed_at,
        )
        after.update(change=change, changeHash=bound, signature=signature.hash)
    audit.record(
        actor=actor,
        action=f"gate.{verb}",
        target=gate,
        before=before,
        after=after,
    )
    events.publish(runbook_events.gate_event(gate))
    return gate
