"""GET /api/health: database, channel layer and broker; 503 envelope when one is down.

Failures are injected by pointing our own settings at local ports where no Redis
answers: a closed port (connection refused) and a socket that accepts but never
replies (a hung server), which must not hang the health request.
"""

import socket
import time

import pytest

from bpmos.celery import app as celery_app
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = {"database", "channel_layer", "broker"}


@pytest.fixture
def closed_port():
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port():
    """A local port that accepts connections and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def point_broker(settings):
    """Point the Celery broker at a URL for this test only.

    The Celery app copied Django's settings when it loaded them (namespace
    CELERY), so the override goes to its conf as well as to settings.
    """
    saved = (
        celery_app.conf.CELERY_BROKER_URL,
        celery_app.conf.CELERY_BROKER_TRANSPORT_OPTIONS,
    )

    def point(url: str) -> None:
        settings.CELERY_BROKER_URL = url
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
        celery_app.conf.CELERY_BROKER_URL = url
        celery_app.conf.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    yield point
    (
        celery_app.conf.CELERY_BROKER_URL,
        celery_app.conf.CELERY_BROKER_TRANSPORT_OPTIONS,
    ) = saved


@pytest.fixture
def point_channel_layer(settings):
    """Point the channel layer at a Redis URL for this test only.

    Channels drops its cached layer when CHANNEL_LAYERS changes (setting_changed),
    and again when the settings fixture restores it.
    """

    def point(url: str) -> None:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [url], "prefix": "bpmos-health-test"},
            }
        }

    return point


def _down(response, *names: str) -> dict:
    body = assert_envelope(response, 503, "dependency_unavailable")
    assert body["error"] == f"Unavailable: {', '.join(sorted(names))}."
    checks = body["details"]["checks"]
    assert set(checks) == CHECKS
    assert {name for name, check in checks.items() if check["status"] == "down"} == (
        set(names)
    )
    for name in names:
        assert checks[name]["error"]
    return checks


def test_health_reports_every_dependency_ok(http, db):
    response = http.get("/api/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["duration_ms"] >= 0


def test_health_needs_no_token_and_ignores_a_bad_one(http, db):
    # Load balancers probe without credentials; a stale header must not 401.
    response = http.get("/api/health/", headers={"Authorization": "Bearer junk"})
    assert response.status_code == 200


def test_unreachable_broker_is_503_naming_it(http, point_broker, closed_port):
    point_broker(f"redis://127.0.0.1:{closed_port}/0")
    checks = _down(http.get("/api/health"), "broker")
    # Public endpoint: the kind of failure, never the internal address.
    assert checks["broker"]["error"] in {"OperationalError", "ConnectionRefusedError"}
    assert str(closed_port) not in http.get("/api/health").text


def test_unreachable_channel_layer_is_503_naming_it(
    http, db, point_channel_layer, closed_port
):
    point_channel_layer(f"redis://127.0.0.1:{closed_port}/0")
    _down(http.get("/api/health"), "channel_layer")


def test_hung_broker_and_channel_layer_answer_503_in_bounded_time(
    http, point_broker, point_channel_layer, silent_port
):
    point_broker(f"redis://127.0.0.1:{silent_port}/0")
    point_channel_layer(f"redis://127.0.0.1:{silent_port}/0")
    started = time.monotonic()
    response = http.get("/api/health", timeout=30)
    elapsed = time.monotonic() - started
    _down(response, "broker", "channel_layer")
    assert elapsed < 10  # each check gives up after about 2 s
