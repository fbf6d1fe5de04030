"""The runbook detail's custody and warranty context, read from the units'
distinct lots (``passports.selectors.unit_lots_among``) and, on PostgreSQL,
with the warranty buckets counted in SQL, always equals the unoptimised
answer: every unit passport matched against every lot of the runbook's work
orders, and the buckets counted in Python, whatever the passports went
through.

The custody counts' state machine (``tests/test_custody_counts.py``: every
recordable event, custody transfers to every kind, deliveries, assemblies,
second lives, bulk writes; refused moves included) runs over batteries of two
lots, one of them the runbook's; after every step the two answers are equal
(``tests/support_counts.py``). Blank lots come from the bulk writes.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.stateful import rule

from passports import selectors
from passports.models import Passport, State
from runbooks.models import WorkOrder
from tests.factories_passports import path_to, record, register
from tests.factories_tower import make_runbook, make_work_order
from tests.support_counts import run_counts
from tests.test_custody_counts import CustodyMachine

pytestmark = pytest.mark.django_db

RUNBOOK_LOTS = ("LOT-1", "LOT-3")  # LOT-3: work orders, no batteries


def _runbook_lots():
    return WorkOrder.objects.filter(runbook__slug="manufacturing").values("lot_no")


class ContextMachine(CustodyMachine):
    @rule(kind=st.sampled_from(["pack", "module", "cell"]))
    def register_elsewhere(self, kind):
        """A battery of a lot no work order of the runbook names."""
        self.ids.append(register(kind, actor=self.actor, lot="LOT-2").pk)

    @rule(index=st.integers(0, 50))
    def deliver(self, index):
        """A battery brought all the way to its customer (delivered: its
        warranty starts), refused where its state does not allow it."""
        passport = self.battery(index)
        if passport.state == State.MANUFACTURED:
            for kind in path_to(passport.kind, State.IN_SERVICE):
                self.attempt(lambda kind=kind: record(passport, kind, actor=self.actor))

    def kept(self):
        """What the detail reads (the units' lots; SQL buckets on PostgreSQL)."""
        self.now = timezone.now()
        lots = _runbook_lots()
        return (
            selectors.custody_context(lots=lots),
            selectors.warranty_context(lots=lots, now=self.now),
        )

    def recount(self):
        """Every unit against every lot of the runbook, counted in Python."""
        lots = _runbook_lots()
        units = (
            Passport.objects.filter(lot__in=lots, parent__isnull=True)
            .exclude(lot="")
            .exclude(state=State.SUPERSEDED)
            .annotate(delivered_at=selectors._delivered_at())
            .order_by()
        )
        return (
            selectors.custody_context(lots=list(RUNBOOK_LOTS)),
            selectors._warranty_counted_here(units, self.now),
        )

    def observe(self, kept):
        super().observe(kept)
        custody, warranty = kept
        if custody is not None:
            self.seen["custody"] += 1
            self.seen["away"] += custody.passports - custody.mix[0].count
        if warranty is not None:
            self.seen["delivered"] += warranty.passports - warranty.not_delivered


def test_the_context_equals_matching_every_unit_after_any_sequence(make_user):
    boss = make_user("supervisor")
    runbook = make_runbook()
    for lot in RUNBOOK_LOTS:
        make_work_order(runbook, boss, lot_no=lot)
    seen = run_counts(ContextMachine, actor=boss, steps=12)
    # The examples moved batteries away from the manufacturer, delivered
    # some, assembled and superseded others.
    assert seen["custody"] > 0
    assert seen["away"] > 0
    assert seen["delivered"] > 0
    assert seen["assembled"] > 0
    assert seen["superseded"] > 0


def test_the_machine_fails_when_the_lots_are_not_matched(make_user, monkeypatch):
    """The invariant is not vacuous: with the units' lots taken whatever the
    runbook's lots are (the match left out), it fails."""
    boss = make_user("supervisor")
    make_work_order(make_runbook(), boss, lot_no="LOT-1")
    every_lot = Passport.objects.exclude(lot="").values("lot")
    monkeypatch.setattr(selectors, "unit_lots_among", lambda lots: every_lot.order_by())
    with pytest.raises(AssertionError):
        run_counts(
            ContextMachine,
            actor=boss,
            steps=12,
            phases=[Phase.generate],  # the first failure; no shrinking
        )
