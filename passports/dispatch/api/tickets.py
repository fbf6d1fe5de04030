"""Stream tickets: how a plain ``EventSource`` (which cannot send headers) opens
the dispatch stream without putting the long-lived JWT in a URL.

A signed-in client asks ``POST /api/live-products/dispatchable/stream-ticket``
(Bearer token) for a ticket and opens ``…/stream?ticket=<ticket>``. A ticket is
random, single use, and must be redeemed within ``BPMOS_SSE_TICKET_SECONDS``;
the stream it opens lives no longer than the access token that asked for it,
and only while that token would still be accepted: the ticket keeps the token's
generation (``bpmos.accounts.authentication``), so a deactivation after it was
issued voids it even if the user is reactivated within its 30 s.
Tickets live in the cache (Redis in production, files in the embedded mode), so
the WSGI process that issues one and the ASGI process that redeems it share
them. The cache stores only the ticket's SHA-256, so a cache dump holds nothing
that opens a stream.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache

_PREFIX = "dispatch-stream-ticket:"


@dataclass(frozen=True)
class TicketGrant:
    """What a redeemed ticket stands for."""

    user_id: int
    expires_at: datetime  # of the access token that asked for the ticket
    token_generation: int  # of that token: the user's at the time of issue


def _key(ticket: str) -> str:
    return _PREFIX + hashlib.sha256(ticket.encode()).hexdigest()


def ticket_issue(
    *, user_id: int, token_expires_at: datetime, token_generation: int
) -> str:
    """A new single-use ticket for ``user_id``, asked for with an access token
    that expires at ``token_expires_at`` and is of ``token_generation``."""
    ticket = secrets.token_urlsafe(32)
    cache.set(
        _key(ticket),
        {
            "user_id": user_id,
            "expires_at": token_expires_at.timestamp(),
            "gen": token_generation,
        },
        timeout=settings.BPMOS_SSE_TICKET_SECONDS,
    )
    return ticket


def ticket_redeem(*, ticket: str) -> TicketGrant | None:
    """The grant of ``ticket`` if it is valid and unused; it is used up now.

    Of two concurrent redemptions only the one whose delete removed the key
    wins (cache deletes report whether they removed anything).
    """
    if not ticket or len(ticket) > 100:
        return None
    key = _key(ticket)
    value = cache.get(key)
    if not isinstance(value, dict) or not cache.delete(key):
        return None
    return TicketGrant(
        user_id=int(value["user_id"]),
        expires_at=datetime.fromtimestamp(float(value["expires_at"]), tz=UTC),
        # A ticket issued before tickets kept it counts as generation 0, as a
        # token without the claim does; it lives 30 s at most anyway.
        token_generation=int(value.get("gen", 0)),
    )
