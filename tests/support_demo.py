"""The demo plant seeded once per test process, its rows restored per module
(docs/testing.md).

``seed_demo`` takes ~25 s on an idle machine and minutes on a loaded one, and
every module using the ``demo_plant`` fixture (tests/conftest.py) seeded it
again inside its own transaction. ``demo_plant_rows()`` is called inside that
transaction instead:

* the first time in a process, it runs ``seed_demo`` and copies what the seed
  wrote: every table whose rows differ from before the seed (PostgreSQL:
  ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)``, exact to the byte; SQLite: the raw
  rows). The module's transaction is rolled back after it as before;
* the next times, if the database before is the same as before that seed (the
  same tables hold the same rows), it copies those rows back (``COPY ... FROM
  STDIN``, or ``INSERT``) instead of seeding: the same rows, the same ids,
  the same hashes, as the seed left them.

It seeds afresh (and copies again) when the database before differs, when the
seed changed a table that already held rows (the copy only adds rows), or
when the copy is older than ``MAX_AGE_S``: the seed's data is relative to the
clock (readings up to "now", the current shift), so a module sees a demo plant
seeded at most that long before it starts. On CI the demo modules run first
(tests/conftest.py ``SLOW_FIXTURES``) and the whole run is shorter.

A restored table's sequence is where the seed left it (a sequence is not
rolled back), so rows a test adds get new ids, as after a fresh seed.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

from django.core.management import call_command
from django.db import connection

MAX_AGE_S = 15 * 60


@dataclass(frozen=True)
class _Copy:
    before: dict[str, object]  # table -> its rows before the seed (non-empty ones)
    added: tuple[tuple[str, tuple[str, ...], object], ...]  # (table, columns, rows)
    output: str  # what seed_demo printed
    taken_at: float  # time.monotonic()


_copy: list[_Copy] = []  # at most one, per process


def demo_plant_rows() -> str:
    """Inside the module's transaction: the demo plant, seeded or copied back;
    returns ``seed_demo``'s output (of the seed the rows come from)."""
    before = _contents(_tables())
    if _copy:
        copy = _copy[0]
        fresh = time.monotonic() - copy.taken_at < MAX_AGE_S
        if fresh and before == copy.before:
            for table, columns, rows in copy.added:
                _load(table, columns, rows)
            return copy.output
        _copy.clear()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    after = _contents(_tables())
    changed = [table for table in after if after[table] != before.get(table)]
    if all(table not in before for table in changed):
        added = tuple((table, _columns(table), after[table]) for table in changed)
        _copy.append(_Copy(before, added, out.getvalue(), time.monotonic()))
    return out.getvalue()


def _tables() -> list[str]:
    with connection.cursor() as cursor:
        return sorted(connection.introspection.table_names(cursor))


def _contents(tables: list[str]) -> dict[str, object]:
    """Each non-empty table's rows, as the database gives them."""
    contents = {}
    for table in tables:
        rows = _dump(table, _columns(table))
        if rows:
            contents[table] = rows
    return contents


def _raw():
    connection.ensure_connection()
    return connection.connection


def _columns(table: str) -> tuple[str, ...]:
    """The table's stored columns (not the generated ones: they cannot be
    written)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' "
                "ORDER BY attnum",
                [connection.ops.quote_name(table)],
            )
            return tuple(row[0] for row in cursor.fetchall())
        cursor.execute(f"PRAGMA table_info({connection.ops.quote_name(table)})")
        return tuple(row[1] for row in cursor.fetchall())


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(connection.ops.quote_name(column) for column in columns)


def _dump(table: str, columns: tuple[str, ...]):
    """PostgreSQL: the table in COPY's binary format (b"" when empty);
    SQLite: its rows as stored (an empty list when empty)."""
    quoted = connection.ops.quote_name(table)
    if connection.vendor == "postgresql":
        with _raw().cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quoted})")
            if not cursor.fetchone()[0]:
                return b""
            # ``COPY (SELECT ...)``: a partitioned table (the readings,
            # lines 0007) cannot be copied from by name
            sql = (
                f"COPY (SELECT {_names(columns)} FROM {quoted}) "
                "TO STDOUT (FORMAT BINARY)"
            )
            with cursor.copy(sql) as copy:
                return b"".join(bytes(block) for block in copy)
    # ``+column`` (a no-op in SQLite) has no declared type, so the values come
    # as stored, without Django's converters (a ``time`` has no adapter back).
    stored = ", ".join(f"+{connection.ops.quote_name(c)}" for c in columns)
    cursor = _raw().cursor()
    try:
        cursor.execute(f"SELECT {stored} FROM {quoted} ORDER BY rowid")
        return cursor.fetchall()
    finally:
        cursor.close()


def _load(table: str, columns: tuple[str, ...], rows) -> None:
    quoted = connection.ops.quote_name(table)
    if connection.vendor == "postgresql":
        with _raw().cursor() as cursor:
            sql = f"COPY {quoted} ({_names(columns)}) FROM STDIN (FORMAT BINARY)"
            with cursor.copy(sql) as copy:
                copy.write(rows)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = _raw().cursor()
    try:
        cursor.executemany(
            f"INSERT INTO {quoted} ({_names(columns)}) VALUES ({marks})", rows
        )
    finally:
        cursor.close()
