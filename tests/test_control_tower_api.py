"""Control-UI group II endpoints and the gate actions: contract payloads A and B
key by key, 404s, roles, refusals that change nothing, and pinned query counts.

The contract examples are rebuilt as real scenarios and read over a real socket
(``http``); the rest use DRF's in-process client.
"""

import pytest
from rest_framework.test import APIClient

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from exceptions import services as exception_services
from runbooks import services
from runbooks.models import Gate, GateStatus, Runbook, WorkOrder, WorkOrderStage
from tests.conftest import PASSWORD, bearer
from tests.conftest import api_as as api
from tests.factories_tower import (
    at,
    finish_through,
    make_gate,
    make_runbook,
    make_work_order,
    raise_exception,
    stage_of,
    start,
    wo_stage,
)

ENVELOPE_KEYS = {"success", "error", "code", "details", "request_id"}
SUMMARY_KEYS = {
    "id",
    "title",
    "status",
    "currentStage",
    "blockReason",
    "roles",
    "lastUpdate",
    "progress",
}


@pytest.fixture
def boss(make_user):
    return make_user("supervisor")


# --- the contract's examples, over a real socket ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_example_a_runbook_blocked_at_s5_by_a_locked_gate(http, make_user):
    """Payload A exactly as the contract shows it, plus ``progress``."""
    boss = make_user("supervisor")
    runbook = make_runbook("manufacturing", title="Manufacturing Execution")
    gate = make_gate(stage_of(runbook, "S5"), condition="Seal Integrity Check")
    work_order = make_work_order(runbook, boss)
    finish_through(work_order, "S4", boss)
    services.gate_set(
        gate_id=gate.pk, action="lock", reason="Seal Check Failed", actor=boss
    )
    Runbook.objects.update(updated_at=at("2026-01-15T08:00:00"))
    WorkOrder.objects.update(updated_at=at("2026-01-15T09:00:00"))
    WorkOrderStage.objects.update(updated_at=at("2026-01-15T10:00:00"))
    Gate.objects.update(changed_at=at("2026-01-15T10:30:00.250"))

    response = http.get("/api/control-tower/runbooks", headers=bearer(boss))

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": "manufacturing",
            "title": "Manufacturing Execution",
            "status": "Blocked",
            "currentStage": "S5 Module Assembly",
            "blockReason": "Gate Interlock: Seal Check Failed",
            "roles": ["Planner", "Operator"],
            "lastUpdate": "2026-01-15T10:30:00Z",
            "progress": 66,
        }
    ]


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_example_b_stage_on_hold_behind_a_locked_gate_with_ex_001(http, make_user):
    """Payload B exactly as the contract shows it (its id "mfg-02" is S5 here)."""
    boss = make_user("supervisor")
    runbook = make_runbook(stages=[("S4", "Busbar Welding"), ("S5", "Module Assembly")])
    gate = make_gate(stage_of(runbook, "S5"), condition="Seal Integrity Check")
    work_order = make_work_order(runbook, boss)
    finish_through(work_order, "S4", boss)
    s5 = start(work_order, "S5", boss)
    exception_services.stage_issue_raise(
        stage_id=s5.pk,
        type="quality_failure",
        severity="critical",
        description="Seal integrity below spec on 3 modules",
        actor=boss,
    )
    services.gate_set(gate_id=gate.pk, action="lock", reason="Seal leak", actor=boss)
    services.stage_hold(stage_id=s5.pk, reason="Seal leak", actor=boss)

    response = http.get("/api/runbooks/manufacturing/stages", headers=bearer(boss))

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": "mfg-01",
            "name": "Busbar Welding (S4)",
            "status": "Completed",
            "gate": None,
            "exception": None,
        },
        {
            "id": "mfg-02",
            "name": "Module Assembly (S5)",
            "status": "Hold",
            "gate": {
                "status": "Locked",
                "type": "Validation",
                "condition": "Seal Integrity Check",
            },
            "exception": {
                "id": "EX-001",
                "type": "Quality Failure",
                "severity": "Critical",
            },
        },
    ]


