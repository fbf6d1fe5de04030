"""FilterSets of the audit log API."""

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from bpmos.roles import Role
from elog.models import AuditRecord


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
