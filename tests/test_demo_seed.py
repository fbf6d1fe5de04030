"""The demo plant seed: what it creates, that it is idempotent, that its history
is the services' real history."""

import io
import re
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from elog.services import audit_chain_verify
from exceptions.models import PlantException
from runbooks.models import (
    Gate,
    Runbook,
    Stage,
    StageAssignment,
    WorkOrder,
    WorkOrderStage,
)

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_models()
        if model._meta.managed
    }


def test_second_run_creates_nothing(demo_plant):
    first = row_counts()
    second_output = seed()
    assert row_counts() == first
    assert "work orders: demo lots already present" in second_output
    assert "exceptions: present" in second_output
    assert "compliance: categories already declared" in second_output


@pytest.mark.parametrize(
    "later",
    [timedelta(hours=1), timedelta(hours=9), timedelta(days=1, hours=1)],
    ids=["next-hour", "next-shift", "next-day"],
)
def test_second_run_later_creates_and_publishes_nothing(demo_plant, later):
    # The clock moves on between the runs (an hour, a shift, past midnight): a
    # re-run must not refresh what the first one seeded (OEE snapshots, hourly
    # roll-ups), nor announce a line's health changing with the time.
    first = row_counts()
    with time_machine.travel(timezone.now() + later, tick=False):
        seed()
    assert row_counts() == first


def test_runbooks_and_their_stages(demo_plant):
    assert list(Runbook.objects.values_list("slug", "is_default", "sequential")) == [
        ("dispatch", False, True),
        ("manufacturing", True, True),
        ("quality", False, False),
    ]
    manufacturing = Runbook.objects.get(slug="manufacturing")
    assert manufacturing.title == "Manufacturing Execution"
    assert manufacturing.roles == ["Planner", "Operator"]
    assert [s.label for s in manufacturing.stages.all()] == [
        "S1 Cell Inbound",
        "S2 Cell Grading OCV/IR",
        "S3 Cell Sorting",
        "S4 Module Stacking",
        "S5 Module Assembly",
        "S6 Module Welding",
        "S7 Module Test",
        "S8 Pack Assembly",
        "S9 Passport Registration",
        "S10 BMS Provisioning",
        "S11 End-of-Line Test",
        "S12 Warehouse",
    ]
    assert list(
        Stage.objects.filter(runbook__slug="dispatch").values_list("code", flat=True)
    ) == ["S13", "S14", "S15", "S16", "S17"]
    # Every stage has one gate and at least one step.
    assert Gate.objects.count() == Stage.objects.count() == 21
    assert not Stage.objects.filter(steps__isnull=True).exists()
    conditions = dict(
        Gate.objects.filter(stage__runbook=manufacturing).values_list(
            "stage__code", "condition"
        )
    )
    assert conditions["S5"] == "Seal Integrity Check"
    assert conditions["S7"] == "Insulation Resistance ≥ 100 MΩ"
    assert conditions["S11"] == "EOL Test Pass"


def test_gates_after_seeding(demo_plant):
    shut = {
        (g.stage.code, g.status, g.reason)
        for g in Gate.objects.exclude(status="open").select_related("stage")
    }
    assert shut == {
        ("S5", "locked", "Seal Check Failed"),
        ("S16", "closed", "E-way bill portal down; documents pending"),
    }


def test_work_orders_in_every_state(demo_plant):
    assert Counter(WorkOrder.objects.values_list("status", flat=True)) == {
        "completed": 3,
        "in_progress": 7,
        "planned": 4,
        "cancelled": 2,
    }
    assert Counter(WorkOrderStage.objects.values_list("status", flat=True)) == {
        "done": 60,
        "in_progress": 7,
        "hold": 2,
        "planned": 94,
    }
    held = dict(
        WorkOrderStage.objects.filter(status="hold").values_list(
            "stage__code", "hold_reason"
        )
    )
    assert held == {
        "S5": "Seal Check Failed: modules quarantined for helium leak retest",
        "S1": "Supplier CoA missing for P-7731",
    }
    # Everything in progress or on hold is assigned to the demo operator.
    active = WorkOrderStage.objects.filter(status__in=["in_progress", "hold"])
    assert set(
        StageAssignment.objects.filter(work_order_stage__in=active).values_list(
            "user__username", flat=True
        )
    ) == {"operator"}
    assert StageAssignment.objects.filter(work_order_stage__in=active).count() == 9
    # The quality runbook is free order: a later stage is done before the first.
    quality = WorkOrder.objects.get(runbook__slug="quality")
    assert list(quality.stages.values_list("status", flat=True)) == [
        "in_progress",
        "done",
        "planned",
        "planned",
    ]


