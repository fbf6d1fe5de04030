"""Make elog_shiftlogentry append-only in the database itself, as the audit log
(0002): PostgreSQL refuses UPDATE and DELETE with SQLSTATE 23000, SQLite with
RAISE(ABORT). The triggers are named ``*_append_only_*`` so that
``elog/management/commands/flush.py`` can still empty a SQLite database.

On SQLite, a later migration that alters this table rebuilds it and loses these
triggers; it must install them again (tests/test_shift_log.py fails if missing).
"""

from django.db import migrations

from bpmos.appendonly import append_only


class Migration(migrations.Migration):
    dependencies = [
        ("elog", "0003_shiftlogentry"),
    ]

    operations = [
        append_only("elog_shiftlogentry", "shift log entry"),
    ]
