"""Who may do what, stated here independently of ``bpmos/access.py``.

``test_role_matrix.py`` proves the declaration in ``bpmos/access.py`` is what
every route does; it cannot tell whether the declaration itself is right, since
it reads its expectations from it. This module writes the expectation by hand,
from the design's role table (docs/design.md §5, the README's Roles table) and the
per-route tables of docs/*.md, and checks the declaration against it for every
``/api/`` route found in the URLconf. Giving a role one method too many (the
auditor POST on passport custody) fails both the table and a rule below.

Nothing here is read from ``access.POLICY`` or ``access.ACTIONS`` to decide what
is expected: roles are written as their slugs, routes as their paths.
"""

import re

import pytest

from bpmos import access
from tests.support import api_routes

# --- the roles, as their slugs (docs/design.md §5) ------------------------------

OPERATOR = "operator"
PLANNER = "planner"
SUPERVISOR = "supervisor"
PLANT_HEAD = "plant-head"
AUDITOR = "auditor"
ADMIN = "admin"
ROLES = frozenset({OPERATOR, PLANNER, SUPERVISOR, PLANT_HEAD, AUDITOR, ADMIN})

NO_TOKEN = "no token"  # anyone, signed in or not
SIGNED_IN = ROLES  # every role reads; the auditor reads everything
FLOOR = ROLES - {AUDITOR}  # "writes nothing": the auditor
PLANNING = frozenset({PLANNER, SUPERVISOR, PLANT_HEAD, ADMIN})  # docs: "planners"
SUPERVISING = frozenset({SUPERVISOR, PLANT_HEAD, ADMIN})  # plant head ⊇ supervisor
AUDITING = frozenset({AUDITOR, ADMIN})
ADMIN_ONLY = frozenset({ADMIN})
RESTRICTED_READERS = frozenset({SUPERVISOR, PLANT_HEAD, AUDITOR, ADMIN})
ISSUE_READERS = frozenset({PLANNER, SUPERVISOR, PLANT_HEAD, AUDITOR, ADMIN})

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# --- every route and method: who may call it ---------------------------------------
# "{x}" stands for one path segment. Written from docs/design.md §5 and the route
# tables of docs/control-tower.md, production-api.md, inventory.md, passports.md,
# dispatch.md, lines.md and the README.

