"""Maintenance work orders to the CMMS. Interface (the CMMS slice fills it in):

work_order_create(*, data: dict, actor) -> MaintenanceWorkOrder
work_order_for_alarm(*, alarm_id: int, actor=None) -> MaintenanceWorkOrder
    At most one open work order per alarm (returns the open one).
work_order_deliver(*, work_order_id: int) -> bool   # one attempt, logged

How delivery works (docs/scada.md, "Maintenance work orders and the CMMS"):

* A work order is stored ``queued`` with ``next_attempt_at`` = now, and a
  Celery task is queued after commit to make its first attempt.
* One attempt (``work_order_attempt``) claims the row (it moves
  ``next_attempt_at`` a lease ahead, so no other worker sends it meanwhile),
  POSTs outside any transaction, then logs a ``DeliveryAttempt`` and sets the
  state: ``sent`` with the CMMS's id; still ``queued`` with ``next_attempt_at``
  on an exponential backoff after a failure that may pass (unreachable, 5xx,
  408/425/429); ``failed`` after the last of ``BPMOS_CMMS_MAX_ATTEMPTS``, when
  it is still tried every ``BPMOS_CMMS_BACKOFF_CAP_S``; ``failed`` with no next
  attempt when the CMMS refused it (another 4xx: bad data or credentials,
  which repeating cannot fix; a person retries it once fixed).
* The Celery task retries on the same backoff; the beat task
  (``work_orders_due``) re-queues every work order whose next attempt is due,
  so a lost message, a restarted worker or a crash in mid-attempt (its lease
  runs out) never loses a work order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from bpmos.errors import Conflict, InvalidInput, NotFound
from bpmos.locking import lock_row
from elog import audit, shiftlog
from elog.models import ShiftLogEntryType
from scada.connectors.base import ConnectorError, connector_for
from scada.connectors.cmms import CmmsConnector
from scada.models import (
    AlarmEvent,
    AlarmSeverity,
    Connector,
    ConnectorKind,
    DeliveryAttempt,
    DeliveryState,
    MaintenanceWorkOrder,
    ScadaReading,
)

log = logging.getLogger(__name__)

# Defaults of the settings named below (bpmos/settings.py may set them).
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
# With no CMMS configured yet, how often the beat looks again.
NO_CMMS_RECHECK_S = 60.0
# How long a claimed attempt keeps others off, beyond the connector's timeout.
LEASE_MARGIN_S = 30.0
SNAPSHOT_READINGS = 10
SNAPSHOT_MAX_BYTES = 64 * 1024
SYSTEM_NAME = "bpmos"

_LIMITS = {
    "asset_id": 64,
    "asset_name": 200,
    "description": 4000,
    "created_by_system": 64,
    "assignee": 100,
}
_REQUIRED = ("asset_id", "asset_name", "description", "priority")


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def max_attempts() -> int:
    return int(_setting("BPMOS_CMMS_MAX_ATTEMPTS", MAX_ATTEMPTS))


def backoff_s(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 30 s, 60 s,
    120 s, … doubling up to the cap (one hour by default)."""
    base = _setting("BPMOS_CMMS_BACKOFF_BASE_S", BACKOFF_BASE_S)
    cap = _setting("BPMOS_CMMS_BACKOFF_CAP_S", BACKOFF_CAP_S)
    return min(base * 2 ** max(attempts - 1, 0), cap)


# --- validation -------------------------------------------------------------------


