"""Shapes of the LIMS API (snake_case, as the connectors contract)."""

from __future__ import annotations

from rest_framework import serializers

from bpmos.filters import INT64_MAX
from bpmos.jsonfields import WholeNumberField
from scada.models import LimsResult


class LimsImportSerializer(serializers.Serializer):
    """The multipart body of ``POST /api/lims/import``."""

    file = serializers.FileField(
        help_text="The CSV: columns serial, test_name, result, tested_at, an "
        "optional key, and any further columns as the result's values."
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Check every row and apply nothing."
    )


class LimsFetchSerializer(serializers.Serializer):
    connector = WholeNumberField(
        min_value=1, max_value=INT64_MAX, help_text="A LIMS connector's id."
    )


class RowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(
        help_text="The line in the file (the header is line 1), or the "
        "result's position in the LIMS's answer (from 1)."
    )
    serial = serializers.CharField()
    error = serializers.CharField()
    code = serializers.CharField(
        help_text="invalid, unknown_serial, ambiguous_identifier, or a "
        "passports refusal (illegal_transition, validation_error, …)."
    )


class LimsReportSerializer(serializers.Serializer):
    applied = serializers.IntegerField(
        help_text="Results applied (in a dry run: that would be applied)."
    )
    skipped = serializers.IntegerField(help_text="Results applied before.")
    rejected = RowErrorSerializer(many=True)
    dry_run = serializers.BooleanField()


class LimsResultSerializer(serializers.ModelSerializer):
    values = serializers.DictField(child=serializers.JSONField())

    class Meta:
        model = LimsResult
        fields = [
            "id",
            "key",
            "connector",
            "serial",
            "test_name",
            "passed",
            "values",
            "tested_at",
            "passport_event_id",
            "source",
            "created_at",
        ]
        read_only_fields = fields
