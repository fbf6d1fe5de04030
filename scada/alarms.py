"""Alert rules and alarms (ISA-18.2). Interface (the alarms slice fills it in):

readings_evaluate(*, readings: list[ScadaReading]) -> list[AlarmEvent]
    Runs the enabled rules of the readings' tags (limits, deadband,
    on/off-delay); returns the alarms raised. Called by
    ``scada.readings.readings_store`` inside its transaction.
alerts_process(*, actor, now=None) -> dict     # POST /api/alerts/process, beat
comm_loss_raise(*, connector_id: int, error: str) -> AlarmEvent | None
comm_loss_clear(*, connector_id: int) -> None
alarm_acknowledge / alarm_shelve / alarm_unshelve (keyword-only, actor)

Also here: ``alarm_suppress`` / ``alarm_unsuppress`` and
``alarm_remove_from_service`` / ``alarm_return_to_service`` (admins), the alert
rules' writes (``alert_rule_create`` / ``_update`` / ``_delete``), and flood
and chattering detection. docs/scada.md ("Alert rules and the alarm state
model") describes the states and the rules in prose.

How it is built:

* ``evaluate`` and ``tick`` are pure functions over (limits, state, reading):
  the whole of the limit/deadband/on-delay/off-delay logic, tested with
  hypothesis. The rule's ``RuleState`` is kept on its ``AlertRule`` row and
  changed only under that row's lock, so two collectors never raise one alarm
  twice.
* An alarm row is one occurrence: created ``unack_active`` when its rule
  activates, closed (``normal``, ``closed_at``) when it is both back to normal
  and acknowledged. While open, a new activation moves the same row back to
  active. ``active`` and ``acknowledged_at`` are the *underlying* process
  state; shelving, suppression and out-of-service hide it and give it back
  when they end (``underlying_state``).
* Every change writes an ``AlarmHistory`` row, an audit record and a live
  event on ``alerts``; activations in the history drive flood and chattering
  detection.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from bpmos import events
from bpmos.errors import IllegalTransition, InvalidInput
from bpmos.locking import ROW_LOCK, lock_row
from elog import audit, shiftlog
from elog.models import ShiftLogEntryType
from exceptions import services as exception_services
from exceptions.models import ExceptionSource, ExceptionType
from scada import events as alarm_events
from scada import maintenance
from scada.alarm_evaluation import (
    Limits,
    Outcome,
    RuleState,
    Sample,
    evaluate,
    tick,
)
from scada.models import (
    AlarmEvent,
    AlarmFlood,
    AlarmHistory,
    AlarmSeverity,
    AlarmState,
    AlertRule,
    Connector,
    ScadaReading,
    Tag,
)

OPEN_STATES = (
    AlarmState.UNACK_ACTIVE,
    AlarmState.ACK_ACTIVE,
    AlarmState.UNACK_RTN,
    AlarmState.SHELVED,
    AlarmState.SUPPRESSED,
    AlarmState.OUT_OF_SERVICE,
)
_SHOWN = (
    AlarmState.UNACK_ACTIVE,
    AlarmState.ACK_ACTIVE,
    AlarmState.UNACK_RTN,
)  # not hidden by anyone

# ISA-18.2's state diagram. ``normal`` is a closed occurrence: a new activation
# is a new row. The hidden states (shelved, suppressed, out of service) return
# to whichever of the four the process reached meanwhile.
ALARM_TRANSITIONS: dict[str, set[str]] = {
    AlarmState.NORMAL: set(),
    AlarmState.UNACK_ACTIVE: {
        AlarmState.ACK_ACTIVE,
        AlarmState.UNACK_RTN,
        *OPEN_STATES[3:],
    },
    AlarmState.ACK_ACTIVE: {AlarmState.NORMAL, *OPEN_STATES[3:]},
    AlarmState.UNACK_RTN: {
        AlarmState.NORMAL,
        AlarmState.UNACK_ACTIVE,
        *OPEN_STATES[3:],
    },
    AlarmState.SHELVED: {AlarmState.NORMAL, *_SHOWN, AlarmState.OUT_OF_SERVICE},
    AlarmState.SUPPRESSED: {AlarmState.NORMAL, *_SHOWN, AlarmState.OUT_OF_SERVICE},
    AlarmState.OUT_OF_SERVICE: {AlarmState.NORMAL, *_SHOWN},
}
AlarmEvent.TRANSITIONS = ALARM_TRANSITIONS

# What each person's action may start from; the target is fixed, or (None) the
# underlying state the hidden one gives back.
_ACTIONS: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    # action: (from states, to state, verb for a refusal)
    "shelve": (_SHOWN, AlarmState.SHELVED, "shelved"),
    "unshelve": ((AlarmState.SHELVED,), None, "unshelved"),
    "suppress": (_SHOWN, AlarmState.SUPPRESSED, "suppressed"),
    "unsuppress": ((AlarmState.SUPPRESSED,), None, "unsuppressed"),
    "remove_from_service": (
        OPEN_STATES[:5],
        AlarmState.OUT_OF_SERVICE,
        "removed from service",
    ),
    "return_to_service": ((AlarmState.OUT_OF_SERVICE,), None, "returned to service"),
}
_ACKNOWLEDGE = {
    AlarmState.UNACK_ACTIVE: AlarmState.ACK_ACTIVE,
    AlarmState.UNACK_RTN: AlarmState.NORMAL,
}

MAX_SHELVE = timedelta(hours=24)
FLOOD_WINDOW = timedelta(minutes=10)
FLOOD_LIMIT = 10  # more than this many activations in the window is a flood
CHATTER_WINDOW = timedelta(seconds=60)
CHATTER_COUNT = 3  # this many activations of one rule in the window: chattering
RECENT = timedelta(minutes=10)  # how far back alerts_process looks for readings
ACTIVATIONS = ("raised", "reactivated")  # the history changes that count


def limits_of(rule: AlertRule) -> Limits:
    return Limits(
        high=rule.high_limit,
        low=rule.low_limit,
        deadband=rule.deadband or 0.0,
        on_delay_s=rule.on_delay_s,
        off_delay_s=rule.off_delay_s,
    )


def state_of(rule: AlertRule) -> RuleState:
    return RuleState(
        in_alarm=rule.in_alarm,
        side=rule.alarm_side,
        pending_since=rule.pending_since,
        clearing_since=rule.clearing_since,
        last_at=rule.last_reading_at,
        last_value=rule.last_value,
    )


_STATE_FIELDS = [
    "in_alarm",
    "alarm_side",
    "pending_since",
    "clearing_since",
    "last_reading_at",
    "last_value",
]


def keep_state(rule: AlertRule, state: RuleState) -> None:
    rule.in_alarm, rule.alarm_side = state.in_alarm, state.side
    rule.pending_since, rule.clearing_since = state.pending_since, state.clearing_since
    rule.last_reading_at, rule.last_value = state.last_at, state.last_value


# --- alarms: where, what, and the record of each change ---


def underlying_state(alarm: AlarmEvent) -> str:
    """The ISA-18.2 state the process and the acknowledgement give, whatever
    hides it (what unshelving, unsuppressing or returning to service restore)."""
    if alarm.active:
        return (
            AlarmState.ACK_ACTIVE if alarm.acknowledged_at else AlarmState.UNACK_ACTIVE
        )
    return AlarmState.NORMAL if alarm.acknowledged_at else AlarmState.UNACK_RTN


# An alarm's area holds 64 characters, a connector's name 100: a name that
# becomes an area is cut to the column (a connector named with 65-100
# characters made its comm-loss alarm fail on PostgreSQL; docs/testing.md,
# "texts longer than their column").
AREA_MAX = AlarmEvent._meta.get_field("area").max_length


def _connector_area(connector: Connector) -> str:
    return connector.name[:AREA_MAX]


def area_of(tag: Tag) -> str:
    """A tag's alarm area: its own, else its machine's line, else its connector."""
    if tag.area:
        return tag.area
    if tag.machine_id:
        return tag.machine.station.line.slug
    return _connector_area(tag.connector)


def _message(rule: AlertRule, side: str, value: float | None) -> str:
    limit = rule.high_limit if side == "high" else rule.low_limit
    # The limit may be gone if the rule was edited while its on-delay ran.
    shown = "-" if limit is None else f"{limit:g}"
    text = f"{rule.tag.tag_name} {side} {value:g} (limit {shown})"
    return f"{rule.message}: {text}" if rule.message else text


def _snapshot(alarm: AlarmEvent) -> dict[str, Any]:
    return {
        "alarm_state": alarm.status,
        "active": alarm.active,
        "acknowledged_at": alarm.acknowledged_at,
        "shelved_until": alarm.shelved_until,
        "closed_at": alarm.closed_at,
        "exception_id": alarm.exception_id,
    }


def _user(actor) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _changed(
    alarm: AlarmEvent,
    change: str,
    *,
    at: datetime,
    actor,
    before: dict | None,
    from_state: str,
    note: str = "",
) -> None:
    """Record one change: history row, audit record, live event (after commit)."""
    AlarmHistory.objects.create(
        alarm=alarm,
        at=at,
        change=change,
        from_state=from_state,
        to_state=alarm.status,
        rule_id=alarm.rule_id,
        area=alarm.area,
        value=alarm.value,
        actor=_user(actor),
        note=note[:200],
    )
    audit.record(
        actor=actor,
        action=f"alarm.{change}",
        target=alarm,
        before=before,
        after=_snapshot(alarm),
    )
    events.publish(alarm_events.alarm_event(alarm, change))


def lock_open(**lookup) -> AlarmEvent | None:
    return (
        AlarmEvent.objects.select_for_update(**ROW_LOCK)
        .filter(closed_at__isnull=True, **lookup)
        .first()
    )


def _activate(
    *,
    open_alarm: AlarmEvent | None,
    new: dict[str, Any],
    at: datetime,
    actor=None,
) -> AlarmEvent:
    """The condition became abnormal: a new occurrence, or the open one active
    again (needing a new acknowledgement). Checks flood and critical escalation."""
    if open_alarm is None:
        alarm = AlarmEvent.objects.create(
            timestamp=at, status=AlarmState.UNACK_ACTIVE, active=True, **new
        )
        _changed(alarm, "raised", at=at, actor=actor, before=None, from_state="")
    else:
        alarm = open_alarm
        before, was = _snapshot(alarm), alarm.status
        if alarm.status == AlarmState.UNACK_RTN:
            alarm.require_transition(to=AlarmState.UNACK_ACTIVE)
            alarm.status = AlarmState.UNACK_ACTIVE
        # Hidden states stay hidden; what they hide is active and unacknowledged.
        alarm.timestamp, alarm.active, alarm.returned_at = at, True, None
        alarm.acknowledged_at = alarm.acknowledged_by = None
        alarm.value, alarm.limit = new["value"], new["limit"]
        alarm.message = new["message"]
        alarm.save()
        _changed(
            alarm, "reactivated", at=at, actor=actor, before=before, from_state=was
        )
    _flood_check(alarm.area, at=at, actor=actor)
    if alarm.severity == AlarmSeverity.CRITICAL:
        _escalate(alarm, now=at, actor=actor)  # at once (ISA-18.2 highest priority)
    return alarm


def return_to_normal(
    alarm: AlarmEvent, *, at: datetime, actor=None, note: str = ""
) -> None:
    """The condition is back to normal: unack_active -> unack_rtn, ack_active ->
    normal (closed); a hidden alarm keeps its state, its underlying one moves."""
    before, was = _snapshot(alarm), alarm.status
    alarm.active, alarm.returned_at = False, at
    if alarm.status in _SHOWN:
        target = underlying_state(alarm)
        alarm.require_transition(to=target)
        alarm.status = target
        if target == AlarmState.NORMAL:
            alarm.closed_at = at
    alarm.save()
    _changed(
        alarm, "returned", at=at, actor=actor, before=before, from_state=was, note=note
    )


# --- readings through the rules ---


@dataclass
class _Evaluated:
    raised: list[AlarmEvent]
    returned: int = 0


def readings_evaluate(*, readings: list[ScadaReading]) -> list[AlarmEvent]:
    """Run the enabled rules of the readings' tags over them, in timestamp order;
    return the alarms that went active (new or reactivated). Readings seen in
    alarm get ``alarm_state`` "active"."""
    return _evaluate(readings, actor=None).raised


def _evaluate(readings: list[ScadaReading], *, actor) -> _Evaluated:
    result = _Evaluated(raised=[])
    if not readings:
        return result
    by_name = {r.tag_name for r in readings if r.tag_id is None}
    tag_of_name = (
        dict(Tag.objects.filter(tag_name__in=by_name).values_list("tag_name", "pk"))
        if by_name
        else {}
    )
    per_tag: dict[int, list[ScadaReading]] = defaultdict(list)
    for reading in readings:
        tag_id = reading.tag_id or tag_of_name.get(reading.tag_name)
        if tag_id is not None:
            per_tag[tag_id].append(reading)
    # Few tags have rules: find them among the (small) set of enabled rules
    # first, and lock only those; a batch of unruled tags costs one query.
    ruled = [
        pk
        for pk, tag_id in AlertRule.objects.filter(enabled=True).values_list(
            "pk", "tag_id"
        )
        if tag_id in per_tag
    ]
    if not ruled:
        return result
    with transaction.atomic():
        _run_rules(ruled, per_tag, readings, actor=actor, result=result)
    return result


def _run_rules(
    ruled: list[int],
    per_tag: dict[int, list[ScadaReading]],
    readings: list[ScadaReading],
    *,
    actor,
    result: _Evaluated,
) -> None:
    """Each rule over its readings, under the rules' row locks (in pk order)."""
    rules = list(
        AlertRule.objects.select_for_update(**ROW_LOCK)
        .select_related("tag__connector", "tag__machine__station__line")
        .filter(pk__in=ruled, enabled=True)
        .order_by("pk")
    )
    in_alarm: set[int] = set()
    changed: list[AlertRule] = []
    for rule in rules:
        limits, state = limits_of(rule), state_of(rule)
        ordered = sorted(per_tag[rule.tag_id], key=lambda r: (r.timestamp, r.pk or 0))
        for reading in ordered:
            sample = Sample(
                at=reading.timestamp, value=reading.value, quality=reading.quality
            )
            state, outcome, at = evaluate(limits, state, sample)
            if outcome != Outcome.NONE:
                _apply(
                    rule,
                    state,
                    outcome,
                    at=at,
                    value=reading.value,
                    actor=actor,
                    result=result,
                )
            if state.in_alarm and state.last_at == reading.timestamp:
                in_alarm.add(id(reading))
        if state != state_of(rule):
            keep_state(rule, state)
            changed.append(rule)
    if changed:
        AlertRule.objects.bulk_update(changed, _STATE_FIELDS)
    _mark_active([r for r in readings if id(r) in in_alarm])


