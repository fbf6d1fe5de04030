"""What every log source (``bpmos.logevents``) does the same way: the time
window, the cursor, the order and the limit, applied in the database.

The stream's order is ``LogEvent.cursor``, ``(timestamp, id)``, descending,
the id compared as a string (``"shift_log:9"`` after ``"shift_log:10"``), as
every source and the merge compare it. An id is ``"<head>:<pk>"``
(``"audit:1042"``, ``"system:cmms:7"``); heads are letters, ``_`` and ``:``
and none is another's prefix, so two ids of different heads compare as their
heads do, and two of one head as their pks' decimal text does. A source's page
is therefore its rows ordered by ``(timestamp desc, pk as text desc)``: the
``(timestamp, id)`` index scanned backwards, the rows of one timestamp sorted
among themselves (PostgreSQL's incremental sort), in one query.

``search`` (``text_q``, ``among``) is a case-insensitive substring of any one
of a source's fields. On PostgreSQL a table's searched columns are matched as
one ``SearchText``, which a GIN trigram index serves (``bpmos/trigram.py``):
the planner reads the index for a rare term and the backward scan for a
common one (the index's statistics tell it which). docs/logs.md has the
fields and the figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    Expression,
    F,
    Func,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.functions import Cast
from django.db.models.lookups import IContains, In

from bpmos.logevents import LogEvent, LogQuery

_SID = "_log_sid"  # the pk as text, the tie-break
_CHAR = CharField()  # made once: a Field is dear to make

# Between the columns a PostgreSQL search reads as one text: a control
# character no column holds, so a term never matches across two columns.
SEPARATOR = "\x1f"
_TRIGRAM = re.compile(r"[^\W_]{3}")


def event_id(head: str, pk: int) -> str:
    return f"{head}:{pk}"


def id_key(value: str) -> tuple[str, str]:
    """``"system:cmms:7"`` -> ``("system:cmms", "7")``; ValueError when it is
    not an event id (a head, a colon, a pk in canonical decimal)."""
    head, sep, tail = value.rpartition(":")
    if (
        not sep
        or not head
        or not tail.isascii()
        or not tail.isdigit()
        or len(tail) > 19
        or (len(tail) > 1 and tail.startswith("0"))
    ):
        raise ValueError(f"not an event id: {value!r}")
    return head, tail


def event_key(event: LogEvent) -> tuple[datetime, str]:
    """The stream's order (descending on this key): ``event.cursor``."""
    return event.cursor


def wants(query: LogQuery, severity: str) -> bool:
    """Whether a source whose events are all ``severity`` has any to give."""
    return query.severities is None or severity in query.severities


def search_q(query: LogQuery, *fields: str) -> Q:
    """Case-insensitive ``query.search`` in any of ``fields`` (an empty Q when
    there is no search)."""
    if not query.search:
        return Q()
    return reduce(or_, (Q(**{f"{name}__icontains": query.search}) for name in fields))


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


class SearchText(Func):
    """The columns of one table joined by ``SEPARATOR``, as the trigram
    index over them (``log_search_indexes`` migrations) spells it: a
    ``search`` over it is one ``UPPER(...) LIKE UPPER('%term%')``, which a
    GIN ``gin_trgm_ops`` index on that same expression serves. The columns
    are NOT NULL (a NULL would blank the whole text)."""

    template = "(%(expressions)s)"
    arg_joiner = " || E'\\x1F' || "
    output_field = TextField()

    def __init__(self, *fields: str):
        super().__init__(*(F(name) for name in fields))


def indexable(term: str) -> bool:
    """Whether pg_trgm can narrow a search for ``term``: it holds three
    letters or digits in a row (a trigram of a word). A shorter term ("L2",
    "42", "%_") has none: the trigram index would be read whole."""
    return _TRIGRAM.search(term) is not None


