"""Ledger checkpoints: a periodic Merkle root over the passport chains' heads.

Each passport's ledger is its own hash chain (``passports.ledger``): appends to
different passports never wait for each other, and nothing global is locked
per append. What one chain cannot show is its own truncation or rewriting by
someone who also rewrites the passport row (and holds the key). So
``checkpoint_build`` (Celery beat ``ledger-checkpoint``, every
``BPMOS_LEDGER_CHECKPOINT_SECONDS``; ``manage.py ledger_checkpoint``) takes,
for every passport chain that grew since the previous checkpoint, its head
(passport UUID, version, event hash), and writes one ``LedgerCheckpoint``: the
RFC 6962 Merkle root (``passports.merkle``) of the previous checkpoint's root
followed by those heads (ordered by UUID), with one ``LedgerCheckpointLeaf``
per head. Both tables are append-only; each checkpoint is audited
(``ledger.checkpointed``, its seq and root in ``after``), so its root is in the
audit chain, whose head is anchored outside the database (``elog.anchors``).

"Grew since" is decided per passport (its projection's ``version`` against
its newest leaf), not by event id: an append that commits after a later one
(ids are handed out before commit) is covered by the next checkpoint, never
skipped. The builder takes no passport row lock and does not wait for the
audit chain's lock (its record is staged when the lock is held, as the
ledger's are); builders serialise among themselves only (one advisory lock on
PostgreSQL; SQLite serialises writers).

A chain is checkpointed only when it continues the head checkpointed before
(same hash at that version), each new event links to the one before it and
matches its HMAC, and it ends at the passport's head hash: otherwise nothing
is written (409 ``ledger_broken``, ``ledger_checkpoint_refused`` in the log),
as the audit anchors never bless a broken chain.

``event_proof`` answers the inclusion proof of one event; ``checkpoints_verify``
recomputes every root and checks every leaf against the ledger.
"""

from __future__ import annotations

import itertools
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import structlog
from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from bpmos.auditkeys import keyring
from bpmos.errors import Conflict, NotFound
from elog import audit
from elog.models import AuditRecord
from passports import ledger, merkle
from passports.models import (
    LedgerCheckpoint,
    LedgerCheckpointLeaf,
    Passport,
    PassportEvent,
)

log = structlog.get_logger(__name__)

ACTION = "ledger.checkpointed"
# pg_advisory_xact_lock key of the checkpoint builders (not the audit chain's).
_LOCK_KEY = 0x4C45_4447  # "LEDG"
_CHUNK = 1000


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _uuid_text(value: Any) -> str:
    return str(value if isinstance(value, uuidlib.UUID) else uuidlib.UUID(str(value)))


@dataclass(frozen=True)
class _Grown:
    passport_id: int
    uuid: str
    serial: str
    version: int
    head_hash: str
    covered: int  # the version of its newest leaf, 0 for none
    covered_hash: str | None


def _grown() -> list[_Grown]:
    """The passports whose projection's version differs from their newest
    leaf's (grown, or cut below a checkpointed head)."""
    newest = LedgerCheckpointLeaf.objects.filter(passport=OuterRef("pk")).order_by(
        "-version"
    )
    rows = (
        Passport.objects.annotate(
            covered=Coalesce(Subquery(newest.values("version")[:1]), 0),
            covered_hash=Subquery(newest.values("event_hash")[:1]),
        )
        .exclude(version=F("covered"))
        .order_by("pk")
        .values_list(
            "pk", "uuid", "serial", "version", "head_hash", "covered", "covered_hash"
        )
    )
    return [
        _Grown(pk, _uuid_text(uuid), serial, version, head, covered, covered_hash)
        for pk, uuid, serial, version, head, covered, covered_hash in rows
    ]


def _refuse(grown: _Grown, version: int, problem: str, message: str) -> Conflict:
    log.warning(
        "ledger_checkpoint_refused",
        passport_id=grown.passport_id,
        serial=grown.serial,
        version=version,
        problem=problem,
    )
    return Conflict(
        f"Passport {grown.serial}, event {version}: {message} No checkpoint "
        "is written over a broken chain (manage.py verify_ledger names the break).",
        code="ledger_broken",
        details={
            "passport": grown.uuid,
            "serial": grown.serial,
            "version": version,
            "problem": problem,
        },
    )