def _clean(data: Any) -> dict[str, Any]:
    """The normalized work order in ``data``, checked; every problem at once as
    a 400 ``validation_error`` naming its fields."""
    if not isinstance(data, dict):
        raise InvalidInput(
            "A work order is a JSON object.",
            code="validation_error",
            details={"non_field_errors": ["Expected a JSON object."]},
        )
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for field, limit in _LIMITS.items():
        value = data.get(field)
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[field] = ["Not a valid string."]
            continue
        value = value.strip()
        if field in _REQUIRED and not value:
            errors[field] = ["This field is required."]
        elif len(value) > limit:
            errors[field] = [f"Ensure this field has no more than {limit} characters."]
        cleaned[field] = value
    cleaned["created_by_system"] = cleaned.get("created_by_system") or SYSTEM_NAME

    priority = data.get("priority")
    if priority in (None, ""):
        errors["priority"] = ["This field is required."]
    elif priority not in AlarmSeverity.values:
        errors["priority"] = [f"One of {', '.join(AlarmSeverity.values)}."]
    cleaned["priority"] = priority

    alarm_id = data.get("source_alarm_id")
    if alarm_id is not None and (
        isinstance(alarm_id, bool) or not isinstance(alarm_id, int) or alarm_id < 1
    ):
        errors["source_alarm_id"] = ["An alarm id (a positive whole number) or null."]
    elif alarm_id is not None and not AlarmEvent.objects.filter(pk=alarm_id).exists():
        errors["source_alarm_id"] = [f"There is no alarm {alarm_id}."]
    cleaned["source_alarm_id"] = alarm_id

    snapshot = data.get("scada_snapshot")
    if snapshot is None:
        snapshot = {}
    if not isinstance(snapshot, dict):
        errors["scada_snapshot"] = ["A JSON object."]
    elif len(json.dumps(snapshot, default=str)) > SNAPSHOT_MAX_BYTES:
        errors["scada_snapshot"] = [f"At most {SNAPSHOT_MAX_BYTES // 1024} KB."]
    cleaned["scada_snapshot"] = snapshot

    if errors:
        field, messages = next(iter(errors.items()))
        raise InvalidInput(
            f"Invalid input. {field}: {messages[0]}",
            code="validation_error",
            details=errors,
        )
    return cleaned


# --- writes -----------------------------------------------------------------------


def _state(work_order: MaintenanceWorkOrder) -> dict[str, Any]:
    at = work_order.next_attempt_at
    return {
        "delivery_state": work_order.delivery_state,
        "attempts": work_order.attempts,
        "external_id": work_order.external_id,
        "last_error": work_order.last_error,
        "next_attempt_at": at.isoformat() if at else None,
    }


def _created(work_order: MaintenanceWorkOrder, actor) -> None:
    """Audit a new work order and queue its first attempt after commit."""
    audit.record(
        actor=actor,
        action="maintenance_work_order.created",
        target=work_order,
        after={**payload(work_order), **_state(work_order)},
    )
    # The connectors contract's auto-entry, in this transaction (docs/logs.md).
    shiftlog.auto_entry(
        entry_type=ShiftLogEntryType.WORK_ORDER_CREATED,
        actor=actor,
        body=(
            f"Maintenance work order MWO-{work_order.pk} for "
            f"{work_order.asset_name} ({work_order.priority}): "
            f"{work_order.description[:300]}"
        ),
        target=work_order,
        metadata={
            "kind": "maintenance",
            "work_order_id": work_order.pk,
            "asset_id": work_order.asset_id,
            "priority": work_order.priority,
            "source_alarm_id": work_order.source_alarm_id,
        },
    )
    _deliver_after_commit(work_order.pk)


def _open_for_alarm(alarm_id: int) -> MaintenanceWorkOrder | None:
    return MaintenanceWorkOrder.objects.filter(
        source_alarm_id=alarm_id, closed_at__isnull=True
    ).first()


def _already_open(existing: MaintenanceWorkOrder) -> Conflict:
    return Conflict(
        f"Alarm {existing.source_alarm_id} already has an open maintenance work "
        f"order (MWO-{existing.pk}).",
        code="work_order_exists",
        details={"work_order_id": existing.pk},
    )


