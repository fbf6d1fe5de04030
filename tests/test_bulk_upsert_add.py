"""``bpmos.bulk.upsert_add``: the one additive upsert of the kept counts (the
runbooks' work-order counts and stage WIP), on PostgreSQL and SQLite alike.
The counts' own invariants are checked in ``tests/test_work_order_counts.py``
and ``tests/test_stage_wip_counts.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from bpmos.bulk import upsert_add
from passports.models import FirstQaHour
from runbooks.models import RunbookWorkOrderCount
from tests.factories_production import make_runbook

pytestmark = pytest.mark.django_db

KEY = ("runbook_id",)
COUNTERS = ("planned", "in_progress", "completed", "cancelled")


def _kept() -> dict[int, list[int]]:
    rows = RunbookWorkOrderCount.objects.values_list("runbook_id", *COUNTERS)
    return {runbook_id: list(values) for runbook_id, *values in rows}


def test_adds_to_kept_rows_and_inserts_missing_ones_in_one_statement(
    django_assert_num_queries,
):
    first = make_runbook(slug="first").pk
    second = make_runbook(slug="second", is_default=False).pk
    upsert_add(RunbookWorkOrderCount, KEY, COUNTERS, {first: [2, 0, 0, 0]})
    with django_assert_num_queries(1):
        upsert_add(
            RunbookWorkOrderCount,
            KEY,
            COUNTERS,
            {first: [-1, 1, 0, 0], second: [0, 0, 3, 1]},
        )
    assert _kept() == {first: [1, 1, 0, 0], second: [0, 0, 3, 1]}


def test_zero_deltas_run_no_statement(django_assert_num_queries):
    runbook = make_runbook().pk
    with django_assert_num_queries(0):
        upsert_add(RunbookWorkOrderCount, KEY, COUNTERS, {})
        upsert_add(RunbookWorkOrderCount, KEY, COUNTERS, {runbook: [0, 0, 0, 0]})
    assert _kept() == {}


def test_rows_go_in_key_order():
    """One lock order for every writer: the rows in key order, whatever the
    order of ``deltas``; an all-zero row left out."""
    ids = [make_runbook(slug=f"rb-{n}", is_default=n == 0).pk for n in range(3)]
    sent = []

    def capture(execute, sql, params, many, context):
        sent.append(list(params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        upsert_add(
            RunbookWorkOrderCount,
            KEY,
            COUNTERS,
            {ids[2]: [0, 0, 0, 1], ids[1]: [0, 0, 0, 0], ids[0]: [1, 0, 0, 0]},
        )
    assert sent == [[ids[0], 1, 0, 0, 0, ids[2], 0, 0, 0, 1]]


def test_a_key_of_several_columns():
    """A tuple key, its values as the connection takes them."""
    adapt = connection.ops.adapt_datetimefield_value
    nine, ten = (datetime(2026, 12, 4, hour, tzinfo=UTC) for hour in (9, 10))
    keys, counters = ("hour", "kind"), ("tested", "passed")
    upsert_add(FirstQaHour, keys, counters, {(adapt(nine), "pack"): [2, 1]})
    upsert_add(
        FirstQaHour,
        keys,
        counters,
        {(adapt(nine), "pack"): [1, 1], (adapt(ten), "cell"): [1, 0]},
    )
    rows = FirstQaHour.objects.order_by("hour").values_list(
        "hour", "kind", "tested", "passed"
    )
    assert list(rows) == [(nine, "pack", 3, 2), (ten, "cell", 1, 0)]
