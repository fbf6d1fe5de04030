"""GET /api/logs's ``search`` on each source: what it matches (case-insensitive
substring of each source's fields, never across two of them), the trigram
indexes that serve it on PostgreSQL, and the shift log's one-query paging."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bpmos import logsource
from bpmos.logevents import LogQuery
from bpmos.roles import Role
from elog import audit, selectors
from elog.models import ShiftLogEntry
from passports.logsource import ledger_source
from scada.logsource import alarm_source
from scada.models import AlarmEvent, AlarmHistory
from tests.factories_passports import register
from tests.support import PAGES_AT_MOST

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pg_trgm is PostgreSQL's"
)

TRIGRAM_INDEXES = {
    "elog_audit_text_trgm": "elog_auditrecord",
    "elog_shiftlog_text_trgm": "elog_shiftlogentry",
    "passport_serial_trgm": "passports_passport",
    "passport_event_actor_trgm": "passports_passportevent",
    "scada_alarmhistory_text_trgm": "scada_alarmhistory",
}


def ids(source, search: str, **query) -> list[str]:
    return [e.id for e in source(LogQuery(search=search, limit=100, **query))]


def shift_entry(pk: int | None = None, *, at=T0, **fields) -> ShiftLogEntry:
    data = {
        "plant_id": "main",
        "operator_name": "Olga K",
        "entry_type": "note",
        "body": "Line A restarted",
        "shift_start": at.replace(hour=6),
        "shift_end": at.replace(hour=14),
        "created_at": at,
        **fields,
    }
    if pk is not None:
        data["id"] = pk
    return ShiftLogEntry.objects.create(**data)


def history(*, tag="TT-101", message="Temperature high", note="", actor=None):
    alarm = AlarmEvent.objects.create(
        timestamp=T0, tag_name=tag, severity="high", kind="limit", message=message
    )
    return AlarmHistory.objects.create(
        alarm=alarm,
        at=T0,
        change="activated",
        to_state="unack_active",
        note=note,
        actor=actor,
    )


# --- the indexes ----------------------------------------------------------------


@postgresql_only
def test_trigram_indexes_exist_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone() is not None
        cursor.execute(
            "SELECT indexname, tablename, indexdef FROM pg_indexes"
            " WHERE indexname = ANY(%s)",
            [list(TRIGRAM_INDEXES)],
        )
        found = {name: (table, sql) for name, table, sql in cursor.fetchall()}
    assert {name: table for name, (table, _) in found.items()} == TRIGRAM_INDEXES
    for _, sql in found.values():
        assert "USING gin" in sql
        assert "gin_trgm_ops" in sql
        assert "upper(" in sql


def plan(sql: str, params) -> str:
    """The plan of ``sql`` when only bitmap scans may read the table (no
    sequential scan, no ordered index scan): whether an index can serve it.

    An index built over a table with broken HOT chains (an earlier test of
    this worker rebuilding indexes with rows in place, say) is flagged
    ``indcheckxmin``: no snapshot older than its build may use it, and the
    other worker's long transaction (a module's rolled-back plant) can hold
    such a snapshot for minutes. Those indexes are rebuilt first, on the
    tables as this test leaves them (empty: no HOT chain), in its transaction.
    The tables the statement reads are vacuumed and analysed first (from a
    connection of their own: VACUUM cannot run in the test's transaction):
    earlier tests of this worker leave them bloated with rolled-back rows and
    their statistics stale. Two CI runs planned the search's look-up at cost
    704 where a fresh database gives 24, and its events part without the
    trigram index; not reproduced here, so this is the likely cause, not a
    proven one."""
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        password=db.get("PASSWORD") or None,
        autocommit=True,
    ) as own:
        for table in sorted(set(re.findall(r'"([a-z0-9_]+)"\."', sql))):
            own.execute(f'VACUUM (ANALYZE, TRUNCATE false) "{table}"')
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT indrelid::regclass::text FROM pg_index WHERE indcheckxmin"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"REINDEX TABLE {table}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def source_sql(source, search: str) -> list[tuple[str, tuple]]:
    with CaptureQueriesContext(connection) as ctx:
        source(LogQuery(search=search, limit=51))
    # the captured SQL has its parameters inlined: replay it as is
    return [(q["sql"].replace("%", "%%"), ()) for q in ctx.captured_queries]


@postgresql_only
@pytest.mark.parametrize(
    ("source", "index"),
    [
        (selectors.audit_source, "elog_audit_text_trgm"),
        (selectors.shift_log_source, "elog_shiftlog_text_trgm"),
        (ledger_source, "passport_serial_trgm"),
        (ledger_source, "passport_event_actor_trgm"),
        (alarm_source, "scada_alarmhistory_text_trgm"),
    ],
)
def test_each_sources_search_can_read_its_trigram_index(source, index):
    plans = [plan(sql, params) for sql, params in source_sql(source, "Chiller")]
    assert any(index in p for p in plans), "\n\n".join(plans)


@postgresql_only
def test_a_term_without_a_trigram_is_not_sent_to_the_index():
    assert not logsource.indexable("L2")
    assert not logsource.indexable("%_\\")
    assert logsource.indexable("CH-7731")
    plans = [plan(sql, p) for sql, p in source_sql(selectors.audit_source, "L2")]
    assert not any("elog_audit_text_trgm" in p for p in plans)


# --- what each source's search matches (PostgreSQL and SQLite alike) ----------


def test_audit_search_matches_each_field_case_insensitively(make_user):
    actor = make_user(Role.SUPERVISOR, username="Chen.Li")
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        passport = register(actor=None, serial="SRCH-000042")
    with time_machine.travel(T0, tick=False):
        rec = audit.record(actor=actor, action="valve.opened", target=passport)
        audit.record(actor=None, action="other.thing")
    mine = [f"audit:{rec.pk}"]
    # action, actor, target type, target id, target label (the message's parts)
    terms = ("VALVE.OP", "chen.LI", "passports.PASS", str(passport.pk), "srch-0000")
    for term in terms:
        assert ids(selectors.audit_source, term, start=T0) == mine, term
    # never across two fields (the action's end and the actor's start)
    assert ids(selectors.audit_source, "opened\x1fchen", start=T0) == []
    assert ids(selectors.audit_source, "opened chen", start=T0) == []
    assert ids(selectors.audit_source, "nothing-like-this") == []


def test_shift_log_search_matches_each_field_case_insensitively():
    entry = shift_entry(
        body="Chiller CH-7 tripped",
        operator_name="Olga Kowalski",
        entry_type="maintenance",
        target_type="maintenance_work_order",
        target_id="4711",
    )
    shift_entry(body="all quiet", operator_name="Sam")
    mine = [f"shift_log:{entry.pk}"]
    for term in ("chiller ch-7", "KOWALSKI", "MAINTEN", "work_ORDER", "471"):
        assert ids(selectors.shift_log_source, term) == mine, term
    assert ids(selectors.shift_log_source, "tripped olga") == []
    # a term too short for a trigram is still served (by the scan)
    assert ids(selectors.shift_log_source, "H-") == mine


def test_ledger_search_matches_serial_actor_and_kind(make_user, monkeypatch):
    actor = make_user(Role.SUPERVISOR, username="Dmitri.S")
    with time_machine.travel(T0, tick=False):
        mine = register(actor=actor, serial="LEDG-7731")
        register(actor=None, serial="LEDG-0001")
    expected = [e.id for e in ledger_source(LogQuery(limit=100)) if "7731" in e.message]
    assert len(expected) == 1
    assert ids(ledger_source, "ledg-77") == expected
    assert ids(ledger_source, "DMITRI") == expected
    assert len(ids(ledger_source, "MANUFACT")) == 2  # the kind's value or label
    # many matching passports: the serial is matched through the join instead
    monkeypatch.setattr(logsource, "AMONG_MAX", 1)
    assert ids(ledger_source, "ledg-") == [
        e.id for e in ledger_source(LogQuery(limit=100))
    ]
    assert ids(ledger_source, "ledg-77") == expected
    assert mine.serial == "LEDG-7731"


def test_alarm_search_matches_journal_alarm_and_actor(make_user, monkeypatch):
    actor = make_user(Role.OPERATOR, username="Farid.O")
    row = history(
        tag="PT-3301", message="Pressure LOW", note="Valve stuck", actor=actor
    )
    history(tag="TT-101")
    mine = [f"alarm:{row.pk}"]
    for term in ("pt-33", "pressure low", "VALVE", "farid"):
        assert ids(alarm_source, term) == mine, term
    monkeypatch.setattr(logsource, "AMONG_MAX", 0)
    for term in ("pt-33", "farid"):
        assert ids(alarm_source, term) == mine, term
    assert ids(alarm_source, "stuck farid") == []


# --- the shift log pages as the merge orders, one query a page ------------------


def test_shift_log_pages_ties_as_strings_in_one_query_a_page(
    django_assert_num_queries,
):
    older = shift_entry(8, at=T0 - timedelta(minutes=1))
    tied = [shift_entry(pk, at=T0) for pk in (9, 10, 11, 99, 100)]
    newer = shift_entry(12, at=T0 + timedelta(minutes=1))
    # "shift_log:99" > "shift_log:9" > "shift_log:11" > "…:100" > "…:10"
    expected = ["shift_log:12", "shift_log:99", "shift_log:9", "shift_log:11"]
    expected += ["shift_log:100", "shift_log:10", "shift_log:8"]
    assert {e.pk for e in tied} | {older.pk, newer.pk} == {8, 9, 10, 11, 12, 99, 100}

    seen: list[str] = []
    before = None
    for _ in range(PAGES_AT_MOST):  # a cursor that never ends fails, not loops
        with django_assert_num_queries(1):
            page = selectors.shift_log_source(LogQuery(limit=2, before=before))
        if not page:
            break
        seen += [event.id for event in page]
        before = page[-1].cursor
    assert seen == expected
