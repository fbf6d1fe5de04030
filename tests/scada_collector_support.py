"""Helpers of the collector tests: the collector and the plant simulator each
in a thread with its own event loop (as in their own processes), and waiting
for a condition with a deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import close_old_connections

from scada.collector import Collector
from scada.simulator import PlantSimulator

# The collector's timings shortened for a test; the outage tests use the
# production defaults.
FAST = {
    "heartbeat_s": 0.5,
    "timeout_s": 2.0,
    "backoff_max_s": 1.0,
    "watch_s": 0.2,
    "flush_s": 0.1,
}


def wait_until(condition: Callable[[], Any], *, within: float, every: float = 0.1):
    """``condition()``'s first truthy value, polled until ``within`` seconds
    have passed; AssertionError (naming the condition) if it never comes."""
    deadline = time.monotonic() + within
    while True:
        close_old_connections()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not true within {within} s: {getattr(condition, '__doc__', '')}"
            )
        time.sleep(every)


class LoopThread:
    """Runs ``main(stop)`` in a thread of its own; ``stop()`` sets the event
    and waits for the coroutine to end."""

    def __init__(self, main: Callable[[asyncio.Event], Any], name: str) -> None:
        self._main = main
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            self.loop.run_until_complete(self._main(self._stop))
        except BaseException as exc:  # reported by stop()
            self._error = exc
        finally:
            self.loop.close()

    def start(self) -> LoopThread:
        self.thread.start()
        assert self._ready.wait(60), f"{self.thread.name} did not start"
        return self

    def stop(self) -> None:
        # 60 s: a collector closes its sessions and writes its links' state
        # through asgiref's one sync thread; 30 s ran out once at load 9.
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(60)
        assert not self.thread.is_alive(), f"{self.thread.name} did not stop"
        if self._error is not None:
            raise self._error


def collector_thread(**options: Any) -> tuple[Collector, LoopThread]:
    collector = Collector(**options)
    return collector, LoopThread(collector.run, "collector").start()


def simulator_thread(*, endpoint: str, tick_s: float) -> tuple[Any, LoopThread]:
    plant = PlantSimulator(endpoint=endpoint, tick_s=tick_s)
    runner = LoopThread(plant.run, "plant-simulator").start()
    return plant, runner


@pytest.fixture
def run_collector():
    """``run_collector(**options)`` starts a collector (``FAST`` timings unless
    given); all stopped at the end."""
    running = []

    def start(**options):
        collector, thread = collector_thread(**{**FAST, **options})
        running.append(thread)
        return collector

    yield start
    for thread in running:
        thread.stop()
