"""The demo plant's passports: every lifecycle state, genealogy to the cell,
custody through every custodian kind, dispatch jobs live and past, valid BPANs,
ledgers that verify, telemetry summarised, a battery given a second life (its
passports linked both ways, on their public pages too), and a re-seed that
changes nothing."""

import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.test import Client

from bpmos.dashboards import controltower
from passports import bpan, demo, ledger
from passports.dispatch import selectors as dispatch_selectors
from passports.models import (
    CustodianKind,
    DispatchJob,
    EventKind,
    JobState,
    Passport,
    PassportEvent,
    State,
    TelemetryReading,
)
from runbooks.models import WorkOrder

pytestmark = pytest.mark.django_db


def test_packs_in_every_lifecycle_state_some_on_hold(demo_plant):
    packs = Passport.objects.filter(kind="pack")
    states = Counter(packs.values_list("state", flat=True))
    # Packs are never assembled; one was repurposed (Superseded, and its new
    # passport is Manufactured).
    assert set(states) == set(State.values) - {State.ASSEMBLED}
    assert states == {
        "manufactured": 2,
        "qa_passed": 1,
        "qa_failed": 1,
        "provisioned": 1,
        "warehoused": 4,
        "reserved": 2,
        "dispatched": 1,
        "in_service": 6,
        "end_of_life": 2,
        "recycled": 1,
        "superseded": 1,
    }
    assert sorted(packs.filter(on_hold=True).values_list("state", flat=True)) == [
        "qa_passed",
        "reserved",
        "warehoused",
    ]
    # Every pack was provisioned on the way out of the line (simulated BMS).
    provisioned = PassportEvent.objects.filter(kind=EventKind.PROVISIONED)
    assert {e.data["simulated"] for e in provisioned} == {True}
    assert (
        provisioned.count()
        == packs.exclude(state__in=["manufactured", "qa_passed"]).count()
    )
    # The new passport of the repurposed pack starts a new ledger: not
    # provisioned (yet), and not one of the demo's pack specs.
    assert packs.filter(predecessor__isnull=False).count() == 1


def test_genealogy_cells_in_modules_in_packs(demo_plant):
    traced = Passport.objects.filter(kind="pack", components__isnull=False).distinct()
    assert sorted(traced.values_list("lot", "state")) == [
        ("LOT-LFP48-0403", "provisioned"),
        ("LOT-LFP48-0403", "qa_failed"),
    ]
    for pack in traced:
        modules = list(pack.components.all())
        assert len(modules) == demo.MODULES_PER_PACK
        for module in modules:
            assert (module.kind, module.state, module.lot) == (
                "module",
                "assembled",
                pack.lot,
            )
            cells = module.components.all()
            assert cells.count() == demo.CELLS_PER_MODULE
            assert set(cells.values_list("kind", "state")) == {("cell", "assembled")}
    # Spare cells: graded, loose, one rejected.
    spares = Passport.objects.filter(kind="cell", parent__isnull=True)
    assert Counter(spares.values_list("lot", "state")) == {
        ("LOT-LFP48-0406", "qa_passed"): 3,
        ("LOT-LFP48-0406", "qa_failed"): 1,
    }
    # Assembly is recorded in order: each cell's assembled event follows its QA.
    for cell in Passport.objects.filter(kind="cell", parent__isnull=False)[:4]:
        kinds = list(cell.events.values_list("kind", flat=True))
        assert kinds == ["manufactured", "qa_passed", "assembled"]
        times = list(cell.events.values_list("occurred_at", flat=True))
        assert times == sorted(times)


def test_custody_through_every_custodian_kind(demo_plant):
    packs = Passport.objects.filter(kind="pack")
    assert set(packs.values_list("custodian_kind", flat=True)) == set(
        CustodianKind.values
    )
    transfers = PassportEvent.objects.filter(kind=EventKind.CUSTODY_TRANSFERRED)
    assert sorted(e.data["to"]["kind"] for e in transfers) == [
        "customer",
        "recycler",
        "recycler",
        "service",
        "service",
    ]
    recycled = packs.get(state="recycled")
    assert list(recycled.events.values_list("kind", flat=True)) == [
        "manufactured",
        "qa_passed",
        "provisioned",
        "warehoused",
        "dispatched",
        "delivered",
        "end_of_life",
        "custody_transferred",
        "recycled",
    ]


def test_every_ledger_verifies_and_replays_to_its_row(demo_plant):
    result = ledger.verify()
    assert result.ok is True
    assert result.passports == Passport.objects.count()
    assert result.events == PassportEvent.objects.count()
    # Events are in time order within every ledger.
    for passport in Passport.objects.filter(kind="pack"):
        times = list(passport.events.values_list("occurred_at", flat=True))
        assert times == sorted(times), passport.serial


def test_packs_carry_valid_bpans_that_match_their_data(demo_plant):
    packs = list(Passport.objects.filter(kind="pack"))
    # Every demo pack and the repurposed pack's new passport (a new BPAN).
    assert len({p.bpan for p in packs}) == len(packs) == len(demo.PACKS) + 1
    for pack in packs:
        parsed = bpan.parse(pack.bpan)
        assert (parsed.country, parsed.manufacturer, parsed.plant) == (
            "IN",
            demo.MANUFACTURER_CODE,
            demo.PLANT_CODE,
        )
        assert parsed.chemistry == pack.chemistry
        assert parsed.nominal_voltage_v == round(pack.nominal_voltage_v)
        assert (parsed.year, parsed.month) == (
            pack.manufactured_at.year,
            pack.manufactured_at.month,
        )
    assert not Passport.objects.exclude(kind="pack").filter(bpan__isnull=False)


