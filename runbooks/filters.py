"""FilterSets of the production API (mobile contract): work orders, stages."""

from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from bpmos import filters as bpmos_filters
from runbooks.models import StageStatus, WorkOrder, WorkOrderStage, WorkOrderStatus


class WorkOrderFilterSet(bpmos_filters.FilterSet):
    """``status`` may repeat (``?status=planned&status=in_progress``)."""

    status = filters.MultipleChoiceFilter(choices=WorkOrderStatus.choices)
    runbook = filters.CharFilter(field_name="runbook__slug", help_text="Runbook slug.")
    product_code = filters.CharFilter()
    lot_no = filters.CharFilter()

    class Meta:
        model = WorkOrder
        fields: list[str] = []


# The pattern is the filter's own: "0" or " " read as text of length 1 was a
# schema-valid value the filter refused (the long fuzz campaign).
ASSIGNED_TO_PATTERN = r"^(me|[1-9][0-9]{0,9})$"


@extend_schema_field({"type": "string", "pattern": ASSIGNED_TO_PATTERN})
class _AssignedToFilter(filters.Filter):
    field_class = forms.RegexField


class StageFilterSet(bpmos_filters.FilterSet):
    """A worker's own stages: ``?assigned_to=me`` (or a user id)."""

    assigned_to = _AssignedToFilter(
        method="filter_assigned_to",
        regex=ASSIGNED_TO_PATTERN,
        error_messages={"invalid": 'Use "me" or a user id.'},
        help_text='"me" for the caller, or a user id.',
    )
    status = filters.MultipleChoiceFilter(choices=StageStatus.choices)
    work_order = bpmos_filters.IntegerFilter(field_name="work_order_id")
    work_order_status = filters.MultipleChoiceFilter(
        field_name="work_order__status", choices=WorkOrderStatus.choices
    )

    class Meta:
        model = WorkOrderStage
        fields: list[str] = []

    def filter_assigned_to(self, queryset, name, value):
        user_id = self.request.user.pk if value == "me" else int(value)
        return queryset.filter(assignments__user_id=user_id)
