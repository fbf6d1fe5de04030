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
    "elog_electronicsignature": "electronic signature",
    "passports_passportevent": "ledger event",
    "passports_ledgercheckpoint": "ledger checkpoint",
    "passports_ledgercheckpointleaf": "ledger checkpoint leaf",
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


def _sqlite_triggers(connection, table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = %s ORDER BY name",
            [table],
        )
        return dict(cursor.fetchall())


class AddFieldKeepingTriggers(migrations.AddField):
    """``AddField`` to an append-only table that keeps its triggers on SQLite.

    SQLite cannot add (or drop) a NOT NULL column in place: Django rebuilds the
    table (create, copy, drop, rename), and the triggers go with the old table.
    This operation reads the table's triggers first and creates them again on
    the rebuilt table, in the same migration, both ways. PostgreSQL adds the
    column in place (a column with a default is a catalogue change there: no
    row is rewritten and no row trigger fires), so it is Django's ``AddField``
    unchanged.
    """

    def _keeping_triggers(self, app_label, schema_editor, state, run) -> None:
        connection = schema_editor.connection
        if connection.vendor != "sqlite":
            run()
            return
        table = state.apps.get_model(app_label, self.model_name)._meta.db_table
        before = _sqlite_triggers(connection, table)
        run()
        after = _sqlite_triggers(connection, table)
        # Only a rebuild loses them (dropping a plain column is done in place).
        for name, sql in before.items():
            if name not in after:
                schema_editor.execute(sql, params=None)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._keeping_triggers(
            app_label,
            schema_editor,
            from_state,
            lambda: super(AddFieldKeepingTriggers, self).database_forwards(
                app_label, schema_editor, from_state, to_state
            ),
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._keeping_triggers(
            app_label,
            schema_editor,
            from_state,
            lambda: super(AddFieldKeepingTriggers, self).database_backwards(
                app_label, schema_editor, from_state, to_state
            ),
        )
