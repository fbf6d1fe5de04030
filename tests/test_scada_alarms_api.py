"""The alarms API: alert rules (admins write, everyone reads, the limits'
rules as 400s), alarms (list, filters, detail), the ISA-18.2 actions with their
roles and 409s, floods, chattering and POST /api/alerts/process. Refusals
change nothing: no row, no audit record, no event."""

from __future__ import annotations

import pytest

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from scada.alarms import alarm_acknowledge
from scada.models import AlarmEvent, AlarmFlood, AlarmState, AlertRule
from tests.conftest import api_as as api
from tests.support import assert_envelope
from tests.test_scada_alarms import (
    EXPECTED,
    T0,
    alarm_in,
    feed,
    make_connector,
    make_rule,
    make_tag,
)

pytestmark = pytest.mark.django_db

S = AlarmState
RULES = "/api/alerts/rules"


@pytest.fixture
def tag(db):
    return make_tag(make_connector())


@pytest.fixture
def admin(make_user):
    return api(make_user("admin", username="ada"))


def unchanged(before_audits: int, before_events: int) -> None:
    assert AuditRecord.objects.count() == before_audits
    assert OutboxEvent.objects.count() == before_events


def counts() -> tuple[int, int]:
    return AuditRecord.objects.count(), OutboxEvent.objects.count()


# --- alert rules ---


def test_admin_creates_a_rule(admin, tag):
    response = admin.post(
        RULES,
        {
            "name": "Cell temp high",
            "tag": tag.pk,
            "high_limit": 60,
            "low_limit": 5,
            "deadband": 2.5,
            "on_delay_s": 10,
            "severity": "critical",
            "escalate_after_s": 300,
            "create_work_order": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    rule = AlertRule.objects.get()
    assert body == {
        "id": rule.pk,
        "name": "Cell temp high",
        "tag": tag.pk,
        "tag_name": "l1.temp",
        "high_limit": 60.0,
        "low_limit": 5.0,
        "deadband": 2.5,
        "on_delay_s": 10,
        "off_delay_s": 0,
        "severity": "critical",
        "message": "",
        "escalate_after_s": 300,
        "create_work_order": True,
        "enabled": True,
        "in_alarm": False,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("Z")
    assert AuditRecord.objects.filter(action="alert_rule.created").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "high_limit"),  # no limit at all
        ({"high_limit": 10, "low_limit": 20}, "low_limit"),
        ({"high_limit": 10, "low_limit": 10}, "low_limit"),
        ({"high_limit": 80, "deadband": -1}, "deadband"),
        ({"high_limit": 30, "low_limit": 20, "deadband": 10}, "deadband"),
        ({"high_limit": "hot"}, "high_limit"),
        ({"high_limit": 80, "tag": 987654}, "tag"),
        ({"high_limit": 80, "on_delay_s": -1}, "on_delay_s"),
        ({"high_limit": 80, "severity": "urgent"}, "severity"),
        ({"high_limit": 80, "name": "taken"}, "name"),
    ],
)
def test_invalid_rule_is_400_and_creates_nothing(admin, tag, body, field):
    make_rule(tag, name="taken")
    before = counts()
    response = admin.post(RULES, {"name": "new", "tag": tag.pk, **body}, format="json")
    envelope = assert_envelope(response, 400, "validation_error")
    assert field in envelope["details"], envelope
    assert AlertRule.objects.count() == 1
    unchanged(*before)


def test_patch_changes_only_what_is_given_and_checks_the_result(admin, tag):
    rule = make_rule(tag, low_limit=10.0)
    response = admin.patch(f"{RULES}/{rule.pk}", {"deadband": 4}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["deadband"], response.json()["high_limit"]) == (4.0, 80.0)
    before = counts()
    response = admin.patch(f"{RULES}/{rule.pk}", {"low_limit": 90}, format="json")
    assert assert_envelope(response, 400, "validation_error")["details"] == {
        "low_limit": ["Must be below the high limit."]
    }
    rule.refresh_from_db()
    assert (rule.low_limit, rule.deadband) == (10.0, 4.0)
    unchanged(*before)


