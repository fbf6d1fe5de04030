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
from bpmos.logsource import among, event_id, fk_in, page, text_q, wants
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

_HISTORY_FIELDS = (
    "id",
    "at",
    "change",
    "note",
    "actor__username",
    "alarm__id",
    "alarm__tag_name",
    "alarm__severity",
    "alarm__message",
    "alarm__kind",
    "alarm__connector__name",
)


def _history():
    return AlarmHistory.objects.select_related(
        "alarm", "actor", "alarm__connector"
    ).only(*_HISTORY_FIELDS)


def _alarm_label(row: AlarmHistory) -> str:
    alarm = row.alarm
    return alarm.tag_name or f"Alarm {alarm.pk}"


def _message(row: AlarmHistory, subject: str) -> str:
    text = f"{subject}: {row.change.replace('_', ' ')}"
    if row.alarm.message:
        text += f" ({row.alarm.message})"
    if row.note:
        text += f": {row.note}"
    return text


def _search(query: LogQuery) -> Q:
    """``search`` in the change, the note, the actor's username and the
    alarm's tag, message and connector. On PostgreSQL the journal's own
    columns go through ``scada_alarmhistory_text_trgm`` and the alarms' tag
    and message through ``scada_alarm_text_trgm``; the matching alarms
    and actors are found first (two queries, ``bpmos.logsource.among``) and
    their journal rows read by their foreign keys' indexes."""
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


def alarm_source(query: LogQuery) -> list[LogEvent]:
    """The alarms' journal (communication loss aside) as ``alarm`` events."""
    if ALARM not in query.categories:
        return []
    qs = _history().exclude(alarm__kind=COMM_LOSS).filter(_search(query))
    if query.severities is not None:
        levels = [k for k, v in SEVERITY.items() if v in query.severities]
        if not levels:
            return []
        qs = qs.filter(alarm__severity__in=levels)
    events = []
    for row in page(qs, query, ts="at", head=ALARM):
        actor = row.actor.username if row.actor_id else None
        events.append(
            LogEvent(
                id=event_id(ALARM, row.pk),
                timestamp=row.at,
                category=ALARM,
                severity=SEVERITY.get(row.alarm.severity, WARNING),
                actor=actor,
                action=f"alarm.{row.change}",
                target=LogTarget(
                    type="alarm", id=str(row.alarm.pk), label=_alarm_label(row)
                ),
                message=_message(row, _alarm_label(row)),
                source="operator" if actor else "scada",
            )
        )
    return events


def comm_source(query: LogQuery) -> list[LogEvent]:
    """Connectors' communication loss (their comm-loss alarms' journal) as
    ``system`` events: the loss an error, what follows it info."""
    if SYSTEM not in query.categories:
        return []
    qs = _history().filter(alarm__kind=COMM_LOSS).filter(_search(query))
    if query.severities is not None:
        loss, rest = ERROR in query.severities, INFO in query.severities
        if not (loss or rest):
            return []
        if not rest:
            qs = qs.filter(change="activated")
        elif not loss:
            qs = qs.exclude(change="activated")
    events = []
    for row in page(qs, query, ts="at", head=COMM_HEAD):
        actor = row.actor.username if row.actor_id else None
        connector = row.alarm.connector
        subject = f"Connector {connector.name}" if connector else _alarm_label(row)
        target = (
            LogTarget(type="connector", id=str(connector.pk), label=connector.name)
            if connector
            else LogTarget(type="alarm", id=str(row.alarm.pk), label=_alarm_label(row))
        )
        events.append(
            LogEvent(
                id=event_id(COMM_HEAD, row.pk),
                timestamp=row.at,
                category=SYSTEM,
                severity=ERROR if row.change == "activated" else INFO,
                actor=actor,
                action=f"connector.comm_{row.change}",
                target=target,
                message=_message(row, subject),
                source="collector",
            )
        )
    return events


def cmms_source(query: LogQuery) -> list[LogEvent]:
    """Failed deliveries of maintenance work orders to the CMMS as ``system``
    events (error). ``search`` matches the error and ``MWO-<id>``."""
    if SYSTEM not in query.categories or not wants(query, ERROR):
        return []
    qs = DeliveryAttempt.objects.filter(ok=False).only(
        "id", "at", "work_order_id", "status_code", "error"
    )
    if query.search:
        cond = Q(error__icontains=query.search)
        term = query.search.strip().upper()
        if term.startswith("MWO-") and term[4:].isdigit() and int(term[4:]) < 2**63:
            cond |= Q(work_order_id=int(term[4:]))
        qs = qs.filter(cond)
    events = []
    for row in page(qs, query, ts="at", head=CMMS_HEAD):
        label = f"MWO-{row.work_order_id}"
        status = f"HTTP {row.status_code}" if row.status_code else "no answer"
        events.append(
            LogEvent(
                id=event_id(CMMS_HEAD, row.pk),
                timestamp=row.at,
                category=SYSTEM,
                severity=ERROR,
                actor=None,
                action="cmms.delivery_failed",
                target=LogTarget(
                    type="maintenance_work_order",
                    id=str(row.work_order_id),
                    label=label,
                ),
                message=f"CMMS delivery of {label} failed ({status}): "
                f"{row.error[:300]}",
                source="task",
            )
        )
    return events
