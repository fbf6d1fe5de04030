"""Attacks from the OWASP API Security Top 10 (2023), each tried through a real
HTTP client against the live server: forged and misused tokens (API2),
object-level authorization (API1), mass assignment (API3), brute force and
rate limits (API4), address spoofing past a throttle. docs/security.md maps
every item to where it is handled and which test proves it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from bpmos.accounts.authentication import refresh_token_for
from bpmos.accounts.models import Role, User
from elog.models import AuditRecord
from passports.models import EventKind, Passport, PassportEvent
from tests.conftest import PASSWORD, bearer
from tests.factories_passports_api import register

pytestmark = pytest.mark.django_db(transaction=True)

ME = "/api/auth/me"
USERS = "/api/auth/users"


def _claims(user: User) -> dict:
    """The claims of a genuine access token of ``user``."""
    return dict(refresh_token_for(user).access_token.payload)


def _b64(part: dict) -> str:
    raw = json.dumps(part, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(payload: dict, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(
        payload, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm
    )


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused(response, status: int = 401) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert set(body) == {"success", "error", "code", "details", "request_id"}
    return body


# --- API2: broken authentication ------------------------------------------------


def test_the_genuine_token_works(http, make_user):
    """The control for every forged token below: the same claims, properly
    signed, are accepted."""
    user = make_user(Role.SUPERVISOR)
    response = http.get(ME, headers=_auth(_sign(_claims(user))))
    assert response.status_code == 200
    assert response.json()["username"] == user.username


def test_a_token_with_alg_none_is_refused(http, make_user):
    user = make_user(Role.ADMIN)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user))}."
    assert _refused(http.get(ME, headers=_auth(unsigned)))["code"] == "token_not_valid"


def test_a_token_signed_with_another_key_is_refused(http, make_user):
    user = make_user(Role.ADMIN)
    forged = _sign(_claims(user), key="not-the-plant-key-" + "x" * 40)
    assert _refused(http.get(ME, headers=_auth(forged)))["code"] == "token_not_valid"


def test_a_token_signed_with_another_algorithm_is_refused(http, make_user):
    """The right key under HS512: only the configured algorithm is accepted."""
    user = make_user(Role.ADMIN)
    forged = _sign(_claims(user), algorithm="HS512")
    assert _refused(http.get(ME, headers=_auth(forged)))["code"] == "token_not_valid"


def test_a_token_whose_payload_was_edited_is_refused(http, make_user):
    """An operator's genuine token with its user id changed to the admin's."""
    operator, admin = make_user(Role.OPERATOR), make_user(Role.ADMIN)
    header, _, signature = str(refresh_token_for(operator).access_token).split(".")
    claims = _claims(operator) | {"user_id": str(admin.pk)}
    edited = f"{header}.{_b64(claims)}.{signature}"
    assert _refused(http.get(ME, headers=_auth(edited)))["code"] == "token_not_valid"


def test_an_expired_token_is_refused(http, make_user):
    user = make_user(Role.ADMIN)
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = _sign(_claims(user) | {"exp": int(past.timestamp())})
    body = _refused(http.get(ME, headers=_auth(expired)))
    assert body["code"] == "token_not_valid"


def test_a_refresh_token_is_not_an_access_token(http, make_user):
    user = make_user(Role.ADMIN)
    refresh = str(refresh_token_for(user))
    assert _refused(http.get(ME, headers=_auth(refresh)))["code"] == "token_not_valid"


def test_a_refresh_token_reused_after_rotation_is_refused(http, make_user):
    user = make_user(Role.OPERATOR)
    old = str(refresh_token_for(user))
    first = http.post("/api/auth/refresh", json={"refresh": old})
    assert first.status_code == 200
    assert first.json()["refresh"] != old
    _refused(http.post("/api/auth/refresh", json={"refresh": old}))
    # the rotated one still works: the reuse did not lock the user out
    again = http.post("/api/auth/refresh", json={"refresh": first.json()["refresh"]})
    assert again.status_code == 200


def test_a_token_of_a_user_who_no_longer_exists_is_refused(http, make_user):
    user = make_user(Role.ADMIN)
    token = _sign(_claims(user))
    User.objects.filter(pk=user.pk).delete()
    _refused(http.get(ME, headers=_auth(token)))


def test_a_deactivated_users_token_is_refused(http, make_user):
    user = make_user(Role.SUPERVISOR)
    headers = bearer(user)
    assert http.get(ME, headers=headers).status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    _refused(http.get(ME, headers=headers))


def test_the_role_claim_grants_nothing(http, make_user):
    """The token's ``role`` claim is for the UI; the server reads the role from
    the database, so an operator's token claiming "admin" (even one signed
    with the real key) cannot list users."""
    operator = make_user(Role.OPERATOR)
    claims = _claims(operator) | {"role": "admin"}
    response = http.get(USERS, headers=_auth(_sign(claims)))
    assert _refused(response, 403)["code"] == "permission_denied"


def test_a_demotion_takes_effect_on_the_next_request(http, make_user):
    user = make_user(Role.ADMIN)
    headers = bearer(user)
    assert http.get(USERS, headers=headers).status_code == 200
    user.role = Role.OPERATOR
    user.apply_role_flags()
    user.save()
    _refused(http.get(USERS, headers=headers), 403)


# --- API3: broken object property level authorization (mass assignment) ----------


def test_register_ignores_privilege_fields_in_the_body(http, make_user):
    admin = make_user(Role.ADMIN)
    response = http.post(
        "/api/auth/register",
        headers=bearer(admin),
        json={
            "username": "mallory",
            "password": "a-long-enough-password-2026",
            "role": "operator",
            "is_superuser": True,
            "is_staff": True,
            "token_generation": 99,
            "id": 1,
        },
    )
    assert response.status_code == 201, response.text
    created = User.objects.get(username="mallory")
    assert (created.role, created.is_superuser, created.is_staff) == (
        "operator",
        False,
        False,
    )
    assert created.token_generation == 0


def test_a_passport_event_cannot_set_the_ledgers_own_fields(http, make_user):
    """Hashes, versions and the actor are the ledger's: a body naming them is
    ignored, and the stored event is hashed and attributed by the server."""
    supervisor = make_user(Role.SUPERVISOR)
    pack = register(supervisor, "SEC-00001")
    other = make_user(Role.ADMIN)
    response = http.post(
        f"/api/passports/{pack.uuid}/events",
        headers=bearer(supervisor),
        json={
            "kind": EventKind.QA_PASSED,
            "data": {},
            "hash": "0" * 64,
            "prevHash": "f" * 64,
            "version": 999,
            "actor": other.pk,
            "actorId": other.pk,
        },
    )
    assert response.status_code == 201, response.text
    event = PassportEvent.objects.filter(passport=pack).order_by("-version").first()
    assert event.kind == EventKind.QA_PASSED
    assert event.version == Passport.objects.get(pk=pack.pk).version != 999
    assert event.actor_id == supervisor.pk
    assert event.hash != "0" * 64
    assert event.prev_hash != "f" * 64


# --- API4: unrestricted resource consumption -------------------------------------


def test_a_login_lockout_is_audited_once(http, make_user):
    make_user(Role.OPERATOR, username="olga")
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login_failures"][0])
    for _ in range(limit + 3):
        http.post("/api/auth/login", json={"username": "olga", "password": "wrong"})
    locked = AuditRecord.objects.filter(action="user.login_locked_out")
    assert locked.count() == 1
    record = locked.get()
    assert record.after["username"] == "olga"
    assert record.after["limits"] == ["address and username"]
    assert record.after["seconds"] == 60
    # the lockout is real: even the right password waits
    right = http.post(
        "/api/auth/login", json={"username": "olga", "password": PASSWORD}
    )
    assert _refused(right, 429)["code"] == "throttled"


def test_no_lockout_is_audited_below_the_limit(http, make_user):
    make_user(Role.OPERATOR, username="olga")
    for _ in range(2):
        http.post("/api/auth/login", json={"username": "olga", "password": "wrong"})
    assert not AuditRecord.objects.filter(action="user.login_locked_out").exists()
    assert AuditRecord.objects.filter(action="user.login_failed").count() == 2


@pytest.fixture
def low_rates(settings):
    """Rates low enough to reach in a test (the throttles read them per request)."""
    rates = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    rates.update(public_passport="3/min", stream_ticket="2/min")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": rates,
    }
    from rest_framework.throttling import SimpleRateThrottle

    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    yield rates
    SimpleRateThrottle.THROTTLE_RATES = original


def test_the_public_passport_is_rate_limited_per_address(http, make_user, low_rates):
    pack = register(make_user(Role.SUPERVISOR), "SEC-00002")
    url = f"/api/passports/{pack.uuid}/public"
    statuses = [http.get(url).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = http.get(url)
    assert _refused(throttled, 429)["code"] == "throttled"
    assert int(throttled.headers["Retry-After"]) > 0


def test_x_forwarded_for_does_not_reset_the_limit(http, make_user, low_rates):
    """No proxy is configured (``BPMOS_NUM_PROXIES=0``): a client that sends a
    new X-Forwarded-For each time is still counted by its own address."""
    pack = register(make_user(Role.SUPERVISOR), "SEC-00003")
    url = f"/api/passports/{pack.uuid}/public"
    statuses = [
        http.get(url, headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_stream_tickets_are_rate_limited_per_user(http, make_user, low_rates):
    ada, bob = make_user(Role.SUPERVISOR), make_user(Role.SUPERVISOR)
    url = "/api/live-products/dispatchable/stream-ticket"
    statuses = [http.post(url, headers=bearer(ada)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # another user is counted apart
    assert http.post(url, headers=bearer(bob)).status_code == 200


def test_a_down_cache_does_not_close_the_public_passport(
    http, make_user, low_rates, monkeypatch
):
    """The throttle's cache unreachable: the passport is served (and a warning
    logged), as the login throttle does."""
    pack = register(make_user(Role.SUPERVISOR), "SEC-00004")
    from bpmos import throttles

    class DownCache:
        def get(self, *args, **kwargs):
            raise ConnectionError("cache down")

        set = get

    monkeypatch.setattr(throttles.PublicPassportThrottle, "cache", DownCache())
    url = f"/api/passports/{pack.uuid}/public"
    assert [http.get(url).status_code for _ in range(5)] == [200] * 5


def test_a_forged_refresh_token_blacklists_nothing(http, make_user):
    """A refresh token signed with another key is refused before anything is
    written: no token is blacklisted, none is issued."""
    from rest_framework_simplejwt.token_blacklist.models import (
        BlacklistedToken,
        OutstandingToken,
    )

    user = make_user(Role.OPERATOR)
    genuine = RefreshToken.for_user(user)
    counts = (OutstandingToken.objects.count(), BlacklistedToken.objects.count())
    forged = _sign(dict(genuine.payload), key="y" * 50)
    _refused(http.post("/api/auth/refresh", json={"refresh": forged}))
    assert (
        OutstandingToken.objects.count(),
        BlacklistedToken.objects.count(),
    ) == counts
    # the genuine one, same jti, still rotates
    assert (
        http.post("/api/auth/refresh", json={"refresh": str(genuine)}).status_code
        == 200
    )


# --- API4: bodies and messages past their limits --------------------------------


def test_a_json_body_past_the_limit_is_413_and_creates_nothing(
    http, make_user, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    admin = make_user(Role.ADMIN)
    users = User.objects.count()
    body = {
        "username": "bulky",
        "password": "a-long-enough-password-2026",
        "role": "operator",
        "first_name": "x" * 20_000,
    }
    response = http.post("/api/auth/register", headers=bearer(admin), json=body)
    refused = _refused(response, 413)
    assert refused["code"] == "payload_too_large"
    assert refused["details"]["limit"] == 10_000
    assert User.objects.count() == users
    # the same request under the limit gets as far as validation
    body["first_name"] = "x" * 200
    assert (
        http.post("/api/auth/register", headers=bearer(admin), json=body).status_code
        == 400
    )


def test_the_login_refuses_a_huge_body_before_reading_it(http, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = http.post(
        "/api/auth/login",
        content=b'{"username": "' + b"a" * 50_000 + b'", "password": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert _refused(response, 413)["code"] == "payload_too_large"
    assert not AuditRecord.objects.filter(action="user.login_failed").exists()


def test_the_json_parser_reads_no_further_than_the_limit(settings):
    """A body without a Content-Length (chunked, behind gunicorn) is bounded
    where it is read."""
    import io

    from bpmos.parsers import BodyTooLarge, JSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    class Counting(io.BytesIO):
        asked: list = []

        def read(self, size=-1):
            self.asked.append(size)
            return super().read(size)

    stream = Counting(b'{"a": "' + b"x" * 10_000 + b'"}')
    with pytest.raises(BodyTooLarge):
        JSONParser().parse(stream, "application/json", {})
    assert stream.asked == [101]
    assert JSONParser().parse(io.BytesIO(b'{"a": 1}'), "application/json", {}) == {
        "a": 1
    }


def test_an_upload_past_its_limit_is_413(http, make_user, settings):
    settings.BPMOS_MAX_UPLOAD_BYTES = 5_000
    supervisor = make_user(Role.SUPERVISOR)
    response = http.post(
        "/api/lims/import",
        headers=bearer(supervisor),
        files={"file": ("results.csv", b"a,b\n" + b"1,2\n" * 5_000, "text/csv")},
    )
    assert _refused(response, 413)["code"] == "payload_too_large"


# a bound on waiting, not a timing: on a loaded CI machine 5 s was once too short
WAIT = 30


def test_a_websocket_message_past_its_limit_closes_with_4413(tmp_path, make_user):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from bpmos.events.consumers import MAX_MESSAGE_CHARS
    from tests.support import daphne_server

    user = make_user(Role.PLANNER)
    with (
        daphne_server(tmp_path / "daphne.log") as port,
        connect(
            f"ws://127.0.0.1:{port}/ws/events/",
            additional_headers=bearer(user),
            proxy=None,
            open_timeout=WAIT,
            max_size=None,
        ) as ws,
    ):
        assert json.loads(ws.recv(timeout=WAIT))["type"] == "authenticated"
        # a message just under the limit is answered as usual
        message = {"action": "subscribe", "topics": ["lines"], "pad": ""}
        message["pad"] = "x" * (MAX_MESSAGE_CHARS - len(json.dumps(message)))
        ws.send(json.dumps(message))
        assert json.loads(ws.recv(timeout=WAIT))["type"] == "subscribed"
        ws.send(
            json.dumps({"action": "subscribe", "topics": ["x" * MAX_MESSAGE_CHARS]})
        )
        reply = json.loads(ws.recv(timeout=WAIT))
        assert (reply["type"], reply["code"]) == ("error", "message_too_large")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT)
        assert closed.value.rcvd.code == 4413


def test_every_csv_the_plant_hands_out_is_written_by_csvsafe():
    """CSV injection in every export: the returns, the reports, the logs and
    the back-office exports all write through ``bpmos.csvsafe`` (each tested
    with a hostile cell: tests/test_compliance_returns.py,
    tests/test_compliance_reports.py, tests/test_logs_stream.py,
    tests/test_admin_backoffice.py, tests/test_inventory_admin.py). No other
    module may write CSV itself (reading one, as the LIMS import does, is fine)."""
    import ast
    from pathlib import Path

    root = Path(settings.BASE_DIR)
    apps = ("bpmos", "compliance", "elog", "exceptions", "inventory", "lines")
    apps += ("passports", "runbooks", "scada")
    writers = []
    for path in sorted(p for app in apps for p in (root / app).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "csv"
                and node.attr in ("writer", "DictWriter")
            ):
                writers.append(str(path.relative_to(root)))
    assert sorted(set(writers)) == ["bpmos/csvsafe.py"]
