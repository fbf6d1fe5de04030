"""BMS provisioning over CAN: the protocol, the simulated BMS, the service, the API.

Every exchange runs on a real python-can ``virtual`` bus (a fresh channel per
test) against a real ``SimulatedBMS`` on its own threads; nothing is mocked.
"""

from __future__ import annotations

import math
import threading
import time
import uuid

import pytest
from django.core.management import call_command
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bpmos.errors import (
    Conflict,
    DependencyUnavailable,
    IllegalTransition,
    InvalidInput,
)
from elog.models import AuditRecord
from passports import ledger, provisioning, services
from passports.bms import gateway, protocol
from passports.bms.protocol import (
    Did,
    Identity,
    Limits,
    Nrc,
    ProtocolError,
    Rating,
    Request,
    Response,
    Service,
)
from passports.bms.simulator import Behaviour, SimulatedBMS
from passports.models import (
    EventKind,
    Passport,
    PassportEvent,
    ProvisioningAttempt,
    ProvisioningStatus,
)
from tests.conftest import bearer
from tests.support import WAIT_SECONDS, join_or_fail
from tests.support_hypothesis import examples

NODE = 7
TIMEOUT_S = 0.25


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
def can_bus(settings):
    """A virtual CAN channel of this test's own; no in-process simulator."""
    settings.BPMOS_CAN_INTERFACE = "virtual"
    settings.BPMOS_CAN_CHANNEL = f"test-{uuid.uuid4().hex[:12]}"
    settings.BPMOS_CAN_BITRATE = 500000
    settings.BPMOS_BMS_TIMEOUT_S = TIMEOUT_S
    settings.BPMOS_BMS_DEFAULT_NODE = NODE
    settings.BPMOS_BMS_SIMULATOR = False
    return settings.BPMOS_CAN_CHANNEL


@pytest.fixture
def bms(can_bus):
    """``bms(behaviour=..., refuse_with=...)``: a started simulated BMS at NODE."""
    started: list[SimulatedBMS] = []

    def start(**kwargs) -> SimulatedBMS:
        simulator = SimulatedBMS(
            node=kwargs.pop("node", NODE),
            channel=can_bus,
            timeout_s=TIMEOUT_S,
            **kwargs,
        ).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


_serials = iter(range(1, 100_000))


def _register(kind: str, actor=None, **extra) -> Passport:
    n = next(_serials)
    data = {
        "kind": kind,
        "chemistry": "LFP",
        "serial": f"{kind.upper()}-2026-{n:05d}",
        "model": "PK-48V-100",
        "manufacturer": "BPM Energy",
        "site": "Pune Plant 1",
        "rated_capacity_ah": "100.00",
        "nominal_voltage_v": "51.20",
        "energy_kwh": "5.120",
        **extra,
    }
    if kind == "pack":
        data.setdefault("manufacturer_code", "BPM")
        data.setdefault("plant_code", "P")
        data.setdefault("bpan_serial", f"{n:05d}")
    return services.passport_register(data=data, actor=actor)


def _qa(passport: Passport, kind=EventKind.QA_PASSED) -> Passport:
    data = {"reason": "IR out of range"} if kind == EventKind.QA_FAILED else {}
    services.passport_event_record(
        passport_id=passport.pk, kind=kind, data=data, actor=None
    )
    passport.refresh_from_db()
    return passport


@pytest.fixture
def pack(db):
    return _qa(_register("pack"))


def _frames(length: int) -> int:
    """CAN frames ISO-TP needs for a message of ``length`` bytes."""
    return 1 if length <= 7 else 1 + math.ceil((length - 6) / 7)


def _frames_to_node(record: protocol.Provisioning) -> int:
    """Frames the gateway sends to the BMS for a whole provisioning: three
    writes, three reads, and one flow control per multi-frame read-back."""
    writes = sum(_frames(3 + len(part.encode())) for part in record.records())
    reads = 3
    flow_controls = sum(3 + len(part.encode()) > 7 for part in record.records())
    return writes + reads + flow_controls


def _audits(action: str) -> int:
    return AuditRecord.objects.filter(action=action).count()


