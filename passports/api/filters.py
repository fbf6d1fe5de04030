"""FilterSet of the passport list and the registry (camelCase parameters).

Enums are accepted as the API shows them or as stored, in any case: ``state=QA
Passed``, ``state=qa_passed`` and ``state=qa passed`` are one filter.
"""

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from bpmos.filters import EnumFilter
from passports.models import CustodianKind, Kind, Passport, State


class PassportFilterSet(bpmos_filters.FilterSet):
    kind = EnumFilter(enum=Kind, field_name="kind")
    state = EnumFilter(enum=State, field_name="state")
    custodianKind = EnumFilter(enum=CustodianKind, field_name="custodian_kind")
    lot = filters.CharFilter(field_name="lot", help_text="Production lot, exactly.")
    model = filters.CharFilter(field_name="model", lookup_expr="iexact")
    onHold = bpmos_filters.BooleanFilter(
        field_name="on_hold", help_text="true or false."
    )
    ordering = filters.OrderingFilter(
        fields=(
            ("serial", "serial"),
            ("manufactured_at", "manufacturedAt"),
            ("updated_at", "updatedAt"),
            ("state", "state"),
            ("kind", "kind"),
            ("version", "version"),
        ),
        help_text="serial, manufacturedAt, updatedAt, state, kind, version; "
        "'-' reverses. Default: newest manufactured first.",
    )

    class Meta:
        model = Passport
        fields: list[str] = []

    @classmethod
    def after_filters(cls, queryset):
        # Ties broken by id so pages never overlap.
        ordering = list(queryset.query.order_by) or ["-manufactured_at", "serial"]
        return queryset.order_by(*ordering, "pk")
