"""The list page's ``count`` kept by the database (bpmos/rowcounts)."""

from django.db import migrations

from bpmos.rowcounts.services import keep_count


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0003_screen_indexes"),
        ("rowcounts", "0001_initial"),
    ]

    operations = [
        keep_count("inventory.items_in_stock", "inventory_item", "quantity > 0")
    ]
