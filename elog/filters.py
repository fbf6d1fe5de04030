"""FilterSets of the audit log API."""

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from bpmos.roles import Role
from elog.models import AuditRecord, ShiftLogEntry, ShiftLogEntryType


class AuditRecordFilterSet(bpmos_filters.FilterSet):
    """Exact-match filters plus an inclusive ``from``/``to`` window on time.

    ``from`` is a Python keyword, so the two time filters are added in
    ``get_filters`` rather than declared as attributes.
    """

    action = filters.CharFilter()
    actor = bpmos_filters.IntegerFilter(field_name="actor_id", help_text="User id.")
    actor_role = filters.ChoiceFilter(choices=Role.choices)
    target_type = filters.CharFilter(help_text='e.g. "accounts.user".')
    target_id = filters.CharFilter()
    request_id = filters.CharFilter()
    source = filters.CharFilter(help_text='"api", "admin", "web", "task", ...')

    class Meta:
        model = AuditRecord
        fields: list[str] = []

    @classmethod
    def get_filters(cls):
        declared = super().get_filters()
        declared["from"] = bpmos_filters.DateTimeFilter(
            field_name="occurred_at",
            lookup_expr="gte",
            help_text="Records at or after this ISO 8601 time.",
        )
        declared["to"] = bpmos_filters.DateTimeFilter(
            field_name="occurred_at",
            lookup_expr="lte",
            help_text="Records at or before this ISO 8601 time.",
        )
        return declared


class ShiftLogEntryFilterSet(bpmos_filters.FilterSet):
    """Filters of ``GET /api/logs/shift``: the shift containing a time, entry
    types, line, operator, automatic, and an inclusive ``from``/``to`` window."""

    shift = bpmos_filters.DateTimeFilter(
        method="filter_shift",
        help_text="Entries of the shift containing this ISO 8601 time.",
    )
    entry_type = filters.MultipleChoiceFilter(
        choices=ShiftLogEntryType.choices,
        help_text="One or more (repeat the parameter).",
    )
    line = filters.CharFilter(help_text="A line's slug.", max_length=50)
    operator = bpmos_filters.IntegerFilter(
        field_name="operator_id", help_text="User id."
    )
    automatic = bpmos_filters.BooleanFilter()

    class Meta:
        model = ShiftLogEntry
        fields: list[str] = []

    @classmethod
    def get_filters(cls):
        declared = super().get_filters()
        declared["from"] = bpmos_filters.DateTimeFilter(
            field_name="created_at",
            lookup_expr="gte",
            help_text="Entries at or after this ISO 8601 time.",
        )
        declared["to"] = bpmos_filters.DateTimeFilter(
            field_name="created_at",
            lookup_expr="lte",
            help_text="Entries at or before this ISO 8601 time.",
        )
        return declared

    def filter_shift(self, queryset, name, value):
        return queryset.filter(shift_start__lte=value, shift_end__gt=value)
