"""Who may do what: the one declaration every API permission check reads.

Keys are URL names (the ``name=`` of each route under ``/api/``, without the
``api:`` namespace); values map an HTTP method to who may call it:

* ``PUBLIC``: no token needed (login, refresh, health, the OpenAPI docs);
* a frozenset of roles: a valid token whose user currently holds one of them.

A route missing here is refused to everyone (fail closed), and
``tests/test_role_matrix.py`` walks every ``/api/`` route against this table so a
new endpoint cannot ship without an entry. HEAD and OPTIONS follow GET.
Object-level rules (an operator moves only the stages assigned to them) live in
each app's services, which raise ``PermissionDenied``. Where one route and method
serves callers with different rights depending on the body (acknowledging versus
resolving an issue), ``ACTIONS`` declares the narrower rule and the view checks it
with ``require_action``.
"""

import re
from typing import Final

from bpmos.roles import Role


class _Public:
    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Final = _Public()
Rule = frozenset[Role] | _Public

EVERYONE: Final = frozenset(Role)  # any signed-in user, auditors included
ADMINS: Final = frozenset({Role.ADMIN})
AUDIT_READERS: Final = frozenset({Role.AUDITOR, Role.ADMIN})
SUPERVISORS: Final = frozenset({Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN})
PLANNERS: Final = frozenset(
    {Role.PLANNER, Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN}
)
SHOP_FLOOR: Final = frozenset(
    {Role.OPERATOR, Role.PLANNER, Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN}
)  # everyone who may write on the floor: all but the auditor
ISSUE_READERS: Final = frozenset(
    {Role.PLANNER, Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN, Role.AUDITOR}
)  # the mobile contract's "manager/admin" list of every stage issue
PASSPORT_RESTRICTED_READERS: Final = frozenset(
    {Role.SUPERVISOR, Role.PLANT_HEAD, Role.AUDITOR, Role.ADMIN}
)  # the EU passport's "persons with a legitimate interest" (docs/passports.md)
COMPLIANCE_READERS: Final = frozenset(
    {Role.SUPERVISOR, Role.PLANT_HEAD, Role.AUDITOR, Role.ADMIN}
)  # EPR figures and returns: who answers for them, and who checks them
REPORT_READERS: Final = frozenset(
    {Role.PLANNER, Role.SUPERVISOR, Role.PLANT_HEAD, Role.AUDITOR, Role.ADMIN}
)  # the operational reports (docs/compliance.md): all but the shop floor's operators

