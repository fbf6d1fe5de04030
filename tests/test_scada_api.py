"""The connectors, tags and readings API and the contract's test and poll:
CRUD with its validation (400 in the envelope, nothing changed), credentials
that are never echoed nor audited, who may do what, and the readings filters.
Test, poll and browse run against a real asyncua server (tests/support_opcua.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from elog.models import AuditRecord
from scada.models import Connector, ScadaReading, Tag
from tests import support_opcua
from tests.conftest import api_as as api
from tests.factories_lines import machine, make_line
from tests.support import assert_envelope

opcua_server = support_opcua.opcua_server
shared_opcua_server = support_opcua.shared_opcua_server
make_opcua_server = support_opcua.make_opcua_server

pytestmark = pytest.mark.django_db

CONNECTOR_KEYS = {
    "id",
    "name",
    "kind",
    "endpoint",
    "enabled",
    "mode",
    "poll_interval_s",
    "settings",
    "has_credentials",
    "comm_state",
    "last_ok_at",
    "last_error",
    "created_at",
    "updated_at",
}
SECRET = "pl4nt-s3cret"


@pytest.fixture
def admin(make_user):
    return api(make_user("admin"))


def opcua_body(**extra) -> dict:
    return {
        "name": "Line 1 PLC",
        "kind": "opcua",
        "endpoint": "opc.tcp://plc-1.plant.local:4840/line1",
        **extra,
    }


def counts() -> dict[str, int]:
    return {
        "connectors": Connector.objects.count(),
        "tags": Tag.objects.count(),
        "audit": AuditRecord.objects.count(),
    }


# --- connectors: create, read, change, delete ---------------------------------


def test_admin_creates_a_connector_and_its_credentials_are_never_shown(admin):
    response = admin.post(
        "/api/scada/connectors",
        opcua_body(
            mode="subscribe",
            poll_interval_s=2,
            settings={"timeout_s": 3, "max_nodes_per_read": 500},
            credentials={"username": "bpmos", "password": SECRET},
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == CONNECTOR_KEYS
    assert body | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0,
        "name": "Line 1 PLC",
        "kind": "opcua",
        "endpoint": "opc.tcp://plc-1.plant.local:4840/line1",
        "enabled": True,
        "mode": "subscribe",
        "poll_interval_s": 2,
        "settings": {"timeout_s": 3, "max_nodes_per_read": 500},
        "has_credentials": True,
        "comm_state": "unknown",
        "last_ok_at": None,
        "last_error": "",
        "created_at": "",
        "updated_at": "",
    }
    connector = Connector.objects.get()
    assert connector.credentials == {"username": "bpmos", "password": SECRET}
    for url in ("/api/scada/connectors", f"/api/scada/connectors/{connector.pk}"):
        assert SECRET not in admin.get(url).content.decode()
    record = AuditRecord.objects.get(action="scada.connector_created")
    assert record.target_id == str(connector.pk)
    assert record.after["has_credentials"] is True
    assert SECRET not in json.dumps([record.before, record.after])


def test_changing_the_credentials_is_audited_without_them(admin):
    connector = Connector.objects.create(**opcua_body())
    response = admin.patch(
        f"/api/scada/connectors/{connector.pk}",
        {"credentials": {"username": "ops", "password": SECRET}, "enabled": False},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["has_credentials"] is True
    assert response.json()["enabled"] is False
    assert "credentials" not in response.json()
    record = AuditRecord.objects.get(action="scada.connector_changed")
    assert record.before == {"enabled": True, "has_credentials": False}
    assert record.after == {
        "enabled": False,
        "has_credentials": True,
        "credentials": "(changed)",
    }
    connector.refresh_from_db()
    assert connector.credentials == {"username": "ops", "password": SECRET}


def test_a_patch_that_changes_nothing_is_not_audited(admin):
    connector = Connector.objects.create(**opcua_body())
    before = counts()
    response = admin.patch(
        f"/api/scada/connectors/{connector.pk}", {"enabled": True}, format="json"
    )
    assert response.status_code == 200
    assert counts() == before


def test_deleting_a_connector_removes_its_tags_and_keeps_its_readings(admin):
    connector = Connector.objects.create(**opcua_body())
    Tag.objects.create(connector=connector, node_id="ns=2;s=A", tag_name="l1.a")
    ScadaReading.objects.create(
        connector=connector, tag_name="l1.a", timestamp=datetime.now(UTC), value=1
    )
    response = admin.delete(f"/api/scada/connectors/{connector.pk}")
    assert response.status_code == 204
    assert (Connector.objects.count(), Tag.objects.count()) == (0, 0)
    assert list(ScadaReading.objects.values_list("tag_name", "connector")) == [
        ("l1.a", None)
    ]
    record = AuditRecord.objects.get(action="scada.connector_deleted")
    assert (record.target_type, record.target_id) == (
        "scada.connector",
        str(connector.pk),
    )
    assert record.before["tags"] == ["l1.a"]
    assert_envelope(
        admin.delete(f"/api/scada/connectors/{connector.pk}"), 404, "not_found"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (opcua_body(endpoint="http://plc-1:4840"), "endpoint"),
        (opcua_body(endpoint="opc.tcp://"), "endpoint"),
        (opcua_body(kind="cmms"), "endpoint"),
        (
            opcua_body(kind="lims", endpoint="https://lims.local", mode="subscribe"),
            "mode",
        ),
        (opcua_body(settings={"securty_policy": "None"}), "settings"),
        (opcua_body(settings={"security_policy": "Basic128Rsa15"}), "settings"),
        (opcua_body(settings={"security_policy": "Basic256Sha256"}), "settings"),
        (opcua_body(settings={"timeout_s": 0}), "settings"),
        (opcua_body(settings={"state_codes": {"x": "running"}}), "settings"),
        (opcua_body(settings={"state_codes": {"1": "sleeping"}}), "settings"),
        (opcua_body(credentials={"token": "abc"}), "credentials"),
        (opcua_body(credentials={"password": "abc"}), "credentials"),
        (opcua_body(poll_interval_s=0), "poll_interval_s"),
        (opcua_body(kind="plc"), "kind"),
        ({"kind": "opcua", "endpoint": "opc.tcp://a:1"}, "name"),
    ],
)
def test_a_bad_connector_is_refused_and_nothing_is_created(admin, body, field):
    before = counts()
    body = assert_envelope(
        admin.post("/api/scada/connectors", body, format="json"),
        400,
        "validation_error",
    )
    assert list(body["details"]) == [field]
    assert counts() == before


def test_names_are_unique_and_a_kind_never_changes(admin):
    connector = Connector.objects.create(**opcua_body())
    other = Connector.objects.create(
        name="CMMS", kind="cmms", endpoint="https://cmms.local/api"
    )
    before = counts()
    taken = admin.post(
        "/api/scada/connectors", opcua_body(name="line 1 plc"), format="json"
    )
    assert assert_envelope(taken, 400, "validation_error")["details"] == {
        "name": ["A connector with this name already exists."]
    }
    renamed = admin.patch(
        f"/api/scada/connectors/{other.pk}", {"name": "Line 1 PLC"}, format="json"
    )
    assert list(assert_envelope(renamed, 400, "validation_error")["details"]) == [
        "name"
    ]
    rekind = admin.patch(
        f"/api/scada/connectors/{connector.pk}",
        {"kind": "cmms", "endpoint": "https://x.local"},
        format="json",
    )
    assert list(assert_envelope(rekind, 400, "validation_error")["details"]) == ["kind"]
    assert counts() == before
    assert Connector.objects.get(pk=connector.pk).kind == "opcua"


# --- tags ---------------------------------------------------------------------


@pytest.fixture
def plc(db) -> Connector:
    return Connector.objects.create(**opcua_body())


def tag_body(connector: Connector, /, **extra) -> dict:
    return {
        "connector": connector.pk,
        "node_id": "ns=2;s=Line1.Temp",
        "tag_name": "line1.temp",
        "unit": "degC",
        **extra,
    }


def test_admin_maps_a_tag_to_a_machine_and_changes_it(admin, plc):
    line = make_line()
    weld = machine(line, "st-02")
    response = admin.post(
        "/api/scada/tags",
        tag_body(
            plc,
            node_id="ns=2;s=Line1.Good",
            tag_name="line1.good",
            unit="pcs",
            machine=weld.pk,
            kind="good_count",
            area="line-a",
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {
        k: body[k] for k in body if k not in {"id", "created_at", "updated_at"}
    } == {
        "connector": plc.pk,
        "node_id": "ns=2;s=Line1.Good",
        "tag_name": "line1.good",
        "unit": "pcs",
        "machine": weld.pk,
        "kind": "good_count",
        "area": "line-a",
        "enabled": True,
    }
    changed = admin.patch(
        f"/api/scada/tags/{body['id']}", {"enabled": False}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False
    record = AuditRecord.objects.get(action="scada.tag_changed")
    assert (record.before, record.after) == ({"enabled": True}, {"enabled": False})
    assert admin.delete(f"/api/scada/tags/{body['id']}").status_code == 204
    assert AuditRecord.objects.filter(action="scada.tag_deleted").count() == 1
    assert not Tag.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"tag_name": "line 1 temp"}, "tag_name"),
        ({"tag_name": "x" * 65}, "tag_name"),
        ({"node_id": "Line1.Temp;;"}, "node_id"),
        ({"kind": "state"}, "machine"),
        ({"kind": "pressure"}, "kind"),
        ({"machine": 999_999}, "machine"),
        ({"connector": 999_999}, "connector"),
    ],
)
def test_a_bad_tag_is_refused_and_nothing_is_created(admin, plc, extra, field):
    before = counts()
    response = admin.post("/api/scada/tags", tag_body(plc, **extra), format="json")
    assert list(assert_envelope(response, 400, "validation_error")["details"]) == [
        field
    ]
    assert counts() == before


def test_tags_are_unique_by_name_and_node_and_only_on_opcua(admin, plc):
    Tag.objects.create(connector=plc, node_id="ns=2;s=Line1.Temp", tag_name="t1")
    cmms = Connector.objects.create(
        name="CMMS", kind="cmms", endpoint="https://cmms.local"
    )
    before = counts()
    cases = [
        (tag_body(plc, tag_name="t1", node_id="ns=2;s=Other"), "tag_name"),
        (tag_body(plc, tag_name="t2"), "node_id"),
        (tag_body(cmms, tag_name="t3"), "connector"),
    ]
    for body, field in cases:
        response = admin.post("/api/scada/tags", body, format="json")
        assert list(assert_envelope(response, 400, "validation_error")["details"]) == [
            field
        ]
    assert counts() == before


# --- who may do what ----------------------------------------------------------


@pytest.mark.parametrize("role", ["supervisor", "plant-head", "operator", "auditor"])
def test_only_admins_configure(make_user, plc, role):
    client = api(make_user(role))
    before = counts()
    assert client.get("/api/scada/connectors").status_code == 200
    assert client.get("/api/scada/tags").status_code == 200
    assert client.get("/api/scada/readings").status_code == 200
    for response in (
        client.post("/api/scada/connectors", opcua_body(name="X"), format="json"),
        client.patch(
            f"/api/scada/connectors/{plc.pk}", {"enabled": False}, format="json"
        ),
        client.delete(f"/api/scada/connectors/{plc.pk}"),
        client.post("/api/scada/tags", tag_body(plc), format="json"),
    ):
        assert_envelope(response, 403, "permission_denied")
    assert counts() == before


@pytest.mark.parametrize("role", ["operator", "planner", "auditor"])
def test_test_poll_and_browse_need_a_supervisor(make_user, plc, role):
    client = api(make_user(role))
    for path in ("/api/scada/test", "/api/scada/poll"):
        response = client.post(path, {"connector": plc.pk}, format="json")
        assert_envelope(response, 403, "permission_denied")
    response = client.post(f"/api/scada/connectors/{plc.pk}/browse", {}, format="json")
    assert_envelope(response, 403, "permission_denied")


def test_reading_needs_a_token():
    assert_envelope(APIClient().get("/api/scada/readings"), 401, "not_authenticated")


# --- test, poll and browse against a real server ------------------------------


@pytest.fixture
def supervisor(make_user):
    return api(make_user("supervisor"))


def test_test_answers_200_either_way(supervisor, opcua_server):
    connector = Connector.objects.create(**opcua_body(endpoint=opcua_server.endpoint))
    ok = supervisor.post("/api/scada/test", {"connector": connector.pk}, format="json")
    assert ok.status_code == 200
    assert {k: v for k, v in ok.json().items() if k != "latency_ms"} == {
        "ok": True,
        "error": None,
        "connector": connector.pk,
    }
    opcua_server.stop()
    failed = supervisor.post(
        "/api/scada/test", {"connector": connector.pk}, format="json"
    )
    assert failed.status_code == 200
    assert failed.json()["ok"] is False
    assert failed.json()["error"].startswith("Cannot reach the OPC UA server")
    detail = supervisor.get(f"/api/scada/connectors/{connector.pk}").json()
    assert (detail["comm_state"], detail["last_error"]) == (
        "lost",
        failed.json()["error"],
    )


def test_test_and_poll_refuse_what_is_not_a_connector(supervisor, plc):
    for path in ("/api/scada/test", "/api/scada/poll"):
        assert_envelope(
            supervisor.post(path, {"connector": 999_999}, format="json"),
            404,
            "not_found",
        )
        assert_envelope(
            supervisor.post(path, {"connector": "one"}, format="json"),
            400,
            "validation_error",
        )
        assert_envelope(
            supervisor.post(path, {}, format="json"), 400, "validation_error"
        )


def test_poll_stores_the_readings_and_answers_the_counts(supervisor, opcua_server):
    ids = opcua_server.add_variables("Line1", {"Temp": 21.5, "State": "running"})
    connector = Connector.objects.create(**opcua_body(endpoint=opcua_server.endpoint))
    for name, node_id in ids.items():
        Tag.objects.create(
            connector=connector, node_id=node_id, tag_name=f"l1.{name.lower()}"
        )
    response = supervisor.post(
        "/api/scada/poll", {"connector": connector.pk}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "connector": connector.pk,
        "readings_stored": 2,
        "duplicates": 0,
        "alarms_raised": 0,
    }
    listed = supervisor.get("/api/scada/readings", {"connector": connector.pk}).json()
    assert sorted((r["tag_name"], r["value"]) for r in listed["results"]) == [
        ("l1.state", "running"),
        ("l1.temp", 21.5),
    ]


def test_poll_refuses_a_disabled_or_rest_connector_and_a_gone_server(
    supervisor, opcua_server
):
    connector = Connector.objects.create(
        **opcua_body(endpoint=opcua_server.endpoint, enabled=False)
    )
    body = {"connector": connector.pk}
    assert_envelope(
        supervisor.post("/api/scada/poll", body, format="json"),
        409,
        "connector_disabled",
    )
    cmms = Connector.objects.create(name="C", kind="cmms", endpoint="https://c.local")
    assert_envelope(
        supervisor.post("/api/scada/poll", {"connector": cmms.pk}, format="json"),
        400,
        "not_scada",
    )
    Connector.objects.filter(pk=connector.pk).update(enabled=True)
    opcua_server.stop()
    gone = assert_envelope(
        supervisor.post("/api/scada/poll", body, format="json"),
        503,
        "connector_unavailable",
    )
    assert gone["details"] == {"dependency": "connector", "connector": connector.pk}
    assert ScadaReading.objects.count() == 0


def test_browse_lists_the_server_variables(supervisor, opcua_server):
    opcua_server.add_variables("Press", {"Force": 12.5})
    connector = Connector.objects.create(**opcua_body(endpoint=opcua_server.endpoint))
    response = supervisor.post(
        f"/api/scada/connectors/{connector.pk}/browse", {}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json() == [
        {
            "node_id": "ns=2;s=Press.Force",
            "browse_path": "Objects/Press/Force",
            "data_type": "Double",
            "tag_name": None,
        }
    ]


# --- readings list ------------------------------------------------------------


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def history(plc):
    other = Connector.objects.create(
        name="Line 2 PLC", kind="opcua", endpoint="opc.tcp://plc-2:4840"
    )
    rows = [
        (plc, "l1.temp", T0, 20.5, "", "good"),
        (plc, "l1.temp", T0 + timedelta(minutes=1), 21.0, "", "uncertain"),
        (plc, "l1.state", T0 + timedelta(minutes=2), None, "blocked", "good"),
        (other, "l2.temp", T0 + timedelta(minutes=3), None, "", "bad"),
    ]
    for connector, name, ts, value, text, quality in rows:
        ScadaReading.objects.create(
            connector=connector,
            tag_name=name,
            timestamp=ts,
            value=value,
            value_text=text,
            unit="degC" if "temp" in name else "",
            quality=quality,
        )
    return plc, other


def pairs(response) -> list[tuple]:
    assert response.status_code == 200, response.json()
    return [(r["tag_name"], r["timestamp"]) for r in response.json()["results"]]


def test_readings_newest_first_in_the_contract_shape(make_user, history):
    client = api(make_user("auditor"))
    body = client.get("/api/scada/readings").json()
    assert body["count"] == 4
    assert body["results"][1] == {
        "id": body["results"][1]["id"],
        "timestamp": "2026-03-02T08:02:00Z",
        "tag_name": "l1.state",
        "value": "blocked",
        "unit": "",
        "quality": "good",
        "alarm_state": "normal",
        "connector": history[0].pk,
    }
    assert [r["value"] for r in body["results"]] == [None, "blocked", 21.0, 20.5]


def test_readings_filters(make_user, history):
    _, other = history
    client = api(make_user("operator"))
    assert pairs(client.get("/api/scada/readings", {"tag": "l1.temp"})) == [
        ("l1.temp", "2026-03-02T08:01:00Z"),
        ("l1.temp", "2026-03-02T08:00:00Z"),
    ]
    assert pairs(client.get("/api/scada/readings", {"tag": "l1.state,l2.temp"})) == [
        ("l2.temp", "2026-03-02T08:03:00Z"),
        ("l1.state", "2026-03-02T08:02:00Z"),
    ]
    assert pairs(client.get("/api/scada/readings", {"connector": other.pk})) == [
        ("l2.temp", "2026-03-02T08:03:00Z")
    ]
    window = {"from": "2026-03-02T08:01:00Z", "to": "2026-03-02T08:03:00Z"}
    assert pairs(client.get("/api/scada/readings", window)) == [
        ("l1.state", "2026-03-02T08:02:00Z"),
        ("l1.temp", "2026-03-02T08:01:00Z"),
    ]
    assert pairs(client.get("/api/scada/readings", {"quality": "uncertain"})) == [
        ("l1.temp", "2026-03-02T08:01:00Z")
    ]
    paged = client.get("/api/scada/readings", {"page_size": 3, "page": 2}).json()
    assert (paged["count"], len(paged["results"])) == (4, 1)


@pytest.mark.parametrize(
    "query",
    [{"from": "yesterday"}, {"to": "9999-12-31T00:00:00Z"}, {"connector": "x"}],
)
def test_bad_reading_filters_are_a_400(make_user, history, query):
    client = api(make_user("operator"))
    assert_envelope(client.get("/api/scada/readings", query), 400, "validation_error")


def test_the_readings_page_costs_a_fixed_number_of_queries(
    make_user, history, django_assert_num_queries
):
    client = api(make_user("operator"))
    with django_assert_num_queries(3):  # the user, the count, the page
        assert client.get("/api/scada/readings").status_code == 200