def text_mode(term: str) -> str:
    """How ``text_q`` matches ``term``: ``"trigram"`` (one match on the
    columns' ``SearchText``) or ``"columns"`` (one match per column). The one
    property of a term, besides a source's own (``Source.search_shape``), that
    shapes a page's statement."""
    if not _postgresql() or SEPARATOR in term or not indexable(term):
        return "columns"
    return "trigram"


def like_pattern(term: str) -> str:
    """The parameter an ``icontains`` on ``term`` binds (``%term%``, its
    wildcards escaped), as the ORM makes it."""
    return f"%{connection.ops.prep_for_like_query(term)}%"


def text_q(query: LogQuery, *fields: str) -> Q:
    """Case-insensitive ``query.search`` in any of one table's ``fields``
    (an empty Q when there is no search). On PostgreSQL, for an ``indexable``
    term, it is one match on their ``SearchText``, served by that table's
    trigram index; otherwise ``search_q``, one match per column, checked
    during the backward index scan."""
    if not query.search:
        return Q()
    if text_mode(query.search) == "columns":
        return search_q(query, *fields)
    return Q(IContains(SearchText(*fields), query.search))


class _AnyOf(Func):
    """PostgreSQL's ``column = ANY(ARRAY(<subquery>))``: the subquery runs
    once, before the scan (an InitPlan), and the comparison reads
    ``column``'s index, inside an OR too (a BitmapOr beside a trigram
    index). ``column IN (<subquery>)`` cannot: in an OR it becomes a hashed
    subplan checked against every row of the table."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        column, subquery = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        sub_sql, sub_params = compiler.compile(subquery)
        return f"({column_sql} = ANY(ARRAY{sub_sql}))", (*column_params, *sub_params)


def fk_in(column: str, queryset: QuerySet) -> Q:
    """The rows whose foreign key ``column`` names one of ``queryset``'s
    rows, in the same query (a small table's matches: a connector's name):
    on PostgreSQL through ``_AnyOf``, so an OR with it can still read
    indexes; elsewhere ``column IN (<subquery>)``."""
    ids = queryset.order_by().values("pk")
    if _postgresql():
        return Q(_AnyOf(F(column), Subquery(ids)))
    return Q(**{f"{column}__in": ids})


# At most this many rows of another table are named by id in a source's
# query (``among``); past it the term is common there, and the source filters
# through the join during its backward index scan, which fills a page at once.
AMONG_MAX = 1000


_PK = "log_pk"  # the look-ups' column


class _Lookup:
    """One look-up ``among`` asked for: another table's matching pks (its
    SELECT, compiled once: ``sql`` and ``params``), at most ``limit`` of them
    (``AMONG_MAX + 1``: one more says "many"), ``ids`` once read (None until
    then). ``stand_in``, when set, is what a statement compiled for the cache
    (``bpmos.dashboards.logs``) puts in place of the ids: ``(many, ids)``."""

    __slots__ = ("ids", "limit", "params", "sql", "stand_in")

    def __init__(self, sql: str, params: tuple, limit: int):
        self.sql, self.params = sql, params
        self.limit = limit
        self.ids: list | None = None
        self.stand_in: tuple[bool, list] | None = None

    @property
    def many(self) -> bool:
        if self.stand_in is not None:
            return self.stand_in[0]
        return len(self.ids) >= self.limit

    def found(self) -> list:
        """The ids the page's condition names (the stand-ins when set)."""
        return self.ids if self.stand_in is None else self.stand_in[1]


