"""A trigram index for GET /api/logs's ``search`` over the alarms' journal
(its change and note; PostgreSQL only; nothing on SQLite): bpmos/trigram.py."""

from django.db import migrations

from bpmos.trigram import trigram_index


class Migration(migrations.Migration):
    dependencies = [
        ("scada", "0003_log_stream_indexes"),
    ]

    operations = [
        trigram_index(
            "scada_alarmhistory", "scada_alarmhistory_text_trgm", "change", "note"
        ),
    ]
