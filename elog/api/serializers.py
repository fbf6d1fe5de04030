"""Shapes of the audit endpoints (snake_case, like the other platform APIs)."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from bpmos.fields import JsonObjectField
from bpmos.filters import INT64_MAX
from elog.models import AuditRecord, ShiftLogEntry, ShiftLogEntryType
from elog.services import ChainProblem
from elog.shiftlog import MAX_BODY, MAX_METADATA_BYTES, WRITABLE_TYPES, this_plant_id


class PlantIdField(serializers.CharField):
    """This installation's plant id; ``shiftlog_write`` refuses any other (400).
    Its schema is an enum of the one id (``PlantIdFieldExtension``), read from
    the settings when the schema is made."""


class PlantIdFieldExtension(OpenApiSerializerFieldExtension):
    target_class = PlantIdField

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": [this_plant_id()]}


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


class UnverifiableRecordsSerializer(serializers.Serializer):
    key_id = serializers.CharField(help_text="The unknown key's id.")
    records = serializers.IntegerField()
    first_seq = serializers.IntegerField()
    last_seq = serializers.IntegerField()


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
    unverifiable = UnverifiableRecordsSerializer(
        many=True,
        help_text="Per key id, the records signed with a key the audit keyring "
        "does not hold (their links checked, their content not): empty when ok.",
    )


class VerifyQuerySerializer(serializers.Serializer):
    anchor_seq = serializers.IntegerField(
        required=False, min_value=1, help_text="seq of a head kept outside the log."
    )
    anchor_hash = serializers.RegexField(
        r"^[0-9a-f]{64}$", required=False, help_text="hash of that head."
    )


# --- the electronic shift log (snake_case, as the connectors contract §5) ---


class ShiftLogWriteSerializer(serializers.Serializer):
    """The body of ``POST /api/logs/write`` (connectors contract §5), plus
    ``line`` and, for a correction, ``corrects``."""

    plant_id = PlantIdField(max_length=50, help_text="This plant's id.")
    operator_id = serializers.IntegerField(
        min_value=1,
        max_value=INT64_MAX,
        help_text="Your own user id: it must be the token's user.",
    )
    operator_name = serializers.CharField(
        max_length=150,
        help_text="Shown by the client; the entry keeps the account's name.",
    )
    entry_type = serializers.ChoiceField(
        choices=[(t, ShiftLogEntryType(t).label) for t in WRITABLE_TYPES],
        help_text="The auto-entry types and handover_ack are the system's own.",
    )
    body = serializers.CharField(max_length=MAX_BODY, trim_whitespace=False)
    metadata = JsonObjectField(
        required=False,
        default=dict,
        help_text=f"A JSON object, at most {MAX_METADATA_BYTES} bytes.",
    )
    line = serializers.SlugField(
        max_length=50,
        required=False,
        help_text="A line's slug: the entry takes that line's shift (else the "
        "plant's default line's).",
    )
    corrects = serializers.IntegerField(
        min_value=1,
        max_value=INT64_MAX,
        required=False,
        allow_null=True,
        default=None,
        help_text="For a correction: the id of the entry it corrects.",
    )


class ShiftLogAcknowledgeSerializer(serializers.Serializer):
    body = serializers.CharField(
        max_length=MAX_BODY,
        required=False,
        default="",
        allow_blank=True,
        help_text='Optional remark; "Handover acknowledged." when empty.',
    )


class ShiftLogEntrySerializer(serializers.ModelSerializer):
    """One shift-log entry (snake_case, as the connectors contract)."""

    operator_id = serializers.IntegerField(
        allow_null=True, help_text="User id; null for the system's auto-entries."
    )
    metadata = serializers.DictField(child=serializers.JSONField())
    corrects = serializers.IntegerField(source="corrects_id", allow_null=True)
    acknowledges = serializers.IntegerField(source="acknowledges_id", allow_null=True)
    acknowledged_by_entry = serializers.SerializerMethodField(
        help_text="For a handover: the id of the entry acknowledging it, if any."
    )

    class Meta:
        model = ShiftLogEntry
        fields = [
            "id",
            "plant_id",
            "operator_id",
            "operator_name",
            "entry_type",
            "body",
            "metadata",
            "line",
            "shift_start",
            "shift_end",
            "target_type",
            "target_id",
            "corrects",
            "acknowledges",
            "acknowledged_by_entry",
            "automatic",
            "source",
            "request_id",
            "created_at",
        ]
        read_only_fields = fields  # an answer; writes use ShiftLogWriteSerializer

    def get_acknowledged_by_entry(self, entry: ShiftLogEntry) -> int | None:
        if entry.entry_type != ShiftLogEntryType.HANDOVER:
            return None
        try:
            return entry.acknowledgement.pk
        except ShiftLogEntry.acknowledgement.RelatedObjectDoesNotExist:
            return None
