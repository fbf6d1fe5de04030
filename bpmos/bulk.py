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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, models, transaction
from psycopg import errors as psycopg_errors


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
            for row in rows:
                copy.write_row(row)

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

# From this many rows a batch goes by COPY on PostgreSQL: COPY costs one round
# trip more than an INSERT, but a multi-row INSERT's parameters are each quoted
# into the statement in Python and parsed again by the server (measured on 100
# audit rows: INSERT 11.9 ms wall and 2.2 ms of client CPU, COPY 1.4 ms and
# 0.3 ms).
COPY_FROM_ROWS = 8


# Fields whose ``get_db_prep_save`` hands a value of its own plain type (or
# None) back unchanged, on PostgreSQL and SQLite alike: ``insert_rows`` skips
# the call for such a value (it was ~1.5 us a value, most of a batch's
# preparing). Exact classes only: a subclass may prepare values its own way.
_PLAIN_TYPES: dict[type, tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.BigAutoField: (int,),
    models.AutoField: (int,),
    models.BooleanField: (bool,),
}


def preparer(field):
    """``field.get_db_prep_save`` as ``insert_rows`` calls it: the value as it
    is when the field would return it unchanged (``_PLAIN_TYPES``; a foreign
    key by its target field's class), else the field's own call."""
    target = field.target_field if field.is_relation else field
    plain = _PLAIN_TYPES.get(type(target))
    prepare = field.get_db_prep_save
    if plain is None:
        return lambda value: prepare(value, connection)
    # bool is an int: only an int field's exact int passes unprepared.
    return lambda value: (
        value if value is None or type(value) in plain else prepare(value, connection)
    )


def insert_rows(model, names: tuple[str, ...], rows: list[dict]) -> None:
    """Insert ``rows`` (each a dict of ``names`` to values) into ``model``'s
    table, each value prepared by its model field's ``get_db_prep_save`` (as the
    ORM prepares it), in the caller's transaction. PostgreSQL, from
    ``COPY_FROM_ROWS`` rows: one COPY (text format: the server parses each
    value for its column's type, as it parses an INSERT's); otherwise
    multi-row INSERTs of at most 1,000 rows (SQLite's limit). No ids are
    returned: a caller that needs them gives them (``allocate_ids``)."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    prep = [(name, model._meta.get_field(name)) for name in names]
    columns = ", ".join(quote(field.column) for _, field in prep)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
            preparers = [(name, preparer(field)) for name, field in prep]
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([prepare(row[name]) for name, prepare in preparers])
            return
        one = f"({', '.join(['%s'] * len(prep))})"
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


def allocate_ids(model, count: int) -> list[int]:
    """PostgreSQL: ``count`` new ids of ``model``'s serial/identity primary
    key, ascending (as a multi-row INSERT's RETURNING gives them), taken from
    its sequence in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) "
            "FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return sorted(pk for (pk,) in cursor.fetchall())
