"""A Celery worker killed in the middle of a task: the task runs again on the
next worker and its effect happens once; the message the dead worker had not
started is not held back (late acknowledgement, a prefetch of one, the broker's
visibility timeout: bpmos/settings.py). Real workers on the test run's Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from bpmos.celery import app
from tests.support import server_env

pytestmark = pytest.mark.skipif(
    not settings.REDIS_URL, reason="the embedded broker has no visibility timeout"
)

VISIBILITY = 3  # seconds, for the test's workers only
TASK = "tests.celery_crash_tasks.note_and_sleep"


def _worker(queue: str, log: Path) -> subprocess.Popen:
    """A worker as the Procfile runs one (prefork, one child: with the solo pool
    even an early acknowledgement waits for the task, so it would prove nothing)."""
    command = [
        sys.executable, "-m", "celery", "-A", "bpmos", "worker",
        "--include", "tests.celery_crash_tasks", "--queues", queue,
        "--concurrency", "1", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=server_env(BPMOS_CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY)),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(path: Path, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(
                f"{path.name} never appeared; worker log:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.1)


def _stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_the_settings_acknowledge_late_one_at_a_time():
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert (
        settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
        > settings.CELERY_TASK_TIME_LIMIT
    )


def test_a_task_cut_off_by_a_killed_worker_runs_again_once(tmp_path):
    queue = f"worker-lost-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "workers.log"
    first = _worker(queue, log)
    second = None
    try:
        app.send_task(TASK, args=[str(tmp_path), "slow", 4.0], queue=queue)
        app.send_task(TASK, args=[str(tmp_path), "next", 0.0], queue=queue)
        _wait_for(tmp_path / "slow.started", 90, log)
        _stop(first, signal.SIGKILL)  # mid-task: no acknowledgement, no clean-up
        assert not (tmp_path / "slow.done").exists()
        assert not (tmp_path / "next.started").exists()  # it was not prefetched
        time.sleep(VISIBILITY + 1)  # the taken message becomes visible again
        second = _worker(queue, log)
        _wait_for(tmp_path / "slow.done", 90, log)
        _wait_for(tmp_path / "next.done", 30, log)
        time.sleep(VISIBILITY + 2)  # acknowledged: nothing comes back
        assert len(_lines(tmp_path / "slow.started")) == 2
        assert len(_lines(tmp_path / "next.started")) == 1
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
