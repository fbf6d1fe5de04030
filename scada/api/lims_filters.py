"""Filters of ``GET /api/lims/results``."""

from __future__ import annotations

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from scada.models import LimsResult


class LimsResultFilterSet(bpmos_filters.FilterSet):
    serial = filters.CharFilter(help_text="The passport's serial.")
    test_name = filters.CharFilter()
    passed = bpmos_filters.BooleanFilter(help_text="true or false.")
    connector = bpmos_filters.IntegerFilter(field_name="connector_id")
    source = filters.ChoiceFilter(choices=[("csv", "csv"), ("api", "api")])
    vars()["from"] = bpmos_filters.DateTimeFilter(
        field_name="tested_at", lookup_expr="gte", help_text="Tested at or after."
    )
    to = bpmos_filters.DateTimeFilter(
        field_name="tested_at", lookup_expr="lt", help_text="Tested before."
    )

    class Meta:
        model = LimsResult
        fields: list[str] = []
