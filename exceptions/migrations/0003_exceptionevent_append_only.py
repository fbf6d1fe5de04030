"""Make exceptions_exceptionevent (the exceptions' journal) append-only in the
database itself, as the audit log and the shift log: PostgreSQL refuses UPDATE
and DELETE with SQLSTATE 23000, SQLite with RAISE(ABORT). The triggers are
named ``*_append_only_*`` so that ``elog/management/commands/flush.py`` can
still empty a SQLite database.

On SQLite, a later migration that alters this table rebuilds it and loses these
triggers; it must install them again (tests/test_exception_journal.py fails if
missing on PostgreSQL).
"""

from django.db import migrations

from bpmos.appendonly import append_only


class Migration(migrations.Migration):
    dependencies = [
        ("exceptions", "0002_exceptionevent"),
    ]

    operations = [
        append_only("exceptions_exceptionevent", "exception event"),
    ]
