"""Every write of stock: receive, reserve, release, consume, issue, hold, release
the hold, block, move.

An item's row lock is the one gate for everything that changes its quantity,
status or reservations: each service locks the item (``select_for_update``)
before it reads what is reserved, so two reservations of the same stock queue
up on the lock and the second sees the first. Nothing here checks and then
writes outside that lock. Services that start from a reservation lock its item
first, then the reservation, so they take locks in the same order as
``item_reserve`` and cannot deadlock with it.

Input is checked before anything is locked or written; a refusal changes
nothing (no row, no audit record, no event). Views, the admin and the demo call
these.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from bpmos import events
from bpmos.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from bpmos.fields import time_problem
from bpmos.locking import ROW_LOCK, lock_row
from elog import audit
from inventory import events as inventory_events
from inventory.models import (
    Category,
    Item,
    ItemStatus,
    Location,
    MovementKind,
    Reservation,
    ReservationStatus,
    StockMovement,
    Tracking,
    Unit,
    available_quantity,
)

_MAX_REASON = 300
_MAX_REF = 64


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def _invalid(errors: dict[str, list[str]]) -> InvalidInput:
    return InvalidInput(
        "Invalid input. " + next(iter(errors.values()))[0],
        code="validation_error",
        details=errors,
    )


def _required_reason(reason: str | None, *, to: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise _invalid({"reason": [f"A reason is required to {to}."]})
    if len(reason) > _MAX_REASON:
        raise _invalid({"reason": [f"At most {_MAX_REASON} characters."]})
    return reason


def _lock_item(item_code: str) -> Item:
    return lock_row(
        Item.objects.select_related("category", "location__parent__parent"),
        what=f"Item {item_code}",
        code=item_code,
    )


def _lock_reservation(reservation_id: int) -> tuple[Item, Reservation]:
    """Lock a reservation's item, then the reservation (the order every service
    that touches both uses)."""
    item_code = (
        Reservation.objects.filter(pk=reservation_id)
        .values_list("item__code", flat=True)
        .first()
    )
    if item_code is None:
        raise NotFound(f"Reservation {reservation_id} does not exist.")
    item = _lock_item(item_code)
    reservation = Reservation.objects.select_for_update(**ROW_LOCK).get(
        pk=reservation_id
    )
    reservation.item = item  # the locked row, with its category and location
    return item, reservation


def _reserved(item: Item) -> int:
    """The item's active reservations' total. Call it holding the item's lock."""
    total = Reservation.objects.filter(
        item_id=item.pk, status=ReservationStatus.ACTIVE
    ).aggregate(total=Sum("quantity"))["total"]
    return total or 0


def _require_usable(item: Item, *, to: str) -> None:
    if item.status != ItemStatus.GOOD:
        raise Conflict(
            f"Item {item.code} is {item.get_status_display()}"
            + (f" ({item.hold_reason})" if item.hold_reason else "")
            + f"; it cannot be {to}.",
            code="stock_not_available",
            details={"status": item.get_status_display()},
        )


def _require_quantity(item: Item, *, quantity: int, reserved: int, to: str) -> None:
    available = available_quantity(
        status=item.status, quantity=item.quantity, reserved=reserved
    )
    if quantity > available:
        raise Conflict(
            f"Only {available} {item.unit} of {item.code} available; "
            f"{quantity} cannot be {to}.",
            code="insufficient_stock",
            details={"requested": quantity, "available": available},
        )


def _positive(value, name: str, errors: dict[str, list[str]]) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        errors[name] = ["Must be a whole number greater than 0."]


def _item_snapshot(item: Item) -> dict:
    return {
        "status": item.status,
        "hold_reason": item.hold_reason,
        "quantity": item.quantity,
        "location": item.location.code,
    }


def _reservation_snapshot(reservation: Reservation) -> dict:
    return {
        "item": reservation.item.code,
        "quantity": reservation.quantity,
        "work_order_id": reservation.work_order_id,
        "dispatch_ref": reservation.dispatch_ref,
        "status": reservation.status,
    }


def _publish_item(item: Item, change: str) -> None:
    events.publish(inventory_events.item_event(item, change, reserved=_reserved(item)))


# --- receiving ---------------------------------------------------------------------