def _new_events(grown: list[_Grown]) -> dict[int, list[ledger._Row]]:
    """Per grown passport, its events from its checkpointed head (included)
    up to the version its projection read (chain order)."""
    wanted = {g.passport_id: g for g in grown}
    found: dict[int, list[ledger._Row]] = {pk: [] for pk in wanted}
    ids = list(wanted)
    for start in range(0, len(ids), _CHUNK):
        for row in ledger._rows_of(ids[start : start + _CHUNK]):
            g = wanted[row.passport_id]
            if max(g.covered, 1) <= row.version <= g.version:
                found[row.passport_id].append(row)
    return found


def _check_growth(g: _Grown, rows: list[ledger._Row], keys) -> list[ledger._Row]:
    """The events ``g`` grew by since its checkpointed head, each checked (the
    link to the head checkpointed before, the links, the HMACs, the passport's
    head hash); raises ``Conflict`` at the first that fails."""
    if g.version < g.covered:
        raise _refuse(
            g,
            g.covered,
            "truncated",
            f"The passport says {g.version} events but event {g.covered} was "
            "checkpointed.",
        )
    by_version = {row.version: row for row in rows}
    previous = merkle.GENESIS_ROOT  # ledger.GENESIS_HASH: 64 zeros as well
    if g.covered:
        head = by_version.get(g.covered)
        if head is None or head.hash != g.covered_hash:
            raise _refuse(
                g,
                g.covered,
                "rewritten",
                "The event checkpointed at this version is missing or has "
                "another hash.",
            )
        previous = head.hash
    new = []
    for version in range(g.covered + 1, g.version + 1):
        row = by_version.get(version)
        if row is None:
            raise _refuse(g, version, "removed", "The event is missing.")
        key = keys.get(row.key_id)
        digest = (
            None
            if key is None
            else ledger._row_digest(row, g.uuid, key)
            if isinstance(row.occurred_at, str)
            else ledger.compute_hash(ledger._event_fields(row, g.uuid), key=key)
        )
        if digest != row.hash:
            raise _refuse(
                g,
                version,
                "altered" if key else "unverifiable",
                "The event does not match its hash."
                if key
                else f"The event is signed with key {row.key_id!r}, which the "
                "audit keyring does not hold.",
            )
        if row.prev_hash != previous:
            raise _refuse(
                g, version, "inserted", "The event does not follow the one before."
            )
        previous = row.hash
        new.append(row)
    if previous != g.head_hash:
        raise _refuse(
            g,
            g.version,
            "projection",
            "The passport's head hash is not its newest event's.",
        )
    return new


def checkpoint_build(*, actor: Any = None) -> LedgerCheckpoint | None:
    """Write the next checkpoint over every passport chain that grew since the
    previous one (see the module docstring), audited; None when none grew.
    Raises ``Conflict`` (409 ``ledger_broken``) and writes nothing when a grown
    chain does not verify."""
    with transaction.atomic():
        _lock()
        previous = LedgerCheckpoint.objects.order_by("-seq").first()
        grown = _grown()
        if not grown:
            return None
        keys = keyring().keys
        events = _new_events(grown)
        heads: list[tuple[str, _Grown, ledger._Row]] = []
        event_ids: list[int] = []
        for g in grown:
            new = _check_growth(g, events[g.passport_id], keys)
            heads.append((g.uuid, g, new[-1]))
            event_ids.extend(row.pk for row in new)
        heads.sort(key=lambda head: head[0])
        seq = previous.seq + 1 if previous else 1
        previous_root = previous.root if previous else merkle.GENESIS_ROOT
        leaves = [merkle.previous_leaf(seq - 1, previous_root)] + [
            merkle.head_leaf(uuid, row.version, row.hash) for uuid, _, row in heads
        ]
        checkpoint = LedgerCheckpoint.objects.create(
            seq=seq,
            created_at=timezone.now(),
            root=merkle.root_of(leaves),
            previous_root=previous_root,
            leaf_count=len(leaves),
            event_count=len(event_ids),
            first_event_id=min(event_ids),
            last_event_id=max(event_ids),
        )
        LedgerCheckpointLeaf.objects.bulk_create(
            (
                LedgerCheckpointLeaf(
                    checkpoint=checkpoint,
                    position=position,
                    passport_id=g.passport_id,
                    version=row.version,
                    event_hash=row.hash,
                )
                for position, (_, g, row) in enumerate(heads, start=1)
            ),
            batch_size=5000,
        )
        # Staged when the audit chain's lock is held (an open append holds it
        # until its commit): the builder waits for no writer.
        audit.record_many(
            [
                {
                    "actor": actor,
                    "action": ACTION,
                    "target": checkpoint,
                    "after": checkpoint_dict(checkpoint),
                }
            ],
            stage_when_busy=True,
        )
    log.info(
        "ledger_checkpoint_written",
        seq=checkpoint.seq,
        root=checkpoint.root,
        leaves=checkpoint.leaf_count,
        events=checkpoint.event_count,
    )
    return checkpoint


