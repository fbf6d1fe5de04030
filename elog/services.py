"""Audit chain verification: walk the hash chain and name the first break.

``audit_chain_verify`` is the one rule behind ``manage.py verify_audit`` and
``GET /api/audit/verify``.
"""

from __future__ import annotations

import contextlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from django.db import models

from bpmos.auditkeys import Keyring, keyring
from bpmos.errors import InvalidInput
from elog.audit import GENESIS_HASH, HASHED_FIELDS, compute_hash
from elog.models import AuditRecord

DEFAULT_BATCH_SIZE = 2000
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class ChainProblem(models.TextChoices):
    """How the chain is broken at its first broken record."""

    ALTERED = "altered", "Altered"
    REMOVED = "removed", "Removed"
    INSERTED = "inserted", "Inserted"
    # Signed with a key the keyring does not hold: neither passed nor failed.
    UNVERIFIABLE = "unverifiable", "Unverifiable"


@dataclass(frozen=True)
class BrokenRecord:
    """The first place the chain breaks.

    ``id`` is None only when the missing records have no successor to name
    (the chain ends before an external anchor).
    """

    seq: int
    id: int | None
    problem: ChainProblem
    message: str


@dataclass(frozen=True)
class UnverifiableRecords:
    """The records (walked so far) signed with one key the keyring lacks."""

    key_id: str
    records: int
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of one walk over the chain.

    ``checked`` counts the records examined (the broken one included).
    ``head_seq``/``head_hash`` describe the newest record (None for an empty
    log); they are a verified anchor only when ``ok``. ``unverifiable`` lists,
    per key id, the records signed with a key the keyring does not hold (up to
    the first break): their links were checked, their content could not be;
    ``ok`` is then False.
    """

    ok: bool
    checked: int
    head_seq: int | None
    head_hash: str | None
    first_broken: BrokenRecord | None
    unverifiable: tuple[UnverifiableRecords, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, snake_case: the API body and ``verify_audit --json``."""
        data = asdict(self)
        if self.first_broken is not None:
            data["first_broken"]["problem"] = str(self.first_broken.problem)
        data["unverifiable"] = [asdict(run) for run in self.unverifiable]
        return data


