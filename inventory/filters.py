"""FilterSets of the inventory API.

The control UI sends display enums ("Good", "Hold", "Blocked"); the stored values
are the same words in lower case. Status filters accept either, in any case.
"""

from django.db.models import Q, TextChoices
from django_filters import rest_framework as filters
from django_filters.fields import ChoiceField

from bpmos import filters as bpmos_filters
from inventory.models import Item, ItemStatus, Reservation, ReservationStatus


class _AnyCaseChoiceField(ChoiceField):
    """Matches a choice whatever its case: "hold", "Hold", "HOLD" are "Hold"."""

    def to_python(self, value):
        value = super().to_python(value)
        folded = value.casefold()
        for key, _ in self.choices:
            if isinstance(key, str) and key.casefold() == folded:
                return key
        return value


class AnyCaseChoiceFilter(filters.ChoiceFilter):
    """A choice filter on a status whose stored values are its labels in lower
    case (good/Good): it takes either, in any case; the schema lists the labels."""

    field_class = _AnyCaseChoiceField

    def __init__(self, *, enum: type[TextChoices], **kwargs):
        self.to_stored = {label: value for value, label in enum.choices}
        super().__init__(choices=[(label, label) for label in self.to_stored], **kwargs)

    def filter(self, qs, value):
        return super().filter(qs, self.to_stored.get(value, value))


class StableOrderingFilter(filters.OrderingFilter):
    """Ordering that breaks ties by id (the code), so pages never overlap."""

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.order_by(*(self.get_ordering_value(param) for param in value), "code")


class ItemFilterSet(bpmos_filters.FilterSet):
    """The contract's ``category``, ``status`` (search is the ``search`` param).

    The control UI sends its filters as they stand, an unset one empty
    (``?category=&status=``): empty is "not given" for these two."""

    allow_empty = frozenset({"ordering", "category", "status"})

    category = filters.CharFilter(
        method="filter_category",
        help_text='Category id or name, any case: "cells", "Cells", "Raw Materials".',
    )
    status = AnyCaseChoiceFilter(
        enum=ItemStatus, help_text='Good, Hold or Blocked (any case: "hold").'
    )
    sku = filters.CharFilter(field_name="sku", lookup_expr="iexact")
    location = filters.CharFilter(
        method="filter_location",
        help_text="Location id; a zone or rack includes what sits under it.",
    )
    ordering = StableOrderingFilter(
        fields=(
            ("code", "id"),
            ("sku", "sku"),
            ("received_at", "receivedAt"),
            ("status", "status"),
        ),
        help_text="id, sku, receivedAt (oldest first), status; '-' reverses.",
    )

    class Meta:
        model = Item
        fields: list[str] = []

    def filter_category(self, queryset, name, value):
        return queryset.filter(
            Q(category__slug__iexact=value) | Q(category__name__iexact=value)
        )

    def filter_location(self, queryset, name, value):
        return queryset.filter(
            Q(location__code__iexact=value)
            | Q(location__parent__code__iexact=value)
            | Q(location__parent__parent__code__iexact=value)
        )


class ReservationFilterSet(bpmos_filters.FilterSet):
    itemId = filters.CharFilter(field_name="item__code", help_text="Item id.")
    workOrderId = bpmos_filters.IntegerFilter(field_name="work_order_id")
    dispatchRef = filters.CharFilter(field_name="dispatch_ref")
    status = AnyCaseChoiceFilter(
        enum=ReservationStatus, help_text="Active, Released or Consumed."
    )

    class Meta:
        model = Reservation
        fields: list[str] = []
