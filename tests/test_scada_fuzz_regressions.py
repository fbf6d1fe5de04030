"""What a schema-driven fuzzer found in the alarms, CMMS and LIMS endpoints
(``/api/alerts/*``, ``/api/alarms*``, ``/api/work-orders/*``, ``/api/lims/*``),
each pinned through the test client: the schema describes what the server
takes, and what the schema calls the wrong type or an unknown value is a 400
in the envelope that changes nothing."""

from __future__ import annotations

import re

import httpx
import pytest

from elog.models import AuditRecord
from scada import configuration
from scada.models import AlarmState, AlertRule, Connector, MaintenanceWorkOrder, Tag
from tests.conftest import api_as as api
from tests.conftest import bearer
from tests.support import assert_envelope, daphne_server
from tests.test_scada_alarms import alarm_in, make_connector, make_rule, make_tag

pytestmark = pytest.mark.django_db

AREA = re.compile(r"^/api/(alerts|alarms|work-orders|lims)")
OPERATIONS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def admin(make_user):
    return api(make_user("admin", username="ada"))


@pytest.fixture
def tag(db):
    return make_tag(make_connector())


@pytest.fixture
def schema(admin):
    response = admin.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


# --- the schema ---


def test_every_path_parameter_is_in_its_path_template(schema):
    """The alarm and rule routes declared a ``pk`` path parameter besides the
    template's ``{id}``: a parameter no URL carries, which the fuzzer filled
    with text and the server never saw."""
    problems = []
    for path, item in schema["paths"].items():
        if not AREA.match(path):
            continue
        in_template = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            if method not in OPERATIONS:
                continue
            declared = {
                p["name"] for p in operation.get("parameters", []) if p["in"] == "path"
            }
            if declared != in_template:
                problems.append(f"{method} {path}: {sorted(declared)}")
    assert not problems, problems


def test_the_work_order_snapshot_is_declared_a_json_object(schema):
    """Declared as any JSON value, so a list was a "valid" body the server
    refused; it is an object in and out."""
    components = schema["components"]["schemas"]
    created = components["MaintenanceWorkOrderCreateRequest"]["properties"]
    shown = components["MaintenanceWorkOrder"]["properties"]
    assert created["scada_snapshot"]["type"] == "object"
    assert shown["scada_snapshot"]["type"] == "object"


# --- JSON bodies take the types the schema shows ---


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("low_limit", False),  # was a rule with a low limit of 0.0
        ("high_limit", True),  # was a high limit of 1.0
        ("high_limit", "80"),
        ("deadband", "1"),
        ("tag", "1"),
        ("on_delay_s", "5"),
        ("enabled", "yes"),
        ("create_work_order", 1),
    ],
)
def test_a_rule_with_a_value_of_the_wrong_type_is_400(admin, tag, field, value):
    body = {"name": "Cell temp high", "tag": tag.pk, "high_limit": 60, field: value}
    audits = AuditRecord.objects.count()
    response = admin.post("/api/alerts/rules", body, format="json")
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == [field]
    assert not AlertRule.objects.exists()
    assert AuditRecord.objects.count() == audits


def test_a_rule_patch_with_a_boolean_limit_is_400_and_changes_nothing(admin, tag):
    rule = make_rule(tag, low_limit=5.0)
    response = admin.patch(
        f"/api/alerts/rules/{rule.pk}", {"low_limit": False}, format="json"
    )
    assert_envelope(response, 400, "validation_error")
    rule.refresh_from_db()
    assert rule.low_limit == 5.0


