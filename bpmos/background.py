"""Background workers: a named daemon thread per process that does a job after
the request that asked for it has answered (``BackgroundWorker``).

Two parts of BPM-OS hand work to one after their transaction commits:

* ``elog.audit``'s sealing thread (``bpmos-audit-sealer``) chains the audit
  records a writer staged (docs/security.md, "Staged audit records");
* ``bpmos.events.services``'s delivery thread (``bpmos-event-delivery``) sends
  committed outbox rows to the channel layer (docs/lines.md, "Announce").

Neither may lose anything by dying with its process: what they are handed is
committed first, and a beat task does whatever the thread never got to. So
the thread is a daemon, and what it is handed lives only in memory.

What a worker does:

* **Order and batches.** The thread starts on the first ``submit``. Items are
  handed to ``handle(items)`` in the order they were submitted, in batches:
  everything queued when the thread wakes (at most ``max_batch``). An
  exception from ``handle`` is logged (``background_work_failed``) and the
  thread goes on with the next batch.
* **Database connections.** Django's connections are per thread, so this
  thread has its own: checked before each batch (``close_old_connections``:
  dropped when broken or older than ``CONN_MAX_AGE``, as the request cycle
  does), closed after each batch when ``close_after_each``, after
  ``idle_close_seconds`` with nothing to do, and when the thread stops. A
  connection an idle thread kept would keep the database from being dropped
  (a test database: "is being accessed by other users") and hold a pooler's
  slot.
* **drain and shutdown.** ``drain()`` waits until every item submitted before
  it was handled (tests). ``shutdown()`` does the same, then the thread closes
  its connections and ends; a later ``submit`` starts a new one.
  ``shutdown_all()`` does it for every worker of the process: at interpreter
  exit (``atexit``: gunicorn and daphne workers, management commands), when a
  Celery pool process ends (``worker_process_shutdown``, bpmos/celery.py: a
  prefork child leaves with ``os._exit``, past ``atexit``), and at the end of
  the test session (tests/conftest.py), before the test database is dropped.
* **Fork.** A forked child (gunicorn, Celery prefork) has no copy of the
  parent's thread: ``os.register_at_fork`` makes each worker forget it (its
  queue and lock too; the lock may have been held at the fork), and the
  child's first ``submit`` starts the child's own thread. The parent's thread's
  database connection is not touched in the child (psycopg closes a
  connection only in the process that opened it).

Other threads that hold a database connection until the process ends are not
workers of this module: asgiref's thread-sensitive executor, where
``sync_to_async`` runs outside a request (channels' consumers, async tests),
ends at interpreter exit and its connection with it;
``close_sync_thread_connections()`` closes it earlier (the test session's end).
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# Seconds a worker's thread keeps its database connection with nothing to do.
IDLE_CLOSE_SECONDS = 1.0

# How long ``shutdown_all`` waits for each worker's thread at process exit.
SHUTDOWN_TIMEOUT_SECONDS = 5.0


class _Marker:
    """Put on the queue by ``drain`` and ``shutdown``: set once every item
    before it was handled; ``stop`` ends the thread after that."""

    __slots__ = ("done", "stop")

    def __init__(self, *, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


class BackgroundWorker:
    """A named daemon thread of this process that calls ``handle(items)`` with
    the items submitted to it, in order, in batches (this module's docstring).

    ``name`` names the thread (logs, tests); ``max_batch`` caps how many items
    one call handles (None: all that are queued); ``idle_close_seconds``:
    the thread closes its database connections after that long idle (None:
    keeps them); ``close_after_each``: it closes them after every batch;
    ``linger_seconds``: once an item arrives, wait that long for more to
    join its batch (a stream of items one at a time is handled in batches:
    the event delivery's sends and marks), unless a ``drain`` or
    ``shutdown`` is waiting.
    """

    def __init__(
        self,
        name: str,
        handle: Callable[[list[Any]], None],
        *,
        max_batch: int | None = None,
        idle_close_seconds: float | None = IDLE_CLOSE_SECONDS,
        close_after_each: bool = False,
        linger_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self._handle = handle
        self._max_batch = max_batch
        self._linger_seconds = linger_seconds
        self._idle_close_seconds = idle_close_seconds
        self._close_after_each = close_after_each
        self._forget()
        _workers.add(self)

    def _forget(self) -> None:
        """No thread yet (a new worker; a forked child's copy of one)."""
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue | None = None
        self._thread: threading.Thread | None = None

    def submit(self, item: Any = None) -> None:
        """Hand ``item`` to the thread (None: a wake-up, for a job that finds
        its work itself, as the sealer does); starts the thread if needed."""
        with self._lock:
            self._running_queue().put(item)

    def submit_many(self, items: Iterable[Any]) -> None:
        """``submit`` each of ``items``, in order, none between them."""
        with self._lock:
            items_queue = self._running_queue()
            for item in items:
                items_queue.put(item)

    def _running_queue(self) -> queue.SimpleQueue:
        # Under self._lock, so that nothing is put on a queue that ``shutdown``
        # has already closed with its stop marker.
        if self._queue is None:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(
                target=self._run, args=(self._queue,), name=self.name, daemon=True
            )
            self._thread.start()
        return self._queue

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every item submitted so far was handled; False if that
        took longer than ``timeout`` seconds."""
        with self._lock:
            if self._queue is None:
                return True
            marker = _Marker()
            self._queue.put(marker)
        return marker.done.wait(timeout)

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Handle every item submitted so far, then close the thread's database
        connections and end it; False if it had not ended after ``timeout``
        seconds. A later ``submit`` starts a new thread."""
        with self._lock:
            items_queue, thread = self._queue, self._thread
            self._queue = self._thread = None
            if items_queue is None or thread is None:
                return True
            items_queue.put(_Marker(stop=True))
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def running(self) -> bool:
        """Whether this process has the worker's thread (started, not shut down)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _run(self, items: queue.SimpleQueue) -> None:
        from django.db import close_old_connections, connections

        try:
            while True:
                batch = self._next_batch(items)
                work = [item for item in batch if not isinstance(item, _Marker)]
                if work:
                    # This thread's own connection, outside any request: dropped
                    # when broken or too old, as the request cycle does its own.
                    close_old_connections()
                    try:
                        self._handle(work)
                    except Exception:
                        log.exception("background_work_failed", worker=self.name)
                    if self._close_after_each:
                        connections.close_all()
                markers = [item for item in batch if isinstance(item, _Marker)]
                for marker in markers:
                    marker.done.set()
                if any(marker.stop for marker in markers):
                    return  # the connections are closed on the way out
        finally:
            connections.close_all()

    def _next_batch(self, items: queue.SimpleQueue) -> list[Any]:
        """The next item (waiting for it) and every one queued behind it, at
        most ``max_batch``; the database connections are closed while idle."""
        from django.db import connections

        try:
            first = items.get(timeout=self._idle_close_seconds)
        except queue.Empty:
            connections.close_all()  # idle: give the database its connection back
            first = items.get()
        batch = [first]
        deadline = None
        waited_for = isinstance(first, _Marker)  # a drain or shutdown: no lingering
        while self._max_batch is None or len(batch) < self._max_batch:
            try:
                item = items.get_nowait()
            except queue.Empty:
                if waited_for or not self._linger_seconds:
                    break
                if deadline is None:
                    deadline = time.monotonic() + self._linger_seconds
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = items.get(timeout=remaining)
                except queue.Empty:
                    break
            batch.append(item)
            waited_for = waited_for or isinstance(item, _Marker)
        return batch


_workers: weakref.WeakSet[BackgroundWorker] = weakref.WeakSet()


def shutdown_all(timeout: float = SHUTDOWN_TIMEOUT_SECONDS) -> bool:
    """``shutdown`` every worker of this process (each within ``timeout``
    seconds); False if a thread had not ended by then."""
    return all([worker.shutdown(timeout) for worker in list(_workers)])


def close_sync_thread_connections(timeout: float = SHUTDOWN_TIMEOUT_SECONDS) -> bool:
    """Close the database connections of asgiref's thread-sensitive executor
    thread: ``sync_to_async`` runs there when no request's thread is at hand
    (an async test, a Channels consumer), and its connection outlives the call
    (``CONN_MAX_AGE``). Run in that thread, as Django's connections are per
    thread; False if that thread was still busy with an earlier call after
    ``timeout`` seconds (the connections are then closed when it gets to it)."""
    from asgiref.sync import SyncToAsync
    from django.db import connections

    done = SyncToAsync.single_thread_executor.submit(connections.close_all)
    try:
        done.result(timeout)
    except TimeoutError:
        return False
    return True


def _after_fork_in_child() -> None:
    for worker in list(_workers):
        worker._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown_all)
