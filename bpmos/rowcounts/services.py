"""Reading, compacting and resetting the kept counts (``bpmos.rowcounts``)."""

from __future__ import annotations

from typing import NamedTuple

from django.db import connection, migrations, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.models import QuerySet

from bpmos import audit
from bpmos.compiled import prepared_cursor

_TABLE = "rowcounts_rowcountdelta"


class KeptCount(NamedTuple):
    """A kept count as its migration declares it (``keep_count``): its name,
    the table it counts, and the SQL condition a row must meet."""

    name: str
    table: str
    condition: str


class Recounted(NamedTuple):
    """A kept count before and after ``kept_counts_recount`` set it again."""

    kept: KeptCount
    before: int
    after: int


def kept(name: str, queryset: QuerySet) -> int:
    """The kept count ``name`` (PostgreSQL), else ``queryset.count()``: the
    caller promises that ``queryset`` is the rows that count keeps."""
    if connection.vendor != "postgresql":
        return queryset.count()
    with prepared_cursor() as cursor:
        return _sum(cursor, name)


def _sum(cursor, name: str) -> int:
    cursor.execute(
        f"SELECT COALESCE(SUM(delta), 0) FROM {_TABLE} WHERE name = %s", [name]
    )
    return int(cursor.fetchone()[0])


def compact() -> int:
    """Fold each kept count's deltas into one row; returns how many counts
    were folded.

    One statement per count: the deltas it deletes are summed into the row it
    inserts, and deltas committed meanwhile (not in its snapshot) stay, so
    the sum is unchanged at every moment."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name FROM {_TABLE} GROUP BY name HAVING COUNT(*) > 1 ORDER BY name"
        )
        names = [name for (name,) in cursor.fetchall()]
        for name in names:
            cursor.execute(
                f"""
                WITH gone AS (DELETE FROM {_TABLE} WHERE name = %s RETURNING delta)
                INSERT INTO {_TABLE} (name, delta)
                SELECT %s, COALESCE(SUM(delta), 0) FROM gone
                """,
                [name, name],
            )
    return len(names)


def recount(*, name: str, table: str, condition: str = "TRUE") -> int:
    """Set the kept count ``name`` to ``COUNT(*)`` of ``table`` where
    ``condition``, writers of ``table`` waiting meanwhile; returns it."""
    with transaction.atomic(), connection.cursor() as cursor:
        return _recount(cursor, name, table, condition)


def _recount(cursor, name: str, table: str, condition: str) -> int:
    cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
    return _reset(cursor, name, table, condition)


def _reset(cursor, name: str, table: str, condition: str) -> int:
    cursor.execute(f"DELETE FROM {_TABLE} WHERE name = %s", [name])
    cursor.execute(
        f"INSERT INTO {_TABLE} (name, delta) "
        f"SELECT %s, COUNT(*) FROM {table} WHERE {condition} RETURNING delta",
        [name],
    )
    return int(cursor.fetchone()[0])


def kept_counts_applied() -> dict[str, KeptCount]:
    """The kept counts the database has, by name: those declared by a
    ``keep_count`` operation of an applied migration (the apps' "kept_count"
    migrations are where each is defined once). None on SQLite."""
    if connection.vendor != "postgresql":
        return {}
    loader = MigrationLoader(connection)
    found: dict[str, KeptCount] = {}
    for key in loader.applied_migrations:  # in the order applied: a later one wins
        migration = loader.graph.nodes.get(key)  # None: its file is gone
        if migration is None:
            continue
        for operation in migration.operations:
            kept = getattr(operation, "kept_count", None)
            if kept is not None:
                found[kept.name] = kept
    return dict(sorted(found.items()))


def kept_counts_recount(*, names: list[str] | None = None) -> list[Recounted]:
    """Set each kept count of ``kept_counts_applied`` (only ``names``, if
    given) to ``COUNT(*)`` of its rows, as ``recount`` does: after data was
    written with the triggers off (docs/security.md, "Backup and restore").
    One transaction a count, its table's writers waiting meanwhile; a count
    that moved is audited (``rowcount.recounted``, the count before and
    after). Raises ``KeyError`` naming a count the database does not keep."""
    kept = kept_counts_applied()
    unknown = sorted(set(names or ()) - kept.keys())
    if unknown:
        raise KeyError(", ".join(unknown))
    done = []
    for count in kept.values():
        if names and count.name not in names:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {count.table} IN SHARE MODE")
            before = _sum(cursor, count.name)
            after = _reset(cursor, *count)
            if after != before:
                audit.record(
                    actor=None,
                    action="rowcount.recounted",
                    target_type="rowcount",
                    target_id=count.name,
                    before={"count": before},
                    after={"count": after},
                )
        done.append(Recounted(count, before, after))
    return done


def _function(table: str) -> str:
    return f"{table}_kept_count"


def _install(name: str, table: str, condition: str) -> list[str]:
    function = _function(table)
    statements = [
        f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            change bigint;
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                DELETE FROM {_TABLE} WHERE name = '{name}';
                RETURN NULL;
            ELSIF TG_OP = 'INSERT' THEN
                SELECT COUNT(*) INTO change FROM kept_new WHERE {condition};
            ELSIF TG_OP = 'DELETE' THEN
                SELECT -COUNT(*) INTO change FROM kept_old WHERE {condition};
            ELSE
                SELECT (SELECT COUNT(*) FROM kept_new WHERE {condition})
                     - (SELECT COUNT(*) FROM kept_old WHERE {condition})
                  INTO change;
            END IF;
            IF change <> 0 THEN
                INSERT INTO {_TABLE} (name, delta) VALUES ('{name}', change);
            END IF;
            RETURN NULL;
        END;
        $$;
        """,
        f"""
        CREATE TRIGGER {table}_kept_count_insert AFTER INSERT ON {table}
            REFERENCING NEW TABLE AS kept_new
            FOR EACH STATEMENT EXECUTE FUNCTION {function}();
        """,
        f"""
        CREATE TRIGGER {table}_kept_count_delete AFTER DELETE ON {table}
            REFERENCING OLD TABLE AS kept_old
            FOR EACH STATEMENT EXECUTE FUNCTION {function}();
        """,
        f"""
        CREATE TRIGGER {table}_kept_count_truncate AFTER TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {function}();
        """,
    ]
    if condition != "TRUE":  # an update can move a row in or out of it
        statements.append(
            f"""
            CREATE TRIGGER {table}_kept_count_update AFTER UPDATE ON {table}
                REFERENCING OLD TABLE AS kept_old NEW TABLE AS kept_new
                FOR EACH STATEMENT EXECUTE FUNCTION {function}();
            """
        )
    return statements


