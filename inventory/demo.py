"""Demo plant stock (docs/design.md §8): the seven categories, a warehouse of zones,
racks and bins, and stock in every category, every location and every status,
with reservations for work orders and dispatches.

Items are received, held, blocked, moved, reserved and issued through
``inventory.services``, so the audit log, the movements and the event outbox
hold their real history. Receipt times are spread from minutes to months ago so
the control UI's ``age`` column shows every unit.

Idempotent: categories and locations are looked up by slug and code; an item
whose code exists is left as it is, and only items received in this run are
held, blocked, moved or reserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from bpmos.accounts.models import User
from inventory import services
from inventory.models import Category, Location, LocationKind, Tracking

ORDER = 40  # after the users (0), the work orders (20) and the exceptions (30)

CATEGORIES = (
    ("cells", "Cells", Tracking.SERIALISED),
    ("modules", "Modules", Tracking.SERIALISED),
    ("packs", "Packs", Tracking.SERIALISED),
    ("fg", "FG", Tracking.SERIALISED),
    ("raw-materials", "Raw Materials", Tracking.BATCH),
    ("bms-boards", "BMS Boards", Tracking.SERIALISED),
    ("packaging", "Packaging", Tracking.BATCH),
)

# zone code, zone name, {rack number: bins on it}
WAREHOUSE = (
    ("A", "Zone A", {1: 2, 2: 2, 3: 0}),  # cells
    ("B", "Zone B", {1: 1, 2: 1}),  # modules and packs
    ("C", "Zone C", {1: 0, 2: 0}),  # finished goods, and its floor
    ("D", "Zone D", {1: 2, 2: 0}),  # raw materials and packaging, and its floor
    ("E", "Zone E", {1: 2}),  # ESD-safe electronics
    ("Q", "Zone Q (Quarantine)", {1: 0}),
)


@dataclass(frozen=True)
class Stock:
    """How one category's demo items are made."""

    category: str
    prefix: str
    skus: tuple[str, ...]
    batches: tuple[str, ...]
    locations: tuple[str, ...]
    count: int
    quantities: tuple[tuple[int, str], ...] = ((1, "pcs"),)
    hold: str = "Incoming inspection pending"
    block: str = "Damaged in handling"


STOCK = (
    Stock(
        "cells",
        "CELL-2026-1",
        ("CELL-LFP-21700", "CELL-NMC-21700"),
        ("BATCH-INB-101", "BATCH-INB-102", "BATCH-INB-103"),
        ("A-R1", "A-R1-B1", "A-R1-B2", "A-R2", "A-R2-B1", "A-R2-B2", "A-R3", "A"),
        24,
        hold="IR above 0.25 mΩ at grading",
        block="Swollen can",
    ),
    Stock(
        "modules",
        "MOD-2026-0",
        ("MOD-16S-LFP",),
        ("WO-MOD-2026-11", "WO-MOD-2026-12"),
        ("B-R1", "B-R1-B1", "B"),
        8,
        hold="Weld pull test re-check",
        block="Busbar weld crack",
    ),
    Stock(
        "packs",
        "PACK-2026-0",
        ("PACK-48V-100AH",),
        ("WO-PACK-2026-07",),
        ("B-R2", "B-R2-B1"),
        6,
        hold="EOL insulation test to repeat",
        block="Enclosure seal failed",
    ),
    Stock(
        "fg",
        "FG-2026-0",
        ("FG-ESS-5KWH", "FG-EV-48V"),
        ("FG-LOT-2026-03",),
        ("C", "C-R1", "C-R2"),
        6,
        hold="Customer label mismatch",
        block="Pallet dropped",
    ),
    Stock(
        "raw-materials",
        "RM-2026-0",
        ("RM-ADHESIVE-2K", "RM-NICKEL-STRIP", "RM-THERMAL-PAD"),
        ("LOT-ADH-7", "LOT-NI-22", "LOT-TIM-5"),
        ("D-R1", "D-R1-B1", "D-R1-B2"),
        6,
        quantities=((25, "kg"), (400, "m"), (120, "pcs")),
        hold="CoA missing from supplier",
        block="Shelf life expired",
    ),
    Stock(
        "bms-boards",
        "BMS-2026-0",
        ("BMS-16S-V3",),
        ("BATCH-BMS-31",),
        ("E-R1", "E-R1-B1", "E-R1-B2", "E"),
        6,
        hold="Firmware version to confirm",
        block="ESD damage suspected",
    ),
    Stock(
        "packaging",
        "PKG-2026-0",
        ("PKG-CARTON-48V", "PKG-PALLET-EUR"),
        ("LOT-PKG-9",),
        ("D", "D-R2"),
        4,
        quantities=((200, "box"), (40, "pcs")),
        hold="Print proof not approved",
        block="Water damaged",
    ),
)

# Receipt ages, cycled: minutes to months, so every unit of ``age`` shows.
AGES = (
    timedelta(minutes=25),
    timedelta(hours=3),
    timedelta(days=2),
    timedelta(days=5),
    timedelta(days=9),
    timedelta(days=20),
    timedelta(days=45),
    timedelta(days=120),
)