# --- protocol ------------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=16
).filter(lambda s: len(s.encode()) <= 64)
identities = st.builds(
    Identity,
    passport_uuid=st.uuids(),
    serial=_text,
    bpan=st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=21),
    model=_text,
)
ratings = st.builds(
    Rating,
    chemistry=st.sampled_from(sorted(protocol.CHEMISTRY_CODES)),
    nominal_voltage_mv=st.integers(0, 2**32 - 1),
    rated_capacity_mah=st.integers(0, 2**32 - 1),
    energy_wh=st.integers(0, 2**32 - 1),
)
limits = st.builds(
    Limits,
    cells_in_series=st.integers(0, 255),
    cells_in_parallel=st.integers(0, 255),
    cell_min_mv=st.integers(0, 65535),
    cell_max_mv=st.integers(0, 65535),
    max_charge_deciamps=st.integers(0, 65535),
    max_discharge_deciamps=st.integers(0, 65535),
    min_temperature_c=st.integers(-128, 127),
    max_temperature_c=st.integers(-128, 127),
)


@hypothesis_settings(max_examples=examples(200), deadline=None)
@given(record=st.one_of(identities, ratings, limits))
def test_every_record_decodes_to_what_was_encoded(record):
    encoded = record.encode()
    assert protocol.decode_record(record.did, encoded) == record
    with pytest.raises(ProtocolError):
        protocol.decode_record(record.did, encoded + b"\x00")
    with pytest.raises(ProtocolError):
        protocol.decode_record(record.did, encoded[:-1])


@hypothesis_settings(max_examples=examples(200), deadline=None)
@given(
    service=st.sampled_from([Service.READ_DATA, Service.WRITE_DATA]),
    did=st.integers(0, 0xFFFF),
    data=st.binary(max_size=64),
    nrc=st.one_of(st.none(), st.integers(1, 255)),
)
def test_requests_and_answers_decode_to_what_was_encoded(service, did, data, nrc):
    body = data if service == Service.WRITE_DATA else b""
    request = Request(service, did, body)
    assert Request.decode(request.encode()) == request
    if nrc is not None:
        answer = Response(service, nrc=nrc)
    else:
        answer = Response(service, did, data if service == Service.READ_DATA else b"")
    assert Response.decode(answer.encode()) == answer


def test_wire_layout_is_the_documented_one():
    assert protocol.request_id(NODE) == 0x607
    assert protocol.response_id(NODE) == 0x587
    assert Request(Service.READ_DATA, Did.RATING).encode() == bytes.fromhex("220202")
    assert Response(Service.WRITE_DATA, Did.LIMITS).encode() == bytes.fromhex("6E0203")
    assert Response(Service.WRITE_DATA, nrc=0x33).encode() == bytes.fromhex("7F2E33")
    rating = Rating("LFP", 51200, 100000, 5120)
    assert rating.encode() == bytes.fromhex("010000C800000186A000001400")
    with pytest.raises(ProtocolError):
        protocol.request_id(128)
    with pytest.raises(ProtocolError, match="serial is 65 bytes"):
        Identity(uuid.uuid4(), "S" * 65, "", "").encode()


def test_simulated_bms_answers_malformed_requests_like_a_real_one():
    bms = SimulatedBMS(node=1, channel="unused")  # handle() needs no bus
    assert bms.handle(bytes.fromhex("100202")).nrc == Nrc.SERVICE_NOT_SUPPORTED
    assert bms.handle(bytes.fromhex("2E0203FF")).nrc == Nrc.INCORRECT_LENGTH
    assert bms.handle(bytes.fromhex("2E0999")).nrc == Nrc.REQUEST_OUT_OF_RANGE
    assert bms.handle(bytes.fromhex("220201")).nrc == Nrc.CONDITIONS_NOT_CORRECT
    upside_down = Limits(16, 1, 3650, 2500, 500, 1000, -20, 60)
    write = Request(Service.WRITE_DATA, Did.LIMITS, upside_down.encode())
    assert bms.handle(write.encode()).nrc == Nrc.REQUEST_OUT_OF_RANGE
    assert bms.eeprom == {}


# --- the service against the simulated BMS --------------------------------------------


