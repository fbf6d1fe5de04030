"""A trigram index over the alarms' tag and message, which GET /api/logs's
``search`` reads to find the matching alarms before their journal rows
(``scada.logsource._search``; PostgreSQL only, nothing on SQLite):
bpmos/trigram.py."""

from django.db import migrations

from bpmos.trigram import trigram_index


class Migration(migrations.Migration):
    dependencies = [
        ("scada", "0005_verbose_names"),
    ]

    operations = [
        trigram_index(
            "scada_alarmevent", "scada_alarm_text_trgm", "tag_name", "message"
        ),
    ]
