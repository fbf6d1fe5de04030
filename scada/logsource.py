"""SCADA's log sources (``GET /api/logs``; ``bpmos/logevents.py``):

- ``alarm_source``: the alarms' journal (``AlarmHistory``: activated,
  acknowledged, returned, shelved, escalated, ...) as ``alarm`` events, the
  severity the alarm's (low info, medium warning, high error, critical
  critical); connectors' communication-loss alarms are not among them but
- ``comm_source``: their journal as ``system`` events (a connector lost its
  server: error; everything after: info), and
- ``cmms_source``: failed deliveries of maintenance work orders to the CMMS
  (``DeliveryAttempt`` not ok) as ``system`` events (error).

Each is one query, newest first, over a ``(timestamp, id)`` index (with a
``search``, the alarm and connector sources first find the matching alarms
and users: ``_search``).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.db.models.functions import Left

from bpmos.logevents import (
    ALARM,
    CRITICAL,
    ERROR,
    INFO,
    SYSTEM,
    WARNING,
    LogEvent,
    LogQuery,
    LogTarget,
)
from bpmos.logsource import (
    Plan,
    Row,
    among,
    fk_in,
    run,
    select,
    text_q,
    wants,
)
from scada.models import (
    AlarmEvent,
    AlarmHistory,
    AlarmSeverity,
    Connector,
    DeliveryAttempt,
)

COMM_LOSS = "comm_loss"  # AlarmEvent.kind of a connector's lost server
COMM_HEAD = f"{SYSTEM}:comm"
CMMS_HEAD = f"{SYSTEM}:cmms"

SEVERITY = {
    AlarmSeverity.LOW: INFO,
    AlarmSeverity.MEDIUM: WARNING,
    AlarmSeverity.HIGH: ERROR,
    AlarmSeverity.CRITICAL: CRITICAL,
}

# The journal's columns a page reads (``select``), the alarm's and its
# connector's through their joins (the actor and the connector may be absent).
_HISTORY_FIELDS = (
    "change",
    "note",
    "actor__username",
    "alarm_id",
    "alarm__tag_name",
    "alarm__severity",
    "alarm__message",
    "alarm__connector_id",
    "alarm__connector__name",
)


def _alarm_label(alarm_id: str, tag_name: str) -> str:
    return tag_name or f"Alarm {alarm_id}"


def _message(change: str, note: str, alarm_message: str, subject: str) -> str:
    text = f"{subject}: {change.replace('_', ' ')}"
    if alarm_message:
        text += f" ({alarm_message})"
    if note:
        text += f": {note}"
    return text


def _search(query: LogQuery) -> Q:
    """``search`` in the change, the note, the actor's username and the
    alarm's tag, message and connector. On PostgreSQL the journal's own
    columns go through ``scada_alarmhistory_text_trgm`` and the alarms' tag
    and message through ``scada_alarm_text_trgm``; the matching alarms
    and actors are found first (``bpmos.logsource.among``: in a page, one
    query with the ledger's look-up; alone, a query each) and their journal
    rows read by their foreign keys' indexes."""
    if not query.search:
        return Q()
    term = query.search
    # the alarms' tag and message through ``scada_alarm_text_trgm``, their
    # connector's name by the (few) matching connectors' ids: one index
    # lookup each, where the join and three LIKEs read all the alarms
    alarm = text_q(query, "tag_name", "message") | fk_in(
        "connector", Connector.objects.filter(name__icontains=term)
    )
    joined = (
        Q(alarm__tag_name__icontains=term)
        | Q(alarm__message__icontains=term)
        | Q(alarm__connector__name__icontains=term)
    )
    users = get_user_model().objects.filter(username__icontains=term)
    return (
        text_q(query, "change", "note")
        | among("alarm", AlarmEvent.objects.filter(alarm), joined)
        | among("actor", users, Q(actor__username__icontains=term))
    )


def _alarm_event(row: Row) -> LogEvent:
    """An alarm journal row (``_HISTORY_FIELDS``) as an ``alarm`` event."""
    at, pk, _, change, note, actor, alarm_id, tag_name, severity, message, *_ = row
    label = _alarm_label(alarm_id, tag_name)
    return LogEvent(
        id=f"{ALARM}:{pk}",
        timestamp=at,
        category=ALARM,
        severity=SEVERITY.get(severity, WARNING),
        actor=actor,
        action=f"alarm.{change}",
        target=LogTarget(type="alarm", id=alarm_id, label=label),
        message=_message(change, note, message, label),
        source="operator" if actor else "scada",
    )


def alarm_source(query: LogQuery) -> list[LogEvent]:
    """The alarms' journal (communication loss aside) as ``alarm`` events."""
    return run(alarm_plan(query))


def alarm_plan(query: LogQuery) -> Plan | None:
    """``alarm_source``'s page as one SELECT (None: nothing to give)."""
    if ALARM not in query.categories:
        return None
    qs = AlarmHistory.objects.exclude(alarm__kind=COMM_LOSS).filter(_search(query))
    if query.severities is not None:
        levels = [k for k, v in SEVERITY.items() if v in query.severities]
        if not levels:
            return None
        qs = qs.filter(alarm__severity__in=levels)
    return select(
        qs, query, ts="at", head=ALARM, fields=_HISTORY_FIELDS, build=_alarm_event
    )


def _comm_event(row: Row) -> LogEvent:
    """A comm-loss journal row (``_HISTORY_FIELDS``) as a ``system`` event."""
    (
        at,
        pk,
        _,
        change,
        note,
        actor,
        alarm_id,
        tag_name,
        _,
        message,
        connector_id,
        connector_name,
        *_,
    ) = row
    if connector_id is not None:
        subject = f"Connector {connector_name}"
        target = LogTarget(type="connector", id=connector_id, label=connector_name)
    else:
        subject = _alarm_label(alarm_id, tag_name)
        target = LogTarget(type="alarm", id=alarm_id, label=subject)
    return LogEvent(
        id=f"{COMM_HEAD}:{pk}",
        timestamp=at,
        category=SYSTEM,
        severity=ERROR if change == "activated" else INFO,
        actor=actor,
        action=f"connector.comm_{change}",
        target=target,
        message=_message(change, note, message, subject),
        source="collector",
    )


def comm_source(query: LogQuery) -> list[LogEvent]:
    """Connectors' communication loss (their comm-loss alarms' journal) as
    ``system`` events: the loss an error, what follows it info."""
    return run(comm_plan(query))


def comm_plan(query: LogQuery) -> Plan | None:
    """``comm_source``'s page as one SELECT (None: nothing to give)."""
    if SYSTEM not in query.categories:
        return None
    qs = AlarmHistory.objects.filter(alarm__kind=COMM_LOSS).filter(_search(query))
    if query.severities is not None:
        loss, rest = ERROR in query.severities, INFO in query.severities
        if not (loss or rest):
            return None
        if not rest:
            qs = qs.filter(change="activated")
        elif not loss:
            qs = qs.exclude(change="activated")
    return select(
        qs, query, ts="at", head=COMM_HEAD, fields=_HISTORY_FIELDS, build=_comm_event
    )


def _cmms_event(row: Row) -> LogEvent:
    """A failed delivery (``cmms_plan``'s columns) as a ``system`` event."""
    at, pk, _, work_order_id, status_code, error, *_ = row
    label = f"MWO-{work_order_id}"
    status = f"HTTP {status_code}" if status_code and int(status_code) else "no answer"
    return LogEvent(
        id=f"{CMMS_HEAD}:{pk}",
        timestamp=at,
        category=SYSTEM,
        severity=ERROR,
        actor=None,
        action="cmms.delivery_failed",
        target=LogTarget(type="maintenance_work_order", id=work_order_id, label=label),
        message=f"CMMS delivery of {label} failed ({status}): {error}",
        source="task",
    )


def cmms_source(query: LogQuery) -> list[LogEvent]:
    """Failed deliveries of maintenance work orders to the CMMS as ``system``
    events (error). ``search`` matches the error and ``MWO-<id>``."""
    return run(cmms_plan(query))


def _cmms_order_number(term: str) -> int | None:
    """The CMMS work order a term names by its code (``MWO-7``), if it does."""
    term = term.strip().upper()
    if term.startswith("MWO-") and term[4:].isdigit() and int(term[4:]) < 2**63:
        return int(term[4:])
    return None


def cmms_search_shape(term: str) -> tuple | None:
    """None for a term that names a CMMS order by its code: such a search is
    not cached (``bpmos.dashboards.logs.Source.search_shape``)."""
    return None if _cmms_order_number(term) is not None else ()


def cmms_plan(query: LogQuery) -> Plan | None:
    """``cmms_source``'s page as one SELECT (None: nothing to give)."""
    if SYSTEM not in query.categories or not wants(query, ERROR):
        return None
    qs = DeliveryAttempt.objects.filter(ok=False)
    if query.search:
        cond = Q(error__icontains=query.search)
        number = _cmms_order_number(query.search)
        if number is not None:
            cond |= Q(work_order_id=number)
        qs = qs.filter(cond)
    return select(
        qs,
        query,
        ts="at",
        head=CMMS_HEAD,
        fields=("work_order_id", "status_code", Left("error", 300)),
        build=_cmms_event,
    )
