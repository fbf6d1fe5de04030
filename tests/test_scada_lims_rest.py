"""A REST LIMS on a real local HTTP server (http.server in a thread): the
connector's test and fetch, POST /api/lims/fetch applying results as passports'
QA events, re-fetching applying nothing twice, a LIMS that is down, and the
periodic task."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from bench.common import free_port
from bpmos.celery import BEAT_SCHEDULE
from bpmos.celery import app as celery_app
from bpmos.roles import Role
from elog.models import AuditRecord
from passports import selectors as passport_selectors
from passports.models import PassportEvent
from scada import quality, tasks_lims
from scada.connectors.base import connector_for
from scada.connectors.lims import LimsConnector
from scada.models import CommState, Connector, LimsResult
from tests.conftest import api_as as api
from tests.factories_passports import register

pytestmark = pytest.mark.django_db

TOKEN = "Token lab-secret"


class FakeLims:
    """What the LIMS answers, and what it was asked."""

    def __init__(self) -> None:
        self.results: list = []
        self.status = 200
        self.raw_body: bytes | None = None
        self.requests: list[dict] = []


def _handler(lims: FakeLims) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            lims.requests.append(
                {
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "auth": self.headers.get("X-Lims-Auth"),
                }
            )
            if url.path != "/api/v2/results":
                status, body = 404, b"{}"
            elif self.headers.get("X-Lims-Auth") != TOKEN:
                status, body = 401, b'{"error": "unauthorised"}'
            elif lims.status != 200:
                status, body = lims.status, b"oops"
            else:
                status = 200
                body = lims.raw_body or json.dumps(lims.results).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep the test output quiet
            pass

    return Handler


@pytest.fixture
def lims_server() -> Iterator[tuple[FakeLims, str]]:
    lims = FakeLims()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(lims))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield lims, f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def connector(lims_server) -> Connector:
    _, base = lims_server
    return Connector.objects.create(
        name="Lab LIMS",
        kind="lims",
        endpoint=base,
        poll_interval_s=300,
        settings={"results_path": "results", "timeout_s": 2, "since_param": "from"},
        credentials={"auth_header": "X-Lims-Auth", "auth_value": TOKEN},
    )


@pytest.fixture
def packs(db):
    made = "2026-01-05T08:00:00Z"
    return (
        register("pack", serial="REST-A", manufactured_at=made),
        register("pack", serial="REST-B", manufactured_at=made),
    )


@pytest.fixture
def boss(make_user):
    return make_user(Role.SUPERVISOR, username="sam")


LAB_RESULTS = [
    {
        "id": "LR-1",
        "serial": "REST-A",
        "test_name": "Capacity",
        "passed": True,
        "values": {"capacity_ah": 100.4},
        "tested_at": "2026-04-01T09:00:00Z",
    },
    {
        "id": 2,
        "serial": "REST-B",
        "test": "Capacity",
        "result": "FAIL",
        "values": {"capacity_ah": 91.0, "grade": "C"},
        "tested_at": "2026-04-01T09:30:00+02:00",
    },
    {
        "id": "LR-3",
        "serial": "UNKNOWN-9",
        "test_name": "Capacity",
        "passed": True,
        "values": {},
        "tested_at": "2026-04-01T09:00:00Z",
    },
    "not an object",
    {
        "id": "LR-5",
        "serial": "REST-A",
        "test_name": "IR",
        "passed": True,
        "values": {"nested": {"x": 1}},
        "tested_at": "2026-04-01T09:00:00Z",
    },
]


# --- the connector ------------------------------------------------------------------


def test_the_connector_is_registered_for_lims(connector):
    assert isinstance(connector_for(connector), LimsConnector)


def test_test_connection_answers_ok_or_why_not(lims_server, connector):
    lims, _ = lims_server
    assert connector_for(connector).test_connection() == (True, None)
    assert lims.requests[-1]["auth"] == TOKEN
    assert lims.requests[-1]["path"] == "/api/v2/results"

    connector.credentials = {"auth_header": "X-Lims-Auth", "auth_value": "wrong"}
    ok, error = connector_for(connector).test_connection()
    assert ok is False
    assert error == f"The LIMS at {connector.endpoint}/results answered HTTP 401."


def test_a_lims_that_is_not_listening_is_reported(connector):
    port = free_port()  # bound and released: nothing listens there
    connector.endpoint = f"http://127.0.0.1:{port}"
    ok, error = connector_for(connector).test_connection()
    assert ok is False
    assert error.startswith(f"The LIMS at http://127.0.0.1:{port}/results could not")


def test_normalize_maps_the_lims_names(lims_server, connector):
    lims, _ = lims_server
    lims.results = LAB_RESULTS[:2]
    client = connector_for(connector)
    rows = client.normalize(client.fetch_data())
    assert [(r["key"], r["serial"], r["test_name"], r["passed"]) for r in rows] == [
        ("LR-1", "REST-A", "Capacity", True),
        ("2", "REST-B", "Capacity", False),
    ]
    assert rows[1]["tested_at"].isoformat() == "2026-04-01T09:30:00+02:00"
    assert rows[1]["values"] == {"capacity_ah": 91.0, "grade": "C"}


def test_an_answer_too_large_is_an_error(lims_server, connector, monkeypatch):
    lims, _ = lims_server
    lims.results = LAB_RESULTS
    monkeypatch.setattr("scada.connectors.lims.MAX_BODY_BYTES", 100)
    ok, error = connector_for(connector).test_connection()
    assert (ok, error) == (
        False,
        f"The LIMS at {connector.endpoint}/results answered more than 100 bytes.",
    )


def test_an_answer_that_is_not_a_list_is_an_error(lims_server, connector):
    lims, _ = lims_server
    lims.raw_body = b'{"count": 3}'
    ok, error = connector_for(connector).test_connection()
    assert (ok, error) == (
        False,
        f"The LIMS at {connector.endpoint}/results answered dict, not a list "
        "of results.",
    )


# --- fetch and apply ----------------------------------------------------------------


def test_fetch_applies_results_as_qa_events_and_reports_bad_ones(
    lims_server, connector, packs, boss
):
    lims, _ = lims_server
    lims.results = LAB_RESULTS
    response = api(boss).post(
        "/api/lims/fetch", {"connector": connector.pk}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "applied": 2,
        "skipped": 0,
        "rejected": [
            {
                "row": 3,
                "serial": "UNKNOWN-9",
                "error": "Unknown serial: no passport has it.",
                "code": "unknown_serial",
            },
            {
                "row": 4,
                "serial": "",
                "error": "A result must be a JSON object.",
                "code": "invalid",
            },
            {
                "row": 5,
                "serial": "REST-A",
                "error": "values.nested: a number or a text (values are flat).",
                "code": "invalid",
            },
        ],
        "dry_run": False,
    }
    assert lims.requests[-1]["query"] == {}  # nothing kept yet: everything
    a, b = packs
    a_events = list(passport_selectors.event_list(passport=a))
    b_events = list(passport_selectors.event_list(passport=b))
    assert [e.kind for e in a_events] == ["manufactured", "qa_passed"]
    assert [e.kind for e in b_events] == ["manufactured", "qa_failed"]
    assert b_events[1].data == {
        "test": "Capacity",
        "values": {"capacity_ah": 91.0, "grade": "C"},
        "reason": "LIMS: Capacity failed",
    }
    stored = {r.key: r for r in LimsResult.objects.all()}
    assert set(stored) == {"LR-1", "2"}
    assert stored["LR-1"].passport_event_id == a_events[1].pk
    assert stored["2"].connector_id == connector.pk
    assert stored["2"].source == "api"
    connector.refresh_from_db()
    assert connector.comm_state == CommState.OK
    fetched = AuditRecord.objects.get(action="lims_results.fetched")
    assert fetched.target_id == str(connector.pk)
    assert fetched.after == {
        "applied": 2,
        "skipped": 0,
        "rejected": 3,
        "rejected_rows": [3, 4, 5],
    }
    assert AuditRecord.objects.filter(action="lims_result.applied").count() == 2


def test_a_refetch_asks_since_the_newest_result_and_applies_nothing_twice(
    lims_server, connector, packs, boss
):
    lims, _ = lims_server
    lims.results = LAB_RESULTS[:2]
    client = api(boss)
    client.post("/api/lims/fetch", {"connector": connector.pk}, format="json")
    events = PassportEvent.objects.count()
    audits = AuditRecord.objects.count()

    again = client.post("/api/lims/fetch", {"connector": connector.pk}, format="json")

    assert again.json() == {
        "applied": 0,
        "skipped": 2,
        "rejected": [],
        "dry_run": False,
    }
    # The newest kept is 09:00Z (REST-A; REST-B was 07:30Z), less the hour's overlap.
    assert lims.requests[-1]["query"] == {"from": ["2026-04-01T08:00:00Z"]}
    assert PassportEvent.objects.count() == events
    assert AuditRecord.objects.count() == audits  # nothing new: nothing audited


def test_a_lims_that_is_down_is_a_503_applying_nothing(
    lims_server, connector, packs, boss
):
    lims, _ = lims_server
    lims.results = LAB_RESULTS
    lims.status = 500

    response = api(boss).post(
        "/api/lims/fetch", {"connector": connector.pk}, format="json"
    )

    assert response.status_code == 503
    assert response.json()["code"] == "lims_unreachable"
    assert response.json()["error"] == (
        f"The LIMS at {connector.endpoint}/results answered HTTP 500."
    )
    assert LimsResult.objects.count() == 0
    connector.refresh_from_db()
    assert connector.comm_state == CommState.LOST
    assert connector.last_error == response.json()["error"]


def test_fetch_refuses_what_is_not_an_enabled_lims(connector, boss, make_user):
    client = api(boss)
    opcua = Connector.objects.create(name="PLC", kind="opcua", endpoint="opc.tcp://x")
    assert client.post(
        "/api/lims/fetch", {"connector": opcua.pk}, format="json"
    ).json()["details"] == {"connector": ["Not a LIMS connector."]}
    missing = client.post("/api/lims/fetch", {"connector": 987654}, format="json")
    assert missing.status_code == 404
    bad = client.post("/api/lims/fetch", {"connector": "x"}, format="json")
    assert bad.status_code == 400
    connector.enabled = False
    connector.save()
    disabled = client.post(
        "/api/lims/fetch", {"connector": connector.pk}, format="json"
    )
    assert disabled.status_code == 409
    assert disabled.json()["code"] == "connector_disabled"


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OPERATOR, 403),
        (Role.PLANNER, 403),
        (Role.AUDITOR, 403),
        (Role.SUPERVISOR, 200),
        (Role.PLANT_HEAD, 200),
        (Role.ADMIN, 200),
    ],
)
def test_supervisors_and_above_fetch(lims_server, connector, make_user, role, status):
    response = api(make_user(role)).post(
        "/api/lims/fetch", {"connector": connector.pk}, format="json"
    )
    assert response.status_code == status


# --- the periodic task ---------------------------------------------------------------


def test_the_beat_task_fetches_due_lims_connectors_once_per_interval(
    lims_server, connector, packs
):
    lims, _ = lims_server
    lims.results = LAB_RESULTS[:1]
    Connector.objects.create(
        name="Old LIMS",
        kind="lims",
        endpoint=f"http://127.0.0.1:{free_port()}",
        enabled=False,
    )

    assert tasks_lims.lims_fetch_due_task() == 1
    assert len(lims.requests) == 1
    assert LimsResult.objects.get().key == "LR-1"
    event = PassportEvent.objects.get(kind="qa_passed")
    assert event.actor_username == ""  # the system

    assert tasks_lims.lims_fetch_due_task() == 0  # not due for 300 s
    assert len(lims.requests) == 1
    later = timezone.now() + timedelta(seconds=301)
    assert quality.lims_fetch_due(now=later) == 1
    assert LimsResult.objects.count() == 1


def test_one_lims_down_does_not_stop_the_others(lims_server, connector, packs):
    lims, _ = lims_server
    lims.results = LAB_RESULTS[:1]
    Connector.objects.create(
        name="Down LIMS", kind="lims", endpoint=f"http://127.0.0.1:{free_port()}"
    )

    assert quality.lims_fetch_due() == 1
    down = Connector.objects.get(name="Down LIMS")
    assert down.comm_state == CommState.LOST
    assert LimsResult.objects.get().key == "LR-1"


def test_the_beat_entry_is_scheduled_with_an_expiry():
    entry = BEAT_SCHEDULE["lims-fetch"]
    assert entry["task"] == "scada.tasks_lims.lims_fetch_due_task"
    assert entry["task"] in celery_app.tasks  # registered under that name
    assert entry["options"]["expires"] < entry["schedule"]