@transaction.atomic
def work_order_create(*, data: dict, actor) -> MaintenanceWorkOrder:
    """Store a maintenance work order given in the contract's normalized schema,
    queued for the CMMS. One alarm has at most one open work order: a second
    for the same ``source_alarm_id`` is refused (409 ``work_order_exists``)."""
    cleaned = _clean(data)
    alarm_id = cleaned.pop("source_alarm_id")
    if alarm_id is not None and (existing := _open_for_alarm(alarm_id)):
        raise _already_open(existing)
    work_order = MaintenanceWorkOrder(
        **cleaned,
        source_alarm_id=alarm_id,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        next_attempt_at=timezone.now(),
    )
    try:
        # A savepoint: the loser of a race keeps its transaction.
        with transaction.atomic():
            work_order.save()
    except IntegrityError:
        existing = _open_for_alarm(alarm_id) if alarm_id is not None else None
        if existing is None:
            raise
        raise _already_open(existing) from None
    _created(work_order, actor)
    return work_order


def _asset_of(alarm: AlarmEvent) -> tuple[str, str]:
    """(asset_id, asset_name): the tag's machine, else the tag, else the
    connector whose server went away (a communication-loss alarm)."""
    tag = alarm.tag
    if tag is not None and tag.machine is not None:
        return tag.machine.code, tag.machine.name
    if tag is not None:
        return tag.tag_name, tag.tag_name
    if alarm.tag_name:
        return alarm.tag_name, alarm.tag_name
    if alarm.connector is not None:
        return f"connector-{alarm.connector_id}", alarm.connector.name
    return f"alarm-{alarm.pk}", alarm.message[:200] or f"Alarm {alarm.pk}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _snapshot_of(alarm: AlarmEvent) -> dict[str, Any]:
    """The alarm and its tag's last readings, as the CMMS should see them."""
    readings = []
    if alarm.tag_name:
        rows = ScadaReading.objects.filter(tag_name=alarm.tag_name).order_by(
            "-timestamp", "-id"
        )[:SNAPSHOT_READINGS]
        readings = [
            {
                "timestamp": _iso(row.timestamp),
                "tag_name": row.tag_name,
                "value": row.value if row.value is not None else row.value_text,
                "unit": row.unit,
                "quality": row.quality,
                "alarm_state": row.alarm_state,
            }
            for row in rows
        ]
    return {
        "alarm": {
            "id": alarm.pk,
            "timestamp": _iso(alarm.timestamp),
            "tag_name": alarm.tag_name,
            "alarm_state": alarm.status,
            "kind": alarm.kind,
            "severity": alarm.severity,
            "message": alarm.message,
            "value": alarm.value,
            "limit": alarm.limit,
            "area": alarm.area,
        },
        "readings": readings,
    }


def _description_of(alarm: AlarmEvent) -> str:
    parts = [alarm.message or f"Alarm {alarm.pk}"]
    if alarm.value is not None:
        parts.append(f"value {alarm.value:g}")
    if alarm.limit is not None:
        parts.append(f"limit {alarm.limit:g}")
    parts.append(f"since {alarm.timestamp:%Y-%m-%d %H:%M:%S} UTC")
    return f"SCADA alarm {alarm.pk} ({alarm.severity}): " + "; ".join(parts)


def work_order_for_alarm(*, alarm_id: int, actor=None) -> MaintenanceWorkOrder:
    """The alarm's open maintenance work order, opened (queued for the CMMS) if
    it has none. Asked twice, or by two workers at once, it opens one: the
    database's one-open-per-alarm constraint decides a race and the loser
    returns the winner's work order."""
    alarm = (
        AlarmEvent.objects.select_related("tag__machine", "connector")
        .filter(pk=alarm_id)
        .first()
    )
    if alarm is None:
        raise NotFound(f"Alarm {alarm_id} does not exist.")
    if existing := _open_for_alarm(alarm.pk):
        return existing
    asset_id, asset_name = _asset_of(alarm)
    with transaction.atomic():
        try:
            with transaction.atomic():
                work_order = MaintenanceWorkOrder.objects.create(
                    asset_id=asset_id[:64],
                    asset_name=asset_name[:200],
                    description=_description_of(alarm),
                    priority=alarm.severity,
                    source_alarm=alarm,
                    created_by_system=f"{SYSTEM_NAME}-scada",
                    scada_snapshot=_snapshot_of(alarm),
                    created_by=actor
                    if getattr(actor, "is_authenticated", False)
                    else None,
                    next_attempt_at=timezone.now(),
                )
        except IntegrityError:
            existing = _open_for_alarm(alarm.pk)
            if existing is None:
                raise
            return existing
        _created(work_order, actor)
    return work_order


