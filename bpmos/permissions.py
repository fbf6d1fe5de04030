"""DRF permission class that enforces bpmos/access.py for every API view."""

import structlog
from rest_framework.permissions import BasePermission

from bpmos import access

log = structlog.get_logger(__name__)


class RolePolicyPermission(BasePermission):
    """Allow a request only if the access declaration allows the caller's role.

    The role is read from the user row loaded for this request (simplejwt loads
    it from the database on every request), never from the token's claims, so a
    role change or deactivation takes effect on the very next request.
    """

    message = "Your role may not perform this action."

    def has_permission(self, request, view) -> bool:
        if not hasattr(view, request.method.lower()):
            return True  # the view answers 405 Method Not Allowed
        match = request.resolver_match
        view_name = match.view_name if match else ""
        rule = access.rule_for(view_name, request.method)
        if rule is None and request.method == "OPTIONS":
            rule = _options_rule(view_name, view)
        if rule is None:
            log.error("access_rule_missing", view=view_name, method=request.method)
            return False
        if rule is access.PUBLIC:
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return (
                False  # DRF turns this into 401 because the authenticator has a header
            )
        return access.allows(rule, getattr(user, "role", None))


def _options_rule(view_name: str, view) -> access.Rule | None:
    """OPTIONS on a route without GET (which it otherwise follows).

    OPTIONS only describes the route, so whoever may call any of its methods may
    ask; a POST-only public route (login) answers everyone, including a browser's
    credential-less preflight. Without this, OPTIONS on such a route was refused
    to everyone and logged as a missing access rule.
    """
    rules = [
        access.rule_for(view_name, method)
        for method in ("POST", "PUT", "PATCH", "DELETE")
        if hasattr(view, method.lower())
    ]
    if any(rule is access.PUBLIC for rule in rules):
        return access.PUBLIC
    roles = [rule for rule in rules if isinstance(rule, frozenset)]
    return frozenset().union(*roles) if roles else None
