"""Reads of accounts for other read models (the admin's dashboard)."""

from __future__ import annotations

from django.db.models import Count, Q

from bpmos.accounts.models import User
from bpmos.roles import Role


def user_health() -> dict:
    """Users: {"active", "inactive", "neverSignedIn", "byRole": {slug: active}}.
    One query."""
    active = Q(is_active=True)
    counts = User.objects.aggregate(
        active=Count("id", filter=active),
        inactive=Count("id", filter=~active),
        never=Count("id", filter=active & Q(last_login__isnull=True)),
        **{
            f"role_{i}": Count("id", filter=active & Q(role=role))
            for i, role in enumerate(Role.values)
        },
    )
    return {
        "active": counts["active"],
        "inactive": counts["inactive"],
        "neverSignedIn": counts["never"],
        "byRole": {role: counts[f"role_{i}"] for i, role in enumerate(Role.values)},
    }


def user_ids_by_roles(*, roles) -> list[tuple[int, str]]:
    """(id, role) of the active users holding one of ``roles``. One query."""
    return list(
        User.objects.filter(is_active=True, role__in=list(roles))
        .order_by("id")
        .values_list("id", "role")
    )