EXPECTED: dict[str, frozenset[str] | str] = {
    # platform
    "GET /api/health": NO_TOKEN,
    "GET /api/schema": NO_TOKEN,
    "GET /api/docs": NO_TOKEN,
    # accounts: only admin manages users (registration is admin-only, README)
    "POST /api/auth/login": NO_TOKEN,
    "POST /api/auth/refresh": NO_TOKEN,
    "POST /api/auth/logout": SIGNED_IN,
    "GET /api/auth/me": SIGNED_IN,
    "POST /api/auth/register": ADMIN_ONLY,
    "GET /api/auth/users": ADMIN_ONLY,
    "GET /api/auth/users/{id}": ADMIN_ONLY,
    "PATCH /api/auth/users/{id}/role": ADMIN_ONLY,
    "POST /api/auth/users/{id}/deactivate": ADMIN_ONLY,
    "POST /api/auth/users/{id}/reactivate": ADMIN_ONLY,
    # audit log: the auditor reads it and its verification
    "GET /api/audit": AUDITING,
    "GET /api/audit/{id}": AUDITING,
    "GET /api/audit/verify": AUDITING,
    # control tower: supervisors approve gates and resolve exceptions
    "GET /api/control-tower/runbooks": SIGNED_IN,
    "GET /api/runbooks/{id}": SIGNED_IN,
    "GET /api/runbooks/{id}/stages": SIGNED_IN,
    "GET /api/runbooks/{id}/exceptions": SIGNED_IN,
    "POST /api/gates/{id}/open": SUPERVISING,
    "POST /api/gates/{id}/close": SUPERVISING,
    "POST /api/gates/{id}/lock": SUPERVISING,
    "GET /api/exceptions": SIGNED_IN,
    "GET /api/exceptions/{id}": SIGNED_IN,
    "POST /api/exceptions/{id}/acknowledge": FLOOR,
    "POST /api/exceptions/{id}/resolve": SUPERVISING,
    # production: planners create and cancel work orders and assign stages; the
    # floor moves stages and raises issues
    "GET /api/workorders": SIGNED_IN,
    "POST /api/workorders": PLANNING,
    "GET /api/workorders/{id}": SIGNED_IN,
    "GET /api/workorders/{id}/stages": SIGNED_IN,
    "POST /api/workorders/{id}/cancel": PLANNING,
    "GET /api/workorders/{id}/metrics": SIGNED_IN,
    "GET /api/stages": SIGNED_IN,
    "GET /api/stages/{id}": SIGNED_IN,
    "GET /api/stages/{id}/metrics": SIGNED_IN,
    "POST /api/stages/{id}/start": FLOOR,
    "POST /api/stages/{id}/done": FLOOR,
    "POST /api/stages/{id}/hold": FLOOR,
    "POST /api/stages/{id}/resume": FLOOR,
    "GET /api/stages/{id}/assignments": SIGNED_IN,
    "POST /api/stages/{id}/assignments": PLANNING,
    "DELETE /api/stages/{id}/assignments/{user}": PLANNING,
    "POST /api/stages/{id}/issue": FLOOR,
    "GET /api/stages/{id}/issues": SIGNED_IN,
    "PATCH /api/stages/{id}/issues/{issue}": FLOOR,  # resolving: ACTIONS below
    "GET /api/issues": ISSUE_READERS,
    # inventory: planners promise stock, the floor moves it, supervisors hold it
    "GET /api/inventory/categories": SIGNED_IN,
    "GET /api/inventory/items": SIGNED_IN,
    "GET /api/inventory/items/{id}": SIGNED_IN,
    "GET /api/inventory/stock": SIGNED_IN,
    "GET /api/inventory/locations": SIGNED_IN,
    "GET /api/inventory/reservations": SIGNED_IN,
    "POST /api/inventory/items/{id}/reserve": PLANNING,
    "POST /api/inventory/reservations/{id}/release": PLANNING,
    "POST /api/inventory/reservations/{id}/consume": FLOOR,
    "POST /api/inventory/items/{id}/issue": FLOOR,
    "POST /api/inventory/items/{id}/move": FLOOR,
    "POST /api/inventory/items/{id}/hold": SUPERVISING,
    "POST /api/inventory/items/{id}/release-hold": SUPERVISING,
    "POST /api/inventory/items/{id}/block": SUPERVISING,
    # lines, live status, machines (readings come from the floor's gateways)
    "GET /api/lines": SIGNED_IN,
    "GET /api/lines/{id}": SIGNED_IN,
    "GET /api/lines/{id}/stations": SIGNED_IN,
    "GET /api/lines/{id}/oee": SIGNED_IN,
    "GET /api/live-status/summary": SIGNED_IN,
    "GET /api/live-status/operations": SIGNED_IN,
    "GET /api/live-status/lines": SIGNED_IN,
    "GET /api/live-status/bottlenecks": SIGNED_IN,
    "GET /api/machines": SIGNED_IN,
    "GET /api/machines/{id}": SIGNED_IN,
    "POST /api/machines/{id}/readings": FLOOR,
    # passports: custody is a supervisor decision; verification is the auditor's
    "GET /api/passports": SIGNED_IN,
    "POST /api/passports": FLOOR,
    "GET /api/passports/lookup": SIGNED_IN,
    "GET /api/passports/verify": AUDITING,
    "GET /api/passports/{p}": SIGNED_IN,
    "GET /api/passports/{p}/public": NO_TOKEN,
    "GET /api/passports/{p}/ledger": SIGNED_IN,
    "GET /api/passports/{p}/ledger/proof": AUDITING,  # checkpoint inclusion proof
    "POST /api/passports/{p}/events": FLOOR,  # narrowed per kind: ACTIONS below
    "POST /api/passports/{p}/custody": SUPERVISING,
    "GET /api/passports/{p}/genealogy": SIGNED_IN,
    "POST /api/passports/{p}/components": FLOOR,
    # an electronic signature of a dispatch release: those who dispatch
    "POST /api/passports/{p}/signatures": SUPERVISING,
    "GET /api/passports/{p}/telemetry": RESTRICTED_READERS,
    "POST /api/passports/{p}/telemetry": FLOOR,
    "POST /api/passports/{p}/provision": SUPERVISING,
    "GET /api/passports/{p}/provisioning": SIGNED_IN,
    "POST /api/bpan/validate": SIGNED_IN,  # checks a string, writes nothing
    "GET /api/registry": SIGNED_IN,
    "GET /api/registry/{p}": SIGNED_IN,
    # dispatch desk: supervisors dispatch and move to past; everyone watches
    "GET /api/live-products/dispatchable": SIGNED_IN,
    "POST /api/live-products/dispatchable": SUPERVISING,
    "GET /api/live-products/dispatchable/stream": SIGNED_IN,
    "POST /api/live-products/dispatchable/stream-ticket": SIGNED_IN,  # a read ticket
    "GET /api/products/lifecycle": SIGNED_IN,
    "POST /api/products/lifecycle": SUPERVISING,
    "GET /api/products/move-to-past": SIGNED_IN,
    "POST /api/products/move-to-past": SUPERVISING,
    "GET /api/dashboard/status": SIGNED_IN,
    # SCADA (docs/scada.md, docs/design.md §5): the admin configures connectors,
    # tags and alert rules; supervisors and above reach into the field (test, poll,
    # browse), run the rules, shelve alarms and open maintenance work orders;
    # everyone on the floor acknowledges an alarm; suppressing an alarm or taking
    # it out of service changes what the plant is told at all: the admin's.
    "GET /api/scada/connectors": SIGNED_IN,
    "POST /api/scada/connectors": ADMIN_ONLY,
    "GET /api/scada/connectors/{id}": SIGNED_IN,
    "PATCH /api/scada/connectors/{id}": ADMIN_ONLY,
    "DELETE /api/scada/connectors/{id}": ADMIN_ONLY,
    "POST /api/scada/connectors/{id}/browse": SUPERVISING,
    "GET /api/scada/tags": SIGNED_IN,
    "POST /api/scada/tags": ADMIN_ONLY,
    "GET /api/scada/tags/{id}": SIGNED_IN,
    "PATCH /api/scada/tags/{id}": ADMIN_ONLY,
    "DELETE /api/scada/tags/{id}": ADMIN_ONLY,
    "GET /api/scada/readings": SIGNED_IN,
    "POST /api/scada/test": SUPERVISING,
    "POST /api/scada/poll": SUPERVISING,
    "GET /api/alerts/rules": SIGNED_IN,
    "POST /api/alerts/rules": ADMIN_ONLY,
    "GET /api/alerts/rules/{id}": SIGNED_IN,
    "PATCH /api/alerts/rules/{id}": ADMIN_ONLY,
    "DELETE /api/alerts/rules/{id}": ADMIN_ONLY,
    "POST /api/alerts/process": SUPERVISING,
    "GET /api/alarms": SIGNED_IN,
    "GET /api/alarms/floods": SIGNED_IN,
    "GET /api/alarms/chattering": SIGNED_IN,
    "GET /api/alarms/{id}": SIGNED_IN,
    "POST /api/alarms/{id}/acknowledge": FLOOR,
    "POST /api/alarms/{id}/shelve": SUPERVISING,
    "POST /api/alarms/{id}/unshelve": SUPERVISING,
    "POST /api/alarms/{id}/suppress": ADMIN_ONLY,
    "POST /api/alarms/{id}/unsuppress": ADMIN_ONLY,
    "POST /api/alarms/{id}/out-of-service": ADMIN_ONLY,
    "POST /api/alarms/{id}/return-to-service": ADMIN_ONLY,
    "POST /api/work-orders/create": SUPERVISING,
    "GET /api/work-orders/maintenance": SIGNED_IN,
    "GET /api/work-orders/maintenance/{id}": SIGNED_IN,
    "POST /api/work-orders/maintenance/{id}/retry": SUPERVISING,
    # LIMS results become passports' QA events: a supervisor (or a LIMS service
    # account with that role) brings them in; everyone reads them.
    "POST /api/lims/import": SUPERVISING,
    "POST /api/lims/fetch": SUPERVISING,
    "GET /api/lims/results": SIGNED_IN,
    # --- dashboards (control-UI contract group I; docs/dashboards.md) ---
    # Everyone signed in reads the plant's KPIs (trends of pack state of health
    # are narrower: the passport's restricted group, checked in the view).
    "GET /api/dashboard/summary": SIGNED_IN,
    "GET /api/dashboard/trends": SIGNED_IN,
    "GET /api/dashboard/distributions": SIGNED_IN,
    # The role dashboards: every role may call the routes; whose dashboard it
    # reads (its own and those below it; the auditor reads all) is the view's
    # check against bpmos.access.DASHBOARD_READERS.
    "GET /api/dashboard/{role}/summary": SIGNED_IN,
    "GET /api/dashboard/{role}/attention": SIGNED_IN,
    # --- logs (control-UI contract group VII; docs/logs.md) ---
    # Everyone reads the stream (what each role sees in it, e.g. the audit
    # category only for auditors and admins, is the read model's rule) and
    # exports it; everyone on the floor writes the shift log; the incoming
    # shift's supervisor acknowledges a handover.
    "GET /api/logs": SIGNED_IN,
    "GET /api/logs/export": SIGNED_IN,
    "POST /api/logs/write": FLOOR,
    "GET /api/logs/shift": SIGNED_IN,
    "POST /api/logs/shift/{id}/acknowledge": SUPERVISING,
    # --- reports (control-UI contract, group VIII; docs/compliance.md) ---
    # Every signed-in user may call the routes; which reports each role sees and
    # opens is the finer rule "report.<id>" (EXPECTED_ACTIONS).
    "GET /api/reports": SIGNED_IN,
    "GET /api/reports/{reportId}/preview": SIGNED_IN,
    # Downloads and report jobs: the same finer rule decides; a job is seen by
    # the user who asked for it (and admins). Asking for a rendering writes no
    # plant data, so the auditor may (NOT_WRITES).
    "GET /api/reports/{reportId}/download": SIGNED_IN,
    "POST /api/reports/{reportId}/jobs": ISSUE_READERS,
    "GET /api/reports/jobs/{jobId}": SIGNED_IN,
    "GET /api/reports/jobs/{jobId}/file": SIGNED_IN,
    # --- compliance (docs/compliance.md) ---
    # The Aadhaar Ready % (the control-UI contract's compliance score) and each
    # passport's own failing rules: everyone signed in reads them.
    "GET /api/compliance/score": SIGNED_IN,
    "GET /api/passports/{p}/conformity": SIGNED_IN,
    # the EU attribute set (docs/passports.md): tiers by caller, anyone may ask;
    # completeness names missing keys only; grants for outside parties: admins
    "GET /api/passports/{p}/attributes": NO_TOKEN,
    # the Battery Pass / AAS export: the attributes' tiers, anyone may ask
    "GET /api/passports/{p}/export": NO_TOKEN,
    "GET /api/passports/{p}/completeness": SIGNED_IN,
    # the QR codes printed on a battery lead anyone to its public passport;
    # repurposing, re-use and remanufacturing are supervisors' decisions, as
    # the end of a battery's life is (docs/passports.md)
    "GET /api/passports/{p}/qr/{symbol}": NO_TOKEN,
    "POST /api/passports/{p}/second-life": SUPERVISING,
    "GET /api/passports/grants": ADMIN_ONLY,
    "POST /api/passports/grants": ADMIN_ONLY,
    "POST /api/passports/grants/{g}/revoke": ADMIN_ONLY,
    # many ledger events in one transaction: each kind narrowed as the single route's
    "POST /api/passports/events/batch": FLOOR,
    # EPR figures and the category declarations: who answers for them and who
    # checks them (declarations are edited in the admin).
    "GET /api/compliance/epr": RESTRICTED_READERS,
    "GET /api/compliance/epr/{category}": RESTRICTED_READERS,
    "GET /api/compliance/categories": RESTRICTED_READERS,
    # Returns: supervisors and above build, approve and export (the connectors
    # contract: Supervisor or Admin; the plant head may do what a supervisor
    # may); they and the auditor read them.
    "GET /api/compliance/returns": RESTRICTED_READERS,
    "POST /api/compliance/returns": SUPERVISING,
    "GET /api/compliance/returns/{id}": RESTRICTED_READERS,
    "GET /api/compliance/returns/{id}/lines": RESTRICTED_READERS,
    "POST /api/compliance/returns/{id}/approve": SUPERVISING,
    "POST /api/compliance/export": SUPERVISING,
    "GET /api/compliance/schemas": RESTRICTED_READERS,
}

