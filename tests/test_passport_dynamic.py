"""The dynamic data of a pack's passport (passports/dynamic.py): the fold's
bounds as properties, hand-computed examples, and the summary kept by the
telemetry route (in order, out of order, re-sent) on the real database, shown
by ``/attributes`` under its tier with its ``lastUpdate``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from bpmos.roles import Role
from passports import dynamic
from passports.dynamic import Limits, Usage, fold, summary
from passports.models import EventKind, PackUsage, Passport, TelemetryReading
from tests.conftest import bearer
from tests.factories_passports_api import a_bpan, append, register
from tests.support_hypothesis import examples

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample(seconds, *, soc=None, temp=None, volt=None, cur=None, soh=None):
    return (at(seconds), soh, soc, temp, volt, cur)


# --- hand-computed examples ---------------------------------------------------------


def test_a_charge_and_discharge_by_hand():
    # 48 V at 50 A for 30 min, then -50 A for 30 min, then a last sample:
    # energy 48 * 50 * 1 h = 2.4 kWh, charge 50 A * 1 h = 50 Ah.
    # SoC 20 -> 70 -> 20 -> 30: travel 50 + 50 + 10 = 110 points: 0 cycles.
    samples = []
    for minute in range(0, 31, 10):  # 4 samples: 0,10,20,30 charge
        soc = 20 + minute * 50 / 30
        samples.append(sample(minute * 60, soc=soc, volt=48.0, cur=50.0))
    for minute in range(40, 61, 10):  # 40,50,60: discharge
        soc = 70 - (minute - 30) * 50 / 30
        samples.append(sample(minute * 60, soc=soc, volt=48.0, cur=-50.0))
    samples.append(sample(3660, soc=30.0))
    state = fold(Usage(), samples, Limits())
    out = summary(state)
    # 0-30 min at +50 A, 30-60 min at the 30-min sample's +50 A then -50 A:
    # every interval holds 50 A in magnitude for 60 min; 60->61 min holds
    # the 60-min sample's -50 A for one more minute.
    assert out["capacity_throughput_ah"] == Decimal("50.83")
    assert out["energy_throughput_kwh"] == Decimal("2.440")
    assert state.soc_travel == Decimal("110")
    assert out["full_cycles"] == 0
    assert out["usage_updated_at"] == at(3660)
    assert out["deep_discharge_events"] == 0
    assert out["overcharge_events"] == 0


def test_two_full_cycles_need_four_hundred_points_of_travel():
    socs = [100, 0, 100, 0, 99]
    state = fold(Usage(), [sample(i * 60, soc=s) for i, s in enumerate(socs)], Limits())
    assert state.soc_travel == Decimal(399)
    assert summary(state)["full_cycles"] == 1
    state = fold(state, [sample(10 * 60, soc=100)], Limits())
    assert summary(state)["full_cycles"] == 2


def test_time_beyond_the_temperature_range_and_the_extremes():
    limits = Limits(temperature_min=-10, temperature_max=45)
    temps = [20, 50, 50, 20, -15, 20]  # one sample each minute
    state = fold(Usage(), [sample(i * 60, temp=t) for i, t in enumerate(temps)], limits)
    out = summary(state)
    assert out["time_above_max_temperature_s"] == 120  # the two 50 °C minutes
    assert out["time_below_min_temperature_s"] == 60
    assert (out["temperature_min_c"], out["temperature_max_c"]) == (-15, 50)


def test_a_gap_longer_than_the_limit_adds_no_time_or_energy():
    limits = Limits(temperature_min=-10, temperature_max=45)
    state = fold(
        Usage(),
        [
            sample(0, temp=50, volt=48, cur=10),
            sample(3600, temp=50, volt=48, cur=10),  # an hour later: a gap
            sample(3660, temp=20, volt=48, cur=10),
        ],
        limits,
    )
    out = summary(state)
    assert out["time_above_max_temperature_s"] == 60
    assert out["capacity_throughput_ah"] == Decimal("0.17")  # 10 A for a minute


def test_deep_discharge_and_overcharge_count_entries_not_samples():
    limits = Limits(voltage_min=40, voltage_max=58.4)
    samples = [
        sample(0, soc=50, volt=50),
        sample(60, soc=4, volt=45),  # deep (SoC) : 1
        sample(120, soc=3, volt=39),  # still deep
        sample(180, soc=10),  # out
        sample(240, volt=39.5),  # deep (voltage) : 2
        sample(300, temp=20),  # neither: stays deep
        sample(360, soc=20, volt=41),  # out
        sample(420, volt=59),  # over : 1
        sample(480, volt=60),  # still over
        sample(540, volt=55),  # out
        sample(600, volt=58.5),  # over : 2
    ]
    out = summary(fold(Usage(), samples, limits))
    assert out["deep_discharge_events"] == 2
    assert out["overcharge_events"] == 2


def test_overcharge_needs_a_declared_maximum_voltage():
    out = summary(fold(Usage(), [sample(0, volt=999)], Limits()))
    assert out["overcharge_events"] == 0


def test_fold_refuses_a_sample_not_newer_than_the_state():
    state = fold(Usage(), [sample(60, soc=50)], Limits())
    with pytest.raises(ValueError, match="newer than the state"):
        fold(state, [sample(60, soc=40)], Limits())


def test_no_sample_no_summary():
    assert set(summary(Usage()).values()) == {None}


# --- properties ---------------------------------------------------------------------

samples_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=3600),  # seconds after the last
        st.none() | st.floats(0, 100),  # soh
        st.none() | st.floats(0, 100),  # soc
        st.none() | st.floats(-40, 125),  # temperature
        st.none() | st.floats(0, 2000),  # voltage
        st.none() | st.floats(-5000, 5000),  # current
    ),
    max_size=40,
)


def _timed(raw) -> list[tuple]:
    out, t = [], 0
    for step, *values in raw:
        t += step
        out.append((at(t), *values))
    return out


limits_strategy = st.builds(
    Limits,
    temperature_min=st.floats(-40, 0),
    temperature_max=st.floats(1, 125),
    voltage_min=st.none() | st.floats(0, 60),
    voltage_max=st.none() | st.floats(40, 2000),
)


@settings(max_examples=examples(200))
@given(raw=samples_strategy, limits=limits_strategy, cut=st.integers(0, 40))
def test_bounds_and_batching_do_not_change_the_answer(raw, limits, cut):
    samples = _timed(raw)
    whole = fold(Usage(), samples, limits)
    out = summary(whole)
    # Split anywhere: two batches give the very same state as one.
    assert fold(fold(Usage(), samples[:cut], limits), samples[cut:], limits) == whole
    if not samples:
        return
    span = (samples[-1][0] - samples[0][0]).total_seconds()
    assert out["full_cycles"] >= 0
    socs = [s[2] for s in samples if s[2] is not None]
    # Each step of SoC moves at most 100 points.
    assert out["full_cycles"] <= max(len(socs) - 1, 0) * 100 // 200
    assert 0 <= out["time_above_max_temperature_s"] <= span
    assert 0 <= out["time_below_min_temperature_s"] <= span
    assert (
        out["time_above_max_temperature_s"] + out["time_below_min_temperature_s"]
        <= span
    )
    assert out["energy_throughput_kwh"] >= 0
    assert out["capacity_throughput_ah"] >= 0
    # |I| <= 5000 A over at most ``span`` seconds.
    assert out["capacity_throughput_ah"] <= Decimal(5000 * span / 3600) + 1
    temps = [s[3] for s in samples if s[3] is not None]
    assert out["temperature_min_c"] == (min(temps) if temps else None)
    assert out["temperature_max_c"] == (max(temps) if temps else None)
    # An event is an entry: never more than the samples, nor than half of
    # them plus one (between two entries there is an exit).
    n = len(samples)
    for key in ("deep_discharge_events", "overcharge_events"):
        assert 0 <= out[key] <= (n + 1) // 2
    assert out["usage_updated_at"] == samples[-1][0]
    assert whole.samples == n


# --- the route, the database, the tier ---------------------------------------------


@pytest.fixture
def pack(make_user) -> Passport:
    boss = make_user(Role.SUPERVISOR, username="dyn-boss")
    pack = register(
        boss,
        "PACK-DYN-00001",
        bpan=a_bpan("00071"),
        battery_category="ev",
        minimum_voltage_v=Decimal("40"),
        maximum_voltage_v=Decimal("58.4"),
        idle_temperature_min_c=Decimal("-10"),
        idle_temperature_max_c=Decimal("45"),
    )
    append(boss, pack, EventKind.QA_PASSED)
    return pack


def post(user, pack: Passport, rows):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user)["Authorization"])
    return client.post(f"/api/passports/{pack.uuid}/telemetry", rows, format="json")


def rows_of(samples):
    out = []
    for ts, soh, soc, temp, volt, cur in samples:
        row = {"ts": ts.isoformat()}
        for key, value in (
            ("sohPercent", soh),
            ("socPercent", soc),
            ("temperatureC", temp),
            ("voltageV", volt),
            ("currentA", cur),
        ):
            if value is not None:
                row[key] = value
        out.append(row)
    return out


def _day():
    """A pack's hour: 80 -> 10 -> 90 % SoC, a hot spell, a deep discharge."""
    out = []
    for minute in range(61):
        soc = 80 - minute * 2.3 if minute <= 35 else (minute - 35) * 3.5
        soc = round(max(min(soc, 100), 0), 3)
        temp = 50.0 if 20 <= minute < 25 else 25.0
        cur = -40.0 if minute <= 35 else 30.0
        out.append((at(minute * 60), 97.5, soc, temp, 44 + soc / 10, cur))
    return out


