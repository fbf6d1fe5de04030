"""Idempotency keys: claim a key, complete it with the answer, release it.

The rules (Stripe's, and the IETF httpapi draft's status codes):

* a key is 1-255 printable ASCII characters (else 400 ``idempotency_key_invalid``);
* keys belong to a user: another user's identical key is another key;
* the first request with a key claims it; the same key with the same method,
  path and body within ``BPMOS_IDEMPOTENCY_KEY_HOURS`` replays the first
  answer; with anything else it is refused (422 ``idempotency_key_reused``);
* while the first is still running, the key is refused with 409
  ``idempotency_in_progress`` (the client retries later and gets the answer);
* answers of 5xx (and 429) are not kept: the claim is released and a retry
  runs the request again.

The middleware (``bpmos.idempotency.middleware``) calls these around a view.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from bpmos import audit
from bpmos.errors import Conflict, DomainError, InvalidInput
from bpmos.idempotency.models import IdempotencyKey, KeyStatus

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")

# Headers of the first answer that a replay does not repeat: its own request
# id, cookies, and what the server recomputes.
_UNSTORED_HEADERS = frozenset({"x-request-id", "set-cookie", "content-length"})


class KeyReused(DomainError):
    """The key was first sent with another request (422)."""

    status_code = 422
    code = "idempotency_key_reused"


class KeyInProgress(Conflict):
    """A request with the key is still running (409)."""

    code = "idempotency_in_progress"


@dataclass(frozen=True)
class Claim:
    """The right to run the request of a key, until ``lease``."""

    pk: int
    lease: Any


def key_check(value: str) -> str:
    """The header's value, or 400 ``idempotency_key_invalid``."""
    if not KEY_RE.fullmatch(value):
        raise InvalidInput(
            f"The {HEADER} header must be 1 to 255 printable ASCII characters.",
            code="idempotency_key_invalid",
            details={"header": HEADER, "length": len(value)},
        )
    return value


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """SHA-256 of the method, the path with its query and the body; a JSON body
    is compared by its content (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":")
        ).encode()
    except ValueError:  # not JSON (or not UTF-8): the bytes as sent
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def key_claim(
    *, user: Any, key: str, method: str, path: str, fingerprint: str
) -> Claim | IdempotencyKey:
    """Claim ``key`` for this request: a ``Claim`` to run it, the completed
    record to replay, or ``KeyReused`` (422) / ``KeyInProgress`` (409).

    Committed at once (its own transaction), so a second request sees the
    claim while the first still runs."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.BPMOS_IDEMPOTENCY_LOCK_SECONDS)
    for _ in range(3):
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    user=user,
                    key=key,
                    method=method,
                    path=path,
                    fingerprint=fingerprint,
                    locked_until=lease,
                    created_at=now,
                    expires_at=now
                    + timedelta(hours=settings.BPMOS_IDEMPOTENCY_KEY_HOURS),
                )
            return Claim(pk=record.pk, lease=lease)
        except IntegrityError:
            pass  # the key is known: look at what it holds
        record = IdempotencyKey.objects.filter(user=user, key=key).first()
        if record is None:
            continue  # pruned or released meanwhile
        if record.expires_at <= now:
            # Expired but not pruned yet: as good as absent.
            IdempotencyKey.objects.filter(
                pk=record.pk, expires_at=record.expires_at
            ).delete()
            continue
        if record.fingerprint != fingerprint:
            raise KeyReused(
                f"This {HEADER} was first used with another request "
                f"({record.method} {record.path} and its body); use a new key "
                "for a new request.",
                details={"method": record.method, "path": record.path},
            )
        if record.status == KeyStatus.COMPLETED:
            return record
        if record.locked_until > now:
            raise _in_progress(record)
        # The first runner's lease ran out: it is gone (its work rolled back)
        # or slow; take the key over. Only one retry wins this update.
        taken = IdempotencyKey.objects.filter(
            pk=record.pk, status=KeyStatus.STARTED, locked_until=record.locked_until
        ).update(locked_until=lease)
        if taken:
            return Claim(pk=record.pk, lease=lease)
    raise KeyInProgress(
        f"A request with this {HEADER} is still running; retry shortly.",
        details={"retry_after_seconds": 1},
    )


