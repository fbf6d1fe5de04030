"""Inventory rules at the service layer: receive, reserve, release, consume,
issue, hold, release the hold, block, move. Every refusal changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bpmos.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from inventory import selectors, services
from inventory.models import (
    ItemStatus,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockMovement,
)
from runbooks import services as runbook_services
from tests.factories_inventory import (
    item_state,
    make_categories,
    make_warehouse,
    receive,
    row_counts,
)
from tests.factories_production import make_runbook, make_work_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(make_user):
    return make_user("supervisor", username="sam")


@pytest.fixture
def plant(db):
    return make_categories(), make_warehouse()


@pytest.fixture
def lot(plant, boss):
    """A Good lot of 10 kg of adhesive at A-R1."""
    return receive(
        boss,
        "RM-ADH-001",
        sku="RM-ADHESIVE",
        category="raw-materials",
        location="A-R1",
        quantity=10,
        unit="kg",
        batch_ref="LOT-ADH-7",
    )


def reserve(actor, code="RM-ADH-001", quantity=1, **purpose):
    purpose = purpose or {"dispatch_ref": "DSP-0001"}
    return services.item_reserve(
        item_code=code, quantity=quantity, actor=actor, **purpose
    )


def last_audit():
    return AuditRecord.objects.order_by("-id").first()


def event_names(since=0):
    return list(
        OutboxEvent.objects.filter(pk__gt=since)
        .order_by("pk")
        .values_list("name", flat=True)
    )


# --- receive -----------------------------------------------------------------------


def test_receive_creates_a_good_item_with_its_receipt_audited_and_published(
    plant, boss
):
    when = timezone.now() - timedelta(days=2)
    item = receive(boss, "CELL-2026-1001", received_at=when)
    assert (item.status, item.quantity, item.location.code, item.received_at) == (
        ItemStatus.GOOD,
        1,
        "A-R2",
        when,
    )
    movement = StockMovement.objects.get(item=item)
    assert (movement.kind, movement.from_location, movement.to_location.code) == (
        MovementKind.RECEIPT,
        None,
        "A-R2",
    )
    record = last_audit()
    assert (record.action, record.target_id, record.actor_username) == (
        "item.received",
        str(item.pk),
        "sam",
    )
    assert record.after == {
        "status": "good",
        "hold_reason": "",
        "quantity": 1,
        "location": "A-R2",
        "sku": "CELL-LFP-21700",
        "category": "cells",
        "batch_ref": "BATCH-INB-102",
    }
    assert event_names() == ["item.received"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"quantity": 2}, "quantity"),  # cells are serialised
        ({"quantity": 0, "category": "raw-materials"}, "quantity"),
        ({"category": "nope"}, "category"),
        ({"location": "Q"}, "locationId"),  # inactive
        ({"location": "ZZ"}, "locationId"),
        ({"unit": "furlong"}, "unit"),
        ({"sku": " "}, "sku"),
    ],
)
def test_receive_refuses_bad_input_and_creates_nothing(plant, boss, kwargs, field):
    before = row_counts()
    with pytest.raises(InvalidInput) as caught:
        receive(boss, "CELL-X", **kwargs)
    assert caught.value.code == "validation_error"
    assert field in caught.value.details
    assert row_counts() == before


def test_receive_refuses_a_duplicate_id(plant, boss):
    receive(boss, "CELL-1")
    before = row_counts()
    with pytest.raises(InvalidInput) as caught:
        receive(boss, "CELL-1")
    assert caught.value.details == {"id": ["Item CELL-1 already exists."]}
    assert row_counts() == before


# --- reserve -----------------------------------------------------------------------


def test_reserve_up_to_the_available_quantity(lot, make_user):
    planner = make_user("planner")
    first = reserve(planner, quantity=6)
    second = reserve(planner, quantity=4, dispatch_ref="DSP-0002")
    assert (first.status, first.quantity, second.quantity) == ("active", 6, 4)
    assert selectors.item_get(item_code=lot.code).available == 0
    record = last_audit()
    assert record.action == "reservation.created"
    assert record.after == {
        "item": "RM-ADH-001",
        "quantity": 4,
        "work_order_id": None,
        "dispatch_ref": "DSP-0002",
        "status": "active",
    }
    assert event_names()[-2:] == ["reservation.created", "reservation.created"]


def test_reserve_beyond_available_is_409_and_changes_nothing(lot, boss):
    reserve(boss, quantity=7)
    before = row_counts()
    with pytest.raises(Conflict) as caught:
        reserve(boss, quantity=4)
    assert caught.value.code == "insufficient_stock"
    assert caught.value.status_code == 409
    assert caught.value.details == {"requested": 4, "available": 3}
    assert (
        str(caught.value) == "Only 3 kg of RM-ADH-001 available; 4 cannot be reserved."
    )
    assert row_counts() == before


@pytest.mark.parametrize("act", ["hold", "block"])
def test_held_or_blocked_stock_cannot_be_reserved(lot, boss, act):
    getattr(services, f"item_{act}")(
        item_code=lot.code, reason="Supplier CoA missing", actor=boss
    )
    before = row_counts()
    with pytest.raises(Conflict) as caught:
        reserve(boss, quantity=1)
    assert caught.value.code == "stock_not_available"
    assert "Supplier CoA missing" in caught.value.message
    assert row_counts() == before


def test_reserve_against_a_work_order(lot, boss):
    make_runbook()
    work_order = make_work_order(boss)
    reservation = reserve(boss, quantity=2, work_order_id=work_order.pk)
    assert (reservation.work_order_id, reservation.dispatch_ref) == (work_order.pk, "")
    assert reservation.purpose == f"WO-{work_order.pk}"


def test_reserve_against_a_closed_work_order_is_409(lot, boss):
    make_runbook()
    work_order = make_work_order(boss)
    runbook_services.work_order_cancel(
        work_order_id=work_order.pk, reason="Customer cancelled", actor=boss
    )
    before = row_counts()
    with pytest.raises(Conflict) as caught:
        reserve(boss, quantity=1, work_order_id=work_order.pk)
    assert caught.value.code == "work_order_closed"
    assert row_counts() == before


@pytest.mark.parametrize(
    ("quantity", "purpose", "field"),
    [
        (0, {"dispatch_ref": "DSP-1"}, "quantity"),
        (-3, {"dispatch_ref": "DSP-1"}, "quantity"),
        (1, {}, "workOrderId"),  # neither
        (1, {"dispatch_ref": "  "}, "workOrderId"),
        (1, {"dispatch_ref": "DSP-1", "work_order_id": 1}, "workOrderId"),  # both
        (1, {"work_order_id": 987654}, "workOrderId"),  # unknown
        (1, {"dispatch_ref": "D" * 65}, "dispatchRef"),
    ],
)
def test_reserve_refuses_bad_input_and_changes_nothing(
    lot, boss, quantity, purpose, field
):
    before = row_counts()
    with pytest.raises(InvalidInput) as caught:
        services.item_reserve(
            item_code=lot.code, quantity=quantity, actor=boss, **purpose
        )
    assert caught.value.status_code == 400
    assert field in caught.value.details
    assert row_counts() == before


def test_reserve_unknown_item_is_404(plant, boss):
    with pytest.raises(NotFound):
        reserve(boss, code="NOPE-1")


# --- release and consume -----------------------------------------------------------


def test_release_makes_the_quantity_available_again(lot, boss):
    reservation = reserve(boss, quantity=10)
    released = services.reservation_release(
        reservation_id=reservation.pk, reason="Plan changed", actor=boss
    )
    assert (released.status, released.closed_by, released.closed_at is not None) == (
        ReservationStatus.RELEASED,
        boss,
        True,
    )
    assert selectors.item_get(item_code=lot.code).available == 10
    record = last_audit()
    assert (record.action, record.before["status"], record.after["status"]) == (
        "reservation.released",
        "active",
        "released",
    )
    assert record.after["reason"] == "Plan changed"
    assert event_names()[-1] == "reservation.released"


@pytest.mark.parametrize("first", ["release", "consume"])
def test_a_closed_reservation_cannot_be_released_or_consumed(lot, boss, first):
    reservation = reserve(boss, quantity=2)
    if first == "release":
        services.reservation_release(reservation_id=reservation.pk, actor=boss)
    else:
        services.reservation_consume(reservation_id=reservation.pk, actor=boss)
    before = row_counts()
    for again in (services.reservation_release, services.reservation_consume):
        with pytest.raises(IllegalTransition):
            again(reservation_id=reservation.pk, actor=boss)
    assert row_counts() == before


def test_consume_issues_the_reserved_quantity(lot, boss):
    reservation = reserve(boss, quantity=4)
    services.reservation_consume(reservation_id=reservation.pk, actor=boss)
    lot.refresh_from_db()
    reservation.refresh_from_db()
    assert (lot.quantity, reservation.status) == (6, ReservationStatus.CONSUMED)
    movement = StockMovement.objects.filter(kind=MovementKind.ISSUE).get()
    assert (movement.quantity, movement.reservation, movement.from_location.code) == (
        4,
        reservation,
        "A-R1",
    )
    assert movement.reason == "Consumed by DSP-0001"
    record = last_audit()
    assert record.action == "reservation.consumed"
    assert (record.before["item_quantity"], record.after["item_quantity"]) == (10, 6)
    assert selectors.item_get(item_code=lot.code).available == 6


def test_consume_is_refused_while_the_item_is_held(lot, boss):
    reservation = reserve(boss, quantity=4)
    services.item_hold(item_code=lot.code, reason="Viscosity check", actor=boss)
    before, state = row_counts(), item_state(lot.code)
    with pytest.raises(Conflict) as caught:
        services.reservation_consume(reservation_id=reservation.pk, actor=boss)
    assert caught.value.code == "stock_not_available"
    assert (row_counts(), item_state(lot.code)) == (before, state)
    assert Reservation.objects.get(pk=reservation.pk).status == "active"


def test_unknown_reservation_is_404(boss):
    with pytest.raises(NotFound):
        services.reservation_release(reservation_id=987654, actor=boss)


# --- issue -------------------------------------------------------------------------


def test_issue_takes_only_unreserved_stock(lot, boss):
    reserve(boss, quantity=7)
    before = row_counts()
    with pytest.raises(Conflict) as caught:
        services.item_issue(item_code=lot.code, quantity=4, actor=boss)
    assert caught.value.code == "insufficient_stock"
    assert row_counts() == before
    item = services.item_issue(
        item_code=lot.code, quantity=3, reason="Line 2 top-up", actor=boss
    )
    assert item.quantity == 7
    record = last_audit()
    assert record.action == "item.issued"
    assert (record.before["quantity"], record.after["quantity"]) == (10, 7)
    assert record.after["issued"] == 3


def test_issue_of_held_stock_is_409(lot, boss):
    services.item_hold(item_code=lot.code, reason="Check", actor=boss)
    with pytest.raises(Conflict) as caught:
        services.item_issue(item_code=lot.code, quantity=1, actor=boss)
    assert caught.value.code == "stock_not_available"


def test_issuing_everything_takes_the_item_out_of_the_lists(lot, boss):
    services.item_issue(item_code=lot.code, quantity=10, actor=boss)
    assert list(selectors.item_list()) == []
    assert selectors.item_get(item_code=lot.code).quantity == 0


# --- hold, release, block ----------------------------------------------------------


def test_hold_and_release_are_audited_with_before_and_after(lot, boss):
    services.item_hold(
        item_code=lot.code, reason="  Viscosity out of spec ", actor=boss
    )
    held = last_audit()
    assert (held.action, held.actor_username) == ("item.held", "sam")
    assert held.before == {
        "status": "good",
        "hold_reason": "",
        "quantity": 10,
        "location": "A-R1",
    }
    assert held.after == {
        "status": "hold",
        "hold_reason": "Viscosity out of spec",
        "quantity": 10,
        "location": "A-R1",
    }
    services.item_release_hold(item_code=lot.code, actor=boss)
    released = last_audit()
    assert released.action == "item.hold_released"
    assert (released.before["status"], released.before["hold_reason"]) == (
        "hold",
        "Viscosity out of spec",
    )
    assert (released.after["status"], released.after["hold_reason"]) == ("good", "")
    assert event_names()[-2:] == ["item.held", "item.hold_released"]


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 301])
def test_hold_and_block_need_a_reason(lot, boss, reason):
    before = row_counts()
    for act in (services.item_hold, services.item_block):
        with pytest.raises(InvalidInput) as caught:
            act(item_code=lot.code, reason=reason, actor=boss)
        assert set(caught.value.details) == {"reason"}
    assert row_counts() == before
    assert item_state(lot.code)[0] == ItemStatus.GOOD


def test_status_transitions_follow_the_table(lot, boss):
    services.item_hold(item_code=lot.code, reason="a", actor=boss)
    with pytest.raises(IllegalTransition):
        services.item_hold(item_code=lot.code, reason="again", actor=boss)
    services.item_block(item_code=lot.code, reason="Contaminated", actor=boss)
    with pytest.raises(IllegalTransition):
        services.item_block(item_code=lot.code, reason="again", actor=boss)
    before = row_counts()
    with pytest.raises(IllegalTransition) as caught:
        services.item_release_hold(item_code=lot.code, actor=boss)
    assert caught.value.message == "Item RM-ADH-001 is Blocked, not on Hold."
    assert row_counts() == before
    # Blocked stock comes back through a hold (re-inspection), then a release.
    services.item_hold(item_code=lot.code, reason="Re-inspection", actor=boss)
    services.item_release_hold(item_code=lot.code, actor=boss)
    assert item_state(lot.code)[:2] == (ItemStatus.GOOD, "")


def test_release_of_good_stock_is_409(lot, boss):
    with pytest.raises(IllegalTransition):
        services.item_release_hold(item_code=lot.code, actor=boss)


# --- move --------------------------------------------------------------------------


def test_move_is_recorded(lot, boss):
    item = services.item_move(
        item_code=lot.code, location_code="B-R1", reason="Rebalance", actor=boss
    )
    assert item.location.path == "Zone B - Rack 1"
    movement = StockMovement.objects.filter(kind=MovementKind.MOVE).get()
    assert (
        movement.from_location.code,
        movement.to_location.code,
        movement.quantity,
        movement.reason,
        movement.moved_by,
    ) == ("A-R1", "B-R1", 10, "Rebalance", boss)
    record = last_audit()
    assert (record.action, record.before["location"], record.after["location"]) == (
        "item.moved",
        "A-R1",
        "B-R1",
    )
    assert event_names()[-1] == "item.moved"


def test_held_stock_may_move_and_stays_held(lot, boss):
    services.item_hold(item_code=lot.code, reason="Quarantine", actor=boss)
    services.item_move(
        item_code=lot.code, location_code="B-R1", reason="To quarantine", actor=boss
    )
    assert item_state(lot.code)[:2] == (ItemStatus.HOLD, "Quarantine")


@pytest.mark.parametrize(
    ("location", "reason", "field"),
    [
        ("Q", "Inactive zone", "locationId"),
        ("NOPE", "Unknown", "locationId"),
        ("B-R1", " ", "reason"),
    ],
)
def test_move_refuses_bad_input_and_changes_nothing(lot, boss, location, reason, field):
    before, state = row_counts(), item_state(lot.code)
    with pytest.raises(InvalidInput) as caught:
        services.item_move(
            item_code=lot.code, location_code=location, reason=reason, actor=boss
        )
    assert set(caught.value.details) == {field}
    assert (row_counts(), item_state(lot.code)) == (before, state)


def test_a_move_to_where_the_item_is_is_a_conflict_and_changes_nothing(lot, boss):
    before, state = row_counts(), item_state(lot.code)
    with pytest.raises(Conflict) as caught:
        services.item_move(
            item_code=lot.code, location_code="A-R1", reason="Same place", actor=boss
        )
    assert caught.value.code == "already_at_location"
    assert (row_counts(), item_state(lot.code)) == (before, state)


# --- age ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "text"),
    [
        (timedelta(seconds=-30), "0 minutes"),
        (timedelta(seconds=59), "0 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=59, seconds=59), "59 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=23, minutes=59), "23 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=5), "2 days"),
        (timedelta(days=13, hours=23), "13 days"),
        (timedelta(days=14), "2 weeks"),
        (timedelta(days=55), "7 weeks"),
        (timedelta(days=56), "1 month"),
        (timedelta(days=364), "12 months"),
        (timedelta(days=365), "1 year"),
        (timedelta(days=800), "2 years"),
    ],
)
def test_age_is_humanised_in_whole_units(elapsed, text):
    now = timezone.now()
    assert selectors.item_age(now - elapsed, now=now) == text
