"""Factories for production tests: a small runbook and work orders made through
the services (so they look exactly like the API's).

The runbook: three sequential stages of 60 standard minutes each, S1 Cell
Grading, S2 Module Assembly (one gate, Open unless asked otherwise) and S3
End-of-Line Test. A work order planned over T0..T0+3h therefore gets stage
windows 08:00-09:00, 09:00-10:00 and 10:00-11:00 UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from exceptions.models import PlantException
from runbooks import services
from runbooks.models import (
    Gate,
    GateStatus,
    GateType,
    Runbook,
    RunbookKind,
    Stage,
    StageAssignment,
    Step,
    WorkOrder,
    WorkOrderStage,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
STAGES = [("S1", "Cell Grading"), ("S2", "Module Assembly"), ("S3", "End-of-Line Test")]


def make_runbook(
    *,
    slug: str = "manufacturing",
    is_default: bool = True,
    sequential: bool = True,
    gate_status: str = GateStatus.OPEN,
    gate_reason: str = "",
) -> Runbook:
    """A runbook of three stages; the second has one gate in ``gate_status``."""
    runbook = Runbook.objects.create(
        slug=slug,
        title=f"{slug.title()} Execution",
        kind=RunbookKind.MANUFACTURING,
        sequential=sequential,
        is_default=is_default,
    )
    for position, (code, name) in enumerate(STAGES, start=1):
        stage = Stage.objects.create(
            runbook=runbook,
            slug=f"{slug}-{position:02d}",
            code=code,
            name=name,
            position=position,
            standard_minutes=60,
        )
        Step.objects.create(stage=stage, position=1, instruction=f"Do {name}")
        if code == "S2":
            Gate.objects.create(
                stage=stage,
                type=GateType.QUALITY,
                condition="Seal check passed",
                status=gate_status,
                reason=gate_reason,
            )
    return runbook


def make_work_order(
    actor,
    *,
    runbook: Runbook | None = None,
    start: datetime = T0,
    hours: int = 3,
    qty: int = 10,
    product_code: str = "PACK-48V",
    lot_no: str = "LOT-001",
) -> WorkOrder:
    """A work order released by ``actor`` through ``work_order_create``."""
    return services.work_order_create(
        product_code=product_code,
        lot_no=lot_no,
        qty=qty,
        planned_start=start,
        planned_end=start + timedelta(hours=hours),
        runbook_slug=runbook.slug if runbook else None,
        actor=actor,
    )


def stages_of(work_order: WorkOrder) -> list[WorkOrderStage]:
    """The work order's stages in runbook order."""
    return list(work_order.stages.order_by("position"))


def gate_of(runbook: Runbook) -> Gate:
    """The one gate of the runbook (on S2)."""
    return Gate.objects.get(stage__runbook=runbook)


def iso(value: datetime | None) -> str | None:
    """A datetime as the API renders it (ISO 8601, UTC as Z)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def row_counts() -> dict[str, int]:
    """How many rows every table a production write touches holds now.

    Compare before and after a refused request: nothing may have changed.
    """
    return {
        "work_orders": WorkOrder.objects.count(),
        "stages": WorkOrderStage.objects.count(),
        "assignments": StageAssignment.objects.count(),
        "issues": PlantException.objects.count(),
        "audit": AuditRecord.objects.count(),
        "events": OutboxEvent.objects.count(),
    }


def audit_iso(value: datetime | None) -> str | None:
    """A datetime as an audit record's before/after stores it (milliseconds)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def new_event_names(since: int) -> list[str]:
    """Names of the events published after outbox id ``since``, in order."""
    return list(
        OutboxEvent.objects.filter(pk__gt=since)
        .order_by("pk")
        .values_list("name", flat=True)
    )


def last_event_id() -> int:
    """The newest outbox id (0 when empty)."""
    return OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
