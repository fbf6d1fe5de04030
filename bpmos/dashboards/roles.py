"""Role dashboards: each role's KPI cards (control-UI contract group I,
``GET /api/dashboard/{role}/summary``; docs/dashboards.md).

A card (camelCase, the same keys on every card; ``status``, ``link`` and
``details`` may be null)::

    {"id": "unacknowledgedAlarms", "title": "Unacknowledged alarms",
     "value": 3, "unit": "count", "status": "Warning",
     "link": {"type": "alarms", "id": null, "path": "/api/alarms"},
     "details": null}

* ``id``: stable camelCase key per card (the UI places cards by it);
* ``value``: a number, a string (a stage's name, "Verified") or null when there
  is nothing to show (no OEE snapshot yet, never verified);
* ``unit``: "count", "%", "WIP" (work orders at a stage) or null;
* ``status``: "OK", "Warning", "Critical", "Unknown" or null (a plain figure);
* ``details``: card-specific extras (the plant head's bottleneck by stage, the
  shift's start and end, users by role).

Every card comes from a selector of the app that owns the figure; the cards of
a role cost a fixed number of queries (pinned in tests). Nothing here walks the
audit chain or scans readings: the chain's state is the beat task's stored
result (``elog.chain_status``), the compliance score is its latest snapshot.

Served from read models (``readmodels.ROLE_SUMMARY``, one per role; an
operator's own cards per user and shift) until a write changes a figure; the
cards no event announces are read per request, cheaply: the plant head's OEE
and line health (the lines' own read model), the auditor's chain state (a
cache entry) and the admin's connectors (one query on a small table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from bpmos.accounts import selectors as account_selectors
from bpmos.dashboards import attention, distributions, kpis, readmodels
from bpmos.roles import Role
from bpmos.totals import totals_get_compiled
from compliance import score as compliance_score
from compliance import selectors as compliance_selectors
from exceptions import selectors as exception_selectors
from inventory import selectors as inventory_selectors
from lines import selectors as line_selectors
from lines import wip
from lines.readmodels import LINE_STATUS
from passports import selectors as passport_selectors
from runbooks import selectors as runbook_selectors
from scada import selectors as scada_selectors

OK, WARNING, CRITICAL, UNKNOWN = "OK", "Warning", "Critical", "Unknown"
BOTTLENECK_STAGES = 5  # stages in the plant head's "bottleneck by stage"


@dataclass(frozen=True)
class CardLink:
    type: str
    id: str | None
    path: str


@dataclass(frozen=True)
class Card:
    id: str
    title: str
    value: Any
    unit: str | None = None
    status: str | None = None
    link: CardLink | None = None
    details: dict | None = None


@dataclass(frozen=True)
class RoleSummary:
    role: str
    role_label: str
    generated_at: datetime
    cards: list[Card] = field(default_factory=list)


def _count_card(
    card_id: str,
    title: str,
    value: int,
    *,
    link: CardLink | None = None,
    alert: str | None = WARNING,
) -> Card:
    """A count that is OK at zero and ``alert`` above (None: a plain figure)."""
    status = None if alert is None else (OK if value == 0 else alert)
    return Card(card_id, title, value, "count", status, link)


def _percent(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _alarms_card() -> Card:
    return _count_card(
        "unacknowledgedAlarms",
        "Unacknowledged alarms",
        scada_selectors.alarm_unacknowledged_count(),
        link=CardLink("alarms", None, "/api/alarms"),
        alert=CRITICAL,
    )


def _operator(user, own: bool, now: datetime) -> list[Card]:
    shift = kpis.current_shift(now)
    key = f"operator:{f'user-{user.pk}' if own else 'plant'}:" + (
        "no-shift" if shift is None else f"{shift.start:%Y%m%dT%H%M%S}"
    )
    return readmodels.ROLE_SUMMARY[Role.OPERATOR].get(
        key,
        lambda: (
            _operator_cards(user, own, shift),
            None if shift is None else shift.end,
        ),
        valid=lambda cards: shift is None or shift.start <= now < shift.end,
    )


def _operator_cards(user, own: bool, shift) -> list[Card]:
    cards = [
        Card(
            "shiftInfo",
            "Current shift",
            None if shift is None else f"{shift.start:%H:%M}-{shift.end:%H:%M} UTC",
            None,
            None,
            None,
            None
            if shift is None
            else {
                "lineId": shift.line_id,
                "lineName": shift.line_name,
                "start": shift.start,
                "end": shift.end,
            },
        )
    ]
    stages = CardLink("stages", None, "/api/stages")
    if own:
        counts = runbook_selectors.stage_assignment_counts(user_id=user.pk)
        cards += [
            _count_card(
                "assignedStages",
                "Stages assigned to me",
                sum(counts.values()),
                link=stages,
                alert=None,
            ),
            _count_card(
                "inProgressStages",
                "My stages in progress",
                counts["in_progress"],
                link=stages,
                alert=None,
            ),
            _count_card(
                "blockedStages", "My stages on hold", counts["hold"], link=stages
            ),
        ]
    else:  # a higher role looking at the floor: every operator's
        cards.append(
            _count_card(
                "blockedStages",
                "Stages on hold",
                runbook_selectors.stage_blocked_count(),
                link=stages,
            )
        )
    cards.append(_alarms_card())
    return cards


def _bottleneck_card() -> Card:
    stages = distributions.stage_wip_list()
    top = wip.bottleneck(stages)
    ranked = sorted((s for s in stages if s.wip), key=lambda s: s.rank(), reverse=True)[
        :BOTTLENECK_STAGES
    ]
    return Card(
        "bottleneck",
        "Bottleneck by stage",
        None if top is None else top.stage,
        "WIP",
        OK if top is None else WARNING,
        CardLink("bottlenecks", None, "/api/live-status/bottlenecks"),
        {
            "wip": None if top is None else top.wip,
            "stages": [
                {
                    "runbookId": s.runbook_id,
                    "stageId": s.stage_id,
                    "stage": s.stage,
                    "wip": s.wip,
                    "inProgress": s.in_progress,
                    "waiting": s.waiting,
                    "onHold": s.on_hold,
                }
                for s in ranked
            ],
        },
    )


def _cached(role: str, build) -> list[Card]:
    """``build()``'s cards from ``role``'s read model (only writes change them)."""
    return readmodels.ROLE_SUMMARY[role].get(role, lambda: (build(), None))


def _planner(user, own: bool, now: datetime) -> list[Card]:
    return [*_cached(Role.PLANNER, _planner_cards), _bottleneck_card()]


def _planner_cards() -> list[Card]:
    orders = runbook_selectors.work_order_status_counts()
    work_orders = CardLink("workOrders", None, "/api/workorders")
    return [
        _count_card(
            "plannedWorkOrders",
            "Work orders planned",
            orders["planned"],
            link=work_orders,
            alert=None,
        ),
        _count_card(
            "inProgressWorkOrders",
            "Work orders in progress",
            orders["in_progress"],
            link=work_orders,
            alert=None,
        ),
        _count_card(
            "blockedStages",
            "Stages on hold",
            runbook_selectors.stage_blocked_count(),
            link=CardLink("stages", None, "/api/stages"),
        ),
    ]


def _supervisor(user, own: bool, now: datetime) -> list[Card]:
    return _cached(Role.SUPERVISOR, _supervisor_cards)


def _supervisor_cards() -> list[Card]:
    # Six counts of five apps, in one statement (bpmos.totals), the same
    # statement every time (compiled once).
    found = totals_get_compiled(
        "supervisor-cards",
        lambda: {
            "gates": runbook_selectors.gate_awaiting_totals(),
            "exceptions": exception_selectors.exception_escalated_totals(
                role=Role.SUPERVISOR
            ),
            "items": inventory_selectors.item_on_hold_totals(),
            "passports": passport_selectors.passport_hold_totals(),
            "returns": compliance_selectors.return_draft_totals(),
            "blocked": runbook_selectors.stage_blocked_totals(),
        },
    )
    holds = found["items"] + found["passports"]
    return [
        _count_card(
            "gatesAwaitingApproval",
            "Gates awaiting approval",
            found["gates"],
        ),
        _count_card(
            "escalatedExceptions",
            "Exceptions escalated to supervisors",
            found["exceptions"],
            link=CardLink("exceptions", None, "/api/exceptions"),
            alert=CRITICAL,
        ),
        _count_card(
            "holdsToRelease",
            "Holds to release",
            holds,
            link=CardLink("inventory", None, "/api/inventory/items"),
        ),
        _count_card(
            "returnsToApprove",
            "Compliance returns to approve",
            found["returns"],
            link=CardLink("returns", None, "/api/compliance/returns"),
        ),
        _count_card(
            "blockedStages",
            "Stages on hold",
            found["blocked"],
            link=CardLink("stages", None, "/api/stages"),
        ),
    ]


def _live_summary(now: datetime) -> line_selectors.LiveSummary:
    """The lines' live status summary (OEE this shift, stations not blocked),
    kept in the lines' own read model (``LINE_STATUS``: invalidated by every
    machine, station, line and snapshot change) until it stops being right."""

    def compute():
        live = line_selectors.live_status_summary(now=now)
        return live, live.valid_until

    return LINE_STATUS.get(
        "dashboard-live-summary",
        compute,
        valid=lambda live: live.updated_at <= now < live.valid_until,
    )


def _plant_head(user, own: bool, now: datetime) -> list[Card]:
    (exceptions,) = _cached(Role.PLANT_HEAD, _plant_head_cards)
    live = _live_summary(now)
    oee = _percent(live.oee)
    health = _percent(live.health_percent)
    return [
        _bottleneck_card(),
        Card(
            "plantOee",
            "Plant OEE this shift",
            oee,
            "%",
            UNKNOWN if oee is None else (OK if oee >= 60 else WARNING),
            CardLink("liveStatus", None, "/api/live-status/summary"),
        ),
        Card(
            "lineHealth",
            "Stations not blocked",
            health,
            "%",
            UNKNOWN if health is None else (OK if health >= 90 else WARNING),
            CardLink("liveStatus", None, "/api/live-status/summary"),
            {"activeLines": live.active_lines, "totalLines": live.total_lines},
        ),
        exceptions,
    ]


def _plant_head_cards() -> list[Card]:
    """The plant head's card of its own read model: the exceptions escalated
    to the plant head."""
    return [
        _count_card(
            "escalatedExceptions",
            "Exceptions escalated to the plant head",
            exception_selectors.exception_escalated_count(role=Role.PLANT_HEAD),
            link=CardLink("exceptions", None, "/api/exceptions"),
            alert=CRITICAL,
        ),
    ]


def _compliance_card() -> Card:
    snapshot = compliance_score.score_latest()
    if snapshot is None:
        return Card(
            "complianceScore",
            "Aadhaar Ready %",
            None,
            "%",
            UNKNOWN,
            CardLink("complianceScore", None, "/api/compliance/score"),
        )
    body = compliance_score.score_body(snapshot)
    ready = body["aadhaarReadyPercent"]
    return Card(
        "complianceScore",
        "Aadhaar Ready %",
        _percent(ready),
        "%",
        UNKNOWN if ready is None else (OK if ready >= 95 else WARNING),
        CardLink("complianceScore", None, "/api/compliance/score"),
        {
            "total": body["total"],
            "ready": body["ready"],
            "computedAt": body["computedAt"],
        },
    )


def _chain_card() -> Card:
    status = attention.chain_status_safe()
    link = CardLink("auditChain", None, "/api/audit/verify")
    if status is None:
        return Card(
            "chainVerification", "Audit chain", "Not Verified", None, UNKNOWN, link
        )
    return Card(
        "chainVerification",
        "Audit chain",
        "Verified" if status["ok"] else "Broken",
        None,
        OK if status["ok"] else CRITICAL,
        link,
        {
            "checked": status["checked"],
            "headSeq": status["headSeq"],
            "verifiedAt": status["verifiedAt"],
            "firstBroken": status["firstBroken"],
        },
    )


def _auditor(user, own: bool, now: datetime) -> list[Card]:
    return [*_cached(Role.AUDITOR, lambda: [_compliance_card()]), _chain_card()]


def _admin(user, own: bool, now: datetime) -> list[Card]:
    users, compliance = _cached(Role.ADMIN, lambda: [_users_card(), _compliance_card()])
    return [_connectors_card(), users, compliance]


def _connectors_card() -> Card:
    connectors = scada_selectors.connector_health()
    return Card(
        "connectorHealth",
        "Connectors communicating",
        connectors["ok"],
        "count",
        OK
        if connectors["lost"] == 0 and connectors["unknown"] == 0
        else (CRITICAL if connectors["lost"] else WARNING),
        CardLink("connectors", None, "/api/scada/connectors"),
        {
            "enabled": connectors["enabled"],
            "ok": connectors["ok"],
            "lost": connectors["lost"],
            "unknown": connectors["unknown"],
            "disabled": connectors["disabled"],
        },
    )


def _users_card() -> Card:
    users = account_selectors.user_health()
    return Card(
        "userHealth",
        "Active users",
        users["active"],
        "count",
        None,
        CardLink("users", None, "/api/auth/users"),
        {
            "inactive": users["inactive"],
            "neverSignedIn": users["neverSignedIn"],
            "byRole": users["byRole"],
        },
    )


_CARDS = {
    Role.OPERATOR: _operator,
    Role.PLANNER: _planner,
    Role.SUPERVISOR: _supervisor,
    Role.PLANT_HEAD: _plant_head,
    Role.AUDITOR: _auditor,
    Role.ADMIN: _admin,
}


def role_summary(*, role: str, user, now: datetime | None = None) -> RoleSummary:
    """``role``'s cards as ``user`` sees them: their own figures when it is their
    role (an operator's assigned stages), the plant's otherwise."""
    now = now or timezone.now()
    own = user.role == role
    return RoleSummary(
        role=role,
        role_label=Role(role).label,
        generated_at=now,
        cards=_CARDS[role](user, own, now),
    )
