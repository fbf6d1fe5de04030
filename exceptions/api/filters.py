"""FilterSets of the exceptions API.

The control UI speaks display enums ("Critical", "Quality Failure", "Open"), the
mobile app stored values ("critical", "quality_failure", "open"): each enum
filter accepts either spelling.
"""

from django.db.models import TextChoices
from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from exceptions.models import ExceptionStatus, ExceptionType, PlantException, Severity


class EitherSpellingFilter(filters.ChoiceFilter):
    """A choice filter accepting a stored value or its display label."""

    def __init__(self, *, enum: type[TextChoices], **kwargs):
        self.to_value = {label: value for value, label in enum.choices}
        choices = [(value, label) for value, label in enum.choices] + [
            (label, label) for value, label in enum.choices if label != value
        ]
        super().__init__(choices=choices, **kwargs)

    def filter(self, qs, value):
        return super().filter(qs, self.to_value.get(value, value))


class StableOrderingFilter(filters.OrderingFilter):
    """Ordering that breaks ties by id, so pages never overlap or skip rows."""

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.order_by(*(self.get_ordering_value(param) for param in value), "-id")


class ExceptionFilterSet(bpmos_filters.FilterSet):
    status = EitherSpellingFilter(
        enum=ExceptionStatus, help_text="Open, Acknowledged or Resolved."
    )
    severity = EitherSpellingFilter(
        enum=Severity, help_text="Critical, High, Medium or Low."
    )
    type = EitherSpellingFilter(enum=ExceptionType, help_text='e.g. "Quality Failure".')
    runbook = filters.CharFilter(
        field_name="linked_runbook_slug", help_text='Runbook id, e.g. "manufacturing".'
    )
    isBlocking = bpmos_filters.BooleanFilter(
        field_name="halts", help_text="Only those that halt (or do not halt) a runbook."
    )
    ordering = StableOrderingFilter(
        fields=(("raised_at", "raisedAt"), ("severity_rank", "severity")),
        help_text="raisedAt, -raisedAt, severity (Critical first), -severity.",
    )

    class Meta:
        model = PlantException
        fields: list[str] = []


class IssueFilterSet(bpmos_filters.FilterSet):
    """``status`` may repeat (``?status=open&status=ack`` for the unresolved)."""

    status = filters.MultipleChoiceFilter(choices=ExceptionStatus.choices)
    type = filters.ChoiceFilter(choices=ExceptionType.choices)
    severity = filters.ChoiceFilter(choices=Severity.choices)
    work_order_stage = bpmos_filters.IntegerFilter(
        field_name="work_order_stage_id", help_text="Work-order stage id."
    )
    work_order_stage_id = bpmos_filters.IntegerFilter(
        field_name="work_order_stage_id", help_text="Same as work_order_stage."
    )
    work_order = bpmos_filters.IntegerFilter(field_name="work_order_id")

    class Meta:
        model = PlantException
        fields: list[str] = []
