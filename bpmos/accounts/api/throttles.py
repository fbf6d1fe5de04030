"""Throttle for failed logins only: a correct password is never slowed down."""

import structlog
from rest_framework.throttling import SimpleRateThrottle

from bpmos.accounts.services import login_locked_out_record

log = structlog.get_logger(__name__)


class LoginFailureThrottle(SimpleRateThrottle):
    """Counts failed logins per client address and username.

    ``allow_request`` only checks the count; the login view calls
    ``record_failure`` when a password is wrong. Keyed by address *and*
    username so one operator's typos do not lock out a shared shop-floor tablet
    for everyone, and guessing many usernames from one address is still slowed
    by the per-address key.

    While the cache (Redis in production) is unreachable the throttle lets
    logins through and logs a warning: a down cache must not lock everyone
    out of the plant.
    """

    scope = "login_failures"

    def get_cache_key(self, request, view):
        return None  # unused: the two keys below are used instead

    @staticmethod
    def _username(request) -> str:
        """The username a login tried ("" when it is not text: the login
        refuses a list or a number), as typed, at most 150 characters."""
        data = getattr(request, "data", None)
        username = data.get("username", "") if isinstance(data, dict) else ""
        return username[:150] if isinstance(username, str) else ""

    def _keys(self, request) -> list[str]:
        address = self.get_ident(request)
        username = self._username(request).lower()
        return [
            self.cache_format
            % {"scope": self.scope, "ident": f"addr:{address}:user:{username}"},
            self.cache_format % {"scope": f"{self.scope}_addr", "ident": address},
        ]

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.now = self.timer()
        self._wait = 0.0
        keys = self._keys(request)
        try:
            stored = self.cache.get_many(keys)
        except Exception as exc:  # the cache is down: let the login through
            log.warning("login_throttle_unavailable", error=f"{type(exc).__name__}")
            return True
        for key, limit in zip(
            keys, (self.num_requests, self.num_requests * 4), strict=True
        ):
            history = [t for t in stored.get(key, []) if t > self.now - self.duration]
            if len(history) >= limit:
                self._wait = max(self._wait, self.duration - (self.now - history[-1]))
        return self._wait == 0.0

    def wait(self) -> float:
        return self._wait

    def record_failure(self, request) -> None:
        """Count a failed login; the failure that reaches a limit starts a
        lockout, audited once (``user.login_locked_out``: the username tried,
        which limit, and for how long)."""
        if self.rate is None:
            return
        now = self.timer()
        keys = self._keys(request)
        reached = []
        try:
            stored = self.cache.get_many(keys)
            for key, limit, scope in zip(
                keys,
                (self.num_requests, self.num_requests * 4),
                ("address and username", "address"),
                strict=True,
            ):
                history = [t for t in stored.get(key, []) if t > now - self.duration]
                history.insert(0, now)
                self.cache.set(key, history, self.duration)
                if len(history) == limit:
                    reached.append(scope)
        except Exception as exc:  # the cache is down: the failure goes uncounted
            log.warning("login_throttle_unavailable", error=f"{type(exc).__name__}")
        if reached:
            self._audit_lockout(request, reached)

    def _audit_lockout(self, request, scopes: list[str]) -> None:
        username = self._username(request)
        login_locked_out_record(
            username=username,
            address=self.get_ident(request),
            limits=scopes,
            seconds=self.duration,
        )
        log.warning("login_locked_out", username=username, limits=scopes)
