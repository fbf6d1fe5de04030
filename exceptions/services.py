"""Every write of exceptions: raise (incl. stage issues), acknowledge, resolve,
escalate. Views, the escalation beat task and the admin call these.

Each one appends its step to the exceptions' journal (``ExceptionEvent``,
append-only) in the transaction of the change, beside the audit record and the
live event. ``escalation_log`` on the exception is still kept as it was (the
API's ``escalationPath`` reads it); it could now be derived from the journal.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from bpmos import events
from bpmos.errors import InvalidInput, NotFound
from bpmos.locking import lock_row
from elog import audit
from exceptions import events as exception_events
from exceptions.models import (
    ACK_DEADLINE,
    ESCALATION_PATH,
    ExceptionEvent,
    ExceptionEventKind,
    ExceptionSource,
    ExceptionStatus,
    ExceptionType,
    PlantException,
    Severity,
)
from runbooks.models import WorkOrderStage

# Issue types whose default severity is not Medium.
_DEFAULT_SEVERITY = {
    ExceptionType.SAFETY: Severity.HIGH,
    ExceptionType.GATE_INTERLOCK: Severity.HIGH,
    ExceptionType.QUALITY_FAILURE: Severity.HIGH,
}
# Types that halt the line by default.
_BLOCKING_TYPES = {ExceptionType.SAFETY, ExceptionType.GATE_INTERLOCK}


def _snapshot(exc: PlantException) -> dict:
    return {
        "status": exc.status,
        "severity": exc.severity,
        "escalation_level": exc.escalation_level,
        "resolution_note": exc.resolution_note,
    }


def _lock(exception_id: int) -> PlantException:
    # of=self: the runbook is nullable, so it is an outer join, which PostgreSQL
    # refuses to lock ("FOR UPDATE cannot be applied to the nullable side").
    return lock_row(
        PlantException.objects.select_related("runbook"),
        what=f"Exception {exception_id}",
        pk=exception_id,
    )


def _log_step(exc: PlantException, at: datetime) -> None:
    exc.escalation_log = [
        *exc.escalation_log,
        {
            "level": exc.escalation_level,
            "role": exc.responsible_role,
            "at": at.isoformat(),
        },
    ]


def _journal(
    exc: PlantException, kind: str, *, at: datetime, actor, note: str = ""
) -> ExceptionEvent:
    """Append one step of ``exc`` to its journal (the caller's transaction)."""
    return ExceptionEvent.objects.create(
        exception=exc,
        kind=kind,
        at=at,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        level=exc.escalation_level,
        role=exc.responsible_role,
        note=note,
    )


@transaction.atomic
def exception_raise(
    *,
    type: str,
    title: str,
    actor,
    severity: str | None = None,
    description: str = "",
    source: str = ExceptionSource.MANUAL,
    is_blocking: bool | None = None,
    runbook=None,
    stage=None,
    work_order=None,
    work_order_stage=None,
) -> PlantException:
    """Open an exception; it starts at the first level of the escalation path."""
    if type not in ExceptionType.values:
        raise InvalidInput(
            f"Unknown exception type {type!r}.",
            code="validation_error",
            details={"type": [f"One of {', '.join(ExceptionType.values)}."]},
        )
    severity = severity or _DEFAULT_SEVERITY.get(type, Severity.MEDIUM)
    if severity not in Severity.values:
        raise InvalidInput(
            f"Unknown severity {severity!r}.",
            code="validation_error",
            details={"severity": [f"One of {', '.join(Severity.values)}."]},
        )
    now = timezone.now()
    exc = PlantException(
        type=type,
        severity=severity,
        source=source,
        title=title[:200],
        description=description,
        is_blocking=(type in _BLOCKING_TYPES or severity == Severity.CRITICAL)
        if is_blocking is None
        else is_blocking,
        runbook=runbook,
        stage=stage,
        work_order=work_order,
        work_order_stage=work_order_stage,
        raised_by=actor if getattr(actor, "is_authenticated", False) else None,
        ack_due_at=now + ACK_DEADLINE[severity],
    )
    _log_step(exc, now)
    exc.save()
    _journal(exc, ExceptionEventKind.RAISED, at=exc.raised_at, actor=actor)
    audit.record(
        actor=actor, action="exception.raised", target=exc, after=_snapshot(exc)
    )
    events.publish(exception_events.exception_event(exc, "raised"))
    return exc


def _issue_title(description: str, limit: int = 120) -> str:
    """The operator's first sentence (of the first line), at most ``limit`` long.

    The control tower shows it after the type ("Quality Failure: Seal leaking on
    cell 3"); the stage is known from the links, the full text stays in the
    description.
    """
    line = description.strip().splitlines()[0]
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def stage_issue_raise(
    *, stage_id: int, type: str, description: str, actor, severity: str | None = None
) -> PlantException:
    """Raise an issue on a work-order stage (mobile app): it becomes an exception."""
    stage = (
        WorkOrderStage.objects.select_related("work_order__runbook", "stage")
        .filter(pk=stage_id)
        .first()
    )
    if stage is None:
        raise NotFound(f"Stage {stage_id} does not exist.")
    if not (description or "").strip():
        raise InvalidInput(
            "Describe the issue.",
            code="validation_error",
            details={"description": ["This field may not be blank."]},
        )
    title = _issue_title(description)
    return exception_raise(
        type=type,
        severity=severity,
        title=title,
        description=description.strip(),
        source=ExceptionSource.STAGE_ISSUE,
        actor=actor,
        runbook=stage.work_order.runbook,
        stage=stage.stage,
        work_order=stage.work_order,
        work_order_stage=stage,
    )


@transaction.atomic
def exception_acknowledge(*, exception_id: int, actor) -> PlantException:
    """Acknowledge an open exception: it stops escalating."""
    exc = _lock(exception_id)
    exc.require_transition(to=ExceptionStatus.ACKNOWLEDGED)
    before = _snapshot(exc)
    exc.status = ExceptionStatus.ACKNOWLEDGED
    exc.acknowledged_by = actor if getattr(actor, "is_authenticated", False) else None
    exc.acknowledged_at = timezone.now()
    exc.save()
    _journal(exc, ExceptionEventKind.ACKNOWLEDGED, at=exc.acknowledged_at, actor=actor)
    audit.record(
        actor=actor,
        action="exception.acknowledged",
        target=exc,
        before=before,
        after=_snapshot(exc),
    )
    events.publish(exception_events.exception_event(exc, "acknowledged"))
    return exc


@transaction.atomic
def exception_resolve(
    *, exception_id: int, resolution_note: str, actor
) -> PlantException:
    """Resolve an exception; a resolution note is required."""
    note = (resolution_note or "").strip()
    if not note:
        raise InvalidInput(
            "A resolution note is required.",
            code="validation_error",
            details={"resolution_note": ["This field is required."]},
        )
    exc = _lock(exception_id)
    exc.require_transition(to=ExceptionStatus.RESOLVED)
    before = _snapshot(exc)
    now = timezone.now()
    exc.status = ExceptionStatus.RESOLVED
    exc.resolution_note = note
    exc.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
    exc.resolved_at = now
    if exc.acknowledged_at is None:
        exc.acknowledged_at, exc.acknowledged_by = now, exc.resolved_by
    exc.save()
    _journal(exc, ExceptionEventKind.RESOLVED, at=now, actor=actor, note=note)
    audit.record(
        actor=actor,
        action="exception.resolved",
        target=exc,
        before=before,
        after=_snapshot(exc),
    )
    events.publish(exception_events.exception_event(exc, "resolved"))
    return exc


def exceptions_escalate_overdue(
    *, now: datetime | None = None, limit: int = 500
) -> int:
    """Escalate each open exception whose acknowledgement is overdue, one level.

    Run by Celery beat. Each exception is escalated in its own transaction under
    a row lock and re-checked there, so overlapping runs never escalate twice.
    Reaching the top of the path (the plant head) ends the escalation.
    """
    now = now or timezone.now()
    top = len(ESCALATION_PATH) - 1
    due = list(
        PlantException.objects.filter(
            status=ExceptionStatus.OPEN, ack_due_at__lte=now, escalation_level__lt=top
        )
        .order_by("ack_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    escalated = 0
    for pk in due:
        with transaction.atomic():
            exc = _lock(pk)
            if (
                exc.status != ExceptionStatus.OPEN
                or exc.ack_due_at is None
                or exc.ack_due_at > now
                or exc.escalation_level >= top
            ):
                continue
            before = _snapshot(exc)
            exc.escalation_level += 1
            exc.ack_due_at = now + ACK_DEADLINE[exc.severity]
            _log_step(exc, now)
            exc.save()
            _journal(exc, ExceptionEventKind.ESCALATED, at=now, actor=None)
            audit.record(
                actor=None,
                action="exception.escalated",
                target=exc,
                before=before,
                after=_snapshot(exc),
            )
            events.publish(exception_events.exception_event(exc, "escalated"))
            escalated += 1
    return escalated
