"""Interoperability: our OPC UA client (scada/connectors/opcua.py, asyncua) and
the collector against a server of another stack, open62541 (PyPI ``o6``, a
process of its own: tests/support_open62541.py). The connector's test,
browse and poll through the API, the four plain types (Double, Int32,
Boolean, String) under string and numeric node ids, status codes as quality,
source timestamps, user and password, Basic256Sha256, and the collector in
subscribe and poll mode through a server that stops and comes back.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from asyncua import ua

from lines.models import MachineReading
from scada import readings
from scada.connectors.base import connector_for
from scada.connectors.opcua import OpcUaConnector, queue_size
from scada.models import (
    AlarmEvent,
    CommState,
    Connector,
    ConnectorMode,
    ScadaReading,
    Tag,
    TagKind,
)
from tests.conftest import api_as
from tests.factories_lines import machine, make_line
from tests.scada_collector_support import (
    run_collector,
    wait_until,
)
from tests.support import assert_envelope
from tests.support_open62541 import open62541_server

__all__ = ["open62541_server", "run_collector"]  # fixtures

SOURCE_TIME = datetime(2026, 3, 2, 8, 0, 0, 123000, tzinfo=UTC)


def line1(server) -> dict[str, str]:
    """A PLC's variables of each plain type, string and numeric node ids."""
    ids = server.add_variables(
        "Line1",
        {"Temp": 21.5, "Running": True, "State": "running"},
    )
    ids["Count"] = server.add_variable(
        "Line1", "Count", 7, node_id="ns=2;i=1001", type="Int32"
    )
    return ids


def make_connector(server, **fields) -> Connector:
    return Connector.objects.create(
        name=fields.pop("name", "Line 1 PLC"),
        kind="opcua",
        endpoint=server.endpoint,
        settings=fields.pop("settings", {"timeout_s": 2}),
        **fields,
    )


def map_tags(connector: Connector, ids: dict[str, str]) -> dict[str, Tag]:
    return {
        name: Tag.objects.create(
            connector=connector, node_id=node_id, tag_name=f"line1.{name.lower()}"
        )
        for name, node_id in ids.items()
    }


def stored(tag_name: str) -> list[tuple]:
    """The tag's stored (value, quality), oldest first (text for text)."""
    return [
        (row.value if row.value is not None else row.value_text or None, row.quality)
        for row in ScadaReading.objects.filter(tag_name=tag_name).order_by(
            "timestamp", "id"
        )
    ]


def values(tag_name: str) -> list:
    return [value for value, _ in stored(tag_name)]


@pytest.fixture
def supervisor(make_user):
    return api_as(make_user("supervisor"))


# --- test, browse and poll through the API --------------------------------------------


@pytest.mark.django_db
def test_the_connector_test_opens_a_session_and_reports_a_gone_server(
    open62541_server, supervisor
):
    server = open62541_server()
    server.start()
    connector = make_connector(server)

    ok = supervisor.post("/api/scada/test", {"connector": connector.pk}, format="json")
    assert ok.status_code == 200
    assert (ok.json()["ok"], ok.json()["error"]) == (True, None)
    connector.refresh_from_db()
    assert connector.comm_state == CommState.OK

    server.stop()
    failed = supervisor.post(
        "/api/scada/test", {"connector": connector.pk}, format="json"
    ).json()
    assert failed["ok"] is False
    assert failed["error"].startswith(
        f"Cannot reach the OPC UA server at {server.endpoint}"
    )
    connector.refresh_from_db()
    assert (connector.comm_state, connector.last_error) == (
        CommState.LOST,
        failed["error"],
    )


