"""The control tower's computed read model: each status rule, current stage,
block reason, progress, last update, stage aggregation, and its query cost.

Scenarios are built through the services (work orders, stage moves, gates,
exceptions), then read through ``bpmos.dashboards.controltower`` in-process; the
endpoints' payloads are checked in ``test_control_tower_api.py``.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bpmos.dashboards import controltower
from bpmos.dashboards.controltower import RunbookHealth, StageState
from exceptions import services as exception_services
from exceptions.models import PlantException
from runbooks import services
from runbooks.models import (
    Gate,
    GateStatus,
    Runbook,
    RunbookKind,
    WorkOrder,
    WorkOrderStage,
)
from tests.conftest import PASSWORD
from tests.factories_tower import (
    at,
    finish_through,
    hold,
    make_gate,
    make_runbook,
    make_work_order,
    raise_exception,
    stage_of,
    start,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(make_user):
    """A supervisor: may move any stage and set any gate."""
    return make_user("supervisor")


@pytest.fixture
def runbook(db):
    return make_runbook()


def summary(slug: str = "manufacturing", **kwargs):
    """The one summary of ``slug`` from the list the tower serves."""
    found = [s for s in controltower.runbook_summary_list(**kwargs) if s.id == slug]
    assert len(found) == 1
    return found[0]


def stages_by_code(slug: str = "manufacturing") -> dict[str, object]:
    return {
        detail.name.rsplit("(", 1)[1].rstrip(")"): detail
        for detail in controltower.runbook_stage_list(slug=slug)
    }


# --- status: one minimal scenario per rule -------------------------------------------


def test_idle_without_active_work_orders(runbook, boss):
    cancelled = make_work_order(runbook, boss, lot_no="LOT-X")
    services.work_order_cancel(work_order_id=cancelled.pk, reason="dup", actor=boss)
    result = summary()
    assert result.status == RunbookHealth.IDLE
    assert result.current_stage is None
    assert result.block_reason is None
    assert result.progress == 0


def test_healthy_when_active_work_orders_wait_to_start(runbook, boss):
    make_work_order(runbook, boss)
    result = summary()
    assert result.status == RunbookHealth.HEALTHY
    assert result.current_stage == "S1 Cell Inbound"
    assert result.block_reason is None
    assert result.progress == 0


def test_running_while_a_stage_is_in_progress(runbook, boss):
    work_order = make_work_order(runbook, boss)
    finish_through(work_order, "S1", boss)
    start(work_order, "S2", boss)
    result = summary()
    assert result.status == RunbookHealth.RUNNING
    assert result.current_stage == "S2 Cell Grading"
    assert result.block_reason is None
    assert result.progress == 16  # 1 of 6 done, rounded down


def test_degraded_by_an_open_deviation(runbook, boss):
    work_order = make_work_order(runbook, boss)
    start(work_order, "S1", boss)
    raise_exception(boss, runbook=runbook, severity="high", is_blocking=False)
    result = summary()
    assert result.status == RunbookHealth.DEGRADED
    assert result.block_reason is None
    assert result.current_stage == "S1 Cell Inbound"


def test_degraded_by_a_closed_gate_on_a_current_stage(runbook, boss):
    make_gate(stage_of(runbook, "S1"), status=GateStatus.CLOSED)
    make_work_order(runbook, boss)
    assert summary().status == RunbookHealth.DEGRADED


def test_a_closed_gate_where_no_work_order_stands_does_not_degrade(runbook, boss):
    make_gate(stage_of(runbook, "S4"), status=GateStatus.CLOSED)
    make_work_order(runbook, boss)
    assert summary().status == RunbookHealth.HEALTHY


def test_degraded_when_a_stage_is_past_its_planned_end(runbook, boss):
    work_order = make_work_order(runbook, boss, start=at("2026-03-01T06:00:00"))
    start(work_order, "S1", boss)
    s1_end = WorkOrderStage.objects.get(work_order=work_order, position=1).planned_end
    assert summary(now=s1_end - timedelta(seconds=1)).status == RunbookHealth.RUNNING
    late = summary(now=s1_end + timedelta(seconds=1))
    assert late.status == RunbookHealth.DEGRADED
    assert late.block_reason is None


def test_blocked_by_a_locked_gate_where_a_work_order_stands(runbook, boss):
    gate = make_gate(stage_of(runbook, "S5"), condition="Seal Integrity Check")
    work_order = make_work_order(runbook, boss)
    finish_through(work_order, "S4", boss)
    services.gate_set(
        gate_id=gate.pk, action="lock", reason="Seal Check Failed", actor=boss
    )
    result = summary()
    assert result.status == RunbookHealth.BLOCKED
    assert result.current_stage == "S5 Module Assembly"
    assert result.block_reason == "Gate Interlock: Seal Check Failed"
    assert result.progress == 66  # 4 of 6


def test_a_locked_gate_ahead_of_every_work_order_does_not_block(runbook, boss):
    make_gate(stage_of(runbook, "S5"), status=GateStatus.LOCKED)
    work_order = make_work_order(runbook, boss)
    start(work_order, "S1", boss)
    assert summary().status == RunbookHealth.RUNNING


def test_locked_gate_without_reason_names_its_condition(runbook, boss):
    make_gate(stage_of(runbook, "S1"), condition="ESD Check", status="locked")
    make_work_order(runbook, boss)
    assert summary().block_reason == "Gate Interlock: ESD Check"


def test_blocked_by_a_held_stage(runbook, boss):
    work_order = make_work_order(runbook, boss)
    finish_through(work_order, "S2", boss)
    start(work_order, "S3", boss)
    hold(work_order, "S3", boss, "Cell lot on quarantine")
    result = summary()
    assert result.status == RunbookHealth.BLOCKED
    assert result.current_stage == "S3 Cell Stacking"
    assert result.block_reason == "Stage Hold: Cell lot on quarantine"


def test_blocked_by_a_critical_exception_even_unflagged(runbook, boss):
    work_order = make_work_order(runbook, boss)
    start(work_order, "S1", boss)
    raise_exception(
        boss,
        runbook=runbook,
        stage=stage_of(runbook, "S4"),
        type="quality_failure",
        severity="critical",
        is_blocking=False,
        title="Seal leak on module M-17",
    )
    result = summary()
    assert result.status == RunbookHealth.BLOCKED
    assert result.block_reason == "Quality Failure: Seal leak on module M-17"
    assert result.current_stage == "S4 Busbar Welding"  # the exception's stage


def test_blocking_exception_without_a_stage_keeps_the_running_stage(runbook, boss):
    work_order = make_work_order(runbook, boss)
    start(work_order, "S1", boss)
    raise_exception(boss, runbook=runbook, type="safety", title="Fire alarm")
    result = summary()
    assert result.status == RunbookHealth.BLOCKED
    assert result.block_reason == "Safety Incident: Fire alarm"
    assert result.current_stage == "S1 Cell Inbound"


def test_exception_linked_only_through_its_stage_counts(runbook, boss):
    make_work_order(runbook, boss)
    raise_exception(boss, stage=stage_of(runbook, "S2"), severity="low")
    assert summary().status == RunbookHealth.DEGRADED


def test_block_reason_precedence_exception_then_gate_then_hold(runbook, boss):
    gate = make_gate(stage_of(runbook, "S2"))
    held_order = make_work_order(runbook, boss, lot_no="LOT-H")
    hold(held_order, "S1", boss, "Waiting for cells")
    gated_order = make_work_order(runbook, boss, lot_no="LOT-G")
    finish_through(gated_order, "S1", boss)
    services.gate_set(gate_id=gate.pk, action="lock", reason="Torque", actor=boss)
    blocker = raise_exception(
        boss,
        runbook=runbook,
        type="equipment_fault",
        title="Press down",
        stage=stage_of(runbook, "S6"),
        is_blocking=True,
    )
    assert summary().block_reason == "Equipment Fault: Press down"
    assert summary().current_stage == "S6 End-of-Line Test"

    exception_services.exception_resolve(
        exception_id=blocker.pk, resolution_note="Press replaced", actor=boss
    )
    assert summary().block_reason == "Gate Interlock: Torque"
    assert summary().current_stage == "S2 Cell Grading"

    services.gate_set(gate_id=gate.pk, action="open", actor=boss, password=PASSWORD)
    assert summary().block_reason == "Stage Hold: Waiting for cells"
    assert summary().current_stage == "S1 Cell Inbound"


def test_most_severe_blocking_exception_names_the_block(runbook, boss):
    make_work_order(runbook, boss)
    raise_exception(
        boss, runbook=runbook, type="safety", title="Spill", severity="high"
    )
    raise_exception(
        boss,
        runbook=runbook,
        type="quality_failure",
        title="Thermal event",
        severity="critical",
    )
    raise_exception(
        boss, runbook=runbook, type="safety", title="Later", severity="high"
    )
    assert summary().block_reason == "Quality Failure: Thermal event"


def test_acknowledged_exceptions_still_count_resolved_ones_do_not(runbook, boss):
    make_work_order(runbook, boss)
    exc = raise_exception(boss, runbook=runbook, type="safety", title="Spill")
    exception_services.exception_acknowledge(exception_id=exc.pk, actor=boss)
    assert summary().status == RunbookHealth.BLOCKED
    exception_services.exception_resolve(
        exception_id=exc.pk, resolution_note="Cleaned", actor=boss
    )
    assert summary().status == RunbookHealth.HEALTHY


def test_completed_work_orders_do_not_count(runbook, boss):
    work_order = make_work_order(runbook, boss)
    finish_through(work_order, "S6", boss)
    assert WorkOrder.objects.get(pk=work_order.pk).status == "completed"
    result = summary()
    assert (result.status, result.progress, result.current_stage) == (
        RunbookHealth.IDLE,
        0,
        None,
    )


def test_exceptions_of_another_runbook_do_not_leak(runbook, boss):
    other = make_runbook("dispatch", title="Dispatch", prefix="dsp")
    make_work_order(runbook, boss)
    raise_exception(boss, runbook=other, type="safety", title="Dock fire")
    assert summary().status == RunbookHealth.HEALTHY
    assert summary("dispatch").status == RunbookHealth.BLOCKED


# --- current stage and progress -------------------------------------------------------


def test_current_stage_is_where_most_work_is_in_progress(runbook, boss):
    ahead = make_work_order(runbook, boss, lot_no="A")
    finish_through(ahead, "S1", boss)
    start(ahead, "S2", boss)
    for lot in ("B", "C"):
        start(make_work_order(runbook, boss, lot_no=lot), "S1", boss)
    assert summary().current_stage == "S1 Cell Inbound"  # 2 in progress against 1


def test_current_stage_ties_go_to_the_lowest_position(runbook, boss):
    ahead = make_work_order(runbook, boss, lot_no="A")
    finish_through(ahead, "S2", boss)
    start(ahead, "S3", boss)
    behind = make_work_order(runbook, boss, lot_no="B")
    finish_through(behind, "S1", boss)
    start(behind, "S2", boss)
    assert summary().current_stage == "S2 Cell Grading"


def test_current_stage_without_work_in_progress_is_the_lowest_current(runbook, boss):
    ahead = make_work_order(runbook, boss, lot_no="A")
    finish_through(ahead, "S3", boss)
    behind = make_work_order(runbook, boss, lot_no="B")
    finish_through(behind, "S1", boss)
    result = summary()
    assert result.status == RunbookHealth.HEALTHY
    assert result.current_stage == "S2 Cell Grading"
    assert result.progress == 33  # 4 of 12 done


def test_progress_counts_every_active_work_order(runbook, boss):
    first = make_work_order(runbook, boss, lot_no="A")
    finish_through(first, "S5", boss)
    make_work_order(runbook, boss, lot_no="B")
    assert summary().progress == 41  # 5 of 12, rounded down


# --- last update ----------------------------------------------------------------------


def test_last_update_is_the_latest_change_of_any_source(runbook, boss):
    gate = make_gate(stage_of(runbook, "S2"))
    work_order = make_work_order(runbook, boss)
    start(work_order, "S1", boss)
    exc = raise_exception(boss, runbook=runbook)
    base = at("2026-01-15T08:00:00")
    Runbook.objects.update(updated_at=base)
    WorkOrder.objects.update(updated_at=base)
    WorkOrderStage.objects.update(updated_at=base)
    Gate.objects.update(changed_at=base)
    PlantException.objects.update(updated_at=base)
    assert summary().last_update == base

    sources = [
        (Runbook.objects.all(), "updated_at"),
        (WorkOrder.objects.all(), "updated_at"),
        (WorkOrderStage.objects.filter(position=3), "updated_at"),
        (Gate.objects.filter(pk=gate.pk), "changed_at"),
        (PlantException.objects.filter(pk=exc.pk), "updated_at"),
    ]
    for minute, (queryset, column) in enumerate(sources, start=1):
        later = base + timedelta(minutes=minute)
        queryset.update(**{column: later})
        assert summary().last_update == later, column


def test_resolving_an_exception_is_a_change(runbook, boss):
    exc = raise_exception(boss, runbook=runbook)
    exception_services.exception_resolve(
        exception_id=exc.pk, resolution_note="ok", actor=boss
    )
    Runbook.objects.update(updated_at=at("2026-01-01T00:00:00"))
    PlantException.objects.update(updated_at=at("2026-01-02T00:00:00"))
    assert summary().last_update == at("2026-01-02T00:00:00")


# --- listing -------------------------------------------------------------------------


def test_only_active_runbooks_are_listed_in_slug_order(boss):
    make_runbook("manufacturing")
    make_runbook("dispatch", title="Dispatch", prefix="dsp", kind=RunbookKind.DISPATCH)
    make_runbook("retired", title="Old", prefix="old", is_active=False)
    assert [s.id for s in controltower.runbook_summary_list()] == [
        "dispatch",
        "manufacturing",
    ]


def test_detail_counts_work_orders_by_status(runbook, boss):
    make_work_order(runbook, boss, lot_no="P")
    running = make_work_order(runbook, boss, lot_no="R")
    start(running, "S1", boss)
    done = make_work_order(runbook, boss, lot_no="D")
    finish_through(done, "S6", boss)
    for lot in ("X1", "X2"):
        order = make_work_order(runbook, boss, lot_no=lot)
        services.work_order_cancel(work_order_id=order.pk, reason="dup", actor=boss)
    detail = controltower.runbook_detail_get(slug="manufacturing")
    assert detail.work_orders == controltower.WorkOrderCounts(
        planned=1, in_progress=1, completed=1, cancelled=2
    )
    assert (detail.kind, detail.stage_count, detail.sequential) == (
        "Manufacturing",
        6,
        True,
    )
    assert (detail.custody, detail.warranty) == (None, None)


# --- stage aggregation -------------------------------------------------------------


def test_stage_status_aggregates_over_active_work_orders(runbook, boss):
    a = make_work_order(runbook, boss, lot_no="A")
    finish_through(a, "S3", boss)
    start(a, "S4", boss)
    b = make_work_order(runbook, boss, lot_no="B")
    finish_through(b, "S2", boss)
    hold(b, "S3", boss, "Jig broken")
    stages = stages_by_code()
    assert {code: detail.status for code, detail in stages.items()} == {
        "S1": StageState.COMPLETED,  # done by both
        "S2": StageState.COMPLETED,
        "S3": StageState.HOLD,  # done by A, held by B: Hold wins
        "S4": StageState.IN_PROGRESS,
        "S5": StageState.PENDING,
        "S6": StageState.PENDING,
    }


def test_stage_done_by_one_active_order_of_two_is_pending(runbook, boss):
    finish_through(make_work_order(runbook, boss, lot_no="A"), "S1", boss)
    make_work_order(runbook, boss, lot_no="B")
    assert stages_by_code()["S1"].status == StageState.PENDING


def test_stages_are_pending_without_active_work_orders(runbook, boss):
    finish_through(make_work_order(runbook, boss), "S6", boss)  # completed
    assert {d.status for d in stages_by_code().values()} == {StageState.PENDING}


def test_stage_gate_is_the_most_restrictive(runbook):
    s1, s2, s3 = (stage_of(runbook, code) for code in ("S1", "S2", "S3"))
    make_gate(s1, condition="A", status=GateStatus.OPEN)
    make_gate(s1, condition="B", status=GateStatus.CLOSED, type="safety")
    make_gate(s1, condition="C", status=GateStatus.OPEN)
    make_gate(s2, condition="D", status=GateStatus.CLOSED)
    make_gate(s2, condition="E", status=GateStatus.LOCKED, type="quality")
    make_gate(s3, condition="F", status=GateStatus.OPEN, type="approval")
    stages = stages_by_code()
    shown = {
        code: (d.gate.status, d.gate.type, d.gate.condition) if d.gate else None
        for code, d in stages.items()
    }
    assert shown == {
        "S1": ("Closed", "Safety", "B"),
        "S2": ("Locked", "Quality", "E"),
        "S3": ("Open", "Approval", "F"),
        "S4": None,
        "S5": None,
        "S6": None,
    }


def test_stage_exception_is_the_most_severe_unresolved_one(runbook, boss):
    s2 = stage_of(runbook, "S2")
    raise_exception(boss, stage=s2, type="other", severity="low")
    high = raise_exception(boss, stage=s2, type="equipment_fault", severity="high")
    raise_exception(boss, stage=s2, type="other", severity="high")  # newer, as severe
    critical = raise_exception(
        boss, stage=s2, type="quality_failure", severity="critical"
    )
    stages = stages_by_code()
    assert stages["S1"].exception is None
    assert stages["S2"].exception == controltower.StageExceptionView(
        id=critical.code, type="Quality Failure", severity="Critical"
    )
    exception_services.exception_resolve(
        exception_id=critical.pk, resolution_note="Reworked", actor=boss
    )
    assert stages_by_code()["S2"].exception == controltower.StageExceptionView(
        id=high.code, type="Equipment Fault", severity="High"
    )


def test_unknown_runbook_is_not_found(db):
    from bpmos.errors import NotFound

    with pytest.raises(NotFound):
        controltower.runbook_stage_list(slug="nope")
    with pytest.raises(NotFound):
        controltower.runbook_detail_get(slug="nope")


# --- query cost ----------------------------------------------------------------------


def _busy_plant(boss, runbooks: int, orders_each: int, first: int = 0) -> None:
    for n in range(first, first + runbooks):
        runbook = make_runbook(f"rb-{n}", title=f"Runbook {n}", prefix=f"r{n}")
        make_gate(stage_of(runbook, "S2"), status=GateStatus.CLOSED)
        make_gate(stage_of(runbook, "S3"))
        for lot in range(orders_each):
            order = make_work_order(runbook, boss, lot_no=f"{n}-{lot}")
            start(order, "S1", boss)
        raise_exception(boss, runbook=runbook, stage=stage_of(runbook, "S1"))


def _queries(func, **kwargs) -> int:
    with CaptureQueriesContext(connection) as ctx:
        func(**kwargs)
    return len(ctx.captured_queries)


def test_summary_list_costs_seven_queries_whatever_the_plant_size(boss):
    _busy_plant(boss, runbooks=1, orders_each=1)
    assert _queries(controltower.runbook_summary_list) == 7
    _busy_plant(boss, runbooks=4, orders_each=5, first=1)
    assert len(controltower.runbook_summary_list()) == 5
    assert _queries(controltower.runbook_summary_list) == 7


def test_detail_and_stages_cost_a_fixed_number_of_queries(boss):
    _busy_plant(boss, runbooks=1, orders_each=1)
    # 8, + the custody and warranty context of the work orders' lots
    assert _queries(controltower.runbook_detail_get, slug="rb-0") == 10
    assert _queries(controltower.runbook_stage_list, slug="rb-0") == 6
    for lot in range(6):
        start(
            make_work_order(Runbook.objects.get(), boss, lot_no=f"x{lot}"), "S1", boss
        )
    assert _queries(controltower.runbook_detail_get, slug="rb-0") == 10
    assert _queries(controltower.runbook_stage_list, slug="rb-0") == 6


def test_no_runbooks_costs_one_query(db):
    assert _queries(controltower.runbook_summary_list) == 1
    assert controltower.runbook_summary_list() == []
