"""Demo compliance data (docs/design.md §8, docs/compliance.md): the BWMR
category of each demo product model, so the demo's EPR figures have no
undeclared packs.

* PACK-LFP-48V-100AH and PACK-LFP-51V-280AH are stationary storage (telecom
  back-up, solar homes): industrial batteries;
* PACK-NMC-72V-60AH powers electric two- and three-wheelers: electric vehicle.

The cell and module models (CELL-…, MOD-…) are left undeclared on purpose:
only packs are counted in EPR (cells and modules reach the market inside
them, ``compliance.epr``), so a category on them would decide nothing; the
categories endpoint lists them as undeclared with ``countsInEpr: false``.

Declared as the admin user through ``compliance.categories`` (audited).
Idempotent: a model already declared is left as it is (an admin may have
changed it).

Then, once, a compliance return for the financial year to date, built and
approved by the demo supervisor, so ``POST /api/compliance/export`` answers a
CSV on a fresh demo plant (with no approved return it is a 409).
"""

from __future__ import annotations

import importlib

from bpmos.accounts.models import User
from bpmos.roles import Role
from compliance import categories, returns
from compliance.models import (
    Category,
    CategoryDeclaration,
    ComplianceReturn,
    CsvSchema,
)
from compliance.periods import Period, fy_current, fy_period, local_date

ORDER = 70  # after the passports (50), whose models these are

DECLARATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "PACK-LFP-48V-100AH",
        Category.INDUSTRIAL,
        "Stationary storage: telecom back-up and solar homes.",
    ),
    (
        "PACK-LFP-51V-280AH",
        Category.INDUSTRIAL,
        "Stationary storage: commercial energy storage systems.",
    ),
    (
        "PACK-NMC-72V-60AH",
        Category.EV,
        "Traction battery of electric two- and three-wheelers.",
    ),
)


def seed(log) -> None:
    _declare(log)
    _schemas(log)
    _demo_return(log)


def _schemas(log) -> None:
    """The CPCB layouts migration 0002 ships, again if a flush removed them
    (the export needs a default pack-level schema)."""
    from django.apps import apps

    migration = importlib.import_module("compliance.migrations.0002_csv_schemas")
    before = CsvSchema.objects.count()
    migration.ship(apps, None)
    if CsvSchema.objects.count() != before:
        log("compliance: the CPCB CSV schemas shipped again")


def _demo_return(log) -> None:
    """Build and approve a return for the FY to date, once."""
    if ComplianceReturn.objects.exists():
        log("compliance: a return exists already")
        return
    from django.utils import timezone

    supervisor = User.objects.filter(username=Role.SUPERVISOR.value).first()
    if supervisor is None:
        log("compliance: no demo supervisor to approve a return; none built")
        return
    first = fy_period(fy_current()).first
    period = Period(first, max(first, local_date(timezone.now())))
    ret = returns.return_build(
        period=period, actor=supervisor, note="Demo: the financial year to date."
    )
    returns.return_approve(return_id=ret.pk, actor=supervisor)
    log(f"compliance: return {ret.pk} built and approved ({ret.row_count} rows)")


def _declare(log) -> None:
    """Declare the demo product models' categories once."""
    present = set(
        CategoryDeclaration.objects.filter(
            model__in=[model for model, _, _ in DECLARATIONS]
        ).values_list("model", flat=True)
    )
    missing = [row for row in DECLARATIONS if row[0] not in present]
    if not missing:
        log("compliance: categories already declared")
        return
    admin = User.objects.get(username=Role.ADMIN.value)
    for model, category, note in missing:
        categories.category_declare(
            model=model, category=category, note=note, actor=admin
        )
    log(f"compliance: {len(missing)} product categories declared")
