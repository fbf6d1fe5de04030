"""What the schema fuzzer (tests/test_schema_fuzz.py, docs/testing.md) found,
each failing input kept as a plain test: an input the schema calls invalid is
a 400 in the envelope naming the parameter, and no input is a 500."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from bpmos.textfields import BLANK_PATTERN
from tests.conftest import api_as
from tests.factories_passports_api import REGISTER_BODY
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_user) -> APIClient:
    return api_as(make_user("admin", username="ada"))


# --- empty query values: a 400 unless the schema says allowEmptyValue ---


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/alarms/", "to"),
        ("/api/alarms/chattering/", "until"),
        ("/api/audit/", "to"),
        ("/api/lims/results/", "to"),
        ("/api/logs/shift/", "to"),
        ("/api/scada/readings/", "to"),
        ("/api/machines/", "is_active"),
        ("/api/workorders/", "status"),
    ],
)
def test_an_empty_filter_value_is_a_400_naming_it(admin, path, parameter):
    response = admin.get(path, {parameter: ""})
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {
        parameter: ["May not be empty: leave the parameter out instead."]
    }


def test_the_control_ui_may_send_its_inventory_filters_empty(admin):
    """The frozen control-UI contract's item filters: an unset one is sent
    empty, and means "not given" (declared ``allowEmptyValue``)."""
    response = admin.get(
        "/api/inventory/items/", {"category": "", "status": "", "search": ""}
    )
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


def test_the_schema_declares_which_query_values_may_be_empty(admin):
    paths = admin.get("/api/schema/", {"format": "json"}).json()["paths"]

    def parameter(path: str, name: str) -> dict:
        (found,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == name]
        return found

    assert parameter("/api/inventory/items/", "category")["allowEmptyValue"] is True
    assert parameter("/api/inventory/items/", "status")["allowEmptyValue"] is True
    assert "allowEmptyValue" not in parameter("/api/alarms/", "to")
    sku = parameter("/api/inventory/items/", "sku")
    assert "allowEmptyValue" not in sku
    assert sku["schema"]["minLength"] == 1


def test_every_page_parameter_may_be_empty_and_says_so(admin):
    """``?page=`` and ``?page_size=`` are "not given" (bpmos.pagination):
    every route that reads them declares ``allowEmptyValue``, those that
    paginate by hand too (the fuzz campaign of session 19 found the EPR
    category's undeclared)."""
    paths = admin.get("/api/schema/", {"format": "json"}).json()["paths"]
    declared = [
        (path, parameter)
        for path, item in paths.items()
        for operation in item.values()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] in ("page", "page_size")
    ]
    assert any(path == "/api/compliance/epr/{category}/" for path, _ in declared)
    assert [p for p in declared if p[1].get("allowEmptyValue") is not True] == []
    response = admin.get(
        "/api/compliance/epr/industrial/", {"page": "", "page_size": ""}
    )
    assert response.status_code == 200, response.content
    assert response.json()["previous"] is None  # the first page


# --- booleans: true or false, nothing else ---


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/auth/users/", "is_active=null&is_active=null"),
        ("/api/machines/", "is_active=null"),
        ("/api/exceptions/", "isBlocking=null"),
        ("/api/passports/", "onHold=null&onHold=null"),
        ("/api/registry/", "onHold=0.6834040259543779"),
    ],
)
def test_a_boolean_filter_refuses_what_is_not_true_or_false(admin, path, query):
    response = admin.get(f"{path}?{query}")
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == [query.split("=")[0]]


# --- no 500s ---


