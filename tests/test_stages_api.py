"""Stages over HTTP (mobile contract): start, done, hold, resume, the rules that
refuse them (409/403), their audit records, and the worker's own list."""

from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from elog.models import AuditRecord
from runbooks import services
from runbooks.models import WorkOrderStage
from tests.conftest import PASSWORD, bearer
from tests.factories_production import (
    audit_iso,
    gate_of,
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
    """A planned work order of three stages, each assigned to operator olga."""
    runbook = make_runbook()
    planner = make_user("planner", username="pat")
    operator = make_user("operator", username="olga")
    work_order = make_work_order(planner, runbook=runbook)
    s1, s2, s3 = stages_of(work_order)
    for stage in (s1, s2, s3):
        services.stage_assign(stage_id=stage.pk, user_id=operator.pk, actor=planner)
    return SimpleNamespace(
        runbook=runbook,
        gate=gate_of(runbook),
        planner=planner,
        operator=operator,
        supervisor=make_user("supervisor", username="sam"),
        work_order=work_order,
        s1=s1,
        s2=s2,
        s3=s3,
    )


def move(http, stage, verb: str, user, body=None):
    return http.post(
        f"/api/stages/{stage.pk}/{verb}", json=body or {}, headers=bearer(user)
    )


def state(stage) -> dict:
    """What a refused move must leave untouched."""
    stage.refresh_from_db()
    work_order = stage.work_order
    work_order.refresh_from_db()
    return {
        "status": stage.status,
        "actual_start": stage.actual_start,
        "actual_end": stage.actual_end,
        "hold_reason": stage.hold_reason,
        "work_order_status": work_order.status,
        **row_counts(),
    }


def stage_body(stage, assignees) -> dict:
    stage.refresh_from_db()
    return {
        "id": stage.pk,
        "work_order_id": stage.work_order_id,
        "stage_name": stage.stage_name,
        "stage_code": stage.stage.code,
        "planned_start": iso(stage.planned_start),
        "planned_end": iso(stage.planned_end),
        "actual_start": iso(stage.actual_start),
        "actual_end": iso(stage.actual_end),
        "status": stage.status,
        "hold_reason": stage.hold_reason,
        "assignees": [{"id": u.pk, "username": u.username} for u in assignees],
    }


def refused(http, stage, verb, user, status, code, body=None) -> dict:
    """Make a move that must be refused; assert nothing changed; return the body."""
    before = state(stage)
    response = move(http, stage, verb, user, body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert state(stage) == before
    return response.json()


def finish(stage, actor) -> None:
    services.stage_start(stage_id=stage.pk, actor=actor)
    services.stage_finish(stage_id=stage.pk, actor=actor)


# --- the happy path and its audit trail --------------------------------------------


def test_assigned_operator_starts_a_stage(http, floor):
    since = last_event_id()
    response = move(http, floor.s1, "start", floor.operator)
    assert response.status_code == 200, response.text
    assert response.json() == stage_body(floor.s1, [floor.operator])
    assert response.json()["status"] == "in_progress"
    floor.work_order.refresh_from_db()
    assert floor.work_order.status == "in_progress"
    assert floor.work_order.started_at == floor.s1.actual_start
    record = AuditRecord.objects.get(action="stage.started")
    assert (record.actor_id, record.target_type, record.target_id) == (
        floor.operator.pk,
        "runbooks.workorderstage",
        str(floor.s1.pk),
    )
    assert record.before == {
        "status": "planned",
        "actual_start": None,
        "actual_end": None,
        "hold_reason": "",
    }
    assert record.after == {
        "status": "in_progress",
        "actual_start": audit_iso(floor.s1.actual_start),
        "actual_end": None,
        "hold_reason": "",
    }
    assert new_event_names(since) == ["stage.started", "workorder.started"]


def test_assigned_operator_finishes_a_stage(http, floor):
    services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    since = last_event_id()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/done/", headers=bearer(floor.operator)
    )  # no body at all, trailing slash
    assert response.status_code == 200, response.text
    assert response.json() == stage_body(floor.s1, [floor.operator])
    assert response.json()["status"] == "done"
    record = AuditRecord.objects.get(action="stage.completed")
    assert record.before == {
        "status": "in_progress",
        "actual_start": audit_iso(floor.s1.actual_start),
        "actual_end": None,
        "hold_reason": "",
    }
    assert record.after == {
        "status": "done",
        "actual_start": audit_iso(floor.s1.actual_start),
        "actual_end": audit_iso(floor.s1.actual_end),
        "hold_reason": "",
    }
    assert new_event_names(since) == ["stage.completed"]
    floor.work_order.refresh_from_db()
    assert floor.work_order.status == "in_progress"


def test_work_order_completes_when_its_last_stage_is_done(http, floor):
    finish(floor.s1, floor.operator)
    finish(floor.s2, floor.operator)
    services.stage_start(stage_id=floor.s3.pk, actor=floor.operator)
    since = last_event_id()
    response = move(http, floor.s3, "done", floor.operator)
    assert response.status_code == 200
    floor.work_order.refresh_from_db()
    floor.s3.refresh_from_db()
    assert floor.work_order.status == "completed"
    assert floor.work_order.completed_at == floor.s3.actual_end
    record = AuditRecord.objects.get(action="workorder.completed")
    assert record.actor_id == floor.operator.pk
    assert record.after["status"] == "completed"
    assert new_event_names(since) == ["stage.completed", "workorder.completed"]
    detail = http.get(
        f"/api/workorders/{floor.work_order.pk}", headers=bearer(floor.operator)
    ).json()
    assert detail["status"] == "completed"
    assert detail["completed_at"] == iso(floor.s3.actual_end)
    assert [s["status"] for s in detail["stages"]] == ["done", "done", "done"]


def test_hold_and_resume_a_running_stage(http, floor):
    services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    held = move(http, floor.s1, "hold", floor.operator, {"reason": "Cell shortage"})
    assert held.status_code == 200
    assert held.json() == stage_body(floor.s1, [floor.operator])
    assert (held.json()["status"], held.json()["hold_reason"]) == (
        "hold",
        "Cell shortage",
    )
    hold_record = AuditRecord.objects.get(action="stage.held")
    assert hold_record.before["status"] == "in_progress"
    assert (hold_record.after["status"], hold_record.after["hold_reason"]) == (
        "hold",
        "Cell shortage",
    )
    resumed = move(http, floor.s1, "resume", floor.operator)
    assert resumed.status_code == 200
    assert (resumed.json()["status"], resumed.json()["hold_reason"]) == (
        "in_progress",
        "",
    )
    resume_record = AuditRecord.objects.get(action="stage.resumed")
    assert resume_record.before["status"] == "hold"
    assert resume_record.after == {
        "status": "in_progress",
        "actual_start": audit_iso(floor.s1.actual_start),
        "actual_end": None,
        "hold_reason": "",
    }


def test_a_held_stage_that_never_started_resumes_to_planned(http, floor):
    held = move(http, floor.s1, "hold", floor.operator, {"reason": "wait"})
    assert held.json()["status"] == "hold"
    response = move(http, floor.s1, "resume", floor.operator)
    assert response.status_code == 200
    assert response.json()["status"] == "planned"
    assert response.json()["actual_start"] is None


def test_hold_needs_a_reason(http, floor):
    services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    body = refused(http, floor.s1, "hold", floor.operator, 400, "validation_error")
    assert body["details"] == {"reason": ["This field is required."]}
    body = refused(
        http,
        floor.s1,
        "hold",
        floor.operator,
        400,
        "validation_error",
        {"reason": "  "},
    )
    assert body["details"] == {"reason": ["This field may not be blank."]}


# --- who may move a stage ----------------------------------------------------------


def test_unassigned_operator_is_refused_not_assigned(http, floor, make_user):
    stranger = make_user("operator", username="omar")
    body = refused(http, floor.s1, "start", stranger, 403, "not_assigned")
    assert body["error"] == (
        "Only an operator assigned to this stage, or a supervisor, may move it."
    )


def test_unassigned_planner_is_refused_not_assigned(http, floor):
    refused(http, floor.s1, "start", floor.planner, 403, "not_assigned")


@pytest.mark.parametrize("role", ["supervisor", "plant-head", "admin"])
def test_supervisors_move_any_stage_unassigned(http, floor, make_user, role):
    overseer = make_user(role)
    assert move(http, floor.s1, "start", overseer).status_code == 200
    assert move(http, floor.s1, "done", overseer).status_code == 200
    floor.s1.refresh_from_db()
    assert floor.s1.status == "done"


def test_auditor_may_not_move_a_stage(http, floor, make_user):
    refused(http, floor.s1, "start", make_user("auditor"), 403, "permission_denied")


def test_moves_need_a_token(http, floor):
    response = http.post(f"/api/stages/{floor.s1.pk}/start")
    assert response.status_code == 401
    floor.s1.refresh_from_db()
    assert floor.s1.status == "planned"


@pytest.mark.parametrize("verb", ["start", "done", "resume", "hold"])
def test_moving_an_unknown_stage_is_404(http, floor, verb):
    response = http.post(
        f"/api/stages/987654/{verb}",
        json={"reason": "x"},
        headers=bearer(floor.operator),
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- the rules: 409 and nothing changes --------------------------------------------


def test_start_out_of_order_is_409(http, floor):
    body = refused(http, floor.s2, "start", floor.operator, 409, "stage_out_of_order")
    assert body["details"] == {
        "blocking_stage_id": floor.s1.pk,
        "blocking_stage": "Cell Grading (S1)",
    }
    assert body["error"] == (
        "Cell Grading (S1) must be done before Module Assembly (S2) starts."
    )


def test_start_while_an_earlier_stage_is_only_in_progress_is_409(http, floor):
    services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    refused(http, floor.s2, "start", floor.operator, 409, "stage_out_of_order")


def test_stages_of_a_non_sequential_runbook_start_in_any_order(http, make_user):
    runbook = make_runbook(slug="quality", sequential=False)
    supervisor = make_user("supervisor")
    stages = stages_of(make_work_order(supervisor, runbook=runbook))
    assert move(http, stages[2], "start", supervisor).status_code == 200


def test_finish_with_closed_gate_is_409(http, floor):
    finish(floor.s1, floor.operator)
    services.stage_start(stage_id=floor.s2.pk, actor=floor.operator)
    services.gate_set(
        gate_id=floor.gate.pk, action="close", actor=floor.supervisor, password=PASSWORD
    )
    body = refused(http, floor.s2, "done", floor.operator, 409, "gate_not_open")
    assert body["details"] == {
        "gates": [
            {
                "id": floor.gate.pk,
                "status": "Closed",
                "condition": "Seal check passed",
                "reason": "",
            }
        ]
    }
    assert body["error"] == (
        "Module Assembly (S2) cannot finish: gate 'Seal check passed' is closed."
    )


def test_finish_with_locked_gate_is_409(http, floor):
    finish(floor.s1, floor.operator)
    services.stage_start(stage_id=floor.s2.pk, actor=floor.operator)
    services.gate_set(
        gate_id=floor.gate.pk,
        action="lock",
        reason="Seal Check Failed",
        actor=floor.supervisor,
    )
    body = refused(http, floor.s2, "done", floor.operator, 409, "gate_not_open")
    assert body["details"]["gates"][0]["status"] == "Locked"
    assert body["error"] == (
        "Module Assembly (S2) cannot finish: gate 'Seal check passed' is locked "
        "(Seal Check Failed)."
    )


def test_finish_after_the_gate_reopens(http, floor):
    finish(floor.s1, floor.operator)
    services.stage_start(stage_id=floor.s2.pk, actor=floor.operator)
    services.gate_set(
        gate_id=floor.gate.pk, action="lock", reason="Seal", actor=floor.supervisor
    )
    refused(http, floor.s2, "done", floor.operator, 409, "gate_not_open")
    services.gate_set(
        gate_id=floor.gate.pk, action="open", actor=floor.supervisor, password=PASSWORD
    )
    assert move(http, floor.s2, "done", floor.operator).status_code == 200


def test_start_behind_a_locked_gate_is_409(http, floor):
    finish(floor.s1, floor.operator)
    services.gate_set(
        gate_id=floor.gate.pk,
        action="lock",
        reason="Seal Check Failed",
        actor=floor.supervisor,
    )
    body = refused(http, floor.s2, "start", floor.operator, 409, "gate_locked")
    assert body["error"] == (
        "Module Assembly (S2) is behind a locked gate: Seal Check Failed."
    )
    # even a supervisor: the lock is lifted through the gate, not around it
    refused(http, floor.s2, "start", floor.supervisor, 409, "gate_locked")


def test_start_behind_a_closed_gate_is_allowed(http, floor):
    finish(floor.s1, floor.operator)
    services.gate_set(
        gate_id=floor.gate.pk, action="close", actor=floor.supervisor, password=PASSWORD
    )
    assert move(http, floor.s2, "start", floor.operator).status_code == 200


def test_done_from_planned_is_409(http, floor):
    body = refused(http, floor.s1, "done", floor.operator, 409, "illegal_transition")
    assert body["details"] == {"from": "planned", "to": "done"}


def test_done_twice_is_409(http, floor):
    finish(floor.s1, floor.operator)
    body = refused(http, floor.s1, "done", floor.operator, 409, "illegal_transition")
    assert body["details"] == {"from": "done", "to": "done"}


def test_start_twice_is_409(http, floor):
    services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    body = refused(http, floor.s1, "start", floor.operator, 409, "illegal_transition")
    assert body["details"] == {"from": "in_progress", "to": "in_progress"}


def test_start_of_a_held_stage_is_409(http, floor):
    services.stage_hold(stage_id=floor.s1.pk, reason="wait", actor=floor.operator)
    body = refused(http, floor.s1, "start", floor.operator, 409, "illegal_transition")
    assert body["error"] == (
        "Cell Grading (S1) is on hold; resume it instead of starting it."
    )


@pytest.mark.parametrize("started", [False, True])
def test_resume_when_not_held_is_409(http, floor, started):
    if started:
        services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    body = refused(http, floor.s1, "resume", floor.operator, 409, "illegal_transition")
    assert body["error"] == "Cell Grading (S1) is not on hold."


def test_hold_of_a_done_stage_is_409(http, floor):
    finish(floor.s1, floor.operator)
    refused(
        http,
        floor.s1,
        "hold",
        floor.operator,
        409,
        "illegal_transition",
        {"reason": "late"},
    )


def test_start_of_a_cancelled_work_orders_stage_is_409(http, floor):
    services.work_order_cancel(
        work_order_id=floor.work_order.pk, reason="dup", actor=floor.planner
    )
    body = refused(http, floor.s1, "start", floor.operator, 409, "work_order_closed")
    assert body["error"] == (
        f"Work order {floor.work_order.pk} is Cancelled; its stages no longer move."
    )


@pytest.mark.parametrize(
    ("verb", "body"), [("done", None), ("hold", {"reason": "x"}), ("resume", None)]
)
def test_a_cancelled_work_orders_running_stage_no_longer_moves(http, floor, verb, body):
    services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    if verb == "resume":
        services.stage_hold(stage_id=floor.s1.pk, reason="x", actor=floor.operator)
    services.work_order_cancel(
        work_order_id=floor.work_order.pk, reason="dup", actor=floor.planner
    )
    refused(http, floor.s1, verb, floor.supervisor, 409, "work_order_closed", body)


# --- reading stages ----------------------------------------------------------------


def test_stage_detail(http, floor, make_user):
    for path in (f"/api/stages/{floor.s2.pk}", f"/api/stages/{floor.s2.pk}/"):
        response = http.get(path, headers=bearer(make_user("auditor")))
        assert response.status_code == 200
        assert response.json() == stage_body(floor.s2, [floor.operator])


def test_unknown_stage_is_404(http, floor):
    response = http.get("/api/stages/987654", headers=bearer(floor.operator))
    assert response.status_code == 404


def test_worker_lists_the_stages_assigned_to_them(http, floor, make_user):
    other = make_user("operator", username="omar")
    second = make_work_order(floor.planner, lot_no="LOT-2")
    mine = stages_of(second)[0]
    services.stage_assign(stage_id=mine.pk, user_id=other.pk, actor=floor.planner)
    response = http.get("/api/stages?assigned_to=me", headers=bearer(other))
    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [stage_body(mine, [other])],
    }
    olga = http.get("/api/stages/?assigned_to=me", headers=bearer(floor.operator))
    assert [row["id"] for row in olga.json()["results"]] == [
        floor.s1.pk,
        floor.s2.pk,
        floor.s3.pk,
    ]
    by_id = http.get(
        f"/api/stages?assigned_to={other.pk}", headers=bearer(floor.supervisor)
    )
    assert [row["id"] for row in by_id.json()["results"]] == [mine.pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?assigned_to=me&status=in_progress", ["s1"]),
        ("?assigned_to=me&status=planned&status=in_progress", ["s1", "s2", "s3"]),
        ("?status=planned", ["s2", "s3"]),
        ("?work_order_status=cancelled", []),
        ("?work_order_status=in_progress&ordering=-id", ["s3", "s2", "s1"]),
    ],
)
def test_stage_list_filters(http, floor, query, expected):
    services.stage_start(stage_id=floor.s1.pk, actor=floor.operator)
    response = http.get(f"/api/stages{query}", headers=bearer(floor.operator))
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [
        getattr(floor, name).pk for name in expected
    ]


