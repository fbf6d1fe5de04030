"""What the schema fuzzer (tests/test_schema_fuzz.py, docs/testing.md) found,
each failing input kept as a plain test: an input the schema calls invalid is
a 400 in the envelope naming the parameter, and no input is a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_user) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=bearer(make_user("admin", username="ada"))["Authorization"]
    )
    return client


# --- empty query values: a 400 unless the schema says allowEmptyValue ---


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/alarms/", "to"),
        ("/api/alarms/chattering/", "until"),
        ("/api/audit/", "to"),
        ("/api/lims/results/", "to"),
        ("/api/logs/shift/", "to"),
        ("/api/scada/readings/", "to"),
        ("/api/machines/", "is_active"),
        ("/api/workorders/", "status"),
    ],
)
def test_an_empty_filter_value_is_a_400_naming_it(admin, path, parameter):
    response = admin.get(path, {parameter: ""})
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {
        parameter: ["May not be empty: leave the parameter out instead."]
    }


def test_the_control_ui_may_send_its_inventory_filters_empty(admin):
    """The frozen control-UI contract's item filters: an unset one is sent
    empty, and means "not given" (declared ``allowEmptyValue``)."""
    response = admin.get(
        "/api/inventory/items/", {"category": "", "status": "", "search": ""}
    )
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


def test_the_schema_declares_which_query_values_may_be_empty(admin):
    paths = admin.get("/api/schema/", {"format": "json"}).json()["paths"]

    def parameter(path: str, name: str) -> dict:
        (found,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == name]
        return found

    assert parameter("/api/inventory/items/", "category")["allowEmptyValue"] is True
    assert parameter("/api/inventory/items/", "status")["allowEmptyValue"] is True
    assert "allowEmptyValue" not in parameter("/api/alarms/", "to")
    sku = parameter("/api/inventory/items/", "sku")
    assert "allowEmptyValue" not in sku
    assert sku["schema"]["minLength"] == 1


# --- booleans: true or false, nothing else ---


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/auth/users/", "is_active=null&is_active=null"),
        ("/api/machines/", "is_active=null"),
        ("/api/exceptions/", "isBlocking=null"),
        ("/api/passports/", "onHold=null&onHold=null"),
        ("/api/registry/", "onHold=0.6834040259543779"),
    ],
)
def test_a_boolean_filter_refuses_what_is_not_true_or_false(admin, path, query):
    response = admin.get(f"{path}?{query}")
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == [query.split("=")[0]]


# --- no 500s ---


def test_a_time_offset_past_postgresqls_range_is_read_as_its_instant(admin):
    """ISO 8601 allows +23:36; PostgreSQL refused it (a 500)."""
    response = admin.get(
        "/api/logs/shift/", {"shift": "2010-06-07T19:02:59+23:36", "search": "x"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/passports/verify/", "identifier"),
        ("/api/passports/lookup/", "identifier"),
        ("/api/workorders/", "search"),
    ],
)
def test_a_nul_in_a_query_value_is_a_400_naming_it(admin, path, parameter):
    """PostgreSQL text cannot hold NUL: ``?identifier=%00`` was a 500."""
    response = admin.get(path, {parameter: "U\x00(x"})
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {parameter: ["May not contain NUL characters."]}
