"""The readings write path on PostgreSQL: the one-pass check of well-formed
batches, the COPY without a savepoint and its retry on a re-send, the round
trips a batch costs, and the roll-up marks read with the machine's lock.

The behaviour of the endpoint itself (idempotency, refusals, events) is
pinned in tests/test_readings_api.py; this file pins what the fast path must
keep equal to it.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bpmos.batch import MAX_BATCH, batch_validate
from bpmos.errors import InvalidInput
from elog import audit as elog_audit
from elog.models import AuditRecord
from lines import oee, services
from lines.models import Line, Machine, MachineHour, MachineReading
from tests.conftest import bearer
from tests.factories_lines import (
    at,
    ingest,
    machine,
    make_line,
    reading,
    row_counts,
    state,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's"
    ),
]


@pytest.fixture
def line():
    return make_line()


@pytest.fixture
def weld(line):
    return machine(line, "st-02")


def mixed_batch(n: int, start=None, seed: int = 0) -> list[dict]:
    """``n`` readings a second apart: states, counts (ints and floats), cycle
    times, a text value, a unit, a reason, a quality."""
    rng = random.Random(seed)
    start = start or at(8)
    rows = []
    for i in range(n):
        ts = start + timedelta(seconds=i)
        kind = i % 7
        if kind == 0:
            rows.append(state(ts, rng.choice(["running", "idle", "blocked"]), "x"))
        elif kind in (1, 2):
            rows.append(reading("good_count", ts, rng.choice([1, 2, 3.0])))
        elif kind == 3:
            rows.append(reading("cycle_time", ts, 19.5 + rng.random(), unit="s"))
        elif kind == 4:
            rows.append(reading("reject_count", ts, 1, quality="uncertain"))
        elif kind == 5:
            rows.append(reading("recipe", ts, "R-12"))
        else:
            rows.append(reading("temperature", ts, -3.25, unit="C", reason=None))
    return rows


def general_check(machine_id: int, rows: list):
    """The general loop alone (what every batch went through before)."""
    latest = services.timezone.now() + services.FUTURE_TOLERANCE
    return batch_validate(
        rows=rows,
        check_row=lambda row: services._check_row(row, machine_id, latest),
        key=services._READING_KEY,
        words=services._READING_WORDS,
        max_rows=MAX_BATCH,
    )


# --- the one-pass check ---------------------------------------------------------


def test_well_formed_batches_take_the_one_pass_check_with_the_same_result():
    rows = mixed_batch(500)
    rows.append(dict(rows[10]))  # a repeat within the batch, same values
    latest = services.timezone.now() + services.FUTURE_TOLERANCE
    fast = services._fast_rows(rows, 7, latest)
    assert fast is not None
    assert fast == general_check(7, rows)
    assert fast[1] == 1
    assert len(fast[0]) == 500


MUTATIONS = [
    {"ts": "2026-03-02T08:00:00"},  # no zone
    {"ts": "2026-03-02T09:30:00+05:30"},  # another zone: converted
    {"ts": "1999-12-31T23:59:59Z"},
    {"ts": "2999-01-01T00:00:00Z"},
    {"ts": 12},
    {"ts": "yesterday"},
    {"value": float("nan")},
    {"value": True},
    {"value": None},
    {"value": 2**60},
    {"tag": "good_count", "value": -1},
    {"tag": "good_count", "value": 1.5},
    {"tag": "good_count", "value": 1_000_001},
    {"tag": "cycle_time", "value": -0.5},
    {"tag": "state", "value": "dancing"},
    {"tag": "state", "value": 3},
    {"tag": "recipe", "value": "x" * 65},
    {"tag": "bad tag!"},
    {"tag": 5},
    {"quality": "great"},
    {"quality": None},
    {"reason": "x" * 201},
    {"reason": False},
    {"reason": 0},
    {"unit": "x" * 17},
    {"unit": 3},
    {"machine_id": 8},
    {"machine_id": 7},
    {"colour": "red"},
    {"reading_type": "good_count"},  # an alias beside its field
    {"timestamp": "2026-03-02T08:00:00Z"},
]


def decided(check):
    """What a check decides: its value, or the refusal's message and details."""
    try:
        return check()
    except InvalidInput as error:
        return ("refused", error.message, error.details)


