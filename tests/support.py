"""Test helpers shared by the cross-cutting tests: route discovery, the envelope,
a daphne server in a subprocess.

``api_routes()`` walks the real URLconf, so every endpoint added under the
``api`` namespace is picked up by the role matrix and the OpenAPI tests without
anyone listing it.

``daphne_server()`` runs bpmos.asgi under daphne on this test run's database
and Redis, for the end-to-end tests of the WebSocket and the SSE stream;
``OwnRedis`` is a redis-server of a test's own, which it may kill (the
``redis_server`` fixture starts one).

``run_together()`` is the concurrency tests' harness: calls in threads of their
own, released at once. ``WAIT_SECONDS``, ``join_or_fail()`` and
``map_in_threads()`` keep every wait of a test bounded (docs/testing.md, "Every
wait has a bound").
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils.regex_helper import normalize

from bench.common import (
    ServerFailed,
    daphne_command,
    free_port,
    http_answers,
    port_open,
    start_server,
    stop_server,
)
from bpmos.errors import DomainError

API_NAMESPACE = "api"

# The bound on every wait of a test for a thread, a process or a message that
# should come at once (docs/testing.md, "Every wait has a bound"): generous for
# a loaded 2-core CI machine, and a failure that names what did not happen
# rather than a run that never ends.
WAIT_SECONDS = 60.0
# The bound on a walk through a cursor-paginated list: a cursor that does not
# advance would otherwise loop for ever; far more pages than any test makes.
PAGES_AT_MOST = 1000
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
ENVELOPE_KEYS = {"success", "error", "code", "details", "request_id"}

# Plausible values for a URL parameter, tried in order until the route's regex
# accepts one. Ids get digits (large, so no real row is hit and an allowed caller
# gets a harmless 404); other parameters a short slug first, then codes, UUIDs
# and dates.
_DIGITS = "987654"
_SLUGS = ("s5", "S5", "json", str(uuid.UUID(int=1)), "2026-01-01", "a")
_PREFERRED = {
    "format": "json",  # DRF format-suffix routes: /api/things.json
    "symbol": "bpan",  # a passport's QR codes: /api/passports/{id}/qr/bpan
}


class RouteDiscoveryError(AssertionError):
    """A route under /api/ that the discovery cannot turn into a request."""


@dataclass(frozen=True)
class ApiRoute:
    """One URL pattern under the ``api`` namespace, made concrete."""

    name: str  # the URL name, as POLICY keys it
    view_name: str  # with namespaces: "api:auth-login"
    regex: str
    path: str  # a concrete path that resolves to this pattern: "/api/users/987654"
    methods: tuple[str, ...]  # upper-case HTTP methods the view implements
    kwargs: dict[str, str] = field(default_factory=dict)


def _walk(resolver, prefix: str = "", namespaces: tuple[str, ...] = ()):
    for pattern in resolver.url_patterns:
        regex = prefix + pattern.pattern.regex.pattern.removeprefix("^")
        if isinstance(pattern, URLResolver):
            inner = namespaces + ((pattern.namespace,) if pattern.namespace else ())
            yield from _walk(pattern, regex, inner)
        elif isinstance(pattern, URLPattern):
            yield pattern, regex, namespaces


def _implemented_methods(callback) -> tuple[str, ...] | None:
    """HTTP methods a DRF view answers; None for a view that is not DRF's."""
    actions = getattr(callback, "actions", None)
    if actions:  # a ViewSet bound by a router: {"get": "list", "post": "create"}
        return tuple(m.upper() for m in HTTP_METHODS if m in actions)
    cls = getattr(callback, "cls", None)
    if cls is None:
        return None
    return tuple(m.upper() for m in HTTP_METHODS if hasattr(cls, m))


def _group_pattern(regex: str, name: str) -> str:
    """The sub-pattern of the named group ``name`` in ``regex`` ("" if unnamed)."""
    opening = f"(?P<{name}>"
    if opening not in regex:
        return ""
    start = regex.index(opening) + len(opening)
    depth, i, in_class = 1, start, False
    while depth:
        char = regex[i]
        if char == "\\":
            i += 1
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif not in_class:
            depth += {"(": 1, ")": -1}.get(char, 0)
        i += 1
    return regex[start : i - 1]