def test_the_route_keeps_the_summary_and_attributes_show_it(make_user, pack):
    floor = make_user(Role.OPERATOR, username="dyn-floor")
    samples = _day()
    expected = summary(fold(Usage(), samples, dynamic.limits_of(pack)))
    assert expected["deep_discharge_events"] == 1  # SoC 8, 6, 4 % ... < 5
    assert expected["time_above_max_temperature_s"] == 300
    # In three batches, the middle one sent twice.
    assert post(floor, pack, rows_of(samples[:20])).status_code == 201
    assert post(floor, pack, rows_of(samples[20:40])).status_code == 201
    assert post(floor, pack, rows_of(samples[20:40])).status_code == 200
    assert post(floor, pack, rows_of(samples[40:])).status_code == 201
    pack.refresh_from_db()
    for name, value in expected.items():
        assert getattr(pack, name) == value, name
    assert PackUsage.objects.get(passport=pack).samples == len(samples)

    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=bearer(make_user(Role.SUPERVISOR))["Authorization"]
    )
    body = client.get(f"/api/passports/{pack.uuid}/attributes").json()
    shown = {row["key"]: row for row in body["attributes"]}
    last = "2026-06-01T09:00:00Z"
    assert shown["numberOfFullCycles"]["value"] == expected["full_cycles"]
    assert shown["numberOfFullCycles"]["lastUpdate"] == last
    assert shown["deepDischargeEvents"]["value"] == 1
    assert shown["timeInExtremeTemperatures"]["value"] == {
        "aboveMaximumS": 300,
        "belowMinimumS": 0,
    }
    assert shown["energyThroughput"]["value"] == float(
        expected["energy_throughput_kwh"]
    )
    assert shown["stateOfHealth"]["value"] == 97.5
    assert shown["stateOfHealth"]["lastUpdate"] == last
    assert shown["remainingCapacity"]["value"] == 97.5  # 100 Ah * 97.5 %
    assert shown["stateOfCharge"]["lastUpdate"] == last
    for key in ("numberOfFullCycles", "stateOfHealth", "deepDischargeEvents"):
        assert shown[key]["tier"] == "legitimate_interest"
    # The public does not see them.
    public = APIClient().get(f"/api/passports/{pack.uuid}/attributes").json()
    assert "numberOfFullCycles" not in {row["key"] for row in public["attributes"]}