def _in_progress(record: IdempotencyKey) -> KeyInProgress:
    wait = max(1, int((record.locked_until - timezone.now()).total_seconds()))
    return KeyInProgress(
        f"A request with this {HEADER} is still running; retry shortly.",
        details={"retry_after_seconds": min(wait, 5)},
    )


def key_lock(*, claim: Claim) -> IdempotencyKey | None:
    """Lock the claimed record inside the caller's transaction (PostgreSQL: a
    runner whose lease was taken over holds it until it commits, so the new one
    waits and then sees the answer); None when it is gone."""
    return IdempotencyKey.objects.select_for_update().filter(pk=claim.pk).first()


def response_storable(response: Any) -> bool:
    """Whether an answer is kept for replay: not a 5xx or 429 (the client may
    retry those and the request runs again), not a stream."""
    status = response.status_code
    return status < 500 and status != 429 and not getattr(response, "streaming", False)


def key_complete(*, claim: Claim, response: Any) -> bool:
    """Store the answer on the claimed key (in the caller's transaction: the
    view's work and this record commit together). False when the claim was
    lost (taken over after its lease ran out)."""
    headers = {
        name: value
        for name, value in response.items()
        if name.lower() not in _UNSTORED_HEADERS
    }
    return bool(
        IdempotencyKey.objects.filter(
            pk=claim.pk, status=KeyStatus.STARTED, locked_until=claim.lease
        ).update(
            status=KeyStatus.COMPLETED,
            response_status=response.status_code,
            response_headers=headers,
            response_body=bytes(response.content),
            completed_at=timezone.now(),
        )
    )


def key_release(*, claim: Claim) -> None:
    """Forget a claim whose request failed (5xx, 429, a crash): a retry runs it."""
    IdempotencyKey.objects.filter(
        pk=claim.pk, status=KeyStatus.STARTED, locked_until=claim.lease
    ).delete()


def keys_prune(*, now: Any = None, actor: Any = None) -> int:
    """Delete the keys past their 24 hours; how many.

    The beat task calls it with no actor (housekeeping, not audited); the
    admin's "purge expired" action names its user, and the purge is audited
    as ``idempotency.keys_purged`` with the count."""
    now = now or timezone.now()
    with transaction.atomic():
        deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now).delete()
        if actor is not None:
            audit.record(
                actor=actor,
                action="idempotency.keys_purged",
                target_type=IdempotencyKey._meta.label_lower,
                target_id="",
                after={"deleted": deleted, "expired_before": now.isoformat()},
            )
    return deleted


def key_in_progress(record: IdempotencyKey, *, now: Any = None) -> bool:
    """Whether a request still runs under the key (started, lease not out)."""
    return record.status == KeyStatus.STARTED and record.locked_until > (
        now or timezone.now()
    )


@transaction.atomic
def key_delete(*, key_id: int, actor: Any) -> None:
    """Delete one stored key (the admin's delete), audited with what it held.

    Refused (409) while its request still runs: a retry could then run the
    request a second time beside the first. A deleted completed key means the
    next request with it runs again, which is why only admins may."""
    record = IdempotencyKey.objects.select_for_update().filter(pk=key_id).first()
    if record is None:
        return
    if key_in_progress(record):
        raise KeyInProgress(
            "A request with this key is still running; delete it once it is done.",
            details={"key_id": key_id},
        )
    snapshot = {
        "user": record.user_id,
        "key": record.key,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "response_status": record.response_status,
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
    }
    record.delete()
    audit.record(
        actor=actor,
        action="idempotency.key_deleted",
        target_type=IdempotencyKey._meta.label_lower,
        target_id=str(key_id),
        before=snapshot,
    )
