"""Shapes of the control-UI line and live-status endpoints (contract groups III
and V, payload C "Line Status"): camelCase, display enums, UTC times as
"2026-01-15T10:30:00Z". Values come from ``lines.selectors`` and
``lines.wip``; nothing here computes.
"""

from functools import cache

from rest_framework import serializers

from bpmos.fields import utc_datetime
from lines.status import LineHealth, LineMode, StationState

# The display enums, named once for the OpenAPI schema (ENUM_NAME_OVERRIDES).
LINE_MODES = [mode.value for mode in LineMode]
LINE_HEALTHS = [health.value for health in LineHealth]
STATION_STATES = [state.value for state in StationState]


def _percent(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=4,
        decimal_places=1,
        coerce_to_string=False,
        allow_null=True,
        **kwargs,
    )


class StationStatusSerializer(serializers.Serializer):
    """A station of payload C; ``reason`` only when it says why it is Blocked."""

    id = serializers.CharField(help_text='Station id within its line: "st-01".')
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=STATION_STATES)
    reason = serializers.CharField(
        required=False, help_text='Why it is Blocked: "Safety Curtain".'
    )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not data.get("reason"):
            data.pop("reason", None)
        return data


class StationDetailSerializer(StationStatusSerializer):
    """A station as ``/lines/{lineId}/stations`` lists it."""

    position = serializers.IntegerField()
    machineCount = serializers.IntegerField(source="machine_count")


class RunbookRefSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='"manufacturing"')
    title = serializers.CharField()
    status = serializers.CharField(help_text="The runbook's computed status.")
    currentStage = serializers.CharField(source="current_stage", allow_null=True)


class StationCountsSerializer(serializers.Serializer):
    ready = serializers.IntegerField()
    running = serializers.IntegerField()
    blocked = serializers.IntegerField()
    idle = serializers.IntegerField()


class LineSummarySerializer(serializers.Serializer):
    """A line as ``/lines`` lists it: its summary health."""

    id = serializers.CharField(help_text='"line-a"')
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=LINE_MODES)
    health = serializers.ChoiceField(choices=LINE_HEALTHS)
    oee = _percent(help_text="OEE this shift so far, %; null until computed.")
    runbookId = serializers.CharField(source="runbook_id", allow_null=True)
    stationCounts = StationCountsSerializer(source="station_counts")
    topic = serializers.CharField(help_text='Live topic of this line: "line.7".')


class LineStatusSerializer(serializers.Serializer):
    """Payload C "Line Status", plus OEE, runbook id and live topic."""

    id = serializers.CharField(help_text='"line-a"')
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=LINE_MODES)
    health = serializers.ChoiceField(choices=LINE_HEALTHS)
    stations = StationStatusSerializer(many=True)
    oee = _percent(help_text="OEE this shift so far, %; null until computed.")
    runbookId = serializers.CharField(source="runbook_id", allow_null=True)
    topic = serializers.CharField(help_text='Live topic of this line: "line.7".')


class LineDetailSerializer(LineStatusSerializer):
    """Payload C with the runbook the line executes (null if none)."""

    runbook = RunbookRefSerializer(allow_null=True)


class OEEFiguresSerializer(serializers.Serializer):
    availability = _percent()
    performance = _percent()
    quality = _percent()
    oee = _percent()
    plannedBusyTime = serializers.FloatField(
        source="planned_busy_seconds", help_text="Seconds, summed over machines."
    )
    runTime = serializers.FloatField(
        source="run_seconds",
        help_text="Actual production time (APT), seconds: each machine's time "
        "running, at most its planned busy time, summed over machines.",
    )
    goodCount = serializers.IntegerField(source="good_count")
    rejectCount = serializers.IntegerField(source="reject_count")
    producedCount = serializers.IntegerField(source="produced_count")


@cache
def _figures() -> OEEFiguresSerializer:
    """The one figures serializer of every OEE payload: making one deep-copies
    its fields (~0.5 ms here), and representing with it changes nothing."""
    return OEEFiguresSerializer()


class StationOEESerializer(OEEFiguresSerializer):
    id = serializers.CharField()
    name = serializers.CharField()

    def to_representation(self, instance):
        station, part = instance
        return {
            "id": station.slug,
            "name": station.name,
            **_figures().to_representation(part),
        }


class LineOEESerializer(serializers.Serializer):
    """A line's OEE over [from, to), percentages with one decimal."""

    lineId = serializers.CharField(source="line_id")
    vars()["from"] = utc_datetime(source="start")
    to = utc_datetime(source="end")
    source = serializers.ChoiceField(
        choices=["snapshot", "live"],
        help_text="snapshot: beat's read model (default window); live: computed now.",
    )
    computedAt = utc_datetime(source="computed_at")
    stations = StationOEESerializer(many=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        stations = data.pop("stations")
        return {
            **data,
            **_figures().to_representation(instance.total),
            "stations": stations,
        }


class LineCountsSerializer(serializers.Serializer):
    running = serializers.IntegerField()
    idle = serializers.IntegerField()
    blocked = serializers.IntegerField()
    maintenance = serializers.IntegerField()


class LiveSummarySerializer(serializers.Serializer):
    healthPercent = _percent(
        source="health_percent", help_text="Stations not Blocked, %."
    )
    activeLines = serializers.IntegerField(
        source="active_lines", help_text="Lines Running."
    )
    totalLines = serializers.IntegerField(source="total_lines")
    lines = LineCountsSerializer(source="modes")
    stations = StationCountsSerializer()
    oee = _percent(help_text="Plant OEE this shift so far, %.")
    updatedAt = utc_datetime(source="updated_at")


class StageWipSerializer(serializers.Serializer):
    runbookId = serializers.CharField(source="runbook_id")
    stageId = serializers.CharField(source="stage_id")
    stage = serializers.CharField(help_text='"S5 Module Assembly"')
    inProgress = serializers.IntegerField(source="in_progress")
    waiting = serializers.IntegerField()
    onHold = serializers.IntegerField(source="on_hold")
    wip = serializers.IntegerField()
    isBottleneck = serializers.BooleanField(source="is_bottleneck")


class OperationSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Work-order stage id.")
    workOrderId = serializers.IntegerField(source="work_order_id")
    runbookId = serializers.CharField(source="runbook_id")
    stageId = serializers.CharField(source="stage_id")
    stage = serializers.CharField()
    productCode = serializers.CharField(source="product_code")
    lotNo = serializers.CharField(source="lot_no")
    status = serializers.ChoiceField(choices=["Running", "Blocked"])
    reason = serializers.CharField(help_text="The hold reason; empty when running.")
    since = utc_datetime(allow_null=True)


class OperationsSerializer(serializers.Serializer):
    runningCount = serializers.IntegerField(source="running_count")
    blockedCount = serializers.IntegerField(source="blocked_count")
    running = OperationSerializer(many=True)
    blocked = OperationSerializer(many=True)
    bottleneck = StageWipSerializer(allow_null=True)


class BottlenecksSerializer(serializers.Serializer):
    bottleneck = StageWipSerializer(allow_null=True)
    stages = StageWipSerializer(many=True)
