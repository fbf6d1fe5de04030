"""Fields the compliance API shares."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from compliance.periods import fy_parse

# Every label ``fy_parse`` takes, "2000-01" to "2099-00": the schema says it
# (a fuzzer's "0" was schema-valid and a 400).
FY_PATTERN = (
    "^(" + "|".join(f"{y}-{(y + 1) % 100:02d}" for y in range(2000, 2100)) + ")$"
)


@extend_schema_field({"type": "string", "pattern": FY_PATTERN, "example": "2026-27"})
class FinancialYearFilter(filters.CharFilter):
    """A query filter taking a financial year (its method checks it)."""


@extend_schema_field({"type": "string", "pattern": FY_PATTERN, "example": "2026-27"})
class FinancialYearField(serializers.CharField):
    """A financial year written "2026-27" (April to March); 400 with
    ``fy_parse``'s reason otherwise."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 7)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            fy_parse(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
        return value
