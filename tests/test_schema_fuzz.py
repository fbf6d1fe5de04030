"""The API fuzzed from its own schema (Schemathesis, in process over WSGI).

Every operation of ``/api/schema/`` is called with examples Schemathesis
generates from the schema (valid and invalid ones, a fixed seed), once for a
token of each of the six roles and once with no token, against the demo plant.
Each answer must be no 5xx, a documented status code, the documented content
type and a body that matches the documented schema (the error envelope
included), an input the schema calls invalid must be refused, and a refusal
of input (400, 413, 415, 422) must have written no audit record and no event.
A stateful test per identity chains operations along the links Schemathesis
infers from the schema.

Each case runs in a savepoint rolled back after it, so what one case writes
(a deactivated user, a blacklisted token) cannot change the next. The long
campaign (more examples, every phase) and what it found: docs/testing.md.
"""

from __future__ import annotations

import itertools
import os
import re
import time

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from bpmos import access
from bpmos.accounts.models import User
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from tests.conftest import bearer

pytestmark = pytest.mark.django_db

# Examples per operation and identity: 163 operations x 7 identities fit the
# suite's budget on 2 workers at this size (docs/testing.md has the figures);
# the long campaign sets more.
MAX_EXAMPLES = int(os.environ.get("BPMOS_FUZZ_EXAMPLES", "1"))
SEED = 20261203
# The stateful phase: scenarios per identity, and calls per scenario, along the
# links Schemathesis infers from the schema (477 between 128 of the 163
# operations: an id a list or a create returns, fed to the operations that
# take it). The long campaign runs more (docs/testing.md).
STATEFUL_SCENARIOS = int(os.environ.get("BPMOS_FUZZ_SCENARIOS", "8"))
STATEFUL_STEPS = int(os.environ.get("BPMOS_FUZZ_STEPS", "6"))
# An identity's fuzz is one test of 163 operations: a few minutes on a quiet
# 2-core machine, past 10 on a loaded one. Its own bound (pytest-timeout; the
# suite's is 1,800 s, pyproject.toml) is for a hang, never for slowness: a
# timeout stops a test inside its transaction, and what follows in it fails.
FUZZ_TIMEOUT = pytest.mark.timeout(3600)


# 503s that are right in process: the dispatch stream is served by daphne only
# (a WSGI server answers ``stream_not_served_here``), and the demo plant's OPC
# UA connector points at a simulator no test starts. Both are documented 503s
# in the envelope; any other 5xx fails.
DEPLOYMENT_503 = frozenset({"stream_not_served_here", "connector_unavailable"})


@schemathesis.check
def no_server_error(ctx, response, case):
    """``not_a_server_error``, less the two deployment 503s above."""
    if response.status_code == 503:
        body = response.json()
        if isinstance(body, dict) and body.get("code") in DEPLOYMENT_503:
            return True
    return not_a_server_error(ctx, response, case)


# Refusals of bad input: nothing may change. Every write is audited and every
# change that others see publishes an event, so a refusal that wrote an audit
# record or an outbox event changed something. The one refusal that is
# audited by design is a failed sign-in (``user.login_failed``: a 401, not in
# this set).
REFUSED_INPUT = frozenset({400, 413, 415, 422})