def test_a_late_batch_refolds_the_pack_in_time_order(make_user, pack):
    floor = make_user(Role.OPERATOR, username="dyn-floor")
    samples = _day()
    expected = summary(fold(Usage(), samples, dynamic.limits_of(pack)))
    assert post(floor, pack, rows_of(samples[30:])).status_code == 201
    assert post(floor, pack, rows_of(samples[:30])).status_code == 201  # older
    pack.refresh_from_db()
    for name, value in expected.items():
        assert getattr(pack, name) == value, name


def test_reading_the_attributes_reads_no_sample(make_user, pack):
    floor = make_user(Role.OPERATOR, username="dyn-floor")
    post(floor, pack, rows_of(_day()))
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=bearer(make_user(Role.SUPERVISOR))["Authorization"]
    )
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/passports/{pack.uuid}/attributes").status_code == 200
    table = TelemetryReading._meta.db_table
    assert not [q for q in queries.captured_queries if table in q["sql"]]


def test_the_ingest_audit_record_carries_the_usage(make_user, pack):
    from elog.models import AuditRecord

    floor = make_user(Role.OPERATOR, username="dyn-floor")
    post(floor, pack, rows_of(_day()[:5]))
    record = AuditRecord.objects.filter(action="passport.telemetry_ingested").last()
    assert record.after["usage"]["deep_discharge_events"] == 0


