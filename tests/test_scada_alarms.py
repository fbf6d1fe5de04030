"""SCADA alarms' services (scada.alarms): readings through rules into ISA-18.2
alarms, every state transition and the refused ones, shelving and its expiry,
communication loss, escalation to one exception (and a CMMS work order),
floods and chattering, and the periodic pass.

The helpers at the top are shared with the other tests/test_scada_alarms_*.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from bpmos.celery import BEAT_SCHEDULE
from bpmos.errors import IllegalTransition, InvalidInput, NotFound
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from exceptions.models import ExceptionSource, ExceptionType, PlantException
from scada import alarm_rules, alarms
from scada.api import alarms_selectors as selectors
from scada.models import (
    AlarmEvent,
    AlarmFlood,
    AlarmHistory,
    AlarmState,
    AlertRule,
    Connector,
    MaintenanceWorkOrder,
    ScadaReading,
    Tag,
)
from scada.tasks_alarms import alerts_process_task
from tests.factories_lines import machine, make_line

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
S = AlarmState


# --- helpers (shared) ---


def make_connector(name: str = "plc-1") -> Connector:
    return Connector.objects.create(
        name=name, kind="opcua", endpoint="opc.tcp://127.0.0.1:4840"
    )


def make_tag(connector: Connector, name: str = "l1.temp", **extra) -> Tag:
    return Tag.objects.create(
        connector=connector, node_id=f"ns=2;s={name}", tag_name=name, unit="C", **extra
    )


def make_rule(tag: Tag, **extra) -> AlertRule:
    fields = {"name": f"{tag.tag_name} high", "high_limit": 80.0, **extra}
    return AlertRule.objects.create(tag=tag, **fields)


def feed(tag: Tag, *points, quality: str = "good") -> list[AlarmEvent]:
    """Store readings (seconds after T0, value) of ``tag`` and evaluate them."""
    rows = [
        ScadaReading.objects.create(
            tag=tag,
            connector_id=tag.connector_id,
            tag_name=tag.tag_name,
            timestamp=T0 + timedelta(seconds=seconds),
            value=value,
            quality=quality,
        )
        for seconds, value in points
    ]
    return alarms.readings_evaluate(readings=rows)


def alarm_in(state: str, rule: AlertRule | None = None, **extra) -> AlarmEvent:
    """An alarm put straight into ``state`` (with a consistent underlying state)."""
    # Hidden states hide an active, unacknowledged alarm.
    active = state not in {S.UNACK_RTN, S.NORMAL}
    acknowledged = state in {S.ACK_ACTIVE, S.NORMAL}
    fields = {
        "timestamp": T0,
        "rule": rule,
        "tag_name": "l1.temp",
        "status": state,
        "active": active,
        "acknowledged_at": T0 if acknowledged else None,
        "message": "test",
        "area": "line-a",
        "closed_at": T0 if state == S.NORMAL else None,
        **extra,
    }
    return AlarmEvent.objects.create(**fields)


def alarm_events(name: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(name=name).order_by("id"))


def audits(action: str) -> int:
    return AuditRecord.objects.filter(action=action).count()


@pytest.fixture
def tag(db) -> Tag:
    return make_tag(make_connector())


@pytest.fixture
def rule(tag) -> AlertRule:
    return make_rule(tag, severity="high", message="Cell temperature")


@pytest.fixture
def boss(make_user):
    return make_user("supervisor", username="sam")


@pytest.fixture
def olga(make_user):
    return make_user("operator", username="olga")


# --- readings into alarms ---


def test_reading_beyond_the_limit_raises_one_alarm_and_marks_the_reading(rule, tag):
    raised = feed(tag, (0, 75.0), (5, 85.5), (10, 86.0))
    alarm = AlarmEvent.objects.get()
    assert raised == [alarm]
    assert (alarm.status, alarm.active, alarm.kind) == (S.UNACK_ACTIVE, True, "limit")
    assert (alarm.value, alarm.limit, alarm.severity) == (85.5, 80.0, "high")
    assert alarm.timestamp == T0 + timedelta(seconds=5)
    assert alarm.message == "Cell temperature: l1.temp high 85.5 (limit 80)"
    assert (alarm.area, alarm.tag_name, alarm.rule) == ("plc-1", "l1.temp", rule)
    states = list(
        ScadaReading.objects.order_by("timestamp").values_list("alarm_state", flat=True)
    )
    assert states == ["normal", "active", "active"]
    assert [h.change for h in alarm.history.all()] == ["raised"]
    assert audits("alarm.raised") == 1
    [event] = alarm_events("alarm.raised")
    assert event.topics == ["alerts"]
    assert event.data["id"] == alarm.pk
    assert event.data["alarm_state"] == "unack_active"


def test_area_is_the_tag_s_own_else_its_machine_s_line_else_the_connector():
    connector = make_connector("plc-9")
    line = make_line(slug="line-b")
    own = make_tag(connector, "a.own", area="formation")
    on_machine = make_tag(connector, "a.machine", machine=machine(line, "st-01"))
    bare = make_tag(connector, "a.bare")
    for tag in (own, on_machine, bare):
        make_rule(tag)
        feed(tag, (0, 99.0))
    areas = dict(AlarmEvent.objects.values_list("tag_name", "area"))
    assert areas == {"a.own": "formation", "a.machine": "line-b", "a.bare": "plc-9"}


def test_bad_quality_reading_is_ignored(rule, tag):
    assert feed(tag, (0, 500.0), quality="bad") == []
    assert AlarmEvent.objects.count() == 0
    assert ScadaReading.objects.get().alarm_state == "normal"
    rule.refresh_from_db()
    assert rule.last_reading_at is None


def test_readings_found_by_tag_name_when_not_linked(rule, tag):
    row = ScadaReading.objects.create(tag_name=tag.tag_name, timestamp=T0, value=120.0)
    assert len(alarms.readings_evaluate(readings=[row])) == 1
    row.refresh_from_db()
    assert row.alarm_state == "active"


def test_disabled_rule_is_not_run(rule, tag):
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert feed(tag, (0, 120.0)) == []


def test_return_moves_unacknowledged_to_rtn_and_acknowledged_to_normal(rule, tag, olga):
    feed(tag, (0, 90.0), (5, 70.0))
    alarm = AlarmEvent.objects.get()
    assert (alarm.status, alarm.active, alarm.returned_at) == (
        S.UNACK_RTN,
        False,
        T0 + timedelta(seconds=5),
    )
    alarms.alarm_acknowledge(alarm_id=alarm.pk, actor=olga)
    feed(tag, (10, 95.0))  # a new occurrence: the first one is closed
    second = AlarmEvent.objects.exclude(pk=alarm.pk).get()
    alarms.alarm_acknowledge(alarm_id=second.pk, actor=olga)
    feed(tag, (15, 60.0))
    second.refresh_from_db()
    assert (second.status, second.closed_at) == (S.NORMAL, T0 + timedelta(seconds=15))


def test_activation_while_returned_unacknowledged_reactivates_the_same_alarm(rule, tag):
    feed(tag, (0, 90.0), (5, 70.0), (10, 91.0))
    alarm = AlarmEvent.objects.get()
    assert (alarm.status, alarm.active, alarm.value) == (S.UNACK_ACTIVE, True, 91.0)
    assert alarm.timestamp == T0 + timedelta(seconds=10)
    changes = [h.change for h in alarm.history.all()]
    assert changes == ["raised", "returned", "reactivated"]


def test_deadband_holds_the_alarm_until_far_enough_inside(tag):
    make_rule(tag, deadband=5.0)
    feed(tag, (0, 81.0), (5, 79.0), (10, 75.5))
    assert AlarmEvent.objects.get().status == S.UNACK_ACTIVE
    feed(tag, (15, 75.0))
    assert AlarmEvent.objects.get().status == S.UNACK_RTN


def test_low_limit_alarm(tag):
    make_rule(tag, high_limit=None, low_limit=10.0, name="low")
    feed(tag, (0, 9.5))
    alarm = AlarmEvent.objects.get()
    assert (alarm.limit, alarm.message) == (10.0, "l1.temp low 9.5 (limit 10)")


# --- delays through the periodic pass ---


def test_on_delay_elapsing_without_a_reading_activates_in_the_pass(tag):
    make_rule(tag, on_delay_s=30)
    assert feed(tag, (0, 90.0)) == []
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=29))
    assert counts["activated"] == 0
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=30))
    assert counts["activated"] == 1
    alarm = AlarmEvent.objects.get()
    assert (alarm.timestamp, alarm.value) == (T0 + timedelta(seconds=30), 90.0)
    assert (
        alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=40))["activated"]
        == 0
    )


def test_off_delay_elapsing_without_a_reading_returns_in_the_pass(tag):
    make_rule(tag, off_delay_s=20)
    feed(tag, (0, 90.0), (5, 50.0))
    assert AlarmEvent.objects.get().status == S.UNACK_ACTIVE
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=25))
    assert counts["returned"] == 1
    alarm = AlarmEvent.objects.get()
    assert (alarm.status, alarm.returned_at) == (
        S.UNACK_RTN,
        T0 + timedelta(seconds=25),
    )


def test_pass_evaluates_readings_stored_without_evaluation(rule, tag):
    ScadaReading.objects.create(
        tag=tag, tag_name=tag.tag_name, timestamp=T0, value=99.0
    )
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=1))
    assert (counts["evaluated"], counts["activated"]) == (1, 1)
    again = alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=2))
    assert (again["evaluated"], again["activated"]) == (0, 0)


# --- ISA-18.2 transitions: every action from every state ---

# action -> {from state: resulting state}; every state not listed is refused (409).
EXPECTED = {
    "acknowledge": {S.UNACK_ACTIVE: S.ACK_ACTIVE, S.UNACK_RTN: S.NORMAL},
    "shelve": {
        S.UNACK_ACTIVE: S.SHELVED,
        S.ACK_ACTIVE: S.SHELVED,
        S.UNACK_RTN: S.SHELVED,
    },
    "unshelve": {S.SHELVED: S.UNACK_ACTIVE},
    "suppress": {
        S.UNACK_ACTIVE: S.SUPPRESSED,
        S.ACK_ACTIVE: S.SUPPRESSED,
        S.UNACK_RTN: S.SUPPRESSED,
    },
    "unsuppress": {S.SUPPRESSED: S.UNACK_ACTIVE},
    "remove_from_service": {
        S.UNACK_ACTIVE: S.OUT_OF_SERVICE,
        S.ACK_ACTIVE: S.OUT_OF_SERVICE,
        S.UNACK_RTN: S.OUT_OF_SERVICE,
        S.SHELVED: S.OUT_OF_SERVICE,
        S.SUPPRESSED: S.OUT_OF_SERVICE,
    },
    "return_to_service": {S.OUT_OF_SERVICE: S.UNACK_ACTIVE},
}


def act(action: str, alarm_id: int, actor):
    service = getattr(alarms, f"alarm_{action}")
    if action == "shelve":
        return service(alarm_id=alarm_id, actor=actor, reason="noisy", minutes=30)
    if action in {"suppress", "remove_from_service"}:
        return service(alarm_id=alarm_id, actor=actor, reason="maintenance")
    return service(alarm_id=alarm_id, actor=actor)


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("state", list(S.values))
def test_every_action_from_every_state(action, state, make_user):
    admin = make_user("admin")
    alarm = alarm_in(state)
    target = EXPECTED[action].get(state)
    before_audits, before_events = (
        AuditRecord.objects.count(),
        OutboxEvent.objects.count(),
    )
    if target is None:
        with pytest.raises(IllegalTransition) as refused:
            act(action, alarm.pk, admin)
        assert refused.value.details == {"from": state, "action": action}
        alarm.refresh_from_db()
        assert alarm.status == state
        assert AuditRecord.objects.count() == before_audits
        assert OutboxEvent.objects.count() == before_events
        assert AlarmHistory.objects.count() == 0
        return
    result = act(action, alarm.pk, admin)
    alarm.refresh_from_db()
    assert alarm.status == result.status == target
    assert (alarm.closed_at is not None) == (target == S.NORMAL)
    [history] = AlarmHistory.objects.all()
    assert (history.from_state, history.to_state, history.actor) == (
        state,
        target,
        admin,
    )
    assert AuditRecord.objects.count() == before_audits + 1
    assert OutboxEvent.objects.count() == before_events + 1


def test_transition_table_agrees_with_the_actions():
    for action, moves in EXPECTED.items():
        for source, target in moves.items():
            assert target in alarms.ALARM_TRANSITIONS[source], (action, source)
    assert alarms.ALARM_TRANSITIONS[S.NORMAL] == set()
    assert AlarmEvent.TRANSITIONS is alarms.ALARM_TRANSITIONS


@pytest.mark.parametrize(
    ("active", "acknowledged", "back_to"),
    [
        (True, False, S.UNACK_ACTIVE),
        (True, True, S.ACK_ACTIVE),
        (False, False, S.UNACK_RTN),
        (False, True, S.NORMAL),
    ],
)
def test_unshelve_returns_to_the_underlying_state(active, acknowledged, back_to, boss):
    alarm = alarm_in(
        S.SHELVED, active=active, acknowledged_at=T0 if acknowledged else None
    )
    alarms.alarm_unshelve(alarm_id=alarm.pk, actor=boss)
    alarm.refresh_from_db()
    assert alarm.status == back_to
    assert (alarm.closed_at is not None) == (back_to == S.NORMAL)
    assert alarm.shelved_until is None


def test_shelved_alarm_follows_the_process_underneath_and_expires(rule, tag, boss):
    feed(tag, (0, 90.0))
    alarm = AlarmEvent.objects.get()
    alarms.alarm_shelve(
        alarm_id=alarm.pk, actor=boss, reason="sensor drift", minutes=60
    )
    alarm.refresh_from_db()
    assert alarm.status == S.SHELVED
    assert (alarm.shelved_by, alarm.shelve_reason) == (boss, "sensor drift")
    feed(tag, (5, 50.0))  # returns while shelved: stays shelved
    alarm.refresh_from_db()
    assert (alarm.status, alarm.active) == (S.SHELVED, False)
    not_yet = alarms.alerts_process(
        actor=None, now=timezone.now() + timedelta(minutes=59)
    )
    assert not_yet["shelves_expired"] == 0
    counts = alarms.alerts_process(
        actor=None, now=timezone.now() + timedelta(minutes=61)
    )
    assert counts["shelves_expired"] == 1
    alarm.refresh_from_db()
    assert (alarm.status, alarm.shelved_until) == (S.UNACK_RTN, None)
    assert [h.change for h in alarm.history.all()][-1] == "shelve_expired"
    assert len(alarm_events("alarm.shelve_expired")) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"minutes": 30, "until": T0}, "minutes"),
        ({}, "minutes"),
        ({"minutes": 24 * 60 + 1}, "minutes"),
        ({"until": datetime(2020, 1, 1, tzinfo=UTC)}, "until"),
        ({"minutes": 30, "reason": "  "}, "reason"),
    ],
)
def test_shelve_refuses_bad_input_and_changes_nothing(kwargs, field, boss):
    alarm = alarm_in(S.UNACK_ACTIVE)
    with pytest.raises(InvalidInput) as refused:
        alarms.alarm_shelve(alarm_id=alarm.pk, actor=boss, **{"reason": "x", **kwargs})
    assert list(refused.value.details) == [field]
    alarm.refresh_from_db()
    assert alarm.status == S.UNACK_ACTIVE
    assert AuditRecord.objects.count() == 0


def test_unknown_alarm_is_not_found(boss):
    with pytest.raises(NotFound):
        alarms.alarm_acknowledge(alarm_id=987654, actor=boss)


# --- communication loss ---


def test_comm_loss_is_one_alarm_per_connector():
    connector = make_connector("plc-7")
    first = alarms.comm_loss_raise(connector_id=connector.pk, error="timeout")
    assert first is not None
    assert (first.kind, first.severity, first.area) == ("comm_loss", "high", "plc-7")
    assert first.message == "Communication lost with plc-7: timeout"
    assert alarms.comm_loss_raise(connector_id=connector.pk, error="again") is None
    alarms.comm_loss_clear(connector_id=connector.pk)
    first.refresh_from_db()
    assert (first.status, first.active) == (S.UNACK_RTN, False)
    again = alarms.comm_loss_raise(connector_id=connector.pk, error="refused")
    assert (again.pk, again.status) == (first.pk, S.UNACK_ACTIVE)
    assert AlarmEvent.objects.filter(kind="comm_loss").count() == 1
    alarms.comm_loss_clear(connector_id=connector.pk)
    alarms.comm_loss_clear(connector_id=connector.pk)  # nothing left to clear
    assert [h.change for h in first.history.all()] == [
        "raised",
        "returned",
        "reactivated",
        "returned",
    ]


def test_comm_loss_of_unknown_connector_is_not_found():
    with pytest.raises(NotFound):
        alarms.comm_loss_raise(connector_id=987654, error="x")


# --- escalation ---


def test_critical_alarm_becomes_one_exception_at_once(tag):
    make_rule(tag, severity="critical", message="Thermal runaway")
    feed(tag, (0, 120.0))
    alarm = AlarmEvent.objects.get()
    exc = PlantException.objects.get()
    assert alarm.exception == exc
    assert (exc.type, exc.source, exc.severity) == (
        ExceptionType.ALARM,
        ExceptionSource.ALARM,
        "critical",
    )
    assert exc.title.startswith("Alarm: Thermal runaway")
    feed(tag, (5, 50.0), (10, 121.0))  # reactivated: still the one exception
    assert PlantException.objects.count() == 1
    assert (
        alarms.alerts_process(actor=None, now=T0 + timedelta(hours=1))["escalated"] == 0
    )
    assert len(alarm_events("alarm.escalated")) == 1


def test_unacknowledged_alarm_escalates_after_its_rule_s_limit_once(tag):
    make_rule(tag, escalate_after_s=300)
    feed(tag, (0, 90.0))
    assert (
        alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=299))["escalated"]
        == 0
    )
    assert PlantException.objects.count() == 0
    assert (
        alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=300))["escalated"]
        == 1
    )
    assert (
        alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=900))["escalated"]
        == 0
    )
    assert PlantException.objects.count() == 1
    assert AlarmEvent.objects.get().exception_id == PlantException.objects.get().pk


def test_acknowledged_or_shelved_alarm_does_not_escalate(tag, olga, boss):
    make_rule(tag, escalate_after_s=60)
    other = make_tag(tag.connector, "l1.press")
    make_rule(other, escalate_after_s=60)
    feed(tag, (0, 90.0))
    feed(other, (0, 90.0))
    first, second = AlarmEvent.objects.order_by("id")
    alarms.alarm_acknowledge(alarm_id=first.pk, actor=olga)
    alarms.alarm_shelve(alarm_id=second.pk, actor=boss, reason="known", minutes=600)
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(minutes=5))
    assert counts["escalated"] == 0
    assert PlantException.objects.count() == 0


def test_escalation_opens_one_cmms_work_order(tag):
    make_rule(tag, escalate_after_s=60, create_work_order=True, severity="high")
    feed(tag, (0, 90.0))
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(minutes=2))
    assert (counts["escalated"], counts["work_orders"]) == (1, 1)
    alarms.alerts_process(actor=None, now=T0 + timedelta(minutes=3))
    alarm = AlarmEvent.objects.get()
    [work_order] = MaintenanceWorkOrder.objects.all()
    assert (work_order.source_alarm, work_order.priority) == (alarm, "high")


def test_escalation_without_create_work_order_opens_none(tag):
    make_rule(tag, escalate_after_s=60)
    feed(tag, (0, 90.0))
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(minutes=2))
    assert (counts["escalated"], counts["work_orders"]) == (1, 0)
    assert MaintenanceWorkOrder.objects.count() == 0


# --- floods and chattering ---


def _area_tags(count: int, area: str = "line-a") -> list[Tag]:
    connector = make_connector(f"plc-{area}")
    tags = [make_tag(connector, f"{area}.t{i}", area=area) for i in range(count)]
    for tag in tags:
        make_rule(tag)
    return tags


def test_more_than_ten_alarms_in_ten_minutes_is_a_flood_announced_once():
    tags = _area_tags(13)
    for i, tag in enumerate(tags[:10]):
        feed(tag, (i * 50, 90.0))  # ten within 450 s: not a flood yet
    assert AlarmFlood.objects.count() == 0
    feed(tags[10], (500, 90.0))
    flood = AlarmFlood.objects.get()
    assert (flood.area, flood.started_at, flood.ended_at) == (
        "line-a",
        T0 + timedelta(seconds=500),
        None,
    )
    assert (flood.alarm_count, flood.peak_rate) == (11, 11)
    feed(tags[11], (510, 90.0))
    flood.refresh_from_db()
    assert (flood.alarm_count, flood.peak_rate) == (12, 12)
    [started] = alarm_events("alarm_flood.started")
    assert (started.data["area"], started.topics) == ("line-a", ["alerts"])
    # Still flooding five minutes on; over once the window holds ten or fewer.
    assert (
        alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=600))[
            "floods_ended"
        ]
        == 0
    )
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=1200))
    assert counts["floods_ended"] == 1
    flood.refresh_from_db()
    assert flood.ended_at == T0 + timedelta(seconds=1200)
    assert len(alarm_events("alarm_flood.ended")) == 1


def test_eleven_alarms_spread_over_more_than_ten_minutes_are_no_flood():
    tags = _area_tags(11)
    for i, tag in enumerate(tags):
        feed(tag, (i * 61, 90.0))  # 11 activations over 610 s
    assert AlarmFlood.objects.count() == 0


def test_floods_are_counted_per_area():
    for area in ("line-a", "line-b"):
        for i, tag in enumerate(_area_tags(6, area)):
            feed(tag, (i, 90.0))
    assert AlarmFlood.objects.count() == 0


def test_rule_activating_three_times_in_a_minute_is_chattering(rule, tag):
    feed(tag, (0, 90.0), (10, 70.0), (20, 91.0), (30, 70.0), (40, 92.0))
    alarm = selectors.alarm_list().get()
    assert selectors.is_chattering(alarm)
    report = selectors.chattering_report(since=T0, until=T0 + timedelta(hours=1))
    assert report == [
        {
            "rule_id": rule.pk,
            "rule_name": rule.name,
            "tag_name": "l1.temp",
            "area": "plc-1",
            "activations": 3,
            "most_in_window": 3,
            "last_activation_at": T0 + timedelta(seconds=40),
        }
    ]


def test_three_activations_over_three_minutes_are_not_chattering(rule, tag):
    feed(tag, (0, 90.0), (30, 70.0), (65, 91.0), (90, 70.0), (130, 92.0))
    assert not selectors.is_chattering(selectors.alarm_list().get())
    assert selectors.chattering_report(since=T0, until=T0 + timedelta(hours=1)) == []


# --- rules ---


def test_disabling_a_rule_in_alarm_returns_its_alarm_and_resets_it(
    rule, tag, make_user
):
    admin = make_user("admin")
    feed(tag, (0, 90.0))
    alarm_rules.alert_rule_update(rule_id=rule.pk, data={"enabled": False}, actor=admin)
    alarm = AlarmEvent.objects.get()
    assert (alarm.status, alarm.active) == (S.UNACK_RTN, False)
    rule.refresh_from_db()
    assert (rule.in_alarm, rule.last_reading_at) == (False, None)
    record = AuditRecord.objects.get(action="alert_rule.changed")
    assert (record.before, record.after) == ({"enabled": True}, {"enabled": False})


def test_pass_evaluates_only_readings_newer_than_the_rule_has_seen(rule, tag):
    feed(tag, (0, 90.0), (5, 50.0))  # evaluated: raised, then returned
    for seconds, value in ((10, 95.0), (15, 96.0)):  # stored, not evaluated
        ScadaReading.objects.create(
            tag_name=tag.tag_name,
            timestamp=T0 + timedelta(seconds=seconds),
            value=value,
        )
    counts = alarms.alerts_process(actor=None, now=T0 + timedelta(seconds=20))
    assert (counts["evaluated"], counts["activated"]) == (2, 1)
    alarm = AlarmEvent.objects.get()
    assert (alarm.status, alarm.value) == (S.UNACK_ACTIVE, 95.0)
    rule.refresh_from_db()
    assert rule.last_reading_at == T0 + timedelta(seconds=15)


def test_beat_runs_the_pass_every_five_seconds(tag):
    entry = BEAT_SCHEDULE["alerts-process"]
    assert entry == {
        "task": "scada.tasks_alarms.alerts_process_task",
        "schedule": 5.0,
        "options": {"expires": 4.0},
    }
    assert alerts_process_task.name == entry["task"]
    alarm = alarm_in(S.SHELVED, shelved_until=timezone.now() - timedelta(seconds=1))
    assert alerts_process_task.apply().get()["shelves_expired"] == 1
    alarm.refresh_from_db()
    assert alarm.status == S.UNACK_ACTIVE


def test_batch_of_tags_without_rules_costs_one_query(
    rule, tag, django_assert_num_queries
):
    others = [make_tag(tag.connector, f"l1.x{i}") for i in range(20)]
    rows = [
        ScadaReading.objects.create(
            tag=other, tag_name=other.tag_name, timestamp=T0, value=500.0
        )
        for other in others
    ]
    with django_assert_num_queries(1):
        assert alarms.readings_evaluate(readings=rows) == []
