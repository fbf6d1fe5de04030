"""Merkle trees of the ledger checkpoints, and the offline check of a proof.

Pure Python (the standard library only, no Django, no database): a verifier
outside the plant checks what ``GET /api/passports/{id}/ledger/proof`` answered
with this module alone (``verify_proof``), with or without the audit key.

The tree is RFC 6962's (Certificate Transparency, RFC 9162 §2.1): SHA-256, a
leaf hashed as ``SHA-256(0x00 || leaf)``, a node as ``SHA-256(0x01 || left ||
right)``, the left subtree of ``n`` leaves holding the largest power of two
below ``n``; the root of no leaves is ``SHA-256("")``. A checkpoint's leaves
(``passports.checkpoints``) are, in this order:

* leaf 0: the previous checkpoint's seq and root (seq 0 and 64 zeros for the
  first), so the checkpoints chain: ``{"previousRoot": …, "seq": …}``;
* one per passport chain that grew since the previous checkpoint, ordered by
  the passport's UUID: its head, ``{"hash": …, "passport": uuid, "version": n}``.

Each leaf is the canonical JSON of that object (sorted keys, no spaces).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS_ROOT = "0" * 64
_LEAF = b"\x00"
_NODE = b"\x01"
_EXACT_LIMIT = 2**53  # elog.audit.canonical_numbers


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def head_leaf(passport_uuid: str, version: int, event_hash: str) -> bytes:
    """The leaf of one passport chain's head."""
    return _canonical(
        {"hash": event_hash, "passport": str(passport_uuid), "version": int(version)}
    )


