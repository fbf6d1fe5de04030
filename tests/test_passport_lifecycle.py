"""The lifecycle and custody rules, through the services that apply them.

The table below is the rule book written out by hand (docs/design.md §6,
docs/passports.md, passports/lifecycle.py's docstring): for each state, which
events may follow. ``test_every_event_in_every_state`` brings a battery of each
kind to each state (on hold and not) through the services, then tries every
event kind in a savepoint: a legal one must extend the ledger by one event whose
projection equals ``lifecycle.replay`` of the ledger, an illegal one must raise
``IllegalTransition`` (409) and leave the ledger, the passport row, the audit
log, the outbox and the dispatch jobs exactly as they were.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from bpmos.errors import IllegalTransition, InvalidInput, NotFound
from passports import ledger, lifecycle, services
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
    State,
)
from tests.factories_passports import (
    EVENT_DATA,
    footprint,
    make_passport,
    reachable,
    record,
    register,
)

E, S, C = EventKind, State, CustodianKind
pytestmark = pytest.mark.django_db

# A second life (passports.secondlife) supersedes the passport.
SECOND_LIFE = {E.REPURPOSED, E.REUSED, E.REMANUFACTURED}
# Events that change no state and may come in any state but recycled and
# superseded.
NEUTRAL = {E.HELD, E.TELEMETRY_SUMMARISED, E.MOVED_TO_PAST, E.REACTIVATED}
# state -> (legal for every kind, legal for packs only, for cells/modules only).
# end_of_life is reached from in service, so the customer holds it; the
# custody_transferred tried everywhere hands the battery to a recycler.
LEGAL: dict[str, tuple[set, set, set]] = {
    S.MANUFACTURED: ({E.QA_PASSED, E.QA_FAILED, E.END_OF_LIFE}, set(), set()),
    S.QA_PASSED: (
        {E.QA_PASSED, E.QA_FAILED, E.END_OF_LIFE},  # a further test may pass
        {E.PROVISIONED},
        {E.ASSEMBLED, E.WAREHOUSED},
    ),
    S.QA_FAILED: ({E.QA_PASSED, E.END_OF_LIFE}, set(), set()),
    S.PROVISIONED: (
        {E.QA_FAILED, E.PROVISIONED, E.WAREHOUSED, E.END_OF_LIFE},
        set(),
        set(),
    ),
    S.ASSEMBLED: ({E.END_OF_LIFE}, set(), set()),
    S.WAREHOUSED: (
        {E.QA_FAILED, E.RESERVED, E.DISPATCHED, E.END_OF_LIFE},
        set(),
        {E.ASSEMBLED},
    ),
    S.RESERVED: ({E.RESERVATION_RELEASED, E.DISPATCHED}, set(), set()),
    S.DISPATCHED: ({E.DELIVERED}, set(), set()),
    S.IN_SERVICE: ({E.SERVICED, E.END_OF_LIFE, *SECOND_LIFE}, set(), set()),
    S.END_OF_LIFE: ({E.CUSTODY_TRANSFERRED, *SECOND_LIFE}, set(), set()),
    S.RECYCLED: (set(), set(), set()),
    S.SUPERSEDED: (set(), set(), set()),
}
# Moves a hold blocks until it is released.
BLOCKED_BY_HOLD = {E.RESERVED, E.DISPATCHED, E.ASSEMBLED, *SECOND_LIFE}
# Where a legal event leads (events not listed keep the state).
LEADS_TO = {
    E.QA_PASSED: S.QA_PASSED,
    E.QA_FAILED: S.QA_FAILED,
    E.PROVISIONED: S.PROVISIONED,
    E.ASSEMBLED: S.ASSEMBLED,
    E.WAREHOUSED: S.WAREHOUSED,
    E.RESERVED: S.RESERVED,
    E.RESERVATION_RELEASED: S.WAREHOUSED,
    E.DISPATCHED: S.DISPATCHED,
    E.DELIVERED: S.IN_SERVICE,
    E.END_OF_LIFE: S.END_OF_LIFE,
    E.RECYCLED: S.RECYCLED,
    **dict.fromkeys(SECOND_LIFE, S.SUPERSEDED),
}
CUSTODY_AFTER = {
    E.DISPATCHED: (C.LOGISTICS, "BlueDart"),
    E.DELIVERED: (C.CUSTOMER, "Ather Energy"),
    E.CUSTODY_TRANSFERRED: (C.RECYCLER, "GreenCycle"),
}


def legal_events(kind: str, state: str, on_hold: bool) -> set[str]:
    common, packs, others = LEGAL[state]
    legal = common | (packs if kind == Kind.PACK else others)
    if state not in (S.RECYCLED, S.SUPERSEDED):
        legal |= NEUTRAL
    if on_hold:
        legal = (legal - BLOCKED_BY_HOLD - {E.HELD}) | {E.RELEASED}
    return legal


def cases():
    for kind in Kind.values:
        for state in reachable(kind):
            for on_hold in (False, True):
                if not (on_hold and state in (S.RECYCLED, S.SUPERSEDED)):
                    yield pytest.param(
                        kind, state, on_hold, id=f"{kind}-{state}-{'held' * on_hold}"
                    )


def replayed(passport: Passport) -> lifecycle.Snapshot:
    events = PassportEvent.objects.filter(passport=passport).order_by("version")
    return lifecycle.replay(passport.kind, ((e.kind, e.data) for e in events))


def attempt(passport: Passport, kind: str, parent: Passport | None):
    """Append ``kind`` through its service in a savepoint that is rolled back;
    returns (the passport after it, its replayed ledger) or the refusal."""
    with transaction.atomic():
        try:
            if kind == E.ASSEMBLED and passport.parent_id is None and parent:
                services.passport_assemble(
                    parent_id=parent.pk, component_ids=[passport.pk], actor=None
                )
            elif kind == E.ASSEMBLED:  # a pack, or already in a parent (409
                # already_assembled from the service, tested in genealogy)
                ledger.append(
                    passport=passport.pk, kind=kind, data={"parent": "none"}, actor=None
                )
            elif kind in (E.MANUFACTURED, E.REGISTERED_FROM):
                ledger.append(
                    passport=passport.pk,
                    kind=kind,
                    data={"manufacturer": "X"},
                    actor=None,
                )
            else:
                record(passport, kind)
        except IllegalTransition as refusal:
            return refusal
        after = Passport.objects.get(pk=passport.pk)
        outcome = (after, replayed(after), ledger.verify(passport_ids=[after.pk]))
        transaction.set_rollback(True)
    return outcome


@pytest.mark.parametrize(("kind", "state", "on_hold"), cases())
def test_every_event_in_every_state(kind, state, on_hold):
    passport = make_passport(kind, state, on_hold=on_hold)
    assert (passport.state, passport.on_hold) == (state, on_hold)
    parent = None
    if kind != Kind.PACK:
        parent = register({Kind.CELL: Kind.MODULE, Kind.MODULE: Kind.PACK}[kind])
    before = footprint(passport)
    legal = legal_events(kind, state, on_hold)
    wrong = []
    for event_kind in E.values:
        outcome = attempt(passport, event_kind, parent)
        if isinstance(outcome, IllegalTransition):
            if event_kind in legal:
                wrong.append(f"{event_kind}: refused ({outcome.code}: {outcome})")
            elif outcome.status_code != 409:
                wrong.append(f"{event_kind}: status {outcome.status_code}")
            elif footprint(passport) != before:
                wrong.append(f"{event_kind}: refused but something was written")
            continue
        after, replay, verified = outcome
        if event_kind not in legal:
            wrong.append(f"{event_kind}: accepted, now {after.state}")
            continue
        expected_state = LEADS_TO.get(event_kind, state)
        expected_hold = {E.HELD: True, E.RELEASED: False}.get(event_kind, on_hold)
        custodian = CUSTODY_AFTER.get(
            event_kind, (passport.custodian_kind, passport.custodian_name)
        )
        got = (after.state, after.on_hold, (after.custodian_kind, after.custodian_name))
        if got != (expected_state, expected_hold, custodian):
            wrong.append(f"{event_kind}: led to {got}")
        if after.version != passport.version + 1:
            wrong.append(f"{event_kind}: version {after.version}")
        if replay != ledger.snapshot_of(after) or not verified.ok:
            wrong.append(f"{event_kind}: projection {after} != replay {replay}")
    assert wrong == []
    assert footprint(passport) == before


def test_table_covers_every_event_kind_the_fold_knows():
    # A new event kind must be added to the rule book above, not slip through.
    assert set(lifecycle._MOVES) | {E.MANUFACTURED, E.REGISTERED_FROM} == set(E.values)
    assert set(LEGAL) == set(S.values)


# --- the refusals the issue names -----------------------------------------------


def refused(call, passport, code="illegal_transition") -> IllegalTransition:
    before = footprint(passport)
    with pytest.raises(IllegalTransition) as caught:
        call()
    assert (caught.value.code, caught.value.status_code) == (code, 409)
    assert footprint(passport) == before
    return caught.value


def dispatch_event(passport):
    return lambda: services.passport_event_record(
        passport_id=passport.pk, kind=E.DISPATCHED, data={"carrier": "DHL"}, actor=None
    )


def dispatch_by_desk(passport):
    return lambda: dispatch.product_move_to_past(
        passport_id=passport.pk, reason="dispatched", carrier="DHL", actor=None
    )


def test_pack_that_failed_qa_is_not_dispatched(make_user):
    pack = make_passport("pack", "warehoused")
    pack = record(pack, E.QA_FAILED)
    refusal = refused(dispatch_event(pack), pack)
    assert refusal.details == {
        "state": "qa_failed",
        "event": "dispatched",
        "onHold": False,
    }
    refused(dispatch_by_desk(pack), pack)
    assert DispatchJob.objects.get(passport=pack).state == JobState.ON


def test_pack_on_hold_is_not_dispatched():
    pack = make_passport("pack", "reserved", on_hold=True)
    refusal = refused(dispatch_event(pack), pack, code="on_hold")
    assert str(refusal) == (
        "On hold (Swelling seen at inspection); release the hold first."
    )
    refused(dispatch_by_desk(pack), pack, code="on_hold")
    assert not dispatch_selectors.dispatchable_queryset().filter(pk=pack.pk).exists()


def test_pack_dispatches_after_retest_and_release():
    pack = make_passport("pack", "warehoused", on_hold=True)
    for kind in (E.QA_FAILED, E.QA_PASSED, E.PROVISIONED, E.WAREHOUSED, E.RELEASED):
        pack = record(pack, kind)
    assert list(dispatch_selectors.dispatchable_queryset()) == [pack]
    pack, job = dispatch.product_move_to_past(
        passport_id=pack.pk, carrier="DHL", actor=None
    )
    assert (pack.state, pack.custodian_kind, pack.custodian_name) == (
        S.DISPATCHED,
        C.LOGISTICS,
        "DHL",
    )
    assert (job.state, job.reason) == (JobState.OFF, "dispatched")
    assert list(dispatch_selectors.dispatchable_queryset()) == []


@pytest.mark.parametrize(
    "state", [S.MANUFACTURED, S.QA_PASSED, S.PROVISIONED, S.WAREHOUSED, S.RESERVED]
)
def test_what_was_never_dispatched_is_not_delivered(state):
    pack = make_passport("pack", state)
    deliver = lambda: services.passport_event_record(  # noqa: E731
        passport_id=pack.pk, kind=E.DELIVERED, data={"customer": "Ola"}, actor=None
    )
    refused(deliver, pack)


def test_what_is_in_service_is_not_recycled_without_end_of_life():
    pack = make_passport("pack", "in_service")
    recycle = lambda: services.passport_event_record(  # noqa: E731
        passport_id=pack.pk, kind=E.RECYCLED, data={}, actor=None
    )
    refused(recycle, pack)
    to_recycler = lambda: services.passport_event_record(  # noqa: E731
        passport_id=pack.pk,
        kind=E.CUSTODY_TRANSFERRED,
        data={"to": {"kind": "recycler", "name": "GreenCycle"}},
        actor=None,
    )
    refusal = refused(to_recycler, pack, code="custody_violation")
    assert str(refusal) == "Only a battery at end of life goes to a recycler."
    pack = record(pack, E.END_OF_LIFE)
    refusal = refused(recycle, pack, code="custody_violation")
    assert str(refusal) == "Transfer custody to a recycler before recycling."
    to_recycler()
    recycle()
    pack.refresh_from_db()
    assert (pack.state, pack.custodian_kind) == (S.RECYCLED, C.RECYCLER)


def test_provisioning_a_cell_or_module_is_refused():
    for kind in ("cell", "module"):
        battery = make_passport(kind, "qa_passed")
        provision = lambda b=battery: ledger.append(  # noqa: E731
            passport=b.pk,
            kind=E.PROVISIONED,
            data=EVENT_DATA[E.PROVISIONED],
            actor=None,
        )
        assert str(refused(provision, battery)) == "Only packs have a BMS."


def test_unprovisioned_pack_is_not_warehoused():
    pack = make_passport("pack", "qa_passed")
    warehouse = lambda: services.passport_event_record(  # noqa: E731
        passport_id=pack.pk, kind=E.WAREHOUSED, data={}, actor=None
    )
    refusal = refused(warehouse, pack, code="not_provisioned")
    assert (
        str(refusal) == "A pack is provisioned (BMS written) before it is warehoused."
    )
    assert not DispatchJob.objects.filter(passport=pack).exists()


def test_manufactured_only_once_and_only_first():
    pack = register("pack")
    again = lambda: ledger.append(  # noqa: E731
        passport=pack.pk,
        kind=E.MANUFACTURED,
        data={"manufacturer": "Other"},
        actor=None,
    )
    assert str(refused(again, pack)) == "Already manufactured."
    with pytest.raises(IllegalTransition, match="The first event must be"):
        lifecycle.apply(lifecycle.Snapshot(kind="pack"), E.QA_PASSED, {})


def test_hold_twice_and_release_without_hold_are_refused():
    pack = make_passport("pack", "warehoused")
    release = lambda: record(pack, E.RELEASED)  # noqa: E731
    refused(release, pack, code="not_on_hold")
    pack = record(pack, E.HELD)
    hold = lambda: record(pack, E.HELD)  # noqa: E731
    refused(hold, pack, code="already_on_hold")


# --- custody ----------------------------------------------------------------------

# The chain (docs/passports.md): manufacturer -> logistics -> customer (-> service ->
# recycler). Dispatch and delivery carry the first two moves; transfers may
# only hand between carriers, to and from service, and to a recycler at end of
# life.
TRANSFERS_ALLOWED = {
    (C.LOGISTICS, C.LOGISTICS),
    (C.CUSTOMER, C.SERVICE),
    (C.SERVICE, C.CUSTOMER),
    (C.CUSTOMER, C.RECYCLER),
    (C.SERVICE, C.RECYCLER),
    (C.MANUFACTURER, C.RECYCLER),
}


def holder(custodian: str, *, end_of_life: bool) -> Passport:
    """A pack held by ``custodian`` (at end of life when asked and possible)."""
    if custodian == C.MANUFACTURER:
        pack = make_passport("pack", "warehoused")
        return record(pack, E.END_OF_LIFE) if end_of_life else pack
    if custodian == C.LOGISTICS:
        return make_passport("pack", "dispatched")
    pack = make_passport("pack", "in_service")
    if custodian == C.SERVICE:
        pack = record(
            pack, E.CUSTODY_TRANSFERRED, to={"kind": "service", "name": "Fixit"}
        )
    if end_of_life:
        pack = record(pack, E.END_OF_LIFE)
    if custodian == C.RECYCLER:
        pack = record(pack, E.CUSTODY_TRANSFERRED)
    return pack


# Who can hold a battery, live or at end of life (a recycler only ever holds
# batteries at end of life; a battery in transit is not declared end of life).
HOLDERS = [
    pytest.param(source, end_of_life, id=f"{source}-{'eol' if end_of_life else 'live'}")
    for source in C.values
    for end_of_life in (False, True)
    if (source, end_of_life) not in {(C.RECYCLER, False), (C.LOGISTICS, True)}
]


@pytest.mark.parametrize(("source", "end_of_life"), HOLDERS)
def test_custody_moves_only_along_the_chain(source, end_of_life):
    pack = holder(source, end_of_life=end_of_life)
    assert pack.custodian_kind == source
    for target in C.values:
        legal = (source, target) in TRANSFERS_ALLOWED and (
            target != C.RECYCLER or end_of_life
        )
        transfer = lambda t=target: services.passport_event_record(  # noqa: E731
            passport_id=pack.pk,
            kind=E.CUSTODY_TRANSFERRED,
            data={"to": {"kind": t, "name": f"New {t}"}},
            actor=None,
        )
        if legal:
            with transaction.atomic():
                transfer()
                after = Passport.objects.get(pk=pack.pk)
                assert (after.custodian_kind, after.custodian_name) == (
                    target,
                    f"New {target}",
                )
                transaction.set_rollback(True)
        else:
            refused(transfer, pack, code="custody_violation")


def test_only_the_carrier_delivers_and_only_the_manufacturer_dispatches():
    pack = holder(C.SERVICE, end_of_life=False)
    # A serviced pack that somehow reached a dispatchable state does not exist:
    # the state machine already refuses; the custody check backs it up.
    snapshot = ledger.snapshot_of(pack)
    shipped = lifecycle.Snapshot(**{**snapshot.__dict__, "state": S.WAREHOUSED})
    with pytest.raises(IllegalTransition) as caught:
        lifecycle.apply(shipped, E.DISPATCHED, {"carrier": "DHL"})
    assert caught.value.code == "custody_violation"
    in_transit = lifecycle.Snapshot(**{**snapshot.__dict__, "state": S.DISPATCHED})
    with pytest.raises(IllegalTransition) as caught:
        lifecycle.apply(in_transit, E.DELIVERED, {"customer": "Ola"})
    assert caught.value.code == "custody_violation"


# --- the dispatch desk (live / past) ------------------------------------------------


def test_warehousing_opens_a_live_job_and_dispatching_closes_it():
    pack = make_passport("pack", "provisioned")
    assert not DispatchJob.objects.filter(passport=pack).exists()
    pack = record(pack, E.WAREHOUSED)
    job = DispatchJob.objects.get(passport=pack)
    assert (job.state, job.reason) == (JobState.ON, "warehoused")
    assert dispatch_selectors.is_dispatchable(pack, job) is True
    pack = record(pack, E.DISPATCHED)
    job.refresh_from_db()
    assert (job.state, job.reason) == (JobState.OFF, "dispatched")


def test_move_to_past_without_dispatch_keeps_the_battery_in_the_warehouse():
    pack = make_passport("pack", "warehoused")
    pack, job = dispatch.product_move_to_past(
        passport_id=pack.pk, reason="Damaged box", actor=None
    )
    assert (pack.state, job.state, job.reason) == (
        S.WAREHOUSED,
        JobState.OFF,
        "Damaged box",
    )
    last = PassportEvent.objects.filter(passport=pack).order_by("-version").first()
    assert (last.kind, last.data) == (
        E.MOVED_TO_PAST,
        {"jobId": str(job.pk), "reason": "Damaged box"},
    )
    assert list(dispatch_selectors.dispatchable_queryset()) == []
    refused(
        lambda: dispatch.product_move_to_past(
            passport_id=pack.pk, reason="again", actor=None
        ),
        pack,
        code="already_past",
    )
    pack, job = dispatch.product_reactivate(
        passport_id=pack.pk, job_id=job.pk, actor=None
    )
    assert (job.state, job.reason) == (JobState.ON, "reactivated")
    assert list(dispatch_selectors.dispatchable_queryset()) == [pack]
    refused(
        lambda: dispatch.product_reactivate(passport_id=pack.pk, actor=None),
        pack,
        code="already_live",
    )


def test_reactivation_needs_a_battery_that_may_still_ship():
    pack = make_passport("pack", "warehoused")
    dispatch.product_move_to_past(
        passport_id=pack.pk, reason="Recall check", actor=None
    )
    pack = record(pack, E.QA_FAILED)
    refused(lambda: dispatch.product_reactivate(passport_id=pack.pk, actor=None), pack)


def test_desk_refuses_stale_jobs_and_batteries_without_one():
    pack = make_passport("pack", "warehoused")
    job = DispatchJob.objects.get(passport=pack)
    before = footprint(pack)
    # A job id that is none of this product's jobs: 404 (docs/dispatch.md).
    with pytest.raises(NotFound) as caught:
        dispatch.product_move_to_past(
            passport_id=pack.pk, job_id=job.pk + 1000, actor=None
        )
    assert caught.value.code == "job_not_found"
    assert footprint(pack) == before
    with pytest.raises(InvalidInput):
        dispatch.product_move_to_past(passport_id=pack.pk, reason="  ", actor=None)
    assert footprint(pack) == before
    fresh = make_passport("pack", "qa_passed")
    before = footprint(fresh)
    with pytest.raises(NotFound) as caught:
        dispatch.product_move_to_past(passport_id=fresh.pk, actor=None)
    assert caught.value.code == "job_not_found"
    assert footprint(fresh) == before


def test_qa_events_keep_their_measured_values_and_tests_may_pass_in_turn():
    cell = make_passport("cell", "manufactured")
    for test, values in (("Capacity", {"capacity_ah": 5.02}), ("IR", {"ir_mohm": 1})):
        services.passport_event_record(
            passport_id=cell.pk,
            kind=E.QA_PASSED,
            data={"test": test, "values": values},
            actor=None,
        )
    cell.refresh_from_db()
    assert cell.state == S.QA_PASSED
    kinds_and_data = [(e.kind, e.data) for e in cell.events.order_by("version")]
    assert kinds_and_data[1:] == [
        (E.QA_PASSED, {"test": "Capacity", "values": {"capacity_ah": 5.02}}),
        (E.QA_PASSED, {"test": "IR", "values": {"ir_mohm": 1}}),
    ]
    assert ledger.verify(passport_ids=[cell.pk]).ok


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ([1, 2], "data.values"),
        ({"nested": {"a": 1}}, "data.values.nested"),
        ({"flag": True}, "data.values.flag"),
        ({"x" * 65: 1}, "data.values"),
        ({"big": 1e300}, "data.values.big"),
        ({f"v{i}": i for i in range(51)}, "data.values"),
    ],
)
def test_bad_qa_values_are_refused_and_change_nothing(values, field):
    cell = make_passport("cell", "manufactured")
    record = lambda: services.passport_event_record(  # noqa: E731
        passport_id=cell.pk,
        kind=E.QA_FAILED,
        data={"reason": "leak", "values": values},
        actor=None,
    )
    with pytest.raises(InvalidInput) as refusal:
        record()
    assert list(refusal.value.details) == [field]
    assert cell.events.count() == 1