def item_receive_check(
    *,
    code: str,
    sku: str,
    category_slug: str,
    location_code: str,
    quantity: int,
    unit: str,
    batch_ref: str,
    received_at: datetime | None = None,
) -> tuple[Category, Location]:
    """Check a receipt before it is made (``item_receive`` calls it; the admin's
    add form too, to show the errors on the form). Raises ``InvalidInput`` with
    every field that is wrong; returns the category and location."""
    errors: dict[str, list[str]] = {}
    if not code or len(code) > _MAX_REF:
        errors["id"] = [f"Required, at most {_MAX_REF} characters."]
    if not sku or len(sku) > _MAX_REF:
        errors["sku"] = [f"Required, at most {_MAX_REF} characters."]
    if len(batch_ref) > _MAX_REF:
        errors["batchRef"] = [f"At most {_MAX_REF} characters."]
    _positive(quantity, "quantity", errors)
    if unit not in Unit.values:
        errors["unit"] = [f"One of {', '.join(Unit.values)}."]
    problem = time_problem(received_at) if received_at is not None else None
    if problem is not None:  # the bounds every time the API takes obeys
        errors["receivedAt"] = [problem]
    category = Category.objects.filter(slug=category_slug).first()
    if category is None:
        errors["category"] = [f"Unknown category {category_slug!r}."]
    elif category.tracking == Tracking.SERIALISED and quantity != 1:
        errors["quantity"] = [f"{category.name} are serialised: one unit per item."]
    location = Location.objects.filter(code=location_code, is_active=True).first()
    if location is None:
        errors["locationId"] = [f"No active location {location_code!r}."]
    if code and Item.objects.filter(code=code).exists():
        errors["id"] = [f"Item {code} already exists."]
    if errors:
        raise _invalid(errors)
    return category, location  # type: ignore[return-value]


@transaction.atomic
def item_receive(
    *,
    code: str,
    sku: str,
    category_slug: str,
    location_code: str,
    actor,
    quantity: int = 1,
    unit: str = Unit.PIECES,
    batch_ref: str = "",
    received_at: datetime | None = None,
) -> Item:
    """Take stock in: a new item, Good, at a location, with its receipt recorded.

    A serialised category's items are one unit each (quantity 1).
    """
    code, sku = (code or "").strip(), (sku or "").strip()
    batch_ref = (batch_ref or "").strip()
    category, location = item_receive_check(
        code=code,
        sku=sku,
        category_slug=category_slug,
        location_code=location_code,
        quantity=quantity,
        unit=unit,
        batch_ref=batch_ref,
        received_at=received_at,
    )
    try:
        with transaction.atomic():  # a concurrent receipt of the same code
            item = Item.objects.create(
                code=code,
                sku=sku,
                category=category,
                location=location,
                quantity=quantity,
                unit=unit,
                batch_ref=batch_ref,
                received_at=received_at or timezone.now(),
            )
    except IntegrityError as exc:
        raise _invalid({"id": [f"Item {code} already exists."]}) from exc
    StockMovement.objects.create(
        item=item,
        kind=MovementKind.RECEIPT,
        to_location=location,
        quantity=quantity,
        moved_by=_user(actor),
    )
    audit.record(
        actor=actor,
        action="item.received",
        target=item,
        after={
            **_item_snapshot(item),
            "sku": sku,
            "category": category.slug,
            "batch_ref": batch_ref,
        },
    )
    events.publish(inventory_events.item_event(item, "received", reserved=0))
    return item


# --- reservations ------------------------------------------------------------------


@transaction.atomic
def item_reserve(
    *,
    item_code: str,
    quantity: int,
    actor,
    work_order_id: int | None = None,
    dispatch_ref: str = "",
) -> Reservation:
    """Reserve ``quantity`` of an item for a work order or a dispatch.

    409 ``stock_not_available`` unless the item is Good; 409
    ``insufficient_stock`` if it would exceed what is available (quantity less
    active reservations), computed under the item's row lock so concurrent
    reservations can never add up to more than there is.
    """
    from runbooks.models import WorkOrder, WorkOrderStatus

    errors: dict[str, list[str]] = {}
    _positive(quantity, "quantity", errors)
    dispatch_ref = (dispatch_ref or "").strip()
    if (work_order_id is None) == (not dispatch_ref):
        errors["workOrderId"] = ["Give a workOrderId or a dispatchRef (one of them)."]
    elif len(dispatch_ref) > _MAX_REF:
        errors["dispatchRef"] = [f"At most {_MAX_REF} characters."]
    work_order = None
    if work_order_id is not None and "workOrderId" not in errors:
        work_order = WorkOrder.objects.filter(pk=work_order_id).first()
        if work_order is None:
            errors["workOrderId"] = [f"Unknown work order {work_order_id}."]
    if errors:
        raise _invalid(errors)
    if work_order is not None and work_order.status in {
        WorkOrderStatus.COMPLETED,
        WorkOrderStatus.CANCELLED,
    }:
        raise Conflict(
            f"Work order {work_order.pk} is {work_order.get_status_display()}; "
            "it takes no reservations.",
            code="work_order_closed",
        )
    item = _lock_item(item_code)
    _require_usable(item, to="reserved")
    reserved = _reserved(item)
    _require_quantity(item, quantity=quantity, reserved=reserved, to="reserved")
    reservation = Reservation.objects.create(
        item=item,
        quantity=quantity,
        work_order=work_order,
        dispatch_ref=dispatch_ref,
        created_by=_user(actor),
    )
    audit.record(
        actor=actor,
        action="reservation.created",
        target=reservation,
        after=_reservation_snapshot(reservation),
    )
    events.publish(inventory_events.reservation_event(reservation, "created"))
    return reservation