def test_delete_rule_and_409_while_it_has_an_open_alarm(admin, tag):
    rule = make_rule(tag)
    feed(tag, (0, 95.0))
    before = counts()
    response = admin.delete(f"{RULES}/{rule.pk}")
    assert_envelope(response, 409, "alarm_open")
    unchanged(*before)
    AlarmEvent.objects.update(closed_at=T0, status=S.NORMAL)
    assert admin.delete(f"{RULES}/{rule.pk}").status_code == 204
    assert not AlertRule.objects.exists()
    assert AuditRecord.objects.filter(action="alert_rule.deleted").count() == 1


@pytest.mark.parametrize("role", ["operator", "planner", "supervisor", "auditor"])
def test_only_admins_write_rules_everyone_reads(make_user, tag, role):
    client = api(make_user(role))
    rule = make_rule(tag)
    assert client.get(RULES).json()["count"] == 1
    assert client.get(f"{RULES}/{rule.pk}").status_code == 200
    body = {"name": "x", "tag": tag.pk, "high_limit": 1}
    assert_envelope(client.post(RULES, body, format="json"), 403, "permission_denied")
    assert_envelope(
        client.patch(f"{RULES}/{rule.pk}", {"deadband": 1}, format="json"),
        403,
        "permission_denied",
    )
    assert_envelope(client.delete(f"{RULES}/{rule.pk}"), 403, "permission_denied")


def test_rule_list_filters_by_tag(admin, tag):
    make_rule(tag)
    other = make_tag(tag.connector, "l1.press")
    make_rule(other, name="press")
    response = admin.get(RULES, {"tag": "l1.press"})
    assert [row["name"] for row in response.json()["results"]] == ["press"]


# --- alarms: list and detail ---


def test_alarm_list_row(make_user, tag):
    make_rule(tag, severity="high")
    feed(tag, (0, 85.0))
    alarm = AlarmEvent.objects.get()
    response = api(make_user("auditor")).get("/api/alarms")
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "id": alarm.pk,
            "timestamp": "2026-12-01T08:00:00Z",
            "tag_name": "l1.temp",
            "kind": "limit",
            "alarm_state": "unack_active",
            "active": True,
            "message": "l1.temp high 85 (limit 80)",
            "value": 85.0,
            "limit": 80.0,
            "severity": "high",
            "area": "plc-1",
            "rule": alarm.rule_id,
            "connector": tag.connector_id,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "returned_at": None,
            "shelved_until": None,
            "shelved_by": None,
            "shelve_reason": "",
            "closed_at": None,
            "exception": None,
            "chattering": False,
        }
    ]


def test_alarm_list_filters(make_user, tag):
    client = api(make_user("operator"))
    make_rule(tag, severity="high")
    press = make_tag(tag.connector, "l1.press", area="press-room")
    make_rule(press, severity="low")
    feed(tag, (0, 85.0), (30, 50.0))  # returned: unack_rtn
    feed(press, (60, 85.0))

    def tags(**query) -> list[str]:
        response = client.get("/api/alarms", query)
        assert response.status_code == 200, response.json()
        return [row["tag_name"] for row in response.json()["results"]]

    assert tags() == ["l1.press", "l1.temp"]
    assert tags(state="unack_rtn") == ["l1.temp"]
    assert tags(severity="low") == ["l1.press"]
    assert tags(tag="l1.temp") == ["l1.temp"]
    assert tags(area="press-room") == ["l1.press"]
    assert tags(active="true") == ["l1.press"]
    assert tags(**{"from": "2026-12-01T08:00:30Z"}) == ["l1.press"]
    assert tags(to="2026-12-01T08:00:30Z") == ["l1.temp"]
    response = client.get("/api/alarms", {"state": "loud"})
    assert_envelope(response, 400, "validation_error")


def test_alarm_list_query_count_does_not_grow(
    make_user, tag, django_assert_num_queries
):
    operator = make_user("operator")
    client = api(operator)

    def alarms_on(count: int) -> None:
        for i in range(count):
            other = make_tag(tag.connector, f"l1.t{AlertRule.objects.count()}")
            make_rule(other)
            feed(other, (i, 90.0))
        for alarm in AlarmEvent.objects.filter(acknowledged_at__isnull=True)[:1]:
            alarm_acknowledge(alarm_id=alarm.pk, actor=operator)

    alarms_on(2)
    with django_assert_num_queries(3):  # the token's user, the count, the page
        assert client.get("/api/alarms").json()["count"] == 2
    alarms_on(6)
    with django_assert_num_queries(3):
        assert client.get("/api/alarms").json()["count"] == 8


