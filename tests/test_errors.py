"""The one error envelope (docs/design.md §4) for every status, and X-Request-ID.

The 503 envelope is tested with the health endpoint in tests/test_health.py.
"""

import pytest

from bpmos.accounts.models import User
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from tests.conftest import PASSWORD, bearer
from tests.support import assert_envelope
from tests.urls_crash import SECRET

pytestmark = pytest.mark.django_db(transaction=True)

NEW_USER = {"username": "newbie", "password": "Plant-Floor-2026!", "role": "operator"}


def _row_counts() -> tuple[int, int, int]:
    return (
        User.objects.count(),
        AuditRecord.objects.count(),
        OutboxEvent.objects.count(),
    )


def _no_leak(response) -> None:
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    assert "<html" not in response.text.lower()


# --- 400 ------------------------------------------------------------------------


def test_validation_error_is_400_with_field_details(http, make_user):
    admin = make_user("admin")
    before = _row_counts()
    response = http.post(
        "/api/auth/register",
        json={"username": "bad name!", "password": "x", "role": "wizard"},
        headers=bearer(admin),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert set(body["details"]) == {"username", "role"}
    assert body["details"]["role"] == ['"wizard" is not a valid choice.']
    assert _row_counts() == before


def test_malformed_json_is_400_parse_error(http, make_user):
    admin = make_user("admin")
    before = _row_counts()
    response = http.post(
        "/api/auth/register",
        content=b'{"username": "newbie",',
        headers={**bearer(admin), "Content-Type": "application/json"},
    )
    assert_envelope(response, 400, "parse_error")
    assert _row_counts() == before


# --- 401 ------------------------------------------------------------------------


def test_no_token_is_401_and_changes_nothing(http, db):
    before = _row_counts()
    response = http.post("/api/auth/register", json=NEW_USER)
    body = assert_envelope(response, 401, "not_authenticated")
    assert body["error"] == "Authentication credentials were not provided."
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert _row_counts() == before


def test_bad_token_is_401_and_changes_nothing(http, db):
    before = _row_counts()
    response = http.post(
        "/api/auth/register",
        json=NEW_USER,
        headers={"Authorization": "Bearer not-a-jwt"},
    )
    assert_envelope(response, 401, "token_not_valid")
    assert _row_counts() == before


# --- 403 ------------------------------------------------------------------------


def test_wrong_role_is_403_and_changes_nothing(http, make_user):
    supervisor = make_user("supervisor")
    before = _row_counts()
    response = http.post(
        "/api/auth/register", json=NEW_USER, headers=bearer(supervisor)
    )
    body = assert_envelope(response, 403, "permission_denied")
    assert body["error"] == "Your role may not perform this action."
    assert _row_counts() == before


# --- 404 ------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path", ["/api/no-such-thing", "/api/", "/api", "/api/auth/users/abc"]
)
def test_unknown_api_path_is_404_envelope(http, settings, debug, path):
    settings.DEBUG = debug  # DEBUG's technical 404 page must not leak either
    response = http.get(path)
    assert_envelope(response, 404, "not_found")
    _no_leak(response)
    # Replacing Django's page keeps the headers the other middleware set on it.
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_object_is_404_envelope(http, make_user):
    admin = make_user("admin")
    response = http.get("/api/auth/users/987654", headers=bearer(admin))
    assert_envelope(response, 404, "not_found")


def test_unknown_object_in_a_write_is_404_and_changes_nothing(http, make_user):
    admin = make_user("admin")
    before = _row_counts()
    response = http.post("/api/auth/users/987654/deactivate", headers=bearer(admin))
    body = assert_envelope(response, 404, "not_found")
    assert body["error"] == "User 987654 does not exist."
    assert _row_counts() == before


# --- 405, 409, 415, 429 ---------------------------------------------------------


def test_wrong_method_is_405_envelope(http, make_user):
    response = http.delete("/api/auth/me", headers=bearer(make_user("admin")))
    body = assert_envelope(response, 405, "method_not_allowed")
    assert body["error"] == 'Method "DELETE" not allowed.'


def test_last_admin_rule_is_409_and_changes_nothing(http, make_user):
    admin = make_user("admin")
    before = _row_counts()
    response = http.patch(
        f"/api/auth/users/{admin.pk}/role",
        json={"role": "operator"},
        headers=bearer(admin),
    )
    assert_envelope(response, 409, "last_admin")
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert _row_counts() == before