@pytest.mark.parametrize("change", MUTATIONS)
def test_every_other_row_is_decided_as_the_general_check_decides(change):
    rows = mixed_batch(60)
    rows[41] = {**rows[41], **change}

    expected = decided(lambda: general_check(7, rows))
    assert decided(lambda: services.readings_validate(machine_id=7, rows=rows)) == (
        expected
    )


def polled_batch(polls: int, tags: int, start=None) -> list[dict]:
    """``polls`` polls a second apart, each of ``tags`` readings at one time
    (a gateway reading several tags at once)."""
    start = start or at(8)
    return [
        reading(
            "good_count" if k == 0 else f"temp_{k}", start + timedelta(seconds=i), k
        )
        for i in range(polls)
        for k in range(tags)
    ]


def test_readings_sharing_a_time_and_repeats_among_them_are_checked_in_one_pass():
    rows = polled_batch(40, 5)
    rows.insert(23, dict(rows[21]))  # a repeat within its time's readings
    rows.append(dict(rows[-3]))  # at the last time, after other tags
    expected = general_check(7, rows)  # (its tags are known from here on)
    latest = services.timezone.now() + services.FUTURE_TOLERANCE
    fast = services._fast_rows(rows, 7, latest)
    assert fast is not None
    assert fast == expected
    assert fast[1] == 2
    assert len(fast[0]) == 200


@pytest.mark.parametrize("seed", range(4))
def test_readings_out_of_time_order_are_checked_as_the_general_check(seed):
    rows = polled_batch(30, 3) + mixed_batch(60, start=at(7))
    rows += [dict(rows[k]) for k in (2, 50, 100)]  # repeats, same values
    tail = rows[seed * 20 :]
    random.Random(seed).shuffle(tail)
    rows[seed * 20 :] = tail
    expected = general_check(7, rows)
    latest = services.timezone.now() + services.FUTURE_TOLERANCE
    fast = services._fast_rows(rows, 7, latest)
    assert fast is not None
    assert fast == expected
    assert fast[1] == 3


ORDER_CASES = {
    # A repeat with another value among the readings of one time.
    "repeat_at_one_time": lambda rows: rows.insert(12, {**rows[10], "value": 99.0}),
    # A repeat with another value once the times have gone back.
    "repeat_after_going_back": lambda rows: rows.extend(
        [rows[40], {**rows[5], "value": 99.0}]
    ),
    # In the future, then a time that goes back: the rows before it are
    # checked against the bounds too.
    "future_then_back": lambda rows: rows.extend(
        [reading("good_count", at(8) + timedelta(days=3650), 1), rows[3]]
    ),
    "future_last": lambda rows: rows.append(
        reading("good_count", at(8) + timedelta(days=3650), 1)
    ),
    "before_2000_first": lambda rows: rows.insert(
        0, reading("good_count", at(8).replace(year=1999), 1)
    ),
    # The microsecond before 2000, first and after: the bound itself.
    "just_before_2000_first": lambda rows: rows.insert(
        0, {"tag": "good_count", "ts": "1999-12-31T23:59:59.999999Z", "value": 1}
    ),
    "just_before_2000_after_going_back": lambda rows: rows.extend(
        [
            rows[3],
            {"tag": "good_count", "ts": "1999-12-31T23:59:59.999999Z", "value": 1},
        ]
    ),
    "before_2000_after_going_back": lambda rows: rows.extend(
        [rows[3], reading("good_count", at(8).replace(year=1999), 1)]
    ),
    # Three keys, one of them not value: refused, as the general check says.
    "three_keys_unknown": lambda rows: rows.insert(
        9, {"tag": "good_count", "ts": rows[9]["ts"], "colour": "red"}
    ),
    "three_keys_machine": lambda rows: rows.insert(
        9, {"tag": "good_count", "ts": rows[9]["ts"], "machine_id": 7}
    ),
    "three_keys_quality": lambda rows: rows.insert(
        9, {"tag": "good_count", "ts": rows[9]["ts"], "quality": "good"}
    ),
}


