"""The list page's ``count`` kept by the database (bpmos/rowcounts)."""

from django.db import migrations

from bpmos.rowcounts.services import keep_count


class Migration(migrations.Migration):
    dependencies = [
        ("runbooks", "0005_runbook_work_order_counts"),
        ("rowcounts", "0001_initial"),
    ]

    operations = [keep_count("runbooks.work_orders", "runbooks_workorder", "TRUE")]