class _Among(Expression):
    """``among``'s condition, decided when the query is compiled (its
    look-up read by then): ``column IN (ids)`` while the look-up found at most
    ``AMONG_MAX`` rows (no row: nothing, as an empty ``IN``), ``joined`` past
    it. Both are resolved against the source's query when it is filtered
    (``joined``'s joins are the ones the source selects through anyway)."""

    conditional = True
    output_field = BooleanField()

    def __init__(self, column: str | Expression, lookup: _Lookup, joined: Q):
        super().__init__()
        self.column = F(column) if isinstance(column, str) else column
        self.lookup = lookup
        self.joined = joined

    def get_source_expressions(self):
        return [self.column, self.joined]

    def set_source_expressions(self, exprs):
        self.column, self.joined = exprs

    def resolve_expression(
        self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False
    ):
        resolved = self.copy()
        resolved.is_summary = summarize
        resolved.column = self.column.resolve_expression(
            query, allow_joins, reuse, summarize, for_save
        )
        resolved.joined = self.joined.resolve_expression(
            query, allow_joins, reuse, summarize, for_save
        )
        return resolved

    def as_sql(self, compiler, connection, **extra):
        if self.lookup.ids is None and self.lookup.stand_in is None:
            _fetch([self.lookup])
        if self.lookup.many:
            return compiler.compile(self.joined)
        ids = self.lookup.found()
        if connection.vendor == "postgresql":
            # one array parameter, however many ids: the statement's text
            # does not depend on them (a cached statement takes any)
            column_sql, column_params = compiler.compile(self.column)
            field = self.column.output_field
            values = [
                field.get_db_prep_value(field.to_python(i), connection) for i in ids
            ]
            return f"{column_sql} = ANY(%s)", (*column_params, values)
        if not ids:
            raise EmptyResultSet
        return compiler.compile(In(self.column, ids))


_lookups: ContextVar[dict[tuple, _Lookup] | None] = ContextVar(
    "log_lookups", default=None
)


@contextmanager
def shared_lookups() -> Iterator[None]:
    """Within it, ``among`` only notes its look-ups (each distinct one once:
    a page's sources share them), and the first statement compiled after
    (``union_rows``) reads them all in one query first (``fetch_lookups``)."""
    token = _lookups.set({})
    try:
        yield
    finally:
        _lookups.reset(token)


def lookups_statement(lookups: Sequence[_Lookup]) -> tuple[str, list]:
    """The one query that reads ``lookups``' ids: each one's SELECT (limited)
    in a UNION ALL, its rows tagged with its place."""
    parts, params = [], []
    for n, lookup in enumerate(lookups):
        parts.append(
            f"SELECT {n} AS log_lookup, CAST(log_lookup{n}.{_PK} AS TEXT) "
            f"AS log_pk FROM ({lookup.sql}) AS log_lookup{n}"
        )
        params.extend(lookup.params)
    return " UNION ALL ".join(parts), params


def lookup_ids(sql: str, params: Sequence, count: int) -> list[list]:
    """Run ``lookups_statement``'s query: the ids of each of its ``count``
    look-ups."""
    found: list[list] = [[] for _ in range(count)]
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        for n, pk in cursor.fetchall():
            found[n].append(pk)
    return found


def _fetch(lookups: Sequence[_Lookup]) -> None:
    """Read ``lookups``' ids in one query (``lookups_statement``)."""
    if not lookups:
        return
    sql, params = lookups_statement(lookups)
    for lookup, ids in zip(lookups, lookup_ids(sql, params, len(lookups)), strict=True):
        lookup.ids = ids


def noted_lookups() -> list[_Lookup]:
    """The look-ups ``among`` noted so far in this ``shared_lookups``, in the
    order they were first asked for."""
    return list((_lookups.get() or {}).values())


def fetch_lookups() -> None:
    """Read every look-up ``among`` noted in this ``shared_lookups`` and not
    read yet, in one query (none when there is none)."""
    memo = _lookups.get()
    if memo:
        _fetch([lookup for lookup in memo.values() if lookup.ids is None])