def checkpoint_dict(checkpoint: LedgerCheckpoint) -> dict[str, Any]:
    """A checkpoint as the API, the audit record and the proof show it."""
    return {
        "seq": checkpoint.seq,
        "createdAt": checkpoint.created_at.astimezone(UTC).isoformat(),
        "root": checkpoint.root,
        "previousRoot": checkpoint.previous_root,
        "leafCount": checkpoint.leaf_count,
        "eventCount": checkpoint.event_count,
        "firstEventId": checkpoint.first_event_id,
        "lastEventId": checkpoint.last_event_id,
    }


# --- the leaves as stored, and the proof of one event --------------------------------


def _leaf_rows(checkpoint_ids: Iterable[int] | None = None):
    """The stored leaves (checkpoint id, position, passport id, its UUID,
    version, event hash, the hash of the ledger's event at that version or
    None), by checkpoint seq then position."""
    event = PassportEvent.objects.filter(
        passport_id=OuterRef("passport_id"), version=OuterRef("version")
    )
    qs = LedgerCheckpointLeaf.objects.annotate(
        ledger_hash=Subquery(event.values("hash")[:1])
    )
    if checkpoint_ids is not None:
        qs = qs.filter(checkpoint_id__in=list(checkpoint_ids))
    return qs.order_by("checkpoint__seq", "position").values_list(
        "checkpoint_id",
        "position",
        "passport_id",
        "passport__uuid",
        "version",
        "event_hash",
        "ledger_hash",
    )


def _chain_event(event: PassportEvent) -> dict[str, Any]:
    return {
        "version": event.version,
        "kind": event.kind,
        "occurredAt": event.occurred_at.astimezone(UTC).isoformat(),
        "actorUsername": event.actor_username,
        "data": event.data,
        "prevHash": event.prev_hash,
        "hash": event.hash,
        "keyId": event.key_id,
    }


def event_proof(*, passport: Passport, version: int) -> dict[str, Any]:
    """The inclusion proof of event ``version`` of ``passport``: the event's
    hash, its chain up to the head the first checkpoint covering it holds,
    that leaf's Merkle audit path and the checkpoint (``merkle.verify_proof``
    checks it). 404 when the event does not exist, 409 ``not_checkpointed``
    when no checkpoint covers it yet."""
    event = PassportEvent.objects.filter(passport=passport, version=version).first()
    if event is None:
        raise NotFound(f"{passport} has no event {version}.")
    leaf = (
        LedgerCheckpointLeaf.objects.filter(passport=passport, version__gte=version)
        .select_related("checkpoint")
        .order_by("checkpoint__seq")
        .first()
    )
    if leaf is None:
        raise Conflict(
            f"Event {version} of {passport} is newer than the newest checkpoint: "
            "the next one covers it.",
            code="not_checkpointed",
        )
    checkpoint = leaf.checkpoint
    stored = list(
        LedgerCheckpointLeaf.objects.filter(checkpoint=checkpoint)
        .order_by("position")
        .values_list("passport__uuid", "version", "event_hash")
    )
    leaves = [merkle.previous_leaf(checkpoint.seq - 1, checkpoint.previous_root)] + [
        merkle.head_leaf(_uuid_text(uuid), v, h) for uuid, v, h in stored
    ]
    chain = PassportEvent.objects.filter(
        passport=passport, version__gte=version, version__lte=leaf.version
    ).order_by("version")
    return {
        "passport": {"id": str(passport.uuid), "serial": passport.serial},
        "event": {"version": event.version, "hash": event.hash},
        "chain": [_chain_event(e) for e in chain],
        "head": {"version": leaf.version, "hash": leaf.event_hash},
        "leaf": {
            "index": leaf.position,
            "data": leaves[leaf.position].decode(),
        },
        "auditPath": merkle.audit_path(leaves, leaf.position),
        "checkpoint": checkpoint_dict(checkpoint),
    }


# --- verification ----------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointProblem:
    """The first thing wrong with the checkpoints."""

    seq: int
    # removed | altered | truncated | rewritten | reordered
    problem: str
    message: str
    passport_id: int | None = None
    version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "problem": self.problem,
            "message": self.message,
            "passportId": None if self.passport_id is None else str(self.passport_id),
            "version": self.version,
        }