def test_json_numbers_still_pass_as_numbers(admin, tag):
    body = {"name": "r", "tag": tag.pk, "high_limit": 60, "on_delay_s": 5.0}
    response = admin.post("/api/alerts/rules", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["on_delay_s"] == 5
    assert response.json()["high_limit"] == 60.0


def test_shelve_minutes_as_text_is_400(make_user):
    alarm = alarm_in(AlarmState.UNACK_ACTIVE)
    client = api(make_user("supervisor", username="sam"))
    response = client.post(
        f"/api/alarms/{alarm.pk}/shelve",
        {"minutes": "30", "reason": "sensor swap"},
        format="json",
    )
    assert_envelope(response, 400, "validation_error")
    alarm.refresh_from_db()
    assert alarm.status == AlarmState.UNACK_ACTIVE


def test_a_work_order_for_a_boolean_alarm_id_is_400(admin):
    body = {
        "asset_id": "PRESS-1",
        "asset_name": "Press 1",
        "description": "Check the press.",
        "priority": "high",
        "source_alarm_id": True,
    }
    response = admin.post("/api/work-orders/create", body, format="json")
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["source_alarm_id"]
    assert not MaintenanceWorkOrder.objects.exists()


def test_lims_fetch_of_a_boolean_connector_is_400(admin):
    response = admin.post("/api/lims/fetch", {"connector": True}, format="json")
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["connector"]


# --- query parameters ---


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/alerts/rules", "enabled"),
        ("/api/alarms", "active"),
        ("/api/alarms", "open"),
        ("/api/alarms/floods", "ongoing"),
        ("/api/lims/results", "passed"),
    ],
)
def test_a_boolean_filter_that_is_not_true_or_false_is_400(admin, url, param):
    """django-filter read ``?enabled=maybe`` as "not given" and answered the
    whole list."""
    response = admin.get(url, {param: "maybe"})
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == [param]


def test_boolean_filters_still_filter_and_empty_is_a_400(admin, tag):
    make_rule(tag, name="on")
    make_rule(tag, name="off", enabled=False)

    def names(query):
        response = admin.get("/api/alerts/rules", query)
        assert response.status_code == 200, response.json()
        return sorted(r["name"] for r in response.json()["results"])

    assert names({"enabled": "false"}) == ["off"]
    assert names({"enabled": "TRUE"}) == ["on"]
    assert names({"enabled": "0"}) == ["off"]
    # The schema declares no allowEmptyValue (tests/test_schema_fuzz_regressions.py).
    assert admin.get("/api/alerts/rules", {"enabled": ""}).status_code == 400


def test_a_chattering_period_that_ends_before_it_starts_is_400(admin):
    response = admin.get(
        "/api/alarms/chattering",
        {"since": "2026-12-03T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["since"]


def test_a_chattering_period_given_by_since_alone_ends_now(admin):
    response = admin.get("/api/alarms/chattering", {"since": "2026-01-01T00:00:00Z"})
    assert response.status_code == 200, response.json()
    assert response.json() == []


# --- actions that take no body ---

DEEP = "[" * 1200 + "]" * 1200


def test_alerts_process_with_a_malformed_body_is_400_and_runs_nothing(admin):
    """It ran the rules and answered 200 whatever the body held."""
    audits = AuditRecord.objects.count()
    response = admin.post("/api/alerts/process", DEEP, content_type="application/json")
    assert_envelope(response, 400, "parse_error")
    assert AuditRecord.objects.count() == audits


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ("acknowledge", AlarmState.UNACK_ACTIVE),
        ("unshelve", AlarmState.SHELVED),
        ("unsuppress", AlarmState.SUPPRESSED),
        ("return-to-service", AlarmState.OUT_OF_SERVICE),
    ],
)
def test_an_alarm_action_with_a_malformed_body_is_400_and_changes_nothing(
    admin, action, state
):
    alarm = alarm_in(state)
    response = admin.post(
        f"/api/alarms/{alarm.pk}/{action}", DEEP, content_type="application/json"
    )
    assert_envelope(response, 400, "parse_error")
    alarm.refresh_from_db()
    assert alarm.status == state


def test_an_alarm_action_without_a_body_still_acts(admin):
    alarm = alarm_in(AlarmState.UNACK_ACTIVE)
    response = admin.post(f"/api/alarms/{alarm.pk}/acknowledge")
    assert response.status_code == 200, response.json()
    assert response.json()["alarm_state"] == AlarmState.ACK_ACTIVE


def test_a_work_order_retry_with_a_malformed_body_is_400(admin):
    order = MaintenanceWorkOrder.objects.create(
        asset_id="PRESS-1",
        asset_name="Press 1",
        description="Check the press.",
        priority="high",
        delivery_state="failed",
    )
    response = admin.post(
        f"/api/work-orders/maintenance/{order.pk}/retry",
        DEEP,
        content_type="application/json",
    )
    assert_envelope(response, 400, "parse_error")
    order.refresh_from_db()
    assert (order.delivery_state, order.attempts) == ("failed", 0)


# --- under daphne ---


