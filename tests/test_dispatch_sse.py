"""The dispatch desk's live stream, end to end: a real HTTP client (httpx,
streaming) against a real daphne serving bpmos.asgi, moves made through the
REST API of the live test server.

As in tests/test_websocket.py the server runs in a subprocess on the test
database (so every test commits). On SQLite the channel layer is in memory:
events published by this process wait in the outbox and the server's pump
sends them. On PostgreSQL + Redis they go out from this process after commit.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from bpmos.accounts.authentication import refresh_token_for
from bpmos.accounts.services import user_set_active
from bpmos.events.models import OutboxEvent
from bpmos.events.services import layer_is_shared
from passports.dispatch import services as dispatch
from tests.conftest import PASSWORD, bearer
from tests.dispatch_support import latest_job, make_pack
from tests.support import WAIT_SECONDS, daphne_server

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/api/live-products/dispatchable/stream"
HEARTBEAT = 0.5  # the server's BPMOS_SSE_HEARTBEAT_SECONDS in these tests
ENVELOPE_KEYS = {"success", "error", "code", "details", "request_id"}


# --- the server (tests.support.daphne_server, as in tests/test_websocket.py) -------


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    """A daphne process serving bpmos.asgi on a free port; yields its base URL."""
    log_path = tmp_path_factory.mktemp("daphne-sse") / "daphne.log"
    with daphne_server(log_path, BPMOS_SSE_HEARTBEAT_SECONDS=str(HEARTBEAT)) as port:
        yield f"http://127.0.0.1:{port}"


# --- an SSE client ----------------------------------------------------------------


class Stream:
    """Reads SSE messages off a streaming httpx response (spec framing)."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self.lines = response.iter_lines()
        self.comments: list[str] = []
        self.retry: int | None = None

    def next(self, within: float = WAIT_SECONDS) -> dict | None:
        """The next message with data: {"id": str|None, "data": dict}; None at
        the end of the stream. Comments are collected in ``self.comments``.
        Fails if none came within ``within`` seconds: the heartbeats (every
        ``HEARTBEAT``) keep the client's read timeout from ever firing, so a
        message that never comes would be waited for until the token expires."""
        deadline = time.monotonic() + within
        event_id, data = None, []
        for line in self.lines:
            if not data and time.monotonic() > deadline:
                pytest.fail(f"no message within {within:g} s, only heartbeats")
            if line == "":
                if data:
                    return {"id": event_id, "data": json.loads("\n".join(data))}
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                self.retry = int(value)
        return None

    def next_of(self, kind: str) -> dict:
        message = self.next()
        assert message is not None, f"the stream ended before {kind}"
        assert message["data"]["type"] == kind, message
        return message


class open_stream:
    """``with open_stream(url, headers) as stream:`` (the response must be 200)."""

    def __init__(self, url: str, headers: dict | None = None, timeout: float = 5.0):
        self.client = httpx.Client(timeout=httpx.Timeout(timeout))
        self.url, self.headers = url, headers or {}

    def __enter__(self) -> Stream:
        self.cm = self.client.stream("GET", self.url, headers=self.headers)
        response = self.cm.__enter__()
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache, no-transform"
        return Stream(response)

    def __exit__(self, *exc) -> None:
        self.cm.__exit__(*exc)
        self.client.close()


def settle_outbox() -> None:
    """Mark what fixtures published as delivered (as it would have been), so a
    stream sees only what a test does next."""
    OutboxEvent.objects.filter(delivered_at__isnull=True).update(
        delivered_at=timezone.now()
    )


def token(user, lifetime: timedelta | None = None) -> dict[str, str]:
    access = AccessToken.for_user(user)
    if lifetime is not None:
        access.set_exp(lifetime=lifetime)
    return {"Authorization": f"Bearer {access}"}


def fetch(url: str, headers: dict | None = None) -> httpx.Response:
    """A GET that fails at once, instead of reading forever, if the stream opens."""
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", url, headers=headers or {}) as response,
    ):
        if response.headers["content-type"].startswith("text/event-stream"):
            pytest.fail(f"the stream opened ({response.status_code})")
        response.read()
        return response


