"""FilterSets of the connectors, tags and readings lists, and their
``ordering`` parameter."""

from django_filters import rest_framework as filters
from rest_framework import filters as drf_filters
from rest_framework.exceptions import ValidationError

from bpmos import filters as bpmos_filters
from scada.models import Connector, ScadaReading, Tag


class ConnectorFilterSet(bpmos_filters.FilterSet):
    # Strict: ?enabled=maybe is a 400, not the whole list (bpmos/filters.py).
    enabled = bpmos_filters.BooleanFilter()

    class Meta:
        model = Connector
        fields = ["kind", "enabled", "mode", "comm_state"]


class TagFilterSet(bpmos_filters.FilterSet):
    connector = bpmos_filters.IntegerFilter(field_name="connector_id")
    machine = bpmos_filters.IntegerFilter(field_name="machine_id")
    enabled = bpmos_filters.BooleanFilter()

    class Meta:
        model = Tag
        fields = ["connector", "machine", "kind", "enabled", "area"]


class ReadingFilterSet(bpmos_filters.FilterSet):
    """``tag`` (a tag name; repeat it for several), ``connector`` (id),
    ``from`` (inclusive) and ``to`` (exclusive) on the source timestamp,
    ``quality``."""

    tag = filters.BaseInFilter(
        field_name="tag_name", help_text="Tag names, comma-separated."
    )
    connector = bpmos_filters.IntegerFilter(field_name="connector_id")
    from_ = bpmos_filters.DateTimeFilter(field_name="timestamp", lookup_expr="gte")
    to = bpmos_filters.DateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = ScadaReading
        fields = ["tag", "connector", "quality", "alarm_state"]


# "from" is a Python keyword: declared as from_, served (and documented) as ?from=
ReadingFilterSet.base_filters["from"] = ReadingFilterSet.base_filters.pop("from_")


class OrderingFilter(drf_filters.OrderingFilter):
    """``?ordering=`` as the schema shows it: one of the view's
    ``ordering_fields``, ``-`` before it for descending, comma-separated.
    DRF's filter drops a term it does not know and answers in the default
    order, so ``?ordering=nmae`` looked like a sort that worked; here it is a
    400 naming the parameter."""

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw:
            allowed = {name for name, _ in self.get_valid_fields(queryset, view)}
            terms = [term.strip() for term in raw.split(",")]
            unknown = [t for t in terms if t.lstrip("-") not in allowed]
            if unknown:
                raise ValidationError(
                    {
                        self.ordering_param: [
                            f"Unknown ordering {unknown[0]!r}; one of "
                            f"{', '.join(sorted(allowed))} (- before it for "
                            "descending)."
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)

    def get_schema_operation_parameters(self, view):
        fields = list(getattr(view, "ordering_fields", None) or [])
        choices = [name for field in fields for name in (field, f"-{field}")]
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                # ?ordering= (empty) is "not given", as every filter here.
                "allowEmptyValue": True,
                "description": "Sort by one of these (- before it for descending).",
                "schema": {"type": "string", "enum": choices},
            }
        ]