@pytest.mark.parametrize("case", sorted(ORDER_CASES))
def test_batches_in_and_out_of_time_order_are_decided_as_the_general_check(case):
    rows = polled_batch(20, 3)
    ORDER_CASES[case](rows)

    expected = decided(lambda: general_check(7, rows))
    assert expected[0] == "refused"
    assert decided(lambda: services.readings_validate(machine_id=7, rows=rows)) == (
        expected
    )


def test_a_repeat_with_other_values_is_refused_as_before():
    rows = mixed_batch(20)
    rows.append({**rows[3], "value": 99.0})
    with pytest.raises(InvalidInput) as refused:
        services.readings_validate(machine_id=7, rows=rows)
    assert refused.value.details == {
        "rows": {"20": {"ts": [services._READING_WORDS.repeat_message]}}
    }


# --- storing ----------------------------------------------------------------------


def test_a_bad_last_row_of_a_big_batch_stores_nothing_and_keeps_the_status(
    http, weld, make_user
):
    rows = mixed_batch(1000)
    rows[999] = {**rows[999], "quality": "great"}
    before = row_counts()
    response = http.post(
        f"/api/machines/{weld.pk}/readings",
        json=rows,
        headers=bearer(make_user("operator")),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["details"]["rows"]) == ["999"]
    assert row_counts() == before
    weld.refresh_from_db()
    assert (weld.status, weld.status_since) == ("idle", None)


def test_a_resent_overlapping_batch_stores_only_the_new_rows_once_audited(weld):
    first = mixed_batch(300)
    assert ingest(weld, first) == {"accepted": 300, "duplicates": 0}
    # Overlaps the first: its COPY fails on the unique key, the write is
    # rolled back and done again through ON CONFLICT.
    more = mixed_batch(400)
    more.append(state(at(8) + timedelta(seconds=400), "down", "jam"))
    assert ingest(weld, more) == {"accepted": 101, "duplicates": 300}
    assert MachineReading.objects.filter(machine=weld).count() == 401
    records = list(
        AuditRecord.objects.filter(action="machine.readings_ingested").order_by("seq")
    )
    assert [r.after["accepted"] for r in records] == [300, 101]
    assert records[1].after["status"] == "down"
    weld.refresh_from_db()
    assert (weld.status, weld.status_reason) == ("down", "jam")
    assert weld.status_since == at(8) + timedelta(seconds=400)


def test_a_resend_inside_a_callers_transaction_rolls_back_only_its_savepoint(
    weld, line
):
    ingest(weld, mixed_batch(50))
    with transaction.atomic():  # as the SCADA collector calls it
        Line.objects.filter(pk=line.pk).update(name="Line A (renamed)")
        assert ingest(weld, mixed_batch(80)) == {"accepted": 30, "duplicates": 50}
        assert Line.objects.get(pk=line.pk).name == "Line A (renamed)"
    assert MachineReading.objects.filter(machine=weld).count() == 80
    assert Line.objects.get(pk=line.pk).name == "Line A (renamed)"


def test_the_copy_stores_what_psycopgs_row_by_row_copy_stores(weld, monkeypatch):
    from bpmos import bulk

    rows = mixed_batch(300)
    for k, text in enumerate(["tab\there", "back\\slash", "line\nbreak", "ünï €"]):
        rows[5 + 7 * k] = {**rows[5 + 7 * k], "value": text, "unit": text[:16]}
    checked, _ = services.readings_validate(machine_id=weld.pk, rows=rows)

    def stored() -> list[tuple]:
        with transaction.atomic():
            services._READINGS.copy_all(checked)
        found = list(
            MachineReading.objects.filter(machine=weld)
            .order_by("tag", "ts")
            .values_list(*services._COLUMNS)
        )
        MachineReading.objects.filter(machine=weld).delete()
        return found

    whole = stored()
    monkeypatch.setattr(bulk, "_format_row_binary", None)  # write_row per row
    assert stored() == whole
    assert whole == sorted(checked, key=lambda row: (row[1], row[2]))


def statements(captured) -> list[str]:
    return [" ".join(q["sql"].split()[:3]) for q in captured.captured_queries]