@pytest.mark.django_db
def test_browse_lists_the_variables_of_each_type_and_leaves_the_standard_out(
    open62541_server, supervisor
):
    server = open62541_server()
    ids = line1(server)
    server.add_variables("Line2", {"Pressure": 1.2})
    server.start()
    connector = make_connector(server)
    Tag.objects.create(connector=connector, node_id=ids["Count"], tag_name="l1.count")

    response = supervisor.post(
        f"/api/scada/connectors/{connector.pk}/browse", {}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert sorted(response.json(), key=lambda n: n["browse_path"]) == [
        {
            "node_id": "ns=2;i=1001",
            "browse_path": "Objects/Line1/Count",
            "data_type": "Int32",
            "tag_name": "l1.count",
        },
        {
            "node_id": "ns=2;s=Line1.Running",
            "browse_path": "Objects/Line1/Running",
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
            "tag_name": None,
        },
        {
            "node_id": "ns=2;s=Line2.Pressure",
            "browse_path": "Objects/Line2/Pressure",
            "data_type": "Double",
            "tag_name": None,
        },
    ]


@pytest.mark.django_db
def test_poll_stores_each_type_with_its_quality_and_source_time(
    open62541_server, supervisor
):
    server = open62541_server()
    ids = line1(server)
    ids["Humidity"] = server.add_variable("Line1", "Humidity", 41.0)
    ids["Missing"] = "ns=2;s=Line1.NotThere"
    server.start()
    server.set_value(ids["Temp"], 99.5, status="BadSensorFailure")
    server.set_value(
        ids["Humidity"],
        40.0,
        status="UncertainLastUsableValue",
        source_timestamp=SOURCE_TIME,
    )
    connector = make_connector(server)
    map_tags(connector, ids)

    response = supervisor.post(
        "/api/scada/poll", {"connector": connector.pk}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["readings_stored"] == 6
    assert stored("line1.temp") == [(99.5, "bad")]
    assert stored("line1.humidity") == [(40.0, "uncertain")]
    assert stored("line1.running") == [(1.0, "good")]
    assert stored("line1.state") == [("running", "good")]
    assert stored("line1.count") == [(7.0, "good")]
    # A node the server does not know: a bad reading, not a failed poll.
    assert stored("line1.missing") == [(None, "bad")]
    humidity = ScadaReading.objects.get(tag_name="line1.humidity")
    assert humidity.timestamp == SOURCE_TIME
    # A second poll of unchanged values (same source times) stores nothing but
    # the unknown node's refusal again: it carries no timestamp (open62541
    # sends none with a bad status), so it is stamped with the time received.
    again = supervisor.post(
        "/api/scada/poll", {"connector": connector.pk}, format="json"
    )
    assert again.json()["readings_stored"] == 1
    assert stored("line1.missing") == [(None, "bad"), (None, "bad")]
    assert ScadaReading.objects.count() == 7


@pytest.mark.django_db
def test_the_source_timestamp_of_a_changed_value_is_the_plc_s(open62541_server):
    server = open62541_server()
    temp = server.add_variable("Line1", "Temp", 20.0)
    server.start()
    connector = make_connector(server)
    map_tags(connector, {"Temp": temp})
    stamps = [SOURCE_TIME + timedelta(seconds=s) for s in (0, 1, 2)]
    for number, stamp in enumerate(stamps):
        server.set_value(temp, 20.0 + number, source_timestamp=stamp)
        readings.connector_poll(connector_id=connector.pk, actor=None)
    rows = ScadaReading.objects.filter(tag_name="line1.temp").order_by("timestamp")
    assert [(row.timestamp, row.value) for row in rows] == [
        (stamps[0], 20.0),
        (stamps[1], 21.0),
        (stamps[2], 22.0),
    ]


@pytest.mark.django_db
def test_a_poll_asks_for_the_source_timestamp_only(open62541_server):
    # open62541 honours TimestampsToReturn (asyncua's server sends both
    # whatever was asked): asked for the source timestamp, it sends only that.
    server = open62541_server()
    temp = server.add_variable("Line1", "Temp", 20.0)
    server.start()
    server.set_value(temp, 21.0, source_timestamp=SOURCE_TIME)
    connector = make_connector(server)
    tags = list(map_tags(connector, {"Temp": temp}).values())

    [raw] = connector_for(connector).fetch_data(tags=tags)

    assert raw.data_value.SourceTimestamp == SOURCE_TIME
    assert raw.data_value.ServerTimestamp is None


class StrictServer:
    """A session's stand-in that answers Reads as open62541 does: only the
    timestamps asked for; ``stamped`` nodes carry a source timestamp, the
    others (a device that does not stamp) none."""

    SERVER_TIME = SOURCE_TIME + timedelta(seconds=5)

    def __init__(self, stamped: set[str]) -> None:
        self.stamped = stamped
        self.reads: list[tuple] = []
        self.uaclient = self

    def get_node(self, node_id):
        return SimpleNamespace(nodeid=node_id)

    async def read(self, params):
        asked = params.TimestampsToReturn
        names = [item.NodeId.to_string() for item in params.NodesToRead]
        self.reads.append((asked, names))
        both = (ua.TimestampsToReturn.Both, ua.TimestampsToReturn.Server)
        return [
            ua.DataValue(
                ua.Variant(1.0),
                StatusCode=ua.StatusCode(
                    ua.StatusCodes.BadSensorFailure if "Broken" in name else 0
                ),
                SourceTimestamp=SOURCE_TIME if name in self.stamped else None,
                ServerTimestamp=self.SERVER_TIME if asked in both else None,
            )
            for name in names
        ]


def test_values_without_a_source_timestamp_are_read_again_for_the_server_s():
    connector = OpcUaConnector(
        Connector(name="PLC", kind="opcua", endpoint="opc.tcp://plc:4840")
    )
    connector.client = server = StrictServer(stamped={"ns=2;s=Stamped"})
    tags = [
        SimpleNamespace(node_id=f"ns=2;s={name}", tag_name=name.lower(), unit="")
        for name in ("Stamped", "Unstamped", "Broken")
    ]

    readings_ = connector.normalize(asyncio.run(connector.read(tags)))

    source, both = ua.TimestampsToReturn.Source, ua.TimestampsToReturn.Both
    # One Read of all three; the unstamped good value read again, with both
    # timestamps (a bad value is not: it has nothing to date).
    assert server.reads == [
        (source, ["ns=2;s=Stamped", "ns=2;s=Unstamped", "ns=2;s=Broken"]),
        (both, ["ns=2;s=Unstamped"]),
    ]
    assert [(r["tag_name"], r["timestamp"]) for r in readings_[:2]] == [
        ("stamped", SOURCE_TIME),
        ("unstamped", StrictServer.SERVER_TIME),
    ]
    assert readings_[2]["quality"] == "bad"


@pytest.mark.django_db
def test_a_value_the_device_does_not_stamp_gets_the_time_of_each_read(
    open62541_server,
):
    # open62541 stamps a value that has no source timestamp with the time of
    # the Read: each poll of it is a new sample (docs/scada.md).
    server = open62541_server()
    temp = server.add_variable("Line1", "Temp", 20.0)
    server.start()
    server.set_value(temp, 21.0, source_timestamp=False)
    connector = make_connector(server)
    map_tags(connector, {"Temp": temp})
    for _ in range(2):
        readings.connector_poll(connector_id=connector.pk, actor=None)
    assert stored("line1.temp") == [(21.0, "good"), (21.0, "good")]


# --- the monitored items' sampling ------------------------------------------------


def test_a_monitored_item_keeps_one_publishing_interval_of_changes():
    assert queue_size(1000, 0) == 100  # every change, counted as 10 ms each
    assert queue_size(1000, 250) == 10
    assert queue_size(5000, 1000) == 10  # at least 10
    assert queue_size(86_400_000, 0) == 1000  # at most 1,000


@pytest.mark.django_db
def test_the_sampling_interval_setting_is_checked(make_user):
    admin = api_as(make_user("admin"))
    body = {"name": "PLC", "kind": "opcua", "endpoint": "opc.tcp://plc:4840"}
    refused = admin.post(
        "/api/scada/connectors",
        {**body, "settings": {"sampling_interval_ms": -1}},
        format="json",
    )
    error = assert_envelope(refused, 400, "validation_error")
    assert error["details"] == {
        "settings": ["sampling_interval_ms must be a number from 0 to 86,400,000."]
    }
    assert Connector.objects.count() == 0
    created = admin.post(
        "/api/scada/connectors",
        {**body, "settings": {"sampling_interval_ms": 250}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["settings"] == {"sampling_interval_ms": 250}


# --- user and password, security policy ------------------------------------------


@pytest.mark.django_db
def test_user_and_password_open_a_session_and_others_are_refused(open62541_server):
    server = open62541_server(users={"plc-reader": "s3cret"})
    temp = server.add_variable("Line1", "Temp", 20.0)
    server.start()
    connector = make_connector(server)
    map_tags(connector, {"Temp": temp})

    connector.credentials = {"username": "plc-reader", "password": "s3cret"}
    connector.save()
    assert connector_for(connector).test_connection() == (True, None)
    assert (
        readings.connector_poll(connector_id=connector.pk, actor=None)[
            "readings_stored"
        ]
        == 1
    )

    connector.credentials = {"username": "plc-reader", "password": "wrong"}
    ok, error = connector_for(connector).test_connection()
    assert ok is False
    assert error.startswith(
        f"The OPC UA server at {server.endpoint} refused the session: "
        "BadUserAccessDenied"
    )
    connector.credentials = {}
    ok, error = connector_for(connector).test_connection()
    assert ok is False
    assert server.endpoint in error


@pytest.fixture
def certificates(tmp_path):
    """A self-signed server certificate and a client one (DER, PEM keys)."""
    import asyncio
    import socket

    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    files = {}
    for role, uri, use in [
        ("server", "urn:bpmos:test:open62541", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", "urn:bpmos:client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ]:
        key, cert = tmp_path / f"{role}-key.pem", tmp_path / f"{role}.der"
        asyncio.run(
            setup_self_signed_certificate(
                key, cert, uri, socket.gethostname(), [use], {"commonName": role}
            )
        )
        files[role] = (str(cert), str(key))
    return files


def secure_settings(certificates, **extra) -> dict:
    client_cert, client_key = certificates["client"]
    return {
        "timeout_s": 4,
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate_path": client_cert,
        "private_key_path": client_key,
        **extra,
    }


def security(certificates, *, secure_only: bool) -> dict:
    server_cert, server_key = certificates["server"]
    return {
        "certificate": server_cert,
        "private_key": server_key,
        "trust": [certificates["client"][0]],
        "application_uri": "urn:bpmos:test:open62541",
        "secure_only": secure_only,
    }


@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Basic256Sha256", "Sign"),
        ("Aes128Sha256RsaOaep", "SignAndEncrypt"),
        ("Aes256Sha256RsaPss", "SignAndEncrypt"),
    ],
)
@pytest.mark.django_db
def test_each_security_policy_with_the_server_certificate_discovered(
    open62541_server, certificates, policy, mode
):
    server = open62541_server(security=security(certificates, secure_only=False))
    temp = server.add_variable("Line1", "Temp", 20.0)
    server.start()
    connector = make_connector(
        server,
        settings=secure_settings(
            certificates, security_policy=policy, security_mode=mode
        ),
    )
    map_tags(connector, {"Temp": temp})

    assert connector_for(connector).test_connection() == (True, None)
    result = readings.connector_poll(connector_id=connector.pk, actor=None)
    assert result["readings_stored"] == 1
    assert stored("line1.temp") == [(20.0, "good")]


@pytest.mark.django_db
def test_a_secure_only_server_is_reached_with_its_certificate_pinned(
    open62541_server, certificates
):
    # open62541 "secure only" refuses every unencrypted channel, even the
    # one a client lists the endpoints on; and it offers no anonymous user.
    server = open62541_server(
        security=security(certificates, secure_only=True),
        users={"plc-reader": "s3cret"},
    )
    temp = server.add_variable("Line1", "Temp", 20.0)
    server.start()
    credentials = {"username": "plc-reader", "password": "s3cret"}
    connector = make_connector(
        server, settings=secure_settings(certificates), credentials=credentials
    )
    map_tags(connector, {"Temp": temp})

    assert connector_for(connector).test_connection() == (
        False,
        f"The OPC UA server at {server.endpoint} did not list its endpoints on an "
        "unencrypted channel (BadSecurityPolicyRejected (The security policy does "
        "not meet the requirements set by the server)): pin its certificate with "
        "settings.server_certificate_path.",
    )

    connector.settings = secure_settings(
        certificates, server_certificate_path=certificates["server"][0]
    )
    connector.save()
    assert connector_for(connector).test_connection() == (True, None)
    result = readings.connector_poll(connector_id=connector.pk, actor=None)
    assert result["readings_stored"] == 1
    assert stored("line1.temp") == [(20.0, "good")]

    plain = Connector(name="plain", kind="opcua", endpoint=server.endpoint)
    ok, error = connector_for(plain).test_connection()
    assert ok is False
    assert server.endpoint in error


# --- the collector ---------------------------------------------------------------


def comm_alarm(connector) -> AlarmEvent | None:
    return AlarmEvent.objects.filter(connector=connector, kind="comm_loss").first()


@pytest.mark.django_db(transaction=True)
def test_the_collector_stores_subscribed_changes_with_their_quality(
    open62541_server, run_collector
):
    server = open62541_server()
    ids = line1(server)
    server.start()
    connector = make_connector(server, mode=ConnectorMode.SUBSCRIBE, poll_interval_s=1)
    map_tags(connector, ids)
    run_collector()

    wait_until(lambda: values("line1.temp") == [21.5], within=30)
    wait_until(lambda: values("line1.count") == [7.0], within=30)
    assert stored("line1.running") == [(1.0, "good")]
    assert stored("line1.state") == [("running", "good")]
    # Two changes within one publishing interval: both stored.
    server.set_value(ids["Temp"], 22.0)
    server.set_value(ids["Temp"], 22.5)
    wait_until(lambda: values("line1.temp") == [21.5, 22.0, 22.5], within=30)
    server.set_value(ids["Temp"], 23.0, status="UncertainLastUsableValue")
    server.set_value(ids["State"], "blocked", source_timestamp=SOURCE_TIME)
    server.set_value(ids["Running"], False, status="BadSensorFailure")
    wait_until(lambda: stored("line1.temp")[-1] == (23.0, "uncertain"), within=30)
    wait_until(lambda: stored("line1.running")[-1] == (0.0, "bad"), within=30)
    blocked = wait_until(
        lambda: ScadaReading.objects.filter(
            tag_name="line1.state", value_text="blocked"
        ).first(),
        within=30,
    )
    assert blocked.timestamp == SOURCE_TIME
    assert Connector.objects.get(pk=connector.pk).comm_state == CommState.OK


@pytest.mark.django_db(transaction=True)
def test_the_collector_polls_every_tag_each_interval(open62541_server, run_collector):
    server = open62541_server()
    ids = line1(server)
    server.start()
    connector = make_connector(server, mode=ConnectorMode.POLL, poll_interval_s=1)
    map_tags(connector, ids)
    run_collector()

    wait_until(lambda: values("line1.temp") == [21.5], within=30)
    server.set_value(ids["Temp"], 22.0)
    server.set_value(ids["Count"], 8)
    wait_until(lambda: values("line1.temp") == [21.5, 22.0], within=30)
    wait_until(lambda: values("line1.count") == [7.0, 8.0], within=30)
    # Unchanged values keep their source timestamps: read again, not stored.
    assert values("line1.state") == ["running"]


@pytest.mark.parametrize("outage", ["stop", "kill"])
@pytest.mark.django_db(transaction=True)
def test_a_server_that_stops_and_comes_back_is_resubscribed_without_duplicates(
    open62541_server, run_collector, outage
):
    server = open62541_server()
    temp = server.add_variable("Line1", "Temp", 20.0)
    # A PLC counter the server raises itself, five times a second.
    count = server.add_variable(
        "Line1", "GoodCount", 1000, node_id="ns=2;i=1001", type="Int32", tick_s=0.2
    )
    server.start()
    connector = make_connector(server, mode=ConnectorMode.SUBSCRIBE, poll_interval_s=1)
    map_tags(connector, {"Temp": temp})
    station = machine(make_line(), "st-01")
    Tag.objects.create(
        connector=connector,
        node_id=count,
        tag_name="line1.goodcount",
        machine=station,
        kind=TagKind.GOOD_COUNT,
    )
    # The production defaults: heartbeat 2 s, timeout 3 s, backoff up to 10 s.
    run_collector(heartbeat_s=2.0, timeout_s=3.0, backoff_max_s=10.0, flush_s=0.5)
    wait_until(lambda: values("line1.temp") == [20.0], within=30)
    wait_until(lambda: len(values("line1.goodcount")) >= 5, within=30)

    # "stop": the server closes its sessions; "kill": SIGKILL, no goodbye.
    getattr(server, outage)()
    lost = wait_until(
        lambda: Connector.objects.filter(pk=connector.pk, comm_state="lost").first(),
        within=30,
    )
    assert server.endpoint in lost.last_error
    alarm = wait_until(lambda: comm_alarm(connector), within=30)
    assert (alarm.active, alarm.status) == (True, "unack_active")
    before = values("line1.goodcount")

    server.start()  # a new process: same port, node ids and last values
    wait_until(
        lambda: Connector.objects.get(pk=connector.pk).comm_state == CommState.OK,
        within=30,
    )
    alarm.refresh_from_db()
    assert (alarm.active, alarm.status) == (False, "unack_rtn")
    wait_until(lambda: len(values("line1.goodcount")) >= len(before) + 5, within=30)
    server.set_value(temp, 21.0)
    wait_until(lambda: values("line1.temp") == [20.0, 21.0], within=30)

    # The values re-sent on resubscription were not stored again, and every
    # count the server published was stored once, in order.
    counts = values("line1.goodcount")
    assert counts == sorted(set(counts))
    assert counts[: len(before)] == before
    # Lines counted the increments: the first value the baseline, none twice.
    sent = MachineReading.objects.filter(machine=station, tag="good_count")
    assert sum(sent.values_list("value", flat=True)) == counts[-1] - counts[0]
