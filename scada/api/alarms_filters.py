"""FilterSets of alert rules, alarms and floods (snake_case query parameters)."""

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from exceptions.models import Severity
from scada.models import AlarmEvent, AlarmFlood, AlarmState, AlertRule


class AlertRuleFilterSet(bpmos_filters.FilterSet):
    tag = filters.CharFilter(field_name="tag__tag_name", help_text="Tag name.")
    enabled = bpmos_filters.BooleanFilter()
    severity = filters.ChoiceFilter(choices=Severity.choices)

    class Meta:
        model = AlertRule
        fields: list[str] = []


class AlarmFilterSet(bpmos_filters.FilterSet):
    """``state`` may repeat (``?state=unack_active&state=unack_rtn``)."""

    state = filters.MultipleChoiceFilter(
        field_name="status", choices=AlarmState.choices, help_text="ISA-18.2 state."
    )
    severity = filters.MultipleChoiceFilter(choices=Severity.choices)
    tag = filters.CharFilter(field_name="tag_name", help_text="Tag name.")
    area = filters.CharFilter()
    kind = filters.ChoiceFilter(
        choices=[("limit", "limit"), ("comm_loss", "comm_loss")]
    )
    active = bpmos_filters.BooleanFilter(help_text="The condition is abnormal now.")
    open = bpmos_filters.BooleanFilter(
        field_name="closed_at",
        lookup_expr="isnull",
        help_text="Not yet back to normal and acknowledged.",
    )
    rule = bpmos_filters.IntegerFilter(field_name="rule_id")
    connector = bpmos_filters.IntegerFilter(field_name="connector_id")
    vars()["from"] = bpmos_filters.DateTimeFilter(
        field_name="timestamp", lookup_expr="gte", help_text="Activated at or after."
    )
    to = bpmos_filters.DateTimeFilter(
        field_name="timestamp", lookup_expr="lt", help_text="Activated before."
    )

    class Meta:
        model = AlarmEvent
        fields: list[str] = []


class FloodFilterSet(bpmos_filters.FilterSet):
    area = filters.CharFilter()
    ongoing = bpmos_filters.BooleanFilter(
        field_name="ended_at", lookup_expr="isnull", help_text="Not ended yet."
    )

    class Meta:
        model = AlarmFlood
        fields: list[str] = []