# --- list, detail, stages, exceptions of a runbook ---------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("build", "status"),
    [
        ("idle", "Idle"),
        ("healthy", "Healthy"),
        ("running", "Running"),
        ("degraded", "Degraded"),
        ("blocked", "Blocked"),
    ],
)
def test_every_status_enum_is_served_as_spelled(boss, build, status):
    runbook = make_runbook()
    if build != "idle":
        work_order = make_work_order(runbook, boss)
    if build == "running":
        start(work_order, "S1", boss)
    if build == "degraded":
        raise_exception(boss, runbook=runbook, severity="low")
    if build == "blocked":
        raise_exception(boss, runbook=runbook, type="safety", title="Smoke")
    body = api(boss).get("/api/control-tower/runbooks").json()
    assert [row["status"] for row in body] == [status]
    assert set(body[0]) == SUMMARY_KEYS
    assert body[0]["blockReason"] == (
        "Safety Incident: Smoke" if build == "blocked" else None
    )


@pytest.mark.django_db
def test_runbook_detail_is_the_summary_plus_context(boss):
    runbook = make_runbook(description="Cells to packs")
    started = make_work_order(runbook, boss, lot_no="A")
    start(started, "S1", boss)
    make_work_order(runbook, boss, lot_no="B")
    Runbook.objects.update(updated_at=at("2026-01-15T08:00:00"))
    WorkOrder.objects.update(updated_at=at("2026-01-15T08:00:00"))
    WorkOrderStage.objects.update(updated_at=at("2026-01-15T09:15:30"))

    response = api(boss).get("/api/runbooks/manufacturing")

    assert response.status_code == 200
    assert response.json() == {
        "id": "manufacturing",
        "title": "Manufacturing Execution",
        "status": "Running",
        "currentStage": "S1 Cell Inbound",
        "blockReason": None,
        "roles": ["Planner", "Operator"],
        "lastUpdate": "2026-01-15T09:15:30Z",
        "progress": 0,
        "kind": "Manufacturing",
        "description": "Cells to packs",
        "sequential": True,
        "stageCount": 6,
        "workOrders": {"planned": 1, "inProgress": 1, "completed": 0, "cancelled": 0},
        "custody": None,
        "warranty": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/runbooks/nope",
        "/api/runbooks/nope/",
        "/api/runbooks/nope/stages",
        "/api/runbooks/nope/exceptions",
    ],
)
def test_unknown_runbook_is_a_404_envelope(boss, path):
    make_runbook()
    response = api(boss).get(path)
    assert response.status_code == 404
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["code"] == "not_found"
    assert body["error"] == "There is no runbook 'nope'."


@pytest.mark.django_db
def test_trailing_slash_is_optional(boss):
    make_runbook()
    client = api(boss)
    for path in (
        "/api/control-tower/runbooks/",
        "/api/runbooks/manufacturing/",
        "/api/runbooks/manufacturing/stages/",
        "/api/runbooks/manufacturing/exceptions/",
    ):
        assert client.get(path).status_code == 200, path


@pytest.mark.django_db
def test_runbook_exceptions_are_its_unresolved_ones_most_severe_first(boss):
    runbook = make_runbook()
    other = make_runbook("dispatch", title="Dispatch", prefix="dsp")
    low = raise_exception(boss, runbook=runbook, severity="low", title="Label smudge")
    critical = raise_exception(
        boss,
        stage=stage_of(runbook, "S5"),
        type="quality_failure",
        severity="critical",
        title="Seal leak",
    )
    gone = raise_exception(boss, runbook=runbook, severity="high", title="Fixed")
    exception_services.exception_resolve(
        exception_id=gone.pk, resolution_note="done", actor=boss
    )
    acked = raise_exception(boss, runbook=runbook, severity="medium", title="Acked")
    exception_services.exception_acknowledge(exception_id=acked.pk, actor=boss)
    raise_exception(boss, runbook=other, title="Elsewhere")

    body = api(boss).get("/api/runbooks/manufacturing/exceptions").json()

    assert [row["id"] for row in body] == [critical.code, acked.code, low.code]
    assert body[0] == {
        "id": critical.code,
        "type": "Quality Failure",
        "severity": "Critical",
        "status": "Open",
        "title": "Seal leak",
        "blocks": "S5 Module Assembly",
        "runbookId": "manufacturing",
        "raisedAt": critical.raised_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "isBlocking": True,
    }
    assert body[1]["status"] == "Acknowledged"
    assert body[2]["blocks"] == "Manufacturing Execution"


# --- gates ------------------------------------------------------------------------