def refused(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert (body["success"], body["code"]) == (False, code)
    assert response.headers["x-request-id"] == body["request_id"]
    return body


# --- the contract ----------------------------------------------------------------


def test_client_receives_product_moved_to_past_after_a_rest_move(
    server, http, make_user
):
    sam = make_user("supervisor", username="sam")
    olga = make_user("operator", username="olga")
    pack = make_pack(sam, "PK-001")
    make_pack(sam, "PK-002")
    job = latest_job(pack)
    settle_outbox()
    with open_stream(server + STREAM, token(olga)) as stream:
        hello = stream.next_of("connection_established")
        assert hello["id"] is None  # notices never move the resume point
        assert stream.retry == 3000
        data = hello["data"]["data"]
        assert data["user"] == {"id": olga.pk, "username": "olga", "role": "operator"}
        assert (data["topic"], data["lastEventId"]) == ("dispatch", None)
        assert data["heartbeatSeconds"] == HEARTBEAT

        response = http.post(
            "/api/live-products/dispatchable",
            json={"productId": "PK-001", "jobId": str(job.pk), "carrier": "BlueDart"},
            headers=bearer(sam),
        )
        assert response.status_code == 200, response.text

        moved_row = OutboxEvent.objects.get(name="product_moved_to_past")
        update_row = OutboxEvent.objects.filter(
            name="dispatchable_products_update"
        ).latest("pk")
        moved = stream.next_of("product_moved_to_past")
        assert moved == {
            "id": str(moved_row.pk),
            "data": {"type": "product_moved_to_past", "data": moved_row.data},
        }
        assert {k: v for k, v in moved_row.data.items() if k != "movedAt"} == {
            "productId": "PK-001",
            "jobId": str(job.pk),
            "reason": "dispatched",
            "currentState": "OFF",
        }
        update = stream.next_of("dispatchable_products_update")
        assert update == {
            "id": str(update_row.pk),
            "data": {
                "type": "dispatchable_products_update",
                "data": {"productId": "PK-001", "isDispatchable": False, "count": 1},
            },
        }


def test_reactivation_is_broadcast(server, http, make_user):
    sam = make_user("supervisor")
    pack = make_pack(sam, "PK-010")
    dispatch.product_move_to_past(passport_id=pack.pk, reason="recount", actor=sam)
    settle_outbox()
    with open_stream(server + STREAM, token(make_user("auditor"))) as stream:
        stream.next_of("connection_established")
        response = http.post(
            "/api/products/lifecycle",
            json={"productId": "PK-010", "action": "reactivate"},
            headers=bearer(sam),
        )
        assert response.status_code == 200, response.text
        reactivated = stream.next_of("product_reactivated")["data"]["data"]
        assert (reactivated["productId"], reactivated["currentState"]) == (
            "PK-010",
            "ON",
        )
        update = stream.next_of("dispatchable_products_update")["data"]["data"]
        assert update == {"productId": "PK-010", "isDispatchable": True, "count": 1}


def test_hold_and_release_are_broadcast(server, http, make_user):
    """A hold takes a live product out of the dispatchable list and its release
    puts it back: each is announced with the list's new count."""
    sam = make_user("supervisor")
    make_pack(sam, "PK-015")
    make_pack(sam, "PK-016")
    settle_outbox()
    with open_stream(server + STREAM, token(make_user("operator"))) as stream:
        stream.next_of("connection_established")
        held = http.post(
            "/api/passports/PK-015/events",
            json={"kind": "held", "data": {"reason": "Swollen cell suspected"}},
            headers=bearer(sam),
        )
        assert held.status_code == 201, held.text
        update = stream.next_of("dispatchable_products_update")["data"]["data"]
        assert update == {"productId": "PK-015", "isDispatchable": False, "count": 1}
        released = http.post(
            "/api/passports/PK-015/events",
            json={
                "kind": "released",
                "data": {"note": "Re-inspected"},
                "password": PASSWORD,
            },
            headers=bearer(sam),
        )
        assert released.status_code == 201, released.text
        update = stream.next_of("dispatchable_products_update")["data"]["data"]
        assert update == {"productId": "PK-015", "isDispatchable": True, "count": 2}


def test_refused_move_broadcasts_nothing(server, http, make_user):
    sam = make_user("supervisor")
    held = make_pack(sam, "PK-020", until="held")
    make_pack(sam, "PK-021")
    settle_outbox()
    with open_stream(server + STREAM, token(sam)) as stream:
        stream.next_of("connection_established")
        refused_move = http.post(
            "/api/live-products/dispatchable",
            json={"productId": held.serial},
            headers=bearer(sam),
        )
        assert refused_move.status_code == 409
        http.post(
            "/api/live-products/dispatchable",
            json={"productId": "PK-021", "reason": "recount"},
            headers=bearer(sam),
        )
        # The first thing on the stream is the second (allowed) move.
        moved = stream.next_of("product_moved_to_past")["data"]["data"]
        assert (moved["productId"], moved["reason"]) == ("PK-021", "recount")


# --- resume ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["header", "query"])
def test_resume_replays_what_was_missed(server, make_user, how):
    sam = make_user("supervisor")
    first, second = make_pack(sam, "PK-030"), make_pack(sam, "PK-031")
    settle_outbox()
    seen = OutboxEvent.objects.latest("pk").pk
    dispatch.product_move_to_past(passport_id=first.pk, reason="recount", actor=sam)
    dispatch.product_move_to_past(passport_id=second.pk, reason="recount", actor=sam)
    missed = [
        row
        for row in OutboxEvent.objects.filter(pk__gt=seen).order_by("pk")
        if "dispatch" in row.topics
    ]
    assert [row.name for row in missed] == [
        "product_moved_to_past",
        "dispatchable_products_update",
    ] * 2
    headers = token(sam)
    url = server + STREAM
    if how == "header":
        headers["Last-Event-ID"] = str(seen)
    else:
        url += f"?lastEventId={seen}"
    with open_stream(url, headers) as stream:
        hello = stream.next_of("connection_established")
        assert hello["data"]["data"]["lastEventId"] == seen
        replayed = [stream.next() for _ in missed]
        assert replayed == [
            {"id": str(row.pk), "data": {"type": row.name, "data": row.data}}
            for row in missed
        ]
        notice = stream.next_of("replayed")
        assert notice["data"]["data"] == {"count": 4, "truncated": False}
        # Delivered live as well (embedded mode's pump): dropped as duplicates;
        # the next message is a heartbeat-free, fresh event.
        dispatch.product_reactivate(passport_id=first.pk, actor=sam)
        fresh = stream.next_of("product_reactivated")
        assert int(fresh["id"]) > missed[-1].pk


def test_bad_last_event_id_is_400(server, make_user):
    response = httpx.get(
        server + STREAM,
        headers={**token(make_user("planner")), "Last-Event-ID": "yesterday"},
    )
    body = refused(response, 400, "validation_error")
    assert body["details"] == {"lastEventId": ["A whole number."]}


# --- keeping the connection ------------------------------------------------------


def test_heartbeat_comments_keep_an_idle_stream_alive(server, make_user):
    with open_stream(server + STREAM, token(make_user("planner"))) as stream:
        stream.next_of("connection_established")
        started = time.monotonic()
        lines = stream.lines
        while len(stream.comments) < 2:
            line = next(lines)
            if line.startswith(":"):
                stream.comments.append(line[1:].strip())
        assert stream.comments == ["heartbeat", "heartbeat"]
        assert time.monotonic() - started < 4 * HEARTBEAT


def test_stream_ends_when_its_token_expires(server, make_user):
    user = make_user("planner")
    with open_stream(server + STREAM, token(user, timedelta(seconds=2))) as stream:
        stream.next_of("connection_established")
        closing = stream.next_of("connection_closing")
        assert closing == {
            "id": None,
            "data": {"type": "connection_closing", "data": {"reason": "token_expired"}},
        }
        assert stream.next() is None  # the response is complete


def test_disconnect_leaves_the_group(server, make_user):
    if not layer_is_shared():
        pytest.skip("the in-memory layer lives inside the server process")
    import redis

    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    key = f"{prefix}:group:topic.dispatch"
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(key)
    with open_stream(server + STREAM, token(make_user("planner"))) as stream:
        stream.next_of("connection_established")
        assert client.zcard(key) == 1
    deadline = time.monotonic() + 5
    while client.zcard(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.zcard(key) == 0


# --- authentication ----------------------------------------------------------------


def test_no_credentials_is_401(server):
    response = httpx.get(server + STREAM)
    body = refused(response, 401, "not_authenticated")
    assert "ticket" in body["error"]
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Authorization": "Bearer not-a-jwt"}, "token_not_valid"),
        ({"Authorization": "Basic c2FtOnNlY3JldA=="}, "bad_authorization_header"),
    ],
)
def test_bad_credentials_are_401(server, headers, code):
    refused(httpx.get(server + STREAM, headers=headers), 401, code)