def test_stage_list_by_work_order(http, floor):
    other = make_work_order(floor.planner, lot_no="LOT-2")
    response = http.get(
        f"/api/stages?work_order={other.pk}", headers=bearer(floor.operator)
    )
    assert [row["id"] for row in response.json()["results"]] == [
        stage.pk for stage in stages_of(other)
    ]


@pytest.mark.parametrize("value", ["you", "-1", "0", "1.5"])
def test_stage_list_refuses_a_bad_assigned_to(http, floor, value):
    response = http.get(
        f"/api/stages?assigned_to={value}", headers=bearer(floor.operator)
    )
    assert response.status_code == 400
    assert response.json()["details"] == {"assigned_to": ['Use "me" or a user id.']}


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize("orders", [1, 5])
def test_stage_list_query_count_does_not_grow_with_rows(
    make_user, django_assert_num_queries, orders
):
    runbook = make_runbook()
    planner = make_user("planner")
    operator = make_user("operator")
    for n in range(orders):
        for stage in stages_of(
            make_work_order(planner, runbook=runbook, lot_no=f"{n}")
        ):
            services.stage_assign(stage_id=stage.pk, user_id=operator.pk, actor=planner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(operator)["Authorization"])
    # user, count, page of stages + templates, their assignments + users
    with django_assert_num_queries(4):
        response = client.get("/api/stages?assigned_to=me")
    assert response.json()["count"] == 3 * orders
    assert WorkOrderStage.objects.count() == 3 * orders


