"""Passport projection updates HOT-eligible (docs/passports.md, "HOT projection
updates"): ``passport_on_hold_idx`` keys on ``id`` instead of ``(updated_at,
id)``, and the table keeps 10 % of each page free (fillfactor 90) for the new
row versions of the updates (PostgreSQL only; pages already full get the room
as their rows move, or at the next rewrite of the table)."""

from django.db import migrations, models

FILLFACTOR = 90


def _alter(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("passports", "0018_kept_count"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="passport",
            name="passport_on_hold_idx",
        ),
        migrations.AddIndex(
            model_name="passport",
            index=models.Index(
                condition=models.Q(("on_hold", True)),
                fields=["id"],
                name="passport_on_hold_idx",
            ),
        ),
        migrations.RunPython(
            _alter(f"ALTER TABLE passports_passport SET (fillfactor = {FILLFACTOR})"),
            _alter("ALTER TABLE passports_passport RESET (fillfactor)"),
            elidable=False,
        ),
    ]