# Rules finer than a route (one route and method, callers differing by the body).
EXPECTED_ACTIONS: dict[str, frozenset[str]] = {
    "issue-acknowledge": FLOOR,
    "issue-resolve": SUPERVISING,  # supervisors resolve exceptions
    "passport-restricted": RESTRICTED_READERS,
    # the authority tier (test reports): the auditor, and the admin (everything)
    "passport-authority": AUDITING,
    "passport-event.qa_passed": FLOOR,
    "passport-event.qa_failed": FLOOR,
    "passport-event.warehoused": FLOOR,
    "passport-event.reserved": FLOOR,
    "passport-event.reservation_released": FLOOR,
    "passport-event.serviced": FLOOR,
    "passport-event.held": SUPERVISING,
    "passport-event.released": SUPERVISING,
    "passport-event.dispatched": SUPERVISING,
    "passport-event.delivered": SUPERVISING,
    "passport-event.custody_transferred": SUPERVISING,
    "passport-event.end_of_life": SUPERVISING,
    "passport-event.recycled": SUPERVISING,
    # Reports: the operational ones for everyone but the shop floor's operators;
    # the ledger extract for the passport's restricted readers; the EPR return
    # for who answers for compliance; the audit extract for the auditors.
    "report.production-by-work-order": ISSUE_READERS,
    "report.oee-by-line-shift": ISSUE_READERS,
    "report.exceptions-escalations": ISSUE_READERS,
    "report.inventory-ageing-holds": ISSUE_READERS,
    "report.passport-ledger-extract": RESTRICTED_READERS,
    "report.epr-return": RESTRICTED_READERS,
    "report.audit-extract": AUDITING,
}

