"""Helpers shared by the benches (``bench.lines``, ``bench.ledger``,
``bench.fanout``): no measurements here.

* output: ``Progress``, a one-line progress bar on stderr; ``percentile`` and
  ``ms``, p50/p99 of a list of seconds in milliseconds;
* the bench database: ``bench_database_url`` (``<DATABASE_URL's name>_bench``),
  ``recreate_database``, and ``setup_bench_django``, which re-creates it, sets
  Django up on it and migrates it;
* the suite's table: ``Row`` (a path's figure, ceiling, ratio, goal, pass)
  and ``print_table``, what each bench's ``rows()`` returns and ``make
  bench`` prints (bench/suite.py);
* servers: ``free_port``, ``daphne_command``, ``server_env`` (the environment
  of a server subprocess), ``start_server`` (start one and wait until it is
  ready, e.g. ``http_answers``; ``ServerFailed`` if it is not) and
  ``stop_server``.

Standard library only at import time; nothing from ``tests`` (the end-to-end
tests use the server helpers from here).
"""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


# --- output -------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (no dependency)."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.started = time.perf_counter()
        self.lock = threading.Lock()
        self._last = 0.0

    def advance(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            now = time.perf_counter()
            if now - self._last < 0.2 and self.done < self.total:
                return
            self._last = now
            width = 30
            filled = int(width * self.done / self.total)
            rate = self.done / max(now - self.started, 1e-9)
            sys.stderr.write(
                f"\r{self.label:<22} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done:>9,}/{self.total:,} {rate:>10,.0f}/s"
            )
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(values: list[float], *, decimals: int = 2, count: bool = True) -> str:
    """``p50 … ms  p99 … ms`` of ``values`` (seconds); with ``count``, ``(n=…)``."""
    text = (
        f"p50 {percentile(values, 50) * 1000:7.{decimals}f} ms  "
        f"p99 {percentile(values, 99) * 1000:7.{decimals}f} ms"
    )
    return f"{text}  (n={len(values)})" if count else text


# --- the bench database -----------------------------------------------------------


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("The bench needs PostgreSQL: set DATABASE_URL (and REDIS_URL).")
    parts = urlsplit(url)
    return parts._replace(path=parts.path.rstrip("/") + "_bench").geturl()


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_bench_django() -> None:
    """Re-create the bench database, set Django up on it and migrate it."""
    url = bench_database_url()
    print(f"bench database: {urlsplit(url).path.lstrip('/')} (re-created)")
    recreate_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ["BPMOS_LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def freeze_like_a_worker() -> None:
    """Move everything this process holds so far (Django, the plant a bench
    built) out of the garbage collector's reach, as ``bpmos/wsgi.py`` does
    when a worker boots: a timed request then pays for full collections of
    its own objects only, as a served one does. Without it a full collection
    walked the bench process's ~300,000 objects, 100-200 ms on a quiet
    machine, inside whichever request triggered it (a single p99 outlier)."""
    gc.collect()
    gc.freeze()


# --- servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "bpmos.settings"
    env["BPMOS_ACCESS_TOKEN_MINUTES"] = "240"
    env["BPMOS_LOG_LEVEL"] = "WARNING"
    return env


def daphne_command(port: int, application: str = "bpmos.asgi:application") -> list:
    """The command line of one daphne process serving ``application`` on
    127.0.0.1:``port`` (the benches' and the end-to-end tests' server)."""
    return [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        application,
    ]


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def http_answers(port: int) -> bool:
    """Whether an HTTP server on 127.0.0.1:``port`` answers (any status)."""
    import httpx

    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.TransportError:
        return False
    return True


class ServerFailed(RuntimeError):
    """A server subprocess exited or did not become ready (the message ends
    with its log's tail)."""


def start_server(
    name: str,
    command: list[str],
    port: int,
    log_path: Path,
    *,
    ready: Callable[[int], bool] = port_open,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.Popen:
    """Run ``command`` (a server on ``port``) from the project directory with
    ``env`` (default ``server_env()``), its output in ``log_path``; returns
    once ``ready(port)``.

    Raises ``ServerFailed`` if the server dies first or is not ready within
    ``timeout`` seconds (stopping it; a loaded 2-core CI machine has taken
    over 30).
    """
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=server_env() if env is None else env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerFailed(f"{name} exited:\n{log_path.read_text()[-3000:]}")
        if ready(port):
            return process
        if time.monotonic() > deadline:
            stop_server(process)
            raise ServerFailed(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants
    (a Celery prefork worker's child does the work), read from /proc (Linux):
    what a scale-out bench's processes spent, whatever the wall clock did."""
    tick = os.sysconf("SC_CLK_TCK")
    total, seen, todo = 0.0, set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            # The fields after the command's closing parenthesis: utime and
            # stime are the 12th and 13th of them (proc(5): fields 14, 15).
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile: its time is in its parent's no more
    return total


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s; raises ``subprocess.TimeoutExpired``
    if the process is still there 30 s after that (never waits for ever)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


# --- the suite's table (``make bench``, bench/suite.py) -----------------------------


@dataclass
class Row:
    """One line of ``make bench``'s table: a path's figure, its ceiling measured
    in the same run (None where the bench has none), their ratio, the goal and
    whether the figure meets it. ``ratio`` is figure / ceiling, or ceiling /
    figure for a time (``lower_is_better``), so 100 % is the ceiling either way."""

    bench: str
    path: str
    figure: float
    unit: str
    goal: str
    passed: bool
    ceiling: float | None = None
    lower_is_better: bool = False
    # The ratio the goal is judged on when it is not figure / ceiling (the
    # readings ingest: the median of its rounds' ratios, the rates pooled).
    judged_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.judged_ratio is not None:
            return self.judged_ratio
        if not self.ceiling or not self.figure:
            return None
        if self.lower_is_better:
            return self.ceiling / self.figure
        return self.figure / self.ceiling


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    return f"{text} {unit}"


def print_table(rows: list[Row], *, out=None) -> None:
    """The one table: bench, path, figure, ceiling, ratio, goal, pass/miss."""
    out = out or sys.stdout
    head = ("bench", "path", "figure", "ceiling (same run)", "ratio", "goal", "")
    lines = [
        (
            row.bench,
            row.path,
            _number(row.figure, row.unit),
            _number(row.ceiling, row.unit),
            "-" if row.ratio is None else f"{row.ratio:.0%}",
            row.goal,
            "pass" if row.passed else "MISS",
        )
        for row in rows
    ]
    widths = [
        max(len(str(c)) for c in column) for column in zip(head, *lines, strict=True)
    ]
    for line in (head, tuple("-" * w for w in widths), *lines):
        out.write(
            "  ".join(
                str(cell).rjust(w) if i in (2, 3, 4) else str(cell).ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
            + "\n"
        )
    passed = sum(row.passed for row in rows)
    out.write(f"{passed} of {len(rows)} paths meet their goal\n")