def _apply(rule, state, outcome, *, at, value, actor, result: _Evaluated) -> None:
    open_alarm = lock_open(rule=rule)
    if outcome == Outcome.ACTIVATED:
        limit = rule.high_limit if state.side == "high" else rule.low_limit
        new = {
            "rule": rule,
            "tag": rule.tag,
            "connector_id": rule.tag.connector_id,
            "tag_name": rule.tag.tag_name,
            "kind": "limit",
            "severity": rule.severity,
            "area": area_of(rule.tag),
            "message": _message(rule, state.side, value)[:300],
            "value": value,
            "limit": limit,
        }
        result.raised.append(
            _activate(open_alarm=open_alarm, new=new, at=at, actor=actor)
        )
    elif open_alarm is not None and open_alarm.active:
        return_to_normal(open_alarm, at=at, actor=actor)
        result.returned += 1


def _mark_active(readings: list[ScadaReading]) -> None:
    if not readings:
        return
    saved = [r.pk for r in readings if r.pk is not None]
    if saved:
        ScadaReading.objects.filter(pk__in=saved).update(alarm_state="active")
    for reading in readings:
        if reading.pk is None:
            ScadaReading.objects.filter(
                tag_name=reading.tag_name, timestamp=reading.timestamp
            ).update(alarm_state="active")
        reading.alarm_state = "active"


