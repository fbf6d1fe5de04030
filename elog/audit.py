"""The audit writer: ``record()`` is how every write in BPM-OS is audited.

Call it from the service that makes the change, inside its transaction, with
the before/after state; the request id, client address and source come from
``bpmos.context`` (bound per request by the middleware).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import structlog
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from bpmos import context
from bpmos.auditkeys import keyring
from bpmos.background import BackgroundWorker
from bpmos.bulk import OneTrip, insert_rows
from elog.models import AuditPending, AuditRecord

log = structlog.get_logger(__name__)

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


# json.dumps(value, cls=DjangoJSONEncoder) without a new encoder per call.
_DJANGO_DUMP = DjangoJSONEncoder().encode


def normalize_json(value: Any) -> Any:
    """Round-trip through JSON so what is stored is exactly what is hashed."""
    if value is None:
        return None
    return json.loads(_DJANGO_DUMP(value))


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


# ``json.dumps(..., sort_keys=True, separators=(",", ":"), default=str)``, the
# canonical JSON of the hashes, without json.dumps' per-call encoder setup.
_DUMP = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
_BIG_NUMBER = re.compile(r"\d{16}")  # 2**53 has 16 digits


def canonical_dump(content: dict[str, Any], *numbers: str) -> str:
    """The canonical JSON of ``content`` with ``canonical_numbers`` applied to
    its ``numbers`` entries. ``canonical_numbers`` changes only an integer of
    16 digits or more (2**53 has 16), whose JSON is a run of 16 digits, so it
    runs (and the JSON is made again) only when the JSON has such a run: the
    same text, without walking every record's data in Python."""
    canonical = _DUMP(content)
    if _BIG_NUMBER.search(canonical) is None:
        return canonical
    content = dict(content)
    for name in numbers:
        content[name] = canonical_numbers(content[name])
    return _DUMP(content)


def compute_hash(fields: dict[str, Any], *, key: bytes | None = None) -> str:
    """HMAC-SHA256 over the canonical JSON of a record's hashed fields, with
    ``key`` (by default the audit keyring's current key)."""
    content = {name: fields[name] for name in HASHED_FIELDS}
    occurred = content["occurred_at"]
    if hasattr(occurred, "isoformat"):
        content["occurred_at"] = occurred.astimezone(UTC).isoformat()
    canonical = canonical_dump(content, "before", "after")
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
    common: _Common | None = None,
) -> dict[str, Any]:
    """Every field of the record that follows ``last`` (seq, hash), hash and key
    id included: signed with the keyring's current key. ``common``: the
    fields that depend only on the actor and the request (``_common``), when
    the caller made them once for several records."""
    if common is None:
        common = _common(actor)
    kind, pk, label = _describe(target)
    fields: dict[str, Any] = {
        "seq": (last[0] + 1) if last and last is not _UNCHAINED else 1,
        "occurred_at": timezone.now(),
        **common.fields,
        "action": action,
        "target_type": target_type if target_type is not None else kind,
        "target_id": target_id if target_id is not None else pk,
        "target_repr": label,
        "before": normalize_json(before),
        "after": normalize_json(after),
        "prev_hash": last[1] if last and last is not _UNCHAINED else GENESIS_HASH,
    }
    if last is not _UNCHAINED:
        fields["hash"] = compute_hash(fields, key=common.key)
        fields["key_id"] = common.key_id
    return fields


# ``last`` of a staged record's fields (``_stage``): not chained, not signed.
_UNCHAINED = ("unchained",)


@dataclass(frozen=True)
class _Common:
    """What every record of one actor in one request shares: the actor's and
    the request's fields, and the key that signs them."""

    fields: dict[str, Any]
    key: bytes
    key_id: str


