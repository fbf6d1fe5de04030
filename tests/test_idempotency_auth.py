"""A request is authenticated once: the idempotency middleware authenticates
a POST with ``Idempotency-Key`` before its view, and the view reuses that
(``bpmos.accounts.authentication.BpmosJWTAuthentication``)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.idempotency_support import RESERVE, make_lot

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam(make_user):
    return make_user("supervisor", username="sam")


# --- one authentication per request ---------------------------------------------


def _user_lookups(queries) -> int:
    return sum(
        1
        for query in queries
        if query["sql"].startswith("SELECT") and 'FROM "accounts_user"' in query["sql"]
    )


def test_a_post_with_a_key_looks_its_user_up_once(sam):
    """The middleware authenticates a POST with ``Idempotency-Key`` before its
    view; the view's DRF request reuses that (``BpmosJWTAuthentication``)
    instead of decoding the token and loading the user a second time."""
    make_lot(sam)
    api = APIClient()
    counts = {}
    for name, extra in (("without", {}), ("with", {"Idempotency-Key": "once-1"})):
        with CaptureQueriesContext(connection) as queries:
            response = api.post(
                RESERVE,
                {"quantity": 1, "dispatchRef": f"DSP-{name}"},
                format="json",
                headers={**bearer(sam), **extra},
            )
        assert response.status_code == 201, response.content
        counts[name] = _user_lookups(queries.captured_queries)
    assert counts == {"without": 1, "with": 1}