POLICY: Final[dict[str, dict[str, Rule]]] = {
    # --- accounts (mobile contract "auth") ---
    "auth-login": {"POST": PUBLIC},
    "auth-refresh": {"POST": PUBLIC},
    "auth-logout": {"POST": EVERYONE},
    "auth-me": {"GET": EVERYONE},
    "auth-register": {"POST": ADMINS},
    "auth-users": {"GET": ADMINS},
    "auth-user-detail": {"GET": ADMINS},
    "auth-user-role": {"PATCH": ADMINS},
    "auth-user-deactivate": {"POST": ADMINS},
    "auth-user-reactivate": {"POST": ADMINS},
    # --- platform ---
    "health": {"GET": PUBLIC},
    "schema": {"GET": PUBLIC},
    "docs": {"GET": PUBLIC},
    # --- audit log (elog) ---
    "audit-list": {"GET": AUDIT_READERS},
    "audit-detail": {"GET": AUDIT_READERS},
    "audit-verify": {"GET": AUDIT_READERS},
    # --- control tower and runbooks (control-UI contract, group II) ---
    "tower-runbook-list": {"GET": EVERYONE},
    "tower-runbook-detail": {"GET": EVERYONE},
    "tower-runbook-stages": {"GET": EVERYONE},
    "tower-runbook-exceptions": {"GET": EVERYONE},
    "gate-open": {"POST": SUPERVISORS},
    "gate-close": {"POST": SUPERVISORS},
    "gate-lock": {"POST": SUPERVISORS},
    # --- exceptions (control-UI contract, group VI) ---
    "exception-list": {"GET": EVERYONE},
    "exception-detail": {"GET": EVERYONE},
    "exception-acknowledge": {"POST": SHOP_FLOOR},
    "exception-resolve": {"POST": SUPERVISORS},
    # --- production (mobile contract: work orders, stages, issues, metrics) ---
    "workorder-list": {"GET": EVERYONE, "POST": PLANNERS},
    "workorder-detail": {"GET": EVERYONE},
    "workorder-stages": {"GET": EVERYONE},
    "workorder-cancel": {"POST": PLANNERS},
    "workorder-metrics": {"GET": EVERYONE},
    "stage-list": {"GET": EVERYONE},
    "stage-detail": {"GET": EVERYONE},
    "stage-metrics": {"GET": EVERYONE},
    # Moves: the service also requires the caller to be assigned (or a supervisor).
    "stage-start": {"POST": SHOP_FLOOR},
    "stage-done": {"POST": SHOP_FLOOR},
    "stage-hold": {"POST": SHOP_FLOOR},
    "stage-resume": {"POST": SHOP_FLOOR},
    "stage-assignments": {"GET": EVERYONE, "POST": PLANNERS},
    "stage-assignment-detail": {"DELETE": PLANNERS},
    "stage-issue": {"POST": SHOP_FLOOR},
    "stage-issues": {"GET": EVERYONE},
    # PATCH acknowledges or resolves; resolving is narrower: ACTIONS below.
    "stage-issue-detail": {"PATCH": SHOP_FLOOR},
    "issue-list": {"GET": ISSUE_READERS},
    # --- inventory (control-UI contract, group IV, and beyond: docs/inventory.md) ---
    "inventory-categories": {"GET": EVERYONE},
    "inventory-items": {"GET": EVERYONE},
    "inventory-item-detail": {"GET": EVERYONE},
    "inventory-stock": {"GET": EVERYONE},
    "inventory-locations": {"GET": EVERYONE},
    "inventory-reservations": {"GET": EVERYONE},
    # Promising stock is planning (the dispatch desk's supervisors are planners too).
    "inventory-item-reserve": {"POST": PLANNERS},
    "inventory-reservation-release": {"POST": PLANNERS},
    # Taking stock out and moving it is floor work; every move is recorded.
    "inventory-reservation-consume": {"POST": SHOP_FLOOR},
    "inventory-item-issue": {"POST": SHOP_FLOOR},
    "inventory-item-move": {"POST": SHOP_FLOOR},
    # Holds and blocks are supervisor decisions (docs/design.md §5), with a reason.
    "inventory-item-hold": {"POST": SUPERVISORS},
    "inventory-item-release-hold": {"POST": SUPERVISORS},
    "inventory-item-block": {"POST": SUPERVISORS},
    # --- lines and live status (control-UI contract, groups III and V) ---
    "line-list": {"GET": EVERYONE},
    "line-detail": {"GET": EVERYONE},
    "line-stations": {"GET": EVERYONE},
    "line-oee": {"GET": EVERYONE},
    "live-status-summary": {"GET": EVERYONE},
    "live-status-operations": {"GET": EVERYONE},
    "live-status-lines": {"GET": EVERYONE},
    "live-status-bottlenecks": {"GET": EVERYONE},
    # --- machines (mobile contract) ---
    "machine-list": {"GET": EVERYONE},
    "machine-detail": {"GET": EVERYONE},
    # Machines post through a SCADA gateway's service account (an operator-role
    # user) and operators may post manual readings; auditors write nothing.
    "machine-readings": {"POST": SHOP_FLOOR},
    # --- passports and registry (passports/api, docs/passports.md) ---
    # Reading passports is open to every signed-in user; what a detail shows of
    # the restricted attribute groups is the ACTIONS rule "passport-restricted".
    "passport-list": {"GET": EVERYONE, "POST": SHOP_FLOOR},
    "passport-lookup": {"GET": EVERYONE},
    "passport-verify": {"GET": AUDIT_READERS},
    # Many events in one transaction; each kind is checked against the single
    # route's ACTIONS["passport-event.<kind>"] as well.
    "passport-events-batch": {"POST": SHOP_FLOOR},
    "passport-detail": {"GET": EVERYONE},
    # The QR code's target: no token, public attribute groups only.
    "passport-public": {"GET": PUBLIC},
    "passport-ledger": {"GET": EVERYONE},
    # An event's inclusion proof in a ledger checkpoint (passports.checkpoints):
    # verification, as passport-verify, is the auditor's.
    "passport-ledger-proof": {"GET": AUDIT_READERS},
    # Per event kind the rule is narrower: ACTIONS "passport-event.<kind>".
    "passport-events": {"POST": SHOP_FLOOR},
    "passport-custody": {"POST": SUPERVISORS},
    "passport-genealogy": {"GET": EVERYONE},
    # Which conformity rules a passport fails (passports.conformity): rule ids
    # and messages, never a value, so as open as the detail that shows them too.
    "passport-conformity": {"GET": EVERYONE},
    # The EU attribute set, each attribute shown to the tiers that may read it
    # (passports.attributes.reader_tiers): the public tier without a token.
    "passport-attributes": {"GET": PUBLIC},
    # Repurposing, re-use and remanufacturing (passports.secondlife): a new
    # passport and the end of the old one, a supervisor's decision as the end
    # of a battery's life is.
    "passport-second-life": {"POST": SUPERVISORS},
    # The QR codes printed on a battery (passports.qr): public, as the
    # public passport they lead to.
    "passport-qr": {"GET": PUBLIC},
    # Which mandatory attributes a passport misses: keys, never values.
    "passport-completeness": {"GET": EVERYONE},
    # Access grants for outside parties (passports.grants): admins issue them.
    "passport-grants": {"GET": ADMINS, "POST": ADMINS},
    "passport-grant-revoke": {"POST": ADMINS},
    "passport-components": {"POST": SHOP_FLOOR},
    # A signed dispatch release (an electronic signature bound to the head
    # event): those who may dispatch.
    "passport-signatures": {"POST": SUPERVISORS},
    # The passport as Battery Pass or AAS JSON, each attribute to the tiers that
    # may read it (as passport-attributes): the public tier without a token.
    "passport-export": {"GET": PUBLIC},
    # Samples reveal state of health, a restricted group; a BMS gateway posts
    # through a service account on the floor (operator role).
    "passport-telemetry": {"GET": PASSPORT_RESTRICTED_READERS, "POST": SHOP_FLOOR},
    "bpan-validate": {"POST": EVERYONE},
    "registry-list": {"GET": EVERYONE},
    "registry-detail": {"GET": EVERYONE},
    # --- BMS provisioning (passports/api_provisioning, docs/passports.md) ---
    # Writing a BMS is an end-of-line engineering step (supervisors); anyone
    # signed in may see what was written and confirmed.
    "passport-provision": {"POST": SUPERVISORS},
    "passport-provisioning": {"GET": EVERYONE},
    # --- dispatch desk (dispatch contract; passports/dispatch/api) ---
    # Everyone signed in watches the desk; supervisors dispatch and move to past
    # (docs/design.md §5). The stream itself is served by the ASGI consumer, which
    # checks "dispatch-stream" GET here and the "dispatch" topic below.
    "dispatch-dispatchable": {"GET": EVERYONE, "POST": SUPERVISORS},
    "dispatch-lifecycle": {"GET": EVERYONE, "POST": SUPERVISORS},
    "dispatch-move-to-past": {"GET": EVERYONE, "POST": SUPERVISORS},
    "dispatch-stream": {"GET": EVERYONE},
    "dispatch-stream-ticket": {"POST": EVERYONE},
    "dashboard-status": {"GET": EVERYONE},
    # --- SCADA connectors, tags, readings (scada/api, docs/scada.md) ---
    # Admins configure connectors and tags (docs/design.md §5); everyone signed
    # in reads them (never the credentials) and the readings; supervisors and
    # above reach into the field: test a link, poll, browse a server.
    "scada-connector-list": {"GET": EVERYONE, "POST": ADMINS},
    "scada-connector-detail": {"GET": EVERYONE, "PATCH": ADMINS, "DELETE": ADMINS},
    "scada-connector-browse": {"POST": SUPERVISORS},
    "scada-tag-list": {"GET": EVERYONE, "POST": ADMINS},
    "scada-tag-detail": {"GET": EVERYONE, "PATCH": ADMINS, "DELETE": ADMINS},
    "scada-reading-list": {"GET": EVERYONE},
    "scada-test": {"POST": SUPERVISORS},
    "scada-poll": {"POST": SUPERVISORS},
    # --- SCADA alert rules and alarms (ISA-18.2) ---
    # Admins configure rules (docs/design.md §5); everyone signed in reads them
    # and the alarms. Operators (everyone on the floor) acknowledge; shelving is
    # a supervisor's decision; suppressing and taking out of service change
    # what the plant is told at all: admins. Running the rules is supervisors'.
    "alert-rule-list": {"GET": EVERYONE, "POST": ADMINS},
    "alert-rule-detail": {"GET": EVERYONE, "PATCH": ADMINS, "DELETE": ADMINS},
    "alerts-process": {"POST": SUPERVISORS},
    "alarm-list": {"GET": EVERYONE},
    "alarm-detail": {"GET": EVERYONE},
    "alarm-floods": {"GET": EVERYONE},
    "alarm-chattering": {"GET": EVERYONE},
    "alarm-acknowledge": {"POST": SHOP_FLOOR},
    "alarm-shelve": {"POST": SUPERVISORS},
    "alarm-unshelve": {"POST": SUPERVISORS},
    "alarm-suppress": {"POST": ADMINS},
    "alarm-unsuppress": {"POST": ADMINS},
    "alarm-out-of-service": {"POST": ADMINS},
    "alarm-return-to-service": {"POST": ADMINS},
    # --- SCADA maintenance work orders (CMMS) ---
    # Supervisors and above open maintenance work orders and send a failed one
    # again; everyone signed in (auditors included) reads them and their
    # delivery log (docs/scada.md).
    "maintenance-work-order-create": {"POST": SUPERVISORS},
    "maintenance-work-order-list": {"GET": EVERYONE},
    "maintenance-work-order-detail": {"GET": EVERYONE},
    "maintenance-work-order-retry": {"POST": SUPERVISORS},
    # --- SCADA LIMS quality results ---
    # A result becomes a passport's QA event: lab and floor data a supervisor
    # (or a LIMS's service account with that role) brings in; operators record
    # a single QA event through the passport itself. Everyone reads results.
    "lims-import": {"POST": SUPERVISORS},
    "lims-fetch": {"POST": SUPERVISORS},
    "lims-results": {"GET": EVERYONE},
    # --- dashboards: summary, trends, distributions (control-UI contract group I) ---
    # Plant figures that name no person: everyone reads them. The telemetry
    # trends (soh, soc, temperature) also need ACTIONS "passport-restricted".
    "dashboard-summary": {"GET": EVERYONE},
    "dashboard-trends": {"GET": EVERYONE},
    "dashboard-distributions": {"GET": EVERYONE},
    # --- dashboards: the role dashboards and their attention lists ---
    # The role is in the path: everyone signed in reaches the view, which checks
    # DASHBOARD_READERS below (403) and refuses an unknown role (404).
    "dashboard-role-summary": {"GET": EVERYONE},
    "dashboard-role-attention": {"GET": EVERYONE},
    # --- logs: GET /api/logs (group VII) and the electronic shift log ---
    # The stream is everyone's to read (GET only: it is history); what each
    # role sees in it is bpmos/dashboards/logs.py's (the audit category: the
    # audit readers only). Its CSV export is audited.
    "logs-list": {"GET": EVERYONE},
    "logs-export": {"GET": EVERYONE},
    # Everyone on the floor writes the shift log (a handover: supervisors and
    # above, checked by elog.shiftlog); the auditor reads it. The incoming
    # shift's supervisor acknowledges a handover.
    "logs-write": {"POST": SHOP_FLOOR},
    "shift-log-list": {"GET": EVERYONE},
    "shift-log-acknowledge": {"POST": SUPERVISORS},
    # --- compliance: EPR figures and categories (docs/compliance.md) ---
    # Figures and the declarations behind them: who answers for the returns
    # and who checks them. Declarations are edited in the admin (admins).
    "compliance-epr": {"GET": COMPLIANCE_READERS},
    "compliance-epr-category": {"GET": COMPLIANCE_READERS},
    "compliance-categories": {"GET": COMPLIANCE_READERS},
    # --- compliance: the Aadhaar Ready % score ---
    # The Aadhaar Ready % is a dashboard figure (Admin/Auditor in the control
    # UI, but it names no person and no restricted value): everyone reads it.
    "compliance-score": {"GET": EVERYONE},
    # --- compliance: returns, approval and the regulator CSV export ---
    # Building and approving a return and exporting it are supervisor decisions
    # (the connectors contract: Supervisor or Admin; the plant head may do what a
    # supervisor may). Every export is audited as compliance_export.
    "compliance-return-list": {"GET": COMPLIANCE_READERS, "POST": SUPERVISORS},
    "compliance-return-detail": {"GET": COMPLIANCE_READERS},
    "compliance-return-lines": {"GET": COMPLIANCE_READERS},
    "compliance-return-approve": {"POST": SUPERVISORS},
    "compliance-export": {"POST": SUPERVISORS},
    # The layouts are configuration (edited in the admin); who reads returns
    # reads them.
    "compliance-schemas": {"GET": COMPLIANCE_READERS},
    # --- reports (control-UI contract, group VIII) ---
    # Every signed-in user may call the routes; which reports a caller sees and
    # opens is the ACTIONS rule "report.<reportId>" below.
    # Downloads and jobs: the route lets every signed-in user in; the view
    # checks "report.<reportId>". Asking for a job writes no plant data (only a
    # rendering), so auditors may; a job is seen only by its creator and admins.
    "report-download": {"GET": EVERYONE},
    "report-jobs": {"POST": REPORT_READERS},
    "report-job-detail": {"GET": EVERYONE},
    "report-job-file": {"GET": EVERYONE},
    "report-list": {"GET": EVERYONE},
    "report-preview": {"GET": EVERYONE},
}

