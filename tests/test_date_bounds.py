"""Times in and out of the API, over real HTTP (bpmos/fields.py, bpmos/filters.py).

- Out: ``strftime("%Y")`` printed year 28 as ``28-05-09T10:00:00Z`` (not ISO
  8601); a time now always has a four-digit year, and a normal one prints as
  before.
- In: every time a client sends lies within 2000-01-01 and 2100-01-01 UTC. A
  work order planned in year 28 was stored; an audit window or an ingest row at
  9999-12-31T23:59:59-05:00 or 0001-01-01T00:00:00+05:00 overflowed converting
  to UTC (500); "0000-01-01" in a passport body raised ValueError (500). Each is
  now a 400 naming the field, and nothing is written.
- Passport registration took numbers as codes (``str(123)``): now refused.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.urls import resolve
from django_filters import filters as django_filters
from rest_framework import serializers

from bpmos import fields, filters
from bpmos.errors import InvalidInput
from elog.models import AuditRecord
from inventory import services as inventory_services
from inventory.models import Item
from lines.models import MachineReading
from passports import bpan
from passports.models import Passport, TelemetryReading
from runbooks import services as runbook_services
from tests.conftest import bearer
from tests.factories_inventory import make_categories, make_warehouse, receive
from tests.factories_inventory import row_counts as inventory_counts
from tests.factories_lines import machine, make_line
from tests.factories_lines import row_counts as reading_counts
from tests.factories_passports_api import counts as passport_counts
from tests.factories_passports_api import warehoused_pack
from tests.factories_production import make_runbook
from tests.factories_production import row_counts as production_counts
from tests.support import api_routes, assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)

TOO_EARLY = "Cannot be before 2000-01-01."
TOO_LATE = "Must be before 2100-01-01."
# Python's datetime overflowed converting these to UTC.
NEAR_YEAR_1 = "0001-01-01T00:00:00+05:00"
NEAR_YEAR_9999 = "9999-12-31T23:59:59-05:00"
NO_SUCH_YEAR = "0000-01-01T00:00:00Z"  # well formed, but there is no year 0
DRF_WRONG_FORMAT = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)
WORK_ORDER = {
    "product_code": "PACK-48V",
    "lot_no": "LOT-7",
    "qty": 20,
    "planned_start": "2026-03-02T08:00:00Z",
    "planned_end": "2026-03-02T11:00:00Z",
}
PACK = {
    "kind": "Pack",
    "serial": "PK-0100",
    "model": "PK-48V-100",
    "manufacturer": "BPM Energy",
    "site": "Pune Plant 1",
    "manufacturedAt": "2026-03-02T08:00:00Z",
    "chemistry": "LFP",
    "ratedCapacityAh": 100,
    "nominalVoltageV": "48.0",
    "energyKwh": 5.12,
    "manufacturerCode": "BPM",
    "plantCode": "P",
}


# --- out: four-digit years ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 1, 15, 10, 30, tzinfo=UTC), "2026-01-15T10:30:00Z"),
        # Whole seconds, truncated as strftime did.
        (datetime(2026, 1, 15, 10, 30, 0, 999999, tzinfo=UTC), "2026-01-15T10:30:00Z"),
        (
            datetime(
                2026, 1, 15, 16, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            "2026-01-15T10:30:00Z",
        ),
        (datetime(2026, 1, 15, 10, 30), "2026-01-15T10:30:00Z"),  # noqa: DTZ001 naive is UTC
        (datetime(28, 5, 9, 10, 0, 7, tzinfo=UTC), "0028-05-09T10:00:07Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "9999-12-31T23:59:59Z"),
        (None, None),
    ],
)
def test_the_contract_time_format_always_has_four_digit_years(value, text):
    assert fields.utc_text(value) == text
    assert fields.utc_datetime().to_representation(value) == text


def test_a_year_28_time_in_old_data_is_printed_as_iso_8601(http, make_user):
    # Stored before the bounds (or by hand): the API still prints ISO 8601.
    boss = make_user("supervisor", username="sam")
    make_categories()
    make_warehouse()
    receive(boss, "CELL-0001")
    Item.objects.filter(code="CELL-0001").update(
        received_at=datetime(28, 5, 9, 10, 0, tzinfo=UTC)
    )
    response = http.get("/api/inventory/items/CELL-0001", headers=bearer(boss))
    assert response.status_code == 200, response.text
    assert response.json()["receivedAt"] == "0028-05-09T10:00:00Z"


# --- in: request bodies ---------------------------------------------------------------


@pytest.fixture
def planner(make_user):
    make_runbook()
    return make_user("planner", username="pat")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("planned_start", "0028-05-09T10:00:00Z", TOO_EARLY),
        ("planned_start", "1999-12-31T23:59:59Z", TOO_EARLY),
        ("planned_start", NEAR_YEAR_1, TOO_EARLY),
        ("planned_end", "2100-01-01T00:00:00Z", TOO_LATE),
        ("planned_end", "9999-12-31T23:59:59Z", TOO_LATE),
        ("planned_end", NEAR_YEAR_9999, TOO_LATE),
        ("planned_end", NO_SUCH_YEAR, DRF_WRONG_FORMAT),
    ],
)
def test_a_work_order_planned_outside_the_bounds_is_400(
    http, planner, field, value, message
):
    before = production_counts()
    response = http.post(
        "/api/workorders", json={**WORK_ORDER, field: value}, headers=bearer(planner)
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {field: [message]}
    assert body["error"] == f"Invalid input. {field}: {message}"
    assert production_counts() == before


def test_a_work_order_at_the_bounds_is_created(http, planner):
    response = http.post(
        "/api/workorders",
        json={
            **WORK_ORDER,
            "planned_start": "2000-01-01T00:00:00Z",
            "planned_end": "2099-12-31T23:59:59Z",
        },
        headers=bearer(planner),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["planned_start"], body["planned_end"]) == (
        "2000-01-01T00:00:00Z",
        "2099-12-31T23:59:59Z",
    )


def test_the_work_order_service_itself_refuses_a_window_before_2000(planner):
    # The rule is in the service too, for callers other than the API.
    before = production_counts()
    with pytest.raises(InvalidInput) as refused:
        runbook_services.work_order_create(
            product_code="PACK-48V",
            lot_no="LOT-7",
            qty=1,
            planned_start=datetime(28, 5, 9, tzinfo=UTC),
            planned_end=datetime(2026, 3, 2, tzinfo=UTC),
            actor=planner,
        )
    assert refused.value.details == {"planned_start": [TOO_EARLY]}
    assert production_counts() == before


def test_an_inventory_receipt_dated_year_28_is_refused(make_user):
    # Receipts come from the admin (no API body); the service keeps the bounds.
    boss = make_user("supervisor", username="sam")
    make_categories()
    make_warehouse()
    before = inventory_counts()
    with pytest.raises(InvalidInput) as refused:
        inventory_services.item_receive(
            code="CELL-0001",
            sku="CELL-LFP-21700",
            category_slug="cells",
            location_code="A-R2",
            received_at=datetime(28, 5, 9, tzinfo=UTC),
            actor=boss,
        )
    assert refused.value.details == {"receivedAt": [TOO_EARLY]}
    assert inventory_counts() == before


@pytest.fixture
def pack(make_user):
    boss = make_user("supervisor", username="sam")
    return boss, warehoused_pack(boss, "PK-0001")


@pytest.mark.parametrize("value", [NO_SUCH_YEAR, "2026-02-30T10:00:00Z"])
def test_a_passport_event_on_no_such_date_is_400(http, pack, value):
    boss, passport = pack
    before = passport_counts(passport)
    response = http.post(
        "/api/passports/PK-0001/events",
        json={"kind": "held", "data": {"reason": "x"}, "occurredAt": value},
        headers=bearer(boss),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {
        "occurredAt": ["An ISO 8601 date-time, e.g. 2026-11-23T10:00:00Z."]
    }
    assert passport_counts(passport) == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (NO_SUCH_YEAR, "An ISO 8601 date-time, e.g. 2026-11-23T10:00:00Z."),
        (NEAR_YEAR_1, TOO_EARLY),
        (NEAR_YEAR_9999, "Cannot be in the future."),
    ],
)
def test_a_passport_manufactured_on_an_impossible_date_is_400(
    http, make_user, value, message
):
    boss = make_user("supervisor", username="sam")
    before = AuditRecord.objects.count()
    response = http.post(
        "/api/passports", json={**PACK, "manufacturedAt": value}, headers=bearer(boss)
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"manufacturedAt": [message]}
    assert (Passport.objects.count(), AuditRecord.objects.count()) == (0, before)


# --- in: ingest rows ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0028-05-09T10:00:00Z", TOO_EARLY),
        (NEAR_YEAR_1, TOO_EARLY),
        (NEAR_YEAR_9999, "Is in the future."),
    ],
)
def test_a_reading_outside_the_bounds_is_400_and_nothing_is_stored(
    http, make_user, value, message
):
    operator = make_user("operator", username="olga")
    target = machine(make_line(), "st-01")
    before = reading_counts()
    response = http.post(
        f"/api/machines/{target.pk}/readings",
        json=[
            {"tag": "good_count", "ts": "2026-03-02T08:00:00Z", "value": 1},
            {"tag": "good_count", "ts": value, "value": 1},
        ],
        headers=bearer(operator),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"rows": {"1": {"ts": [message]}}}
    assert body["error"] == f"Reading 1: ts: {message} Nothing was stored."
    assert reading_counts() == before
    assert MachineReading.objects.count() == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0028-05-09T10:00:00Z", TOO_EARLY),
        (NEAR_YEAR_1, TOO_EARLY),
        (NEAR_YEAR_9999, "Is in the future."),
    ],
)
def test_telemetry_outside_the_bounds_is_400_and_nothing_is_stored(
    http, pack, value, message
):
    boss, passport = pack
    before = passport_counts(passport)
    response = http.post(
        "/api/passports/PK-0001/telemetry",
        json=[{"ts": value, "sohPercent": 90}],
        headers=bearer(boss),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"rows": {"0": {"ts": [message]}}}
    assert TelemetryReading.objects.count() == 0
    assert passport_counts(passport) == before


# --- in: query windows ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("from", "0028-05-09T10:00:00Z", TOO_EARLY),
        ("from", NEAR_YEAR_1, TOO_EARLY),
        ("to", NEAR_YEAR_1, TOO_EARLY),
        ("to", NEAR_YEAR_9999, TOO_LATE),
        ("to", "2100-01-01T00:00:00Z", TOO_LATE),
        ("from", NO_SUCH_YEAR, "Enter a valid date/time."),
    ],
)
def test_an_audit_window_outside_the_bounds_is_400(
    http, make_user, param, value, message
):
    auditor = make_user("auditor", username="aud")
    before = AuditRecord.objects.count()
    response = http.get("/api/audit", params={param: value}, headers=bearer(auditor))
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {param: [message]}
    assert body["error"] == f"Invalid input. {param}: {message}"
    assert AuditRecord.objects.count() == before


def test_an_audit_window_at_the_bounds_lists_everything(http, make_user):
    auditor = make_user("auditor", username="aud")
    make_user("admin", username="ada")  # audited
    everything = AuditRecord.objects.count()
    response = http.get(
        "/api/audit",
        params={"from": "2000-01-01T00:00:00Z", "to": "2099-12-31T23:59:59+05:30"},
        headers=bearer(auditor),
    )
    assert response.status_code == 200, response.text
    assert response.json()["count"] == everything


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "0028-05-09T10:00:00Z"}, "from", TOO_EARLY),
        ({"from": NEAR_YEAR_1}, "from", TOO_EARLY),
        ({"from": "2026-03-02T08:00:00Z", "to": NEAR_YEAR_9999}, "to", TOO_LATE),
    ],
)
def test_an_oee_window_outside_the_bounds_is_400(
    http, make_user, params, field, message
):
    make_line()
    response = http.get(
        "/api/lines/line-a/oee", params=params, headers=bearer(make_user("operator"))
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {field: [message]}
    assert body["error"] == f"{field}: {message}"


# --- every time input uses the bound --------------------------------------------------


def _api_serializers():
    apps = (
        "bpmos",
        "elog",
        "exceptions",
        "inventory",
        "lines",
        "passports",
        "runbooks",
    )
    for app in apps:
        for module in pkgutil.walk_packages(
            importlib.import_module(app).__path__, f"{app}."
        ):
            if ".api" not in module.name or "migrations" in module.name:
                continue
            loaded = importlib.import_module(module.name)
            for _, cls in inspect.getmembers(loaded, inspect.isclass):
                if issubclass(cls, serializers.Serializer) and cls.__module__ == (
                    loaded.__name__
                ):
                    yield cls


def test_every_time_a_serializer_takes_is_bounded():
    # A writable DRF DateTimeField takes year 28 and overflows near 9999: an
    # input time must be bpmos.fields.DateTimeField.
    checked = 0
    for cls in _api_serializers():
        for name, field in cls().fields.items():
            if isinstance(field, serializers.DateTimeField) and not field.read_only:
                assert isinstance(field, fields.DateTimeField), (cls, name)
                checked += 1
    assert checked >= 6


def test_every_time_filter_of_the_api_is_bounded():
    checked = 0
    for route in api_routes():
        view = resolve(route.path).func
        view_class = getattr(view, "view_class", None) or view.cls
        filterset = getattr(view_class, "filterset_class", None)
        if filterset is None:
            continue
        for name, declared in filterset.get_filters().items():
            if isinstance(
                declared, django_filters.DateTimeFilter | django_filters.DateFilter
            ):
                assert isinstance(declared, filters.DateTimeFilter), (route, name)
                checked += 1
    assert checked >= 2


# --- text, not numbers, in passport registration --------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("manufacturerCode", 123),
        ("plantCode", 7),
        ("bpanSerial", 42),
        ("bpan", 123456789012345678901),
        ("manufacturerCode", ["BPM"]),
    ],
)
def test_a_number_as_a_registration_code_is_400(http, make_user, field, value):
    boss = make_user("supervisor", username="sam")
    before = AuditRecord.objects.count()
    response = http.post(
        "/api/passports", json={**PACK, field: value}, headers=bearer(boss)
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {field: ["Must be text."]}
    assert (Passport.objects.count(), AuditRecord.objects.count()) == (0, before)


def test_text_codes_still_issue_a_bpan(http, make_user):
    boss = make_user("supervisor", username="sam")
    response = http.post(
        "/api/passports", json={**PACK, "bpanSerial": "42"}, headers=bearer(boss)
    )
    assert response.status_code == 201, response.text
    parts = bpan.parse(Passport.objects.get().bpan).as_dict()
    assert (parts["manufacturerCode"], parts["plantCode"], parts["serial"]) == (
        "BPM",
        "P",
        "00042",
    )
