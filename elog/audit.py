"""The audit writer: ``record()`` is how every write in BPM-OS is audited.

Call it from the service that makes the change, inside its transaction, with
the before/after state; the request id, client address and source come from
``bpmos.context`` (bound per request by the middleware).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from datetime import UTC
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from bpmos import context
from bpmos.auditkeys import keyring
from elog.models import AuditRecord

GENESIS_HASH = "0" * 64
# Any constant works; it names the advisory lock that serialises chain appends.
_CHAIN_LOCK_KEY = 0x42504D4F5341  # "BPMOSA"

# The fields covered by the hash, in a fixed order.
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "before",
    "after",
    "request_id",
    "client_address",
    "source",
    "prev_hash",
)


def normalize_json(value: Any) -> Any:
    """Round-trip through JSON so what is stored is exactly what is hashed."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


_EXACT_LIMIT = 2**53  # beyond this a float no longer holds every integer


def canonical_numbers(value: Any) -> Any:
    """Numbers past 2**53 as floats, so a jsonb round trip hashes the same.

    PostgreSQL's jsonb keeps numbers as decimals and hands 1e20 back as the
    integer 100000000000000000000; as floats both sides agree. (Integers that
    large differ in the hash only past float precision.)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if abs(value) >= _EXACT_LIMIT else value
    if isinstance(value, dict):
        return {key: canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [canonical_numbers(item) for item in value]
    return value


def compute_hash(fields: dict[str, Any], *, key: bytes | None = None) -> str:
    """HMAC-SHA256 over the canonical JSON of a record's hashed fields, with
    ``key`` (by default the audit keyring's current key)."""
    content = {name: fields[name] for name in HASHED_FIELDS}
    content["before"] = canonical_numbers(content["before"])
    content["after"] = canonical_numbers(content["after"])
    occurred = content["occurred_at"]
    if hasattr(occurred, "isoformat"):
        content["occurred_at"] = occurred.astimezone(UTC).isoformat()
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    if key is None:
        key = keyring().current_key
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def record_fields(rec: AuditRecord) -> dict[str, Any]:
    """The hashed fields of a stored record, as ``compute_hash`` expects them."""
    return {name: getattr(rec, name) for name in HASHED_FIELDS}


def _normalize_address(address: str | None) -> str | None:
    """The address as the database will return it, so the hash stays valid.

    GenericIPAddressField normalises IPv6 (lower case, compressed) on save;
    hashing the raw header value would make such a record fail verification.
    """
    if not address:
        return None
    return AuditRecord._meta.get_field("client_address").get_prep_value(address)


def _lock_chain() -> None:
    # PostgreSQL: one transaction-scoped advisory lock orders all appends. SQLite
    # runs its transactions BEGIN IMMEDIATE (settings), which already serialises.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def _describe(target: Any) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    meta = getattr(target, "_meta", None)
    if meta is not None:
        return meta.label_lower, str(target.pk), str(target)[:200]
    return type(target).__name__.lower(), "", str(target)[:200]


def _chain_fields(
    *,
    actor: Any,
    action: str,
    target: Any,
    before: Any,
    after: Any,
    target_type: str | None,
    target_id: str | None,
    last: tuple[int, str] | None,
) -> dict[str, Any]:
    """Every field of the record that follows ``last`` (seq, hash), hash and key
    id included: signed with the keyring's current key."""
    ctx = context.current()
    kind, pk, label = _describe(target)
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    fields: dict[str, Any] = {
        "seq": (last[0] + 1) if last else 1,
        "occurred_at": timezone.now(),
        "actor_id": actor_obj.pk if actor_obj else None,
        "actor_username": actor_obj.get_username() if actor_obj else "",
        "actor_role": getattr(actor_obj, "role", "") if actor_obj else "",
        "action": action,
        "target_type": target_type if target_type is not None else kind,
        "target_id": target_id if target_id is not None else pk,
        "target_repr": label,
        "before": normalize_json(before),
        "after": normalize_json(after),
        "request_id": ctx.request_id,
        "client_address": _normalize_address(ctx.client_address),
        "source": ctx.source,
        "prev_hash": last[1] if last else GENESIS_HASH,
    }
    ring = keyring()
    fields["hash"] = compute_hash(fields, key=ring.current_key)
    fields["key_id"] = ring.current_id
    return fields


def record(
    *,
    actor: Any,
    action: str,
    target: Any = None,
    before: Any = None,
    after: Any = None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> AuditRecord:
    """Append one audit record to the chain (within the caller's transaction).

    ``actor`` is the user who acted (None for the system itself); ``action`` is
    ``entity.past_verb`` (``user.role_changed``). ``before``/``after`` are
    JSON-able snapshots of what changed.
    """
    with transaction.atomic():
        _lock_chain()
        last = AuditRecord.objects.order_by("-seq").values_list("seq", "hash").first()
        fields = _chain_fields(
            actor=actor,
            action=action,
            target=target,
            before=before,
            after=after,
            target_type=target_type,
            target_id=target_id,
            last=last,
        )
        return AuditRecord.objects.create(**fields)


_FIELD_NAMES = (*HASHED_FIELDS, "hash", "key_id")


@functools.lru_cache(maxsize=64)
def _insert_sql(vendor: str, rows: int) -> str:
    """``INSERT`` of ``rows`` records, every column of ``_FIELD_NAMES``."""
    table = connection.ops.quote_name(AuditRecord._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(AuditRecord._meta.get_field(name).column)
        for name in _FIELD_NAMES
    )
    one = f"({', '.join(['%s'] * len(_FIELD_NAMES))})"
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * rows)}"


