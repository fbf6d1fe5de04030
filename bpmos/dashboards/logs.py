"""``GET /api/logs``'s read model: one stream over every app's log source
(``bpmos/logevents.py``), merged newest first, paged by an opaque cursor.

A page is one statement (``read_events``): the page SELECT of each source the
reader may see and the ``category`` filter keeps (``size + 1`` rows strictly
older than the cursor over its ``(timestamp, id)`` index, projected to common
columns: ``bpmos.logsource.select``) in one UNION ALL, ordered by
``(timestamp, id)`` descending (the id compared as a string, as
``LogEvent.cursor`` does) and cut to ``size + 1`` by the database; only
those rows become events. With a ``search``, the ledger, alarm and connector
sources first look up the matching passports, alarms and users: one query for
all three (``bpmos.logsource.among``, each distinct look-up once). The extra
row says whether there is a next page. Never a COUNT(*), never an OFFSET: a
page deep in millions of rows costs what the first one does, and rows written
while a client walks the stream land above its cursor, so it sees every older
event once, in order.
(``read_events_by_source``, one query per source merged here, is the way it
was read before; it stays as the reference the tests hold it to.)

The cursor is ``(timestamp, id)`` of a page's last event, signed
(``django.core.signing``, its own salt): a cursor that was altered, or that is
not one, is a 400 naming ``cursor``. There is no ``previous``: the stream is
read from the newest event down; to see what arrived since, read from the top.

Visibility (docs/design.md §5): the audit log is the audit readers' (auditors,
admins; ``AUDIT_READERS``, as ``GET /api/audit``); asking for ``category=audit``
without being one is a 403, and the default stream of everyone else leaves it
out. Failed compliance e-mails are the compliance readers'. Everything else
(shift log, ledger, alarms, connector and CMMS failures, the exceptions'
journal) is everyone's; no message carries restricted passport data.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice

from django.core import signing
from django.db import connection
from django.utils.dateparse import parse_datetime

from bpmos import logsource
from bpmos.access import AUDIT_READERS, COMPLIANCE_READERS
from bpmos.compiled import remember
from bpmos.errors import Forbidden, InvalidInput
from bpmos.fields import time_problem
from bpmos.logevents import (
    ALARM,
    AUDIT,
    CATEGORIES,
    LEDGER,
    SHIFT_LOG,
    SYSTEM,
    LogEvent,
    LogQuery,
    LogSource,
)
from bpmos.logsource import (
    Plan,
    Statement,
    event_key,
    fetch,
    id_key,
    like_pattern,
    lookup_ids,
    lookups_statement,
    noted_lookups,
    shared_lookups,
    text_mode,
    union_rows,
    union_statement,
)
from compliance.logsource import email_plan, email_source
from elog import selectors as elog_selectors
from exceptions.logsource import (
    exception_plan,
    exception_search_shape,
    exception_source,
)
from passports.logsource import ledger_plan, ledger_search_shape, ledger_source
from scada.logsource import (
    alarm_plan,
    alarm_source,
    cmms_plan,
    cmms_search_shape,
    cmms_source,
    comm_plan,
    comm_source,
)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
EXPORT_MAX_ROWS = 50_000  # the CSV export's cap
EXPORT_CHUNK = 1_000  # events per page while exporting
_CURSOR_SALT = "bpmos.logs.cursor"


def _shift_log_source(query: LogQuery) -> list[LogEvent]:
    """The electronic shift log (``elog.selectors.shift_log_source``)."""
    return elog_selectors.shift_log_source(query)


def _shift_log_plan(query: LogQuery) -> Plan | None:
    return elog_selectors.shift_log_plan(query)


def shift_log_available() -> bool:
    return getattr(elog_selectors, "shift_log_source", None) is not None


@dataclass(frozen=True)
class Source:
    name: str
    category: str
    read: LogSource
    plan: Callable[[LogQuery], Plan | None]  # ``read``'s page as one SELECT
    readers: frozenset | None = None  # None: every role
    available: Callable[[], bool] = lambda: True
    # What of a search term shapes ``plan``'s statement besides
    # ``bpmos.logsource.text_mode`` (None: a term the cache must not take)
    search_shape: Callable[[str], tuple | None] = lambda term: ()


SOURCES: tuple[Source, ...] = (
    Source(
        "audit",
        AUDIT,
        elog_selectors.audit_source,
        elog_selectors.audit_plan,
        AUDIT_READERS,
    ),
    Source(
        "shift_log",
        SHIFT_LOG,
        _shift_log_source,
        _shift_log_plan,
        available=shift_log_available,
    ),
    Source(
        "ledger", LEDGER, ledger_source, ledger_plan, search_shape=ledger_search_shape
    ),
    Source("alarms", ALARM, alarm_source, alarm_plan),
    Source("connectors", SYSTEM, comm_source, comm_plan),
    Source("cmms", SYSTEM, cmms_source, cmms_plan, search_shape=cmms_search_shape),
    Source(
        "exceptions",
        SYSTEM,
        exception_source,
        exception_plan,
        search_shape=exception_search_shape,
    ),
    Source("email", SYSTEM, email_source, email_plan, COMPLIANCE_READERS),
)


def visible_categories(role: str | None) -> frozenset[str]:
    """The categories ``role`` may read (the audit log: audit readers only)."""
    return frozenset(
        c for c in CATEGORIES if c != AUDIT or role is None or role in AUDIT_READERS
    )


def check_categories(asked: frozenset[str] | None, role: str | None) -> frozenset[str]:
    """The categories to read: those asked (all the visible ones when none
    were); 403 when one asked is not the reader's to see."""
    visible = visible_categories(role)
    if asked is None:
        return visible
    hidden = asked - visible
    if hidden:
        raise Forbidden(
            "The audit log is readable by auditors and admins only.",
            details={"category": sorted(hidden)},
        )
    return asked


