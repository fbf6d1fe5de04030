"""Input that used to answer 500, over real HTTP: each is now a 400 (404 for an
unknown id) in the error envelope, and changes nothing.

- JSON nested ~1,200 levels deep (2.4 KB): RecursionError in the parser.
- A lone UTF-16 surrogate ("\\ud800"): the renderer could not encode the error
  that echoed it (and the database cannot store it).
- Integers past 64 bits in id filters: OverflowError in the database driver.
- Numbers where text is meant: stored as text ("-1" as a hold reason).
- Passport events dated before the passport existed or before 2000.
"""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.urls import resolve
from django_filters import NumberFilter
from websockets.sync.client import connect

from bpmos import filters, parsers
from bpmos.accounts.models import User
from bpmos.errors import InvalidInput
from bpmos.events.models import OutboxEvent
from bpmos.renderers import JSONRenderer
from elog.models import AuditRecord
from exceptions.models import PlantException
from inventory.models import Item
from passports import ledger
from passports.models import Passport
from runbooks.models import WorkOrder, WorkOrderStage
from tests.conftest import bearer
from tests.factories_inventory import (
    item_state,
    make_categories,
    make_warehouse,
    receive,
)
from tests.factories_inventory import row_counts as inventory_counts
from tests.factories_lines import machine, make_line
from tests.factories_lines import row_counts as reading_counts
from tests.factories_passports_api import counts as passport_counts
from tests.factories_passports_api import warehoused_pack
from tests.factories_production import make_runbook, make_work_order, stages_of
from tests.support import api_routes, assert_envelope, daphne_server

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 1200 + "]" * 1200  # 2.4 KB
HUGE = "99999999999999999999999"  # > 2**64
JSON = {"Content-Type": "application/json"}
TOO_DEEP = "JSON parse error - The body is nested deeper than 32 levels."
NOT_TEXT = (
    "JSON parse error - The body holds a lone UTF-16 surrogate "
    "(\\ud800-\\udfff), which is not text."
)


def counts() -> tuple[int, int, int, int]:
    return (
        User.objects.count(),
        AuditRecord.objects.count(),
        OutboxEvent.objects.count(),
        PlantException.objects.count(),
    )


@pytest.fixture
def admin(make_user):
    return make_user("admin", username="ada")


@pytest.fixture
def floor(make_user):
    make_runbook()
    planner = make_user("planner", username="pat")
    work_order = make_work_order(planner)
    return SimpleNamespace(
        planner=planner,
        operator=make_user("operator", username="olga"),
        supervisor=make_user("supervisor", username="sam"),
        work_order=work_order,
        stage=stages_of(work_order)[0],
    )


# --- deeply nested JSON ------------------------------------------------------------


def test_deep_json_on_anonymous_login_is_400_and_changes_nothing(http, db):
    before = counts()
    response = http.post("/api/auth/login", content=DEEP, headers=JSON)
    body = assert_envelope(response, 400, "parse_error")
    assert body["error"] == TOO_DEEP
    assert counts() == before


def test_a_login_body_that_is_not_an_object_is_400(http, db):
    # The failed-login throttle read the username with .get() on a list: 500.
    response = http.post("/api/auth/login", content="[1]", headers=JSON)
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }


def test_nesting_is_allowed_up_to_32_levels(http, admin):
    def nested(levels: int) -> str:  # the object itself is the first level
        inner = "[" * (levels - 1) + "]" * (levels - 1)
        return '{"username": ' + inner + ', "password": "x", "role": "operator"}'

    at_limit = http.post(
        "/api/auth/register", content=nested(32), headers={**bearer(admin), **JSON}
    )
    body = assert_envelope(at_limit, 400, "validation_error")
    assert body["details"]["username"] == ["Not a valid string."]
    past_limit = http.post(
        "/api/auth/register", content=nested(33), headers={**bearer(admin), **JSON}
    )
    assert assert_envelope(past_limit, 400, "parse_error")["error"] == TOO_DEEP


def test_deep_json_readings_are_400_and_store_nothing(http, admin):
    # The readings endpoint parses its own body (orjson, then json.loads).
    target = machine(make_line(), "st-01")
    before = reading_counts()
    response = http.post(
        f"/api/machines/{target.pk}/readings",
        content=DEEP,
        headers={**bearer(admin), **JSON},
    )
    body = assert_envelope(response, 400, "parse_error")
    assert body["error"] == "The body is not valid JSON."
    assert reading_counts() == before


