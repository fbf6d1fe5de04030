from django.db import migrations


def recount(apps, schema_editor):
    """The custody counts recounted without Superseded passports: a battery
    given a second life is counted once, as its successor (docs/metrics.md,
    "Custody Mix"). Before, the old passport stayed in its custodian's count."""
    from passports import rollups

    rollups.custody_units_rebuild(models=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("passports", "0015_ledger_checkpoints"),
    ]

    operations = [
        migrations.RunPython(recount, migrations.RunPython.noop, elidable=True),
    ]