def _common(actor: Any) -> _Common:
    ctx = context.current()
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    ring = keyring()
    return _Common(
        fields={
            "actor_id": actor_obj.pk if actor_obj else None,
            "actor_username": actor_obj.get_username() if actor_obj else "",
            "actor_role": getattr(actor_obj, "role", "") if actor_obj else "",
            "request_id": ctx.request_id,
            "client_address": _normalize_address(ctx.client_address),
            "source": ctx.source,
        },
        key=ring.current_key,
        key_id=ring.current_id,
    )


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


def _head_sql() -> str:
    table = connection.ops.quote_name(AuditRecord._meta.db_table)
    return f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1"


@dataclass
class ChainClaim:
    """The chain's try-lock and head, read in a caller's round trip
    (``chain_claim``): ``taken`` whether this transaction now holds the lock
    (until commit), ``last`` the head's (seq, hash) then (None: empty chain;
    not to be used when the lock was not taken)."""

    taken: bool = False
    last: tuple[int, str] | None = None


def chain_claim(trip: OneTrip) -> ChainClaim:
    """PostgreSQL: queue the chain's try-lock and the read of its head on
    ``trip`` (the caller's own round trip: the single append's row lock), for
    ``record_many(..., claim=...)`` with ``stage_when_busy``. The try-lock
    never waits, so taking it next to a row lock adds no wait cycle."""
    claim = ChainClaim()

    def took(rows):
        claim.taken = bool(rows[0][0])

    def head(rows):
        claim.last = tuple(rows[0]) if rows else None

    trip.add("SELECT pg_try_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY], took)
    trip.add(_head_sql(), [], head)
    return claim


def record_many(
    entries: list[dict[str, Any]],
    *,
    stage_when_busy: bool = False,
    preceding: tuple[str, list] | None = None,
    claim: ChainClaim | None = None,
    trip: OneTrip | None = None,
) -> list[dict[str, Any]]:
    """Append ``entries`` (each the keyword arguments of ``record``) to the
    chain, in order, in the caller's transaction: one chain lock, one read of
    the head and one multi-row ``INSERT`` for all of them, no savepoint. The
    records are exactly those ``record`` would store one by one (same fields,
    same chaining, same hashes for the same inputs). Returns their fields.

    Must run inside the caller's atomic block (an error rolls the caller's
    whole transaction back). Each value is prepared by its model field's own
    ``get_db_prep_save``, so the row is exactly what ``record()`` stores.

    ``stage_when_busy`` (the ledger's writers): when another transaction holds
    the chain's lock, do not wait for it (it is held until that transaction's
    commit): stage the records (``AuditPending``, "Staged records" below); the
    process's sealing thread chains them after this transaction commits (the
    beat sweep if it cannot). Their fields then have no
    ``seq``, ``prev_hash`` or ``hash`` yet.

    ``preceding``: one statement of the caller's own (SQL, parameters) that
    returns no rows, run just before the chain's lock; on PostgreSQL in the
    same round trip (readings ingest's machine status write). Not with
    ``stage_when_busy``.

    ``claim`` (PostgreSQL, with ``stage_when_busy``): the try-lock and head
    the caller already read in its own round trip (``chain_claim``): records
    chained after ``claim.last`` when it took the lock, staged otherwise.
    ``trip``: the records' ``INSERT`` is queued there (sent with the caller's
    next statements) instead of sent now.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record_many needs the caller's transaction.")
    if preceding is not None and (stage_when_busy or not entries):
        raise ValueError("audit.record_many: preceding needs entries, no staging.")
    if claim is not None and not stage_when_busy:
        raise ValueError("audit.record_many: a claim is a try-lock: stage_when_busy.")
    if not entries:
        return []
    if claim is not None:
        if not claim.taken:  # held by another transaction until its commit
            return _stage(entries, trip=trip)
        written = _chained(entries, claim.last)
        insert_rows(AuditRecord, _FIELD_NAMES, written, trip=trip)
        return written
    head = _head_sql()
    with connection.cursor() as cursor:
        if not stage_when_busy and connection.vendor == "postgresql":
            # The lock and the head in one round trip: the statements of one
            # simple-protocol query run in order, each with its own snapshot,
            # so the head is read once the lock is held.
            lock = f"SELECT pg_advisory_xact_lock(%s); {head}"
            if preceding is None:
                cursor.execute(lock, [_CHAIN_LOCK_KEY])
            else:
                cursor.execute(
                    f"{preceding[0]}; {lock}", [*preceding[1], _CHAIN_LOCK_KEY]
                )
                cursor.nextset()
            cursor.nextset()
        elif stage_when_busy and connection.vendor == "postgresql":
            # The try-lock and the head in one round trip (as above); the head
            # read when the lock was not taken is not used.
            cursor.execute(
                f"SELECT pg_try_advisory_xact_lock(%s); {head}", [_CHAIN_LOCK_KEY]
            )
            if not cursor.fetchone()[0]:  # held by another transaction until commit
                return _stage(entries, trip=trip)
            cursor.nextset()
        else:  # SQLite: its transactions already serialise (_lock_chain)
            if preceding is not None:
                cursor.execute(*preceding)
            cursor.execute(head)
        written = _chained(entries, cursor.fetchone())
    insert_rows(AuditRecord, _FIELD_NAMES, written, trip=trip)
    return written


def _chained(
    entries: list[dict[str, Any]], last: tuple[int, str] | None
) -> list[dict[str, Any]]:
    """``entries``' fields chained in order after ``last`` (the head's seq and
    hash; None: the chain is empty)."""
    written: list[dict[str, Any]] = []
    commons: dict[int, _Common] = {}
    for entry in entries:
        fields = _entry_fields(entry, last, commons)
        written.append(fields)
        last = (fields["seq"], fields["hash"])
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
    preceding: tuple[str, list] | None = None,
) -> None:
    """``record()`` for hot paths (readings ingest, ledger appends): the same
    record, same chain, same lock, written with raw SQL and no savepoint
    (``record_many`` of one; ``preceding`` as there).

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
        ],
        preceding=preceding,
    )


