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
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from operator import or_

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from bpmos.logevents import LogEvent, LogQuery

_SID = "_log_sid"  # the pk as text, the tie-break


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


def page(qs: QuerySet, query: LogQuery, *, ts: str, head: str) -> QuerySet:
    """``qs`` within the query's window, strictly after (older than) its
    cursor, newest first, at most ``query.limit`` rows.

    ``ts`` is the timestamp column; ``head`` the events' id head. At the
    cursor's own timestamp a row comes after the cursor when its id sorts
    below the cursor's: the whole timestamp when ``head`` sorts below the
    cursor's head, none of it when above, and pks whose text sorts below when
    the same. The bound ``ts <= cursor`` stays a plain range so the scan
    starts there."""
    qs = qs.annotate(**{_SID: Cast("pk", output_field=CharField())})
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
    return qs.order_by(f"-{ts}", f"-{_SID}")[: query.limit]
