"""FilterSets of the machines API (mobile contract)."""

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from lines.models import Machine, MachineState


class MachineFilterSet(bpmos_filters.FilterSet):
    """``status`` may repeat (``?status=down&status=blocked``)."""

    line = filters.CharFilter(
        field_name="station__line__slug", help_text="Line id, e.g. line-a."
    )
    station = filters.CharFilter(
        field_name="station__slug", help_text="Station id, e.g. st-02."
    )
    status = filters.MultipleChoiceFilter(choices=MachineState.choices)
    machine_type = filters.CharFilter()
    is_active = bpmos_filters.BooleanFilter()

    class Meta:
        model = Machine
        fields: list[str] = []
