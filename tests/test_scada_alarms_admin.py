"""Alert rules and alarms in the Django admin: rule edits go through the
services (checked, audited), alarms are read-only and acted on through the
ISA-18.2 services with the API's roles."""

import pytest
from django.urls import reverse

from elog.models import AuditRecord
from scada.models import AlarmEvent, AlarmState, AlertRule
from tests.test_scada_alarms import alarm_in, make_connector, make_rule, make_tag

pytestmark = pytest.mark.django_db

ALARMS = "admin:scada_alarmevent_changelist"


@pytest.fixture
def tag(db):
    return make_tag(make_connector())


def rule_form(tag, **changes) -> dict:
    return {
        "name": "Cell temp",
        "tag": tag.pk,
        "high_limit": "80",
        "low_limit": "",
        "deadband": "1",
        "on_delay_s": "0",
        "off_delay_s": "0",
        "severity": "medium",
        "message": "",
        "escalate_after_s": "",
        "enabled": "on",
        **changes,
    }


def test_admin_adds_a_rule_through_the_service(client, make_user, tag):
    client.force_login(make_user("admin"))
    response = client.post(reverse("admin:scada_alertrule_add"), rule_form(tag))
    assert response.status_code == 302, response.content[-2000:]
    rule = AlertRule.objects.get()
    assert (rule.name, rule.high_limit, rule.deadband) == ("Cell temp", 80.0, 1.0)
    assert AuditRecord.objects.filter(action="alert_rule.created").count() == 1


def test_admin_form_refuses_bad_limits_and_changes_nothing(client, make_user, tag):
    rule = make_rule(tag, low_limit=10.0)
    client.force_login(make_user("admin"))
    url = reverse("admin:scada_alertrule_change", args=[rule.pk])
    response = client.post(url, rule_form(tag, name=rule.name, low_limit="90"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "low_limit": ["Must be below the high limit."]
    }
    rule.refresh_from_db()
    assert rule.low_limit == 10.0
    assert AuditRecord.objects.count() == 0


def test_admin_change_is_audited_by_the_service(client, make_user, tag):
    rule = make_rule(tag)
    client.force_login(make_user("admin"))
    url = reverse("admin:scada_alertrule_change", args=[rule.pk])
    form = rule_form(tag, name=rule.name, high_limit="85", deadband="0")
    response = client.post(url, form)
    assert response.status_code == 302
    record = AuditRecord.objects.get(action="alert_rule.changed")
    assert (record.before, record.after) == ({"high_limit": 80.0}, {"high_limit": 85.0})


def test_admin_acknowledges_and_shelves_through_the_services(client, make_user):
    first, second = alarm_in(AlarmState.UNACK_ACTIVE), alarm_in(AlarmState.UNACK_RTN)
    client.force_login(make_user("admin"))
    selected = [first.pk, second.pk]
    client.post(
        reverse(ALARMS),
        {"action": "acknowledge", "_selected_action": selected},
        follow=True,
    )
    states = dict(AlarmEvent.objects.values_list("pk", "status"))
    assert states == {first.pk: AlarmState.ACK_ACTIVE, second.pk: AlarmState.NORMAL}
    # Shelving needs minutes and a reason: without, nothing changes.
    client.post(
        reverse(ALARMS),
        {"action": "shelve", "_selected_action": [first.pk], "minutes": "30"},
        follow=True,
    )
    first.refresh_from_db()
    assert first.status == AlarmState.ACK_ACTIVE
    response = client.post(
        reverse(ALARMS),
        {
            "action": "shelve",
            "_selected_action": selected,
            "minutes": "30",
            "reason": "calibration",
        },
        follow=True,
    )
    first.refresh_from_db()
    assert first.status == AlarmState.SHELVED
    messages = [str(m) for m in response.context["messages"]]
    assert f"Alarm {second.pk}: Alarm {second.pk} is Normal; it cannot be shelved." in (
        messages
    )


def test_auditor_reads_alarms_but_has_no_actions(client, make_user):
    alarm_in(AlarmState.UNACK_ACTIVE)
    client.force_login(make_user("auditor"))
    response = client.get(reverse(ALARMS))
    assert response.status_code == 200
    # Only the back-office's read action (the CSV export).
    assert list(
        response.context["cl"].model_admin.get_actions(response.wsgi_request)
    ) == ["export_csv"]
    assert client.get(reverse("admin:scada_alertrule_add")).status_code == 403
