"""Trigram indexes for ``GET /api/logs``'s ``search`` (PostgreSQL's pg_trgm),
made by migrations and nothing on SQLite (the embedded default and the
SQLite test run keep their plain scan).

A source's search on PostgreSQL is ``UPPER((<text>)::text) LIKE
UPPER('%term%')`` (Django's ``icontains``), ``<text>`` one column or a
table's ``bpmos.logsource.SearchText``; the index is a GIN ``gin_trgm_ops``
on that very expression, so the planner can read it for a term of three
characters or more.
"""

from __future__ import annotations

from django.db import migrations

# bpmos.logsource.SearchText's separator, as SQL.
_JOIN = " || E'\\x1F' || "


def _expression(columns: tuple[str, ...]) -> str:
    text = _JOIN.join(f'"{column}"' for column in columns)
    if len(columns) > 1:
        text = f"({text})"
    return f"UPPER(({text})::text) gin_trgm_ops"


def trigram_index(table: str, name: str, *columns: str) -> migrations.RunPython:
    """The pg_trgm extension and a GIN trigram index named ``name`` on
    ``table``'s ``columns`` (joined as ``SearchText`` joins them when more
    than one); nothing on another database."""

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
            f"USING gin ({_expression(columns)})"
        )

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')

    return migrations.RunPython(forward, backward, elidable=False)