# --- communication loss ---


def _lock_connector(connector_id: int) -> Connector:
    return lock_row(
        Connector.objects.all(), what=f"Connector {connector_id}", pk=connector_id
    )


@transaction.atomic
def comm_loss_raise(*, connector_id: int, error: str) -> AlarmEvent | None:
    """Raise the connector's communication-loss alarm (severity high), or make
    its open one active again; None when it is active already (one per
    connector: the connector's row lock serialises the collectors)."""
    connector = _lock_connector(connector_id)
    open_alarm = lock_open(connector=connector, kind="comm_loss")
    if open_alarm is not None and open_alarm.active:
        return None
    message = f"Communication lost with {connector.name}: {error}"[:300]
    new = {
        "connector": connector,
        "kind": "comm_loss",
        "severity": AlarmSeverity.HIGH,
        "area": _connector_area(connector),
        "message": message,
        "value": None,
        "limit": None,
    }
    return _activate(open_alarm=open_alarm, new=new, at=timezone.now())


@transaction.atomic
def comm_loss_clear(*, connector_id: int) -> None:
    """The connector's server answers again: its comm-loss alarm returns."""
    connector = _lock_connector(connector_id)
    open_alarm = lock_open(connector=connector, kind="comm_loss")
    if open_alarm is not None and open_alarm.active:
        return_to_normal(open_alarm, at=timezone.now())


