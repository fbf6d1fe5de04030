"""The lifecycle and custody rules of a passport: the one place they live.

A passport's current state, hold flag and custodian are a fold of its ledger:
``replay(events)`` starts from nothing and applies each event in order with
``apply``; ``passports.ledger.append`` applies the new event to the stored
projection and refuses it (409) when ``apply`` does. The same function decides
both, so what the ledger says and what the passport row says cannot disagree.

Rules, in short (docs/passports.md has the diagram):

* manufactured → QA passed | QA failed; a failed battery may be re-tested.
* packs are provisioned (BMS written) after QA and before the warehouse;
  cells and modules are warehoused or assembled into their parent after QA.
* warehoused → reserved → dispatched (custody: manufacturer → logistics)
  → delivered (logistics → customer; state in service) → serviced …
  → end of life → (custody to a recycler) → recycled.
* a hold blocks reserving, dispatching and assembling until it is released.
* custody moves only by recorded events: dispatch, delivery and explicit
  transfers between the parties the chain allows.
* second life: a battery in service or at end of life that is repurposed,
  prepared for re-use or remanufactured is superseded (no further event); its
  new passport starts with ``registered_from`` (``passports.secondlife``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import Q

from bpmos.errors import IllegalTransition
from passports.models import CustodianKind, EventKind, Kind, State

S, E, C = State, EventKind, CustodianKind


@dataclass(frozen=True)
class Snapshot:
    """What the ledger says a passport is now."""

    kind: str
    state: str = ""
    on_hold: bool = False
    hold_reason: str = ""
    custodian_kind: str = ""
    custodian_name: str = ""
    version: int = 0


# Event kind → (states it may follow, state it leads to; None keeps the state).
_MOVES: dict[str, tuple[frozenset[str], str | None]] = {
    # A battery passes several tests (capacity, resistance, leak): a further
    # pass while it is QA Passed keeps it there; a fail at any point before it
    # ships sends it to QA Failed until a re-test passes.
    E.QA_PASSED: (frozenset({S.MANUFACTURED, S.QA_PASSED, S.QA_FAILED}), S.QA_PASSED),
    E.QA_FAILED: (
        frozenset({S.MANUFACTURED, S.QA_PASSED, S.PROVISIONED, S.WAREHOUSED}),
        S.QA_FAILED,
    ),
    E.PROVISIONED: (frozenset({S.QA_PASSED, S.PROVISIONED}), S.PROVISIONED),
    E.ASSEMBLED: (frozenset({S.QA_PASSED, S.WAREHOUSED}), S.ASSEMBLED),
    E.WAREHOUSED: (frozenset({S.QA_PASSED, S.PROVISIONED}), S.WAREHOUSED),
    E.RESERVED: (frozenset({S.WAREHOUSED}), S.RESERVED),
    E.RESERVATION_RELEASED: (frozenset({S.RESERVED}), S.WAREHOUSED),
    E.DISPATCHED: (frozenset({S.WAREHOUSED, S.RESERVED}), S.DISPATCHED),
    E.DELIVERED: (frozenset({S.DISPATCHED}), S.IN_SERVICE),
    E.SERVICED: (frozenset({S.IN_SERVICE}), None),
    E.END_OF_LIFE: (
        frozenset(
            {
                S.MANUFACTURED,
                S.QA_PASSED,
                S.QA_FAILED,
                S.PROVISIONED,
                S.ASSEMBLED,
                S.WAREHOUSED,
                S.IN_SERVICE,
            }
        ),
        S.END_OF_LIFE,
    ),
    E.RECYCLED: (frozenset({S.END_OF_LIFE}), S.RECYCLED),
}
# A battery given a second life: one that has been used (in service) or has
# become waste (end of life, Art. 73: preparing waste for re-use or
# repurposing) is superseded by its new passport.
SECOND_LIFE_FROM = frozenset({S.IN_SERVICE, S.END_OF_LIFE})
SECOND_LIFE_KINDS = frozenset({E.REPURPOSED, E.REUSED, E.REMANUFACTURED})
for _kind in SECOND_LIFE_KINDS:
    _MOVES[_kind] = (SECOND_LIFE_FROM, S.SUPERSEDED)
_ANY_LIVE = frozenset(State.values) - {S.RECYCLED, S.SUPERSEDED}
# Events that change no state and may come at any time before recycling.
for _kind in (
    E.HELD,
    E.RELEASED,
    E.CUSTODY_TRANSFERRED,
    E.TELEMETRY_SUMMARISED,
    E.MOVED_TO_PAST,
    E.REACTIVATED,
):
    _MOVES[_kind] = (_ANY_LIVE, None)

# States from which a battery may be shipped (dispatch), when not on hold.
SHIPPABLE = frozenset({S.WAREHOUSED, S.RESERVED})
# "May ship now", stated once: each field and the values it must hold. A
# ``Snapshot`` and a ``Passport`` row name these fields alike, so ``may_ship``
# reads the rule on a snapshot and ``may_ship_filter`` turns it into the query
# filter of the dispatch desk; a test checks they agree on every state x hold.
MAY_SHIP: dict[str, frozenset] = {"state": SHIPPABLE, "on_hold": frozenset({False})}
# Moves a hold refuses.
_BLOCKED_BY_HOLD = frozenset(
    {E.RESERVED, E.DISPATCHED, E.ASSEMBLED, *SECOND_LIFE_KINDS}
)

# Explicit custody transfers the chain allows (dispatch and delivery are the
# manufacturer → logistics and logistics → customer moves; they carry custody
# themselves, so a plain transfer cannot skip them).
_TRANSFERS: dict[str, frozenset[str]] = {
    C.MANUFACTURER: frozenset({C.RECYCLER}),
    C.LOGISTICS: frozenset({C.LOGISTICS}),
    C.CUSTOMER: frozenset({C.SERVICE, C.RECYCLER}),
    C.SERVICE: frozenset({C.CUSTOMER, C.RECYCLER}),
    C.RECYCLER: frozenset(),
}


def _label(state: str) -> str:
    return State(state).label if state in State.values else state


def _refuse(snapshot: Snapshot, kind: str, why: str, code: str) -> IllegalTransition:
    return IllegalTransition(
        why,
        code=code,
        details={"state": snapshot.state, "event": kind, "onHold": snapshot.on_hold},
    )


def may_ship(snapshot: Snapshot) -> bool:
    """Whether a battery in this state may be dispatched now (``MAY_SHIP``)."""
    return all(getattr(snapshot, name) in ok for name, ok in MAY_SHIP.items())


def may_ship_filter(*, prefix: str = "") -> Q:
    """``MAY_SHIP`` as a filter on passport rows (``prefix``: the path to the
    passport from another model, e.g. ``"passport__"``)."""
    return Q(**{f"{prefix}{name}__in": sorted(ok) for name, ok in MAY_SHIP.items()})


def genesis(kind: str, *, manufacturer: str) -> Snapshot:
    """The snapshot a ``manufactured`` event creates."""
    return Snapshot(
        kind=kind,
        state=S.MANUFACTURED,
        custodian_kind=C.MANUFACTURER,
        custodian_name=manufacturer,
        version=1,
    )


def apply(snapshot: Snapshot, kind: str, data: Mapping[str, Any]) -> Snapshot:
    """The snapshot after event ``kind`` (with ``data``), or ``IllegalTransition``.

    ``data`` has been validated by the service that builds the event; here only
    the keys that move custody or hold are read.
    """
    if kind in (E.MANUFACTURED, E.REGISTERED_FROM):
        # A second-life battery's passport starts as a new battery does, held
        # by the economic operator who places it on the market (Art. 77(6)).
        if snapshot.version:
            raise _refuse(
                snapshot,
                kind,
                "Already manufactured."
                if kind == E.MANUFACTURED
                else "Already registered.",
                "illegal_transition",
            )
        return genesis(snapshot.kind, manufacturer=data["manufacturer"])
    if not snapshot.version:
        raise _refuse(
            snapshot,
            kind,
            "The first event must be 'manufactured'.",
            "illegal_transition",
        )
    allowed, to = _MOVES[kind]
    if snapshot.state not in allowed:
        raise _refuse(
            snapshot,
            kind,
            f"A {snapshot.kind} that is {_label(snapshot.state)} cannot be "
            f"{EventKind(kind).label.lower()}.",
            "illegal_transition",
        )
    if snapshot.on_hold and kind in _BLOCKED_BY_HOLD:
        raise _refuse(
            snapshot,
            kind,
            f"On hold ({snapshot.hold_reason}); release the hold first.",
            "on_hold",
        )
    # One copy (a replay applies every event of every ledger: ``verify``).
    if to is not None:
        new = replace(snapshot, version=snapshot.version + 1, state=to)
    else:
        new = replace(snapshot, version=snapshot.version + 1)

    if kind == E.PROVISIONED and snapshot.kind != Kind.PACK:
        raise _refuse(snapshot, kind, "Only packs have a BMS.", "illegal_transition")
    if kind == E.ASSEMBLED and snapshot.kind == Kind.PACK:
        raise _refuse(
            snapshot,
            kind,
            "A pack is not assembled into anything.",
            "illegal_transition",
        )
    if (
        kind == E.WAREHOUSED
        and snapshot.kind == Kind.PACK
        and snapshot.state != S.PROVISIONED
    ):
        raise _refuse(
            snapshot,
            kind,
            "A pack is provisioned (BMS written) before it is warehoused.",
            "not_provisioned",
        )
    if kind == E.HELD:
        if snapshot.on_hold:
            raise _refuse(snapshot, kind, "Already on hold.", "already_on_hold")
        return replace(new, on_hold=True, hold_reason=data["reason"])
    if kind == E.RELEASED:
        if not snapshot.on_hold:
            raise _refuse(snapshot, kind, "Not on hold.", "not_on_hold")
        return replace(new, on_hold=False, hold_reason="")
    if kind == E.DISPATCHED:
        if snapshot.custodian_kind != C.MANUFACTURER:
            raise _refuse(
                snapshot, kind, "Only the manufacturer dispatches.", "custody_violation"
            )
        return replace(new, custodian_kind=C.LOGISTICS, custodian_name=data["carrier"])
    if kind == E.DELIVERED:
        if snapshot.custodian_kind != C.LOGISTICS:
            raise _refuse(
                snapshot, kind, "Only logistics delivers.", "custody_violation"
            )
        return replace(new, custodian_kind=C.CUSTOMER, custodian_name=data["customer"])
    if kind == E.CUSTODY_TRANSFERRED:
        to_kind = data["to"]["kind"]
        if to_kind not in _TRANSFERS.get(snapshot.custodian_kind, frozenset()):
            raise _refuse(
                snapshot,
                kind,
                f"Custody cannot pass from {snapshot.custodian_kind} to {to_kind} "
                "by a transfer.",
                "custody_violation",
            )
        if to_kind == C.RECYCLER and snapshot.state != S.END_OF_LIFE:
            raise _refuse(
                snapshot,
                kind,
                "Only a battery at end of life goes to a recycler.",
                "custody_violation",
            )
        return replace(new, custodian_kind=to_kind, custodian_name=data["to"]["name"])
    if kind == E.RECYCLED and snapshot.custodian_kind != C.RECYCLER:
        raise _refuse(
            snapshot,
            kind,
            "Transfer custody to a recycler before recycling.",
            "custody_violation",
        )
    return new


def replay(kind: str, events: Iterable[tuple[str, Mapping[str, Any]]]) -> Snapshot:
    """The snapshot a ledger's events lead to, from its first event on."""
    snapshot = Snapshot(kind=kind)
    for event_kind, data in events:
        snapshot = apply(snapshot, event_kind, data)
    return snapshot
