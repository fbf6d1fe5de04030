"""Exceptions for the control UI (contract group VI): list, filters, detail with
its escalation path, acknowledge and resolve with their role rules, and the
refusals that change nothing.
"""

from datetime import datetime, timedelta

import pytest
from rest_framework.test import APIClient

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from exceptions import services as exception_services
from exceptions.models import ExceptionStatus, PlantException
from tests.conftest import api_as as api
from tests.conftest import bearer
from tests.factories_tower import make_runbook, raise_exception, stage_of

ENVELOPE_KEYS = {"success", "error", "code", "details", "request_id"}
ITEM_KEYS = {
    "id",
    "type",
    "severity",
    "status",
    "title",
    "blocks",
    "runbookId",
    "raisedAt",
    "isBlocking",
}


def z(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@pytest.fixture
def boss(make_user):
    return make_user("supervisor", username="sam")


@pytest.fixture
def runbook(db):
    return make_runbook()


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


# --- list --------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_is_paginated_newest_first_in_the_contract_shape(boss, runbook):
    older = raise_exception(
        boss,
        runbook=runbook,
        stage=stage_of(runbook, "S5"),
        type="quality_failure",
        severity="critical",
        title="Seal leak",
    )
    newer = raise_exception(boss, runbook=runbook, severity="low", title="Smudge")
    response = api(boss).get("/api/exceptions")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    assert [row["id"] for row in body["results"]] == [newer.code, older.code]
    assert body["results"][1] == {
        "id": older.code,
        "type": "Quality Failure",
        "severity": "Critical",
        "status": "Open",
        "title": "Seal leak",
        "blocks": "S5 Module Assembly",
        "runbookId": "manufacturing",
        "raisedAt": z(older.raised_at),
        "isBlocking": True,
    }
    assert body["results"][0]["blocks"] == "Manufacturing Execution"
    assert body["results"][0]["isBlocking"] is False


@pytest.mark.django_db
def test_exception_without_a_runbook_or_stage_blocks_nothing_named(boss):
    exc = raise_exception(boss, type="alarm", title="Chiller alarm")
    row = api(boss).get("/api/exceptions").json()["results"][0]
    assert (row["id"], row["blocks"], row["runbookId"]) == (exc.code, None, None)


@pytest.mark.django_db
def test_every_status_and_severity_enum_is_served_as_spelled(boss, runbook):
    for severity in ("critical", "high", "medium", "low"):
        raise_exception(boss, runbook=runbook, severity=severity, title=severity)
    acked, resolved = PlantException.objects.order_by("id")[:2]
    exception_services.exception_acknowledge(exception_id=acked.pk, actor=boss)
    exception_services.exception_resolve(
        exception_id=resolved.pk, resolution_note="done", actor=boss
    )
    rows = api(boss).get("/api/exceptions?ordering=severity").json()["results"]
    assert [(r["severity"], r["status"]) for r in rows] == [
        ("Critical", "Acknowledged"),
        ("High", "Resolved"),
        ("Medium", "Open"),
        ("Low", "Open"),
    ]
    assert all(set(row) == ITEM_KEYS for row in rows)


@pytest.mark.django_db
def test_filters_take_labels_or_values_and_search_the_title(boss, runbook):
    dispatch = make_runbook("dispatch", title="Dispatch", prefix="dsp")
    quality = raise_exception(
        boss,
        runbook=runbook,
        type="quality_failure",
        severity="high",
        title="Seal leak on M-17",
    )
    via_stage = raise_exception(
        boss,
        stage=stage_of(runbook, "S2"),
        type="equipment_fault",
        severity="low",
        title="Grader offline",
    )
    safety = raise_exception(
        boss, runbook=dispatch, type="safety", severity="critical", title="Dock spill"
    )
    exception_services.exception_acknowledge(exception_id=via_stage.pk, actor=boss)
    client = api(boss)
    cases = {
        "type=Quality%20Failure": [quality.code],
        "type=quality_failure": [quality.code],
        "severity=Critical": [safety.code],
        "severity=low": [via_stage.code],
        "status=Acknowledged": [via_stage.code],
        "status=ack": [via_stage.code],
        "status=Open": [safety.code, quality.code],
        "runbook=manufacturing": [via_stage.code, quality.code],
        "runbook=dispatch": [safety.code],
        "isBlocking=true": [safety.code],
        "search=seal": [quality.code],
        "runbook=manufacturing&status=Open": [quality.code],
        "ordering=raisedAt": [quality.code, via_stage.code, safety.code],
        "ordering=-severity": [via_stage.code, quality.code, safety.code],
    }
    for query, expected in cases.items():
        assert ids(client.get(f"/api/exceptions?{query}")) == expected, query


@pytest.mark.django_db
def test_unknown_filter_value_is_a_400_envelope(boss):
    response = api(boss).get("/api/exceptions?severity=Catastrophic")
    assert response.status_code == 400
    assert set(response.json()) == ENVELOPE_KEYS
    assert set(response.json()["details"]) == {"severity"}


@pytest.mark.django_db
def test_list_costs_two_queries_however_many_rows(
    boss, runbook, django_assert_num_queries
):
    client = APIClient()
    client.force_authenticate(boss)
    raise_exception(boss, runbook=runbook, stage=stage_of(runbook, "S1"))
    with django_assert_num_queries(2):
        client.get("/api/exceptions")
    for n in range(8):
        raise_exception(boss, stage=stage_of(runbook, "S3"), title=f"n{n}")
        raise_exception(boss, title=f"free {n}")
    with django_assert_num_queries(2):
        assert len(client.get("/api/exceptions").json()["results"]) == 17


# --- detail ------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_by_code_or_number(boss, runbook):
    exc = raise_exception(boss, runbook=runbook)
    client = api(boss)
    for key in (exc.code, str(exc.pk), exc.code.lower(), f"EX-{exc.pk}"):
        response = client.get(f"/api/exceptions/{key}")
        assert response.status_code == 200, key
        assert response.json()["id"] == exc.code
    assert client.get(f"/api/exceptions/{exc.code}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["EX-987654", "987654", "99999999999999999999"])
def test_unknown_exception_is_a_404_envelope(boss, key):
    response = api(boss).get(f"/api/exceptions/{key}")
    assert response.status_code == 404
    assert set(response.json()) == ENVELOPE_KEYS
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_detail_shows_the_escalation_path_as_it_was_climbed(boss, runbook):
    exc = raise_exception(
        boss,
        runbook=runbook,
        type="quality_failure",
        severity="critical",
        title="Thermal event",
        description="Module M-9 at 71 °C",
    )
    raised_at = datetime.fromisoformat(exc.escalation_log[0]["at"])
    first_due = exc.ack_due_at
    assert (
        exception_services.exceptions_escalate_overdue(
            now=first_due - timedelta(seconds=1)
        )
        == 0
    )
    t1 = first_due + timedelta(seconds=1)
    assert exception_services.exceptions_escalate_overdue(now=t1) == 1

    middle = api(boss).get(f"/api/exceptions/{exc.code}").json()
    assert middle["currentLevel"] == 1
    assert middle["responsibleRole"] == "Supervisor"
    assert middle["escalationPath"] == [
        {"level": 0, "role": "Operator", "reached": True, "at": z(raised_at)},
        {"level": 1, "role": "Supervisor", "reached": True, "at": z(t1)},
        {"level": 2, "role": "Plant Head", "reached": False, "at": None},
    ]
    assert middle["ackDueAt"] == z(t1 + timedelta(minutes=5))

    t2 = t1 + timedelta(minutes=5, seconds=1)
    t3 = t2 + timedelta(minutes=5, seconds=1)
    assert exception_services.exceptions_escalate_overdue(now=t2) == 1
    # the plant head is the top of the path: escalation ends there
    assert exception_services.exceptions_escalate_overdue(now=t3) == 0

    body = api(boss).get(f"/api/exceptions/{exc.pk}").json()
    assert body == {
        "id": exc.code,
        "type": "Quality Failure",
        "severity": "Critical",
        "status": "Open",
        "title": "Thermal event",
        "blocks": "Manufacturing Execution",
        "runbookId": "manufacturing",
        "raisedAt": z(exc.raised_at),
        "isBlocking": True,
        "description": "Module M-9 at 71 °C",
        "source": "Manual",
        "stageId": None,
        "workOrderId": None,
        "workOrderStageId": None,
        "raisedBy": "sam",
        "acknowledgedBy": None,
        "acknowledgedAt": None,
        "resolvedBy": None,
        "resolvedAt": None,
        "resolutionNote": "",
        "ackDueAt": z(t2 + timedelta(minutes=5)),
        "currentLevel": 2,
        "responsibleRole": "Plant Head",
        "escalationPath": [
            {"level": 0, "role": "Operator", "reached": True, "at": z(raised_at)},
            {"level": 1, "role": "Supervisor", "reached": True, "at": z(t1)},
            {"level": 2, "role": "Plant Head", "reached": True, "at": z(t2)},
        ],
    }


# --- acknowledge and resolve ---------------------------------------------------------


@pytest.mark.django_db
def test_operator_acknowledges_and_escalation_stops(make_user, boss, runbook):
    olga = make_user("operator", username="olga")
    exc = raise_exception(boss, runbook=runbook, severity="high")
    response = api(olga).post(f"/api/exceptions/{exc.code}/acknowledge")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["acknowledgedBy"], body["ackDueAt"]) == (
        "Acknowledged",
        "olga",
        None,
    )
    assert body["acknowledgedAt"] is not None
    assert (
        exception_services.exceptions_escalate_overdue(
            now=exc.ack_due_at + timedelta(hours=1)
        )
        == 0
    )
    record = AuditRecord.objects.get(action="exception.acknowledged")
    assert (record.actor_id, record.after["status"]) == (olga.pk, "ack")
    again = api(olga).post(f"/api/exceptions/{exc.code}/acknowledge")
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"


@pytest.mark.django_db
def test_auditor_cannot_acknowledge(make_user, boss, runbook):
    exc = raise_exception(boss, runbook=runbook)
    before = AuditRecord.objects.count()
    response = api(make_user("auditor")).post(f"/api/exceptions/{exc.pk}/acknowledge")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    exc.refresh_from_db()
    assert exc.status == ExceptionStatus.OPEN
    assert AuditRecord.objects.count() == before


@pytest.mark.django_db
def test_supervisor_resolves_with_a_note(boss, runbook):
    exc = raise_exception(boss, runbook=runbook, type="safety", title="Spill")
    response = api(boss).post(
        f"/api/exceptions/{exc.code}/resolve",
        {"resolutionNote": "  Absorbent applied, area cleared  "},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("status", "resolvedBy", "resolutionNote")} == {
        "status": "Resolved",
        "resolvedBy": "sam",
        "resolutionNote": "Absorbent applied, area cleared",
    }
    assert body["resolvedAt"] is not None
    assert body["acknowledgedBy"] == "sam"  # resolving acknowledges what was not
    assert body["ackDueAt"] is None
    record = AuditRecord.objects.get(action="exception.resolved")
    assert record.after["resolution_note"] == "Absorbent applied, area cleared"
    again = api(boss).post(
        f"/api/exceptions/{exc.code}/resolve", {"resolutionNote": "x"}, format="json"
    )
    assert again.status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload", [{}, {"resolutionNote": ""}, {"resolutionNote": "   "}]
)
def test_resolve_without_a_note_is_400_and_changes_nothing(boss, runbook, payload):
    exc = raise_exception(boss, runbook=runbook)
    before = (AuditRecord.objects.count(), OutboxEvent.objects.count())
    response = api(boss).post(
        f"/api/exceptions/{exc.code}/resolve", payload, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body["details"]) == {"resolutionNote"}
    exc.refresh_from_db()
    assert (exc.status, exc.resolution_note, exc.resolved_at) == ("open", "", None)
    assert (AuditRecord.objects.count(), OutboxEvent.objects.count()) == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "planner", "auditor"])