# Rules finer than a route: one route and method whose callers differ by what the
# body asks for. The view checks them with ``require_action`` after the route's
# POLICY rule has let the caller in, so each must be a subset of that rule.
ACTIONS: Final[dict[str, frozenset[Role]]] = {
    # PATCH stage-issue-detail {"status": "ack"}: anyone on the floor.
    "issue-acknowledge": SHOP_FLOOR,
    # PATCH stage-issue-detail {"status": "resolved"}: supervisors resolve
    # exceptions (docs/design.md §5); operators acknowledge and escalate.
    "issue-resolve": SUPERVISORS,
    # --- passports (docs/passports.md) ---
    # Who sees a passport's restricted attribute groups (materials, state of
    # health, barcode and RFID) in the detail and registry views.
    "passport-restricted": PASSPORT_RESTRICTED_READERS,
    # The authority tier (Annex XIII 3: results of test reports proving
    # compliance; passports.attributes): the auditor, who stands for the
    # notified bodies and market surveillance; and the admin, who may do
    # everything (docs/design.md §5).
    "passport-authority": AUDIT_READERS,
    # POST passport-events {"kind": …}: floor work on the floor's roles; holds,
    # shipping, custody and the end of a battery's life are supervisor decisions.
    "passport-event.qa_passed": SHOP_FLOOR,
    "passport-event.qa_failed": SHOP_FLOOR,
    "passport-event.warehoused": SHOP_FLOOR,
    "passport-event.reserved": SHOP_FLOOR,
    "passport-event.reservation_released": SHOP_FLOOR,
    "passport-event.serviced": SHOP_FLOOR,
    "passport-event.held": SUPERVISORS,
    "passport-event.released": SUPERVISORS,
    "passport-event.dispatched": SUPERVISORS,
    "passport-event.delivered": SUPERVISORS,
    "passport-event.custody_transferred": SUPERVISORS,
    "passport-event.end_of_life": SUPERVISORS,
    "passport-event.recycled": SUPERVISORS,
    # --- reports: who opens which report (list, preview, download, jobs) ---
    # The operational reports: all but the shop floor's operators.
    "report.production-by-work-order": REPORT_READERS,
    "report.oee-by-line-shift": REPORT_READERS,
    "report.exceptions-escalations": REPORT_READERS,
    "report.inventory-ageing-holds": REPORT_READERS,
    # Every battery's ledger, restricted data included: who may see that.
    "report.passport-ledger-extract": PASSPORT_RESTRICTED_READERS,
    "report.epr-return": COMPLIANCE_READERS,
    "report.audit-extract": AUDIT_READERS,
}