# --- rules of docs/design.md §5, each over every route -------------------------

# POSTs that change nothing in the plant: signing in and out, a stream ticket, a
# BPAN check. Every other unsafe method is a write, which the auditor never makes.
NOT_WRITES = {
    "POST /api/auth/login",
    "POST /api/auth/refresh",
    "POST /api/auth/logout",
    "POST /api/bpan/validate",
    "POST /api/live-products/dispatchable/stream-ticket",
    "POST /api/reports/{reportId}/jobs",
}

# Supervisor decisions (docs/design.md §5: approve gates, resolve exceptions,
# hold/release stock, dispatch and move to past) and custody: never an operator's
# or a planner's.
SUPERVISOR_DECISIONS = {
    "POST /api/gates/{id}/open",
    "POST /api/gates/{id}/close",
    "POST /api/gates/{id}/lock",
    "POST /api/exceptions/{id}/resolve",
    "POST /api/inventory/items/{id}/hold",
    "POST /api/inventory/items/{id}/release-hold",
    "POST /api/inventory/items/{id}/block",
    "POST /api/passports/{p}/custody",
    "POST /api/passports/{p}/signatures",
    "POST /api/passports/{p}/provision",
    "POST /api/live-products/dispatchable",
    "POST /api/products/lifecycle",
    "POST /api/products/move-to-past",
    "POST /api/alarms/{id}/shelve",
    "POST /api/alarms/{id}/unshelve",
    "POST /api/alerts/process",
    "POST /api/work-orders/create",
    "POST /api/work-orders/maintenance/{id}/retry",
    "POST /api/lims/import",
    "POST /api/compliance/returns",
    "POST /api/compliance/returns/{id}/approve",
    "POST /api/compliance/export",
    "POST /api/logs/shift/{id}/acknowledge",
}
SUPERVISOR_ACTIONS = {
    "issue-resolve",
    "passport-event.held",
    "passport-event.released",
    "passport-event.dispatched",
    "passport-event.delivered",
    "passport-event.custody_transferred",
    "passport-event.end_of_life",
    "passport-event.recycled",
}
# Planning (docs/design.md §5: create work orders and runbooks, assign stages): never an
# operator's.
PLANNING_WRITES = {
    "POST /api/workorders",
    "POST /api/workorders/{id}/cancel",
    "POST /api/stages/{id}/assignments",
    "DELETE /api/stages/{id}/assignments/{user}",
    "POST /api/inventory/items/{id}/reserve",
    "POST /api/inventory/reservations/{id}/release",
}
# Users and roles: admin only, reads included. Configuration (connectors, tags,
# alert rules): everyone reads it, only the admin changes it.
ADMIN_PATHS = re.compile(r"^/api/(auth/register|auth/users)(/|$)")
CONFIG_PATHS = re.compile(
    r"^/api/(scada/connectors|scada/tags|alerts/rules)(/\{id\})?$"
)


