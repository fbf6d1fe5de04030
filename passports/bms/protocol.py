"""The BMS provisioning protocol: what goes over CAN, byte by byte.

Layers (docs/passports.md, "BMS provisioning over CAN", has the tables):

* **CAN 2.0A**, classic 8-byte frames, 11-bit identifiers. A BMS is addressed
  by its node id (1-127): the gateway sends on ``0x600 + node`` and the BMS
  answers on ``0x580 + node`` (the same split CANopen uses for its SDOs, so
  the ids are familiar on a plant bus and never collide with a BMS's own
  broadcast frames below 0x580).
* **ISO-TP** (ISO 15765-2) segments a message longer than 7 bytes into a first
  frame, flow control from the receiver, and consecutive frames with sequence
  numbers. The ``can-isotp`` library does this on both ends; nothing here
  segments by hand.
* **UDS-style services** (a subset of ISO 14229, the diagnostic protocol most
  BMS already speak for end-of-line programming): WriteDataByIdentifier
  (0x2E), ReadDataByIdentifier (0x22), their positive answers (+0x40) and the
  negative answer 0x7F with a negative response code (NRC) saying why.
* **Data identifiers** (DIDs, in the vehicle-manufacturer-specific range) and
  their records: ``Identity``, ``Rating`` and ``Limits``, big-endian, fixed
  units (mV, mAh, Wh, 0.1 A, °C) so a value read back compares exactly.

Everything here is pure: encode and decode bytes, no bus, no Django.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar

REQUEST_BASE = 0x600
RESPONSE_BASE = 0x580
NODE_MIN, NODE_MAX = 1, 127
# ISO-TP with a 12-bit length (classic CAN) carries at most 4095 bytes.
MAX_MESSAGE = 4095


class ProtocolError(ValueError):
    """Bytes that are not a well-formed message or record."""


def request_id(node: int) -> int:
    """Arbitration id the gateway sends on to reach ``node``."""
    _check_node(node)
    return REQUEST_BASE + node


def response_id(node: int) -> int:
    """Arbitration id ``node`` answers on."""
    _check_node(node)
    return RESPONSE_BASE + node


def _check_node(node: int) -> None:
    if not (isinstance(node, int) and NODE_MIN <= node <= NODE_MAX):
        raise ProtocolError(f"Node id must be {NODE_MIN}-{NODE_MAX}, not {node!r}.")


class Service(IntEnum):
    READ_DATA = 0x22
    WRITE_DATA = 0x2E
    NEGATIVE_RESPONSE = 0x7F


POSITIVE_OFFSET = 0x40


class Nrc(IntEnum):
    """Negative response codes (ISO 14229-1 Annex A) a BMS answers with."""

    SERVICE_NOT_SUPPORTED = 0x11
    INCORRECT_LENGTH = 0x13
    CONDITIONS_NOT_CORRECT = 0x22
    REQUEST_OUT_OF_RANGE = 0x31
    SECURITY_ACCESS_DENIED = 0x33
    GENERAL_PROGRAMMING_FAILURE = 0x72

    @property
    def reason(self) -> str:
        return _NRC_REASONS[self]

    @classmethod
    def describe(cls, code: int) -> str:
        try:
            return cls(code).reason
        except ValueError:
            return f"negative response 0x{code:02X}"


_NRC_REASONS = {
    Nrc.SERVICE_NOT_SUPPORTED: "service not supported",
    Nrc.INCORRECT_LENGTH: "incorrect message length or format",
    Nrc.CONDITIONS_NOT_CORRECT: "conditions not correct (e.g. contactors closed)",
    Nrc.REQUEST_OUT_OF_RANGE: "request out of range (unknown identifier or value)",
    Nrc.SECURITY_ACCESS_DENIED: "security access denied (BMS locked)",
    Nrc.GENERAL_PROGRAMMING_FAILURE: "general programming failure (EEPROM write)",
}


class Did(IntEnum):
    """Data identifiers of the provisioning records."""

    IDENTITY = 0x0201
    RATING = 0x0202
    LIMITS = 0x0203


# --- messages -------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    service: Service
    did: int
    data: bytes = b""

    def encode(self) -> bytes:
        if self.service == Service.READ_DATA and self.data:
            raise ProtocolError("A read carries no data.")
        return struct.pack(">BH", self.service, self.did) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Request:
        if len(payload) < 3:
            raise ProtocolError("A request is at least 3 bytes.")
        sid, did = struct.unpack_from(">BH", payload)
        try:
            service = Service(sid)
        except ValueError as exc:
            raise ProtocolError(f"Unknown service 0x{sid:02X}.") from exc
        if service == Service.NEGATIVE_RESPONSE:
            raise ProtocolError("0x7F is an answer, not a request.")
        return cls(service, did, bytes(payload[3:]))


@dataclass(frozen=True)
class Response:
    """A positive answer (``nrc`` None) or a negative one."""

    service: Service  # the service answered
    did: int = 0
    data: bytes = b""
    nrc: int | None = None

    @property
    def positive(self) -> bool:
        return self.nrc is None

    def encode(self) -> bytes:
        if self.nrc is not None:
            return bytes([Service.NEGATIVE_RESPONSE, self.service, self.nrc])
        return struct.pack(">BH", self.service + POSITIVE_OFFSET, self.did) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Response:
        if len(payload) < 3:
            raise ProtocolError("An answer is at least 3 bytes.")
        if payload[0] == Service.NEGATIVE_RESPONSE:
            if len(payload) != 3:
                raise ProtocolError("A negative answer is exactly 3 bytes.")
            try:
                service = Service(payload[1])
            except ValueError as exc:
                raise ProtocolError(f"Unknown service 0x{payload[1]:02X}.") from exc
            return cls(service, nrc=payload[2])
        try:
            service = Service(payload[0] - POSITIVE_OFFSET)
        except ValueError as exc:
            raise ProtocolError(f"Unknown answer 0x{payload[0]:02X}.") from exc
        (did,) = struct.unpack_from(">H", payload, 1)
        data = bytes(payload[3:])
        if service == Service.WRITE_DATA and data:
            raise ProtocolError("A write's answer carries no data.")
        return cls(service, did, data)


# --- records --------------------------------------------------------------------

CHEMISTRY_CODES: dict[str, int] = {
    "LFP": 1,
    "NMC": 2,
    "NCA": 3,
    "LMO": 4,
    "LTO": 5,
    "NaION": 6,
}
_CHEMISTRY_BY_CODE = {code: name for name, code in CHEMISTRY_CODES.items()}


class _Reader:
    def __init__(self, payload: bytes):
        self.payload, self.offset = payload, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.payload):
            raise ProtocolError("Record is too short.")
        values = struct.unpack_from(fmt, self.payload, self.offset)
        self.offset += size
        return values

    def text(self, limit: int) -> str:
        (length,) = self.take(">B")
        if length > limit:
            raise ProtocolError(f"Text of {length} bytes; at most {limit}.")
        (raw,) = self.take(f">{length}s")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("Text is not UTF-8.") from exc

    def end(self) -> None:
        if self.offset != len(self.payload):
            raise ProtocolError("Record has trailing bytes.")


def _text(value: str, limit: int, name: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > limit:
        raise ProtocolError(f"{name} is {len(raw)} bytes; at most {limit}.")
    return bytes([len(raw)]) + raw


@dataclass(frozen=True)
class Identity:
    """DID 0x0201: who the pack is. uuid(16) | serial | bpan | model, texts as
    a length byte and UTF-8."""

    did: ClassVar[Did] = Did.IDENTITY
    passport_uuid: uuid.UUID
    serial: str
    bpan: str
    model: str

    SERIAL_MAX: ClassVar[int] = 64
    BPAN_MAX: ClassVar[int] = 21
    MODEL_MAX: ClassVar[int] = 64

    def encode(self) -> bytes:
        return (
            self.passport_uuid.bytes
            + _text(self.serial, self.SERIAL_MAX, "serial")
            + _text(self.bpan, self.BPAN_MAX, "bpan")
            + _text(self.model, self.MODEL_MAX, "model")
        )

    @classmethod
    def decode(cls, payload: bytes) -> Identity:
        reader = _Reader(payload)
        (raw_uuid,) = reader.take(">16s")
        record = cls(
            passport_uuid=uuid.UUID(bytes=raw_uuid),
            serial=reader.text(cls.SERIAL_MAX),
            bpan=reader.text(cls.BPAN_MAX),
            model=reader.text(cls.MODEL_MAX),
        )
        reader.end()
        return record

    def as_dict(self) -> dict[str, Any]:
        return {
            "passportUuid": str(self.passport_uuid),
            "serial": self.serial,
            "bpan": self.bpan,
            "model": self.model,
        }


_RATING = struct.Struct(">BIII")


@dataclass(frozen=True)
class Rating:
    """DID 0x0202: chemistry code (u8), nominal voltage (u32 mV), rated
    capacity (u32 mAh), energy (u32 Wh)."""

    did: ClassVar[Did] = Did.RATING
    chemistry: str
    nominal_voltage_mv: int
    rated_capacity_mah: int
    energy_wh: int

    def encode(self) -> bytes:
        if self.chemistry not in CHEMISTRY_CODES:
            raise ProtocolError(f"Unknown chemistry {self.chemistry!r}.")
        try:
            return _RATING.pack(
                CHEMISTRY_CODES[self.chemistry],
                self.nominal_voltage_mv,
                self.rated_capacity_mah,
                self.energy_wh,
            )
        except struct.error as exc:
            raise ProtocolError(f"Rating out of range: {exc}.") from exc

    @classmethod
    def decode(cls, payload: bytes) -> Rating:
        if len(payload) != _RATING.size:
            raise ProtocolError(f"A rating record is {_RATING.size} bytes.")
        code, voltage, capacity, energy = _RATING.unpack(payload)
        if code not in _CHEMISTRY_BY_CODE:
            raise ProtocolError(f"Unknown chemistry code {code}.")
        return cls(_CHEMISTRY_BY_CODE[code], voltage, capacity, energy)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chemistry": self.chemistry,
            "nominalVoltageMv": self.nominal_voltage_mv,
            "ratedCapacityMah": self.rated_capacity_mah,
            "energyWh": self.energy_wh,
        }


_LIMITS = struct.Struct(">BBHHHHbb")


@dataclass(frozen=True)
class Limits:
    """DID 0x0203: configuration limits. Cells in series and in parallel (u8
    each), cell voltage window (u16 mV each), maximum charge and discharge
    current (u16, 0.1 A), temperature window (i8 °C each)."""

    did: ClassVar[Did] = Did.LIMITS
    cells_in_series: int
    cells_in_parallel: int
    cell_min_mv: int
    cell_max_mv: int
    max_charge_deciamps: int
    max_discharge_deciamps: int
    min_temperature_c: int
    max_temperature_c: int

    def encode(self) -> bytes:
        try:
            return _LIMITS.pack(*(getattr(self, f.name) for f in fields(self)))
        except struct.error as exc:
            raise ProtocolError(f"Limit out of range: {exc}.") from exc

    @classmethod
    def decode(cls, payload: bytes) -> Limits:
        if len(payload) != _LIMITS.size:
            raise ProtocolError(f"A limits record is {_LIMITS.size} bytes.")
        return cls(*_LIMITS.unpack(payload))

    def problems(self) -> list[str]:
        """What a BMS would refuse in these limits (empty when consistent)."""
        found = []
        if not (self.cells_in_series and self.cells_in_parallel):
            found.append("cell counts must be at least 1")
        if self.cell_min_mv >= self.cell_max_mv:
            found.append("cell minimum voltage must be below the maximum")
        if self.min_temperature_c >= self.max_temperature_c:
            found.append("minimum temperature must be below the maximum")
        if not (self.max_charge_deciamps and self.max_discharge_deciamps):
            found.append("current limits must be above zero")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "cellsInSeries": self.cells_in_series,
            "cellsInParallel": self.cells_in_parallel,
            "cellMinVoltageMv": self.cell_min_mv,
            "cellMaxVoltageMv": self.cell_max_mv,
            "maxChargeCurrentA": self.max_charge_deciamps / 10,
            "maxDischargeCurrentA": self.max_discharge_deciamps / 10,
            "minTemperatureC": self.min_temperature_c,
            "maxTemperatureC": self.max_temperature_c,
        }


RECORD_TYPES: dict[int, type[Identity] | type[Rating] | type[Limits]] = {
    Did.IDENTITY: Identity,
    Did.RATING: Rating,
    Did.LIMITS: Limits,
}


def decode_record(did: int, payload: bytes) -> Identity | Rating | Limits:
    """The record a DID's bytes hold (``ProtocolError`` for an unknown DID)."""
    try:
        record_type = RECORD_TYPES[did]
    except KeyError as exc:
        raise ProtocolError(f"Unknown data identifier 0x{did:04X}.") from exc
    return record_type.decode(payload)


@dataclass(frozen=True)
class Provisioning:
    """Everything written to a BMS, in the order it is written."""

    identity: Identity
    rating: Rating
    limits: Limits

    def records(self) -> tuple[Identity, Rating, Limits]:
        return (self.identity, self.rating, self.limits)

    def as_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity.as_dict(),
            "rating": self.rating.as_dict(),
            "limits": self.limits.as_dict(),
        }

    def differences(self, other: Provisioning) -> dict[str, dict[str, Any]]:
        """Field by field, where ``other`` (what the BMS confirmed) differs:
        ``{"identity.serial": {"written": ..., "confirmed": ...}}``."""
        found: dict[str, dict[str, Any]] = {}
        for group, mine, theirs in zip(
            ("identity", "rating", "limits"),
            self.as_dict().values(),
            other.as_dict().values(),
            strict=True,
        ):
            for name, value in mine.items():
                if theirs.get(name) != value:
                    found[f"{group}.{name}"] = {
                        "written": value,
                        "confirmed": theirs.get(name),
                    }
        return found
