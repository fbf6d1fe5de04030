"""Exact row counts kept by the database: a list page's ``count`` without a
``COUNT(*)`` of the whole table.

A paginated list answers ``count`` (docs/design.md §4): the rows its filters
leave. Unfiltered, that was a ``COUNT(*)`` over the whole table on every page
request; at a plant-year (50,000 work orders, 100,000 passports, 171,000 items
in stock) that took 8-50 ms of the database's CPU per request, more than
everything else the page does (docs/performance.md, "The 50-row list pages at
32 connections").

A *kept count* is the same figure maintained by PostgreSQL itself:
``keep_count(name, table, condition)`` (a migration operation) installs
statement-level triggers on ``table`` that, for every INSERT, UPDATE, DELETE or
COPY, add one ``RowCountDelta`` row of the rows that entered or left
``condition``, in the writer's own transaction (a TRUNCATE drops the deltas),
and seeds the count from a ``COUNT(*)`` taken while writers wait. Every
snapshot therefore sees a count equal to ``COUNT(*)`` of the rows it sees:
exact, not an estimate. Writers only ever insert delta rows, so concurrent
writers never wait on a shared counter row. ``count(name)`` is the sum of the
deltas; ``compact()`` (a beat task) folds each count's deltas into one row.

Only on PostgreSQL: on SQLite (the embedded default) nothing is installed and
``kept(name, queryset)`` counts the queryset. Writes made with triggers off
(``session_replication_role = replica``, ``pg_restore --disable-triggers``)
bypass the count: ``recount(name, table, condition)`` sets it again, and
``manage.py recount_rows`` (``kept_counts_recount``) every count the applied
migrations declare, auditing a count that moved.
"""
