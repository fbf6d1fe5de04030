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