@pytest.mark.django_db(transaction=True)
def test_a_multipart_body_twisted_cannot_parse_is_the_envelope_under_daphne(
    tmp_path, make_user
):
    """Twisted parsed every multipart POST for daphne (which never reads the
    result) and answered ``--boundary--`` alone with an empty 400 that never
    reached Django: no envelope, no request id. The body now reaches DRF."""
    headers = {
        **bearer(make_user("admin", username="ada")),
        "Content-Type": "multipart/form-data; boundary=abc",
    }
    with daphne_server(tmp_path / "daphne.log") as port:
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/lims/import/",
            content=b"--abc--\r\n",
            headers=headers,
            timeout=10,
        )
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["file"]


# --- connectors, tags and readings (/api/scada/*) ---

SCADA = re.compile(r"^/api/scada/")


@pytest.fixture
def plc(db):
    return make_connector()


def test_the_scada_routes_declare_one_integer_id_path_parameter(schema):
    """The connector and tag routes declared ``pk`` (an integer no URL
    carries) besides the template's ``{id}`` (a string): the fuzzer filled
    ``{id}`` with text, every call was a 404, and the routes went untested."""
    problems = []
    for path, item in schema["paths"].items():
        if not SCADA.match(path):
            continue
        in_template = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            if method not in OPERATIONS:
                continue
            declared = {
                p["name"]: p["schema"]["type"]
                for p in operation.get("parameters", [])
                if p["in"] == "path"
            }
            if declared != dict.fromkeys(in_template, "integer"):
                problems.append(f"{method} {path}: {declared}")
    assert not problems, problems


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enabled", "yes"),
        ("enabled", 1),
        ("poll_interval_s", "5"),
        ("poll_interval_s", True),
    ],
)
def test_a_connector_with_a_value_of_the_wrong_type_is_400(admin, field, value):
    body = {
        "name": "plc-9",
        "kind": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:4840",
        field: value,
    }
    audits = AuditRecord.objects.count()
    response = admin.post("/api/scada/connectors", body, format="json")
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == [field]
    assert not Connector.objects.exists()
    assert AuditRecord.objects.count() == audits


def test_a_connector_patch_with_a_text_flag_is_400_and_changes_nothing(admin, plc):
    response = admin.patch(
        f"/api/scada/connectors/{plc.pk}", {"enabled": "false"}, format="json"
    )
    assert_envelope(response, 400, "validation_error")
    plc.refresh_from_db()
    assert plc.enabled is True


def test_a_tag_with_a_numeric_flag_is_400(admin, plc):
    body = {"connector": plc.pk, "node_id": "ns=2;s=T", "tag_name": "t", "enabled": 0}
    response = admin.post("/api/scada/tags", body, format="json")
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["enabled"]
    assert not Tag.objects.exists()


@pytest.mark.parametrize("action", ["test", "poll"])
@pytest.mark.parametrize("value", [True, "1"])
def test_test_and_poll_of_a_connector_given_as_text_or_boolean_are_400(
    admin, plc, action, value
):
    response = admin.post(f"/api/scada/{action}", {"connector": value}, format="json")
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["connector"]


def test_a_browse_limit_as_text_is_400(admin, plc):
    response = admin.post(
        f"/api/scada/connectors/{plc.pk}/browse", {"limit": "10"}, format="json"
    )
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["limit"]


@pytest.mark.parametrize("url", ["/api/scada/connectors", "/api/scada/tags"])
def test_an_enabled_filter_that_is_not_true_or_false_is_400(admin, url):
    response = admin.get(url, {"enabled": "maybe"})
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["enabled"]


def test_the_enabled_filters_still_filter(admin, plc):
    off = make_connector("plc-off")
    off.enabled = False
    off.save()
    make_tag(plc, "on.tag")
    make_tag(plc, "off.tag", enabled=False)

    def names(url, key, query):
        response = admin.get(url, query)
        assert response.status_code == 200, response.json()
        return [row[key] for row in response.json()["results"]]

    assert names("/api/scada/connectors", "name", {"enabled": "false"}) == ["plc-off"]
    assert names("/api/scada/tags", "tag_name", {"enabled": "true"}) == ["on.tag"]
    assert admin.get("/api/scada/tags", {"enabled": ""}).status_code == 400


