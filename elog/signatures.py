"""Electronic signatures (21 CFR Part 11 style: 11.50, 11.70, 11.200).

Two steps, in this order, so that a refused password leaves its audit record
and changes nothing else:

1. ``signature_check`` (outside the caller's transaction): the signer re-enters
   their password; a wrong one is audited (``signature.failed``) and counted,
   and past ``BPMOS_SIGNATURE_FAILURE_LIMIT`` wrong passwords in
   ``BPMOS_SIGNATURE_FAILURE_WINDOW_SECONDS`` signing is refused (429
   ``signature_locked``, audited once as ``signature.locked_out``).
2. ``signature_record`` (inside the caller's transaction, after the record it
   signs exists): writes the signature bound to that record's hash and audits
   it (``signature.signed``). If the caller's write is refused, the signature
   rolls back with it.

elog knows no domain app: the callers (passports, runbooks) name the record
(``record_type``, ``record_id``) and give the hash it is bound to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from bpmos.auditkeys import keyring
from bpmos.errors import DomainError, Forbidden, InvalidInput
from elog import audit
from elog.models import ElectronicSignature, SignatureMeaning

log = structlog.get_logger(__name__)

METHOD_PASSWORD = "password"
PASSWORD_MAX_LENGTH = 4096  # Django's hashers refuse longer ones anyway


class SignatureLocked(DomainError):
    """Too many wrong passwords re-entered to sign (429)."""

    status_code = 429
    code = "signature_locked"


@dataclass(frozen=True)
class CheckedSigner:
    """A signer whose password was just re-entered and checked."""

    user: Any
    meaning: str


def _failures_key(user) -> str:
    return f"signature_failures:user:{user.pk}"


def _failures(user) -> int:
    try:
        return int(cache.get(_failures_key(user)) or 0)
    except Exception as exc:  # a down cache must not stop QA signing
        log.warning("signature_throttle_unavailable", error=type(exc).__name__)
        return 0


def _count_failure(user) -> int:
    key = _failures_key(user)
    window = settings.BPMOS_SIGNATURE_FAILURE_WINDOW_SECONDS
    try:
        if cache.add(key, 1, timeout=window):
            return 1
        return int(cache.incr(key))
    except Exception as exc:
        log.warning("signature_throttle_unavailable", error=type(exc).__name__)
        return 0


def signature_check(*, signer: Any, password: Any, meaning: str) -> CheckedSigner:
    """Check the password a signer re-entered to sign with ``meaning``.

    400 ``validation_error`` on ``password`` when none was sent; 403
    ``signature_invalid`` when it is wrong (audited); 429 ``signature_locked``
    after too many wrong ones. Call it outside any transaction that a refusal
    rolls back, or the failure's audit record is lost with it."""
    if meaning not in SignatureMeaning.values:
        raise InvalidInput(
            f"Unknown signature meaning {meaning!r}.",
            code="validation_error",
            details={"meaning": [f"One of {', '.join(SignatureMeaning.values)}."]},
        )
    label = SignatureMeaning(meaning).label
    if not getattr(signer, "is_authenticated", False) or not signer.is_active:
        raise Forbidden("Only a signed-in, active user can sign.")
    if not isinstance(password, str) or not password:
        raise InvalidInput(
            f"{label} is a signed step: re-enter your password to sign it.",
            code="validation_error",
            details={"password": ["Required: your password, to sign."]},
        )
    limit = settings.BPMOS_SIGNATURE_FAILURE_LIMIT
    if _failures(signer) >= limit:
        raise SignatureLocked(
            "Too many wrong passwords; signing is locked for a while.",
            details={
                "retryAfterSeconds": settings.BPMOS_SIGNATURE_FAILURE_WINDOW_SECONDS
            },
        )
    if len(password) > PASSWORD_MAX_LENGTH or not signer.check_password(password):
        failures = _count_failure(signer)
        audit.record(
            actor=signer,
            action="signature.failed",
            target=signer,
            after={"meaning": meaning, "failures": failures},
        )
        if failures == limit:
            audit.record(
                actor=signer,
                action="signature.locked_out",
                target=signer,
                after={
                    "meaning": meaning,
                    "seconds": settings.BPMOS_SIGNATURE_FAILURE_WINDOW_SECONDS,
                },
            )
        raise Forbidden(
            "The password does not match: not signed.", code="signature_invalid"
        )
    return CheckedSigner(user=signer, meaning=meaning)


def _printed_name(user) -> str:
    full = f"{user.first_name} {user.last_name}".strip()
    return (full or user.username)[:300]


def _content(sig: ElectronicSignature) -> dict[str, Any]:
    signed_at = sig.signed_at.astimezone(UTC).isoformat()
    return {
        "signer_id": sig.signer_id,
        "signer_username": sig.signer_username,
        "signer_name": sig.signer_name,
        "meaning": sig.meaning,
        "method": sig.method,
        "signed_at": signed_at,
        "record_type": sig.record_type,
        "record_id": sig.record_id,
        "bound_hash": sig.bound_hash,
    }


def compute_hash(sig: ElectronicSignature, *, key: bytes) -> str:
    """HMAC-SHA256 over the canonical JSON of a signature's content."""
    canonical = json.dumps(_content(sig), sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def signature_record(
    *,
    checked: CheckedSigner,
    record_type: str,
    record_id: Any,
    bound_hash: str,
    signed_at: datetime | None = None,
) -> ElectronicSignature:
    """Write the signature of a checked signer bound to ``bound_hash`` (the
    record's own hash), audited as ``signature.signed``; in the caller's
    transaction."""
    user = checked.user
    ring = keyring()
    sig = ElectronicSignature(
        signer=user,
        signer_username=user.username,
        signer_name=_printed_name(user),
        meaning=checked.meaning,
        method=METHOD_PASSWORD,
        signed_at=signed_at or timezone.now(),
        record_type=record_type,
        record_id=str(record_id),
        bound_hash=bound_hash,
        key_id=ring.current_id,
    )
    sig.hash = compute_hash(sig, key=ring.current_key)
    sig.save()
    audit.record(
        actor=user,
        action="signature.signed",
        target_type="elog.electronicsignature",
        target_id=str(sig.pk),
        after={
            "meaning": sig.meaning,
            "record_type": record_type,
            "record_id": sig.record_id,
            "bound_hash": bound_hash,
            "hash": sig.hash,
        },
    )
    try:
        cache.delete(_failures_key(user))
    except Exception as exc:
        log.warning("signature_throttle_unavailable", error=type(exc).__name__)
    return sig


def signature_valid(sig: ElectronicSignature) -> bool:
    """Whether a stored signature still matches its hash (False when its key
    is not in the keyring)."""
    key = keyring().key(sig.key_id)
    return key is not None and hmac.compare_digest(compute_hash(sig, key=key), sig.hash)


def signature_as_dict(sig: ElectronicSignature) -> dict[str, Any]:
    """A signature as the trace shows it (camelCase)."""
    return {
        "signer": sig.signer_username,
        "signerName": sig.signer_name,
        "meaning": sig.meaning,
        "meaningLabel": sig.get_meaning_display(),
        "method": sig.method,
        "signedAt": sig.signed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "boundHash": sig.bound_hash,
        "hash": sig.hash,
    }
