"""The screens' query counts do not grow with the plant (docs/performance.md,
"A plant-year"): each endpoint below is read, in process through the whole
stack with a Bearer token, over a generated plant of two sizes (the small
plant, and one with three times its work orders, passports, items and
exceptions); each costs the same number of queries over both, and that
number is pinned. PostgreSQL only, as the generator.

The plants are built inside a transaction rolled back at the end of each
size, as tests/test_plant_generator_runs.py does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.tokens import AccessToken

from bpmos.accounts.models import User
from plant_generator.generate import SCALES, generate
from tests.conftest import _cache_clear

pytestmark = pytest.mark.skipif(
    not settings.DB_IS_POSTGRES,
    reason="the plant generator needs PostgreSQL (COPY and set-based SQL)",
)

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SMALL = SCALES["small"]
LARGER = dataclasses.replace(
    SMALL,
    passports=SMALL.passports * 3,
    ledger_events=SMALL.ledger_events * 3,
    work_orders=SMALL.work_orders * 3,
    items=SMALL.items * 3,
    exceptions=SMALL.exceptions * 3,
    alarms=SMALL.alarms * 3,
    alarm_history=SMALL.alarm_history * 3,
)

# The endpoints the plant-year's screens work made flat, with the queries
# each costs (authentication included), whatever the plant's size.
PINNED = {
    "/api/control-tower/runbooks": 8,
    "/api/runbooks/manufacturing": 11,
    "/api/runbooks/manufacturing/stages": 7,
    "/api/inventory/categories": 3,
    "/api/inventory/items": 3,
    "/api/workorders/": 3,
    "/api/passports": 3,
    "/api/live-products/dispatchable": 2,
}


class _Undo(Exception):
    pass


def _measure(plan) -> tuple[dict[str, int], dict[str, int]]:
    """Over ``plan``'s plant (rolled back after): the queries of one request
    to each pinned path, and a few of the plant's sizes as the API shows
    them."""
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    try:
        with transaction.atomic():
            generate(plan, seed=5, end=END, finish=False)
            _cache_clear()
            user = User.objects.get(username="plant-head")
            client = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
            for path in PINNED:
                first = client.get(path)  # warm: the same caches for both sizes
                assert first.status_code == 200, (path, first.content[:300])
                with CaptureQueriesContext(connection) as queries:
                    again = client.get(path)
                assert again.status_code == 200
                counts[path] = len(queries.captured_queries)
            sizes["work orders"] = client.get("/api/workorders/").json()["count"]
            sizes["passports"] = client.get("/api/passports").json()["count"]
            sizes["items"] = client.get("/api/inventory/items").json()["count"]
            detail = client.get("/api/runbooks/manufacturing").json()
            sizes["runbook's work orders"] = sum(detail["workOrders"].values())
            _cache_clear()
            raise _Undo
    except _Undo:
        pass
    return counts, sizes


@pytest.mark.django_db
def test_screen_query_counts_are_pinned_and_flat_with_the_plant():
    small, small_sizes = _measure(SMALL)
    larger, larger_sizes = _measure(LARGER)
    # the second plant is larger in everything the screens list or count
    for name, n in small_sizes.items():
        assert larger_sizes[name] > n, (name, n, larger_sizes[name])
    assert small == PINNED
    assert larger == PINNED