def test_every_api_view_parses_json_through_the_bounded_parser():
    for route in api_routes():
        view = resolve(route.path).func
        view_class = getattr(view, "view_class", None) or view.cls
        json_parsers = [
            parser
            for parser in view_class().get_parsers()
            if "json" in parser.media_type
        ]
        # Every view takes JSON (an upload view takes multipart too, read by
        # Django's own bounded upload handling); all of its JSON goes through ours.
        assert json_parsers, route.view_name
        for parser in json_parsers:
            assert isinstance(parser, parsers.JSONParser), route.view_name


def test_deep_json_is_never_a_500_on_any_write_endpoint(http, admin):
    # Routes are discovered with unknown ids (987654), so an endpoint that looks
    # its object up before reading the body answers 404; the stream ticket reads
    # no body at all.
    headers = {**bearer(admin), **JSON}
    before = counts()
    answers = {}
    for route in api_routes():
        for method in set(route.methods) & {"POST", "PUT", "PATCH"}:
            response = http.request(method, route.path, content=DEEP, headers=headers)
            if route.name == "dispatch-stream-ticket":
                assert response.status_code == 200, response.text
                continue
            body = response.json()
            answers[(method, route.path)] = (response.status_code, body["code"])
            assert body["success"] is False
    assert set(answers.values()) == {(400, "parse_error"), (404, "not_found")}
    assert (400, "parse_error") in answers.values()
    assert counts()[0] == before[0]


# --- lone surrogates ---------------------------------------------------------------


def test_surrogate_in_register_role_is_400_and_creates_nobody(http, admin):
    before = counts()
    response = http.post(
        "/api/auth/register",
        content='{"username": "newbie", "password": "Plant-Floor-2026!", '
        '"role": "\\ud800"}',
        headers={**bearer(admin), **JSON},
    )
    assert assert_envelope(response, 400, "parse_error")["error"] == NOT_TEXT
    assert counts() == before


def test_surrogate_in_user_role_is_400_and_changes_no_role(http, admin, make_user):
    operator = make_user("operator", username="olga")
    before = counts()
    response = http.patch(
        f"/api/auth/users/{operator.pk}/role",
        content='{"role": "\\ud800"}',
        headers={**bearer(admin), **JSON},
    )
    assert assert_envelope(response, 400, "parse_error")["error"] == NOT_TEXT
    operator.refresh_from_db()
    assert operator.role == "operator"
    assert counts() == before


def test_surrogate_in_stage_issue_type_is_400_and_raises_nothing(http, floor):
    before = counts()
    response = http.post(
        f"/api/stages/{floor.stage.pk}/issue",
        content='{"type": "\\udfff", "description": "Jammed"}',
        headers={**bearer(floor.supervisor), **JSON},
    )
    assert assert_envelope(response, 400, "parse_error")["error"] == NOT_TEXT
    assert counts() == before


def test_a_surrogate_pair_is_text_and_accepted(http, floor):
    # "\ud83d\udd0b" is one character (a battery), not a lone surrogate.
    response = http.post(
        f"/api/stages/{floor.stage.pk}/issue",
        content='{"type": "equipment_fault", "description": "Cell \\ud83d\\udd0b hot"}',
        headers={**bearer(floor.supervisor), **JSON},
    )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "Cell \N{BATTERY} hot"


def test_the_renderer_cannot_fail_on_an_echoed_surrogate():
    rendered = JSONRenderer().render({"error": '"\ud800" is not a valid choice.'})
    assert rendered == '{"error":"\\"\ufffd\\" is not a valid choice."}'.encode()


# --- integers past 64 bits ---------------------------------------------------------


ID_FILTERS = [
    ("/api/inventory/reservations", "workOrderId"),
    ("/api/issues", "work_order"),
    ("/api/issues", "work_order_stage"),
    ("/api/issues", "work_order_stage_id"),
    ("/api/stages", "work_order"),
    ("/api/audit", "actor"),
]


@pytest.mark.parametrize(("path", "param"), ID_FILTERS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (HUGE, "Ensure this value is less than or equal to 9223372036854775807."),
        (
            "-" + HUGE,
            "Ensure this value is greater than or equal to -9223372036854775808.",
        ),
        ("1e400", "Enter a whole number."),
    ],
)
def test_id_filter_past_64_bits_is_400(http, admin, path, param, value, message):
    before = counts()
    response = http.get(path, params={param: value}, headers=bearer(admin))
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {param: [message]}
    assert counts() == before


