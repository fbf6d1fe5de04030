"""The hot reads' statements kept compiled and prepared (``bpmos.compiled``):
an unnarrowed list page's rows and kept count, the token's user.

What is kept is the *statement*, never its rows: every test below changes the
rows between two reads and expects the second read to see them. On PostgreSQL
the statements are prepared (``pg_prepared_statements`` of the connection); on
SQLite the same code runs them through Django's own cursor.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from bpmos import compiled
from bpmos.accounts.models import User
from runbooks.api.views import WorkOrderListView
from runbooks.models import WorkOrder
from tests.conftest import api_as
from tests.factories_production import T0, make_runbook, make_work_order

pytestmark = pytest.mark.django_db


def prepared_statements() -> dict[str, int]:
    """This connection's prepared statements: text -> times run."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements"
        )
        return dict(cursor.fetchall())


def runs_of(fragment: str) -> int:
    """How often the prepared statement containing ``fragment`` ran."""
    return sum(n for text, n in prepared_statements().items() if fragment in text)


@pytest.fixture
def planner(make_user):
    return make_user("planner")


def page(client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def test_a_page_read_twice_sees_the_rows_written_between(planner):
    runbook = make_runbook()
    make_work_order(planner, runbook=runbook, lot_no="LOT-A")
    client = api_as(planner)

    first = page(client, "/api/workorders/?page_size=5")
    assert [r["lot_no"] for r in first["results"]] == ["LOT-A"]
    make_work_order(
        planner, runbook=runbook, lot_no="LOT-B", start=T0 + timedelta(days=1)
    )
    second = page(client, "/api/workorders/?page_size=5")
    assert second["count"] == 2
    assert [r["lot_no"] for r in second["results"]] == ["LOT-B", "LOT-A"]
    if connection.vendor == "postgresql":
        assert runs_of('FROM "runbooks_workorder"') >= 2
        assert runs_of("rowcounts_rowcountdelta") >= 2


@pytest.mark.parametrize(
    "query",
    [
        "?page_size=3",
        "?page_size=3&page=2",
        "?page_size=3&ordering=qty",
        "?page_size=3&ordering=-qty&page=2",
        "?page_size=3&ordering=nonsense",  # DRF ignores an unknown order
    ],
)
def test_a_kept_statement_prints_what_the_uncompiled_page_prints(
    planner, monkeypatch, query
):
    runbook = make_runbook()
    for n in range(7):
        make_work_order(
            planner,
            runbook=runbook,
            qty=(n * 5) % 7 + 1,
            lot_no=f"LOT-{n}",
            start=T0 + timedelta(hours=n),
        )
    client = api_as(planner)
    path = f"/api/workorders/{query}"
    kept = [client.get(path).content for _ in range(2)]  # compiled, then reused
    monkeypatch.setattr(WorkOrderListView, "compiled_pages", False)
    plain = client.get(path).content
    assert kept[0] == kept[1] == plain
    assert b'"results":[{' in plain


def four_orders_client(planner) -> APIClient:
    """Four work orders, LOT-0 to LOT-3, each planned an hour after the one
    before; a client signed in as ``planner``."""
    runbook = make_runbook()
    for n in range(4):
        make_work_order(
            planner, runbook=runbook, lot_no=f"LOT-{n}", start=T0 + timedelta(hours=n)
        )
    client = api_as(planner)
    return client


def test_the_pages_of_one_list_are_kept_apart(planner):
    client = four_orders_client(planner)
    lots = [
        [
            r["lot_no"]
            for r in page(client, f"/api/workorders/?page_size=2&page={n}")["results"]
        ]
        for n in (1, 2, 1)
    ]
    assert lots == [["LOT-3", "LOT-2"], ["LOT-1", "LOT-0"], ["LOT-3", "LOT-2"]]


def test_a_page_past_the_first_rows_is_read_but_not_kept(planner, monkeypatch):
    from bpmos import listrows

    monkeypatch.setattr(listrows, "KEPT_PAGES_BEFORE_ROW", 2)
    monkeypatch.setattr(compiled, "_COMPILED", {})  # none kept by other tests
    client = four_orders_client(planner)
    before = set(compiled._COMPILED)
    first = page(client, "/api/workorders/?page_size=2&page=1")["results"]
    kept = [k for k in set(compiled._COMPILED) - before if k[2][0] == "page"]
    second = page(client, "/api/workorders/?page_size=2&page=2")["results"]
    after = [k for k in set(compiled._COMPILED) - before if k[2][0] == "page"]
    assert [r["lot_no"] for r in first] == ["LOT-3", "LOT-2"]
    assert [r["lot_no"] for r in second] == ["LOT-1", "LOT-0"]
    assert [k[2][-2:] for k in kept] == [(0, 2)]
    assert after == kept


def test_a_narrowed_page_is_not_kept(planner):
    runbook = make_runbook()
    make_work_order(planner, runbook=runbook, lot_no="LOT-X")
    make_work_order(planner, runbook=runbook, lot_no="LOT-Y", product_code="PACK-96V")
    client = api_as(planner)
    before = dict(compiled._COMPILED)
    narrowed = page(client, "/api/workorders/?search=PACK-96V")
    assert [r["lot_no"] for r in narrowed["results"]] == ["LOT-Y"]
    assert narrowed["count"] == 1
    added = [key for key in compiled._COMPILED if key not in before]
    assert not [key for key in added if "page" in key[2]]


def test_an_empty_slice_has_no_statement_and_no_rows():
    shape = ("test", "empty slice")
    rows = compiled.rows_get(
        shape, lambda: WorkOrder.objects.values("id")[0:0], prepared=True
    )
    assert rows == []
    assert compiled.rows_get(shape, lambda: pytest.fail("compiled again")) == []


def test_the_users_statement_reads_the_row_as_the_orm_does(make_user):
    user = make_user("supervisor", email="s@example.com")
    found = compiled.instance_get(User, "id", user.pk)
    expected = User.objects.get(pk=user.pk)
    fields = [f.attname for f in User._meta.concrete_fields]
    assert {f: getattr(found, f) for f in fields} == {
        f: getattr(expected, f) for f in fields
    }
    assert found._state.adding is False
    assert found._state.db == "default"
    assert compiled.instance_get(User, "id", user.pk + 10_000) is None
    User.objects.filter(pk=user.pk).update(role="auditor", is_active=False)
    again = compiled.instance_get(User, "id", str(user.pk))  # a claim's text
    assert (again.role, again.is_active) == ("auditor", False)
    with pytest.raises(ValueError, match="expected a number"):
        compiled.instance_get(User, "id", "not-a-number")


def test_a_request_sees_its_user_change_at_once(make_user):
    user = make_user("planner")
    client = api_as(user)
    assert page(client, "/api/auth/me")["role"] == "planner"
    User.objects.filter(pk=user.pk).update(role="auditor")
    assert page(client, "/api/auth/me")["role"] == "auditor"
    User.objects.filter(pk=user.pk).update(is_active=False)
    refused = client.get("/api/auth/me")
    assert refused.status_code == 401
    assert refused.json()["error"] == "User is inactive"
    User.objects.filter(pk=user.pk).delete()
    gone = client.get("/api/auth/me")
    assert gone.status_code == 401
    assert gone.json()["error"] == "User not found"


def test_a_prepared_statement_is_logged_as_django_logs_queries(make_user):
    user = make_user("planner")
    compiled.instance_get(User, "id", user.pk)  # prepared on first use
    with CaptureQueriesContext(connection) as queries:
        compiled.instance_get(User, "id", user.pk)  # run prepared
    (query,) = queries.captured_queries
    assert 'FROM "accounts_user"' in query["sql"]


def test_statements_are_prepared_once_and_survive_a_rollback(make_user):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    user = make_user("planner")
    for _ in range(3):
        assert compiled.instance_get(User, "id", user.pk).pk == user.pk
    assert runs_of('FROM "accounts_user"') == 3

    # psycopg forgets a session's prepared statements at a ROLLBACK (it
    # deallocates them all): the next read prepares again and still reads.
    def read_then_fail():
        with transaction.atomic():
            compiled.instance_get(User, "id", user.pk)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        read_then_fail()
    assert compiled.instance_get(User, "id", user.pk).pk == user.pk
    assert runs_of('FROM "accounts_user"') >= 1


def test_preparing_off_prepares_nothing(make_user, settings):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    settings.BPMOS_DATABASE_PREPARED = False
    user = make_user("planner")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    connection.connection._prepared.clear()
    for _ in range(2):
        assert compiled.instance_get(User, "id", user.pk).pk == user.pk
    assert prepared_statements() == {}
