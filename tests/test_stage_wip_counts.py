"""The WIP counts the runbooks' services keep (``StageWipCount``,
``runbooks.stage_wip``: the Stage Mix and the bottleneck) always equal a
recount over the work-order stages, whatever sequence of changes made them.

A hypothesis state machine creates work orders on a sequential and a
non-sequential runbook (stages started out of order make "waiting"
interesting), starts, finishes, holds and resumes random stages, cancels
work orders (refused moves included: out of order, closed work order,
locked gate), and writes work orders in bulk as fixtures do. After every
step the kept counts equal ``stage_wip.recount`` (``tests/support_counts.py``,
the harness the custody counts share; the work-order rules and fixed plants
shared with the work-order counts are in ``tests/support_runbook_counts.py``);
with the services' count update removed, the machine fails. Each example
runs inside a savepoint rolled back at its end.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from bpmos.errors import DomainError
from lines import wip
from runbooks import services, stage_wip
from runbooks.models import (
    StageStatus,
    StageWipCount,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)
from tests.factories_production import T0, make_work_order, stages_of
from tests.support_counts import run_counts
from tests.support_runbook_counts import (
    WorkOrderMachine,
    assert_invariant_fails,
    order_at_locked_gate,
    plant_runbooks,
)

pytestmark = pytest.mark.django_db

S = StageStatus
MOVES = ("start", "start", "finish", "finish", "hold", "resume")


class WipMachine(WorkOrderMachine):
    @initialize()
    def plant(self):
        for sequential in (True, False):
            self.create(sequential)

    @rule(index=st.integers(0, 60), move=st.sampled_from(MOVES))
    def move_stage(self, index, move):
        self.stage_move(index, move)

    @rule(index=st.integers(0, 20), stages=st.integers(1, 3))
    def work_through(self, index, stages):
        """Start and finish the first ``stages`` stages of a work order in
        order (all three: it completes)."""
        self.work_through_stages(index, stages)

    @rule(
        sequential=st.booleans(),
        statuses=st.lists(st.sampled_from(S.values), min_size=3, max_size=3),
    )
    def bulk_write(self, sequential, statuses):
        """A work order in progress written as fixtures write them."""
        runbook = self.runbook(sequential)
        self.orders += 1
        order = WorkOrder.objects.create(
            runbook=runbook,
            product_code="PACK",
            lot_no=f"BULK-{self.orders}",
            qty=1,
            planned_start=T0,
            planned_end=T0 + timedelta(hours=3),
            status=WorkOrderStatus.IN_PROGRESS,
            started_at=T0,
        )
        WorkOrderStage.objects.bulk_create(
            WorkOrderStage(
                work_order=order,
                stage=template,
                position=template.position,
                stage_name=template.name,
                planned_start=T0,
                planned_end=T0 + timedelta(hours=1),
                status=status,
            )
            for template, status in zip(
                runbook.stages.order_by("position"), statuses, strict=True
            )
        )

    def kept(self):
        return stage_wip.kept_counts()

    def recount(self):
        return stage_wip.recount()

    def observe(self, kept):
        for in_progress, on_hold, waiting in kept.values():
            self.seen["in_progress"] += in_progress
            self.seen["on_hold"] += on_hold
            self.seen["waiting"] += waiting
        self.seen["cancelled"] += WorkOrder.objects.filter(
            status=WorkOrderStatus.CANCELLED
        ).count()
        self.seen["completed"] += WorkOrder.objects.filter(
            status=WorkOrderStatus.COMPLETED
        ).count()


@pytest.fixture
def runbooks():
    plant_runbooks()


def test_wip_counts_equal_a_recount_after_any_sequence(runbooks, make_user):
    seen = run_counts(WipMachine, actor=make_user("supervisor"), steps=15)
    # The examples reached every count and both ends of a work order.
    assert all(
        seen[name] > 0
        for name in ("in_progress", "on_hold", "waiting", "cancelled", "completed")
    ), seen


@contextmanager
def _not_kept(*work_order_ids):
    yield  # the block's writes, and no count added


def test_the_machine_fails_when_the_count_update_is_removed(
    runbooks, make_user, monkeypatch
):
    """The harness is not vacuous: with the services' update of the counts
    (``stage_wip.kept``) removed, the invariant fails."""
    monkeypatch.setattr(stage_wip, "kept", _not_kept)
    assert_invariant_fails(WipMachine, actor=make_user("supervisor"))


def _stage_mix() -> dict[str, tuple[int, int, int]]:
    return {
        s.stage_id: (s.in_progress, s.on_hold, s.waiting)
        for s in wip.stage_wip_list()
        if s.wip
    }


def test_wip_of_a_fixed_plant(runbooks, make_user):
    """Each service's move, by hand, on the sequential runbook."""
    boss = make_user("supervisor")
    first = make_work_order(boss, lot_no="A")
    second = make_work_order(boss, lot_no="B")
    third = make_work_order(boss, lot_no="C")
    assert _stage_mix() == {}  # planned work orders are backlog, not WIP
    a1, a2, _ = stages_of(first)
    services.stage_start(stage_id=a1.pk, actor=boss)
    assert _stage_mix() == {"seq-01": (1, 0, 0)}
    services.stage_finish(stage_id=a1.pk, actor=boss)
    assert _stage_mix() == {"seq-02": (0, 0, 1)}  # arrived at S2, waits
    b1, _, _ = stages_of(second)
    services.stage_start(stage_id=b1.pk, actor=boss)
    services.stage_hold(stage_id=b1.pk, reason="Jammed", actor=boss)
    services.stage_start(stage_id=a2.pk, actor=boss)
    assert _stage_mix() == {"seq-01": (0, 1, 0), "seq-02": (1, 0, 0)}
    services.stage_resume(stage_id=b1.pk, actor=boss)
    services.work_order_cancel(work_order_id=first.pk, reason="Recall", actor=boss)
    assert _stage_mix() == {"seq-01": (1, 0, 0)}
    c1, c2, c3 = stages_of(third)
    for stage in (c1, c2, c3):
        services.stage_start(stage_id=stage.pk, actor=boss)
        services.stage_finish(stage_id=stage.pk, actor=boss)
    assert WorkOrder.objects.get(pk=third.pk).status == WorkOrderStatus.COMPLETED
    assert _stage_mix() == {"seq-01": (1, 0, 0)}
    assert stage_wip.kept_counts() == stage_wip.recount()


