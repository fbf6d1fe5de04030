"""Shared fixtures: users by role, tokens, and real HTTP clients."""

from collections.abc import Iterator

import httpx
import pytest
from django.core.cache import caches
from django.db import transaction
from django.test.utils import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from bpmos.accounts.models import User
from bpmos.cache import RedisCache
from bpmos.roles import Role
from tests import support_hypothesis
from tests.support import (
    WAIT_SECONDS,
    redis_server,  # noqa: F401 (a fixture: a Redis of the test's own)
)

support_hypothesis.load()  # HYPOTHESIS_PROFILE: ci (default) or thorough

PASSWORD = "correct-horse-battery-9"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Modules that take longest (docs/testing.md, measured with --durations),
# longest first: sent to the xdist workers first and in this order, so that no
# long module starts at the end of a run and keeps one worker busy while the
# other is idle (the longest first, as a scheduler of jobs of known length
# does). The modules that seed the demo plant or drive a browser count as long
# without being listed, and follow these.
SLOW_MODULES = (
    "test_redis_outage_changes.py",
    "test_production_properties.py",
    "test_passport_properties.py",
    "test_schema_fuzz_as_admin.py",
    "test_schema_fuzz_as_plant_head.py",
    "test_schema_fuzz_as_supervisor.py",
    "test_schema_fuzz_as_planner.py",
    "test_schema_fuzz_as_operator.py",
    "test_schema_fuzz_as_auditor.py",
    "test_schema_fuzz.py",
    "test_role_matrix.py",
    "test_pages_plant_board.py",
    "test_compliance_returns.py",
    "test_stages_api.py",
    "test_dashboard_roles.py",
    "test_settings.py",
    "test_logging.py",
    "test_passport_ledger.py",
    "test_compliance_report_pdf.py",
    "test_production_services.py",
    "test_audit_api.py",
)
SLOW_FIXTURES = {"demo_plant", "browser"}

