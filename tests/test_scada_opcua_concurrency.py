"""Batches of one counter stored at once (the collector's subscription and a
supervisor's poll): each counts from the value the other stored, so lines
receives every piece once, however the threads interleave.

PostgreSQL only: SQLite serialises whole transactions and ignores
``select_for_update``, so the race this guards against cannot happen there.
Each thread has its own database connection and all start at a barrier.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from lines.models import MachineReading
from scada import readings
from scada.models import Connector, Tag, TagKind
from tests.factories_lines import machine, make_line
from tests.support import run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]

ROUNDS = 5
THREADS = 6


def race(calls) -> None:
    """Each call in its own thread, all at once; none may fail."""
    results = run_together(calls, timeout=60)
    assert [r for r in results if isinstance(r, BaseException)] == []


def test_concurrent_batches_of_a_counter_count_each_piece_once():
    weld = machine(make_line(), "st-02")
    connector = Connector.objects.create(
        name="PLC", kind="opcua", endpoint="opc.tcp://127.0.0.1:4840"
    )
    Tag.objects.create(
        connector=connector,
        node_id="ns=2;s=Good",
        tag_name="weld.good",
        machine=weld,
        kind=TagKind.GOOD_COUNT,
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def store(second: int, value: int):
        reading = {
            "timestamp": start + timedelta(seconds=second),
            "tag_name": "weld.good",
            "value": value,
            "unit": "pcs",
            "quality": "good",
            "alarm_state": "normal",
        }
        return lambda: readings.readings_store(
            connector_id=connector.pk, readings=[reading]
        )

    store(0, 1000)()  # the baseline
    counter = 1000
    for round_ in range(ROUNDS):
        calls = []
        for n in range(THREADS):
            second = 1 + round_ * THREADS + n
            calls.append(store(second, counter + 10 * (n + 1)))
        race(calls)
        counter += 10 * THREADS
        # Whatever the order, the pieces counted add up to the counter's rise
        # (a newer batch first makes the older ones count nothing).
        total = MachineReading.objects.filter(machine=weld, tag="good_count").aggregate(
            total=Sum("value")
        )["total"]
        assert total == counter - 1000
