"""BMS provisioning: write a pack's identity and configuration to its BMS over
CAN, read back what the BMS confirms, and record the outcome.

``passport_provision`` is the one use case. In order:

1. check the input (400 naming the field) and the lifecycle's own rule for a
   ``provisioned`` event (``lifecycle.apply``: only a pack, only after QA
   passed; 409) and the version the caller read (409 ``version_conflict``)
   BEFORE a frame is sent, so nothing reaches the BMS of a refused pack;
2. record a ``pending`` ``ProvisioningAttempt`` (committed, so an attempt in
   flight or cut short by a crash is visible);
3. talk to the BMS through ``passports.bms.gateway`` outside any transaction
   (a transfer takes up to a few timeouts; no row lock is held meanwhile),
   one transfer per node at a time across processes (a cache lock);
4. finish the attempt:

   ============  ==========================================  ===================
   outcome       attempt / ledger / audit                    HTTP
   ============  ==========================================  ===================
   confirmed     confirmed; ``provisioned`` appended         201
   refused       refused (NRC and reason); audited           409 ``bms_refused``
   mismatch      mismatch (differing fields); audited        502 ``bms_mismatch``
   timeout       timeout; audited                            503 ``bms_timeout``
   bus down      failed; audited                             503 ``bms_unavailable``
   bad answer    failed; audited                             502 ``bms_bad_answer``
   busy node     failed; audited                             409 ``bms_busy``
   ============  ==========================================  ===================

The ``provisioned`` event is appended at the version read in step 1: if the
passport changed during the transfer (QA failed meanwhile), the append refuses
and the attempt is recorded as failed rather than stamping a stale decision.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from bpmos.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotFound,
)
from elog import audit
from passports import ledger, lifecycle
from passports.bms import gateway, protocol, simulator
from passports.models import (
    EventKind,
    Kind,
    Passport,
    ProvisioningAttempt,
    ProvisioningStatus,
)


class BadGateway(DomainError):
    """The field device answered, but not with what was asked of it (502)."""

    status_code = 502
    code = "bad_gateway"


# Per chemistry: nominal cell voltage (V) and the cell voltage window (mV) a
# BMS protects, from the usual datasheet values of each chemistry.
CELL_DEFAULTS: dict[str, tuple[Decimal, int, int]] = {
    "LFP": (Decimal("3.2"), 2500, 3650),
    "NMC": (Decimal("3.7"), 3000, 4200),
    "NCA": (Decimal("3.6"), 2800, 4200),
    "LMO": (Decimal("3.7"), 3000, 4200),
    "LTO": (Decimal("2.4"), 1500, 2850),
    "NaION": (Decimal("3.1"), 1500, 4000),
}
# Default current limits as C-rates of the rated capacity, and temperatures.
CHARGE_C_RATE, DISCHARGE_C_RATE = Decimal("0.5"), Decimal("1")
MIN_TEMPERATURE_C, MAX_TEMPERATURE_C = -20, 60

# config key -> (Limits field, kind, lowest, highest)
_CONFIG_FIELDS: dict[str, tuple[str, str, Decimal, Decimal]] = {
    "cellsInSeries": ("cells_in_series", "int", Decimal(1), Decimal(255)),
    "cellsInParallel": ("cells_in_parallel", "int", Decimal(1), Decimal(255)),
    "cellMinVoltageMv": ("cell_min_mv", "int", Decimal(500), Decimal(5000)),
    "cellMaxVoltageMv": ("cell_max_mv", "int", Decimal(500), Decimal(5000)),
    "maxChargeCurrentA": (
        "max_charge_deciamps",
        "amps",
        Decimal("0.1"),
        Decimal("6553.5"),
    ),
    "maxDischargeCurrentA": (
        "max_discharge_deciamps",
        "amps",
        Decimal("0.1"),
        Decimal("6553.5"),
    ),
    "minTemperatureC": ("min_temperature_c", "int", Decimal(-40), Decimal(85)),
    "maxTemperatureC": ("max_temperature_c", "int", Decimal(-40), Decimal(85)),
}
CONFIG_KEYS = tuple(_CONFIG_FIELDS)


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid input: {field}: {message}",
        code="validation_error",
        details={field: [message]},
    )


# --- what is written --------------------------------------------------------------


def _deciamps(amps: Decimal) -> int:
    return int((amps * 10).to_integral_value(rounding=ROUND_HALF_UP))


def default_limits(passport: Passport) -> protocol.Limits:
    """The limits a pack gets when the request names none: cells in series from
    its nominal voltage and chemistry, in parallel from its genealogy (cells in
    its modules) when that divides evenly, C-rate currents, the usual window."""
    cell_v, cell_min, cell_max = CELL_DEFAULTS[passport.chemistry]
    series = int(
        (Decimal(passport.nominal_voltage_v) / cell_v).to_integral_value(
            rounding=ROUND_HALF_UP
        )
    )
    series = min(max(series, 1), 255)
    cells = Passport.objects.filter(kind=Kind.CELL, parent__parent=passport).count()
    parallel = cells // series if cells and cells % series == 0 else 1
    capacity = Decimal(passport.rated_capacity_ah)
    return protocol.Limits(
        cells_in_series=series,
        cells_in_parallel=min(max(parallel, 1), 255),
        cell_min_mv=cell_min,
        cell_max_mv=cell_max,
        max_charge_deciamps=min(max(_deciamps(capacity * CHARGE_C_RATE), 1), 65535),
        max_discharge_deciamps=min(
            max(_deciamps(capacity * DISCHARGE_C_RATE), 1), 65535
        ),
        min_temperature_c=MIN_TEMPERATURE_C,
        max_temperature_c=MAX_TEMPERATURE_C,
    )


def _limits(passport: Passport, config: Any) -> protocol.Limits:
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise _invalid("config", "An object of limits.")
    unknown = sorted(set(config) - set(_CONFIG_FIELDS))
    if unknown:
        raise _invalid(
            f"config.{unknown[0]}", f"Unknown limit; one of {', '.join(CONFIG_KEYS)}."
        )
    defaults = default_limits(passport)
    values = {name: getattr(defaults, name) for name, *_ in _CONFIG_FIELDS.values()}
    for key, raw in config.items():
        name, kind, low, high = _CONFIG_FIELDS[key]
        field = f"config.{key}"
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise _invalid(field, "Must be a number.")
        try:
            number = Decimal(str(raw))
        except ArithmeticError as exc:
            raise _invalid(field, "Must be a number.") from exc
        if not number.is_finite() or not (low <= number <= high):
            raise _invalid(field, f"Must be between {low} and {high}.")
        if kind == "int":
            if number != number.to_integral_value():
                raise _invalid(field, "Must be a whole number.")
            values[name] = int(number)
        else:
            if number * 10 != (number * 10).to_integral_value():
                raise _invalid(field, "At most one decimal (0.1 A).")
            values[name] = _deciamps(number)
    limits = protocol.Limits(**values)
    problems = limits.problems()
    if problems:
        raise _invalid("config", problems[0].capitalize() + ".")
    return limits


def record_for(passport: Passport, config: Any = None) -> protocol.Provisioning:
    """What is written to a pack's BMS: its identity, rating and limits."""
    thousand = Decimal(1000)
    return protocol.Provisioning(
        identity=protocol.Identity(
            passport_uuid=passport.uuid,
            serial=passport.serial,
            bpan=passport.bpan or "",
            model=passport.model,
        ),
        rating=protocol.Rating(
            chemistry=passport.chemistry,
            nominal_voltage_mv=int(Decimal(passport.nominal_voltage_v) * thousand),
            rated_capacity_mah=int(Decimal(passport.rated_capacity_ah) * thousand),
            energy_wh=int(Decimal(passport.energy_kwh) * thousand),
        ),
        limits=_limits(passport, config),
    )


