"""The CMMS connector against a real HTTP server on 127.0.0.1 (``FakeCmms``,
which the other CMMS tests use too): test_connection, push_data with the auth
header, the CMMS's id, refusals, a CMMS that is down, reading statuses back."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from scada.connectors.base import ConnectorError, connector_for
from scada.connectors.cmms import CmmsConnector
from scada.models import Connector, ConnectorKind

SECRET = "Bearer s3cret-cmms-token-42"
TOKEN = "s3cret-cmms-token-42"
WORK_ORDER_PATH = "/api/v2/work-orders"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeCmms:
    """A CMMS on 127.0.0.1 that answers each POSTed work order from a script.

    ``answers``: one per POST, in order: a status code (a failure answers with
    a body that echoes the request's headers, as a careless CMMS error page
    does) or ``"accept"``; once the script runs out every POST is accepted
    (201 ``{"id": "CMMS-<n>"}``). ``received`` keeps every request.
    Stopped, its port refuses connections; started again, it is back on the
    same port.
    """

    def __init__(self, answers: list[Any] = (), *, port: int | None = None):
        self.answers = list(answers)
        self.port = port or free_port()
        self.received: list[dict[str, Any]] = []
        self.accepted = 0
        self.statuses: dict[str, str] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cmms = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: Any = None) -> None:
                cmms.received.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "json": body,
                    }
                )

            def do_GET(self):
                self._record()
                prefix = WORK_ORDER_PATH + "/"
                if self.path.startswith(prefix):
                    external_id = self.path.removeprefix(prefix)
                    if external_id not in cmms.statuses:
                        self._send(404, {"error": "no such work order"})
                        return
                    status = cmms.statuses[external_id]
                    self._send(200, {"id": external_id, "status": status})
                    return
                self._send(200, {"ok": True})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                self._record(body)
                answer = cmms.answers.pop(0) if cmms.answers else "accept"
                if answer == "accept":
                    cmms.accepted += 1
                    external_id = f"CMMS-{cmms.accepted}"
                    cmms.statuses[external_id] = "open"
                    self._send(201, {"id": external_id, "status": "open"})
                    return
                self._send(
                    int(answer),
                    {"error": "broken", "echo": dict(self.headers.items())},
                )

        return Handler

    def start(self) -> FakeCmms:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        # shutdown() waits for serve_forever's next look at its flag: 0.5 s by
        # default, on every test's stop.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeCmms:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.received if r["method"] == "POST"]


def cmms_connector(url: str, *, name: str = "plant-cmms", **settings) -> Connector:
    """An enabled CMMS connector record pointing at ``url``."""
    return Connector.objects.create(
        name=name,
        kind=ConnectorKind.CMMS,
        endpoint=url,
        settings={"work_order_path": WORK_ORDER_PATH, "timeout_s": 3, **settings},
        credentials={"auth_header_value": SECRET},
    )


WORK_ORDER = {
    "asset_id": "la-weld-01",
    "asset_name": "Laser welder 1",
    "description": "Chiller temperature high",
    "priority": "high",
    "source_alarm_id": None,
    "created_by_system": "bpmos",
    "assignee": None,
    "scada_snapshot": {"alarm": {"value": 41.5}},
}

pytestmark = pytest.mark.django_db


def test_push_data_posts_the_work_order_with_the_auth_header():
    with FakeCmms() as cmms:
        connector = connector_for(cmms_connector(cmms.url))
        assert isinstance(connector, CmmsConnector)

        ok, error = connector.push_data(WORK_ORDER, idempotency_key="bpmos-mwo-7")

    assert (ok, error) == (True, None)
    assert connector.last_result.external_id == "CMMS-1"
    assert connector.last_result.status_code == 201
    [post] = cmms.posts()
    assert post["path"] == WORK_ORDER_PATH
    assert post["json"] == WORK_ORDER
    assert post["headers"]["Authorization"] == SECRET
    assert post["headers"]["Idempotency-Key"] == "bpmos-mwo-7"
    assert post["headers"]["Content-Type"] == "application/json"


def test_a_custom_auth_header_name_carries_the_secret():
    with FakeCmms() as cmms:
        config = cmms_connector(cmms.url, auth_header_name="X-Api-Key")
        ok, _ = connector_for(config).push_data(WORK_ORDER)

    assert ok is True
    headers = cmms.posts()[0]["headers"]
    assert headers["X-Api-Key"] == SECRET
    assert "Authorization" not in headers


def test_a_refusal_is_an_error_without_the_secret_even_when_echoed():
    with FakeCmms([500]) as cmms:
        connector = connector_for(cmms_connector(cmms.url))
        ok, error = connector.push_data(WORK_ORDER)

    assert ok is False
    assert error.startswith("The CMMS answered 500 Internal Server Error: ")
    assert "[redacted]" in error  # the CMMS echoed the header back
    assert TOKEN not in error
    assert connector.last_result.status_code == 500
    assert connector.last_result.retryable is True


def test_a_4xx_refusal_is_not_retryable_but_429_is():
    with FakeCmms([422, 429]) as cmms:
        connector = connector_for(cmms_connector(cmms.url))
        connector.push_data(WORK_ORDER)
        refused = connector.last_result
        connector.push_data(WORK_ORDER)
        busy = connector.last_result

    assert (refused.status_code, refused.retryable) == (422, False)
    assert (busy.status_code, busy.retryable) == (429, True)


def test_a_cmms_that_is_down_is_an_unreachable_error():
    connector = connector_for(cmms_connector(f"http://127.0.0.1:{free_port()}"))

    ok, error = connector.push_data(WORK_ORDER)

    assert ok is False
    assert error.startswith("The CMMS could not connect (ConnectError")
    assert connector.last_result.status_code is None
    assert connector.last_result.retryable is True


def test_the_id_comes_from_a_named_field_or_the_location_header():
    connector = connector_for(cmms_connector("http://cmms.invalid", id_field="number"))
    by_field = httpx.Response(201, json={"number": 5012, "id": "x"})
    by_location = httpx.Response(201, headers={"Location": "/api/wo/WO-77/"})
    nothing = httpx.Response(204)

    assert connector._external_id(by_field) == "5012"
    assert connector._external_id(by_location) == "WO-77"
    assert connector._external_id(nothing) == ""


def test_test_connection_reports_up_and_down():
    with FakeCmms() as cmms:
        up = connector_for(cmms_connector(cmms.url, health_path="/health"))
        assert up.test_connection() == (True, None)
    assert cmms.received[0]["path"] == "/health"
    assert cmms.received[0]["headers"]["Authorization"] == SECRET

    ok, error = up.test_connection()  # the server is stopped now
    assert ok is False
    assert "could not connect" in error


def test_an_endpoint_that_is_not_a_url_is_a_clear_error():
    config = cmms_connector("opc.tcp://plc:4840")
    ok, error = connector_for(config).push_data(WORK_ORDER)

    assert ok is False
    assert error == "A CMMS endpoint is an http(s) base URL, not 'opc.tcp://plc:4840'."


def test_fetch_and_normalize_read_statuses_back():
    with FakeCmms() as cmms:
        connector = connector_for(cmms_connector(cmms.url))
        connector.push_data(WORK_ORDER)
        connector.push_data(WORK_ORDER)
        cmms.statuses["CMMS-2"] = "Completed"

        raw = connector.fetch_data(external_ids=["CMMS-1", "CMMS-2"])
        with pytest.raises(ConnectorError, match="Work order CMMS-9: "):
            connector.fetch_data(external_ids=["CMMS-9"])

    assert connector.normalize(raw) == [
        {"external_id": "CMMS-1", "status": "open", "closed": False},
        {"external_id": "CMMS-2", "status": "Completed", "closed": True},
    ]
    with pytest.raises(ConnectorError, match="Name the work orders"):
        connector.fetch_data()


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, None),
        (
            {
                "work_order_path": "/wo",
                "timeout_s": 2.5,
                "auth_header_name": "X-Api-Key",
                "sync_status": True,
                "closed_statuses": ["Closed"],
            },
            None,
        ),
        ([], "Must be an object."),
        ({"path": "/wo"}, "Unknown option 'path'; CMMS options: "),
        ({"work_order_path": "/w o"}, "work_order_path must be text without spaces."),
        ({"timeout_s": 0}, "timeout_s must be a number of seconds from 0 to 300."),
        ({"timeout_s": True}, "timeout_s must be a number of seconds from 0 to 300."),
        ({"closed_statuses": "closed"}, "closed_statuses must be a list of words."),
        ({"sync_status": "yes"}, "sync_status must be true or false."),
    ],
)
def test_settings_are_checked(options, problem):
    found = CmmsConnector.settings_problem(options)
    if problem is None:
        assert found is None
    else:
        assert found.startswith(problem)


def test_settings_that_are_not_an_object_read_as_none_set():
    config = cmms_connector("http://cmms.invalid")
    config.settings, config.credentials = ["x"], "secret"
    connector = connector_for(config)

    assert connector.work_order_url == "http://cmms.invalid/work-orders"
    assert connector._headers() == {"Accept": "application/json"}