# --- people's actions ---


def _lock(alarm_id: int) -> AlarmEvent:
    return lock_row(
        AlarmEvent.objects.select_related("acknowledged_by"),
        what=f"Alarm {alarm_id}",
        pk=alarm_id,
    )


def _refuse(alarm: AlarmEvent, verb: str, action: str) -> IllegalTransition:
    label = AlarmState(alarm.status).label
    return IllegalTransition(
        f"Alarm {alarm.pk} is {label}; it cannot be {verb}.",
        details={"from": alarm.status, "action": action},
    )


def _move(alarm: AlarmEvent, target: str, *, at: datetime) -> None:
    alarm.require_transition(to=target)
    alarm.status = target
    if target == AlarmState.NORMAL:
        alarm.closed_at = at
    if target != AlarmState.SHELVED:
        alarm.shelved_until, alarm.shelved_by, alarm.shelve_reason = None, None, ""


@transaction.atomic
def alarm_acknowledge(*, alarm_id: int, actor) -> AlarmEvent:
    """The operator has seen it: unack_active -> ack_active, unack_rtn -> normal
    (closed). Anything else is 409."""
    alarm = _lock(alarm_id)
    if alarm.status not in _ACKNOWLEDGE:
        raise _refuse(alarm, "acknowledged", "acknowledge")
    before, was, now = _snapshot(alarm), alarm.status, timezone.now()
    alarm.acknowledged_at, alarm.acknowledged_by = now, _user(actor)
    _move(alarm, _ACKNOWLEDGE[was], at=now)
    alarm.save()
    _changed(alarm, "acknowledged", at=now, actor=actor, before=before, from_state=was)
    # The connectors contract's auto-entry, in this transaction (docs/logs.md).
    shiftlog.auto_entry(
        entry_type=ShiftLogEntryType.ALARM_ACKNOWLEDGED,
        actor=actor,
        body=f"Alarm {alarm.pk} acknowledged ({alarm.severity}): {alarm.message}",
        target=alarm,
        metadata={
            "alarm_id": alarm.pk,
            "tag_name": alarm.tag_name,
            "severity": alarm.severity,
            "area": alarm.area,
            "from_state": was,
            "to_state": alarm.status,
        },
    )
    return alarm