POSTGRESQL_ONLY_REASON = (
    "needs PostgreSQL: SQLite ignores select_for_update and serialises all "
    "writers itself, so there is no row-lock race to test"
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Long modules first (after pytest-random-order's shuffle, which this
    keeps within each group); on SQLite, skip the tests marked
    ``postgresql_only`` (the row-lock races)."""
    from django.conf import settings

    _slow_modules_first(items)

    if settings.DB_IS_POSTGRES:
        return
    skip = pytest.mark.skip(reason=POSTGRESQL_ONLY_REASON)
    for item in items:
        if item.get_closest_marker("postgresql_only") is not None:
            item.add_marker(skip)


def _slow_modules_first(items) -> None:
    """Stable: the modules of ``SLOW_MODULES`` first, in its order (longest
    first), then the other long ones, then the rest; within the last two
    groups the order stays the random one. ``--dist loadfile``
    (pyproject.toml) hands whole modules to the workers in this order."""
    rank = {name: index for index, name in enumerate(SLOW_MODULES)}
    long = set()
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            long.add(item.nodeid.split("::")[0])

    def group(item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        name = module.rsplit("/", 1)[-1]
        if name in rank:
            return (0, rank[name])
        return (1, 0) if module in long else (2, 0)

    items.sort(key=group)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The race tests skipped on SQLite, and the random order's seed."""
    _summarize_postgresql_only(terminalreporter)
    _summarize_random_order(terminalreporter, config)


def _summarize_postgresql_only(terminalreporter):
    """Say, in the summary, that the race tests did not run and why: a green
    SQLite run must not read as if they had passed."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "postgresql_only" in getattr(report, "keywords", {})
    ]
    if not skipped:
        return
    files = sorted({report.nodeid.split("::")[0] for report in skipped})
    terminalreporter.write_sep("=", "PostgreSQL-only tests skipped", yellow=True)
    terminalreporter.write_line(
        f"{len(skipped)} concurrency tests in {len(files)} "
        f"file{'s' if len(files) > 1 else ''} were skipped: "
        f"this run is on SQLite, and each {POSTGRESQL_ONLY_REASON}."
    )
    terminalreporter.write_line(f"  ({', '.join(files)})")
    terminalreporter.write_line(
        "  Run them with DATABASE_URL=postgres://... REDIS_URL=redis://... make test "
        "(CI's .ci/run does)."
    )


def _summarize_random_order(terminalreporter, config):
    """Name the random order's seed at the end too (the header is hidden by -q),
    so a failure seen in any run can be replayed in the same order."""
    seed = getattr(config.option, "random_order_seed", "").removeprefix("default:")
    bucket = getattr(config.option, "random_order_bucket", "none")
    bucket = bucket.removeprefix("default:")
    if seed and bucket != "none" and config.getoption("random_order_enabled", False):
        terminalreporter.write_line(
            f"test order: random, bucket {bucket}; "
            f"--random-order-seed={seed} replays it"
        )


@pytest.fixture(scope="session", autouse=True)
def _fast_test_run():
    """For the whole session, module and session fixtures included (the demo
    seed's users): MD5 password hashing, and the cheaper flush after each
    transactional test (tests/support_flush.py), the OpenAPI document generated
    once per process (tests/support_schema.py), WhiteNoise's static files listed
    once per process, not once per test client (tests/support_static.py)."""
    from tests import support_flush, support_schema, support_static

    support_flush.install()
    support_schema.install()
    support_static.install()
    with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
        yield


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test databases, whose teardown first closes what other
    threads of this process still hold open on them, or PostgreSQL refuses to
    drop them ("database ... is being accessed by other users"): the
    background workers' connections (the sealer's, the delivery thread's;
    bpmos.background) and asgiref's thread-sensitive executor's, where the
    async tests' ``sync_to_async`` ran."""
    from bpmos import background

    yield
    # Bounded: this runs in the last test's teardown, where a wait for ever
    # hangs the run at 99 % (docs/testing.md, "Every wait has a bound").
    stopped = background.shutdown_all(timeout=WAIT_SECONDS)
    closed = background.close_sync_thread_connections(timeout=WAIT_SECONDS)
    assert stopped, "a background worker's thread did not end at the session's end"
    assert closed, "asgiref's sync thread was still busy at the session's end"
    with django_db_blocker.unblock():
        _end_other_sessions()


def _end_other_sessions() -> None:
    """PostgreSQL: any other session still on the test database (not one of
    the threads above: a clean-clone CI run found one, not traced) is named in
    a warning, with this process's threads, then ended, so that pytest-django
    can drop the database. Never fails the run."""
    import threading
    import warnings

    from django.db import connection

    if connection.vendor != "postgresql":
        return
    others = (
        "FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, application_name, client_port, backend_start, state, "
                f"left(query, 160) {others}"
            )
            found = cursor.fetchall()
            if not found:
                return
            threads = sorted(thread.name for thread in threading.enumerate())
            warnings.warn(
                f"other sessions on the test database at its teardown: {found}; "
                f"this process's threads: {threads}; ending them",
                stacklevel=1,
            )
            cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
    except Exception as exc:  # a diagnosis: never the run's failure
        warnings.warn(f"could not look for other sessions: {exc!r}", stacklevel=1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's deliberate slowness buys nothing in tests (a test may set
    other hashers through ``settings``; the next one starts with MD5 again)."""
    settings.PASSWORD_HASHERS = FAST_HASHERS


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the cache; every test starts with none."""
    _cache_clear()
    yield
    _cache_clear()


def _cache_clear() -> None:
    """The cache's own keys, not the whole Redis database: the channel layer
    shares it, and ``cache.clear()`` (FLUSHDB) wiped the groups of a running
    daphne, whose fan-out then recovered and offered recent events again to a
    connection that was not expecting them."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    keys = list(client.scan_iter(match=backend.make_key("*"), count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def make_user(db):
    """Create a user with a role: ``make_user("supervisor")``."""
    counter = {"n": 0}

    def make(
        role: str = Role.OPERATOR, *, username: str | None = None, **extra
    ) -> User:
        counter["n"] += 1
        user = User(username=username or f"{role}-{counter['n']}", role=role, **extra)
        user.set_password(PASSWORD)
        user.apply_role_flags()
        user.save()
        return user

    return make


def bearer(user: User) -> dict[str, str]:
    """An Authorization header with a fresh access token for ``user``."""
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def api_as(user: User | None = None) -> APIClient:
    """DRF's test client signed in as ``user`` (``bearer``'s header); with no
    user, a client that sends no token."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    return client


@pytest.fixture
def http(live_server):
    """A real HTTP client talking to the live test server over a socket; a
    request waits up to ``WAIT_SECONDS`` (10 s ran out for a first POST at
    load 9)."""
    with httpx.Client(base_url=live_server.url, timeout=WAIT_SECONDS) as client:
        yield client


@pytest.fixture
def client_as(http, make_user):
    """``client_as("planner")`` -> (httpx client headers, user) for that role."""

    def make(role: str) -> tuple[dict[str, str], User]:
        user = make_user(role)
        return bearer(user), user

    return make


@pytest.fixture(scope="module")
def demo_plant(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The demo plant (``seed_demo``; its output) for a module's tests, inside
    a transaction rolled back after the last of them: seeded once per process,
    its rows copied back for the next modules (tests/support_demo.py). Each
    test runs in its own savepoint inside it, as under
    ``TestCase.setUpTestData``, so what a test changes is gone before the next.
    For non-transactional tests (``django_db`` without ``transaction=True``)."""
    from tests.support_demo import demo_plant_rows

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield demo_plant_rows()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright (tests/support_browser.py); the
    test skips where Chromium is not installed. Per module, not per session:
    Playwright's sync API keeps an event loop running in this thread while it
    is up, which every later test's ``async_to_sync`` would trip over."""
    from tests.support_browser import launch_browser

    yield from launch_browser()
