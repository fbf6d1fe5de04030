"""Rate limits on the endpoints a stranger or a runaway client can hammer.

The public passport (no token: the target of the QR code on every battery)
is limited per client address; the dispatch stream's ticket (each one a
Redis key and a stream slot) per user. Past the limit the answer is 429 in
the error envelope with ``Retry-After``. The rates are settings
(``BPMOS_PUBLIC_PASSPORT_RATE``, ``BPMOS_STREAM_TICKET_RATE``, DRF's
``"<n>/<second|minute|hour|day>"``).

The counters live in the cache (Redis in production). While it is
unreachable the limits let requests through and log a warning, as the login
throttle does: a down cache must not take the passports or the dispatch
desk down with it.
"""

from __future__ import annotations

import structlog
from rest_framework.throttling import SimpleRateThrottle

log = structlog.get_logger(__name__)


class FailOpenRateThrottle(SimpleRateThrottle):
    """DRF's fixed-window-history throttle that lets requests through while the
    cache is down."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache is down: do not refuse the plant
            log.warning(
                "rate_limit_unavailable",
                scope=self.scope,
                error=f"{type(exc).__name__}",
            )
            return True


class PublicPassportThrottle(FailOpenRateThrottle):
    """Per client address, for the public passport (anyone may ask)."""

    scope = "public_passport"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }


class StreamTicketThrottle(FailOpenRateThrottle):
    """Per signed-in user, for the dispatch stream's tickets."""

    scope = "stream_ticket"

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        ident = (
            f"user:{user.pk}"
            if user is not None and user.is_authenticated
            else f"addr:{self.get_ident(request)}"
        )
        return self.cache_format % {"scope": self.scope, "ident": ident}
