"""Concurrent writers of the passport trends' roll-ups, on PostgreSQL: batches
of telemetry for the same model-hour, and first QA results in the same hour,
committed at once, all count (each upsert waits on the other's row lock, then
adds to the committed row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from passports import ledger, telemetry
from passports.models import EventKind, FirstQaHour, Kind, TelemetryModelHour
from tests.factories_passports import make_passport
from tests.support import run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]

WORKERS = 6
HOUR = datetime(2026, 3, 2, 8, tzinfo=UTC)


def test_batches_for_the_same_model_hour_at_once_all_count():
    packs = [make_passport(Kind.PACK, model="PACK-RACE") for _ in range(WORKERS)]

    def ingest(n: int):
        rows = [
            {
                "ts": HOUR + timedelta(minutes=minute, seconds=n),
                "soh_percent": 90 + n,
                "temperature_c": 20.5 + minute,
            }
            for minute in range(3)
        ]
        return lambda: telemetry.telemetry_ingest(
            passport_id=packs[n].pk, rows=rows, actor=None
        )

    results = run_together([ingest(n) for n in range(WORKERS)])
    assert results == [{"accepted": 3, "duplicates": 0}] * WORKERS
    (row,) = TelemetryModelHour.objects.filter(model="PACK-RACE")
    assert row.hour == HOUR
    assert (row.soh_count, row.soh_sum) == (3 * WORKERS, Decimal(3 * (90 * 6 + 15)))
    assert (row.soh_min, row.soh_max) == (90.0, 95.0)
    assert (row.soc_count, row.soc_sum, row.soc_min) == (0, 0, None)
    assert (row.temperature_count, row.temperature_min, row.temperature_max) == (
        3 * WORKERS,
        20.5,
        22.5,
    )
    assert row.last_ts == HOUR + timedelta(minutes=2, seconds=WORKERS - 1)


def test_first_qa_results_in_the_same_hour_at_once_all_count():
    made = (HOUR - timedelta(days=1)).isoformat()
    cells = [make_passport(Kind.CELL, manufactured_at=made) for _ in range(WORKERS)]

    def qa(n: int):
        return lambda: ledger.append(
            passport=cells[n].pk,
            kind=EventKind.QA_PASSED if n % 2 else EventKind.QA_FAILED,
            data={"test": "EOL"},
            actor=None,
            occurred_at=HOUR + timedelta(minutes=n),
        )

    results = run_together([qa(n) for n in range(WORKERS)])
    assert not [r for r in results if isinstance(r, Exception)]
    (row,) = FirstQaHour.objects.all()
    assert (row.hour, row.kind, row.tested, row.passed) == (
        HOUR,
        Kind.CELL,
        WORKERS,
        WORKERS // 2,
    )
