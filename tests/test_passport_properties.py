"""Random sequences of passport actions never ship what may not be shipped.

A hypothesis state machine drives the services (``event_record`` with every
recordable kind and random data, provisioning through ``ledger.append``, the
dispatch desk's ``move_to_past``/``reactivate``, ``assemble``), with the
version the caller read, a stale one or none, on a small plant: four packs
(manufactured, provisioned, warehoused, reserved), a module and two cells.
Besides random actions it takes the steps that move a battery on towards the
desk (QA, provisioning, warehouse, reservation), puts holds and failed tests in
the way and tries to ship right after, and has the desk try to ship everything.

After every step, independently of ``passports.lifecycle``:

* no ledger holds a ``dispatched`` event that followed a ``qa_failed`` without
  a later ``qa_passed``, or came while the battery was on hold, or when it was
  not warehoused or reserved (a plain scan of the events, not the fold);
* each passport's projection is ``lifecycle.replay`` of its ledger, and
  ``ledger.verify`` finds every chain intact; the Custody Mix's kept counts
  equal a recount of the passports;
* the dispatch desk lists exactly the batteries whose latest job is ON and
  that are warehoused or reserved and not on hold;
* a refused action (any ``DomainError``) changed nothing at all: passport rows,
  events, audit records, outbox rows and dispatch jobs are exactly as before;
  an accepted one appended exactly the events it should.

Each example runs inside a savepoint rolled back at its end, so every example
starts from the same plant.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from bpmos.errors import DomainError
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from passports import ledger, lifecycle, services
from passports import selectors as passport_selectors
from passports.dispatch import selectors as dispatch_selectors
from passports.dispatch import services as dispatch
from passports.models import (
    CustodianKind,
    DispatchJob,
    EventKind,
    JobState,
    Kind,
    Passport,
    PassportEvent,
)
from tests.factories_passports import EVENT_DATA, make_passport
from tests.support_hypothesis import examples

E = EventKind
# The plant every example starts from (built once through the services): packs
# at each step towards the desk, a module and cells to assemble.
WORLD = (
    (Kind.PACK, "manufactured"),
    (Kind.PACK, "provisioned"),
    (Kind.PACK, "warehoused"),
    (Kind.PACK, "reserved"),
    (Kind.MODULE, "qa_passed"),
    (Kind.CELL, "qa_passed"),
    (Kind.CELL, "warehoused"),
)
# Recordable kinds, with the ones that stand in a shipment's way more often.
RECORDED = (
    *services.RECORDABLE_KINDS,
    E.HELD,
    E.HELD,
    E.QA_FAILED,
    E.QA_FAILED,
    E.DISPATCHED,
    E.DISPATCHED,
    E.RELEASED,
)
# The step that moves a battery on from each state; it stops at the desk
# (reserved), where shipping is left to the rules that try it.
NEXT = {
    "manufactured": E.QA_PASSED,
    "qa_failed": E.QA_PASSED,
    "provisioned": E.WAREHOUSED,
    "warehoused": E.RESERVED,
    "dispatched": E.DELIVERED,
    "in_service": E.SERVICED,
    "end_of_life": E.RECYCLED,
}
# Events after which the battery is in another place in its life.
MOVES = {
    E.MANUFACTURED,
    E.QA_PASSED,
    E.QA_FAILED,
    E.PROVISIONED,
    E.ASSEMBLED,
    E.WAREHOUSED,
    E.RESERVED,
    E.RESERVATION_RELEASED,
    E.DISPATCHED,
    E.DELIVERED,
    E.END_OF_LIFE,
    E.RECYCLED,
}

# Packs more often: they are what the dispatch desk ships.
batteries = st.sampled_from([0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 6])
versions = st.sampled_from(["none", "none", "current", "stale"])
# Replacement text for an event's first field: blank and too long are refused.
texts = st.sampled_from(["", " ", "Recall 7", "x" * 301, "Line 2 / bay 4"])


def build_world(make_user) -> SimpleNamespace:
    return SimpleNamespace(
        actor=make_user("supervisor"),
        ids=[make_passport(kind, state).pk for kind, state in WORLD],
    )


def shipped_wrongly(events: list[tuple[str, dict]]) -> str | None:
    """Why a ``dispatched`` event in ``events`` should never have been written."""
    held, qa, place = False, None, None
    for version, (kind, _data) in enumerate(events, start=1):
        if kind == E.DISPATCHED:
            if held:
                return f"event {version}: dispatched while on hold"
            if qa != E.QA_PASSED:
                return f"event {version}: dispatched after {qa}"
            if place not in {E.WAREHOUSED, E.RESERVED}:
                return f"event {version}: dispatched from {place}"
        if kind in {E.HELD, E.RELEASED}:
            held = kind == E.HELD
        if kind in {E.QA_PASSED, E.QA_FAILED}:
            qa = kind
        if kind in MOVES:
            place = E.WAREHOUSED if kind == E.RESERVATION_RELEASED else kind
    return None


class PassportMachine(RuleBasedStateMachine):
    world: SimpleNamespace  # set by the test

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.refused = 0

    def teardown(self):
        # Called by hypothesis after every example, passed or failed.
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers -------------------------------------------------------------------

    def pk(self, index: int) -> int:
        return self.world.ids[index]

    def database(self) -> dict:
        return {
            "passports": list(Passport.objects.order_by("pk").values()),
            "events": PassportEvent.objects.count(),
            "audit": AuditRecord.objects.count(),
            "outbox": OutboxEvent.objects.count(),
            "jobs": list(DispatchJob.objects.order_by("pk").values()),
        }

    def act(self, call, appends: int) -> bool:
        """Run ``call``; refused: nothing changed; accepted: ``appends`` events."""
        before = self.database()
        try:
            with transaction.atomic():
                call()
        except DomainError:
            assert self.database() == before
            self.refused += 1
            return False
        assert PassportEvent.objects.count() == before["events"] + appends
        return True

    def version_for(self, index: int, mode: str) -> int | None:
        current = Passport.objects.values_list("version", flat=True).get(
            pk=self.pk(index)
        )
        return {"none": None, "current": current, "stale": current - 1}[mode]

    # --- rules -----------------------------------------------------------------------

    @rule(
        index=batteries,
        kind=st.sampled_from(RECORDED),
        mode=versions,
        custodian=st.sampled_from(CustodianKind.values),
        text=texts,
        use_text=st.sampled_from([False, False, False, True]),
    )
    def record(self, index, kind, mode, custodian, text, use_text):
        data = dict(EVENT_DATA[kind])
        if kind == E.CUSTODY_TRANSFERRED:
            data = {"to": {"kind": custodian, "name": text or "Someone"}}
        elif use_text and data:
            data[next(iter(data))] = text  # blank, too long or a plain value
        expected = self.version_for(index, mode)
        self.act(
            lambda: services.passport_event_record(
                passport_id=self.pk(index),
                kind=kind,
                data=data,
                expected_version=expected,
                actor=self.world.actor,
            ),
            1,
        )

    @rule(index=batteries, steps=st.integers(min_value=1, max_value=6))
    def advance(self, index, steps):
        """The steps that move a battery on (each may be refused: hold, QA)."""
        for _ in range(steps):
            self.step_on(index, "none")

    def step_on(self, index, mode):
        passport = Passport.objects.get(pk=self.pk(index))
        kind = NEXT.get(passport.state)
        if passport.state == "qa_passed":
            kind = E.PROVISIONED if passport.kind == Kind.PACK else E.WAREHOUSED
        if kind is None:
            return
        if kind == E.PROVISIONED:
            self.provision(index, mode)
            return
        self.act(
            lambda: services.passport_event_record(
                passport_id=passport.pk,
                kind=kind,
                data=EVENT_DATA[kind],
                expected_version=self.version_for(index, mode),
                actor=self.world.actor,
            ),
            1,
        )

    @rule(
        index=batteries,
        kind=st.sampled_from([E.HELD, E.HELD, E.QA_FAILED, E.QA_FAILED, E.RELEASED]),
        desk=st.booleans(),
    )
    def obstruct(self, index, kind, desk):
        """What stands in a shipment's way (or clears it), a hold or a failed
        test, and an attempt to ship right after."""
        self.act(
            lambda: services.passport_event_record(
                passport_id=self.pk(index),
                kind=kind,
                data=EVENT_DATA[kind],
                actor=self.world.actor,
            ),
            1,
        )
        self.ship(index, desk)

    @rule(index=batteries, desk=st.booleans())
    def ship(self, index, desk):
        """Try to dispatch, from the desk or as a recorded event, whatever the
        battery's state."""
        if desk:
            self.move_to_past(index, "dispatched")
            return
        self.act(
            lambda: services.passport_event_record(
                passport_id=self.pk(index),
                kind=E.DISPATCHED,
                data={"carrier": "DHL"},
                actor=self.world.actor,
            ),
            1,
        )

    @rule(desk=st.booleans())
    def ship_everything(self, desk):
        """The desk tries to ship every battery, whatever state each is in."""
        for index in range(len(WORLD)):
            self.ship(index, desk)

    @rule(index=batteries, mode=versions)
    def provision(self, index, mode):
        expected = self.version_for(index, mode)
        self.act(
            lambda: ledger.append(
                passport=self.pk(index),
                kind=E.PROVISIONED,
                data=EVENT_DATA[E.PROVISIONED],
                actor=self.world.actor,
                expected_version=expected,
            ),
            1,
        )

    @rule(index=batteries, reason=st.sampled_from(["dispatched", "Damaged box", ""]))
    def move_to_past(self, index, reason):
        self.act(
            lambda: dispatch.product_move_to_past(
                passport_id=self.pk(index),
                reason=reason,
                carrier="BlueDart",
                actor=self.world.actor,
            ),
            1,
        )

    @rule(index=batteries)
    def reactivate(self, index):
        self.act(
            lambda: dispatch.product_reactivate(
                passport_id=self.pk(index), reason="Back on", actor=self.world.actor
            ),
            1,
        )

    @rule(
        parent=batteries,
        components=st.lists(batteries, min_size=1, max_size=3, unique=True),
    )
    def assemble(self, parent, components):
        ids = [self.pk(i) for i in components]
        self.act(
            lambda: services.passport_assemble(
                parent_id=self.pk(parent), component_ids=ids, actor=self.world.actor
            ),
            len(ids),
        )

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def nothing_unshippable_was_shipped(self):
        chains: dict[int, list[tuple[str, dict]]] = {pk: [] for pk in self.world.ids}
        for passport_id, kind, data in (
            PassportEvent.objects.filter(passport_id__in=self.world.ids)
            .order_by("passport_id", "version")
            .values_list("passport_id", "kind", "data")
        ):
            chains[passport_id].append((kind, data))
        for passport in Passport.objects.filter(pk__in=self.world.ids):
            events = chains[passport.pk]
            assert shipped_wrongly(events) is None, (passport.serial, events)
            assert lifecycle.replay(passport.kind, events) == ledger.snapshot_of(
                passport
            )

    @invariant()
    def ledgers_verify(self):
        result = ledger.verify(passport_ids=self.world.ids)
        assert result.ok, result.first_broken

    @invariant()
    def custody_counts_equal_a_recount(self):
        # The Custody Mix's kept counts (passports.rollups) move with the
        # ledger, whatever the services accepted or refused.
        assert passport_selectors.custody_mix() == (
            passport_selectors.custody_mix_recount()
        )

    @invariant()
    def desk_lists_exactly_what_may_ship(self):
        live = set()
        for passport in Passport.objects.filter(pk__in=self.world.ids):
            job = dispatch_selectors.latest_job(passport)
            shippable = passport.state in {"warehoused", "reserved"}
            on = job is not None and job.state == JobState.ON
            if on and shippable and not passport.on_hold:
                live.add(passport.pk)
        listed = set(
            dispatch_selectors.dispatchable_queryset().values_list("pk", flat=True)
        )
        assert listed == live


@pytest.mark.django_db
def test_no_sequence_of_actions_ships_a_failed_or_held_battery(make_user):
    machine = type(
        "PassportMachine", (PassportMachine,), {"world": build_world(make_user)}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples(60, ci=30),
            stateful_step_count=15,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_the_scan_catches_what_it_should():
    # The invariant's own check, on ledgers the services would refuse to write.
    base = [(E.MANUFACTURED, {}), (E.QA_PASSED, {}), (E.PROVISIONED, {})]
    stored = [*base, (E.WAREHOUSED, {})]
    ship = (E.DISPATCHED, {})
    assert shipped_wrongly([*stored, ship]) is None
    assert shipped_wrongly([*stored, (E.RESERVED, {}), ship]) is None
    assert shipped_wrongly([*stored, (E.HELD, {}), ship]) == (
        "event 6: dispatched while on hold"
    )
    assert shipped_wrongly([*stored, (E.QA_FAILED, {}), ship]) == (
        "event 6: dispatched after qa_failed"
    )
    assert shipped_wrongly([*base, ship]) == "event 4: dispatched from provisioned"
    assert shipped_wrongly([*stored, (E.HELD, {}), (E.RELEASED, {}), ship]) is None
