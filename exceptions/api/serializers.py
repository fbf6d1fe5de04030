"""Exceptions as the control UI shows them (camelCase, display enums, "EX-001")."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import choice_labels, utc_datetime, utc_text
from bpmos.roles import Role
from exceptions.models import (
    ESCALATION_PATH,
    ExceptionSource,
    ExceptionStatus,
    ExceptionType,
    PlantException,
    Severity,
)

# The display enums, named once for the OpenAPI schema (ENUM_NAME_OVERRIDES).
EXCEPTION_TYPES = choice_labels(ExceptionType)
EXCEPTION_STATUSES = choice_labels(ExceptionStatus)
EXCEPTION_SOURCES = choice_labels(ExceptionSource)
SEVERITIES = choice_labels(Severity)
ROLE_LABELS = choice_labels(Role)


class ExceptionItemSerializer(serializers.Serializer):
    """One row of the exceptions list (and of a runbook's active exceptions).

    ``blocks`` names what the exception is on: its stage ("S5 Module Assembly"),
    else its runbook's title. ``isBlocking`` is true when it halts its runbook:
    flagged blocking, or Critical.
    """

    id = serializers.CharField(source="code", help_text='"EX-001"')
    type = serializers.ChoiceField(choices=EXCEPTION_TYPES, source="get_type_display")
    severity = serializers.ChoiceField(
        choices=SEVERITIES, source="get_severity_display"
    )
    status = serializers.ChoiceField(
        choices=EXCEPTION_STATUSES, source="get_status_display"
    )
    title = serializers.CharField()
    blocks = serializers.SerializerMethodField()
    runbookId = serializers.CharField(
        source="linked_runbook_slug", allow_null=True, help_text="Runbook id (slug)."
    )
    raisedAt = utc_datetime(source="raised_at")
    isBlocking = serializers.BooleanField(source="halts")

    def get_blocks(self, exc: PlantException) -> str | None:
        if exc.stage_id:
            return exc.stage.label
        return exc.linked_runbook_title


class EscalationStepSerializer(serializers.Serializer):
    level = serializers.IntegerField(help_text="0 is the first responder.")
    role = serializers.ChoiceField(choices=ROLE_LABELS, help_text="Display label.")
    reached = serializers.BooleanField()
    at = serializers.CharField(
        allow_null=True, help_text="When the level was first reached (UTC)."
    )


def escalation_path(exc: PlantException) -> list[dict]:
    """Every level of the path, whether the exception reached it, and when."""
    first_reached: dict[int, str] = {}
    for step in exc.escalation_log or []:
        level = step.get("level")
        if level is not None and level not in first_reached and step.get("at"):
            first_reached[level] = utc_text(datetime.fromisoformat(step["at"]))
    return [
        {
            "level": level,
            "role": Role(role).label,
            "reached": level <= exc.escalation_level,
            "at": first_reached.get(level),
        }
        for level, role in enumerate(ESCALATION_PATH)
    ]


class ExceptionDetailSerializer(ExceptionItemSerializer):
    """The list row plus description, resolution context and escalation path."""

    description = serializers.CharField()
    source = serializers.ChoiceField(
        choices=EXCEPTION_SOURCES, source="get_source_display"
    )
    stageId = serializers.CharField(
        source="stage.slug", allow_null=True, help_text='Stage id, e.g. "mfg-05".'
    )
    workOrderId = serializers.IntegerField(source="work_order_id", allow_null=True)
    workOrderStageId = serializers.IntegerField(
        source="work_order_stage_id", allow_null=True
    )
    raisedBy = serializers.CharField(source="raised_by.username", allow_null=True)
    acknowledgedBy = serializers.CharField(
        source="acknowledged_by.username", allow_null=True
    )
    acknowledgedAt = utc_datetime(source="acknowledged_at", allow_null=True)
    resolvedBy = serializers.CharField(source="resolved_by.username", allow_null=True)
    resolvedAt = utc_datetime(source="resolved_at", allow_null=True)
    resolutionNote = serializers.CharField(source="resolution_note")
    ackDueAt = utc_datetime(
        source="ack_due_at",
        allow_null=True,
        help_text="When it escalates next unless acknowledged; null once it is.",
    )
    currentLevel = serializers.IntegerField(source="escalation_level")
    responsibleRole = serializers.SerializerMethodField()
    escalationPath = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=ROLE_LABELS))
    def get_responsibleRole(self, exc: PlantException) -> str:
        return Role(exc.responsible_role).label

    @extend_schema_field(EscalationStepSerializer(many=True))
    def get_escalationPath(self, exc: PlantException) -> list[dict]:
        return EscalationStepSerializer(escalation_path(exc), many=True).data

    def to_representation(self, exc: PlantException) -> dict:
        data = super().to_representation(exc)
        if exc.status != ExceptionStatus.OPEN:
            data["ackDueAt"] = None  # acknowledged or resolved: it escalates no more
        return data


class ResolveSerializer(serializers.Serializer):
    resolutionNote = serializers.CharField(
        max_length=4000, help_text="What was done; required."
    )


# --- stage issues (mobile contract: snake_case, enum values as stored) ---------

_MAX_TEXT = 5000


class IssueSerializer(serializers.ModelSerializer):
    """A stage issue (an exception raised on a work-order stage)."""

    work_order_stage_id = serializers.IntegerField()
    created_by = serializers.IntegerField(
        source="raised_by_id", allow_null=True, help_text="User id."
    )
    created_at = serializers.DateTimeField(source="raised_at", read_only=True)

    class Meta:
        model = PlantException
        fields = [
            "id",
            "work_order_stage_id",
            "type",
            "severity",
            "description",
            "status",
            "created_by",
            "created_at",
            "acknowledged_at",
            "resolved_at",
            "resolution_note",
        ]
        read_only_fields = fields


class IssueCreateSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ExceptionType.choices)
    description = serializers.CharField(max_length=_MAX_TEXT)
    severity = serializers.ChoiceField(
        choices=Severity.choices,
        required=False,
        help_text="Omitted: high for safety, quality and gate issues, else medium.",
    )


# The moves a client may ask for (named in SPECTACULAR_SETTINGS' enum overrides).
ISSUE_UPDATE_STATUSES = [
    (ExceptionStatus.ACKNOWLEDGED.value, ExceptionStatus.ACKNOWLEDGED.label),
    (ExceptionStatus.RESOLVED.value, ExceptionStatus.RESOLVED.label),
]


class IssueUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ISSUE_UPDATE_STATUSES)
    resolution_note = serializers.CharField(
        max_length=_MAX_TEXT,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required to resolve.",
    )
