"""``manage.py recount_rows [NAME ...]``: set the kept row counts
(``bpmos.rowcounts``) again from their tables, after data was written with the
triggers off (docs/security.md, "Backup and restore"); prints each count
before and after. A count that moved is audited."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bpmos.rowcounts import services


class Command(BaseCommand):
    help = (
        "Set each kept row count of the list pages (or only those NAMEd) to a "
        "COUNT(*) of its table, its writers waiting meanwhile; prints each "
        "count before and after, and audits a count that moved. Run it after "
        "loading data with the triggers off (pg_restore --disable-triggers, "
        "session_replication_role = replica). PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="*", metavar="NAME", help="Only these kept counts."
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            self.stdout.write(
                f"{connection.vendor}: no kept row counts (the list pages count "
                "their rows per request)."
            )
            return
        try:
            done = services.kept_counts_recount(names=options["names"] or None)
        except KeyError as exc:
            known = ", ".join(services.kept_counts_applied()) or "none"
            raise CommandError(
                f"No such kept count: {exc.args[0]} (kept: {known})."
            ) from exc
        for count, before, after in done:
            where = f"{count.table} WHERE {count.condition}"
            if after == before:
                self.stdout.write(f"{count.name} ({where}): {after}, unchanged")
            else:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{count.name} ({where}): {before} -> {after}, audited"
                    )
                )
        if not done:
            self.stdout.write("No kept row counts in this database.")
