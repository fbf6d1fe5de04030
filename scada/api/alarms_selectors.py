"""Reads of alert rules and alarms: the querysets behind the API, the admin and
the alarm board, and the flood and chattering reports."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import (
    Case,
    Count,
    IntegerField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from bpmos.errors import NotFound
from scada.alarms import ACTIVATIONS, CHATTER_COUNT, CHATTER_WINDOW, area_of
from scada.models import (
    AlarmEvent,
    AlarmFlood,
    AlarmHistory,
    AlarmSeverity,
    AlertRule,
)

# The alarm board's order: the most severe first (ISA-18.2's priority).
SEVERITY_ORDER = (
    AlarmSeverity.CRITICAL,
    AlarmSeverity.HIGH,
    AlarmSeverity.MEDIUM,
    AlarmSeverity.LOW,
)
BOARD_LIMIT = 500  # a flood beyond this is for the list API, not a wall screen


def alert_rule_list() -> QuerySet[AlertRule]:
    return AlertRule.objects.select_related("tag").order_by("name", "id")


def alert_rule_get(*, rule_id: int) -> AlertRule:
    rule = alert_rule_list().filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"Alert rule {rule_id} does not exist.")
    return rule


def _recent_activations() -> Subquery:
    """Activations of the alarm's rule in the ``CHATTER_WINDOW`` up to its
    latest activation (``timestamp``): ``CHATTER_COUNT`` or more is chattering."""
    rows = (
        AlarmHistory.objects.filter(
            rule=OuterRef("rule"),
            change__in=ACTIVATIONS,
            at__lte=OuterRef("timestamp"),
            at__gt=OuterRef("timestamp") - Value(CHATTER_WINDOW),
        )
        .order_by()
        .values("rule")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Subquery(rows, output_field=IntegerField())


def alarm_list() -> QuerySet[AlarmEvent]:
    """Every alarm, newest activation first, with who acknowledged and shelved
    it and ``recent_activations`` (the chattering count)."""
    return (
        AlarmEvent.objects.select_related("acknowledged_by", "shelved_by")
        .annotate(recent_activations=Coalesce(_recent_activations(), 0))
        .order_by("-timestamp", "-id")
    )


def alarm_get(*, alarm_id: int) -> AlarmEvent:
    history = AlarmHistory.objects.select_related("actor").order_by("at", "id")
    alarm = (
        alarm_list()
        .prefetch_related(Prefetch("history", queryset=history))
        .filter(pk=alarm_id)
        .first()
    )
    if alarm is None:
        raise NotFound(f"Alarm {alarm_id} does not exist.")
    return alarm


def alarm_board_list() -> list[AlarmEvent]:
    """The open alarms (not yet closed: active, waiting for an acknowledgement,
    or hidden) for the alarm board: by severity, critical first, then the
    longest-standing first. One query, at most ``BOARD_LIMIT`` rows."""
    rank = Case(
        *(When(severity=s, then=Value(i)) for i, s in enumerate(SEVERITY_ORDER)),
        default=Value(len(SEVERITY_ORDER)),
        output_field=IntegerField(),
    )
    return list(
        alarm_list()
        .filter(closed_at__isnull=True)
        .annotate(severity_rank=rank)
        .order_by("severity_rank", "timestamp", "id")[:BOARD_LIMIT]
    )


def is_chattering(alarm: AlarmEvent) -> bool:
    return bool(alarm.rule_id) and (
        getattr(alarm, "recent_activations", 0) >= CHATTER_COUNT
    )


def flood_list() -> QuerySet[AlarmFlood]:
    return AlarmFlood.objects.order_by("-started_at", "-id")


def chattering_report(*, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Rules that chattered between ``since`` and ``until``: at least
    ``CHATTER_COUNT`` activations within ``CHATTER_WINDOW`` somewhere in it;
    each with its activations in the period and the most in one window, the
    worst first."""
    rows = (
        AlarmHistory.objects.filter(
            change__in=ACTIVATIONS, rule__isnull=False, at__gte=since, at__lte=until
        )
        .order_by("rule_id", "at")
        .values_list("rule_id", "at")
    )
    times: dict[int, list[datetime]] = defaultdict(list)
    for rule_id, at in rows:
        times[rule_id].append(at)
    found = {}
    for rule_id, ats in times.items():
        most, start = 0, 0
        for end, at in enumerate(ats):
            while at - ats[start] > CHATTER_WINDOW:
                start += 1
            most = max(most, end - start + 1)
        if most >= CHATTER_COUNT:
            found[rule_id] = (len(ats), most, ats[-1])
    rules = AlertRule.objects.select_related(
        "tag__connector", "tag__machine__station__line"
    ).in_bulk(list(found))
    report = []
    for rule_id, (count, most, last) in sorted(
        found.items(), key=lambda item: (-item[1][1], item[0])
    ):
        rule = rules.get(rule_id)
        if rule is None:
            continue
        report.append(
            {
                "rule_id": rule_id,
                "rule_name": rule.name,
                "tag_name": rule.tag.tag_name,
                "area": area_of(rule.tag),
                "activations": count,
                "most_in_window": most,
                "last_activation_at": last,
            }
        )
    return report