def _act(
    alarm_id: int, action: str, *, actor, change: str, note: str = "", **fields
) -> AlarmEvent:
    alarm = _lock(alarm_id)
    sources, target, verb = _ACTIONS[action]
    if alarm.status not in sources:
        raise _refuse(alarm, verb, action)
    before, was, now = _snapshot(alarm), alarm.status, timezone.now()
    _move(alarm, target or underlying_state(alarm), at=now)
    for name, value in fields.items():
        setattr(alarm, name, value)
    alarm.save()
    _changed(
        alarm, change, at=now, actor=actor, before=before, from_state=was, note=note
    )
    return alarm


def shelve_until(
    *, minutes: int | None, until: datetime | None, now: datetime
) -> datetime:
    """The shelf's expiry from ``minutes`` or ``until`` (exactly one), at most
    ``MAX_SHELVE`` ahead; 400 otherwise."""
    if (minutes is None) == (until is None):
        raise InvalidInput(
            "Give minutes or until (one of them).",
            code="validation_error",
            details={"minutes": ["Give minutes or until, not both or neither."]},
        )
    expiry = now + timedelta(minutes=minutes) if minutes is not None else until
    assert expiry is not None
    field = "minutes" if minutes is not None else "until"
    if expiry <= now:
        raise InvalidInput(
            "A shelf must end in the future.",
            code="validation_error",
            details={field: ["Must end in the future."]},
        )
    if expiry > now + MAX_SHELVE:
        raise InvalidInput(
            "A shelf lasts at most 24 hours.",
            code="validation_error",
            details={field: ["At most 24 hours ahead."]},
        )
    return expiry


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput(
            "Say why.",
            code="validation_error",
            details={"reason": ["This field may not be blank."]},
        )
    return text[:200]


