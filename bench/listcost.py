"""The server time of one request to each 50-row list page of ``bench.listload``,
in process (docs/performance.md, "The 50-row list pages at 32 connections").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_x \\
    REDIS_URL=redis://127.0.0.1:6379/10 \\
    .venv/bin/python -m bench.listcost --existing DATABASE_NAME [--repeat 300]
        [--profile DIRECTORY]

The pages of ``bench.listload`` and its floor (``GET /api/auth/me``), each
through the whole Django stack with the production settings
(``BPMOS_ENV=production``, as the gunicorn workers of ``bench.listload``):
``django.test.Client`` with ``SERVER_NAME="localhost"``, a plant head's Bearer
JWT and ``X-Forwarded-Proto: https``. Per page: the mean and p50/p99 of
``--repeat`` requests one after the other (CPU time of this process and wall
time), the queries of one request and their time in the driver.
``--profile DIRECTORY`` also writes each page's cProfile over the same number
of requests (``<page>.prof``; ``python -m pstats`` reads it). A gunicorn sync
worker spends about this much CPU on each request, plus the HTTP parsing and
the connection: the figure to compare with the CPU a 2-core machine can give a
page at the load bench's goal (docs/performance.md).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import time
from pathlib import Path

from bench.common import percentile
from bench.listload import FLOOR, PAGES, production_env


def main(argv: list[str] | None = None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", metavar="DATABASE_NAME", required=True)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--profile", metavar="DIRECTORY", type=Path)
    args = parser.parse_args(argv)

    production_env()
    from bench.scale import use_existing

    use_existing(args.existing)
    from django.db import connection
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

    from bpmos.accounts.models import User

    token = str(AccessToken.for_user(User.objects.get(username="plant-head")))
    client = Client(SERVER_NAME="localhost")
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_X_FORWARDED_PROTO": "https",
    }
    rows = []
    print(
        f"\n== in process, {args.repeat} requests a page (load "
        f"{os.getloadavg()[0]:.1f}) =="
    )
    for label, path in PAGES:
        for _ in range(5):
            response = client.get(path, **headers)
            assert response.status_code == 200, (path, response.content[:300])
        queries: list[float] = []

        def timed(execute, sql, params, many, context, queries=queries):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries.append(time.perf_counter() - started)

        with connection.execute_wrapper(timed):
            client.get(path, **headers)
        gc.collect()
        gc.freeze()
        walls, cpus = [], []
        for _ in range(args.repeat):
            started, cpu = time.perf_counter(), time.process_time()
            client.get(path, **headers)
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - started)
        mean = sum(walls) / len(walls) * 1000
        cpu_mean = sum(cpus) / len(cpus) * 1000
        p50, p99 = percentile(walls, 50) * 1000, percentile(walls, 99) * 1000
        rows.append((label, path, mean, cpu_mean, p50, p99, len(queries)))
        print(
            f"  {label:<32} mean {mean:6.2f} ms (CPU {cpu_mean:6.2f})  p50 {p50:6.2f}"
            f"  p99 {p99:6.2f} ms  {len(queries)} q ({sum(queries) * 1000:.2f} ms)",
            flush=True,
        )
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.repeat):
                client.get(path, **headers)
            profile.disable()
            name = label.split(":")[0].replace(" ", "-")
            profile.dump_stats(args.profile / f"{name}.prof")
    floor = next(row for row in rows if row[0] == FLOOR)
    print(f"  (load {os.getloadavg()[0]:.1f}; floor mean {floor[2]:.2f} ms)")
    return rows


if __name__ == "__main__":
    main()
