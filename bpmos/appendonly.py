"""Make a table append-only in the database itself (audit log, passport ledger).

``append_only(table, noun)`` is a migration operation installing, on PostgreSQL,
a BEFORE UPDATE OR DELETE row trigger that raises SQLSTATE 23000 (an
IntegrityError in Django) and, on SQLite, BEFORE UPDATE / BEFORE DELETE triggers
that abort. TRUNCATE is left alone (no row trigger fires; pytest-django's flush
uses it, and a role that may TRUNCATE may drop the trigger anyway: the hash
chains are what detect that). Trigger names contain ``_append_only_``, which
``elog/management/commands/flush.py`` relies on to empty SQLite databases.

On SQLite a later migration that rebuilds the table loses the triggers; it must
install them again (the tamper tests would fail).
"""

from __future__ import annotations

from django.db import migrations

# Every table made append-only by a migration, and what its rows are; the
# database-role check (``manage.py check_db_role``, bpmos/dbrole.py) reads it.
APPEND_ONLY_TABLES: dict[str, str] = {
    "elog_auditrecord": "audit record",
    "elog_shiftlogentry": "shift log entry",
    "passports_passportevent": "ledger event",
    "exceptions_exceptionevent": "exception event",
}


def _statements(table: str, noun: str) -> dict[str, tuple[list[str], list[str]]]:
    postgres_forward = [
        f"""
        CREATE OR REPLACE FUNCTION {table}_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{table} is append-only: % of {noun} #% refused',
                TG_OP, OLD.id
                USING ERRCODE = 'integrity_constraint_violation',
                      HINT = 'Append a correcting event instead.';
        END;
        $$;
        """,
        f"""
        CREATE TRIGGER {table}_append_only_guard
            BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {table}_refuse_change();
        """,
    ]
    postgres_reverse = [
        f"DROP TRIGGER IF EXISTS {table}_append_only_guard ON {table};",
        f"DROP FUNCTION IF EXISTS {table}_refuse_change();",
    ]
    sqlite_forward = [
        f"""
        CREATE TRIGGER {table}_append_only_{op.lower()} BEFORE {op} ON {table}
        BEGIN
            SELECT RAISE(ABORT, '{table} is append-only: {op} of a {noun} refused');
        END;
        """
        for op in ("UPDATE", "DELETE")
    ]
    sqlite_reverse = [
        f"DROP TRIGGER IF EXISTS {table}_append_only_{op};"
        for op in ("update", "delete")
    ]
    return {
        "postgresql": (postgres_forward, postgres_reverse),
        "sqlite": (sqlite_forward, sqlite_reverse),
    }


def append_only(table: str, noun: str) -> migrations.RunPython:
    """The migration operation that makes ``table`` append-only."""
    sql = _statements(table, noun)

    def run(schema_editor, which: int) -> None:
        for statement in sql.get(schema_editor.connection.vendor, ([], []))[which]:
            schema_editor.execute(statement, params=None)

    return migrations.RunPython(
        lambda apps, schema_editor: run(schema_editor, 0),
        lambda apps, schema_editor: run(schema_editor, 1),
        elidable=False,
    )
