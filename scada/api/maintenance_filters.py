"""FilterSets of the maintenance work orders API."""

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from exceptions.models import Severity
from scada.models import DeliveryState, MaintenanceWorkOrder


class MaintenanceWorkOrderFilterSet(bpmos_filters.FilterSet):
    """``delivery_state`` may repeat (``?delivery_state=queued&delivery_state=failed``
    for everything not yet in the CMMS)."""

    delivery_state = filters.MultipleChoiceFilter(choices=DeliveryState.choices)
    priority = filters.ChoiceFilter(choices=Severity.choices)
    source_alarm = bpmos_filters.IntegerFilter(
        field_name="source_alarm_id", help_text="Alarm id."
    )

    class Meta:
        model = MaintenanceWorkOrder
        fields: list[str] = []