def audit_chain_verify(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    anchor_seq: int | None = None,
    anchor_hash: str | None = None,
) -> VerifyResult:
    """Walk the audit chain in ``seq`` order and name its first broken record.

    For each record it recomputes the HMAC over the hashed fields, checks that
    ``seq`` continues the previous record's without a gap or repeat, and that
    ``prev_hash`` is the previous record's ``hash`` (the first record's is
    ``GENESIS_HASH``). The first record that fails is classified by what the
    evidence shows, looking one record ahead:

    * ``altered``: the record no longer matches its hash and the next record
      still links to it (or nothing follows it), so it is in its place but its
      content, seq or hash changed.
    * ``inserted``: the record does not belong to the chain: it repeats the
      previous record's ``seq``, or it does not match its hash and the next
      record's ``prev_hash`` links past it to the previous record. (Without the
      key a forger cannot make a valid hash, and ``seq`` is unique, so a forged
      record in the middle must collide on ``seq`` or renumber its successors.)
    * ``removed``: the record is authentic but its predecessor is missing:
      ``seq`` skips numbers, or its ``prev_hash`` does not link to the record
      before it. The broken record named is the one *after* the gap.

    Limits. Only the first break is reported; the walk stops there. The newest
    record has no successor, so a forged record appended at the end is reported
    as ``altered`` (the message says it may have been appended). Removing the
    newest records leaves a shorter chain that is intact in itself: that is
    only detectable against an anchor kept outside the database. Operators
    should store ``head_seq`` and ``head_hash`` of an ``ok`` result elsewhere
    (a ticket, a signed mail, another system) and pass them back as
    ``anchor_seq``/``anchor_hash``: the walk then also requires the record
    ``anchor_seq`` to exist with exactly that hash. Whoever holds both the
    database and ``BPMOS_AUDIT_KEY`` can re-forge the whole chain; the anchor
    detects that too, for records up to the anchor.

    Keys. Each record's HMAC is checked with the key its ``key_id`` names in
    the audit keyring (``bpmos/auditkeys.py``: the current key and the retired
    ones). A record whose key the keyring does not hold is *unverifiable*: its
    place in the chain (``seq``, ``prev_hash``) is still checked and the walk
    goes on, but its content cannot be, so the result is not ``ok``; without a
    break elsewhere, ``first_broken`` names the first such record (problem
    ``unverifiable``) and ``unverifiable`` counts them per key id.

    Records are streamed with ``.iterator(chunk_size=batch_size)`` as plain
    values (no model instances), in one query, so the walk sees one snapshot
    and its memory does not grow with the log.
    """
    _check_anchor(anchor_seq, anchor_hash)
    ring = keyring()
    prev_seq, prev_hash = 0, GENESIS_HASH
    checked = 0
    unknown: dict[str, list[int]] = {}  # key id -> [records, first seq, last seq]
    first_unknown: dict[str, Any] | None = None
    with contextlib.closing(_stream(batch_size)) as rows:
        current = next(rows, None)
        while current is not None:
            following = next(rows, None)
            checked += 1
            key = ring.key(current["key_id"])
            broken = _check(current, following, prev_seq, prev_hash, key)
            if broken is None and current["seq"] == anchor_seq:
                broken = _check_against_anchor(current, anchor_hash)
            if broken is not None:
                head_seq, head_hash = _newest()
                return VerifyResult(
                    False, checked, head_seq, head_hash, broken, _runs(unknown)
                )
            if key is None:
                first_unknown = first_unknown or current
                run = unknown.setdefault(current["key_id"], [0, current["seq"], 0])
                run[0] += 1
                run[2] = current["seq"]
            prev_seq, prev_hash = current["seq"], current["hash"]
            current = following
    if anchor_seq is not None and prev_seq < anchor_seq:
        broken = BrokenRecord(
            seq=prev_seq + 1,
            id=None,
            problem=ChainProblem.REMOVED,
            message=(
                f"{_records(prev_seq + 1, anchor_seq)} missing: the chain ends at "
                f"#{prev_seq} but the external anchor names #{anchor_seq}; the "
                "newest records were removed."
            ),
        )
        return VerifyResult(
            False, checked, prev_seq or None, _head(prev_hash), broken, _runs(unknown)
        )
    if first_unknown is not None:
        broken = _unverifiable(first_unknown, unknown, ring)
        return VerifyResult(
            False, checked, prev_seq or None, _head(prev_hash), broken, _runs(unknown)
        )
    return VerifyResult(True, checked, prev_seq or None, _head(prev_hash), None)


def _runs(unknown: dict[str, list[int]]) -> tuple[UnverifiableRecords, ...]:
    return tuple(
        UnverifiableRecords(key_id=key_id, records=n, first_seq=first, last_seq=last)
        for key_id, (n, first, last) in unknown.items()
    )


def _unverifiable(
    row: dict[str, Any], unknown: dict[str, list[int]], ring: Keyring
) -> BrokenRecord:
    runs = "; ".join(
        f"{n} record{'s' if n > 1 else ''} between #{first} and #{last} with key "
        f"{key_id!r}"
        for key_id, (n, first, last) in unknown.items()
    )
    return BrokenRecord(
        seq=row["seq"],
        id=row["id"],
        problem=ChainProblem.UNVERIFIABLE,
        message=(
            f"Record #{row['seq']} is signed with audit key {row['key_id']!r}, which "
            f"the keyring ({', '.join(ring.keys)}) does not hold: it cannot be "
            f"verified. Unverifiable: {runs}. Add the key to "
            "BPMOS_AUDIT_RETIRED_KEYS (docs/security.md)."
        ),
    )


