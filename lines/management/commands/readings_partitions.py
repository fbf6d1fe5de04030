"""``manage.py readings_partitions``: the machine readings' month partitions
on PostgreSQL (docs/lines.md, "Partitions").

    manage.py readings_partitions                  # create ahead, apply retention
    manage.py readings_partitions --list           # only show them
    manage.py readings_partitions --ahead 6 --retention-months 24 [--detach]

What beat's ``readings-partitions-maintain`` does, for a deployment whose app
role may not create tables (run it as the schema's owner, e.g. from cron).
"""

from django.core.management.base import BaseCommand, CommandError

from lines import partitions


class Command(BaseCommand):
    help = "Create the readings' month partitions ahead and apply retention."

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="only list them")
        parser.add_argument("--ahead", type=int, help="months to create ahead")
        parser.add_argument(
            "--retention-months", type=int, help="months kept (0: keep all)"
        )
        parser.add_argument(
            "--detach", action="store_true", help="detach old months, not drop"
        )

    def handle(self, *args, **options):
        if not partitions.is_partitioned():
            raise CommandError(
                "Readings are not partitioned here (SQLite keeps a plain table)."
            )
        if not options["list"]:
            created = partitions.readings_partitions_ensure(ahead=options["ahead"])
            retired = partitions.readings_partitions_retire(
                months=options["retention_months"],
                detach=True if options["detach"] else None,
            )
            verb = "detached" if options["detach"] else "retired"
            self.stdout.write(f"created: {', '.join(created) or 'none'}")
            self.stdout.write(f"{verb}: {', '.join(retired) or 'none'}")
        for partition in partitions.readings_partitions():
            start, end = partition.start, partition.end
            self.stdout.write(f"{partition.name}  {start:%Y-%m-%d} .. {end:%Y-%m-%d}")
        self.stdout.write(
            f"{partitions.DEFAULT}  (default: {partitions.default_rows()} readings)"
        )