@pytest.mark.parametrize(("path", "param"), ID_FILTERS)
def test_id_filter_at_the_64_bit_limit_is_an_empty_page(http, admin, path, param):
    response = http.get(path, params={param: str(2**63 - 1)}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 0


def test_id_past_64_bits_in_any_path_is_404(http, admin):
    # A read answers 404; a write answers 404, or 400 when it checks its (here
    # empty) body before looking the object up; never a 500.
    headers = {**bearer(admin), **JSON}
    answers = {}
    for route in api_routes():
        if "987654" not in route.path:
            continue
        path = route.path.replace("987654", HUGE)
        for method in route.methods:
            response = http.request(method, path, content="{}", headers=headers)
            answers[(method, path)] = (response.status_code, response.json()["code"])
    reads = {answer for (method, _), answer in answers.items() if method == "GET"}
    writes = {answer for (method, _), answer in answers.items() if method != "GET"}
    assert reads == {(404, "not_found")}
    assert writes == {(404, "not_found"), (400, "validation_error")}
    assert len(answers) > 40


# --- numbers where text is meant ---------------------------------------------------


def test_a_number_as_hold_reason_is_400_and_holds_nothing(http, make_user):
    boss = make_user("supervisor", username="sam")
    make_categories(), make_warehouse()
    receive(boss, "CELL-2026-1001")
    before = (inventory_counts(), item_state("CELL-2026-1001"))
    response = http.post(
        "/api/inventory/items/CELL-2026-1001/hold",
        json={"reason": -1},
        headers=bearer(boss),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"reason": ["Not a valid string."]}
    assert (inventory_counts(), item_state("CELL-2026-1001")) == before
    assert Item.objects.get(code="CELL-2026-1001").status == "good"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/stages/{stage}/hold", {"reason": 7}, "reason"),
        ("/api/workorders/{work_order}/cancel", {"reason": 1.5}, "reason"),
        (
            "/api/stages/{stage}/issue",
            {"type": "equipment_fault", "description": 42},
            "description",
        ),
    ],
)
def test_a_number_where_text_is_meant_is_400(http, floor, path, body, field):
    floor.stage.status = "in_progress"
    floor.stage.save(update_fields=["status"])
    before = (
        counts(),
        list(WorkOrder.objects.values_list("status", flat=True)),
        list(WorkOrderStage.objects.values_list("status", flat=True)),
    )
    response = http.post(
        path.format(stage=floor.stage.pk, work_order=floor.work_order.pk),
        json=body,
        headers=bearer(floor.supervisor),
    )
    assert assert_envelope(response, 400, "validation_error")["details"] == {
        field: ["Not a valid string."]
    }
    assert (
        counts(),
        list(WorkOrder.objects.values_list("status", flat=True)),
        list(WorkOrderStage.objects.values_list("status", flat=True)),
    ) == before


def test_a_number_as_login_username_is_400(http, db):
    response = http.post("/api/auth/login", json={"username": 12, "password": 3})
    assert assert_envelope(response, 400, "validation_error")["details"] == {
        "username": ["Not a valid string."],
        "password": ["Not a valid string."],
    }


# --- passport event dates ----------------------------------------------------------


@pytest.fixture
def pack(make_user):
    boss = make_user("supervisor", username="sam")
    pack = warehoused_pack(boss, "PK-0001")
    return SimpleNamespace(boss=boss, passport=pack)


@pytest.mark.parametrize(
    ("occurred_at", "message"),
    [
        ("0028-05-09T10:00:00Z", "Cannot be before 2000-01-01."),
        ("1999-12-31T23:59:59Z", "Cannot be before 2000-01-01."),
        ("2099-01-01T00:00:00Z", "Cannot be in the future."),
    ],
)
def test_event_dated_outside_the_sane_window_is_400(http, pack, occurred_at, message):
    before = passport_counts(pack.passport)
    response = http.post(
        "/api/passports/PK-0001/events",
        json={"kind": "held", "data": {"reason": "x"}, "occurredAt": occurred_at},
        headers=bearer(pack.boss),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"occurredAt": [message]}
    assert passport_counts(pack.passport) == before