def test_completeness_asks_the_dynamic_attributes_once_in_service(make_user, pack):
    # The one validator: an EV pack in service misses its usage summary until
    # telemetry arrives, then has every dynamic attribute present and valid.
    from passports import attributes

    dynamic_keys = {
        a.key
        for a in attributes.ATTRIBUTES
        if a.dynamic and a.source == attributes.Source.TELEMETRY
    }
    values = {**attributes.values_of(pack), "state": "in_service"}
    missing = {a.key for a in attributes.completeness(values).missing}
    assert dynamic_keys - {"capacityThroughput"} <= missing  # not mandatory
    floor = make_user(Role.OPERATOR, username="dyn-floor")
    post(floor, pack, rows_of(_day()))
    pack.refresh_from_db()
    values = {**attributes.values_of(pack), "state": "in_service"}
    missing = {a.key for a in attributes.completeness(values).missing}
    assert not dynamic_keys & missing
    # Not yet in service: none is asked.
    values["state"] = "qa_passed"
    asked = {a.key for a in attributes.completeness(values).mandatory}
    assert not dynamic_keys & asked


# --- a late batch: merged through its window ------------------------------------------


class ListStore:
    """``dynamic.SampleStore`` in memory (what ``StoredSamples`` reads from the
    database), counting the samples each read returns."""

    def __init__(self):
        self.samples: list[tuple] = []
        self.read = 0

    def add(self, batch) -> list[tuple]:
        """Store ``batch``; the samples that were new, in time order (as
        ``telemetry_ingest`` skips those already stored)."""
        stored = {s[0] for s in self.samples}
        new = sorted((s for s in batch if s[0] not in stored), key=lambda s: s[0])
        self.samples = sorted(self.samples + new, key=lambda s: s[0])
        return new

    def nearest(self, ts, carrier, *, after):
        rows = [
            s
            for s in self.samples
            if (s[0] > ts if after else s[0] < ts) and dynamic.carries(s, carrier)
        ]
        self.read += bool(rows)
        if not rows:
            return None
        return rows[0] if after else rows[-1]

    def between(self, low, high):
        rows = [
            s
            for s in self.samples
            if (low is None or s[0] > low) and (high is None or s[0] <= high)
        ]
        self.read += len(rows)
        return rows

    def count(self, first, last):
        return sum(first <= s[0] <= last for s in self.samples)


def _reported(draw, values: list, anything: st.SearchStrategy) -> st.SearchStrategy:
    """One measurement of a pack: always, mostly, seldom or never reported (a
    pack sending SoC or voltage only now and then), at and off the limits."""
    often = draw(st.sampled_from(["always", "mostly", "seldom", "never"]))
    if often == "never":
        return st.none()
    if often == "seldom":
        return st.sampled_from([None] * 2 * len(values) + values)
    some = st.sampled_from(values) | anything
    return some if often == "always" else st.none() | some


@st.composite
def late_samples_strategy(draw) -> list[tuple]:
    """Samples as ``samples_strategy``, steps across the 15-minute gap."""
    sample = st.tuples(
        st.integers(min_value=1, max_value=1200),  # seconds after the previous
        st.none() | st.just(97.0),  # soh
        _reported(draw, [3.0, 50.0, 99.5], st.floats(0, 100)),  # soc
        _reported(draw, [-15.0, 20.0, 50.0], st.floats(-40, 125)),
        _reported(draw, [39.0, 45.0, 59.0], st.floats(30, 70)),  # voltage
        st.none() | st.floats(-5000, 5000),  # current
    ).filter(lambda s: any(v is not None for v in s[1:]))
    return draw(
        st.lists(sample, min_size=draw(st.sampled_from([0, 6, 20])), max_size=40)
    )