def test_confirmed_provisioning_appends_provisioned_and_records_the_attempt(
    bms, pack, make_user
):
    simulator = bms()
    supervisor = make_user("supervisor")
    version = pack.version
    expected = provisioning.record_for(pack)

    attempt = provisioning.passport_provision(passport_id=pack.pk, actor=supervisor)

    attempt.refresh_from_db()
    assert attempt.status == ProvisioningStatus.CONFIRMED
    assert attempt.node_id == NODE
    assert attempt.interface == f"virtual:{simulator.channel}@500000"
    assert attempt.requested_by == supervisor
    assert attempt.finished_at is not None
    assert attempt.written == expected.as_dict()
    assert attempt.confirmed == expected.as_dict()
    assert attempt.written["identity"] == {
        "passportUuid": str(pack.uuid),
        "serial": pack.serial,
        "bpan": pack.bpan,
        "model": "PK-48V-100",
    }
    assert attempt.written["rating"] == {
        "chemistry": "LFP",
        "nominalVoltageMv": 51200,
        "ratedCapacityMah": 100000,
        "energyWh": 5120,
    }
    pack.refresh_from_db()
    assert (pack.state, pack.version) == ("provisioned", version + 1)
    event = PassportEvent.objects.get(passport=pack, version=version + 1)
    assert event.kind == EventKind.PROVISIONED
    assert event.actor == supervisor
    assert event.data == {
        "attemptId": attempt.pk,
        "node": NODE,
        "interface": attempt.interface,
        "confirmed": expected.as_dict(),
    }
    assert ledger.verify(passport_ids=[pack.pk]).ok
    # The BMS holds exactly the bytes written, and saw exactly the frames needed.
    assert simulator.eeprom == {part.did: part.encode() for part in expected.records()}
    assert simulator.frames_seen == _frames_to_node(expected)
    assert [(r.service, r.did) for r in simulator.requests] == [
        (Service.WRITE_DATA, Did.IDENTITY),
        (Service.WRITE_DATA, Did.RATING),
        (Service.WRITE_DATA, Did.LIMITS),
        (Service.READ_DATA, Did.IDENTITY),
        (Service.READ_DATA, Did.RATING),
        (Service.READ_DATA, Did.LIMITS),
    ]


def test_default_limits_follow_chemistry_and_rating(pack):
    limits = provisioning.default_limits(pack)
    # 51.2 V of 3.2 V LFP cells: 16 in series; 0.5 C / 1 C of 100 Ah.
    assert limits == Limits(16, 1, 2500, 3650, 500, 1000, -20, 60)


def test_default_parallel_count_comes_from_the_genealogy(db):
    pack = _qa(_register("pack", nominal_voltage_v="6.40", energy_kwh="0.640"))
    module = _qa(_register("module", nominal_voltage_v="6.40", energy_kwh="0.640"))
    cells = [
        _qa(_register("cell", nominal_voltage_v="3.20", energy_kwh="0.320"))
        for _ in range(6)
    ]
    services.passport_assemble(
        parent_id=module.pk, component_ids=[c.pk for c in cells], actor=None
    )
    services.passport_assemble(parent_id=pack.pk, component_ids=[module.pk], actor=None)

    limits = provisioning.default_limits(pack)
    # 6.4 V of 3.2 V cells: 2 in series; 6 cells in its module: 3 in parallel.
    assert (limits.cells_in_series, limits.cells_in_parallel) == (2, 3)


def test_config_overrides_are_written_to_the_bms(bms, pack):
    simulator = bms()
    config = {"cellsInParallel": 2, "maxChargeCurrentA": 32.5, "maxTemperatureC": 55}
    provisioning.passport_provision(passport_id=pack.pk, config=config, actor=None)

    stored = Limits.decode(simulator.eeprom[Did.LIMITS])
    assert stored == Limits(16, 2, 2500, 3650, 325, 1000, -20, 55)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"cellsInSerie": 16}, "config.cellsInSerie"),
        ({"cellsInSeries": 0}, "config.cellsInSeries"),
        ({"maxChargeCurrentA": 1.25}, "config.maxChargeCurrentA"),
        ({"cellMinVoltageMv": 3700}, "config"),
        ({"minTemperatureC": "cold"}, "config.minTemperatureC"),
        ([16], "config"),
    ],
)
def test_invalid_config_is_refused_before_any_frame(bms, pack, config, field):
    simulator = bms()
    with pytest.raises(InvalidInput) as refused:
        provisioning.passport_provision(passport_id=pack.pk, config=config, actor=None)
    assert list(refused.value.details) == [field]
    assert simulator.frames_seen == 0
    assert not ProvisioningAttempt.objects.exists()