@pytest.mark.django_db
def test_supervisor_locks_a_gate_and_gets_the_contract_gate_shape(boss):
    runbook = make_runbook()
    gate = make_gate(stage_of(runbook, "S5"), condition="Seal Integrity Check")
    response = api(boss).post(
        f"/api/gates/{gate.pk}/lock", {"reason": "Seal Check Failed"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": gate.pk,
        "status": "Locked",
        "type": "Validation",
        "condition": "Seal Integrity Check",
        "reason": "Seal Check Failed",
    }
    record = AuditRecord.objects.get(action="gate.locked")
    assert (record.actor_id, record.after) == (
        boss.pk,
        {"status": "locked", "reason": "Seal Check Failed"},
    )
    # unlocking is a gate override: signed with the re-entered password
    unlocked = api(boss).post(
        f"/api/gates/{gate.pk}/open/", {"password": PASSWORD}, format="json"
    )
    assert unlocked.json()["status"] == "Open"
    assert unlocked.json()["reason"] == ""
    closed = api(boss).post(f"/api/gates/{gate.pk}/close", {}, format="json")
    assert closed.json()["status"] == "Closed"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "planner", "auditor"])
def test_only_supervisors_set_gates(make_user, role):
    gate = make_gate(stage_of(make_runbook(), "S5"))
    before_audit = AuditRecord.objects.count()
    response = api(make_user(role)).post(
        f"/api/gates/{gate.pk}/lock", {"reason": "x"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    gate.refresh_from_db()
    assert gate.status == GateStatus.OPEN
    assert AuditRecord.objects.count() == before_audit


@pytest.mark.django_db
def test_lock_without_reason_is_400_and_changes_nothing(boss):
    gate = make_gate(stage_of(make_runbook(), "S5"))
    before = (AuditRecord.objects.count(), OutboxEvent.objects.count())
    response = api(boss).post(
        f"/api/gates/{gate.pk}/lock", {"reason": "  "}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"] == {"reason": ["Required to lock."]}
    gate.refresh_from_db()
    assert (gate.status, gate.reason, gate.changed_at) == (GateStatus.OPEN, "", None)
    assert (AuditRecord.objects.count(), OutboxEvent.objects.count()) == before


@pytest.mark.django_db
def test_gate_already_in_that_state_is_409_and_unknown_gate_404(boss):
    gate = make_gate(stage_of(make_runbook(), "S5"))
    again = api(boss).post(f"/api/gates/{gate.pk}/open")
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"
    assert api(boss).post("/api/gates/987654/close").status_code == 404


# --- query counts (in-process, authenticated without a token lookup) ----------------


def _plant(boss, runbooks: int, orders_each: int, first: int = 0) -> None:
    for n in range(first, first + runbooks):
        runbook = make_runbook(f"rb-{n}", title=f"Runbook {n}", prefix=f"r{n}")
        make_gate(stage_of(runbook, "S2"), status=GateStatus.CLOSED)
        for lot in range(orders_each):
            start(make_work_order(runbook, boss, lot_no=f"{n}-{lot}"), "S1", boss)
        raise_exception(boss, runbook=runbook, stage=stage_of(runbook, "S1"))


@pytest.mark.django_db
def test_endpoint_query_counts_do_not_grow_with_the_plant(
    boss, django_assert_num_queries
):
    client = APIClient()
    client.force_authenticate(boss)
    paths = {
        "/api/control-tower/runbooks": 7,
        "/api/runbooks/rb-0": 10,  # + custody and warranty of its lots
        "/api/runbooks/rb-0/stages": 6,
        "/api/runbooks/rb-0/exceptions": 2,
    }
    _plant(boss, runbooks=1, orders_each=1)
    for path, count in paths.items():
        with django_assert_num_queries(count):
            assert client.get(path).status_code == 200
    _plant(boss, runbooks=3, orders_each=4, first=1)
    for n in range(3):
        raise_exception(boss, runbook=Runbook.objects.get(slug="rb-0"), title=f"{n}")
    start(make_work_order(Runbook.objects.get(slug="rb-0"), boss), "S1", boss)
    for path, count in paths.items():
        with django_assert_num_queries(count):
            assert client.get(path).status_code == 200
    assert len(client.get("/api/control-tower/runbooks").json()) == 4


@pytest.mark.django_db
def test_stage_detail_reflects_held_and_running_work(boss):
    runbook = make_runbook()
    a = make_work_order(runbook, boss, lot_no="A")
    start(a, "S1", boss)
    b = make_work_order(runbook, boss, lot_no="B")
    services.stage_hold(stage_id=wo_stage(b, "S1").pk, reason="x", actor=boss)
    body = api(boss).get("/api/runbooks/manufacturing/stages").json()
    assert [row["status"] for row in body] == [
        "Hold",
        "Pending",
        "Pending",
        "Pending",
        "Pending",
        "Pending",
    ]
    assert [row["id"] for row in body] == [f"mfg-0{n}" for n in range(1, 7)]