def test_a_time_offset_past_postgresqls_range_is_read_as_its_instant(admin):
    """ISO 8601 allows +23:36; PostgreSQL refused it (a 500)."""
    response = admin.get(
        "/api/logs/shift/", {"shift": "2010-06-07T19:02:59+23:36", "search": "x"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/passports/verify/", "identifier"),
        ("/api/passports/lookup/", "identifier"),
        ("/api/workorders/", "search"),
    ],
)
def test_a_nul_in_a_query_value_is_a_400_naming_it(admin, path, parameter):
    """PostgreSQL text cannot hold NUL: ``?identifier=%00`` was a 500."""
    response = admin.get(path, {parameter: "U\x00(x"})
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {parameter: ["May not contain NUL characters."]}


# --- the long campaign (docs/testing.md): what the schema let through as valid
# and the server refused (positive_data_acceptance), each fixed in the schema ---


@pytest.fixture
def api_schema(admin) -> dict:
    return admin.get("/api/schema/", {"format": "json"}).json()


def _query_schema(api_schema: dict, path: str, name: str) -> dict:
    (found,) = [
        p
        for p in api_schema["paths"][path]["get"]["parameters"]
        if p["name"] == name and p["in"] == "query"
    ]
    return found["schema"]


def _body_schema(api_schema: dict, path: str, method: str) -> dict:
    schema = api_schema["paths"][path][method]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    if "$ref" in schema:
        schema = api_schema["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/passports/lookup/", "identifier"),
        ("/api/dashboard/trends/", "model"),
        ("/api/dashboard/trends/", "passport"),
        ("/api/scada/readings/", "tag"),
        ("/api/products/lifecycle/", "productId"),
        ("/api/passports/", "lot"),
    ],
)
def test_a_blank_query_value_is_invalid_by_the_schema_and_refused(
    admin, api_schema, path, parameter
):
    """``?identifier=`` and ``?identifier=%20`` were schema-valid (a plain
    string) and answered 400: the schema now says ``minLength: 1`` and a
    character that is not whitespace."""
    schema = _query_schema(api_schema, path, parameter)
    assert schema["minLength"] == 1
    for blank in ("", " ", "\t\u3000"):
        assert re.search(schema["pattern"], blank) is None
    assert re.search(schema["pattern"], " x ") is not None
    query = {"metric": "soh", parameter: " "}
    response = admin.get(path, query)
    assert response.status_code == 400, response.content
    assert parameter in response.json()["details"]


def test_a_body_string_that_is_trimmed_may_not_be_blank_by_the_schema(
    admin, api_schema
):
    """DRF trims a CharField and then refuses it blank: ``{"reason": " "}``
    was schema-valid (``minLength: 1``) and a 400."""
    reason = _body_schema(api_schema, "/api/alarms/{id}/suppress/", "post")[
        "properties"
    ]["reason"]
    assert reason["minLength"] == 1
    assert re.search(reason["pattern"], "  ") is None
    response = admin.post("/api/alarms/1/suppress/", {"reason": "  "}, format="json")
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == ["reason"]


def test_an_enum_filter_lists_what_it_answers_to(admin, api_schema):
    """``?kind=0`` was schema-valid (any string) and a 400: the schema now
    lists the values and labels, each of which the filter takes."""
    kinds = _query_schema(api_schema, "/api/passports/", "kind")["enum"]
    assert kinds == ["cell", "module", "pack", "Cell", "Module", "Pack"]
    for kind in kinds:
        response = admin.get("/api/passports/", {"kind": kind})
        assert response.status_code == 200, (kind, response.content)
    assert admin.get("/api/passports/", {"kind": "0"}).status_code == 400


