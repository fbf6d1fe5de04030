"""A dependency that is down is a 503 in the envelope, naming it, on every API
call (docs/design.md §4), as /api/health already said; never a 500 ``server_error``.

- The database: a real daphne serving the API with ``DATABASE_URL`` pointing at
  a local port where nothing listens (connection refused), so every request
  that needs the database fails to connect, as in production.
- Redis as the cache: the test's own server with the cache pointed at such a
  port (the shared Redis is never stopped). Login keeps working (the failed-
  login throttle lets it through and logs a warning); what cannot work without
  the cache (a dispatch stream ticket) answers 503.
"""

import socket

import httpx
import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from bpmos.accounts.models import User
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from tests.conftest import PASSWORD, bearer
from tests.support import api_routes, assert_envelope, daphne_server

pytestmark = pytest.mark.django_db(transaction=True)

DATABASE_DOWN = {
    "error": "The database is unavailable; try again shortly.",
    "details": {"dependency": "database"},
}
CACHE_DOWN = {
    "error": "Redis is unavailable; try again shortly.",
    "details": {"dependency": "redis"},
}
# Routes that answer without the database: the schema and its UI, and health
# (its own 503, which lists every check).
NO_DATABASE_NEEDED = {"schema", "docs", "health"}
# Public endpoints whose empty body is refused (400) before any database read;
# each is tried below with a body that reaches the database.
PUBLIC = {"auth-login", "auth-refresh"}


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def no_database(tmp_path, closed_port):
    """A daphne serving the API whose database refuses every connection."""
    url = f"postgres://postgres@127.0.0.1:{closed_port}/bpmos"
    with (
        daphne_server(tmp_path / "daphne.log", DATABASE_URL=url) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as client,
    ):
        yield client


def _database_down(response) -> None:
    body = assert_envelope(response, 503, "dependency_unavailable")
    assert {key: body[key] for key in DATABASE_DOWN} == DATABASE_DOWN


def test_anonymous_login_and_refresh_without_database_are_503(no_database, make_user):
    response = no_database.post(
        "/api/auth/login", json={"username": "olga", "password": PASSWORD}
    )
    _database_down(response)
    refresh = str(RefreshToken.for_user(make_user("operator")))
    _database_down(no_database.post("/api/auth/refresh", json={"refresh": refresh}))


def test_every_api_call_without_database_is_503(no_database, make_user):
    # A valid token: the request gets as far as reading its user.
    headers = bearer(make_user("admin"))
    answered = 0
    for route in api_routes():
        if route.name in NO_DATABASE_NEEDED | PUBLIC:
            continue
        for method in route.methods:
            response = no_database.request(method, route.path, json={}, headers=headers)
            assert response.status_code == 503, (method, route.path, response.text)
            _database_down(response)
            answered += 1
    assert answered > 90


def test_health_and_schema_without_database(no_database):
    health = no_database.get("/api/health")
    body = assert_envelope(health, 503, "dependency_unavailable")
    assert body["details"]["checks"]["database"]["status"] == "down"
    assert no_database.get("/api/schema").status_code == 200


# --- Redis (the cache) down ---------------------------------------------------------


@pytest.fixture
def cache_down(settings, closed_port):
    """The cache is a Redis that refuses connections, for this test only."""
    settings.CACHES = {
        "default": {
            "BACKEND": "bpmos.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def test_login_works_while_the_cache_is_down(http, make_user, cache_down):
    user = make_user("operator", username="olga")
    audit_before = AuditRecord.objects.count()
    response = http.post(
        "/api/auth/login", json={"username": "olga", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["username"] == "olga"
    assert body["token_type"] == "bearer"
    me = http.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access']}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user.pk
    assert AuditRecord.objects.count() == audit_before + 1


def test_a_wrong_password_is_still_401_while_the_cache_is_down(
    http, make_user, cache_down
):
    make_user("operator", username="olga")
    response = http.post(
        "/api/auth/login", json={"username": "olga", "password": "wrong"}
    )
    assert_envelope(response, 401, "invalid_credentials")


def test_a_stream_ticket_while_the_cache_is_down_is_503(http, make_user, cache_down):
    outbox_before = (OutboxEvent.objects.count(), User.objects.count())
    response = http.post(
        "/api/live-products/dispatchable/stream-ticket",
        headers=bearer(make_user("supervisor")),
    )
    body = assert_envelope(response, 503, "dependency_unavailable")
    assert {key: body[key] for key in CACHE_DOWN} == CACHE_DOWN
    assert (OutboxEvent.objects.count(), User.objects.count() - 1) == outbox_before
