"""Fields the compliance API shares."""

from __future__ import annotations

from rest_framework import serializers

from compliance.periods import fy_parse


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