# --- reading the declaration ---------------------------------------------------------


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}/]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


_TEMPLATES = {key: _template_regex(key.split(" ", 1)[1]) for key in EXPECTED}


def _key_for(method: str, path: str) -> str | None:
    """The EXPECTED key naming this method and concrete path (literals win)."""
    matches = [
        key
        for key, regex in _TEMPLATES.items()
        if key.split(" ", 1)[0] == method and regex.fullmatch(path)
    ]
    return min(matches, key=lambda key: key.count("{"), default=None)


def _declared() -> dict[str, frozenset[str] | str]:
    """What access.py declares for every route and method, keyed as EXPECTED is."""
    declared: dict[str, frozenset[str] | str] = {}
    for route in api_routes():
        for method in route.methods:
            key = _key_for(method, route.path) or f"{method} {route.path}"
            rule = access.rule_for(route.view_name, method)
            found = NO_TOKEN if rule is access.PUBLIC else _slugs(rule)
            if declared.get(key, found) != found:  # two routes on one path disagree
                found = f"{_show(declared[key])} and {_show(found)} on one path"
            declared[key] = found
    return declared


@pytest.fixture(scope="module")
def declared():
    return _declared()


def _slugs(rule) -> frozenset[str]:
    return frozenset(str(role) for role in rule or ())


