"""The demo lines: every station state and line mode on screen, idempotent."""

from datetime import UTC, datetime

import pytest
import time_machine

from elog.models import AuditRecord
from lines import demo, selectors
from lines.models import Line, MachineReading

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seeded(monkeypatch):
    monkeypatch.setattr(demo, "DAYS", 1)  # a day is enough to check the shape
    # Mid-shift, ticking on: the snapshots the seed computes are still the
    # current shift's when the test reads them (across 14:00 they were not).
    with time_machine.travel(datetime(2026, 3, 2, 10, tzinfo=UTC), tick=True):
        demo.seed(lambda message: None)
        yield


def test_demo_shows_every_station_state_and_the_modes(seeded):
    views = {view.id: view for view in selectors.line_status_list()}
    assert list(views) == ["line-c", "line-a", "line-p"]
    assert {str(s.state) for v in views.values() for s in v.stations} == {
        "Ready",
        "Running",
        "Blocked",
        "Idle",
    }
    assert {k: str(v.mode) for k, v in views.items()} == {
        "line-c": "Running",
        "line-a": "Blocked",
        "line-p": "Maintenance",
    }
    weld = views["line-a"].stations[1]
    assert (weld.name, weld.reason) == ("Weld", "Safety Curtain")
    assert all(v.oee is not None for v in views.values())  # snapshots computed


def test_demo_readings_were_ingested_and_audited_per_batch(seeded):
    assert MachineReading.objects.count() > 1000
    batches = AuditRecord.objects.filter(action="machine.readings_ingested")
    assert batches.count() < MachineReading.objects.count() / 50
    assert set(batches.values_list("actor_username", flat=True)) == {"scada-gateway"}


def test_demo_is_idempotent(seeded):
    counts = (Line.objects.count(), MachineReading.objects.count())
    demo.seed(lambda message: None)
    assert (Line.objects.count(), MachineReading.objects.count()) == counts
