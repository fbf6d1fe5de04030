"""Role dashboards (control-UI contract group I): ``GET /api/dashboard/{role}/
summary`` and ``/attention``; who may read whose (bpmos.access.DASHBOARD_READERS),
each card and attention item on a small fixed plant, the empty plant, pinned
query counts, and the per-user attention topic (access and a real WebSocket
client receiving an attention change)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from bpmos import access
from bpmos.dashboards import live
from bpmos.events.models import OutboxEvent
from bpmos.roles import Role
from compliance import score
from compliance.models import ComplianceReturn
from elog import chain_status
from exceptions.models import PlantException
from inventory.models import Item
from passports.models import Passport
from runbooks import services as runbook_services
from runbooks.models import GateStatus
from scada import alarms
from scada.models import AlarmState, CommState, Connector
from tests.conftest import PASSWORD
from tests.conftest import api_as as api
from tests.factories_inventory import make_categories, make_warehouse, receive
from tests.factories_lines import make_line
from tests.factories_passports import register
from tests.factories_tower import (
    make_gate,
    make_runbook,
    make_work_order,
    raise_exception,
    stage_of,
    start,
    wo_stage,
)
from tests.support import assert_envelope, daphne_server
from tests.test_scada_alarms import alarm_in, feed, make_connector, make_rule, make_tag
from tests.test_websocket import assert_nothing_arrives, recv, signed_in, subscribe

ROLES = list(Role.values)
CARD_KEYS = {"id", "title", "value", "unit", "status", "link", "details"}
ITEM_KEYS = {"id", "kind", "title", "severity", "since", "link"}

# Who may read whose dashboard, written out (the declaration is
# bpmos.access.DASHBOARD_READERS): own role, the roles below, the auditor all.
ALLOWED = {
    "operator": {"operator", "planner", "supervisor", "plant-head", "admin", "auditor"},
    "planner": {"planner", "supervisor", "plant-head", "admin", "auditor"},
    "supervisor": {"supervisor", "plant-head", "admin", "auditor"},
    "plant-head": {"plant-head", "admin", "auditor"},
    "admin": {"admin", "auditor"},
    "auditor": {"auditor", "admin"},
}


def summary(user, role: str):
    return api(user).get(f"/api/dashboard/{role}/summary")


def attention(user, role: str):
    return api(user).get(f"/api/dashboard/{role}/attention")


def cards(response) -> dict[str, dict]:
    assert response.status_code == 200, response.json()
    body = response.json()
    for card in body["cards"]:
        assert set(card) == CARD_KEYS, card
    return {card["id"]: card for card in body["cards"]}


def items(response) -> list[dict]:
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == len(body["items"])
    for item in body["items"]:
        assert set(item) == ITEM_KEYS, item
        assert set(item["link"]) == {"type", "id", "path"}
    return body["items"]


# --- who may read whose ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("reader", ROLES)
def test_every_role_reads_exactly_the_dashboards_declared(reader, make_user):
    user = make_user(reader)
    for role in ROLES:
        allowed = reader in ALLOWED[role]
        assert access.may_read_dashboard(reader, role) is allowed
        for get in (summary, attention):
            response = get(user, role)
            if allowed:
                assert response.status_code == 200, (reader, role, response.json())
                assert response.json()["role"] == role
            else:
                assert_envelope(response, 403, "permission_denied")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role", ["nobody", "Operator", "plant_head", "x" * 64, "%E2%9C%93", "status"]
)
def test_unknown_role_is_404_in_the_envelope(role, make_user):
    admin = make_user("admin")
    for get in (summary, attention):
        assert_envelope(get(admin, role), 404, "not_found")


@pytest.mark.django_db
def test_no_token_is_401_and_literal_dashboard_routes_are_not_shadowed(make_user):
    anonymous = APIClient().get("/api/dashboard/operator/summary")
    assert_envelope(anonymous, 401, "not_authenticated")
    # The dispatch contract's literal route still answers as itself.
    response = api(make_user("operator")).get("/api/dashboard/status")
    assert response.status_code == 200
    assert "cards" not in response.json()


# --- the empty plant -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_empty_plant_gives_empty_states(role, make_user):
    admin = make_user("admin")
    body = summary(admin, role).json()
    assert body["roleLabel"] == Role(role).label
    assert body["generatedAt"].endswith("Z")
    for card in cards(summary(admin, role)).values():
        assert card["value"] in (None, 0, "Not Verified") or card["id"] == "userHealth"
    assert items(attention(admin, role)) == []


@pytest.mark.django_db
def test_empty_plant_cards(make_user):
    admin = make_user("admin")
    auditor = cards(summary(admin, "auditor"))
    assert auditor["complianceScore"]["value"] is None
    assert auditor["complianceScore"]["status"] == "Unknown"
    assert auditor["chainVerification"]["value"] == "Not Verified"
    head = cards(summary(admin, "plant-head"))
    assert head["bottleneck"]["value"] is None
    assert head["bottleneck"]["details"] == {"wip": None, "stages": []}
    assert head["plantOee"]["value"] is None
    operator = cards(summary(make_user("operator"), "operator"))
    assert operator["shiftInfo"]["value"] is None
    assert operator["assignedStages"]["value"] == 0


# --- a small fixed plant -------------------------------------------------------------


@pytest.fixture
def plant(make_user):
    """One runbook with one work order in progress: S1 assigned to olga and on
    hold; a Closed gate on S3 and a Locked one on S4 (ahead of the work), an
    Open one on S2; exceptions escalated to the supervisor and the plant head;
    two unacknowledged alarms and an acknowledged one; a lost connector and a
    good one; an item and a battery on hold; a draft return; a line."""
    boss = make_user("supervisor", username="sam")
    olga = make_user("operator", username="olga")
    other = make_user("operator", username="otto")
    runbook = make_runbook()
    make_gate(stage_of(runbook, "S2"), condition="Torque OK", status=GateStatus.OPEN)
    closed = make_gate(
        stage_of(runbook, "S3"), condition="Stack height", status=GateStatus.CLOSED
    )
    locked = make_gate(
        stage_of(runbook, "S4"), condition="Seal Check", status=GateStatus.LOCKED
    )
    work_order = make_work_order(runbook, boss, lot_no="LOT-7")
    s1 = wo_stage(work_order, "S1")
    runbook_services.stage_assign(stage_id=s1.pk, user_id=olga.pk, actor=boss)
    start(work_order, "S1", boss)
    runbook_services.stage_hold(stage_id=s1.pk, reason="Cell shortage", actor=boss)
    to_supervisor = raise_exception(boss, runbook=runbook, severity="high")
    to_head = raise_exception(
        boss, runbook=runbook, severity="critical", title="Thermal event"
    )
    PlantException.objects.filter(pk=to_supervisor.pk).update(escalation_level=1)
    PlantException.objects.filter(pk=to_head.pk).update(escalation_level=2)
    unacked = alarm_in(AlarmState.UNACK_ACTIVE, severity="high", message="l1 hot")
    returned = alarm_in(AlarmState.UNACK_RTN, tag_name="l2.temp", message="l2 was hot")
    alarm_in(AlarmState.ACK_ACTIVE, tag_name="l3.temp", message="acked")
    lost = Connector.objects.create(
        name="plc-lost",
        kind="opcua",
        endpoint="opc.tcp://10.0.0.9:4840",
        comm_state=CommState.LOST,
        last_error="timed out",
        last_error_at=timezone.now(),
    )
    Connector.objects.create(
        name="plc-ok",
        kind="opcua",
        endpoint="opc.tcp://x:4840",
        comm_state=CommState.OK,
    )
    make_categories()
    make_warehouse()
    receive(boss, "CELL-1")
    receive(boss, "CELL-2")
    Item.objects.filter(code="CELL-1").update(status="hold", hold_reason="QC check")
    battery = register()
    Passport.objects.filter(pk=battery.pk).update(on_hold=True, hold_reason="Recall")
    draft = ComplianceReturn.objects.create(
        period_start=date(2026, 4, 1),
        period_end=date(2026, 6, 30),
        financial_year="2026-27",
        content_hash="0" * 64,
        built_at=timezone.now(),
    )
    make_line()
    return {
        "boss": boss,
        "olga": olga,
        "otto": other,
        "stage": s1,
        "closed": closed,
        "locked": locked,
        "to_supervisor": to_supervisor,
        "to_head": to_head,
        "unacked": unacked,
        "returned": returned,
        "lost": lost,
        "battery": battery,
        "draft": draft,
    }


@pytest.mark.django_db
def test_operator_cards_are_their_own(plant):
    mine = cards(summary(plant["olga"], "operator"))
    assert mine["assignedStages"]["value"] == 1
    assert mine["inProgressStages"]["value"] == 0
    assert mine["blockedStages"] == {
        "id": "blockedStages",
        "title": "My stages on hold",
        "value": 1,
        "unit": "count",
        "status": "Warning",
        "link": {"type": "stages", "id": None, "path": "/api/stages"},
        "details": None,
    }
    assert mine["unacknowledgedAlarms"]["value"] == 2
    assert mine["unacknowledgedAlarms"]["status"] == "Critical"
    shift = mine["shiftInfo"]
    assert shift["details"]["lineId"] == "line-a"
    assert shift["value"].endswith(" UTC")
    assert shift["details"]["start"].endswith("Z")
    otto = cards(summary(plant["otto"], "operator"))
    assert otto["assignedStages"]["value"] == 0
    assert otto["blockedStages"]["value"] == 0
    # A supervisor looking at the floor sees every operator's.
    floor = cards(summary(plant["boss"], "operator"))
    assert "assignedStages" not in floor
    assert floor["blockedStages"]["value"] == 1


@pytest.mark.django_db
def test_supervisor_cards(plant):
    got = cards(summary(plant["boss"], "supervisor"))
    values = {key: card["value"] for key, card in got.items()}
    assert values == {
        "gatesAwaitingApproval": 2,
        "escalatedExceptions": 1,
        "holdsToRelease": 2,
        "returnsToApprove": 1,
        "blockedStages": 1,
    }
    assert got["escalatedExceptions"]["status"] == "Critical"


@pytest.mark.django_db
def test_plant_head_cards(plant, make_user):
    got = cards(summary(make_user("plant-head"), "plant-head"))
    assert got["bottleneck"]["value"] == "S1 Cell Inbound"
    assert got["bottleneck"]["unit"] == "WIP"
    assert got["bottleneck"]["details"]["wip"] == 1
    assert got["bottleneck"]["details"]["stages"][0] == {
        "runbookId": "manufacturing",
        "stageId": "mfg-01",
        "stage": "S1 Cell Inbound",
        "wip": 1,
        "inProgress": 0,
        "waiting": 0,
        "onHold": 1,
    }
    assert got["plantOee"]["unit"] == "%"
    assert got["lineHealth"]["details"] == {"activeLines": 0, "totalLines": 1}
    assert got["escalatedExceptions"]["value"] == 1


@pytest.mark.django_db
def test_auditor_cards_read_the_stored_score_and_chain_state(plant, make_user):
    auditor = make_user("auditor")
    before = cards(summary(auditor, "auditor"))
    assert before["chainVerification"]["value"] == "Not Verified"
    score.score_compute()
    stored = chain_status.audit_chain_status_refresh()
    assert stored["ok"] is True
    got = cards(summary(auditor, "auditor"))
    assert got["complianceScore"]["unit"] == "%"
    assert got["complianceScore"]["details"]["total"] == 1
    assert got["chainVerification"]["value"] == "Verified"
    assert got["chainVerification"]["status"] == "OK"
    assert got["chainVerification"]["details"]["checked"] == stored["checked"] > 0
    # A broken chain (as the beat task would store it) becomes an attention item.
    cache.set(
        chain_status.CACHE_KEY,
        {
            **stored,
            "ok": False,
            "firstBroken": {"seq": 3, "id": 9, "problem": "altered", "message": "x"},
        },
        timeout=None,
    )
    assert cards(summary(auditor, "auditor"))["chainVerification"]["status"] == (
        "Critical"
    )
    [item] = items(attention(auditor, "auditor"))
    assert (item["kind"], item["severity"], item["link"]["path"]) == (
        "auditChain",
        "Critical",
        "/api/audit/verify",
    )


@pytest.mark.django_db
def test_admin_cards(plant):
    admin = plant["boss"].__class__.objects.create(username="ada", role="admin")
    got = cards(summary(admin, "admin"))
    assert got["connectorHealth"]["value"] == 1
    assert got["connectorHealth"]["status"] == "Critical"
    assert got["connectorHealth"]["details"] == {
        "enabled": 2,
        "ok": 1,
        "lost": 1,
        "unknown": 0,
        "disabled": 0,
    }
    assert got["userHealth"]["value"] == 4
    assert got["userHealth"]["details"]["byRole"]["operator"] == 2
    assert "complianceScore" in got


@pytest.mark.django_db
def test_operator_attention_is_their_blocked_stages_and_the_alarms(plant):
    got = items(attention(plant["olga"], "operator"))
    stage, unacked, returned = plant["stage"], plant["unacked"], plant["returned"]
    assert [(i["id"], i["kind"]) for i in got] == [
        (f"stage-{stage.pk}", "blockedStage"),
        (f"alarm-{unacked.pk}", "alarm"),
        (f"alarm-{returned.pk}", "alarm"),
    ]
    assert got[0]["link"] == {
        "type": "stage",
        "id": str(stage.pk),
        "path": f"/api/stages/{stage.pk}",
    }
    assert "Cell shortage" in got[0]["title"]
    assert got[1]["link"]["path"] == f"/api/alarms/{unacked.pk}"
    assert got[1]["severity"] == "High"
    assert got[1]["since"].endswith("Z")
    # Another operator has no blocked stage of their own.
    assert [i["kind"] for i in items(attention(plant["otto"], "operator"))] == [
        "alarm",
        "alarm",
    ]


@pytest.mark.django_db
def test_supervisor_attention(plant):
    got = items(attention(plant["boss"], "supervisor"))
    by_id = {item["id"]: item for item in got}
    code = plant["to_supervisor"].code
    assert set(by_id) == {
        f"exception-{plant['to_supervisor'].pk}",
        f"gate-{plant['locked'].pk}",
        f"gate-{plant['closed'].pk}",
        "item-CELL-1",
        f"passport-{plant['battery'].uuid}",
        f"return-{plant['draft'].pk}",
    }
    assert by_id[f"exception-{plant['to_supervisor'].pk}"]["link"] == {
        "type": "exception",
        "id": code,
        "path": f"/api/exceptions/{code}",
    }
    assert by_id[f"gate-{plant['locked'].pk}"]["severity"] == "High"
    assert by_id["item-CELL-1"]["link"]["path"] == "/api/inventory/items/CELL-1"
    assert by_id[f"return-{plant['draft'].pk}"]["link"]["path"] == (
        f"/api/compliance/returns/{plant['draft'].pk}"
    )
    severities = [item["severity"] for item in got]
    order = ["Critical", "High", "Medium", "Low"]
    assert severities == sorted(severities, key=order.index)
    # Released: it leaves the list.
    runbook_services.gate_set(
        gate_id=plant["closed"].pk,
        action="open",
        actor=plant["boss"],
        password=PASSWORD,
    )
    assert f"gate-{plant['closed'].pk}" not in {
        i["id"] for i in items(attention(plant["boss"], "supervisor"))
    }


@pytest.mark.django_db
def test_plant_head_and_admin_attention(plant, make_user):
    head = items(attention(make_user("plant-head"), "plant-head"))
    assert [i["id"] for i in head] == [f"exception-{plant['to_head'].pk}"]
    assert head[0]["severity"] == "Critical"
    admin = items(attention(make_user("admin"), "admin"))
    assert [(i["kind"], i["link"]["path"]) for i in admin] == [
        ("connector", f"/api/scada/connectors/{plant['lost'].pk}")
    ]


@pytest.mark.django_db
def test_the_supervisors_lists_in_one_statement_equal_each_list_read_alone(
    plant, django_assert_num_queries
):
    """The five lists of the supervisor's attention kinds, read in one
    statement (``attention._lists``), are each list as its selector reads it
    alone: the same rows, values, types and order."""
    from bpmos.dashboards import attention as attention_module
    from compliance import selectors as compliance_selectors
    from exceptions import selectors as exception_selectors
    from inventory import selectors as inventory_selectors
    from passports import selectors as passport_selectors
    from runbooks import selectors as runbook_selectors

    alone = {
        "gates": runbook_selectors.gate_awaiting_list(),
        "exceptions": exception_selectors.exception_escalated_list(role="supervisor"),
        "items": inventory_selectors.item_on_hold_list(),
        "passports": passport_selectors.passport_on_hold_list(),
        "returns": compliance_selectors.return_draft_list(),
    }
    assert all(alone.values())  # every list holds rows here
    assert len(alone["gates"]) == 2
    kinds = attention_module.KINDS_BY_ROLE["supervisor"]
    for _ in range(2):  # compiled, then run again as compiled
        with django_assert_num_queries(1):
            together = attention_module._lists("supervisor", kinds)
        assert together == alone
        for name, rows in alone.items():
            for row, other in zip(rows, together[name], strict=True):
                assert [type(v) for v in row.values()] == [
                    type(v) for v in other.values()
                ]


# --- query counts -------------------------------------------------------------------

# The caller (token auth) is one query; then one per figure or kind.
SUMMARY_QUERIES = {
    "operator": 1 + 3,  # shift's line, my stages by status, alarms
    "planner": 1 + 3,  # work orders, on hold, bottleneck (stages with WIP counts)
    # gates, exceptions, items, passports, returns, on hold: one statement
    "supervisor": 1 + 1,
    "plant-head": 1 + 5,  # bottleneck (1), live status (2), exceptions
    "auditor": 1 + 1,  # latest score (the chain's state is in the cache)
    "admin": 1 + 3,  # connectors, users, latest score
}
ATTENTION_QUERIES = {
    "operator": 1 + 2,  # my blocked stages, alarms
    "planner": 1 + 1,
    "supervisor": 1 + 1,  # gates, exceptions, items, passports, returns: one statement
    "plant-head": 1 + 1,
    "auditor": 1 + 0,
    "admin": 1 + 1,
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_query_counts_are_pinned(role, plant, make_user, django_assert_num_queries):
    user = plant["olga"] if role == "operator" else make_user(role)
    client = api(user)
    with django_assert_num_queries(SUMMARY_QUERIES[role]):
        assert client.get(f"/api/dashboard/{role}/summary").status_code == 200
    with django_assert_num_queries(ATTENTION_QUERIES[role]):
        assert client.get(f"/api/dashboard/{role}/attention").status_code == 200


# --- the per-user attention topic ---------------------------------------------------


@pytest.mark.parametrize(
    ("role", "user_id", "topic", "allowed"),
    [
        (Role.OPERATOR, 7, "attention.7", True),
        (Role.ADMIN, 7, "attention.7", True),
        (Role.OPERATOR, 7, "attention.8", False),
        (Role.ADMIN, 8, "attention.7", False),
        (Role.OPERATOR, None, "attention.7", False),
        (Role.OPERATOR, 7, "attention.<id>", False),
        (None, 7, "attention.7", False),
        (Role.OPERATOR, 7, "alerts", True),
    ],
)
def test_attention_topic_is_only_its_user_s(role, user_id, topic, allowed):
    assert access.may_subscribe(role, topic, user_id=user_id) is allowed


@pytest.mark.django_db
def test_an_alarm_raise_in_one_transaction_announces_once_to_the_floor(
    make_user, django_capture_on_commit_callbacks
):
    olga = make_user("operator")
    boss = make_user("supervisor")
    make_user("operator", is_active=False)
    tag = make_tag(make_connector())
    make_rule(tag)
    with django_capture_on_commit_callbacks(execute=True):
        feed(tag, (0, 95.0), (1, 96.0))
    [event] = OutboxEvent.objects.filter(name=live.ATTENTION_CHANGED)
    assert event.topics == [f"attention.{olga.pk}"]  # not the supervisor's list
    assert event.data == {"changed": True, "kinds": ["alarm"]}
    assert boss.pk  # (a supervisor's list carries no alarms)


@pytest.mark.django_db
def test_a_held_stage_announces_to_its_assignee_and_the_planners(
    make_user, django_capture_on_commit_callbacks
):
    boss = make_user("supervisor")
    olga = make_user("operator")
    make_user("operator")  # not assigned: not told
    planner = make_user("planner")
    runbook = make_runbook()
    work_order = make_work_order(runbook, boss)
    s1 = wo_stage(work_order, "S1")
    with django_capture_on_commit_callbacks(execute=True):  # as if committed
        runbook_services.stage_assign(stage_id=s1.pk, user_id=olga.pk, actor=boss)
        start(work_order, "S1", boss)
    OutboxEvent.objects.filter(name=live.ATTENTION_CHANGED).delete()
    with django_capture_on_commit_callbacks(execute=True):
        runbook_services.stage_hold(stage_id=s1.pk, reason="Jam", actor=boss)
    [event] = OutboxEvent.objects.filter(name=live.ATTENTION_CHANGED)
    assert sorted(event.topics) == sorted(
        [f"attention.{olga.pk}", f"attention.{planner.pk}"]
    )
    assert event.data["kinds"] == ["blockedStage"]


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("daphne-attention") / "daphne.log"
    with daphne_server(log_path) as port:
        yield f"ws://127.0.0.1:{port}/ws/events/"


@pytest.mark.django_db(transaction=True)
def test_websocket_client_receives_its_attention_change(server, make_user):
    olga = make_user("operator", username="olga")
    otto = make_user("operator", username="otto")
    tag = make_tag(make_connector())
    make_rule(tag, severity="high")
    with signed_in(server, olga) as ws, signed_in(server, otto) as other:
        assert subscribe(ws, [f"attention.{olga.pk}"])["topics"] == [
            f"attention.{olga.pk}"
        ]
        # Another user's attention topic is refused.
        theirs = [f"attention.{olga.pk}"]
        other.send(json.dumps({"action": "subscribe", "topics": theirs}))
        refused = recv(other)
        assert refused["type"] == "error"
        assert refused["code"] == "topic_not_allowed"
        assert refused["details"]["forbidden"] == [f"attention.{olga.pk}"]
        [alarm] = feed(tag, (0, 92.5))
        event = recv(ws)
        assert (event["type"], event["name"]) == ("event", "attention.changed")
        assert event["data"] == {"changed": True, "kinds": ["alarm"]}
        assert items(attention(olga, "operator"))[0]["id"] == f"alarm-{alarm.pk}"
        alarms.alarm_acknowledge(alarm_id=alarm.pk, actor=olga)
        assert recv(ws)["name"] == "attention.changed"
        assert items(attention(olga, "operator")) == []
        assert_nothing_arrives(other)


@pytest.mark.django_db(transaction=True)
def test_websocket_client_receives_a_gate_change(server, make_user):
    boss = make_user("supervisor")
    runbook = make_runbook()
    gate = make_gate(stage_of(runbook, "S2"), status=GateStatus.CLOSED)
    work_order = make_work_order(runbook, boss)
    start(work_order, "S1", boss)
    with signed_in(server, boss) as ws:
        subscribe(ws, [f"attention.{boss.pk}"])
        assert [i["id"] for i in items(attention(boss, "supervisor"))] == [
            f"gate-{gate.pk}"
        ]
        runbook_services.gate_set(
            gate_id=gate.pk, action="open", actor=boss, password=PASSWORD
        )
        event = recv(ws)
        assert event["name"] == "attention.changed"
        assert event["data"]["kinds"] == ["gate"]
        assert items(attention(boss, "supervisor")) == []


def test_declared_attention_event_needs_a_declared_topic():
    assert access.topic_rule("attention.12") is access.TOPICS["attention.<id>"]
    assert live.topic(12) == "attention.12"


@pytest.mark.django_db
def test_an_escalation_goes_to_alerts_too_and_to_the_supervisors_lists(
    make_user, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from exceptions import services as exception_services

    boss = make_user("supervisor")
    make_user("operator")  # an operator's list carries no escalations
    with django_capture_on_commit_callbacks(execute=True):
        exc = raise_exception(boss, severity="critical")
    OutboxEvent.objects.filter(name=live.ATTENTION_CHANGED).delete()
    with django_capture_on_commit_callbacks(execute=True):
        exception_services.exceptions_escalate_overdue(
            now=exc.ack_due_at + timedelta(seconds=1)
        )
    [escalated] = OutboxEvent.objects.filter(name="exception.escalated")
    assert escalated.topics == ["exceptions", "alerts"]
    [changed] = OutboxEvent.objects.filter(name=live.ATTENTION_CHANGED)
    assert changed.topics == [f"attention.{boss.pk}"]
    assert changed.data["kinds"] == ["exception"]


@pytest.mark.django_db
def test_a_work_order_starting_tells_supervisors_only_when_a_gate_waits(
    make_user, django_capture_on_commit_callbacks
):
    boss = make_user("supervisor")
    planner = make_user("planner")
    quiet = make_runbook()
    gated = make_runbook("gated", prefix="gtd")
    make_gate(stage_of(gated, "S3"), status=GateStatus.CLOSED)
    plain, waiting = make_work_order(quiet, planner), make_work_order(gated, planner)
    with django_capture_on_commit_callbacks(execute=True):
        start(plain, "S1", boss)
    assert not OutboxEvent.objects.filter(name=live.ATTENTION_CHANGED).exists()
    with django_capture_on_commit_callbacks(execute=True):
        start(waiting, "S1", boss)
    [event] = OutboxEvent.objects.filter(name=live.ATTENTION_CHANGED)
    assert event.topics == [f"attention.{boss.pk}"]
    assert event.data["kinds"] == ["gate"]


@pytest.mark.django_db
def test_an_unreachable_cache_leaves_the_chain_card_unknown(make_user, settings):
    from bpmos.dashboards import roles as role_cards

    auditor = make_user("auditor")
    settings.CACHES = {
        "default": {
            "BACKEND": "bpmos.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    got = {c.id: c for c in role_cards.role_summary(role="auditor", user=auditor).cards}
    assert (got["chainVerification"].value, got["chainVerification"].status) == (
        "Not Verified",
        "Unknown",
    )
    # The attention list reads it the same way: no item, no error.
    from bpmos.dashboards import attention as attention_lists

    assert attention_lists.attention_list(role="auditor", user=auditor).items == []
