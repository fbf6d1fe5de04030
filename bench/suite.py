"""``make bench``: every bench, then ONE table: each path's figure, its ceiling
measured in the same run, the ratio, the goal, pass or miss.

    DATABASE_URL=postgres://... REDIS_URL=redis://... \\
    .venv/bin/python -m bench.suite \\
        [--only lines,ledger,fanout,scaleout,dashboards,scale,listload] \\
        [--lines-args "--readings 200000"] [--scale-args "--scale year"] ...

Each bench (``bench.lines``, ``bench.ledger``, ``bench.fanout``, ``bench.scaleout``,
``bench.dashboards``, ``bench.scale``, ``bench.listload``) runs in its own
process, as it does alone (each re-creates the bench database), through its
``rows()``; the rows
come back as JSON and are printed together at the end, with the load average
before and after (the machine is shared: compare figure and ceiling of one
run, never across runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import import_module
from pathlib import Path

from bench.common import BASE_DIR, Row, print_table

BENCHES = (
    "lines",
    "ledger",
    "fanout",
    "scaleout",
    "dashboards",
    "scale",
    "listload",
)


def load() -> str:
    return ", ".join(f"{n:.1f}" for n in os.getloadavg())


def one(name: str, argv: list[str], out: Path) -> None:
    """In the child: run ``bench.<name>.rows(argv)`` and write its rows."""
    module = import_module(f"bench.{name}")
    found = module.rows(argv)
    out.write_text(json.dumps([asdict(row) for row in found]))


def main() -> None:
    # No abbreviations: a bench's own "--scale" is not this "--scale-args".
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--only", default=",".join(BENCHES))
    for name in BENCHES:
        parser.add_argument(
            f"--{name}-args", default="", help=f"options of bench.{name}"
        )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.one:
        one(args.one, rest, Path(args.out))
        return

    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        sys.exit(f"unknown benches: {', '.join(sorted(unknown))}")
    rows: list[Row] = []
    failed: list[str] = []
    started = time.perf_counter()
    print(f"make bench: {', '.join(chosen)}; load average {load()} (2 cores, shared)")
    for name in chosen:
        extra = shlex.split(getattr(args, f"{name}_args"))
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            print(f"\n######## bench.{name} {' '.join(extra)}", flush=True)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.suite",
                    "--one",
                    name,
                    "--out",
                    out.name,
                    *extra,
                ],
                cwd=BASE_DIR,
                check=False,
            )
            text = Path(out.name).read_text()
            if done.returncode or not text:
                failed.append(f"bench.{name} (exit {done.returncode})")
                continue
            rows += [Row(**row) for row in json.loads(text)]
    minutes = (time.perf_counter() - started) / 60
    print(f"\n== make bench: {minutes:.0f} min; load average now {load()} ==")
    print_table(rows)
    if failed:
        print(f"did not finish: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
