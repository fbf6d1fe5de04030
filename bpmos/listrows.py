"""List pages read as ``values()`` rows and shaped by a plain function.

A 50-row page through a DRF serializer built a model instance per row (and
per related row) and ran each field's ``get_attribute`` and
``to_representation``: on the busiest list pages (work orders, passports,
inventory items, the dispatch desk) that was most of the request's server time
(docs/performance.md, "The 50-row list pages at 32 connections"). A view with
``ValuesListMixin`` keeps everything else of ``ListAPIView`` (filters, search,
ordering, pagination and its ``count``, the schema from ``serializer_class``)
and reads only the page's rows, as dicts of ``values_fields``, which
``shape_rows`` turns into exactly what ``serializer_class`` prints for the same
rows (each app's tests compare the two, byte for byte). With ``kept_count``
the unfiltered list's ``count`` is the database's kept count of its rows
(``bpmos.rowcounts``: exact, not an estimate) instead of a ``COUNT(*)``.

The helpers below print values exactly as DRF's fields do. On PostgreSQL the
times are printed by the database (``time_texts``): reading a ``timestamptz``
into a ``datetime`` (Django's loader is psycopg's pure-Python one) and printing
it again was half of a work-order page's CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from django.db import connection
from django.db.models import CharField, F, Func, QuerySet
from django.utils import timezone
from rest_framework.response import Response

from bpmos.compiled import rows_get
from bpmos.renderers import RowsJSONRenderer
from bpmos.rowcounts import services as rowcounts

# Query parameters that never change which rows a list has.
PAGE_PARAMETERS = frozenset({"page", "page_size", "ordering"})


def narrowed(query_params) -> bool:
    """Whether a list request's parameters may leave fewer rows than the
    list has: any parameter but the page, its size and the order, unless
    empty (an empty filter or search is "not given" or a 400)."""
    return any(
        value != ""
        for name, values in query_params.lists()
        if name not in PAGE_PARAMETERS
        for value in values
    )


def drf_datetime_printer() -> Callable[[datetime | None], str | None]:
    """What DRF's ``DateTimeField`` prints with ``DATETIME_FORMAT`` ISO 8601,
    as a function of the time: in the current time zone (read once, here),
    ``isoformat()``, ``+00:00`` as ``Z``; a naive time is read in that zone
    (DRF's ``enforce_timezone``)."""
    zone = timezone.get_current_timezone()

    def printed(value: datetime | str | None) -> str | None:
        if value is None or value.__class__ is str:
            return value  # printed by the database already (``time_texts``)
        if value.utcoffset() is None:
            value = value.replace(tzinfo=zone)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return printed


def drf_datetime(value: datetime | None) -> str | None:
    """One time as DRF's ``DateTimeField`` prints it (``drf_datetime_printer``)."""
    return drf_datetime_printer()(value)


def labels_of(field, choices: Sequence[tuple[Any, Any]]) -> dict[Any, Any]:
    """Stored value -> what serializer ``field`` (a ``ChoiceField`` reading a
    model's ``get_<name>_display``) prints for it, for every choice."""
    return {value: field.to_representation(str(label)) for value, label in choices}


# What DRF's ``DateTimeField`` prints in UTC: ``isoformat()`` with ``Z``,
# microseconds only when there are some (``drf_datetime``); and ``utc_text``,
# whole seconds (truncated, as ``isoformat(timespec="seconds")``).
_UTC = "(%(expressions)s AT TIME ZONE 'UTC')"
_DRF_TIME_SQL = (
    f"CASE WHEN date_trunc('second', {_UTC}) = {_UTC} "
    f"""THEN to_char({_UTC}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
    f"""ELSE to_char({_UTC}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
)
_UTC_TEXT_SQL = f"""to_char({_UTC}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
_UTC_NAMES = frozenset({"UTC", "Etc/UTC"})


class _TimeText(Func):
    """A ``timestamptz`` column printed by PostgreSQL (``time_texts``)."""

    output_field = CharField()

    def __init__(self, name: str, *, whole_seconds: bool):
        super().__init__(
            F(name), template=_UTC_TEXT_SQL if whole_seconds else _DRF_TIME_SQL
        )


def time_texts(names: Sequence[str], *, whole_seconds: bool = False) -> dict:
    """``values()`` expressions ``<name>_text`` for the time columns ``names``:
    on PostgreSQL the text DRF's ``DateTimeField`` prints in UTC (or, with
    ``whole_seconds``, ``bpmos.fields.utc_text``'s), printed by the database;
    elsewhere, or while a zone other than UTC is current, the ``datetime``
    itself. Both printers (``drf_datetime_printer``, ``utc_text``) pass a
    text through, so a page prints the same either way."""
    printed = connection.vendor == "postgresql" and (
        whole_seconds or timezone.get_current_timezone_name() in _UTC_NAMES
    )
    return {
        f"{name}_text": _TimeText(name, whole_seconds=whole_seconds)
        if printed
        else F(name)
        for name in names
    }


class ValuesPage:
    """What DRF's paginator pages: ``queryset`` counted as it is (``count``,
    replaceable), its slices read as ``values(*fields)`` dicts."""

    def __init__(
        self,
        queryset: QuerySet,
        fields: Sequence[str],
        count: Callable[[QuerySet], int] | None = None,
        expressions: dict | None = None,
        shape: tuple | None = None,
    ):
        self.queryset = queryset
        self.fields = tuple(fields)
        self.expressions = expressions or {}
        self.ordered = queryset.ordered
        self._count = count
        # With a shape, a slice's statement is kept compiled and prepared
        # (``bpmos.compiled.rows_get``): the caller promises that the shape
        # and the slice's bounds fix the statement.
        self.shape = shape

    def count(self) -> int:
        if self._count is not None:
            return self._count(self.queryset)
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[dict[str, Any]]:
        def make() -> QuerySet:
            return self.queryset.values(*self.fields, **self.expressions)[index]

        if (
            self.shape is None
            or index.step is not None
            or (index.start or 0) >= KEPT_PAGES_BEFORE_ROW
        ):
            return list(make())
        return rows_get((*self.shape, index.start, index.stop), make, prepared=True)


# Only the first pages' statements are kept (each slice is a statement of its
# own: Django writes LIMIT and OFFSET into it): a client walking a whole list
# would otherwise fill the compiled and the prepared statements with pages read
# once, pushing out the ones read all the time.
KEPT_PAGES_BEFORE_ROW = 1000


class RowsRendererMixin:
    """A view whose GET answers rows of text, whole numbers, booleans and
    null (no float): written by ``RowsJSONRenderer`` (the same bytes as
    ``JSONRenderer``, faster). Its other methods keep the default renderer."""

    def get_renderers(self):
        request = getattr(self, "request", None)
        if request is not None and request.method == "GET":
            return [RowsJSONRenderer()]
        return super().get_renderers()


class ValuesListMixin(RowsRendererMixin):
    """For a ``ListAPIView``: the page read as ``values_fields`` rows, shaped
    by ``shape_rows`` (which must print what ``serializer_class`` does), and
    written by ``RowsJSONRenderer``."""

    values_fields: ClassVar[tuple[str, ...]]
    # Time columns read as ``<name>_text`` (``time_texts``), printed as DRF's
    # ``DateTimeField`` prints them, or as ``utc_text`` with ``whole_seconds``.
    values_times: ClassVar[tuple[str, ...]] = ()
    values_times_whole_seconds: ClassVar[bool] = False
    # The kept count (bpmos.rowcounts) of ``get_queryset()``'s rows, if there
    # is one: the page's ``count`` while no parameter narrows the list.
    kept_count: ClassVar[str | None] = None
    # Whether the page's statement depends on nothing but the request's
    # query parameters (not on its user, the time or stored state), so that
    # a page of the list no parameter narrows is read by a statement kept
    # compiled and prepared per ordering and slice (``compiled_shape``).
    compiled_pages: ClassVar[bool] = False

    def shape_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def count_rows(self, queryset: QuerySet) -> int:
        """The page envelope's ``count``: the filtered queryset's rows (the
        kept count while nothing narrows them)."""
        if self.kept_count and not narrowed(self.request.query_params):
            return rowcounts.kept(self.kept_count, queryset)
        return queryset.count()

    def compiled_shape(self) -> tuple | None:
        """The shape of this request's page statement when it is kept
        compiled: for a view with ``compiled_pages`` and a request whose
        parameters do not narrow the list, the view, the order asked for (as
        DRF's ``OrderingFilter`` reads it) and the current time zone (which
        decides how the times are printed); else None."""
        if not self.compiled_pages or narrowed(self.request.query_params):
            return None
        view = type(self)
        ordering = self.request.query_params.get("ordering", "")
        zone = timezone.get_current_timezone_name()
        return ("page", view.__module__, view.__qualname__, ordering, zone)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        if queryset.query.distinct:
            # values() would make it distinct over the chosen columns only
            # (a search across a to-many relation): the serializer's path.
            return self.get_paginated_or_plain(queryset)
        times = time_texts(
            self.values_times, whole_seconds=self.values_times_whole_seconds
        )
        page = self.paginate_queryset(
            ValuesPage(
                queryset,
                self.values_fields,
                self.count_rows,
                times,
                shape=self.compiled_shape(),
            )
        )
        if page is not None:
            return self.get_paginated_response(self.shape_rows(page))
        rows = list(queryset.values(*self.values_fields, **times))
        return Response(self.shape_rows(rows))

    def get_paginated_or_plain(self, queryset: QuerySet):
        """DRF's own list of ``queryset`` through ``serializer_class``."""
        page = self.paginate_queryset(queryset)
        if page is not None:
            serializer = self.get_serializer(page, many=True)
            return self.get_paginated_response(serializer.data)
        return Response(self.get_serializer(queryset, many=True).data)