def test_assigned_to_says_its_pattern(admin, api_schema):
    """``?assigned_to=0`` was schema-valid and refused ("Use "me" or a user id")."""
    pattern = _query_schema(api_schema, "/api/stages/", "assigned_to")["pattern"]
    assert re.search(pattern, "0") is None
    assert re.search(pattern, "me") is not None
    assert re.search(pattern, "12") is not None
    response = admin.get("/api/stages/", {"assigned_to": "0"})
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == ["assigned_to"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/stages/1/issues/1/", {"resolution_note": ""}),
        ("/api/auth/users/1/role/", {}),
    ],
)
def test_a_patch_read_whole_documents_its_required_fields(
    admin, api_schema, path, body
):
    """``PATCH {}`` was schema-valid (drf-spectacular documents every PATCH
    body as partial) and a 400 "This field is required": these views read
    the whole body, and their schema now says which fields it needs."""
    template = {
        "/api/stages/1/issues/1/": "/api/stages/{id}/issues/{issue_id}/",
        "/api/auth/users/1/role/": "/api/auth/users/{id}/role/",
    }[path]
    required = _body_schema(api_schema, template, "patch")["required"]
    assert required == (["status"] if "issues" in path else ["role"])
    response = admin.patch(path, body, format="json")
    details = assert_envelope(response, 400, "validation_error")["details"]
    assert details[required[0]] == ["This field is required."]


def test_bounds_the_services_check_are_in_the_schema(api_schema):
    """Found as schema-valid and refused: a quantity of 0, an empty component
    list, an empty batch of readings, another plant's id."""
    issue = _body_schema(api_schema, "/api/inventory/items/{item_id}/issue/", "post")
    assert issue["properties"]["quantity"]["minimum"] == 1
    reserve = _body_schema(
        api_schema, "/api/inventory/items/{item_id}/reserve/", "post"
    )
    assert reserve["properties"]["quantity"]["minimum"] == 1
    components = _body_schema(
        api_schema, "/api/passports/{identifier}/components/", "post"
    )
    assert components["properties"]["components"]["minItems"] == 1
    readings = _body_schema(api_schema, "/api/machines/{id}/readings/", "post")
    assert readings["minItems"] == 1
    plant = _body_schema(api_schema, "/api/logs/write/", "post")["properties"][
        "plant_id"
    ]
    (ref,) = plant["allOf"]
    enum = api_schema["components"]["schemas"][ref["$ref"].split("/")[-1]]["enum"]
    assert enum == [settings.BPMOS_PLANT_ID]