def test_refusal_records_the_attempt_and_appends_nothing(bms, pack, make_user):
    simulator = bms(behaviour=Behaviour.REFUSE, refuse_with=Nrc.SECURITY_ACCESS_DENIED)
    version = pack.version

    with pytest.raises(Conflict) as refused:
        provisioning.passport_provision(
            passport_id=pack.pk, actor=make_user("supervisor")
        )

    assert refused.value.code == "bms_refused"
    attempt = ProvisioningAttempt.objects.get()
    assert refused.value.details == {
        "attemptId": attempt.pk,
        "nrc": "0x33",
        "reason": "security access denied (BMS locked)",
    }
    assert attempt.status == ProvisioningStatus.REFUSED
    assert "NRC 0x33" in attempt.error
    assert attempt.confirmed == {}
    pack.refresh_from_db()
    assert (pack.state, pack.version) == ("qa_passed", version)
    assert not PassportEvent.objects.filter(kind=EventKind.PROVISIONED).exists()
    assert _audits("passport.provisioning_refused") == 1
    assert simulator.eeprom == {}
    # The first write was refused: nothing after it was sent.
    assert [r.did for r in simulator.requests] == [Did.IDENTITY]


def test_silent_bms_times_out(bms, pack):
    bms(behaviour=Behaviour.SILENT)
    version = pack.version
    started = time.monotonic()

    with pytest.raises(DependencyUnavailable) as timed_out:
        provisioning.passport_provision(passport_id=pack.pk, actor=None)

    assert time.monotonic() - started < TIMEOUT_S + 1.0
    assert timed_out.value.code == "bms_timeout"
    assert timed_out.value.status_code == 503
    attempt = ProvisioningAttempt.objects.get()
    assert attempt.status == ProvisioningStatus.TIMEOUT
    assert attempt.finished_at is not None
    pack.refresh_from_db()
    assert pack.version == version
    assert _audits("passport.provisioning_timeout") == 1


def test_gateway_leaves_no_thread_or_bus_behind(bms, pack):
    simulator = bms(behaviour=Behaviour.SILENT)
    record = provisioning.record_for(pack)
    config = gateway.BusConfig("virtual", simulator.channel, None, TIMEOUT_S)
    before = set(threading.enumerate())
    with pytest.raises(gateway.BmsTimeout):
        gateway.provision(config, NODE, record)
    simulator.behaviour = Behaviour.OK
    assert gateway.provision(config, NODE, record) == record
    assert set(threading.enumerate()) == before


def test_no_bms_on_the_bus_times_out_at_the_first_segment(can_bus, pack):
    with pytest.raises(DependencyUnavailable) as timed_out:
        provisioning.passport_provision(passport_id=pack.pk, actor=None)
    assert timed_out.value.code == "bms_timeout"
    assert "did not acknowledge" in str(timed_out.value)
    assert ProvisioningAttempt.objects.get().status == ProvisioningStatus.TIMEOUT


def test_read_back_mismatch_is_recorded_and_appends_nothing(bms, pack):
    bms(behaviour=Behaviour.CORRUPT)
    version = pack.version

    with pytest.raises(provisioning.BadGateway) as mismatch:
        provisioning.passport_provision(passport_id=pack.pk, actor=None)

    assert mismatch.value.code == "bms_mismatch"
    assert mismatch.value.status_code == 502
    wrong = pack.serial[:-1] + "X"
    differences = {"identity.serial": {"written": pack.serial, "confirmed": wrong}}
    attempt = ProvisioningAttempt.objects.get()
    assert mismatch.value.details == {
        "attemptId": attempt.pk,
        "differences": differences,
    }
    assert attempt.status == ProvisioningStatus.MISMATCH
    assert attempt.confirmed["identity"]["serial"] == wrong
    pack.refresh_from_db()
    assert (pack.state, pack.version) == ("qa_passed", version)
    assert _audits("passport.provisioning_mismatch") == 1


