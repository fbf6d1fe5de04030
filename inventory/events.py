"""Live events of stock (topic ``inventory``).

Payloads are camelCase with display enums, like the control UI's inventory
endpoints, and say where and in what state stock is now (track, not trace).
"""

from typing import TypedDict

from bpmos.events import Event, declare
from inventory.models import available_quantity

TOPIC = "inventory"


class ItemPayload(TypedDict):
    id: str
    sku: str
    category: str
    location: str
    locationId: str
    status: str
    holdReason: str
    batchRef: str
    quantity: int
    unit: str
    reserved: int
    available: int


class ReservationPayload(TypedDict):
    id: int
    itemId: str
    sku: str
    quantity: int
    status: str
    workOrderId: int | None
    dispatchRef: str


ITEM_EVENTS = {
    change: declare(f"item.{change}", ItemPayload)
    for change in ("received", "held", "hold_released", "blocked", "moved", "issued")
}
RESERVATION_EVENTS = {
    change: declare(f"reservation.{change}", ReservationPayload)
    for change in ("created", "released", "consumed")
}


def item_event(item, change: str, *, reserved: int) -> Event:
    """The event for a change to an item; ``reserved`` is its active reservations'
    total, read under the item's lock by the service that made the change."""
    payload: ItemPayload = {
        "id": item.code,
        "sku": item.sku,
        "category": item.category.slug,
        "location": item.location.path,
        "locationId": item.location.code,
        "status": item.get_status_display(),
        "holdReason": item.hold_reason,
        "batchRef": item.batch_ref,
        "quantity": item.quantity,
        "unit": item.unit,
        "reserved": reserved,
        "available": available_quantity(
            status=item.status, quantity=item.quantity, reserved=reserved
        ),
    }
    return Event(name=ITEM_EVENTS[change], topics=(TOPIC,), data=payload)


def reservation_event(reservation, change: str) -> Event:
    """The event for a reservation made, released or consumed."""
    payload: ReservationPayload = {
        "id": reservation.pk,
        "itemId": reservation.item.code,
        "sku": reservation.item.sku,
        "quantity": reservation.quantity,
        "status": reservation.get_status_display(),
        "workOrderId": reservation.work_order_id,
        "dispatchRef": reservation.dispatch_ref,
    }
    return Event(name=RESERVATION_EVENTS[change], topics=(TOPIC,), data=payload)
