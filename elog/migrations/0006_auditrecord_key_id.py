"""Each audit record names the audit key that signed it (bpmos/auditkeys.py).

Records written before this migration were all signed with the audit key of
the time, so they get the id of the current key when the migration runs: run
``migrate`` with the plant's own ``BPMOS_AUDIT_KEY`` (and ``BPMOS_AUDIT_KEY_ID``
if set), as the application runs. On PostgreSQL the column is added with that
id as its default and the default then dropped: a catalogue change, no row is
rewritten, the append-only trigger never fires. On SQLite the table is rebuilt
and its append-only triggers created again (``AddFieldKeepingTriggers``).
"""

from django.db import migrations, models

from bpmos.appendonly import AddFieldKeepingTriggers
from bpmos.auditkeys import keyring


def _current_key_id() -> str:
    return keyring().current_id


class Migration(migrations.Migration):
    dependencies = [
        ("elog", "0005_log_search_indexes"),
    ]

    operations = [
        AddFieldKeepingTriggers(
            model_name="auditrecord",
            name="key_id",
            field=models.CharField(
                default=_current_key_id,
                help_text=(
                    "Id of the audit key that signed this record (bpmos/auditkeys.py)."
                ),
                max_length=16,
            ),
            preserve_default=False,
        ),
    ]
