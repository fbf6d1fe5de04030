"""Live events of production execution (topic ``runbooks``)."""

from typing import TypedDict

from bpmos.events import Event, declare


class StagePayload(TypedDict):
    id: int
    workOrderId: int
    runbookId: str
    stageId: str
    stageName: str
    status: str
    holdReason: str
    actualStart: str | None
    actualEnd: str | None


class WorkOrderPayload(TypedDict):
    id: int
    runbookId: str
    productCode: str
    lotNo: str
    qty: int
    status: str


class GatePayload(TypedDict):
    id: int
    runbookId: str
    stageId: str
    status: str
    type: str
    condition: str
    reason: str


STAGE_EVENTS = {
    change: declare(f"stage.{change}", StagePayload)
    for change in ("started", "completed", "held", "resumed", "assigned", "unassigned")
}
WORK_ORDER_EVENTS = {
    change: declare(f"workorder.{change}", WorkOrderPayload)
    for change in ("created", "started", "completed", "cancelled")
}
GATE_CHANGED = declare("gate.changed", GatePayload)


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def stage_event(stage, change: str) -> Event:
    """The event for a change to a work-order stage."""
    payload: StagePayload = {
        "id": stage.pk,
        "workOrderId": stage.work_order_id,
        "runbookId": stage.stage.runbook.slug,
        "stageId": stage.stage.slug,
        "stageName": stage.stage_name,
        "status": stage.status,
        "holdReason": stage.hold_reason,
        "actualStart": _iso(stage.actual_start),
        "actualEnd": _iso(stage.actual_end),
    }
    return Event(name=STAGE_EVENTS[change], topics=("runbooks",), data=payload)


def work_order_event(work_order, change: str) -> Event:
    """The event for a change to a work order."""
    payload: WorkOrderPayload = {
        "id": work_order.pk,
        "runbookId": work_order.runbook.slug,
        "productCode": work_order.product_code,
        "lotNo": work_order.lot_no,
        "qty": work_order.qty,
        "status": work_order.status,
    }
    return Event(name=WORK_ORDER_EVENTS[change], topics=("runbooks",), data=payload)


def gate_event(gate) -> Event:
    """The event for a gate that opened, closed, locked or unlocked."""
    payload: GatePayload = {
        "id": gate.pk,
        "runbookId": gate.stage.runbook.slug,
        "stageId": gate.stage.slug,
        "status": gate.get_status_display(),
        "type": gate.get_type_display(),
        "condition": gate.condition,
        "reason": gate.reason,
    }
    return Event(name=GATE_CHANGED, topics=("runbooks",), data=payload)