# --- assignments -------------------------------------------------------------------


def assignment_body(assignment) -> dict:
    return {
        "id": assignment.pk,
        "work_order_stage_id": assignment.work_order_stage_id,
        "user_id": assignment.user_id,
        "username": assignment.user.username,
        "role": assignment.user.role,
        "assigned_by": assignment.assigned_by_id,
        "assigned_at": iso(assignment.assigned_at),
    }


def test_planner_assigns_a_worker_and_it_is_audited(http, floor, make_user):
    worker = make_user("operator", username="wanda")
    since = last_event_id()
    response = http.post(
        f"/api/stages/{floor.s2.pk}/assignments",
        json={"user_id": worker.pk},
        headers=bearer(floor.planner),
    )
    assert response.status_code == 201, response.text
    assignment = floor.s2.assignments.get(user=worker)
    assert response.json() == assignment_body(assignment)
    assert response.json()["assigned_by"] == floor.planner.pk
    record = AuditRecord.objects.filter(action="stage.assigned").order_by("-seq")[0]
    assert (record.actor_id, record.target_id) == (floor.planner.pk, str(floor.s2.pk))
    assert record.after == {"user_id": worker.pk, "username": "wanda"}
    assert new_event_names(since) == ["stage.assigned"]
    # the assignee can now move it (once S1 is done)
    finish(floor.s1, floor.operator)
    assert move(http, floor.s2, "start", worker).status_code == 200


