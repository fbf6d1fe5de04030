"""The electronic shift log: every write (docs/logs.md, "The electronic shift log").

Entries are immutable (database triggers, migration 0004): a mistake is
corrected by a new ``correction`` entry naming the one it corrects, a handover
is acknowledged by a new ``handover_ack`` entry naming it. Each entry falls in
a shift of the plant's calendar (``elog.shifts``, the lines' shifts that OEE
uses).

* ``entry_write``: what a person writes (``POST /api/logs/write``): a note,
  a handover (supervisors and above), a correction, an incident, ... The
  operator is the token's user; ``operator_id`` must name them.
* ``handover_acknowledge``: the incoming shift's supervisor (or plant head,
  admin) acknowledges a handover, once, during the shift that follows it.
* ``auto_entry``: the contract's auto-entries (``alarm_acknowledged``,
  ``work_order_created``, ``readings_approved``), written by the service that
  does the thing, inside its transaction, so they commit or roll back with it.

People's entries are audited (``shift_log.*``). An auto-entry is not audited
again: the service that writes it audits its own action in the same
transaction (``alarm.acknowledged``, ...), and a second record would count one
act twice.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from bpmos import access, context
from bpmos.errors import Conflict, Forbidden, InvalidInput
from bpmos.locking import lock_row
from elog import audit, shifts
from elog.models import ShiftLogEntry
from elog.models import ShiftLogEntryType as T

# The contract's auto-entries: only the services that do these things write them.
AUTOMATIC_TYPES: frozenset[str] = frozenset(
    {T.READINGS_APPROVED, T.WORK_ORDER_CREATED, T.ALARM_ACKNOWLEDGED}
)
# What people write through POST /api/logs/write (handover_ack has its own route).
WRITABLE_TYPES: tuple[str, ...] = (
    T.NOTE,
    T.HANDOVER,
    T.CORRECTION,
    T.INCIDENT,
    T.SAFETY,
    T.QUALITY,
    T.MAINTENANCE,
)
MAX_BODY = 4000  # characters
MAX_METADATA_BYTES = 8192  # of the metadata object as compact JSON
MAX_METADATA_DEPTH = 5


def this_plant_id() -> str:
    """This installation's plant id (BPM-OS runs one plant per installation)."""
    return settings.BPMOS_PLANT_ID


