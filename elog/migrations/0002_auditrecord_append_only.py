"""Make elog_auditrecord append-only in the database itself.

PostgreSQL (production): one BEFORE UPDATE OR DELETE row trigger whose function
raises SQLSTATE 23000 (integrity_constraint_violation, an IntegrityError in
Django). TRUNCATE is deliberately left alone: it fires no row trigger, and
pytest-django's flush between transactional tests uses it; a role that may
TRUNCATE can drop the trigger anyway, and the hash chain is what detects that.

SQLite (embedded demo): BEFORE UPDATE and BEFORE DELETE triggers with
RAISE(ABORT, ...). Django's ``flush`` empties SQLite tables with ``DELETE FROM``
(there is no TRUNCATE), which the DELETE trigger would refuse and so break every
transactional test and ``manage.py flush``. ``elog/management/commands/flush.py``
therefore lifts the triggers named ``*_append_only_*`` inside the flush's own
transaction and puts them back before it commits: emptying the whole database
stays possible (as TRUNCATE is on PostgreSQL), deleting or changing single
records is refused. The trigger names below follow that convention.

On SQLite, a later migration that alters this table rebuilds it (create, copy,
drop, rename) and loses these triggers; such a migration must recreate them.
``tests/test_audit_chain.py`` fails if they are missing.

Other database vendors get no trigger (BPM-OS runs on these two only).
"""

from django.db import migrations

TABLE = "elog_auditrecord"

POSTGRES_FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{TABLE} is append-only: % of audit record #% refused',
            TG_OP, OLD.seq
            USING ERRCODE = 'integrity_constraint_violation',
                  HINT = 'Audit records are never changed or deleted; '
                         'record a correcting action instead.';
    END;
    $$;
    """,
    f"""
    CREATE TRIGGER {TABLE}_append_only_guard
        BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse_change();
    """,
]
POSTGRES_REVERSE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only_guard ON {TABLE};",
    f"DROP FUNCTION IF EXISTS {TABLE}_refuse_change();",
]

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER {TABLE}_append_only_update BEFORE UPDATE ON {TABLE}
    BEGIN
        SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE of an audit record refused');
    END;
    """,
    f"""
    CREATE TRIGGER {TABLE}_append_only_delete BEFORE DELETE ON {TABLE}
    BEGIN
        SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE of an audit record refused');
    END;
    """,
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only_update;",
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only_delete;",
]

SQL = {
    "postgresql": (POSTGRES_FORWARD, POSTGRES_REVERSE),
    "sqlite": (SQLITE_FORWARD, SQLITE_REVERSE),
}


def _run(schema_editor, statements: list[str]) -> None:
    for statement in statements:
        schema_editor.execute(statement, params=None)


def install(apps, schema_editor):
    forward, _ = SQL.get(schema_editor.connection.vendor, ([], []))
    _run(schema_editor, forward)


def uninstall(apps, schema_editor):
    _, reverse = SQL.get(schema_editor.connection.vendor, ([], []))
    _run(schema_editor, reverse)


class Migration(migrations.Migration):
    dependencies = [
        ("elog", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(install, uninstall, elidable=False),
    ]
