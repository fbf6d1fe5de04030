"""Shapes of the production API, exactly as the mobile contract spells them
(snake_case, enum values as stored: ``planned``, ``in_progress``, ``ack``...).

Input serializers check shape and type only; the rules (qty > 0, a planned
window that ends after it starts, known runbooks, transitions) are the
services' and reach the client as the same 400/409 envelope.
"""

from rest_framework import serializers

from bpmos.fields import DateTimeField, PositiveCountField, choice_labels
from bpmos.listrows import drf_datetime_printer
from runbooks.models import (
    GateStatus,
    GateType,
    StageAssignment,
    WorkOrder,
    WorkOrderStage,
)

_MAX_INT = 2_147_483_647  # an integer column's range on every database we run
_MAX_TEXT = 5000

# The gates' display enums (control-UI contract), named once for the OpenAPI
# schema (ENUM_NAME_OVERRIDES).
GATE_STATUSES = choice_labels(GateStatus)
GATE_TYPES = choice_labels(GateType)

# --- output ------------------------------------------------------------------------


class AssigneeSerializer(serializers.Serializer):
    """A user assigned to a stage, as listed on the stage."""

    id = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")


class WorkOrderStageSerializer(serializers.ModelSerializer):
    """One stage of a work order."""

    work_order_id = serializers.IntegerField()
    stage_code = serializers.CharField(source="stage.code", help_text="e.g. S5")
    assignees = AssigneeSerializer(source="assignments", many=True)

    class Meta:
        model = WorkOrderStage
        fields = [
            "id",
            "work_order_id",
            "stage_name",
            "stage_code",
            "planned_start",
            "planned_end",
            "actual_start",
            "actual_end",
            "status",
            "hold_reason",
            "assignees",
        ]
        read_only_fields = fields


class WorkOrderSerializer(serializers.ModelSerializer):
    """A work order as listed."""

    runbook = serializers.CharField(source="runbook.slug", help_text="Runbook slug.")
    created_by = serializers.IntegerField(
        source="created_by_id", allow_null=True, help_text="User id."
    )

    class Meta:
        model = WorkOrder
        fields = [
            "id",
            "product_code",
            "lot_no",
            "qty",
            "planned_start",
            "planned_end",
            "status",
            "runbook",
            "started_at",
            "completed_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


# ``WorkOrderSerializer`` for ``values()`` rows (``bpmos.listrows``): the list
# page's rows without a model instance or a field object per value.
WORK_ORDER_ROW_FIELDS = (
    "id",
    "product_code",
    "lot_no",
    "qty",
    "status",
    "runbook__slug",
    "created_by_id",
)
# Its times, read as ``<name>_text`` (``bpmos.listrows.time_texts``).
WORK_ORDER_ROW_TIMES = (
    "planned_start",
    "planned_end",
    "started_at",
    "completed_at",
    "created_at",
)


def work_order_rows(rows: list[dict]) -> list[dict]:
    """What ``WorkOrderSerializer`` prints for the same work orders (the
    tests compare them), from ``WORK_ORDER_ROW_FIELDS`` and
    ``WORK_ORDER_ROW_TIMES`` rows."""
    at = drf_datetime_printer()
    return [
        {
            "id": row["id"],
            "product_code": row["product_code"],
            "lot_no": row["lot_no"],
            "qty": row["qty"],
            "planned_start": at(row["planned_start_text"]),
            "planned_end": at(row["planned_end_text"]),
            "status": row["status"],
            "runbook": row["runbook__slug"],
            "started_at": at(row["started_at_text"]),
            "completed_at": at(row["completed_at_text"]),
            "created_by": row["created_by_id"],
            "created_at": at(row["created_at_text"]),
        }
        for row in rows
    ]


class WorkOrderDetailSerializer(WorkOrderSerializer):
    """A work order with its stages in runbook order."""

    stages = WorkOrderStageSerializer(many=True)

    class Meta(WorkOrderSerializer.Meta):
        fields = [*WorkOrderSerializer.Meta.fields, "stages"]
        read_only_fields = fields


class StageAssignmentSerializer(serializers.ModelSerializer):
    """Who is assigned to a stage, and by whom."""

    work_order_stage_id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    role = serializers.CharField(source="user.role")
    assigned_by = serializers.IntegerField(
        source="assigned_by_id", allow_null=True, help_text="User id."
    )

    class Meta:
        model = StageAssignment
        fields = [
            "id",
            "work_order_stage_id",
            "user_id",
            "username",
            "role",
            "assigned_by",
            "assigned_at",
        ]
        read_only_fields = fields


class StageMetricsSerializer(serializers.Serializer):
    """Timing of one stage (definitions: docs/metrics.md)."""

    stage_id = serializers.IntegerField()
    work_order_id = serializers.IntegerField()
    status = serializers.CharField()
    planned_minutes = serializers.FloatField()
    actual_minutes = serializers.FloatField(allow_null=True)
    delay_minutes = serializers.FloatField()
    efficiency_score = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=200,
        help_text="Percent of planned pace: 100 x planned / actual minutes of a "
        "done stage, capped at 200; null unless done and timed (at least 1 min).",
    )
    on_time = serializers.BooleanField(allow_null=True)


class WorkOrderMetricsSerializer(serializers.Serializer):
    """Progress and timing of one work order (definitions: docs/metrics.md)."""

    work_order_id = serializers.IntegerField()
    status = serializers.CharField()
    stages_total = serializers.IntegerField()
    stages_done = serializers.IntegerField()
    stages_on_time = serializers.IntegerField()
    delay_minutes = serializers.FloatField(allow_null=True)
    efficiency_score = serializers.FloatField(
        allow_null=True,
        min_value=0,
        max_value=200,
        help_text="Percent of planned pace: 100 x sum of planned / sum of actual "
        "minutes over done stages timed at least 1 min, capped at 200; null if "
        "there are none.",
    )
    on_time_percentage = serializers.FloatField(allow_null=True)


# --- input -------------------------------------------------------------------------


class WorkOrderCreateSerializer(serializers.Serializer):
    product_code = serializers.CharField(max_length=64)
    lot_no = serializers.CharField(max_length=64)
    qty = PositiveCountField(help_text="Greater than 0.")
    planned_start = DateTimeField(help_text="From 2000-01-01 to 2100-01-01 UTC.")
    planned_end = DateTimeField(help_text="After planned_start.")
    runbook = serializers.SlugField(
        max_length=50,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Runbook slug; omitted: the plant's default manufacturing runbook.",
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class StageAssignmentCreateSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(min_value=1, max_value=_MAX_INT)


# --- gates (control-UI contract) ------------------------------------------------


class GateSerializer(serializers.Serializer):
    """A gate after an action: the contract's gate shape plus id and reason."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=GATE_STATUSES, source="get_status_display")
    type = serializers.ChoiceField(choices=GATE_TYPES, source="get_type_display")
    condition = serializers.CharField()
    reason = serializers.CharField()


class GateActionSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text="Why; required to lock (shown as the block reason).",
    )
    password = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        max_length=4096,
        style={"input_type": "password"},
        help_text=(
            "Your password, re-entered to sign a gate override: required to "
            "open or close a Locked gate (an electronic signature)."
        ),
    )
