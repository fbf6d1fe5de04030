"""Shapes of the returns API (camelCase, as every /api/compliance/ payload)."""

from __future__ import annotations

from datetime import date

from rest_framework import serializers

from bpmos.filters import INT64_MAX
from bpmos.jsonfields import WholeNumberField
from compliance.api.fields import FinancialYearField
from compliance.models import ComplianceReturn, CsvSchema, ReturnLine
from compliance.periods import Period, fy_period

# Days a period may span: 2000-01-01 to 2099-12-31 (fy_parse's years).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


class ReturnBuildSerializer(serializers.Serializer):
    """``{"fy": "2026-27"}`` or ``{"from": "2026-04-01", "to": "2026-06-30"}``."""

    fy = FinancialYearField(
        required=False,
        max_length=7,
        help_text='A financial year, "2026-27" (1 April to 31 March, plant time).',
    )
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=300, default=""
    )

    def get_fields(self):
        fields = super().get_fields()
        # "from" and "to" are Python keywords: declared here.
        fields["from"] = serializers.DateField(
            required=False,
            help_text="First day, YYYY-MM-DD (plant time); with to, instead of fy.",
        )
        fields["to"] = serializers.DateField(
            required=False, help_text="Last day, inclusive (plant time)."
        )
        return fields

    def validate(self, attrs):
        fy, first, last = attrs.get("fy"), attrs.get("from"), attrs.get("to")
        if fy and (first or last):
            raise serializers.ValidationError(
                {"fy": ["Give fy, or from and to; not both."]}
            )
        if fy:
            attrs["period"] = fy_period(fy)
            return attrs
        if not (first and last):
            missing = "to" if first else "from" if last else "fy"
            message = (
                "Give fy, or from and to."
                if missing == "fy"
                else f"Give {missing} too (or fy)."
            )
            raise serializers.ValidationError({missing: [message]})
        errors = {}
        for name, day in (("from", first), ("to", last)):
            if not FIRST_DAY <= day <= LAST_DAY:
                errors[name] = ["A day from 2000-01-01 to 2099-12-31."]
        if errors:
            raise serializers.ValidationError(errors)
        if last < first:
            raise serializers.ValidationError({"to": ["On or after from."]})
        attrs["period"] = Period(first, last)
        return attrs


class ReturnSerializer(serializers.ModelSerializer):
    """A return without its figures (the list)."""

    # Text, not an enum component: "status" names several enums in the schema.
    status = serializers.CharField(help_text="draft or approved.")
    financialYear = serializers.CharField(
        source="financial_year", help_text='"2026-27"; empty when not one FY.'
    )
    periodStart = serializers.DateField(source="period_start")
    periodEnd = serializers.DateField(source="period_end")
    rowCount = serializers.IntegerField(source="row_count")
    contentHash = serializers.CharField(source="content_hash")
    builtAt = serializers.DateTimeField(source="built_at")
    builtBy = serializers.SerializerMethodField()
    approvedAt = serializers.DateTimeField(source="approved_at", allow_null=True)
    approvedBy = serializers.SerializerMethodField()
    approvedRole = serializers.CharField(source="approved_role")
    exportCount = serializers.IntegerField(source="export_count")
    lastExportedAt = serializers.DateTimeField(
        source="last_exported_at", allow_null=True
    )

    class Meta:
        model = ComplianceReturn
        fields = [
            "id",
            "status",
            "financialYear",
            "periodStart",
            "periodEnd",
            "rowCount",
            "contentHash",
            "builtAt",
            "builtBy",
            "approvedAt",
            "approvedBy",
            "approvedRole",
            "exportCount",
            "lastExportedAt",
            "note",
        ]
        read_only_fields = fields

    def get_builtBy(self, ret) -> str | None:
        return ret.built_by.get_username() if ret.built_by else None

    def get_approvedBy(self, ret) -> str | None:
        return ret.approved_by.get_username() if ret.approved_by else None


class ReturnDetailSerializer(ReturnSerializer):
    """A return with its frozen EPR figures (``GET /api/compliance/epr``'s shape)."""

    figures = serializers.JSONField()

    class Meta(ReturnSerializer.Meta):
        fields = [*ReturnSerializer.Meta.fields, "figures"]
        read_only_fields = fields


class ReturnLineSerializer(serializers.ModelSerializer):
    occurredAt = serializers.DateTimeField(source="occurred_at")
    passportId = serializers.IntegerField(source="passport_id")
    passportUuid = serializers.UUIDField(source="passport.uuid")
    category = serializers.SerializerMethodField()
    massKg = serializers.DecimalField(
        source="mass_kg",
        max_digits=8,
        decimal_places=3,
        coerce_to_string=False,
        allow_null=True,
    )

    class Meta:
        model = ReturnLine
        fields = [
            "id",
            "event",
            "occurredAt",
            "serial",
            "bpan",
            "passportId",
            "passportUuid",
            "model",
            "category",
            "chemistry",
            "massKg",
            "custodian",
        ]
        read_only_fields = fields

    def get_category(self, line) -> str | None:
        return line.category or None


class SchemaColumnSerializer(serializers.Serializer):
    header = serializers.CharField()
    field = serializers.CharField()


class CsvSchemaSerializer(serializers.ModelSerializer):
    columns = SchemaColumnSerializer(many=True)
    isDefault = serializers.BooleanField(source="is_default")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = CsvSchema
        fields = ["slug", "name", "level", "columns", "isDefault", "updatedAt"]
        read_only_fields = fields


class ExportSerializer(serializers.Serializer):
    """The optional body of ``POST /api/compliance/export``."""

    returnId = WholeNumberField(
        required=False,
        min_value=1,
        max_value=INT64_MAX,
        help_text="The return to export; omitted: the most recently approved.",
    )
    schema = serializers.SlugField(
        required=False,
        max_length=50,
        help_text="A CSV schema's slug (GET /api/compliance/schemas); omitted: "
        "the default pack-level schema.",
    )