@transaction.atomic
def alarm_shelve(
    *,
    alarm_id: int,
    actor,
    reason: str,
    minutes: int | None = None,
    until: datetime | None = None,
) -> AlarmEvent:
    """Shelve an alarm (supervisors) for ``minutes`` or ``until``, at most 24 h,
    with a reason; it returns to its underlying state when the shelf expires
    (``alerts_process``) or on ``alarm_unshelve``."""
    text = _reason(reason)
    expiry = shelve_until(minutes=minutes, until=until, now=timezone.now())
    return _act(
        alarm_id,
        "shelve",
        actor=actor,
        change="shelved",
        note=text,
        shelved_until=expiry,
        shelved_by=_user(actor),
        shelve_reason=text,
    )


@transaction.atomic
def alarm_unshelve(*, alarm_id: int, actor) -> AlarmEvent:
    """Take a shelved alarm off the shelf: back to its underlying state."""
    return _act(alarm_id, "unshelve", actor=actor, change="unshelved")


@transaction.atomic
def alarm_suppress(*, alarm_id: int, actor, reason: str) -> AlarmEvent:
    """Suppress an alarm by design (admins: the plant state makes it
    meaningless, e.g. the machine is stopped), until ``alarm_unsuppress``."""
    return _act(
        alarm_id, "suppress", actor=actor, change="suppressed", note=_reason(reason)
    )


@transaction.atomic
def alarm_unsuppress(*, alarm_id: int, actor) -> AlarmEvent:
    """End a suppression: back to the underlying state."""
    return _act(alarm_id, "unsuppress", actor=actor, change="unsuppressed")


@transaction.atomic
def alarm_remove_from_service(*, alarm_id: int, actor, reason: str) -> AlarmEvent:
    """Take an alarm out of service (admins: instrument under maintenance)."""
    return _act(
        alarm_id,
        "remove_from_service",
        actor=actor,
        change="removed_from_service",
        note=_reason(reason),
    )


@transaction.atomic
def alarm_return_to_service(*, alarm_id: int, actor) -> AlarmEvent:
    """Return an alarm to service: back to the underlying state."""
    return _act(
        alarm_id, "return_to_service", actor=actor, change="returned_to_service"
    )


# --- escalation ---


def _escalate(alarm: AlarmEvent, *, now: datetime, actor=None) -> tuple[bool, bool]:
    """Make an active, unacknowledged alarm an exception (once) and, when its
    rule says so, a CMMS work order; returns (escalated, work order asked for).
    The caller holds the alarm's lock."""
    if alarm.exception_id is not None or alarm.status != AlarmState.UNACK_ACTIVE:
        return False, False
    stage = None
    if alarm.tag_id and alarm.tag.machine_id:
        stage = alarm.tag.machine.station.runbook_stage
    exc = exception_services.exception_raise(
        type=ExceptionType.ALARM,
        source=ExceptionSource.ALARM,
        severity=alarm.severity,
        title=f"Alarm: {alarm.message}",
        description=(
            f"Alarm {alarm.pk} ({alarm.kind}) in area {alarm.area or '-'} went "
            f"active at {alarm.timestamp.isoformat()} and was not acknowledged."
        ),
        actor=actor,
        stage=stage,
    )
    before = _snapshot(alarm)
    alarm.exception = exc
    alarm.save(update_fields=["exception", "updated_at"])
    _changed(
        alarm, "escalated", at=now, actor=actor, before=before, from_state=alarm.status
    )
    if alarm.rule_id and alarm.rule.create_work_order:
        return True, _work_order(alarm)
    return True, False


