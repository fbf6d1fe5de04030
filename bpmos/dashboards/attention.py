"""Attention lists: what needs the caller's action now (control-UI contract
group I, ``GET /api/dashboard/{role}/attention``; docs/dashboards.md).

Each role's list is made of *kinds* (``KINDS_BY_ROLE``); each kind is one
selector of the app that owns it (one query each, capped at
``runbooks.selectors.ATTENTION_LIMIT`` rows per kind). An item::

    {"id": "alarm-12", "kind": "alarm", "title": "...", "severity": "High",
     "since": "2026-12-01T08:00:00Z",
     "link": {"type": "alarm", "id": "12", "path": "/api/alarms/12"}}

``id`` is unique in the list and stable across fetches (kind and object id);
``severity`` is a display enum (Critical, High, Medium, Low); ``link.path`` is
the API resource the UI opens (the UI maps ``link.type`` to its own screen).

Scope: a user reading their *own* role's list gets their own items where a
kind is personal (an operator's blocked stages are those assigned to them);
a higher role reading a lower role's list (``access.DASHBOARD_READERS``) sees
that role's items plant-wide (every operator's blocked stages).

Served from read models (``readmodels.ATTENTION``, one per role; an
operator's own list per user) until a write changes a kind's items; the
kinds no event announces are read per request, cheaply (``LIVE_KINDS``: the
lost connectors, one query on a small table, and the audit chain's stored
state, a cache entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.cache.backends.base import InvalidCacheBackendError

from bpmos.compiled import statements_get
from bpmos.dashboards import readmodels
from bpmos.fields import utc_text
from bpmos.roles import Role
from compliance import selectors as compliance_selectors
from elog import chain_status
from exceptions import selectors as exception_selectors
from exceptions.models import PlantException, Severity
from inventory import selectors as inventory_selectors
from passports import selectors as passport_selectors
from runbooks import selectors as runbook_selectors
from runbooks.models import GateStatus
from scada import selectors as scada_selectors

BLOCKED_STAGE = "blockedStage"
GATE = "gate"
ALARM = "alarm"
EXCEPTION = "exception"
HOLD = "hold"
RETURN = "return"
CONNECTOR = "connector"
CHAIN = "auditChain"

KINDS_BY_ROLE: dict[str, frozenset[str]] = {
    Role.OPERATOR: frozenset({BLOCKED_STAGE, ALARM}),
    Role.PLANNER: frozenset({BLOCKED_STAGE}),
    Role.SUPERVISOR: frozenset({GATE, EXCEPTION, HOLD, RETURN}),
    Role.PLANT_HEAD: frozenset({EXCEPTION}),
    Role.ADMIN: frozenset({CONNECTOR}),
    Role.AUDITOR: frozenset({CHAIN}),
}

# Kinds read on every request, never cached (module docstring).
LIVE_KINDS = frozenset({CONNECTOR, CHAIN})

_SEVERITY_ORDER = {"Critical": 0, "High": 1, "Medium": 2, "Low": 3}


@dataclass(frozen=True)
class Link:
    type: str
    id: str
    path: str


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    title: str
    severity: str
    since: datetime | str | None
    link: Link


@dataclass(frozen=True)
class AttentionList:
    role: str
    items: list[Item]

    @property
    def count(self) -> int:
        return len(self.items)


def _blocked_stages(role: str, user, lists: dict) -> list[Item]:
    own = role == Role.OPERATOR and user.role == Role.OPERATOR
    stages = runbook_selectors.stage_blocked_list(user_id=user.pk if own else None)
    return [
        Item(
            id=f"stage-{stage.pk}",
            kind=BLOCKED_STAGE,
            title=(
                f"{stage.stage_name} on hold ({stage.work_order.lot_no})"
                + (f": {stage.hold_reason}" if stage.hold_reason else "")
            ),
            severity="High",
            since=stage.updated_at,
            link=Link("stage", str(stage.pk), f"/api/stages/{stage.pk}"),
        )
        for stage in stages
    ]


def _gates(role: str, user, lists: dict) -> list[Item]:
    items = []
    for gate in lists.get("gates", ()):
        items.append(
            Item(
                id=f"gate-{gate['id']}",
                kind=GATE,
                title=(
                    f"{gate['stage__code']} {gate['condition']}: "
                    f"{GateStatus(gate['status']).label}"
                    + (f" ({gate['reason']})" if gate["reason"] else "")
                ),
                severity="High" if gate["status"] == GateStatus.LOCKED else "Medium",
                since=gate["changed_at"],
                link=Link(
                    "gate",
                    str(gate["id"]),
                    f"/api/runbooks/{gate['stage__runbook__slug']}/stages",
                ),
            )
        )
    return items


def _alarms(role: str, user, lists: dict) -> list[Item]:
    return [
        Item(
            id=f"alarm-{alarm.pk}",
            kind=ALARM,
            title=alarm.message,
            severity=alarm.get_severity_display(),
            since=alarm.timestamp,
            link=Link("alarm", str(alarm.pk), f"/api/alarms/{alarm.pk}"),
        )
        for alarm in scada_selectors.alarm_unacknowledged_list()
    ]


def _exceptions(role: str, user, lists: dict) -> list[Item]:
    items = []
    for exc in lists.get("exceptions", ()):
        code = PlantException(id=exc["id"]).code
        items.append(
            Item(
                id=f"exception-{exc['id']}",
                kind=EXCEPTION,
                title=(
                    f"{code} {exc['title']} (escalated, level "
                    f"{exc['escalation_level']})"
                ),
                severity=Severity(exc["severity"]).label,
                since=exc["raised_at"],
                link=Link("exception", code, f"/api/exceptions/{code}"),
            )
        )
    return items


def _holds(role: str, user, lists: dict) -> list[Item]:
    items = [
        Item(
            id=f"item-{item['code']}",
            kind=HOLD,
            title=f"{item['code']} ({item['sku']}) on hold"
            + (f": {item['hold_reason']}" if item["hold_reason"] else ""),
            severity="Medium",
            since=item["updated_at"],
            link=Link("item", item["code"], f"/api/inventory/items/{item['code']}"),
        )
        for item in lists.get("items", ())
    ]
    passports = [
        Item(
            id=f"passport-{passport['uuid']}",
            kind=HOLD,
            title=f"Battery {passport['serial']} on hold"
            + (f": {passport['hold_reason']}" if passport["hold_reason"] else ""),
            severity="Medium",
            since=passport["updated_at"],
            link=Link(
                "passport",
                str(passport["uuid"]),
                f"/api/passports/{passport['uuid']}",
            ),
        )
        for passport in lists.get("passports", ())
    ]
    return items + passports


def _returns(role: str, user, lists: dict) -> list[Item]:
    return [
        Item(
            id=f"return-{ret['id']}",
            kind=RETURN,
            title=(
                f"Compliance return {ret['period_start']}..{ret['period_end']} "
                "awaits approval"
            ),
            severity="Medium",
            since=ret["built_at"],
            link=Link("return", str(ret["id"]), f"/api/compliance/returns/{ret['id']}"),
        )
        for ret in lists.get("returns", ())
    ]


def _connectors(role: str, user, lists: dict) -> list[Item]:
    return [
        Item(
            id=f"connector-{connector.pk}",
            kind=CONNECTOR,
            title=f"Connector {connector.name} lost communication"
            + (f": {connector.last_error[:120]}" if connector.last_error else ""),
            severity="High",
            since=connector.last_error_at or connector.updated_at,
            link=Link(
                "connector", str(connector.pk), f"/api/scada/connectors/{connector.pk}"
            ),
        )
        for connector in scada_selectors.connector_lost_list()
    ]


def _chain(role: str, user, lists: dict) -> list[Item]:
    status = chain_status_safe()
    if status is None or status["ok"]:
        return []
    broken = status["firstBroken"] or {}
    # Records signed with a key the keyring lacks are not known to be tampered
    # with, only impossible to check (bpmos/auditkeys.py).
    state = "unverifiable" if broken.get("problem") == "unverifiable" else "broken"
    return [
        Item(
            id=f"audit-chain-{broken.get('seq')}",
            kind=CHAIN,
            title=f"Audit chain {state}: {broken.get('message', '')}".strip(),
            severity="Critical",
            since=status["verifiedAt"],
            link=Link("auditChain", str(broken.get("seq")), "/api/audit/verify"),
        )
    ]


def chain_status_safe() -> dict | None:
    """The stored chain verification, or None when never verified or the cache
    is unreachable (the dashboard shows "Unknown", never an error)."""
    try:
        return chain_status.audit_chain_status()
    except (InvalidCacheBackendError, OSError, ConnectionError):
        return None
    except Exception:  # a cache client's own errors (redis.RedisError, ...)
        return None


_BUILDERS = {
    BLOCKED_STAGE: _blocked_stages,
    GATE: _gates,
    ALARM: _alarms,
    EXCEPTION: _exceptions,
    HOLD: _holds,
    RETURN: _returns,
    CONNECTOR: _connectors,
    CHAIN: _chain,
}
_KIND_ORDER = [CHAIN, EXCEPTION, BLOCKED_STAGE, GATE, ALARM, CONNECTOR, HOLD, RETURN]

# The kinds made of plain lists (each a fixed statement of its app's selector),
# read together: the supervisor's five lists in one statement.
_LISTS_OF_KIND = {
    GATE: ("gates",),
    EXCEPTION: ("exceptions",),
    HOLD: ("items", "passports"),
    RETURN: ("returns",),
}


def _lists(role: str, kinds) -> dict[str, list[dict]]:
    """The rows of the lists ``kinds`` are made of (``_LISTS_OF_KIND``), name
    -> rows: one query for all of them (``bpmos.compiled.rows_get_together``),
    none when no kind is a list."""
    statements = {
        "gates": lambda: runbook_selectors.gate_awaiting_statement(),
        "exceptions": lambda: exception_selectors.exception_escalated_statement(
            role=role
        ),
        "items": lambda: inventory_selectors.item_on_hold_statement(),
        "passports": lambda: passport_selectors.passport_on_hold_statement(),
        "returns": lambda: compliance_selectors.return_draft_statement(),
    }
    chosen = {}
    for kind in _KIND_ORDER:
        if kind in kinds:
            for name in _LISTS_OF_KIND.get(kind, ()):
                statement = statements[name]()
                if statement is not None:  # no exception escalates to the role
                    chosen[name] = statement
    return statements_get(chosen)


def attention_list(*, role: str, user) -> AttentionList:
    """The items of ``role``'s list as ``user`` sees them, most severe first
    (then by kind, then oldest), from the database: one query per kind, the
    kinds made of lists all in one (``_lists``). ``attention_body`` serves
    the same, cached."""
    items: list[Item] = []
    lists = _lists(role, KINDS_BY_ROLE[role])
    for kind in _KIND_ORDER:
        if kind in KINDS_BY_ROLE[role]:
            items.extend(_BUILDERS[kind](role, user, lists))
    items.sort(key=lambda item: _SEVERITY_ORDER.get(item.severity, 9))  # stable
    return AttentionList(role=role, items=items)


def item_body(item: Item) -> dict:
    """``item`` as the API writes it (``AttentionItemSerializer``'s shape)."""
    since = item.since
    return {
        "id": item.id,
        "kind": item.kind,
        "title": item.title,
        "severity": item.severity,
        "since": since if since is None or isinstance(since, str) else utc_text(since),
        "link": {"type": item.link.type, "id": item.link.id, "path": item.link.path},
    }


def _kind_bodies(role: str, user, kinds) -> dict[str, list[dict]]:
    lists = _lists(role, kinds)
    return {
        kind: [item_body(item) for item in _BUILDERS[kind](role, user, lists)]
        for kind in kinds
    }


def attention_body(*, role: str, user) -> dict:
    """``attention_list`` as the API body (``{"role", "count", "items"}``),
    its items already written out: the kinds of the role's read model
    (``readmodels.ATTENTION``; an operator's own list per user) from the cache
    while nothing they list changed, ``LIVE_KINDS`` read now."""
    kinds = KINDS_BY_ROLE[role]
    cached = kinds - LIVE_KINDS
    by_kind: dict[str, list[dict]] = {}
    if cached:
        own = role == Role.OPERATOR and user.role == Role.OPERATOR
        key = f"{role}:user-{user.pk}" if own else f"{role}:plant"
        by_kind.update(
            readmodels.ATTENTION[role].get(
                key, lambda: (_kind_bodies(role, user, cached), None)
            )
        )
    by_kind.update(_kind_bodies(role, user, kinds & LIVE_KINDS))
    items = [item for kind in _KIND_ORDER for item in by_kind.get(kind, ())]
    items.sort(key=lambda item: _SEVERITY_ORDER.get(item["severity"], 9))  # stable
    return {"role": role, "count": len(items), "items": items}
