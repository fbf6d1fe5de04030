"""A simulated BMS: answers provisioning requests on a CAN bus like a real one.

``SimulatedBMS`` opens its own bus, listens on ``0x600 + node`` through an
ISO-TP stack (its own threads, fed by a python-can ``Notifier``), keeps the
records written to it in an in-memory "EEPROM" and answers on ``0x580 + node``.
Like a real BMS it checks what it is sent: an unknown service gets NRC 0x11, a
malformed record 0x13, an unknown identifier or inconsistent limits 0x31, and
a read of a record never written 0x22.

``behaviour`` makes it misbehave the ways a real one does on the line:

* ``ok``: store and confirm;
* ``refuse``: answer every write with ``refuse_with`` (an NRC, default 0x22
  conditions not correct), store nothing;
* ``silent``: receive (the transport still acknowledges segments) but never
  answer, as a BMS that hangs after boot;
* ``corrupt``: store and acknowledge, but read back the identity with its
  serial's last character changed (a failing EEPROM).

It counts every frame the gateway sent to its node (``frames_seen``), so a
test can prove that nothing was sent.

``ensure_embedded`` starts one simulator per (channel, node) inside the
process on demand: python-can's ``virtual`` interface only connects buses of
one process, so in the embedded mode the web process hosts the BMS it talks
to (docs/passports.md). ``manage.py bms_simulator`` runs simulators in a
process of their own, for an interface that crosses processes.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

import can
import isotp
import structlog

from passports.bms import protocol
from passports.bms.protocol import Nrc, ProtocolError, Request, Response, Service

log = structlog.get_logger(__name__)


class Behaviour(StrEnum):
    OK = "ok"
    REFUSE = "refuse"
    SILENT = "silent"
    CORRUPT = "corrupt"


def isotp_params(timeout_s: float) -> dict[str, Any]:
    """ISO-TP parameters both ends use: no separation time, no block limit (one
    flow control per message), 0xCC padding to full 8-byte frames as most BMS
    expect, and segment timeouts no longer than the caller's whole timeout."""
    timeout_ms = max(int(timeout_s * 1000), 50)
    return {
        "stmin": 0,
        "blocksize": 0,
        "tx_data_length": 8,
        "tx_padding": 0xCC,
        "rx_flowcontrol_timeout": timeout_ms,
        "rx_consecutive_frame_timeout": timeout_ms,
        "blocking_send": True,
        "max_frame_size": protocol.MAX_MESSAGE,
    }


class _FrameCounter(can.Listener):
    def __init__(self, arbitration_id: int):
        self.arbitration_id = arbitration_id
        self.count = 0
        self._lock = threading.Lock()

    def on_message_received(self, msg: can.Message) -> None:
        if msg.arbitration_id == self.arbitration_id and not msg.is_extended_id:
            with self._lock:
                self.count += 1


