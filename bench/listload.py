"""Benchmark of the 50-row list pages under load (docs/performance.md, "The
50-row list pages at 32 connections"): the REST API under gunicorn with the
production settings, 32 concurrent keep-alive client connections on one list
page at a time; req/s, p50 and p99 of each page. Goal: >= 500 req/s at 32
connections with p99 <= 100 ms (docs/performance.md, "Goals").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_bench \\
    REDIS_URL=redis://127.0.0.1:6379/10 \\
    .venv/bin/python -m bench.listload [--existing DATABASE_NAME]
        [--scale month] [--seed 1] [--workers 4] [--connections 32]
        [--duration 10] [--client auto|wrk|python]

1. The plant: as ``bench.scale`` (``--existing NAME`` times the plant
   ``manage.py generate_plant`` built in database ``NAME``, untouched but
   migrated; without it a plant of ``--scale`` is generated into the bench
   database, ``<DATABASE_URL's name>_bench``, re-created).
2. The server: ``gunicorn bpmos.wsgi:application --workers N`` (sync workers,
   docs/deploy.md's production command) with ``BPMOS_ENV=production`` (a
   random ``DJANGO_SECRET_KEY``, this machine in ``DJANGO_ALLOWED_HOSTS``);
   the clients send ``X-Forwarded-Proto: https`` as the reverse proxy does
   (production redirects plain HTTP) and a plant head's Bearer JWT.
3. The client: ``wrk`` (``apt-get install wrk`` on Debian/Ubuntu, ``brew
   install wrk`` on macOS; two threads, ``--connections`` connections, latency
   percentiles from its ``--latency`` report) when it is on the PATH, else a
   Python client (httpx on asyncio, one task per connection; it needs most
   of a core itself, so its figures are the client's ceiling as much as the
   server's). Both keep their connections alive; gunicorn's sync workers
   answer each request with ``Connection: close`` (they serve one connection
   at a time), so every request also opens a TCP connection, as it would
   behind a proxy that does not pool to the upstream.
4. The pages: work orders, passports and inventory items (50 rows, the
   page-number envelope) and the dispatch list (the desk's live products, one
   unpaginated list: its rate is measured with its rows, not judged by the
   50-row pages' goal), each for ``--duration`` seconds after a short warm-up;
   and the floor in the same run, ``GET /api/auth/me`` (authentication and
   the stack, no list), the ceiling of the table's ratio.

The client shares the machine with the server (and, on a shared machine,
with whatever else runs): the figures are what the cores left to the server
reach, not a server's capacity on its own machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    Row,
    free_port,
    http_answers,
    percentile,
    setup_bench_django,
    start_server,
    stop_server,
)

GOAL_RPS = 500.0
GOAL_P99_MS = 100.0
FLOOR = "stack floor: GET /api/auth/me"
DISPATCH_PATH = "/api/live-products/dispatchable"
PAGES = (
    ("work orders", "/api/workorders/"),
    ("passports", "/api/passports"),
    ("inventory items", "/api/inventory/items"),
    ("dispatch list", DISPATCH_PATH),
    (FLOOR, "/api/auth/me"),
)
HEADERS = {"X-Forwarded-Proto": "https"}  # as the reverse proxy says


def production_env() -> None:
    """This process's environment becomes the server's (inherited by
    gunicorn): production settings, a random secret shared by both so the
    tokens minted here are valid there."""
    os.environ["BPMOS_ENV"] = "production"
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(64))
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ["BPMOS_LOG_LEVEL"] = "WARNING"
    os.environ["BPMOS_ACCESS_TOKEN_MINUTES"] = "240"  # outlives the run
    os.environ["DJANGO_SETTINGS_MODULE"] = "bpmos.settings"
    if not os.environ.get("REDIS_URL"):
        sys.exit("The bench needs Redis (production settings): set REDIS_URL.")


def start_gunicorn(
    port: int, workers: int, log_path: Path, extra: list[str] | None = None
) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "bpmos.wsgi:application",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "120",
        *(extra or []),
    ]
    env = dict(os.environ)
    # A worker's Django boot at nice 19 on a loaded 2-core machine has taken
    # over a minute.
    return start_server(
        "gunicorn", command, port, log_path, ready=http_answers, env=env, timeout=240
    )


# --- the clients --------------------------------------------------------------


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _duration_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict:
    """req/s, p50, p99 (ms) and the failures (non-2xx/3xx answers, socket
    errors) from ``wrk --latency``'s report."""
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        output,
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    total = re.search(r"(\d+) requests in", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _duration_ms(latency["50"]),
        "p99": _duration_ms(latency["99"]),
        "requests": int(total.group(1)),
        # read errors: the sync worker's close after each answer, counted by
        # wrk as a read error when it lands on a kept-alive connection
        "failed": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def run_wrk(url: str, token: str, *, connections: int, duration: int) -> dict:
    headers = [
        arg
        for name, value in {**HEADERS, "Authorization": f"Bearer {token}"}.items()
        for arg in ("-H", f"{name}: {value}")
    ]
    done = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(2, connections)),  # wrk wants a connection a thread
            "-c",
            str(connections),
            "-d",
            f"{duration}s",
            "--latency",
            *headers,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        return parse_wrk(done.stdout)
    except (AttributeError, KeyError) as exc:
        raise RuntimeError(f"wrk's report not understood:\n{done.stdout}") from exc


