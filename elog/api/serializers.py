"""Shapes of the audit endpoints (snake_case, like the other platform APIs)."""

from rest_framework import serializers

from elog.models import AuditRecord
from elog.services import ChainProblem


class AuditRecordSerializer(serializers.ModelSerializer):
    """One audit record, every stored field (read-only)."""

    actor = serializers.IntegerField(
        source="actor_id", allow_null=True, help_text="User id; null for the system."
    )

    class Meta:
        model = AuditRecord
        fields = [
            "id",
            "seq",
            "occurred_at",
            "actor",
            "actor_username",
            "actor_role",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "before",
            "after",
            "request_id",
            "client_address",
            "source",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class BrokenRecordSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    id = serializers.IntegerField(
        allow_null=True, help_text="Null when the missing records have no successor."
    )
    problem = serializers.ChoiceField(choices=ChainProblem.choices)
    message = serializers.CharField()


class VerifyResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField(help_text="Records examined.")
    head_seq = serializers.IntegerField(
        allow_null=True, help_text="seq of the newest record; null when empty."
    )
    head_hash = serializers.CharField(
        allow_null=True,
        help_text="hash of the newest record: keep it outside the database as an "
        "anchor when ok.",
    )
    first_broken = BrokenRecordSerializer(allow_null=True)


class VerifyQuerySerializer(serializers.Serializer):
    anchor_seq = serializers.IntegerField(
        required=False, min_value=1, help_text="seq of a head kept outside the log."
    )
    anchor_hash = serializers.RegexField(
        r"^[0-9a-f]{64}$", required=False, help_text="hash of that head."
    )