def test_alarm_detail_has_its_history(make_user, tag):
    client = api(make_user("operator", username="olga"))
    make_rule(tag)
    feed(tag, (0, 90.0))
    alarm = AlarmEvent.objects.get()
    client.post(f"/api/alarms/{alarm.pk}/acknowledge")
    body = client.get(f"/api/alarms/{alarm.pk}").json()
    assert [
        (h["change"], h["from_state"], h["to_state"], h["actor"])
        for h in body["history"]
    ] == [
        ("raised", "", "unack_active", None),
        ("acknowledged", "unack_active", "ack_active", "olga"),
    ]
    assert body["acknowledged_by"] == "olga"
    assert_envelope(client.get("/api/alarms/987654"), 404, "not_found")


# --- actions ---


def test_operator_acknowledges_and_a_second_acknowledge_is_409(make_user):
    client = api(make_user("operator"))
    alarm = alarm_in(S.UNACK_ACTIVE)
    response = client.post(f"/api/alarms/{alarm.pk}/acknowledge")
    assert response.status_code == 200
    assert response.json()["alarm_state"] == "ack_active"
    before = counts()
    envelope = assert_envelope(
        client.post(f"/api/alarms/{alarm.pk}/acknowledge"), 409, "illegal_transition"
    )
    assert envelope["details"] == {"from": "ack_active", "action": "acknowledge"}
    unchanged(*before)


def test_auditor_cannot_acknowledge(make_user):
    alarm = alarm_in(S.UNACK_ACTIVE)
    response = api(make_user("auditor")).post(f"/api/alarms/{alarm.pk}/acknowledge")
    assert_envelope(response, 403, "permission_denied")
    alarm.refresh_from_db()
    assert alarm.status == S.UNACK_ACTIVE


def test_supervisor_shelves_and_unshelves_operator_may_not(make_user):
    alarm = alarm_in(S.UNACK_ACTIVE)
    operator = api(make_user("operator"))
    body = {"minutes": 30, "reason": "known leak"}
    assert_envelope(
        operator.post(f"/api/alarms/{alarm.pk}/shelve", body, format="json"),
        403,
        "permission_denied",
    )
    boss = api(make_user("supervisor"))
    response = boss.post(f"/api/alarms/{alarm.pk}/shelve", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["alarm_state"] == "shelved"
    assert response.json()["shelve_reason"] == "known leak"
    envelope = assert_envelope(
        boss.post(f"/api/alarms/{alarm.pk}/shelve", body, format="json"),
        409,
        "illegal_transition",
    )
    assert envelope["details"]["from"] == "shelved"
    response = boss.post(f"/api/alarms/{alarm.pk}/unshelve")
    assert response.json()["alarm_state"] == "unack_active"
    assert_envelope(
        boss.post(f"/api/alarms/{alarm.pk}/unshelve"), 409, "illegal_transition"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"minutes": 30},  # no reason
        {"reason": "x"},  # no duration
        {"minutes": 1441, "reason": "x"},
        {"minutes": 0, "reason": "x"},
        {"until": "2020-01-01T00:00:00Z", "reason": "x"},
        {"until": "9999-01-01T00:00:00Z", "reason": "x"},
        {"minutes": "soon", "reason": "x"},
    ],
)
def test_bad_shelve_is_400_and_changes_nothing(make_user, body):
    alarm = alarm_in(S.UNACK_ACTIVE)
    before = counts()
    response = api(make_user("supervisor")).post(
        f"/api/alarms/{alarm.pk}/shelve", body, format="json"
    )
    assert_envelope(response, 400, "validation_error")
    alarm.refresh_from_db()
    assert alarm.status == S.UNACK_ACTIVE
    unchanged(*before)


