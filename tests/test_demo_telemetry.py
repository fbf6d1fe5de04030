"""The demo's pack telemetry history (passports/demo.py): every pack in the field
has an hourly BMS sample for the trend window (30 days), stored through the
telemetry service, with SoH slowly declining, SoC cycling daily and temperature
following the day, so the trend endpoints show weeks of history."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from rest_framework.test import APIClient

from bpmos.accounts.models import User
from elog.models import AuditRecord
from passports.models import EventKind, Passport, TelemetryReading
from passports.telemetry import TREND_DAYS, telemetry_summary
from tests.conftest import bearer

pytestmark = pytest.mark.django_db


def in_field():
    return Passport.objects.filter(telemetry__isnull=False).distinct()


def test_in_field_packs_have_hourly_samples_over_the_trend_window(demo_plant):
    packs = list(in_field())
    assert len(packs) == 4
    assert {p.state for p in packs} <= {"in_service", "dispatched"}
    for pack in packs:
        times = list(pack.telemetry.order_by("ts").values_list("ts", flat=True))
        assert len(times) == TREND_DAYS * 24 + 1
        gaps = {later - earlier for earlier, later in pairwise(times)}
        assert {gap.total_seconds() for gap in gaps} == {3600.0}
        assert all(t.minute == t.second == t.microsecond == 0 for t in times)
        assert times[0] > pack.events.get(kind=EventKind.DELIVERED).occurred_at


def test_the_history_has_the_shapes_of_a_pack_in_use(demo_plant):
    for pack in in_field():
        # Over the pack's own 30 days (one at the service centre ended 3 days ago).
        summary = telemetry_summary(pack, now=pack.telemetry_at)
        days = [day for day in summary["daily"] if day["readings"] == 24]
        assert len(days) >= TREND_DAYS - 2  # whole days (the edges may be partial)
        # SoH declines slowly: a little over the month, never up day to day.
        assert -2 < summary["sohChange"] < 0
        soh = [day["sohAvg"] for day in days]
        assert soh == sorted(soh, reverse=True)
        # SoC cycles every day; temperature follows the day.
        for day in days:
            socs = list(
                TelemetryReading.objects.filter(
                    passport=pack, ts__date=day["day"]
                ).values_list("soc_percent", flat=True)
            )
            assert max(socs) - min(socs) > 10
            assert min(socs) >= 5
            assert max(socs) <= 100
            assert day["temperatureMax"] - day["temperatureMin"] > 6
            assert day["temperatureMin"] >= -40
            assert day["temperatureMax"] <= 125


def test_stored_through_the_telemetry_service_and_summarised(demo_plant):
    records = AuditRecord.objects.filter(action="passport.telemetry_ingested")
    assert records.count() == 4  # one batch per pack
    assert {r.after["accepted"] for r in records} == {TREND_DAYS * 24 + 1}
    for pack in in_field():
        last = pack.telemetry.order_by("ts").last()
        assert (pack.soh_percent, pack.soc_percent, pack.telemetry_at) == (
            last.soh_percent,
            last.soc_percent,
            last.ts,
        )


def test_the_trend_endpoint_shows_the_month(demo_plant):
    # A pack still reporting: its default window (the last 30 days) is full.
    recent = in_field().order_by("-telemetry_at").first()
    pack = (
        in_field()
        .filter(telemetry_at__gte=recent.telemetry_at - timedelta(hours=1))
        .first()
    )
    client = APIClient()
    client.credentials(
        **{
            "HTTP_AUTHORIZATION": bearer(User.objects.get(username="auditor"))[
                "Authorization"
            ]
        }
    )
    response = client.get(f"/api/passports/{pack.serial}/telemetry")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["readings"] == TREND_DAYS * 24 + 1
    assert len(body["daily"]) >= TREND_DAYS - 1
