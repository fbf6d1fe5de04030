"""GET /api/logs reads a page in one statement (``bpmos.dashboards.logs.
read_events``: every source's page SELECT in one UNION ALL, ordered and cut
by the database) and gives exactly what asking each source in turn and
merging gives (``read_events_by_source``, the way it was read before), over a
plant where every source has rows, many of them at one instant, for every
role, filter and search, page after page (docs/logs.md, "What a page
costs")."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from itertools import product

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bpmos import logsource
from bpmos.dashboards import logs
from bpmos.logevents import CATEGORIES, LogQuery
from exceptions import services as exception_services
from passports import ledger
from scada.models import AlarmHistory, Connector
from tests.factories_tower import raise_exception
from tests.support import PAGES_AT_MOST
from tests.test_logs_search import shift_entry
from tests.test_logs_stream import (
    T0,
    alarm,
    at,
    audit_at,
    cmms_failure,
    email_failure,
    make_pack,
)

pytestmark = pytest.mark.django_db

TIE = at(30)  # the instant every source writes at


@pytest.fixture
def plant(make_user):
    """Rows of every source and severity; at ``TIE`` one of each source, the
    shift log's pks 9, 10, 99 and 100 (text order differs from number
    order) and two audit records."""
    olga = make_user("operator", username="olga")
    boss = make_user("supervisor", username="boss")
    admin = make_user("admin", username="ada")
    plc = Connector.objects.create(
        name="Formation PLC-7", kind="opcua", endpoint="opc.tcp://p:1"
    )
    for second, when in enumerate((at(1), TIE, TIE, at(40))):
        if second == 1:
            target = {"target": olga}  # a label: the user's name
        elif second == 2:
            target = {}
        else:
            target = {"target_type": "workorder", "target_id": f"WO-{second}"}
        audit_at(
            when,
            actor=admin if second % 2 else None,
            action="workorder.torqued",
            **target,
        )
    entries = [
        (9, TIE, {"entry_type": "incident", "body": "Chiller tripped " * 30}),
        (10, TIE, {"entry_type": "note", "operator": olga}),
        (99, TIE, {"entry_type": "safety", "target_type": "alarm", "target_id": "7"}),
        (100, TIE, {"entry_type": "note", "body": "torque check"}),
        (11, at(2), {"entry_type": "note"}),
    ]
    for pk, when, fields in entries:
        shift_entry(pk, at=when, **fields)
    shift_entry(12, at=at(3), entry_type="correction", corrects_id=11)
    for when, kind in (
        (TIE, "held"),
        (at(5), "qa_failed"),
        (at(45), "telemetry_summarised"),
    ):
        ledger.append(
            passport=make_pack().pk,
            kind=kind,
            data={"reason": "x"} if kind == "held" else {},
            actor=None,
            occurred_at=when,
        )
    for n, (severity, when) in enumerate(
        (("low", at(4)), ("medium", TIE), ("high", TIE), ("critical", at(50)))
    ):
        event, _ = alarm(when, tag=f"TT-{n}" if n else "", severity=severity)
        AlarmHistory.objects.create(
            alarm=event,
            at=when + timedelta(seconds=1),
            change="acknowledged",
            to_state="ack_active",
            actor=boss,
            note="Torque seen",
        )
    alarm(TIE, tag="", kind="comm_loss", connector=plc, message="Lost")
    lost, _ = alarm(at(6), tag="PLC-9", kind="comm_loss", message="")
    AlarmHistory.objects.create(
        alarm=lost, at=TIE, change="returned", to_state="ack_inactive"
    )
    cmms_failure(TIE)
    cmms_failure(at(7), error="Torque service down")
    email_failure(admin, TIE)
    email_failure(admin, at(8), status="retrying")
    for severity in ("low", "critical"):
        exc = raise_exception(olga, severity=severity, title="Torque drift")
    exception_services.exception_acknowledge(exception_id=exc.pk, actor=boss)
    return {"olga": olga}


def walk(read, size: int, **filters) -> list[list]:
    """Every page of the stream (``read`` a page's events), cursor by cursor."""
    pages, before = [], None
    for _ in range(PAGES_AT_MOST):  # a cursor that never ends fails, not loops
        events = read(LogQuery(limit=size, before=before, **filters))
        pages.append(events[:size])
        if len(events) <= size:
            return pages
        before = events[size - 1].cursor
    pytest.fail(f"still a next page after {PAGES_AT_MOST}: {pages[-1]}")


QUERIES = [
    {},
    {"categories": frozenset({"system"})},
    {"categories": frozenset({"alarm", "ledger"})},
    {"severities": frozenset({"error", "critical"})},
    {"severities": frozenset({"info"})},
    {"severities": frozenset({"warning"})},
    {"start": TIE},
    {"end": TIE},
    {"start": TIE, "end": TIE + timedelta(microseconds=1)},
    {"search": "torque"},
    {"search": "TT-"},
    {"search": "plc"},
    {"search": "held"},
    {"search": "EX-00"},
    {"search": "MWO-"},
    {"search": "l"},
    {"search": "nothing like it"},
    {"search": "torque", "severities": frozenset({"info"}), "start": at(2)},
]


# the admin reads every source, the supervisor all but the audit log, the
# operator neither it nor the compliance mail
@pytest.mark.parametrize("role", ["admin", "supervisor", "operator"])
def test_one_statement_reads_what_the_sources_read_one_by_one(plant, role):
    everything = logs.read_events_by_source(LogQuery(limit=1000, role="admin"))
    assert {e.category for e in everything} == set(CATEGORIES)
    # at TIE: audit 2, shift log 4, ledger 1, alarms 2, connectors 2, CMMS 1, mail 1
    assert sum(e.timestamp == TIE for e in everything) == 13
    categories = logs.visible_categories(role)
    for filters, size in product(QUERIES, (3, 50)):
        if not filters.get("categories", categories) <= categories:
            continue
        args = {"role": role, "categories": categories, **filters}
        one = walk(logs.read_events, size, **args)
        by_source = walk(logs.read_events_by_source, size, **args)
        assert one == by_source, (filters, size)


def test_the_page_is_one_statement_and_its_events_are_the_sources(plant):
    expected = sorted(
        (
            event
            for source in logs.SOURCES
            for event in source.read(LogQuery(limit=1000, role="admin"))
        ),
        key=lambda e: e.cursor,
        reverse=True,
    )
    with CaptureQueriesContext(connection) as ctx:
        got = logs.read_events(LogQuery(limit=len(expected), role="admin"))
    assert got == expected
    assert len(ctx.captured_queries) == 1
    assert "UNION ALL" in ctx.captured_queries[0]["sql"]
    # the ids of one instant in string order ("shift_log:99" > "…:9" > "…:100")
    tied = [e.id for e in got if e.timestamp == TIE and e.category == "shift_log"]
    assert tied == ["shift_log:99", "shift_log:9", "shift_log:100", "shift_log:10"]
    assert got[0].timestamp > T0


def test_a_shape_is_compiled_once_and_each_request_binds_its_own_values(
    plant, monkeypatch
):
    """Without a search the page's statement is compiled once per shape of
    query (``logs._STATEMENTS``): a later page of that shape builds no plan,
    and runs with its own window and cursor, not the first one's."""
    monkeypatch.setattr(logs, "_STATEMENTS", {})
    built = []
    sources = tuple(
        replace(s, plan=lambda q, plan=s.plan: built.append(q) or plan(q))
        for s in logs.SOURCES
    )
    monkeypatch.setattr(logs, "SOURCES", sources)
    first = walk(logs.read_events, 3, role="admin", start=at(2))
    compiled = len(built)
    assert compiled
    assert logs._STATEMENTS
    again = walk(logs.read_events, 3, role="admin", start=at(2))
    later = walk(logs.read_events, 3, role="admin", start=TIE)
    assert len(built) == compiled  # the same shapes: nothing built again
    assert again == first
    assert later == walk(logs.read_events_by_source, 3, role="admin", start=TIE)
    assert later != first


def test_a_plan_that_derives_a_value_from_a_bound_is_not_cached(plant, monkeypatch):
    """A plan whose parameters are not the query's own bounds (here: the
    audit log's page from a day before ``start``) cannot take a later
    request's values: its shape is left uncached and read the long way."""
    monkeypatch.setattr(logs, "_STATEMENTS", {})

    def derived(query, plan=logs.SOURCES[0].plan):
        if query.start is None:
            return plan(query)
        return plan(replace(query, start=query.start - timedelta(days=1)))

    sources = (replace(logs.SOURCES[0], plan=derived), *logs.SOURCES[1:])
    monkeypatch.setattr(logs, "SOURCES", sources)
    query = LogQuery(limit=50, role="admin", start=at(2))
    got = logs.read_events(query)
    assert list(logs._STATEMENTS.values()) == [None]
    monkeypatch.setattr(logs, "_shape", lambda ask: None)  # never cached
    assert got == logs.read_events(query)
    later = LogQuery(limit=50, role="admin", start=TIE)
    monkeypatch.undo()
    monkeypatch.setattr(logs, "SOURCES", sources)
    monkeypatch.setattr(logs, "_STATEMENTS", {})
    cached_shape = logs.read_events(later)
    monkeypatch.setattr(logs, "_shape", lambda ask: None)
    assert cached_shape == logs.read_events(later)


# A search's look-ups of other tables (``bpmos.logsource.among``: passports by
# serial, alarms by tag, message or connector, users by name) are read in one
# query before the page's statement, and a page gives the same events whether
# a look-up named its rows by id (few) or the source joined (many: past
# ``AMONG_MAX``).
@pytest.mark.parametrize("among_max", [0, 1, 1000])
def test_a_search_reads_its_lookups_in_one_query_then_the_page(
    plant, monkeypatch, among_max
):
    monkeypatch.setattr(logsource, "AMONG_MAX", among_max)
    for term in ("TT-", "TT-2", "plc", "olga", "boss", "pack", "nothing like it"):
        query = LogQuery(limit=50, role="admin", search=term)
        with CaptureQueriesContext(connection) as ctx:
            got = logs.read_events(query)
        assert got == logs.read_events_by_source(query), (term, among_max)
        sqls = [q["sql"] for q in ctx.captured_queries]
        assert len(sqls) == 2, (term, sqls)
        # the three look-ups (passports, alarms, users) as one UNION ALL
        assert "log_pk" in sqls[0], sqls[0]
        assert sqls[0].count("UNION ALL") == 2, sqls[0]
        assert sqls[1].startswith("WITH"), sqls[1]
        assert "log_lookup" not in sqls[1], sqls[1]
    # the look-ups find something: by id or by the join, the same events
    found = logs.read_events(LogQuery(limit=50, role="admin", search="TT-2"))
    assert {e.target.label for e in found if e.category == "alarm"} == {"TT-2"}
    boss = logs.read_events(LogQuery(limit=50, role="admin", search="boss"))
    assert {e.actor for e in boss if e.category == "alarm"} == {"boss"}


# A search is cached too (PostgreSQL): per shape of query and of term (how
# ``text_q`` matches it, the ledger's kinds it names), with its look-ups' own
# cached query first; each request binds its own term and look-up ids.
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a search is cached on PostgreSQL"
)
def test_a_search_shape_is_compiled_once_and_each_term_binds_its_own(
    plant, monkeypatch
):
    monkeypatch.setattr(logs, "_STATEMENTS", {})
    monkeypatch.setattr(logs, "_LOOKUPS", {})
    built = []
    sources = tuple(
        replace(s, plan=lambda q, plan=s.plan: built.append(q) or plan(q))
        for s in logs.SOURCES
    )
    monkeypatch.setattr(logs, "SOURCES", sources)
    torque = walk(logs.read_events, 3, role="admin", search="torque")
    first = LogQuery(limit=3, role="admin", search="torque")
    logs.read_events(first)
    compiled = len(built)
    assert compiled
    # the first page of another term of the same shape (trigram, names no
    # event kind): nothing built again, its own events
    terms = ("boss", "olga", "drift", "nothing like it", "chiller")
    firsts = {term: logs.read_events(replace(first, search=term)) for term in terms}
    assert len(built) == compiled
    assert walk(logs.read_events, 3, role="admin", search="torque") == torque
    for term, got in firsts.items():
        query = replace(first, search=term)
        assert got == logs.read_events_by_source(query), term
        assert walk(logs.read_events, 3, role="admin", search=term) == walk(
            logs.read_events_by_source, 3, role="admin", search=term
        )
    assert firsts["boss"] != logs.read_events(first)
    assert any(key[-1] is not None for key in logs._STATEMENTS)


# Terms whose shape differs from the cached ones' (wildcards, a separator,
# a kind's name, an exception's or a CMMS order's code, too short for a
# trigram), asked one after another over one cache: each page is what the
# sources give one by one.
TERMS = (
    "torque", "%", "_", "\\", "qa", "QA_FAILED", "held", "ld", "EX-1", "ex-00",
    "MWO-7", "mwo-", "a\x1fb", "TT", "T", "tt-1", "PLC-9", "Lost", "x%y", "boss",
)  # fmt: skip


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_a_cached_search_reads_what_the_sources_read_for_any_term(
    plant, monkeypatch, role
):
    monkeypatch.setattr(logs, "_STATEMENTS", {})
    monkeypatch.setattr(logs, "_LOOKUPS", {})
    categories = logs.visible_categories(role)
    for _ in range(2):  # the second time every shape is cached
        for term in TERMS:
            args = {"role": role, "categories": categories, "search": term}
            got = walk(logs.read_events, 2, **args)
            assert got == walk(logs.read_events_by_source, 2, **args), term
