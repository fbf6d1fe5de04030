"""The custody counts the passport services keep (``CustodyUnitCount``,
``passports.rollups``: the dashboards' Custody Mix) always equal a recount of
the passports, whatever sequence of changes made them.

A hypothesis state machine registers batteries of every kind, records every
recordable event on them (custody transfers to every kind, dispatches,
deliveries, recycling; refused moves included), assembles cells into modules
and modules into packs (refused ones too: a component already in another, a
wrong kind), gives batteries a second life (their passports superseded by
new ones; refused ones too), and writes passports in bulk as the benches and
fixtures do.
After every step the kept counts equal ``custody_mix_recount``
(``tests/support_counts.py``, the harness the stage WIP counts share); with
the assembly's count update removed, the machine fails. Each example runs
inside a savepoint rolled back at its end.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from bpmos.errors import DomainError
from passports import rollups, secondlife, selectors, services
from passports.models import (
    PARENT_KIND,
    CustodianKind,
    CustodyUnitCount,
    EventKind,
    Kind,
    Passport,
)
from tests.factories_passports import (
    EVENT_DATA,
    make_passport,
    path_to,
    record,
    register,
)
from tests.support_counts import CountMachine, run_counts

pytestmark = pytest.mark.django_db

E = EventKind
_bulk_serials = itertools.count(1)
# Every kind a caller records, with custody's own moves more often.
RECORDED = (
    *services.RECORDABLE_KINDS,
    E.CUSTODY_TRANSFERRED,
    E.CUSTODY_TRANSFERRED,
    E.DISPATCHED,
    E.DELIVERED,
)
# The steps that bring a battery to where custody moves (stored, shipped).
TOWARDS = (E.QA_PASSED, E.WAREHOUSED, E.RESERVED, E.DISPATCHED, E.DELIVERED)


def bulk_passport(kind: str, custodian: str, parent: Passport | None) -> Passport:
    """One passport written as the benches write them (``bulk_create``)."""
    number = next(_bulk_serials)
    return Passport.objects.bulk_create(
        [
            Passport(
                kind=kind,
                serial=f"BULK-{number:06d}",
                model=f"{kind.upper()}-LFP",
                manufacturer="BPM Energy",
                site="Pune",
                manufactured_at=datetime(2026, 1, 5, tzinfo=UTC),
                chemistry="LFP",
                rated_capacity_ah=100,
                nominal_voltage_v=3.2,
                energy_kwh=0.32,
                state="manufactured",
                custodian_kind=custodian,
                custodian_name="Someone",
                parent=parent,
            )
        ]
    )[0]


class CustodyMachine(CountMachine):
    def __init__(self):
        super().__init__()
        self.ids: list[int] = []

    def battery(self, index: int) -> Passport:
        return Passport.objects.get(pk=self.ids[index % len(self.ids)])

    @initialize()
    def plant(self):
        for kind in (Kind.PACK, Kind.MODULE, Kind.CELL):
            self.ids.append(register(kind, actor=self.actor).pk)

    @rule(kind=st.sampled_from(Kind.values))
    def register_one(self, kind):
        self.ids.append(register(kind, actor=self.actor).pk)

    @rule(
        index=st.integers(0, 50),
        kind=st.sampled_from(RECORDED),
        custodian=st.sampled_from(CustodianKind.values),
    )
    def record_one(self, index, kind, custodian):
        passport = self.battery(index)
        data = dict(EVENT_DATA.get(kind, {}))
        if kind == E.CUSTODY_TRANSFERRED:
            data = {"to": {"kind": custodian, "name": f"{custodian} Ltd"}}
        self.attempt(
            lambda: services.passport_event_record(
                passport_id=passport.pk, kind=kind, data=data, actor=self.actor
            )
        )

    @rule(index=st.integers(0, 50), steps=st.integers(1, len(TOWARDS)))
    def move_on(self, index, steps):
        passport = self.battery(index)
        for kind in TOWARDS[:steps]:
            self.attempt(lambda kind=kind: record(passport, kind, actor=self.actor))

    @rule(
        child=st.integers(0, 50),
        parent=st.integers(0, 50),
        qa_first=st.booleans(),
        right_kind=st.sampled_from([True, True, True, False]),
    )
    def assemble(self, child, parent, qa_first, right_kind):
        component = self.battery(child)
        if qa_first:  # assembly takes a battery that passed QA
            self.attempt(lambda: record(component, E.QA_PASSED, actor=self.actor))
        fitting = list(
            Passport.objects.filter(
                pk__in=self.ids, kind=PARENT_KIND.get(component.kind) or ""
            ).values_list("pk", flat=True)
        )
        if right_kind and fitting:
            parent_id = fitting[parent % len(fitting)]
        else:  # anything: refused unless it happens to fit
            parent_id = self.battery(parent).pk
        self.attempt(
            lambda: services.passport_assemble(
                parent_id=parent_id, component_ids=[component.pk], actor=self.actor
            )
        )

    @rule(
        index=st.integers(0, 50),
        status=st.sampled_from(["Repurposed", "Reused", "Remanufactured"]),
        in_service_first=st.sampled_from([True, True, True, False]),
    )
    def second_life(self, index, status, in_service_first):
        """A second life (refused unless In Service or End of Life): the old
        passport leaves the counts, the new one enters them."""
        passport = self.battery(index)
        if in_service_first and passport.state == "manufactured":
            for kind in path_to(passport.kind, "in_service"):
                self.attempt(lambda kind=kind: record(passport, kind, actor=self.actor))
        data = {
            "status": status,
            "serial": f"SL-{next(_bulk_serials):06d}",
            "operator": "Second Life Storage",
        }
        if passport.kind == Kind.PACK and status != "Reused":
            data |= {"manufacturer_code": "SLS", "plant_code": "2"}

        def change():
            new, _, _ = secondlife.passport_second_life(
                passport_id=passport.pk, data=data, actor=self.actor
            )
            self.ids.append(new.pk)

        self.attempt(change)

    @rule(
        kind=st.sampled_from(Kind.values),
        custodian=st.sampled_from(CustodianKind.values),
        parent=st.none() | st.integers(0, 50),
    )
    def bulk_write(self, kind, custodian, parent):
        into = None if parent is None else self.battery(parent)
        self.ids.append(bulk_passport(kind, custodian, into).pk)

    def kept(self):
        return selectors.custody_mix()

    def recount(self):
        return selectors.custody_mix_recount()

    def observe(self, kept):
        # What the examples reached (the test checks they reached it).
        units = Passport.objects.filter(pk__in=self.ids)
        self.seen["assembled"] += units.filter(
            parent__isnull=False, state="assembled"
        ).count()
        self.seen["moved"] += (
            units.filter(parent__isnull=True).exclude(custodian_kind="manufacturer")
        ).count()
        self.seen["superseded"] += units.filter(state="superseded").count()


def test_custody_counts_equal_a_recount_after_any_sequence(make_user):
    seen = run_counts(CustodyMachine, actor=make_user("supervisor"), steps=12)
    # The examples went through the services' assembly and custody moves,
    # and gave batteries a second life.
    assert seen["assembled"] > 0
    assert seen["moved"] > 0
    assert seen["superseded"] > 0


class _Without:
    """A module as one caller sees it, less one function (a no-op): the
    other callers of that function keep it."""

    def __init__(self, module, name: str):
        self._module, self._name = module, name

    def __getattr__(self, attr: str):
        if attr == self._name:
            return lambda *args, **kwargs: None
        return getattr(self._module, attr)


@pytest.mark.parametrize(
    "caller",
    [
        "passports.services",  # register, assemble
        "passports.ledger",  # a custodian change
        "passports.secondlife",  # a passport superseded
    ],
)
def test_the_machine_fails_when_a_count_update_is_removed(
    make_user, monkeypatch, caller
):
    """The harness is not vacuous: without one of the services' updates
    (``rollups.custody_units_add`` as that caller sees it) the kept counts
    drift from the recount, and the invariant says so."""
    import importlib

    module = importlib.import_module(caller)
    monkeypatch.setattr(
        module, "rollups", _Without(module.rollups, "custody_units_add")
    )
    with pytest.raises(AssertionError):
        run_counts(
            CustodyMachine,
            actor=make_user("supervisor"),
            steps=12,
            phases=[Phase.generate],  # the first failure; no shrinking
        )


def test_custody_counts_of_a_fixed_plant(make_user):
    """Every path that moves a count, by hand: 4 packs, a module, 2 cells."""
    actor = make_user("supervisor")
    make_passport(Kind.PACK, "dispatched", actor=actor)  # logistics
    delivered = make_passport(Kind.PACK, "in_service", actor=actor)  # customer
    make_passport(Kind.PACK, "recycled", actor=actor)  # recycler
    make_passport(Kind.PACK, "warehoused", actor=actor)  # manufacturer
    module = make_passport(Kind.MODULE, "qa_passed", actor=actor)
    cells = [make_passport(Kind.CELL, "qa_passed", actor=actor) for _ in range(2)]
    assert selectors.custody_mix()["manufacturer"] == 4  # 1 pack, a module, 2 cells
    services.passport_assemble(
        parent_id=module.pk, component_ids=[c.pk for c in cells], actor=actor
    )
    services.passport_event_record(
        passport_id=delivered.pk,
        kind=E.CUSTODY_TRANSFERRED,
        data={"to": {"kind": "service", "name": "BPM Service"}},
        actor=actor,
    )
    expected = {
        "manufacturer": 2,  # the warehoused pack, the module (its cells are in it)
        "logistics": 1,
        "customer": 0,
        "service": 1,
        "recycler": 1,
    }
    assert selectors.custody_mix() == expected
    assert selectors.custody_mix_recount() == expected


def test_a_second_life_battery_is_counted_once_as_its_successor(make_user):
    """docs/metrics.md, "Custody Mix", its worked example by hand: 3 packs with
    a customer and one in the warehouse; one delivered pack is repurposed. The
    old passport (Superseded, its ledger's custodian still the customer) and
    its successor (held by the operator) are one battery: counted once, as the
    successor."""
    actor = make_user("supervisor")
    delivered = [make_passport(Kind.PACK, "in_service", actor=actor) for _ in range(3)]
    make_passport(Kind.PACK, "warehoused", actor=actor)
    before = {
        "manufacturer": 1,
        "logistics": 0,
        "customer": 3,
        "service": 0,
        "recycler": 0,
    }
    assert selectors.custody_mix() == before

    new, _, _ = secondlife.passport_second_life(
        passport_id=delivered[0].pk,
        data={
            "status": "Repurposed",
            "serial": "SL-CUSTODY-1",
            "operator": "Second Life Storage",
            "manufacturer_code": "SLS",
            "plant_code": "2",
        },
        actor=actor,
    )

    old = Passport.objects.get(pk=delivered[0].pk)
    assert old.state == "superseded"
    assert old.custodian_kind == "customer"  # its history keeps the custodian
    assert new.custodian_kind == "manufacturer"
    expected = {
        "manufacturer": 2,  # the warehoused pack + the successor
        "logistics": 0,
        "customer": 2,  # 3 - the superseded passport
        "service": 0,
        "recycler": 0,
    }
    assert selectors.custody_mix() == expected
    assert selectors.custody_mix_recount() == expected
    assert sum(expected.values()) == sum(before.values())  # 4 batteries, not 5
    # The rebuild (the data migrations') agrees, and so do bulk writes of a
    # Superseded row (benches): not counted.
    CustodyUnitCount.objects.all().delete()
    assert rollups.custody_units_rebuild() == expected
    assert rollups.custody_units_of([old, new]) == {"manufacturer": 1}
    # The successor moves on like any battery; the superseded one stays out.
    for kind in path_to(Kind.PACK, "in_service"):
        new = record(new, kind, actor=actor)
    assert new.custodian_kind == "customer"
    assert selectors.custody_mix() == expected | {"manufacturer": 1, "customer": 3}
    assert selectors.custody_mix() == selectors.custody_mix_recount()


def test_a_refused_move_leaves_the_counts(make_user):
    actor = make_user("supervisor")
    pack = make_passport(Kind.PACK, "warehoused", actor=actor)
    before = selectors.custody_mix()
    with pytest.raises(DomainError):
        # Delivered needs a dispatch first: refused, rolled back.
        services.passport_event_record(
            passport_id=pack.pk,
            kind=E.DELIVERED,
            data={"customer": "Ather"},
            actor=actor,
        )
    assert (
        selectors.custody_mix()
        == before
        == {
            "manufacturer": 1,
            "logistics": 0,
            "customer": 0,
            "service": 0,
            "recycler": 0,
        }
    )


def test_the_rebuild_recounts_what_was_lost(make_user):
    """What the data migration runs: counts from the passports, every kind a
    row, whatever the table held."""
    actor = make_user("supervisor")
    make_passport(Kind.PACK, "dispatched", actor=actor)
    make_passport(Kind.CELL, "qa_passed", actor=actor)
    CustodyUnitCount.objects.all().delete()
    CustodyUnitCount.objects.create(custodian_kind="recycler", units=99)
    assert rollups.custody_units_rebuild() == {
        "manufacturer": 1,
        "logistics": 1,
        "customer": 0,
        "service": 0,
        "recycler": 0,
    }
    assert CustodyUnitCount.objects.count() == len(CustodianKind.values)
    assert selectors.custody_mix() == selectors.custody_mix_recount()


def test_the_custody_mix_is_one_query_of_a_row_per_kind(
    make_user, django_assert_num_queries
):
    make_passport(Kind.PACK, "warehoused", actor=make_user("supervisor"))
    with django_assert_num_queries(1):
        mix = selectors.custody_mix()
    assert list(mix) == CustodianKind.values