def test_dispatch_jobs_live_past_and_reactivated(demo_plant):
    latest = {
        p.serial: dispatch_selectors.latest_job(p)
        for p in Passport.objects.filter(dispatch_jobs__isnull=False).distinct()
    }
    reasons = Counter((job.state, job.reason) for job in latest.values())
    assert reasons == {
        ("ON", "warehoused"): 4,
        ("ON", "Field trial postponed; back on sale"): 1,
        ("OFF", "Customer order cancelled"): 1,
        ("OFF", "dispatched"): 11,
    }
    # Live and shippable: one warehoused, one reactivated, one reserved; the
    # held ones stay live but not dispatchable.
    assert sorted(
        dispatch_selectors.dispatchable_queryset().values_list("state", flat=True)
    ) == [
        "reserved",
        "warehoused",
        "warehoused",
    ]
    assert DispatchJob.objects.filter(state=JobState.ON).count() == 5
    moved = PassportEvent.objects.filter(kind=EventKind.MOVED_TO_PAST)
    assert sorted(e.data["reason"] for e in moved) == [
        "Customer order cancelled",
        "Set aside for a field trial",
    ]
    assert PassportEvent.objects.filter(kind=EventKind.REACTIVATED).count() == 1


def test_a_repurposed_pack_and_its_new_passport_linked_both_ways(demo_plant):
    """The second-life story a new user finds: an EV pack retired at end of
    life, repurposed as stationary storage through the service; the old
    passport Superseded, the new one registered from it, both Repurposed,
    linked both ways in the ledgers, the API and the public pages."""
    old = Passport.objects.get(kind="pack", state=State.SUPERSEDED)
    (new,) = old.successors.all()
    spec = next(s for s in demo.PACKS if s.second_life)
    assert old.lot == new.lot == spec.lot
    assert new.serial == old.serial.replace("PK-", "RP-")
    assert new.predecessor_id == old.pk
    assert old.battery_status == new.battery_status == "repurposed"
    assert (new.state, new.battery_category) == (State.MANUFACTURED, "stationary")
    assert (new.custodian_kind, new.custodian_name) == (
        "manufacturer",
        demo.MANUFACTURER,
    )
    assert new.bpan
    assert new.bpan != old.bpan
    assert bpan.parse(new.bpan).manufacturer == demo.MANUFACTURER_CODE
    assert list(old.events.values_list("kind", flat=True))[-2:] == [
        "end_of_life",
        "repurposed",
    ]
    assert old.events.last().data["successor"]["id"] == str(new.uuid)
    assert list(new.events.values_list("kind", flat=True)) == ["registered_from"]
    assert new.events.get().data["predecessor"]["id"] == str(old.uuid)
    # Through HTTP, anonymously: the public passport and the public pages.
    client = Client()
    public = client.get(f"/api/passports/{new.uuid}/public").json()
    assert public["batteryStatus"] == "Repurposed"
    assert public["secondLife"]["predecessor"]["id"] == str(old.uuid)
    old_page = client.get(f"/p/{old.uuid}").content.decode()
    assert f'<li data-link="successor"><a href="/p/{new.uuid}"' in old_page
    new_page = client.get(f"/p/{new.uuid}").content.decode()
    assert f'<li data-link="predecessor"><a href="/p/{old.uuid}"' in new_page
    assert 'data-battery-status="Repurposed"' in new_page
    # One battery, counted once in custody: as its new passport.
    from passports import selectors

    assert selectors.custody_mix() == selectors.custody_mix_recount()


def test_field_telemetry_summarised_on_the_passport(demo_plant):
    in_field = Passport.objects.filter(telemetry__isnull=False).distinct()
    assert in_field.count() == 4
    for pack in in_field:
        readings = pack.telemetry.order_by("ts")
        last = readings.last()
        span = last.ts - readings.first().ts
        assert span.days == 30
        assert readings.count() == 30 * 24 + 1  # every hour
        assert (pack.soh_percent, pack.soc_percent, pack.temperature_c) == (
            last.soh_percent,
            last.soc_percent,
            last.temperature_c,
        )
        assert pack.telemetry_at == last.ts
        assert 5 <= min(r.soc_percent for r in readings) <= 100
        delivered = pack.events.get(kind=EventKind.DELIVERED).occurred_at
        assert readings.first().ts > delivered
    assert TelemetryReading.objects.count() == 4 * (30 * 24 + 1)


def test_lots_match_the_demo_work_orders(demo_plant):
    work_order_lots = set(WorkOrder.objects.values_list("lot_no", flat=True))
    recent = {"LOT-LFP48-0401", "LOT-ESS51-0402", "LOT-LFP48-0403"}
    recent |= {"LOT-LFP48-0406", "LOT-ESS51-0408"}
    assert recent <= work_order_lots
    assert recent <= set(Passport.objects.values_list("lot", flat=True))
    detail = controltower.runbook_detail_get(slug="dispatch")
    mix = {share.kind: share.count for share in detail.custody.mix}
    assert mix == {
        "Manufacturer": 8,
        "Logistics": 1,
        "Customer": 2,
        "Service": 0,
        "Recycler": 0,
    }
    assert (detail.warranty.under_warranty, detail.warranty.not_delivered) == (2, 9)


def test_second_seed_changes_nothing(demo_plant):
    counts = {
        model: model.objects.count()
        for model in (Passport, PassportEvent, DispatchJob, TelemetryReading)
    }
    heads = dict(Passport.objects.values_list("serial", "head_hash"))
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "passports: already present" in out.getvalue()
    assert {model: model.objects.count() for model in counts} == counts
    assert dict(Passport.objects.values_list("serial", "head_hash")) == heads