def test_the_idempotency_key_schema_is_the_servers_rule(admin, api_schema):
    """A key of "é" was schema-valid (1-255 characters) and a 400: the server
    takes printable ASCII only, and the schema now says so."""
    (header,) = [
        p
        for p in api_schema["paths"]["/api/alarms/{id}/suppress/"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    pattern = header["schema"]["pattern"]
    assert re.search(pattern, "é") is None
    assert re.search(pattern, "retry-1 ~") is not None
    response = admin.post(
        "/api/alarms/1/suppress/",
        {"reason": "x"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="é",
    )
    assert_envelope(response, 400, "idempotency_key_invalid")


def test_no_request_string_may_hold_nul_by_the_schema(admin, api_schema):
    """``?search=a%00`` and ``{"lot_no": "a\\u0000"}`` were schema-valid and
    answered 400 ("May not contain NUL characters."): every free-text query
    value and body string now says so."""
    search = _query_schema(api_schema, "/api/scada/connectors/", "search")
    assert re.search(search["pattern"], "a\x00") is None
    assert re.search(search["pattern"], "") is not None  # search may be empty
    response = admin.get("/api/scada/connectors/", {"search": "a\x00"})
    body = assert_envelope(response, 400, "validation_error")
    assert list(body["details"]) == ["search"]
    serial = _body_schema(api_schema, "/api/passports/", "post")["properties"]["serial"]
    assert re.search(serial["pattern"], "CL-1\x00") is None
    assert re.search(serial["pattern"], "CL-1") is not None


def test_a_decimal_in_a_body_is_never_empty_by_the_schema(admin, api_schema):
    """``{"ratedCapacityAh": ""}`` matched drf-spectacular's decimal pattern
    and was a 400 ("Must be a number."); it is positive besides
    (tests/test_schema_single_field_rules.py), so no sign and no zero."""
    rated = _body_schema(api_schema, "/api/passports/", "post")["properties"][
        "ratedCapacityAh"
    ]
    for refused in ("", "-", ".", "-0.25", "0"):
        assert re.search(rated["pattern"], refused) is None, refused
    for accepted in ("100", "99.5", "0.25", "1."):
        assert re.search(rated["pattern"], accepted) is not None, accepted


def test_json_values_say_their_type(admin, api_schema):
    """``{"metadata": null}`` (shift log) and ``{"value": null}`` (a machine
    reading) were schema-valid (a bare JSON field) and refused."""
    metadata = _body_schema(api_schema, "/api/logs/write/", "post")["properties"][
        "metadata"
    ]
    assert metadata["type"] == "object"
    reading = api_schema["components"]["schemas"]["ReadingInRequest"]
    assert [branch["type"] for branch in reading["properties"]["value"]["oneOf"]] == [
        "number",
        "string",
    ]
    telemetry = _body_schema(
        api_schema, "/api/passports/{identifier}/telemetry/", "post"
    )
    assert telemetry["minItems"] == 1
    workorder = _body_schema(api_schema, "/api/workorders/", "post")
    assert workorder["properties"]["qty"]["minimum"] == 1


def test_the_identitys_barcode_and_rfid_are_optional_in_the_detail(api_schema):
    """An operator's passport detail rightly has no barcode or RFID; the schema
    required them (response_schema_conformance as operator and planner)."""
    identity = api_schema["components"]["schemas"]["PassportIdentity"]
    assert {"barcode", "rfid"} <= set(identity["properties"])
    assert sorted(identity["required"]) == [
        "bpan",
        "gtin",
        "kind",
        "lot",
        "model",
        "serial",
        "uuid",
    ]


def test_closed_sets_are_in_the_schema(admin, api_schema):
    """Schema-valid and refused: ``?fy=0`` (financial years), ``?days=0``
    (telemetry window), ``{"action": "0"}`` (the dispatch desk's lifecycle)."""
    fy = _query_schema(api_schema, "/api/compliance/epr/", "fy")["pattern"]
    assert re.search(fy, "2026-27") is not None
    for refused in ("0", "2026-28", "1999-00", "2100-01"):
        assert re.search(fy, refused) is None, refused
    assert admin.get("/api/compliance/epr/", {"fy": "2026-28"}).status_code == 400
    (days,) = [
        p["schema"]
        for p in api_schema["paths"]["/api/passports/{identifier}/telemetry/"]["get"][
            "parameters"
        ]
        if p["name"] == "days"
    ]
    assert (days["minimum"], days["maximum"]) == (1, 365)
    action = _body_schema(api_schema, "/api/products/lifecycle/", "post")["properties"][
        "action"
    ]
    (ref,) = action["allOf"]
    enum = api_schema["components"]["schemas"][ref["$ref"].split("/")[-1]]["enum"]
    assert enum == ["move_to_past", "reactivate", "update_state"]
    returns_fy = _query_schema(api_schema, "/api/compliance/returns/", "financialYear")
    assert returns_fy["pattern"] == fy
    current = api_schema["components"]["schemas"]["TelemetryReadingInRequest"][
        "properties"
    ]["currentA"]
    assert (current["minimum"], current["maximum"]) == (-5000, 5000)


def test_a_regex_fields_own_pattern_stays_and_page_size_is_bounded(api_schema):
    """``?anchor_hash=`` kept the RegexField's pattern (not the blank rule),
    and the EPR category's hand-declared ``page_size`` says ``minimum: 1``
    (``?page_size=0`` was schema-valid and a 400), as the paginated lists do."""
    anchor = _query_schema(api_schema, "/api/audit/verify/", "anchor_hash")
    assert re.search(anchor["pattern"], "x") is None
    assert re.search(anchor["pattern"], "a" * 64) is not None
    page_size = [
        p["schema"]
        for p in api_schema["paths"]["/api/compliance/epr/{category}/"]["get"][
            "parameters"
        ]
        if p["name"] == "page_size"
    ]
    assert page_size == [{"type": "integer", "minimum": 1}]


def test_a_recorded_event_kind_is_one_a_client_may_record(api_schema):
    """``{"kind": "manufactured"}`` was schema-valid and a 400: the services
    write those kinds themselves."""
    kind = _body_schema(api_schema, "/api/passports/{identifier}/events/", "post")[
        "properties"
    ]["kind"]
    enum = api_schema["components"]["schemas"][kind["$ref"].split("/")[-1]]["enum"]
    assert "manufactured" not in enum
    assert {"qa_passed", "dispatched", "custody_transferred"} <= set(enum)


def test_a_version_and_a_bms_node_id_say_their_bounds(admin, api_schema, make_user):
    """Found in the campaign's reruns: ``expectedVersion`` 0 and ``nodeId`` 200
    were schema-valid and refused (a passport's version starts at 1; a CAN
    node id is 1-127). The schema now says so, and the answer is unchanged."""
    for path in (
        "/api/passports/{identifier}/events/",
        "/api/passports/{identifier}/custody/",
        "/api/passports/{identifier}/provision/",
    ):
        body = _body_schema(api_schema, path, "post")
        assert body["properties"]["expectedVersion"]["minimum"] == 1, path
    node = _body_schema(api_schema, "/api/passports/{identifier}/provision/", "post")
    assert (
        node["properties"]["nodeId"]["minimum"],
        node["properties"]["nodeId"]["maximum"],
    ) == (1, 127)
    refused = admin.post(
        "/api/passports/NO-SUCH-PACK/provision/",
        {"nodeId": 0, "expectedVersion": 0},
        format="json",
    )
    body = assert_envelope(refused, 400, "validation_error")
    assert body["details"] == {
        "nodeId": ["A node id from 1 to 127."],
        "expectedVersion": ["The version you read: 1 or more."],
    }


def test_the_dispatch_state_is_one_of_the_contracts_two(admin, api_schema):
    """The campaign's reruns: the lifecycle body's ``state`` was "text up to 3
    characters", and ``{"action": "move_to_past", "state": "X"}`` moved the
    product (the state was ignored). The schema now names "ON" and "OFF" (or
    blank/null: not given), and anything else is a 400 whatever the action."""
    body = _body_schema(api_schema, "/api/products/lifecycle/", "post")
    refs = [one["$ref"].split("/")[-1] for one in body["properties"]["state"]["oneOf"]]
    assert refs == ["DispatchJobStateEnum", "BlankEnum", "NullEnum"]
    assert api_schema["components"]["schemas"]["DispatchJobStateEnum"]["enum"] == [
        "ON",
        "OFF",
    ]
    response = admin.post(
        "/api/products/lifecycle/",
        {"productId": "NO-SUCH-PACK", "action": "move_to_past", "state": "X"},
        format="json",
    )
    error = assert_envelope(response, 400, "validation_error")
    assert list(error["details"]) == ["state"]


def test_a_telemetry_row_says_it_needs_a_measurement(admin, api_schema, make_user):
    """The campaign's reruns: ``[{"ts": ...}]`` was schema-valid and refused
    ("Holds no measurement."). The row now says "at least one measurement,
    not null" (``anyOf`` of one-field ``required`` lists), and the answer is
    the 400 it was, with nothing stored."""
    from jsonschema import Draft4Validator

    from passports.models import TelemetryReading
    from passports.telemetry import MEASUREMENTS
    from tests.dispatch_support import register

    body = _body_schema(api_schema, "/api/passports/{identifier}/telemetry/", "post")
    row = body["items"]
    if "$ref" in row:
        row = api_schema["components"]["schemas"][row["$ref"].split("/")[-1]]
    assert row["anyOf"] == [
        {"required": [name], "properties": {name: {"type": "number"}}}
        for name in (*MEASUREMENTS, *(c for c, _, _ in MEASUREMENTS.values()))
    ]
    # The row's rule read as JSON Schema (the properties' ``nullable`` is
    # OpenAPI's; the ``anyOf`` alone decides these).
    rule = Draft4Validator({"anyOf": row["anyOf"]})
    assert not rule.is_valid({"ts": "2026-01-01T00:00:00Z"})
    assert not rule.is_valid({"ts": "2026-01-01T00:00:00Z", "sohPercent": None})
    assert rule.is_valid({"ts": "2026-01-01T00:00:00Z", "currentA": -2.5})
    assert rule.is_valid({"ts": "2026-01-01T00:00:00Z", "soh_percent": 97.0})

    passport = register(make_user("admin", username="reg"), "PK-TEL-1")
    for sample in (
        {"ts": "2026-01-01T00:00:00Z"},
        {"ts": "2026-01-01T00:00:00Z", "sohPercent": None},
    ):
        response = admin.post(
            f"/api/passports/{passport.serial}/telemetry/", [sample], format="json"
        )
        error = assert_envelope(response, 400, "validation_error")
        assert "Holds no measurement." in str(error["details"]), error
    assert TelemetryReading.objects.filter(passport=passport).count() == 0


def test_a_move_to_where_an_item_is_is_a_409_in_the_envelope(admin, api_schema):
    """The campaign's reruns: a move to the item's own location was a 400, as
    if the body were wrong. It is a state the item is in: 409
    ``already_at_location``, documented on the operation."""
    responses = api_schema["paths"]["/api/inventory/items/{item_id}/move/"]["post"][
        "responses"
    ]
    assert "409" in responses


def test_the_fuzz_footprint_is_the_two_counts_and_moves_on_a_write(make_user):
    """``call_refusing_cleanly``'s footprint, taken before every case in one
    statement, gives what the ORM counts give, and moves when a change writes
    an audit record and an event: a refusal that wrote either still fails."""
    from bpmos.events.models import OutboxEvent
    from elog.models import AuditRecord
    from tests.factories_passports_api import register
    from tests.test_schema_fuzz import _footprint

    def counted() -> tuple[int, int]:
        return AuditRecord.objects.count(), OutboxEvent.objects.count()

    before = _footprint()
    assert before == counted()
    register(make_user("admin", username="foot"), "PK-FOOT-1")
    after = _footprint()
    assert after == counted()
    assert after[0] > before[0]
    assert after[1] > before[1]


# --- this session's campaign (docs/testing.md, "What the schema states since") ---


@pytest.mark.parametrize("value", [9999.999999999996, 0.05])
def test_an_idle_temperature_bound_past_its_column_is_a_400_not_a_500(admin, value):
    """``POST /api/passports/{id}/second-life/`` with ``{"idleTemperatureMinC":
    9999.999999999996}``: 500 (the message read the unit of an attribute the
    temperature bounds do not have). Registration shares the check."""
    from passports.models import Passport

    body = {**REGISTER_BODY, "serial": "PK-IDLE-1", "idleTemperatureMinC": value}
    response = admin.post("/api/passports/", body, format="json")
    error = assert_envelope(response, 400, "validation_error")
    (messages,) = error["details"].values()
    assert messages[0].startswith("Not a valid idle_temperature_min_c: at most ")
    assert messages[0].endswith(" decimal places.")
    assert not Passport.objects.filter(serial="PK-IDLE-1").exists()


@pytest.mark.parametrize(
    ("name", "value"), [("expectedCycles", 2_147_483_648), ("warrantyMonths", 32768)]
)
def test_a_whole_number_past_its_column_is_a_400(admin, name, value):
    """``{"expectedCycles": -7243}`` was schema-valid and refused; past the
    column was a 500 on PostgreSQL ("integer out of range"). Both bounds are
    the server's and the schema's now."""
    from passports.models import Passport

    body = {**REGISTER_BODY, "serial": "PK-WHOLE-1", name: value}
    response = admin.post("/api/passports/", body, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {name: [f"A whole number, 0 to {value - 1:,}."]}
    assert not Passport.objects.filter(serial="PK-WHOLE-1").exists()
    at_most = admin.post("/api/passports/", {**body, name: value - 1}, format="json")
    assert at_most.status_code == 201, at_most.content
    properties = _body_schema(
        admin.get("/api/schema/", {"format": "json"}).json(), "/api/passports/", "post"
    )["properties"]
    assert (properties[name]["minimum"], properties[name]["maximum"]) == (0, value - 1)


# --- the campaign of 2026-12-05 (docs/testing.md) ---

NUL_REFUSED = (
    "JSON parse error - The body holds a NUL character (\\u0000), which cannot "
    "be stored as text."
)


@pytest.mark.parametrize(
    "extra",
    [
        {"recycledContent": {"li\u0000": 5}},
        {"materialComposition": {"\u0000": 50}},
        {"criticalRawMaterials": ["cobalt\u0000"]},
    ],
)
def test_a_nul_in_a_registrations_map_or_list_is_a_400_not_a_500(admin, extra):
    """``POST /api/passports/`` with a NUL in ``recycledContent``'s key (the
    planner's run): 500, PostgreSQL's jsonb cannot hold NUL. The JSON parser
    refuses a NUL anywhere in a body, as it refuses a lone surrogate."""
    from passports.models import Passport

    body = {**REGISTER_BODY, "serial": "PK-NUL-1", **extra}
    response = admin.post("/api/passports/", body, format="json")
    assert assert_envelope(response, 400, "parse_error")["error"] == NUL_REFUSED
    assert not Passport.objects.filter(serial="PK-NUL-1").exists()


@pytest.mark.parametrize("metadata", [{"k\u0000": 1}, {"k": ["v\u0000"]}])
def test_a_nul_in_a_shift_log_entrys_metadata_is_a_400_not_a_500(make_user, metadata):
    from elog.models import ShiftLogEntry

    user = make_user("supervisor", username="sue")
    body = {
        "plant_id": settings.BPMOS_PLANT_ID,
        "operator_id": user.pk,
        "operator_name": "Sue",
        "entry_type": "note",
        "body": "Line A restarted.",
        "metadata": metadata,
    }
    response = api_as(user).post("/api/logs/write/", body, format="json")
    assert assert_envelope(response, 400, "parse_error")["error"] == NUL_REFUSED
    assert not ShiftLogEntry.objects.exists()


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul():
    """Only a NUL is refused: ``"\\\\u0000"`` is six characters of text."""
    from bpmos import parsers

    assert parsers.loads(r'{"note": "\\u0000"}') == {"note": "\\u0000"}


def test_the_schema_says_what_registration_reads_as_not_given(admin):
    """``{"testReport": null}`` (and ``""``) was schema-invalid and answered 201:
    registration reads an EU attribute sent null or "" as not declared, and an
    optional text null or "". The schema says so; the lists and maps of the
    materials, which refuse null, stay as they were."""
    from passports.models import Passport

    properties = _body_schema(
        admin.get("/api/schema/", {"format": "json"}).json(), "/api/passports/", "post"
    )["properties"]
    for name in ("testReport", "minimumVoltageV", "labels", "gtin"):
        assert properties[name]["nullable"] is True, name
        assert {"type": "string", "enum": [""]} in properties[name]["anyOf"], name
    # The texts the service strips: white space alone is not given either (a
    # carbon class of "  " was taken and schema-invalid: the CI fuzz as admin).
    for name in ("barcode", "lot", "carbonFootprintClass"):
        assert properties[name]["nullable"] is True, name
        blank = {"type": "string", "pattern": BLANK_PATTERN}
        assert blank in properties[name]["anyOf"], name
    assert properties["massKg"]["nullable"] is True
    assert "anyOf" not in properties["massKg"]
    for name in ("criticalRawMaterials", "materialComposition"):
        assert "nullable" not in properties[name], name
    for number, (name, value) in enumerate(
        [
            ("carbonFootprintClass", "  "),
            ("testReport", None),
            ("testReport", ""),
            ("minimumVoltageV", ""),
            ("massKg", None),
            ("lot", None),
        ]
    ):
        body = {**REGISTER_BODY, "serial": f"PK-ABSENT-{number}", name: value}
        response = admin.post("/api/passports/", body, format="json")
        assert response.status_code == 201, (name, value, response.content)
    refused = admin.post(
        "/api/passports/",
        {**REGISTER_BODY, "serial": "PK-ABSENT-X", "criticalRawMaterials": None},
        format="json",
    )
    assert_envelope(refused, 400, "validation_error")
    assert not Passport.objects.filter(serial="PK-ABSENT-X").exists()


def test_a_reports_query_parameters_say_what_the_report_takes(admin):
    """``GET /api/reports/exceptions-escalations/preview/?status=`` (and
    ``?severity=``): schema-valid (any string) and a 400 "Empty: leave the
    parameter out". Each parameter's schema is now what ``Param.parse`` takes:
    a choice's values, a token's pattern, a day 2000-2099, a financial year."""
    import jsonschema_rs

    paths = admin.get("/api/schema/", {"format": "json"}).json()["paths"]
    for path in (
        "/api/reports/{report_id}/preview/",
        "/api/reports/{report_id}/download/",
    ):
        parameters = {p["name"]: p["schema"] for p in paths[path]["get"]["parameters"]}

        def admits(name, value, parameters=parameters):
            return jsonschema_rs.validator_for(parameters[name]).is_valid(value)

        for name, inside, outsides in [
            ("status", "hold", ("", "x")),
            ("line", "line-a", ("", "a b")),
            ("from", "2000-01-01", ("1999-12-31", "2026-1-1")),
            ("fy", "2026-27", ("", "2026")),
        ]:
            assert admits(name, inside), (path, name)
            for outside in outsides:
                assert not admits(name, outside), (path, name, outside)
    url = "/api/reports/exceptions-escalations/preview/"
    for query in ({"status": ""}, {"severity": "x"}, {"from": "1999-12-31"}):
        response = admin.get(url, query)
        assert list(
            assert_envelope(response, 400, "validation_error")["details"]
        ) == list(query)
    assert admin.get(url, {"status": "open", "severity": "high"}).status_code == 200


@pytest.mark.parametrize(
    ("name", "limit"),
    [("carbonFootprintClass", 4), ("lot", 64), ("manufacturerId", 64)],
)
def test_an_optional_text_past_its_column_is_a_400_not_a_500(admin, name, limit):
    """``POST /api/passports/`` with a ``carbonFootprintClass`` of 5 or more
    characters (the supervisor's run): 500, "value too long for type character
    varying(4)": the service allowed 120 characters for every optional text.
    Each is now held to its column, and the schema states the length."""
    from passports.models import Passport

    for path in ("/api/passports/", "/api/passports/{identifier}/second-life/"):
        properties = _body_schema(
            admin.get("/api/schema/", {"format": "json"}).json(), path, "post"
        )["properties"]
        stated = properties[name].get("anyOf", [properties[name]])[0]
        assert stated["maxLength"] == limit, (path, name)
    body = {**REGISTER_BODY, "serial": "PK-LONG-1", name: "A" * (limit + 1)}
    response = admin.post("/api/passports/", body, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {name: [f"At most {limit} characters."]}
    assert not Passport.objects.filter(serial="PK-LONG-1").exists()
    at_most = admin.post("/api/passports/", {**body, name: "A" * limit}, format="json")
    assert at_most.status_code == 201, at_most.content
