"""Live events of passports (topic ``passports``) and of the dispatch desk
(topic ``dispatch``, which the SSE stream of the dispatch contract also carries).

Passport payloads are camelCase like the control UI's registry; dispatch
payloads are the dispatch contract's (``productId``, ``jobId``, ``currentState``).
"""

from __future__ import annotations

from typing import TypedDict

from bpmos.events import Event, declare

TOPIC = "passports"
DISPATCH_TOPIC = "dispatch"


class PassportChangedPayload(TypedDict):
    id: str
    serial: str
    kind: str
    event: str
    version: int
    state: str
    onHold: bool
    custodian: dict


class MovedToPastPayload(TypedDict):
    productId: str
    jobId: str
    reason: str
    currentState: str
    movedAt: str


class ReactivatedPayload(TypedDict):
    productId: str
    jobId: str
    currentState: str
    reactivatedAt: str


class DispatchableUpdatePayload(TypedDict):
    productId: str
    isDispatchable: bool
    count: int


PASSPORT_CHANGED = declare("passport.changed", PassportChangedPayload)
MOVED_TO_PAST = declare("product_moved_to_past", MovedToPastPayload)
REACTIVATED = declare("product_reactivated", ReactivatedPayload)
DISPATCHABLE_UPDATE = declare("dispatchable_products_update", DispatchableUpdatePayload)


def changed(passport, event) -> Event:
    payload: PassportChangedPayload = {
        "id": str(passport.uuid),
        "serial": passport.serial,
        "kind": passport.kind,
        "event": event.kind,
        "version": event.version,
        "state": passport.choice_label("state"),
        "onHold": passport.on_hold,
        "custodian": {"kind": passport.custodian_kind, "name": passport.custodian_name},
    }
    return Event(name=PASSPORT_CHANGED, topics=(TOPIC,), data=payload)


def moved_to_past(passport, job, *, at) -> Event:
    payload: MovedToPastPayload = {
        "productId": passport.serial,
        "jobId": str(job.pk),
        "reason": job.reason,
        "currentState": job.state,
        "movedAt": at.isoformat(),
    }
    return Event(name=MOVED_TO_PAST, topics=(DISPATCH_TOPIC,), data=payload)


def reactivated(passport, job, *, at) -> Event:
    payload: ReactivatedPayload = {
        "productId": passport.serial,
        "jobId": str(job.pk),
        "currentState": job.state,
        "reactivatedAt": at.isoformat(),
    }
    return Event(name=REACTIVATED, topics=(DISPATCH_TOPIC,), data=payload)


def dispatchable_update(passport, *, is_dispatchable: bool, count: int) -> Event:
    payload: DispatchableUpdatePayload = {
        "productId": passport.serial,
        "isDispatchable": is_dispatchable,
        "count": count,
    }
    return Event(name=DISPATCHABLE_UPDATE, topics=(DISPATCH_TOPIC,), data=payload)