def rule_for(view_name: str, method: str) -> Rule | None:
    """The rule for one route and method, or None when nothing is declared."""
    name = view_name.split(":")[-1]
    method = method.upper()
    if method in {"HEAD", "OPTIONS"}:
        method = "GET"
    return POLICY.get(name, {}).get(method)


def allows(rule: Rule | None, role: str | None) -> bool:
    """Whether ``role`` (None for an anonymous caller) passes ``rule``."""
    if rule is None:
        return False
    if rule is PUBLIC:
        return True
    return role is not None and role in rule  # type: ignore[operator]


# --- live-event topics (the WebSocket endpoint ws/events/, bpmos/events) --------
# Topic -> roles that may subscribe to it. A key ending in ".<id>" declares a
# family of topics, one per object ("line.<id>" covers "line.7"). Each area adds
# its topics here; a topic not declared cannot be published to or subscribed to.
TOPICS: Final[dict[str, frozenset[Role]]] = {
    "users": ADMINS,
    "audit": AUDIT_READERS,
    "runbooks": EVERYONE,
    "exceptions": EVERYONE,
    "lines": EVERYONE,
    "line.<id>": EVERYONE,
    "alerts": EVERYONE,
    "dispatch": EVERYONE,
    "passports": EVERYONE,
    "inventory": EVERYONE,
    "compliance": COMPLIANCE_READERS,  # returns built and approved
    # One user's attention list changed (bpmos.dashboards.live); only that user
    # may follow it (PER_USER_TOPICS).
    "attention.<id>": EVERYONE,
}