def test_assigning_twice_answers_the_same_assignment_and_audits_once(http, floor):
    before = row_counts()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/assignments",
        json={"user_id": floor.operator.pk},
        headers=bearer(floor.planner),
    )
    assert response.status_code == 201
    assert response.json() == assignment_body(
        floor.s1.assignments.get(user=floor.operator)
    )
    assert row_counts() == before


def test_list_assignments_of_a_stage(http, floor, make_user):
    second = make_user("operator", username="wanda")
    services.stage_assign(stage_id=floor.s1.pk, user_id=second.pk, actor=floor.planner)
    response = http.get(
        f"/api/stages/{floor.s1.pk}/assignments", headers=bearer(floor.operator)
    )
    assert response.status_code == 200
    assert response.json() == [
        assignment_body(a)
        for a in floor.s1.assignments.select_related("user").order_by("assigned_at")
    ]
    assert [row["username"] for row in response.json()] == ["olga", "wanda"]


def test_planner_unassigns_and_it_is_audited(http, floor):
    response = http.delete(
        f"/api/stages/{floor.s1.pk}/assignments/{floor.operator.pk}",
        headers=bearer(floor.planner),
    )
    assert response.status_code == 204
    assert response.content == b""
    assert not floor.s1.assignments.exists()
    record = AuditRecord.objects.get(action="stage.unassigned")
    assert record.before == {"user_id": floor.operator.pk}
    # no longer assigned: no longer allowed to move it
    refused(http, floor.s1, "start", floor.operator, 403, "not_assigned")
    again = http.delete(
        f"/api/stages/{floor.s1.pk}/assignments/{floor.operator.pk}",
        headers=bearer(floor.planner),
    )
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({}, {"user_id": ["This field is required."]}),
        ({"user_id": "x"}, {"user_id": ["A valid integer is required."]}),
        ({"user_id": 987654}, {"user_id": ["Unknown user 987654."]}),
    ],
)
def test_assign_refuses_bad_input(http, floor, body, details):
    before = row_counts()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/assignments",
        json=body,
        headers=bearer(floor.planner),
    )
    assert response.status_code == 400
    assert response.json()["details"] == details
    assert row_counts() == before