def _close_reservation(reservation: Reservation, *, to: str, actor) -> dict:
    reservation.require_transition(to=to)
    before = _reservation_snapshot(reservation)
    reservation.status = to
    reservation.closed_by = _user(actor)
    reservation.closed_at = timezone.now()
    reservation.save(update_fields=["status", "closed_by", "closed_at"])
    return before


@transaction.atomic
def reservation_release(*, reservation_id: int, actor, reason: str = "") -> Reservation:
    """Give a reserved quantity back: it is available again. Only an active
    reservation can be released (409 otherwise)."""
    reason = (reason or "").strip()
    if len(reason) > _MAX_REASON:
        raise _invalid({"reason": [f"At most {_MAX_REASON} characters."]})
    _item, reservation = _lock_reservation(reservation_id)
    before = _close_reservation(reservation, to=ReservationStatus.RELEASED, actor=actor)
    audit.record(
        actor=actor,
        action="reservation.released",
        target=reservation,
        before=before,
        after={**_reservation_snapshot(reservation), "reason": reason},
    )
    events.publish(inventory_events.reservation_event(reservation, "released"))
    return reservation


@transaction.atomic
def reservation_consume(*, reservation_id: int, actor) -> Reservation:
    """Issue a reserved quantity to its work order or dispatch: the item's
    quantity drops by it and the issue is recorded. Refused (409) while the item
    is on Hold or Blocked, or unless the reservation is active."""
    item, reservation = _lock_reservation(reservation_id)
    reservation.require_transition(to=ReservationStatus.CONSUMED)
    _require_usable(item, to="issued")
    if reservation.quantity > item.quantity:  # cannot happen: reservations fit
        raise IllegalTransition(
            f"Reservation {reservation.pk} is larger than what is left of {item.code}."
        )
    item_before = _item_snapshot(item)
    before = _close_reservation(reservation, to=ReservationStatus.CONSUMED, actor=actor)
    item.quantity -= reservation.quantity
    item.save(update_fields=["quantity", "updated_at"])
    StockMovement.objects.create(
        item=item,
        kind=MovementKind.ISSUE,
        from_location=item.location,
        quantity=reservation.quantity,
        reservation=reservation,
        reason=f"Consumed by {reservation.purpose}",
        moved_by=_user(actor),
    )
    audit.record(
        actor=actor,
        action="reservation.consumed",
        target=reservation,
        before={**before, "item_quantity": item_before["quantity"]},
        after={**_reservation_snapshot(reservation), "item_quantity": item.quantity},
    )
    events.publish(inventory_events.reservation_event(reservation, "consumed"))
    return reservation


# --- issuing -----------------------------------------------------------------------


@transaction.atomic
def item_issue(*, item_code: str, quantity: int, actor, reason: str = "") -> Item:
    """Take unreserved stock out (to the line, a lab sample, scrap).

    409 ``stock_not_available`` unless the item is Good; 409
    ``insufficient_stock`` beyond what is available (reserved stock is issued by
    consuming its reservation instead).
    """
    errors: dict[str, list[str]] = {}
    _positive(quantity, "quantity", errors)
    reason = (reason or "").strip()
    if len(reason) > _MAX_REASON:
        errors["reason"] = [f"At most {_MAX_REASON} characters."]
    if errors:
        raise _invalid(errors)
    item = _lock_item(item_code)
    _require_usable(item, to="issued")
    _require_quantity(item, quantity=quantity, reserved=_reserved(item), to="issued")
    before = _item_snapshot(item)
    item.quantity -= quantity
    item.save(update_fields=["quantity", "updated_at"])
    StockMovement.objects.create(
        item=item,
        kind=MovementKind.ISSUE,
        from_location=item.location,
        quantity=quantity,
        reason=reason,
        moved_by=_user(actor),
    )
    audit.record(
        actor=actor,
        action="item.issued",
        target=item,
        before=before,
        after={**_item_snapshot(item), "issued": quantity, "reason": reason},
    )
    _publish_item(item, "issued")
    return item


