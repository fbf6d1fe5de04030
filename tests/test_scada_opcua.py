"""The OPC UA connector and the readings service against a real asyncua server
started by the test (tests/support_opcua.py): browse, batched polls (the Read
service calls the server received are counted), subscriptions, status codes as
quality, source timestamps, cumulative counters as lines' increments (reaching
OEE), state tags moving a station, user/password, and what a refused batch
leaves behind (nothing).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from elog.models import AuditRecord
from lines import oee
from lines import selectors as line_selectors
from lines.models import MachineReading
from scada import readings
from scada.connectors.base import connector_for
from scada.connectors.opcua import OpcUaConnector
from scada.models import (
    AlarmEvent,
    AlertRule,
    CommState,
    Connector,
    ScadaReading,
    Tag,
    TagKind,
)
from tests import support_opcua
from tests.factories_lines import machine, make_line
from tests.support import WAIT_SECONDS

make_opcua_server = support_opcua.make_opcua_server
opcua_server = support_opcua.opcua_server
shared_opcua_server = support_opcua.shared_opcua_server

pytestmark = pytest.mark.django_db


def make_connector(server, **settings) -> Connector:
    return Connector.objects.create(
        name="Line 1 PLC", kind="opcua", endpoint=server.endpoint, settings=settings
    )


def map_tags(connector: Connector, ids: dict[str, str], **extra) -> dict[str, Tag]:
    return {
        name: Tag.objects.create(
            connector=connector,
            node_id=node_id,
            tag_name=f"line1.{name.lower()}",
            **extra.get(name, {}),
        )
        for name, node_id in ids.items()
    }


def poll(connector: Connector, actor=None) -> dict:
    return readings.connector_poll(connector_id=connector.pk, actor=actor)


def stored() -> dict[str, list]:
    rows: dict[str, list] = {}
    for reading in ScadaReading.objects.order_by("timestamp", "id"):
        value = reading.value if reading.value is not None else reading.value_text
        value = None if value == "" else value
        rows.setdefault(reading.tag_name, []).append((value, reading.quality))
    return rows


# --- browse -------------------------------------------------------------------


def test_browse_lists_the_plant_variables_with_paths_and_types(opcua_server):
    ids = opcua_server.add_variables(
        "Line1", {"Temp": 21.5, "GoodCount": 0, "State": "idle", "Ok": True}
    )
    opcua_server.add_variables("Line2", {"Pressure": 1.2})
    connector = make_connector(opcua_server)
    Tag.objects.create(connector=connector, node_id=ids["Temp"], tag_name="l1.temp")

    nodes = readings.connector_browse(connector_id=connector.pk, actor=None)

    assert sorted(nodes, key=lambda n: n["node_id"]) == [
        {
            "node_id": "ns=2;s=Line1.GoodCount",
            "browse_path": "Objects/Line1/GoodCount",
            "data_type": "Int64",
            "tag_name": None,
        },
        {
            "node_id": "ns=2;s=Line1.Ok",
            "browse_path": "Objects/Line1/Ok",
            "data_type": "Boolean",
            "tag_name": None,
        },
        {
            "node_id": "ns=2;s=Line1.State",
            "browse_path": "Objects/Line1/State",
            "data_type": "String",
            "tag_name": None,
        },
        {
            "node_id": "ns=2;s=Line1.Temp",
            "browse_path": "Objects/Line1/Temp",
            "data_type": "Double",
            "tag_name": "l1.temp",
        },
        {
            "node_id": "ns=2;s=Line2.Pressure",
            "browse_path": "Objects/Line2/Pressure",
            "data_type": "Double",
            "tag_name": None,
        },
    ]


def test_browse_stops_at_the_limit(opcua_server):
    opcua_server.add_variables("Line1", {f"V{i:02d}": float(i) for i in range(30)})
    connector = make_connector(opcua_server)
    nodes = connector_for(connector).browse_nodes(limit=7)
    assert len(nodes) == 7


# --- polling ------------------------------------------------------------------


def test_poll_reads_every_tag_in_batched_read_calls(opcua_server):
    ids = opcua_server.add_variables(
        "Line1", {f"V{i:02d}": float(i) for i in range(25)}
    )
    connector = make_connector(opcua_server, max_nodes_per_read=10)
    map_tags(connector, ids, V03={"unit": "bar"})
    opcua_server.read_requests.clear()

    result = poll(connector)

    # Three Read service calls (10 + 10 + 5 nodes), never one per node.
    assert sorted(opcua_server.read_requests) == [5, 10, 10]
    assert result == {
        "connector": connector.pk,
        "readings_stored": 25,
        "duplicates": 0,
        "alarms_raised": 0,
    }
    rows = stored()
    assert rows["line1.v07"] == [(7.0, "good")]
    assert ScadaReading.objects.get(tag_name="line1.v03").unit == "bar"
    connector.refresh_from_db()
    assert connector.comm_state == CommState.OK
    assert connector.last_ok_at is not None
    assert connector.last_error == ""


def test_a_second_poll_of_unchanged_values_stores_nothing_twice(opcua_server):
    ids = opcua_server.add_variables("Line1", {"A": 1.0, "B": 2.0})
    connector = make_connector(opcua_server)
    map_tags(connector, ids)
    assert poll(connector)["readings_stored"] == 2
    audits = AuditRecord.objects.filter(action="scada.readings_stored").count()

    again = poll(connector)

    # Same source timestamps: the values are repeats.
    assert (again["readings_stored"], again["duplicates"]) == (0, 2)
    assert ScadaReading.objects.count() == 2
    assert AuditRecord.objects.filter(action="scada.readings_stored").count() == audits


def test_disabled_tags_are_not_read(opcua_server):
    ids = opcua_server.add_variables("Line1", {"A": 1.0, "B": 2.0})
    connector = make_connector(opcua_server)
    tags = map_tags(connector, ids)
    Tag.objects.filter(pk=tags["B"].pk).update(enabled=False)
    opcua_server.read_requests.clear()
    poll(connector)
    assert opcua_server.read_requests == [1]
    assert list(stored()) == ["line1.a"]


def test_status_codes_become_quality_and_the_source_time_is_kept(opcua_server):
    ids = opcua_server.add_variables(
        "Line1", {"Good": 1.5, "Uncertain": 2.5, "Bad": 3.5, "Text": "ok"}
    )
    source = datetime(2026, 3, 2, 8, 0, 5, tzinfo=UTC)
    opcua_server.set_value(
        ids["Uncertain"],
        2.5,
        status="UncertainLastUsableValue",
        source_timestamp=source,
    )
    opcua_server.set_value(ids["Bad"], 3.5, status="BadSensorFailure")
    connector = make_connector(opcua_server)
    map_tags(connector, ids)
    map_tags(connector, {"Missing": "ns=2;s=Line1.NoSuchNode"})

    poll(connector)

    assert stored() == {
        "line1.good": [(1.5, "good")],
        "line1.uncertain": [(2.5, "uncertain")],
        "line1.bad": [(None, "bad")],
        "line1.text": [("ok", "good")],
        "line1.missing": [(None, "bad")],
    }
    assert ScadaReading.objects.get(tag_name="line1.uncertain").timestamp == source


def test_normalize_gives_the_contract_shape(opcua_server):
    ids = opcua_server.add_variables("Line1", {"On": True})
    source = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    opcua_server.set_value(ids["On"], True, source_timestamp=source)
    connector = make_connector(opcua_server)
    tag = Tag(connector=connector, node_id=ids["On"], tag_name="l1.on", unit="-")
    client = OpcUaConnector(connector)
    assert client.normalize(client.fetch_data(tags=[tag])) == [
        {
            "timestamp": source,
            "tag_name": "l1.on",
            "value": 1.0,
            "unit": "-",
            "quality": "good",
            "alarm_state": "normal",
        }
    ]


def test_a_server_that_is_gone_makes_poll_a_503_and_the_link_lost(opcua_server):
    ids = opcua_server.add_variables("Line1", {"A": 1.0})
    connector = make_connector(opcua_server, timeout_s=1)
    map_tags(connector, ids)
    opcua_server.stop()
    from bpmos.errors import DependencyUnavailable

    with pytest.raises(DependencyUnavailable) as refused:
        poll(connector)
    assert refused.value.message.startswith(
        f"Cannot reach the OPC UA server at {opcua_server.endpoint}"
    )
    connector.refresh_from_db()
    assert connector.comm_state == CommState.LOST
    assert connector.last_error == refused.value.message
    assert ScadaReading.objects.count() == 0


# --- test_connection and credentials ------------------------------------------


def test_test_connection_says_why_it_failed(opcua_server):
    connector = make_connector(opcua_server)
    assert connector_for(connector).test_connection() == (True, None)
    opcua_server.stop()
    ok, error = connector_for(connector).test_connection()
    assert ok is False
    assert error.startswith(f"Cannot reach the OPC UA server at {connector.endpoint}")


def test_user_and_password_open_a_session_and_a_wrong_password_is_refused(
    make_opcua_server,
):
    server = make_opcua_server(users={"bpmos": "s3cret"})
    connector = make_connector(server)
    connector.credentials = {"username": "bpmos", "password": "s3cret"}
    assert connector_for(connector).test_connection() == (True, None)

    connector.credentials = {"username": "bpmos", "password": "wrong"}
    ok, error = connector_for(connector).test_connection()
    assert ok is False
    assert error.startswith(
        f"The OPC UA server at {server.endpoint} refused the session: Bad"
    )

    connector.credentials = {}
    ok, error = connector_for(connector).test_connection()
    assert ok is False
    assert "refused the session" in error or "Cannot open a session" in error


def test_connector_test_records_the_outcome(opcua_server, make_user):
    connector = make_connector(opcua_server)
    boss = make_user("supervisor")
    result = readings.connector_test(connector_id=connector.pk, actor=boss)
    assert (result["ok"], result["error"], result["connector"]) == (
        True,
        None,
        connector.pk,
    )
    assert isinstance(result["latency_ms"], int)
    record = AuditRecord.objects.get(action="scada.connector_tested")
    assert record.actor_id == boss.pk
    assert record.after["ok"] is True


# --- subscriptions ------------------------------------------------------------


def test_subscription_delivers_each_publish_as_a_list_and_the_changes_store(
    opcua_server,
):
    ids = opcua_server.add_variables("Line1", {"A": 1.0, "B": 2.0, "C": 3.0})
    connector = make_connector(opcua_server)
    tags = list(map_tags(connector, ids).values())
    client = OpcUaConnector(connector)
    batches: list[list] = []

    async def follow():
        await client.connect()
        try:
            await client.subscribe(tags, batches.append, publishing_interval_ms=50)
            await _wait_for(lambda: sum(map(len, batches)) >= 3)
            opcua_server.set_values({ids["A"]: 10.0, ids["C"]: 30.0})
            await _wait_for(lambda: sum(map(len, batches)) >= 5)
            await client.unsubscribe()
        finally:
            await client.disconnect()

    asyncio.run(asyncio.wait_for(follow(), WAIT_SECONDS))

    # The initial values of all three, then the two changes.
    assert sorted(raw.tag_name for raw in batches[0]) == [
        "line1.a",
        "line1.b",
        "line1.c",
    ]
    changes = [raw for batch in batches[1:] for raw in batch]
    assert sorted((r.tag_name, r.data_value.Value.Value) for r in changes) == [
        ("line1.a", 10.0),
        ("line1.c", 30.0),
    ]
    for batch in batches:
        readings.readings_store(
            connector_id=connector.pk, readings=client.normalize(batch)
        )
    assert stored() == {
        "line1.a": [(1.0, "good"), (10.0, "good")],
        "line1.b": [(2.0, "good")],
        "line1.c": [(3.0, "good"), (30.0, "good")],
    }


async def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the subscription delivered nothing in time")
        await asyncio.sleep(0.02)


def test_a_node_the_server_does_not_know_is_delivered_once_as_bad(opcua_server):
    ids = opcua_server.add_variables("Line1", {"A": 1.0})
    connector = make_connector(opcua_server)
    tags = list(map_tags(connector, {**ids, "Gone": "ns=2;s=Line1.Gone"}).values())
    client = OpcUaConnector(connector)
    batches: list[list] = []

    async def follow():
        await client.connect()
        try:
            await client.subscribe(tags, batches.append, publishing_interval_ms=50)
            await _wait_for(lambda: sum(map(len, batches)) >= 2)
        finally:
            await client.disconnect()

    asyncio.run(asyncio.wait_for(follow(), WAIT_SECONDS))
    normalized = [
        (r["tag_name"], r["value"], r["quality"])
        for batch in batches
        for r in client.normalize(batch)
    ]
    assert sorted(normalized) == [("line1.a", 1.0, "good"), ("line1.gone", None, "bad")]


# --- machine tags into lines --------------------------------------------------


@pytest.fixture
def plant():
    line = make_line()
    return line, machine(line, "st-01"), machine(line, "st-02")


def test_cumulative_counters_reach_lines_as_increments_and_oee(opcua_server, plant):
    line, weld, _ = plant
    ids = opcua_server.add_variables("Line1", {"Good": 0, "Reject": 0})
    connector = make_connector(opcua_server)
    map_tags(
        connector,
        ids,
        Good={"machine": weld, "kind": TagKind.GOOD_COUNT, "unit": "pcs"},
        Reject={"machine": weld, "kind": TagKind.REJECT_COUNT},
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    # (good, reject) counters over time: 1000 (first value: the baseline),
    # 1012, 1030, then the PLC resets and counts 5 again.
    for minute, good, reject in [
        (0, 1000, 40),
        (1, 1012, 41),
        (2, 1030, 41),
        (3, 5, 2),
    ]:
        at = start + timedelta(minutes=minute)
        opcua_server.set_value(ids["Good"], good, source_timestamp=at)
        opcua_server.set_value(ids["Reject"], reject, source_timestamp=at)
        poll(connector)
    poll(connector)  # nothing new: nothing counted twice

    sent = list(
        MachineReading.objects.filter(machine=weld)
        .order_by("tag", "ts")
        .values_list("tag", "value", "unit")
    )
    assert sent == [
        ("good_count", 0.0, "pcs"),
        ("good_count", 12.0, "pcs"),
        ("good_count", 18.0, "pcs"),
        ("good_count", 5.0, "pcs"),
        ("reject_count", 0.0, ""),
        ("reject_count", 1.0, ""),
        ("reject_count", 0.0, ""),
        ("reject_count", 2.0, ""),
    ]
    result = oee.line_oee(line, start, start + timedelta(hours=1), hourly=False)
    assert (result.line.good, result.line.reject) == (35, 3)


def test_a_counter_older_than_the_newest_is_kept_but_not_counted(opcua_server, plant):
    _, weld, _ = plant
    ids = opcua_server.add_variables("Line1", {"Good": 0})
    connector = make_connector(opcua_server)
    map_tags(connector, ids, Good={"machine": weld, "kind": TagKind.GOOD_COUNT})
    now = datetime.now(UTC).replace(microsecond=0)
    opcua_server.set_value(
        ids["Good"], 100, source_timestamp=now - timedelta(minutes=5)
    )
    poll(connector)
    opcua_server.set_value(ids["Good"], 90, source_timestamp=now - timedelta(minutes=9))
    poll(connector)
    assert ScadaReading.objects.filter(tag_name="line1.good").count() == 2
    assert list(
        MachineReading.objects.filter(machine=weld).values_list("value", flat=True)
    ) == [0.0]


def test_a_state_tag_moves_its_machine_and_station(opcua_server, plant):
    line, _, weld = plant
    ids = opcua_server.add_variables("Line1", {"WeldState": 1, "LoadState": "idle"})
    connector = make_connector(opcua_server)
    map_tags(
        connector,
        ids,
        WeldState={"machine": weld, "kind": TagKind.STATE},
        LoadState={"machine": machine(line, "st-01"), "kind": TagKind.STATE},
    )
    now = datetime.now(UTC)
    opcua_server.set_value(
        ids["WeldState"], 1, source_timestamp=now - timedelta(seconds=20)
    )
    poll(connector)
    weld.refresh_from_db()
    assert weld.status == "running"

    # 2 is "blocked" in the default state codes; text states are taken as they come.
    opcua_server.set_value(
        ids["WeldState"], 2, source_timestamp=now - timedelta(seconds=10)
    )
    opcua_server.set_value(ids["LoadState"], "Running")  # now
    poll(connector)

    weld.refresh_from_db()
    assert weld.status == "blocked"
    stations = {s.id: s.state for s in line_selectors.line_station_list(slug=line.slug)}
    assert stations == {"st-01": "Running", "st-02": "Blocked"}


def test_state_codes_come_from_the_connector_settings(opcua_server, plant):
    _, weld, _ = plant
    ids = opcua_server.add_variables("Line1", {"State": 0})
    connector = make_connector(
        opcua_server, state_codes={"7": "maintenance", "8": "running"}
    )
    map_tags(connector, ids, State={"machine": weld, "kind": TagKind.STATE})
    opcua_server.set_value(ids["State"], 7)
    poll(connector)
    weld.refresh_from_db()
    assert weld.status == "maintenance"
    # A code the mapping does not know is stored here, and not sent to lines.
    opcua_server.set_value(ids["State"], 0)
    poll(connector)
    weld.refresh_from_db()
    assert weld.status == "maintenance"
    assert ScadaReading.objects.filter(tag_name="line1.state").count() == 2


# --- readings_store itself ----------------------------------------------------


@pytest.fixture
def connector(db):
    return Connector.objects.create(
        name="Offline", kind="opcua", endpoint="opc.tcp://127.0.0.1:4840"
    )


def row(tag: str, ts: datetime, value, **extra) -> dict:
    return {
        "timestamp": ts,
        "tag_name": tag,
        "value": value,
        "unit": "",
        "quality": "good",
        "alarm_state": "normal",
        **extra,
    }


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_store_skips_repeats_in_the_batch_and_already_stored(connector):
    first = readings.readings_store(
        connector_id=connector.pk,
        readings=[row("a", T0, 1.0), row("a", T0, 1.0), row("b", T0, "text")],
    )
    assert first == {"stored": 2, "duplicates": 1, "alarms_raised": 0}
    again = readings.readings_store(
        connector_id=connector.pk,
        readings=[row("a", T0, 1.0), row("a", T0 + timedelta(seconds=1), 2.0)],
    )
    assert again == {"stored": 1, "duplicates": 1, "alarms_raised": 0}
    assert stored() == {"a": [(1.0, "good"), (2.0, "good")], "b": [("text", "good")]}
    records = AuditRecord.objects.filter(action="scada.readings_stored")
    assert [r.after["stored"] for r in records.order_by("seq")] == [2, 1]


def test_a_bad_reading_refuses_the_whole_batch(connector):
    from bpmos.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        readings.readings_store(
            connector_id=connector.pk,
            readings=[row("a", T0, 1.0), row("b", T0, 1.0, quality="excellent")],
        )
    assert refused.value.details == {
        "rows": {"1": {"quality": ["One of ['bad', 'good', 'uncertain']."]}}
    }
    assert ScadaReading.objects.count() == 0
    assert not AuditRecord.objects.filter(action="scada.readings_stored").exists()


def test_alert_rules_run_over_the_new_readings_only(connector):
    tag = Tag.objects.create(connector=connector, node_id="ns=2;s=T", tag_name="t")
    AlertRule.objects.create(name="T high", tag=tag, high_limit=50, severity="high")
    first = readings.readings_store(
        connector_id=connector.pk, readings=[row("t", T0, 20.0)]
    )
    assert first == {"stored": 1, "duplicates": 0, "alarms_raised": 0}
    result = readings.readings_store(
        connector_id=connector.pk,
        readings=[row("t", T0, 20.0), row("t", T0 + timedelta(seconds=1), 80.0)],
    )
    assert result == {"stored": 1, "duplicates": 1, "alarms_raised": 1}
    alarm = AlarmEvent.objects.get()
    assert (alarm.tag_name, alarm.value, alarm.status) == ("t", 80.0, "unack_active")
    # A repeat of the reading in alarm raises nothing again.
    again = readings.readings_store(
        connector_id=connector.pk,
        readings=[row("t", T0 + timedelta(seconds=1), 80.0)],
    )
    assert again == {"stored": 0, "duplicates": 1, "alarms_raised": 0}
    assert AlarmEvent.objects.count() == 1


# --- security policy and certificates ---------------------------------------------


@pytest.fixture
def certificates(tmp_path):
    """A self-signed server certificate and a client one (DER and PEM key)."""
    import socket

    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    host = socket.gethostname()
    files = {}
    for role, uri, use in [
        ("server", "urn:freeopcua:python:server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", "urn:bpmos:client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ]:
        key, cert = tmp_path / f"{role}-key.pem", tmp_path / f"{role}.der"
        asyncio.run(
            setup_self_signed_certificate(
                key, cert, uri, host, [use], {"commonName": f"bpmos {role}"}
            )
        )
        files[role] = (str(cert), str(key))
    return files


def test_a_server_that_demands_encryption_takes_the_configured_certificate(
    make_opcua_server, certificates
):
    server_cert, server_key = certificates["server"]
    server = make_opcua_server(
        security="Basic256Sha256_SignAndEncrypt",
        certificate=server_cert,
        private_key=server_key,
    )
    ids = server.add_variables("Line1", {"Temp": 21.5})
    client_cert, client_key = certificates["client"]
    connector = make_connector(
        server,
        security_policy="Basic256Sha256",
        security_mode="SignAndEncrypt",
        certificate_path=client_cert,
        private_key_path=client_key,
    )
    map_tags(connector, ids)
    assert connector_for(connector).test_connection() == (True, None)
    assert poll(connector)["readings_stored"] == 1

    plain = Connector(name="plain", kind="opcua", endpoint=server.endpoint)
    ok, error = connector_for(plain).test_connection()
    assert ok is False
    # The server offers no unencrypted endpoint: the session is not opened.
    assert error.startswith(
        f"Cannot open a session with the OPC UA server at {server.endpoint}: "
        "UaError: No matching endpoints"
    )

    connector.settings = {"security_policy": "Basic256Sha256"}
    assert connector_for(connector).test_connection() == (
        False,
        "Security policy Basic256Sha256 needs certificate_path and private_key_path.",
    )
