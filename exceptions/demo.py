"""Demo exceptions (docs/design.md §8): stage issues on the demo work orders, open,
acknowledged and resolved, raised and handled through the services.

The first is the control UI's example: a critical quality failure at S5 Module
Assembly, blocking, on the lot held after its seal check failed.

Idempotent: an issue of the same type on the same work-order stage is not
raised again.
"""

from __future__ import annotations

from dataclasses import dataclass

from bpmos.accounts.models import User
from bpmos.roles import Role
from exceptions import services
from exceptions.models import ExceptionType, PlantException, Severity
from runbooks.models import WorkOrderStage

ORDER = 30  # after the work orders (runbooks.demo, 20)


@dataclass(frozen=True)
class IssueSpec:
    runbook: str
    lot_no: str
    stage_code: str
    type: str
    severity: str
    description: str
    acknowledge: bool = False
    resolution: str = ""


ISSUES = (
    IssueSpec(
        "manufacturing",
        "LOT-LFP48-0407",
        "S5",
        ExceptionType.QUALITY_FAILURE,
        Severity.CRITICAL,
        "Seal Check Failed: helium leak rate 2.1e-6 mbar·L/s on 3 of 8 module "
        "housings (limit 1.0e-6). Modules quarantined; line stopped at S5.",
    ),
    IssueSpec(
        "manufacturing",
        "LOT-LFP48-0406",
        "S5",
        ExceptionType.EQUIPMENT_FAULT,
        Severity.HIGH,
        "Leak tester LT-02 fails its daily reference-leak check; readings since "
        "06:00 are suspect.",
        acknowledge=True,
    ),
    IssueSpec(
        "manufacturing",
        "LOT-ESS51-0408",
        "S8",
        ExceptionType.MATERIAL_SHORTAGE,
        Severity.MEDIUM,
        "BMS harness kits short: 5 of 8 received from stores.",
    ),
    IssueSpec(
        "manufacturing",
        "LOT-NMC72-0405",
        "S3",
        ExceptionType.PROCESS_DEVIATION,
        Severity.LOW,
        "Sorting bin 4 over-filled; 12 cells re-binned by hand.",
    ),
    IssueSpec(
        "manufacturing",
        "LOT-LFP48-0403",
        "S11",
        ExceptionType.SAFETY,
        Severity.HIGH,
        "EOL tester safety interlock tripped during the isolation test.",
        resolution="Interlock door switch replaced and the tester re-verified "
        "with the reference pack; test repeated and passed.",
    ),
    IssueSpec(
        "manufacturing",
        "LOT-ESS51-0404",
        "S2",
        ExceptionType.QUALITY_FAILURE,
        Severity.HIGH,
        "18 % of cells outside the IR window (> 0.25 mΩ) at grading.",
        resolution="Lot rejected and returned to the supplier under RMA-2291; "
        "work order cancelled.",
    ),
    IssueSpec(
        "dispatch",
        "LOT-ESS51-0402",
        "S15",
        ExceptionType.OTHER,
        Severity.MEDIUM,
        "Carrier vehicle has no valid Class 9 dangerous-goods permit.",
        acknowledge=True,
    ),
)


def _user(role: Role) -> User:
    try:
        return User.objects.get(username=role.value)
    except User.DoesNotExist as exc:
        raise RuntimeError(
            f"Demo user {role.value!r} is missing; the users seed runs first."
        ) from exc


def seed(log) -> None:
    """Raise the demo issues that are not there yet, and handle them."""
    operator, supervisor = _user(Role.OPERATOR), _user(Role.SUPERVISOR)
    created = skipped = 0
    for spec in ISSUES:
        stage = WorkOrderStage.objects.filter(
            work_order__runbook__slug=spec.runbook,
            work_order__lot_no=spec.lot_no,
            stage__code=spec.stage_code,
        ).first()
        if stage is None:
            skipped += 1  # the demo work order is not there (deleted by hand)
            continue
        if PlantException.objects.filter(
            work_order_stage=stage, type=spec.type
        ).exists():
            continue
        exc = services.stage_issue_raise(
            stage_id=stage.pk,
            type=spec.type,
            severity=spec.severity,
            description=spec.description,
            actor=operator,
        )
        if spec.acknowledge:
            services.exception_acknowledge(exception_id=exc.pk, actor=supervisor)
        if spec.resolution:
            services.exception_resolve(
                exception_id=exc.pk, resolution_note=spec.resolution, actor=supervisor
            )
        created += 1
    message = f"exceptions: created {created}" if created else "exceptions: present"
    log(message + (f" ({skipped} without their work order)" if skipped else ""))