late_limits_strategy = st.builds(
    Limits,
    temperature_min=st.just(-10.0) | st.floats(-40, 0),
    temperature_max=st.just(45.0) | st.floats(1, 125),
    voltage_min=st.sampled_from([None, 40.0, 40.0, 40.0]),
    voltage_max=st.sampled_from([None, 58.4, 58.4, 58.4]),
)


def _batches(data, samples: list[tuple]) -> list[list[tuple]]:
    """``samples`` cut into batches sent in a random order: runs of
    consecutive samples (a gateway's buffers) or any mix, and some batch
    sent twice."""
    if data.draw(st.booleans(), label="runs"):
        cuts = sorted(data.draw(st.sets(st.integers(1, max(len(samples) - 1, 1)))))
        edges = [0, *cuts, len(samples)]
        batches = [samples[a:b] for a, b in pairwise(edges)]
        batches = data.draw(st.permutations(batches), label="order")
    else:
        shuffled = data.draw(st.permutations(samples), label="order")
        size = data.draw(st.integers(1, 8), label="size")
        batches = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
    batches = [b for b in batches if b]
    if batches and data.draw(st.booleans(), label="resend"):
        batches.append(data.draw(st.sampled_from(batches), label="resent"))
    return batches


@settings(max_examples=examples(300))
@given(raw=late_samples_strategy(), limits=late_limits_strategy, data=st.data())
def test_batches_in_any_order_give_the_fold_of_the_history_in_time_order(
    raw, limits, data
):
    samples = _timed(raw)
    store, state = ListStore(), None
    for batch in _batches(data, samples):
        new = store.add(batch)
        if new:
            state = dynamic.usage_next(state, new, store, limits)
        # After each batch: the fold of what is stored, in time order.
        assert (state or Usage()) == fold(Usage(), store.samples, limits)
    assert (state or Usage()) == fold(Usage(), samples, limits)


def test_a_late_batch_reads_its_window_not_the_history():
    # 2,000 one-minute samples with a ten-minute hole in the middle, filled late.
    limits = Limits(voltage_min=40, voltage_max=58.4)
    history = [
        sample(m * 60, soc=float(m % 100), temp=25.0, volt=50.0, cur=10.0, soh=97.0)
        for m in range(2000)
    ]
    hole = history[1000:1010]
    store = ListStore()
    state = fold(Usage(), store.add(history[:1000] + history[1010:]), limits)
    new = store.add(hole)
    store.read = 0
    window = dynamic.late_window(new, store, limits)
    # The neighbours, then the one stored sample after the hole (the batch's
    # own are not read back).
    assert store.read == 3
    assert [s[0] for s in window.merged] == [s[0] for s in history[1000:1011]]
    assert window.old == [history[1010]]  # the one sample after the hole
    assert window.entry.last_ts == history[999][0]
    assert window.entry.soc_travel == 0  # no totals before the window
    assert dynamic.merge(state, window, limits) == fold(Usage(), history, limits)


def test_a_late_batch_reaches_the_next_sample_that_carries_each_value():
    # After the late sample: one with temperature only, then one with SoC, then
    # one with voltage; the window runs to the last of them.
    limits = Limits(voltage_min=40, voltage_max=58.4)
    history = [
        sample(0, soc=50.0, volt=50.0),
        sample(60, soc=3.0, volt=59.0),  # the late one: deep and over
        sample(120, temp=20.0),
        sample(180, soc=2.0),  # still deep: no new event
        sample(240, volt=60.0),  # still over: no new event
        sample(300, soc=50.0, volt=50.0),
    ]
    store = ListStore()
    state = fold(Usage(), store.add(history[:1] + history[2:]), limits)
    assert (state.deep_discharges, state.overcharges) == (1, 1)
    window = dynamic.late_window(store.add(history[1:2]), store, limits)
    assert window.merged[-1] == history[4]
    merged = dynamic.merge(state, window, limits)
    assert merged == fold(Usage(), history, limits)
    assert (merged.deep_discharges, merged.overcharges) == (1, 1)