def test_expired_token_and_inactive_user_are_401(server, make_user):
    expired = token(make_user("planner"), timedelta(seconds=-1))
    refused(httpx.get(server + STREAM, headers=expired), 401, "token_not_valid")
    inactive = token(make_user("planner", is_active=False))
    refused(httpx.get(server + STREAM, headers=inactive), 401, "user_inactive")


def test_token_in_the_url_is_not_accepted(server, make_user):
    jwt = token(make_user("planner"))["Authorization"].split()[1]
    response = httpx.get(f"{server}{STREAM}?token={jwt}")
    refused(response, 401, "not_authenticated")
    response = httpx.get(f"{server}{STREAM}?ticket={jwt}")
    refused(response, 401, "ticket_not_valid")


def test_ticket_opens_one_stream_for_a_plain_event_source(server, http, make_user):
    ada = make_user("auditor", username="ada")
    issued = http.post(
        "/api/live-products/dispatchable/stream-ticket", headers=bearer(ada)
    )
    assert issued.status_code == 200, issued.text
    url = server + issued.json()["url"]
    with open_stream(url) as stream:
        hello = stream.next_of("connection_established")["data"]["data"]
        assert hello["user"] == {"id": ada.pk, "username": "ada", "role": "auditor"}
        # A reconnection with the same (used) ticket is refused.
        refused(httpx.get(url), 401, "ticket_not_valid")