def previous_leaf(seq: int, root: str) -> bytes:
    """Leaf 0 of checkpoint ``seq + 1``: checkpoint ``seq``'s root."""
    return _canonical({"previousRoot": root, "seq": int(seq)})


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """The tree bottom-up: pairs hashed left to right, an odd last node carried
    up unchanged (the same tree as RFC 6962's largest-power-of-two split)."""
    levels = [list(hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def root_of(leaves: Sequence[bytes]) -> str:
    """The Merkle root (hex) of ``leaves`` (their bytes, not yet hashed)."""
    if not leaves:
        return hashlib.sha256(b"").hexdigest()
    return _levels([leaf_hash(leaf) for leaf in leaves])[-1][0].hex()


def audit_path(leaves: Sequence[bytes], index: int) -> list[str]:
    """The inclusion path (hex, bottom-up) of leaf ``index`` (RFC 6962 PATH)."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    path = []
    for level in _levels([leaf_hash(leaf) for leaf in leaves])[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling].hex())
        index //= 2
    return path


def included(
    leaf: bytes, index: int, size: int, path: Sequence[str], root: str
) -> bool:
    """Whether ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose
    root is ``root``, by ``path`` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    try:
        siblings = [bytes.fromhex(p) for p in path]
    except (TypeError, ValueError):
        return False
    for p in siblings:
        if sn == 0 or len(p) != 32:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r.hex(), str(root))


# --- an event's HMAC, as passports.ledger.compute_hash makes it ------------------


def _numbers(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if abs(value) >= _EXACT_LIMIT else value
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def event_hash(event: Mapping[str, Any], passport_uuid: str, key: bytes) -> str:
    """HMAC-SHA256 of one event as the proof carries it (``occurredAt``,
    ``actorUsername``, ``kind``, ``data``, ``prevHash``, ``version``), byte for
    byte ``passports.ledger.compute_hash``."""
    occurred = datetime.fromisoformat(str(event["occurredAt"]).replace("Z", "+00:00"))
    content = {
        "actor_username": event["actorUsername"],
        "data": _numbers(event["data"]),
        "kind": event["kind"],
        "occurred_at": occurred.astimezone(UTC).isoformat(),
        "passport": str(passport_uuid),
        "prev_hash": event["prevHash"],
        "version": event["version"],
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


# --- the proof of one event ------------------------------------------------------


@dataclass
class ProofCheck:
    """What ``verify_proof`` found: ``ok`` with no ``problems``;
    ``hmac_checked`` when every event's HMAC was recomputed with a key."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    hmac_checked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "hmacChecked": self.hmac_checked,
        }


def verify_proof(
    proof: Mapping[str, Any],
    *,
    keys: Mapping[str, bytes] | None = None,
    root: str | None = None,
) -> ProofCheck:
    """Check an inclusion proof (the API's answer) offline.

    1. the event's hash is the first link of ``chain``, and each next event's
       ``prevHash`` is the hash before it, versions one apart, up to the head
       that was checkpointed; with ``keys`` (audit key id -> key) each event's
       HMAC is recomputed as well (without them the links are taken as given:
       only the key makes a hash unforgeable);
    2. the leaf is that head (passport, version, hash) and, by the audit path,
       leaf ``index`` of the checkpoint's tree of ``leafCount`` leaves with
       the checkpoint's root;
    3. with ``root`` (a root published earlier: the audit record
       ``ledger.checkpointed``, an anchor, a copy kept elsewhere) the
       checkpoint's root is that one.
    """
    try:
        return _verify_proof(proof, keys=keys, root=root)
    except (AttributeError, KeyError, TypeError, ValueError):
        return ProofCheck(False, ["The proof is malformed."])


def _verify_proof(
    proof: Mapping[str, Any],
    *,
    keys: Mapping[str, bytes] | None,
    root: str | None,
) -> ProofCheck:
    problems: list[str] = []
    try:
        uuid = str(proof["passport"]["id"])
        event = proof["event"]
        chain = list(proof["chain"])
        head = proof["head"]
        checkpoint = proof["checkpoint"]
        leaf = proof["leaf"]
        path = list(proof["auditPath"])
    except (KeyError, TypeError):
        return ProofCheck(False, ["The proof lacks a part (malformed)."])
    if not chain:
        return ProofCheck(False, ["The chain path is empty."])
    first = chain[0]
    if first.get("version") != event.get("version") or first.get("hash") != event.get(
        "hash"
    ):
        problems.append("The chain path does not start at the event.")
    for before, after in itertools.pairwise(chain):
        if after.get("version") != before.get("version", 0) + 1:
            problems.append(
                f"Event {after.get('version')} does not follow event "
                f"{before.get('version')}."
            )
        if after.get("prevHash") != before.get("hash"):
            problems.append(
                f"Event {after.get('version')} does not link to event "
                f"{before.get('version')}."
            )
    last = chain[-1]
    if last.get("version") != head.get("version") or last.get("hash") != head.get(
        "hash"
    ):
        problems.append("The chain path does not end at the checkpointed head.")
    hmac_checked = False
    if keys is not None:
        hmac_checked = True
        for item in chain:
            key = keys.get(str(item.get("keyId")))
            if key is None:
                hmac_checked = False
                problems.append(
                    f"Event {item.get('version')}: no key {item.get('keyId')!r}."
                )
                continue
            try:
                digest = event_hash(item, uuid, key)
            except (KeyError, TypeError, ValueError):
                digest = ""
            if not hmac.compare_digest(digest, str(item.get("hash"))):
                problems.append(f"Event {item.get('version')} does not match its hash.")
    expected = head_leaf(uuid, head.get("version", 0), str(head.get("hash")))
    if str(leaf.get("data", "")).encode() != expected:
        problems.append("The leaf is not the checkpointed head of this passport.")
    try:
        index, size = int(leaf["index"]), int(checkpoint["leafCount"])
    except (KeyError, TypeError, ValueError):
        index, size = -1, 0
    if not included(expected, index, size, path, str(checkpoint.get("root"))):
        problems.append("The audit path does not lead to the checkpoint's root.")
    if root is not None and checkpoint.get("root") != root:
        problems.append("The checkpoint's root is not the published root.")
    return ProofCheck(not problems, problems, hmac_checked and not problems)
