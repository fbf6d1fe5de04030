"""Imports of the same LIMS results running at once, on PostgreSQL: each result
becomes one QA event, whoever wins; the others count it as skipped.

Each worker thread has its own database connection and closes it when done; a
barrier releases them together (as tests/test_passport_concurrency.py).
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from elog.services import audit_chain_verify
from passports.models import PassportEvent
from scada import quality
from scada.models import LimsResult
from tests.factories_passports import register
from tests.support import run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]

WORKERS = 4


def test_concurrent_imports_of_one_file_apply_each_result_once():
    made = "2026-01-05T08:00:00Z"
    packs = [
        register("pack", serial=f"RACE-{n}", manufactured_at=made) for n in range(3)
    ]
    content = "serial,test_name,result,tested_at,capacity_ah\n" + "".join(
        f"RACE-{n},Capacity,pass,2026-03-01T10:0{n}:00Z,10{n}\n" for n in range(3)
    )

    def importing():
        return quality.lims_import_csv(file=ContentFile(content.encode()), actor=None)

    reports = run_together([importing] * WORKERS)

    assert all(isinstance(r, quality.ApplyReport) for r in reports), reports
    assert sum(r.applied for r in reports) == 3
    assert sum(r.skipped for r in reports) == 3 * (WORKERS - 1)
    assert all(r.rejected == [] for r in reports)
    for pack in packs:
        kinds = list(
            PassportEvent.objects.filter(passport=pack)
            .order_by("version")
            .values_list("kind", flat=True)
        )
        assert kinds == ["manufactured", "qa_passed"]
    assert LimsResult.objects.count() == 3
    assert audit_chain_verify().ok
