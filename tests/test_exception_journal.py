"""The exceptions' journal (``exceptions.models.ExceptionEvent``): one
append-only row per step (raised, acknowledged, escalated, resolved), written
in the transaction of the change; refused UPDATE/DELETE in PostgreSQL; the
backfill of the exceptions raised before it; and the journal in
``GET /api/logs`` (category ``system``, ``exceptions.logsource``)."""

from __future__ import annotations

import importlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from bpmos.errors import IllegalTransition, InvalidInput
from exceptions import services
from exceptions.models import (
    ExceptionEvent,
    ExceptionStatus,
    PlantException,
)
from tests.conftest import bearer
from tests.factories_tower import raise_exception

backfill_migration = importlib.import_module(
    "exceptions.migrations.0004_exceptionevent_backfill"
)


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    return client


def steps(exc) -> list[tuple]:
    """The journal of ``exc`` in the order it was written."""
    return [
        (e.kind, e.level, e.role, e.actor_id, e.note)
        for e in ExceptionEvent.objects.filter(exception=exc).order_by("id")
    ]


def escalate(exc, after: timedelta = timedelta(seconds=1)) -> int:
    exc.refresh_from_db()
    return services.exceptions_escalate_overdue(now=exc.ack_due_at + after)


# --- the rows the services write -------------------------------------------------


@pytest.mark.django_db
def test_raise_escalate_acknowledge_resolve_are_journalled(make_user):
    olga = make_user("operator")
    boss = make_user("supervisor")
    exc = raise_exception(olga, severity="high")
    [raised] = ExceptionEvent.objects.filter(exception=exc)
    assert (raised.kind, raised.at, raised.actor_id) == (
        "raised",
        exc.raised_at,
        olga.pk,
    )
    assert escalate(exc) == 1
    exc.refresh_from_db()
    escalated = ExceptionEvent.objects.get(exception=exc, kind="escalated")
    # The step's time is the beat's "now", the one escalation_log records.
    assert escalated.at.isoformat() == exc.escalation_log[-1]["at"]
    assert escalated.actor_id is None
    services.exception_acknowledge(exception_id=exc.pk, actor=boss)
    services.exception_resolve(
        exception_id=exc.pk, resolution_note="Re-torqued", actor=boss
    )
    assert steps(exc) == [
        ("raised", 0, "operator", olga.pk, ""),
        ("escalated", 1, "supervisor", None, ""),
        ("acknowledged", 1, "supervisor", boss.pk, ""),
        ("resolved", 1, "supervisor", boss.pk, "Re-torqued"),
    ]
    exc.refresh_from_db()
    times = list(
        ExceptionEvent.objects.filter(exception=exc)
        .order_by("id")
        .values_list("at", flat=True)
    )
    assert times[2:] == [exc.acknowledged_at, exc.resolved_at]


@pytest.mark.django_db
def test_escalation_to_the_top_then_resolving_unacknowledged(make_user):
    exc = raise_exception(make_user("operator"), severity="critical")
    assert escalate(exc) == 1
    assert escalate(exc) == 1
    assert escalate(exc) == 0  # the plant head is the top of the path
    head = make_user("plant-head")
    services.exception_resolve(exception_id=exc.pk, resolution_note="ok", actor=head)
    # Resolved straight away: no acknowledged step, though acknowledged_at is set.
    assert [s[:3] for s in steps(exc)] == [
        ("raised", 0, "operator"),
        ("escalated", 1, "supervisor"),
        ("escalated", 2, "plant-head"),
        ("resolved", 2, "plant-head"),
    ]
    # escalation_log keeps its shape (the API's escalationPath reads it).
    exc.refresh_from_db()
    assert [(s["level"], s["role"]) for s in exc.escalation_log] == [
        (0, "operator"),
        (1, "supervisor"),
        (2, "plant-head"),
    ]


@pytest.mark.django_db
def test_a_refused_change_writes_no_step(make_user):
    boss = make_user("supervisor")
    exc = raise_exception(boss)
    with pytest.raises(InvalidInput):
        services.exception_resolve(exception_id=exc.pk, resolution_note=" ", actor=boss)
    services.exception_resolve(exception_id=exc.pk, resolution_note="done", actor=boss)
    with pytest.raises(IllegalTransition):
        services.exception_acknowledge(exception_id=exc.pk, actor=boss)
    assert [s[0] for s in steps(exc)] == ["raised", "resolved"]


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_step(make_user):
    boss = make_user("supervisor")
    exc = raise_exception(boss)

    @transaction.atomic
    def acknowledge_then_fail():
        services.exception_acknowledge(exception_id=exc.pk, actor=boss)
        raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        acknowledge_then_fail()
    assert [s[0] for s in steps(exc)] == ["raised"]
    assert PlantException.objects.get(pk=exc.pk).status == ExceptionStatus.OPEN