@transaction.atomic
def work_order_retry(*, work_order_id: int, actor) -> MaintenanceWorkOrder:
    """Queue a work order that is not sent for an attempt now (a person fixed
    the CMMS, its credentials or the data). 409 once it is sent."""
    work_order = lock_row(
        MaintenanceWorkOrder.objects.all(),
        what=f"Maintenance work order {work_order_id}",
        pk=work_order_id,
    )
    if work_order.delivery_state == DeliveryState.SENT:
        raise Conflict(
            f"MWO-{work_order.pk} was already sent to the CMMS "
            f"(its id there: {work_order.external_id or 'none given'}).",
            code="already_sent",
        )
    before = _state(work_order)
    work_order.delivery_state = DeliveryState.QUEUED
    work_order.next_attempt_at = timezone.now()
    work_order.save(update_fields=["delivery_state", "next_attempt_at", "updated_at"])
    audit.record(
        actor=actor,
        action="maintenance_work_order.retried",
        target=work_order,
        before=before,
        after=_state(work_order),
    )
    _deliver_after_commit(work_order.pk)
    return work_order


# --- delivery ---------------------------------------------------------------------


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRYING = "retrying"  # failed; a next attempt is set
    REFUSED = "refused"  # failed; no next attempt until a person retries it
    NOT_DUE = "not_due"  # sent already, claimed by another worker, or not yet due
    NO_CMMS = "no_cmms"  # no CMMS connector to send it to; looked at again later


@dataclass(frozen=True)
class Attempt:
    """What ``work_order_attempt`` did, for the Celery task's retry."""

    outcome: DeliveryOutcome
    retry_in_s: float | None = None


def payload(work_order: MaintenanceWorkOrder) -> dict[str, Any]:
    """The contract's normalized work order, as the CMMS receives it."""
    return {
        "asset_id": work_order.asset_id,
        "asset_name": work_order.asset_name,
        "description": work_order.description,
        "priority": work_order.priority,
        "source_alarm_id": work_order.source_alarm_id,
        "created_by_system": work_order.created_by_system,
        "assignee": work_order.assignee or None,
        "scada_snapshot": work_order.scada_snapshot or {},
    }


def _cmms() -> tuple[CmmsConnector | None, str]:
    """The CMMS to send to: the enabled one named by ``BPMOS_CMMS_CONNECTOR``,
    else the only enabled CMMS connector; else why there is none."""
    enabled = Connector.objects.filter(kind=ConnectorKind.CMMS, enabled=True)
    name = getattr(settings, "BPMOS_CMMS_CONNECTOR", "")
    if name:
        configs = list(enabled.filter(name=name))
        if not configs:
            return None, (
                f'The CMMS connector "{name}" (BPMOS_CMMS_CONNECTOR) does not '
                "exist or is disabled; the work order waits for it."
            )
    else:
        configs = list(enabled.order_by("name")[:2])
        if not configs:
            return None, (
                "No CMMS connector is configured (an enabled connector of kind "
                "cmms); the work order waits for one."
            )
        if len(configs) > 1:
            return None, (
                "Several CMMS connectors are enabled; name the one to use in "
                "BPMOS_CMMS_CONNECTOR. The work order waits."
            )
    connector = connector_for(configs[0])
    if not isinstance(connector, CmmsConnector):
        raise ConnectorError(f"{configs[0]} is served by no CMMS connector class.")
    return connector, ""


def _lock(work_order_id: int) -> MaintenanceWorkOrder:
    return lock_row(
        MaintenanceWorkOrder.objects.all(),
        what=f"Maintenance work order {work_order_id}",
        pk=work_order_id,
    )


