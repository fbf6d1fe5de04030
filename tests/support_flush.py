"""A cheaper ``flush`` between transactional tests (docs/testing.md).

After every ``django_db(transaction=True)`` test, pytest-django runs Django's
``flush``: a TRUNCATE of all ~65 tables on PostgreSQL (new files for each table,
its indexes and TOAST, fsynced at commit) or a DELETE of each on SQLite, then
``post_migrate``, which re-creates every content type and permission that the
flush removed. On a loaded 2-core machine that took 1-5 s per transactional
test, nearly all of it for tables the test never wrote.

``install()`` changes, for the test run only, what that flush does:

* only the tables that hold a row are emptied (one query finds them; a table
  with no row is already what the flush would leave);
* on PostgreSQL they are emptied with ``DELETE`` (the foreign keys are
  deferred to the commit, when every referencing row is gone too); the
  append-only tables, whose row triggers refuse ``DELETE``, keep ``TRUNCATE``
  (with ``CASCADE``: a table referencing them is emptied with them);
* ``django_content_type`` and ``auth_permission`` are left alone while they
  hold exactly the rows ``post_migrate`` made (same counts as right after it
  last ran), and then ``post_migrate`` is not sent (it would only re-read
  them); otherwise they are flushed and ``post_migrate`` sent, as by Django.

The database ends exactly as Django's flush leaves it. A flush with
``reset_sequences`` (``manage.py flush``, ``call_command("flush")``) is Django's
own, unchanged.

On PostgreSQL the flush waits at most ``FLUSH_LOCK_TIMEOUT`` for a row or table
lock: what holds one then is a thread or a server process the test left behind
in an open transaction (a hung ``run_together`` call, a daphne request), and
waiting for it would hang the run at the test's teardown, where no timeout of
the test's own applies. The error names the other sessions on the database.
"""

from __future__ import annotations

from django.core.management.commands import flush as flush_command
from django.db import OperationalError, connections

# How long the flush waits for a lock that another session holds (PostgreSQL).
FLUSH_LOCK_TIMEOUT = "60s"

# What post_migrate re-creates (create_contenttypes, create_permissions).
KEPT = ("django_content_type", "auth_permission")

_GUARDED_SQL = (
    "SELECT DISTINCT c.relname FROM pg_trigger t "
    "JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE NOT t.tgisinternal AND t.tgname LIKE '%\\_append\\_only\\_%'"
)

# Per process (each xdist worker has its own): the KEPT tables' row counts
# right after post_migrate last ran, and whether the flush under way emptied
# them (so post_migrate must run).
_state: dict = {"counts": None, "emit": True}


def _nonempty(connection, tables) -> list[str]:
    if not tables:
        return []
    quote = connection.ops.quote_name
    query = " UNION ALL ".join(
        f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(table)})" for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(query, list(tables))
        return [row[0] for row in cursor.fetchall()]


def _kept_counts(connection) -> tuple[int, ...]:
    quote = connection.ops.quote_name
    query = " UNION ALL ".join(f"SELECT COUNT(*) FROM {quote(table)}" for table in KEPT)
    with connection.cursor() as cursor:
        cursor.execute(query)
        return tuple(row[0] for row in cursor.fetchall())


def _guarded(connection) -> set[str]:
    """Tables with an append-only trigger (read at each flush: a test may
    drop or add one)."""
    with connection.cursor() as cursor:
        cursor.execute(_GUARDED_SQL)
        return {row[0] for row in cursor.fetchall()}


ROW_COUNT_DELTAS = "rowcounts_rowcountdelta"


def _wrap_sql_flush(original):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        _state["emit"] = True
        if reset_sequences or not tables:
            return original(
                self,
                style,
                tables,
                reset_sequences=reset_sequences,
                allow_cascade=allow_cascade,
            )
        connection = self.connection
        counts = _state["counts"]
        if counts is not None and _kept_counts(connection) == counts:
            _state["emit"] = False
            tables = [table for table in tables if table not in KEPT]
        nonempty = _nonempty(connection, tables)
        if not nonempty:
            return []
        if connection.vendor != "postgresql":
            return original(self, style, nonempty, allow_cascade=allow_cascade)
        quote = self.quote_name
        guarded = _guarded(connection)
        statements = [
            f"SET LOCAL lock_timeout = '{FLUSH_LOCK_TIMEOUT}'",
            "SET CONSTRAINTS ALL DEFERRED",
        ]
        statements += [
            f"DELETE FROM {quote(table)}" for table in nonempty if table not in guarded
        ]
        truncate = [quote(table) for table in nonempty if table in guarded]
        if truncate:
            statements.append(f"TRUNCATE {', '.join(truncate)} CASCADE")
        if ROW_COUNT_DELTAS in tables:
            # Last: the DELETEs above made the kept counts' triggers add their
            # deltas (bpmos.rowcounts), which a DELETE of this table earlier in
            # the list would leave behind; every counted table is empty now, so
            # no delta is right (as a TRUNCATE of all of them leaves it).
            statements.append(f"DELETE FROM {quote(ROW_COUNT_DELTAS)}")
        return statements

    sql_flush.fast_flush = True
    return sql_flush


_OTHER_SESSIONS_SQL = (
    "SELECT pid, application_name, backend_type, state, wait_event_type, "
    "left(query, 200) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid"
)


def _wrap_execute_sql_flush(original):
    def execute_sql_flush(self, sql_list):
        try:
            return original(self, sql_list)
        except OperationalError as exc:
            if self.connection.vendor != "postgresql" or "lock timeout" not in str(exc):
                raise
            with self.connection.cursor() as cursor:
                cursor.execute(_OTHER_SESSIONS_SQL)
                others = "\n".join(f"  {row}" for row in cursor.fetchall())
            raise OperationalError(
                f"the flush after the test waited {FLUSH_LOCK_TIMEOUT} for a lock "
                f"({exc}); the other sessions on the test database:\n{others}"
            ) from exc

    execute_sql_flush.fast_flush = True
    return execute_sql_flush


def _wrap_emit(original):
    def emit_post_migrate_signal(verbosity, interactive, db, **kwargs):
        emit, _state["emit"] = _state["emit"], True
        if not emit:
            return None
        original(verbosity, interactive, db, **kwargs)
        _state["counts"] = _kept_counts(connections[db])
        return None

    emit_post_migrate_signal.fast_flush = True
    return emit_post_migrate_signal


def install(alias: str = "default") -> None:
    """Wrap the backend's ``sql_flush`` and the flush command's
    ``post_migrate`` (once per process)."""
    operations = type(connections[alias].ops)
    if not getattr(operations.sql_flush, "fast_flush", False):
        operations.sql_flush = _wrap_sql_flush(operations.sql_flush)
    if not getattr(operations.execute_sql_flush, "fast_flush", False):
        operations.execute_sql_flush = _wrap_execute_sql_flush(
            operations.execute_sql_flush
        )
    emit = flush_command.emit_post_migrate_signal
    if not getattr(emit, "fast_flush", False):
        flush_command.emit_post_migrate_signal = _wrap_emit(emit)
