"""The audit chain's last verification, kept for screens that show its state.

Walking the chain (``elog.services.audit_chain_verify``) reads every audit
record: never per request. Celery beat runs ``audit_chain_status_refresh``
(``elog.tasks_chain``, every 15 minutes) and keeps its outcome in the shared
cache; ``audit_chain_status`` reads it back (None before the first run, or when
the cache forgot it). ``GET /api/audit/verify`` still walks the chain on demand.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils import timezone

from elog.services import audit_chain_verify

CACHE_KEY = "elog:audit-chain-status"


def audit_chain_status_refresh() -> dict[str, Any]:
    """Verify the chain now and store the outcome; returns what was stored:
    {"ok", "checked", "headSeq", "verifiedAt", "firstBroken": {seq, id,
    problem, message} | None}."""
    result = audit_chain_verify()
    broken = result.first_broken
    status = {
        "ok": result.ok,
        "checked": result.checked,
        "headSeq": result.head_seq,
        "verifiedAt": timezone.now().isoformat().replace("+00:00", "Z"),
        "firstBroken": None
        if broken is None
        else {
            "seq": broken.seq,
            "id": broken.id,
            "problem": str(broken.problem),
            "message": broken.message,
        },
    }
    cache.set(CACHE_KEY, status, timeout=None)
    return status


def audit_chain_status() -> dict[str, Any] | None:
    """The stored outcome of the last verification, or None (never verified, or
    the cache lost it). Raises what the cache raises when it is unreachable."""
    return cache.get(CACHE_KEY)