def test_the_states_a_late_batch_hands_on_are_the_last_carriers():
    # Only voltage after the late sample: the deep-discharge state is the
    # last voltage sample's, not the late one's nor the window's.
    limits = Limits(voltage_min=40, voltage_max=58.4)
    history = [
        sample(0, soc=50.0, volt=50.0),
        sample(60, soc=50.0),  # the late one
        sample(120, volt=39.0),  # deep
        sample(180, volt=50.0),  # out
        sample(240, temp=20.0),
    ]
    store = ListStore()
    state = fold(Usage(), store.add(history[:1] + history[2:]), limits)
    merged = dynamic.usage_next(state, store.add(history[1:2]), store, limits)
    assert merged == fold(Usage(), history, limits)
    assert not merged.in_deep_discharge
    assert (merged.last_soc, merged.last_ts) == (50.0, at(240))


def test_a_late_batch_starts_from_the_last_carriers_before_it():
    # The sample just before the late one has no voltage: the window starts
    # from the overcharge (and deep-discharge) state of the last one with it.
    limits = Limits(voltage_min=40, voltage_max=58.4)
    history = [
        sample(0, volt=59.0),  # over: 1
        sample(60, temp=20.0),
        sample(120, volt=60.0),  # the late one: still over
        sample(180, volt=50.0),  # out
    ]
    store = ListStore()
    state = fold(Usage(), store.add(history[:2] + history[3:]), limits)
    window = dynamic.late_window(store.add(history[2:3]), store, limits)
    assert window.entry.in_overcharge
    assert window.entry.last_ts == at(60)
    merged = dynamic.merge(state, window, limits)
    assert merged == fold(Usage(), history, limits)
    assert merged.overcharges == 1


def _pack_rows(batch) -> list[dict]:
    names = ("soh_percent", "soc_percent", "temperature_c", "voltage_v", "current_a")
    return [
        {
            "ts": ts,
            **{n: v for n, v in zip(names, values, strict=True) if v is not None},
        }
        for ts, *values in batch
    ]


@pytest.mark.django_db
@settings(
    max_examples=examples(40, ci=25),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=late_samples_strategy(), data=st.data())
def test_the_database_keeps_the_fold_of_the_history_whatever_the_arrival_order(
    raw, data
):
    from django.db import transaction

    from passports import telemetry
    from passports.models import Kind
    from tests.factories_passports import make_passport

    samples = _timed(raw)
    with transaction.atomic():
        pack = make_passport(
            Kind.PACK,
            minimum_voltage_v=Decimal("40"),
            maximum_voltage_v=Decimal("58.4"),
            idle_temperature_min_c=Decimal("-10"),
            idle_temperature_max_c=Decimal("45"),
        )
        limits = dynamic.limits_of(pack)
        for batch in _batches(data, samples):
            telemetry.telemetry_ingest(
                passport_id=pack.pk, rows=_pack_rows(batch), actor=None
            )
            stored = TelemetryReading.objects.filter(passport=pack).order_by("ts")
            assert dynamic.usage_state(pack.pk) == fold(
                Usage(), stored.values_list(*dynamic._SAMPLE_COLUMNS), limits
            )
        whole = fold(Usage(), samples, limits)
        assert (dynamic.usage_state(pack.pk) or Usage()) == whole
        pack.refresh_from_db()
        if samples:
            for name, value in summary(whole).items():
                assert getattr(pack, name) == value, name
        transaction.set_rollback(True)


def test_a_late_batch_on_the_database_reads_its_neighbours_and_window(pack):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    samples = [(at(m * 60), 97.0, float(m % 100), 25.0, 50.0, 10.0) for m in range(300)]
    late = samples[100:110]

    def store(batch):
        TelemetryReading.objects.bulk_create(
            TelemetryReading(
                passport=pack,
                ts=ts,
                soh_percent=soh,
                soc_percent=soc,
                temperature_c=temperature,
                voltage_v=voltage,
                current_a=current,
            )
            for ts, soh, soc, temperature, voltage, current in batch
        )
        return batch

    dynamic.usage_add(pack, store(samples[:100] + samples[110:]))
    table = TelemetryReading._meta.db_table
    store(late)
    with CaptureQueriesContext(connection) as queries:
        dynamic.usage_add(pack, late)
    reads = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    # The nearest sample before the batch and the nearest after (each carries
    # SoC and voltage: no further look-up), how many are stored within the
    # batch's span (its own only), then the window past it.
    assert len(reads) == 4
    assert all("LIMIT 1" in sql for sql in reads[:2])
    assert "COUNT(" in reads[2]
    assert dynamic.usage_state(pack.pk) == fold(
        Usage(), samples, dynamic.limits_of(pack)
    )
