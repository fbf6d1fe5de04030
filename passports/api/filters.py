"""FilterSet of the passport list and the registry (camelCase parameters).

Enums are accepted as the API shows them or as stored, in any case: ``state=QA
Passed``, ``state=qa_passed`` and ``state=qa passed`` are one filter.
"""

from django.db.models import TextChoices
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError

from bpmos import filters as bpmos_filters
from passports.models import CustodianKind, Kind, Passport, State


def enum_value(enum: type[TextChoices], raw: str) -> str | None:
    """The stored value ``raw`` names (value or label, any case; spaces and
    underscores alike), or None."""
    folded = raw.strip().casefold().replace(" ", "_")
    for value, label in enum.choices:
        if folded in {value.casefold(), label.casefold().replace(" ", "_")}:
            return value
    return None


class EnumFilter(filters.CharFilter):
    """One of an enum's values or labels; 400 naming the choices otherwise."""

    def __init__(self, *, enum: type[TextChoices], **kwargs):
        self.enum = enum
        kwargs.setdefault(
            "help_text", f"One of {', '.join(enum.labels)} (or the stored value)."
        )
        super().__init__(**kwargs)

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        stored = enum_value(self.enum, value)
        if stored is None:
            raise ValidationError(
                {self.field_name: [f"One of {', '.join(self.enum.labels)}."]}
            )
        return qs.filter(**{self.field_name: stored})


class PassportFilterSet(bpmos_filters.FilterSet):
    kind = EnumFilter(enum=Kind, field_name="kind")
    state = EnumFilter(enum=State, field_name="state")
    custodianKind = EnumFilter(enum=CustodianKind, field_name="custodian_kind")
    lot = filters.CharFilter(field_name="lot", help_text="Production lot, exactly.")
    model = filters.CharFilter(field_name="model", lookup_expr="iexact")
    onHold = filters.BooleanFilter(field_name="on_hold", help_text="true or false.")
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

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        # Ties broken by id so pages never overlap.
        ordering = list(queryset.query.order_by) or ["-manufactured_at", "serial"]
        return queryset.order_by(*ordering, "pk")