def test_a_batch_is_six_round_trips(weld):
    ingest(weld, [state(at(7), "running")])
    rows = [reading("good_count", at(8) + timedelta(seconds=i), 1) for i in range(50)]
    with CaptureQueriesContext(connection) as captured:
        ingest(weld, rows)
    lock = "SET CONSTRAINTS ALL"  # + the machine's lock and newest roll-up hour
    copy = "COPY lines_machinereading (machine_id,"
    # The audit chain's lock and head, then the record.
    audit = f"SELECT pg_advisory_xact_lock({elog_audit._CHAIN_LOCK_KEY}); SELECT"
    record = 'INSERT INTO "elog_auditrecord"'
    assert statements(captured) == ["BEGIN", lock, copy, audit, record, "COMMIT"]
    # A state reading that keeps the state: the status time is written in the
    # audit lock's round trip (still six).
    with CaptureQueriesContext(connection) as captured:
        ingest(weld, [state(at(9), "running"), reading("good_count", at(9), 2)])
    assert statements(captured) == [
        "BEGIN",
        lock,
        copy,
        "UPDATE lines_machine SET",
        record,
        "COMMIT",
    ]
    assert (
        captured.captured_queries[3]["sql"].count(
            f"SELECT pg_advisory_xact_lock({elog_audit._CHAIN_LOCK_KEY}); SELECT"
        )
        == 1
    )
    assert MachineReading.objects.filter(machine=weld).count() == 53
    stored = Machine.objects.get(pk=weld.pk)
    assert (stored.status, stored.status_since) == ("running", at(9))
    assert AuditRecord.objects.order_by("-seq").first().after["accepted"] == 2


def test_a_status_change_locks_the_line_and_reads_its_stations_at_once(weld, line):
    from bpmos.events.models import OutboxEvent

    ingest(weld, [state(at(7), "running")])
    last_event = OutboxEvent.objects.order_by("-id").values_list("id", flat=True)[0]
    with CaptureQueriesContext(connection) as captured:
        ingest(weld, [state(at(9), "down"), reading("good_count", at(9), 2)])
    names = list(
        OutboxEvent.objects.filter(id__gt=last_event)
        .order_by("id")
        .values_list("name", flat=True)
    )
    sent = statements(captured)
    # The line's lock and its stations-and-machines join: one round trip.
    line_lock = captured.captured_queries[3]["sql"]
    assert line_lock.startswith('SELECT "id", "slug"')
    assert "FOR NO KEY UPDATE; SELECT s." in line_lock
    assert sent == [
        "BEGIN",
        "SET CONSTRAINTS ALL",
        "COPY lines_machinereading (machine_id,",
        'SELECT "id", "slug",',
        "SELECT oee FROM",
        # The station's and the line's events: one statement.
        "WITH ids AS",
        # The machine's status write with the audit chain's lock and head.
        "UPDATE lines_machine SET",
        'INSERT INTO "elog_auditrecord"',
        "COMMIT",
    ]
    stored = Machine.objects.get(pk=weld.pk)
    assert (stored.status, stored.status_since) == ("down", at(9))
    record = AuditRecord.objects.order_by("-seq").first()
    assert (record.before, record.after["status"]) == (
        {"status": "running", "status_reason": ""},
        "down",
    )
    assert names == ["station.changed", "line.changed"]


def test_a_late_reading_marks_its_rolled_up_hour_stale(weld, line):
    ingest(
        weld,
        [state(at(8), "running"), reading("good_count", at(8, 10), 5)],
    )
    services.machine_hours_refresh(now=at(10, 30))
    assert not MachineHour.objects.filter(machine=weld, is_stale=True).exists()
    # A late count into 08:00-09:00, rolled up already: stale until beat.
    ingest(weld, [reading("good_count", at(8, 20), 7)])
    assert list(
        MachineHour.objects.filter(machine=weld, is_stale=True).values_list(
            "hour", flat=True
        )
    ) == [at(8)]
    services.machine_hours_refresh(now=at(10, 30))
    assert oee.line_oee(line, at(8), at(10)) == oee.line_oee(
        line, at(8), at(10), hourly=False
    )
    assert MachineHour.objects.get(machine=weld, hour=at(8)).good_count == 12


def test_readings_of_a_machine_without_roll_ups_mark_nothing(weld):
    assert ingest(weld, [reading("good_count", at(8), 1)])["accepted"] == 1
    assert not MachineHour.objects.filter(machine=weld).exists()
    assert Machine.objects.get(pk=weld.pk).status_since is None