# --- staged records: the chain's lock off the writers' commits -----------------------
#
# A transaction holds the chain's lock from its first record to its commit, the
# durable WAL flush included, so writers that all audit serialise on it (the
# ledger at 4 writers spent 28-38 % of its time waiting). A writer that passes
# ``stage_when_busy`` and finds the lock taken does not wait: it writes its
# records to ``AuditPending`` with a MAC over their content, and after it commits
# the process's sealing thread (``_sealer``) runs ``seal_pending``, which
# chains every pending record in one short transaction. See
# docs/security.md, "Staged audit records", for what a verifier proves then.

_PENDING_FIELDS = tuple(
    name for name in HASHED_FIELDS if name not in ("seq", "prev_hash")
)
_PENDING_PREV = "pending"  # the prev_hash a staged record's MAC is made with


def _pending_mac(fields: dict[str, Any], *, key: bytes) -> str:
    return compute_hash({**fields, "seq": 0, "prev_hash": _PENDING_PREV}, key=key)


def _entry_fields(
    entry: dict[str, Any], last, commons: dict[int, _Common]
) -> dict[str, Any]:
    """An entry of ``record_many`` as ``_chain_fields`` makes it, after
    ``last`` (``(seq, hash)`` of the chain's head; None: not chained yet).
    ``commons``: the ``_Common`` of each actor met so far in the batch."""
    actor = entry["actor"]
    common = commons.get(id(actor))
    if common is None:
        common = commons[id(actor)] = _common(actor)
    return _chain_fields(
        actor=actor,
        action=entry["action"],
        target=entry.get("target"),
        before=entry.get("before"),
        after=entry.get("after"),
        target_type=entry.get("target_type"),
        target_id=entry.get("target_id"),
        last=last,
        common=common,
    )


