"""The dispatch desk's one "dispatchable" rule and the ledger hook it hangs on.

``lifecycle.MAY_SHIP`` states once which batteries may ship; ``may_ship`` reads
it on a snapshot and ``may_ship_filter`` turns it into the desk's query filter.
Here both are read against the database for every lifecycle state x hold x
desk job, and compared with the design's own words (warehoused or reserved,
not on hold, latest job ON), so a rule that drifts fails whichever side moved.
"""

from __future__ import annotations

import pytest

from bpmos.errors import IllegalTransition
from passports import ledger, lifecycle
from passports.dispatch import selectors as dispatch_selectors
from passports.dispatch import services as dispatch_services
from passports.models import DispatchJob, EventKind, JobState, Kind, Passport, State
from tests.factories_passports import footprint, make_passport, record

pytestmark = pytest.mark.django_db

# The design's statement (docs/dispatch.md), written here independently of
# ``lifecycle.MAY_SHIP``.
SHIPS_FROM = {State.WAREHOUSED, State.RESERVED}


def battery(state: str, *, on_hold: bool) -> Passport:
    """A battery brought to ``state`` by its ledger, then held when asked."""
    kind = Kind.MODULE if state == State.ASSEMBLED else Kind.PACK
    passport = make_passport(kind, state)
    if on_hold and state in (State.RECYCLED, State.SUPERSEDED):
        # A recycled or superseded battery takes no more events, so no hold:
        # the row is set by hand for the filter to meet this combination too.
        Passport.objects.filter(pk=passport.pk).update(on_hold=True, hold_reason="x")
    elif on_hold:
        record(passport, EventKind.HELD)
    return Passport.objects.get(pk=passport.pk)


@pytest.mark.parametrize("job_state", [None, JobState.ON, JobState.OFF])
@pytest.mark.parametrize("on_hold", [False, True])
@pytest.mark.parametrize("state", State.values)
def test_rule_and_query_filter_agree(state, on_hold, job_state):
    passport = battery(state, on_hold=on_hold)
    assert (passport.state, passport.on_hold) == (state, on_hold)
    DispatchJob.objects.filter(passport=passport).delete()
    job = None
    if job_state is not None:
        job = DispatchJob.objects.create(passport=passport, state=job_state)
    may_ship = state in SHIPS_FROM and not on_hold

    assert lifecycle.may_ship(ledger.snapshot_of(passport)) is may_ship
    filtered = Passport.objects.filter(lifecycle.may_ship_filter(), pk=passport.pk)
    assert filtered.exists() is may_ship

    dispatchable = may_ship and job_state == JobState.ON
    assert dispatch_selectors.is_dispatchable(passport, job) is dispatchable
    listed = dispatch_selectors.dispatchable_queryset().filter(pk=passport.pk)
    assert listed.exists() is dispatchable
    assert dispatch_selectors.product_counts().dispatchable == int(dispatchable)


def test_may_ship_filter_follows_a_path_prefix():
    live = make_passport("pack", State.WAREHOUSED)
    make_passport("pack", State.WAREHOUSED, on_hold=True)
    jobs = DispatchJob.objects.filter(lifecycle.may_ship_filter(prefix="passport__"))
    assert list(jobs.values_list("passport_id", flat=True)) == [live.pk]


# --- the ledger's hook --------------------------------------------------------------


def test_dispatch_reacts_through_the_ledgers_hook_list():
    registered = ledger.APPEND_HOOKS
    assert registered == [dispatch_services.on_ledger_append]
    # Registering again keeps one.
    ledger.on_append(dispatch_services.on_ledger_append)
    assert registered == [dispatch_services.on_ledger_append]


def test_a_failing_hook_rolls_the_append_back():
    pack = make_passport("pack", State.PROVISIONED)
    before = footprint(pack)

    def failing(appended: ledger.Appended) -> None:
        assert appended.event.kind == EventKind.WAREHOUSED
        assert (appended.before.state, appended.after.state) == (
            State.PROVISIONED,
            State.WAREHOUSED,
        )
        # The desk's job was opened by the hook before this one.
        assert DispatchJob.objects.filter(passport=appended.passport).count() == 1
        raise RuntimeError("listener failed")

    ledger.on_append(failing)
    try:
        with pytest.raises(RuntimeError, match="listener failed"):
            ledger.append(
                passport=pack.pk, kind=EventKind.WAREHOUSED, data={}, actor=None
            )
    finally:
        ledger.APPEND_HOOKS.remove(failing)
    assert footprint(pack) == before
    assert DispatchJob.objects.filter(passport=pack).count() == 0


def test_refused_append_reaches_no_hook():
    pack = make_passport("pack", State.WAREHOUSED, on_hold=True)
    before = footprint(pack)
    seen: list[ledger.Appended] = []
    ledger.on_append(seen.append)
    try:
        with pytest.raises(IllegalTransition, match="release the hold first"):
            ledger.append(
                passport=pack.pk,
                kind=EventKind.DISPATCHED,
                data={"carrier": "DHL"},
                actor=None,
            )
    finally:
        ledger.APPEND_HOOKS.remove(seen.append)
    assert seen == []
    assert footprint(pack) == before
