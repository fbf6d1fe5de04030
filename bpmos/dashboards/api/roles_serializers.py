"""The role dashboards' bodies (camelCase, control-UI contract group I)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import utc_text


class _UtcField(serializers.Field):
    """A time as ISO 8601 UTC ("2026-12-01T08:00:00Z"); text passes through."""

    def to_representation(self, value):
        return value if isinstance(value, str) else utc_text(value)


_UtcField = extend_schema_field(OpenApiTypes.DATETIME)(_UtcField)


@extend_schema_field(
    {"oneOf": [{"type": "number"}, {"type": "string"}], "nullable": True}
)
class _CardValueField(serializers.Field):
    def to_representation(self, value):
        return value


class _DetailsField(serializers.Field):
    """Card-specific extras; times in them as ISO 8601 UTC."""

    def to_representation(self, value):
        return _plain(value)


_DetailsField = extend_schema_field(
    {"type": "object", "additionalProperties": True, "nullable": True}
)(_DetailsField)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        return utc_text(value)
    return value


class CardLinkSerializer(serializers.Serializer):
    type = serializers.CharField(help_text='What it opens: "alarms", "stages", ...')
    id = serializers.CharField(allow_null=True)
    path = serializers.CharField(help_text='The API resource: "/api/alarms".')


class CardSerializer(serializers.Serializer):
    id = serializers.CharField(
        help_text='Stable camelCase key: "unacknowledgedAlarms".'
    )
    title = serializers.CharField()
    value = _CardValueField(help_text="A number, a text, or null (nothing to show).")
    unit = serializers.CharField(
        allow_null=True, help_text='"count", "%", "WIP" or null.'
    )
    status = serializers.ChoiceField(
        choices=["OK", "Warning", "Critical", "Unknown"],
        allow_null=True,
        help_text="null for a plain figure.",
    )
    link = CardLinkSerializer(allow_null=True)
    details = _DetailsField(required=False)


class RoleSummarySerializer(serializers.Serializer):
    role = serializers.CharField(help_text='The dashboard\'s role slug: "plant-head".')
    roleLabel = serializers.CharField(source="role_label")
    generatedAt = _UtcField(source="generated_at")
    cards = CardSerializer(many=True)


class AttentionLinkSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text="stage, gate, alarm, exception, item, passport, return, "
        "connector, auditChain"
    )
    id = serializers.CharField()
    path = serializers.CharField(help_text='The API resource: "/api/alarms/12".')


class AttentionItemSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='Unique in the list, stable: "alarm-12".')
    kind = serializers.ChoiceField(
        choices=[
            "blockedStage",
            "gate",
            "alarm",
            "exception",
            "hold",
            "return",
            "connector",
            "auditChain",
        ]
    )
    title = serializers.CharField()
    severity = serializers.ChoiceField(choices=["Critical", "High", "Medium", "Low"])
    since = _UtcField(allow_null=True)
    link = AttentionLinkSerializer()


class AttentionListSerializer(serializers.Serializer):
    role = serializers.CharField()
    count = serializers.IntegerField()
    items = AttentionItemSerializer(many=True)