def test_ticket_of_a_user_deactivated_since_is_refused(server, http, make_user):
    user = make_user("planner")
    issued = http.post(
        "/api/live-products/dispatchable/stream-ticket", headers=bearer(user)
    )
    user.is_active = False
    user.save(update_fields=["is_active"])
    refused(httpx.get(server + issued.json()["url"]), 401, "user_inactive")


def test_ticket_issued_before_a_deactivation_is_refused_after_reactivation(
    server, http, make_user
):
    """Deactivated and reactivated within the ticket's 30 s: the ticket is of
    the old token generation, refused as the token that asked for it is."""
    admin, user = make_user("admin"), make_user("planner", username="pia")
    issued = http.post(
        "/api/live-products/dispatchable/stream-ticket", headers=bearer(user)
    )
    assert issued.status_code == 200, issued.text
    user_set_active(user_id=user.pk, active=False, actor=admin)
    user_set_active(user_id=user.pk, active=True, actor=admin)
    body = refused(fetch(server + issued.json()["url"]), 401, "token_not_valid")
    assert body["error"] == (
        "Token was issued before the account was deactivated; sign in again."
    )
    # Exactly as the bearer path refuses the token that asked for the ticket.
    old = refused(fetch(server + STREAM, token(user)), 401, body["code"])
    assert old["error"] == body["error"]

    # Signed in again (a token of the new generation), a new ticket opens it.
    user.refresh_from_db()
    assert user.token_generation == 1
    fresh = {"Authorization": f"Bearer {refresh_token_for(user).access_token}"}
    issued = http.post("/api/live-products/dispatchable/stream-ticket", headers=fresh)
    assert issued.status_code == 200, issued.text
    with open_stream(server + issued.json()["url"]) as stream:
        hello = stream.next_of("connection_established")["data"]["data"]
        assert hello["user"] == {"id": user.pk, "username": "pia", "role": "planner"}


def test_ticket_needs_a_token(server):
    response = httpx.post(server + "/api/live-products/dispatchable/stream-ticket")
    refused(response, 401, "not_authenticated")


def test_other_methods_on_the_stream_path_go_to_django(server, make_user):
    response = httpx.post(server + STREAM, headers=token(make_user("admin")))
    body = refused(response, 405, "method_not_allowed")
    assert body["error"] == 'Method "POST" not allowed.'
