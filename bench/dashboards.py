"""Benchmark of the dashboards (docs/dashboards.md) and the log stream
(docs/logs.md): server time of every dashboard endpoint and of ``/api/logs``
over a large bench plant.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_bench \\
    REDIS_URL=redis://127.0.0.1:6379/10 \\
    .venv/bin/python -m bench.dashboards [--readings 1000000] [--log-rows 1000000] \\
        [--telemetry 1000000] [--days 30] [--repeat 30] [--reuse [--only-logs]]

The bench uses its own database, ``<DATABASE_URL's name>_bench``, which it
re-creates (migrated) on every run; nothing else is touched.

1. Build the bench plant: the demo plant (``seed_demo``: users, runbooks and
   gates, lines, stock, connectors, returns), then in bulk, by the plant
   generator (``plant_generator``, as ``manage.py generate_plant``; the plan
   from the options, ``bench_plan``), spread over the last ``--days`` days:
   * lines x stations x machines and ``--readings`` machine readings (COPY, as
     ``bench.lines``), with the hourly OEE roll-ups and the OEE snapshots built
     by the beat functions (``machine_hours_refresh``, ``oee_snapshots_refresh``);
   * work orders with their stages (completed, in progress with stages on hold,
     planned), exceptions (some escalated), inventory items (some on hold),
     alarms (some unacknowledged);
   * ``--log-rows`` log rows over the stream's sources: audit records (hash
     chained as ``elog.audit`` does, COPY), shift-log entries, passport ledger
     events (packs with their modules and cells, each ledger hashed as
     ``passports.ledger.append`` does: manufactured, QA results with some
     failures and retests, assembly, provisioning, custody moves, holds) and
     the alarm journal;
   * ``--telemetry`` battery telemetry samples (SoH, SoC, temperature) of
     packs of two models (COPY).
2. Time each request server-side, in process, through the whole Django stack
   (``django.test.Client`` with a real ``Authorization: Bearer <JWT>`` header:
   middleware, authentication, view, serialization), as a role that may read
   it, ``--repeat`` times: p50 and p99, the 15 ms goal, and the number of
   queries of one request. The endpoints: ``/api/dashboard/summary``,
   ``/trends`` for every metric (OEE per line, telemetry per pack and per
   model) over a day (hourly) and a month (daily), ``/distributions``, each
   role's ``/summary`` and ``/attention``, and ``/api/logs``: the first page, a
   page deep in the stream (its cursor followed ``--deep-pages`` pages down),
   each category, a severity, a time window, a common and a rare search term.
   The summary, the distributions and the role dashboards come from read
   models (``bpmos.dashboards.readmodels``): each is timed "served" (nothing
   changed) and "after a write" (its read models dropped before each request,
   untimed). ``--only-read-models`` times only those, ``--only-logs`` only
   ``/api/logs``.
3. The machine-speed factor, as ``bench.lines`` prints it (50 readings
   through a ModelSerializer, against docs/performance.md's 1.85 ms), so the
   figures compare across machines.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import (
    Progress,
    Row,
    freeze_like_a_worker,
    percentile,
    setup_bench_django,
)

GOAL_MS = 15.0


# --- the measurements ---------------------------------------------------------------


class Timer:
    """Times GETs through the whole Django stack and keeps the table rows."""

    def __init__(self, repeat: int, goal_ms: float = GOAL_MS):
        from django.test import Client

        self.client = Client()
        self.repeat = repeat
        self.goal_ms = goal_ms
        self.rows: list[tuple[str, str, float, float, int]] = []

    def get(
        self,
        label: str,
        path: str,
        token: str,
        *,
        repeat: int | None = None,
        before=None,
    ):
        """Times ``path``; returns the last response's JSON. ``before()``, if
        given, runs (untimed) before each timed request: a write's effect."""
        from django.db import connection

        # No token: the client's own session (the admin's pages).
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        response = self.client.get(path, **headers)  # warm, and the check
        assert response.status_code == 200, (path, response.content[:300])
        queries = []

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        # The request's time in the database driver (every query's execute
        # and fetch, round trips included): what the rest of the stack is not.
        in_database = [0.0]

        def database_time(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                in_database[0] += time.perf_counter() - started

        # What this process holds by now (the client, the read models, the
        # earlier requests' leftovers) frozen again, untimed, as a worker's
        # heap is frozen at boot (bpmos/wsgi.py): otherwise a full collection
        # over it lands inside whichever sample crosses the threshold.
        # Measured 2026-12-04 on a quiet machine with one freeze before all
        # requests: 16 of 59 requests had one 20-77 ms p99 sample, none with
        # collection off (collecting before every sample instead cost each
        # sample ~1 ms of cold caches).
        gc.collect()
        gc.freeze()
        if before is not None:
            before()
        with connection.execute_wrapper(count):
            self.client.get(path, **headers)
        times, db_times = [], []
        for _ in range(repeat or self.repeat):
            if before is not None:
                before()
            in_database[0] = 0.0
            with connection.execute_wrapper(database_time):
                started = time.perf_counter()
                response = self.client.get(path, **headers)
                times.append(time.perf_counter() - started)
            db_times.append(in_database[0])
        p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
        db50 = percentile(db_times, 50) * 1000
        self.rows.append((label, path, p50, p99, len(queries)))
        mark = "ok" if p99 <= self.goal_ms else "MISS"
        print(
            f"  {label:<44} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
            f"{len(queries):>3} q  db p50 {db50:6.2f} ms  {mark}",
            flush=True,
        )
        if not response.get("Content-Type", "").startswith("application/json"):
            return None  # a page
        return response.json()

    def table(self, factor: float) -> None:
        print(
            f"\n== summary (goal: p99 <= {GOAL_MS:.0f} ms server time; this machine "
            f"~{GOAL_MS * factor:.0f} ms) =="
        )
        print(f"  {'request':<44} {'p50 ms':>8} {'p99 ms':>8} {'queries':>8}  goal")
        for label, _path, p50, p99, queries in self.rows:
            goal = "meets" if p99 <= GOAL_MS else "misses"
            print(f"  {label:<44} {p50:8.2f} {p99:8.2f} {queries:>8}  {goal}")


def dashboard_requests(
    timer: Timer,
    tokens: dict,
    now: datetime,
    pack,
    model: str,
    *,
    skip_trends: bool = False,
    only_oee_trends: bool = False,
):
    from urllib.parse import urlencode

    from bpmos.dashboards import readmodels, trends

    # The summary, the distributions and the role dashboards come from read
    # models (bpmos.dashboards.readmodels): "served" is a read while nothing
    # changes (every screen's poll), "after a write" the first read after a
    # write dropped the payloads: every part of it, the worst case (its read
    # models invalidated before each request).
    def read_model_requests(label: str, path: str, token: str, *models) -> None:
        if only_oee_trends:
            return
        timer.get(f"{label} (served)", path, token)
        if not models:
            return

        def write() -> None:
            for model in models:
                model.invalidate()

        timer.get(f"{label} (after a write)", path, token, before=write)

    head = tokens["plant-head"]
    rm = readmodels
    read_model_requests(
        "summary",
        "/api/dashboard/summary",
        head,
        rm.PLAN,
        rm.FIRST_PASS,
        rm.PIECES,
        rm.HOLDS,
    )
    read_model_requests(
        "distributions",
        "/api/dashboard/distributions",
        head,
        rm.STAGE_WIP,
        rm.CUSTODY,
        rm.STOCK,
    )
    day = {"bucket": "hour", "from": (now - timedelta(days=1)).isoformat()}
    month = {"bucket": "day", "from": (now - timedelta(days=30)).isoformat()}
    # 12 weeks: the roll-up metrics only (the plant's history is --days long)
    weeks = {"bucket": "week", "from": (now - timedelta(weeks=12)).isoformat()}
    rolled_up = ("lineYield", "oee")
    for metric in () if skip_trends else trends.METRICS:
        if only_oee_trends and metric not in (*rolled_up, "built"):
            continue
        targets = [{}]
        if metric in trends.TELEMETRY_METRICS:
            targets = [{"passport": pack}, {"model": model}]
        spans = [("day", day), ("month", month)]
        if metric in rolled_up:
            spans.append(("12 weeks", weeks))
        for target in targets:
            for span, window in spans:
                query = urlencode({"metric": metric, **window, **target})
                what = next(iter(target), "")
                timer.get(
                    f"trends {metric} {what} {span}".replace("  ", " "),
                    f"/api/dashboard/trends?{query}",
                    head,
                )
    for role in ("operator", "supervisor", "plant-head", "admin", "auditor"):
        read_model_requests(
            f"{role} summary",
            f"/api/dashboard/{role}/summary",
            tokens[role],
            rm.ROLE_SUMMARY[role],
            *((rm.STAGE_WIP,) if role in ("planner", "plant-head") else ()),
        )
        read_model_requests(
            f"{role} attention",
            f"/api/dashboard/{role}/attention",
            tokens[role],
            *((rm.ATTENTION[role],) if role in rm.ATTENTION else ()),
        )


def roll_up_trend_times(now: datetime, repeat: int) -> None:
    """The OEE and line-yield trends computed in process (``trends.trend_get``,
    no HTTP stack): from the day roll-ups for day and week buckets, and from
    the hour roll-ups alone (``from_days=False``, the path before the day
    roll-ups) on the same data; p50 / p99 ms."""
    from functools import partial
    from unittest import mock

    from bpmos.dashboards import trends
    from lines import selectors

    spans = {
        "day": ("hour", now - timedelta(days=1)),
        "month": ("day", now - timedelta(days=30)),
        "12 weeks": ("week", now - timedelta(weeks=12)),
    }
    selector_of = {"oee": "line_bucket_figures", "lineYield": "piece_counts_series"}
    print("\n== OEE / lineYield trends in process (trend_get), p50 / p99 ms ==")
    for metric, selector in selector_of.items():
        for span, (bucket, start) in spans.items():
            figures = []
            for from_days in (True, False):
                patched = partial(getattr(selectors, selector), from_days=from_days)
                times = []
                with mock.patch.object(selectors, selector, patched):
                    for _ in range(repeat):
                        started = time.perf_counter()
                        trends.trend_get(
                            metric=metric, bucket=bucket, start=start, end=now
                        )
                        times.append((time.perf_counter() - started) * 1000)
                figures.append(
                    f"{statistics.median(times):8.2f} {percentile(times, 99):8.2f}"
                )
            print(
                f"  {metric:9} {span:8} ({bucket:4})  days path {figures[0]}"
                f"   hours path {figures[1]}"
            )


def read_model_part_times(supervisor, repeat: int) -> None:
    """What the first read after a write computes, in process (no HTTP
    stack): each part of the summary, the supervisor's attention list and the
    distributions as its selector computes it, then the whole payload with
    its read models dropped (untimed) before each call; p50 / p99 ms, the
    queries of one call and their p50 time in the database driver. Every row's
    samples are taken in interleaved rounds, so a change in the machine's load
    moves them all alike."""
    from django.db import connection
    from django.utils import timezone

    from bpmos.dashboards import attention, distributions, kpis, readmodels
    from inventory import selectors as inventory_selectors
    from lines import selectors as line_selectors
    from lines import wip
    from passports import selectors as passport_selectors
    from runbooks import selectors as runbook_selectors

    windows = kpis.summary_windows(timezone.now())
    rm = readmodels

    def dropped(*models):
        def drop() -> None:
            for model in models:
                model.invalidate()

        return drop

    def kind(name):
        return lambda: attention._BUILDERS[name](
            "supervisor", supervisor, attention._lists("supervisor", {name})
        )

    parts = {
        "summary: plan and built": (
            lambda: runbook_selectors.work_order_plan_and_built(windows=windows),
            None,
        ),
        "summary: first QA results": (
            lambda: passport_selectors.first_pass_counts(windows=windows),
            None,
        ),
        "summary: line pieces": (
            lambda: line_selectors.snapshot_piece_counts(windows=windows),
            None,
        ),
        "summary: holds": (kpis.hold_figures, None),
        "summary, its 4 parts dropped": (
            kpis.summary_get,
            dropped(rm.PLAN, rm.FIRST_PASS, rm.PIECES, rm.HOLDS),
        ),
        "supervisor attention: gates": (kind(attention.GATE), None),
        "supervisor attention: exceptions": (kind(attention.EXCEPTION), None),
        "supervisor attention: holds": (kind(attention.HOLD), None),
        "supervisor attention: returns": (kind(attention.RETURN), None),
        "supervisor attention, dropped": (
            lambda: attention.attention_body(role="supervisor", user=supervisor),
            dropped(rm.ATTENTION["supervisor"]),
        ),
        "distributions: stage WIP": (wip.stage_wip_list, None),
        "distributions: custody mix": (passport_selectors.custody_mix, None),
        "distributions: stock by status": (
            inventory_selectors.item_status_counts,
            None,
        ),
        "distributions, its 3 parts dropped": (
            distributions.distributions_get,
            dropped(rm.STAGE_WIP, rm.CUSTODY, rm.STOCK),
        ),
    }
    times = {label: [] for label in parts}
    db_times = {label: [] for label in parts}
    queries = {label: 0 for label in parts}
    in_database = [0.0, 0]

    def database_time(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            in_database[0] += time.perf_counter() - started
            in_database[1] += 1

    for _ in range(repeat):
        for label, (compute, before) in parts.items():
            if before is not None:
                before()
            in_database[:] = [0.0, 0]
            with connection.execute_wrapper(database_time):
                started = time.perf_counter()
                compute()
                times[label].append((time.perf_counter() - started) * 1000)
            db_times[label].append(in_database[0] * 1000)
            queries[label] = in_database[1]
    print(
        "\n== the first read after a write, in process: p50 / p99 ms,"
        " queries, p50 ms in the database =="
    )
    for label in parts:
        print(
            f"  {label:<40} {statistics.median(times[label]):7.2f}"
            f" {percentile(times[label], 99):7.2f}  {queries[label]:>2} q"
            f"  db {statistics.median(db_times[label]):6.2f}"
        )


def log_requests(timer: Timer, token: str, now: datetime, deep_pages: int):
    from urllib.parse import urlencode

    from bpmos.logevents import CATEGORIES

    first = timer.get("logs first page", "/api/logs", token)
    # Follow the cursor down, untimed, then time the page found there.
    path = first["next"]
    progress = Progress("walk the log stream", deep_pages)
    for _ in range(deep_pages):
        page = timer.client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").json()
        path = page["next"]
        progress.advance()
    deep = path.split("/api/logs", 1)[1]
    timer.get(f"logs page {deep_pages + 2} (deep)", f"/api/logs{deep}", token)
    for category in CATEGORIES:
        timer.get(f"logs category={category}", f"/api/logs?category={category}", token)
    timer.get(
        "logs severity=error,critical", "/api/logs?severity=error,critical", token
    )
    window = urlencode(
        {
            "from": (now - timedelta(days=12)).isoformat(),
            "to": (now - timedelta(days=11)).isoformat(),
        }
    )
    timer.get("logs 1-day window 11 days back", f"/api/logs?{window}", token)
    timer.get("logs search common (torque)", "/api/logs?search=torque", token)
    timer.get(
        "logs search rare (flux capacitor)",
        "/api/logs?search=flux%20capacitor",
        token,
        repeat=max(5, timer.repeat // 3),
    )


def machine_factor(repeat: int) -> float:
    from bench.lines import REFERENCE_SERIALIZER, serializer_times

    reference = statistics.median(serializer_times(repeat))
    factor = reference / REFERENCE_SERIALIZER
    print(
        f"machine: 50 readings, ModelSerializer {reference * 1000:.2f} ms"
        f" (docs/performance.md: {REFERENCE_SERIALIZER * 1000:.2f} ms), {factor:.1f}x;"
        f" the {GOAL_MS:.0f} ms goal is ~{GOAL_MS * factor:.0f} ms of this machine's"
        " time"
    )
    return factor


def reuse_bench_django() -> None:
    """Django on the bench database a previous run built, migrated."""
    import os
    import sys

    from bench.common import BASE_DIR, bench_database_url

    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ["BPMOS_LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    indexes_usable_now()
    print("bench database: reused, migrated")


def indexes_usable_now() -> None:
    """Rewrite (``VACUUM FULL``) the tables whose indexes the planner may not
    use yet. The plant generator drops a table's plain indexes for the bulk
    load and builds them again after it; over rows updated in place (HOT
    chains: the passports' holds and custody moves) PostgreSQL flags such an
    index ``indcheckxmin``, unusable by any snapshot older than its build,
    and while some other transaction of the cluster stays open (another
    engineer's test worker idle in its transaction) that is every snapshot:
    the batteries on hold were read by a scan of every passport (35 ms)
    instead of their partial index (0.05 ms). The rewrite builds them
    without the flag (seconds; the bench database only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT indrelid::regclass::text FROM pg_index WHERE indcheckxmin"
        )
        tables = [table for (table,) in cursor.fetchall()]
        for table in tables:
            cursor.execute(f"VACUUM FULL ANALYZE {table}")
    if tables:
        print(f"bench database: {', '.join(tables)} rewritten (indexes usable now)")


FLOOR = "stack floor: GET /api/auth/me"


def main(argv: list[str] | None = None) -> list[tuple[str, str, float, float, int]]:
    """Run the bench (``argv``: its options); returns the table's rows
    (label, path, p50 ms, p99 ms, queries)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument("--telemetry", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30, help="the plant's history")
    parser.add_argument("--repeat", type=int, default=30, help="samples per request")
    parser.add_argument("--deep-pages", type=int, default=200)
    parser.add_argument(
        "--only-read-models",
        action="store_true",
        help="time only the summary, distributions and role dashboards",
    )
    parser.add_argument(
        "--only-oee-trends",
        action="store_true",
        help="time only the OEE and line-yield trends (and built, the floor),"
        " through the stack and in process",
    )
    parser.add_argument(
        "--only-logs",
        action="store_true",
        help="time only /api/logs (with --reuse: a before/after of the stream)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time again over the bench database a previous run built (migrated"
        " first: a before/after of a change on the same data)",
    )
    args = parser.parse_args(argv)

    import os

    os.environ["BPMOS_ACCESS_TOKEN_MINUTES"] = "240"  # outlives the run
    if args.reuse:
        reuse_bench_django()
    else:
        setup_bench_django()
    from django.conf import settings
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    from bpmos.accounts.models import User

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if not args.reuse:
        started = time.perf_counter()
        call_command("seed_demo", verbosity=0)
        print(f"demo plant seeded in {time.perf_counter() - started:.0f} s")
    now = datetime.now(UTC).replace(microsecond=0)
    users = {
        role: User.objects.filter(role=role, is_active=True).order_by("pk").first()
        or User.objects.create(username=f"bench-{role}", role=role)
        for role in (
            "operator",
            "planner",
            "supervisor",
            "plant-head",
            "admin",
            "auditor",
        )
    }
    tokens = {role: str(AccessToken.for_user(user)) for role, user in users.items()}

    if args.reuse:
        chosen = reused_packs()
        readings = 0
    else:
        chosen, readings = build_plant(args, now, list(users.values()))
        indexes_usable_now()
    report_plant(readings)
    print()
    freeze_like_a_worker()
    factor = machine_factor(200)
    timer = Timer(args.repeat)
    pack_pk, model = chosen[0]
    from passports.models import Passport

    pack = Passport.objects.get(pk=pack_pk).serial
    if not args.only_logs:
        print("\n== dashboards ==")
        dashboard_requests(
            timer,
            tokens,
            now,
            pack,
            model,
            skip_trends=args.only_read_models,
            only_oee_trends=args.only_oee_trends,
        )
    if args.only_oee_trends:
        roll_up_trend_times(now, args.repeat)
    if args.only_read_models:
        read_model_part_times(users["supervisor"], args.repeat)
    elif not args.only_read_models:
        print("\n== /api/logs (as an auditor: every category) ==")
        log_requests(timer, tokens["auditor"], now, args.deep_pages)
    # The cheapest authenticated request through the same stack (middleware,
    # JWT, a view, JSON): the ceiling each endpoint is compared with.
    timer.get(FLOOR, "/api/auth/me", tokens["auditor"])
    timer.table(factor)
    machine_factor(200)  # again: how much the machine's speed moved meanwhile
    return timer.rows


def rows(argv: list[str] | None = None) -> list[Row]:
    """The bench's lines of ``make bench``'s table (bench/suite.py): the
    slowest dashboard and the slowest ``/api/logs`` query by p99, against the
    stack's floor (``/api/auth/me``) in the same run."""
    timed = main(argv)
    floor = next(p99 for label, _path, _p50, p99, _q in timed if label == FLOOR)
    out = []
    for name, group in (
        ("dashboards", [t for t in timed if not t[1].startswith("/api/logs")]),
        ("/api/logs", [t for t in timed if t[1].startswith("/api/logs")]),
    ):
        group = [t for t in group if t[0] != FLOOR]
        if not group:
            continue
        label, _path, _p50, p99, _q = max(group, key=lambda t: t[3])
        out.append(
            Row(
                "dashboards",
                f"{name}: slowest of {len(group)} ({label}) p99",
                p99,
                "ms",
                f"<= {GOAL_MS:.0f} ms",
                p99 <= GOAL_MS,
                ceiling=floor,
                lower_is_better=True,
            )
        )
    return out


def bench_plan(args):
    """The generator's plan of this bench's plant (``plant_generator``): the
    log rows 30 % audit, 20 % shift log, 30 % ledger, 20 % alarm journal."""
    from plant_generator.generate import Plan

    audit_rows = args.log_rows * 3 // 10
    shift_rows = args.log_rows * 2 // 10
    ledger_rows = args.log_rows * 3 // 10
    alarm_rows = args.log_rows - audit_rows - shift_rows - ledger_rows
    return Plan(
        days=args.days,
        readings=args.readings,
        passports=max(11, ledger_rows // 4),  # ~4 events a battery
        ledger_events=ledger_rows,
        audit_records=audit_rows,
        work_orders=6000,
        items=20_000,
        alarms=max(100, alarm_rows // 10),
        alarm_history=alarm_rows,
        shift_log=shift_rows,
        exceptions=3000,
        telemetry=args.telemetry,
    )


def build_plant(args, now: datetime, actors: list):
    """Everything of step 1 after the demo plant, by the plant generator
    (``plant_generator.generate``, as ``manage.py generate_plant``); returns
    the packs with telemetry ((pk, model)) and the number of readings."""
    from django.db import connection

    from bench.common import Progress
    from plant_generator.generate import generate

    report = generate(bench_plan(args), end=now, scale="bench", progress=Progress)
    for part, seconds in report.seconds.items():
        print(f"  {part:<28} {seconds:7.1f} s")
    print(f"bulk load {report.total_seconds:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have by now
    return report.telemetry_packs, report.counts["readings"]


def reused_packs() -> list[tuple[int, str]]:
    """The packs with telemetry of a previous run's plant."""
    from passports.models import Passport, TelemetryReading

    pk = TelemetryReading.objects.order_by("passport_id").values_list(
        "passport_id", flat=True
    )[0]
    return [(pk, Passport.objects.get(pk=pk).model)]


def report_plant(readings: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in (
            "lines_machinereading",
            "lines_machinehour",
            "passports_telemetryreading",
            "elog_auditrecord",
            "elog_shiftlogentry",
            "passports_passportevent",
            "scada_alarmhistory",
            "passports_passport",
            "runbooks_workorder",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    log_total = sum(
        counts[t]
        for t in (
            "elog_auditrecord",
            "elog_shiftlogentry",
            "passports_passportevent",
            "scada_alarmhistory",
        )
    )
    print(
        f"bench plant: {counts['lines_machinereading']:,} readings "
        f"({counts['lines_machinehour']:,} machine-hours), "
        f"{counts['passports_telemetryreading']:,} telemetry samples, "
        f"{log_total:,} log rows (audit {counts['elog_auditrecord']:,}, shift log "
        f"{counts['elog_shiftlogentry']:,}, ledger "
        f"{counts['passports_passportevent']:,}, alarm journal "
        f"{counts['scada_alarmhistory']:,}), "
        f"{counts['passports_passport']:,} passports, "
        f"{counts['runbooks_workorder']:,} work orders"
        + (f"; {readings:,} readings asked" if readings else " (reused)")
    )


if __name__ == "__main__":
    main()