def _candidates(regex: str, name: str) -> list[str]:
    if name in _PREFERRED:
        return [_PREFERRED[name]]
    group = _group_pattern(regex, name)
    digits_only = (
        group and re.fullmatch(group, _DIGITS) and not re.fullmatch(group, "s5")
    )
    if digits_only or name in {"pk", "id"} or name.endswith(("_id", "Id")):
        return [_DIGITS, *_SLUGS]
    return [*_SLUGS, _DIGITS]


def _concrete_path(regex: str) -> tuple[str, dict[str, str]] | None:
    """A path matching ``regex`` with plausible values for its named groups."""
    for template, params in normalize(regex):
        choices = [_candidates(regex, param) for param in params]
        for values in itertools.product(*choices):
            kwargs = dict(zip(params, values, strict=True))
            candidate = template % kwargs
            if re.match(regex, candidate):
                return "/" + candidate, kwargs
    return None


def api_routes() -> list[ApiRoute]:
    """Every URL pattern under the ``api`` namespace, with a path and its methods.

    Raises ``RouteDiscoveryError`` naming every pattern it cannot handle (not a
    DRF view, no name, no concrete path, or a path that another pattern shadows)
    rather than leaving it out.
    """
    routes, problems = [], []
    for pattern, regex, namespaces in _walk(get_resolver()):
        if not namespaces or namespaces[0] != API_NAMESPACE:
            continue
        label = f"{regex!r} -> {pattern.lookup_str}"
        if not pattern.name:
            problems.append(f"{label}: has no name=, so POLICY cannot refer to it")
            continue
        view_name = ":".join((*namespaces, pattern.name))
        methods = _implemented_methods(pattern.callback)
        if methods is None:
            problems.append(
                f"{label}: not a DRF view, so RolePolicyPermission never runs on it"
            )
            continue
        built = _concrete_path(regex)
        if built is None:
            problems.append(f"{label}: no plausible value fits its parameters")
            continue
        path, kwargs = built
        try:
            match = resolve(path)
        except Resolver404:
            match = None
        if match is None or match.view_name != view_name:
            problems.append(
                f"{label}: {path} resolves to "
                f"{match.view_name if match else 'nothing'}, not {view_name}"
            )
            continue
        routes.append(
            ApiRoute(
                name=pattern.name,
                view_name=view_name,
                regex=regex,
                path=path,
                methods=methods,
                kwargs=kwargs,
            )
        )
    if problems:
        raise RouteDiscoveryError(
            "Routes under /api/ the tests cannot check:\n" + "\n".join(problems)
        )
    return routes


def assert_envelope(response, status: int, code: str) -> dict:
    """Assert ``response`` is the error envelope of docs/design.md §4; return its body.

    Works for httpx responses and Django test-client responses alike.
    """
    content = getattr(response, "text", None) or response.content.decode()
    assert response.status_code == status, content
    assert response.headers["Content-Type"].startswith("application/json"), content
    body = response.json()
    assert set(body) == ENVELOPE_KEYS, body
    assert body["success"] is False
    assert body["code"] == code, body
    assert isinstance(body["error"], str), body
    assert body["error"], body
    assert isinstance(body["details"], dict), body
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