@pytest.mark.parametrize(
    ("url", "ordering"),
    [
        ("/api/scada/connectors", "nmae"),
        ("/api/scada/connectors", "name,endpoint"),
        ("/api/scada/tags", "-node_id"),
    ],
)
def test_an_unknown_ordering_is_400(admin, plc, url, ordering):
    """DRF dropped an ordering it did not know and answered in the default
    order, so a typo looked like a sort that worked."""
    response = admin.get(url, {"ordering": ordering})
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["ordering"]


def test_a_known_ordering_still_sorts(admin, plc):
    make_connector("plc-0")
    response = admin.get("/api/scada/connectors", {"ordering": "-name"})
    assert response.status_code == 200, response.json()
    assert [c["name"] for c in response.json()["results"]] == ["plc-1", "plc-0"]


def test_the_schema_shows_the_orderings_and_no_ignored_parameters(schema):
    """The readings list showed ``ordering`` and ``search`` parameters it
    never applied; the connectors and tags lists show their orderings."""
    params = {
        path: {
            p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]
        }
        for path in ("/api/scada/connectors/", "/api/scada/readings/")
    }
    assert "ordering" not in params["/api/scada/readings/"]
    assert "search" not in params["/api/scada/readings/"]
    ordering = params["/api/scada/connectors/"]["ordering"]
    names = ("name", "id", "kind", "updated_at")
    assert set(ordering["enum"]) == {*names, *(f"-{name}" for name in names)}


def test_the_schema_bounds_integer_filters_as_the_server_does(admin, schema):
    """``?connector=-2108910441498094338048`` was schema-valid (a bare
    ``integer``) and a 400 (beyond a 64-bit id); the bounds are in the schema."""
    params = {
        p["name"]: p["schema"]
        for p in schema["paths"]["/api/scada/tags/"]["get"]["parameters"]
    }
    assert (params["connector"]["minimum"], params["connector"]["maximum"]) == (
        -(2**63),
        2**63 - 1,
    )
    response = admin.get("/api/scada/tags", {"connector": str(2**63)})
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["connector"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "opc.tcp://127.0.0.1:4841/bpmos/",
        "opc.tcp://[::1]:4840",
        "opc.tcp://user@plc-1:4840",
        "https://cmms.plant.local/api?x=1",
        "http://u:p@lims:8080",
        "0",
        "opc.tcp://",
        "opc.tcp://plc 1:4840",
        "ftp://plc-1",
        "opc.tcp://plc-1:port",
    ],
)
def test_the_endpoint_pattern_in_the_schema_is_the_servers_rule(schema, endpoint):
    """The schema showed any text as an endpoint, so ``"0"`` was a valid body
    the server refused; its pattern now matches what the service takes for
    one kind or the other."""
    pattern = schema["components"]["schemas"]["ConnectorWriteRequest"]["properties"][
        "endpoint"
    ]["pattern"]
    taken = any(
        configuration.endpoint_problem(kind, endpoint) is None
        for kind in ("opcua", "cmms")
    )
    assert bool(re.match(pattern, endpoint)) == taken


@pytest.mark.parametrize("size", ["null", "0", "000", "-5", "ten", "5_0", "1.5"])
def test_a_page_size_that_is_not_a_positive_whole_number_is_400(admin, plc, size):
    """DRF read ``?page_size=null`` as "not given" and answered a page of 50."""
    response = admin.get("/api/scada/connectors", {"page_size": size})
    envelope = assert_envelope(response, 400, "validation_error")
    assert list(envelope["details"]) == ["page_size"]


def test_page_sizes_still_page_and_a_large_one_is_capped(admin, plc, schema):
    make_connector("plc-2")

    def page(query):
        response = admin.get("/api/scada/connectors", query)
        assert response.status_code == 200, response.json()
        return response.json()

    assert len(page({"page_size": "1"})["results"]) == 1
    assert page({"page_size": "1"})["next"] is not None
    assert len(page({"page_size": ""})["results"]) == 2
    assert len(page({"page_size": "100000"})["results"]) == 2
    assert len(page({"page_size": "100000000000000001"})["results"]) == 2
    assert len(page({"page_size": "9" * 5000})["results"]) == 2
    parameters = schema["paths"]["/api/scada/connectors/"]["get"]["parameters"]
    size = next(p for p in parameters if p["name"] == "page_size")
    assert size["schema"] == {"type": "integer", "minimum": 1}
    assert size["allowEmptyValue"] is True
    assert len(page({"page": ""})["results"]) == 2