def test_event_dated_before_manufacture_is_400(http, pack):
    made = pack.passport.manufactured_at
    before = passport_counts(pack.passport)
    response = http.post(
        "/api/passports/PK-0001/events",
        json={
            "kind": "held",
            "data": {"reason": "x"},
            "occurredAt": (made - timedelta(days=1)).isoformat(),
        },
        headers=bearer(pack.boss),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {
        "occurredAt": [
            "Cannot be before the battery was manufactured "
            f"({made.astimezone(UTC).isoformat()})."
        ]
    }
    assert passport_counts(pack.passport) == before


def test_the_ledger_itself_refuses_an_event_before_2000(pack):
    # The rule lives in the ledger, so every writer (services, dispatch desk,
    # provisioning, demo, admin) obeys it, not only the API.
    before = passport_counts(pack.passport)
    with pytest.raises(InvalidInput) as refused:
        ledger.append(
            passport=pack.passport.pk,
            kind="held",
            data={"reason": "x"},
            actor=pack.boss,
            occurred_at=datetime(28, 5, 9, tzinfo=UTC),
        )
    assert refused.value.details == {"occurredAt": ["Cannot be before 2000-01-01."]}
    assert passport_counts(pack.passport) == before


def test_a_passport_manufactured_in_year_28_is_refused(http, make_user):
    boss = make_user("supervisor", username="sam")
    response = http.post(
        "/api/passports",
        json={
            "kind": "Cell",
            "serial": "CL-0100",
            "model": "LFP-21700",
            "manufacturer": "BPM Energy",
            "site": "Pune Plant 1",
            "manufacturedAt": "0028-05-09T08:00:00Z",
            "chemistry": "LFP",
            "ratedCapacityAh": 3,
            "nominalVoltageV": 3.2,
            "energyKwh": 0.01,
        },
        headers=bearer(boss),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == ["manufacturedAt"]
    assert Passport.objects.count() == 0


def test_deep_json_on_the_websocket_is_a_parse_error(tmp_path, make_user):
    # The WebSocket consumer parses its messages with the same bounded loader.
    user = make_user("planner")
    with (
        daphne_server(tmp_path / "daphne.log") as port,
        connect(
            f"ws://127.0.0.1:{port}/ws/events/",
            additional_headers=bearer(user),
            proxy=None,
            open_timeout=5,
        ) as ws,
    ):
        assert json.loads(ws.recv(timeout=5))["type"] == "authenticated"
        for message in (DEEP, '{"action": "\\ud800"}'):
            ws.send(message)
            reply = json.loads(ws.recv(timeout=5))
            assert (reply["type"], reply["code"]) == ("error", "parse_error")
        ws.send(json.dumps({"action": "subscribe", "topics": ["lines"]}))
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"


def test_every_number_filter_of_the_api_is_bounded():
    # django-filter's NumberFilter takes decimals up to 1e50: an id filter must
    # be bpmos.filters.IntegerFilter (or come from bpmos.filters.FilterSet).
    checked = 0
    for route in api_routes():
        view = resolve(route.path).func
        view_class = getattr(view, "view_class", None) or view.cls
        filterset = getattr(view_class, "filterset_class", None)
        if filterset is None:
            continue
        assert issubclass(filterset, filters.FilterSet), route.view_name
        for name, declared in filterset.base_filters.items():
            if isinstance(declared, NumberFilter):
                assert isinstance(declared, filters.IntegerFilter), (route, name)
                checked += 1
    assert checked >= 6


# --- digits that int() refuses -------------------------------------------------------


def test_a_superscript_digit_as_telemetry_days_is_400(http, pack):
    # "²".isdigit() is true, int("²") raises: the checks use isdecimal().
    response = http.get(
        "/api/passports/PK-0001/telemetry",
        params={"days": "²"},
        headers=bearer(pack.boss),
    )
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == ["days"]


def test_a_superscript_digit_as_job_id_is_404_and_moves_nothing(http, pack):
    before = passport_counts(pack.passport)
    response = http.post(
        "/api/products/move-to-past",
        json={"productId": "PK-0001", "jobId": "²", "reason": "damaged"},
        headers=bearer(pack.boss),
    )
    body = assert_envelope(response, 404, "job_not_found")
    assert body["details"]["jobId"] == "²"
    assert passport_counts(pack.passport) == before