def _stage(
    entries: list[dict[str, Any]], *, trip: OneTrip | None = None
) -> list[dict[str, Any]]:
    """Write ``entries`` to ``AuditPending`` (one INSERT; queued on ``trip``
    when given) and seal them after commit; returns their fields (no seq
    yet)."""
    ring = keyring()
    staged = []
    commons: dict[int, _Common] = {}
    for entry in entries:
        # No chain hash: a staged record has no place in the chain yet (its
        # MAC below covers it; the seal signs it when it chains it).
        fields = _entry_fields(entry, _UNCHAINED, commons)
        content = {name: fields[name] for name in _PENDING_FIELDS}
        content["mac"] = _pending_mac(fields, key=ring.current_key)
        content["key_id"] = ring.current_id
        staged.append(content)
    names = (*_PENDING_FIELDS, "mac", "key_id")
    insert_rows(AuditPending, names, staged, trip=trip)
    transaction.on_commit(_sealer.submit)
    return staged


def _seal_quietly() -> None:
    # After the writer's commit its records are durable in AuditPending; a
    # failure to chain them now is retried by the beat sweep.
    try:
        seal_pending()
    except Exception:
        log.warning("audit_seal_deferred", exc_info=True)


# One daemon thread per process (a bpmos.background worker) that chains staged records
# after their writers commit, so a writer that staged answers without waiting
# for the chain's lock and the seal's own transaction. A request (``submit()``
# after a writer's commit) only wakes it: however many arrived while a seal
# ran, one more seal serves them all, each chaining every record pending by
# then.
#
# Nothing is lost when this thread never gets to a record (the process ended,
# the database went away): the record was committed in ``AuditPending`` with
# its writer, and ``audit-pending-seal`` (beat) chains it.
def _seal_requested(requests: list[None]) -> None:
    _seal_quietly()  # one seal however many requests (looked up at each call)


_sealer = BackgroundWorker("bpmos-audit-sealer", _seal_requested)


# How long a seal waits for the chain's lock before leaving the records to the
# next seal (a writer's after commit, or the beat sweep): writers hold it for
# milliseconds; a stuck holder must not hold a request.
SEAL_LOCK_TIMEOUT_MS = 5000


def seal_pending(*, limit: int = 5000) -> int:
    """Chain the pending audit records (``AuditPending``), oldest first, in one
    short transaction under the chain's lock; returns how many were chained.

    Each record's MAC is checked with the key it names first: one that does
    not match (its content was changed in the table) or names a key the
    keyring lacks is not chained; it stays pending and is logged
    (``audit_pending_refused``). The seal commits without waiting for the WAL
    flush: a seal lost in a crash leaves its records pending (their own
    commit was durable) for the next seal, and any later durable commit
    flushes it first."""
    ring = keyring()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)",
                    [f"{SEAL_LOCK_TIMEOUT_MS}ms"],
                )
        _lock_chain()
        rows = list(
            AuditPending.objects.order_by("id").values(
                "id", *_PENDING_FIELDS, "mac", "key_id"
            )[:limit]
        )
        if not rows:
            return 0
        table = connection.ops.quote_name(AuditRecord._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1")
            last = cursor.fetchone()
        chained, refused = [], []
        for row in rows:
            key = ring.key(row["key_id"])
            if key is None or not hmac.compare_digest(
                _pending_mac(row, key=key), row["mac"]
            ):
                refused.append(row["id"])
                continue
            fields = {name: row[name] for name in _PENDING_FIELDS}
            fields["seq"] = (last[0] + 1) if last else 1
            fields["prev_hash"] = last[1] if last else GENESIS_HASH
            fields["hash"] = compute_hash(fields, key=ring.current_key)
            fields["key_id"] = ring.current_id
            chained.append(fields)
            last = (fields["seq"], fields["hash"])
        if refused:
            log.error("audit_pending_refused", pending_ids=refused)
        if chained:
            insert_rows(AuditRecord, _FIELD_NAMES, chained)
        done = [row["id"] for row in rows if row["id"] not in set(refused)]
        if done:
            AuditPending.objects.filter(id__in=done).delete()
    return len(chained)
