"""Who is on the other end of a WebSocket: the REST API's JWT rules, reused.

The token is checked by the same authenticator the API uses (same signing key,
lifetime, token type, active-user, revoked-token and token-generation checks), and
the user and their role are read from the database, never from the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from bpmos.accounts.authentication import BpmosJWTAuthentication
from bpmos.accounts.models import User

_authenticator = BpmosJWTAuthentication()


class SubscriberRejected(Exception):
    """The token or its user is not (or no longer) acceptable."""

    def __init__(self, message: str, *, code: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}


@dataclass(frozen=True)
class Subscriber:
    """A signed-in WebSocket client: its user and when its token runs out."""

    user: User
    expires_at: datetime


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer`` handshake header, if one was sent.

    Raises ``SubscriberRejected`` for an Authorization header that is not a
    bearer token: a client that sent credentials should hear they were refused.
    """
    for name, value in headers:
        if name.lower() == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0] in api_settings.AUTH_HEADER_TYPES:
                return parts[1]
            raise SubscriberRejected(
                "The Authorization header must be 'Bearer <token>'.",
                code="bad_authorization_header",
            )
    return None


def subscriber_authenticate(*, token: str) -> Subscriber:
    """Validate an access token and load its active user (one query)."""
    try:
        validated = _authenticator.get_validated_token(token.encode())
        user = _authenticator.get_user(validated)
    except AuthenticationFailed as exc:
        raise SubscriberRejected(
            _message(exc), code=_code(exc), details=_details(exc)
        ) from exc
    expires_at = datetime.fromtimestamp(validated["exp"], tz=UTC)
    return Subscriber(user=user, expires_at=expires_at)


def subscriber_reload(*, user_id: int, token_generation: int | None = None) -> User:
    """The user's current row: a role change or deactivation counts at once.

    With ``token_generation`` (the one the connection's token was checked
    against), a deactivation since then ends the connection even if the user
    was reactivated in between.
    """
    user = User.objects.filter(pk=user_id).first()
    if user is None or not user.is_active:
        raise SubscriberRejected("User is inactive", code="user_inactive")
    if token_generation is not None and user.token_generation != token_generation:
        raise SubscriberRejected(
            "Token was issued before the account was deactivated; sign in again.",
            code="token_not_valid",
        )
    return user


def _code(exc: AuthenticationFailed) -> str:
    # simplejwt puts its code in the detail dict ({"detail", "code"}), as the
    # REST API's envelope reports it.
    detail = exc.detail
    if isinstance(detail, dict) and detail.get("code"):
        return str(detail["code"])
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else "authentication_failed"


def _message(exc: AuthenticationFailed) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        detail = detail.get("detail", "")
    return str(detail) or "Authentication failed."


def _details(exc: AuthenticationFailed) -> dict:
    # simplejwt says why per token class ("Token is expired"); pass that on.
    detail = exc.detail
    if isinstance(detail, dict) and isinstance(detail.get("messages"), list):
        return {"messages": [str(m.get("message", "")) for m in detail["messages"]]}
    return {}
