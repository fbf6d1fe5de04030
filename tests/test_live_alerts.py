"""Live alerts and attention changes over a real WebSocket (a daphne server):
an exception escalation on ``alerts``; a compliance return built and approved,
and the audit chain's verification state changing, announced to the
supervisors' and the auditors' ``attention.<userId>`` (``attention.changed``),
and on their own topics (``compliance``, ``audit``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction

from bpmos import access
from bpmos.dashboards import live
from bpmos.events import Event
from compliance import events as compliance_events
from elog import audit, chain_status
from elog import events as elog_events
from exceptions import services as exception_services
from tests.conftest import api_as as api
from tests.factories_tower import raise_exception
from tests.support import daphne_server
from tests.test_audit_api import forge_newest_record
from tests.test_websocket import assert_nothing_arrives, recv, signed_in, subscribe

FY = "2025-26"


def attention_ids(user, role: str) -> list[str]:
    answer = api(user).get(f"/api/dashboard/{role}/attention")
    assert answer.status_code == 200, answer.json()
    return [item["id"] for item in answer.json()["items"]]


def event_named(ws, name: str) -> dict:
    message = recv(ws)
    assert (message["type"], message["name"]) == ("event", name), message
    return message


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("daphne-live-alerts") / "daphne.log"
    with daphne_server(log_path) as port:
        yield f"ws://127.0.0.1:{port}/ws/events/"


# --- which events move which attention kinds (no server) ------------------------------


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("compliance_return.built", {"return"}),
        ("compliance_return.approved", {"return"}),
        ("audit_chain.changed", {"auditChain"}),
    ],
)
def test_returns_and_the_chain_state_move_their_kinds(name, kinds):
    topic = "audit" if name.startswith("audit") else "compliance"
    assert live.kinds_of(Event(name=name, topics=(topic,), data={})) == kinds


def test_the_new_topics_are_their_readers():
    assert access.topic_rule("compliance") is access.COMPLIANCE_READERS
    assert not access.may_subscribe("operator", "compliance", user_id=1)
    assert access.may_subscribe("auditor", "compliance", user_id=1)
    assert not access.may_subscribe("supervisor", "audit", user_id=1)
    assert compliance_events.RETURN_EVENTS["built"] == "compliance_return.built"
    assert elog_events.CHAIN_STATUS_CHANGED == "audit_chain.changed"


# --- over a real socket ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_escalation_reaches_alerts_and_the_supervisors_lists(server, make_user):
    olga = make_user("operator", username="olga")
    boss = make_user("supervisor", username="sam")
    exc = raise_exception(olga, severity="critical", title="Thermal event")
    with signed_in(server, olga) as floor, signed_in(server, boss) as ws:
        subscribe(floor, ["alerts"])
        subscribe(ws, [f"attention.{boss.pk}"])
        assert attention_ids(boss, "supervisor") == []
        escalated = exception_services.exceptions_escalate_overdue(
            now=exc.ack_due_at + timedelta(seconds=1)
        )
        assert escalated == 1
        alert = event_named(floor, "exception.escalated")
        assert alert["topics"] == ["exceptions", "alerts"]
        assert alert["data"]["id"] == exc.code
        assert alert["data"]["escalationLevel"] == 1
        assert alert["data"]["responsibleRole"] == "supervisor"
        changed = event_named(ws, "attention.changed")
        assert changed["data"] == {"changed": True, "kinds": ["exception"]}
        assert attention_ids(boss, "supervisor") == [f"exception-{exc.pk}"]
        # Resolving is no alert; it leaves the supervisor's list, live too.
        exception_services.exception_resolve(
            exception_id=exc.pk, resolution_note="Cell isolated", actor=boss
        )
        assert event_named(ws, "attention.changed")["data"]["kinds"] == ["exception"]
        assert attention_ids(boss, "supervisor") == []
        assert_nothing_arrives(floor)


@pytest.mark.django_db(transaction=True)
def test_a_return_built_and_approved_changes_the_supervisors_lists(server, make_user):
    boss = make_user("supervisor", username="sam")
    head = make_user("plant-head", username="hana")
    auditor = make_user("auditor", username="audrey")
    olga = make_user("operator", username="olga")
    with (
        signed_in(server, boss) as ws,
        signed_in(server, auditor) as reader,
        signed_in(server, olga) as floor,
        signed_in(server, head) as other,
    ):
        subscribe(ws, [f"attention.{boss.pk}"])
        subscribe(reader, ["compliance"])
        subscribe(floor, [f"attention.{olga.pk}"])
        subscribe(other, [f"attention.{head.pk}"])
        built = api(boss).post("/api/compliance/returns", {"fy": FY}, format="json")
        assert built.status_code == 201, built.json()
        ret_id = built.json()["id"]
        changed = event_named(ws, "attention.changed")
        assert changed["data"] == {"changed": True, "kinds": ["return"]}
        assert attention_ids(boss, "supervisor") == [f"return-{ret_id}"]
        news = event_named(reader, "compliance_return.built")
        assert news["topics"] == ["compliance"]
        assert (news["data"]["id"], news["data"]["status"]) == (ret_id, "draft")
        assert news["data"]["financialYear"] == FY

        answer = api(head).post(f"/api/compliance/returns/{ret_id}/approve")
        assert answer.status_code == 200, answer.json()
        assert event_named(ws, "attention.changed")["data"]["kinds"] == ["return"]
        assert attention_ids(boss, "supervisor") == []
        approved = event_named(reader, "compliance_return.approved")
        assert approved["data"]["status"] == "approved"

        # Approving again is a 409: nothing changed, nothing announced.
        again = api(head).post(f"/api/compliance/returns/{ret_id}/approve")
        assert again.status_code == 409
        assert_nothing_arrives(ws)
        # Neither an operator's list nor a plant head's carries returns.
        assert_nothing_arrives(floor, wait=0.2)
        assert_nothing_arrives(other, wait=0.2)


@pytest.mark.django_db(transaction=True)
def test_the_chain_state_changing_tells_the_auditors(server, make_user):
    auditor = make_user("auditor", username="audrey")
    boss = make_user("supervisor", username="sam")
    with transaction.atomic():
        audit.record(actor=boss, action="seed", target=boss, after={"n": 1})
    cache.delete(chain_status.CACHE_KEY)
    with signed_in(server, auditor) as ws, signed_in(server, boss) as other:
        subscribe(ws, [f"attention.{auditor.pk}", "audit"])
        subscribe(other, [f"attention.{boss.pk}"])
        # Never verified -> verified: the summary's card changes.
        assert chain_status.audit_chain_status_refresh()["ok"] is True
        got = {m["name"]: m for m in (recv(ws), recv(ws))}
        assert got["audit_chain.changed"]["data"]["ok"] is True
        assert got["attention.changed"]["data"] == {
            "changed": True,
            "kinds": ["auditChain"],
        }
        # The same state again: nothing.
        chain_status.audit_chain_status_refresh()
        assert_nothing_arrives(ws)
        # Broken: the auditor's list gets the item, live.
        forge_newest_record()
        status = chain_status.audit_chain_status_refresh()
        assert status["ok"] is False
        got = {m["name"]: m for m in (recv(ws), recv(ws))}
        assert (
            got["audit_chain.changed"]["data"]["firstBroken"] == status["firstBroken"]
        )
        assert got["attention.changed"]["data"]["kinds"] == ["auditChain"]
        assert [i.split("-")[0] for i in attention_ids(auditor, "auditor")] == ["audit"]
        chain_status.audit_chain_status_refresh()
        assert_nothing_arrives(ws)
        assert_nothing_arrives(other, wait=0.2)
    cache.delete(chain_status.CACHE_KEY)