def _show(rule) -> str:
    return rule if isinstance(rule, str) else "{" + ", ".join(sorted(rule)) + "}"


# --- the table ---------------------------------------------------------------------


def test_every_route_and_method_is_declared_as_the_design_says(declared):
    wrong = [
        f"{key}: declared {_show(declared[key])}, design says {_show(expected)}"
        for key, expected in EXPECTED.items()
        if key in declared and declared[key] != expected
    ]
    assert wrong == []


def test_every_route_and_method_is_in_the_design_table(declared):
    assert sorted(set(declared) - set(EXPECTED)) == []


def test_every_route_of_the_design_table_exists(declared):
    assert sorted(set(EXPECTED) - set(declared)) == []


def test_every_finer_action_is_declared_as_the_design_says():
    assert {
        name: _slugs(roles) for name, roles in access.ACTIONS.items()
    } == EXPECTED_ACTIONS


# --- the rules ---------------------------------------------------------------------


def test_the_auditor_writes_nothing(declared):
    writes = [
        key
        for key, rule in declared.items()
        if key.split(" ", 1)[0] in UNSAFE and key not in NOT_WRITES
    ]
    # the rule covers every write route of the table, not a handful
    assert len(writes) == len(
        [k for k in EXPECTED if k.split(" ", 1)[0] in UNSAFE and k not in NOT_WRITES]
    )
    assert [key for key in writes if AUDITOR in declared[key]] == []
    # Finer rules that say what a caller may READ (the passport's restricted
    # groups, which reports it opens) are the auditor's too; every other is a write.
    reads = {"passport-restricted", "passport-authority"} | {
        name for name in access.ACTIONS if name.startswith("report.")
    }
    actions = [
        name
        for name, roles in access.ACTIONS.items()
        if name not in reads and AUDITOR in _slugs(roles)
    ]
    assert actions == []


