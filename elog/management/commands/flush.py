"""``flush`` that can still empty an append-only table on SQLite.

On SQLite, Django's flush empties every table with ``DELETE FROM``, which the
append-only DELETE triggers refuse (PostgreSQL flushes with TRUNCATE, which row
triggers do not see). Emptying the whole database is not tampering with a record,
so on SQLite this command removes every trigger whose name contains
``_append_only_`` inside one transaction, runs Django's flush, and recreates the
triggers from their stored SQL before committing: if anything fails, the
rollback restores them too, and no other connection ever sees the table without
its guard. On other databases it is Django's flush, unchanged.

pytest-django calls this after every transactional test (``call_command``
resolves app commands before Django's own).
"""

from django.core.management.commands import flush
from django.db import connections, transaction

_TRIGGERS_SQL = (
    "SELECT name, sql FROM sqlite_master "
    "WHERE type = 'trigger' AND name LIKE '%\\_append\\_only\\_%' ESCAPE '\\'"
)


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        if connection.vendor != "sqlite":
            return super().handle(**options)
        if options["interactive"]:
            # Ask before taking the write lock, not while holding it.
            if not self._confirmed(connection.settings_dict["NAME"]):
                self.stdout.write("Flush cancelled.")
                return None
            options = {**options, "interactive": False}
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute(_TRIGGERS_SQL)
                triggers = cursor.fetchall()
                for name, _ in triggers:
                    cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
            super().handle(**options)
            with connection.cursor() as cursor:
                for _, sql in triggers:
                    cursor.execute(sql)
        return None

    def _confirmed(self, name: str) -> bool:
        answer = input(
            f'You have requested a flush of the database "{name}".\n'
            "This will IRREVERSIBLY DESTROY all data, the audit log included.\n"
            "Type 'yes' to continue, or 'no' to cancel: "
        )
        return answer == "yes"