def sources_for(query: LogQuery) -> list[Source]:
    """The sources a page asks: those of the query's categories the reader
    may see (and that exist)."""
    return [
        s
        for s in SOURCES
        if s.category in query.categories
        and (s.readers is None or query.role is None or query.role in s.readers)
        and s.available()
    ]


def _newest_first(lists: list[list[LogEvent]]) -> Iterator[LogEvent]:
    return heapq.merge(*lists, key=event_key, reverse=True)


@dataclass(frozen=True)
class Page:
    events: list[LogEvent]
    next_cursor: str | None


def read_page(query: LogQuery) -> Page:
    """At most ``query.limit`` events after ``query.before``, newest first,
    and the cursor of the next page (None at the end): one statement
    (``read_events``)."""
    merged = read_events(query)
    events = merged[: query.limit]
    more = len(merged) > query.limit
    return Page(events, encode_cursor(events[-1]) if more else None)


def read_events(query: LogQuery) -> list[LogEvent]:
    """The page's ``query.limit + 1`` newest events (the extra one says
    whether there is a next page) in one statement: every source's page
    SELECT (``Source.plan``: ``limit + 1`` rows over its ``(timestamp, id)``
    index) in one UNION ALL, ordered and cut to ``limit + 1`` by the
    database (``bpmos.logsource.union_rows``); only those rows become
    events. With a ``search``, the ledger's and the alarms' look-ups of
    another table come first, all in one query (``bpmos.logsource.among``,
    each distinct one once). The same events as ``read_events_by_source``.

    Without a search the statement comes from ``_STATEMENTS`` (compiled
    once per shape of query, ``_cached_statement``): building and compiling
    eight ORM queries cost more than running their statement."""
    ask = replace(query, limit=query.limit + 1)
    cached = _cached_statement(ask)
    if cached is not None:
        statement, params, builders = cached
        return [builders[row[2]](row) for row in fetch(statement, params)]
    with shared_lookups():
        plans = [p for s in sources_for(query) if (p := s.plan(ask)) is not None]
        rows = union_rows(plans, ask.limit)  # the look-ups' query, then the page
    builders = {plan.head: plan.build for plan in plans}
    return [builders[row[2]](row) for row in rows]


# --- the page's statement, compiled once per shape of query ----------------
#
# A page's statement depends on the query's categories, severities, role,
# size and cursor head, and on whether it has a window; its parameters also
# hold the window's bounds and the cursor's (timestamp, pk). ``_STATEMENTS``
# keeps, per shape, the statement compiled from stand-in values and the
# parameter positions each of those values fills: a request puts its own
# values there. The positions are found by compiling the shape twice, with
# two sets of stand-ins: a parameter that differs between the two must be one
# of the stand-ins in both, or the shape is not cached (a plan that reads the
# clock or derives a value from a bound would show up so).
#
# A search (PostgreSQL) is cached the same way. What of its term shapes the
# statement is part of the shape: how ``text_q`` matches it
# (``bpmos.logsource.text_mode``) and what each source says of it
# (``Source.search_shape``: the ledger, the event kinds whose names hold it;
# a term that names an exception or a CMMS order is not cached). The term
# itself is one more value (its ``LIKE`` pattern, in every position that
# holds it). The look-ups of other tables (``bpmos.logsource.among``) are
# their own cached query (``_LOOKUPS``), read first; how many ids each found
# (at most ``AMONG_MAX``, or more) is part of the page's shape, and the ids
# are one array parameter each.

