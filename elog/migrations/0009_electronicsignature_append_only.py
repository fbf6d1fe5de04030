"""Make elog_electronicsignature append-only in the database itself, as the
audit log (0002): a signature is never changed or removed. The triggers are
named ``*_append_only_*`` so that ``elog/management/commands/flush.py`` can still
empty a SQLite database."""

from django.db import migrations

from bpmos.appendonly import append_only


class Migration(migrations.Migration):
    dependencies = [
        ("elog", "0008_electronicsignature"),
    ]

    operations = [
        append_only("elog_electronicsignature", "electronic signature"),
    ]
