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

from django.db import connection, transaction
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
