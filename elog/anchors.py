"""The audit chain's head, anchored outside the database.

Removing the newest audit records leaves a shorter chain that is intact in
itself (``elog.services.audit_chain_verify``): only a copy of the head kept
elsewhere shows that records are missing. Celery beat runs
``audit_anchor_write`` (``elog.tasks_chain``, every
``BPMOS_AUDIT_ANCHOR_SECONDS``, 15 minutes by default): it verifies the chain
against the newest anchor already written and, when the chain is intact and
has grown, appends its head as one line of JSON to ``BPMOS_AUDIT_ANCHOR_FILE``
(``DATA_DIR/anchors/audit-anchors.jsonl`` by default)::

    {"v": 1, "seq": 1234, "hash": "…", "at": "2026-12-03T18:00:00Z", "sig": "…"}

``sig`` is an HMAC-SHA-256 of the other fields with ``BPMOS_AUDIT_KEY``: a line
someone typed into the file does not verify. The file is only ever appended
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

from elog.services import VerifyResult, audit_chain_verify

log = structlog.get_logger(__name__)

VERSION = 1


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: datetime


def anchor_file() -> Path:
    return Path(settings.BPMOS_AUDIT_ANCHOR_FILE)


def _signature(seq: int, head_hash: str, at: str) -> str:
    body = json.dumps(
        {"v": VERSION, "seq": seq, "hash": head_hash, "at": at},
        sort_keys=True,
        separators=(",", ":"),
    )
    key = settings.BPMOS_AUDIT_KEY.encode()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _line(anchor: Anchor) -> str:
    at = anchor.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "v": VERSION,
            "seq": anchor.seq,
            "hash": anchor.hash,
            "at": at,
            "sig": _signature(anchor.seq, anchor.hash, at),
        },
        sort_keys=True,
    )


def _parse(line: str) -> Anchor | None:
    """The anchor on ``line`` if it is well-formed and its signature verifies."""
    try:
        data = json.loads(line)
        seq, head_hash, at, sig = data["seq"], data["hash"], data["at"], data["sig"]
    except (ValueError, KeyError, TypeError):
        return None
    if (
        data.get("v") != VERSION
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 1
        or not all(isinstance(value, str) for value in (head_hash, at, sig))
    ):
        return None
    if not hmac.compare_digest(_signature(seq, head_hash, at), sig):
        return None
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return Anchor(seq=seq, hash=head_hash, at=moment)


@dataclass(frozen=True)
class AnchorFile:
    """What a file of anchors holds: the valid anchors in file order, and the
    line numbers (1-based) of the lines that are not (malformed, or signed
    with another key)."""

    anchors: list[Anchor]
    bad_lines: list[int]

    @property
    def newest(self) -> Anchor | None:
        return max(self.anchors, key=lambda a: a.seq, default=None)


def anchors_read(path: Path | None = None) -> AnchorFile:
    """The anchors of ``path`` (the configured file by default); a missing
    file holds none."""
    path = path or anchor_file()
    anchors: list[Anchor] = []
    bad: list[int] = []
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                anchor = _parse(line)
                if anchor is None:
                    bad.append(number)
                else:
                    anchors.append(anchor)
    except FileNotFoundError:
        pass
    return AnchorFile(anchors=anchors, bad_lines=bad)


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
    anchor = Anchor(seq=head, hash=result.head_hash, at=now or timezone.now())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (_line(anchor) + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    log.info("audit_anchor_written", seq=anchor.seq, hash=anchor.hash, file=str(path))
    return anchor
