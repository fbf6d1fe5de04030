"""GET /api/logs's shared time floor (``bpmos.dashboards.logs.read_page``: once
the events in hand fill a page, the sources still to ask read nothing older
than its oldest) and the alarms' search through their own trigram index and
their connector's name (docs/logs.md, "What a page costs")."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bpmos.dashboards import logs
from bpmos.logevents import LogQuery
from scada.logsource import alarm_source, comm_source
from scada.models import Connector
from tests.support import PAGES_AT_MOST
from tests.test_logs_stream import alarm, at, audit_at, client_for, cmms_failure

pytestmark = pytest.mark.django_db


def walk(size: int, **filters) -> list[str]:
    """Every event id of the stream, page by page (``size`` a page)."""
    seen, before = [], None
    for _ in range(PAGES_AT_MOST):  # a cursor that never ends fails, not loops
        page = logs.read_page(LogQuery(limit=size, before=before, **filters))
        seen += [event.id for event in page.events]
        if page.next_cursor is None:
            return seen
        before = logs.decode_cursor(page.next_cursor)
    pytest.fail(f"still a next page after {PAGES_AT_MOST}: {seen[-size:]}")


def test_the_floor_keeps_every_event_of_its_own_instant():
    # the audit log (asked first) fills each page; the other sources' events
    # sit on its instants, above and below the audit ids ("alarm:" and
    # "system:" sort around "audit:"), and between them
    for second in range(8):
        audit_at(at(second), action="seed")
    for second in (0, 2, 3, 3, 5, 7, 7.5):
        alarm(at(second), tag=f"TT-{second}")
    for second in (3, 6, 6.5):
        cmms_failure(at(second))
    everything = sorted(
        (
            e
            for source in logs.SOURCES
            for e in source.read(LogQuery(limit=100, role="admin"))
        ),
        key=lambda e: e.cursor,
        reverse=True,
    )
    assert len(everything) == 8 + 7 + 3
    expected = [e.id for e in everything]
    for size in (1, 2, 3, 4, 7, 18, 50):
        assert walk(size, role="admin") == expected, size
    # within a window and a severity too (the floor never lowers ``from``)
    window = {"start": at(2), "end": at(7)}
    inside = [e.id for e in everything if at(2) <= e.timestamp < at(7)]
    for size in (1, 3, 5):
        assert walk(size, role="admin", **window) == inside, size


def test_search_finds_a_connectors_communication_loss_by_its_name(make_user):
    plc = Connector.objects.create(
        name="Formation PLC-7", kind="opcua", endpoint="opc.tcp://p:1"
    )
    _, loss = alarm(at(4), tag="", kind="comm_loss", connector=plc, message="Lost")
    alarm(at(5), tag="TT-9", message="Formation chamber hot")
    client = client_for(make_user("supervisor"))
    body = client.get("/api/logs", {"search": "plc-7"}).json()
    assert [e["id"] for e in body["results"]] == [f"system:comm:{loss.pk}"]
    found = client.get("/api/logs", {"search": "FORMATION"}).json()["results"]
    assert [e["target"]["label"] for e in found] == ["TT-9", "Formation PLC-7"]
    assert [e.id for e in comm_source(LogQuery(limit=5, search="nothing"))] == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm is PostgreSQL's")
def test_the_alarm_lookup_reads_the_alarms_trigram_index():
    with CaptureQueriesContext(connection) as ctx:
        alarm_source(LogQuery(limit=51, search="Chiller"))
    [lookup] = [
        q["sql"]
        for q in ctx.captured_queries
        if "scada_alarmevent" in q["sql"] and "scada_alarmhistory" not in q["sql"]
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + lookup.replace("%", "%%"))
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "scada_alarm_text_trgm" in plan, plan
    assert "SubPlan" not in plan, plan  # the connectors' ids: an InitPlan, once


def test_a_page_is_built_as_its_serializer_would_build_it():
    from datetime import timedelta, timezone

    from bpmos.dashboards.api.logs_serializers import LogPageSerializer, page_data
    from bpmos.logevents import LogEvent, LogTarget

    events = [
        LogEvent(
            id="alarm:7",
            timestamp=at(1.25),
            category="alarm",
            severity="critical",
            actor=None,
            action="alarm.activated",
            target=LogTarget("alarm", "77", "TT-101"),
            message="TT-101: activated",
            source="scada",
        ),
        LogEvent(
            id="shift_log:9",
            timestamp=at(0).astimezone(timezone(timedelta(hours=5, minutes=30))),
            category="shift_log",
            severity="info",
            actor="Olga K",
            action="shift_log.note",
            target=None,
            message="",
            source="api",
        ),
    ]
    expected = LogPageSerializer(
        {"results": [e.as_dict() for e in events], "next": None}
    ).data
    built = page_data(events, None)
    assert built == expected
    assert [list(item) for item in built["results"]] == [
        list(item) for item in expected["results"]
    ]
    assert built["results"][0]["timestamp"] == "2026-03-01T08:00:01.250000Z"
    assert built["results"][1]["timestamp"] == "2026-03-01T08:00:00Z"