# --- the use case -----------------------------------------------------------------


def _node(node_id: Any) -> int:
    if node_id is None:
        return settings.BPMOS_BMS_DEFAULT_NODE
    if (
        isinstance(node_id, bool)
        or not isinstance(node_id, int)
        or not (protocol.NODE_MIN <= node_id <= protocol.NODE_MAX)
    ):
        raise _invalid(
            "nodeId", f"A node id from {protocol.NODE_MIN} to {protocol.NODE_MAX}."
        )
    return node_id


@contextmanager
def _node_lock(bus: gateway.BusConfig, node: int) -> Iterator[None]:
    """One transfer per bus and node across web processes (the gateway's own
    lock covers threads of one process). Expires on its own if a process dies."""
    key = f"bms-node-lock:{bus.interface}:{bus.channel}:{node}"
    hold = int(bus.timeout_s * 10) + 5
    token = uuid.uuid4().hex
    deadline = time.monotonic() + hold
    while not cache.add(key, token, timeout=hold):
        if time.monotonic() > deadline:
            raise gateway.BmsBusy(f"Node {node} is busy with another transfer.")
        time.sleep(0.05)
    try:
        yield
    finally:
        if cache.get(key) == token:
            cache.delete(key)


def _finish(
    attempt: ProvisioningAttempt,
    status: str,
    *,
    actor: Any,
    error: str = "",
    confirmed: dict | None = None,
    details: dict | None = None,
) -> None:
    """Record an attempt that does not reach the ledger, and audit it."""
    attempt.status = status
    attempt.error = error[:300]
    attempt.confirmed = confirmed or {}
    attempt.finished_at = timezone.now()
    with transaction.atomic():
        attempt.save(update_fields=["status", "error", "confirmed", "finished_at"])
        audit.record(
            actor=actor,
            action=f"passport.provisioning_{status}",
            target=attempt.passport,
            after={
                "attemptId": attempt.pk,
                "node": attempt.node_id,
                "interface": attempt.interface,
                "status": status,
                "error": attempt.error,
                **(details or {}),
            },
        )