def _stream(batch_size: int) -> Iterator[dict[str, Any]]:
    fields = ("id", "hash", "key_id", *HASHED_FIELDS)
    queryset = AuditRecord.objects.order_by("seq", "id").values(*fields)
    return queryset.iterator(chunk_size=batch_size)


def _newest() -> tuple[int | None, str | None]:
    newest = AuditRecord.objects.order_by("-seq", "-id").values("seq", "hash").first()
    return (newest["seq"], newest["hash"]) if newest else (None, None)


def _head(prev_hash: str) -> str | None:
    return None if prev_hash == GENESIS_HASH else prev_hash


def _records(first: int, last: int) -> str:
    if first == last:
        return f"Record #{first} is"
    return f"Records #{first} to #{last} are"


def _check(
    row: dict[str, Any],
    following: dict[str, Any] | None,
    prev_seq: int,
    prev_hash: str,
    key: bytes | None,
) -> BrokenRecord | None:
    """The break at ``row``, or None. With no ``key`` (the keyring lacks it)
    only its place in the chain is checked, as if its hash were sound."""
    seq = row["seq"]

    def broken(problem: ChainProblem, message: str) -> BrokenRecord:
        return BrokenRecord(seq=seq, id=row["id"], problem=problem, message=message)

    if prev_seq and seq <= prev_seq:
        return broken(
            ChainProblem.INSERTED,
            f"Record #{seq} (id {row['id']}) repeats the sequence number of the "
            "record before it: it does not belong to the chain.",
        )
    if key is None or hmac.compare_digest(compute_hash(row, key=key), row["hash"]):
        if seq != prev_seq + 1:
            return broken(
                ChainProblem.REMOVED,
                f"{_records(prev_seq + 1, seq - 1)} missing before record #{seq}.",
            )
        if row["prev_hash"] != prev_hash:
            return broken(
                ChainProblem.REMOVED,
                f"Record #{seq} does not link to record #{prev_seq}: the record "
                "it followed was removed or replaced.",
            )
        return None
    if following is not None and following["prev_hash"] == prev_hash:
        return broken(
            ChainProblem.INSERTED,
            f"Record #{seq} does not match its hash and record "
            f"#{following['seq']} links past it to "
            + (f"record #{prev_seq}" if prev_seq else "the start of the chain")
            + ": it was inserted.",
        )
    if following is None:
        return broken(
            ChainProblem.ALTERED,
            f"Record #{seq}, the newest, does not match its hash: it was altered, "
            "or forged and appended (with no record after it, the two cannot be "
            "told apart).",
        )
    return broken(
        ChainProblem.ALTERED,
        f"Record #{seq} does not match its hash: its content was altered.",
    )


def _check_against_anchor(
    row: dict[str, Any], anchor_hash: str | None
) -> BrokenRecord | None:
    if row["hash"] == anchor_hash:
        return None
    return BrokenRecord(
        seq=row["seq"],
        id=row["id"],
        problem=ChainProblem.ALTERED,
        message=(
            f"Record #{row['seq']} is consistent with the chain but its hash is not "
            "the external anchor's: the chain up to it was rewritten (or the "
            "anchor belongs to another database)."
        ),
    )


def _check_anchor(anchor_seq: int | None, anchor_hash: str | None) -> None:
    if anchor_seq is None and anchor_hash is None:
        return
    details: dict[str, list[str]] = {}
    if anchor_seq is None or anchor_seq < 1:
        details["anchor_seq"] = ["A sequence number of 1 or more is required."]
    if anchor_hash is None or not _HASH_RE.match(anchor_hash):
        details["anchor_hash"] = ["64 lower-case hexadecimal characters are required."]
    if details:
        raise InvalidInput(
            "An anchor needs both a sequence number and a hash.",
            code="validation_error",
            details=details,
        )