# --- status: hold, release, block --------------------------------------------------


def _set_status(item: Item, *, to: str, reason: str, action: str, actor) -> None:
    before = _item_snapshot(item)
    item.status, item.hold_reason = to, reason
    item.save(update_fields=["status", "hold_reason", "updated_at"])
    audit.record(
        actor=actor,
        action=f"item.{action}",
        target=item,
        before=before,
        after=_item_snapshot(item),
    )
    _publish_item(item, action)


@transaction.atomic
def item_hold(*, item_code: str, reason: str, actor) -> Item:
    """Put an item on Hold, with a reason (supervisors). A Blocked item may be
    put back on Hold for re-inspection. Its reservations stay; nothing of it can
    be reserved or issued until it is released."""
    reason = _required_reason(reason, to="hold stock")
    item = _lock_item(item_code)
    item.require_transition(to=ItemStatus.HOLD)
    _set_status(item, to=ItemStatus.HOLD, reason=reason, action="held", actor=actor)
    return item


@transaction.atomic
def item_release_hold(*, item_code: str, actor) -> Item:
    """Release a held item back to Good (supervisors); 409 unless it is on Hold."""
    item = _lock_item(item_code)
    # Checked before the table so the message says why ("not on hold") rather
    # than "Blocked cannot become Good".
    if item.status != ItemStatus.HOLD:
        raise IllegalTransition(
            f"Item {item.code} is {item.get_status_display()}, not on Hold.",
            details={"from": item.status, "to": ItemStatus.GOOD},
        )
    item.require_transition(to=ItemStatus.GOOD)
    _set_status(
        item, to=ItemStatus.GOOD, reason="", action="hold_released", actor=actor
    )
    return item


@transaction.atomic
def item_block(*, item_code: str, reason: str, actor) -> Item:
    """Block an item (rejected, damaged, recalled), with a reason (supervisors).
    Its active reservations stay, visible to planners, who release them."""
    reason = _required_reason(reason, to="block stock")
    item = _lock_item(item_code)
    item.require_transition(to=ItemStatus.BLOCKED)
    _set_status(
        item, to=ItemStatus.BLOCKED, reason=reason, action="blocked", actor=actor
    )
    return item


# --- moving ------------------------------------------------------------------------


@transaction.atomic
def item_move(*, item_code: str, location_code: str, reason: str, actor) -> Item:
    """Move a whole item (a unit or a whole lot) to another active location; the
    move is recorded as a stock movement. Held and blocked stock may move (to a
    quarantine area, say); its status does not change. A move to where the
    item already is is a 409 ``already_at_location``."""
    reason = _required_reason(reason, to="move stock")
    location = (
        Location.objects.select_related("parent__parent")
        .filter(code=location_code, is_active=True)
        .first()
    )
    if location is None:
        raise _invalid({"locationId": [f"No active location {location_code!r}."]})
    item = _lock_item(item_code)
    if item.location_id == location.pk:
        # A well-formed request the item's current state refuses: 409, as a
        # stage started twice is (not 400: the body alone is not wrong).
        raise Conflict(
            f"{item.code} is already at {location.path}; nothing to move.",
            code="already_at_location",
            details={"locationId": [f"{item.code} is already at {location.path}."]},
        )
    before = _item_snapshot(item)
    origin = item.location
    item.location = location
    item.save(update_fields=["location", "updated_at"])
    StockMovement.objects.create(
        item=item,
        kind=MovementKind.MOVE,
        from_location=origin,
        to_location=location,
        quantity=item.quantity,
        reason=reason,
        moved_by=_user(actor),
    )
    audit.record(
        actor=actor,
        action="item.moved",
        target=item,
        before=before,
        after={**_item_snapshot(item), "reason": reason},
    )
    _publish_item(item, "moved")
    return item
