"""Admin list pages for the tables that grow by millions of rows a year.

A plant-year holds ~10M machine readings, ~1M ledger events, ~1M audit records
and ~1M battery telemetry readings (``manage.py generate_plant --scale year``).
Django's change list asks each of them for what a small table answers at once
and a large one answers by reading every row: the exact count of the rows
shown, the distinct values of each column it offers as a filter, the distinct
years (months, days) of its date hierarchy. On the year plant that made the
readings' page take 4.3 s and the audit log's 0.5 s. The pieces here answer
the same questions from indexes and the planner:

* ``EstimatedCountPaginator``: the exact count while PostgreSQL's planner
  expects fewer than ``EXACT_BELOW`` rows, its estimate beyond (the page
  numbers are then approximate; every page shown is exact).
* ``LargeTableAdmin.get_queryset``: a queryset whose ``dates()`` and
  ``datetimes()`` (the date hierarchy's drill-down) probe each period between
  the first and the last row for a row (a range read of the field's index),
  instead of grouping every row by period.
* ``IndexedValuesFilter``: a column's distinct values read by skipping
  through the column's b-tree index (a "loose index scan", one index probe a
  value), for columns an index leads with.
* ``listed_values(values)``: a filter offering a fixed list (the values a
  column can hold by the code that writes it) without reading the table; any
  other value still filters when given in the URL.

SQLite (the embedded demo) takes Django's own answers: it has no planner
estimate to read and its tables are a demo's size.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from functools import cache

from django.contrib import admin
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections, router
from django.db.models import Max, Min, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

# Below this many rows (by the planner's estimate) a count is exact.
EXACT_BELOW = 100_000
# A date hierarchy probes at most this many periods; beyond, Django's query.
MAX_PROBES = 400


def planner_rows(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the rows ``queryset`` returns (None elsewhere)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str | bytes):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Counts exactly what is small, estimates what is large (see the module)."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        try:
            estimate = planner_rows(queryset)
        except EmptyResultSet:  # a filter that matches nothing by its form
            return 0
        if estimate is None or estimate < EXACT_BELOW:
            return super().count
        return estimate


def _period_start(moment, kind: str):
    if kind == "year":
        return moment.replace(month=1, day=1)
    if kind == "month":
        return moment.replace(day=1)
    return moment


def _next_period(start, kind: str):
    if kind == "year":
        return start.replace(year=start.year + 1)
    if kind == "month":
        if start.month == 12:
            return start.replace(year=start.year + 1, month=1)
        return start.replace(month=start.month + 1)
    return start + timedelta(days=1)


class ProbedDatesQuerySet(QuerySet):
    """``dates()``/``datetimes()`` by a range probe per period (see the module)."""

    def _probed(self, field_name: str, kind: str, order: str, tzinfo, moments: bool):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        if moments:
            zone = tzinfo or timezone.get_current_timezone()
            first = timezone.localtime(first, zone).replace(tzinfo=None)
            last = timezone.localtime(last, zone).replace(tzinfo=None)
            first = datetime.combine(first.date(), datetime.min.time())
        start = _period_start(first, kind)
        periods = []
        while start <= last:
            periods.append(start)
            start = _next_period(start, kind)
            if len(periods) > MAX_PROBES:
                return None
        found = []
        for start in periods:
            end = _next_period(start, kind)
            if moments:
                low = timezone.make_aware(start, zone)
                high = timezone.make_aware(end, zone)
            else:
                low, high = start, end
            span = {f"{field_name}__gte": low, f"{field_name}__lt": high}
            if self.filter(**span).exists():
                found.append(low)
        return found[::-1] if order == "DESC" else found

    def dates(self, field_name, kind, order="ASC"):
        if kind not in ("year", "month", "day") or not self._probe_dates():
            return super().dates(field_name, kind, order)
        found = self._probed(field_name, kind, order, None, moments=False)
        if found is None:
            return super().dates(field_name, kind, order)
        return [d if isinstance(d, date) else d.date() for d in found]

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        if kind not in ("year", "month", "day") or not self._probe_dates():
            return super().datetimes(field_name, kind, order, tzinfo)
        found = self._probed(field_name, kind, order, tzinfo, moments=True)
        if found is None:
            return super().datetimes(field_name, kind, order, tzinfo)
        return found

    def _probe_dates(self) -> bool:
        return connections[self.db].vendor == "postgresql"


@cache
def _probed_class(queryset_class: type) -> type:
    if issubclass(queryset_class, ProbedDatesQuerySet):
        return queryset_class
    return type(
        f"Probed{queryset_class.__name__}",
        (ProbedDatesQuerySet, queryset_class),
        {},
    )


class LargeTableAdmin(admin.ModelAdmin):
    """A change list for a table of millions of rows: the estimated count, no
    second count of the whole table, the date hierarchy by probes. Put it
    after the mixins among the bases (it is a ModelAdmin)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        queryset.__class__ = _probed_class(type(queryset))
        return queryset


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's "all values" filter, its values read through the column's
    index on PostgreSQL (one probe a distinct value, not a pass over the
    table). For a column an index leads with; the admin's own queryset
    restrictions are not applied to the values offered."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        connection = connections[router.db_for_read(model)]
        if connection.vendor == "postgresql" and field_path == field.name:
            self.lookup_choices = _distinct_by_index(
                connection, model._meta.db_table, field.column
            )


def _distinct_by_index(connection, table: str, column: str) -> list:
    qn = connection.ops.quote_name
    table, column = qn(table), qn(column)
    sql = (
        f"WITH RECURSIVE found(value) AS ("
        f"(SELECT {column} FROM {table} WHERE {column} IS NOT NULL "
        f"ORDER BY {column} LIMIT 1) "
        f"UNION ALL SELECT (SELECT {column} FROM {table} "
        f"WHERE {column} > found.value ORDER BY {column} LIMIT 1) "
        f"FROM found WHERE found.value IS NOT NULL) "
        f"SELECT value FROM found WHERE value IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        values = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {column} IS NULL)")
        if cursor.fetchone()[0]:
            values.append(None)
    return values


def listed_values(values, *, title: str | None = None) -> type:
    """A filter class offering ``values`` (fixed, in this order) for a column,
    without reading the table; a value not listed still filters when it is in
    the URL."""
    listed = list(values)

    class ListedValuesFilter(admin.AllValuesFieldListFilter):
        def __init__(self, field, request, params, model, model_admin, field_path):
            super().__init__(field, request, params, model, model_admin, field_path)
            self.lookup_choices = listed
            if title is not None:
                self.title = title

    return ListedValuesFilter