def _claim(
    work_order_id: int, now: datetime
) -> tuple[Attempt | None, CmmsConnector | None, dict[str, Any]]:
    """Lock the row; if an attempt is due, move ``next_attempt_at`` a lease
    ahead (others leave it alone meanwhile; a crash lets the lease run out and
    the beat tries again) and hand back what to send."""
    with transaction.atomic():
        work_order = _lock(work_order_id)
        due = work_order.next_attempt_at
        if work_order.delivery_state == DeliveryState.SENT or due is None:
            return Attempt(DeliveryOutcome.NOT_DUE), None, {}
        if due > now:
            return (
                Attempt(DeliveryOutcome.NOT_DUE, (due - now).total_seconds()),
                None,
                {},
            )
        try:
            connector, problem = _cmms()
        except ConnectorError as exc:
            connector, problem = None, str(exc)
        if connector is None:
            work_order.next_attempt_at = now + timedelta(seconds=NO_CMMS_RECHECK_S)
            fields = ["next_attempt_at", "updated_at"]
            if work_order.last_error != problem:
                # Audited once per reason, not at every look.
                before = _state(work_order)
                work_order.last_error = problem
                fields.append("last_error")
                audit.record(
                    actor=None,
                    action="maintenance_work_order.waiting",
                    target=work_order,
                    before=before,
                    after=_state(work_order),
                )
            work_order.save(update_fields=fields)
            return Attempt(DeliveryOutcome.NO_CMMS, NO_CMMS_RECHECK_S), None, {}
        lease = connector.timeout_s + LEASE_MARGIN_S
        work_order.next_attempt_at = now + timedelta(seconds=lease)
        work_order.connector = connector.config
        work_order.save(update_fields=["next_attempt_at", "connector", "updated_at"])
        return None, connector, payload(work_order)


def work_order_attempt(*, work_order_id: int, now: datetime | None = None) -> Attempt:
    """One attempt to send a work order to the CMMS, if one is due: logged in
    its delivery log, its state set from the answer (the module's docstring)."""
    now = now or timezone.now()
    skipped, connector, body = _claim(work_order_id, now)
    if skipped is not None:
        return skipped
    assert connector is not None
    # Outside any transaction: a slow CMMS holds no lock and no connection.
    result = connector.create_work_order(
        body, idempotency_key=f"{SYSTEM_NAME}-mwo-{work_order_id}"
    )
    finished = timezone.now()
    with transaction.atomic():
        work_order = _lock(work_order_id)
        before = _state(work_order)
        DeliveryAttempt.objects.create(
            work_order=work_order,
            ok=result.ok,
            status_code=result.status_code,
            error=result.error or "",
            duration_ms=result.duration_ms,
        )
        # The row is locked: no other writer can interleave this increment.
        work_order.attempts += 1
        retry_in: float | None = None
        if result.ok:
            outcome = DeliveryOutcome.SENT
            work_order.delivery_state = DeliveryState.SENT
            work_order.external_id = result.external_id
            work_order.sent_at = finished
            work_order.last_error = ""
            work_order.next_attempt_at = None
        elif not result.retryable:
            outcome = DeliveryOutcome.REFUSED
            work_order.delivery_state = DeliveryState.FAILED
            work_order.last_error = result.error or ""
            work_order.next_attempt_at = None
        else:
            outcome = DeliveryOutcome.RETRYING
            gave_up = work_order.attempts >= max_attempts()
            # Past the last fast retry: failed, and still tried once per cap.
            retry_in = (
                _setting("BPMOS_CMMS_BACKOFF_CAP_S", BACKOFF_CAP_S)
                if gave_up
                else backoff_s(work_order.attempts)
            )
            work_order.delivery_state = (
                DeliveryState.FAILED if gave_up else DeliveryState.QUEUED
            )
            work_order.last_error = result.error or ""
            work_order.next_attempt_at = finished + timedelta(seconds=retry_in)
        work_order.save(
            update_fields=[
                "attempts",
                "delivery_state",
                "external_id",
                "sent_at",
                "last_error",
                "next_attempt_at",
                "updated_at",
            ]
        )
        audit.record(
            actor=None,
            action="maintenance_work_order."
            + ("sent" if result.ok else "delivery_failed"),
            target=work_order,
            before=before,
            after=_state(work_order),
        )
    return Attempt(outcome, retry_in)


