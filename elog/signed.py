"""What the audit keyring signs, for ``manage.py audit_keys``.

Every app whose rows are signed with the audit key (``bpmos/auditkeys.py``)
registers a ``SignedChain`` from its ``AppConfig.ready``: how many rows each
key id signed, and the chain's own verification. elog registers the audit
chain and its anchors; passports registers its ledgers (elog imports none of
them, as the ledger imports none of its hooks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Count

from elog.models import AuditRecord


@dataclass(frozen=True)
class Verified:
    """A chain's verification, told in one line."""

    ok: bool
    summary: str


@dataclass(frozen=True)
class SignedChain:
    """``key_ids()``: rows signed per key id; ``verify()``: the whole check."""

    name: str
    key_ids: Callable[[], dict[str, int]]
    verify: Callable[[], Verified]


CHAINS: dict[str, SignedChain] = {}


def register(chain: SignedChain) -> SignedChain:
    """Register (or replace) the chain of that name."""
    CHAINS[chain.name] = chain
    return chain


def rows_per_key(queryset) -> dict[str, int]:
    """``key_id`` -> rows of ``queryset``: one GROUP BY."""
    counted = queryset.order_by().values("key_id").annotate(rows=Count("pk"))
    return {row["key_id"]: row["rows"] for row in counted.order_by("key_id")}


def _audit_verified() -> Verified:
    from elog.anchors import verify_against_anchors

    result = verify_against_anchors()
    if result.ok:
        return Verified(True, f"intact, {result.checked} records checked")
    broken = result.first_broken
    return Verified(
        False,
        f"BROKEN at record #{broken.seq} ({broken.problem}): {broken.message}",
    )


def _anchor_key_ids() -> dict[str, int]:
    from elog.anchors import anchors_read

    found = anchors_read()
    counts: dict[str, int] = {}
    for key_id in [a.key_id for a in found.anchors] + [*found.unknown_keys.values()]:
        counts[key_id] = counts.get(key_id, 0) + 1
    return dict(sorted(counts.items()))


def _anchors_verified() -> Verified:
    from elog.anchors import anchor_file, anchors_read

    found = anchors_read()
    problems = []
    if found.bad_lines:
        problems.append(f"lines {', '.join(map(str, found.bad_lines))} not valid")
    if found.unknown_keys:
        problems.append(
            "lines "
            + ", ".join(f"{n} (key {k!r})" for n, k in found.unknown_keys.items())
            + " signed with keys the keyring lacks"
        )
    if problems:
        return Verified(False, f"{anchor_file()}: {'; '.join(problems)}")
    return Verified(True, f"{len(found.anchors)} anchors verified")


def register_elog() -> None:
    """The audit chain (checked against its newest anchor) and the anchors."""
    register(
        SignedChain(
            name="audit log",
            key_ids=lambda: rows_per_key(AuditRecord.objects.all()),
            verify=_audit_verified,
        )
    )
    register(
        SignedChain(
            name="audit anchors", key_ids=_anchor_key_ids, verify=_anchors_verified
        )
    )
