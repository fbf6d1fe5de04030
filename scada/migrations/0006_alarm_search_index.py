"""GET /api/logs: a trigram index over the alarms' tag and message, which
``search`` reads to find the matching alarms before their journal rows
(``scada.logsource._search``; PostgreSQL only, nothing on SQLite:
bpmos/trigram.py), and a partial index of the comm-loss alarms, which the
connector source joins to on every page."""

import django.db.models
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
        migrations.AddIndex(
            model_name="alarmevent",
            index=django.db.models.Index(
                condition=django.db.models.Q(("kind", "comm_loss")),
                fields=["id"],
                name="scada_alarm_comm_loss_idx",
            ),
        ),
    ]
