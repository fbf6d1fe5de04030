"""Stage issues over HTTP (mobile contract): raise, open -> ack -> resolved, lists."""

from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from elog.models import AuditRecord
from exceptions import services as exception_services
from exceptions.models import PlantException
from tests.conftest import bearer
from tests.factories_production import (
    iso,
    last_event_id,
    make_runbook,
    make_work_order,
    new_event_names,
    row_counts,
    stages_of,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def floor(make_user):
    make_runbook()
    planner = make_user("planner", username="pat")
    work_order = make_work_order(planner)
    s1, s2, s3 = stages_of(work_order)
    return SimpleNamespace(
        planner=planner,
        operator=make_user("operator", username="olga"),
        supervisor=make_user("supervisor", username="sam"),
        work_order=work_order,
        s1=s1,
        s2=s2,
        s3=s3,
    )


def raise_issue(stage, actor, type="equipment_fault", severity=None, text="Jammed"):
    return exception_services.stage_issue_raise(
        stage_id=stage.pk, type=type, description=text, severity=severity, actor=actor
    )


def issue_body(issue: PlantException) -> dict:
    issue.refresh_from_db()
    return {
        "id": issue.pk,
        "work_order_stage_id": issue.work_order_stage_id,
        "type": issue.type,
        "severity": issue.severity,
        "description": issue.description,
        "status": issue.status,
        "created_by": issue.raised_by_id,
        "created_at": iso(issue.raised_at),
        "acknowledged_at": iso(issue.acknowledged_at),
        "resolved_at": iso(issue.resolved_at),
        "resolution_note": issue.resolution_note,
    }


def patch(http, issue, user, body):
    return http.patch(
        f"/api/stages/{issue.work_order_stage_id}/issues/{issue.pk}",
        json=body,
        headers=bearer(user),
    )


def refused_patch(http, issue, user, body, status, code) -> dict:
    before = (issue_body(issue), row_counts())
    response = patch(http, issue, user, body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert (issue_body(issue), row_counts()) == before
    return response.json()


# --- raise -------------------------------------------------------------------------


def test_operator_raises_an_issue_on_a_stage(http, floor):
    since = last_event_id()
    response = http.post(
        f"/api/stages/{floor.s2.pk}/issue",
        json={"type": "equipment_fault", "description": "  Press 3 jams  "},
        headers=bearer(floor.operator),
    )
    assert response.status_code == 201, response.text
    issue = PlantException.objects.get()
    assert response.json() == issue_body(issue)
    assert response.json() == {
        "id": issue.pk,
        "work_order_stage_id": floor.s2.pk,
        "type": "equipment_fault",
        "severity": "medium",
        "description": "Press 3 jams",
        "status": "open",
        "created_by": floor.operator.pk,
        "created_at": iso(issue.raised_at),
        "acknowledged_at": None,
        "resolved_at": None,
        "resolution_note": "",
    }
    # it is an exception of the stage's work order and runbook
    assert (issue.source, issue.work_order_id, issue.runbook.slug, issue.title) == (
        "stage_issue",
        floor.work_order.pk,
        "manufacturing",
        "Press 3 jams",  # the operator's first line; the stage is linked
    )
    record = AuditRecord.objects.get(action="exception.raised")
    assert record.actor_id == floor.operator.pk
    assert record.after == {
        "status": "open",
        "severity": "medium",
        "escalation_level": 0,
        "resolution_note": "",
    }
    assert new_event_names(since) == ["exception.raised"]


@pytest.mark.parametrize(
    ("body", "severity"),
    [
        ({"type": "safety"}, "high"),
        ({"type": "quality_failure"}, "high"),
        ({"type": "material_shortage"}, "medium"),
        ({"type": "material_shortage", "severity": "critical"}, "critical"),
        ({"type": "safety", "severity": "low"}, "low"),
    ],
)
def test_issue_severity_defaults_by_type(http, floor, body, severity):
    response = http.post(
        f"/api/stages/{floor.s1.pk}/issue/",
        json={**body, "description": "x"},
        headers=bearer(floor.operator),
    )
    assert response.status_code == 201
    assert response.json()["severity"] == severity


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {},
            {
                "type": ["This field is required."],
                "description": ["This field is required."],
            },
        ),
        (
            {"type": "leak", "description": "x"},
            {"type": ['"leak" is not a valid choice.']},
        ),
        (
            {"type": "safety", "description": "   "},
            {"description": ["This field may not be blank."]},
        ),
        (
            {"type": "safety", "description": "x", "severity": "urgent"},
            {"severity": ['"urgent" is not a valid choice.']},
        ),
    ],
)
def test_raise_refuses_bad_input_and_changes_nothing(http, floor, body, details):
    before = row_counts()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/issue", json=body, headers=bearer(floor.operator)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"] == details
    assert row_counts() == before


def test_raise_on_an_unknown_stage_is_404(http, floor):
    before = row_counts()
    response = http.post(
        "/api/stages/987654/issue",
        json={"type": "safety", "description": "x"},
        headers=bearer(floor.operator),
    )
    assert response.status_code == 404
    assert row_counts() == before