# --- append-only in the database --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL triggers")
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE exceptions_exceptionevent SET note = 'rewritten' WHERE id = %s",
        "UPDATE exceptions_exceptionevent SET at = at - interval '1 day' WHERE id = %s",
        "DELETE FROM exceptions_exceptionevent WHERE id = %s",
    ],
)
def test_journal_rows_cannot_be_changed_or_deleted(make_user, sql):
    exc = raise_exception(make_user("supervisor"))
    row = ExceptionEvent.objects.get(exception=exc)
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [row.pk])
    again = ExceptionEvent.objects.get(pk=row.pk)
    assert (again.note, again.at) == (row.note, row.at)


@pytest.mark.django_db
def test_the_orm_cannot_change_a_step_either(make_user):
    exc = raise_exception(make_user("supervisor"))
    row = ExceptionEvent.objects.get(exception=exc)
    row.note = "changed"
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        ExceptionEvent.objects.filter(pk=row.pk).delete()
    assert ExceptionEvent.objects.get(pk=row.pk).note == ""


# --- the backfill (migration 0004) ---------------------------------------------------


def _legacy(**fields) -> PlantException:
    """An exception as the services wrote them before the journal (no rows)."""
    raised_at = fields.pop("raised_at", None)
    exc = PlantException.objects.create(
        type="process_deviation", severity="high", title="Legacy", **fields
    )
    if raised_at is not None:  # auto_now_add sets it on create
        PlantException.objects.filter(pk=exc.pk).update(raised_at=raised_at)
        exc.refresh_from_db()
    return exc


@pytest.mark.django_db
def test_backfill_rebuilds_the_journal_from_the_rows(make_user):
    olga, boss, head = make_user("operator"), make_user("supervisor"), make_user()
    t0 = timezone.now() - timedelta(days=3)
    log = [
        {"level": 0, "role": "operator", "at": t0.isoformat()},
        {
            "level": 1,
            "role": "supervisor",
            "at": (t0 + timedelta(minutes=15)).isoformat(),
        },
        {
            "level": 2,
            "role": "plant-head",
            "at": (t0 + timedelta(minutes=30)).isoformat(),
        },
    ]
    escalated_and_acked = _legacy(
        raised_at=t0,
        raised_by=olga,
        escalation_level=2,
        escalation_log=log,
        status=ExceptionStatus.RESOLVED,
        acknowledged_by=boss,
        acknowledged_at=t0 + timedelta(hours=1),
        resolved_by=head,
        resolved_at=t0 + timedelta(hours=2),
        resolution_note="Seal replaced",
    )
    resolved_directly = _legacy(
        raised_at=t0,
        escalation_log=log[:1],
        status=ExceptionStatus.RESOLVED,
        acknowledged_by=boss,
        acknowledged_at=t0 + timedelta(hours=3),
        resolved_by=boss,
        resolved_at=t0 + timedelta(hours=3),
        resolution_note="False alarm",
    )
    still_open = _legacy(raised_by=olga, escalation_log=log[:1])
    assert not ExceptionEvent.objects.exists()

    assert backfill_migration.backfill(apps, None) == 8

    assert steps(escalated_and_acked) == [
        ("raised", 0, "operator", olga.pk, ""),
        ("escalated", 1, "supervisor", None, ""),
        ("escalated", 2, "plant-head", None, ""),
        ("acknowledged", 2, "plant-head", boss.pk, ""),
        ("resolved", 2, "plant-head", head.pk, "Seal replaced"),
    ]
    times = list(
        ExceptionEvent.objects.filter(exception=escalated_and_acked)
        .order_by("id")
        .values_list("at", flat=True)
    )
    assert times == [
        t0,
        t0 + timedelta(minutes=15),
        t0 + timedelta(minutes=30),
        t0 + timedelta(hours=1),
        t0 + timedelta(hours=2),
    ]
    assert [s[0] for s in steps(resolved_directly)] == ["raised", "resolved"]
    assert steps(still_open) == [("raised", 0, "operator", olga.pk, "")]
    # Run again (or after the services journalled newer exceptions): nothing added.
    raise_exception(boss)
    before = ExceptionEvent.objects.count()
    assert backfill_migration.backfill(apps, None) == 0
    assert ExceptionEvent.objects.count() == before


@pytest.mark.django_db
def test_backfill_skips_unreadable_log_entries(make_user):
    exc = _legacy(
        escalation_level=1,
        escalation_log=[
            {"level": 0, "role": "operator", "at": timezone.now().isoformat()},
            {"level": 1, "role": "supervisor", "at": "not a time"},
            "junk",
            {"level": "1", "at": timezone.now().isoformat()},
        ],
    )
    assert backfill_migration.backfill(apps, None) == 1
    assert [s[0] for s in steps(exc)] == ["raised"]


# --- GET /api/logs?category=system ----------------------------------------------------


def read_all(client, params: dict) -> list[dict]:
    """Every event of the stream for ``params``, page by page (``next`` links)."""
    events, cursor = [], None
    for _ in range(100):
        answer = client.get(
            "/api/logs", {**params, **({"cursor": cursor} if cursor else {})}
        )
        assert answer.status_code == 200, answer.json()
        body = answer.json()
        events += body["results"]
        if not body["next"]:
            return events
        cursor = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    raise AssertionError("the pages never end")