# Topic families whose id is a user's id: only that user may subscribe.
PER_USER_TOPICS: Final = frozenset({"attention"})

# --- role dashboards (GET /api/dashboard/{role}/summary|attention) ---------------
# Whose dashboard each role may read: its own, and the ones below it in
# admin > plant-head > supervisor > {planner, operator} (a planner also reads the
# operators' it assigns work to). The auditor reads everything and writes
# nothing (docs/design.md section 5), so it reads every dashboard too.
_DASHBOARD_CHAIN: Final = (
    Role.OPERATOR,
    Role.PLANNER,
    Role.SUPERVISOR,
    Role.PLANT_HEAD,
    Role.ADMIN,
)
DASHBOARD_READERS: Final[dict[Role, frozenset[Role]]] = {
    Role.OPERATOR: frozenset(_DASHBOARD_CHAIN) | {Role.AUDITOR},
    Role.PLANNER: frozenset(_DASHBOARD_CHAIN[1:]) | {Role.AUDITOR},
    Role.SUPERVISOR: frozenset(_DASHBOARD_CHAIN[2:]) | {Role.AUDITOR},
    Role.PLANT_HEAD: frozenset(_DASHBOARD_CHAIN[3:]) | {Role.AUDITOR},
    Role.ADMIN: frozenset({Role.ADMIN, Role.AUDITOR}),
    Role.AUDITOR: frozenset({Role.AUDITOR, Role.ADMIN}),
}


