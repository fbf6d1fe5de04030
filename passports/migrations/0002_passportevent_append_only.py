"""Make the passport ledger append-only in the database (bpmos.appendonly)."""

from django.db import migrations

from bpmos.appendonly import append_only


class Migration(migrations.Migration):
    dependencies = [("passports", "0001_initial")]

    operations = [append_only("passports_passportevent", "ledger event")]
