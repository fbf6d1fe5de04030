"""The passport trends' roll-ups (``passports.rollups``): the telemetry per
model and hour, and the first QA results, equal a recomputation from the raw
rows after any mix of writes, and ``rebuild`` makes the same rows again."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpmos.dashboards import trends
from passports import ledger, rollups, selectors, telemetry
from passports.models import (
    EventKind,
    FirstQaHour,
    FirstQaResult,
    Kind,
    Passport,
    PassportEvent,
    TelemetryModelHour,
    TelemetryReading,
)
from passports.selectors import first_pass_counts, first_pass_series
from tests.factories_passports import make_passport
from tests.support_hypothesis import examples

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
SPAN_MINUTES = 6 * 60
DB = settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
METRICS = {"soh": "soh_percent", "soc": "soc_percent", "temperature": "temperature_c"}

value = st.none() | st.integers(0, 10_000).map(lambda n: n / 100)
sample = st.tuples(st.integers(0, SPAN_MINUTES - 1), value, value, value).filter(
    lambda s: any(v is not None for v in s[1:])
)
# (which pack, samples); minutes unique within a batch (a repeat is a 400).
batch = st.tuples(
    st.integers(0, 2),
    st.lists(sample, min_size=1, max_size=8, unique_by=lambda s: s[0]),
)


def _rollup_rows() -> dict:
    return {
        (row.model, row.hour): tuple(
            (
                getattr(row, f"{m}_sum").quantize(rollups.PLACES),
                getattr(row, f"{m}_count"),
                getattr(row, f"{m}_min"),
                getattr(row, f"{m}_max"),
            )
            for m in METRICS
        )
        for row in TelemetryModelHour.objects.all()
        if any(getattr(row, f"{m}_count") for m in METRICS)
    }


def _from_samples() -> dict:
    """The roll-up recomputed in Python from every stored sample."""
    found: dict = defaultdict(lambda: [[] for _ in METRICS])
    for model, ts, *values in TelemetryReading.objects.values_list(
        "passport__model", "ts", *METRICS.values()
    ):
        for into, v in zip(found[(model, rollups.hour_floor(ts))], values, strict=True):
            if v is not None:
                into.append(v)
    return {
        key: tuple(
            (
                sum((rollups.sample_decimal(v) for v in vs), Decimal(0)),
                len(vs),
                min(vs) if vs else None,
                max(vs) if vs else None,
            )
            for vs in lists
        )
        for key, lists in found.items()
    }


@pytest.mark.django_db
@DB
@given(batches=st.lists(batch, min_size=1, max_size=6), end_minute=st.integers(1, 400))
def test_telemetry_rollups_equal_the_samples_after_mixed_ingests(batches, end_minute):
    with transaction.atomic():
        packs = [
            make_passport(Kind.PACK, model=model)
            for model in ("PACK-A", "PACK-A", "PACK-B")
        ]
        for pack_index, samples in batches:  # re-sent minutes are duplicates
            rows = [
                {
                    "ts": T0 + timedelta(minutes=minute),
                    "soh_percent": soh,
                    "soc_percent": soc,
                    "temperature_c": temperature,
                }
                for minute, soh, soc, temperature in samples
            ]
            telemetry.telemetry_ingest(
                passport_id=packs[pack_index].pk, rows=rows, actor=None
            )
        expected = _from_samples()
        assert _rollup_rows() == expected
        assert rollups.rebuild()["telemetryModelHours"] == len(expected)
        assert _rollup_rows() == expected

        # The model's trend: whole hours from the roll-up, the partial last
        # hour (end mid-hour) from the samples; the mean of the raw samples.
        end = T0 + timedelta(minutes=end_minute)
        for metric, column in METRICS.items():
            trend = trends.trend_get(
                metric=metric, bucket="hour", start=T0, end=end, model="PACK-A"
            )
            for point in trend.series[0].points:
                values = [
                    v
                    for v in TelemetryReading.objects.filter(
                        passport__model="PACK-A",
                        ts__gte=max(point.t, T0),
                        ts__lt=min(point.t + timedelta(hours=1), end),
                    ).values_list(column, flat=True)
                    if v is not None
                ]
                if not values:
                    assert point.value is None
                    continue
                exact = sum(map(rollups.sample_decimal, values)) / len(values)
                # The mean to two decimals (a tie may round either way).
                assert abs(Decimal(repr(point.value)) - exact) <= Decimal("0.005")
        transaction.set_rollback(True)


@pytest.mark.django_db
@pytest.mark.parametrize("end_minute", [90, 100, 120, 125])
def test_a_models_series_reads_the_samples_of_a_split_last_hour_only(
    end_minute, django_assert_num_queries
):
    """A model's series: the roll-ups in one query while ``end`` holds every
    sample of its hour (or falls on the hour); the samples of the last hour
    in a second query only when that hour holds samples at or after ``end``.
    Either way the points equal a recount from the raw samples."""
    packs = [make_passport(Kind.PACK, model="PACK-S") for _ in range(2)]
    make_passport(Kind.PACK, model="PACK-OTHER")
    for index, pack in enumerate(packs):  # minutes 10..115 of two hours
        rows = [
            {
                "ts": T0 + timedelta(minutes=minute + index),
                "soh_percent": 80.0 + minute / 7,
            }
            for minute in range(10, 116, 15)
        ]
        telemetry.telemetry_ingest(passport_id=pack.pk, rows=rows, actor=None)
    end = T0 + timedelta(minutes=end_minute)
    split = end_minute in (90, 100)  # samples at and after both ends
    with django_assert_num_queries(2 if split else 1):
        found = selectors.telemetry_series(
            metric="soh", start=T0, end=end, bucket="hour", model="PACK-S"
        )
    expected = defaultdict(list)
    for ts, soh in TelemetryReading.objects.filter(
        passport__model="PACK-S", ts__lt=end
    ).values_list("ts", "soh_percent"):
        expected[rollups.hour_floor(ts)].append(soh)
    assert set(found) == set(expected)
    for hour, values in expected.items():
        point = found[hour]
        assert (point.samples, point.minimum, point.maximum) == (
            len(values),
            min(values),
            max(values),
        )
        exact = sum(map(rollups.sample_decimal, values)) / len(values)
        # each sample counted to six places (``rollups.sample_decimal``)
        assert abs(Decimal(repr(point.mean)) - exact) < Decimal("1e-6")


def _first_qa() -> tuple[dict, dict]:
    results = {
        row.passport_id: (row.occurred_at, row.passed, row.kind)
        for row in FirstQaResult.objects.all()
    }
    hours = {
        (row.hour, row.kind): (row.tested, row.passed)
        for row in FirstQaHour.objects.all()
        if row.tested
    }
    return results, hours


def _qa(passport: Passport, kind: str, at: datetime) -> None:
    ledger.append(
        passport=passport.pk,
        kind=kind,
        data={"test": "EOL"},
        actor=None,
        occurred_at=at,
    )


@pytest.mark.django_db
def test_first_qa_results_keep_the_first_result_of_each_passport():
    made = (T0 - timedelta(days=1)).isoformat()
    at = T0 + timedelta(hours=2, minutes=10)
    retested = make_passport(Kind.CELL, manufactured_at=made)
    _qa(retested, EventKind.QA_FAILED, at)  # failed, then passed on retest
    _qa(retested, EventKind.QA_PASSED, at + timedelta(hours=1))
    passed = make_passport(Kind.PACK, manufactured_at=made)
    _qa(passed, EventKind.QA_PASSED, T0 + timedelta(hours=30))
    results, hours = _first_qa()
    assert results == {
        retested.pk: (at, False, Kind.CELL),
        passed.pk: (T0 + timedelta(hours=30), True, Kind.PACK),
    }
    assert hours == {
        (T0 + timedelta(hours=2), Kind.CELL): (1, 0),
        (T0 + timedelta(hours=30), Kind.PACK): (1, 1),
    }
    # A later result changes nothing.
    _qa(passed, EventKind.QA_FAILED, T0 + timedelta(hours=31))
    assert _first_qa() == (results, hours)
    # The retested unit counts as failed, in the window of its failure.
    counts = first_pass_counts(
        windows={
            "day": (T0, T0 + timedelta(days=1)),
            "two": (T0, T0 + timedelta(days=2)),
        }
    )
    assert {name: (n.tested, n.passed) for name, n in counts.items()} == {
        "day": (1, 0),
        "two": (2, 1),
    }
    packs = first_pass_counts(
        windows={"two": (T0, T0 + timedelta(days=2))}, kind="pack"
    )
    assert (packs["two"].tested, packs["two"].passed) == (1, 1)
    # The whole hours from the hourly counts, a partial last hour from the
    # first results themselves.
    series = first_pass_series(start=T0, end=at + timedelta(minutes=1), bucket="hour")
    assert {t: (n.tested, n.passed) for t, n in series.items()} == {
        T0 + timedelta(hours=2): (1, 0)
    }
    assert first_pass_series(start=T0, end=at, bucket="hour") == {}
    days = first_pass_series(start=T0, end=T0 + timedelta(days=3), bucket="day")
    assert {t: (n.tested, n.passed) for t, n in days.items()} == {
        T0: (1, 0),
        T0 + timedelta(days=1): (1, 1),
    }

    assert rollups.rebuild()["firstQaResults"] == 2
    assert _first_qa() == (results, hours)


@pytest.mark.django_db
def test_ledger_rows_written_in_bulk_keep_the_first_results():
    made = (T0 - timedelta(days=1)).isoformat()
    cell, pack = (
        make_passport(Kind.CELL, manufactured_at=made),
        make_passport(Kind.PACK, manufactured_at=made),
    )
    _qa(pack, EventKind.QA_PASSED, T0 + timedelta(hours=5))
    # Fixtures and benches write ledgers in bulk: their first QA results count
    # (the lowest version), and a passport's earlier first result stays.
    PassportEvent.objects.bulk_create(
        PassportEvent(
            passport=passport,
            version=version,
            kind=kind,
            occurred_at=T0 + timedelta(hours=hour),
            prev_hash="0" * 64,
            hash="1" * 64,
        )
        for passport, version, kind, hour in (
            (cell, 3, EventKind.QA_PASSED, 3),
            (cell, 2, EventKind.QA_FAILED, 1),
            (pack, 3, EventKind.QA_FAILED, 6),
        )
    )
    assert _first_qa() == (
        {
            cell.pk: (T0 + timedelta(hours=1), False, Kind.CELL),
            pack.pk: (T0 + timedelta(hours=5), True, Kind.PACK),
        },
        {
            (T0 + timedelta(hours=1), Kind.CELL): (1, 0),
            (T0 + timedelta(hours=5), Kind.PACK): (1, 1),
        },
    )


# ``first_pass_counts`` reads the hourly counts of a window's whole hours and
# the first results only of its edges off the hour: for any windows (on the
# hour or not, within one hour, empty) it equals a recount of the first
# results themselves.
minute = st.integers(0, 3 * 24 * 60)
window = st.tuples(minute, st.integers(0, 2 * 24 * 60)).map(
    lambda w: (
        T0 + timedelta(minutes=w[0], seconds=w[0] % 7),
        T0 + timedelta(minutes=w[0] + w[1], seconds=(w[0] + w[1]) % 7),
    )
)


@pytest.fixture
def first_results(db) -> list[tuple[datetime, bool, str]]:
    """First QA results of cells and packs spread over three days, some on
    the hour, some one microsecond before or after it."""
    made = (T0 - timedelta(days=1)).isoformat()
    moments = [
        T0 + timedelta(minutes=m)
        for m in (0, 1, 59, 60, 61, 119, 600, 601, 1439, 1440, 2000, 3000, 4319)
    ]
    moments += [T0 + timedelta(hours=5, microseconds=-1), T0 + timedelta(hours=5)]
    for n, at in enumerate(moments):
        unit = make_passport(Kind.PACK if n % 3 else Kind.CELL, manufactured_at=made)
        _qa(unit, EventKind.QA_PASSED if n % 2 else EventKind.QA_FAILED, at)
    return [(r.occurred_at, r.passed, r.kind) for r in FirstQaResult.objects.all()]


@given(
    windows=st.lists(window, min_size=1, max_size=3),
    kind=st.sampled_from([None, "pack", "cell"]),
)
@settings(DB, max_examples=examples(60))
def test_first_pass_counts_equal_a_recount_for_any_windows(
    first_results, windows, kind
):
    named = {f"w{n}": w for n, w in enumerate(windows)}
    counts = first_pass_counts(windows=named, kind=kind)
    for name, (start, end) in named.items():
        rows = [
            passed
            for at, passed, of in first_results
            if start <= at < end and kind in (None, of)
        ]
        assert (counts[name].tested, counts[name].passed) == (len(rows), sum(rows)), (
            name,
            start,
            end,
        )