def test_bus_that_cannot_open_fails_the_attempt(settings, pack):
    settings.BPMOS_CAN_INTERFACE = "no-such-interface"
    settings.BPMOS_BMS_SIMULATOR = False
    with pytest.raises(DependencyUnavailable) as down:
        provisioning.passport_provision(passport_id=pack.pk, node_id=3, actor=None)
    assert down.value.code == "bms_unavailable"
    attempt = ProvisioningAttempt.objects.get()
    assert (attempt.status, attempt.node_id) == (ProvisioningStatus.FAILED, 3)
    assert _audits("passport.provisioning_failed") == 1


def test_pack_that_failed_qa_is_refused_before_any_frame(bms, db):
    simulator = bms()
    failed = _qa(_register("pack"), EventKind.QA_FAILED)
    audits = AuditRecord.objects.count()

    with pytest.raises(IllegalTransition) as refused:
        provisioning.passport_provision(passport_id=failed.pk, actor=None)

    assert refused.value.details["state"] == "qa_failed"
    assert simulator.frames_seen == 0
    assert simulator.requests == []
    assert not ProvisioningAttempt.objects.exists()
    assert AuditRecord.objects.count() == audits


def test_pack_not_yet_tested_is_refused_before_any_frame(bms, db):
    simulator = bms()
    untested = _register("pack")
    with pytest.raises(IllegalTransition):
        provisioning.passport_provision(passport_id=untested.pk, actor=None)
    assert simulator.frames_seen == 0
    assert not ProvisioningAttempt.objects.exists()


def test_a_cell_cannot_be_provisioned(bms, db):
    simulator = bms()
    cell = _qa(_register("cell", nominal_voltage_v="3.20", energy_kwh="0.320"))
    with pytest.raises(IllegalTransition, match="Only packs have a BMS"):
        provisioning.passport_provision(passport_id=cell.pk, actor=None)
    assert simulator.frames_seen == 0
    assert not ProvisioningAttempt.objects.exists()


def test_stale_expected_version_is_refused_before_any_frame(bms, pack):
    simulator = bms()
    with pytest.raises(Conflict) as stale:
        provisioning.passport_provision(
            passport_id=pack.pk, expected_version=pack.version - 1, actor=None
        )
    assert stale.value.code == "version_conflict"
    assert simulator.frames_seen == 0


def test_provisioning_again_overwrites_and_appends_again(bms, pack):
    simulator = bms()
    provisioning.passport_provision(passport_id=pack.pk, actor=None)
    provisioning.passport_provision(
        passport_id=pack.pk, config={"cellsInParallel": 3}, actor=None
    )
    assert Limits.decode(simulator.eeprom[Did.LIMITS]).cells_in_parallel == 3
    kinds = list(
        PassportEvent.objects.filter(passport=pack).values_list("kind", flat=True)
    )
    assert kinds[-2:] == [EventKind.PROVISIONED, EventKind.PROVISIONED]


def test_embedded_mode_starts_its_own_simulated_bms(can_bus, settings, pack):
    settings.BPMOS_BMS_SIMULATOR = True
    attempt = provisioning.passport_provision(passport_id=pack.pk, actor=None)
    assert attempt.status == ProvisioningStatus.CONFIRMED
    from passports.bms import simulator as simulator_module

    embedded = simulator_module.ensure_embedded(
        channel=can_bus, node=NODE, timeout_s=TIMEOUT_S
    )
    assert Identity.decode(embedded.eeprom[Did.IDENTITY]).serial == pack.serial
    embedded.stop()


def test_gateway_serialises_transfers_to_one_node(bms, pack):
    simulator = bms()
    record = provisioning.record_for(pack)
    config = gateway.BusConfig("virtual", simulator.channel, None, TIMEOUT_S)
    results: list[object] = []

    def run():
        try:
            results.append(gateway.provision(config, NODE, record))
        except gateway.GatewayError as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    join_or_fail(*threads)
    assert results == [record, record, record]
    assert simulator.frames_seen == 3 * _frames_to_node(record)