def test_duplicate_username_is_409_and_changes_nothing(http, make_user):
    admin = make_user("admin")
    make_user("operator", username="newbie")
    before = _row_counts()
    response = http.post("/api/auth/register", json=NEW_USER, headers=bearer(admin))
    assert_envelope(response, 409, "username_taken")
    assert _row_counts() == before


def test_form_encoded_body_is_415_and_changes_nothing(http, make_user):
    admin = make_user("admin")
    before = _row_counts()
    response = http.post("/api/auth/register", data=NEW_USER, headers=bearer(admin))
    body = assert_envelope(response, 415, "unsupported_media_type")
    assert "application/x-www-form-urlencoded" in body["error"]
    assert _row_counts() == before


def test_repeated_failed_logins_are_429_envelope(http, make_user):
    make_user("operator", username="olga")
    credentials = {"username": "olga", "password": "wrong"}
    for _ in range(5):
        assert_envelope(
            http.post("/api/auth/login", json=credentials), 401, "invalid_credentials"
        )
    response = http.post(
        "/api/auth/login", json={"username": "olga", "password": PASSWORD}
    )
    body = assert_envelope(response, 429, "throttled")
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert body["details"] == {"retry_after_seconds": retry_after}


# --- 400 for what never reaches a view ---------------------------------------------


def test_disallowed_host_under_api_is_400_envelope(http, db):
    # Raised in CommonMiddleware, before any view: the envelope middleware must
    # wrap the other middleware to catch it.
    response = http.get("/api/auth/me", headers={"Host": "evil.example"})
    assert_envelope(response, 400, "bad_request")
    _no_leak(response)


# --- 500 --------------------------------------------------------------------------


@pytest.mark.urls("tests.urls_crash")
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/test-crash/drf", "/api/test-crash/django"])
def test_unhandled_exception_is_500_envelope_without_trace(http, settings, debug, path):
    settings.DEBUG = debug  # DEBUG's technical 500 page must not leak either
    response = http.get(path)
    body = assert_envelope(response, 500, "server_error")
    assert body["error"] == "An unexpected error occurred; it has been logged."
    _no_leak(response)


# --- X-Request-ID -----------------------------------------------------------------


def test_well_formed_request_id_is_echoed(http, db):
    sent = "mobile-7f3a.42:retry_1"
    response = http.get("/api/auth/me", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent
    assert response.json()["request_id"] == sent


@pytest.mark.parametrize("sent", ["a" * 129, "has space", "semi;colon", "ünï"])
def test_malformed_request_id_is_replaced(http, db, sent):
    response = http.get("/api/auth/me", headers={"X-Request-ID": sent.encode("utf-8")})
    replaced = response.headers["X-Request-ID"]
    assert replaced != sent
    assert len(replaced) == 32
    assert int(replaced, 16) >= 0
    assert response.json()["request_id"] == replaced


@pytest.mark.parametrize("sent", ["abc\n", "abc\ndef", "abc\r\nSet-Cookie: x=1"])
def test_request_id_with_newline_is_replaced(client, db, sent):
    # An HTTP client cannot send these; Django's test client can, and a proxy
    # that unfolds headers might. A trailing newline once slipped through and
    # made Django raise BadHeaderError (a 500) when echoing it.
    response = client.get("/api/auth/me", headers={"X-Request-ID": sent})
    assert_envelope(response, 401, "not_authenticated")
    assert "\n" not in response.headers["X-Request-ID"]
    assert len(response.headers["X-Request-ID"]) == 32
    assert "Set-Cookie" not in response.headers


def test_request_id_is_fresh_per_request(http, db):
    first = http.get("/api/auth/me").headers["X-Request-ID"]
    second = http.get("/api/auth/me").headers["X-Request-ID"]
    assert first != second


def test_success_responses_carry_request_id(http, make_user):
    response = http.get("/api/auth/me", headers=bearer(make_user("operator")))
    assert response.status_code == 200
    assert len(response.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("path", "status"), [("/admin/login/", 200), ("/no-such-page", 404)]
)
def test_non_api_responses_carry_request_id_and_no_envelope(http, db, path, status):
    response = http.get(path, headers={"X-Request-ID": "web-1"})
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "web-1"
    assert response.headers["Content-Type"].startswith("text/html")
