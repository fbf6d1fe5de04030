"""``manage.py generate_plant --scale {small,day,month,year} --seed N``: build a
plant of that scale in bulk (plant_generator), with a progress bar; prints each
part's time, the total and the rows of each kind."""

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from plant_generator.generate import SCALES, generate


class Command(BaseCommand):
    help = (
        "Generate a plant in bulk: small (seconds, the tests), day, month, or year "
        "(10M readings, 100k passports, 1M ledger events, 1M audit records ...). "
        "PostgreSQL only; into an empty, migrated database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(SCALES), default="small")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--end",
            help="The plant's last minute, ISO 8601 with a zone (default: now). "
            "The same scale, seed and end give the same plant.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the report as JSON."
        )
        parser.add_argument(
            "--sequential",
            action="store_true",
            help="Every part in turn in this process (default: the passports "
            "beside the readings, and the machine-hour roll-ups, in two "
            "processes). The same plant either way.",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("generate_plant needs PostgreSQL: set DATABASE_URL.")
        end = None
        if options["end"]:
            try:
                end = datetime.fromisoformat(options["end"])
            except ValueError as exc:
                raise CommandError(f"--end: {exc}") from exc
            if end.tzinfo is None:
                raise CommandError("--end needs a time zone (e.g. +00:00).")
        from plant_generator.generate import plant_counts

        held = {
            name: n
            for name, n in plant_counts().items()
            if n and name in ("readings", "passports", "work_orders", "items")
        }
        if held:
            found = ", ".join(f"{n:,} {name}" for name, n in held.items())
            raise CommandError(
                f"The database already holds a plant ({found}): generate into an "
                "empty, migrated database."
            )
        scale = options["scale"]
        quiet = options["verbosity"] == 0 or options["json"]
        columns = (
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=quiet, transient=False) as bars:

            def progress(label: str, total: int):
                task = bars.add_task(label, total=total)

                class Bar:
                    def advance(self, n: int = 1) -> None:
                        bars.advance(task, n)

                return Bar()

            def log(line: str) -> None:
                if not quiet:
                    bars.console.print(line)

            report = generate(
                SCALES[scale],
                seed=options["seed"],
                end=end,
                scale=scale,
                progress=progress,
                log=log,
                parallel=not options["sequential"],
            )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "scale": scale,
                        "seed": report.seed,
                        "end": report.end.isoformat(),
                        "seconds": round(report.total_seconds, 1),
                        "parallel": report.parallel,
                        "parts": {k: round(v, 1) for k, v in report.seconds.items()},
                        "counts": report.counts,
                    },
                    indent=2,
                )
            )
            return
        for name, count in report.counts.items():
            self.stdout.write(f"  {name:<20} {count:>12,}")
        self.stdout.write(
            self.style.SUCCESS(
                f"generate_plant --scale {scale} --seed {report.seed}: "
                f"{report.total_seconds:.0f} s ({report.total_seconds / 60:.1f} min)"
            )
        )