def _work_order(alarm: AlarmEvent) -> bool:
    """Ask the CMMS slice for the alarm's maintenance work order (it opens at
    most one per alarm and queues its delivery)."""
    maintenance.work_order_for_alarm(alarm_id=alarm.pk, actor=None)
    return True


def _escalation_due(now: datetime) -> list[int]:
    """Active, unacknowledged, not yet escalated: critical ones, and those whose
    rule's limit has passed (computed here: few rows, and SQLite cannot
    multiply an interval)."""
    waiting = (
        AlarmEvent.objects.filter(
            status=AlarmState.UNACK_ACTIVE,
            exception__isnull=True,
            closed_at__isnull=True,
        )
        .filter(
            Q(severity=AlarmSeverity.CRITICAL) | Q(rule__escalate_after_s__isnull=False)
        )
        .order_by("timestamp")
        .values_list("pk", "severity", "timestamp", "rule__escalate_after_s")
    )
    return [
        pk
        for pk, severity, at, after_s in waiting
        if severity == AlarmSeverity.CRITICAL or at + timedelta(seconds=after_s) <= now
    ]


# --- floods and chattering ---


def _activations(**lookup) -> int:
    return AlarmHistory.objects.filter(change__in=ACTIVATIONS, **lookup).count()


def _flood_check(area: str, *, at: datetime, actor=None) -> None:
    """After an activation in ``area``: count the window; start a flood when it
    passes the limit, or add to the one going on."""
    rate = _activations(area=area, at__gt=at - FLOOD_WINDOW, at__lte=at)
    flood = (
        AlarmFlood.objects.select_for_update()
        .filter(area=area, ended_at__isnull=True)
        .first()
    )
    if flood is not None:
        AlarmFlood.objects.filter(pk=flood.pk).update(
            alarm_count=F("alarm_count") + 1, peak_rate=max(flood.peak_rate, rate)
        )
        return
    if rate <= FLOOD_LIMIT:
        return
    try:
        with transaction.atomic():
            flood = AlarmFlood.objects.create(
                area=area, started_at=at, alarm_count=rate, peak_rate=rate
            )
    except IntegrityError:  # another process started it a moment ago
        return
    audit.record(actor=actor, action="alarm_flood.started", target=flood)
    events.publish(alarm_events.flood_event(flood, "started"))


def _floods_end(*, now: datetime, actor) -> int:
    ended = 0
    open_floods = AlarmFlood.objects.filter(ended_at__isnull=True)
    for pk in list(open_floods.values_list("pk", flat=True)):
        with transaction.atomic():
            flood = AlarmFlood.objects.select_for_update().filter(pk=pk).first()
            if flood is None or flood.ended_at is not None:
                continue
            rate = _activations(area=flood.area, at__gt=now - FLOOD_WINDOW, at__lte=now)
            if rate > FLOOD_LIMIT:
                continue
            flood.ended_at = now
            flood.save(update_fields=["ended_at"])
            audit.record(actor=actor, action="alarm_flood.ended", target=flood)
            events.publish(alarm_events.flood_event(flood, "ended"))
            ended += 1
    return ended


# --- the periodic pass ---


def _unevaluated(now: datetime) -> list[ScadaReading]:
    """Recent readings of ruled tags newer than what their rule last evaluated
    (stored before the rule existed or was enabled, or by a path that did not
    evaluate them). Rules that are up to date cost one index probe each on the
    readings' (tag_name, timestamp) key; only the others read their readings."""
    since = now - RECENT
    rules = (
        AlertRule.objects.filter(enabled=True)
        .annotate(
            after=Greatest(Coalesce("last_reading_at", Value(since)), Value(since))
        )
        .filter(
            Exists(
                ScadaReading.objects.filter(
                    tag_name=OuterRef("tag__tag_name"),
                    timestamp__gt=OuterRef("after"),
                    timestamp__lte=now,
                )
            )
        )
        .values_list("tag__tag_name", "after")
    )
    found: dict[int, ScadaReading] = {}
    for tag_name, after in rules:
        for reading in ScadaReading.objects.filter(
            tag_name=tag_name, timestamp__gt=after, timestamp__lte=now
        ).order_by("timestamp")[:10_000]:
            found[reading.pk] = reading
    return sorted(found.values(), key=lambda r: (r.timestamp, r.pk))


