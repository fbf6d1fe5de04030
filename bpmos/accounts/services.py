"""Account writes: register, change role, deactivate, reactivate, log out.

Each function locks what it changes, checks the rule, writes, audits and
publishes; the API views and the admin call these and nothing else.
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from bpmos import audit, events
from bpmos.accounts.events import UserChanged
from bpmos.accounts.models import User
from bpmos.errors import Conflict, InvalidInput
from bpmos.locking import lock_row
from bpmos.roles import Role


def _snapshot(user: User) -> dict:
    return {
        "username": user.username,
        "role": user.role,
        "is_active": user.is_active,
        "email": user.email,
    }


def _get_locked(user_id: int) -> User:
    return lock_row(User.objects.all(), what=f"User {user_id}", pk=user_id)


def _ensure_an_active_admin_remains(user: User) -> None:
    others = User.objects.filter(role=Role.ADMIN, is_active=True).exclude(pk=user.pk)
    if user.role == Role.ADMIN and user.is_active and not others.exists():
        raise Conflict(
            "This is the last active admin; make another admin first.",
            code="last_admin",
        )


@transaction.atomic
def user_register(
    *,
    username: str,
    password: str,
    role: str,
    actor: User | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create a user with a role (admins only: a plant has no self-registration)."""
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(f"The username {username!r} is taken.", code="username_taken")
    candidate = User(
        username=username, email=email, first_name=first_name, last_name=last_name
    )
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise InvalidInput(
            "The password is too weak.",
            code="validation_error",
            details={"password": exc.messages},
        ) from exc
    user = User(
        username=username,
        role=role,
        email=email,
        first_name=first_name,
        last_name=last_name,
    )
    user.set_password(password)
    user.apply_role_flags()
    user.save()
    user_registration_record(user=user, actor=actor)
    return user


def user_registration_record(*, user: User, actor: User | None) -> None:
    """Audit and announce a new user (``user_register``, ``createsuperuser``)."""
    audit.record(
        actor=actor, action="user.registered", target=user, after=_snapshot(user)
    )
    events.publish(UserChanged.of(user, change="registered"))


@transaction.atomic
def user_role_change(*, user_id: int, role: str, actor: User | None) -> User:
    """Give a user another role; effective on their very next request."""
    user = _get_locked(user_id)
    if user.role == role:
        return user
    if role != Role.ADMIN:
        _ensure_an_active_admin_remains(user)
    before = _snapshot(user)
    user.role = role
    user.apply_role_flags()
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    audit.record(
        actor=actor,
        action="user.role_changed",
        target=user,
        before=before,
        after=_snapshot(user),
    )
    events.publish(UserChanged.of(user, change="role_changed"))
    return user


@transaction.atomic
def user_set_active(*, user_id: int, active: bool, actor: User | None) -> User:
    """Deactivate (refused for the last admin) or reactivate a user.

    A deactivated user's access tokens stop working on the next request and
    their refresh tokens are refused, because both paths reload the user. The
    deactivation also moves the user to a new token generation, so the tokens
    issued before it stay refused after a reactivation: the user signs in again.
    """
    user = _get_locked(user_id)
    if user.is_active == active:
        return user
    if not active:
        _ensure_an_active_admin_remains(user)
    before = _snapshot(user)
    user.is_active = active
    if not active:
        user.token_generation += 1  # the row is locked: no lost update
    user.save(update_fields=["is_active", "token_generation"])
    audit.record(
        actor=actor,
        action="user.reactivated" if active else "user.deactivated",
        target=user,
        before=before,
        after=_snapshot(user),
    )
    events.publish(
        UserChanged.of(user, change="reactivated" if active else "deactivated")
    )
    return user


@transaction.atomic
def user_logout(*, refresh: str, actor: User) -> None:
    """Blacklist a refresh token of the caller's so it can never be used again."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise InvalidInput(
            "The refresh token is not valid.",
            code="token_not_valid",
            details={"refresh": [str(exc)]},
        ) from exc
    if str(token.get("user_id")) != str(actor.pk):
        raise InvalidInput(
            "That refresh token belongs to another user.",
            code="token_not_valid",
            details={"refresh": ["Not your token."]},
        )
    token.blacklist()
    audit.record(actor=actor, action="user.logged_out", target=actor)


# Sign-in records: every way in (the API's login, the pages' sign-in form, the
# failed-login throttle) writes the same three audit actions through these.


def login_failed_record(*, username: str, via: str | None = None) -> None:
    """Audit a refused sign-in (``user.login_failed``): the username as typed
    (at most 150 characters), never the password."""
    after = {"username": username[:150]}
    if via:
        after["via"] = via
    audit.record(
        actor=None, action="user.login_failed", target_type="accounts.user", after=after
    )


def logged_in_record(*, user: User, via: str | None = None) -> None:
    """Audit a sign-in (``user.logged_in``)."""
    audit.record(
        actor=user,
        action="user.logged_in",
        target=user,
        after={"via": via} if via else None,
    )


def login_locked_out_record(
    *, username: str, address: str, limits: list[str], seconds: int
) -> None:
    """Audit the failed login that starts a lockout (``user.login_locked_out``):
    the username tried, the client address, which limits were reached and for
    how long."""
    audit.record(
        actor=None,
        action="user.login_locked_out",
        target_type="accounts.user",
        after={
            "username": username,
            "address": address,
            "limits": limits,
            "seconds": seconds,
        },
    )
