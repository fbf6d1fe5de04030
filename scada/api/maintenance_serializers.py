"""Maintenance work orders as the connectors contract shows them (snake_case,
enum values as stored)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.filters import INT64_MAX
from bpmos.jsonfields import WholeNumberField
from exceptions.models import Severity
from scada.models import DeliveryAttempt, MaintenanceWorkOrder

# The same words as exceptions' severities and alarms' (one enum in the schema).
PRIORITIES = Severity.choices


@extend_schema_field({"type": "object", "additionalProperties": {}})
class SnapshotField(serializers.JSONField):
    """A JSON object (the service refuses any other JSON value): declared as
    one, so the schema does not promise that a list or a number is taken."""


class MaintenanceWorkOrderCreateSerializer(serializers.Serializer):
    """The contract's normalized maintenance work order (the service checks it
    again, with the rules: an existing alarm, one open work order per alarm)."""

    asset_id = serializers.CharField(max_length=64)
    asset_name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=4000)
    priority = serializers.ChoiceField(choices=PRIORITIES)
    source_alarm_id = WholeNumberField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=INT64_MAX,
        help_text="The alarm this work order answers; at most one open per alarm.",
    )
    created_by_system = serializers.CharField(
        max_length=64, required=False, help_text='Default "bpmos".'
    )
    assignee = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    scada_snapshot = SnapshotField(
        required=False,
        help_text="A JSON object (at most 64 KB): the alarm and readings behind it.",
    )


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    """One attempt to send the work order to the CMMS (the failure log)."""

    class Meta:
        model = DeliveryAttempt
        fields = ["id", "at", "ok", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class MaintenanceWorkOrderSerializer(serializers.ModelSerializer):
    """A stored work order and where its delivery stands."""

    priority = serializers.ChoiceField(choices=PRIORITIES)
    source_alarm_id = serializers.IntegerField(allow_null=True)
    connector_id = serializers.IntegerField(
        allow_null=True, help_text="The CMMS connector it was last sent to."
    )
    created_by = serializers.IntegerField(
        source="created_by_id", allow_null=True, help_text="User id."
    )
    scada_snapshot = SnapshotField(read_only=True)

    class Meta:
        model = MaintenanceWorkOrder
        fields = [
            "id",
            "asset_id",
            "asset_name",
            "description",
            "priority",
            "source_alarm_id",
            "created_by_system",
            "assignee",
            "scada_snapshot",
            "delivery_state",
            "attempts",
            "last_error",
            "external_id",
            "next_attempt_at",
            "sent_at",
            "closed_at",
            "connector_id",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class MaintenanceWorkOrderDetailSerializer(MaintenanceWorkOrderSerializer):
    """The work order with its delivery log, oldest attempt first."""

    delivery_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(MaintenanceWorkOrderSerializer.Meta):
        fields = [*MaintenanceWorkOrderSerializer.Meta.fields, "delivery_log"]
        read_only_fields = fields
