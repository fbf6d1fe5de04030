"""Concurrent moves of production execution, on PostgreSQL.

Each worker thread has its own database connection (Django's connections are
per thread) and closes it when done. A barrier releases the workers together.
"""

from collections import Counter
from datetime import timedelta
from functools import partial

import pytest
from django.db.models import Max
from django.utils import timezone

from bpmos.errors import IllegalTransition
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from elog.services import audit_chain_verify
from exceptions import services as exception_services
from runbooks import services
from runbooks.models import (
    Gate,
    Runbook,
    Stage,
    StageStatus,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)
from tests.conftest import PASSWORD
from tests.support import run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]

WORKERS = 8
ROUNDS = 4


def last_seq() -> int:
    return AuditRecord.objects.aggregate(last=Max("seq"))["last"] or 0


def outcome(results: list[object]) -> Counter:
    return Counter(type(result).__name__ for result in results)


@pytest.fixture
def plant(make_user):
    """A one-gate, two-stage sequential runbook, a supervisor and operators."""
    runbook = Runbook.objects.create(
        slug="assembly", title="Assembly", kind="manufacturing", is_default=True
    )
    for position in (1, 2):
        stage = Stage.objects.create(
            runbook=runbook,
            slug=f"asm-{position}",
            code=f"S{position}",
            name=f"Stage {position}",
            position=position,
        )
        Gate.objects.create(stage=stage, condition=f"Check {position}")
    supervisor = make_user("supervisor")
    operators = [make_user("operator") for _ in range(WORKERS)]
    return supervisor, operators


def new_work_order(supervisor, operators) -> list[WorkOrderStage]:
    now = timezone.now()
    work_order = services.work_order_create(
        product_code="PACK-LFP-48V-100AH",
        lot_no=f"LOT-{WorkOrder.objects.count() + 1}",
        qty=10,
        planned_start=now,
        planned_end=now + timedelta(hours=4),
        actor=supervisor,
    )
    stages = list(work_order.stages.order_by("position"))
    for stage in stages:
        for operator in operators:
            services.stage_assign(
                stage_id=stage.pk, user_id=operator.pk, actor=supervisor
            )
    return stages


def test_concurrent_starts_of_one_stage_one_wins(plant):
    supervisor, operators = plant
    for _ in range(ROUNDS):
        first, _second = new_work_order(supervisor, operators)
        audit_before = last_seq()
        results = run_together(
            [
                partial(services.stage_start, stage_id=first.pk, actor=op)
                for op in operators
            ]
        )
        assert outcome(results) == {
            "WorkOrderStage": 1,
            "IllegalTransition": WORKERS - 1,
        }
        assert {
            r.details["from"] for r in results if isinstance(r, IllegalTransition)
        } == {StageStatus.IN_PROGRESS}
        first.refresh_from_db()
        winner = next(r for r in results if isinstance(r, WorkOrderStage))
        assert first.status == StageStatus.IN_PROGRESS
        assert first.actual_start == winner.actual_start
        assert first.work_order.status == WorkOrderStatus.IN_PROGRESS
        # One start, one work-order start: one stage.started audit entry.
        assert list(
            AuditRecord.objects.filter(seq__gt=audit_before)
            .order_by("seq")
            .values_list("action", flat=True)
        ) == ["stage.started", "workorder.started"]
    assert OutboxEvent.objects.filter(name="stage.started").count() == ROUNDS


def test_concurrent_finishes_of_the_last_stage_complete_once(plant):
    supervisor, operators = plant
    for _ in range(ROUNDS):
        first, second = new_work_order(supervisor, operators)
        services.stage_start(stage_id=first.pk, actor=supervisor)
        services.stage_finish(stage_id=first.pk, actor=supervisor)
        services.stage_start(stage_id=second.pk, actor=supervisor)
        results = run_together(
            [
                partial(services.stage_finish, stage_id=second.pk, actor=op)
                for op in operators
            ]
        )
        assert outcome(results) == {
            "WorkOrderStage": 1,
            "IllegalTransition": WORKERS - 1,
        }
        second.refresh_from_db()
        assert second.status == StageStatus.DONE
        assert second.work_order.status == WorkOrderStatus.COMPLETED
    assert OutboxEvent.objects.filter(name="workorder.completed").count() == ROUNDS
    assert AuditRecord.objects.filter(action="workorder.completed").count() == ROUNDS


