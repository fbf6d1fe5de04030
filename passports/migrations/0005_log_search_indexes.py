"""Trigram indexes for GET /api/logs's ``search`` over the ledger: the
passports' serials and the events' actors (PostgreSQL only; nothing on
SQLite): bpmos/trigram.py."""

from django.db import migrations

from bpmos.trigram import trigram_index


class Migration(migrations.Migration):
    dependencies = [
        ("passports", "0004_event_kind_index"),
    ]

    operations = [
        trigram_index("passports_passport", "passport_serial_trgm", "serial"),
        trigram_index(
            "passports_passportevent", "passport_event_actor_trgm", "actor_username"
        ),
    ]