@pytest.fixture
def journal(make_user):
    """Exceptions of every severity at several steps; two escalations share
    one instant (the beat's "now")."""
    olga, boss = make_user("operator", username="olga"), make_user("supervisor")
    low = raise_exception(olga, severity="low", title="Label smudged")
    medium = raise_exception(olga, severity="medium", title="Torque drift")
    high = raise_exception(olga, severity="high", title="Seal leaking")
    critical = raise_exception(olga, severity="critical", title="Thermal event")
    now = max(e.ack_due_at for e in (low, medium, high, critical)) + timedelta(
        seconds=1
    )
    assert services.exceptions_escalate_overdue(now=now) == 4
    services.exception_acknowledge(exception_id=medium.pk, actor=boss)
    services.exception_resolve(
        exception_id=low.pk, resolution_note="Relabelled", actor=boss
    )
    return {
        "low": low,
        "medium": medium,
        "high": high,
        "critical": critical,
        "boss": boss,
    }


def expected_ids(**filters) -> list[str]:
    rows = ExceptionEvent.objects.filter(**filters).values_list("at", "pk")
    return [
        i
        for _, i in sorted(
            ((at, f"system:exception:{pk}") for at, pk in rows), reverse=True
        )
    ]


@pytest.mark.django_db
def test_the_journal_is_in_the_system_stream_newest_first(journal, make_user):
    reader = make_user("operator")  # everyone may read it
    events = read_all(client_for(reader), {"category": "system", "page_size": 3})
    assert [e["id"] for e in events] == expected_ids()
    assert len(events) == 4 + 4 + 1 + 1
    by_action = {}
    for event in events:
        assert event["category"] == "system"
        by_action.setdefault(event["action"], []).append(event)
    assert set(by_action) == {
        "exception.raised",
        "exception.escalated",
        "exception.acknowledged",
        "exception.resolved",
    }
    critical = journal["critical"]
    [escalation] = [
        e
        for e in by_action["exception.escalated"]
        if e["target"]["id"] == critical.code
    ]
    assert escalation["target"] == {
        "type": "exception",
        "id": critical.code,
        "label": "Thermal event",
    }
    assert escalation["severity"] == "critical"
    assert escalation["actor"] is None
    assert escalation["source"] == "task"
    assert escalation["message"] == (
        f"{critical.code} escalated to level 1 (supervisor): Thermal event"
    )
    [resolved] = by_action["exception.resolved"]
    assert resolved["severity"] == "info"
    assert resolved["actor"] == journal["boss"].username
    assert resolved["message"].endswith("Label smudged: Relabelled")
    raised = {
        e["target"]["label"]: e["severity"] for e in by_action["exception.raised"]
    }
    assert raised == {
        "Label smudged": "info",
        "Torque drift": "warning",
        "Seal leaking": "error",
        "Thermal event": "critical",
    }
    assert {e["actor"] for e in by_action["exception.raised"]} == {"olga"}


@pytest.mark.django_db
def test_severity_and_search_filter_the_journal(journal, make_user):
    client = client_for(make_user("supervisor"))
    high = journal["high"]
    errors = read_all(client, {"category": "system", "severity": "error"})
    assert [e["id"] for e in errors] == expected_ids(
        exception=high, kind__in=["raised", "escalated"]
    )
    info = read_all(client, {"category": "system", "severity": "info"})
    assert {(e["action"], e["target"]["label"]) for e in info} == {
        ("exception.raised", "Label smudged"),
        ("exception.escalated", "Label smudged"),
        ("exception.acknowledged", "Torque drift"),
        ("exception.resolved", "Label smudged"),
    }
    by_code = read_all(client, {"category": "system", "search": high.code.lower()})
    assert [e["id"] for e in by_code] == expected_ids(exception=high)
    by_title = read_all(client, {"category": "system", "search": "THERMAL"})
    assert {e["target"]["id"] for e in by_title} == {journal["critical"].code}
    by_note = read_all(client, {"category": "system", "search": "relabel"})
    assert [e["action"] for e in by_note] == ["exception.resolved"]
    by_actor = read_all(client, {"category": "system", "search": "olga"})
    assert len(by_actor) == 4
    assert {e["action"] for e in by_actor} == {"exception.raised"}
    assert read_all(client, {"category": "system", "search": "EX-999999999"}) == []
    # Not in another category's stream.
    assert read_all(client, {"category": "alarm"}) == []


@pytest.mark.django_db
def test_the_time_window_and_one_query_per_page(
    journal, make_user, django_assert_num_queries
):
    client = client_for(make_user("operator"))
    escalated_at = ExceptionEvent.objects.filter(kind="escalated").first().at
    window = read_all(
        client,
        {
            "category": "system",
            "from": escalated_at.isoformat(),
            "to": (escalated_at + timedelta(microseconds=1)).isoformat(),
            "page_size": 3,
        },
    )
    assert [e["id"] for e in window] == expected_ids(kind="escalated")
    assert len(window) == 4  # one instant, ordered by id across two pages
    # The user, then one statement over the system sources the operator may
    # read (connectors, CMMS, the exceptions' journal).
    with django_assert_num_queries(1 + 1):
        client.get("/api/logs", {"category": "system", "page_size": 5})
