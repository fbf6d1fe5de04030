"""Where a readings batch's CPU goes, in process: the endpoint (or the bare
POST -> COPY ceiling) called through its WSGI app with a Bearer token, fresh
1,000-reading batches of ``bench.lines``' generator shuffled over a few
machines (so most batches move a machine's state, as in ``bench.lines``),
and per batch: the worker thread's CPU, the whole process's (the event
delivery and audit sealing threads included) and its PostgreSQL backend's
(``/proc/<pid>/schedstat``; the database runs on this machine).

    DATABASE_URL=postgres://... REDIS_URL=redis://... \\
    .venv/bin/python -m bench.ingest_profile [--batches 200] [--app ceiling]
        [--profile 30]

Re-creates the bench database (``<DATABASE_URL's name>_bench``) as
``bench.lines`` does. ``--profile N``: also run cProfile over the timed
batches and print its N costliest functions by own time (cProfile's overhead
inflates Python; read its split, not its total). Compare trees by running
this in each, alternated, on the same machine (docs/performance.md, session
18): one figure is one run's median per batch.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import setup_bench_django
from bench.lines import build_plant, json_row, readings_for


def _backend_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0])


def _environ(path: str, body: bytes, token: str) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


# What --steps times: (module path, attribute path) of each step, wrapped in
# place with a thread-CPU stopwatch (inclusive of what it calls).
_STEPS = [
    ("bpmos.accounts.authentication", "BpmosJWTAuthentication.authenticate"),
    ("rest_framework.views", "APIView.initial"),
    ("rest_framework.views", "APIView.finalize_response"),
    ("lines.api.views", "MachineReadingsView.post"),
    ("lines.api.views", "_body"),
    ("lines.services", "readings_validate"),
    ("lines.services", "_readings_write"),
    ("lines.services", "_lock_machine"),
    ("bpmos.bulk", "BulkTarget.copy_all"),
    ("lines.services", "machine_hours_mark_stale"),
    ("lines.services", "_apply_state"),
    ("elog.audit", "record_quick"),
    ("django.db.backends.base.base", "BaseDatabaseWrapper.commit"),
    (
        "django.db.backends.base.base",
        "BaseDatabaseWrapper.close_if_unusable_or_obsolete",
    ),
    ("django.core.handlers.base", "BaseHandler.resolve_request"),
    ("django.template.response", "SimpleTemplateResponse.render"),
]


def _time_steps(spent: dict) -> None:
    import functools
    import importlib

    for module_name, attribute in _STEPS:
        owner = importlib.import_module(module_name)
        *parents, name = attribute.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, name)
        if isinstance(original, staticmethod):
            continue
        label = attribute

        def timed(*a, __original=original, __label=label, **k):
            started = time.thread_time_ns()
            try:
                return __original(*a, **k)
            finally:
                entry = spent.setdefault(__label, [0, 0])
                entry[0] += time.thread_time_ns() - started
                entry[1] += 1

        setattr(owner, name, functools.wraps(original)(timed))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--warm", type=int, default=20, help="untimed batches first")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--machines", type=int, default=8)
    parser.add_argument("--app", choices=["endpoint", "ceiling"], default="endpoint")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--sort", default="tottime", help="cProfile's sort key")
    parser.add_argument(
        "--steps", action="store_true", help="thread CPU of each step, per batch"
    )
    args = parser.parse_args(argv)

    os.environ["BPMOS_ACCESS_TOKEN_MINUTES"] = "240"
    setup_bench_django()
    from django.db import connection
    from rest_framework_simplejwt.tokens import AccessToken

    from bpmos.accounts.models import User

    gateway = User.objects.create(username="scada-gateway", role="operator")
    machines = build_plant(1, 4, 2)[: args.machines]
    total = args.warm + args.batches
    per_machine = -(-total // len(machines)) * args.batch
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    batches: list[tuple[int, bytes]] = []
    for machine in machines:
        rows = list(
            readings_for(machine.pk, per_machine, end, random.Random(machine.pk))
        )
        for start in range(0, len(rows), args.batch):
            part = rows[start : start + args.batch]
            body = json.dumps([json_row(*row) for row in part]).encode()
            batches.append((machine.pk, body))
    random.Random(0).shuffle(batches)
    batches = batches[:total]
    token = str(AccessToken.for_user(gateway))
    connection.close()

    if args.app == "ceiling":
        from bench.ingest_ceiling import application
    else:
        from bpmos.wsgi import application

    spent: dict[str, list[int]] = {}
    if args.steps and args.app == "endpoint":
        _time_steps(spent)

    def post(machine_id: int, body: bytes) -> None:
        answer: list[str] = []
        result = application(
            _environ(f"/api/machines/{machine_id}/readings", body, token),
            lambda status, headers, exc_info=None: answer.append(status),
        )
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not answer[0].startswith("201"):
            raise RuntimeError(f"{answer[0]}: {payload[:300]!r}")

    for machine_id, body in batches[: args.warm]:
        post(machine_id, body)
    spent.clear()
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    gc.collect()
    gc.freeze()  # as bpmos.wsgi does at a worker's boot

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time_ns, 1e-9)  # CPU, not wall
    thread_ms, process_ms, backend_ms = [], [], []
    for machine_id, body in batches[args.warm :]:
        t0, p0, b0 = time.thread_time_ns(), time.process_time_ns(), _backend_ns(backend)
        if profiler is not None:
            profiler.enable()
        post(machine_id, body)
        if profiler is not None:
            profiler.disable()
        time.sleep(0.002)  # the delivery thread's share lands in this batch
        thread_ms.append((time.thread_time_ns() - t0) / 1e6)
        process_ms.append((time.process_time_ns() - p0) / 1e6)
        backend_ms.append((_backend_ns(backend) - b0) / 1e6)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        if cursor.fetchone()[0] != backend:
            print("warning: the backend changed during the run")

    figures = {
        "worker": statistics.median(thread_ms),
        "process": statistics.median(process_ms),
        "backend": statistics.median(backend_ms),
        "worker_mean": statistics.fmean(thread_ms),
        "process_mean": statistics.fmean(process_ms),
        "backend_mean": statistics.fmean(backend_ms),
    }
    load = os.getloadavg()[0]
    print(
        f"{args.app}: {args.batches} batches of {args.batch}, load {load:.2f}; "
        "CPU per batch, median (mean): "
        f"worker thread {figures['worker']:.2f} ({figures['worker_mean']:.2f}) ms, "
        f"process {figures['process']:.2f} ({figures['process_mean']:.2f}) ms, "
        f"PostgreSQL backend {figures['backend']:.2f} "
        f"({figures['backend_mean']:.2f}) ms"
    )
    for name, (total_ns, calls) in spent.items():
        per_batch = total_ns / 1e6 / args.batches
        print(f"  {name:<34} {per_batch:6.3f} ms a batch ({calls} calls)")
    if profiler is not None:
        import pstats

        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.profile)
    return figures


if __name__ == "__main__":
    main()
