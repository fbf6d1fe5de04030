"""Structured logs: one JSON line per request, on stdout, nothing else."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from structlog.stdlib import ProcessorFormatter

from tests.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)

REQUEST_FIELDS = {"request_id", "user", "role", "method", "path", "status"}


@pytest.fixture
def log_lines():
    """Lines the project's JSON formatter renders while the test runs."""
    formatter = next(
        handler.formatter
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, ProcessorFormatter)
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: stream.getvalue().splitlines()
    finally:
        root.removeHandler(handler)


def _request_lines(lines: list[str], request_id: str) -> list[dict]:
    records = [json.loads(line) for line in lines]  # every line is JSON
    return [
        r
        for r in records
        if r.get("event") == "request" and r.get("request_id") == request_id
    ]


def test_a_request_logs_exactly_one_json_line(http, make_user, log_lines):
    planner = make_user("planner", username="pat")
    response = http.get(
        "/api/auth/me", headers={**bearer(planner), "X-Request-ID": "log-test-1"}
    )
    assert response.status_code == 200
    [line] = _request_lines(log_lines(), "log-test-1")
    assert {key: line[key] for key in REQUEST_FIELDS} == {
        "request_id": "log-test-1",
        "user": "pat",
        "role": "planner",
        "method": "GET",
        "path": "/api/auth/me",
        "status": 200,
    }
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    assert line["logger"] == "bpmos.request"


def test_an_anonymous_refusal_logs_no_user(http, db, log_lines):
    response = http.post(
        "/api/auth/register", json={}, headers={"X-Request-ID": "log-test-2"}
    )
    assert response.status_code == 401
    [line] = _request_lines(log_lines(), "log-test-2")
    assert (line["user"], line["role"], line["status"]) == (None, None, 401)
    assert line["method"] == "POST"


_SCRIPT = """
import django
django.setup()
from django.test import Client, override_settings

with override_settings(ROOT_URLCONF="tests.urls_crash"):
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    client.get("/api/no-such-thing", HTTP_X_REQUEST_ID="one")
    client.get("/api/test-crash/django", HTTP_X_REQUEST_ID="two")
"""


@pytest.mark.parametrize("debug", ["false", "true"])
def test_logs_are_json_lines_on_stdout_only(tmp_path, debug):
    """In a fresh process as deployed (no pytest log capture), DEBUG on and off."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BPMOS_", "PYTEST_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}  # embedded: touch no server
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "bpmos.settings",
        "DJANGO_DEBUG": debug,
        "BPMOS_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=Path(django_settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    records = [json.loads(line) for line in done.stdout.splitlines()]
    requests = [r for r in records if r["event"] == "request"]
    assert [(r["request_id"], r["status"]) for r in requests] == [
        ("one", 404),
        ("two", 500),
    ]
    crash = [r for r in records if r["event"] == "unhandled_exception"]
    assert [r["request_id"] for r in crash] == ["two"]
    assert "RuntimeError" in crash[0]["exception"]  # the trace goes to the log