def test_exceptions_open_acknowledged_and_resolved(demo_plant):
    rows = list(
        PlantException.objects.order_by("id").values_list(
            "type", "severity", "status", "is_blocking", "stage__code"
        )
    )
    assert rows == [
        ("quality_failure", "critical", "open", True, "S5"),
        ("equipment_fault", "high", "ack", False, "S5"),
        ("material_shortage", "medium", "open", False, "S8"),
        ("process_deviation", "low", "open", False, "S3"),
        ("safety", "high", "resolved", True, "S11"),
        ("quality_failure", "high", "resolved", False, "S2"),
        ("other", "medium", "ack", False, "S15"),
    ]
    assert not PlantException.objects.filter(
        status="resolved", resolution_note=""
    ).exists()


def test_history_is_the_services_history(demo_plant):
    actions = Counter(AuditRecord.objects.values_list("action", flat=True))
    statuses = Counter(WorkOrderStage.objects.values_list("status", flat=True))
    started = statuses["done"] + statuses["in_progress"] + 1  # + the one held at S5
    assert actions["stage.started"] == started
    assert actions["stage.completed"] == statuses["done"]
    assert actions["stage.held"] == 2
    assert actions["workorder.created"] == WorkOrder.objects.count()
    assert actions["workorder.completed"] == 3
    assert actions["workorder.cancelled"] == 2
    assert actions["gate.locked"] == 1
    assert actions["gate.closed"] == 1
    assert actions["exception.raised"] == 7
    assert actions["exception.resolved"] == 2
    assert actions["runbook.created"] == 3
    events = Counter(OutboxEvent.objects.values_list("name", flat=True))
    assert events["stage.started"] == started
    assert events["stage.completed"] == statuses["done"]
    assert events["gate.changed"] == 2
    assert events["exception.raised"] == 7
    assert audit_chain_verify().ok is True


def test_the_seed_says_what_it_is_doing_as_it_goes(demo_plant):
    # make run's longest silent step was this one: every line carries the
    # seconds since the start, each step is announced before it runs and
    # timed after, and the long steps say what they are doing inside.
    lines = demo_plant.splitlines()
    assert [line for line in lines if not re.match(r"\[ *\d+\.\ds\] ", line)] == []
    text = [line.split("] ", 1)[1] for line in lines]
    steps = [
        "accounts",
        "runbooks",
        "exceptions",
        "lines",
        "inventory",
        "passports",
        "scada",
        "compliance",
    ]
    assert text[0] == (
        f"seed_demo: 8 steps ({', '.join(steps)}); "
        "a first run takes up to a minute or two, a later one seconds"
    )
    assert [t for t in text if re.fullmatch(r"\[\d/8\] \w+ \.\.\.", t)] == [
        f"[{n}/8] {step} ..." for n, step in enumerate(steps, 1)
    ]
    done = [t for t in text if re.fullmatch(r"\[\d/8\] \w+ done in \d+\.\ds", t)]
    assert [t.split(" done")[0] for t in done] == [
        f"[{n}/8] {step}" for n, step in enumerate(steps, 1)
    ]
    assert re.fullmatch(r"seed_demo: done in \d+\.\ds", text[-1])
    for inside in (
        "  users: creating the demo users (password hashing: a few seconds) ...",
        "  work orders: driving 16 demo lots through their stages ...",
        "  lines: line-c: 14 days of readings for its machines ...",
        "  passports: building 21 packs, their cells, ledgers, telemetry ...",
        "  scada: connector 'Plant simulator' at opc.tcp://127.0.0.1:4841/bpmos/, "
        "47 tags (46 mapped to machines), rule 'Grading chamber over temperature'",
        "  compliance: 3 product categories declared",
    ):
        assert inside in text
    seconds = [float(re.match(r"\[ *(\d+\.\d)s\]", line).group(1)) for line in lines]
    assert seconds == sorted(seconds)


def test_the_demo_has_an_approved_return_the_supervisor_exports(demo_plant):
    """A fresh demo answers POST /api/compliance/export with a CSV (a plant with
    no approved return answers 409): the seed builds and approves one."""
    from compliance import returns
    from compliance.models import ComplianceReturn, ReturnStatus

    ret = ComplianceReturn.objects.get()
    assert ret.status == ReturnStatus.APPROVED
    assert ret.approved_by.username == "supervisor"
    assert ret.row_count > 0
    export = returns.return_export(
        return_id=None, schema_slug=None, actor=ret.approved_by, source="api"
    )
    assert export.rows == ret.row_count
    assert len(export.content.decode().splitlines()) == ret.row_count + 1