def test_auditors_cannot_be_assigned(http, floor, make_user):
    auditor = make_user("auditor")
    before = row_counts()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/assignments",
        json={"user_id": auditor.pk},
        headers=bearer(floor.planner),
    )
    assert response.status_code == 400
    assert response.json()["details"] == {"user_id": ["Inactive, or an auditor."]}
    assert row_counts() == before


def test_a_done_stage_takes_no_assignment(http, floor, make_user):
    finish(floor.s1, floor.operator)
    before = row_counts()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/assignments",
        json={"user_id": make_user("operator").pk},
        headers=bearer(floor.planner),
    )
    assert response.status_code == 409
    assert row_counts()["assignments"] == before["assignments"]


def test_a_cancelled_work_orders_stage_takes_no_assignment(http, floor, make_user):
    services.work_order_cancel(
        work_order_id=floor.work_order.pk, reason="dup", actor=floor.planner
    )
    worker = make_user("operator")
    before = row_counts()
    response = http.post(
        f"/api/stages/{floor.s1.pk}/assignments",
        json={"user_id": worker.pk},
        headers=bearer(floor.planner),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "work_order_closed"
    assert row_counts() == before


def test_operators_cannot_assign_or_unassign(http, floor, make_user):
    before = row_counts()
    assign = http.post(
        f"/api/stages/{floor.s1.pk}/assignments",
        json={"user_id": make_user("operator").pk},
        headers=bearer(floor.operator),
    )
    unassign = http.delete(
        f"/api/stages/{floor.s1.pk}/assignments/{floor.operator.pk}",
        headers=bearer(floor.operator),
    )
    assert (assign.status_code, unassign.status_code) == (403, 403)
    assert row_counts() == before