def among(column: str, queryset: QuerySet, joined: Q) -> Q:
    """How a source searches another table's columns (an alarm's tag, a
    passport's serial): ``queryset`` holds that table's matching rows (its
    trigram index finds them). When they are few, the rows whose foreign key
    ``column`` names one of them, by id: PostgreSQL then sees how many rows
    that is and reads ``column``'s index (a rare term: no scan back through
    the table); when they are many (over ``AMONG_MAX``), ``joined``, the same
    condition through the join, checked as the scan goes. The look-up is one
    query of its own, read when the source's query is compiled; within
    ``shared_lookups`` the look-ups of every source of a page are one query
    together, each distinct one once (the alarm and the connector sources
    look up the same alarms and users)."""
    limit = AMONG_MAX + 1
    rows = queryset.order_by().values(**{_PK: F("pk")})[:limit]
    sql, params = rows.query.sql_with_params()
    memo = _lookups.get()
    if memo is None:
        lookup = _Lookup(sql, params, limit)
    else:
        key = (sql, tuple(params))
        lookup = memo.get(key)
        if lookup is None:
            lookup = memo[key] = _Lookup(sql, params, limit)
    return Q(_Among(column, lookup, joined))


def _bounded(qs: QuerySet, query: LogQuery, *, ts: str, head: str) -> QuerySet:
    """``qs`` within the query's window, strictly after (older than) its
    cursor, its pk as text annotated (``_SID``: the tie-break).

    ``ts`` is the timestamp column; ``head`` the events' id head. At the
    cursor's own timestamp a row comes after the cursor when its id sorts
    below the cursor's: the whole timestamp when ``head`` sorts below the
    cursor's head, none of it when above, and pks whose text sorts below when
    the same. The bound ``ts <= cursor`` stays a plain range so the scan
    starts there."""
    qs = qs.annotate(**{_SID: Cast("pk", output_field=_CHAR)})
    if query.start is not None:
        qs = qs.filter(**{f"{ts}__gte": query.start})
    if query.end is not None:
        qs = qs.filter(**{f"{ts}__lt": query.end})
    if query.before is not None:
        at, (bhead, bpk) = query.before[0], id_key(query.before[1])
        if head < bhead:
            qs = qs.filter(**{f"{ts}__lte": at})
        elif head > bhead:
            qs = qs.filter(**{f"{ts}__lt": at})
        else:
            qs = qs.filter(**{f"{ts}__lte": at}).filter(
                Q(**{f"{ts}__lt": at}) | Q(**{f"{_SID}__lt": bpk})
            )
    return qs


# --- a source's page as one SELECT of common columns (``Plan``) ----------------
#
# A source's page is one ORM query: its rows' timestamp, pk as text and the
# fields it needs (``select``: ordered, limited, over its ``(timestamp, id)``
# index). ``union_rows`` runs the pages of one or more sources as one
# statement, each page a CTE whose columns it casts to text and pads with
# NULLs to ``WIDTH`` fields, so that all line up in a UNION ALL, which it
# orders and cuts. A source alone (``run``) and the stream's page
# (``bpmos.dashboards.logs.read_events``) both read their rows through it and
# hand them to the same ``build``, so an event is the same whichever way it
# was read. (The casts are in that SQL, not ORM annotations: a hundred
# annotated columns a page cost more Python than the queries they replaced.)

WIDTH = 9  # the most fields a source reads (the shift log's, the alarms')

Row = tuple  # (timestamp, pk as text, head, WIDTH texts or None)


@dataclass(frozen=True)
class Plan:
    """One source's page as one query (``select``) and how one of its rows
    becomes an event (``build(row)``, the row as ``union_rows`` gives it)."""

    head: str
    rows: QuerySet  # values_list(ts, pk as text, *fields), ordered, limited
    width: int  # how many fields
    limit: int
    build: Callable[[Row], LogEvent]