@dataclass(frozen=True)
class CheckpointVerification:
    ok: bool
    checkpoints: int
    leaves: int
    first_broken: CheckpointProblem | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checkpointsChecked": self.checkpoints,
            "leavesChecked": self.leaves,
            "firstBroken": self.first_broken.as_dict() if self.first_broken else None,
        }


def _published() -> dict[int, str]:
    """The roots the audit log says were checkpointed, by seq."""
    found: dict[int, str] = {}
    for after in AuditRecord.objects.filter(action=ACTION).values_list(
        "after", flat=True
    ):
        if isinstance(after, dict) and isinstance(after.get("seq"), int):
            found[after["seq"]] = str(after.get("root"))
    return found


def checkpoints_verify() -> CheckpointVerification:
    """Recompute every checkpoint's root from its leaves and check the chain of
    checkpoints and every leaf against the ledger; name the first break:

    * ``removed``: a seq missing, a ``previousRoot`` that is not the root
      before it, or a checkpoint the audit log recorded that is gone;
    * ``altered``: a root that is not its leaves' (or not the one audited), a
      leaf count that differs;
    * ``truncated``: a checkpointed head the passport's ledger no longer holds;
    * ``rewritten``: a checkpointed head whose event now has another hash;
    * ``reordered``: a passport's leaf not above its leaf of an earlier
      checkpoint.
    """
    published = _published()
    checkpoints = list(LedgerCheckpoint.objects.order_by("seq"))
    # The leaves streamed in checkpoint order, one checkpoint's at a time.
    groups = itertools.groupby(
        _leaf_rows().iterator(chunk_size=5000), key=lambda row: row[0]
    )
    group = next(groups, None)
    newest: dict[int, int] = {}
    checked = leaf_total = 0

    def broken(seq, problem, message, passport_id=None, version=None):
        return CheckpointVerification(
            False,
            checked,
            leaf_total,
            CheckpointProblem(seq, problem, message, passport_id, version),
        )

    previous_seq, previous_root = 0, merkle.GENESIS_ROOT
    for checkpoint in checkpoints:
        seq = checkpoint.seq
        checked += 1
        if seq != previous_seq + 1:
            return broken(
                previous_seq + 1,
                "removed",
                f"Checkpoint {previous_seq + 1} is missing before checkpoint {seq}.",
            )
        if checkpoint.previous_root != previous_root:
            return broken(
                seq,
                "removed",
                f"Checkpoint {seq} follows another root than checkpoint "
                f"{previous_seq}'s.",
            )
        rows = []
        if group is not None and group[0] == checkpoint.pk:
            rows = list(group[1])
            group = next(groups, None)
        leaf_total += len(rows)
        heads: list[tuple[str, int, str]] = []
        for _, _position, passport_id, uuid, version, event_hash, found in rows:
            if found is None:
                return broken(
                    seq,
                    "truncated",
                    f"Checkpoint {seq} holds event {version} of passport "
                    f"{passport_id}, which its ledger no longer has.",
                    passport_id,
                    version,
                )
            if found != event_hash:
                return broken(
                    seq,
                    "rewritten",
                    f"Event {version} of passport {passport_id} has another hash "
                    f"than checkpoint {seq} recorded.",
                    passport_id,
                    version,
                )
            if version <= newest.get(passport_id, 0):
                return broken(
                    seq,
                    "reordered",
                    f"Checkpoint {seq} holds event {version} of passport "
                    f"{passport_id}, not above the {newest[passport_id]} "
                    "checkpointed before.",
                    passport_id,
                    version,
                )
            newest[passport_id] = version
            heads.append((_uuid_text(uuid), version, event_hash))
        # Recomputed from the leaves' content (their order too), not positions.
        leaves_data = [merkle.previous_leaf(previous_seq, previous_root)] + [
            merkle.head_leaf(*head) for head in sorted(heads)
        ]
        root = merkle.root_of(leaves_data)
        if root != checkpoint.root or checkpoint.leaf_count != len(leaves_data):
            return broken(
                seq,
                "altered",
                f"Checkpoint {seq}'s root is not the root of its "
                f"{len(leaves_data)} leaves.",
            )
        if seq in published and published[seq] != checkpoint.root:
            return broken(
                seq, "altered", f"Checkpoint {seq}'s root is not the one audited."
            )
        previous_seq, previous_root = seq, checkpoint.root
    missing = sorted(s for s in published if s > previous_seq)
    if missing:
        return broken(
            missing[0],
            "removed",
            f"The audit log records checkpoint {missing[0]}, which is gone "
            f"(the newest left is {previous_seq or 'none'}).",
        )
    return CheckpointVerification(True, checked, leaf_total, None)
