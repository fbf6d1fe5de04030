"""The audit chain's head, anchored outside the database.

Removing the newest audit records leaves a shorter chain that is intact in
itself (``elog.services.audit_chain_verify``): only a copy of the head kept
elsewhere shows that records are missing. Celery beat runs
``audit_anchor_write`` (``elog.tasks_chain``, every
``BPMOS_AUDIT_ANCHOR_SECONDS``, 15 minutes by default): it verifies the chain
against the newest anchor already written and, when the chain is intact and
has grown, appends its head as one line of JSON to ``BPMOS_AUDIT_ANCHOR_FILE``
(``DATA_DIR/anchors/audit-anchors.jsonl`` by default)::

    {"v": 2, "seq": 1234, "hash": "…", "at": "2026-12-03T18:00:00Z",
     "kid": "1a2b3c4d", "sig": "…"}

``sig`` is an HMAC-SHA-256 of the other fields with the audit key ``kid`` names
(the keyring's current key when written, ``bpmos/auditkeys.py``): a line
someone typed into the file does not verify, and a line signed with a key since
retired still does while the key stays in ``BPMOS_AUDIT_RETIRED_KEYS``. Lines
of version 1 (written before keys had ids: no ``kid``, ``kid`` not signed) are
verified with each key of the keyring in turn. The file is only ever appended
to, and flushed to disk (fsync) before the task returns. Point it at storage
the database's administrators cannot rewrite (another host's mount, a
write-once bucket synchronised from it), or ship its lines with the logs:
each anchor is also logged (``audit_anchor_written``).

A chain that does not verify is never anchored (that would bless the
tampering): the task logs ``audit_anchor_refused`` and writes nothing. The
stored verification (``elog.chain_status``) and ``manage.py verify_audit
--anchors`` check the chain against the newest valid anchor, so a truncation
shows on the auditor's dashboard.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
from django.conf import settings
from django.utils import timezone

from bpmos.auditkeys import keyring
from elog.services import VerifyResult, audit_chain_verify

log = structlog.get_logger(__name__)

VERSION = 2
LEGACY_VERSION = 1  # no key id


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: datetime
    key_id: str  # the key whose signature verified the line


def anchor_file() -> Path:
    return Path(settings.BPMOS_AUDIT_ANCHOR_FILE)


def _signature(
    seq: int, head_hash: str, at: str, key_id: str | None, key: bytes
) -> str:
    """The line's HMAC; ``key_id`` None for a version 1 line (not signed)."""
    content: dict[str, object] = {"seq": seq, "hash": head_hash, "at": at}
    if key_id is None:
        content["v"] = LEGACY_VERSION
    else:
        content |= {"v": VERSION, "kid": key_id}
    body = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _line(anchor: Anchor) -> str:
    at = anchor.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    key = keyring().key(anchor.key_id)
    if key is None:  # only ever made with the current key: a programming error
        raise ValueError(f"No audit key {anchor.key_id!r} to sign an anchor with.")
    return json.dumps(
        {
            "v": VERSION,
            "seq": anchor.seq,
            "hash": anchor.hash,
            "at": at,
            "kid": anchor.key_id,
            "sig": _signature(anchor.seq, anchor.hash, at, anchor.key_id, key),
        },
        sort_keys=True,
    )


class _UnknownKey(Exception):
    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


def _parse(line: str) -> Anchor | None:
    """The anchor on ``line`` if it is well-formed and its signature verifies;
    raises ``_UnknownKey`` for a line signed with a key the keyring lacks."""
    try:
        data = json.loads(line)
        seq, head_hash, at, sig = data["seq"], data["hash"], data["at"], data["sig"]
        version = data.get("v")
        key_id = data.get("kid") if version == VERSION else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if (
        version not in (VERSION, LEGACY_VERSION)
        or (version == VERSION and not isinstance(key_id, str))
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 1
        or not all(isinstance(value, str) for value in (head_hash, at, sig))
    ):
        return None
    ring = keyring()
    if key_id is None:  # version 1: whichever key of the keyring signed it
        candidates = list(ring.keys.items())
    elif (key := ring.key(key_id)) is None:
        raise _UnknownKey(key_id)
    else:
        candidates = [(key_id, key)]
    signer = next(
        (
            found
            for found, key in candidates
            if hmac.compare_digest(_signature(seq, head_hash, at, key_id, key), sig)
        ),
        None,
    )
    if signer is None:
        return None
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return Anchor(seq=seq, hash=head_hash, at=moment, key_id=signer)


@dataclass(frozen=True)
class AnchorFile:
    """What a file of anchors holds: the valid anchors in file order, the
    line numbers (1-based) of the lines that are not (malformed, or not
    signed with the key they name), and the lines signed with a key the
    keyring does not hold (line number -> key id): unverifiable."""

    anchors: list[Anchor]
    bad_lines: list[int]
    unknown_keys: dict[int, str]

    @property
    def newest(self) -> Anchor | None:
        return max(self.anchors, key=lambda a: a.seq, default=None)


def anchors_read(path: Path | None = None) -> AnchorFile:
    """The anchors of ``path`` (the configured file by default); a missing
    file holds none."""
    path = path or anchor_file()
    anchors: list[Anchor] = []
    bad: list[int] = []
    unknown: dict[int, str] = {}
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    anchor = _parse(line)
                except _UnknownKey as exc:
                    unknown[number] = exc.key_id
                    continue
                if anchor is None:
                    bad.append(number)
                else:
                    anchors.append(anchor)
    except FileNotFoundError:
        pass
    return AnchorFile(anchors=anchors, bad_lines=bad, unknown_keys=unknown)


def _verify(anchor: Anchor | None) -> VerifyResult:
    if anchor is None:
        return audit_chain_verify()
    return audit_chain_verify(anchor_seq=anchor.seq, anchor_hash=anchor.hash)


def verify_against_anchors(path: Path | None = None) -> VerifyResult:
    """``audit_chain_verify`` against the newest valid anchor of ``path``."""
    return _verify(anchors_read(path).newest)


def audit_anchor_write(*, now: datetime | None = None) -> Anchor | None:
    """Verify the chain against the newest anchor and, if it is intact and
    its head is newer, append the head to the anchor file. Returns the anchor
    written, or None (nothing new, an empty chain, or a broken chain)."""
    path = anchor_file()
    newest = anchors_read(path).newest
    result = _verify(newest)
    if not result.ok:
        broken = result.first_broken
        log.error(
            "audit_anchor_refused",
            seq=broken.seq if broken else None,
            problem=str(broken.problem) if broken else None,
        )
        return None
    head = result.head_seq
    if head is None or (newest is not None and newest.seq >= head):
        return None
    anchor = Anchor(
        seq=head,
        hash=result.head_hash,
        at=now or timezone.now(),
        key_id=keyring().current_id,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (_line(anchor) + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    log.info(
        "audit_anchor_written",
        seq=anchor.seq,
        hash=anchor.hash,
        key_id=anchor.key_id,
        file=str(path),
    )
    return anchor
