"""Production execution rules, at the service layer.

Every refusal is checked for its exact error and code, and for having changed
nothing: no row, no audit record, no outbox event (``refused``).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.db.models import Max

from bpmos.dashboards.live import AttentionBatch
from bpmos.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from bpmos.events.models import OutboxEvent
from bpmos.readcache import ReadModel
from elog.models import AuditRecord
from exceptions import services as exception_services
from exceptions.models import ExceptionStatus, PlantException
from runbooks import services
from runbooks.models import (
    Gate,
    Runbook,
    Stage,
    StageAssignment,
    StageStatus,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------


def snapshot() -> dict:
    """Everything a refused call must leave as it was."""
    return {
        "work_orders": list(
            WorkOrder.objects.order_by("pk").values_list(
                "pk", "status", "started_at", "completed_at"
            )
        ),
        "stages": list(
            WorkOrderStage.objects.order_by("pk").values_list(
                "pk", "status", "actual_start", "actual_end", "hold_reason"
            )
        ),
        "gates": list(
            Gate.objects.order_by("pk").values_list(
                "pk", "status", "reason", "changed_at"
            )
        ),
        "assignments": list(
            StageAssignment.objects.order_by("pk").values_list("pk", flat=True)
        ),
        "exceptions": list(
            PlantException.objects.order_by("pk").values_list(
                "pk", "status", "escalation_level", "ack_due_at", "resolution_note"
            )
        ),
        "audit": AuditRecord.objects.count(),
        "events": OutboxEvent.objects.count(),
    }


@contextmanager
def refused(error: type[Exception], code: str):
    """Expect ``error`` with ``code`` from the block, and no change at all."""
    before = snapshot()
    with pytest.raises(error) as info:
        yield info
    assert info.value.code == code
    assert snapshot() == before


@contextmanager
def recorded():
    """The audit actions and event names written inside the block, in order."""
    seq = AuditRecord.objects.aggregate(m=Max("seq"))["m"] or 0
    event_id = OutboxEvent.objects.aggregate(m=Max("pk"))["m"] or 0
    got = SimpleNamespace(actions=None, events=None)
    yield got
    got.actions = list(
        AuditRecord.objects.filter(seq__gt=seq)
        .order_by("seq")
        .values_list("action", flat=True)
    )
    got.events = list(
        OutboxEvent.objects.filter(pk__gt=event_id)
        .order_by("pk")
        .values_list("name", flat=True)
    )


def make_runbook(slug: str, minutes: list[int], *, sequential=True, default=False):
    runbook = Runbook.objects.create(
        slug=slug,
        title=slug.title(),
        kind="manufacturing",
        sequential=sequential,
        is_default=default,
    )
    names = ["Cell Inbound", "Module Assembly", "End-of-Line Test"]
    for position, standard in enumerate(minutes, start=1):
        stage = Stage.objects.create(
            runbook=runbook,
            slug=f"{slug}-{position:02d}",
            code=f"S{position}",
            name=names[position - 1],
            position=position,
            standard_minutes=standard,
        )
        Gate.objects.create(stage=stage, condition=f"{names[position - 1]} check")
    return runbook


@pytest.fixture
def plant(make_user):
    """A sequential default runbook of 3 stages, a free-order one of 2, users."""
    make_runbook("assembly", [30, 60, 90], default=True)
    make_runbook("audit", [30, 30], sequential=False)
    return SimpleNamespace(
        operator=make_user("operator"),
        other_operator=make_user("operator"),
        planner=make_user("planner"),
        supervisor=make_user("supervisor"),
        plant_head=make_user("plant-head"),
        admin=make_user("admin"),
        auditor=make_user("auditor"),
    )


def create_order(plant, runbook_slug: str | None = None, *, assign=True):
    """A work order of 10 packs over T0..T0+3h; the operator on every stage."""
    work_order = services.work_order_create(
        product_code="PACK-LFP-48V-100AH",
        lot_no="LOT-LFP48-0401",
        qty=10,
        planned_start=T0,
        planned_end=T0 + timedelta(hours=3),
        runbook_slug=runbook_slug,
        actor=plant.planner,
    )
    stages = list(work_order.stages.order_by("position"))
    if assign:
        for stage in stages:
            services.stage_assign(
                stage_id=stage.pk, user_id=plant.operator.pk, actor=plant.planner
            )
    return work_order, stages


def gate_of(stage: WorkOrderStage) -> Gate:
    return Gate.objects.get(stage_id=stage.stage_id)


def status(stage: WorkOrderStage) -> str:
    return WorkOrderStage.objects.values_list("status", flat=True).get(pk=stage.pk)


def start_and_finish(stage, actor):
    services.stage_start(stage_id=stage.pk, actor=actor)
    services.stage_finish(stage_id=stage.pk, actor=actor)


# --- work orders ---------------------------------------------------------------------


def test_create_builds_stages_from_the_template(plant):
    with recorded() as got:
        work_order, stages = create_order(plant, "assembly", assign=False)
    assert work_order.runbook.slug == "assembly"
    assert work_order.status == WorkOrderStatus.PLANNED
    assert work_order.created_by == plant.planner
    # The 3 h window is split 30 : 60 : 90 like the stages' standard minutes.
    assert [
        (s.position, s.stage_name, s.status, s.planned_start, s.planned_end)
        for s in stages
    ] == [
        (1, "Cell Inbound (S1)", "planned", T0, T0 + timedelta(minutes=30)),
        (
            2,
            "Module Assembly (S2)",
            "planned",
            T0 + timedelta(minutes=30),
            T0 + timedelta(minutes=90),
        ),
        (
            3,
            "End-of-Line Test (S3)",
            "planned",
            T0 + timedelta(minutes=90),
            T0 + timedelta(hours=3),
        ),
    ]
    assert got.actions == ["workorder.created"]
    assert got.events == ["workorder.created"]


def test_create_without_runbook_gets_the_default(plant):
    work_order, stages = create_order(plant, None, assign=False)
    assert work_order.runbook.slug == "assembly"
    assert len(stages) == 3


def test_create_without_runbook_and_no_default_is_refused(plant):
    Runbook.objects.filter(slug="assembly").update(is_default=False)
    with refused(InvalidInput, "validation_error") as info:
        create_order(plant, None)
    assert info.value.details == {
        "runbook": ["Name a runbook; no default is configured."]
    }


def test_create_with_unknown_runbook_is_refused(plant):
    with refused(InvalidInput, "validation_error") as info:
        create_order(plant, "nope")
    assert info.value.details == {"runbook": ["Unknown runbook 'nope'."]}


@pytest.mark.parametrize(
    ("qty", "hours", "details"),
    [
        (0, 3, {"qty": ["Must be greater than 0."]}),
        (-4, 3, {"qty": ["Must be greater than 0."]}),
        (10, 0, {"planned_end": ["Must be after planned_start."]}),
        (10, -1, {"planned_end": ["Must be after planned_start."]}),
        (
            0,
            -1,
            {
                "qty": ["Must be greater than 0."],
                "planned_end": ["Must be after planned_start."],
            },
        ),
    ],
)
def test_create_refuses_invalid_input(plant, qty, hours, details):
    with refused(InvalidInput, "validation_error") as info:
        services.work_order_create(
            product_code="PACK-LFP-48V-100AH",
            lot_no="LOT-1",
            qty=qty,
            planned_start=T0,
            planned_end=T0 + timedelta(hours=hours),
            actor=plant.planner,
        )
    assert info.value.details == details


@pytest.mark.parametrize("reason", ["", "   "])
def test_cancel_requires_a_reason(plant, reason):
    work_order, _ = create_order(plant)
    with refused(InvalidInput, "validation_error") as info:
        services.work_order_cancel(
            work_order_id=work_order.pk, reason=reason, actor=plant.planner
        )
    assert info.value.details == {"reason": ["Required."]}


def test_cancel_is_audited_and_published(plant):
    work_order, _ = create_order(plant)
    with recorded() as got:
        services.work_order_cancel(
            work_order_id=work_order.pk, reason="Order withdrawn", actor=plant.planner
        )
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.CANCELLED
    assert got.actions == ["workorder.cancelled"]
    assert got.events == ["workorder.cancelled"]


def test_cancel_of_a_completed_work_order_is_refused(plant):
    work_order, stages = create_order(plant)
    for stage in stages:
        start_and_finish(stage, plant.operator)
    with refused(IllegalTransition, "illegal_transition") as info:
        services.work_order_cancel(
            work_order_id=work_order.pk, reason="Too late", actor=plant.planner
        )
    assert info.value.details == {"from": "completed", "to": "cancelled"}


def test_unknown_work_order_and_stage_are_not_found(plant):
    with refused(NotFound, "not_found"):
        services.work_order_cancel(work_order_id=999, reason="x", actor=plant.planner)
    with refused(NotFound, "not_found"):
        services.stage_start(stage_id=999, actor=plant.supervisor)


# --- stage order ---------------------------------------------------------------------


def test_start_refused_until_the_earlier_stages_are_done(plant):
    _, (first, second, third) = create_order(plant)
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    with refused(IllegalTransition, "stage_out_of_order") as info:
        services.stage_start(stage_id=second.pk, actor=plant.operator)
    assert info.value.details == {
        "blocking_stage_id": first.pk,
        "blocking_stage": "Cell Inbound (S1)",
    }
    assert str(info.value) == (
        "Cell Inbound (S1) must be done before Module Assembly (S2) starts."
    )
    services.stage_finish(stage_id=first.pk, actor=plant.operator)
    with refused(IllegalTransition, "stage_out_of_order") as info:
        services.stage_start(stage_id=third.pk, actor=plant.operator)
    assert info.value.details["blocking_stage_id"] == second.pk
    services.stage_start(stage_id=second.pk, actor=plant.operator)
    assert status(second) == StageStatus.IN_PROGRESS


def test_supervisor_cannot_skip_the_order_either(plant):
    _, (_first, second, _third) = create_order(plant)
    with refused(IllegalTransition, "stage_out_of_order"):
        services.stage_start(stage_id=second.pk, actor=plant.supervisor)


def test_stages_start_in_any_order_when_the_runbook_is_not_sequential(plant):
    work_order, (first, second) = create_order(plant, "audit")
    start_and_finish(second, plant.operator)
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    assert [status(first), status(second)] == ["in_progress", "done"]
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.IN_PROGRESS


def test_first_start_puts_the_work_order_in_progress(plant):
    work_order, (first, second, _third) = create_order(plant)
    with recorded() as got:
        stage = services.stage_start(stage_id=first.pk, actor=plant.operator)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.IN_PROGRESS
    assert work_order.started_at == stage.actual_start
    assert got.actions == ["stage.started", "workorder.started"]
    assert got.events == ["stage.started", "workorder.started"]
    services.stage_finish(stage_id=first.pk, actor=plant.operator)
    with recorded() as got:
        services.stage_start(stage_id=second.pk, actor=plant.operator)
    assert got.actions == ["stage.started"]
    assert got.events == ["stage.started"]


def test_stage_started_event_payload(plant):
    work_order, (first, *_) = create_order(plant)
    stage = services.stage_start(stage_id=first.pk, actor=plant.operator)
    event = OutboxEvent.objects.filter(name="stage.started").get()
    assert event.topics == ["runbooks"]
    assert event.data == {
        "id": first.pk,
        "workOrderId": work_order.pk,
        "runbookId": "assembly",
        "stageId": "assembly-01",
        "stageName": "Cell Inbound (S1)",
        "status": "in_progress",
        "holdReason": "",
        "actualStart": stage.actual_start.isoformat().replace("+00:00", "Z"),
        "actualEnd": None,
    }


def test_finish_refused_unless_in_progress(plant):
    _, (first, *_) = create_order(plant)
    with refused(IllegalTransition, "illegal_transition") as info:
        services.stage_finish(stage_id=first.pk, actor=plant.operator)
    assert info.value.details == {"from": "planned", "to": "done"}
    start_and_finish(first, plant.operator)
    for move in (services.stage_start, services.stage_finish):
        with refused(IllegalTransition, "illegal_transition") as info:
            move(stage_id=first.pk, actor=plant.operator)
        assert info.value.details["from"] == "done"


# --- gates ---------------------------------------------------------------------------


def test_finish_refused_while_the_gate_is_closed_and_allowed_once_open(plant):
    _, (first, *_) = create_order(plant)
    gate = gate_of(first)
    services.gate_set(
        gate_id=gate.pk, action="close", actor=plant.supervisor, password=PASSWORD
    )
    # A closed gate (condition not met yet) does not stop the work starting.
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    with refused(IllegalTransition, "gate_not_open") as info:
        services.stage_finish(stage_id=first.pk, actor=plant.operator)
    assert str(info.value) == (
        "Cell Inbound (S1) cannot finish: gate 'Cell Inbound check' is closed."
    )
    assert info.value.details == {
        "gates": [
            {
                "id": gate.pk,
                "status": "Closed",
                "condition": "Cell Inbound check",
                "reason": "",
            }
        ]
    }
    services.gate_set(
        gate_id=gate.pk, action="open", actor=plant.supervisor, password=PASSWORD
    )
    services.stage_finish(stage_id=first.pk, actor=plant.operator)
    assert status(first) == StageStatus.DONE


def test_finish_refused_while_the_gate_is_locked(plant):
    _, (first, *_) = create_order(plant)
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    gate = gate_of(first)
    services.gate_set(
        gate_id=gate.pk, action="lock", reason="Seal Check Failed", actor=plant.admin
    )
    with refused(IllegalTransition, "gate_not_open") as info:
        services.stage_finish(stage_id=first.pk, actor=plant.supervisor)
    assert str(info.value) == (
        "Cell Inbound (S1) cannot finish: gate 'Cell Inbound check' is locked "
        "(Seal Check Failed)."
    )


def test_start_refused_behind_a_locked_gate(plant):
    _, (first, *_) = create_order(plant)
    gate = gate_of(first)
    services.gate_set(
        gate_id=gate.pk,
        action="lock",
        reason="Seal Check Failed",
        actor=plant.supervisor,
    )
    with refused(IllegalTransition, "gate_locked") as info:
        services.stage_start(stage_id=first.pk, actor=plant.supervisor)
    assert str(info.value) == (
        "Cell Inbound (S1) is behind a locked gate: Seal Check Failed."
    )
    services.gate_set(
        gate_id=gate.pk, action="open", actor=plant.supervisor, password=PASSWORD
    )
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    assert status(first) == StageStatus.IN_PROGRESS


def test_gate_changes_are_audited_and_published(plant):
    gate = Gate.objects.get(stage__slug="assembly-02")
    with recorded() as got:
        services.gate_set(
            gate_id=gate.pk, action="close", actor=plant.supervisor, password=PASSWORD
        )
        services.gate_set(
            gate_id=gate.pk, action="lock", reason=" Leak ", actor=plant.supervisor
        )
        services.gate_set(
            gate_id=gate.pk, action="open", actor=plant.supervisor, password=PASSWORD
        )
        services.gate_set(
            gate_id=gate.pk, action="close", actor=plant.supervisor, password=PASSWORD
        )
        services.gate_set(
            gate_id=gate.pk, action="open", actor=plant.supervisor, password=PASSWORD
        )
    # the unlock is a gate override: its signature is audited just before it
    assert got.actions == [
        "gate.closed",
        "gate.locked",
        "signature.signed",
        "gate.unlocked",
        "gate.closed",
        "gate.opened",
    ]
    assert got.events == ["gate.changed"] * 5
    locked = AuditRecord.objects.get(action="gate.locked")
    assert locked.before == {"status": "closed", "reason": ""}
    assert locked.after == {"status": "locked", "reason": "Leak"}
    gate.refresh_from_db()
    assert (gate.status, gate.reason, gate.changed_by) == ("open", "", plant.supervisor)


@pytest.mark.parametrize("reason", ["", "  "])
def test_locking_a_gate_needs_a_reason(plant, reason):
    gate = Gate.objects.get(stage__slug="assembly-01")
    with refused(InvalidInput, "validation_error") as info:
        services.gate_set(
            gate_id=gate.pk, action="lock", reason=reason, actor=plant.supervisor
        )
    assert info.value.details == {"reason": ["Required to lock."]}


def test_setting_a_gate_to_its_own_state_is_refused(plant):
    gate = Gate.objects.get(stage__slug="assembly-01")
    with refused(IllegalTransition, "illegal_transition") as info:
        services.gate_set(
            gate_id=gate.pk, action="open", actor=plant.supervisor, password=PASSWORD
        )
    assert info.value.details == {"from": "open", "to": "open"}


def test_unknown_gate_action_is_refused(plant):
    gate = Gate.objects.get(stage__slug="assembly-01")
    with refused(InvalidInput, "validation_error") as info:
        services.gate_set(gate_id=gate.pk, action="smash", actor=plant.supervisor)
    assert info.value.details == {"action": ["One of ['close', 'lock', 'open']."]}


# --- hold and resume -----------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_hold_requires_a_reason(plant, reason):
    _, (first, *_) = create_order(plant)
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    with refused(InvalidInput, "validation_error") as info:
        services.stage_hold(stage_id=first.pk, reason=reason, actor=plant.operator)
    assert info.value.details == {"reason": ["Required."]}


def test_resume_returns_a_started_stage_to_in_progress(plant):
    _, (first, *_) = create_order(plant)
    started = services.stage_start(stage_id=first.pk, actor=plant.operator)
    with recorded() as got:
        held = services.stage_hold(
            stage_id=first.pk, reason="  Cell jam  ", actor=plant.operator
        )
        assert (held.status, held.hold_reason) == ("hold", "Cell jam")
        resumed = services.stage_resume(stage_id=first.pk, actor=plant.operator)
    assert (resumed.status, resumed.hold_reason) == ("in_progress", "")
    assert resumed.actual_start == started.actual_start
    assert got.actions == ["stage.held", "stage.resumed"]
    assert got.events == ["stage.held", "stage.resumed"]


def test_resume_returns_an_unstarted_stage_to_planned(plant):
    work_order, (first, *_) = create_order(plant)
    services.stage_hold(stage_id=first.pk, reason="No CoA", actor=plant.operator)
    resumed = services.stage_resume(stage_id=first.pk, actor=plant.operator)
    assert (resumed.status, resumed.actual_start) == ("planned", None)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.PLANNED


def test_resume_refused_unless_on_hold(plant):
    _, (first, *_) = create_order(plant)
    with refused(IllegalTransition, "illegal_transition") as info:
        services.stage_resume(stage_id=first.pk, actor=plant.operator)
    assert info.value.details == {"from": "planned", "to": "planned"}
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    with refused(IllegalTransition, "illegal_transition") as info:
        services.stage_resume(stage_id=first.pk, actor=plant.operator)
    assert info.value.details == {"from": "in_progress", "to": "in_progress"}


def test_held_stage_is_resumed_not_started_or_finished(plant):
    _, (first, *_) = create_order(plant)
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    services.stage_hold(stage_id=first.pk, reason="Cell jam", actor=plant.operator)
    with refused(IllegalTransition, "illegal_transition") as info:
        services.stage_start(stage_id=first.pk, actor=plant.operator)
    assert str(info.value) == (
        "Cell Inbound (S1) is on hold; resume it instead of starting it."
    )
    with refused(IllegalTransition, "illegal_transition") as info:
        services.stage_finish(stage_id=first.pk, actor=plant.operator)
    assert info.value.details == {"from": "hold", "to": "done"}


def test_resume_to_in_progress_refused_behind_a_locked_gate(plant):
    _, (first, second, _third) = create_order(plant)
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    services.stage_hold(stage_id=first.pk, reason="Seal leak", actor=plant.operator)
    services.stage_hold(stage_id=second.pk, reason="Waiting", actor=plant.operator)
    for stage in (first, second):
        services.gate_set(
            gate_id=gate_of(stage).pk,
            action="lock",
            reason="Seal Check Failed",
            actor=plant.supervisor,
        )
    with refused(IllegalTransition, "gate_locked"):
        services.stage_resume(stage_id=first.pk, actor=plant.supervisor)
    # Back to planned is not work: allowed; starting it is what the gate stops.
    assert services.stage_resume(stage_id=second.pk, actor=plant.operator).status == (
        "planned"
    )


def test_a_done_stage_cannot_be_held(plant):
    _, (first, *_) = create_order(plant)
    start_and_finish(first, plant.operator)
    with refused(IllegalTransition, "illegal_transition") as info:
        services.stage_hold(stage_id=first.pk, reason="x", actor=plant.operator)
    assert info.value.details == {"from": "done", "to": "hold"}


# --- completion and closed work orders -----------------------------------------------


def test_work_order_completes_when_its_last_stage_is_done(plant):
    work_order, (first, second, third) = create_order(plant)
    start_and_finish(first, plant.operator)
    start_and_finish(second, plant.operator)
    services.stage_start(stage_id=third.pk, actor=plant.operator)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.IN_PROGRESS
    with recorded() as got:
        last = services.stage_finish(stage_id=third.pk, actor=plant.operator)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.COMPLETED
    assert work_order.completed_at == last.actual_end
    assert got.actions == ["stage.completed", "workorder.completed"]
    assert got.events == ["stage.completed", "workorder.completed"]


def test_free_order_work_order_completes_when_all_stages_are_done(plant):
    work_order, (first, second) = create_order(plant, "audit")
    start_and_finish(second, plant.operator)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.IN_PROGRESS
    start_and_finish(first, plant.operator)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrderStatus.COMPLETED


@pytest.mark.parametrize("move", ["start", "finish", "hold", "resume"])
def test_stages_of_a_cancelled_work_order_do_not_move(plant, move):
    work_order, (first, second, _third) = create_order(plant)
    services.stage_start(stage_id=first.pk, actor=plant.operator)
    services.stage_hold(stage_id=second.pk, reason="Waiting", actor=plant.operator)
    services.work_order_cancel(
        work_order_id=work_order.pk, reason="Withdrawn", actor=plant.planner
    )
    call = {
        "start": lambda: services.stage_start(stage_id=first.pk, actor=plant.operator),
        "finish": lambda: services.stage_finish(
            stage_id=first.pk, actor=plant.operator
        ),
        "hold": lambda: services.stage_hold(
            stage_id=first.pk, reason="x", actor=plant.operator
        ),
        "resume": lambda: services.stage_resume(
            stage_id=second.pk, actor=plant.operator
        ),
    }[move]
    with refused(IllegalTransition, "work_order_closed") as info:
        call()
    assert str(info.value) == (
        f"Work order {work_order.pk} is Cancelled; its stages no longer move."
    )


# --- who may move a stage ------------------------------------------------------------


MOVES = ["start", "finish", "hold", "resume"]


def prepare(plant, move: str) -> WorkOrderStage:
    """A stage in the state where ``move`` is legal for whoever may move it."""
    _, (first, *_) = create_order(plant)
    if move in {"finish", "hold", "resume"}:
        services.stage_start(stage_id=first.pk, actor=plant.operator)
    if move == "resume":
        services.stage_hold(stage_id=first.pk, reason="Jam", actor=plant.operator)
    return first


def do(move: str, stage: WorkOrderStage, actor) -> WorkOrderStage:
    if move == "hold":
        return services.stage_hold(stage_id=stage.pk, reason="Jam", actor=actor)
    return getattr(services, f"stage_{move}")(stage_id=stage.pk, actor=actor)


@pytest.mark.parametrize("move", MOVES)
@pytest.mark.parametrize("who", ["other_operator", "planner", "auditor"])
def test_only_the_assigned_user_or_an_overseer_moves_a_stage(plant, move, who):
    stage = prepare(plant, move)
    with refused(Forbidden, "not_assigned") as info:
        do(move, stage, getattr(plant, who))
    assert str(info.value) == (
        "Only an operator assigned to this stage, or a supervisor, may move it."
    )


@pytest.mark.parametrize("move", MOVES)
@pytest.mark.parametrize("who", ["operator", "supervisor", "plant_head", "admin"])
def test_assigned_operator_and_overseers_move_a_stage(plant, move, who):
    stage = prepare(plant, move)
    expected = {
        "start": "in_progress",
        "finish": "done",
        "hold": "hold",
        "resume": "in_progress",
    }
    assert do(move, stage, getattr(plant, who)).status == expected[move]


def test_assignment_is_to_one_stage_only(plant):
    _, (first, second, _third) = create_order(plant, assign=False)
    services.stage_assign(
        stage_id=first.pk, user_id=plant.operator.pk, actor=plant.planner
    )
    start_and_finish(first, plant.operator)
    with refused(Forbidden, "not_assigned"):
        services.stage_start(stage_id=second.pk, actor=plant.operator)


def test_assigning_twice_records_once(plant):
    _, (first, *_) = create_order(plant, assign=False)
    with recorded() as got:
        one = services.stage_assign(
            stage_id=first.pk, user_id=plant.operator.pk, actor=plant.planner
        )
        two = services.stage_assign(
            stage_id=first.pk, user_id=plant.operator.pk, actor=plant.supervisor
        )
    assert one.pk == two.pk
    assert two.assigned_by == plant.planner
    assert got.actions == ["stage.assigned"]
    assert got.events == ["stage.assigned"]


@pytest.mark.parametrize("who", ["auditor", "inactive"])
def test_auditors_and_inactive_users_take_no_assignment(plant, make_user, who):
    _, (first, *_) = create_order(plant, assign=False)
    user = plant.auditor if who == "auditor" else make_user("operator", is_active=False)
    with refused(InvalidInput, "validation_error") as info:
        services.stage_assign(stage_id=first.pk, user_id=user.pk, actor=plant.planner)
    assert info.value.details == {"user_id": ["Inactive, or an auditor."]}


def test_done_stage_takes_no_assignment(plant):
    _, (first, *_) = create_order(plant)
    start_and_finish(first, plant.operator)
    with refused(IllegalTransition, "illegal_transition"):
        services.stage_assign(
            stage_id=first.pk, user_id=plant.other_operator.pk, actor=plant.planner
        )


def test_unassigned_operator_loses_the_stage(plant):
    _, (first, *_) = create_order(plant)
    with recorded() as got:
        services.stage_unassign(
            stage_id=first.pk, user_id=plant.operator.pk, actor=plant.planner
        )
    assert got.actions == ["stage.unassigned"]
    with refused(Forbidden, "not_assigned"):
        services.stage_start(stage_id=first.pk, actor=plant.operator)
    with refused(NotFound, "not_found"):
        services.stage_unassign(
            stage_id=first.pk, user_id=plant.operator.pk, actor=plant.planner
        )


# --- exceptions ----------------------------------------------------------------------


def raise_issue(plant, stage, **kwargs) -> PlantException:
    return exception_services.stage_issue_raise(
        stage_id=stage.pk,
        type=kwargs.pop("type", "quality_failure"),
        description=kwargs.pop("description", "Seal leak on 3 of 8 housings"),
        actor=plant.operator,
        **kwargs,
    )


def raised_at(exc: PlantException) -> datetime:
    return datetime.fromisoformat(exc.escalation_log[0]["at"])


def test_a_stage_issue_becomes_an_exception(plant):
    work_order, (first, *_) = create_order(plant)
    with recorded() as got:
        exc = raise_issue(plant, first)
    assert (exc.type, exc.severity, exc.status, exc.source, exc.is_blocking) == (
        "quality_failure",
        "high",  # the default severity of a quality failure
        "open",
        "stage_issue",
        False,
    )
    assert exc.title == "Seal leak on 3 of 8 housings"  # the operator's first line
    assert (exc.work_order_stage, exc.work_order, exc.stage.slug, exc.runbook.slug) == (
        first,
        work_order,
        "assembly-01",
        "assembly",
    )
    assert exc.escalation_level == 0
    assert exc.escalation_log == [
        {"level": 0, "role": "operator", "at": raised_at(exc).isoformat()}
    ]
    assert exc.ack_due_at == raised_at(exc) + timedelta(minutes=15)
    assert got.actions == ["exception.raised"]
    assert got.events == ["exception.raised"]


@pytest.mark.parametrize(
    ("type", "severity", "blocking"),
    [
        ("safety", "high", True),
        ("gate_interlock", "high", True),
        ("material_shortage", "medium", False),
        ("other", "medium", False),
    ],
)
def test_issue_defaults_by_type(plant, type, severity, blocking):
    _, (first, *_) = create_order(plant)
    exc = raise_issue(plant, first, type=type)
    assert (exc.severity, exc.is_blocking) == (severity, blocking)


def test_a_critical_issue_blocks(plant):
    _, (first, *_) = create_order(plant)
    exc = raise_issue(plant, first, type="process_deviation", severity="critical")
    assert exc.is_blocking is True
    assert exc.ack_due_at == raised_at(exc) + timedelta(minutes=5)


def test_unknown_issue_type_or_severity_or_blank_description_is_refused(plant):
    _, (first, *_) = create_order(plant)
    with refused(InvalidInput, "validation_error") as info:
        raise_issue(plant, first, type="gremlins")
    assert list(info.value.details) == ["type"]
    with refused(InvalidInput, "validation_error") as info:
        raise_issue(plant, first, severity="apocalyptic")
    assert list(info.value.details) == ["severity"]
    with refused(InvalidInput, "validation_error") as info:
        raise_issue(plant, first, description="   ")
    assert info.value.details == {"description": ["This field may not be blank."]}


def test_unacknowledged_exception_escalates_operator_supervisor_plant_head(plant):
    _, (first, *_) = create_order(plant)
    exc = raise_issue(plant, first)  # high: 15 minutes per level
    t0 = raised_at(exc)
    escalate = exception_services.exceptions_escalate_overdue
    with recorded() as got:
        assert escalate(now=t0 + timedelta(minutes=14, seconds=59)) == 0
        assert escalate(now=t0 + timedelta(minutes=15)) == 1
        assert escalate(now=t0 + timedelta(minutes=15)) == 0  # an overlapping run
        assert escalate(now=t0 + timedelta(minutes=29)) == 0
        assert escalate(now=t0 + timedelta(minutes=30)) == 1
        # The plant head is the top: no further steps, however late.
        assert escalate(now=t0 + timedelta(minutes=45)) == 0
        assert escalate(now=t0 + timedelta(days=2)) == 0
    exc.refresh_from_db()
    assert exc.escalation_level == 2
    assert exc.responsible_role == "plant-head"
    assert exc.escalation_log == [
        {"level": 0, "role": "operator", "at": t0.isoformat()},
        {
            "level": 1,
            "role": "supervisor",
            "at": (t0 + timedelta(minutes=15)).isoformat(),
        },
        {
            "level": 2,
            "role": "plant-head",
            "at": (t0 + timedelta(minutes=30)).isoformat(),
        },
    ]
    assert exc.ack_due_at == t0 + timedelta(minutes=45)
    assert got.actions == ["exception.escalated", "exception.escalated"]
    assert got.events == ["exception.escalated", "exception.escalated"]
    last = OutboxEvent.objects.filter(name="exception.escalated").last()
    assert (last.data["responsibleRole"], last.data["escalationLevel"]) == (
        "plant-head",
        2,
    )


@pytest.mark.parametrize("then", ["acknowledge", "resolve"])
def test_acknowledged_or_resolved_exceptions_do_not_escalate(plant, then):
    _, (first, *_) = create_order(plant)
    exc = raise_issue(plant, first)
    if then == "acknowledge":
        exception_services.exception_acknowledge(
            exception_id=exc.pk, actor=plant.supervisor
        )
    else:
        exception_services.exception_resolve(
            exception_id=exc.pk, resolution_note="Retested", actor=plant.supervisor
        )
    before = snapshot()
    later = raised_at(exc) + timedelta(hours=5)
    assert exception_services.exceptions_escalate_overdue(now=later) == 0
    assert snapshot() == before


def test_acknowledge_records_who_and_when(plant):
    _, (first, *_) = create_order(plant)
    exc = raise_issue(plant, first)
    with recorded() as got:
        exc = exception_services.exception_acknowledge(
            exception_id=exc.pk, actor=plant.supervisor
        )
    assert (exc.status, exc.acknowledged_by) == ("ack", plant.supervisor)
    assert got.actions == ["exception.acknowledged"]
    assert got.events == ["exception.acknowledged"]
    with refused(IllegalTransition, "illegal_transition") as info:
        exception_services.exception_acknowledge(
            exception_id=exc.pk, actor=plant.supervisor
        )
    assert info.value.details == {"from": "ack", "to": "ack"}


@pytest.mark.parametrize("note", ["", "   ", None])
def test_resolving_needs_a_note(plant, note):
    _, (first, *_) = create_order(plant)
    exc = raise_issue(plant, first)
    with refused(InvalidInput, "validation_error") as info:
        exception_services.exception_resolve(
            exception_id=exc.pk, resolution_note=note, actor=plant.supervisor
        )
    assert info.value.details == {"resolution_note": ["This field is required."]}


def test_resolving_an_open_exception_also_acknowledges_it(plant):
    _, (first, *_) = create_order(plant)
    exc = raise_issue(plant, first)
    with recorded() as got:
        exc = exception_services.exception_resolve(
            exception_id=exc.pk,
            resolution_note="  Housings re-sealed and retested  ",
            actor=plant.supervisor,
        )
    assert exc.status == ExceptionStatus.RESOLVED
    assert exc.resolution_note == "Housings re-sealed and retested"
    assert exc.acknowledged_at == exc.resolved_at
    assert exc.acknowledged_by == exc.resolved_by == plant.supervisor
    assert got.actions == ["exception.resolved"]
    assert got.events == ["exception.resolved"]
    for call in (
        lambda: exception_services.exception_acknowledge(
            exception_id=exc.pk, actor=plant.supervisor
        ),
        lambda: exception_services.exception_resolve(
            exception_id=exc.pk, resolution_note="Again", actor=plant.supervisor
        ),
    ):
        with refused(IllegalTransition, "illegal_transition"):
            call()


# --- events only for committed changes -----------------------------------------------


def test_events_are_delivered_only_after_commit(
    plant, django_capture_on_commit_callbacks
):
    _, (first, *_) = create_order(plant)
    with django_capture_on_commit_callbacks() as callbacks:
        services.stage_start(stage_id=first.pk, actor=plant.operator)
    # One delivery per event (stage.started, workorder.started), after commit;
    # the rest drop the plant screens' read models (bpmos.readcache), and one
    # notes the transaction's attention changes (bpmos.dashboards.live).
    attention = [
        c for c in callbacks if isinstance(getattr(c, "__self__", None), AttentionBatch)
    ]
    assert len(attention) <= 1
    deliveries = [
        c
        for c in callbacks
        if c not in attention
        and not isinstance(getattr(c, "__self__", None), ReadModel)
    ]
    assert len(deliveries) == 2
    assert {c.__self__.name for c in callbacks if c not in deliveries + attention} == {
        "operations"
    }


def test_a_rolled_back_change_leaves_no_event(
    plant, django_capture_on_commit_callbacks
):
    _, (first, *_) = create_order(plant)
    before = snapshot()

    class Abort(Exception):
        pass

    inside = []

    def start_then_abort():
        with transaction.atomic():
            services.stage_start(stage_id=first.pk, actor=plant.operator)
            inside.append(OutboxEvent.objects.count() - before["events"])
            raise Abort

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(Abort):
        start_then_abort()
    assert inside == [2]  # stored in the transaction ...
    assert callbacks == []  # ... and gone with it, never delivered
    assert snapshot() == before
    assert status(first) == StageStatus.PLANNED


@pytest.mark.parametrize(
    ("description", "title"),
    [
        ("Press 3 jams", "Press 3 jams"),
        ("Seal leak on 3 housings. Line stopped at S5.", "Seal leak on 3 housings."),
        ("Leak rate 2.1e-6 mbar·L/s.\nSecond line", "Leak rate 2.1e-6 mbar·L/s."),
        ("x" * 130, "x" * 119 + "…"),
    ],
)
def test_issue_title_is_the_first_sentence(description, title):
    from exceptions.services import _issue_title

    assert _issue_title(description) == title
