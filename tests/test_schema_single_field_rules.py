"""Single-field rules the server checks, stated in the schema (docs/testing.md,
"The campaign of 2026-12-04"): each was schema-valid and answered 400
(``positive_data_acceptance``). For each rule: the generated schema states it,
and the server agrees: a value just inside is accepted, one just outside is a
400 in the envelope naming the field. Values are judged against the schema as
Schemathesis judges them (``jsonschema_rs``, ECMA 262 patterns, formats
asserted)."""

from __future__ import annotations

import copy
from datetime import datetime

import jsonschema_rs
import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from bpmos.dashboards import trends
from bpmos.fields import TIME_PATTERN, time_problem
from lines.models import MachineReading
from passports import bpan as bpan_rules
from passports.api import serializers as passport_serializers
from passports.api import views as passport_views
from passports.models import TelemetryReading
from tests.conftest import api_as
from tests.dispatch_support import register
from tests.factories_lines import machine, make_line
from tests.factories_passports_api import REGISTER_BODY, a_bpan
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def admin(make_user) -> APIClient:
    return api_as(make_user("admin", username="ada"))


def _component(api_schema: dict, schema: dict) -> dict:
    if "$ref" in schema:
        return api_schema["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def _body(api_schema: dict, path: str) -> dict:
    content = api_schema["paths"][path]["post"]["requestBody"]["content"]
    return _component(api_schema, content["application/json"]["schema"])


def _query(api_schema: dict, path: str, name: str) -> dict:
    (found,) = [
        p
        for p in api_schema["paths"][path]["get"]["parameters"]
        if p["name"] == name and p["in"] == "query"
    ]
    return found["schema"]


def _admits(schema: dict, value) -> bool:
    """Whether ``value`` is valid by ``schema`` (one property's or parameter's
    schema; OpenAPI's ``nullable`` aside), formats asserted."""
    schema = {k: v for k, v in schema.items() if k not in {"nullable", "description"}}
    return jsonschema_rs.Draft4Validator(schema, validate_formats=True).is_valid(value)


# --- positive decimals (passports.services._decimal) ---------------------------------


REGISTER = REGISTER_BODY
POSITIVE = (
    "ratedCapacityAh",
    "nominalVoltageV",
    "energyKwh",
    "massKg",
    "carbonFootprintKgCo2ePerKwh",
)


@pytest.mark.parametrize(
    "path", ["/api/passports/", "/api/passports/{identifier}/second-life/"]
)
def test_the_schema_says_a_passports_quantities_are_positive(api_schema, path):
    properties = _body(api_schema, path)["properties"]
    for name in POSITIVE:
        field = properties[name]
        assert _admits(field, "0.01"), name
        assert _admits(field, "7"), name
        for outside in ("0", "0.00", "-1", "-0.01", ".", ""):
            assert not _admits(field, outside), (name, outside)


@pytest.mark.parametrize("name", ["ratedCapacityAh", "nominalVoltageV", "energyKwh"])
def test_a_passports_quantity_just_above_zero_is_taken_and_zero_refused(admin, name):
    inside = admin.post("/api/passports/", {**REGISTER, name: "0.01"}, format="json")
    assert inside.status_code == 201, inside.content
    outside = admin.post(
        "/api/passports/",
        {**REGISTER, "serial": "PK-RULE-2", name: "0.00"},
        format="json",
    )
    body = assert_envelope(outside, 400, "validation_error")
    assert body["details"] == {name: ["Must be a positive number."]}


def test_a_second_life_capacity_of_zero_is_refused(admin, make_user):
    passport = register(make_user("admin", username="reg"), "PK-RULE-3")
    response = admin.post(
        f"/api/passports/{passport.serial}/second-life/",
        {
            "status": "Repurposed",
            "serial": "PK-RULE-3B",
            "operator": "Second Use Co",
            "manufacturerCode": "BPM",
            "plantCode": "Q",
            "ratedCapacityAh": "0",
        },
        format="json",
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"ratedCapacityAh": ["Must be a positive number."]}


# --- the EU attributes sent as JSON numbers (passports.services._attribute_values) ---

# (name, a value just inside, values just outside): the places as multipleOf
# (a value in binary floating point judged as written, as the service reads it),
# a positive attribute from its smallest step, a percent 0-100.
ATTRIBUTE_NUMBERS = [
    ("minimumVoltageV", 0.57, (0.575, 0, -0.01)),
    ("initialRoundTripEfficiencyPercent", 100, (100.01, -0.01, 99.999)),
    ("initialSelfDischargePercent", 0, (0.0005, -0.001, 100.001)),
    ("idleTemperatureMinC", -39.9, (-39.95, 0.01)),
]


@pytest.mark.parametrize(
    "path", ["/api/passports/", "/api/passports/{identifier}/second-life/"]
)
@pytest.mark.parametrize(("name", "inside", "outsides"), ATTRIBUTE_NUMBERS)
def test_the_schema_says_an_attributes_places_and_bounds(
    api_schema, path, name, inside, outsides
):
    field = _body(api_schema, path)["properties"][name]
    assert _admits(field, inside), (name, inside)
    for outside in outsides:
        assert not _admits(field, outside), (name, outside)


@pytest.mark.parametrize(("name", "inside", "outsides"), ATTRIBUTE_NUMBERS)
def test_the_server_takes_an_attribute_as_the_schema_says(
    admin, name, inside, outsides
):
    """``{"minimumVoltageV": 0.575}`` was schema-valid (a number, no places
    stated) and answered 400 "at most 2 decimal places"; ``0`` too ("Not a
    valid Minimum voltage")."""
    taken = admin.post("/api/passports/", {**REGISTER, name: inside}, format="json")
    assert taken.status_code == 201, taken.content
    for number, outside in enumerate(outsides):
        body = {**REGISTER, "serial": f"PK-ATTR-{number}", name: outside}
        refused = admin.post("/api/passports/", body, format="json")
        error = assert_envelope(refused, 400, "validation_error")
        assert list(error["details"]) == [name], (outside, error)


@pytest.mark.parametrize("name", ["materialComposition", "recycledContent"])
def test_a_percent_map_says_and_takes_0_to_100(admin, api_schema, name):
    """Found by this session's campaign once the quantities were stated:
    ``{"materialComposition": {"...": -5.28e16}}`` was schema-valid and
    refused."""
    field = _body(api_schema, "/api/passports/")["properties"][name]
    assert _admits(field, {"lithium": 0, "cobalt": 100})
    assert not _admits(field, {"lithium": -0.5})
    assert not _admits(field, {"lithium": 100.5})
    inside = admin.post(
        "/api/passports/", {**REGISTER, name: {"lithium": 100}}, format="json"
    )
    assert inside.status_code == 201, inside.content
    outside = admin.post(
        "/api/passports/",
        {**REGISTER, "serial": "PK-RULE-2", name: {"lithium": 100.5}},
        format="json",
    )
    body = assert_envelope(outside, 400, "validation_error")
    assert body["details"] == {name: ["A map of material to percent (0-100)."]}


# --- BPAN format (passports.bpan.parse) ----------------------------------------------


def test_the_schema_says_a_bpans_format(api_schema):
    field = _body(api_schema, "/api/bpan/validate/")["properties"]["bpan"]
    valid = a_bpan()
    spaced = f" {valid[:5].lower()}-{valid[5:13]}\u2003{valid[13:]}\n"
    assert _admits(field, valid)
    assert _admits(field, spaced)
    assert not _admits(field, valid[:-1])  # 20 characters
    assert not _admits(field, valid + "0")  # 22
    assert not _admits(field, valid[:-1] + "_")  # not alphanumeric
    assert not _admits(field, "12" + valid[2:])  # no country code
    assert not _admits(field, valid[:5] + "X" + valid[6:])  # no such chemistry
    # Separators the server drops are exactly the pattern's (Python's \s).
    assert set(bpan_rules.SEPARATORS) - {"-"} == {
        chr(c) for c in range(0x3001) if chr(c).isspace()
    }


def test_the_server_reads_a_bpan_as_the_schema_says(admin):
    valid = a_bpan()
    for inside in (valid, f" {valid[:5].lower()}-{valid[5:13]}\u2003{valid[13:]}\n"):
        response = admin.post("/api/bpan/validate/", {"bpan": inside}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["bpan"] == valid
    for outside, message in (
        (valid[:-1], "A BPAN has 21 characters; this has 20."),
        (valid[:-1] + "_", "A BPAN holds only the letters A-Z and digits 0-9."),
        # str.upper() made "SS" of it: a 21-character BPAN of 20 written.
        (valid[:7] + "\u00df" + valid[9:], "A BPAN has 21 characters; this has 20."),
    ):
        response = admin.post("/api/bpan/validate/", {"bpan": outside}, format="json")
        body = assert_envelope(response, 400, "validation_error")
        assert body["details"] == {"bpan": [message]}


def test_a_wrong_check_character_is_the_endpoints_answer_not_the_schemas(
    admin, api_schema
):
    """The check character is what the endpoint exists to check: the schema
    admits any, the answer says it does not match."""
    valid = a_bpan()
    wrong = valid[:-1] + ("0" if valid[-1] != "0" else "1")
    field = _body(api_schema, "/api/bpan/validate/")["properties"]["bpan"]
    assert _admits(field, wrong)
    response = admin.post("/api/bpan/validate/", {"bpan": wrong}, format="json")
    body = assert_envelope(response, 400, "validation_error")
    assert "check character" in body["details"]["bpan"][0]


# --- a reading's tag (lines.services.TAG_RE) ----------------------------------------


def test_the_schema_says_a_readings_tag(api_schema):
    row = _component(
        api_schema, _body(api_schema, "/api/machines/{id}/readings/")["items"]
    )
    tag = row["properties"]["tag"]
    for inside in ("good_count", "a", "line1.weld:temp/2-b", "x" * 64):
        assert _admits(tag, inside), inside
    for outside in ("", "x" * 65, "good count", "good_count\n", "temp°", "a,b"):
        assert not _admits(tag, outside), outside


def test_the_server_takes_a_tag_as_the_schema_says(admin):
    target = machine(make_line(), "st-01")
    path = f"/api/machines/{target.pk}/readings/"
    row = {"ts": "2026-03-02T08:00:00Z", "value": 1.5}
    inside = admin.post(path, [{**row, "tag": "x" * 64}], format="json")
    assert inside.status_code in {200, 201}, inside.content
    for outside in ("x" * 65, "good count", "good_count\n"):
        response = admin.post(path, [{**row, "tag": outside}], format="json")
        body = assert_envelope(response, 400, "validation_error")
        assert list(body["details"]["rows"]["0"]) == ["tag"], outside
    assert list(MachineReading.objects.values_list("tag", flat=True)) == ["x" * 64]


# --- a telemetry row's fields (passports.telemetry._check_row) ----------------------


def test_the_schema_says_a_telemetry_row_has_no_other_fields(api_schema):
    row = _component(
        api_schema,
        _body(api_schema, "/api/passports/{identifier}/telemetry/")["items"],
    )
    assert row["additionalProperties"] is False
    from passports.telemetry import MEASUREMENTS

    assert set(row["properties"]) == {
        "ts",
        *MEASUREMENTS,
        *(column for column, _, _ in MEASUREMENTS.values()),
    }
    assert row["properties"]["soh_percent"]["maximum"] == 100


def test_the_server_takes_a_telemetry_alias_and_refuses_another_field(admin, make_user):
    passport = register(make_user("admin", username="reg"), "PK-RULE-4")
    path = f"/api/passports/{passport.serial}/telemetry/"
    inside = admin.post(
        path, [{"ts": "2026-03-02T08:00:00Z", "soh_percent": 97.5}], format="json"
    )
    assert inside.status_code in {200, 201}, inside.content
    outside = admin.post(
        path,
        [{"ts": "2026-03-02T09:00:00Z", "sohPercent": 97.0, "sohPct": 1}],
        format="json",
    )
    body = assert_envelope(outside, 400, "validation_error")
    assert body["details"] == {"rows": {"0": {"sohPct": ["Unknown field."]}}}
    assert list(TelemetryReading.objects.values_list("soh_percent", flat=True)) == [
        97.5
    ]


def test_a_reading_row_is_closed_and_declares_its_aliases(api_schema):
    from lines.services import _FIELDS

    row = _component(
        api_schema, _body(api_schema, "/api/machines/{id}/readings/")["items"]
    )
    assert row["additionalProperties"] is False
    assert set(row["properties"]) == set(_FIELDS)


@pytest.mark.parametrize(
    ("component", "allowed"),
    [
        ("PassportRegisterRequest", set(passport_serializers.REGISTER_FIELDS)),
        ("SecondLifeRequest", set(passport_views.SECOND_LIFE_FIELDS)),
        ("GrantIssueRequest", {"party", "passport", "customer", "days"}),
        ("SignRequestRequest", {"meaning", "password", "version"}),
    ],
)
def test_a_body_that_refuses_unknown_fields_says_which_it_takes(
    api_schema, component, allowed
):
    """The views refuse any other key ("Unknown field."): the schema is
    closed, and its properties are exactly the keys the view takes."""
    schema = api_schema["components"]["schemas"][component]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == allowed


def test_an_unknown_field_in_a_signature_is_refused(admin, make_user):
    passport = register(make_user("admin", username="reg"), "PK-RULE-5")
    response = admin.post(
        f"/api/passports/{passport.serial}/signatures/",
        {"meaning": "dispatch_release", "password": "x", "note": "?"},
        format="json",
    )
    body = assert_envelope(response, 400, "validation_error")
    assert body["details"] == {"note": ["Unknown field."]}


# --- times: from 2000 to 2100 (bpmos.fields.time_problem, TIME_PATTERN) -------------


EDGES = [
    # (time, inside?)
    ("2000-01-01T00:00:00Z", True),
    ("1999-12-31T23:59:59Z", False),
    ("2000-01-01T00:00:00-05:00", True),
    ("2000-01-01T00:00:00+00:00", True),
    ("2000-01-01T00:00:00-00:00", True),
    ("2000-01-01T10:00:00+05:30", False),  # on the first day, a positive offset
    ("1999-12-31T23:30:00-01:00", False),  # 2000-01-01T00:30Z, written 1999
    ("2099-12-31T23:59:59.999999Z", True),
    ("2099-12-31T23:59:59+05:30", True),
    ("2099-12-31T23:59:59-00:00", True),
    ("2099-12-31T01:00:00-05:00", False),  # on the last day, a negative offset
    ("2100-01-01T00:00:00Z", False),
    ("2100-01-01T03:00:00+05:00", False),  # 2099-12-31T22:00Z, written 2100
    ("2026-03-02t08:00:00Z", True),
    ("2026-03-02T08:00:00.5+23:59", True),
    ("2026-03-02T08:00:00z", False),  # the server's parser takes "Z" only
    ("2026-03-02T23:59:60Z", False),  # nor a leap second
    ("0001-01-01T00:00:00+05:00", False),
    ("9999-12-31T23:59:59-05:00", False),
]


@pytest.mark.parametrize(("value", "inside"), EDGES)
def test_the_time_pattern_is_the_servers_rule(value, inside):
    """``TIME_PATTERN`` (with ``format: date-time``) admits exactly the times
    ``time_problem`` admits, on the edge days' offsets too."""
    schema = {"type": "string", "format": "date-time", "pattern": TIME_PATTERN}
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    server = parsed is not None and time_problem(parsed) is None
    assert server is inside
    assert _admits(schema, value) is inside


@pytest.mark.parametrize("value", ["2026-03-02 08:00:00Z", "2026-03-02T08:00:00,5Z"])
def test_the_time_pattern_alone_admits_no_form_rfc_3339_refuses(value):
    """The server's parser takes a space and a comma, RFC 3339 does not: were
    the pattern to admit them, a generator drawing from it would send them as
    "invalid" and see them accepted (this session's campaign, ST201)."""
    assert _admits({"type": "string", "pattern": TIME_PATTERN}, value) is False


def _request_times(api_schema: dict):
    """Every date-time a request takes: query parameters and body fields."""
    for path, item in api_schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.get("format") == "date-time":
                    yield f"{method} {path} ?{parameter['name']}", schema
    for name, component in api_schema["components"]["schemas"].items():
        if not name.endswith("Request"):
            continue
        for field, schema in component.get("properties", {}).items():
            if schema.get("format") == "date-time":
                yield f"{name}.{field}", schema


def test_every_time_a_request_takes_states_the_bounds(api_schema):
    found = dict(_request_times(api_schema))
    assert len(found) >= 30  # 21 query parameters, 9 body fields
    unbounded = [
        where for where, s in found.items() if s.get("pattern") != TIME_PATTERN
    ]
    assert unbounded == []
    # Answers keep their times unpatterned (what is stored is printed).
    for name, component in api_schema["components"]["schemas"].items():
        if name.endswith("Request"):
            continue
        for field, schema in component.get("properties", {}).items():
            assert "pattern" not in schema or schema.get("format") != "date-time", (
                name,
                field,
            )


def assert_refused_naming(admin, path, given, parameter, outsides) -> None:
    """Each time of ``outsides`` as ``parameter`` is a 400 naming it alone."""
    for outside in outsides:
        response = admin.get(path, {**given, parameter: outside})
        body = assert_envelope(response, 400, "validation_error")
        assert list(body["details"]) == [parameter], body


@pytest.mark.parametrize(
    ("path", "parameter", "given"),
    [
        ("/api/lines/line-a/oee/", "to", {"from": "2099-12-30T00:00:00Z"}),
        ("/api/scada/readings/", "to", {}),
        ("/api/lims/results/", "to", {}),
        ("/api/alarms/", "to", {}),
        ("/api/audit/", "to", {}),
        ("/api/logs/", "to", {}),
        ("/api/dashboard/trends/", "to", {"metric": trends.METRICS[0]}),
    ],
)
def test_a_time_filter_takes_the_last_instant_and_refuses_2100(
    admin, path, parameter, given
):
    make_line()
    if "oee" not in path:  # its window ends before now: a rule against the clock
        inside = admin.get(path, {**given, parameter: "2099-12-31T23:59:59Z"})
        assert inside.status_code == 200, inside.content
    assert_refused_naming(
        admin,
        path,
        given,
        parameter,
        ("2100-01-01T00:00:00Z", "2099-12-31T20:00:00-05:00"),
    )


@pytest.mark.parametrize(
    ("path", "parameter", "given"),
    [
        ("/api/lines/line-a/oee/", "from", {"to": "2000-01-02T00:00:00Z"}),
        ("/api/scada/readings/", "from", {}),
        ("/api/lims/results/", "from", {}),
    ],
)
def test_a_time_filter_takes_the_first_instant_and_refuses_1999(
    admin, path, parameter, given
):
    make_line()
    inside = admin.get(path, {**given, parameter: "2000-01-01T00:00:00-05:00"})
    assert inside.status_code == 200, inside.content
    assert_refused_naming(
        admin,
        path,
        given,
        parameter,
        ("1999-12-31T23:59:59Z", "2000-01-01T10:00:00+05:30"),
    )


def test_a_body_time_on_the_first_day_with_a_positive_offset_is_refused(admin):
    body = copy.deepcopy(REGISTER)
    body["manufacturedAt"] = "2000-01-01T10:00:00+05:30"
    response = admin.post("/api/passports/", body, format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert error["details"] == {
        "manufacturedAt": [
            "On 2000-01-01 give the time with Z or a negative offset "
            "(never before 2000-01-01 UTC)."
        ]
    }
    body["manufacturedAt"] = "2000-01-01T00:00:00-05:00"
    assert admin.post("/api/passports/", body, format="json").status_code == 201


# --- the attribute checks the schema states since the campaign of 2026-12-05 ---


def _first(schema: dict) -> dict:
    """A property's own schema, without the "not given" alternatives."""
    return schema.get("anyOf", [schema])[0]


@pytest.mark.parametrize(
    "path", ["/api/passports/", "/api/passports/{identifier}/second-life/"]
)
def test_the_schema_says_an_attributes_link_names_and_stages(api_schema, path):
    from passports import attributes

    properties = _body(api_schema, path)["properties"]
    link = {k: v for k, v in _first(properties["testReport"]).items() if k != "format"}
    for value in ("https://example.com/r.pdf", "HTTP://x"):
        assert _admits(link, value) is attributes.is_url(value) is True, value
    # "httPS://yBaX\x18": taken, and invalid by the schema's ``format: uri``
    # (the CI fuzz as admin); a link is now what RFC 3986 writes.
    for value in (
        "ftp://x",
        "http://x y",
        "http://.x",
        "http://x\u00a0",
        "httPS://yBaX\x18",
    ):
        assert _admits(link, value) is attributes.is_url(value) is False, value
    names = _first(properties["sparePartSources"])
    assert _admits(names, ["Cell module", "BMS board"])
    for value in (["x", "x"], [" x"], ["a\u0011b"], ["x\u3000"]):
        assert not _admits(names, value), value
        assert not attributes.is_names(value), value
    labels = {**_first(properties["labels"]), "items": {"type": "string"}}
    assert _admits(labels, ["ce", "lead"])
    assert not _admits(labels, ["ce", "ce"])
    stages = _first(properties["carbonFootprintPerStage"])
    every = dict.fromkeys(attributes.CARBON_STAGES, 1.5)
    assert _admits(stages, every)
    assert attributes.is_stage_map(every)
    for value in (
        {**every, "other": 1},
        {"distribution": 1},
        {**every, "distribution": -1},
    ):
        assert not _admits(stages, value), value
        assert not attributes.is_stage_map(value), value


def test_the_server_takes_an_attribute_link_as_the_schema_says(admin):
    body = {**REGISTER, "testReport": "ftp://reports.example.com/r.pdf"}
    error = assert_envelope(
        admin.post("/api/passports/", body, format="json"), 400, "validation_error"
    )
    assert list(error["details"]) == ["testReport"]
    body = {**REGISTER, "testReport": "https://reports.example.com/r.pdf"}
    assert admin.post("/api/passports/", body, format="json").status_code == 201


@pytest.mark.parametrize(
    "path", ["/api/passports/", "/api/passports/{identifier}/second-life/"]
)
def test_the_schema_says_a_gtins_format_as_the_server_reads_it(api_schema, path):
    """``{"gtin": "0"}`` was schema-valid and a 400 "A GTIN has 8, 12, 13 or 14
    digits". The format is stated; the check digit stays the server's 400."""
    from passports import gs1

    gtin = _first(_body(api_schema, path)["properties"]["gtin"])
    for value in ("12345670", "400 638 133 3931", "\u300004006381333931"):
        assert _admits(gtin, value), value
        assert gs1.gtin_normalize(value)
    for value in (
        "0",
        "1234567",
        "123456789",
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0660",
        "1234-5670",
    ):
        assert not _admits(gtin, value), value
        with pytest.raises(gs1.GS1Error):
            gs1.gtin_normalize(value)
