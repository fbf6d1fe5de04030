"""Random sequences of production moves never reach an illegal state.

A hypothesis state machine drives the API (start, finish, hold, resume, gate
open/close/lock, cancel: the same requests the mobile app and the control UI
send, with JWTs, through authentication, the role policy, the views and the
error envelope) on the stages of three work orders: two on a
sequential runbook, whose gates they share, and one on a free-order runbook.
It calls them as the assigned operator, an operator assigned elsewhere, and a
supervisor. Besides random moves it takes the move that advances a work order
and the plant's response to a failed check (lock the gate, hold the stage), so
that sequences reach late stages, completion and locked gates.

A simple model predicts each outcome: success with exactly which audit actions
and events, or the exact error and code, having changed nothing. After every
step the database is checked against the model and against invariants that do
not depend on it: statuses move only along the transition tables, sequential
order holds, a work order is completed iff all its stages are done, and no
stage finished with a gate not Open or went in progress behind a locked gate.

Each example runs inside a savepoint that is rolled back at its end, so every
example starts from the same users, runbooks, open gates and planned work
orders, created once per test. The requests go through DRF's in-process client
so they share that transaction: a live server would need every example's rows
committed and flushed, which hypothesis's hundreds of examples cannot afford.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.db.models import Max
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from bpmos.errors import DomainError, Forbidden, IllegalTransition, InvalidInput
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from runbooks import services
from runbooks.models import (
    STAGE_TRANSITIONS,
    WORK_ORDER_TRANSITIONS,
    Gate,
    GateStatus,
    Runbook,
    Stage,
    StageStatus,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)
from tests.conftest import PASSWORD, bearer
from tests.support_hypothesis import examples

T0 = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
# Who calls: the assigned operator twice as often as the others.
ACTORS = ("assigned", "assigned", "elsewhere", "supervisor")
# Work orders 0 and 1 run "line" (sequential, 3 stages); 2 runs "bench" (free).
ORDERS = ("line", "line", "bench")
# Which stages the "assigned" operator holds; "elsewhere" holds the others.
ASSIGNED = {0: {0, 1, 2}, 1: {0, 2}, 2: {0, 1}}
# Gates per template stage: the second line stage has two.
GATES = {"line": (1, 2, 1), "bench": (1, 1)}
# One reason in six is blank (refused for a hold, a lock and a cancellation).
REASONS = ("Seal Check Failed", "Cell jam", "Shift change", "Leak retest", "QA", " ")


def build_world(make_user) -> SimpleNamespace:
    """Users, runbooks and planned work orders, shared by every example."""
    for slug, gate_counts in GATES.items():
        runbook = Runbook.objects.create(
            slug=slug,
            title=slug.title(),
            kind="manufacturing",
            sequential=slug == "line",
            is_default=slug == "line",
        )
        for position, count in enumerate(gate_counts, start=1):
            stage = Stage.objects.create(
                runbook=runbook,
                slug=f"{slug}-{position}",
                code=f"S{position}",
                name=f"{slug.title()} {position}",
                position=position,
            )
            for n in range(count):
                Gate.objects.create(stage=stage, condition=f"Check {position}.{n}")
    world = SimpleNamespace(
        assigned=make_user("operator"),
        elsewhere=make_user("operator"),
        supervisor=make_user("supervisor"),
        planner=make_user("planner"),
        gate_ids=list(Gate.objects.order_by("pk").values_list("pk", flat=True)),
        template_gates={
            stage.pk: [gate.pk for gate in stage.gates.all()]
            for stage in Stage.objects.prefetch_related("gates")
        },
        orders=[],
    )
    for index, slug in enumerate(ORDERS):
        work_order = services.work_order_create(
            runbook_slug=slug,
            product_code="PACK-LFP-48V-100AH",
            lot_no=f"LOT-{index}",
            qty=10,
            planned_start=T0,
            planned_end=T0 + timedelta(hours=4),
            actor=world.planner,
        )
        stages = list(work_order.stages.order_by("position"))
        for position, stage in enumerate(stages):
            holder = world.assigned if position in ASSIGNED[index] else world.elsewhere
            services.stage_assign(
                stage_id=stage.pk, user_id=holder.pk, actor=world.planner
            )
        world.orders.append(
            (work_order.pk, slug == "line", [(s.pk, s.stage_id) for s in stages])
        )
    return world


@dataclass
class StageModel:
    pk: int
    template_id: int
    status: str = StageStatus.PLANNED
    started: bool = False


@dataclass
class OrderModel:
    pk: int
    sequential: bool
    status: str = WorkOrderStatus.PLANNED
    stages: list[StageModel] = field(default_factory=list)


def last_ids() -> tuple[int, int]:
    return (
        AuditRecord.objects.aggregate(m=Max("seq"))["m"] or 0,
        OutboxEvent.objects.aggregate(m=Max("pk"))["m"] or 0,
    )


def written_since(ids: tuple[int, int]) -> tuple[list[str], list[str]]:
    seq, event_id = ids
    return (
        list(
            AuditRecord.objects.filter(seq__gt=seq)
            .order_by("seq")
            .values_list("action", flat=True)
        ),
        list(
            OutboxEvent.objects.filter(pk__gt=event_id)
            .order_by("pk")
            .values_list("name", flat=True)
        ),
    )


# The refusal each status answers with, as the model predicts it.
REFUSALS = {400: InvalidInput, 403: Forbidden, 409: IllegalTransition}


def api_post(user, path: str, body: dict | None = None) -> SimpleNamespace:
    """POST as ``user``; the body on success, else raise the refusal it encodes."""
    response = APIClient().post(path, body or {}, format="json", headers=bearer(user))
    payload = response.json()
    if response.status_code in (200, 201):
        return SimpleNamespace(**payload)
    assert response.status_code in REFUSALS, (response.status_code, payload)
    assert payload["success"] is False, payload
    raise REFUSALS[response.status_code](payload["error"], code=payload["code"])


class ProductionMachine(RuleBasedStateMachine):
    world: SimpleNamespace  # set by the test

    def __init__(self):
        super().__init__()
        # Everything an example changes is rolled back in teardown().
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.gates = dict.fromkeys(self.world.gate_ids, GateStatus.OPEN)
        self.orders = [
            OrderModel(
                pk=pk,
                sequential=sequential,
                stages=[StageModel(pk=spk, template_id=tid) for spk, tid in stages],
            )
            for pk, sequential, stages in self.world.orders
        ]
        self.cancelled = False
        self.previous = self.db_state()  # as last checked by the invariant
        self.known = self.previous  # the database now, when known without a query
        self.steps = 0

    def teardown(self):
        # Called by hypothesis after every example, passed or failed.
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- what the database says -------------------------------------------------

    def db_state(self) -> dict:
        rows = WorkOrderStage.objects.values_list("pk", "status", "actual_start")
        return {
            "stages": {pk: status for pk, status, _ in rows},
            "started": {pk for pk, _, started in rows if started},
            "orders": dict(WorkOrder.objects.values_list("pk", "status")),
            "gates": dict(Gate.objects.values_list("pk", "status")),
            "ids": last_ids(),
        }

    def gate_statuses(self, stage: StageModel) -> list[str]:
        return list(
            Gate.objects.filter(stage_id=stage.template_id).values_list(
                "status", flat=True
            )
        )

    # --- the model's prediction ------------------------------------------------------

    def may_move(self, actor: str, order_index: int, stage_index: int) -> bool:
        if actor == "supervisor":
            return True
        assigned = stage_index in ASSIGNED[order_index]
        return assigned if actor == "assigned" else not assigned

    def stage_gates(self, stage: StageModel) -> list[str]:
        return [self.gates[pk] for pk in self.world.template_gates[stage.template_id]]

    def expect(self, move, order_index, stage_index, actor, reason):
        """None if the move should succeed, else (error class, code)."""
        order = self.orders[order_index]
        stage = order.stages[stage_index]
        if move == "hold" and not reason.strip():
            return InvalidInput, "validation_error"
        if not self.may_move(actor, order_index, stage_index):
            return Forbidden, "not_assigned"
        if order.status in {WorkOrderStatus.COMPLETED, WorkOrderStatus.CANCELLED}:
            return IllegalTransition, "work_order_closed"
        gates = self.stage_gates(stage)
        if move == "start":
            if stage.status != StageStatus.PLANNED:
                return IllegalTransition, "illegal_transition"
            earlier = order.stages[:stage_index]
            if order.sequential and any(s.status != StageStatus.DONE for s in earlier):
                return IllegalTransition, "stage_out_of_order"
            if GateStatus.LOCKED in gates:
                return IllegalTransition, "gate_locked"
        elif move == "finish":
            if stage.status != StageStatus.IN_PROGRESS:
                return IllegalTransition, "illegal_transition"
            if any(g != GateStatus.OPEN for g in gates):
                return IllegalTransition, "gate_not_open"
        elif move == "hold":
            if stage.status not in {StageStatus.PLANNED, StageStatus.IN_PROGRESS}:
                return IllegalTransition, "illegal_transition"
        elif move == "resume":
            if stage.status != StageStatus.HOLD:
                return IllegalTransition, "illegal_transition"
            if stage.started and GateStatus.LOCKED in gates:
                return IllegalTransition, "gate_locked"
        return None

    def apply(self, move, order_index, stage_index) -> tuple[list[str], list[str]]:
        """Update the model; return the audit actions and events it expects."""
        order = self.orders[order_index]
        stage = order.stages[stage_index]
        if move == "start":
            stage.status, stage.started = StageStatus.IN_PROGRESS, True
            if order.status == WorkOrderStatus.PLANNED:
                order.status = WorkOrderStatus.IN_PROGRESS
                return (
                    ["stage.started", "workorder.started"],
                    ["stage.started", "workorder.started"],
                )
            return ["stage.started"], ["stage.started"]
        if move == "finish":
            stage.status = StageStatus.DONE
            if all(s.status == StageStatus.DONE for s in order.stages):
                order.status = WorkOrderStatus.COMPLETED
                return (
                    ["stage.completed", "workorder.completed"],
                    ["stage.completed", "workorder.completed"],
                )
            return ["stage.completed"], ["stage.completed"]
        if move == "hold":
            stage.status = StageStatus.HOLD
            return ["stage.held"], ["stage.held"]
        stage.status = StageStatus.IN_PROGRESS if stage.started else StageStatus.PLANNED
        return ["stage.resumed"], ["stage.resumed"]

    # --- calling and checking --------------------------------------------------------

    def call(self, fn, expected, written=None):
        """Run ``fn`` and check it against ``expected`` (None: success).

        A refusal must have the expected class and code and change nothing; a
        success must write exactly the ``written`` audit actions and events.
        """
        before = self.known if self.known is not None else self.db_state()
        self.known = None
        try:
            result, error = fn(), None
        except DomainError as exc:
            result, error = None, exc
        if error is not None:
            assert expected is not None, f"refused unexpectedly: {error.code}: {error}"
            assert (type(error), error.code) == expected, str(error)
            assert self.db_state() == before, "a refused call changed something"
            self.known = before
            return None
        assert expected is None, f"allowed, but expected {expected}"
        assert written_since(before["ids"]) == written
        return result

    def current_index(self, order_index: int) -> int:
        """The stage a work order has reached: its first one not done."""
        stages = self.orders[order_index].stages
        pending = [i for i, s in enumerate(stages) if s.status != StageStatus.DONE]
        return pending[0] if pending else len(stages) - 1

    def stage_move(self, move, order_index, stage_number, actor, reason="Jam"):
        """``move`` a stage (``stage_number``; None: the one reached) as ``actor``."""
        stages = self.orders[order_index].stages
        if stage_number is None:
            stage_index = self.current_index(order_index)
        else:
            stage_index = stage_number % len(stages)
        stage = stages[stage_index]
        user = getattr(self.world, actor)
        expected = self.expect(move, order_index, stage_index, actor, reason)
        written = None if expected else self.apply(move, order_index, stage_index)
        path = f"/api/stages/{stage.pk}/{'done' if move == 'finish' else move}"
        body = {"reason": reason} if move == "hold" else None
        result = self.call(lambda: api_post(user, path, body), expected, written)
        if result is None:
            return
        # The gates as they were at the moment of the move (same transaction).
        gates = self.gate_statuses(stage)
        if move == "finish":
            assert all(g == GateStatus.OPEN for g in gates), gates
        if result.status == StageStatus.IN_PROGRESS:
            assert GateStatus.LOCKED not in gates, gates

    # --- rules -----------------------------------------------------------------------

    orders_ = st.integers(0, len(ORDERS) - 1)
    # A stage by position, or (None) the stage the work order has reached.
    stages_ = st.none() | st.integers(0, 2)
    actors_ = st.sampled_from(ACTORS)

    @rule(order=orders_, stage=stages_, actor=actors_)
    def start(self, order, stage, actor):
        self.stage_move("start", order, stage, actor)

    @rule(order=orders_, stage=stages_, actor=actors_)
    def finish(self, order, stage, actor):
        self.stage_move("finish", order, stage, actor)

    @rule(order=orders_, stage=stages_, actor=actors_, reason=st.sampled_from(REASONS))
    def hold(self, order, stage, actor, reason):
        self.stage_move("hold", order, stage, actor, reason)

    @rule(order=orders_, stage=stages_, actor=actors_)
    def resume(self, order, stage, actor):
        self.stage_move("resume", order, stage, actor)

    @rule(order=orders_, actor=actors_)
    def advance(self, order, actor):
        """The move that takes the work order forward, so that sequences reach
        late stages and completion (refused if a gate or the actor says no)."""
        stages = self.orders[order].stages
        index = self.current_index(order)
        if stages[index].status == StageStatus.DONE:
            return
        move = {
            StageStatus.PLANNED: "start",
            StageStatus.IN_PROGRESS: "finish",
            StageStatus.HOLD: "resume",
        }[stages[index].status]
        self.stage_move(move, order, index, actor)

    @rule(
        order=orders_,
        stage=stages_,
        gate=st.integers(0, 1),
        action=st.sampled_from(["open", "close", "lock"]),
        reason=st.sampled_from(REASONS),
        signed=st.booleans(),
    )
    def set_gate(self, order, stage, gate, action, reason, signed=True):
        """A supervisor changes a gate of a stage of a work order (by default the
        stage it has reached), which all work orders of the runbook share.
        Unlocking is a signed step: ``signed``, the supervisor re-enters the
        password; without it the unlock is refused (400) and changes nothing."""
        stages = self.orders[order].stages
        index = self.current_index(order) if stage is None else stage % len(stages)
        target_stage = stages[index]
        gate_ids = self.world.template_gates[target_stage.template_id]
        pk = gate_ids[gate % len(gate_ids)]
        target = {"open": "open", "close": "closed", "lock": "locked"}[action]
        current = self.gates[pk]
        unlocking = current == GateStatus.LOCKED and action != "lock"
        if (unlocking and not signed) or (action == "lock" and not reason.strip()):
            expected = (InvalidInput, "validation_error")
        elif current == target:
            expected = (IllegalTransition, "illegal_transition")
        else:
            expected = None
        body = {"reason": reason}
        if unlocking and signed:
            body["password"] = PASSWORD
            written = (["signature.signed", "gate.unlocked"], ["gate.changed"])
        else:
            verb = {"open": "opened", "close": "closed", "lock": "locked"}[action]
            written = ([f"gate.{verb}"], ["gate.changed"])
        result = self.call(
            lambda: api_post(self.world.supervisor, f"/api/gates/{pk}/{action}", body),
            expected,
            written,
        )
        if result is not None:
            self.gates[pk] = target

    @rule(order=orders_, actor=actors_)
    def quality_stop(self, order, actor):
        """What the plant does when a check fails: a supervisor locks the gate of
        the stage a work order has reached, and the stage is put on hold."""
        index = self.current_index(order)
        self.set_gate(order, index, 0, "lock", "Seal Check Failed")
        self.stage_move("hold", order, index, actor, "Seal Check Failed")

    # Late and at most once, so that most steps move open work orders.
    @precondition(lambda self: not self.cancelled and self.steps >= 20)
    @rule(order=orders_, reason=st.sampled_from(REASONS))
    def cancel(self, order, reason):
        model = self.orders[order]
        if not reason.strip():
            expected = (InvalidInput, "validation_error")
        elif model.status not in {WorkOrderStatus.PLANNED, WorkOrderStatus.IN_PROGRESS}:
            expected = (IllegalTransition, "illegal_transition")
        else:
            expected = None
        result = self.call(
            lambda: api_post(
                self.world.planner,
                f"/api/workorders/{model.pk}/cancel",
                {"reason": reason},
            ),
            expected,
            (["workorder.cancelled"], ["workorder.cancelled"]),
        )
        if result is not None:
            model.status = WorkOrderStatus.CANCELLED
            self.cancelled = True

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def state_is_legal(self):
        self.steps += 1
        # One read of the database per step, checked four ways; none after a
        # refusal, which was seen to leave the database exactly as it was.
        state = self.known if self.known is not None else self.db_state()
        self.check_model(state)
        self.check_transitions(state)
        self.check_sequential_order(state)
        self.check_completion(state)
        self.previous = self.known = state

    def check_model(self, state):
        """The database says what the model predicted."""
        for order in self.orders:
            assert state["orders"][order.pk] == order.status
            for stage in order.stages:
                assert state["stages"][stage.pk] == stage.status
                assert (stage.pk in state["started"]) == stage.started
        assert state["gates"] == self.gates

    def check_transitions(self, state):
        """Every status is a known one, reached by a move the table allows."""
        for kind, table, values in (
            ("stages", STAGE_TRANSITIONS, StageStatus.values),
            ("orders", WORK_ORDER_TRANSITIONS, WorkOrderStatus.values),
        ):
            for pk, now in state[kind].items():
                then = self.previous[kind][pk]
                assert now in values
                assert now == then or now in table[then], (kind, then, now)

    def check_sequential_order(self, state):
        """In a sequential runbook a stage runs or is done only after all before it."""
        for order in self.orders:
            if not order.sequential:
                continue
            statuses = [state["stages"][s.pk] for s in order.stages]
            for index, current in enumerate(statuses):
                if current in {StageStatus.IN_PROGRESS, StageStatus.DONE}:
                    assert all(s == StageStatus.DONE for s in statuses[:index]), (
                        statuses
                    )

    def check_completion(self, state):
        """Completed iff every stage is done; planned iff no stage ever started."""
        for order in self.orders:
            statuses = [state["stages"][s.pk] for s in order.stages]
            status = state["orders"][order.pk]
            all_done = all(s == StageStatus.DONE for s in statuses)
            assert (status == WorkOrderStatus.COMPLETED) == all_done, statuses
            any_started = any(s.pk in state["started"] for s in order.stages)
            if status != WorkOrderStatus.CANCELLED:
                assert (status == WorkOrderStatus.PLANNED) == (not any_started)


@pytest.mark.django_db
def test_random_production_moves_reach_no_illegal_state(make_user):
    machine = type(
        "ProductionMachine", (ProductionMachine,), {"world": build_world(make_user)}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples(40, ci=20),
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
