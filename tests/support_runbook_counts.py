"""What the runbooks' two kept counts' tests share: the work orders by status
per runbook (``tests/test_work_order_counts.py``) and the WIP per template
stage (``tests/test_stage_wip_counts.py``), each checked against its recount
after every step by the harness of ``tests/support_counts.py``.

``plant_runbooks()`` makes the two runbooks both machines play on;
``WorkOrderMachine`` holds the rules and moves they share (work orders
created, cancelled, their stages moved and worked through, refused moves
included); ``assert_invariant_fails`` runs a machine whose count update a test
removed and expects the invariant to catch it; ``order_at_locked_gate`` is the
fixed plant of the refused-move tests.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import rule

from runbooks import services
from runbooks.models import GateStatus, Runbook, WorkOrder, WorkOrderStage
from tests.factories_production import make_runbook, make_work_order, stages_of
from tests.support_counts import CountMachine, run_counts


def plant_runbooks() -> None:
    """A sequential runbook ("seq", the default) and a non-sequential one
    ("free": stages started out of order), three stages each."""
    make_runbook(slug="seq", is_default=True, sequential=True)
    make_runbook(slug="free", is_default=False, sequential=False)


class WorkOrderMachine(CountMachine):
    """Work orders on the runbooks of ``plant_runbooks``: the rules both
    counts' machines have (create, cancel) and the moves their own rules make
    (``stage_move``, ``work_through_stages``), each through ``attempt`` (a
    refusal changes nothing)."""

    def __init__(self):
        super().__init__()
        self.orders = 0

    def runbook(self, sequential: bool) -> Runbook:
        return Runbook.objects.get(slug="seq" if sequential else "free")

    def work_order_ids(self) -> list[int]:
        return list(WorkOrder.objects.order_by("pk").values_list("pk", flat=True))

    @rule(sequential=st.booleans())
    def create(self, sequential):
        self.orders += 1
        make_work_order(
            self.actor,
            runbook=self.runbook(sequential),
            lot_no=f"LOT-{self.orders}",
        )

    @rule(index=st.integers(0, 20))
    def cancel(self, index):
        ids = self.work_order_ids()
        order_id = ids[index % len(ids)]
        self.attempt(
            lambda: services.work_order_cancel(
                work_order_id=order_id, reason="Customer changed", actor=self.actor
            )
        )

    def stage_move(self, index: int, move: str) -> None:
        """``move`` ("start", "finish", "hold", "resume") the stage at
        ``index`` (modulo the stages there are)."""
        ids = list(WorkOrderStage.objects.order_by("pk").values_list("pk", flat=True))
        stage_id = ids[index % len(ids)]
        calls = {
            "start": lambda: services.stage_start(stage_id=stage_id, actor=self.actor),
            "finish": lambda: services.stage_finish(
                stage_id=stage_id, actor=self.actor
            ),
            "hold": lambda: services.stage_hold(
                stage_id=stage_id, reason="Jammed", actor=self.actor
            ),
            "resume": lambda: services.stage_resume(
                stage_id=stage_id, actor=self.actor
            ),
        }
        self.attempt(calls[move])

    def work_through_stages(self, index: int, stages: int | None = None) -> None:
        """Start and finish the first ``stages`` stages (all of them: the
        work order completes, unless it was cancelled) of the work order at
        ``index``, in order."""
        ids = self.work_order_ids()
        order = WorkOrder.objects.get(pk=ids[index % len(ids)])
        for stage in stages_of(order)[:stages]:
            for service in (services.stage_start, services.stage_finish):
                self.attempt(
                    lambda service=service, stage=stage: service(
                        stage_id=stage.pk, actor=self.actor
                    )
                )


def assert_invariant_fails(machine: type[CountMachine], *, actor) -> None:
    """The harness is not vacuous: ``machine``, with a count update removed
    by the test, fails the invariant (the first failure; no shrinking)."""
    with pytest.raises(AssertionError):
        run_counts(machine, actor=actor, steps=15, phases=[Phase.generate])


def order_at_locked_gate(actor) -> tuple[Runbook, WorkOrderStage]:
    """A work order on a runbook whose second stage is behind a locked gate,
    its first stage started and finished; its runbook and second stage."""
    runbook = make_runbook(gate_status=GateStatus.LOCKED)
    order = make_work_order(actor, runbook=runbook)
    first, second, _ = stages_of(order)
    services.stage_start(stage_id=first.pk, actor=actor)
    services.stage_finish(stage_id=first.pk, actor=actor)
    return runbook, second
