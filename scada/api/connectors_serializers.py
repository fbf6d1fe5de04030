"""Connectors, tags and readings as the connectors contract shows them
(snake_case, enum values as stored). Shapes and types only: the rules live in
``scada.configuration`` and ``scada.readings``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import utc_datetime
from bpmos.jsonfields import FlagField, WholeNumberField
from lines.models import Machine
from scada.models import (
    CommState,
    Connector,
    ConnectorKind,
    ConnectorMode,
    ScadaReading,
    Tag,
    TagKind,
)

# --- connectors -------------------------------------------------------------------


class ConnectorSerializer(serializers.ModelSerializer):
    """A connector; its credentials are never shown (``has_credentials``)."""

    has_credentials = serializers.SerializerMethodField()
    comm_state = serializers.ChoiceField(choices=CommState.choices, read_only=True)
    last_ok_at = utc_datetime(allow_null=True)
    created_at = utc_datetime()
    updated_at = utc_datetime()

    class Meta:
        model = Connector
        fields = [
            "id",
            "name",
            "kind",
            "endpoint",
            "enabled",
            "mode",
            "poll_interval_s",
            "settings",
            "has_credentials",
            "comm_state",
            "last_ok_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_credentials(self, connector: Connector) -> bool:
        return bool(connector.credentials)


# The scheme and a host, as scada.configuration.endpoint_problem checks them
# (which scheme depends on the kind: opc.tcp:// for OPC UA, http(s):// else).
ENDPOINT_PATTERN = (
    r"^(opc\.tcp|https?)://([^\s/?#@\[\]]+@)?"
    r"([^\s/:?#@\[\]]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?$"
)


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 500,
        "pattern": ENDPOINT_PATTERN,
        "description": "opc.tcp://host[:port][/path] for OPC UA, "
        "http(s)://host[...] for a CMMS or LIMS.",
    }
)
class EndpointField(serializers.CharField):
    """The endpoint URL; the schema shows its shape, the service its rules."""


class ConnectorWriteSerializer(serializers.Serializer):
    """The body of a connector's create (all required but the defaults) and
    change (``partial``: only what is sent)."""

    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=ConnectorKind.choices)
    endpoint = EndpointField(max_length=500)
    enabled = FlagField(default=True)
    mode = serializers.ChoiceField(choices=ConnectorMode.choices, default="poll")
    poll_interval_s = WholeNumberField(min_value=1, max_value=86_400, default=5)
    settings = serializers.DictField(
        required=False,
        help_text="OPC UA: security_policy, security_mode, certificate_path, "
        "private_key_path, server_certificate_path, application_uri, timeout_s, "
        "max_nodes_per_read, sampling_interval_ms, state_codes.",
    )
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=1000),
        required=False,
        write_only=True,
        help_text='Write-only. OPC UA: {"username": ..., "password": ...}; {} '
        "removes them.",
    )


# --- tags -----------------------------------------------------------------------------


class TagSerializer(serializers.ModelSerializer):
    created_at = utc_datetime()
    updated_at = utc_datetime()

    class Meta:
        model = Tag
        fields = [
            "id",
            "connector",
            "node_id",
            "tag_name",
            "unit",
            "machine",
            "kind",
            "area",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TagWriteSerializer(serializers.Serializer):
    connector = serializers.PrimaryKeyRelatedField(queryset=Connector.objects.all())
    node_id = serializers.CharField(max_length=500, help_text="e.g. ns=2;s=Line1.Temp")
    tag_name = serializers.CharField(
        max_length=64, help_text="Plant-wide: 1-64 letters, digits or _ . : / -"
    )
    unit = serializers.CharField(max_length=16, allow_blank=True, default="")
    machine = serializers.PrimaryKeyRelatedField(
        queryset=Machine.objects.all(), allow_null=True, default=None
    )
    kind = serializers.ChoiceField(choices=TagKind.choices, default=TagKind.ANALOG)
    area = serializers.CharField(max_length=64, allow_blank=True, default="")
    enabled = FlagField(default=True)


# --- readings -------------------------------------------------------------------------


class ReadingSerializer(serializers.ModelSerializer):
    """One normalized reading (the contract's fields, plus its connector)."""

    timestamp = utc_datetime()
    value = serializers.SerializerMethodField()

    class Meta:
        model = ScadaReading
        fields = [
            "id",
            "timestamp",
            "tag_name",
            "value",
            "unit",
            "quality",
            "alarm_state",
            "connector",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {"oneOf": [{"type": "number"}, {"type": "string"}], "nullable": True}
    )
    def get_value(self, reading: ScadaReading) -> float | str | None:
        return (
            reading.value if reading.value is not None else reading.value_text or None
        )


# --- the contract's actions -----------------------------------------------------------


class ConnectorRefSerializer(serializers.Serializer):
    connector = WholeNumberField(
        min_value=1, max_value=2**63 - 1, help_text="The connector's id."
    )


class TestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    connector = serializers.IntegerField()
    latency_ms = serializers.IntegerField()


class PollResultSerializer(serializers.Serializer):
    connector = serializers.IntegerField()
    readings_stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    alarms_raised = serializers.IntegerField()


class BrowseRequestSerializer(serializers.Serializer):
    limit = WholeNumberField(
        min_value=1, max_value=5_000, default=5_000, help_text="At most this many."
    )


class BrowseNodeSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    browse_path = serializers.CharField()
    data_type = serializers.CharField()
    tag_name = serializers.CharField(
        allow_null=True, help_text="The tag already mapped to this node, if any."
    )