class SimulatedBMS:
    """One simulated BMS at ``node`` on a bus; ``start()`` / ``stop()`` or ``with``."""

    def __init__(
        self,
        *,
        node: int,
        channel: str,
        interface: str = "virtual",
        bitrate: int | None = None,
        behaviour: Behaviour | str = Behaviour.OK,
        refuse_with: int = Nrc.CONDITIONS_NOT_CORRECT,
        timeout_s: float = 1.0,
    ):
        protocol.request_id(node)  # validates the node id
        self.node = node
        self.channel = channel
        self.interface = interface
        self.bitrate = bitrate
        self.behaviour = Behaviour(behaviour)
        self.refuse_with = int(refuse_with)
        self.timeout_s = timeout_s
        self.eeprom: dict[int, bytes] = {}
        self.requests: list[Request] = []
        self._counter = _FrameCounter(protocol.request_id(node))
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        self._stack: isotp.NotifierBasedCanStack | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle ---

    @property
    def frames_seen(self) -> int:
        """Frames sent to this node since start (requests and flow control)."""
        return self._counter.count

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> SimulatedBMS:
        kwargs: dict[str, Any] = {"interface": self.interface, "channel": self.channel}
        if self.bitrate:
            kwargs["bitrate"] = self.bitrate
        self._bus = can.Bus(**kwargs)
        try:
            self._notifier = can.Notifier(self._bus, [self._counter], timeout=0.05)
            self._stack = isotp.NotifierBasedCanStack(
                self._bus,
                self._notifier,
                address=isotp.Address(
                    isotp.AddressingMode.Normal_11bits,
                    rxid=protocol.request_id(self.node),
                    txid=protocol.response_id(self.node),
                ),
                params=isotp_params(self.timeout_s),
                error_handler=self._transport_error,
            )
            self._stack.start()
        except Exception:
            self._close()
            raise
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._serve, name=f"bms-sim-{self.channel}-{self.node}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self._close()

    def _close(self) -> None:
        if self._stack is not None:
            self._stack.stop()
            self._stack = None
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def __enter__(self) -> SimulatedBMS:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _transport_error(self, error: Exception) -> None:
        log.debug("bms_simulator_transport_error", node=self.node, error=str(error))

    def _serve(self) -> None:
        stack = self._stack
        assert stack is not None
        while not self._stopping.is_set():
            payload = stack.recv(block=True, timeout=0.05)
            if payload is None:
                continue
            answer = self.handle(bytes(payload))
            if answer is None:
                continue
            try:
                stack.send(answer.encode(), send_timeout=self.timeout_s)
            except isotp.BlockingSendFailure:
                log.warning("bms_simulator_answer_not_delivered", node=self.node)

    # --- the BMS itself ---

    def handle(self, payload: bytes) -> Response | None:
        """The answer to one request (None: stay silent)."""
        try:
            request = Request.decode(payload)
        except ProtocolError:
            service = payload[0] if payload else 0
            try:
                answered = Service(service)
            except ValueError:
                return Response(Service.READ_DATA, nrc=Nrc.SERVICE_NOT_SUPPORTED)
            return Response(answered, nrc=Nrc.INCORRECT_LENGTH)
        self.requests.append(request)
        if self.behaviour == Behaviour.SILENT:
            return None
        if request.service == Service.WRITE_DATA:
            return self._write(request)
        return self._read(request)

    def _write(self, request: Request) -> Response:
        if self.behaviour == Behaviour.REFUSE:
            return Response(request.service, nrc=self.refuse_with)
        try:
            record = protocol.decode_record(request.did, request.data)
        except ProtocolError:
            known = request.did in protocol.RECORD_TYPES
            nrc = Nrc.INCORRECT_LENGTH if known else Nrc.REQUEST_OUT_OF_RANGE
            return Response(request.service, nrc=nrc)
        if isinstance(record, protocol.Limits) and record.problems():
            return Response(request.service, nrc=Nrc.REQUEST_OUT_OF_RANGE)
        self.eeprom[request.did] = request.data
        return Response(request.service, request.did)

    def _read(self, request: Request) -> Response:
        if request.data:
            return Response(request.service, nrc=Nrc.INCORRECT_LENGTH)
        if request.did not in protocol.RECORD_TYPES:
            return Response(request.service, nrc=Nrc.REQUEST_OUT_OF_RANGE)
        stored = self.eeprom.get(request.did)
        if stored is None:
            return Response(request.service, nrc=Nrc.CONDITIONS_NOT_CORRECT)
        if self.behaviour == Behaviour.CORRUPT and request.did == protocol.Did.IDENTITY:
            identity = protocol.Identity.decode(stored)
            serial = identity.serial[:-1] + (
                "X" if identity.serial[-1:] != "X" else "Y"
            )
            stored = protocol.Identity(
                identity.passport_uuid, serial, identity.bpan, identity.model
            ).encode()
        return Response(request.service, request.did, stored)


# --- the embedded mode's in-process BMS -------------------------------------------

_embedded: dict[tuple[str, int], SimulatedBMS] = {}
_embedded_lock = threading.Lock()


def ensure_embedded(*, channel: str, node: int, timeout_s: float) -> SimulatedBMS:
    """The in-process simulator at ``node`` on virtual ``channel``, started on
    first use and kept for the life of the process (its threads are daemons)."""
    with _embedded_lock:
        simulator = _embedded.get((channel, node))
        if simulator is None or not simulator.running:
            simulator = SimulatedBMS(
                node=node, channel=channel, interface="virtual", timeout_s=timeout_s
            ).start()
            _embedded[(channel, node)] = simulator
        return simulator
