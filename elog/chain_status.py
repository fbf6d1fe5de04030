"""The audit chain's last verification, kept for screens that show its state.

Walking the chain (``elog.services.audit_chain_verify``) reads every audit
record: never per request. Celery beat runs ``audit_chain_status_refresh``
(``elog.tasks_chain``, every 15 minutes) and keeps its outcome in the shared
cache; ``audit_chain_status`` reads it back (None before the first run, or when
the cache forgot it). ``GET /api/audit/verify`` still walks the chain on demand.

When a refresh changes the state (verified or broken, and where it first
breaks; a first verification after the cache forgot counts as a change) it
publishes ``audit_chain.changed`` (``elog.events``, topic ``audit``): the
auditors' dashboards update without polling. A refresh that finds what the last
one found publishes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from bpmos import events
from elog import events as elog_events
from elog.anchors import verify_against_anchors

CACHE_KEY = "elog:audit-chain-status"


def audit_chain_status_refresh() -> dict[str, Any]:
    """Verify the chain now and store the outcome; returns what was stored:
    {"ok", "checked", "headSeq", "verifiedAt", "firstBroken": {seq, id,
    problem, message} | None}."""
    result = verify_against_anchors()  # the newest anchor kept outside the database
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
    before = cache.get(CACHE_KEY)
    cache.set(CACHE_KEY, status, timeout=None)
    if _state(before) != _state(status):
        with transaction.atomic():
            events.publish(elog_events.chain_status_event(status))
    return status


def _state(status: dict[str, Any] | None) -> tuple | None:
    """What a screen shows of a verification: verified or broken, and where."""
    if status is None:
        return None
    broken = status.get("firstBroken") or {}
    return (bool(status.get("ok")), broken.get("seq"), broken.get("problem"))


def audit_chain_status() -> dict[str, Any] | None:
    """The stored outcome of the last verification, or None (never verified, or
    the cache lost it). Raises what the cache raises when it is unreachable."""
    return cache.get(CACHE_KEY)