def test_no_write_is_open_without_a_token(declared):
    open_writes = [
        key
        for key, rule in declared.items()
        if key.split(" ", 1)[0] in UNSAFE and rule == NO_TOKEN
    ]
    assert sorted(open_writes) == ["POST /api/auth/login", "POST /api/auth/refresh"]


@pytest.mark.parametrize("role", [OPERATOR, PLANNER])
def test_supervisor_decisions_are_never_an_operators_or_a_planners(declared, role):
    routes = sorted(key for key in SUPERVISOR_DECISIONS if role in declared[key])
    actions = sorted(
        name for name in SUPERVISOR_ACTIONS if role in _slugs(access.ACTIONS[name])
    )
    assert (routes, actions) == ([], [])


def test_supervisor_decisions_are_the_supervisors(declared):
    for key in SUPERVISOR_DECISIONS:
        assert {SUPERVISOR, PLANT_HEAD, ADMIN} <= declared[key], key
    for name in SUPERVISOR_ACTIONS:
        assert {SUPERVISOR, PLANT_HEAD, ADMIN} <= _slugs(access.ACTIONS[name]), name


def test_planning_is_never_an_operators(declared):
    assert sorted(key for key in PLANNING_WRITES if OPERATOR in declared[key]) == []
    for key in PLANNING_WRITES:
        assert PLANNER in declared[key], key


def test_only_the_admin_manages_users_and_configuration(declared):
    admin_routes = {
        key: rule
        for key, rule in declared.items()
        if ADMIN_PATHS.match(key.split(" ", 1)[1])
    }
    assert len(admin_routes) == 6
    assert {key: rule for key, rule in admin_routes.items() if rule != {ADMIN}} == {}
    config_writes = {
        key: rule
        for key, rule in declared.items()
        if key.split(" ", 1)[0] in UNSAFE and CONFIG_PATHS.match(key.split(" ", 1)[1])
    }
    assert len(config_writes) == 9
    assert {key: rule for key, rule in config_writes.items() if rule != {ADMIN}} == {}


def test_the_plant_head_may_do_whatever_a_supervisor_may(declared):
    missing = [
        key
        for key, rule in declared.items()
        if rule != NO_TOKEN and SUPERVISOR in rule and PLANT_HEAD not in rule
    ]
    missing += [
        name
        for name, roles in access.ACTIONS.items()
        if SUPERVISOR in _slugs(roles) and PLANT_HEAD not in _slugs(roles)
    ]
    assert missing == []


def test_the_admin_may_do_everything(declared):
    assert [
        k for k, rule in declared.items() if rule != NO_TOKEN and ADMIN not in rule
    ] == []
    assert [
        n for n, roles in access.ACTIONS.items() if ADMIN not in _slugs(roles)
    ] == []