def test_auditor_cannot_raise_an_issue(http, floor, make_user):
    before = row_counts()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/issue",
        json={"type": "safety", "description": "x"},
        headers=bearer(make_user("auditor")),
    )
    assert response.status_code == 403
    assert row_counts() == before


# --- open -> ack -> resolved -------------------------------------------------------


def test_issue_lifecycle_open_ack_resolved(http, floor):
    issue = raise_issue(floor.s1, floor.operator)
    acked = patch(http, issue, floor.operator, {"status": "ack"})
    assert acked.status_code == 200, acked.text
    assert acked.json() == issue_body(issue)
    assert acked.json()["status"] == "ack"
    assert acked.json()["acknowledged_at"] is not None
    assert issue.acknowledged_by_id == floor.operator.pk
    ack_record = AuditRecord.objects.get(action="exception.acknowledged")
    assert (ack_record.before["status"], ack_record.after["status"]) == ("open", "ack")

    since = last_event_id()
    resolved = patch(
        http,
        issue,
        floor.supervisor,
        {"status": "resolved", "resolution_note": "Cleared the jam, re-ran cell 4"},
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json() == issue_body(issue)
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolution_note"] == "Cleared the jam, re-ran cell 4"
    assert resolved.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
    assert issue.resolved_by_id == floor.supervisor.pk
    record = AuditRecord.objects.get(action="exception.resolved")
    assert record.actor_id == floor.supervisor.pk
    assert record.before == {
        "status": "ack",
        "severity": "medium",
        "escalation_level": 0,
        "resolution_note": "",
    }
    assert record.after == {
        "status": "resolved",
        "severity": "medium",
        "escalation_level": 0,
        "resolution_note": "Cleared the jam, re-ran cell 4",
    }
    assert new_event_names(since) == ["exception.resolved"]


def test_a_supervisor_may_resolve_an_open_issue_directly(http, floor):
    issue = raise_issue(floor.s1, floor.operator)
    response = patch(
        http, issue, floor.supervisor, {"status": "resolved", "resolution_note": "ok"}
    )
    assert response.status_code == 200
    assert response.json()["acknowledged_at"] == response.json()["resolved_at"]
    assert issue_body(issue)["status"] == "resolved"


def test_ack_of_an_acknowledged_issue_is_409(http, floor):
    issue = raise_issue(floor.s1, floor.operator)
    exception_services.exception_acknowledge(
        exception_id=issue.pk, actor=floor.operator
    )
    body = refused_patch(
        http, issue, floor.operator, {"status": "ack"}, 409, "illegal_transition"
    )
    assert body["details"] == {"from": "ack", "to": "ack"}


def test_ack_of_a_resolved_issue_is_409(http, floor):
    issue = raise_issue(floor.s1, floor.operator)
    exception_services.exception_resolve(
        exception_id=issue.pk, resolution_note="done", actor=floor.supervisor
    )
    body = refused_patch(
        http, issue, floor.operator, {"status": "ack"}, 409, "illegal_transition"
    )
    assert body["details"] == {"from": "resolved", "to": "ack"}
    assert (
        body["error"]
        == f"EX-{issue.pk:03d} is Resolved; it cannot become Acknowledged."
    )


def test_resolve_of_a_resolved_issue_is_409(http, floor):
    issue = raise_issue(floor.s1, floor.operator)
    exception_services.exception_resolve(
        exception_id=issue.pk, resolution_note="done", actor=floor.supervisor
    )
    body = refused_patch(
        http,
        issue,
        floor.supervisor,
        {"status": "resolved", "resolution_note": "again"},
        409,
        "illegal_transition",
    )
    assert body["details"] == {"from": "resolved", "to": "resolved"}


@pytest.mark.parametrize(
    "body", [{"status": "resolved"}, {"status": "resolved", "resolution_note": "  "}]
)
def test_resolving_without_a_note_is_400(http, floor, body):
    issue = raise_issue(floor.s1, floor.operator)
    response = refused_patch(
        http, issue, floor.supervisor, body, 400, "validation_error"
    )
    assert response["details"] == {"resolution_note": ["This field is required."]}


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, {"status": ["This field is required."]}),
        ({"status": "open"}, {"status": ['"open" is not a valid choice.']}),
        ({"status": "closed"}, {"status": ['"closed" is not a valid choice.']}),
    ],
)
def test_patch_refuses_an_unknown_status(http, floor, body, details):
    issue = raise_issue(floor.s1, floor.operator)
    response = refused_patch(http, issue, floor.operator, body, 400, "validation_error")
    assert response["details"] == details


@pytest.mark.parametrize("role", ["operator", "planner"])
def test_only_supervisors_resolve(http, floor, make_user, role):
    issue = raise_issue(floor.s1, floor.operator)
    refused_patch(
        http,
        issue,
        make_user(role),
        {"status": "resolved", "resolution_note": "fixed it myself"},
        403,
        "permission_denied",
    )


