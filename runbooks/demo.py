"""Demo plant production (docs/design.md §8): the Manufacturing, Dispatch and Quality
runbooks, and work orders in every state.

The work orders are driven through the services (create, assign, start, finish,
hold, cancel, gate lock), so the audit log and the event outbox hold their real
history. Those services stamp actual times with the clock, so the seed then
backdates each work order's done stages (``_backdate``): laid back to back and
ending at the moment the seed ran, each taking 70..130 % of its planned time
(a fixed pattern, ``PACE``), so the demo's stages are timed and their
``efficiency_score`` is a plausible figure rather than null (docs/metrics.md,
"Only timed work counts"). The audit log still says when each move was
recorded. The planned windows are set around the moment of seeding, some of
them already overdue.

Idempotent: a runbook whose slug exists is left as it is; the work orders are
one batch, skipped when any demo lot already exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from bpmos.accounts.models import User
from bpmos.roles import Role
from elog import audit
from runbooks import services
from runbooks.models import (
    Gate,
    GateType,
    Runbook,
    RunbookKind,
    Stage,
    Step,
    WorkOrder,
    WorkOrderStage,
)

ORDER = 20  # after the users (0); before the exceptions raised on these stages


@dataclass(frozen=True)
class StageSpec:
    code: str
    name: str
    minutes: int
    gate_type: str
    gate_condition: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class RunbookSpec:
    slug: str
    title: str
    kind: str
    description: str
    roles: tuple[str, ...]
    sequential: bool
    is_default: bool
    stage_prefix: str
    stages: tuple[StageSpec, ...]


MANUFACTURING = RunbookSpec(
    slug="manufacturing",
    title="Manufacturing Execution",
    kind=RunbookKind.MANUFACTURING,
    description="Cells in, graded and sorted; modules stacked, welded and tested; "
    "packs assembled, registered, provisioned, tested end of line and stored.",
    roles=("Planner", "Operator"),
    sequential=True,
    is_default=True,
    stage_prefix="mfg",
    stages=(
        StageSpec(
            "S1",
            "Cell Inbound",
            45,
            GateType.VALIDATION,
            "Supplier CoA and cell count match the ASN",
            (
                "Scan the pallet labels against the ASN",
                "Check the supplier certificate of analysis",
                "Count cells and move the pallet to incoming quarantine",
            ),
        ),
        StageSpec(
            "S2",
            "Cell Grading OCV/IR",
            90,
            GateType.QUALITY,
            "OCV 3.20 to 3.35 V and IR ≤ 0.25 mΩ",
            (
                "Load cells on the OCV/IR tester",
                "Record open-circuit voltage and internal resistance per cell",
                "Reject cells outside the grading window",
            ),
        ),
        StageSpec(
            "S3",
            "Cell Sorting",
            60,
            GateType.QUALITY,
            "Voltage spread ≤ 5 mV within each module set",
            (
                "Bin cells by capacity and IR",
                "Build matched module sets",
            ),
        ),
        StageSpec(
            "S4",
            "Module Stacking",
            60,
            GateType.SAFETY,
            "Cell polarity vision check pass",
            (
                "Apply adhesive and insulation film",
                "Stack cells in the module frame",
                "Run the polarity vision check",
            ),
        ),
        StageSpec(
            "S5",
            "Module Assembly",
            120,
            GateType.VALIDATION,
            "Seal Integrity Check",
            (
                "Fit end plates and side straps",
                "Fit the cell contact system",
                "Run the helium leak test on the module housing",
            ),
        ),
        StageSpec(
            "S6",
            "Module Welding",
            90,
            GateType.QUALITY,
            "Weld pull test ≥ 30 N",
            (
                "Laser-weld busbars to cell terminals",
                "Pull-test the sample welds",
            ),
        ),
        StageSpec(
            "S7",
            "Module Test",
            60,
            GateType.SAFETY,
            "Insulation Resistance ≥ 100 MΩ",
            (
                "Measure module voltage and cell balance",
                "Run the insulation resistance test at 1000 V DC",
            ),
        ),
        StageSpec(
            "S8",
            "Pack Assembly",
            150,
            GateType.INTERLOCK,
            "Torque audit complete",
            (
                "Place modules in the pack enclosure",
                "Fit the BMS, harness and contactors",
                "Torque busbar joints and record the values",
                "Close and seal the enclosure",
            ),
        ),
        StageSpec(
            "S9",
            "Passport Registration",
            20,
            GateType.VALIDATION,
            "Passport identity record valid",
            (
                "Register the pack passport with its module genealogy",
                "Print and apply the QR and BPAN label",
            ),
        ),
        StageSpec(
            "S10",
            "BMS Provisioning",
            30,
            GateType.VALIDATION,
            "Firmware signature verified",
            (
                "Flash the released BMS firmware over CAN",
                "Write the pack serial and calibration parameters",
            ),
        ),
        StageSpec(
            "S11",
            "End-of-Line Test",
            90,
            GateType.QUALITY,
            "EOL Test Pass",
            (
                "Run the charge/discharge pulse test",
                "Check isolation, contactor and CAN communication",
                "Record the EOL report against the passport",
            ),
        ),
        StageSpec(
            "S12",
            "Warehouse",
            30,
            GateType.APPROVAL,
            "QA release signed",
            (
                "Set the storage state of charge",
                "Put away to the finished-goods rack",
            ),
        ),
    ),
)

DISPATCH = RunbookSpec(
    slug="dispatch",
    title="Dispatch",
    kind=RunbookKind.DISPATCH,
    description="Finished packs picked, packed and labelled as dangerous goods, "
    "handed to the carrier, shipped and confirmed delivered.",
    roles=("Supervisor", "Operator"),
    sequential=True,
    is_default=False,
    stage_prefix="dsp",
    stages=(
        StageSpec(
            "S13",
            "Pick",
            20,
            GateType.VALIDATION,
            "Picked serials match the dispatch order",
            ("Pick packs by serial from the finished-goods rack",),
        ),
        StageSpec(
            "S14",
            "Pack & Label",
            40,
            GateType.SAFETY,
            "UN38.3 label applied and SoC ≤ 30 %",
            (
                "Check the shipping state of charge",
                "Pack in certified boxes",
                "Apply the Class 9 and UN3480 labels",
            ),
        ),
        StageSpec(
            "S15",
            "Custody Handover",
            20,
            GateType.APPROVAL,
            "Carrier identity verified",
            (
                "Verify the driver and vehicle",
                "Record the custody transfer in the passports",
            ),
        ),
        StageSpec(
            "S16",
            "Dispatch",
            15,
            GateType.VALIDATION,
            "Shipping documents complete",
            ("Issue the invoice, e-way bill and DG declaration",),
        ),
        StageSpec(
            "S17",
            "Proof of Delivery",
            30,
            GateType.VALIDATION,
            "Signed POD received",
            ("Attach the signed proof of delivery",),
        ),
    ),
)

QUALITY = RunbookSpec(
    slug="quality",
    title="Quality Audit",
    kind=RunbookKind.QUALITY,
    description="Sample audits of cells, modules and packs; the checks run in "
    "any order.",
    roles=("Supervisor", "Operator"),
    sequential=False,
    is_default=False,
    stage_prefix="qa",
    stages=(
        StageSpec(
            "Q1",
            "Incoming Cell Audit",
            60,
            GateType.QUALITY,
            "Capacity sample within ±2 % of datasheet",
            ("Draw 5 cells per lot", "Run a C/3 capacity check"),
        ),
        StageSpec(
            "Q2",
            "Module Teardown",
            120,
            GateType.QUALITY,
            "Weld cross-sections within specification",
            ("Tear down one module", "Cross-section and inspect 4 welds"),
        ),
        StageSpec(
            "Q3",
            "Vibration & Shock",
            240,
            GateType.SAFETY,
            "No leaks or loose joints after UN38.3 T3/T4",
            ("Run the T3 vibration profile", "Run the T4 shock profile"),
        ),
        StageSpec(
            "Q4",
            "Release Review",
            30,
            GateType.APPROVAL,
            "Quality engineer sign-off",
            ("Review the audit results and release or quarantine the lot",),
        ),
    ),
)

RUNBOOKS = (MANUFACTURING, DISPATCH, QUALITY)


@dataclass(frozen=True)
class OrderSpec:
    """A demo work order and how far to drive it.

    The first ``done`` stages (taken in ``order`` first, then template order)
    are started and finished; with ``start_next`` the one after them is
    started; ``hold`` then holds that one with the reason; ``cancel`` cancels
    the work order with the reason. Times are hours from the moment of seeding.
    """

    runbook: str
    product_code: str
    lot_no: str
    qty: int
    start_hours: float
    end_hours: float
    done: int = 0
    start_next: bool = False
    hold: str = ""
    cancel: str = ""
    order: tuple[int, ...] = field(default=())


M, D, Q = "manufacturing", "dispatch", "quality"
LFP48, ESS51, NMC72 = "PACK-LFP-48V-100AH", "PACK-LFP-51V-280AH", "PACK-NMC-72V-60AH"

# Product codes: chemistry, nominal voltage, capacity. Lots numbered by release.
ORDERS = (
    # Completed: one on time, one an hour late.
    OrderSpec(M, LFP48, "LOT-LFP48-0401", 40, -20, 2, done=12),
    OrderSpec(M, ESS51, "LOT-ESS51-0402", 12, -26, -1, done=12),
    # In progress at S11 End-of-Line Test, S8, S5 (behind the locked gate), S3.
    OrderSpec(M, LFP48, "LOT-LFP48-0403", 40, -18, 1, done=10, start_next=True),
    OrderSpec(M, ESS51, "LOT-ESS51-0408", 8, -14, 3, done=7, start_next=True),
    OrderSpec(M, LFP48, "LOT-LFP48-0406", 40, -10, 6, done=4, start_next=True),
    OrderSpec(M, NMC72, "LOT-NMC72-0405", 60, -6, 10, done=2, start_next=True),
    # On hold: at S5 after the seal check failed (overdue), and at S1 before start.
    OrderSpec(
        M,
        LFP48,
        "LOT-LFP48-0407",
        40,
        -12,
        -1,
        done=4,
        start_next=True,
        hold="Seal Check Failed: modules quarantined for helium leak retest",
    ),
    OrderSpec(
        M, NMC72, "LOT-NMC72-0411", 30, -1, 14, hold="Supplier CoA missing for P-7731"
    ),
    # Planned: one due to start in two hours, one that should have started.
    OrderSpec(M, NMC72, "LOT-NMC72-0409", 60, 2, 18),
    OrderSpec(M, LFP48, "LOT-LFP48-0410", 40, -3, 12),
    # Cancelled: once at S2 grading, once before it started.
    OrderSpec(
        M,
        ESS51,
        "LOT-ESS51-0404",
        16,
        -30,
        -6,
        done=1,
        start_next=True,
        cancel="Cell lot failed incoming grading; returned to the supplier",
    ),
    OrderSpec(
        M, ESS51, "LOT-ESS51-0412", 10, 24, 48, cancel="Customer moved to 314 Ah cells"
    ),
    # Dispatch of finished lots: delivered, at custody handover, planned.
    OrderSpec(D, LFP48, "LOT-LFP48-0401", 40, -4, 1, done=5),
    OrderSpec(D, ESS51, "LOT-ESS51-0402", 12, -2, 3, done=2, start_next=True),
    OrderSpec(D, LFP48, "LOT-LFP48-0403", 40, 6, 10),
    # Non-sequential: the module teardown finished before the cell audit began.
    OrderSpec(
        Q,
        "MOD-LFP-16S-100AH",
        "LOT-LFP48-0406",
        2,
        -5,
        6,
        done=1,
        start_next=True,
        order=(1,),
    ),
)

# Gate changes after the work orders have moved (a supervisor's actions).
GATE_ACTIONS = (
    ("manufacturing", "S5", "lock", "Seal Check Failed"),
    ("dispatch", "S16", "close", "E-way bill portal down; documents pending"),
)


def _user(role: Role) -> User:
    try:
        return User.objects.get(username=role.value)
    except User.DoesNotExist as exc:
        raise RuntimeError(
            f"Demo user {role.value!r} is missing; the users seed runs first."
        ) from exc


def _seed_runbook(spec: RunbookSpec, log) -> None:
    if Runbook.objects.filter(slug=spec.slug).exists():
        log(f"runbooks: {spec.slug} already present")
        return
    # The plant has one default runbook; a default set by hand is kept.
    is_default = (
        spec.is_default and not Runbook.objects.filter(is_default=True).exists()
    )
    runbook = Runbook.objects.create(
        slug=spec.slug,
        title=spec.title,
        kind=spec.kind,
        description=spec.description,
        roles=list(spec.roles),
        sequential=spec.sequential,
        is_default=is_default,
    )
    for position, stage_spec in enumerate(spec.stages, start=1):
        stage = Stage.objects.create(
            runbook=runbook,
            slug=f"{spec.stage_prefix}-{position:02d}",
            code=stage_spec.code,
            name=stage_spec.name,
            position=position,
            standard_minutes=stage_spec.minutes,
        )
        Gate.objects.create(
            stage=stage, type=stage_spec.gate_type, condition=stage_spec.gate_condition
        )
        Step.objects.bulk_create(
            Step(stage=stage, position=n, instruction=text)
            for n, text in enumerate(stage_spec.steps, start=1)
        )
    audit.record(
        actor=None,
        action="runbook.created",
        target=runbook,
        after={
            "slug": runbook.slug,
            "title": runbook.title,
            "stages": [s.code for s in spec.stages],
        },
    )
    log(f"runbooks: created {spec.slug} ({len(spec.stages)} stages)")


def _sequence(spec: OrderSpec, work_order: WorkOrder) -> list:
    stages = list(work_order.stages.order_by("position"))
    return [stages[i] for i in spec.order] + [
        s for i, s in enumerate(stages) if i not in spec.order
    ]


def _drive(spec: OrderSpec, *, planner: User, operator: User, now) -> WorkOrder:
    """Create the work order and move it up to (not including) holds and cancels."""
    work_order = services.work_order_create(
        runbook_slug=spec.runbook,
        product_code=spec.product_code,
        lot_no=spec.lot_no,
        qty=spec.qty,
        planned_start=now + timedelta(hours=spec.start_hours),
        planned_end=now + timedelta(hours=spec.end_hours),
        actor=planner,
    )
    sequence = _sequence(spec, work_order)
    touched = sequence[: spec.done + (1 if spec.start_next or spec.hold else 0)]
    for stage in touched:
        services.stage_assign(stage_id=stage.pk, user_id=operator.pk, actor=planner)
    for stage in sequence[: spec.done]:
        services.stage_start(stage_id=stage.pk, actor=operator)
        services.stage_finish(stage_id=stage.pk, actor=operator)
    if spec.start_next:
        services.stage_start(stage_id=sequence[spec.done].pk, actor=operator)
    return work_order


# The demo's done stages take these shares of their planned time, in turn
# (deterministic; every one within 70..130 %, so every efficiency 77..143 %).
PACE = (0.85, 1.10, 0.95, 1.25, 0.75, 1.05, 1.30, 0.90, 0.70, 1.15, 1.00, 0.80)


def _backdate(stages: list[WorkOrderStage], *, end, offset: int) -> None:
    """Give ``stages`` (done, in the order they were done) actual times that
    end at ``end``, back to back, each ``PACE[(offset + n) % len(PACE)]`` of
    its planned time. The stage started after them starts after ``end``."""
    for n, stage in reversed(list(enumerate(stages))):
        took = (stage.planned_end - stage.planned_start) * PACE[
            (offset + n) % len(PACE)
        ]
        WorkOrderStage.objects.filter(pk=stage.pk).update(
            actual_start=end - took, actual_end=end
        )
        end -= took


def _settle(spec: OrderSpec, work_order: WorkOrder, *, planner, operator) -> None:
    """The moves that come after the gate changes: holds and cancellations."""
    if spec.hold:
        stage = _sequence(spec, work_order)[spec.done]
        services.stage_hold(stage_id=stage.pk, reason=spec.hold, actor=operator)
    if spec.cancel:
        services.work_order_cancel(
            work_order_id=work_order.pk, reason=spec.cancel, actor=planner
        )


def seed_runbooks(log) -> None:
    """Create the missing runbook templates (the plant generator's base too)."""
    for spec in RUNBOOKS:
        _seed_runbook(spec, log)


def seed(log) -> None:
    """Create the demo runbooks and, once, the demo work orders."""
    seed_runbooks(log)

    existing = {
        (slug, lot)
        for slug, lot in WorkOrder.objects.filter(
            lot_no__in={o.lot_no for o in ORDERS}
        ).values_list("runbook__slug", "lot_no")
    }
    if any((o.runbook, o.lot_no) in existing for o in ORDERS):
        log("work orders: demo lots already present")
        return

    log(f"work orders: driving {len(ORDERS)} demo lots through their stages ...")
    planner, operator = _user(Role.PLANNER), _user(Role.OPERATOR)
    supervisor = _user(Role.SUPERVISOR)
    now = timezone.now()
    driven = [
        (spec, _drive(spec, planner=planner, operator=operator, now=now))
        for spec in ORDERS
    ]
    for offset, (spec, work_order) in enumerate(driven):
        done = _sequence(spec, work_order)[: spec.done]
        _backdate(done, end=now, offset=offset)
    for slug, code, action, reason in GATE_ACTIONS:
        gate = Gate.objects.filter(stage__runbook__slug=slug, stage__code=code).first()
        if gate is not None:
            services.gate_set(
                gate_id=gate.pk, action=action, reason=reason, actor=supervisor
            )
    for spec, work_order in driven:
        _settle(spec, work_order, planner=planner, operator=operator)
    log(f"work orders: created {len(driven)}")
