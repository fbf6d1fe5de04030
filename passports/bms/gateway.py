"""The CAN gateway: talks to one BMS at a time through python-can.

The bus comes from configuration (``BPMOS_CAN_INTERFACE``, ``BPMOS_CAN_CHANNEL``,
``BPMOS_CAN_BITRATE``; any interface python-can supports: ``socketcan`` on a
line PC, ``pcan``/``kvaser``/``vector`` adapters, ``virtual`` for tests and the
embedded demo). Each transfer opens the bus, runs an ISO-TP stack (can-isotp)
on ``0x600 + node`` / ``0x580 + node``, and closes everything again, whatever
happened, so no socket or thread outlives a request.

One transfer at a time per bus and node in this process (a lock); the
provisioning service adds a cross-process lock for several web workers.
Errors are the gateway's own (``BmsRefused``, ``BmsTimeout``, ``BmsBadAnswer``,
``BmsBusy``, ``BusUnavailable``); the service maps them onto attempt statuses and HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import can
import isotp
import structlog

from passports.bms import protocol
from passports.bms.protocol import (
    Identity,
    Limits,
    Nrc,
    ProtocolError,
    Provisioning,
    Rating,
    Request,
    Response,
    Service,
)
from passports.bms.simulator import isotp_params

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BusConfig:
    """Where the BMS is: a python-can interface, channel and bitrate, and how
    long to wait for each answer."""

    interface: str
    channel: str
    bitrate: int | None = None
    timeout_s: float = 1.0

    @classmethod
    def from_settings(cls) -> BusConfig:
        from django.conf import settings

        return cls(
            interface=settings.BPMOS_CAN_INTERFACE,
            channel=settings.BPMOS_CAN_CHANNEL,
            bitrate=settings.BPMOS_CAN_BITRATE or None,
            timeout_s=settings.BPMOS_BMS_TIMEOUT_S,
        )

    def describe(self) -> str:
        """How an attempt records the bus: ``socketcan:can0@500000``."""
        rate = f"@{self.bitrate}" if self.bitrate else ""
        return f"{self.interface}:{self.channel}{rate}"


class GatewayError(Exception):
    """The BMS could not be provisioned; subclasses say why."""


class BmsRefused(GatewayError):
    """The BMS answered with a negative response code."""

    def __init__(self, *, service: int, did: int, nrc: int):
        self.service, self.did, self.nrc = service, did, nrc
        self.reason = Nrc.describe(nrc)
        super().__init__(
            f"The BMS refused {Service(service).name.lower()} of 0x{did:04X}: "
            f"NRC 0x{nrc:02X} {self.reason}."
        )


class BmsTimeout(GatewayError):
    """The BMS did not answer (or acknowledge a segment) in time."""


class BmsBadAnswer(GatewayError):
    """The BMS answered something that is not a valid answer."""


class BmsBusy(GatewayError):
    """Another transfer to the same node did not finish in time."""


class BusUnavailable(GatewayError):
    """The CAN interface could not be opened."""


_locks: dict[tuple[str, str, int], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(config: BusConfig, node: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(
            (config.interface, config.channel, node), threading.Lock()
        )


class BmsSession:
    """Request/response exchanges with one node over an open ISO-TP stack."""

    def __init__(self, stack: isotp.NotifierBasedCanStack, *, node: int, timeout_s):
        self.stack, self.node, self.timeout_s = stack, node, timeout_s

    def exchange(self, request: Request) -> Response:
        """Send ``request``; the positive answer, or ``BmsRefused``/``BmsTimeout``."""
        try:
            self.stack.send(request.encode(), send_timeout=self.timeout_s)
        except isotp.BlockingSendFailure as exc:
            raise BmsTimeout(
                f"Node {self.node} did not acknowledge the request within "
                f"{self.timeout_s:g} s."
            ) from exc
        deadline = time.monotonic() + self.timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            payload = self.stack.recv(block=True, timeout=remaining)
            if payload is None:
                continue
            try:
                answer = Response.decode(bytes(payload))
            except ProtocolError as exc:
                raise BmsBadAnswer(f"Node {self.node} answered garbage: {exc}") from exc
            if answer.service != request.service:
                continue  # a late answer to something else; not ours
            if not answer.positive:
                assert answer.nrc is not None
                raise BmsRefused(
                    service=request.service, did=request.did, nrc=answer.nrc
                )
            if answer.did != request.did:
                continue
            return answer
        raise BmsTimeout(
            f"Node {self.node} did not answer {request.service.name.lower()} of "
            f"0x{request.did:04X} within {self.timeout_s:g} s."
        )

    def write(self, record: Identity | Rating | Limits) -> None:
        self.exchange(Request(Service.WRITE_DATA, record.did, record.encode()))

    def read(self, did: int) -> Identity | Rating | Limits:
        answer = self.exchange(Request(Service.READ_DATA, did))
        try:
            return protocol.decode_record(did, answer.data)
        except ProtocolError as exc:
            raise BmsBadAnswer(
                f"Node {self.node} read back 0x{did:04X} that does not decode: {exc}"
            ) from exc


@contextmanager
def session(config: BusConfig, node: int) -> Iterator[BmsSession]:
    """An open, exclusive session with ``node``; the bus is closed on exit."""
    protocol.request_id(node)  # validates the node id
    lock = _lock_for(config, node)
    if not lock.acquire(timeout=config.timeout_s * 10 + 5):
        raise BmsBusy(f"Node {node} is busy with another transfer.")
    bus = notifier = stack = None
    try:
        kwargs: dict[str, Any] = {
            "interface": config.interface,
            "channel": config.channel,
        }
        if config.bitrate:
            kwargs["bitrate"] = config.bitrate
        try:
            bus = can.Bus(**kwargs)
        except (can.CanError, OSError, ValueError) as exc:
            raise BusUnavailable(
                f"CAN interface {config.describe()} cannot be opened: {exc}"
            ) from exc
        notifier = can.Notifier(bus, [], timeout=0.05)
        stack = isotp.NotifierBasedCanStack(
            bus,
            notifier,
            address=isotp.Address(
                isotp.AddressingMode.Normal_11bits,
                txid=protocol.request_id(node),
                rxid=protocol.response_id(node),
            ),
            params=isotp_params(config.timeout_s),
            error_handler=lambda error: log.debug(
                "bms_transport_error", node=node, error=str(error)
            ),
        )
        stack.start()
        yield BmsSession(stack, node=node, timeout_s=config.timeout_s)
    finally:
        if stack is not None:
            stack.stop()
        if notifier is not None:
            notifier.stop()
        if bus is not None:
            bus.shutdown()
        lock.release()


def provision(config: BusConfig, node: int, record: Provisioning) -> Provisioning:
    """Write identity, rating and limits to ``node`` (each acknowledged), then
    read all three back; returns what the BMS confirms (the caller compares)."""
    started = time.monotonic()
    with session(config, node) as bms:
        for part in record.records():
            bms.write(part)
        confirmed = Provisioning(
            identity=bms.read(protocol.Did.IDENTITY),  # type: ignore[arg-type]
            rating=bms.read(protocol.Did.RATING),  # type: ignore[arg-type]
            limits=bms.read(protocol.Did.LIMITS),  # type: ignore[arg-type]
        )
    log.info(
        "bms_provisioned",
        node=node,
        bus=config.describe(),
        seconds=round(time.monotonic() - started, 3),
    )
    return confirmed