def test_bms_simulator_command_answers_on_the_configured_bus(can_bus, pack):
    ready = threading.Event()
    runner = threading.Thread(
        daemon=True,
        target=lambda: (
            ready.set(),
            call_command(
                "bms_simulator",
                interface="virtual",
                channel=can_bus,
                nodes=[9],
                duration=1.0,
                stdout=open("/dev/null", "w"),  # noqa: SIM115
            ),
        ),
    )
    runner.start()
    assert ready.wait(WAIT_SECONDS), "the simulator command's thread did not start"
    record = provisioning.record_for(pack)
    config = gateway.BusConfig("virtual", can_bus, None, TIMEOUT_S)
    deadline = time.monotonic() + 2
    while True:  # until the command's simulator is listening
        try:
            confirmed = gateway.provision(config, 9, record)
            break
        except gateway.BmsTimeout:
            if time.monotonic() > deadline:
                raise
    assert confirmed == record
    join_or_fail(runner)  # its --duration is 1 s


# --- the HTTP API --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_provision_over_http_and_list_attempts(http, make_user, bms):
    simulator = bms()
    pack = _qa(_register("pack"))
    supervisor = make_user("supervisor")

    response = http.post(
        f"/api/passports/{pack.bpan}/provision",
        json={"nodeId": NODE, "config": {"cellsInParallel": 2}},
        headers=bearer(supervisor),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["passport"] == {"state": "Provisioned", "version": pack.version + 1}
    attempt = body["attempt"]
    assert attempt["status"] == "Confirmed"
    assert attempt["passportId"] == str(pack.uuid)
    assert attempt["serial"] == pack.serial
    assert attempt["nodeId"] == NODE
    assert attempt["requestedBy"] == supervisor.username
    assert attempt["written"] == attempt["confirmed"]
    assert attempt["confirmed"]["limits"]["cellsInParallel"] == 2
    assert attempt["error"] == ""
    assert simulator.frames_seen > 0

    listed = http.get(
        f"/api/passports/{pack.serial}/provisioning",
        headers=bearer(make_user("auditor")),
    )
    assert listed.status_code == 200
    page = listed.json()
    assert page["count"] == 1
    assert page["results"][0] == attempt


@pytest.mark.django_db(transaction=True)
def test_refusal_and_timeout_over_http_use_the_envelope(http, make_user, bms):
    pack = _qa(_register("pack"))
    headers = bearer(make_user("supervisor"))
    refusing = bms(behaviour=Behaviour.REFUSE)

    refused = http.post(
        f"/api/passports/{pack.uuid}/provision", json={}, headers=headers
    )
    assert refused.status_code == 409
    body = refused.json()
    assert (body["success"], body["code"]) == (False, "bms_refused")
    assert body["details"]["nrc"] == "0x22"
    assert refused.headers["X-Request-ID"] == body["request_id"]

    refusing.stop()
    bms(behaviour=Behaviour.SILENT)
    timed_out = http.post(
        f"/api/passports/{pack.uuid}/provision", json={}, headers=headers
    )
    assert timed_out.status_code == 503
    assert timed_out.json()["code"] == "bms_timeout"

    listed = http.get(f"/api/passports/{pack.uuid}/provisioning", headers=headers)
    statuses = [row["status"] for row in listed.json()["results"]]
    assert statuses == ["Timed out", "Refused by BMS"]
    assert PassportEvent.objects.filter(kind=EventKind.PROVISIONED).count() == 0


@pytest.mark.django_db(transaction=True)
def test_only_supervisors_provision_over_http(http, make_user, bms):
    simulator = bms()
    pack = _qa(_register("pack"))
    for role in ("operator", "planner", "auditor"):
        response = http.post(
            f"/api/passports/{pack.serial}/provision",
            json={},
            headers=bearer(make_user(role)),
        )
        assert response.status_code == 403, role
    assert simulator.frames_seen == 0
    missing = http.post(
        "/api/passports/NO-SUCH-PACK/provision",
        json={},
        headers=bearer(make_user("plant-head")),
    )
    assert missing.status_code == 404
    bad = http.post(
        f"/api/passports/{pack.serial}/provision",
        json={"nodeId": 200},
        headers=bearer(make_user("admin")),
    )
    assert bad.status_code == 400
    assert bad.json()["details"] == {"nodeId": ["A node id from 1 to 127."]}