def record_many(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append ``entries`` (each the keyword arguments of ``record``) to the
    chain, in order, in the caller's transaction: one chain lock, one read of
    the head and one multi-row ``INSERT`` for all of them, no savepoint. The
    records are exactly those ``record`` would store one by one (same fields,
    same chaining, same hashes for the same inputs). Returns their fields.

    Must run inside the caller's atomic block (an error rolls the caller's
    whole transaction back). Each value is prepared by its model field's own
    ``get_db_prep_save``, so the row is exactly what ``record()`` stores.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record_many needs the caller's transaction.")
    if not entries:
        return []
    _lock_chain()
    table = connection.ops.quote_name(AuditRecord._meta.db_table)
    written: list[dict[str, Any]] = []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1")
        last = cursor.fetchone()
        for entry in entries:
            fields = _chain_fields(
                actor=entry["actor"],
                action=entry["action"],
                target=entry.get("target"),
                before=entry.get("before"),
                after=entry.get("after"),
                target_type=entry.get("target_type"),
                target_id=entry.get("target_id"),
                last=last,
            )
            written.append(fields)
            last = (fields["seq"], fields["hash"])
        # The model's own preparation of each value.
        prep = [(name, AuditRecord._meta.get_field(name)) for name in _FIELD_NAMES]
        # SQLite allows 32,766 parameters per statement: 1,000 records of 17.
        for first in range(0, len(written), 1000):
            chunk = written[first : first + 1000]
            cursor.execute(
                _insert_sql(connection.vendor, len(chunk)),
                [
                    field.get_db_prep_save(fields[name], connection)
                    for fields in chunk
                    for name, field in prep
                ],
            )
    return written


def record_quick(
    *,
    actor: Any,
    action: str,
    target: Any = None,
    before: Any = None,
    after: Any = None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> None:
    """``record()`` for hot paths (readings ingest, ledger appends): the same
    record, same chain, same lock, written with raw SQL and no savepoint
    (``record_many`` of one).

    Must run inside the caller's atomic block (an error rolls the caller's
    whole transaction back, as ``record()``'s savepoint then the caller's
    rollback did).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record_quick needs the caller's transaction.")
    record_many(
        [
            {
                "actor": actor,
                "action": action,
                "target": target,
                "before": before,
                "after": after,
                "target_type": target_type,
                "target_id": target_id,
            }
        ]
    )
