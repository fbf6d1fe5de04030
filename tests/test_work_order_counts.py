"""The work-order counts the runbooks' services keep per runbook
(``RunbookWorkOrderCount``, ``runbooks.work_order_counts``: the runbook
detail's ``workOrders``) always equal a recount over the work orders, whatever
sequence of changes made them.

A hypothesis state machine creates work orders on two runbooks, starts and
finishes their stages (a first start puts a work order in progress, the last
finish completes it), cancels work orders (refused moves included: a closed
work order, out of order, a locked gate) and writes work orders in bulk as
fixtures do. After every step the kept counts equal
``work_order_counts.recount`` (``tests/support_counts.py``; the rules
shared with the stage WIP's machine are in ``tests/support_runbook_counts.py``);
with the services' count update removed, the machine fails. Work orders are never
deleted (the admin is read-only; a runbook's work orders protect it), which
a test below pins.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import ProtectedError
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from bpmos.dashboards import controltower
from bpmos.errors import DomainError, IllegalTransition
from runbooks import services, work_order_counts
from runbooks.models import (
    Runbook,
    RunbookWorkOrderCount,
    WorkOrder,
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

MOVES = ("start", "start", "finish", "finish")


class CountsMachine(WorkOrderMachine):
    @initialize()
    def plant(self):
        self.create(True)

    @rule(index=st.integers(0, 60), move=st.sampled_from(MOVES))
    def move_stage(self, index, move):
        self.stage_move(index, move)

    @rule(index=st.integers(0, 20))
    def work_through(self, index):
        """Start and finish every stage of a work order in order: it completes
        (unless it was cancelled)."""
        self.work_through_stages(index)

    @rule(
        first=st.booleans(),
        statuses=st.lists(
            st.sampled_from(WorkOrderStatus.values), min_size=1, max_size=3
        ),
    )
    def bulk_write(self, first, statuses):
        """Work orders of any status written in bulk, as fixtures write them."""
        runbook = self.runbook(first)
        rows = []
        for status in statuses:
            self.orders += 1
            rows.append(
                WorkOrder(
                    runbook=runbook,
                    product_code="PACK",
                    lot_no=f"BULK-{self.orders}",
                    qty=1,
                    planned_start=T0,
                    planned_end=T0 + timedelta(hours=3),
                    status=status,
                )
            )
        WorkOrder.objects.bulk_create(rows)

    def kept(self):
        return work_order_counts.kept_counts()

    def recount(self):
        return work_order_counts.recount()

    def observe(self, kept):
        for runbook_id, values in kept.items():
            for status, n in zip(work_order_counts.STATUSES, values, strict=True):
                self.seen[status] += n
            detail = controltower.runbook_detail_get(
                slug=Runbook.objects.get(pk=runbook_id).slug
            )
            # What the runbook detail shows is the kept row.
            assert [
                detail.work_orders.planned,
                detail.work_orders.in_progress,
                detail.work_orders.completed,
                detail.work_orders.cancelled,
            ] == values


@pytest.fixture
def runbooks():
    plant_runbooks()


def test_work_order_counts_equal_a_recount_after_any_sequence(runbooks, make_user):
    seen = run_counts(CountsMachine, actor=make_user("supervisor"), steps=15)
    # The examples reached every status.
    assert all(seen[status] > 0 for status in WorkOrderStatus.values), seen


def _not_moved(**_):
    pass  # the service's write, and no count moved


def test_the_machine_fails_when_the_count_update_is_removed(
    runbooks, make_user, monkeypatch
):
    """The harness is not vacuous: with the services' update of the counts
    (``work_order_counts.moved``) removed, the invariant fails."""
    monkeypatch.setattr(work_order_counts, "moved", _not_moved)
    assert_invariant_fails(CountsMachine, actor=make_user("supervisor"))


def _counts(runbook: Runbook) -> list[int]:
    return work_order_counts.counts_of(runbook.pk)


def test_each_move_by_hand(runbooks, make_user):
    """Each service's move, by hand: create, start, complete, cancel (from
    planned and from in progress), and a refused move that changes nothing."""
    boss = make_user("supervisor")
    seq = Runbook.objects.get(slug="seq")
    free = Runbook.objects.get(slug="free")
    assert _counts(seq) == [0, 0, 0, 0]  # no row yet
    first = make_work_order(boss, lot_no="A")
    second = make_work_order(boss, lot_no="B")
    third = make_work_order(boss, lot_no="C")
    assert _counts(seq) == [3, 0, 0, 0]
    a1, a2, a3 = stages_of(first)
    services.stage_start(stage_id=a1.pk, actor=boss)
    assert _counts(seq) == [2, 1, 0, 0]
    services.stage_finish(stage_id=a1.pk, actor=boss)
    services.stage_start(stage_id=a2.pk, actor=boss)  # already in progress
    assert _counts(seq) == [2, 1, 0, 0]
    services.stage_finish(stage_id=a2.pk, actor=boss)
    services.stage_start(stage_id=a3.pk, actor=boss)
    services.stage_finish(stage_id=a3.pk, actor=boss)
    assert _counts(seq) == [2, 0, 1, 0]
    services.work_order_cancel(work_order_id=second.pk, reason="Recall", actor=boss)
    assert _counts(seq) == [1, 0, 1, 1]
    services.stage_start(stage_id=stages_of(third)[0].pk, actor=boss)
    services.work_order_cancel(work_order_id=third.pk, reason="Recall", actor=boss)
    assert _counts(seq) == [0, 0, 1, 2]
    with pytest.raises(IllegalTransition):  # a closed work order
        services.work_order_cancel(work_order_id=first.pk, reason="No", actor=boss)
    assert _counts(seq) == [0, 0, 1, 2]
    assert _counts(free) == [0, 0, 0, 0]
    assert work_order_counts.kept_counts() == work_order_counts.recount()


def test_a_move_refused_at_a_gate_leaves_the_counts(make_user):
    boss = make_user("supervisor")
    runbook, s2 = order_at_locked_gate(boss)
    with pytest.raises(DomainError):  # S2 is behind a locked gate
        services.stage_start(stage_id=s2.pk, actor=boss)
    assert _counts(runbook) == [0, 1, 0, 0]
    assert work_order_counts.kept_counts() == work_order_counts.recount()


def test_bulk_create_counts_each_row_in_one_upsert(runbooks, django_assert_num_queries):
    seq = Runbook.objects.get(slug="seq")
    free = Runbook.objects.get(slug="free")
    rows = [
        WorkOrder(
            runbook=runbook,
            product_code="PACK",
            lot_no=f"BULK-{n}",
            qty=1,
            planned_start=T0,
            planned_end=T0 + timedelta(hours=1),
            status=status,
        )
        for n, (runbook, status) in enumerate(
            [
                (seq, WorkOrderStatus.COMPLETED),
                (seq, WorkOrderStatus.COMPLETED),
                (seq, WorkOrderStatus.CANCELLED),
                (free, WorkOrderStatus.IN_PROGRESS),
            ]
        )
    ]
    with django_assert_num_queries(2):  # the INSERT, the upsert
        WorkOrder.objects.bulk_create(rows)
    assert _counts(seq) == [0, 0, 2, 1]
    assert _counts(free) == [0, 1, 0, 0]


def test_the_rebuild_recounts_what_was_lost(runbooks, make_user):
    """What the data migration and the plant generator run."""
    boss = make_user("supervisor")
    seq = Runbook.objects.get(slug="seq")
    order = make_work_order(boss)
    make_work_order(boss, lot_no="B")
    services.stage_start(stage_id=stages_of(order)[0].pk, actor=boss)
    expected = work_order_counts.kept_counts()
    assert expected == {seq.pk: [1, 1, 0, 0]}
    RunbookWorkOrderCount.objects.all().delete()
    RunbookWorkOrderCount.objects.create(runbook=seq, completed=7)
    assert work_order_counts.rebuild() == expected
    assert work_order_counts.kept_counts() == expected


def test_work_orders_are_never_deleted_with_their_runbook(runbooks, make_user):
    """The counts have no delete path to follow: a runbook's work orders
    protect it, and the work-order admin allows no delete."""
    from django.contrib.admin.sites import site

    boss = make_user("admin")
    seq = Runbook.objects.get(slug="seq")
    make_work_order(boss)
    with pytest.raises(ProtectedError):
        seq.delete()
    admin = site._registry[WorkOrder]

    class Request:
        user = boss

    assert admin.has_delete_permission(Request()) is False
    assert _counts(seq) == [1, 0, 0, 0]


def test_bulk_create_on_conflict_is_refused(runbooks):
    """Which rows an ``ON CONFLICT`` insert wrote is not known to the
    manager, so it refuses rather than let the counts drift."""
    seq = Runbook.objects.get(slug="seq")
    row = WorkOrder(
        runbook=seq,
        product_code="PACK",
        lot_no="BULK-X",
        qty=1,
        planned_start=T0,
        planned_end=T0 + timedelta(hours=1),
    )
    with pytest.raises(ValueError, match="rebuild"):
        WorkOrder.objects.bulk_create([row], ignore_conflicts=True)
    assert WorkOrder.objects.count() == 0
    assert work_order_counts.kept_counts() == {}
