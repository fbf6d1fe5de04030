"""What every log source (``bpmos.logevents``) does the same way: the time
window, the cursor, the order and the limit, applied in the database.

An event's ``id`` is ``"<head>:<pk>"`` (``"audit:1042"``,
``"system:cmms:7"``): the order of the stream is ``(timestamp, head, pk)``
descending, pk compared as a number, so a source's page is its rows ordered
by ``(timestamp desc, pk desc)`` (one index scan over ``(timestamp, id)``) and
two events of equal timestamps from different sources always come in the same
order. ``event_key`` is that order's key; ``page`` applies it to a queryset.
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet

from bpmos.logevents import LogEvent, LogQuery


def event_id(head: str, pk: int) -> str:
    return f"{head}:{pk}"


def id_key(value: str) -> tuple[str, int]:
    """``"system:cmms:7"`` -> ``("system:cmms", 7)``; ValueError when it is
    not an event id."""
    head, sep, tail = value.rpartition(":")
    if not sep or not head or not tail.isdigit() or len(tail) > 19:
        raise ValueError(f"not an event id: {value!r}")
    return head, int(tail)


def event_key(event: LogEvent) -> tuple[datetime, str, int]:
    """The stream's order (descending on this key)."""
    head, pk = id_key(event.id)
    return (event.timestamp, head, pk)


def cursor_key(before: tuple[datetime, str]) -> tuple[datetime, str, int]:
    head, pk = id_key(before[1])
    return (before[0], head, pk)


def wants(query: LogQuery, severity: str) -> bool:
    """Whether a source whose events are all ``severity`` has any to give."""
    return query.severities is None or severity in query.severities


def search_q(query: LogQuery, *fields: str) -> Q:
    """Case-insensitive ``query.search`` in any of ``fields`` (an empty Q when
    there is no search)."""
    if not query.search:
        return Q()
    return reduce(or_, (Q(**{f"{name}__icontains": query.search}) for name in fields))


def page(qs: QuerySet, query: LogQuery, *, ts: str, head: str) -> QuerySet:
    """``qs`` within the query's window, strictly after (older than) its
    cursor, newest first, at most ``query.limit`` rows.

    ``ts`` is the timestamp column; ``head`` the events' id head. At the
    cursor's own timestamp a row comes after the cursor when ``(head, pk)`` is
    smaller than the cursor's: the whole timestamp when ``head`` sorts before
    the cursor's head, none of it when after, and smaller pks when the same.
    The bound ``ts <= cursor`` stays a plain range so the scan starts there."""
    if query.start is not None:
        qs = qs.filter(**{f"{ts}__gte": query.start})
    if query.end is not None:
        qs = qs.filter(**{f"{ts}__lt": query.end})
    if query.before is not None:
        at, bhead, bpk = cursor_key(query.before)
        if head < bhead:
            qs = qs.filter(**{f"{ts}__lte": at})
        elif head > bhead:
            qs = qs.filter(**{f"{ts}__lt": at})
        else:
            qs = qs.filter(**{f"{ts}__lte": at}).filter(
                Q(**{f"{ts}__lt": at}) | Q(pk__lt=bpk)
            )
    return qs.order_by(f"-{ts}", "-pk")[: query.limit]