@pytest.mark.parametrize(
    ("hide", "show", "hidden"),
    [
        ("suppress", "unsuppress", "suppressed"),
        ("out-of-service", "return-to-service", "out_of_service"),
    ],
)
def test_admin_suppresses_and_takes_out_of_service(make_user, hide, show, hidden):
    alarm = alarm_in(S.ACK_ACTIVE)
    boss = api(make_user("supervisor"))
    path = f"/api/alarms/{alarm.pk}"
    assert_envelope(
        boss.post(f"{path}/{hide}", {"reason": "x"}, format="json"),
        403,
        "permission_denied",
    )
    admin = api(make_user("admin"))
    assert_envelope(
        admin.post(f"{path}/{hide}", {}, format="json"), 400, "validation_error"
    )
    response = admin.post(f"{path}/{hide}", {"reason": "calibration"}, format="json")
    assert response.json()["alarm_state"] == hidden
    assert admin.post(f"{path}/{show}").json()["alarm_state"] == "ack_active"
    assert_envelope(admin.post(f"{path}/{show}"), 409, "illegal_transition")


# --- process, floods, chattering ---


def test_supervisor_runs_the_rules_operator_may_not(make_user, tag):
    make_rule(tag, on_delay_s=1)
    feed(tag, (0, 90.0))
    assert_envelope(
        api(make_user("operator")).post("/api/alerts/process"), 403, "permission_denied"
    )
    response = api(make_user("supervisor")).post("/api/alerts/process")
    assert response.status_code == 200
    assert response.json() == {
        "evaluated": 0,
        "activated": 1,
        "returned": 0,
        "shelves_expired": 0,
        "escalated": 0,
        "work_orders": 0,
        "floods_ended": 0,
    }


def test_floods_and_chattering_reports(make_user, tag):
    client = api(make_user("auditor"))
    rule = make_rule(tag)
    feed(tag, (0, 90.0), (10, 70.0), (20, 91.0), (30, 70.0), (40, 92.0))
    AlarmFlood.objects.create(
        area="line-a", started_at=T0, alarm_count=11, peak_rate=11
    )
    floods = client.get("/api/alarms/floods", {"ongoing": "true"}).json()["results"]
    assert floods == [
        {
            "id": floods[0]["id"],
            "area": "line-a",
            "started_at": "2026-12-01T08:00:00Z",
            "ended_at": None,
            "ongoing": True,
            "alarm_count": 11,
            "peak_rate": 11,
        }
    ]
    response = client.get(
        "/api/alarms/chattering",
        {"since": "2026-12-01T07:00:00Z", "until": "2026-12-01T09:00:00Z"},
    )
    assert response.json() == [
        {
            "rule_id": rule.pk,
            "rule_name": rule.name,
            "tag_name": "l1.temp",
            "area": "plc-1",
            "activations": 3,
            "most_in_window": 3,
            "last_activation_at": "2026-12-01T08:00:40Z",
        }
    ]
    # The default window is the last 24 hours: these are older.
    assert client.get("/api/alarms/chattering").json() == []
    [row] = client.get("/api/alarms", {"tag": "l1.temp"}).json()["results"]
    assert row["chattering"] is True
    assert_envelope(
        client.get("/api/alarms/chattering", {"since": "yesterday"}),
        400,
        "validation_error",
    )


# --- every action from every state, through the API -------------------------------

_ROUTES = {
    "acknowledge": ("acknowledge", None),
    "shelve": ("shelve", {"minutes": 30, "reason": "noisy"}),
    "unshelve": ("unshelve", None),
    "suppress": ("suppress", {"reason": "stopped"}),
    "unsuppress": ("unsuppress", None),
    "remove_from_service": ("out-of-service", {"reason": "calibration"}),
    "return_to_service": ("return-to-service", None),
}


@pytest.mark.parametrize("action", sorted(EXPECTED))
@pytest.mark.parametrize("state", list(S.values))
def test_every_action_from_every_state_through_the_api(make_user, action, state):
    client = api(make_user("admin"))
    alarm = alarm_in(state)
    route, body = _ROUTES[action]
    before = counts()
    response = client.post(f"/api/alarms/{alarm.pk}/{route}", body, format="json")
    target = EXPECTED[action].get(state)
    alarm.refresh_from_db()
    if target is None:
        envelope = assert_envelope(response, 409, "illegal_transition")
        assert envelope["details"] == {"from": state, "action": action}
        assert alarm.status == state
        unchanged(*before)
    else:
        assert response.status_code == 200, response.json()
        assert response.json()["alarm_state"] == alarm.status == target
        assert counts() == (before[0] + 1, before[1] + 1)