def _name_of(user: Any) -> str:
    if not getattr(user, "is_authenticated", False):
        return "system"
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    return (full or user.get_username())[:150]


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def _metadata_problem(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        return "Must be a JSON object."
    if _depth(metadata) > MAX_METADATA_DEPTH:
        return f"Nested deeper than {MAX_METADATA_DEPTH} levels."
    try:
        size = len(
            json.dumps(metadata, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
        )
    except (TypeError, ValueError):
        return "Must be plain JSON."
    if size > MAX_METADATA_BYTES:
        return f"At most {MAX_METADATA_BYTES} bytes as JSON (got {size})."
    return None


def _body_problem(body: Any) -> str | None:
    if not isinstance(body, str) or not body.strip():
        return "Required: what happened."
    if len(body) > MAX_BODY:
        return f"At most {MAX_BODY} characters."
    if "\x00" in body:
        return "Must not contain NUL characters."
    return None


def snapshot(entry: ShiftLogEntry) -> dict[str, Any]:
    """What the audit record keeps of an entry."""
    return {
        "plant_id": entry.plant_id,
        "operator_id": entry.operator_id,
        "entry_type": entry.entry_type,
        "body": entry.body[:500],
        "line": entry.line,
        "shift_start": entry.shift_start,
        "shift_end": entry.shift_end,
        "corrects": entry.corrects_id,
        "acknowledges": entry.acknowledges_id,
    }


def _create(
    *,
    actor: Any,
    entry_type: str,
    body: str,
    metadata: dict[str, Any],
    line: str,
    now: datetime,
    window: tuple[datetime, datetime],
    automatic: bool = False,
    corrects: ShiftLogEntry | None = None,
    acknowledges: ShiftLogEntry | None = None,
    target_type: str = "",
    target_id: str = "",
) -> ShiftLogEntry:
    start, end = window  # the shift of ``line`` containing ``now``
    ctx = context.current()
    user = actor if getattr(actor, "is_authenticated", False) else None
    return ShiftLogEntry.objects.create(
        plant_id=this_plant_id(),
        operator=user,
        operator_name=_name_of(actor),
        entry_type=entry_type,
        body=body,
        metadata=audit.normalize_json(metadata),
        line=line,
        shift_start=start,
        shift_end=end,
        target_type=target_type[:50],
        target_id=target_id[:64],
        corrects=corrects,
        acknowledges=acknowledges,
        automatic=automatic,
        source=(ctx.source or "system")[:20],
        request_id=(ctx.request_id or "")[:128],
        created_at=now,
    )


@transaction.atomic
def entry_write(
    *,
    actor: Any,
    plant_id: str,
    operator_id: int,
    operator_name: str,
    entry_type: str,
    body: str,
    metadata: Any = None,
    line: str = "",
    corrects_id: int | None = None,
    now: datetime | None = None,
) -> ShiftLogEntry:
    """Write one entry as ``actor`` (the token's user). 400 naming each bad
    field: a plant other than this one, an ``operator_id`` that is not the
    actor, an unknown (or system-only) ``entry_type``, an empty or oversized
    ``body``, ``metadata`` that is not a small JSON object, an unknown line, a
    correction without ``corrects`` (or ``corrects`` on another type, or naming
    no entry). A handover is written by supervisors and above (403)."""
    metadata = {} if metadata is None else metadata
    errors: dict[str, list[str]] = {}
    if plant_id != this_plant_id():
        errors["plant_id"] = [f"Unknown plant; this plant is {this_plant_id()!r}."]
    if operator_id != getattr(actor, "pk", None):
        errors["operator_id"] = ["Must be your own user id (the token's user)."]
    if not isinstance(operator_name, str) or not operator_name.strip():
        errors["operator_name"] = ["Required."]
    elif len(operator_name) > 150:
        errors["operator_name"] = ["At most 150 characters."]
    if entry_type in AUTOMATIC_TYPES or entry_type == T.HANDOVER_ACK:
        errors["entry_type"] = [
            f"{entry_type!r} is written by the system, not through this endpoint."
        ]
    elif entry_type not in WRITABLE_TYPES:
        errors["entry_type"] = [
            f"Unknown entry type {str(entry_type)[:30]!r}; one of: "
            + ", ".join(WRITABLE_TYPES)
            + "."
        ]
    if problem := _body_problem(body):
        errors["body"] = [problem]
    if problem := _metadata_problem(metadata):
        errors["metadata"] = [problem]
    corrected = None
    if entry_type == T.CORRECTION:
        if corrects_id is None:
            errors["corrects"] = ["Required for a correction: the entry it corrects."]
        else:
            corrected = ShiftLogEntry.objects.filter(pk=corrects_id).first()
            if corrected is None:
                errors["corrects"] = [f"No shift-log entry {corrects_id}."]
    elif corrects_id is not None:
        errors["corrects"] = ["Only a correction names the entry it corrects."]
    now = now or timezone.now()
    window = None
    try:
        window = shifts.shift_of(at=now, line=line)
    except shifts.UnknownLine:
        errors["line"] = [f"No line {line[:50]!r}."]
    if not line and corrected is not None and corrected.line:
        # A correction stays on the corrected entry's line (if it still exists).
        with contextlib.suppress(shifts.UnknownLine):
            window = shifts.shift_of(at=now, line=corrected.line)
            line = corrected.line
    if errors or window is None:
        field = next(iter(errors))
        raise InvalidInput(
            f"Invalid input. {field}: {errors[field][0]}",
            code="validation_error",
            details=errors,
        )
    if entry_type == T.HANDOVER and not access.allows(
        access.SUPERVISORS, getattr(actor, "role", None)
    ):
        raise Forbidden(
            "A shift handover is written by the outgoing supervisor.",
            code="permission_denied",
        )
    entry = _create(
        actor=actor,
        entry_type=entry_type,
        body=body,
        metadata=metadata,
        line=line,
        now=now,
        window=window,
        corrects=corrected,
    )
    audit.record(
        actor=actor,
        action="shift_log.corrected" if corrected else "shift_log.written",
        target=entry,
        after=snapshot(entry),
    )
    return entry


@transaction.atomic
def handover_acknowledge(
    *, handover_id: int, actor: Any, body: str = "", now: datetime | None = None
) -> ShiftLogEntry:
    """The incoming supervisor acknowledges a handover: a ``handover_ack``
    entry naming it. Only a supervisor, plant head or admin (403); only a
    handover (404 otherwise); 409 when it was acknowledged before, when the
    actor wrote it, or when now is not the shift that follows the handover's."""
    if not access.allows(access.SUPERVISORS, getattr(actor, "role", None)):
        raise Forbidden(
            "A handover is acknowledged by the incoming supervisor.",
            code="permission_denied",
        )
    body = body or "Handover acknowledged."
    if problem := _body_problem(body):
        raise InvalidInput(
            f"Invalid input. body: {problem}",
            code="validation_error",
            details={"body": [problem]},
        )
    handover = lock_row(
        ShiftLogEntry.objects.filter(entry_type=T.HANDOVER),
        what=f"Handover {handover_id}",
        pk=handover_id,
    )
    if ShiftLogEntry.objects.filter(acknowledges=handover).exists():
        raise Conflict(
            f"Handover {handover.pk} was acknowledged already.",
            code="already_acknowledged",
        )
    if handover.operator_id is not None and handover.operator_id == actor.pk:
        raise Conflict(
            "The incoming supervisor acknowledges a handover, not its writer.",
            code="own_handover",
        )
    now = now or timezone.now()
    try:
        window = shifts.shift_of(at=now, line=handover.line)
    except shifts.UnknownLine:  # the line was renamed since
        window = shifts.shift_of(at=now)
    if window[0] != handover.shift_end:
        raise Conflict(
            "A handover is acknowledged during the shift that follows it "
            f"(from {handover.shift_end.isoformat()}).",
            code="not_incoming_shift",
            details={"incoming_shift_start": handover.shift_end.isoformat()},
        )
    try:
        with transaction.atomic():  # the one-to-one decides a race
            entry = _create(
                actor=actor,
                entry_type=T.HANDOVER_ACK,
                body=body,
                metadata={},
                line=handover.line,
                now=now,
                window=window,
                acknowledges=handover,
            )
    except IntegrityError:
        raise Conflict(
            f"Handover {handover.pk} was acknowledged already.",
            code="already_acknowledged",
        ) from None
    audit.record(
        actor=actor,
        action="shift_log.handover_acknowledged",
        target=entry,
        after=snapshot(entry),
    )
    return entry


def auto_entry(
    *,
    entry_type: str,
    actor: Any,
    body: str,
    target: Any = None,
    metadata: dict[str, Any] | None = None,
    line: str = "",
) -> ShiftLogEntry:
    """One of the contract's auto-entries, written by the service that did the
    thing, inside its (open) transaction. ``actor`` None: the system.
    ``target`` is the model instance the entry is about (alarm, work order,
    connector). Not audited again (see the module docstring)."""
    if entry_type not in AUTOMATIC_TYPES:
        raise ValueError(f"{entry_type!r} is not an auto-entry type.")
    if not connection.in_atomic_block:
        raise RuntimeError("An auto-entry is written inside its service's transaction.")
    target_type = target_id = ""
    if target is not None:
        target_type, target_id = target._meta.model_name, str(target.pk)
    now = timezone.now()
    try:
        window = shifts.shift_of(at=now, line=line)
    except shifts.UnknownLine:
        line, window = "", shifts.shift_of(at=now)
    body = body[:MAX_BODY] or entry_type
    return _create(
        actor=actor,
        entry_type=entry_type,
        body=body,
        metadata=metadata or {},
        line=line,
        now=now,
        window=window,
        automatic=True,
        target_type=target_type,
        target_id=target_id,
    )
