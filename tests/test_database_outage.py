"""The database goes away under a running server and comes back: requests in
between get 503 in the envelope (never a 500), the server recovers by itself
(no restart: the same processes answer), and no batch is half-written.

The outage is this test's own database's: every connection of the server to
it cut (``pg_terminate_backend``; the server's connections are known by their
``application_name``, set through libpq's ``PGAPPNAME``) and new ones refused
(``ALLOW_CONNECTIONS false``), which is what the server sees of a PostgreSQL
restart, without stopping the cluster the other test workers share. The test
process's own connections (those of the threads an earlier async test left
behind, say) are left alone: cut, they would fail a later test of this worker.
The server is the production one for the REST API: gunicorn with sync workers
(docs/deploy.md), with persistent connections and their health checks as in
production (``CONN_MAX_AGE``, ``CONN_HEALTH_CHECKS``).
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from lines.models import MachineReading
from tests.conftest import bearer
from tests.factories_lines import at, machine, make_line, reading
from tests.support import (
    ServerFailed,
    assert_envelope,
    free_port,
    http_answers,
    server_env,
    start_server,
    stop_server,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.DB_IS_POSTGRES, reason="an outage of PostgreSQL's own"
    ),
]

BATCH = 500
# The application_name of the server's connections (libpq reads PGAPPNAME).
SERVER_APPLICATION = "bpmos-outage-server"


def _batch(start: int) -> list[dict]:
    return [
        reading("cycle_time", at(8) + timedelta(seconds=start + i), 20.0, unit="s")
        for i in range(BATCH)
    ]


def _outage(allow: bool) -> None:
    """Refuse (or allow again) new connections to this test's database and cut
    the server's ones open (from the maintenance database: a
    database cannot refuse connections to itself)."""
    db = settings.DATABASES["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own,) = cursor.fetchone()
    with psycopg.connect(
        dbname="postgres",
        user=db["USER"],
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        password=db.get("PASSWORD") or None,
        autocommit=True,
    ) as admin:
        admin.execute(
            f'ALTER DATABASE "{db["NAME"]}" WITH ALLOW_CONNECTIONS {str(allow).lower()}'
        )
        if not allow:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s AND application_name = %s",
                [db["NAME"], own, SERVER_APPLICATION],
            )


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "bpmos.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60",
    ]  # fmt: skip
    try:
        process = start_server(
            "gunicorn",
            command,
            port,
            tmp_path / "gunicorn.log",
            ready=http_answers,
            env=server_env(DATABASE_CONN_MAX_AGE="60", PGAPPNAME=SERVER_APPLICATION),
        )
    except ServerFailed as failure:
        pytest.fail(str(failure))
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        stop_server(process)


def test_requests_during_an_outage_are_503_and_the_server_recovers(gunicorn, make_user):
    base, process = gunicorn
    weld = machine(make_line(), "st-02")
    headers = bearer(make_user("operator", username="scada-gateway"))
    url = f"{base}/api/machines/{weld.pk}/readings"
    with httpx.Client(timeout=30) as client:
        # Warm: both workers hold a database connection.
        for _ in range(4):
            assert (
                client.get(f"{base}/api/machines", headers=headers).status_code == 200
            )
        first = client.post(url, json=_batch(0), headers=headers)
        assert first.status_code == 201, first.text

        _outage(allow=False)
        try:
            during = [
                client.post(url, json=_batch(10_000 + n * BATCH), headers=headers)
                for n in range(3)
            ] + [client.get(f"{base}/api/machines", headers=headers) for _ in range(3)]
            for response in during:
                body = assert_envelope(response, 503, "dependency_unavailable")
                assert body["details"] == {"dependency": "database"}
            health = client.get(f"{base}/api/health")
            assert health.status_code == 503
        finally:
            _outage(allow=True)

        # Back, with no restart: the same server answers within seconds.
        deadline = time.monotonic() + 30
        while True:
            response = client.get(f"{base}/api/machines", headers=headers)
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            assert_envelope(response, 503, "dependency_unavailable")
            time.sleep(0.5)
        assert response.status_code == 200, response.text
        assert process.poll() is None
        for _ in range(4):  # every worker is back
            assert (
                client.get(f"{base}/api/machines", headers=headers).status_code == 200
            )
        last = client.post(url, json=_batch(50_000), headers=headers)
        assert last.status_code == 201, last.text
        assert client.get(f"{base}/api/health").status_code == 200

    # Whole batches only: the two accepted, none of the refused.
    assert MachineReading.objects.filter(machine=weld).count() == 2 * BATCH


DASHBOARD_PATHS = (
    "/api/dashboard/summary",
    "/api/dashboard/distributions",
    "/api/dashboard/trends?metric=built&bucket=day",
    "/api/dashboard/supervisor/summary",
    "/api/dashboard/supervisor/attention",
    "/api/logs",
    "/api/logs?search=torque",
)


def test_the_dashboards_and_the_log_stream_during_an_outage_answer_503_never_500(
    gunicorn, make_user
):
    """The UI shell's first screen while PostgreSQL is away: every dashboard
    and the log stream answer the standard error object (503, naming the
    database), never a 500, and answer again by themselves once it is back."""
    base, process = gunicorn
    headers = bearer(make_user("supervisor", username="shift-lead"))
    with httpx.Client(timeout=30) as client:
        warm = {
            path: client.get(f"{base}{path}", headers=headers)
            for path in DASHBOARD_PATHS
        }
        for path, response in warm.items():
            assert response.status_code == 200, (path, response.text)

        _outage(allow=False)
        try:
            for path in DASHBOARD_PATHS:
                response = client.get(f"{base}{path}", headers=headers)
                body = assert_envelope(response, 503, "dependency_unavailable")
                assert body["details"] == {"dependency": "database"}, path
        finally:
            _outage(allow=True)

        deadline = time.monotonic() + 30
        while client.get(f"{base}/api/health").status_code != 200:
            assert time.monotonic() < deadline, "the server did not come back"
            time.sleep(0.5)
        for path in DASHBOARD_PATHS:
            again = client.get(f"{base}{path}", headers=headers)
            assert again.status_code == 200, (path, again.text)
            assert again.json().keys() == warm[path].json().keys(), path
    assert process.poll() is None