def test_only_supervisors_resolve(make_user, boss, runbook, role):
    exc = raise_exception(boss, runbook=runbook)
    before = AuditRecord.objects.count()
    response = api(make_user(role)).post(
        f"/api/exceptions/{exc.code}/resolve", {"resolutionNote": "x"}, format="json"
    )
    assert response.status_code == 403
    exc.refresh_from_db()
    assert exc.status == ExceptionStatus.OPEN
    assert AuditRecord.objects.count() == before


@pytest.mark.django_db
def test_acknowledge_or_resolve_unknown_is_404(boss):
    client = api(boss)
    assert client.post("/api/exceptions/EX-987654/acknowledge").status_code == 404
    resolve = client.post(
        "/api/exceptions/987654/resolve", {"resolutionNote": "x"}, format="json"
    )
    assert resolve.status_code == 404


# --- end to end over a real socket ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_raise_acknowledge_resolve_over_http(http, make_user):
    olga = make_user("operator", username="olga")
    boss = make_user("plant-head", username="pia")
    runbook = make_runbook()
    exc = raise_exception(boss, runbook=runbook, type="safety", title="Spill")
    tower = http.get("/api/control-tower/runbooks", headers=bearer(olga)).json()
    assert tower[0]["status"] == "Blocked"

    acked = http.post(
        f"/api/exceptions/{exc.code}/acknowledge",
        headers={**bearer(olga), "X-Request-ID": "ack-1"},
    )
    assert acked.status_code == 200
    assert (
        http.get("/api/control-tower/runbooks", headers=bearer(olga)).json()[0][
            "status"
        ]
        == "Blocked"
    )  # acknowledged is not resolved

    resolved = http.post(
        f"/api/exceptions/{exc.code}/resolve",
        json={"resolutionNote": "Cleared"},
        headers={**bearer(boss), "X-Request-ID": "resolve-1"},
    )
    assert resolved.status_code == 200
    assert resolved.json()["resolvedBy"] == "pia"
    tower = http.get("/api/control-tower/runbooks", headers=bearer(olga)).json()
    assert tower[0]["status"] == "Idle"
    assert tower[0]["blockReason"] is None
    assert list(
        AuditRecord.objects.filter(target_id=str(exc.pk))
        .order_by("seq")
        .values_list("action", "request_id")
    ) == [
        ("exception.raised", ""),
        ("exception.acknowledged", "ack-1"),
        ("exception.resolved", "resolve-1"),
    ]
