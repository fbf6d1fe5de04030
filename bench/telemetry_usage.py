"""Benchmark of the telemetry batch with the usage summary (passports/dynamic.py).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bpmos_x \\
    .venv/bin/python -m bench.telemetry_usage [--batches 10] [--size 1000] [--late 3]

Uses its own database, ``<DATABASE_URL's name>_bench`` (re-created). Prints:

1. the pure fold's rate (samples/s, no database);
2. ``telemetry_ingest`` of ``--batches`` batches of ``--size`` one-minute
   samples into one pack, median ms per batch, with the usage fold and, in the
   same run on a second pack, with the fold switched off (the ceiling: what
   the batch costs without it), and their ratio;
3. late batches into the pack with the fold, each against the same batch
   into the pack without it (the ceiling), median ms of ``--late`` each:
   batches of the history's middle (withheld from the in-order run, so the
   history has holes) and batches older than every sample stored; and the
   full refold
   (``dynamic.usage_rebuild``) of the pack, for reference. After them the
   pack's usage must equal its full refold ("exact").

Goal: the fold adds at most 25 % to a batch of 1,000 samples, in order or
late (a late batch costs about its own samples, not the pack's history).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import setup_bench_django

GOAL_RATIO = 1.25


def _rows(start: datetime, n: int, offset: int) -> list[dict]:
    rows = []
    for i in range(n):
        minute = offset + i
        soc = abs(((minute * 1.7) % 200) - 100)
        rows.append(
            {
                "ts": (start + timedelta(minutes=minute)).isoformat(),
                "sohPercent": 97.0,
                "socPercent": round(soc, 3),
                "temperatureC": 20 + (minute % 40),
                "voltageV": 44 + soc / 10,
                "currentA": 30.0 if (minute // 60) % 2 else -30.0,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--late", type=int, default=3)
    args = parser.parse_args()
    setup_bench_django()

    from django.db import transaction

    from bpmos.accounts.models import User
    from bpmos.roles import Role
    from passports import dynamic, services, telemetry
    from passports.dynamic import Limits, Usage, fold
    from passports.models import Passport

    print(f"load average: {os.getloadavg()}")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    samples = [
        (
            datetime.fromisoformat(r["ts"]),
            r["sohPercent"],
            r["socPercent"],
            r["temperatureC"],
            r["voltageV"],
            r["currentA"],
        )
        for r in _rows(start, 20_000, 0)
    ]
    began = time.perf_counter()
    fold(Usage(), samples, Limits(voltage_min=40, voltage_max=58.4))
    spent = time.perf_counter() - began
    print(f"fold: {len(samples) / spent:,.0f} samples/s ({len(samples):,} samples)")

    actor = User.objects.create(username="bench", role=Role.SUPERVISOR)

    def pack(serial: str) -> Passport:
        return services.passport_register(
            data={
                "kind": "pack",
                "serial": serial,
                "model": "PK-48V-100",
                "lot": "LOT-B",
                "manufacturer": "BPM Energy",
                "manufacturer_id": "IN-EPR-0042",
                "site": "Pune",
                "chemistry": "LFP",
                "rated_capacity_ah": 100,
                "nominal_voltage_v": 48,
                "energy_kwh": 5.12,
                "mass_kg": 41.5,
                "expected_cycles": 4000,
                "minimum_voltage_v": 40,
                "maximum_voltage_v": 58.4,
            },
            actor=actor,
        )

    real_add = dynamic.usage_add

    # Withheld from the in-order run, sent late.
    holes = {args.batches * (i + 1) // (args.late + 1) for i in range(args.late)}

    def batch(b: int) -> list[dict]:
        return _rows(start, args.size, args.size + b * args.size)

    def ingest(passport: Passport, rows: list[dict], *, fold_on: bool) -> float:
        dynamic.usage_add = real_add if fold_on else (lambda *a, **k: None)
        try:
            began = time.perf_counter()
            telemetry.telemetry_ingest(passport_id=passport.pk, rows=rows, actor=actor)
            return (time.perf_counter() - began) * 1000
        finally:
            dynamic.usage_add = real_add

    def run(passport: Passport, *, fold_on: bool) -> list[float]:
        return [
            ingest(passport, batch(b), fold_on=fold_on)
            for b in range(args.batches)
            if b not in holes
        ]

    folded, bare = pack("BENCH-USAGE-1"), pack("BENCH-USAGE-2")
    with_fold = run(folded, fold_on=True)
    ceiling = run(bare, fold_on=False)
    a, c = statistics.median(with_fold), statistics.median(ceiling)
    print(
        f"ingest {args.size} samples: {a:.1f} ms with the fold, {c:.1f} ms without "
        f"(ratio {a / c:.2f}, goal <= {GOAL_RATIO})"
    )
    stored = args.size * (args.batches - len(holes))
    for label, batches in (
        ("into the history's middle", [batch(b) for b in sorted(holes)]),
        (
            "older than all",
            [_rows(start, args.size, -k * args.size) for k in range(args.late)],
        ),
    ):
        late, bare_late = [], []
        for rows in batches:
            late.append(ingest(folded, rows, fold_on=True))
            bare_late.append(ingest(bare, rows, fold_on=False))
        a, c = statistics.median(late), statistics.median(bare_late)
        print(
            f"late batches {label} ({stored:,} samples stored): {a:.1f} ms with "
            f"the fold, {c:.1f} ms without (ratio {a / c:.2f}, goal <= {GOAL_RATIO})"
        )
        stored += args.size * len(batches)
    folded.refresh_from_db()
    kept = {name: getattr(folded, name) for name in dynamic.SUMMARY_FIELDS}
    state = dynamic.as_mapping(dynamic.usage_state(folded.pk))
    with transaction.atomic():
        began = time.perf_counter()
        refolded = dynamic.usage_rebuild(folded)
        spent = (time.perf_counter() - began) * 1000
        exact = (
            refolded == kept
            and dynamic.as_mapping(dynamic.usage_state(folded.pk)) == state
        )
        transaction.set_rollback(True)
    print(f"full refold of {stored:,} samples: {spent:.1f} ms")
    print(f"exact (late batches = full refold): {'yes' if exact else 'NO'}")
    print(f"load average: {os.getloadavg()}")
    if not exact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
