"""``manage.py check_db_role``: can the app's database role bypass the
append-only tables? Exits 0 if not, 1 (naming each way) if it can."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from bpmos.dbrole import db_role_problems


class Command(BaseCommand):
    help = (
        "Check that the database role the app connects as cannot disable or "
        "bypass the append-only triggers of the audit log, the shift log, the "
        "passport ledgers and the exceptions' journal (not a superuser, not their "
        "owner, no TRUNCATE, no TRIGGER). Exits 1 if it can. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            self.stdout.write(
                f"{connection.vendor}: no database roles to check (the embedded "
                "default runs as the file's owner; the triggers still refuse "
                "UPDATE and DELETE)."
            )
            return
        with connection.cursor() as cursor:
            problems = db_role_problems(cursor)
        if problems:
            for problem in problems:
                self.stdout.write(f"- {problem}")
            raise CommandError(
                f"The app's database role can bypass the append-only tables "
                f"({len(problems)} ways); see docs/security.md.",
                returncode=1,
            )
        self.stdout.write(
            self.style.SUCCESS(
                "The app's database role cannot bypass the append-only tables."
            )
        )
