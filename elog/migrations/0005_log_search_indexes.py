"""Trigram indexes for GET /api/logs's ``search`` over the audit log and the
shift log (PostgreSQL only; nothing on SQLite): bpmos/trigram.py."""

from django.db import migrations

from bpmos.trigram import trigram_index


class Migration(migrations.Migration):
    dependencies = [
        ("elog", "0004_shiftlogentry_append_only"),
    ]

    operations = [
        trigram_index(
            "elog_auditrecord",
            "elog_audit_text_trgm",
            "action",
            "actor_username",
            "target_type",
            "target_id",
            "target_repr",
        ),
        trigram_index(
            "elog_shiftlogentry",
            "elog_shiftlog_text_trgm",
            "body",
            "operator_name",
            "entry_type",
            "target_type",
            "target_id",
        ),
    ]
