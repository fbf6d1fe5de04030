"""Exceptions: blockers and deviations, including stage issues and escalated alarms.

One model serves both contracts: the mobile app calls a stage's exception an
"issue" (status open → ack → resolved); the control UI lists them as
exceptions ("EX-001", type, severity, escalation path).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models

from bpmos.roles import Role
from bpmos.transitions import StatusTransitions


class ExceptionType(models.TextChoices):
    """What went wrong. The values are the mobile app's issue types."""

    QUALITY_FAILURE = "quality_failure", "Quality Failure"
    EQUIPMENT_FAULT = "equipment_fault", "Equipment Fault"
    MATERIAL_SHORTAGE = "material_shortage", "Material Shortage"
    SAFETY = "safety", "Safety Incident"
    PROCESS_DEVIATION = "process_deviation", "Process Deviation"
    GATE_INTERLOCK = "gate_interlock", "Gate Interlock"
    ALARM = "alarm", "Alarm"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


SEVERITY_RANK = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MEDIUM: 2,
    Severity.LOW: 3,
}

# How long an exception may stay unacknowledged at one level before it escalates.
ACK_DEADLINE = {
    Severity.CRITICAL: timedelta(minutes=5),
    Severity.HIGH: timedelta(minutes=15),
    Severity.MEDIUM: timedelta(hours=1),
    Severity.LOW: timedelta(hours=4),
}

# Who is responsible, level by level.
ESCALATION_PATH = [Role.OPERATOR, Role.SUPERVISOR, Role.PLANT_HEAD]


class ExceptionStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "ack", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


EXCEPTION_TRANSITIONS: dict[str, set[str]] = {
    ExceptionStatus.OPEN: {ExceptionStatus.ACKNOWLEDGED, ExceptionStatus.RESOLVED},
    ExceptionStatus.ACKNOWLEDGED: {ExceptionStatus.RESOLVED},
    ExceptionStatus.RESOLVED: set(),
}


class ExceptionSource(models.TextChoices):
    STAGE_ISSUE = "stage_issue", "Stage issue"
    ALARM = "alarm", "Alarm"
    GATE = "gate", "Gate"
    MANUAL = "manual", "Manual"


class PlantException(StatusTransitions, models.Model):
    """A blocker or deviation, what it blocks, who must act, and how it ended.

    Shown to the control UI as ``EX-<id>``. While open and unacknowledged it
    escalates along ``ESCALATION_PATH`` when ``ack_due_at`` passes (a Celery beat
    task); resolving it needs a resolution note.
    """

    TRANSITIONS = EXCEPTION_TRANSITIONS

    type = models.CharField(max_length=30, choices=ExceptionType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(
        max_length=10, choices=ExceptionStatus.choices, default=ExceptionStatus.OPEN
    )
    source = models.CharField(
        max_length=20, choices=ExceptionSource.choices, default=ExceptionSource.MANUAL
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_blocking = models.BooleanField(
        default=False,
        help_text="A blocker halts its runbook; a deviation only flags risk.",
    )
    runbook = models.ForeignKey(
        "runbooks.Runbook",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exceptions",
    )
    stage = models.ForeignKey(
        "runbooks.Stage",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exceptions",
    )
    work_order = models.ForeignKey(
        "runbooks.WorkOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exceptions",
    )
    work_order_stage = models.ForeignKey(
        "runbooks.WorkOrderStage",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issues",
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    raised_at = models.DateTimeField(auto_now_add=True, db_index=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalation_log = models.JSONField(
        default=list,
        blank=True,
        help_text="[{level, role, at}] — every step of the path taken.",
    )
    ack_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [models.Index(fields=["status", "severity"])]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"

    @property
    def code(self) -> str:
        """The id the control UI shows: EX-001."""
        return f"EX-{self.pk:03d}" if self.pk else "EX-new"

    @property
    def responsible_role(self) -> str:
        """The role that must act now, from the escalation level."""
        return ESCALATION_PATH[min(self.escalation_level, len(ESCALATION_PATH) - 1)]

    @property
    def transition_subject(self) -> str:
        return self.code


class ExceptionEventKind(models.TextChoices):
    RAISED = "raised", "Raised"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"


class ExceptionEvent(models.Model):
    """One step of an exception's life (its journal): raised, acknowledged,
    escalated, resolved. Immutable, like the audit log and the shift log:
    database triggers refuse UPDATE and DELETE (migration 0003, PostgreSQL and
    SQLite). Written by ``exceptions.services`` in the transaction of the
    change it records; ``GET /api/logs`` reads it (``exceptions.logsource``).

    ``level`` and ``role`` are the escalation level after the step and the
    role responsible there (for ``escalated``: the role it escalated to).
    ``actor`` is null for the system's own steps (the escalation beat task,
    an exception raised by an alarm). ``note`` is the resolution note of a
    ``resolved`` step.
    """

    exception = models.ForeignKey(
        PlantException, on_delete=models.PROTECT, related_name="journal"
    )
    kind = models.CharField(max_length=20, choices=ExceptionEventKind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # a user with history is deactivated, never deleted
        related_name="+",
    )
    level = models.PositiveSmallIntegerField(default=0)
    role = models.CharField(max_length=20, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # GET /api/logs: the newest steps before a cursor.
            models.Index(fields=["at", "id"], name="exceptions_event_log_idx"),
        ]

    def __str__(self) -> str:
        return f"EX-{self.exception_id:03d} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"
