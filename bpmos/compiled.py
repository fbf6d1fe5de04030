"""Short lists whose statement never changes, compiled once per process.

The attention lists (``bpmos.dashboards.attention``) read a few rows each of
five registers with statements that are the same on every read (a status, a
fixed order, a limit of 50): building each queryset and compiling it cost
more of the first read after a write than the database did. ``rows_get``
keeps each statement compiled (per shape and connection) with
its compiler, runs it again as it is and converts the rows as the ORM would
(the compiler's converters: SQLite's datetimes and UUIDs), as dicts of the
``values()`` fields. Like ``bpmos.totals.totals_get_compiled``, the caller
promises that ``make()`` returns the same statement whenever it is called
with that shape.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

_COMPILED: dict[tuple, tuple] = {}
_COMPILED_MAX = 64


def remember(cache: dict, key: Hashable, make: Callable[[], Any], limit: int) -> Any:
    """``cache[key]``, made by ``make()`` when missing; the cache emptied
    first when it holds ``limit`` entries (a compiled statement per shape:
    shapes are few, so a full cache means something made them many)."""
    if key not in cache:
        if len(cache) >= limit:
            cache.clear()
        cache[key] = make()
    return cache[key]


def rows_get(shape: Hashable, make: Callable[[], QuerySet]) -> list[dict[str, Any]]:
    """The rows of ``make()`` (a ``values()`` queryset), its statement
    compiled once per ``shape``. One query."""
    # Per connection object, not only per alias: the compiler keeps the
    # connection it was made for (its converters read its settings), and
    # each thread has its own.
    wrapper = connections[DEFAULT_DB_ALIAS]
    key = (id(wrapper), wrapper.vendor, shape)

    def compile_() -> tuple:
        queryset = make()
        compiler = queryset.query.get_compiler(connection=wrapper)
        sql, params = compiler.as_sql()
        names = [*queryset.query.values_select, *queryset.query.annotation_select]
        return compiler, sql, tuple(params), names

    compiler, sql, params, names = remember(_COMPILED, key, compile_, _COMPILED_MAX)
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        dict(zip(names, row, strict=True))
        for row in compiler.results_iter(results=[rows])
    ]