def _categories() -> dict[str, Category]:
    found = {}
    for position, (slug, name, tracking) in enumerate(CATEGORIES, start=1):
        found[slug], _ = Category.objects.get_or_create(
            slug=slug,
            defaults={"name": name, "tracking": tracking, "position": position},
        )
    return found


def _warehouse() -> int:
    created = 0

    def place(code, name, kind, parent=None) -> Location:
        nonlocal created
        location, is_new = Location.objects.get_or_create(
            code=code, defaults={"name": name, "kind": kind, "parent": parent}
        )
        created += is_new
        return location

    for zone_code, zone_name, racks in WAREHOUSE:
        zone = place(zone_code, zone_name, LocationKind.ZONE)
        for rack_no, bins in racks.items():
            rack_code = f"{zone_code}-R{rack_no}"
            rack = place(rack_code, f"Rack {rack_no}", LocationKind.RACK, zone)
            for bin_no in range(1, bins + 1):
                place(f"{rack_code}-B{bin_no}", f"Bin {bin_no}", LocationKind.BIN, rack)
    return created


def _receive(spec: Stock, n: int, actor, now) -> str | None:
    """Receive the ``n``-th item of ``spec`` unless it exists; its code if new."""
    from inventory.models import Item

    code = f"{spec.prefix}{n + 1:03d}"
    if Item.objects.filter(code=code).exists():
        return None
    quantity, unit = spec.quantities[n % len(spec.quantities)]
    services.item_receive(
        code=code,
        sku=spec.skus[n % len(spec.skus)],
        category_slug=spec.category,
        location_code=spec.locations[n % len(spec.locations)],
        quantity=quantity,
        unit=unit,
        batch_ref=spec.batches[n % len(spec.batches)],
        received_at=now - AGES[n % len(AGES)] - timedelta(minutes=7 * n),
        actor=actor,
    )
    return code


def _open_work_orders() -> list[int]:
    from runbooks.models import WorkOrder, WorkOrderStatus

    return list(
        WorkOrder.objects.filter(
            status__in=[WorkOrderStatus.PLANNED, WorkOrderStatus.IN_PROGRESS]
        )
        .order_by("id")
        .values_list("id", flat=True)[:3]
    )


def _reserve(codes: dict[str, list[str]], planner, operator) -> int:
    """Promise some of the new Good stock; release one promise, consume another."""
    work_orders = _open_work_orders()
    made = []

    def reserve(code: str, quantity: int, n: int):
        purpose = (
            {"work_order_id": work_orders[n % len(work_orders)]}
            if work_orders and not code.startswith("FG-")
            else {"dispatch_ref": f"DSP-2026-{n + 41:04d}"}
        )
        made.append(
            services.item_reserve(
                item_code=code, quantity=quantity, actor=planner, **purpose
            )
        )

    for n, code in enumerate(codes.get("cells", [])[2:8]):
        reserve(code, 1, n)
    for n, code in enumerate(codes.get("modules", [])[2:4]):
        reserve(code, 1, n)
    for n, code in enumerate(codes.get("fg", [])[2:5]):
        reserve(code, 1, n)
    raw = codes.get("raw-materials", [])
    if len(raw) > 4:
        reserve(raw[2], 40, 0)  # 40 of 120 thermal pads
        reserve(raw[3], 10, 1)  # 10 of 25 kg of adhesive
        reserve(raw[4], 150, 2)  # 150 of 400 m of nickel strip
    if len(made) >= 2:
        services.reservation_release(
            reservation_id=made[0].pk, reason="Plan changed", actor=planner
        )
        services.reservation_consume(reservation_id=made[1].pk, actor=operator)
    return len(made)


def seed_places() -> int:
    """The categories and the warehouse's bins (the plant generator's base
    too); returns the new locations."""
    _categories()
    return _warehouse()


def seed(log) -> None:
    """Create what is missing of the demo stock; existing items are left alone."""
    now = timezone.now()
    users = {u.username: u for u in User.objects.filter(is_active=True)}
    supervisor = users.get("supervisor")
    planner = users.get("planner", supervisor)
    operator = users.get("operator", supervisor)
    new_places = seed_places()
    new: dict[str, list[str]] = {}
    for spec in STOCK:
        for n in range(spec.count):
            code = _receive(spec, n, supervisor, now)
            if code:
                new.setdefault(spec.category, []).append(code)
    if not new:
        log("inventory: already present")
        return
    for spec in STOCK:
        codes = new.get(spec.category, [])
        if len(codes) < 2:
            continue
        services.item_hold(item_code=codes[0], reason=spec.hold, actor=supervisor)
        services.item_block(item_code=codes[1], reason=spec.block, actor=supervisor)
    # Blocked stock goes to quarantine (its rack, and its floor).
    for category, place in (("cells", "Q-R1"), ("modules", "Q")):
        if len(codes := new.get(category, [])) > 1:
            services.item_move(
                item_code=codes[1],
                location_code=place,
                reason="Quarantine for supplier return",
                actor=operator,
            )
    reserved = _reserve(new, planner, operator)
    if len(raw := new.get("raw-materials", [])) > 5:  # some thermal pads used
        services.item_issue(
            item_code=raw[5], quantity=5, reason="Line A top-up", actor=operator
        )
    log(
        f"inventory: {sum(len(c) for c in new.values())} items received into "
        f"{new_places} new locations, {reserved} reservations"
    )