def may_read_dashboard(reader_role: str | None, dashboard_role: str) -> bool:
    """Whether a user holding ``reader_role`` may read the dashboard of
    ``dashboard_role``."""
    readers = DASHBOARD_READERS.get(dashboard_role)  # type: ignore[call-overload]
    return readers is not None and reader_role in readers


_TOPIC_WITH_ID = re.compile(r"^(?P<family>[a-z][a-z0-9_-]*)\.(?P<id>[0-9]{1,18})$")


def topic_rule(topic: str) -> frozenset[Role] | None:
    """The roles that may subscribe to ``topic``, or None when it is not declared."""
    if match := _TOPIC_WITH_ID.match(topic):
        return TOPICS.get(topic) or TOPICS.get(f"{match['family']}.<id>")
    return None if "<" in topic else TOPICS.get(topic)


def may_subscribe(role: str | None, topic: str, *, user_id: int | None = None) -> bool:
    """Whether a user holding ``role`` (None: not signed in), whose id is
    ``user_id``, may follow ``topic``. A topic of ``PER_USER_TOPICS`` ("attention.7")
    is only for the user whose id it carries."""
    rule = topic_rule(topic)
    if rule is None or role is None or role not in rule:
        return False
    family, _, topic_id = topic.partition(".")
    if family in PER_USER_TOPICS:
        return user_id is not None and topic_id == str(user_id)
    return True


