"""Shapes of ``/api/dashboard/summary``, ``/trends`` and ``/distributions``
(control-UI contract group I): camelCase, display enums, times as
"2026-01-15T10:30:00Z". The values come from ``bpmos.dashboards.kpis``,
``.trends`` and ``.distributions``; nothing here computes."""

from rest_framework import serializers

from bpmos.dashboards import trends
from bpmos.dashboards.api_tower.serializers import CustodyShareSerializer
from bpmos.fields import DateTimeField, choice_labels, utc_datetime
from inventory.models import ItemStatus
from lines.api_tower.serializers import StageWipSerializer

PERCENT = {"min_value": 0, "max_value": 100, "allow_null": True}


class WindowFiguresSerializer(serializers.Serializer):
    """Planned, Built and Yield over one window [from, to)."""

    # "from" is a keyword: declared through the class namespace.
    locals()["from"] = utc_datetime(source="start", help_text="Start (UTC).")
    to = utc_datetime(source="end", help_text="End (UTC), exclusive.")
    planned = serializers.IntegerField(
        min_value=0,
        help_text="Quantity of work orders (not cancelled) due in the window.",
    )
    built = serializers.IntegerField(
        min_value=0, help_text="Quantity of work orders completed in the window."
    )
    qaTested = serializers.IntegerField(
        source="qa_tested",
        min_value=0,
        help_text="Passports whose first QA result fell in the window.",
    )
    qaPassed = serializers.IntegerField(
        source="qa_passed", min_value=0, help_text="Of those, the ones that passed."
    )
    yieldPercent = serializers.FloatField(
        source="yield_percent",
        help_text="First-pass yield: qaPassed ÷ qaTested, %, one decimal; null "
        "without QA results.",
        **PERCENT,
    )
    good = serializers.IntegerField(
        min_value=0,
        help_text="Good pieces the lines' machines reported (shifts starting in it).",
    )
    rejected = serializers.IntegerField(min_value=0)
    lineYieldPercent = serializers.FloatField(
        source="line_yield_percent",
        help_text="good ÷ (good + rejected), %, one decimal (OEE Quality); null "
        "when none.",
        **PERCENT,
    )


class HoldSerializer(serializers.Serializer):
    """On hold now, per register (the same pack may be held as a stock item
    and as a passport: it counts in both)."""

    total = serializers.IntegerField(min_value=0)
    workOrderStages = serializers.IntegerField(source="work_order_stages")
    inventoryItems = serializers.IntegerField(source="inventory_items")
    passports = serializers.IntegerField()


class SummarySerializer(serializers.Serializer):
    asOf = utc_datetime(source="as_of")
    shift = WindowFiguresSerializer(help_text="The plant's current shift.")
    today = WindowFiguresSerializer(help_text="The UTC calendar day.")
    week = WindowFiguresSerializer(help_text="The ISO week (from Monday, UTC).")
    hold = HoldSerializer()


class TrendQuerySerializer(serializers.Serializer):
    """The query string of ``/api/dashboard/trends``."""

    metric = serializers.ChoiceField(choices=trends.METRICS)
    bucket = serializers.ChoiceField(
        choices=list(trends.BUCKETS), required=False, default="day"
    )
    # "from" is a keyword: declared through the class namespace.
    locals()["from"] = DateTimeField(required=False)
    to = DateTimeField(required=False)
    passport = serializers.CharField(required=False, max_length=64)
    model = serializers.CharField(required=False, max_length=64)

    def to_internal_value(self, data):
        # DRF reads "?from=" as if from were absent; an empty value is a
        # mistake of the caller's, so it is a 400 naming the parameter.
        empty = {
            name: ["May not be empty."]
            for name in self.fields
            if name in data and data.get(name) == ""
        }
        if empty:
            raise serializers.ValidationError(empty)
        return super().to_internal_value(data)


class PointSerializer(serializers.Serializer):
    t = utc_datetime(help_text="Start of the bucket (UTC).")
    value = serializers.FloatField(
        allow_null=True,
        help_text="Counts are 0 for an empty bucket; ratios and means null.",
    )


class SeriesSerializer(serializers.Serializer):
    id = serializers.CharField(
        help_text='"plant", a line id, a passport UUID or a model code.'
    )
    name = serializers.CharField()
    points = PointSerializer(many=True)


class TrendSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=trends.METRICS)
    bucket = serializers.ChoiceField(choices=list(trends.BUCKETS))
    unit = serializers.CharField(help_text='"units", "count", "%" or "°C".')
    locals()["from"] = utc_datetime(
        source="start", help_text="from, rounded down to its bucket."
    )
    to = utc_datetime(source="end")
    series = SeriesSerializer(many=True)


class StatusShareSerializer(serializers.Serializer):
    """Items in stock with one status."""

    status = serializers.ChoiceField(choices=choice_labels(ItemStatus))
    count = serializers.IntegerField(min_value=0)


class DistributionsSerializer(serializers.Serializer):
    stageMix = StageWipSerializer(
        source="stage_mix",
        many=True,
        help_text="WIP per stage of every active runbook, by runbook and position.",
    )
    custodyMix = CustodyShareSerializer(
        source="custody_mix",
        many=True,
        help_text="Batteries as units per custodian kind, in chain order.",
    )
    inventoryByStatus = StatusShareSerializer(
        source="inventory_by_status", many=True, help_text="Items in stock."
    )
