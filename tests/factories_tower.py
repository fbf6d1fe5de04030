"""Builders for control-tower and exceptions tests.

Templates (runbooks, stages, gates) are plain rows: no service creates them yet.
Everything that moves (work orders, stages, gates, exceptions) goes through the
services, as the API does, so the scenarios are ones the plant can reach.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from exceptions import services as exception_services
from runbooks import services
from runbooks.models import (
    Gate,
    GateStatus,
    GateType,
    Runbook,
    RunbookKind,
    Stage,
    WorkOrder,
    WorkOrderStage,
)

MANUFACTURING_STAGES = [
    ("S1", "Cell Inbound"),
    ("S2", "Cell Grading"),
    ("S3", "Cell Stacking"),
    ("S4", "Busbar Welding"),
    ("S5", "Module Assembly"),
    ("S6", "End-of-Line Test"),
]


def at(text: str) -> datetime:
    """An aware UTC time from "2026-01-15T10:30:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_runbook(
    slug: str = "manufacturing",
    *,
    title: str = "Manufacturing Execution",
    prefix: str = "mfg",
    stages: list[tuple[str, str]] = MANUFACTURING_STAGES,
    kind: str = RunbookKind.MANUFACTURING,
    roles: list[str] | None = None,
    **extra,
) -> Runbook:
    """A runbook with stages ``<prefix>-01``... in the order given."""
    runbook = Runbook.objects.create(
        slug=slug,
        title=title,
        kind=kind,
        roles=["Planner", "Operator"] if roles is None else roles,
        **extra,
    )
    Stage.objects.bulk_create(
        Stage(
            runbook=runbook,
            slug=f"{prefix}-{position:02d}",
            code=code,
            name=name,
            position=position,
        )
        for position, (code, name) in enumerate(stages, start=1)
    )
    return runbook


def stage_of(runbook: Runbook, code: str) -> Stage:
    return Stage.objects.get(runbook=runbook, code=code)


def make_gate(
    stage: Stage,
    *,
    condition: str = "Seal Integrity Check",
    type: str = GateType.VALIDATION,
    status: str = GateStatus.OPEN,
) -> Gate:
    return Gate.objects.create(
        stage=stage, condition=condition, type=type, status=status
    )


def make_work_order(
    runbook: Runbook,
    actor,
    *,
    start: datetime | None = None,
    hours: int = 8,
    lot_no: str = "LOT-1",
) -> WorkOrder:
    """A planned work order (through the service); by default due in the future."""
    start = start or timezone.now() + timedelta(hours=1)
    return services.work_order_create(
        product_code="MOD-48V",
        lot_no=lot_no,
        qty=10,
        planned_start=start,
        planned_end=start + timedelta(hours=hours),
        actor=actor,
        runbook_slug=runbook.slug,
    )


def wo_stage(work_order: WorkOrder, code: str) -> WorkOrderStage:
    return WorkOrderStage.objects.get(work_order=work_order, stage__code=code)


def finish_through(work_order: WorkOrder, code: str, actor) -> None:
    """Start and finish every stage up to and including ``code``."""
    for stage in WorkOrderStage.objects.filter(work_order=work_order).order_by(
        "position"
    ):
        services.stage_start(stage_id=stage.pk, actor=actor)
        services.stage_finish(stage_id=stage.pk, actor=actor)
        if stage.stage.code == code:
            return


def start(work_order: WorkOrder, code: str, actor) -> WorkOrderStage:
    stage = wo_stage(work_order, code)
    services.stage_start(stage_id=stage.pk, actor=actor)
    return stage


def hold(work_order: WorkOrder, code: str, actor, reason: str) -> WorkOrderStage:
    stage = wo_stage(work_order, code)
    services.stage_hold(stage_id=stage.pk, reason=reason, actor=actor)
    return stage


def raise_exception(actor, *, runbook=None, stage=None, **fields):
    """An exception through the service; defaults: Medium process deviation."""
    fields.setdefault("type", "process_deviation")
    fields.setdefault("title", "Torque drift on line A")
    return exception_services.exception_raise(
        actor=actor, runbook=runbook, stage=stage, **fields
    )