def require_action(action: str, user) -> None:
    """Raise ``Forbidden`` (403 permission_denied) unless ``user`` may do ``action``.

    ``action`` names an entry of ``ACTIONS``; an unknown name refuses (fail closed).
    """
    # Imported here: bpmos.errors imports DRF, whose settings import this module.
    from bpmos.errors import Forbidden

    if not allows(ACTIONS.get(action), getattr(user, "role", None)):
        raise Forbidden(
            "Your role may not perform this action.", code="permission_denied"
        )


# --- the server-rendered pages (docs/pages.md; bpmos/pagekit.py) ---
# Keys are the pages' URL names (no namespace). A page's buttons call the same
# services as the API and are offered, and allowed, by the API's own rule for
# that action (``POLICY``/``ACTIONS`` above), never a second table.
PAGES: Final[dict[str, Rule]] = {
    "page-login": PUBLIC,
    "page-logout": PUBLIC,  # ending a session needs none
    "page-home": EVERYONE,
    "page-token": EVERYONE,
    "board-lines": EVERYONE,
    "board-alarms": EVERYONE,
    "board-dispatch": EVERYONE,
    "passport-page": PUBLIC,  # the public view; restricted parts by role
    # GS1 Digital Link resolver: /01/{gtin}/21/{serial} -> the passport page
    "passport-digital-link": PUBLIC,
}

# Where ``/`` takes a signed-in user: the board they work from (auditors: the
# back-office, where the audit log, the ledgers and their verification are).
HOME_PAGE: Final[dict[Role, str]] = {
    Role.OPERATOR: "board-alarms",
    Role.PLANNER: "board-lines",
    Role.SUPERVISOR: "board-lines",
    Role.PLANT_HEAD: "board-lines",
    Role.AUDITOR: "admin:index",
    Role.ADMIN: "board-lines",
}


def may_open_page(page: str, role: str | None) -> bool:
    """Whether a user holding ``role`` (None: not signed in) may open ``page``;
    an undeclared page is refused (fail closed)."""
    return allows(PAGES.get(page), role)
