"""A task for tests/test_celery_worker_lost.py only (a worker loads it with
``--include``): it notes each start, sleeps, then makes its effect at most
once (an exclusive create), as the plant's tasks are written to."""

from __future__ import annotations

import os
import time

from celery import shared_task


@shared_task
def note_and_sleep(folder: str, name: str, seconds: float) -> bool:
    with open(os.path.join(folder, f"{name}.started"), "a") as started:
        started.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    try:
        done = os.open(os.path.join(folder, f"{name}.done"), os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return False
    os.close(done)
    return True