def _timers(*, now: datetime, actor, counts: dict[str, int]) -> None:
    """Let the on/off-delays that elapsed without a reading act. Only rules whose
    timer is due are locked (the timer is re-read under the lock)."""
    timing = AlertRule.objects.filter(enabled=True).filter(
        Q(pending_since__isnull=False) | Q(clearing_since__isnull=False)
    )
    due = [
        pk
        for pk, state, limits in (
            (rule.pk, state_of(rule), limits_of(rule)) for rule in timing
        )
        if tick(limits, state, now)[1] != Outcome.NONE
    ]
    for pk in due:
        with transaction.atomic():
            rule = (
                AlertRule.objects.select_for_update(**ROW_LOCK)
                .select_related("tag__connector", "tag__machine__station__line")
                .filter(pk=pk, enabled=True)
                .first()
            )
            if rule is None:
                continue
            state, outcome, at = tick(limits_of(rule), state_of(rule), now)
            if outcome == Outcome.NONE:
                continue
            result = _Evaluated(raised=[])
            _apply(
                rule,
                state,
                outcome,
                at=at,
                value=rule.last_value,
                actor=actor,
                result=result,
            )
            keep_state(rule, state)
            rule.save(update_fields=_STATE_FIELDS)
            counts["activated"] += len(result.raised)
            counts["returned"] += result.returned


def _shelves_expire(*, now: datetime, actor) -> int:
    expired = 0
    due = AlarmEvent.objects.filter(status=AlarmState.SHELVED, shelved_until__lte=now)
    for pk in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            alarm = _lock(pk)
            if alarm.status != AlarmState.SHELVED or alarm.shelved_until > now:
                continue
            before, was = _snapshot(alarm), alarm.status
            _move(alarm, underlying_state(alarm), at=now)
            alarm.save()
            _changed(
                alarm,
                "shelve_expired",
                at=now,
                actor=actor,
                before=before,
                from_state=was,
            )
            expired += 1
    return expired


def _escalations(*, now: datetime, actor, counts: dict[str, int]) -> None:
    for pk in _escalation_due(now):
        with transaction.atomic():
            alarm = lock_row(
                AlarmEvent.objects.select_related("rule", "tag__machine__station"),
                what=f"Alarm {pk}",
                pk=pk,
            )
            rule = alarm.rule
            due = alarm.severity == AlarmSeverity.CRITICAL or (
                rule is not None
                and rule.escalate_after_s is not None
                and alarm.timestamp + timedelta(seconds=rule.escalate_after_s) <= now
            )
            if not due:
                continue
            escalated, work_order = _escalate(alarm, now=now, actor=actor)
            counts["escalated"] += escalated
            counts["work_orders"] += work_order


def alerts_process(*, actor, now: datetime | None = None) -> dict[str, int]:
    """The periodic pass (Celery beat every few seconds; ``POST
    /api/alerts/process``): evaluate recent readings no rule has seen, let the
    on/off-delay timers that elapsed without a reading act, expire shelves,
    escalate what waited too long, and end floods. Each change is its own
    transaction; returns how many of each."""
    now = now or timezone.now()
    counts = {
        "evaluated": 0,
        "activated": 0,
        "returned": 0,
        "shelves_expired": 0,
        "escalated": 0,
        "work_orders": 0,
        "floods_ended": 0,
    }
    fresh = _unevaluated(now)
    if fresh:
        result = _evaluate(fresh, actor=actor)
        counts["evaluated"] = len(fresh)
        counts["activated"] += len(result.raised)
        counts["returned"] += result.returned
    _timers(now=now, actor=actor, counts=counts)
    counts["shelves_expired"] = _shelves_expire(now=now, actor=actor)
    _escalations(now=now, actor=actor, counts=counts)
    counts["floods_ended"] = _floods_end(now=now, actor=actor)
    return counts
