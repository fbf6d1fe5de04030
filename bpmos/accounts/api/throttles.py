"""Throttle for failed logins only: a correct password is never slowed down."""

from rest_framework.throttling import SimpleRateThrottle


class LoginFailureThrottle(SimpleRateThrottle):
    """Counts failed logins per client address and username.

    ``allow_request`` only checks the count; the login view calls
    ``record_failure`` when a password is wrong. Keyed by address *and*
    username so one operator's typos do not lock out a shared shop-floor tablet
    for everyone, and guessing many usernames from one address is still slowed
    by the per-address key.
    """

    scope = "login_failures"

    def get_cache_key(self, request, view):
        return None  # unused: the two keys below are used instead

    def _keys(self, request) -> list[str]:
        address = self.get_ident(request)
        username = (
            str(request.data.get("username", "")).lower()[:150]
            if hasattr(request, "data")
            else ""
        )
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
        for key, limit in zip(
            self._keys(request), (self.num_requests, self.num_requests * 4), strict=True
        ):
            history = [
                t for t in self.cache.get(key, []) if t > self.now - self.duration
            ]
            if len(history) >= limit:
                self._wait = max(self._wait, self.duration - (self.now - history[-1]))
        return self._wait == 0.0

    def wait(self) -> float:
        return self._wait

    def record_failure(self, request) -> None:
        now = self.timer()
        for key in self._keys(request):
            history = [t for t in self.cache.get(key, []) if t > now - self.duration]
            history.insert(0, now)
            self.cache.set(key, history, self.duration)
