"""The list page's ``count`` kept by the database (bpmos/rowcounts)."""

from django.db import migrations

from bpmos.rowcounts.services import keep_count


class Migration(migrations.Migration):
    dependencies = [
        ("passports", "0017_runbook_context_indexes"),
        ("rowcounts", "0001_initial"),
    ]

    operations = [keep_count("passports.passports", "passports_passport", "TRUE")]
