"""The CPCB default CSV layouts of a compliance return (docs/compliance.md).

The CPCB's EPR portal publishes no machine-readable template, so these are
our reading of what its annual return asks (BWMR 2022, Form 2 and Schedule
II): one row per battery category with the year's placed, collected and
recycled quantities against the targets, and the per-pack rows behind them.
Admins edit the layouts (or add others) in the admin; the fields a column
may name are ``compliance.returns.SUMMARY_FIELDS`` and ``PACK_FIELDS``.
The columns are written out here rather than imported, so this migration
means the same thing whatever the code becomes.
"""

from django.db import migrations

SUMMARY = [
    ("Financial Year", "financialYear"),
    ("Period From", "periodStart"),
    ("Period To", "periodEnd"),
    ("Battery Category", "categoryLabel"),
    ("Quantity Placed in Market (Nos)", "placedCount"),
    ("Quantity Placed in Market (kg)", "placedMassKg"),
    ("Collection Target (%)", "collectionTargetPercent"),
    ("Collection Target Basis Year", "collectionBasisFinancialYear"),
    ("Collection Obligation (kg)", "collectionObligationKg"),
    ("Quantity Collected (Nos)", "collectedCount"),
    ("Quantity Collected (kg)", "collectedMassKg"),
    ("Collection Shortfall (kg)", "collectionGapKg"),
    ("Recovery Target (%)", "recoveryTargetPercent"),
    ("Recovery Obligation (kg)", "recoveryObligationKg"),
    ("Quantity Recycled (Nos)", "recycledCount"),
    ("Quantity Recycled (kg)", "recycledMassKg"),
    ("Recovery Shortfall (kg)", "recoveryGapKg"),
    ("Recycled Content Target (%)", "recycledContentTargetPercent"),
    ("Packs Placed Without Weight (Nos)", "placedMissingMassCount"),
]

PACKS = [
    ("Financial Year", "financialYear"),
    ("Transaction", "eventLabel"),
    ("Date", "occurredOn"),
    ("Battery Category", "categoryLabel"),
    ("Battery Serial Number", "serial"),
    ("BPAN", "bpan"),
    ("Model", "model"),
    ("Chemistry", "chemistry"),
    ("Weight (kg)", "massKg"),
    ("Custodian", "custodian"),
    ("Passport ID", "passportUuid"),
]

SCHEMAS = [
    {
        "slug": "cpcb-epr-summary",
        "name": "CPCB EPR annual return: one row per battery category",
        "level": "summary",
        "columns": SUMMARY,
    },
    {
        "slug": "cpcb-epr-packs",
        "name": "CPCB EPR annual return: one row per pack",
        "level": "pack",
        "columns": PACKS,
    },
]


def ship(apps, schema_editor):
    CsvSchema = apps.get_model("compliance", "CsvSchema")
    for spec in SCHEMAS:
        if CsvSchema.objects.filter(slug=spec["slug"]).exists():
            continue
        has_default = CsvSchema.objects.filter(
            level=spec["level"], is_default=True
        ).exists()
        CsvSchema.objects.create(
            slug=spec["slug"],
            name=spec["name"],
            level=spec["level"],
            columns=[
                {"header": header, "field": field} for header, field in spec["columns"]
            ],
            is_default=not has_default,
        )


def unship(apps, schema_editor):
    CsvSchema = apps.get_model("compliance", "CsvSchema")
    CsvSchema.objects.filter(slug__in=[spec["slug"] for spec in SCHEMAS]).delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(ship, unship)]
