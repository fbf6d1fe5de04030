"""The background workers (bpmos.background): order and batches, a failing
batch, the thread's database connections after drain and shutdown, a forked
child's own thread, process exit, and what the test session's end leaves on
the database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, connections

from bpmos import background
from bpmos.background import BackgroundWorker
from bpmos.events import services
from elog import audit


@pytest.fixture
def workers():
    """Makes workers (``make(handle, **options)``) and shuts them down after."""
    made: list[BackgroundWorker] = []

    def make(handle, **options) -> BackgroundWorker:
        worker = BackgroundWorker("bpmos-test-worker", handle, **options)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        assert worker.shutdown()


def test_items_are_handled_in_order_in_batches_of_at_most_max_batch(workers):
    batches: list[list[int]] = []
    busy, release = threading.Event(), threading.Event()

    def handle(items: list[int]) -> None:
        batches.append(items)
        busy.set()
        assert release.wait(timeout=30)

    worker = workers(handle, max_batch=3)
    worker.submit(1)
    assert busy.wait(timeout=30)  # the thread holds 1; the rest queue up
    worker.submit_many([2, 3, 4, 5])
    worker.submit(6)
    worker.submit_many([7])
    release.set()
    assert worker.drain(timeout=30)
    assert batches == [[1], [2, 3, 4], [5, 6, 7]]


def test_with_linger_items_handed_over_one_at_a_time_share_a_batch(workers):
    """``linger_seconds``: the thread waits that long after an item for more
    (the delivery thread: one row per single append); a drain's marker ends
    the wait, and every item is still handled once, in order."""
    batches: list[list[int]] = []
    worker = workers(batches.append, linger_seconds=30)
    worker.submit(1)
    worker.submit(2)  # within the linger however slow the machine
    worker.submit_many([3, 4])
    assert worker.drain(timeout=60)  # the marker ends the linger
    assert batches == [[1, 2, 3, 4]]


def test_a_failing_batch_is_logged_and_the_thread_goes_on(workers):
    handled: list[str] = []

    def handle(items: list[str]) -> None:
        if items == ["bad"]:
            raise RuntimeError("this batch fails")
        handled.extend(items)

    worker = workers(handle)
    worker.submit("bad")
    assert worker.drain(timeout=30)
    worker.submit("good")
    assert worker.drain(timeout=30)
    assert handled == ["good"]
    assert worker.running


def test_a_wake_up_without_work_to_drain_returns_at_once(workers):
    worker = workers(lambda items: None)
    assert not worker.running
    assert worker.drain(timeout=0)
    assert worker.shutdown(timeout=0)
    assert not worker.running


def _query_in_thread(used: list) -> None:
    """A handler that queries the database in the worker's thread and keeps
    that thread's connection wrapper (and the backend's pid, on PostgreSQL)."""
    wrapper = connections["default"]
    with wrapper.cursor() as cursor:
        if wrapper.vendor == "postgresql":
            cursor.execute("SELECT pg_backend_pid()")
            used.append((wrapper, cursor.fetchone()[0]))
        else:
            cursor.execute("SELECT 1")
            used.append((wrapper, None))


def _backends() -> set[int]:
    """The backends connected to the test database now, this one included."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def _backends_once_settled(expected: set[int]) -> set[int]:
    """``_backends()`` once it is ``expected``, or after 10 s: a backend leaves
    pg_stat_activity a moment after its client closed the connection."""
    deadline = time.monotonic() + 10
    while (found := _backends()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.mark.django_db(transaction=True)
def test_shutdown_closes_the_threads_connection_and_a_submit_starts_a_new_thread(
    workers,
):
    used: list = []
    worker = workers(lambda items: _query_in_thread(used), idle_close_seconds=None)
    worker.submit()
    assert worker.drain(timeout=30)
    (wrapper, pid) = used[0]
    assert wrapper is not connection  # the worker thread's own
    assert wrapper.connection is not None  # kept while the thread runs
    assert worker.shutdown(timeout=30)
    assert not worker.running
    assert wrapper.connection is None
    if pid is not None:
        assert pid not in _backends_once_settled(_backends() - {pid})

    worker.submit()
    assert worker.drain(timeout=30)
    assert worker.running
    assert len(used) == 2
    assert used[1][0] is not wrapper  # a new thread, a new connection


@pytest.mark.django_db(transaction=True)
def test_with_close_after_each_no_connection_is_left_after_a_batch(workers):
    used: list = []
    worker = workers(
        lambda items: _query_in_thread(used),
        idle_close_seconds=None,
        close_after_each=True,
    )
    worker.submit_many([1, 2])
    assert worker.drain(timeout=30)
    assert worker.running
    assert [wrapper.connection for wrapper, _pid in used] == [None] * len(used)


def test_a_forked_child_starts_its_own_thread(workers):
    handled: list[str] = []
    worker = workers(handled.extend)
    worker.submit("in the parent")
    assert worker.drain(timeout=30)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: the parent's thread does not exist here
        try:
            ok = not worker.running and worker.drain(timeout=0)
            worker.submit("in the child")
            ok = ok and worker.drain(timeout=10) and handled[-1] == "in the child"
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.close(read)
    os.waitpid(child, 0)
    assert answer == b"ok"
    assert handled == ["in the parent"]
    assert worker.running


# A process that hands its worker two items and exits at once: the atexit
# handler registered first runs last, after bpmos.background's own.
AT_EXIT = """
import atexit, django
atexit.register(lambda: print(worker.running, handled, flush=True))
django.setup()
from bpmos.background import BackgroundWorker
handled = []
worker = BackgroundWorker("bpmos-test-worker", handled.extend)
worker.submit(1)
worker.drain()
worker.submit(2)
"""


def test_at_process_exit_the_worker_handles_what_it_holds_and_ends():
    answer = subprocess.run(
        [sys.executable, "-c", AT_EXIT],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bpmos.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert answer.stdout.splitlines()[-1] == "False [1, 2]"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pg_stat_activity is PostgreSQL's"
)
def test_after_shutdown_all_the_threads_connections_are_closed(monkeypatch):
    """What the test session's end does (tests/conftest.py) before the test
    database is dropped: the connections of the sealer's thread, the delivery
    thread and asgiref's sync thread are closed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (main,) = cursor.fetchone()
    used: list = []
    # Neither worker gives its connection back while idle during the test (a
    # loaded machine may take over a second between the first query and the
    # check below): only the shutdown closes them.
    monkeypatch.setattr(audit._sealer, "_idle_close_seconds", None)
    monkeypatch.setattr(services._background, "_idle_close_seconds", None)
    # The sealer's thread, the delivery thread's and asgiref's sync thread
    # (where an async test's sync_to_async runs) each take a connection.
    monkeypatch.setattr(audit, "_seal_quietly", lambda: _query_in_thread(used))
    monkeypatch.setattr(
        services, "_deliver_quietly", lambda rows: _query_in_thread(used)
    )
    audit._sealer.submit()
    assert audit._sealer.drain(timeout=30)
    services._background.submit_many(["a row"])
    assert services._background.drain(timeout=30)
    asyncio.run(sync_to_async(_query_in_thread)(used))
    pids = {pid for _wrapper, pid in used}
    assert len(pids) == 3
    assert main not in pids
    assert pids <= _backends()

    assert background.shutdown_all(timeout=30)
    assert background.close_sync_thread_connections(timeout=30)
    assert not audit._sealer.running
    assert not services._background.running
    # Those three are gone (other backends of this worker's database, such
    # as a server an earlier test started, are not this test's).
    deadline = time.monotonic() + 10
    while (left := _backends()) & pids and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left & pids
    assert main in left


def test_closing_the_sync_threads_connections_does_not_wait_for_a_stuck_call():
    """The session's end must not hang on asgiref's sync thread (tests/conftest.py):
    while an earlier call still runs there, the close gives up and says so."""
    from asgiref.sync import SyncToAsync

    release = threading.Event()
    stuck = SyncToAsync.single_thread_executor.submit(release.wait, 60)
    try:
        assert background.close_sync_thread_connections(timeout=0.2) is False
    finally:
        release.set()
    assert stuck.result(timeout=30) is True
    assert background.close_sync_thread_connections(timeout=30) is True