def _footprint() -> tuple[int, int]:
    """(audit records, outbox events): the two counts in one statement, as
    ``AuditRecord.objects.count(), OutboxEvent.objects.count()`` give them,
    for a quarter of their time (taken before every case: docs/testing.md)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {quote(AuditRecord._meta.db_table)}), "
            f"(SELECT COUNT(*) FROM {quote(OutboxEvent._meta.db_table)})"
        )
        audit, events = cursor.fetchone()
    return audit, events


def call_refusing_cleanly(case, headers):
    """Call ``case`` with the identity's ``headers`` (its token); a refusal of
    its input must leave no audit record and no event behind (checked before
    the case's savepoint is rolled back).

    The headers go into the case itself, so that the checks judge the request
    that was sent: a negative case whose invalid parts were a missing or bad
    ``Authorization`` (replaced by the identity's) and an undeclared query
    parameter (which the API ignores, as Schemathesis allows) is not negative
    any more once the token is in; judged on the generated headers it was
    (``negative_data_rejection`` on a 200 for an extra query parameter)."""
    case.headers.update(headers)
    before = _footprint()
    response = case.call()
    if response.status_code in REFUSED_INPUT:
        after = _footprint()
        assert after == before, (
            f"{case.method} {case.path} answered {response.status_code} "
            f"but wrote (audit records, events) {before} -> {after}"
        )
    return response


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def in_process_app():
    """Django's WSGI handler without the connection closing around each
    request (as Django's test client does): the test's transaction holds the
    connection, and each case runs in a savepoint inside it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Values tried for a path parameter to find the operation's view in the
# URLconf: an integer id, a UUID, a word.
PATH_PROBES = ("1", "00000000-0000-4000-8000-000000000001", "a1")


def _path_enums(item: dict | None) -> dict[str, list[str]]:
    """The path parameters an OpenAPI path item declares with an ``enum``
    (such as a QR code's ``symbol``), by name."""
    enums: dict[str, list[str]] = {}
    for operation in (item or {}).values():
        if not isinstance(operation, dict):
            continue
        for parameter in operation.get("parameters", []):
            enum = parameter.get("schema", {}).get("enum")
            if parameter.get("in") == "path" and enum:
                enums[parameter["name"]] = [str(value) for value in enum]
    return enums


def view_name_of(path: str, item: dict | None = None) -> str | None:
    """The URLconf's view name for an OpenAPI path template (``{id}`` filled
    with the first probe values that resolve, or with the values of the
    parameter's ``enum`` when the path item declares one), or None."""
    names = re.findall(r"\{[^}]+\}", path)
    enums = _path_enums(item)
    choices = [enums.get(name[1:-1], PATH_PROBES) for name in names]
    for values in itertools.product(*choices):
        concrete = path
        for name, value in zip(names, values, strict=True):
            concrete = concrete.replace(name, value, 1)
        try:
            return resolve(concrete).view_name
        except Resolver404:
            continue
    return None


def closed_to(identity: str, raw_schema: dict) -> list[str]:
    """The operations (``"GET /api/x/"``) that POLICY refuses to ``identity``
    (no token: every operation not PUBLIC). Their answer is the permission's
    401 or 403, given before the view reads the query or the body
    (``RolePolicyPermission``, in DRF's ``initial``), whatever the input;
    tests/test_role_matrix.py asserts it, envelope included, for every route,
    method and caller. An operation whose view is not found counts as open."""
    role = None if identity == "anonymous" else identity
    closed = []
    for path, item in raw_schema["paths"].items():
        view_name = view_name_of(path, item)
        if view_name is None:
            continue
        for method in item:
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            if not access.allows(access.rule_for(view_name, method), role):
                closed.append(f"{method.upper()} {path}")
    return closed


def fuzz_config(identity: str, raw_schema: dict) -> schemathesis.Config:
    """The seed, and Schemathesis' ``coverage`` cases (the schema's boundary
    and invalid values, a few to hundreds per operation) only where
    ``identity`` may call the operation: where it may not, every input gets
    the same 401 or 403 (``closed_to``), so the coverage cases would only
    repeat it. The identities that may call the operation (the admin: every
    one) run its coverage cases, middleware refusals included (they do not
    depend on the role). Each operation keeps its generated example and the
    schema's own examples for every identity (docs/testing.md).

    One operations entry naming them all, not one per operation: Schemathesis
    matches every entry against the operation each time it asks for the
    operation's phases or generation settings (thousands of times a module),
    and 169 entries made that a third of the anonymous module's call."""
    closed = closed_to(identity, raw_schema)
    operations = (
        [{"include-name": closed, "phases": {"coverage": {"enabled": False}}}]
        if closed
        else []
    )
    return schemathesis.Config.from_dict({"seed": SEED, "operations": operations})


@pytest.fixture(scope="module")
def api_schema(request, demo_plant, in_process_app, django_db_blocker):
    """``/api/schema/`` as the app serves it, loaded once per module (making
    it takes seconds), configured for the module's ``IDENTITY``
    (``fuzz_config``)."""
    identity = request.module.IDENTITY  # each fuzz module names its own
    with django_db_blocker.unblock():
        loaded = schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json",
            in_process_app,
            config=schemathesis.Config(seed=SEED),
        )
        return schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json",
            in_process_app,
            config=fuzz_config(identity, loaded.raw_schema),
        )


def _headers(role: str) -> dict[str, str]:
    """The Authorization header of the demo user ``role`` (none anonymous)."""
    if role == "anonymous":
        return {}
    return bearer(User.objects.get(username=role))


# A case's token is at most this old (the access token lives 15 minutes): a
# fresh one per case cost a user query, an outstanding-token row and two
# signatures, thousands of times per identity. What a case does to its user
# or token (deactivate, sign out) is rolled back with its savepoint.
TOKEN_REUSE_S = 60.0


def _headers_kept(role: str):
    """``_headers(role)`` for each call, made anew when older than
    ``TOKEN_REUSE_S`` (one per test: a module's demo plant may be seeded
    afresh, with other user ids)."""
    kept: dict[str, object] = {}

    def headers() -> dict[str, str]:
        now = time.monotonic()
        if not kept or now - kept["at"] > TOKEN_REUSE_S:
            kept.update(at=now, headers=_headers(role))
        return dict(kept["headers"])

    return headers


schema = schemathesis.pytest.from_fixture("api_schema")


def fuzz_as(role: str):
    """One test per identity, so that xdist runs them side by side; each in a
    module of its own (this one: anonymous; ``test_schema_fuzz_as_<role>.py``:
    the roles), so that ``--dist loadfile`` gives them to both workers."""
    headers_now = _headers_kept(role)

    @schema.parametrize()
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def test(case):
        headers = headers_now()
        with transaction.atomic():
            response = call_refusing_cleanly(case, headers)
            transaction.set_rollback(True)
        case.validate_response(response, checks=CHECKS, headers=headers)

    return FUZZ_TIMEOUT(test)


def stateful_as(role: str):
    """The stateful phase for one identity: scenarios that chain operations
    along the schema's links (Schemathesis' dependency analysis), each
    scenario in a savepoint rolled back at its end, with the same checks on
    every call and a fixed seed."""

    def test(api_schema):
        headers = _headers(role)
        base = api_schema.as_state_machine()
        links = api_schema.statistic.transitions.total
        assert links >= 400, f"only {links} links: the schema lost its ids"

        class Scenario(base):
            def setup(self):
                self._savepoint = transaction.atomic()
                self._savepoint.__enter__()

            def teardown(self):
                transaction.set_rollback(True)
                self._savepoint.__exit__(None, None, None)

            def call(self, case, **kwargs):
                return call_refusing_cleanly(case, headers)

            def validate_response(self, response, case, **kwargs):
                case.validate_response(response, checks=CHECKS, headers=headers)

        run_state_machine_as_test(
            Scenario,
            settings=settings(
                max_examples=STATEFUL_SCENARIOS,
                stateful_step_count=STATEFUL_STEPS,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )

    return FUZZ_TIMEOUT(test)


IDENTITY = "anonymous"
test_api_conforms_to_its_schema_anonymous = fuzz_as(IDENTITY)
test_api_chains_conform_to_its_schema_anonymous = stateful_as(IDENTITY)


def test_coverage_cases_are_left_out_only_where_the_policy_refuses(api_schema):
    """``fuzz_config`` finds every operation's view (none is taken for open by
    mistake), leaves out the coverage cases of no operation for the admin and
    of the PUBLIC ones for no token, and only where POLICY refuses the role."""
    raw = api_schema.raw_schema
    operations = [
        (method.upper(), path)
        for path, item in raw["paths"].items()
        for method in item
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    ]
    unresolved = sorted(
        {
            path
            for _, path in operations
            if view_name_of(path, raw["paths"][path]) is None
        }
    )
    assert unresolved == [], f"no view found for {unresolved}"
    assert closed_to("admin", raw) == []
    public = {
        f"{method} {path}"
        for method, path in operations
        if access.rule_for(view_name_of(path, raw["paths"][path]), method)
        is access.PUBLIC
    }
    anonymous = set(closed_to("anonymous", raw))
    assert public
    assert not public & anonymous
    assert anonymous | public == {f"{method} {path}" for method, path in operations}
    for role in ("operator", "planner", "supervisor", "plant-head", "auditor"):
        closed = set(closed_to(role, raw))
        assert closed, role
        assert len(closed) < len(operations), role
        for label in closed:
            method, path = label.split(" ", 1)
            rule = access.rule_for(view_name_of(path, raw["paths"][path]), method)
            assert rule is not access.PUBLIC, (role, label)
            assert role not in rule, (role, label)
    project = fuzz_config("operator", raw).projects.get_default()
    closed = set(closed_to("operator", raw))
    for result in api_schema.get_all_operations():
        operation = result.ok()
        phases = project.phases_for(operation=operation)
        assert phases.coverage.enabled is (operation.label not in closed)
        assert phases.fuzzing.enabled
        assert phases.examples.enabled
