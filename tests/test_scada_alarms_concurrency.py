"""Alarms raised from several processes at once (collectors, the beat pass,
the poll endpoint): the rule's and the connector's row locks give exactly one
alarm, and an acknowledgement racing a return leaves a state ISA-18.2 allows.

PostgreSQL only: SQLite serialises whole transactions and ignores
``select_for_update``. Each thread has its own connection; all start together.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from scada import alarms
from scada.models import AlarmEvent, AlarmHistory, AlarmState, ScadaReading
from tests.support import outcome_code, run_together
from tests.test_scada_alarms import T0, make_connector, make_rule, make_tag

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]

THREADS = 8


def race(calls) -> list[str]:
    """Each call in its own thread, all at once: "ok" or the error code."""
    return [outcome_code(result) for result in run_together(calls, timeout=60)]


def test_same_readings_evaluated_at_once_raise_one_alarm():
    tag = make_tag(make_connector())
    make_rule(tag)
    rows = [
        ScadaReading.objects.create(
            tag=tag,
            tag_name=tag.tag_name,
            timestamp=T0 + timedelta(seconds=i),
            value=90.0 + i,
        )
        for i in range(3)
    ]
    outcomes = race(
        [lambda: alarms.readings_evaluate(readings=rows) for _ in range(THREADS)]
    )
    assert outcomes == ["ok"] * THREADS
    assert AlarmEvent.objects.count() == 1
    assert AlarmHistory.objects.filter(change="raised").count() == 1


def test_collectors_raising_comm_loss_at_once_raise_one_alarm():
    connector = make_connector("plc-race")
    outcomes = race(
        [
            lambda: alarms.comm_loss_raise(connector_id=connector.pk, error="down")
            for _ in range(THREADS)
        ]
    )
    assert outcomes == ["ok"] * THREADS
    assert AlarmEvent.objects.filter(kind="comm_loss").count() == 1


def test_acknowledge_racing_the_return_ends_in_a_consistent_state(make_user):
    operator = make_user("operator")
    tag = make_tag(make_connector())
    make_rule(tag)
    [alarm] = alarms.readings_evaluate(
        readings=[
            ScadaReading.objects.create(
                tag=tag, tag_name=tag.tag_name, timestamp=T0, value=95.0
            )
        ]
    )
    back = ScadaReading.objects.create(
        tag=tag, tag_name=tag.tag_name, timestamp=T0 + timedelta(seconds=5), value=50.0
    )
    outcomes = race(
        [
            lambda: alarms.alarm_acknowledge(alarm_id=alarm.pk, actor=operator),
            lambda: alarms.readings_evaluate(readings=[back]),
        ]
    )
    assert sorted(outcomes) == ["ok", "ok"]
    alarm.refresh_from_db()
    # Whichever came first, acknowledged and returned is normal (closed).
    assert (alarm.status, alarm.active) == (AlarmState.NORMAL, False)
    assert alarm.closed_at is not None