async def _python_load(url: str, token: str, connections: int, duration: int):
    import httpx

    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections
    )
    times: list[float] = []
    failed = 0
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + duration

        async def connection() -> None:
            nonlocal failed
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(url, headers=headers)
                except httpx.TransportError:
                    failed += 1
                    continue
                times.append(time.perf_counter() - started)
                if response.status_code != 200:
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "rps": len(times) / elapsed,
        "p50": percentile(times, 50) * 1000,
        "p99": percentile(times, 99) * 1000,
        "requests": len(times),
        "failed": failed,
        "socket_errors": 0,
    }


def run_python(url: str, token: str, *, connections: int, duration: int) -> dict:
    return asyncio.run(_python_load(url, token, connections, duration))


# --- the bench --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    """Run the bench (``argv``: its options); returns the timed rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", default="month", choices=("small", "day", "month", "year")
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--existing",
        metavar="DATABASE_NAME",
        help="load the plant already generated in this database (not re-created)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds a page")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help='more gunicorn options, e.g. "--worker-class gthread --threads 2" '
        "(an experiment: the production command is docs/deploy.md's)",
    )
    args = parser.parse_args(argv)

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
        if client == "python":
            print("wrk not found (apt-get install wrk): the Python client loads")
    elif client == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (or --client python).")

    production_env()
    if args.existing:
        from bench.scale import use_existing

        use_existing(args.existing)
    else:
        setup_bench_django()
    from django.db import connection, connections
    from rest_framework_simplejwt.tokens import AccessToken

    from bpmos.accounts.models import User
    from plant_generator.generate import SCALES, generate, plant_counts

    if not args.existing:
        report = generate(SCALES[args.scale], seed=args.seed, scale=args.scale)
        print(f"generate_plant --scale {args.scale}: {report.total_seconds:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would have by now
    counts = plant_counts()
    print("plant: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()))
    token = str(AccessToken.for_user(User.objects.get(username="plant-head")))
    connections.close_all()

    import httpx

    port = free_port()
    log_path = Path("/tmp") / f"bench-listload-gunicorn-{port}.log"
    server = start_gunicorn(port, args.workers, log_path, args.gunicorn_args.split())
    run = run_wrk if client == "wrk" else run_python
    rows: list[tuple[str, str, dict]] = []
    print(
        f"\n== 50-row list pages: gunicorn {args.workers} workers "
        f"{args.gunicorn_args or '(sync)'} (production "
        f"settings), {args.connections} connections, {client}, {args.duration} s "
        f"a page; goal >= {GOAL_RPS:.0f} req/s, p99 <= {GOAL_P99_MS:.0f} ms =="
    )
    try:
        for label, path in PAGES:
            url = f"http://127.0.0.1:{port}{path}"
            headers = {**HEADERS, "Authorization": f"Bearer {token}"}
            for _ in range(2 * args.workers):  # every worker warm, the check
                answer = httpx.get(url, headers=headers, timeout=60)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: {answer.status_code} {answer.text}")
            body = answer.json()
            listed = body.get("results", body.get("products"))
            size = len(listed) if isinstance(listed, list) else None
            load_before = os.getloadavg()[0]
            found = run(
                url, token, connections=args.connections, duration=args.duration
            )
            found["rows"] = size
            found["load"] = (load_before, os.getloadavg()[0])
            rows.append((label, path, found))
            print(
                f"  {label:<32} {found['rps']:>8.0f} req/s  p50 {found['p50']:7.1f} ms"
                f"  p99 {found['p99']:7.1f} ms  ({found['requests']:,} requests, "
                f"{found['failed']} failed, {size if size is not None else '-'} "
                f"rows a page; load {found['load'][0]:.1f} -> {found['load'][1]:.1f})",
                flush=True,
            )
    finally:
        stop_server(server)
    return {"rows": rows, "client": client, "workers": args.workers}


def rows(argv: list[str] | None = None) -> list[Row]:
    """The bench's lines of ``make bench``'s table (bench/suite.py): each page's
    req/s at the connections against the floor's (``/api/auth/me``) in the
    same run."""
    found = main(argv)
    floor = next(r["rps"] for label, _path, r in found["rows"] if label == FLOOR)
    return [
        _row(found, label, path, r, floor)
        for label, path, r in found["rows"]
        if label != FLOOR
    ]


def _row(found: dict, label: str, path: str, r: dict, floor: float) -> Row:
    """A page's line; the dispatch desk's list is one unpaginated list of
    every live product (the frozen contract has no pages for it), so the
    50-row pages' goal is not its goal: its rate is measured, with its rows."""
    bench = f"listload (gunicorn x{found['workers']}, {found['client']})"
    timed = f"p50 {r['p50']:.1f}, p99 {r['p99']:.1f} ms"
    clean = not r["failed"]
    if path == DISPATCH_PATH:
        return Row(
            bench,
            f"{label}, {r['rows']} rows, no pages, req/s ({timed})",
            r["rps"],
            "req/s",
            "(measured: not a 50-row page)",
            clean,
            ceiling=floor,
        )
    return Row(
        bench,
        f"{label} req/s ({timed})",
        r["rps"],
        "req/s",
        f">= {GOAL_RPS:.0f} req/s, p99 <= {GOAL_P99_MS:.0f} ms",
        r["rps"] >= GOAL_RPS and r["p99"] <= GOAL_P99_MS and clean,
        ceiling=floor,
    )


if __name__ == "__main__":
    main()