def test_a_refused_move_leaves_the_counts(make_user):
    boss = make_user("supervisor")
    _, s2 = order_at_locked_gate(boss)
    before = stage_wip.kept_counts()
    with pytest.raises(DomainError):  # S2 is behind a locked gate
        services.stage_start(stage_id=s2.pk, actor=boss)
    assert stage_wip.kept_counts() == before == stage_wip.recount()
    assert sum(n for counts in before.values() for n in counts) == 1  # S2 waits


def test_the_rebuild_recounts_what_was_lost(runbooks, make_user):
    """What the data migration runs."""
    boss = make_user("supervisor")
    order = make_work_order(boss)
    first, _, _ = stages_of(order)
    services.stage_start(stage_id=first.pk, actor=boss)
    expected = stage_wip.kept_counts()
    StageWipCount.objects.all().delete()
    StageWipCount.objects.create(stage_id=first.stage_id, waiting=7)
    assert stage_wip.rebuild() == expected == {first.stage_id: [1, 0, 0]}
    assert stage_wip.kept_counts() == expected


def test_the_stage_mix_is_one_query(runbooks, make_user, django_assert_num_queries):
    boss = make_user("supervisor")
    order = make_work_order(boss)
    services.stage_start(stage_id=stages_of(order)[0].pk, actor=boss)
    with django_assert_num_queries(1):
        listed = wip.stage_wip_list()
    assert [(s.stage_id, s.wip, s.is_bottleneck) for s in listed] == [
        ("free-01", 0, False),
        ("free-02", 0, False),
        ("free-03", 0, False),
        ("seq-01", 1, True),
        ("seq-02", 0, False),
        ("seq-03", 0, False),
    ]


def test_stages_of_a_planned_work_order_cost_no_count_query(
    runbooks, make_user, django_assert_num_queries
):
    """``work_order_create`` writes its stages in bulk: their work order is
    planned (in memory), so the WIP counts are not read."""
    order = make_work_order(make_user("planner"))
    copies = [
        WorkOrderStage(
            work_order=order,
            stage=s.stage,
            position=s.position + 10,
            stage_name=s.stage_name,
            planned_start=s.planned_start,
            planned_end=s.planned_end,
        )
        for s in stages_of(order)
    ]
    with django_assert_num_queries(1):  # the INSERT
        WorkOrderStage.objects.bulk_create(copies)
