"""Access grants for outside parties: the legitimate-interest tier of the EU
attribute set (``passports.attributes``) for whoever holds a token an admin
issued, bound to one passport or to one customer's passports, expiring and
revocable, every use audited (docs/passports.md).

The token is 32 random bytes (``secrets.token_urlsafe``), returned once by
``grant_issue``; only its SHA-256 is stored, so a database reader cannot use a
grant. A caller presents it in the ``X-Passport-Grant`` header.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from bpmos.errors import Conflict, Forbidden, InvalidInput, NotFound
from elog import audit
from passports.models import Passport, PassportAccessGrant

MAX_DAYS = 90
HEADER = "HTTP_X_PASSPORT_GRANT"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid input: {field}: {message}",
        code="validation_error",
        details={field: [message]},
    )


def _snapshot(grant: PassportAccessGrant) -> dict[str, Any]:
    return {
        "party": grant.party,
        "passportId": grant.passport_id,
        "customer": grant.customer,
        "expiresAt": grant.expires_at.isoformat(),
    }


@transaction.atomic
def grant_issue(
    *,
    party: Any,
    passport: Passport | None = None,
    customer: Any = "",
    days: Any = 30,
    actor: Any,
) -> tuple[PassportAccessGrant, str]:
    """Issue a grant to ``party`` for one passport or one customer's; the
    token is returned here only."""
    if not isinstance(party, str) or not party.strip() or len(party.strip()) > 120:
        raise _invalid("party", "Who the grant is for: 1 to 120 characters.")
    if customer is None:
        customer = ""
    if not isinstance(customer, str) or len(customer.strip()) > 120:
        raise _invalid("customer", "A custodian name, at most 120 characters.")
    customer = customer.strip()
    if (passport is None) == (not customer):
        raise _invalid("passport", "Name either one passport or one customer.")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise _invalid("days", f"A whole number of days, 1 to {MAX_DAYS}.")
    token = secrets.token_urlsafe(32)
    grant = PassportAccessGrant.objects.create(
        token_hash=_digest(token),
        party=party.strip(),
        passport=passport,
        customer=customer,
        expires_at=timezone.now() + timedelta(days=days),
        issued_by=actor,
    )
    audit.record(
        actor=actor,
        action="passport.grant_issued",
        target=grant,
        after=_snapshot(grant),
    )
    return grant, token


@transaction.atomic
def grant_revoke(*, grant_id: int, actor: Any) -> PassportAccessGrant:
    """Revoke a grant now; 409 when it already was."""
    grant = PassportAccessGrant.objects.select_for_update().filter(pk=grant_id).first()
    if grant is None:
        raise NotFound("No access grant has this id.")
    if grant.revoked_at is not None:
        raise Conflict("This grant is already revoked.", code="grant_revoked")
    grant.revoked_at, grant.revoked_by = timezone.now(), actor
    grant.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(
        actor=actor,
        action="passport.grant_revoked",
        target=grant,
        before=_snapshot(grant),
        after={"revokedAt": grant.revoked_at.isoformat()},
    )
    return grant


def grant_use(*, token: str, passport: Passport) -> PassportAccessGrant:
    """The grant ``token`` names if it is valid for ``passport`` now: not
    revoked, not expired, bound to this passport or to the customer holding
    it. The use is audited; anything else is 403 ``grant_invalid`` (the same
    answer whatever is wrong, so a token cannot be probed)."""
    grant = (
        PassportAccessGrant.objects.filter(token_hash=_digest(token))
        .select_related("passport")
        .first()
    )
    valid = (
        grant is not None
        and grant.revoked_at is None
        and grant.expires_at > timezone.now()
        and (
            grant.passport_id == passport.pk
            if grant.passport_id
            else grant.customer == passport.custodian_name
        )
    )
    if not valid:
        raise Forbidden(
            "This access grant is not valid for this passport.", code="grant_invalid"
        )
    audit.record(
        actor=None,
        action="passport.grant_used",
        target=passport,
        after={"grantId": grant.pk, "party": grant.party},
    )
    return grant


def grant_list():
    return PassportAccessGrant.objects.select_related("passport").order_by(
        "-issued_at", "-id"
    )
