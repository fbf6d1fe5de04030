"""Live events of exceptions (topic ``exceptions``)."""

from typing import TypedDict

from bpmos.events import Event, declare


class ExceptionPayload(TypedDict):
    id: str
    type: str
    severity: str
    status: str
    title: str
    runbookId: str | None
    workOrderStageId: int | None
    responsibleRole: str
    escalationLevel: int


EXCEPTION_EVENTS = {
    change: declare(f"exception.{change}", ExceptionPayload)
    for change in ("raised", "acknowledged", "escalated", "resolved")
}


def exception_event(exc, change: str) -> Event:
    """The event for a change to an exception."""
    payload: ExceptionPayload = {
        "id": exc.code,
        "type": exc.get_type_display(),
        "severity": exc.get_severity_display(),
        "status": exc.status,
        "title": exc.title,
        "runbookId": exc.runbook.slug if exc.runbook_id else None,
        "workOrderStageId": exc.work_order_stage_id,
        "responsibleRole": exc.responsible_role,
        "escalationLevel": exc.escalation_level,
    }
    # An escalation is an alert too: screens following only "alerts" (the role
    # dashboards' live alerts) hear of it without following every exception.
    topics = ("exceptions", "alerts") if change == "escalated" else ("exceptions",)
    return Event(name=EXCEPTION_EVENTS[change], topics=topics, data=payload)
