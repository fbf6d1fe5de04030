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

from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from bpmos.accounts.models import User
from bpmos.rawsql import orm_instance

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


# Every concrete field of the user, loaded as ``User.objects.get`` loads them.
_USER_FIELDS = tuple(field.attname for field in User._meta.concrete_fields)
_user_sql: dict[str, str] = {}


def user_by_id(user_id: Any) -> User | None:
    """The user with primary key ``user_id`` (the token's claim), every field
    loaded and converted as ``User.objects.get(pk=user_id)`` loads them, or
    None. One raw statement, built once per database vendor: every
    authenticated request reads its user, and compiling the ORM's query cost
    more than running it (~0.3 ms a request here). The claim is prepared as
    the ORM's lookup prepares it (``get_db_prep_value``: a value that is no
    id raises as it did there)."""
    sql = _user_sql.get(connection.vendor)
    if sql is None:
        quote = connection.ops.quote_name
        meta = User._meta
        columns = ", ".join(quote(field.column) for field in meta.concrete_fields)
        sql = _user_sql[connection.vendor] = (
            f"SELECT {columns} FROM {quote(meta.db_table)} "
            f"WHERE {quote(meta.pk.column)} = %s"
        )
    value = User._meta.pk.get_db_prep_value(user_id, connection, prepared=False)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    return None if row is None else orm_instance(User, _USER_FIELDS, row)


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
        """simplejwt's ``get_user`` (the same refusals, in the same order),
        reading the user with ``user_by_id``, then the generation check."""
        if api_settings.CHECK_REVOKE_TOKEN or api_settings.USER_ID_FIELD not in (
            "id",
            "pk",
        ):
            user = super().get_user(validated_token)
        else:
            try:
                user_id = validated_token[api_settings.USER_ID_CLAIM]
            except KeyError as e:
                raise InvalidToken(
                    _("Token contained no recognizable user identification")
                ) from e
            user = user_by_id(user_id)
            if user is None:
                raise AuthenticationFailed(_("User not found"), code="user_not_found")
            if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
                raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
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
