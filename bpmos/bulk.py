"""Store a batch of rows, skipping those already stored: the one write path of
every high-volume ingest (machine readings, battery telemetry).

PostgreSQL: COPY (binary) straight into the table, the ceiling's own path
(docs/performance.md), in a savepoint; a batch holding a row already stored (a
re-send) fails that COPY on the unique index and then goes through a session
temp table and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, whose
speculative inserts cost about twice as much. A caller that can retry its
whole transaction (readings ingest) uses ``copy_all`` instead: the COPY with no
savepoint around it (two round trips fewer a batch), which raises
``RowsAlreadyStored`` on a re-sent row; the caller rolls back and stores the
batch again with ``store``/``store_new`` and ``has_duplicates=True``, which go
straight to the temp table. SQLite (embedded): one
``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING`` with the datetimes
adapted as Django stores them (``bulk_create`` spent ~0.2 ms a row preparing
values).

``insert_rows`` stores a batch of model rows as the ORM prepares them (the
audit records): on PostgreSQL one ``INSERT ... SELECT`` from one JSON
parameter, whose values ``json_value`` makes.

``upsert_add`` adds deltas to the counter columns of kept-count rows (the
runbooks' work-order counts and stage WIP): one ``INSERT ... ON CONFLICT DO
UPDATE SET n = n + excluded.n``, PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from psycopg import errors as psycopg_errors
from psycopg.pq import ExecStatus

try:  # psycopg's own C row formatter, which Copy.write_row calls per row
    from psycopg._copy_base import format_row_binary as _format_row_binary
except ImportError:  # pragma: no cover - another psycopg: row by row
    _format_row_binary = None

# PostgreSQL's binary COPY header (signature, flags, no header extension) and
# trailer: https://www.postgresql.org/docs/current/sql-copy.html
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"


class RowsAlreadyStored(Exception):
    """``copy_all`` met a row already stored. The caller's transaction (or
    savepoint) is aborted: roll it back, then store with ``has_duplicates``."""


@dataclass(frozen=True)
class BulkTarget:
    """A table, the columns a batch fills (in tuple order), their PostgreSQL
    binary COPY types, and the unique columns that make a row a duplicate."""

    table: str
    columns: tuple[str, ...]
    copy_types: tuple[str, ...]
    conflict: tuple[str, ...]

    @property
    def _load_table(self) -> str:
        return f"{self.table}_load"

    def _copy(self, cursor, table: str, rows: list[tuple]) -> None:
        names = ", ".join(self.columns)
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(self.copy_types))
            transformer = getattr(copy.formatter, "transformer", None)
            if _format_row_binary is None or transformer is None:
                for row in rows:
                    copy.write_row(row)
                return
            # The bytes write_row makes, in one buffer and one write: the
            # same C formatter without write_row's two Python calls a row
            # (~0.2-0.3 ms of a 1,000-row batch's ~0.5-0.9).
            data = bytearray(_BINARY_HEADER)
            for row in rows:
                _format_row_binary(row, transformer, data)
            data += _BINARY_TRAILER
            copy.write(data)

    def copy_all(self, rows: list[tuple]) -> None:
        """PostgreSQL: COPY ``rows`` in the caller's transaction with no
        savepoint; raises ``RowsAlreadyStored`` (the transaction is then
        aborted) when one of them is already stored. The caller sets
        ``SET CONSTRAINTS ALL IMMEDIATE`` itself if it wants the keys checked
        with the COPY (see ``_postgresql``)."""
        try:
            with connection.cursor() as cursor:
                self._copy(cursor, self.table, rows)
        except psycopg_errors.UniqueViolation:
            raise RowsAlreadyStored(self.table) from None

    def _postgresql(
        self, rows: list[tuple], *, has_duplicates: bool = False
    ) -> list[tuple] | None:
        """COPY ``rows``; on a duplicate, the temp table and ``ON CONFLICT``.
        Returns None when the COPY stored them all, else the conflict keys of
        the rows that were new. ``has_duplicates``: the caller knows the batch
        holds rows already stored; no COPY is tried."""
        # Django declares foreign keys DEFERRABLE INITIALLY DEFERRED, so the
        # check of every stored row's keys (~10 us a row) would run in COMMIT,
        # while the caller's audit record holds the audit chain's lock (taken
        # last, held to the end of the transaction): a second worker's batch
        # waited ~10 ms a commit for it. Checked now, the rows' keys are
        # checked with the COPY, before that lock; the same checks either way.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if not has_duplicates:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    self._copy(cursor, self.table, rows)
                return None
            except psycopg_errors.UniqueViolation:
                pass
        names = ", ".join(self.columns)
        with connection.cursor() as cursor:
            cursor.execute(
                # Same column types as the table, no constraints.
                f"CREATE TEMP TABLE IF NOT EXISTS {self._load_table} "
                f"ON COMMIT DELETE ROWS AS SELECT {names} FROM {self.table} "
                "WITH NO DATA; "
                # Rows of an earlier batch in the same (outer) transaction.
                f"TRUNCATE {self._load_table}"
            )
            self._copy(cursor, self._load_table, rows)
            cursor.execute(
                f"INSERT INTO {self.table} ({names}) "
                f"SELECT {names} FROM {self._load_table} "
                f"ON CONFLICT ({', '.join(self.conflict)}) DO NOTHING "
                f"RETURNING {', '.join(self.conflict)}"
            )
            return cursor.fetchall()

    def _store_sqlite(self, rows: list[tuple]) -> int:
        adapt = connection.ops.adapt_datetimefield_value
        raw = connection.connection
        before = raw.total_changes
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {self.table} ({', '.join(self.columns)}) "
                f"VALUES ({', '.join(['%s'] * len(self.columns))}) "
                f"ON CONFLICT ({', '.join(self.conflict)}) DO NOTHING",
                [
                    tuple(adapt(v) if isinstance(v, datetime) else v for v in row)
                    for row in rows
                ],
            )
        return raw.total_changes - before

    def store(self, rows: list[tuple], *, has_duplicates: bool = False) -> int:
        """Store ``rows``; returns how many were new (duplicates are skipped).
        ``has_duplicates``: known to hold rows already stored (after
        ``RowsAlreadyStored``), so PostgreSQL skips the COPY it would try."""
        connection.ensure_connection()
        if connection.vendor == "postgresql":
            stored = self._postgresql(rows, has_duplicates=has_duplicates)
            return len(rows) if stored is None else len(stored)
        return self._store_sqlite(rows)

    def _key(self, row: tuple) -> tuple:
        return tuple(row[self.columns.index(name)] for name in self.conflict)

    def _new_sqlite(self, rows: list[tuple]) -> list[tuple]:
        adapt = connection.ops.adapt_datetimefield_value
        adapted = [
            tuple(adapt(v) if isinstance(v, datetime) else v for v in row)
            for row in rows
        ]
        names = ", ".join(self.columns)
        marks = ", ".join(["?"] * len(self.columns))
        # The raw sqlite3 cursor: one statement per row tells whether it was new
        # (rowcount 0 for a duplicate); the transaction holds SQLite's write lock.
        cursor = connection.connection.cursor()
        try:
            new = []
            for row, values in zip(rows, adapted, strict=True):
                cursor.execute(
                    f"INSERT INTO {self.table} ({names}) VALUES ({marks}) "
                    f"ON CONFLICT ({', '.join(self.conflict)}) DO NOTHING",
                    values,
                )
                if cursor.rowcount == 1:
                    new.append(row)
            return new
        finally:
            cursor.close()

    def store_new(
        self, rows: list[tuple], *, has_duplicates: bool = False
    ) -> list[tuple]:
        """Store ``rows`` as ``store`` does; returns those that were new (in
        order), for a caller that keeps a roll-up of what it stored. Needs an
        open transaction on SQLite (its rows are counted one by one)."""
        connection.ensure_connection()
        if connection.vendor == "postgresql":
            stored = self._postgresql(rows, has_duplicates=has_duplicates)
            if stored is None:
                return rows
            keys = set(stored)
            return [row for row in rows if self._key(row) in keys]
        return self._new_sqlite(rows)


# --- a batch of model rows ------------------------------------------------------------

# Fields whose ``get_db_prep_save`` hands a value of its own plain type (or
# None) back unchanged, on PostgreSQL and SQLite alike: ``json_value`` skips the
# call for such a value (~1.5 us a value). Exact classes only: a subclass may
# prepare values its own way.
_PLAIN_TYPES: dict[type, tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.BigAutoField: (int,),
    models.AutoField: (int,),
    models.BooleanField: (bool,),
}


def json_value(field: models.Field) -> Callable[[Any], Any]:
    """PostgreSQL: a function giving a value of ``field`` as a JSON value the
    server reads back (``jsonb_to_recordset``, the column's type) as the value
    ``field.get_db_prep_save`` would have sent: a time as its ISO text (the
    microseconds kept), JSON data as its JSON (through the field's encoder),
    an IP address as its normalised text, None as SQL NULL (as the fields
    store None). A field of any other class raises ``TypeError`` here, once,
    rather than be written some other way."""
    target = field.target_field if field.is_relation else field
    prepare = field.get_db_prep_save
    if isinstance(field, models.JSONField):
        if field.encoder is None:
            return lambda value: value
        dumps = functools.partial(json.dumps, cls=field.encoder)
        return lambda value: None if value is None else json.loads(dumps(value))
    if isinstance(field, models.DateTimeField):
        return lambda value: (
            None if value is None else prepare(value, connection).isoformat()
        )
    if isinstance(field, models.GenericIPAddressField):
        # What the backend's adapter sends: the normalised text, '' as NULL.
        return lambda value: field.get_prep_value(value) or None
    plain = _PLAIN_TYPES.get(type(target))
    if plain is None:
        raise TypeError(f"bpmos.bulk: no JSON form for {field!r}")

    def value_of(value: Any) -> Any:
        # bool is an int: only an int field's exact int passes unprepared.
        if value is None or type(value) in plain:
            return value
        value = prepare(value, connection)
        # A str or int subclass (a TextChoices member): JSON writes its value.
        if value is not None and not isinstance(value, plain):
            raise TypeError(f"bpmos.bulk: {field!r} prepared {value!r}")
        return value

    return value_of


def _json_insert_sql(model, names: tuple[str, ...]) -> tuple[str, list]:
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(quote(field.column) for field in fields)
    record = ", ".join(
        f"{quote(field.column)} {field.db_type(connection)}" for field in fields
    )
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
        f"SELECT {columns} FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) "
        f"AS ({record})) WITH ORDINALITY AS r({columns}, ord) ORDER BY ord"
    )
    return sql, [
        (name, field.column, json_value(field))
        for name, field in zip(names, fields, strict=True)
    ]


_JSON_INSERTS: dict[tuple, tuple[str, list]] = {}


_TUPLES_OK = ExecStatus.TUPLES_OK


class OneTrip:
    """PostgreSQL: statements of one transaction sent together, in one round
    trip (one simple-protocol query, ``; ``-joined, parameters bound on the
    client as every statement here is). They run in order, each with its own
    snapshot (so a read after a lock sees what the lock guards); the first
    error aborts the rest and is raised by ``run``. Each statement's rows (None
    for one without) go to its ``then`` callback after the round trip. The
    single append does its row lock and the audit chain's try-lock in one
    trip, its event, audit record and outbox row in a second
    (``passports.ledger``)."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, Sequence[Any], Callable[[list], None] | None]] = []

    def __bool__(self) -> bool:
        return bool(self._parts)

    def add(
        self,
        sql: str,
        params: Sequence[Any] = (),
        then: Callable[[list | None], None] | None = None,
    ) -> None:
        """Queue ``sql`` (no ``;`` of its own); ``then(rows)`` after ``run``."""
        self._parts.append((sql, params, then))

    def run(self) -> None:
        """Send every queued statement at once, then hand out their rows."""
        parts, self._parts = self._parts, []
        if not parts:
            return
        sql = "; ".join(part[0] for part in parts)
        params = [value for part in parts for value in part[1]]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for index, (_, _, then) in enumerate(parts):
                if index:
                    cursor.nextset()
                # Not ``cursor.description``: it makes a Column per column
                # (80 for a passport row) at every look.
                result = cursor.cursor.pgresult
                rows = cursor.fetchall() if result.status == _TUPLES_OK else None
                if then is not None:
                    then(rows)


def insert_rows(
    model, names: tuple[str, ...], rows: list[dict], *, trip: OneTrip | None = None
) -> None:
    """Insert ``rows`` (each a dict of ``names`` to values) into ``model``'s
    table, in order, in the caller's transaction, each value as its model
    field's ``get_db_prep_save`` prepares it (as the ORM does). PostgreSQL:
    one ``INSERT ... SELECT`` from one JSON parameter (``json_value``), one
    round trip whatever the number of rows (a COPY took two, and psycopg
    dumped each value on its own; a multi-row INSERT's parameters were each
    quoted into the statement in Python). SQLite: multi-row INSERTs of at most
    1,000 rows (its limit). No ids are returned: a caller that needs them
    gives them. ``trip`` (PostgreSQL): queue the statement there instead of
    sending it now."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        key = (model, names)
        found = _JSON_INSERTS.get(key)
        if found is None:
            found = _JSON_INSERTS[key] = _json_insert_sql(model, names)
        sql, columns = found
        document = [
            {column: to_json(row[name]) for name, column, to_json in columns}
            for row in rows
        ]
        if trip is not None:
            trip.add(sql, [json.dumps(document)])
            return
        with connection.cursor() as cursor:
            cursor.execute(sql, [json.dumps(document)])
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    prep = [(name, model._meta.get_field(name)) for name in names]
    columns = ", ".join(quote(field.column) for _, field in prep)
    one = f"({', '.join(['%s'] * len(prep))})"
    with connection.cursor() as cursor:
        for first in range(0, len(rows), 1000):
            chunk = rows[first : first + 1000]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "
                f"VALUES {', '.join([one] * len(chunk))}",
                [
                    field.get_db_prep_save(row[name], connection)
                    for row in chunk
                    for name, field in prep
                ],
            )


# --- kept counters ------------------------------------------------------------------


@functools.cache
def _upsert_add_sql(table: str, keys: tuple[str, ...], counters: tuple[str, ...]):
    columns = ", ".join((*keys, *counters))
    added = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in counters)
    return (
        f"INSERT INTO {table} ({columns}) VALUES {{values}} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


def upsert_add(
    model,
    keys: tuple[str, ...],
    counters: tuple[str, ...],
    deltas: Mapping[Any, Sequence[int]],
) -> None:
    """Add ``deltas`` to the ``counters`` columns of ``model``'s rows, in the
    caller's transaction: one ``INSERT ... ON CONFLICT (keys) DO UPDATE SET
    counter = counter + excluded.counter`` (PostgreSQL and SQLite alike), a
    missing row inserted with the deltas; nothing when every delta is 0.

    ``deltas``: a row's key (the value of its one key column, or a tuple of
    them, as the connection takes it) -> one delta per counter, in order.
    The rows go in key order, so that every writer takes their locks in one
    order (no two transactions wait on each other's rows in a cycle). The key
    columns must carry a unique constraint; columns are named by their
    database names."""
    moved = sorted(
        ((key,) if len(keys) == 1 else tuple(key), tuple(values))
        for key, values in deltas.items()
        if any(values)
    )
    if not moved:
        return
    row = f"({', '.join(['%s'] * (len(keys) + len(counters)))})"
    sql = _upsert_add_sql(model._meta.db_table, keys, counters).format(
        values=", ".join([row] * len(moved))
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [value for key, values in moved for value in (*key, *values)]
        )
