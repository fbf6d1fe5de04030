"""Token checks beyond simplejwt's: a deactivation ends every token issued before it.

simplejwt refuses a token while its user is inactive, but once the user is
reactivated their old tokens would work again. Each user has a
``token_generation`` that a deactivation increments; every token BPM-OS issues
carries the generation it was issued in (the ``gen`` claim, copied from the
refresh token to each access token made from it and kept through rotation),
and a token whose generation is not the user's current one is refused: on the
API (``BpmosJWTAuthentication``), on refresh (``BpmosTokenRefreshSerializer``)
and on the WebSocket and dispatch stream (``bpmos.events.authentication``, which
uses the same authenticator). A token without the claim counts as generation 0,
so it dies at the user's first deactivation like any other.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from bpmos import compiled
from bpmos.accounts.models import User

GENERATION_CLAIM = "gen"


def token_generation(token: Token) -> int:
    value = token.get(GENERATION_CLAIM, 0)
    return value if isinstance(value, int) else -1


def token_generation_check(*, user: User, token: Token) -> None:
    """Refuse ``token`` if ``user`` was deactivated after it was issued."""
    if token_generation(token) != user.token_generation:
        raise AuthenticationFailed(
            {
                "detail": "Token was issued before the account was deactivated; "
                "sign in again.",
                "code": "token_not_valid",
            },
            code="token_not_valid",
        )


def refresh_token_for(user: User) -> RefreshToken:
    """A new refresh token for ``user`` (its ``access_token`` inherits the claims)."""
    refresh = RefreshToken.for_user(user)
    refresh[GENERATION_CLAIM] = user.token_generation
    # For the UI only; the server reads the role from the DB.
    refresh["role"] = user.role
    return refresh


def access_token_for(user: User) -> AccessToken:
    """An access token alone (no refresh token, nothing stored) for ``user``:
    what a signed-in page hands its WebSocket (``bpmos.accounts.pages``)."""
    access = AccessToken.for_user(user)
    access[GENERATION_CLAIM] = user.token_generation
    access["role"] = user.role
    return access


# Where a request keeps its authentication (``BpmosJWTAuthentication``).
_AUTHENTICATED = "_bpmos_jwt_authenticated"


class BpmosJWTAuthentication(JWTAuthentication):
    """simplejwt's authenticator plus the token-generation check.

    A request is authenticated once: the idempotency middleware authenticates
    a POST with ``Idempotency-Key`` before its view (a key belongs to a user),
    and the view's DRF request would then decode the token and load the user
    again. The first success is kept on the Django request, under the
    ``Authorization`` header it came from, and reused."""

    def authenticate(self, request):
        django_request = getattr(request, "_request", request)
        header = self.get_header(request)
        kept = getattr(django_request, _AUTHENTICATED, None)
        if kept is not None and kept[0] == header:
            return kept[1]
        result = super().authenticate(request)
        if result is not None:
            setattr(django_request, _AUTHENTICATED, (header, result))
        return result

    def get_user(self, validated_token: Token) -> User:
        """The token's user, read by a statement kept compiled and prepared
        (``bpmos.compiled.instance_get``: every authenticated request reads
        it); an active user is returned as simplejwt would return it. Any
        other case (no such claim, user or active user, revocation checks)
        goes through simplejwt's own ``get_user`` and its refusals."""
        user = None
        if not api_settings.CHECK_REVOKE_TOKEN:
            try:
                user = compiled.instance_get(
                    User,
                    api_settings.USER_ID_FIELD,
                    validated_token[api_settings.USER_ID_CLAIM],
                )
            except (KeyError, ValueError, TypeError):
                user = None
        if user is None or not user.is_active:
            user = super().get_user(validated_token)
        token_generation_check(user=user, token=validated_token)
        return user


class BpmosJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of simplejwt's ("jwtAuth"), for the subclass."""

    target_class = "bpmos.accounts.authentication.BpmosJWTAuthentication"


class BpmosTokenRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh (rotation, blacklisting) for a user who still may.

    Also answers 401 instead of crashing when the token's user was deleted.
    """

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])  # TokenError when invalid
        user = User.objects.filter(
            **{api_settings.USER_ID_FIELD: refresh.get(api_settings.USER_ID_CLAIM)}
        ).first()
        if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            )
        token_generation_check(user=user, token=refresh)
        return super().validate(attrs)
