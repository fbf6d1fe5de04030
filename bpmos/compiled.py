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


def rows_get_together(
    shape: Hashable, makes: dict[str, Callable[[], QuerySet]]
) -> dict[str, list[dict[str, Any]]]:
    """``rows_get`` of several ``values()`` querysets (name -> ``make``) in one
    statement, compiled once per ``shape``: each list keeps its own filter,
    order, limit and indexes as a ``WITH`` query of its own (PostgreSQL and
    SQLite alike: SQLite refuses a ``LIMIT`` directly inside a ``UNION``
    arm), read by one arm of a ``UNION ALL``, tagged with its position and
    placed in columns of its own (the other lists' columns ``CAST(NULL AS
    <type>)``: no column mixes two lists' types). Each list's rows come back
    in its own order and are converted by its own compiler. One query."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    key = (id(wrapper), wrapper.vendor, "together", shape)

    def compile_() -> tuple:
        arms, params = [], []
        for name, make in makes.items():
            queryset = make()
            compiler = queryset.query.get_compiler(connection=wrapper)
            sql, arm_params = compiler.as_sql()
            names = [*queryset.query.values_select, *queryset.query.annotation_select]
            types = [
                column.output_field.cast_db_type(wrapper)
                for column, _, _ in compiler.select
            ]
            arms.append((name, compiler, sql, names, types))
            params.extend(arm_params)
        every_type = [t for *_, types in arms for t in types]
        withs, selects, parts, offset = [], [], [], 0
        for position, (name, compiler, sql, names, types) in enumerate(arms):
            own = [f"c{i}" for i in range(len(types))]
            withs.append(f"arm{position}({', '.join(own)}) AS ({sql})")
            columns = [
                own[column - offset]
                if offset <= column < offset + len(types)
                else f"CAST(NULL AS {every_type[column]})"
                for column in range(len(every_type))
            ]
            selects.append(
                f"SELECT {position}, {', '.join(columns)} FROM arm{position}"
            )
            parts.append((name, compiler, names, offset, len(types)))
            offset += len(types)
        sql = f"WITH {', '.join(withs)} {' UNION ALL '.join(selects)}"
        return sql, tuple(params), parts

    sql, params, parts = remember(_COMPILED, key, compile_, _COMPILED_MAX)
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found: dict[str, list[dict[str, Any]]] = {}
    for position, (name, compiler, names, offset, n) in enumerate(parts):
        own = [row[1 + offset : 1 + offset + n] for row in rows if row[0] == position]
        found[name] = [
            dict(zip(names, row, strict=True))
            for row in compiler.results_iter(results=[own])
        ]
    return found


def statements_get(
    statements: dict[str, tuple[Hashable, Callable[[], QuerySet]]],
) -> dict[str, list[dict[str, Any]]]:
    """The rows of each named statement ((shape, make), as ``rows_get``
    takes them): one query for all (``rows_get_together``), a statement
    alone by ``rows_get``, none when there are none."""
    if not statements:
        return {}
    if len(statements) == 1:
        ((name, statement),) = statements.items()
        return {name: rows_get(*statement)}
    return rows_get_together(
        tuple((name, shape) for name, (shape, _) in statements.items()),
        {name: make for name, (_, make) in statements.items()},
    )