@pytest.mark.parametrize("role", ["plant-head", "admin"])
def test_plant_heads_and_admins_resolve(http, floor, make_user, role):
    issue = raise_issue(floor.s1, floor.operator)
    response = patch(
        http, issue, make_user(role), {"status": "resolved", "resolution_note": "ok"}
    )
    assert response.status_code == 200


def test_auditor_cannot_acknowledge(http, floor, make_user):
    issue = raise_issue(floor.s1, floor.operator)
    refused_patch(
        http, issue, make_user("auditor"), {"status": "ack"}, 403, "permission_denied"
    )


def test_an_issue_is_addressed_through_its_own_stage(http, floor):
    issue = raise_issue(floor.s1, floor.operator)
    before = (issue_body(issue), row_counts())
    for path in (
        f"/api/stages/{floor.s2.pk}/issues/{issue.pk}",
        f"/api/stages/{floor.s1.pk}/issues/987654",
    ):
        response = http.patch(
            path, json={"status": "ack"}, headers=bearer(floor.operator)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert (issue_body(issue), row_counts()) == before


# --- lists -------------------------------------------------------------------------


@pytest.fixture
def issues(floor):
    """Four issues on S1/S2 in every status, plus an exception on no stage."""
    operator, supervisor = floor.operator, floor.supervisor
    jam = raise_issue(floor.s1, operator, "equipment_fault")
    short = raise_issue(floor.s1, operator, "material_shortage", "low")
    spark = raise_issue(floor.s2, operator, "safety", text="Jammed guard sparks")
    seal = raise_issue(floor.s2, operator, "quality_failure", "critical")
    exception_services.exception_acknowledge(exception_id=short.pk, actor=operator)
    exception_services.exception_resolve(
        exception_id=spark.pk, resolution_note="guard refitted", actor=supervisor
    )
    exception_services.exception_raise(
        type="alarm", title="Chiller over temperature", actor=None
    )
    return {"jam": jam, "short": short, "spark": spark, "seal": seal}


def test_issue_list_is_paginated_newest_first(http, floor, issues):
    response = http.get("/api/issues", headers=bearer(floor.supervisor))
    assert response.status_code == 200
    assert response.json() == {
        "count": 4,
        "next": None,
        "previous": None,
        "results": [
            issue_body(issues[name]) for name in ("seal", "spark", "short", "jam")
        ],
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=open", ["seal", "jam"]),
        ("?status=open&status=ack", ["seal", "short", "jam"]),
        ("?status=resolved", ["spark"]),
        ("?type=safety", ["spark"]),
        ("?severity=high", ["spark"]),
        ("?severity=critical", ["seal"]),
        ("?work_order_stage={s1}", ["short", "jam"]),
        ("?work_order_stage_id={s2}", ["seal", "spark"]),
        ("?work_order_stage={s2}&status=open", ["seal"]),
        ("?work_order_stage={s3}", []),
        ("?ordering=created_at", ["jam", "short", "spark", "seal"]),
        ("?search=jammed", ["seal", "spark", "short", "jam"]),
        ("?search=sparks", ["spark"]),
    ],
)
def test_issue_list_filters(http, floor, issues, query, expected):
    query = query.format(s1=floor.s1.pk, s2=floor.s2.pk, s3=floor.s3.pk)
    response = http.get(f"/api/issues/{query}", headers=bearer(floor.planner))
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [
        issues[name].pk for name in expected
    ]


def test_issue_list_refuses_an_unknown_type(http, floor, issues):
    response = http.get("/api/issues?type=leak", headers=bearer(floor.supervisor))
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"type"}


@pytest.mark.parametrize(
    "role", ["supervisor", "plant-head", "planner", "admin", "auditor"]
)
def test_managers_and_auditors_list_issues(http, make_user, role):
    assert http.get("/api/issues", headers=bearer(make_user(role))).status_code == 200


def test_operators_do_not_list_every_issue(http, floor):
    response = http.get("/api/issues", headers=bearer(floor.operator))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_anyone_lists_the_issues_of_one_stage(http, floor, issues):
    response = http.get(
        f"/api/stages/{floor.s1.pk}/issues", headers=bearer(floor.operator)
    )
    assert response.status_code == 200
    assert response.json() == [issue_body(issues["short"]), issue_body(issues["jam"])]
    missing = http.get("/api/stages/987654/issues", headers=bearer(floor.operator))
    assert missing.status_code == 404


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("count", [1, 6])
def test_issue_list_query_count_does_not_grow_with_rows(
    make_user, django_assert_num_queries, count
):
    make_runbook()
    supervisor = make_user("supervisor")
    stage = stages_of(make_work_order(supervisor))[0]
    for _ in range(count):
        raise_issue(stage, supervisor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(supervisor)["Authorization"])
    with django_assert_num_queries(3):  # user, count, page
        response = client.get("/api/issues")
    assert response.json()["count"] == count