def select(
    qs: QuerySet,
    query: LogQuery,
    *,
    ts: str,
    head: str,
    fields: Sequence[str | Expression],
    build: Callable[[Row], LogEvent],
) -> Plan:
    """A source's page: ``qs`` within the query's window and after its
    cursor (``_bounded``), newest first (``ts`` desc, the pk as text desc:
    the ``(timestamp, id)`` index scanned backwards, the rows of one instant
    sorted among themselves), at most ``query.limit`` rows of ``ts``, the pk
    as text and ``fields`` (at most ``WIDTH``: field names, or expressions
    such as ``Left("body", 300)``)."""
    if len(fields) > WIDTH:
        raise ValueError(f"a source reads at most {WIDTH} fields")
    rows = (
        _bounded(qs, query, ts=ts, head=head)
        .order_by(f"-{ts}", f"-{_SID}")
        .values_list(ts, _SID, *fields)[: query.limit]
    )
    return Plan(head=head, rows=rows, width=len(fields), limit=query.limit, build=build)


def run(plan: Plan | None) -> list[LogEvent]:
    """A source's page on its own: its query, each row built."""
    if plan is None:
        return []
    return [plan.build(row) for row in union_rows([plan], plan.limit)]


_ALIAS = "log_source"
_COLUMN = "c"


@dataclass(frozen=True)
class Statement:
    """``union_rows``'s statement, compiled: its SQL, its parameters and how
    its rows' timestamps are read back (``fetch``)."""

    sql: str
    params: tuple
    compiler: object  # the last plan's compiler (its timestamp converter)


def union_statement(plans: Sequence[Plan], limit: int) -> Statement:
    """The statement ``union_rows`` runs (``plans`` not empty)."""
    ctes, parts, params, part_params = [], [], [], []
    compiler = None
    for n, plan in enumerate(plans):
        compiler = plan.rows.query.get_compiler(connection=connection)
        sql, sql_params = compiler.as_sql()
        names = ", ".join(f"{_COLUMN}{i}" for i in range(plan.width + 2))
        ctes.append(f"{_ALIAS}{n} ({names}) AS ({sql})")
        params.extend(sql_params)
        fields = [f"CAST({_COLUMN}{i + 2} AS TEXT)" for i in range(plan.width)]
        fields += ["CAST(NULL AS TEXT)"] * (WIDTH - plan.width)
        parts.append(
            f"SELECT {_COLUMN}0 AS log_ts, {_COLUMN}1 AS log_sid, "
            f"CAST(%s AS TEXT) AS log_head, {', '.join(fields)} FROM {_ALIAS}{n}"
        )
        part_params.append(plan.head)
    log_id = "(log_head || ':' || log_sid)"
    if _postgresql():
        log_id += ' COLLATE "C"'
    sql = (
        f"WITH {', '.join(ctes)} SELECT * FROM ({' UNION ALL '.join(parts)}) "
        f"AS {_ALIAS} ORDER BY log_ts DESC, {log_id} DESC LIMIT {int(limit)}"
    )
    return Statement(sql, (*params, *part_params), compiler)


def fetch(statement: Statement, params: Sequence | None = None) -> list[Row]:
    """Run ``statement`` (with ``params`` in place of its own, when given):
    its rows, timestamps as datetimes."""
    with connection.cursor() as cursor:
        cursor.execute(
            statement.sql, list(statement.params if params is None else params)
        )
        rows = cursor.fetchall()
    # the timestamp's converter (SQLite's are text), the same for every
    # query: the last one compiled has it
    compiler = statement.compiler
    converters = compiler.get_converters([compiler.select[0][0]])
    if converters:
        rows = [tuple(row) for row in compiler.apply_converters(rows, converters)]
    return rows


def union_rows(plans: Sequence[Plan], limit: int) -> list[Row]:
    """The ``limit`` newest rows of every plan's query, in the stream's order
    (``(timestamp, id)`` descending, the id ``"<head>:<pk>"`` compared as a
    string: code points, ``COLLATE "C"`` on PostgreSQL, SQLite's default),
    in one statement. Each query is a CTE and keeps its own ORDER BY and
    LIMIT (its index scan stops after its own page); a row is
    ``(timestamp, pk as text, head, WIDTH fields as text or None)``."""
    if not plans:
        return []
    fetch_lookups()  # the page's look-ups (``among``) first, one query
    return fetch(union_statement(plans, limit))