def _uninstall(name: str, table: str) -> list[str]:
    return [
        *(
            f"DROP TRIGGER IF EXISTS {table}_kept_count_{event} ON {table};"
            for event in ("insert", "delete", "truncate", "update")
        ),
        f"DROP FUNCTION IF EXISTS {_function(table)}();",
        f"DELETE FROM {_TABLE} WHERE name = '{name}';",
    ]


def keep_count(name: str, table: str, condition: str = "TRUE") -> migrations.RunPython:
    """The migration operation that keeps count ``name`` of ``table``'s rows
    where ``condition`` (SQL over the table's columns): the triggers, then the
    count seeded (``recount``) in the same transaction. PostgreSQL only. The
    operation carries its ``KeptCount`` (``kept_counts_applied``)."""

    def forwards(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        # CREATE TRIGGER already makes writers of the table wait until the
        # migration commits: no write falls between the seed and the triggers.
        for statement in _install(name, table, condition):
            schema_editor.execute(statement, params=None)
        with schema_editor.connection.cursor() as cursor:
            _recount(cursor, name, table, condition)

    def backwards(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in _uninstall(name, table):
            schema_editor.execute(statement, params=None)

    operation = migrations.RunPython(forwards, backwards, elidable=False)
    # What ``kept_counts_applied`` (``manage.py recount_rows``) reads back.
    operation.kept_count = KeptCount(name, table, condition)
    return operation
