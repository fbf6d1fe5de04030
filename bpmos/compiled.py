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

On PostgreSQL these statements, and the other hot reads that ask for it
(``prepared_cursor``: a list page's rows, its kept count, the token's user),
are also *prepared*: PostgreSQL parses and plans each once per connection and
then only binds and runs it. Django's cursors bind parameters on the client
(every statement arrives as new text, parsed and planned again); planning was
half of PostgreSQL's CPU on a 50-row list page (docs/performance.md, "Prepared
statements").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.utils.asyncio import async_unsafe

from bpmos.rawsql import orm_instance

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


_PREPARED_CURSOR_CLASS: type | None = None


def _prepared_cursor_class() -> type:
    """Django's server-side-binding psycopg cursor, preparing every statement
    it runs (psycopg keeps a connection's prepared statements by their text
    and parameter types, the least used deallocated past ``prepared_max``)."""
    global _PREPARED_CURSOR_CLASS
    if _PREPARED_CURSOR_CLASS is None:
        from django.db.backends.postgresql.base import ServerBindingCursor

        class PreparedCursor(ServerBindingCursor):
            def execute(self, query, params=None, *, prepare=None, binary=None):
                return super().execute(
                    query, params, prepare=prepare is not False, binary=binary
                )

            def _send_query_prepared(self, name, pgq, *, binary=None):
                # psycopg keeps the statement for ``cursor.query`` only when it
                # sends it unprepared; Django's query log reads it from there
                # (``connection.queries``, ``CaptureQueriesContext``).
                self._query = pgq
                return super()._send_query_prepared(name, pgq, binary=binary)

        _PREPARED_CURSOR_CLASS = PreparedCursor
    return _PREPARED_CURSOR_CLASS


def prepares(wrapper=None) -> bool:
    """Whether ``prepared_cursor`` prepares on this connection: PostgreSQL
    with psycopg 3, unless ``DATABASE_PREPARED=false`` (a pooler in
    transaction mode, which cannot keep a session's prepared statements)."""
    wrapper = wrapper or connections[DEFAULT_DB_ALIAS]
    return wrapper.vendor == "postgresql" and getattr(
        settings, "BPMOS_DATABASE_PREPARED", False
    )


@async_unsafe
def prepared_cursor():
    """A cursor of the default connection whose statements PostgreSQL
    prepares: bound on the server (``%s`` becomes ``$1``: every parameter's
    type must follow from where it stands), prepared on first use, reused by
    the connection from then on. Wrapped as ``connection.cursor()`` is (query
    logging, ``execute_wrapper``s, database errors as Django's). Elsewhere,
    or with preparing off, ``connection.cursor()`` itself."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    if not prepares(wrapper):
        return wrapper.cursor()
    # What ``wrapper.cursor()`` does before it makes a cursor (Django's
    # ``BaseDatabaseWrapper._cursor``), then its cursor made by this class.
    wrapper.validate_thread_sharing()
    wrapper.close_if_health_check_failed()
    wrapper.ensure_connection()
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format

    with wrapper.wrap_database_errors:
        raw = _prepared_cursor_class()(wrapper.connection)
        # As Django's ``create_cursor``: the session's zone for its times.
        loader = wrapper.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        if wrapper.timezone != loader.timezone:
            register_tzloader(wrapper.timezone, raw)
        return wrapper._prepare_cursor(raw)


def rows_get(
    shape: Hashable, make: Callable[[], QuerySet], *, prepared: bool = False
) -> list[dict[str, Any]]:
    """The rows of ``make()`` (a ``values()`` queryset), its statement
    compiled once per ``shape`` (and with ``prepared``, prepared by
    PostgreSQL: ``prepared_cursor``). One query."""
    # Per connection object, not only per alias: the compiler keeps the
    # connection it was made for (its converters read its settings), and
    # each thread has its own.
    wrapper = connections[DEFAULT_DB_ALIAS]
    key = (id(wrapper), wrapper.vendor, shape)

    def compile_() -> tuple:
        queryset = make()
        compiler = queryset.query.get_compiler(connection=wrapper)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # e.g. an empty slice: no statement, no rows
            return compiler, None, (), ()
        names = [*queryset.query.values_select, *queryset.query.annotation_select]
        return compiler, sql, tuple(params), names

    compiler, sql, params, names = remember(_COMPILED, key, compile_, _COMPILED_MAX)
    if sql is None:
        return []
    with prepared_cursor() if prepared else wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        dict(zip(names, row, strict=True))
        for row in compiler.results_iter(results=[rows])
    ]


def instance_get(model: type[Model], field_name: str, value: Any) -> Model | None:
    """The row of ``model`` whose unique ``field_name`` equals ``value``, as
    ``model.objects.get()`` builds it (the default manager's rows, every
    concrete field), or None when there is none; its statement compiled once
    per model and field and prepared (``prepared_cursor``): the token's user
    on every request. ``value`` is checked as the ORM checks it
    (``ValueError``/``TypeError`` for one the field cannot hold)."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    field = model._meta.get_field(field_name)
    db_value = field.get_db_prep_value(value, wrapper, prepared=False)
    key = (id(wrapper), wrapper.vendor, "instance", model._meta.label, field_name)

    def compile_() -> tuple:
        queryset = model._default_manager.filter(**{field_name: value}).order_by()
        compiler = queryset[:2].query.get_compiler(connection=wrapper)
        sql, params = compiler.as_sql()
        # The value must be the statement's one parameter to be swapped.
        if list(params) != [db_value]:
            return None, ()
        return sql, [column.target.attname for column, _, _ in compiler.select]

    sql, names = remember(_COMPILED, key, compile_, _COMPILED_MAX)
    if sql is None:  # a manager whose statement has other parameters
        return model._default_manager.filter(**{field_name: value}).first()
    with prepared_cursor() as cursor:
        cursor.execute(sql, (db_value,))
        rows = cursor.fetchall()
    if not rows:
        return None
    if len(rows) > 1:
        raise model.MultipleObjectsReturned(f"{field_name}={value!r} is not unique")
    return orm_instance(model, names, rows[0])


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