def test_concurrent_gate_lock_and_finish_never_finish_behind_the_lock(plant):
    # Finishing reads the gate under its row lock, so a lock either lands
    # after the finish has committed, or the finish sees it and is refused.
    supervisor, operators = plant
    gate = Gate.objects.get(stage__code="S1")
    outcomes = Counter()
    for _ in range(ROUNDS * 3):
        first, _second = new_work_order(supervisor, operators[:1])
        services.stage_start(stage_id=first.pk, actor=supervisor)
        audit_before = last_seq()
        results = run_together(
            [
                partial(services.stage_finish, stage_id=first.pk, actor=operators[0]),
                partial(
                    services.gate_set,
                    gate_id=gate.pk,
                    action="lock",
                    reason="Seal Check Failed",
                    actor=supervisor,
                ),
            ]
        )
        finished, locked = results
        assert isinstance(locked, Gate)
        first.refresh_from_db()
        if isinstance(finished, WorkOrderStage):
            seqs = dict(
                AuditRecord.objects.filter(
                    seq__gt=audit_before,
                    action__in=["stage.completed", "gate.locked"],
                ).values_list("action", "seq")
            )
            assert seqs["stage.completed"] < seqs["gate.locked"]
            assert first.status == StageStatus.DONE
            outcomes["finished first"] += 1
        else:
            assert isinstance(finished, IllegalTransition)
            assert finished.code == "gate_not_open"
            assert first.status == StageStatus.IN_PROGRESS
            outcomes["locked first"] += 1
        services.gate_set(
            gate_id=gate.pk, action="open", actor=supervisor, password=PASSWORD
        )
    assert sum(outcomes.values()) == ROUNDS * 3


def test_gate_changes_racing_stage_starts_do_not_deadlock(plant):
    # Regression: the row locks took the joined runbook and stage rows too,
    # and deadlocked against the audit chain's lock.
    supervisor, operators = plant
    gate = Gate.objects.get(stage__code="S1")
    stages = [new_work_order(supervisor, operators[:1])[0] for _ in range(30)]

    def start_all():
        refusals = []
        for stage in stages:
            try:
                services.stage_start(stage_id=stage.pk, actor=operators[0])
            except IllegalTransition as exc:
                refusals.append(exc.code)
        return refusals

    def toggle_gate():
        for _ in range(30):
            services.gate_set(
                gate_id=gate.pk, action="lock", reason="Leak retest", actor=supervisor
            )
            services.gate_set(
                gate_id=gate.pk, action="open", actor=supervisor, password=PASSWORD
            )
        return "toggled"

    refusals, toggled = run_together([start_all, toggle_gate])
    assert isinstance(refusals, list), refusals
    assert set(refusals) <= {"gate_locked"}
    assert toggled == "toggled"
    started = WorkOrderStage.objects.filter(
        pk__in=[s.pk for s in stages], status=StageStatus.IN_PROGRESS
    ).count()
    assert started + len(refusals) == len(stages)
    assert audit_chain_verify().ok is True


def test_issues_raised_while_stages_move_do_not_deadlock(plant):
    # Regression: an issue references its work order and stage; the foreign-key
    # check at commit waited on the move's FOR UPDATE lock while the move waited
    # on the audit chain lock the issue's transaction held.
    supervisor, operators = plant
    Stage.objects.filter(runbook__slug="assembly").update(standard_minutes=1)
    Runbook.objects.filter(slug="assembly").update(sequential=False)
    stages = [stage for _ in range(12) for stage in new_work_order(supervisor, [])]

    def move_all():
        for stage in stages:
            services.stage_start(stage_id=stage.pk, actor=supervisor)
            services.stage_hold(
                stage_id=stage.pk, reason="Shift change", actor=supervisor
            )
        return "moved"

    def raise_all():
        for stage in stages:
            exception_services.stage_issue_raise(
                stage_id=stage.pk,
                type="material_shortage",
                description="Harness kits short",
                actor=operators[0],
            )
        return "raised"

    assert run_together([move_all, raise_all]) == ["moved", "raised"]
    assert WorkOrderStage.objects.filter(status=StageStatus.HOLD).count() == len(stages)
    assert audit_chain_verify().ok is True
