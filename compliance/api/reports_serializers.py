"""Shapes of the reports API (camelCase, as the control-UI contract)."""

from __future__ import annotations

from rest_framework import serializers


class ReportParamSerializer(serializers.Serializer):
    name = serializers.CharField(help_text='The query key: "from", "line", "fy".')
    type = serializers.ChoiceField(
        choices=["date", "string", "choice", "fy", "integer"]
    )
    label = serializers.CharField()
    required = serializers.BooleanField()
    default = serializers.JSONField(
        allow_null=True, help_text='What an absent value means, e.g. "today".'
    )
    choices = serializers.ListField(child=serializers.CharField())


class ReportColumnSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The key of the value in each row.")
    label = serializers.CharField(help_text="The heading (and the CSV header).")
    type = serializers.ChoiceField(
        choices=["string", "number", "percent", "date", "datetime"]
    )


class ReportSerializer(serializers.Serializer):
    """One report template of the registry."""

    id = serializers.CharField(help_text='"oee-by-line-shift"')
    title = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField(help_text='"Production", "Operations", …')
    parameters = ReportParamSerializer(many=True)
    columns = ReportColumnSerializer(many=True)
    charts = serializers.ListField(
        child=serializers.CharField(), help_text='Chart ids, e.g. ["oee-trend"].'
    )
    formats = serializers.ListField(child=serializers.CharField())


class ChartPointSerializer(serializers.Serializer):
    x = serializers.CharField(help_text="A day (YYYY-MM-DD) or a category.")
    y = serializers.FloatField(allow_null=True, help_text="null: no value.")


class ChartSeriesSerializer(serializers.Serializer):
    name = serializers.CharField()
    points = ChartPointSerializer(many=True)


class ChartSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='"oee-trend"')
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=["line", "bar"])
    xLabel = serializers.CharField()
    yLabel = serializers.CharField()
    series = ChartSeriesSerializer(many=True)


class SummaryFigureSerializer(serializers.Serializer):
    label = serializers.CharField()
    value = serializers.JSONField(help_text="A number (or null).")


class ReportPreviewSerializer(serializers.Serializer):
    """The preview panel: real rows (the first 50), the total, the summary,
    the charts, and an empty state when there is nothing."""

    reportId = serializers.CharField()
    title = serializers.CharField()
    generatedAt = serializers.CharField(help_text="ISO 8601 UTC.")
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="The parameters as parsed, defaults filled in.",
    )
    columns = ReportColumnSerializer(many=True)
    rows = serializers.ListField(
        child=serializers.DictField(child=serializers.JSONField(allow_null=True)),
        help_text="The first rows, keyed by the columns' keys.",
    )
    totalRows = serializers.IntegerField()
    truncated = serializers.BooleanField(help_text="More rows than shown.")
    summary = SummaryFigureSerializer(many=True)
    charts = ChartSerializer(many=True)
    isEmpty = serializers.BooleanField()
    emptyMessage = serializers.CharField(allow_null=True)
    isDemo = serializers.BooleanField(help_text="Always false: never sample data.")
