"""One-row aggregates of several apps, read in one statement.

A dashboard payload is made of figures each app computes over its own tables
(Planned/Built over the work orders, the first QA results over the ledger's
hourly counts, the pieces over the OEE snapshots, the holds of three
registers): each one a single aggregate row. Read one by one they cost a
round trip and a statement each; the first read after a write recomputes
several at once, and at a busy database the round trips were most of its
time. A selector therefore also offers its figure as ``Totals`` (the filtered
queryset, its aggregates and how to read the row) without running it, and
``totals_get`` reads any number of them in one statement::

    SELECT 'plan', SUM(...) FILTER (...), SUM(...) ... FROM runbooks_workorder WHERE ...
    UNION ALL
    SELECT 'first_pass', SUM(...), ... FROM passports_firstqahour WHERE ...
    UNION ALL ...

Each branch is one row (an aggregate without ``GROUP BY``, a row even when
nothing matches), tagged with its name and padded with zeros to the widest
branch; every branch keeps its own filter and indexes, exactly as the query
it replaces. PostgreSQL and SQLite alike. Only aggregates of numbers: the
union's columns take one type (PostgreSQL: ``bigint`` and ``numeric``, read
back as ``int`` by the selectors' ``read``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import IntegerField, QuerySet, Value
from django.db.models.expressions import BaseExpression

from bpmos.compiled import remember

# The tag column and the padded value columns of the statement (names no
# model field has).
_TAG = "totals_part"
_COLUMN = "totals_{}"


@dataclass(frozen=True)
class Totals:
    """A one-row aggregate, not run yet: ``queryset`` (filtered),
    ``aggregates`` (name -> aggregate expression) and ``read``, which makes
    the payload of the row (name -> value; NULL for a SUM over no rows)."""

    queryset: QuerySet
    aggregates: Mapping[str, BaseExpression]
    read: Callable[[dict[str, Any]], Any]

    def get(self) -> Any:
        """The payload, in a query of its own."""
        return self.read(self.queryset.order_by().aggregate(**self.aggregates))


def per_window(
    windows: Iterable[str], make: Callable[..., Any], *fields: str
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A ``Totals.read`` for counts per named window: the aggregates are
    named ``<field>_<window>``; each window's payload is ``make(field=count,
    ...)``, a count read as ``int`` (a SUM over no rows, NULL, as 0)."""
    names = tuple(windows)

    def read(totals: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: make(
                **{field: int(totals[f"{field}_{name}"] or 0) for field in fields}
            )
            for name in names
        }

    return read


def totals_get(parts: Mapping[str, Totals]) -> dict[str, Any]:
    """Each part's payload (name -> payload), every part's aggregate in one
    statement; no query when ``parts`` is empty, a part's own when alone."""
    if not parts:
        return {}
    if len(parts) == 1:
        ((name, only),) = parts.items()
        return {name: only.get()}
    return _read(_united(parts), parts)


# --- the statement, compiled once per shape -----------------------------------
#
# Building the querysets of a dashboard's figures and compiling their union
# (some twenty filtered aggregates for the summary) cost more of the first
# read after a write than the database did. The statement depends only on
# what the caller's ``shape`` names (the summary: which parts, and the three
# windows, which hold for hours; the supervisor's counts: nothing), so
# ``totals_get_compiled`` keeps it per shape, with its parameters and the
# parts' readers, and runs it again as it is.

_COMPILED: dict[tuple, tuple] = {}
_COMPILED_MAX = 64


def totals_get_compiled(
    shape: Hashable, make: Callable[[], Mapping[str, Totals]]
) -> dict[str, Any]:
    """``totals_get(make())``, the statement compiled once per ``shape``: the
    caller's promise that ``make()`` returns the same parts, the same
    statement and parameters, whenever it is called with that shape (a
    figure that reads the clock has the time in its shape). One query."""
    key = (connection.alias, connection.vendor, shape)
    compiled = _COMPILED.get(key)
    if compiled is None:
        parts = make()
        if not parts:
            return {}
        sql, params = _united(parts).query.sql_with_params()
        readers = tuple(
            (name, tuple(part.aggregates), part.read) for name, part in parts.items()
        )
        compiled = remember(
            _COMPILED, key, lambda: (sql, tuple(params), readers), _COMPILED_MAX
        )
    sql, params, readers = compiled
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    return {
        name: read(dict(zip(aggregates, rows[name], strict=False)))
        for name, aggregates, read in readers
    }


def _united(parts: Mapping[str, Totals]) -> QuerySet:
    """The parts' one-row aggregates as one ``UNION ALL`` (a part alone: its
    own branch), each row tagged with its part's name."""
    width = max(len(part.aggregates) for part in parts.values())
    branches = []
    for name, part in parts.items():
        columns = {
            _COLUMN.format(i): expression
            for i, expression in enumerate(part.aggregates.values())
        }
        for i in range(len(columns), width):
            columns[_COLUMN.format(i)] = Value(0, output_field=IntegerField())
        branches.append(
            part.queryset.order_by()
            .annotate(**{_TAG: Value(name)})
            .values(_TAG)  # a constant: no GROUP BY, one row
            .annotate(**columns)
        )
    first, *rest = branches
    return first.union(*rest, all=True) if rest else first


def _read(united: QuerySet, parts: Mapping[str, Totals]) -> dict[str, Any]:
    rows = {row[_TAG]: row for row in united}
    found = {}
    for name, part in parts.items():
        row = rows[name]
        found[name] = part.read(
            {
                aggregate: row[_COLUMN.format(i)]
                for i, aggregate in enumerate(part.aggregates)
            }
        )
    return found
