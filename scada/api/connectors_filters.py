"""FilterSets of the connectors, tags and readings lists."""

from django_filters import rest_framework as filters

from bpmos import filters as bpmos_filters
from scada.models import Connector, ScadaReading, Tag


class ConnectorFilterSet(bpmos_filters.FilterSet):
    class Meta:
        model = Connector
        fields = ["kind", "enabled", "mode", "comm_state"]


class TagFilterSet(bpmos_filters.FilterSet):
    connector = bpmos_filters.IntegerFilter(field_name="connector_id")
    machine = bpmos_filters.IntegerFilter(field_name="machine_id")

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