# --- a daphne server in a subprocess ------------------------------------------------


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server on this test run's database and Redis, plus
    ``extra`` (e.g. ``BPMOS_WS_AUTH_TIMEOUT="1.0"``)."""
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)  # pass the per-worker values explicitly
    db = settings.DATABASES["default"]
    if settings.DB_IS_POSTGRES:
        url = urlsplit(os.environ["DATABASE_URL"])
        env["DATABASE_URL"] = url._replace(path="/" + db["NAME"]).geturl()
    else:
        env.pop("DATABASE_URL", None)
        env["BPMOS_SQLITE_PATH"] = str(db["NAME"])
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    env["BPMOS_REDIS_PREFIX"] = settings.REDIS_PREFIX
    env["BPMOS_DATA_DIR"] = str(settings.DATA_DIR)
    env.update(extra)
    env["DJANGO_SETTINGS_MODULE"] = "bpmos.settings"
    return env


@contextmanager
def daphne_server(
    log_path: Path, port: int | None = None, **extra_env: str
) -> Iterator[int]:
    """A daphne process serving bpmos.asgi on ``port`` (default: a free one);
    yields the port once it answers HTTP, stops the process on exit. A test
    that restarts the server passes the first one's port to the second.

    The server's output goes to ``log_path``; ``extra_env`` is added to its
    environment (``server_env``). Fails the test (with the log's tail) if
    daphne exits or does not answer within 180 s (a bound on waiting, not a
    timing: at load average 24 on 2 cores daphne took over 60 s to import and
    answer, and every test of the module errored at setup).
    """
    port = port or free_port()
    try:
        process = start_server(
            "daphne",
            daphne_command(port),
            port,
            log_path,
            ready=http_answers,
            env=server_env(**extra_env),
            timeout=180.0,
        )
    except ServerFailed as failure:
        pytest.fail(str(failure))
    try:
        yield port
    finally:
        stop_server(process)


class OwnRedis:
    """A redis-server of one test only, on a free port (never the shared one):
    no persistence, so a restart is empty. For the tests that stop Redis under
    a real daphne (tests/test_live_redis_restart.py, test_dispatch_sse_redis.py,
    test_redis_outage_changes.py), through the ``redis_server`` fixture.
    """

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        command = [
            shutil.which("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        log_path = self.directory / f"redis-{self.starts}.log"
        try:
            self.process = start_server("redis", command, self.port, log_path)
        except ServerFailed as failure:
            pytest.fail(str(failure))

    def kill(self) -> None:
        """Stop it as a crash would: no shutdown, nothing saved."""
        self.process.kill()
        try:
            self.process.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"redis-server (pid {self.process.pid}) outlived SIGKILL")
        assert not port_open(self.port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def channel_layer_settings(self, prefix: str) -> dict:
        """``CHANNEL_LAYERS`` publishing to this Redis under ``prefix`` (the
        server's ``BPMOS_REDIS_PREFIX``), as a gunicorn worker would."""
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [{"address": self.url, "socket_connect_timeout": 1}],
                    "prefix": f"{prefix}:asgi",
                },
            }
        }


@pytest.fixture
def redis_server(tmp_path) -> Iterator[OwnRedis]:
    """A started ``OwnRedis`` in ``tmp_path``, killed after the test if it is
    still up; the test skips where no ``redis-server`` is installed. Every
    test may ask for it (tests/conftest.py imports it)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: this test runs a Redis of its own")
    redis = OwnRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        if redis.process is not None and redis.process.poll() is None:
            redis.kill()


# --- concurrency -------------------------------------------------------------------


def run_together(
    calls: list[Callable[[], object]], *, timeout: float = 120.0
) -> list[object]:
    """Run each call in a thread of its own, all released at once by a barrier;
    returns, in the calls' order, each call's result or the exception it
    raised. Each thread has its own database connection (Django opens one per
    thread) and closes it when its call ends. Fails if a thread is still
    running ``timeout`` seconds after the start."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=20)
            results[index] = calls[index]()
        except BaseException as exc:  # returned to the test, which judges it
            results[index] = exc
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=work, args=(i,), name=f"run_together-{i}", daemon=True)
        for i in range(len(calls))
    ]
    for thread in threads:
        thread.start()
    join_or_fail(*threads, timeout=timeout)
    return results


def map_in_threads(
    function: Callable[[object], object], items: list, *, timeout: float = WAIT_SECONDS
) -> list[object]:
    """``[function(item) for item in items]``, each call in a daemon thread of
    its own, all released at once (``run_together``); raises the first
    exception a call raised. Unlike a ``ThreadPoolExecutor`` block, whose exit
    waits for every call however long it takes, it fails after ``timeout``
    seconds, and a hung call's thread does not keep the process from ending."""
    results = run_together(
        [lambda item=item: function(item) for item in items], timeout=timeout
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def join_or_fail(*threads: threading.Thread, timeout: float = WAIT_SECONDS) -> None:
    """Join ``threads`` within ``timeout`` seconds in all; fail naming those
    still running (a bare ``join()`` would wait for a hung one for ever)."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    alive = [thread.name for thread in threads if thread.is_alive()]
    if alive:
        pytest.fail(f"still running after {timeout:g} s: {', '.join(alive)}")


def outcome_code(result: object) -> str:
    """A ``run_together`` result as "ok" or the ``DomainError``'s code; any
    other exception is raised again (the test fails with it)."""
    if isinstance(result, DomainError):
        return result.code
    if isinstance(result, BaseException):
        raise result
    return "ok"
