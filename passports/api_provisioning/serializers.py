"""Shapes of the BMS provisioning API: camelCase, display enums, UTC times.

Input serializers check shape and type only; ranges and consistency of the
limits are ``passports.provisioning``'s rules.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import choice_labels, utc_datetime
from passports.bms.protocol import NODE_MAX, NODE_MIN
from passports.models import ProvisioningStatus

PROVISIONING_STATUSES = choice_labels(ProvisioningStatus)


class ProvisioningConfigSerializer(serializers.Serializer):
    """Configuration limits written to the BMS; each one left out takes the
    pack's default (docs/passports.md)."""

    cellsInSeries = serializers.IntegerField(required=False, min_value=1)
    cellsInParallel = serializers.IntegerField(required=False, min_value=1)
    cellMinVoltageMv = serializers.IntegerField(required=False)
    cellMaxVoltageMv = serializers.IntegerField(required=False)
    maxChargeCurrentA = serializers.FloatField(required=False, help_text="0.1 A steps")
    maxDischargeCurrentA = serializers.FloatField(required=False)
    minTemperatureC = serializers.IntegerField(required=False)
    maxTemperatureC = serializers.IntegerField(required=False)


@extend_schema_field(ProvisioningConfigSerializer)
class _ConfigField(serializers.DictField):
    """A plain object passed on as given, so the service can name unknown keys."""


# The service's own words (passports.provisioning), so the schema states the
# bounds and the answer stays the same.
NODE_RANGE = f"A node id from {NODE_MIN} to {NODE_MAX}."


class ProvisionRequestSerializer(serializers.Serializer):
    nodeId = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=NODE_MIN,
        max_value=NODE_MAX,
        error_messages={"min_value": NODE_RANGE, "max_value": NODE_RANGE},
        help_text="CAN node id of the BMS (1-127); default BPMOS_BMS_DEFAULT_NODE.",
    )
    config = _ConfigField(required=False, allow_null=True)
    expectedVersion = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        error_messages={"min_value": "The version you read: 1 or more."},
        help_text="The passport version you read; 409 version_conflict if it moved.",
    )


class ProvisioningAttemptSerializer(serializers.Serializer):
    """One attempt to provision a pack's BMS, and what the BMS confirmed."""

    id = serializers.IntegerField()
    passportId = serializers.UUIDField(source="passport.uuid")
    serial = serializers.CharField(source="passport.serial")
    status = serializers.ChoiceField(
        choices=PROVISIONING_STATUSES, source="get_status_display"
    )
    nodeId = serializers.IntegerField(source="node_id")
    interface = serializers.CharField(help_text='"socketcan:can0@500000"')
    requestedBy = serializers.CharField(
        source="requested_by.username", allow_null=True, default=None
    )
    requestedAt = utc_datetime(source="requested_at")
    finishedAt = utc_datetime(source="finished_at", allow_null=True)
    written = serializers.JSONField(help_text="{identity, rating, limits} written.")
    confirmed = serializers.JSONField(help_text="What the BMS read back ({} if none).")
    error = serializers.CharField()


class PassportVersionSerializer(serializers.Serializer):
    state = serializers.CharField(source="get_state_display")
    version = serializers.IntegerField()


class ProvisionResponseSerializer(serializers.Serializer):
    attempt = ProvisioningAttemptSerializer()
    passport = PassportVersionSerializer()
