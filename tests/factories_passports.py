"""Factories for passport tests: batteries in any lifecycle state, built through
the services (register, event_record, assemble, the ledger), so their ledgers,
projections, audit records and dispatch jobs look exactly like real ones.

    pack = make_passport("pack", "warehoused", actor=user)
    held = make_passport("pack", "reserved", on_hold=True)
    cell = make_passport("cell", "assembled")   # a module is made for it

``footprint(passport)`` is what a refused call must leave unchanged.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.forms.models import model_to_dict

from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from passports import ledger, services, signatures
from passports.models import (
    PARENT_KIND,
    DispatchJob,
    EventKind,
    Kind,
    Passport,
    PassportEvent,
    State,
)
from tests.conftest import PASSWORD

E = EventKind
_serials = itertools.count(1)

# Valid data for each event kind a test may record (event_record or the ledger).
EVENT_DATA: dict[str, dict[str, Any]] = {
    E.QA_PASSED: {"test": "EOL-1"},
    E.QA_FAILED: {"reason": "Insulation resistance low"},
    E.PROVISIONED: {"bmsFirmware": "2.4.1", "nodeId": 17},
    E.WAREHOUSED: {"location": "FG-A-01"},
    E.RESERVED: {"reference": "SO-1001"},
    E.RESERVATION_RELEASED: {"note": "Order changed"},
    E.HELD: {"reason": "Swelling seen at inspection"},
    E.RELEASED: {"note": "Re-inspected, fine"},
    E.DISPATCHED: {"carrier": "BlueDart"},
    E.DELIVERED: {"customer": "Ather Energy"},
    E.SERVICED: {"note": "Cell balancing", "provider": "BPM Service"},
    E.TELEMETRY_SUMMARISED: {"sohPercent": 97.5, "samples": 120},
    E.END_OF_LIFE: {"reason": "SoH below 70 %"},
    E.RECYCLED: {"note": "Black mass recovered"},
    E.MOVED_TO_PAST: {"jobId": "0", "reason": "damaged"},
    E.REACTIVATED: {"jobId": "0", "reason": "repaired"},
    E.CUSTODY_TRANSFERRED: {"to": {"kind": "recycler", "name": "GreenCycle"}},
    # The ledger's side of a second life (passports.secondlife makes the new
    # passport; these only move the old one).
    E.REPURPOSED: {"successor": {"id": "0", "serial": "SL-0"}, "operator": "SLS"},
    E.REUSED: {"successor": {"id": "0", "serial": "SL-0"}, "operator": "SLS"},
    E.REMANUFACTURED: {"successor": {"id": "0", "serial": "SL-0"}, "operator": "SLS"},
}

# The events that bring a battery of each kind from manufactured to a state.
_BASE = (E.QA_PASSED,)
_STORED = {
    Kind.PACK: (E.QA_PASSED, E.PROVISIONED, E.WAREHOUSED),
    Kind.MODULE: (E.QA_PASSED, E.WAREHOUSED),
    Kind.CELL: (E.QA_PASSED, E.WAREHOUSED),
}
_IN_SERVICE = (E.RESERVED, E.DISPATCHED, E.DELIVERED)


def path_to(kind: str, state: str) -> tuple[str, ...]:
    """Event kinds after ``manufactured`` that lead a ``kind`` to ``state``."""
    stored = _STORED[kind]
    paths = {
        State.MANUFACTURED: (),
        State.QA_PASSED: _BASE,
        State.QA_FAILED: (E.QA_FAILED,),
        State.PROVISIONED: (E.QA_PASSED, E.PROVISIONED),
        State.ASSEMBLED: (*_BASE, E.ASSEMBLED),
        State.WAREHOUSED: stored,
        State.RESERVED: (*stored, E.RESERVED),
        State.DISPATCHED: (*stored, E.RESERVED, E.DISPATCHED),
        State.IN_SERVICE: (*stored, *_IN_SERVICE),
        State.END_OF_LIFE: (*stored, *_IN_SERVICE, E.END_OF_LIFE),
        State.RECYCLED: (
            *stored,
            *_IN_SERVICE,
            E.END_OF_LIFE,
            E.CUSTODY_TRANSFERRED,
            E.RECYCLED,
        ),
        State.SUPERSEDED: (*stored, *_IN_SERVICE, E.REUSED),
    }
    if state == State.PROVISIONED and kind != Kind.PACK:
        raise ValueError("Only packs are provisioned.")
    if state == State.ASSEMBLED and kind == Kind.PACK:
        raise ValueError("Packs are not assembled into anything.")
    return paths[state]


def reachable(kind: str) -> list[str]:
    """The states a battery of ``kind`` can be in."""
    return [
        state
        for state in State.values
        if not (state == State.PROVISIONED and kind != Kind.PACK)
        and not (state == State.ASSEMBLED and kind == Kind.PACK)
    ]


def register(kind: str = Kind.PACK, *, actor: Any = None, **overrides) -> Passport:
    """A new passport (state manufactured) through ``passport_register``.

    Packs get a BPAN issued (manufacturer BPM, plant P) unless ``bpan`` or
    ``manufacturer_code=None`` is given.
    """
    number = next(_serials)
    data: dict[str, Any] = {
        "kind": kind,
        "chemistry": "LFP",
        "serial": f"{kind[0].upper()}-{number:06d}",
        "model": f"{kind.upper()}-LFP",
        "manufacturer": "BPM Energy",
        "site": "Pune Plant 1",
        "rated_capacity_ah": 100,
        "nominal_voltage_v": 3.2 if kind == Kind.CELL else 51.2,
        "energy_kwh": 0.32 if kind == Kind.CELL else 5.12,
        "lot": "LOT-1",
    }
    if kind == Kind.PACK:
        data.update(manufacturer_code="BPM", plant_code="P")
    data.update(overrides)
    return services.passport_register(data=data, actor=actor)


def record(passport: Passport, kind: str, *, actor: Any = None, **data) -> Passport:
    """Append one event of ``kind`` (with ``EVENT_DATA`` unless ``data`` is given)
    through the service that owns it; returns the passport re-read."""
    data = data or EVENT_DATA.get(kind, {})
    if kind in signatures.SIGNED_KINDS and actor is None:
        # a signed step needs a person; the system writes the ledger directly
        ledger.append(passport=passport.pk, kind=kind, data=data, actor=None)
    elif kind in services.RECORDABLE_KINDS:
        services.passport_event_record(
            passport_id=passport.pk,
            kind=kind,
            data=data,
            actor=actor,
            password=PASSWORD if kind in signatures.SIGNED_KINDS else None,
        )
    elif kind == E.ASSEMBLED:
        parent = passport.parent or register(PARENT_KIND[passport.kind], actor=actor)
        services.passport_assemble(
            parent_id=parent.pk, component_ids=[passport.pk], actor=actor
        )
    else:  # provisioned (passports.provisioning), telemetry, desk events
        ledger.append(passport=passport.pk, kind=kind, data=data, actor=actor)
    return Passport.objects.get(pk=passport.pk)


def make_passport(
    kind: str = Kind.PACK,
    state: str = State.MANUFACTURED,
    *,
    on_hold: bool = False,
    actor: Any = None,
    **overrides,
) -> Passport:
    """A passport of ``kind`` brought to ``state`` (and put on hold) by events."""
    passport = register(kind, actor=actor, **overrides)
    for event_kind in path_to(kind, state):
        passport = record(passport, event_kind, actor=actor)
    if on_hold:
        passport = record(passport, E.HELD, actor=actor)
    return passport


def footprint(passport: Passport) -> dict[str, Any]:
    """Everything an append writes: a refused call must leave all of it equal."""
    row = Passport.objects.get(pk=passport.pk)
    return {
        "passport": model_to_dict(row) | {"updated_at": row.updated_at},
        "events": list(
            PassportEvent.objects.filter(passport=passport).values_list("pk", "hash")
        ),
        "audit": AuditRecord.objects.count(),
        "outbox": OutboxEvent.objects.count(),
        "jobs": list(
            DispatchJob.objects.filter(passport=passport).values_list(
                "pk", "state", "reason"
            )
        ),
    }