def passport_provision(
    *,
    passport_id: int,
    node_id: Any = None,
    config: Any = None,
    expected_version: Any = None,
    actor: Any,
) -> ProvisioningAttempt:
    """Provision a pack's BMS (see the module docstring); the confirmed attempt,
    or a ``DomainError`` after the failed attempt has been recorded."""
    node = _node(node_id)
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 1
    ):
        raise _invalid("expectedVersion", "The version you read: 1 or more.")
    try:
        passport = Passport.objects.get(pk=passport_id)
    except Passport.DoesNotExist as exc:
        raise NotFound(f"Passport {passport_id} does not exist.") from exc
    if expected_version is not None and expected_version != passport.version:
        raise Conflict(
            f"{passport} is at version {passport.version}, not {expected_version}: "
            "someone else changed it. Re-read and retry.",
            code="version_conflict",
            details={"expected": expected_version, "actual": passport.version},
        )
    # The lifecycle's rule for the event this will append, before any frame.
    lifecycle.apply(ledger.snapshot_of(passport), EventKind.PROVISIONED, {})
    try:
        record = record_for(passport, config)
        for part in record.records():
            part.encode()  # e.g. a serial longer than the BMS stores
    except protocol.ProtocolError as exc:
        raise _invalid("passport", str(exc)) from exc

    bus = gateway.BusConfig.from_settings()
    user = actor if getattr(actor, "is_authenticated", False) else None
    attempt = ProvisioningAttempt.objects.create(
        passport=passport,
        requested_by=user,
        interface=bus.describe(),
        node_id=node,
        written=record.as_dict(),
    )
    if settings.BPMOS_BMS_SIMULATOR and bus.interface == "virtual":
        simulator.ensure_embedded(
            channel=bus.channel, node=node, timeout_s=bus.timeout_s
        )

    try:
        with _node_lock(bus, node):
            confirmed = gateway.provision(bus, node, record)
    except gateway.BmsRefused as exc:
        nrc = {"nrc": f"0x{exc.nrc:02X}", "reason": exc.reason}
        _finish(attempt, ProvisioningStatus.REFUSED, actor=actor, error=str(exc))
        raise Conflict(
            str(exc), code="bms_refused", details={"attemptId": attempt.pk, **nrc}
        ) from exc
    except gateway.BmsTimeout as exc:
        _finish(attempt, ProvisioningStatus.TIMEOUT, actor=actor, error=str(exc))
        raise DependencyUnavailable(
            str(exc), code="bms_timeout", details={"attemptId": attempt.pk}
        ) from exc
    except gateway.BusUnavailable as exc:
        _finish(attempt, ProvisioningStatus.FAILED, actor=actor, error=str(exc))
        raise DependencyUnavailable(
            str(exc), code="bms_unavailable", details={"attemptId": attempt.pk}
        ) from exc
    except gateway.BmsBusy as exc:
        _finish(attempt, ProvisioningStatus.FAILED, actor=actor, error=str(exc))
        raise Conflict(
            str(exc), code="bms_busy", details={"attemptId": attempt.pk}
        ) from exc
    except gateway.BmsBadAnswer as exc:
        _finish(attempt, ProvisioningStatus.FAILED, actor=actor, error=str(exc))
        raise BadGateway(
            str(exc), code="bms_bad_answer", details={"attemptId": attempt.pk}
        ) from exc
    except Exception as exc:
        # Never leave an attempt pending behind a crash; the envelope says 500.
        _finish(attempt, ProvisioningStatus.FAILED, actor=actor, error=repr(exc))
        raise

    differences = record.differences(confirmed)
    if differences:
        message = "The BMS confirmed other values than were written: " + ", ".join(
            differences
        )
        _finish(
            attempt,
            ProvisioningStatus.MISMATCH,
            actor=actor,
            error=message,
            confirmed=confirmed.as_dict(),
            details={"differences": differences},
        )
        raise BadGateway(
            message,
            code="bms_mismatch",
            details={"attemptId": attempt.pk, "differences": differences},
        )

    try:
        with transaction.atomic():
            attempt.status = ProvisioningStatus.CONFIRMED
            attempt.confirmed = confirmed.as_dict()
            attempt.finished_at = timezone.now()
            attempt.save(update_fields=["status", "confirmed", "finished_at"])
            ledger.append(
                passport=passport.pk,
                kind=EventKind.PROVISIONED,
                data={
                    "attemptId": attempt.pk,
                    "node": node,
                    "interface": attempt.interface,
                    "confirmed": attempt.confirmed,
                },
                actor=actor,
                expected_version=passport.version,
            )
    except DomainError as exc:
        # The BMS holds the record but the passport moved on meanwhile.
        _finish(
            attempt,
            ProvisioningStatus.FAILED,
            actor=actor,
            error=f"Confirmed by the BMS, refused by the ledger: {exc.message}",
            confirmed=confirmed.as_dict(),
        )
        raise
    return attempt


def attempt_list(*, passport: Passport):
    """A passport's provisioning attempts, newest first."""
    return ProvisioningAttempt.objects.filter(passport=passport).select_related(
        "requested_by", "passport"
    )
