"""GET /api/logs (control-UI contract group VII): each source's
shape, the merge's order, cursor pagination, filters and search, strict
parameters, what each role sees, the audited CSV export, immutability and the
queries a page costs (docs/logs.md)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django_celery_beat.models import CrontabSchedule
from rest_framework.test import APIClient

from bpmos.dashboards import logs
from bpmos.logevents import LogQuery
from compliance.logsource import email_source
from compliance.models import EmailDelivery, ScheduledReturn
from elog import audit, shiftlog
from elog.models import AuditRecord
from elog.selectors import audit_source
from passports import ledger
from passports.logsource import ledger_source
from passports.models import PassportEvent
from scada.logsource import alarm_source, cmms_source, comm_source
from scada.models import (
    AlarmEvent,
    AlarmHistory,
    Connector,
    DeliveryAttempt,
    MaintenanceWorkOrder,
)
from tests.conftest import bearer
from tests.factories_passports import register
from tests.support import PAGES_AT_MOST

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    return client


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def audit_at(when: datetime, actor=None, action="thing.done", **target):
    with time_machine.travel(when, tick=False):
        return audit.record(actor=actor, action=action, **target)


def make_pack(**overrides):
    """A pack registered the day before T0 (events at T0 come after it)."""
    with time_machine.travel(T0 - timedelta(days=1), tick=False):
        return register(actor=None, **overrides)


def alarm(when: datetime, *, tag="TT-101", severity="high", kind="limit", **extra):
    event = AlarmEvent.objects.create(
        timestamp=when,
        tag_name=tag,
        severity=severity,
        kind=kind,
        message=extra.pop("message", "Temperature high"),
        **extra,
    )
    history = AlarmHistory.objects.create(
        alarm=event, at=when, change="activated", to_state="unack_active"
    )
    return event, history


def cmms_failure(when: datetime, error="Bad gateway"):
    order = MaintenanceWorkOrder.objects.create(
        asset_id="M-1", asset_name="Press 1", description="Fix", priority="high"
    )
    with time_machine.travel(when, tick=False):
        return DeliveryAttempt.objects.create(
            work_order=order, ok=False, status_code=502, error=error
        )


def email_failure(owner, when: datetime, status="failed"):
    schedule = ScheduledReturn.objects.get_or_create(
        name="CPCB monthly",
        defaults={
            "period": "previous_month",
            "recipients": "epr@cpcb.example",
            "format": "csv",
            "crontab": CrontabSchedule.objects.create(minute="0", hour="6"),
            "owner": owner,
        },
    )[0]
    with time_machine.travel(when, tick=False):
        return EmailDelivery.objects.create(
            schedule=schedule,
            status=status,
            recipients="epr@cpcb.example",
            subject="EPR return 2026-02",
            error="SMTP 554 refused",
        )


def everything(query: dict, client: APIClient) -> list[dict]:
    """Every event, walking the ``next`` links."""
    out, params = [], dict(query)
    for _ in range(PAGES_AT_MOST):  # a cursor that never ends fails, not loops
        response = client.get("/api/logs", params)
        assert response.status_code == 200, response.content
        body = response.json()
        out.extend(body["results"])
        if body["next"] is None:
            return out
        params["cursor"] = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    pytest.fail(f"still a next page after {PAGES_AT_MOST}: {body['next']}")


# --- each source's shape ---


@pytest.mark.django_db
def test_each_source_gives_its_rows_as_log_events(make_user):
    admin = make_user("admin", username="ada")
    record = audit_at(
        at(1),
        actor=admin,
        action="user.role_changed",
        target_type="user",
        target_id="7",
    )
    pack = make_pack()
    manufactured = PassportEvent.objects.get(passport=pack)
    failed = ledger.append(
        passport=pack.pk,
        kind="qa_failed",
        data={"reason": "secret cathode NMC811"},
        actor=admin,
        occurred_at=at(2),
    )
    alarm_event, history = alarm(at(3), severity="critical")
    plc = Connector.objects.create(name="PLC-7", kind="opcua", endpoint="opc.tcp://p:1")
    _, loss = alarm(at(4), tag="", kind="comm_loss", connector=plc, message="Lost")
    attempt = cmms_failure(at(5))
    mail = email_failure(admin, at(6), status="retrying")
    query = LogQuery(limit=10)

    [a] = [e for e in audit_source(query) if e.id == f"audit:{record.pk}"]
    assert (a.category, a.severity, a.actor, a.action) == (
        "audit",
        "info",
        "ada",
        "user.role_changed",
    )
    assert a.target.as_dict() == {"type": "user", "id": "7", "label": ""}
    assert a.timestamp == at(1)
    assert "user.role_changed" in a.message

    ledger_events = ledger_source(query)
    assert [e.id for e in ledger_events] == [
        f"ledger:{failed.pk}",
        f"ledger:{manufactured.pk}",
    ]
    qa = ledger_events[0]
    assert (qa.category, qa.severity, qa.action) == (
        "ledger",
        "warning",
        "passport.qa_failed",
    )
    assert qa.target.as_dict() == {
        "type": "passport",
        "id": str(pack.uuid),
        "label": pack.serial,
    }
    assert "NMC811" not in qa.message  # the event's data is never shown
    assert ledger_events[1].severity == "info"

    [al] = alarm_source(query)  # the comm-loss alarm is a system event instead
    assert al.id == f"alarm:{history.pk}"
    assert (al.category, al.severity, al.action) == (
        "alarm",
        "critical",
        "alarm.activated",
    )
    assert al.target.as_dict() == {
        "type": "alarm",
        "id": str(alarm_event.pk),
        "label": "TT-101",
    }
    assert al.actor is None
    assert al.source == "scada"

    [comm] = comm_source(query)
    assert comm.id == f"system:comm:{loss.pk}"
    assert (comm.category, comm.severity) == ("system", "error")
    assert comm.target.as_dict() == {
        "type": "connector",
        "id": str(plc.pk),
        "label": "PLC-7",
    }

    [cmms] = cmms_source(query)
    assert cmms.id == f"system:cmms:{attempt.pk}"
    assert (cmms.category, cmms.severity, cmms.timestamp) == ("system", "error", at(5))
    assert "HTTP 502" in cmms.message
    assert cmms.target.label == f"MWO-{attempt.work_order_id}"

    [email] = email_source(query)
    assert email.id == f"system:email:{mail.pk}"
    assert (email.category, email.severity) == ("system", "warning")
    assert "epr@cpcb.example" not in email.message  # no addresses
    assert email.target.label == "CPCB monthly"

    body = client_for(admin).get("/api/logs", {"page_size": 200}).json()
    item = next(i for i in body["results"] if i["id"] == f"audit:{record.pk}")
    assert set(item) == {
        "id",
        "timestamp",
        "category",
        "severity",
        "actor",
        "action",
        "target",
        "message",
        "source",
    }
    assert item["timestamp"] == "2026-03-01T08:00:01Z"


# --- the merge's order and the cursor ---


@pytest.mark.django_db
def test_equal_timestamps_come_in_one_order_across_sources(make_user):
    admin = make_user("admin")
    same = at(100)
    records = [audit_at(same, action="x.one"), audit_at(same, action="x.two")]
    pack = make_pack()
    event = ledger.append(
        passport=pack.pk,
        kind="qa_passed",
        data={"test": "EOL"},
        actor=None,
        occurred_at=same,
    )
    _, history = alarm(same)
    attempt = cmms_failure(same)
    olga = make_user("operator")
    with time_machine.travel(same, tick=False):  # its audit record too
        entry = shiftlog.entry_write(
            actor=olga,
            plant_id=shiftlog.this_plant_id(),
            operator_id=olga.pk,
            operator_name="Olga",
            entry_type="note",
            body="Chiller restarted",
            now=same,
        )
    audits = AuditRecord.objects.filter(occurred_at=same).values_list("pk", flat=True)
    assert {r.pk for r in records} < set(audits)
    # (timestamp, id) descending, the id as a string: "system:cmms:…" >
    # "shift_log:…" > "ledger:…" > "audit:…" > "alarm:…"
    expected = [
        f"system:cmms:{attempt.pk}",
        f"shift_log:{entry.pk}",
        f"ledger:{event.pk}",
        *sorted((f"audit:{pk}" for pk in audits), reverse=True),
        f"alarm:{history.pk}",
    ]
    window = {
        "from": same.isoformat(),
        "to": (same + timedelta(microseconds=1)).isoformat(),
    }
    client = client_for(admin)
    first = client.get("/api/logs", window).json()
    assert [i["id"] for i in first["results"]] == expected
    assert first["next"] is None
    # one by one, the cursor lands between events of the same instant
    walked = everything({**window, "page_size": 1}, client)
    assert [i["id"] for i in walked] == expected


@pytest.mark.django_db
def test_ids_of_one_instant_sort_as_text_in_the_database_and_the_merge(make_user):
    """pk 10000000 sorts below pk 9999999 as text ("1" < "9"): the database's
    order and the cursor's filter agree with the merge's string order."""
    admin = make_user("admin")
    same = at(7)
    event, _ = alarm(same)
    pks = [9_999_998, 9_999_999, 10_000_000, 10_000_001, 99_999_999]
    for pk in pks:
        AlarmHistory.objects.create(
            id=pk, alarm=event, at=same, change="acknowledged", to_state="ack_active"
        )
    ids = [f"alarm:{pk}" for pk in pks] + [
        f"alarm:{AlarmHistory.objects.filter(change='activated').get().pk}"
    ]
    expected = sorted(ids, reverse=True)
    assert expected[:2] == ["alarm:99999999", "alarm:9999999"]
    client = client_for(admin)
    window = {"category": "alarm", "from": same.isoformat()}
    assert [i["id"] for i in client.get("/api/logs", window).json()["results"]] == (
        expected
    )
    for size in (1, 2, 4):
        walked = everything({**window, "page_size": size}, client)
        assert [i["id"] for i in walked] == expected, size


@pytest.mark.django_db
def test_the_cursor_walks_everything_once_in_order_while_rows_arrive(make_user):
    admin = make_user("admin")
    pack = make_pack()
    # 40 events over 4 sources, many sharing a second
    for n in range(10):
        audit_at(at(n // 2), action=f"seed.{n}")
        ledger.append(
            passport=pack.pk,
            kind="telemetry_summarised",
            data={"sohPercent": 97.5, "samples": 120},
            actor=None,
            occurred_at=at(n // 3),
        )
        alarm(at(n // 2), tag=f"TT-{n}")
        cmms_failure(at(n // 4))
    client = client_for(admin)
    window = {"from": T0.isoformat(), "to": at(3600).isoformat(), "page_size": 7}
    expected = [
        i["id"]
        for i in client.get("/api/logs", {**window, "page_size": 200}).json()["results"]
    ]
    assert len(expected) == 40
    seen, params = [], dict(window)
    # at most PAGES_AT_MOST pages: a cursor that never ends fails, not loops
    for new in range(PAGES_AT_MOST):
        body = client.get("/api/logs", params).json()
        assert len(body["results"]) <= 7
        seen.extend(i["id"] for i in body["results"])
        # newer rows arrive while the client walks: above its cursor
        audit_at(at(1800 + new), action="late.arrival")
        alarm(at(1800 + new), tag="LATE")
        if body["next"] is None:
            break
        params["cursor"] = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    assert seen == expected  # every one, once, in order
    assert len(set(seen)) == len(seen)
    stamps = [
        (i["timestamp"], i["id"])
        for i in client.get("/api/logs", {**window, "page_size": 200}).json()["results"]
    ]
    assert stamps == sorted(stamps, reverse=True)  # (timestamp, id) descending


@pytest.mark.django_db
def test_a_tampered_or_foreign_cursor_is_a_400(make_user):
    admin = make_user("admin")
    for n in range(3):
        audit_at(at(n), action="seed")
    client = client_for(admin)
    body = client.get("/api/logs", {"page_size": 1}).json()
    cursor = parse_qs(urlsplit(body["next"]).query)["cursor"][0]
    assert client.get("/api/logs", {"cursor": cursor}).status_code == 200
    for bad in (
        cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),
        "x" + cursor,
        "garbage",
        "W10",
        "a" * 600,
    ):
        response = client.get("/api/logs", {"cursor": bad})
        assert response.status_code == 400, bad
        assert "cursor" in response.json()["details"]


# --- filters and search ---


@pytest.mark.django_db
def test_filters_and_search(make_user):
    admin = make_user("admin")
    audit_at(
        at(1), action="workorder.created", target_type="workorder", target_id="WO-55"
    )
    pack = make_pack(serial="PACK-ZEBRA-1")
    ledger.append(
        passport=pack.pk,
        kind="held",
        data={"reason": "Swelling"},
        actor=None,
        occurred_at=at(2),
    )
    alarm(at(3), tag="TT-LOW", severity="low")
    alarm(at(4), tag="TT-CRIT", severity="critical", message="Cell Overheat")
    cmms_failure(at(5), error="Connection refused by CMMS")
    client = client_for(admin)

    def ids(**params):
        response = client.get("/api/logs", {"page_size": 200, **params})
        assert response.status_code == 200, response.content
        return [
            (i["category"], i["severity"], i["message"])
            for i in response.json()["results"]
        ]

    cats = {c for c, _, _ in ids(category="alarm,system")}
    assert cats == {"alarm", "system"}
    response = client.get("/api/logs?category=alarm&category=ledger&page_size=200")
    assert {i["category"] for i in response.json()["results"]} == {"alarm", "ledger"}
    assert {s for _, s, _ in ids(severity="critical")} == {"critical"}
    assert len(ids(severity="critical")) == 1
    warnings = ids(severity="warning", category="ledger")
    assert len(warnings) == 1
    assert "Put on hold" in warnings[0][2]
    window = ids(**{"from": at(3).isoformat(), "to": at(5).isoformat()})
    assert [m for _, _, m in window] == [
        "TT-CRIT: activated (Cell Overheat)",
        "TT-LOW: activated (Temperature high)",
    ]
    # search: case-insensitive, across message and target (label, id)
    assert [m for _, _, m in ids(search="overheat")] == [
        "TT-CRIT: activated (Cell Overheat)"
    ]
    # the pack's two ledger events, and its registration in the audit log
    zebra = [c for c, _, _ in ids(search="zebra")]
    assert set(zebra) == {"audit", "ledger"}
    assert zebra.count("ledger") == 2
    assert [c for c, _, _ in ids(search="wo-55")] == ["audit"]
    assert [c for c, _, _ in ids(search="REFUSED BY")] == ["system"]
    assert ids(search="nothing-like-this") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"category": "nope"}, "category"),
        ({"category": "alarm,"}, "category"),
        ({"category": ""}, "category"),
        ({"severity": "fatal"}, "severity"),
        ({"from": "yesterday"}, "from"),
        ({"to": "9999-12-31T23:59:59-23:59"}, "to"),
        ({"from": "1999-12-31T00:00:00Z"}, "from"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_size": "9" * 40}, "page_size"),
        ({"search": "x" * 201}, "search"),
        ({"search": "a\x00b"}, "search"),
    ],
)
def test_bad_parameters_are_400s_naming_them(make_user, params, field):
    client = client_for(make_user("admin"))
    paths = ["/api/logs"] + (["/api/logs/export"] if field != "page_size" else [])
    for path in paths:
        response = client.get(path, params)
        assert response.status_code == 400, path
        assert field in response.json()["details"], response.json()


# --- roles ---


@pytest.mark.django_db
def test_an_operator_sees_no_audit_rows_and_no_compliance_mail(make_user):
    admin = make_user("admin")
    operator = make_user("operator")
    audit_at(at(1), actor=admin, action="secret.audited")
    _, history = alarm(at(2))
    email_failure(admin, at(3))
    seen = client_for(operator).get("/api/logs", {"page_size": 200}).json()["results"]
    assert {i["category"] for i in seen} == {"alarm"}
    assert [i["id"] for i in seen] == [f"alarm:{history.pk}"]
    refused = client_for(operator).get("/api/logs", {"category": "audit"})
    assert refused.status_code == 403
    for role in ("planner", "supervisor", "plant-head"):
        rows = client_for(make_user(role)).get("/api/logs").json()["results"]
        assert "audit" not in {i["category"] for i in rows}, role
    auditor = client_for(make_user("auditor")).get("/api/logs", {"page_size": 200})
    assert {i["category"] for i in auditor.json()["results"]} == {
        "audit",
        "alarm",
        "system",
    }
    supervisor = client_for(make_user("supervisor")).get(
        "/api/logs", {"category": "system"}
    )
    assert [i["action"] for i in supervisor.json()["results"]] == [
        "compliance.email_failed"
    ]


# --- CSV export ---


@pytest.mark.django_db
def test_the_csv_export_is_audited_escaped_and_filtered(make_user):
    supervisor = make_user("supervisor", username="sue")
    alarm(at(1), tag='=HYPERLINK("http://evil")', message="+cmd|' /C calc'!A0")
    alarm(at(2), tag="TT-9", severity="low")
    cmms_failure(at(3))
    response = client_for(supervisor).get(
        "/api/logs/export", {"format": "csv", "category": "alarm", "severity": "error"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["id", "timestamp", "category", "severity"]
    assert len(rows) == 2  # the header and the one high alarm
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["targetLabel"] == '\'=HYPERLINK("http://evil")'
    assert row["message"].startswith("'=HYPERLINK")
    assert row["timestamp"] == "2026-03-01T08:00:01Z"
    record = AuditRecord.objects.get(action="logs_export")
    assert record.actor_username == "sue"
    assert record.after["category"] == ["alarm"]
    assert record.after["severity"] == ["error"]
    # the same visibility as the stream
    operator = client_for(make_user("operator"))
    assert operator.get("/api/logs/export", {"category": "audit"}).status_code == 403
    assert not AuditRecord.objects.filter(
        actor_username__startswith="operator"
    ).exists()


@pytest.mark.django_db
def test_the_export_stops_at_its_cap(make_user, monkeypatch):
    admin = make_user("admin")
    for n in range(7):
        alarm(at(n), tag=f"TT-{n}")
    monkeypatch.setattr(logs, "EXPORT_CHUNK", 2)
    events = list(
        logs.export_events(LogQuery(limit=2, categories=frozenset({"alarm"})), cap=5)
    )
    assert [e.target.label for e in events] == ["TT-6", "TT-5", "TT-4", "TT-3", "TT-2"]
    body = client_for(admin).get("/api/logs/export", {"category": "alarm"})
    lines = b"".join(body.streaming_content).decode().strip().splitlines()
    assert len(lines) == 8


# --- immutability ---


@pytest.mark.django_db
def test_the_stream_is_read_only(make_user):
    client = client_for(make_user("admin"))
    for method in ("post", "put", "patch", "delete"):
        for path in ("/api/logs", "/api/logs/export"):
            assert getattr(client, method)(path, {}, format="json").status_code == 405


@pytest.mark.django_db
def test_the_tables_under_it_refuse_updates_through_raw_sql(make_user):
    record = audit_at(at(1), action="seed")
    pack = make_pack()
    for table, pk in (
        ("elog_auditrecord", record.pk),
        (
            "passports_passportevent",
            PassportEvent.objects.filter(passport=pack).get().pk,
        ),
    ):
        with (
            pytest.raises(IntegrityError),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(
                f"UPDATE {table} SET actor_username = 'mallory' WHERE id = %s", [pk]
            )
    assert AuditRecord.objects.get(pk=record.pk).actor_username == ""


# --- what a page costs ---


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 30])
def test_a_page_costs_one_query_per_source(make_user, django_assert_num_queries, rows):
    admin = make_user("admin")
    operator = make_user("operator")
    for n in range(rows):
        audit_at(at(n), action="seed")
        alarm(at(n), tag=f"TT-{n}")
        cmms_failure(at(n))
    pack = make_pack()
    ledger.append(
        passport=pack.pk,
        kind="held",
        data={"reason": "x"},
        actor=None,
        occurred_at=at(1),
    )
    assert logs.shift_log_available()
    # the user, then one statement for every source (audit, shift log,
    # ledger, alarms, connectors, CMMS, exceptions' journal, compliance mail:
    # their SELECTs in one UNION ALL), with a cursor or without
    client = client_for(admin)
    with django_assert_num_queries(1 + 1):  # the user, then the page
        first = client.get("/api/logs", {"page_size": 10}).json()
    cursor = (
        parse_qs(urlsplit(first["next"]).query)["cursor"][0] if first["next"] else ""
    )
    with django_assert_num_queries(1 + 1):
        client.get("/api/logs", {"page_size": 10, "cursor": cursor})
    # a search: the ledger looks up the matching passports, the alarms and the
    # connectors the matching alarms and users (bpmos.logsource.among): all
    # three look-ups in one query before the statement (the two sources
    # share theirs)
    with django_assert_num_queries(1 + 1 + 1) as searched:
        found = client.get("/api/logs", {"page_size": 10, "search": "TT-1"}).json()
    lookups = searched.captured_queries[1]["sql"]
    assert lookups.count("UNION ALL") == 2, lookups  # passports, alarms, users
    tags = {f"TT-{n}" for n in range(rows) if f"TT-{n}".startswith("TT-1")}
    shown = {e["target"]["label"] for e in found["results"] if e["category"] == "alarm"}
    assert shown <= tags, (shown, tags)
    assert bool(shown) == bool(tags), (shown, tags)
    with django_assert_num_queries(2):  # the user, the alarms
        client.get("/api/logs", {"category": "alarm"})
    floor = client_for(operator)
    with django_assert_num_queries(1 + 1):  # no audit, no compliance mail in it
        floor.get("/api/logs")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [
        "category=" + ",".join(["alarm"] * 30),
        "&".join(["category=alarm"] * 25),
        "severity=%00",
        "search=%ED%A0%80",  # not UTF-8
        "search=%25%5F%5C",  # LIKE's wildcards, literally
        "search=",
        "from=&to=",
        "from=2026-13-45T00:00:00Z",
        "to=2026-01-01T00:00:00%2B99:00",
        "page_size=-1",
        "page_size=1e3",
        "page_size=",
        "cursor=",
        "cursor=%00",
        "cursor=" + "A" * 512,
        "format=xml",
        "format=json",
    ],
)
def test_junk_is_never_a_500(make_user, raw):
    client = client_for(make_user("admin"))
    # (/api/logs takes no ``format``: DRF's renderer override answers an
    # unknown one with 404, as on every endpoint; the export's is its own)
    for path, allowed in (
        ("/api/logs", (200, 400, 404)),
        ("/api/logs/export", (200, 400)),
    ):
        response = client.get(f"{path}?{raw}")
        assert response.status_code in allowed, (path, raw, response.status_code)


@pytest.mark.django_db(transaction=True)
def test_over_a_real_socket_the_stream_pages_and_exports(http, make_user):
    admin = make_user("admin")
    for n in range(3):
        alarm(at(n), tag=f"TT-{n}")
    headers = bearer(admin)
    first = http.get(
        "/api/logs", params={"category": "alarm", "page_size": 2}, headers=headers
    )
    assert first.status_code == 200
    body = first.json()
    assert [i["target"]["label"] for i in body["results"]] == ["TT-2", "TT-1"]
    rest = http.get(body["next"], headers=headers).json()
    assert [i["target"]["label"] for i in rest["results"]] == ["TT-0"]
    assert rest["next"] is None
    export = http.get("/api/logs/export", params={"category": "alarm"}, headers=headers)
    assert export.status_code == 200
    assert export.headers["cache-control"] == "no-store"
    assert [r[0] for r in csv.reader(io.StringIO(export.text))][1:] == [
        i["id"] for i in body["results"] + rest["results"]
    ]
    assert http.post("/api/logs", json={}, headers=headers).status_code == 405