def work_order_deliver(*, work_order_id: int) -> bool:
    """One attempt, logged (see ``work_order_attempt``); whether it is sent."""
    attempt = work_order_attempt(work_order_id=work_order_id)
    return attempt.outcome == DeliveryOutcome.SENT


def work_orders_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of the work orders whose next attempt is due (queued, or failed and
    still tried), the longest-waiting first: what the beat task re-queues."""
    now = now or timezone.now()
    return list(
        MaintenanceWorkOrder.objects.filter(
            delivery_state__in=[DeliveryState.QUEUED, DeliveryState.FAILED],
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def _deliver_after_commit(work_order_id: int) -> None:
    """Queue the delivery task once the work order is committed. A broker that
    is down loses nothing: the beat task finds the work order due."""

    def send() -> None:
        from scada.tasks_maintenance import work_order_deliver_task

        try:
            work_order_deliver_task.apply_async(args=[work_order_id])
        except Exception:  # the broker is down; the beat picks it up
            log.warning("cmms_delivery_not_queued", exc_info=True)

    transaction.on_commit(send)


# --- closing ----------------------------------------------------------------------


@transaction.atomic
def work_order_close(
    *, work_order_id: int, actor, note: str = ""
) -> MaintenanceWorkOrder:
    """Mark a work order closed (done in the CMMS): its alarm may open another.
    Closing a closed one changes nothing."""
    work_order = _lock(work_order_id)
    if work_order.closed_at is not None:
        return work_order
    work_order.closed_at = timezone.now()
    work_order.save(update_fields=["closed_at", "updated_at"])
    audit.record(
        actor=actor,
        action="maintenance_work_order.closed",
        target=work_order,
        before={"closed_at": None},
        after={"closed_at": work_order.closed_at.isoformat(), "note": note},
    )
    return work_order


def work_orders_status_refresh(*, limit: int = 200) -> dict[str, int]:
    """Read back from the CMMS the status of the open work orders it took, for
    each CMMS connector whose settings say ``"sync_status": true``, and close
    those it reports closed. A work order the CMMS cannot report is left as it
    is (counted in ``errors``); it is asked again on the next run."""
    counts = {"checked": 0, "closed": 0, "errors": 0}
    configs = Connector.objects.filter(kind=ConnectorKind.CMMS, enabled=True)
    for config in configs:
        if (config.settings or {}).get("sync_status") is not True:
            continue
        connector = connector_for(config)
        open_ones = MaintenanceWorkOrder.objects.filter(
            connector=config,
            delivery_state=DeliveryState.SENT,
            closed_at__isnull=True,
        ).exclude(external_id="")
        for work_order_id, external_id in open_ones.order_by("sent_at").values_list(
            "pk", "external_id"
        )[:limit]:
            counts["checked"] += 1
            try:
                [status] = connector.normalize(
                    connector.fetch_data(external_ids=[external_id])
                )
            except ConnectorError as exc:
                counts["errors"] += 1
                log.warning("cmms_status_unreadable: %s", exc)
                continue
            if status["closed"]:
                work_order_close(
                    work_order_id=work_order_id,
                    actor=None,
                    note=f"The CMMS reports {status['status']!r}.",
                )
                counts["closed"] += 1
    return counts


# --- reads ------------------------------------------------------------------------


def work_order_list() -> QuerySet[MaintenanceWorkOrder]:
    """Maintenance work orders, newest first (their delivery logs: the detail)."""
    return MaintenanceWorkOrder.objects.order_by("-created_at", "-id")


def work_order_get(*, work_order_id: int) -> MaintenanceWorkOrder:
    """One work order with its delivery log, oldest attempt first; 404 if none."""
    log = Prefetch(
        "delivery_log", queryset=DeliveryAttempt.objects.order_by("at", "id")
    )
    work_order = (
        MaintenanceWorkOrder.objects.prefetch_related(log)
        .filter(pk=work_order_id)
        .first()
    )
    if work_order is None:
        raise NotFound(f"Maintenance work order {work_order_id} does not exist.")
    return work_order
