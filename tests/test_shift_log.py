"""The electronic shift log (elog.shiftlog, docs/logs.md): POST /api/logs/write
validation, immutability in the database, corrections, handovers and their
acknowledgement, the three auto-entries written in their services'
transactions, the list endpoint, the roles, and the source of GET /api/logs."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from bpmos import logevents
from bpmos.logevents import LogQuery
from bpmos.roles import Role
from elog import selectors, shiftlog, shifts
from elog.models import AuditRecord, ShiftLogEntry
from elog.models import ShiftLogEntryType as T
from lines import oee
from runbooks.models import WorkOrder
from scada import alarms, maintenance, quality
from scada.models import AlarmEvent, AlarmState, LimsResult, MaintenanceWorkOrder
from tests.conftest import api_as as api
from tests.factories_lines import make_line
from tests.factories_passports import register
from tests.factories_production import make_runbook, make_work_order
from tests.support import PAGES_AT_MOST

pytestmark = pytest.mark.django_db

WRITE = "/api/logs/write"
LIST = "/api/logs/shift"
TABLE = "elog_shiftlogentry"
# elog.audit serialises the chain with an advisory lock on PostgreSQL only.
CHAIN_LOCK = int(connection.vendor == "postgresql")


class Boom(Exception):
    """Raised after a service ran, to roll its transaction back."""


def run_then_roll_back(service) -> None:
    """Run ``service`` in a transaction, check it wrote its auto-entry there,
    then fail so that the transaction rolls back."""
    with transaction.atomic():
        service()
        assert ShiftLogEntry.objects.filter(automatic=True).count() == 1
        raise Boom


def body_for(user, **overrides):
    return {
        "plant_id": shiftlog.this_plant_id(),
        "operator_id": user.pk,
        "operator_name": "Olga Operator",
        "entry_type": "note",
        "body": "Line A restarted after the chiller fault.",
        "metadata": {"station": "st-02"},
        **overrides,
    }


def write(user, **fields) -> ShiftLogEntry:
    """An entry written through the service (``now`` may move it in time)."""
    now = fields.pop("now", None)
    data = body_for(user, **fields)
    return shiftlog.entry_write(
        actor=user,
        plant_id=data["plant_id"],
        operator_id=data["operator_id"],
        operator_name=data["operator_name"],
        entry_type=data["entry_type"],
        body=data["body"],
        metadata=data["metadata"],
        line=data.get("line", ""),
        corrects_id=data.get("corrects"),
        now=now,
    )


@pytest.fixture
def olga(make_user):
    return make_user(Role.OPERATOR, username="olga", first_name="Olga", last_name="K")


@pytest.fixture
def sam(make_user):
    return make_user(Role.SUPERVISOR, username="sam")


@pytest.fixture
def tina(make_user):
    return make_user(Role.SUPERVISOR, username="tina")


# --- POST /api/logs/write ----------------------------------------------------------


def test_write_returns_the_entry_in_the_contract_s_shape(olga):
    response = api(olga).post(WRITE, body_for(olga), format="json")

    assert response.status_code == 201, response.json()
    got = response.json()
    entry = ShiftLogEntry.objects.get()
    start, end = shifts.shift_of(at=entry.created_at)
    assert got == {
        "id": entry.pk,
        "plant_id": shiftlog.this_plant_id(),
        "operator_id": olga.pk,
        "operator_name": "Olga K",  # the account's name, not the one sent
        "entry_type": "note",
        "body": "Line A restarted after the chiller fault.",
        "metadata": {"station": "st-02"},
        "line": "",
        "shift_start": start.isoformat().replace("+00:00", "Z"),
        "shift_end": end.isoformat().replace("+00:00", "Z"),
        "target_type": "",
        "target_id": "",
        "corrects": None,
        "acknowledges": None,
        "acknowledged_by_entry": None,
        "automatic": False,
        "source": "api",
        "request_id": response["X-Request-ID"],
        "created_at": got["created_at"],
    }
    assert start <= entry.created_at < end
    record = AuditRecord.objects.get(action="shift_log.written")
    assert (record.actor, record.target_id) == (olga, str(entry.pk))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("entry_type", "gossip"),  # unknown
        ("entry_type", "alarm_acknowledged"),  # the system's own
        ("entry_type", "handover_ack"),  # has its own route
        ("entry_type", ""),
        ("plant_id", "another-plant"),
        ("plant_id", ""),
        ("operator_name", ""),
        ("operator_name", "x" * 151),
        ("body", ""),
        ("body", "   "),
        ("body", "x" * (shiftlog.MAX_BODY + 1)),
        ("metadata", ["not", "an", "object"]),
        ("metadata", "text"),
        ("metadata", {"blob": "x" * shiftlog.MAX_METADATA_BYTES}),
        ("metadata", {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}),
        ("line", "no-such-line"),
        ("line", "not a slug"),
        ("corrects", 1),  # only a correction names what it corrects
        ("corrects", "x"),
    ],
)
def test_bad_field_is_a_400_naming_it(olga, field, value):
    response = api(olga).post(WRITE, body_for(olga, **{field: value}), format="json")

    assert response.status_code == 400, response.json()
    assert set(response.json()["details"]) == {field}
    assert ShiftLogEntry.objects.count() == 0
    assert AuditRecord.objects.count() == 0


def test_someone_else_s_operator_id_is_a_400(olga, sam):
    response = api(olga).post(WRITE, body_for(olga, operator_id=sam.pk), format="json")

    assert response.status_code == 400
    assert response.json()["details"] == {
        "operator_id": ["Must be your own user id (the token's user)."]
    }
    assert ShiftLogEntry.objects.count() == 0


@pytest.mark.parametrize(
    "field", ["plant_id", "operator_id", "operator_name", "entry_type", "body"]
)
def test_missing_field_is_a_400_naming_it(olga, field):
    data = body_for(olga)
    del data[field]

    response = api(olga).post(WRITE, data, format="json")

    assert response.status_code == 400
    assert set(response.json()["details"]) == {field}


def test_entry_on_a_line_takes_that_line_s_shift(olga):
    line = make_line(slug="line-b")
    line.shift_start, line.shift_minutes = time(7, 0), 720
    line.save()

    response = api(olga).post(WRITE, body_for(olga, line="line-b"), format="json")

    assert response.status_code == 201
    entry = ShiftLogEntry.objects.get()
    assert (entry.shift_start, entry.shift_end) == oee.shift_window(
        line, entry.created_at
    )
    assert entry.shift_end - entry.shift_start == timedelta(hours=12)
    assert entry.shift_start.time() in {time(7, 0), time(19, 0)}


def test_entry_without_a_line_takes_the_plant_s_default_line_s_shift(olga):
    make_line(slug="line-z", position=2)
    first = make_line(slug="line-a", position=1)
    first.shift_start, first.shift_minutes = time(5, 0), 360
    first.save()

    entry = write(olga)

    assert (entry.shift_start, entry.shift_end) == oee.shift_window(
        first, entry.created_at
    )
    assert entry.line == ""


# --- immutability ------------------------------------------------------------------


def test_update_through_raw_sql_is_refused(olga):
    entry = write(olga)
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"UPDATE {TABLE} SET body = 'nothing happened' WHERE id = %s", [entry.pk]
        )
    entry.refresh_from_db()
    assert entry.body == "Line A restarted after the chiller fault."


def test_delete_through_raw_sql_is_refused(olga):
    entry = write(olga)
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [entry.pk])
    assert ShiftLogEntry.objects.filter(pk=entry.pk).exists()


def test_orm_update_and_delete_are_refused(olga):
    entry = write(olga)
    with pytest.raises(IntegrityError), transaction.atomic():
        ShiftLogEntry.objects.filter(pk=entry.pk).update(body="changed")
    with pytest.raises(IntegrityError), transaction.atomic():
        ShiftLogEntry.objects.filter(pk=entry.pk).delete()
    assert ShiftLogEntry.objects.get(pk=entry.pk).body == entry.body


def test_the_guards_are_named_for_the_flush_command():
    if connection.vendor == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass"
        expected = {f"{TABLE}_append_only_guard"}
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s"
        expected = {f"{TABLE}_append_only_update", f"{TABLE}_append_only_delete"}
    with connection.cursor() as cursor:
        cursor.execute(sql, [TABLE])
        names = {row[0] for row in cursor.fetchall()}
    assert expected <= names


# --- corrections -------------------------------------------------------------------


def test_correction_is_a_new_entry_referencing_the_corrected_one(olga):
    wrong = write(olga, body="Chiller fault on line B.")

    response = api(olga).post(
        WRITE,
        body_for(
            olga, entry_type="correction", corrects=wrong.pk, body="Line A, not B."
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["corrects"] == wrong.pk
    wrong.refresh_from_db()
    assert wrong.body == "Chiller fault on line B."  # untouched
    assert ShiftLogEntry.objects.count() == 2
    assert list(wrong.corrections.values_list("body", flat=True)) == ["Line A, not B."]
    record = AuditRecord.objects.get(action="shift_log.corrected")
    assert record.after["corrects"] == wrong.pk


def test_correction_needs_an_existing_entry_to_correct(olga):
    client = api(olga)
    missing = client.post(WRITE, body_for(olga, entry_type="correction"), format="json")
    unknown = client.post(
        WRITE, body_for(olga, entry_type="correction", corrects=999999), format="json"
    )

    assert missing.status_code == unknown.status_code == 400
    assert set(missing.json()["details"]) == {"corrects"}
    assert unknown.json()["details"] == {"corrects": ["No shift-log entry 999999."]}
    assert ShiftLogEntry.objects.count() == 0


def test_database_refuses_a_correction_without_reference(olga):
    entry = write(olga)
    with pytest.raises(IntegrityError), transaction.atomic():
        ShiftLogEntry.objects.create(
            plant_id="main",
            operator_name="x",
            entry_type=T.CORRECTION,
            body="x",
            shift_start=entry.shift_start,
            shift_end=entry.shift_end,
            created_at=entry.created_at,
        )


# --- handovers ---------------------------------------------------------------------


def previous_shift_handover(writer) -> ShiftLogEntry:
    """A handover written in the shift before the current one."""
    start, _ = shifts.shift_of(at=timezone.now())
    return write(
        writer,
        entry_type="handover",
        body="Line A on rework; chiller watched.",
        now=start - timedelta(minutes=10),
    )


def acknowledge(user, handover_id: int, **data):
    return api(user).post(
        f"/api/logs/shift/{handover_id}/acknowledge", data, format="json"
    )


def test_incoming_supervisor_acknowledges_a_handover_once(sam, tina):
    handover = previous_shift_handover(sam)

    first = acknowledge(tina, handover.pk, body="Taken over.")
    again = acknowledge(tina, handover.pk)

    assert first.status_code == 201, first.json()
    got = first.json()
    assert (got["entry_type"], got["acknowledges"], got["body"]) == (
        "handover_ack",
        handover.pk,
        "Taken over.",
    )
    assert got["shift_start"] == handover.shift_end.isoformat().replace("+00:00", "Z")
    assert again.status_code == 409
    assert again.json()["code"] == "already_acknowledged"
    assert ShiftLogEntry.objects.filter(entry_type=T.HANDOVER_ACK).count() == 1
    assert (
        AuditRecord.objects.filter(action="shift_log.handover_acknowledged").count()
        == 1
    )
    listed = api(tina).get(LIST, {"entry_type": "handover"}).json()["results"]
    assert [(e["id"], e["acknowledged_by_entry"]) for e in listed] == [
        (handover.pk, got["id"])
    ]


def test_handover_of_the_current_shift_is_not_acknowledged_yet(sam, tina):
    handover = write(sam, entry_type="handover", body="Going home.")

    response = acknowledge(tina, handover.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "not_incoming_shift"
    assert ShiftLogEntry.objects.filter(entry_type=T.HANDOVER_ACK).count() == 0


def test_handover_older_than_the_last_shift_is_not_acknowledged(sam, tina):
    start, _ = shifts.shift_of(at=timezone.now())
    old = write(sam, entry_type="handover", body="x", now=start - timedelta(days=1))

    response = acknowledge(tina, old.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "not_incoming_shift"


def test_writer_does_not_acknowledge_their_own_handover(sam):
    handover = previous_shift_handover(sam)

    response = acknowledge(sam, handover.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "own_handover"


def test_only_a_handover_is_acknowledged(olga, tina):
    note = write(olga)

    assert acknowledge(tina, note.pk).status_code == 404
    assert acknowledge(tina, 987654).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OPERATOR, 403),
        (Role.PLANNER, 403),
        (Role.AUDITOR, 403),
        (Role.SUPERVISOR, 201),
        (Role.PLANT_HEAD, 201),
        (Role.ADMIN, 201),
    ],
)
def test_who_acknowledges_a_handover(make_user, sam, role, status):
    handover = previous_shift_handover(sam)

    response = acknowledge(make_user(role), handover.pk)

    assert response.status_code == status
    assert ShiftLogEntry.objects.filter(entry_type=T.HANDOVER_ACK).count() == (
        status == 201
    )


def test_an_operator_writes_no_handover(olga):
    response = api(olga).post(
        WRITE, body_for(olga, entry_type="handover"), format="json"
    )

    assert response.status_code == 403
    assert ShiftLogEntry.objects.count() == 0


# --- roles of the write and the list ------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OPERATOR, 201),
        (Role.PLANNER, 201),
        (Role.SUPERVISOR, 201),
        (Role.PLANT_HEAD, 201),
        (Role.ADMIN, 201),
        (Role.AUDITOR, 403),
    ],
)
def test_everyone_on_the_floor_writes_and_the_auditor_does_not(make_user, role, status):
    user = make_user(role)

    response = api(user).post(WRITE, body_for(user), format="json")

    assert response.status_code == status
    assert ShiftLogEntry.objects.count() == (status == 201)


def test_write_without_a_token_is_a_401(olga):
    assert APIClient().post(WRITE, body_for(olga), format="json").status_code == 401


def test_everyone_reads_the_list_with_its_filters(make_user, olga, sam):
    make_line(slug="line-b")
    note = write(olga)
    incident = write(olga, entry_type="incident", line="line-b", body="Smoke at st-02")
    old = write(sam, body="Last week", now=timezone.now() - timedelta(days=7))
    client = api(make_user(Role.AUDITOR))

    def ids(**params):
        response = client.get(LIST, params)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [incident.pk, note.pk, old.pk]
    assert ids(entry_type="incident") == [incident.pk]
    assert ids(line="line-b") == [incident.pk]
    assert ids(operator=sam.pk) == [old.pk]
    assert ids(shift=old.created_at.isoformat()) == [old.pk]
    assert ids(**{"from": (timezone.now() - timedelta(days=1)).isoformat()}) == [
        incident.pk,
        note.pk,
    ]
    assert ids(to=(timezone.now() - timedelta(days=1)).isoformat()) == [old.pk]
    assert ids(search="smoke") == [incident.pk]
    assert ids(automatic="false") == [incident.pk, note.pk, old.pk]


@pytest.mark.parametrize(
    "params",
    [
        {"entry_type": "gossip"},
        {"shift": "yesterday"},
        {"from": "3000-01-01T00:00:00Z"},
        {"operator": "9" * 30},
        {"automatic": "maybe"},
    ],
)
def test_junk_list_filters_are_400s(olga, params):
    assert api(olga).get(LIST, params).status_code == 400


def test_list_costs_three_queries_however_many_entries(
    olga, sam, tina, django_assert_num_queries
):
    for _ in range(3):
        write(olga)
    handover = previous_shift_handover(sam)
    shiftlog.handover_acknowledge(handover_id=handover.pk, actor=tina)
    client = api(olga)
    with django_assert_num_queries(3):  # the token's user, the count, the page
        response = client.get(LIST)
    assert response.json()["count"] == 5


# --- the auto-entries --------------------------------------------------------------


def test_alarm_acknowledged_is_written_by_the_acknowledge(olga):
    alarm = AlarmEvent.objects.create(
        timestamp=timezone.now(),
        tag_name="l1.temp",
        status=AlarmState.UNACK_ACTIVE,
        message="Chiller temperature high",
        area="line-a",
    )

    response = api(olga).post(f"/api/alarms/{alarm.pk}/acknowledge", {}, format="json")

    assert response.status_code == 200, response.json()
    entry = ShiftLogEntry.objects.get()
    assert (entry.entry_type, entry.operator, entry.automatic) == (
        T.ALARM_ACKNOWLEDGED,
        olga,
        True,
    )
    assert (entry.target_type, entry.target_id) == ("alarmevent", str(alarm.pk))
    assert entry.metadata["to_state"] == AlarmState.ACK_ACTIVE
    assert AuditRecord.objects.filter(action="alarm.acknowledged").count() == 1
    assert AuditRecord.objects.filter(action__startswith="shift_log").count() == 0


def test_alarm_acknowledged_rolls_back_with_the_acknowledge(olga):
    alarm = AlarmEvent.objects.create(
        timestamp=timezone.now(),
        tag_name="l1.temp",
        status=AlarmState.UNACK_ACTIVE,
        message="Chiller temperature high",
    )
    with pytest.raises(Boom):
        run_then_roll_back(
            lambda: alarms.alarm_acknowledge(alarm_id=alarm.pk, actor=olga)
        )

    assert ShiftLogEntry.objects.count() == 0
    alarm.refresh_from_db()
    assert alarm.status == AlarmState.UNACK_ACTIVE


def test_refused_acknowledge_writes_no_entry(olga):
    alarm = AlarmEvent.objects.create(
        timestamp=timezone.now(),
        tag_name="l1.temp",
        status=AlarmState.ACK_ACTIVE,
        message="x",
    )

    response = api(olga).post(f"/api/alarms/{alarm.pk}/acknowledge", {}, format="json")

    assert response.status_code == 409
    assert ShiftLogEntry.objects.count() == 0


def test_work_order_created_is_written_by_the_work_order_create(make_user):
    planner = make_user(Role.PLANNER)
    make_runbook()

    work_order = make_work_order(planner, product_code="PACK-48V", lot_no="LOT-7")

    entry = ShiftLogEntry.objects.get()
    assert (entry.entry_type, entry.operator, entry.automatic) == (
        T.WORK_ORDER_CREATED,
        planner,
        True,
    )
    assert (entry.target_type, entry.target_id) == ("workorder", str(work_order.pk))
    assert entry.metadata["kind"] == "production"
    assert entry.metadata["lot_no"] == "LOT-7"


def test_work_order_created_rolls_back_with_the_work_order(make_user):
    planner = make_user(Role.PLANNER)
    make_runbook()
    with pytest.raises(Boom):
        run_then_roll_back(lambda: make_work_order(planner))

    assert WorkOrder.objects.count() == ShiftLogEntry.objects.count() == 0


MAINTENANCE = {
    "asset_id": "la-weld-01",
    "asset_name": "Laser welder 1",
    "description": "Chiller temperature high",
    "priority": "high",
}


def test_maintenance_work_order_created_is_written_too(sam):
    work_order = maintenance.work_order_create(data=dict(MAINTENANCE), actor=sam)

    entry = ShiftLogEntry.objects.get()
    assert entry.entry_type == T.WORK_ORDER_CREATED
    assert (entry.target_type, entry.target_id) == (
        "maintenanceworkorder",
        str(work_order.pk),
    )
    assert entry.metadata["kind"] == "maintenance"
    assert entry.metadata["asset_id"] == "la-weld-01"


def test_maintenance_work_order_created_rolls_back_with_it(sam):
    with pytest.raises(Boom):
        run_then_roll_back(
            lambda: maintenance.work_order_create(data=dict(MAINTENANCE), actor=sam)
        )

    assert MaintenanceWorkOrder.objects.count() == ShiftLogEntry.objects.count() == 0


LIMS_FILE = (
    "serial,test_name,result,tested_at,capacity_ah\n"
    "SL-A,EOL capacity,PASS,2026-03-01T10:00:00Z,101.2\n"
    "NO-SUCH,EOL capacity,pass,2026-03-01T10:00:00Z,100\n"
)


def lims_upload(user):
    file = SimpleUploadedFile("lab.csv", LIMS_FILE.encode(), content_type="text/csv")
    return api(user).post("/api/lims/import", {"file": file}, format="multipart")


def test_readings_approved_is_written_by_a_lims_import(sam):
    register("pack", serial="SL-A", manufactured_at="2026-01-05T08:00:00Z")

    response = lims_upload(sam)

    assert response.status_code == 200, response.json()
    entry = ShiftLogEntry.objects.get()
    assert (entry.entry_type, entry.operator, entry.automatic) == (
        T.READINGS_APPROVED,
        sam,
        True,
    )
    assert entry.metadata == {
        "origin": "file 'lab.csv'",
        "applied": 1,
        "skipped": 0,
        "rejected": 1,
    }
    # A second import applies nothing new: no second entry.
    assert lims_upload(sam).status_code == 200
    assert ShiftLogEntry.objects.count() == 1


def test_readings_approved_rolls_back_with_the_import(sam):
    register("pack", serial="SL-A", manufactured_at="2026-01-05T08:00:00Z")
    file = SimpleUploadedFile("lab.csv", LIMS_FILE.encode())
    with pytest.raises(Boom):
        run_then_roll_back(
            lambda: quality.lims_import_csv(file=file, actor=sam, name="lab.csv")
        )

    assert LimsResult.objects.count() == ShiftLogEntry.objects.count() == 0


def test_dry_run_approves_nothing(sam):
    register("pack", serial="SL-A", manufactured_at="2026-01-05T08:00:00Z")
    file = SimpleUploadedFile("lab.csv", LIMS_FILE.encode())

    quality.lims_import_csv(file=file, actor=sam, name="lab.csv", dry_run=True)

    assert ShiftLogEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_auto_entry_outside_a_transaction_is_refused(olga):
    with pytest.raises(RuntimeError, match="inside its service's transaction"):
        shiftlog.auto_entry(entry_type=T.ALARM_ACKNOWLEDGED, actor=olga, body="x")
    with pytest.raises(ValueError, match="not an auto-entry"), transaction.atomic():
        shiftlog.auto_entry(entry_type=T.NOTE, actor=olga, body="x")
    assert ShiftLogEntry.objects.count() == 0


# --- the source of GET /api/logs ----------------------------------------------------


def at(minutes: int) -> datetime:
    return datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes)


@pytest.fixture
def timeline(olga, sam):
    """Five entries a minute apart; two more sharing one timestamp (ids 9-like
    and 10-like order as strings, not numbers)."""
    entries = [
        write(olga, body="first note", now=at(0)),
        write(olga, entry_type="incident", body="Smoke at st-02", now=at(1)),
        write(sam, entry_type="safety", body="Guard missing", now=at(2)),
        write(olga, entry_type="quality", body="Weld porosity", now=at(3)),
        write(sam, body="last note", now=at(4)),
    ]
    tied = [write(olga, body=f"tied {i}", now=at(5)) for i in range(12)]
    return entries, tied


def source_ids(**query) -> list[str]:
    query.setdefault("limit", 100)
    return [event.id for event in selectors.shift_log_source(LogQuery(**query))]


def expected_order(entries) -> list[str]:
    keyed = [(e.created_at, f"shift_log:{e.pk}") for e in entries]
    return [key[1] for key in sorted(keyed, reverse=True)]


def test_source_answers_newest_first_as_the_merge_orders(timeline):
    entries, tied = timeline

    assert source_ids() == expected_order(entries + tied)


def test_source_pages_through_everything_with_the_cursor(timeline):
    entries, tied = timeline
    seen: list[str] = []
    before = None
    for _ in range(PAGES_AT_MOST):  # a cursor that never ends fails, not loops
        page = selectors.shift_log_source(LogQuery(limit=5, before=before))
        if not page:
            break
        assert len(page) <= 5
        seen += [event.id for event in page]
        before = page[-1].cursor
    assert seen == expected_order(entries + tied)


def test_source_filters(timeline):
    entries, _ = timeline
    _, incident, safety, quality_entry, last = entries

    assert source_ids(severities=frozenset({logevents.WARNING})) == [
        f"shift_log:{safety.pk}",
        f"shift_log:{incident.pk}",
    ]
    assert source_ids(severities=frozenset({logevents.CRITICAL})) == []
    assert source_ids(start=at(1), end=at(3)) == [
        f"shift_log:{safety.pk}",
        f"shift_log:{incident.pk}",
    ]
    assert source_ids(search="POROSITY") == [f"shift_log:{quality_entry.pk}"]
    assert source_ids(categories=frozenset({logevents.AUDIT})) == []
    assert source_ids(limit=2, before=(at(4), f"shift_log:{last.pk}")) == [
        f"shift_log:{quality_entry.pk}",
        f"shift_log:{safety.pk}",
    ]


def test_source_event_shape(olga, timeline):
    entries, _ = timeline
    incident = entries[1]

    [event] = selectors.shift_log_source(LogQuery(limit=1, search="smoke"))

    assert event.as_dict() == {
        "id": f"shift_log:{incident.pk}",
        "timestamp": at(1),
        "category": "shift_log",
        "severity": "warning",
        "actor": "Olga K",
        "action": "shift_log.incident",
        "target": None,
        "message": "Smoke at st-02",
        "source": "system",
    }


def test_source_costs_one_query_a_page(timeline, django_assert_num_queries):
    with django_assert_num_queries(1):
        selectors.shift_log_source(LogQuery(limit=100))
    with django_assert_num_queries(1):
        page = selectors.shift_log_source(LogQuery(limit=3))
    with django_assert_num_queries(1):
        selectors.shift_log_source(LogQuery(limit=3, before=page[-1].cursor))


def test_write_costs_a_fixed_number_of_queries(olga, django_assert_num_queries):
    client = api(olga)
    client.post(WRITE, body_for(olga), format="json")  # the chain has a head
    # the token's user; savepoint; the default line (its shift); insert; the
    # audit record: savepoint, lock (PostgreSQL), head, insert, release; release
    with django_assert_num_queries(9 + CHAIN_LOCK):
        response = client.post(WRITE, body_for(olga), format="json")
    assert response.status_code == 201


def test_acknowledge_costs_a_fixed_number_of_queries(
    sam, tina, django_assert_num_queries
):
    handover = previous_shift_handover(sam)
    client = api(tina)
    # the token's user; savepoint; the handover, locked; its acknowledgement
    # (none yet); the default line (its shift); savepoint, insert, release
    # (the race's savepoint); the audit record (4 + lock); release
    with django_assert_num_queries(13 + CHAIN_LOCK):
        response = client.post(
            f"/api/logs/shift/{handover.pk}/acknowledge", {}, format="json"
        )
    assert response.status_code == 201


def test_correction_stays_on_the_corrected_entry_s_line(olga):
    make_line(slug="line-b")
    wrong = write(olga, line="line-b", body="Chiller fault.")

    correction = write(olga, entry_type="correction", corrects=wrong.pk, body="Fan.")

    assert (correction.line, correction.corrects) == ("line-b", wrong)