_STATEMENTS: dict[tuple, tuple | None] = {}
_LOOKUPS: dict[tuple, tuple | None] = {}
_STATEMENTS_MAX = 512
_STAND_INS = (
    # start, end, cursor timestamp, cursor pk
    (
        datetime(2001, 2, 3, 4, 5, 6, 111111, tzinfo=UTC),
        datetime(2002, 3, 4, 5, 6, 7, 222222, tzinfo=UTC),
        datetime(2001, 9, 8, 7, 6, 5, 333333, tzinfo=UTC),
        "9182736450918273645",
    ),
    (
        datetime(2003, 4, 5, 6, 7, 8, 444444, tzinfo=UTC),
        datetime(2004, 5, 6, 7, 8, 9, 555555, tzinfo=UTC),
        datetime(2003, 10, 9, 8, 7, 6, 666666, tzinfo=UTC),
        "8273645091827364509",
    ),
)
_PATTERN = 4  # the place of the search's pattern in a statement's values


def _shape(ask: LogQuery) -> tuple | None:
    if ask.extra:
        return None
    search = None
    if ask.search:
        if connection.vendor != "postgresql":
            return None
        shapes = tuple(s.search_shape(ask.search) for s in sources_for(ask))
        if any(shape is None for shape in shapes):
            return None
        search = (text_mode(ask.search), shapes, logsource.AMONG_MAX)
    head = None if ask.before is None else id_key(ask.before[1])[0]
    return (
        connection.vendor,
        ask.limit,
        ask.categories,
        ask.severities,
        ask.role,
        ask.start is not None,
        ask.end is not None,
        head,
        search,
    )


def _values(ask: LogQuery) -> list:
    """The query's own values a cached statement takes, adapted for the
    database as the ORM would: start, end, cursor timestamp, cursor pk."""
    adapt = connection.ops.adapt_datetimefield_value
    at, pk = (None, None) if ask.before is None else (ask.before[0], ask.before[1])
    if pk is not None:
        pk = id_key(pk)[1]
    return [
        None if ask.start is None else adapt(ask.start),
        None if ask.end is None else adapt(ask.end),
        None if at is None else adapt(at),
        pk,
    ]


def _stood_in(ask: LogQuery, stand_in: tuple) -> LogQuery:
    start, end, at, pk = stand_in
    return replace(
        ask,
        start=None if ask.start is None else start,
        end=None if ask.end is None else end,
        before=None if ask.before is None else (at, f"{id_key(ask.before[1])[0]}:{pk}"),
    )


def _int_ids(ids: list) -> list[int] | None:
    """Look-up ids (text) as the array parameter takes them (None: not ints)."""
    try:
        return [int(i) for i in ids]
    except ValueError:
        return None


def _compile(ask: LogQuery, many: tuple[bool, ...] | None = None) -> tuple | None:
    """``(statement, slots, builders)`` for ``ask``'s shape, ``slots`` the
    parameter positions of each value ``_values`` gives (then, for a search
    with look-ups that found ``many``, its pattern and each look-up's ids);
    None when the shape cannot be cached (see above) or has no source."""
    compiled = []
    for round_, stand_in in enumerate(_STAND_INS, start=1):
        asked = _stood_in(ask, stand_in)
        with shared_lookups():
            plans = [p for s in sources_for(asked) if (p := s.plan(asked)) is not None]
            if not plans:
                return None
            lookups = noted_lookups()
            if len(lookups) != len(many or ()):
                return None
            for k, lookup in enumerate(lookups):
                lookup.stand_in = (many[k], [str(-(1000 * round_ + k + 1))])
            statement = union_statement(plans, asked.limit)
        values = _values(asked)
        if ask.search:
            values.append(like_pattern(ask.search))
            values.extend(_int_ids(lookup.found()) for lookup in lookups)
        compiled.append((statement, values, plans))
    (first, first_values, plans), (second, second_values, _) = compiled
    if first.sql != second.sql or len(first.params) != len(second.params):
        return None
    slots = []
    patterns = 0
    for position, (a, b) in enumerate(zip(first.params, second.params, strict=True)):
        if a == b:
            if ask.search and a == first_values[_PATTERN]:
                slots.append((position, _PATTERN))
                patterns += 1
            continue
        which = [
            k
            for k, (va, vb) in enumerate(zip(first_values, second_values, strict=True))
            if va is not None and va == a and vb == b
        ]
        if len(which) != 1:
            return None
        slots.append((position, which[0]))
    if ask.search and not patterns:
        return None
    return first, tuple(slots), {plan.head: plan.build for plan in plans}


