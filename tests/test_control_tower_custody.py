"""The runbook detail's custody and warranty context, from the battery passports
of the lots of the runbook's work orders: exact counts by custodian kind and
holder, warranty buckets from the delivery event, null without passports, and a
query count that does not grow with the passports."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from rest_framework.test import APIClient

from passports import ledger, selectors, services
from passports.models import EventKind, Passport, State
from runbooks.models import Runbook, RunbookKind, WorkOrder
from tests.conftest import api_as as api
from tests.factories_tower import at, make_runbook, make_work_order

pytestmark = pytest.mark.django_db

MIX_ORDER = ["Manufacturer", "Logistics", "Customer", "Service", "Recycler"]


@pytest.fixture
def boss(make_user):
    return make_user("supervisor")


def iso(moment) -> str:
    return moment.isoformat()


def register(actor, serial, lot, *, kind="pack", made, warranty_months=12):
    volts, energy = {"pack": ("51.2", "5.12"), "module": ("25.6", "2.56")}.get(
        kind, ("3.2", "0.32")
    )
    return services.passport_register(
        data={
            "kind": kind,
            "chemistry": "LFP",
            "serial": serial,
            "model": f"{kind.upper()}-LFP",
            "lot": lot,
            "manufacturer": "Voltstack Energy Pvt Ltd",
            "site": "Chakan",
            "rated_capacity_ah": "100",
            "nominal_voltage_v": volts,
            "energy_kwh": energy,
            "warranty_months": warranty_months,
            "manufactured_at": iso(made),
        },
        actor=actor,
    )


def record(actor, passport, kind, when, **data):
    services.passport_event_record(
        passport_id=passport.pk,
        kind=kind,
        data=data,
        occurred_at=iso(when),
        actor=actor,
    )


def warehouse(actor, passport, when):
    record(actor, passport, "qa_passed", when)
    if passport.kind == "pack":
        ledger.append(
            passport=passport.pk,
            kind=EventKind.PROVISIONED,
            data={"node": 1, "simulated": True},
            actor=actor,
            occurred_at=when + timedelta(minutes=1),
        )
    record(actor, passport, "warehoused", when + timedelta(minutes=2))


def ship(actor, passport, *, dispatched, carrier="Deccan Freight"):
    warehouse(actor, passport, dispatched - timedelta(days=1))
    record(actor, passport, "dispatched", dispatched, carrier=carrier)


def deliver(actor, passport, *, delivered, customer="Greenline Telecom"):
    ship(actor, passport, dispatched=delivered - timedelta(days=2))
    record(actor, passport, "delivered", delivered, customer=customer)


def dispatch_runbook(boss, lots=("LOT-A",)):
    runbook = make_runbook(
        "dispatch",
        title="Dispatch",
        prefix="dsp",
        stages=[("S13", "Pick"), ("S14", "Pack & Label")],
        kind=RunbookKind.DISPATCH,
    )
    for lot in lots:
        make_work_order(runbook, boss, lot_no=lot)
    return runbook


def test_no_passports_for_the_lots_keeps_both_null(boss):
    dispatch_runbook(boss)
    register(boss, "PK-OTHER", "LOT-ELSEWHERE", made=timezone.now())
    body = api(boss).get("/api/runbooks/dispatch").json()
    assert (body["custody"], body["warranty"]) == (None, None)
    assert selectors.custody_context(lots=[]) is None
    assert selectors.warranty_context(lots=["", "LOT-A"]) is None


def test_custody_mix_counts_units_through_every_custodian_kind(boss):
    dispatch_runbook(boss, lots=("LOT-A", "LOT-B"))
    now = timezone.now()
    long_ago = now - timedelta(days=400)
    # Manufacturer: a pack with a module (the module is not counted) and a loose cell.
    held = register(boss, "PK-1", "LOT-A", made=now - timedelta(days=2))
    module = register(
        boss, "MD-1", "LOT-A", kind="module", made=now - timedelta(days=3)
    )
    record(boss, module, "qa_passed", now - timedelta(days=3))
    services.passport_assemble(parent_id=held.pk, component_ids=[module.pk], actor=boss)
    register(boss, "CL-1", "LOT-B", kind="cell", made=now - timedelta(days=5))
    # Logistics, two customers, service, recycler.
    on_road = register(boss, "PK-2", "LOT-A", made=now - timedelta(days=3))
    ship(boss, on_road, dispatched=now - timedelta(hours=5))
    for serial, customer in (("PK-3", "Greenline"), ("PK-4", "Greenline")):
        pack = register(boss, serial, "LOT-B", made=long_ago)
        deliver(boss, pack, delivered=long_ago + timedelta(days=5), customer=customer)
    other = register(boss, "PK-5", "LOT-B", made=long_ago)
    deliver(boss, other, delivered=long_ago + timedelta(days=5), customer="Suryoday")
    repair = register(boss, "PK-6", "LOT-A", made=long_ago)
    deliver(boss, repair, delivered=long_ago + timedelta(days=5))
    record(
        boss,
        repair,
        "custody_transferred",
        now - timedelta(days=1),
        to={"kind": "service", "name": "PowerCare"},
    )
    scrap = register(boss, "PK-7", "LOT-A", made=long_ago)
    deliver(boss, scrap, delivered=long_ago + timedelta(days=5))
    record(boss, scrap, "end_of_life", now - timedelta(days=9), reason="SoH 66 %")
    record(
        boss,
        scrap,
        "custody_transferred",
        now - timedelta(days=8),
        to={"kind": "recycler", "name": "Circular Metals"},
    )
    # Another lot, not the runbook's: not counted.
    register(boss, "PK-X", "LOT-Z", made=now)

    custody = api(boss).get("/api/runbooks/dispatch").json()["custody"]

    assert custody == {
        "passports": 8,
        "mix": [
            {"kind": "Manufacturer", "count": 2},
            {"kind": "Logistics", "count": 1},
            {"kind": "Customer", "count": 3},
            {"kind": "Service", "count": 1},
            {"kind": "Recycler", "count": 1},
        ],
        "custodians": [
            {"kind": "Manufacturer", "name": "Voltstack Energy Pvt Ltd", "count": 2},
            {"kind": "Customer", "name": "Greenline", "count": 2},
            {"kind": "Logistics", "name": "Deccan Freight", "count": 1},
            {"kind": "Customer", "name": "Suryoday", "count": 1},
            {"kind": "Service", "name": "PowerCare", "count": 1},
            {"kind": "Recycler", "name": "Circular Metals", "count": 1},
        ],
    }


def test_only_the_ten_largest_custodians_are_named(boss):
    dispatch_runbook(boss)
    made = timezone.now() - timedelta(days=30)
    for n in range(12):
        pack = register(boss, f"PK-{n}", "LOT-A", made=made)
        deliver(boss, pack, delivered=made + timedelta(days=5), customer=f"C{n:02d}")
    custody = selectors.custody_context(lots=["LOT-A"])
    assert custody.passports == 12
    assert [c.name for c in custody.custodians] == [f"C{n:02d}" for n in range(10)]
    assert [share.kind for share in custody.mix] == MIX_ORDER
    assert [share.count for share in custody.mix] == [0, 0, 12, 0, 0]


def test_warranty_starts_at_delivery_and_counts_each_bucket(boss):
    lot = "LOT-W"
    made = at("2024-01-01T08:00:00")
    delivered = {
        # 12 months from 2025-01-31 ends 2026-01-31: covered, more than 90 days.
        "PK-LONG": (at("2025-01-31T10:00:00"), 12),
        # ends 2025-06-15: within 90 days of "now" below.
        "PK-SOON": (at("2024-06-15T10:00:00"), 12),
        # 1 month from 2025-01-31 is 2025-02-28 (clamped): expired.
        "PK-OLD": (at("2025-01-31T10:00:00"), 1),
        # no warranty at all: cover ends at delivery.
        "PK-NONE": (at("2025-02-01T10:00:00"), 0),
    }
    for serial, (when, months) in delivered.items():
        pack = register(boss, serial, lot, made=made, warranty_months=months)
        deliver(boss, pack, delivered=when)
    register(boss, "PK-NEW", lot, made=made, warranty_months=60)

    context = selectors.warranty_context(lots=[lot], now=at("2025-04-01T00:00:00"))

    assert context == selectors.WarrantyContext(
        passports=5,
        not_delivered=1,
        under_warranty=2,
        expiring_soon=1,
        expired=2,
        next_expiry=at("2025-06-15T10:00:00"),
    )
    # The day after the soon one ends, only the long one is covered.
    later = selectors.warranty_context(lots=[lot], now=at("2025-06-16T00:00:00"))
    assert (later.under_warranty, later.expiring_soon, later.expired) == (1, 0, 3)
    assert later.next_expiry == at("2026-01-31T10:00:00")


def test_warranty_over_the_api(boss):
    dispatch_runbook(boss)
    now = timezone.now()
    soon = register(boss, "PK-1", "LOT-A", made=now - timedelta(days=400))
    deliver(boss, soon, delivered=now - timedelta(days=330))  # 12 months: ~35 days
    register(boss, "PK-2", "LOT-A", made=now)
    warranty = api(boss).get("/api/runbooks/dispatch").json()["warranty"]
    ends = selectors.add_months(now - timedelta(days=330), 12)
    assert warranty == {
        "passports": 2,
        "notDelivered": 1,
        "underWarranty": 1,
        "expiringWithin90Days": 1,
        "expired": 0,
        "nextExpiry": ends.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_any_runbook_whose_lots_have_passports_gets_the_context(boss):
    manufacturing = make_runbook()
    make_work_order(manufacturing, boss, lot_no="LOT-M")
    register(boss, "PK-M", "LOT-M", made=timezone.now())
    body = api(boss).get("/api/runbooks/manufacturing").json()
    assert body["custody"]["mix"][0] == {"kind": "Manufacturer", "count": 1}
    assert body["warranty"]["notDelivered"] == 1


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        ("2024-01-31T10:00:00", 1, "2024-02-29T10:00:00"),  # leap year
        ("2024-01-31T10:00:00", 13, "2025-02-28T10:00:00"),
        ("2024-11-15T10:00:00", 2, "2025-01-15T10:00:00"),
        ("2024-03-31T10:00:00", 0, "2024-03-31T10:00:00"),
    ],
)
def test_add_months_clamps_to_the_month_end(moment, months, expected):
    assert selectors.add_months(at(moment), months) == at(expected)


def test_detail_query_count_does_not_grow_with_passports(
    boss, django_assert_num_queries
):
    dispatch_runbook(boss, lots=("LOT-A",))
    client = APIClient()
    client.force_authenticate(boss)
    made = timezone.now() - timedelta(days=60)
    register(boss, "PK-0", "LOT-A", made=made)
    with django_assert_num_queries(10):
        first = client.get("/api/runbooks/dispatch").json()
    assert first["custody"]["passports"] == 1
    for lot in ("LOT-B", "LOT-C"):
        make_work_order(Runbook.objects.get(slug="dispatch"), boss, lot_no=lot)
    for n in range(1, 9):
        pack = register(boss, f"PK-{n}", ("LOT-A", "LOT-B", "LOT-C")[n % 3], made=made)
        if n % 2:
            deliver(boss, pack, delivered=made + timedelta(days=5 + n))
    with django_assert_num_queries(10):
        body = client.get("/api/runbooks/dispatch").json()
    assert body["custody"]["passports"] == 9
    assert body["warranty"]["underWarranty"] == 4


def _lots_of(runbook):
    return WorkOrder.objects.filter(runbook=runbook).values("lot_no")


def test_a_runbooks_lots_from_the_units_side_match_every_unit_as_before(boss):
    """A runbook's lots as a queryset go through the units' distinct lots
    (``unit_lots_among``); the answer is the one of matching every unit
    against the lots (the list path, and the query the detail ran before):
    a child assembled into a pack, a superseded passport, a lot no work
    order names and a lot with no units are left out alike."""
    runbook = dispatch_runbook(boss, lots=("LOT-A", "LOT-B", "LOT-D"))
    made = timezone.now() - timedelta(days=30)
    pack = register(boss, "PK-A1", "LOT-A", made=made)
    delivered = register(boss, "PK-A2", "LOT-A", made=made)
    deliver(boss, delivered, delivered=made + timedelta(days=3))
    module = register(boss, "MD-A3", "LOT-A", kind="module", made=made)
    record(boss, module, "qa_passed", made)
    services.passport_assemble(parent_id=pack.pk, component_ids=[module.pk], actor=boss)
    old = register(boss, "PK-B1", "LOT-B", made=made)
    Passport.objects.filter(pk=old.pk).update(state=State.SUPERSEDED)
    register(boss, "PK-C1", "LOT-C", made=made)  # no work order names LOT-C
    lots = _lots_of(runbook)

    among = Passport.objects.filter(lot__in=selectors.unit_lots_among(lots))
    assert sorted(set(among.values_list("lot", flat=True))) == ["LOT-A"]
    before = dict(
        Passport.objects.filter(lot__in=lots, parent__isnull=True)
        .exclude(lot="")
        .exclude(state=State.SUPERSEDED)
        .order_by()
        .values_list("custodian_kind")
        .annotate(n=Count("pk"))
    )
    custody = selectors.custody_context(lots=lots)
    assert custody == selectors.custody_context(lots=["LOT-A", "LOT-B", "LOT-D"])
    assert custody.passports == sum(before.values()) == 2
    assert {share.kind: share.count for share in custody.mix if share.count} == {
        "Manufacturer": 1,
        "Customer": 1,
    }
    now = timezone.now()
    warranty = selectors.warranty_context(lots=lots, now=now)
    assert warranty == selectors.warranty_context(lots=["LOT-A", "LOT-B"], now=now)
    assert (warranty.passports, warranty.not_delivered, warranty.under_warranty) == (
        2,
        1,
        1,
    )
    # No work order's lot has units: both null, as before.
    other = make_runbook("other", title="Other", prefix="oth")
    make_work_order(other, boss, lot_no="LOT-Z")
    assert selectors.custody_context(lots=_lots_of(other)) is None
    assert selectors.warranty_context(lots=_lots_of(other)) is None


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the buckets counted by PostgreSQL"
)
def test_postgresql_counts_the_warranty_buckets_as_python_does(boss):
    """PostgreSQL's cover ends (``+ make_interval(months => n)``) and buckets
    equal ``add_months`` and the Python count, at month ends and leap days,
    for every "now" around each bucket's edges."""
    made = at("2023-06-01T08:00:00")
    deliveries = [
        ("PK-1", "2024-01-31T10:00:00", 1),  # ends 2024-02-29 (leap)
        ("PK-2", "2024-01-31T10:00:00", 13),  # ends 2025-02-28
        ("PK-3", "2024-02-29T23:59:59", 12),  # ends 2025-02-28T23:59:59
        ("PK-4", "2024-03-31T00:00:01", 0),  # ends at delivery
        ("PK-5", "2024-08-31T12:30:00", 6),  # ends 2025-02-28
        ("PK-6", "2024-12-31T10:00:00", 2),  # ends 2025-02-28
    ]
    for serial, when, months in deliveries:
        pack = register(boss, serial, "LOT-W", made=made, warranty_months=months)
        deliver(boss, pack, delivered=at(when))
    register(boss, "PK-7", "LOT-W", made=made, warranty_months=24)
    units = selectors._units(["LOT-W"]).annotate(delivered_at=selectors._delivered_at())
    moments = [
        "2024-02-29T10:00:00",
        "2024-02-29T10:00:01",
        "2024-12-01T10:00:00",
        "2025-02-28T10:00:00",
        "2025-02-28T12:30:00",
        "2025-02-28T23:59:59",
        "2025-03-01T00:00:00",
    ]
    seen = set()
    for moment in moments:
        for shift in (timedelta(0), -timedelta(days=90), timedelta(days=90)):
            now = at(moment) + shift
            in_sql = selectors.warranty_context(lots=["LOT-W"], now=now)
            assert in_sql == selectors._warranty_counted_here(units, now), now
            seen.add((in_sql.expired, in_sql.expiring_soon, in_sql.under_warranty))
    assert len(seen) >= 5  # the moments moved batteries between the buckets
