"""Alarm changes pushed live on the ``alerts`` topic, end to end: a real
WebSocket client against a real daphne (tests/support.py), as
tests/test_websocket.py does. Every test commits (transactional db) so the
server sees and sends what it published."""

from __future__ import annotations

import pytest

from bpmos.errors import IllegalTransition
from bpmos.events.models import OutboxEvent
from scada import alarms
from tests.support import daphne_server
from tests.test_scada_alarms import feed, make_connector, make_rule, make_tag
from tests.test_websocket import assert_nothing_arrives, recv, signed_in, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("daphne-alarms") / "daphne.log"
    with daphne_server(log_path) as port:
        yield f"ws://127.0.0.1:{port}/ws/events/"


def test_alarm_raised_and_acknowledged_arrive_on_alerts(server, make_user):
    operator = make_user("operator", username="olga")
    tag = make_tag(make_connector())
    make_rule(tag, severity="high")
    with signed_in(server, make_user("auditor")) as ws:
        assert subscribe(ws, ["alerts"]) == {"type": "subscribed", "topics": ["alerts"]}
        [alarm] = feed(tag, (0, 92.5))
        raised = recv(ws)
        row = OutboxEvent.objects.get(name="alarm.raised")
        assert (raised["type"], raised["id"], raised["name"]) == (
            "event",
            row.pk,
            "alarm.raised",
        )
        assert raised["topics"] == ["alerts"]
        assert raised["data"] == {
            "id": alarm.pk,
            "timestamp": "2026-12-01T08:00:00Z",
            "tag_name": "l1.temp",
            "kind": "limit",
            "alarm_state": "unack_active",
            "active": True,
            "severity": "high",
            "area": "plc-1",
            "message": "l1.temp high 92.5 (limit 80)",
            "value": 92.5,
            "limit": 80.0,
            "rule_id": alarm.rule_id,
            "connector_id": tag.connector_id,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "shelved_until": None,
            "exception_id": None,
        }
        alarms.alarm_acknowledge(alarm_id=alarm.pk, actor=operator)
        acknowledged = recv(ws)
        assert acknowledged["name"] == "alarm.acknowledged"
        assert acknowledged["data"]["alarm_state"] == "ack_active"
        assert acknowledged["data"]["acknowledged_by"] == "olga"


def test_refused_action_sends_nothing_and_other_topics_do_not_get_alarms(
    server, make_user
):
    tag = make_tag(make_connector())
    make_rule(tag)
    with (
        signed_in(server, make_user("operator")) as alerts,
        signed_in(server, make_user("operator")) as lines,
    ):
        subscribe(alerts, ["alerts"])
        subscribe(lines, ["lines"])
        [alarm] = feed(tag, (0, 99.0))
        assert recv(alerts)["name"] == "alarm.raised"
        with pytest.raises(IllegalTransition):
            alarms.alarm_unshelve(alarm_id=alarm.pk, actor=None)
        assert_nothing_arrives(alerts)
        assert_nothing_arrives(lines)


def test_flood_start_is_announced_live(server, make_user):
    connector = make_connector("plc-f")
    tags = [make_tag(connector, f"f.t{i}", area="formation") for i in range(11)]
    for tag in tags:
        make_rule(tag)
    with signed_in(server, make_user("supervisor")) as ws:
        subscribe(ws, ["alerts"])
        for i, tag in enumerate(tags):
            feed(tag, (i, 90.0))
        names = [recv(ws)["name"] for _ in range(12)]
        assert names == ["alarm.raised"] * 11 + ["alarm_flood.started"]
        assert_nothing_arrives(ws)
