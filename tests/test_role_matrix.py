"""Every /api/ route x every method it implements x every caller, against POLICY.

"Every method" is what the view implements (get/post/put/patch/delete) plus
OPTIONS, which DRF answers on every view; HEAD is left out (Django serves it
through GET, and it has no body to check).

The routes are discovered from the URLconf (tests/support.py), so a new
endpoint is checked as soon as it is routed, and cannot ship without a POLICY
entry. Nothing is excluded: schema and docs are checked like every other route
even though drf-spectacular guards them with its own SERVE_PERMISSIONS
(AllowAny) instead of RolePolicyPermission; POLICY declares them PUBLIC and the
requests below confirm that is what they do.
"""

import pytest

from bpmos import access
from bpmos.roles import Role
from tests.conftest import bearer
from tests.support import ENVELOPE_KEYS, api_routes

CALLERS: list[Role | None] = [None, *Role]  # None: no token at all
WITH_BODY = {"POST", "PUT", "PATCH"}
# Declared in POLICY; their routes land with the audit log API (branch `audit`).


def _rule(route, method: str):
    """The expected rule: POLICY's, with OPTIONS as access.py documents it.

    OPTIONS follows GET; on a route without GET it is open to whoever may call
    any of the route's methods (it only describes the route).
    """
    if method != "OPTIONS" or "GET" in route.methods:
        return access.rule_for(route.view_name, method)
    rules = [access.rule_for(route.view_name, m) for m in route.methods]
    if access.PUBLIC in rules:
        return access.PUBLIC
    return frozenset().union(*(r for r in rules if r is not None))


def _judge(rule, role: Role | None, response) -> str | None:
    """What is wrong with ``response`` for this caller, or None."""
    status = response.status_code
    if status == 500:
        return "500: the view crashed"
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    if rule is access.PUBLIC:
        if status in {401, 403}:
            return f"PUBLIC route answered {status} {code}"
        return None
    if role is None:
        if status != 401 or code != "not_authenticated":
            return f"expected 401 not_authenticated, got {status} {code}"
    elif not access.allows(rule, role):
        if status != 403 or code != "permission_denied":
            return f"expected 403 permission_denied, got {status} {code}"
    elif status in {401, 403}:
        return f"role is allowed but got {status} {code}"
    if status in {401, 403} and set(body) != ENVELOPE_KEYS:
        return f"{status} without the error envelope: {body}"
    return None


def test_discovery_finds_the_known_routes():
    names = {route.name for route in api_routes()}
    assert {"health", "schema", "docs", "auth-login", "auth-user-detail"} <= names


# Transactional: the live server's thread must see the callers' users. The
# other tests read the URLconf and POLICY only (no database, so no flush).
@pytest.mark.django_db(transaction=True)
def test_every_route_method_and_role_is_answered_as_declared(http, make_user):
    tokens = {role: bearer(make_user(role)) for role in Role}
    # The schema's first generation and YAML rendering (seconds of CPU; on a
    # loaded machine more than the client's 10 s) happen here, with room: the
    # matrix's own requests of it get the process's copy (tests/support_schema.py).
    http.get("/api/schema", timeout=300)
    mismatches = []
    checked = 0
    for route in api_routes():
        for method in (*route.methods, "OPTIONS"):
            rule = _rule(route, method)
            for role in CALLERS:
                response = http.request(
                    method,
                    route.path,
                    headers=tokens[role] if role else {},
                    json={} if method in WITH_BODY else None,
                )
                checked += 1
                problem = _judge(rule, role, response)
                if problem:
                    mismatches.append(
                        f"{method} {route.path} [{route.name}] as "
                        f"{role or 'anonymous'} (rule {rule!r}): {problem}"
                    )
    assert not mismatches, f"{len(mismatches)} of {checked} checks:\n" + "\n".join(
        mismatches
    )


def test_every_route_method_has_a_policy_rule():
    missing = [
        f"{method} {route.path} [{route.name}]"
        for route in api_routes()
        for method in route.methods
        if access.rule_for(route.view_name, method) is None
    ]
    assert not missing, "No POLICY rule (refused to everyone):\n" + "\n".join(missing)


def test_policy_declares_only_methods_the_route_implements():
    implemented: dict[str, set[str]] = {}
    for route in api_routes():
        implemented.setdefault(route.name, set()).update(route.methods)
    extra = [
        f"{name}: {sorted(set(rules) - implemented[name])}"
        for name, rules in access.POLICY.items()
        if name in implemented and set(rules) - implemented[name]
    ]
    assert not extra, "POLICY declares methods no view implements:\n" + "\n".join(extra)


def test_every_policy_entry_names_a_real_route():
    stale = set(access.POLICY) - {route.name for route in api_routes()}
    assert stale == set(), f"POLICY entries without a route: {sorted(stale)}"