def _remember(cache: dict, key: tuple, make: Callable[[], tuple | None]):
    return remember(cache, key, make, _STATEMENTS_MAX)


def _lookups_of(ask: LogQuery) -> tuple | None:
    """``(sql, params, pattern positions, limits)`` of the look-ups a search
    of ``ask``'s shape reads first (``limits``: each one's, none when there
    is none); None when the pattern is not found in them."""
    with shared_lookups():
        for source in sources_for(ask):
            source.plan(ask)
        lookups = noted_lookups()
    if not lookups:
        return "", (), (), ()
    sql, params = lookups_statement(lookups)
    pattern = like_pattern(ask.search)
    positions = tuple(n for n, value in enumerate(params) if value == pattern)
    if not positions:
        return None
    return sql, tuple(params), positions, tuple(lookup.limit for lookup in lookups)


def _cached_statement(ask: LogQuery) -> tuple[Statement, list, dict] | None:
    """``(statement, parameters, builders)`` for ``ask`` from ``_STATEMENTS``
    (compiled on first use); None when its shape is not cached. A search
    reads its look-ups first (one query, ``_LOOKUPS``)."""
    shape = _shape(ask)
    if shape is None:
        return None
    values = _values(ask)
    many = None
    if ask.search:
        lookups = _remember(_LOOKUPS, shape, lambda: _lookups_of(ask))
        if lookups is None:
            return None
        sql, params, positions, limits = lookups
        pattern = like_pattern(ask.search)
        found: list[list] = []
        if limits:
            params = list(params)
            for position in positions:
                params[position] = pattern
            found = lookup_ids(sql, params, len(limits))
        many = tuple(
            len(ids) >= limit for ids, limit in zip(found, limits, strict=True)
        )
        values.append(pattern)
        for ids in found:
            as_ints = _int_ids(ids)
            if as_ints is None:
                return None
            values.append(as_ints)
        shape = (*shape, many)
    compiled = _remember(_STATEMENTS, shape, lambda: _compile(ask, many))
    if compiled is None:
        return None
    statement, slots, builders = compiled
    params = list(statement.params)
    for position, which in slots:
        params[position] = values[which]
    return statement, params, builders


def read_events_by_source(query: LogQuery) -> list[LogEvent]:
    """``read_events`` one query per source, merged here (the way a page was
    read before the one statement; kept as its reference: the tests hold the
    two equal).

    The sources are asked one after the other, and once the events kept so
    far fill the page and its extra one, the oldest kept's timestamp is a
    floor for every source still to ask (``start``, inclusive): a row older
    than it sorts below ``limit + 1`` events already in hand, so it cannot be
    on the page."""
    ask = replace(query, limit=query.limit + 1)
    kept: list[LogEvent] = []
    for source in sources_for(query):
        kept = list(islice(_newest_first([kept, source.read(ask)]), ask.limit))
        if len(kept) == ask.limit:
            floor = kept[-1].timestamp
            if ask.start is None or floor > ask.start:
                ask = replace(ask, start=floor)
    return kept


def export_events(query: LogQuery, cap: int = EXPORT_MAX_ROWS) -> Iterator[LogEvent]:
    """The whole filtered stream from ``query.before`` on, newest first, up
    to ``cap`` events, page by page (``EXPORT_CHUNK`` at a time)."""
    sent = 0
    before = query.before
    while sent < cap:
        size = min(EXPORT_CHUNK, cap - sent)
        page = read_page(replace(query, limit=size, before=before))
        yield from page.events
        sent += len(page.events)
        if page.next_cursor is None or not page.events:
            return
        before = page.events[-1].cursor


# --- the cursor ---


def encode_cursor(event: LogEvent) -> str:
    return signing.dumps(
        [event.timestamp.isoformat(), event.id], salt=_CURSOR_SALT, compress=False
    )


def decode_cursor(value: str) -> tuple[datetime, str]:
    """The ``(timestamp, id)`` a cursor carries; 400 (``cursor``) when it was
    not made here, was altered or does not hold one."""
    problem = InvalidInput(
        "The cursor is not valid: use the `next` link of a page.",
        details={"cursor": ["Invalid cursor."]},
    )
    if not value or len(value) > 512:
        raise problem
    try:
        stamp, ident = signing.loads(value, salt=_CURSOR_SALT)
        at = parse_datetime(stamp)
        id_key(ident)
    except (signing.BadSignature, ValueError, TypeError):
        raise problem from None
    if at is None or at.tzinfo is None or time_problem(at) is not None:
        raise problem
    return at, ident
