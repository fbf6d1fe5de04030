"""The live-events WebSocket, end to end: a real client against a real daphne.

The server runs in a subprocess on the test database, so every test commits
(transactional db) for the server to see its rows. On SQLite the layer is
in-memory: events published here reach the server's clients through its outbox
pump. On PostgreSQL + Redis they go out from this process right after commit.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bpmos.accounts.authentication import refresh_token_for
from bpmos.accounts.services import user_role_change, user_set_active
from bpmos.events.models import OutboxEvent, OutboxTopic
from bpmos.events.services import events_redeliver, layer_is_shared
from tests.support import daphne_server

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_TIMEOUT = 1.0  # the server's BPMOS_WS_AUTH_TIMEOUT in these tests
DEAD_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]
        },
    }
}


# --- the server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    """A daphne process serving bpmos.asgi on a free port; yields its ws URL."""
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    with daphne_server(log_path, BPMOS_WS_AUTH_TIMEOUT=str(AUTH_TIMEOUT)) as port:
        yield f"ws://127.0.0.1:{port}/ws/events/"


# --- client helpers ---------------------------------------------------------------


def token_for(user, lifetime: timedelta | None = None) -> str:
    token = AccessToken.for_user(user)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    return str(token)


def open_ws(url: str, user=None, *, token: str | None = None) -> ClientConnection:
    """Connect; with ``user`` or ``token``, authenticate by the handshake header."""
    if user is not None:
        token = token_for(user)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return connect(url, additional_headers=headers, proxy=None, open_timeout=5)


def recv(ws: ClientConnection, timeout: float = 5.0) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def recv_type(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict:
    message = recv(ws, timeout)
    assert message["type"] == kind, message
    return message


def close_code(ws: ClientConnection, timeout: float = 5.0) -> tuple[int, list[dict]]:
    """Read until the server closes; returns the close code and what came before."""
    before = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            before.append(recv(ws, max(deadline - time.monotonic(), 0.01)))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else closed.code, before


def assert_nothing_arrives(ws: ClientConnection, wait: float = 0.6) -> None:
    with pytest.raises(TimeoutError):
        recv(ws, wait)


def subscribe(ws, topics, **extra) -> dict:
    ws.send(json.dumps({"action": "subscribe", "topics": topics, **extra}))
    return recv_type(ws, "subscribed")


def signed_in(url, user) -> ClientConnection:
    ws = open_ws(url, user)
    recv_type(ws, "authenticated")
    return ws


def change_role(user, role: str, *, actor) -> OutboxEvent:
    """A real domain change that publishes user.role_changed; returns its event."""
    with transaction.atomic():
        user_role_change(user_id=user.pk, role=role, actor=actor)
    return OutboxEvent.objects.latest("id")


@transaction.atomic
def role_change_that_fails(user, *, actor) -> None:
    user_role_change(user_id=user.pk, role="supervisor", actor=actor)
    raise RuntimeError("the change fails after publishing")


def expected_event(row: OutboxEvent) -> dict:
    return {
        "type": "event",
        "id": row.pk,
        "name": row.name,
        "topics": row.topics,
        "occurredAt": row.created_at.isoformat().replace("+00:00", "Z"),
        "data": row.data,
    }


# --- delivery ---------------------------------------------------------------------


def test_event_of_committed_transaction_arrives(server, make_user):
    admin, operator = make_user("admin"), make_user("operator", username="olga")
    with signed_in(server, admin) as ws:
        assert subscribe(ws, ["users"]) == {"type": "subscribed", "topics": ["users"]}
        row = change_role(operator, "planner", actor=admin)
        assert recv(ws) == expected_event(row)
        assert row.data == {
            "id": operator.pk,
            "username": "olga",
            "role": "planner",
            "isActive": True,
        }


def test_event_of_rolled_back_transaction_never_arrives(server, make_user):
    admin, operator = make_user("admin"), make_user("operator")
    with signed_in(server, admin) as ws:
        subscribe(ws, ["users"])
        with pytest.raises(RuntimeError, match="after publishing"):
            role_change_that_fails(operator, actor=admin)
        assert not OutboxEvent.objects.exists()
        committed = change_role(operator, "planner", actor=admin)
        first = recv(ws)
        assert first == expected_event(committed)
        assert first["data"]["role"] == "planner"
        assert_nothing_arrives(ws)


def test_event_published_during_layer_outage_arrives_after_redelivery(
    server, make_user
):
    if not layer_is_shared():
        pytest.skip("embedded mode: the server's pump delivers (first test above)")
    admin, operator = make_user("admin"), make_user("operator")
    with signed_in(server, admin) as ws:
        subscribe(ws, ["users"])
        with override_settings(CHANNEL_LAYERS=DEAD_LAYER):
            row = change_role(operator, "planner", actor=admin)  # commits fine
        row.refresh_from_db()
        assert (row.delivered_at, row.attempts) == (None, 1)
        assert_nothing_arrives(ws)

        assert events_redeliver(older_than_seconds=0) == 1

        assert recv(ws) == expected_event(row)
        row.refresh_from_db()
        assert row.delivered_at is not None
        assert row.attempts == 2


# --- authentication ---------------------------------------------------------------


def test_authenticate_with_handshake_header(server, make_user):
    planner = make_user("planner", username="pat")
    with open_ws(server, planner) as ws:
        hello = recv_type(ws, "authenticated")
        assert hello["user"] == {"id": planner.pk, "username": "pat", "role": "planner"}
        assert subscribe(ws, ["lines"])["topics"] == ["lines"]


def test_authenticate_with_first_message(server, make_user):
    admin = make_user("admin", username="ada")
    with open_ws(server) as ws:
        ws.send(json.dumps({"action": "authenticate", "token": token_for(admin)}))
        hello = recv_type(ws, "authenticated")
        assert hello["user"] == {"id": admin.pk, "username": "ada", "role": "admin"}
        subscribe(ws, ["users"])
        row = change_role(make_user("operator"), "planner", actor=admin)
        assert recv(ws) == expected_event(row)


@pytest.mark.parametrize("how", ["header", "message"])
def test_invalid_token_is_refused_with_4401(server, how):
    with open_ws(server, token="not-a-jwt" if how == "header" else None) as ws:
        if how == "message":
            ws.send(json.dumps({"action": "authenticate", "token": "not-a-jwt"}))
        code, messages = close_code(ws)
    assert code == 4401
    assert len(messages) == 1
    error = messages[0]
    assert error["type"] == "error"
    assert error["success"] is False
    assert error["code"] == "token_not_valid"
    assert set(error) == {"type", "success", "error", "code", "details", "request_id"}
    assert len(error["request_id"]) == 32


def test_expired_token_is_refused_with_4401(server, make_user):
    expired = token_for(make_user("admin"), lifetime=timedelta(seconds=-1))
    with open_ws(server, token=expired) as ws:
        code, messages = close_code(ws)
    assert code == 4401
    assert [m["code"] for m in messages] == ["token_not_valid"]
    assert messages[0]["details"] == {"messages": ["Token is expired"]}


def test_token_of_deactivated_user_is_refused(server, make_user):
    user = make_user("planner", is_active=False)
    with open_ws(server, user) as ws:
        code, messages = close_code(ws)
    assert code == 4401
    assert [m["code"] for m in messages] == ["user_inactive"]


def _deactivate_and_reactivate(user, *, actor) -> None:
    for active in (False, True):
        with transaction.atomic():
            user_set_active(user_id=user.pk, active=active, actor=actor)


def test_token_issued_before_a_deactivation_is_refused_after_reactivation(
    server, make_user
):
    admin, user = make_user("admin"), make_user("planner")
    old = token_for(user)
    _deactivate_and_reactivate(user, actor=admin)
    with open_ws(server, token=old) as ws:
        code, messages = close_code(ws)
    assert code == 4401
    assert [m["code"] for m in messages] == ["token_not_valid"]
    user.refresh_from_db()
    fresh = str(refresh_token_for(user).access_token)  # as a login issues it now
    with open_ws(server, token=fresh) as ws:
        recv_type(ws, "authenticated")
        assert subscribe(ws, ["lines"]) == {"type": "subscribed", "topics": ["lines"]}


def test_open_connection_ends_after_a_deactivation_and_reactivation(server, make_user):
    admin, user = make_user("admin"), make_user("planner")
    with signed_in(server, user) as ws:
        subscribe(ws, ["lines"])
        _deactivate_and_reactivate(user, actor=admin)
        ws.send(json.dumps({"action": "subscribe", "topics": ["runbooks"]}))
        code, messages = close_code(ws)
    assert code == 4401
    assert [m["code"] for m in messages] == ["token_not_valid"]


def test_connection_closes_when_its_token_expires(server, make_user):
    short = token_for(make_user("planner"), lifetime=timedelta(seconds=1.5))
    with open_ws(server, token=short) as ws:
        recv_type(ws, "authenticated")
        subscribe(ws, ["lines"])
        code, messages = close_code(ws, timeout=5)
    assert code == 4401
    assert [m["code"] for m in messages] == ["token_expired"]


def test_fresh_token_keeps_the_connection_open(server, make_user):
    planner = make_user("planner")
    with open_ws(server, token=token_for(planner, timedelta(seconds=1.5))) as ws:
        recv_type(ws, "authenticated")
        ws.send(json.dumps({"action": "authenticate", "token": token_for(planner)}))
        recv_type(ws, "authenticated")
        assert_nothing_arrives(ws, wait=2.0)  # past the first token's expiry


def test_no_authentication_within_timeout_closes(server):
    started = time.monotonic()
    with open_ws(server) as ws:
        code, messages = close_code(ws, timeout=AUTH_TIMEOUT + 4)
    assert code == 4401
    assert [m["code"] for m in messages] == ["authentication_timeout"]
    assert AUTH_TIMEOUT <= time.monotonic() - started < AUTH_TIMEOUT + 3


def test_token_in_query_string_is_ignored(server, make_user):
    token = token_for(make_user("admin"))
    with open_ws(f"{server}?token={token}&access_token={token}") as ws:
        ws.send(json.dumps({"action": "subscribe", "topics": ["users"]}))
        code, messages = close_code(ws)
    assert code == 4401
    assert [m["code"] for m in messages] == ["not_authenticated"]


# --- topics -----------------------------------------------------------------------


def test_forbidden_and_unknown_topics_are_refused_by_name(server, make_user):
    admin = make_user("admin")
    operator = make_user("operator")
    with signed_in(server, operator) as ws, signed_in(server, admin) as admin_ws:
        ws.send(
            json.dumps(
                {"action": "subscribe", "topics": ["users", "line.7", "nope", "audit"]}
            )
        )
        assert recv(ws) == {"type": "subscribed", "topics": ["line.7"]}
        error = recv_type(ws, "error")
        assert error["code"] == "topic_not_allowed"
        assert error["details"] == {
            "forbidden": ["users", "audit"],
            "unknown": ["nope"],
        }

        subscribe(admin_ws, ["users"])
        row = change_role(make_user("planner"), "supervisor", actor=admin)
        assert recv(admin_ws)["id"] == row.pk
        assert_nothing_arrives(ws)


def test_subscription_follows_the_current_role(server, make_user):
    admin = make_user("admin")
    other_admin = make_user("admin")
    with signed_in(server, admin) as ws:  # token issued while an admin
        user_role_change(user_id=admin.pk, role="auditor", actor=other_admin)
        ws.send(json.dumps({"action": "subscribe", "topics": ["users", "audit"]}))
        assert recv(ws) == {"type": "subscribed", "topics": ["audit"]}
        assert recv_type(ws, "error")["details"] == {
            "forbidden": ["users"],
            "unknown": [],
        }


def test_unsubscribe_stops_events(server, make_user):
    admin = make_user("admin")
    with signed_in(server, admin) as ws:
        subscribe(ws, ["users"])
        ws.send(json.dumps({"action": "unsubscribe", "topics": ["users"]}))
        assert recv(ws) == {"type": "unsubscribed", "topics": ["users"]}
        change_role(make_user("operator"), "planner", actor=admin)
        assert_nothing_arrives(ws)


def test_malformed_messages_get_errors_and_keep_the_connection(server, make_user):
    with signed_in(server, make_user("planner")) as ws:
        ws.send("{not json")
        assert recv_type(ws, "error")["code"] == "parse_error"
        ws.send(json.dumps({"action": "dance"}))
        assert recv_type(ws, "error")["code"] == "unknown_action"
        ws.send(json.dumps({"action": "subscribe", "topics": "lines"}))
        assert recv_type(ws, "error")["code"] == "validation_error"
        assert subscribe(ws, ["lines"])["topics"] == ["lines"]


# --- resume -----------------------------------------------------------------------


def test_resume_replays_exactly_the_missed_events_in_order(server, make_user):
    admin = make_user("admin")
    users = [make_user("operator") for _ in range(4)]
    with signed_in(server, admin) as ws:
        subscribe(ws, ["users"])
        seen = change_role(users[0], "planner", actor=admin)
        assert recv(ws)["id"] == seen.pk
    missed = [change_role(u, "planner", actor=admin) for u in users[1:]]

    with signed_in(server, admin) as ws:
        subscribe(ws, ["users"], last_event_id=seen.pk)
        assert [recv(ws) for _ in missed] == [expected_event(r) for r in missed]
        assert recv(ws) == {
            "type": "replayed",
            "topics": ["users"],
            "count": 3,
            "truncated": False,
        }
        assert_nothing_arrives(ws)


def test_replayed_events_are_not_sent_again_when_delivered_live(server, make_user):
    admin = make_user("admin")
    users = [make_user("operator") for _ in range(3)]
    with override_settings(CHANNEL_LAYERS=DEAD_LAYER):  # nothing goes out live yet
        pending = [change_role(u, "planner", actor=admin) for u in users]
    with signed_in(server, admin) as ws:
        subscribe(ws, ["users"], last_event_id=pending[0].pk - 1)
        assert [recv(ws) for _ in pending] == [expected_event(r) for r in pending]
        assert recv_type(ws, "replayed")["count"] == 3
        # Now the live copies go out (the pump on SQLite, the beat task on Redis).
        events_redeliver(older_than_seconds=0)
        fresh = change_role(make_user("operator"), "planner", actor=admin)
        assert recv(ws) == expected_event(fresh)
        assert_nothing_arrives(ws)


def test_a_resume_longer_than_4096_events_is_never_sent_twice(make_user, tmp_path):
    """A resume replays up to 10,000 events; the consumer once remembered the
    last 4,096 ids it sent. Here a client resumes over 4,500 events, and then
    every one of them goes out live again (an outage's backlog from the resend
    task, at least once): it must get none of them a second time, and the next
    event as the very next message. With the bounded set the first 404 came
    again."""
    admin = make_user("admin")
    count = 4_500
    # Stored as event_publish stores them and already sent live, to nobody
    # yet (4,500 after-commit sends one by one would take minutes here).
    rows = OutboxEvent.objects.bulk_create(
        OutboxEvent(
            name="user.role_changed",
            topics=["users"],
            data={"id": n, "username": f"u{n}", "role": "planner", "isActive": True},
            delivered_at=timezone.now(),
        )
        for n in range(count)
    )
    OutboxTopic.objects.bulk_create(
        OutboxTopic(event=row, topic="users") for row in rows
    )
    ids = [row.pk for row in rows]
    # A server of its own: the 4,500 live copies are still on their way to the
    # server's subscribers when this test is done, and would reach the next
    # test's on a shared one.
    with (
        daphne_server(tmp_path / "daphne.log") as port,
        signed_in(f"ws://127.0.0.1:{port}/ws/events/", admin) as ws,
    ):
        subscribe(ws, ["users"], last_event_id=ids[0] - 1)
        replayed = [recv(ws, 30)["id"] for _ in ids]
        assert replayed == ids
        assert recv_type(ws, "replayed", 30)["count"] == count
        # The backlog goes out again, live (the pump on SQLite; here on Redis).
        OutboxEvent.objects.filter(pk__in=ids).update(delivered_at=None)
        if layer_is_shared():
            deadline = time.monotonic() + 60
            while events_redeliver(older_than_seconds=0):
                assert time.monotonic() < deadline, "the resend never ran dry"
        else:  # the server's pump sends them; wait until it has
            deadline = time.monotonic() + 60
            while OutboxEvent.objects.filter(
                pk__in=ids, delivered_at__isnull=True
            ).exists():
                assert time.monotonic() < deadline, "the pump did not send them"
                time.sleep(0.2)
        fresh = change_role(make_user("operator"), "planner", actor=admin)
        assert recv(ws, 30)["id"] == fresh.pk  # no copy came before it
        assert_nothing_arrives(ws)


# --- production events, end to end -----------------------------------------------


def test_plant_screen_sees_a_stage_start_and_an_issue_made_through_the_api(
    server, make_user
):
    """An operator works through the HTTP API of the same server; a plant screen
    subscribed to runbooks and exceptions sees both changes as they commit."""
    from runbooks import services as runbook_services
    from tests import factories_production as f

    planner, operator = make_user("planner"), make_user("operator")
    screen = make_user("auditor")  # read-only users may watch
    work_order = f.make_work_order(planner, runbook=f.make_runbook())
    first = f.stages_of(work_order)[0]
    runbook_services.stage_assign(stage_id=first.pk, user_id=operator.pk, actor=planner)
    api = server.replace("ws://", "http://").replace("/ws/events/", "")
    auth = {"Authorization": f"Bearer {token_for(operator)}"}
    setup_events = {"workorder.created", "stage.assigned"}
    with signed_in(server, screen) as ws:
        subscribe(ws, ["runbooks", "exceptions"])
        started = httpx.post(f"{api}/api/stages/{first.pk}/start", headers=auth)
        assert started.status_code == 200, started.text

        # In embedded mode the set-up's own events (published by this process)
        # reach the server's pump when it next polls, so they may arrive before,
        # between or after the server's own: skip them wherever they come.
        def next_event():
            message = recv(ws)
            while message["name"] in setup_events:
                message = recv(ws)
            return message

        message = next_event()
        assert (message["name"], message["topics"]) == ("stage.started", ["runbooks"])
        assert message["data"]["id"] == first.pk
        assert message["data"]["status"] == "in_progress"
        # the first stage start also puts the work order in progress
        assert next_event()["name"] == "workorder.started"
        raised = httpx.post(
            f"{api}/api/stages/{first.pk}/issue",
            json={"type": "equipment_fault", "description": "Press 3 jams"},
            headers=auth,
        )
        assert raised.status_code == 201, raised.text
        message = next_event()
        assert (message["name"], message["topics"]) == (
            "exception.raised",
            ["exceptions"],
        )
        assert message["data"]["title"] == "Press 3 jams"
        assert message["data"]["type"] == "Equipment Fault"


def test_plant_screen_sees_a_station_change_after_readings_are_posted(
    server, make_user
):
    """A SCADA gateway posts a batch through the HTTP API of the same server; a
    screen following one line sees the station and line changes it caused, and
    a screen following another line sees nothing."""
    from tests import factories_lines as f

    line = f.make_line()
    other = f.make_line(slug="line-b", name="Line B (Packs)", position=2)
    weld = f.machine(line, "st-02")
    gateway = make_user("operator", username="scada-gateway")
    api = server.replace("ws://", "http://").replace("/ws/events/", "")
    auth = {"Authorization": f"Bearer {token_for(gateway)}"}
    with (
        signed_in(server, make_user("auditor")) as ws,
        signed_in(server, make_user("planner")) as other_ws,
    ):
        subscribe(ws, [f"line.{line.pk}"])
        subscribe(other_ws, [f"line.{other.pk}"])
        posted = httpx.post(
            f"{api}/api/machines/{weld.pk}/readings",
            json=[
                f.reading("good_count", f.at(8, 59), 4),
                f.state(f.at(9), "blocked", "Safety Curtain"),
            ],
            headers=auth,
        )
        assert posted.status_code == 201, posted.text
        committed = time.monotonic()  # the response follows the commit
        station = recv(ws)
        assert time.monotonic() - committed < 1.0  # within a second of the commit
        assert (station["name"], station["topics"]) == (
            "station.changed",
            ["lines", f"line.{line.pk}"],
        )
        assert station["data"] == {
            "lineId": "line-a",
            "id": "st-02",
            "name": "Weld",
            "state": "Blocked",
            "reason": "Safety Curtain",
            "previousState": "Idle",
            "changedAt": "2026-03-02T09:00:00Z",
        }
        changed = recv(ws)
        assert changed["name"] == "line.changed"
        assert (changed["data"]["mode"], changed["data"]["health"]) == (
            "Blocked",
            "Critical",
        )
        assert_nothing_arrives(other_ws)
