"""The bounds of every dashboard KPI of docs/metrics.md (OEE and efficiency
have their own files: tests/test_oee_bounds.py, tests/test_metrics_bounds.py).

Each database test builds a small plant per hypothesis example inside a
transaction rolled back at its end, asks the selector the dashboards read, and
compares the figure with one worked out here from the generated data alone;
the bound (>= 0, 0..100 or null, a sum of its parts) is checked on the way.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from itertools import count

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bpmos.dashboards import kpis, trends
from bpmos.errors import InvalidInput
from exceptions.models import PlantException
from inventory.models import Category, Item, ItemStatus, Location
from lines import selectors as line_selectors
from lines import services as line_services
from lines import wip
from passports import telemetry
from passports.models import EventKind, Kind, Passport, PassportEvent
from passports.selectors import first_pass_counts
from runbooks import selectors as runbook_selectors
from runbooks.models import (
    Runbook,
    RunbookKind,
    Stage,
    StageStatus,
    WorkOrder,
    WorkOrderStage,
    WorkOrderStatus,
)
from scada.models import AlarmEvent, AlarmState
from tests.factories_lines import machine, make_line
from tests.support_hypothesis import examples
from tests.test_oee_rollups import SPAN_HOURS, START, _rows, _store, reading_strategy

HOUR = timedelta(hours=1)
T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DB = settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
_numbers = count(1)


def half_up(exact: Fraction) -> Decimal:
    """An exact value rounded half up to one decimal, computed apart from the
    code under test."""
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )


def percent_or_none(part: int, whole: int) -> Decimal | None:
    return half_up(Fraction(100 * part, whole)) if whole else None


def hours(n: int) -> datetime:
    return T0 + n * HOUR


windows = st.tuples(st.integers(0, 96), st.integers(1, 48)).map(
    lambda w: (hours(w[0]), hours(w[0] + w[1]))
)


# --- percentages: the one function every share goes through ------------------------


@settings(max_examples=examples(500), deadline=None)
@given(whole=st.integers(0, 10**9), share=st.fractions(0, 1))
def test_share_percent_is_null_or_within_0_and_100(whole, share):
    part = int(whole * share)
    shown = kpis.share_percent(part, whole)
    assert shown == percent_or_none(part, whole)
    assert shown is None or Decimal(0) <= shown <= Decimal(100)


@settings(max_examples=examples(300), deadline=None)
@given(planned=st.integers(0, 10**6), built=st.integers(0, 10**6))
def test_attainment_is_null_or_at_least_0(planned, built):
    # Attainment = 100 x Built / Planned through the same function; it may
    # exceed 100 (orders due later finished early), never go below 0.
    shown = kpis.share_percent(built, planned)
    if planned == 0:
        assert shown is None
    else:
        assert shown >= 0
        assert shown == half_up(Fraction(100 * built, planned))


# --- work orders: Planned, Built, Hold (stages), WIP, bottleneck, on time -----------

STAGE_STATUSES = [StageStatus.PLANNED, StageStatus.IN_PROGRESS, StageStatus.HOLD]
stage_strategy = st.tuples(
    st.sampled_from([*STAGE_STATUSES, StageStatus.DONE, StageStatus.DONE]),
    st.integers(-120, 120),  # a done stage's end, minutes after its planned end
)
order_strategy = st.tuples(
    st.integers(0, 2),  # runbook
    st.integers(1, 100),  # qty
    st.integers(0, 144),  # due (planned end), hours after T0
    st.sampled_from(WorkOrderStatus.values),
    st.integers(0, 144),  # completed, hours after T0 (if completed)
    st.lists(stage_strategy, min_size=3, max_size=3),
)


def _runbooks() -> list[Runbook]:
    made = []
    for n in range(3):
        runbook = Runbook.objects.create(
            slug=f"rb-{n}", title=f"Runbook {n}", kind=RunbookKind.MANUFACTURING
        )
        Stage.objects.bulk_create(
            Stage(
                runbook=runbook,
                slug=f"rb-{n}-{p:02d}",
                code=f"S{p}",
                name=f"Stage {p}",
                position=p,
                standard_minutes=60,
            )
            for p in (1, 2, 3)
        )
        made.append(runbook)
    return made


def _coherent(status: str, stages: list) -> list:
    """Stage statuses a work order in ``status`` can have."""
    if status == WorkOrderStatus.COMPLETED:
        return [(StageStatus.DONE, late) for _, late in stages]
    if status == WorkOrderStatus.PLANNED:
        return [(StageStatus.PLANNED, late) for _, late in stages]
    return stages


def _build_orders(drawn) -> list[tuple[WorkOrder, list[WorkOrderStage]]]:
    runbooks = _runbooks()
    templates = {rb.pk: list(rb.stages.order_by("position")) for rb in runbooks}
    built = []
    for rb_index, qty, due, status, done_at, stages in drawn:
        runbook = runbooks[rb_index]
        order = WorkOrder.objects.create(
            runbook=runbook,
            product_code="PACK",
            lot_no=f"LOT-{next(_numbers)}",
            qty=qty,
            planned_start=hours(due) - 3 * HOUR,
            planned_end=hours(due),
            status=status,
            completed_at=hours(done_at)
            if status == WorkOrderStatus.COMPLETED
            else None,
        )
        rows = []
        for template, (stage_status, late) in zip(
            templates[runbook.pk], _coherent(status, stages), strict=True
        ):
            planned_end = order.planned_start + template.position * HOUR
            actual_end = planned_end + timedelta(minutes=late)
            rows.append(
                WorkOrderStage(
                    work_order=order,
                    stage=template,
                    position=template.position,
                    stage_name=template.name,
                    planned_start=planned_end - HOUR,
                    planned_end=planned_end,
                    status=stage_status,
                    actual_start=None
                    if stage_status == StageStatus.PLANNED
                    else actual_end - 30 * timedelta(minutes=1),
                    actual_end=actual_end if stage_status == StageStatus.DONE else None,
                )
            )
        built.append((order, WorkOrderStage.objects.bulk_create(rows)))
    return built


@pytest.mark.django_db
@DB
@given(drawn=st.lists(order_strategy, max_size=12), window=windows)
@example(  # a tie of WIP broken by waiting: S2 (1 waiting) before S1 (1 running)
    drawn=[
        (
            0,
            5,
            10,
            "in_progress",
            0,
            [("in_progress", 0), ("planned", 0), ("planned", 0)],
        ),
        (0, 5, 10, "in_progress", 0, [("done", 0), ("planned", 0), ("planned", 0)]),
    ],
    window=(hours(0), hours(24)),
)
def test_planned_built_hold_wip_and_on_time_are_bounded(drawn, window):
    with transaction.atomic():
        orders = _build_orders(drawn)
        start, end = window
        # Planned and Built: Σ qty due (not cancelled) / completed in the window.
        found = runbook_selectors.work_order_plan_and_built(windows={"w": window})["w"]
        planned = sum(
            o.qty
            for o, _ in orders
            if start <= o.planned_end < end and o.status != WorkOrderStatus.CANCELLED
        )
        built = sum(
            o.qty
            for o, _ in orders
            if o.status == WorkOrderStatus.COMPLETED and start <= o.completed_at < end
        )
        assert (found.planned, found.built) == (planned, built)
        assert found.planned >= 0
        assert found.built >= 0
        assert kpis.share_percent(found.built, found.planned) == percent_or_none(
            built, planned
        )
        # Hold (stages): stages on hold of open work orders.
        open_ = {WorkOrderStatus.PLANNED, WorkOrderStatus.IN_PROGRESS}
        held = sum(
            1
            for o, stages in orders
            for s in stages
            if o.status in open_ and s.status == StageStatus.HOLD
        )
        assert runbook_selectors.work_order_stage_hold_count() == held >= 0
        _check_wip(orders)
        _check_on_time(orders)
        transaction.set_rollback(True)


def _check_wip(orders) -> None:
    """WIP per stage and the bottleneck, worked out from the generated orders."""
    expected: Counter = Counter()
    for order, stages in orders:
        if order.status != WorkOrderStatus.IN_PROGRESS:
            continue
        for stage in stages:
            if stage.status == StageStatus.IN_PROGRESS:
                expected[(stage.stage_id, "in_progress")] += 1
            elif stage.status == StageStatus.HOLD:
                expected[(stage.stage_id, "on_hold")] += 1
            elif stage.status == StageStatus.PLANNED and all(
                s.status == StageStatus.DONE
                for s in stages
                if s.position < stage.position
            ):
                expected[(stage.stage_id, "waiting")] += 1
    listed = wip.stage_wip_list()
    slugs = dict(Stage.objects.values_list("slug", "pk"))
    by_runbook: dict[str, list] = {}
    for row in listed:
        pk = slugs[row.stage_id]
        for name in ("in_progress", "on_hold", "waiting"):
            assert getattr(row, name) == expected[(pk, name)] >= 0, (row, name)
        assert row.wip == row.in_progress + row.on_hold + row.waiting
        by_runbook.setdefault(row.runbook_id, []).append(row)
    for rows in by_runbook.values():
        flagged = [r for r in rows if r.is_bottleneck]
        busiest = max(r.wip for r in rows)
        if busiest == 0:
            assert not flagged
            continue
        # Most WIP; ties: more waiting, then the earlier stage.
        top = sorted(rows, key=lambda r: (-r.wip, -r.waiting, r.position))[0]
        assert flagged == [top]
    plant = wip.bottleneck(listed)
    if any(r.is_bottleneck for r in listed):
        assert plant.is_bottleneck
        assert plant.wip == max(r.wip for r in listed)
    else:
        assert plant is None


def _check_on_time(orders) -> None:
    now = hours(200)
    for order, stages in orders:
        metrics = runbook_selectors.work_order_metrics(work_order_id=order.pk, now=now)
        done = [s for s in stages if s.status == StageStatus.DONE]
        on_time = [s for s in done if s.actual_end <= s.planned_end]
        assert metrics.stages_done == len(done)
        assert metrics.stages_on_time == len(on_time)
        shown = metrics.on_time_percentage
        if not done:
            assert shown is None
        else:
            assert 0 <= shown <= 100
            assert shown == pytest.approx(100 * len(on_time) / len(done), abs=0.05)


# --- first-pass yield, overall and per kind -------------------------------------------

passport_strategy = st.tuples(
    st.sampled_from(Kind.values),
    # QA results in version order: passed?, hours after T0 (kept increasing).
    st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=4),
)


def _passports(n: int, **fields) -> list[Passport]:
    return Passport.objects.bulk_create(
        Passport(
            kind=fields.get("kind", Kind.CELL),
            serial=f"SN-{next(_numbers)}",
            model="M-1",
            manufacturer="BPM Energy",
            site="Pune",
            manufactured_at=T0,
            chemistry="LFP",
            rated_capacity_ah=100,
            nominal_voltage_v=3.2,
            energy_kwh=0.32,
            state="manufactured",
            custodian_kind="manufacturer",
            custodian_name="BPM Energy",
            on_hold=fields.get("on_hold", False),
        )
        for _ in range(n)
    )


def _first_results(drawn) -> list[tuple[str, bool, datetime]]:
    """Per generated passport with QA results: kind, first passed?, when.
    Stores the events (a ``manufactured`` event first, then the results)."""
    firsts, events = [], []
    for (kind, results), passport in zip(
        drawn, [_passports(1, kind=k)[0] for k, _ in drawn], strict=True
    ):
        events.append(
            PassportEvent(
                passport=passport,
                version=1,
                kind=EventKind.MANUFACTURED,
                occurred_at=T0,
                prev_hash="0" * 64,
                hash="1" * 64,
            )
        )
        when = T0
        for version, (passed, gap) in enumerate(results, start=2):
            when += timedelta(hours=gap, minutes=7)
            events.append(
                PassportEvent(
                    passport=passport,
                    version=version,
                    kind=EventKind.QA_PASSED if passed else EventKind.QA_FAILED,
                    occurred_at=when,
                    prev_hash="1" * 64,
                    hash="2" * 64,
                )
            )
            if version == 2:
                firsts.append((kind, passed, when))
    PassportEvent.objects.bulk_create(events)
    return firsts


@pytest.mark.django_db
@DB
@given(
    drawn=st.lists(passport_strategy, max_size=10),
    window=windows,
    bucket=st.sampled_from(["hour", "day"]),
)
def test_first_pass_yield_is_null_or_within_0_and_100(drawn, window, bucket):
    with transaction.atomic():
        firsts = _first_results(drawn)
        start, end = window
        for kind in (None, *Kind.values):
            mine = [
                passed
                for k, passed, when in firsts
                if (kind is None or k == kind) and start <= when < end
            ]
            found = first_pass_counts(windows={"w": window}, kind=kind)["w"]
            assert (found.tested, found.passed) == (len(mine), sum(mine))
            shown = kpis.share_percent(found.passed, found.tested)
            assert shown == percent_or_none(sum(mine), len(mine))
            assert shown is None or 0 <= shown <= 100
        # The trend the dashboards draw: one first-pass yield per bucket.
        trend = trends.trend_get(metric="yield", bucket=bucket, start=start, end=end)
        for point in trend.series[0].points:
            mine = [
                passed
                for _, passed, when in firsts
                if point.t <= when < point.t + trends.BUCKETS[bucket]
                and trend.start <= when < trend.end
            ]
            expected = percent_or_none(sum(mine), len(mine))
            assert point.value == (None if expected is None else float(expected))
            assert point.value is None or 0 <= point.value <= 100
        transaction.set_rollback(True)


# --- Hold: the sum of its parts -------------------------------------------------


@pytest.mark.django_db
@DB
@given(
    items=st.lists(
        st.tuples(st.sampled_from(ItemStatus.values), st.integers(0, 3)), max_size=10
    ),
    passports=st.lists(st.booleans(), max_size=8),
    orders=st.lists(order_strategy, max_size=5),
)
def test_hold_is_the_sum_of_its_parts(items, passports, orders):
    with transaction.atomic():
        category = Category.objects.create(slug="cells", name="Cells")
        location = Location.objects.create(code="a", name="Zone A", kind="zone")
        Item.objects.bulk_create(
            Item(
                code=f"IT-{next(_numbers)}",
                sku="CELL",
                category=category,
                location=location,
                status=status,
                quantity=quantity,
                received_at=T0,
            )
            for status, quantity in items
        )
        for on_hold in passports:
            _passports(1, on_hold=on_hold)
        built = _build_orders(orders)
        hold = kpis.summary_get(now=hours(10)).hold
        # In stock (quantity > 0) on Hold; Blocked is not on hold.
        assert hold.inventory_items == sum(
            1 for status, q in items if status == ItemStatus.HOLD and q > 0
        )
        assert hold.passports == sum(passports)
        assert hold.work_order_stages == sum(
            1
            for o, stages in built
            for s in stages
            if s.status == StageStatus.HOLD
            and o.status in (WorkOrderStatus.PLANNED, WorkOrderStatus.IN_PROGRESS)
        )
        parts = (hold.inventory_items, hold.passports, hold.work_order_stages)
        assert min(parts) >= 0
        assert hold.total == sum(parts)
        transaction.set_rollback(True)


# --- the summary's parts in one statement -------------------------------------


SUMMARY_PARTS = ("plan", "first_pass", "pieces", "hold")
snapshot_strategy = st.tuples(
    st.integers(0, 1), st.integers(0, 120), st.integers(0, 500), st.integers(0, 50)
)


def _snapshots(drawn) -> list[tuple[datetime, int, int]]:
    """Line OEE snapshots (line 0 or 1, shift start hour, good, rejected), one
    per line and shift start; returns (start, good, rejected) of each kept."""
    from lines.models import OEESnapshot

    lines = [make_line(slug=f"line-{i}", name=f"Line {i}", position=i) for i in (1, 2)]
    kept = {}
    for line, hour, good, rejected in drawn:
        kept[(line, hour)] = (hours(hour), good, rejected)
    OEESnapshot.objects.bulk_create(
        OEESnapshot(
            line=lines[line],
            window_start=start,
            window_end=start + 8 * HOUR,
            shift_end=start + 8 * HOUR,
            planned_busy_seconds=28800,
            run_seconds=0,
            ideal_seconds=0,
            good_count=good,
            reject_count=rejected,
            computed_at=start,
        )
        for (line, _), (start, good, rejected) in kept.items()
    )
    return list(kept.values())


@pytest.mark.django_db
@DB
@given(
    orders=st.lists(order_strategy, max_size=6),
    drawn=st.lists(passport_strategy, max_size=6),
    snapshots=st.lists(snapshot_strategy, max_size=6),
    held=st.lists(st.booleans(), max_size=4),
    spans=st.tuples(windows, windows, windows),
    names=st.sets(st.sampled_from(SUMMARY_PARTS), min_size=1),
)
def test_the_summary_parts_read_together_equal_each_figure_read_alone(
    orders, drawn, snapshots, held, spans, names
):
    """The parts a write dropped are computed in one statement
    (``bpmos.totals``): whichever of them, over random plants and windows,
    each equals its selector's figure read alone and the figures worked out
    here from the generated data."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic():
        built = _build_orders(orders)
        firsts = _first_results(drawn)
        pieces = _snapshots(snapshots)
        for on_hold in held:
            _passports(1, on_hold=on_hold)
        named = dict(zip(("shift", "today", "week"), spans, strict=True))
        with CaptureQueriesContext(connection) as queries:
            found = kpis.summary_parts(named, names, until=hours(200))
        assert len(queries) == 1
        assert set(found) == names
        alone = {
            "plan": runbook_selectors.work_order_plan_and_built(windows=named),
            "first_pass": first_pass_counts(windows=named),
            "pieces": line_selectors.snapshot_piece_counts(windows=named),
            "hold": kpis.HoldFigures(
                work_order_stages=runbook_selectors.work_order_stage_hold_count(),
                inventory_items=0,
                passports=sum(held),
            ),
        }
        for name in names:
            assert found[name][0] == alone[name], name
        for window, (start, end) in named.items():
            plan, first_pass = alone["plan"][window], alone["first_pass"][window]
            assert plan.planned == sum(
                o.qty
                for o, _ in built
                if start <= o.planned_end < end
                and o.status != WorkOrderStatus.CANCELLED
            )
            mine = [passed for _, passed, when in firsts if start <= when < end]
            assert (first_pass.tested, first_pass.passed) == (len(mine), sum(mine))
            shown = alone["pieces"][window]
            assert (shown.good, shown.reject) == (
                sum(good for when, good, _ in pieces if start <= when < end),
                sum(rejected for when, _, rejected in pieces if start <= when < end),
            )
        # The same shape again runs the statement compiled the first time
        # (bpmos.totals.totals_get_compiled) over the rows as they are now.
        _passports(1, on_hold=True)
        with CaptureQueriesContext(connection) as queries:
            again = kpis.summary_parts(named, names, until=hours(200))
        assert len(queries) == 1
        for name in names - {"hold"}:
            assert again[name][0] == alone[name], name
        if "hold" in names:
            assert again["hold"][0].passports == sum(held) + 1
        transaction.set_rollback(True)


# --- exceptions opened and alarms raised ----------------------------------------


@pytest.mark.django_db
@DB
@given(
    raised=st.lists(st.integers(0, 72 * 60), max_size=12),
    alarms=st.lists(
        st.tuples(st.integers(0, 72 * 60), st.sampled_from(AlarmState.values)),
        max_size=12,
    ),
    window=windows,
    bucket=st.sampled_from(["hour", "day", "week"]),
)
def test_exceptions_and_alarms_counts_are_whole_and_match(
    raised, alarms, window, bucket
):
    with transaction.atomic():
        made = PlantException.objects.bulk_create(
            PlantException(
                type="other", severity="low", source="manual", title="Exception"
            )
            for _ in raised
        )
        for exception, minutes in zip(made, raised, strict=True):
            PlantException.objects.filter(pk=exception.pk).update(
                raised_at=T0 + timedelta(minutes=minutes)
            )
        AlarmEvent.objects.bulk_create(
            AlarmEvent(
                timestamp=T0 + timedelta(minutes=minutes), status=status, message="x"
            )
            for minutes, status in alarms
        )
        start, end = window
        step = trends.BUCKETS[bucket]
        for metric, minutes in (
            ("exceptionsOpened", raised),
            ("alarms", [m for m, _ in alarms]),
        ):
            trend = trends.trend_get(metric=metric, bucket=bucket, start=start, end=end)
            moments = [T0 + timedelta(minutes=m) for m in minutes]
            for point in trend.series[0].points:
                assert isinstance(point.value, int)
                assert point.value == sum(
                    1
                    for t in moments
                    if point.t <= t < point.t + step and trend.start <= t < trend.end
                )
                assert point.value >= 0
            assert sum(p.value for p in trend.series[0].points) == sum(
                1 for t in moments if trend.start <= t < trend.end
            )
        transaction.set_rollback(True)


# --- throughput: good pieces of the last station per hour -----------------------------


@settings(max_examples=examples(300), deadline=None)
@given(good=st.integers(0, 10**7), microseconds=st.integers(1, 31 * 86400 * 10**6))
def test_throughput_per_hour_is_at_least_0(good, microseconds):
    start = T0
    end = T0 + timedelta(microseconds=microseconds)
    shown = line_selectors.throughput_per_hour(good, start, end)
    assert shown >= 0
    assert shown == half_up(Fraction(good * 3600 * 10**6, microseconds))
    with pytest.raises(ValueError, match="must end after"):
        line_selectors.throughput_per_hour(good, end, start)


# Count readings of both machines: machine, hour, microsecond in it, tag,
# pieces, quality (``bad`` readings are not counted).
count_strategy = st.tuples(
    st.integers(0, 1),
    st.integers(0, SPAN_HOURS - 1),
    st.integers(0, 3600 * 10**6 - 1),
    st.sampled_from(["good_count", "good_count", "reject_count"]),
    st.integers(0, 50),
    st.sampled_from(["good", "good", "uncertain", "bad"]),
)


@pytest.mark.django_db
@DB
@given(
    counts=st.lists(count_strategy, min_size=1, max_size=20),
    states=st.lists(reading_strategy, max_size=10),
    window=st.tuples(st.integers(0, SPAN_HOURS - 1), st.integers(1, SPAN_HOURS)),
)
def test_throughput_is_the_last_stations_good_pieces_per_hour(counts, states, window):
    drawn = states + [
        (m, hour * 3600 * 10**6 + us, tag, "running", pieces, quality)
        for m, hour, us, tag, pieces, quality in counts
    ]
    with transaction.atomic():
        line = make_line(slug="line-t")
        machines = [machine(line, "st-01"), machine(line, "st-02")]  # st-02 last
        rows = _rows(machines, drawn)
        _store(rows)
        line_services.machine_hours_refresh(now=START + SPAN_HOURS * HOUR)
        first, span = window
        start = START + first * HOUR
        end = min(start + span * HOUR, START + SPAN_HOURS * HOUR)
        (found,) = line_selectors.line_throughput_list(start=start, end=end)
        good = sum(
            int(value)
            for machine_id, tag, ts, value, _text, _note, _unit, quality in rows
            if machine_id == machines[1].pk
            and tag == "good_count"
            and quality != "bad"
            and start <= ts < end
        )
        assert found.good == good >= 0
        assert found.per_hour >= 0
        assert found.per_hour == half_up(
            Fraction(good * 3600, int((end - start) / timedelta(seconds=1)))
        )
        transaction.set_rollback(True)


# --- pack telemetry -------------------------------------------------------------------

sample_strategy = st.tuples(
    st.integers(0, 5 * 24 * 60),  # minutes after T0
    st.floats(-20, 120, allow_nan=False),  # SoH, %, sometimes out of range
    st.floats(-20, 120, allow_nan=False),  # SoC, %
    st.floats(-60, 150, allow_nan=False),  # temperature, °C
)
BOUNDS = {"soh": (0, 100), "soc": (0, 100), "temperature": (-40, 125)}


def _in_bounds(soh, soc, temperature) -> bool:
    return 0 <= soh <= 100 and 0 <= soc <= 100 and -40 <= temperature <= 125


@pytest.mark.django_db
@DB
@given(samples=st.lists(sample_strategy, max_size=12, unique_by=lambda s: s[0]))
def test_pack_telemetry_daily_figures_are_within_bounds(samples):
    with transaction.atomic():
        (pack,) = _passports(1, kind=Kind.PACK)
        rows = [
            {
                "ts": (T0 + timedelta(minutes=m)).isoformat(),
                "sohPercent": soh,
                "socPercent": soc,
                "temperatureC": temperature,
            }
            for m, soh, soc, temperature in samples
        ]
        kept = [s for s in samples if _in_bounds(*s[1:])]
        if len(kept) < len(samples):  # one sample out of range: nothing stored
            with pytest.raises(InvalidInput, match="between"):
                telemetry.telemetry_ingest(passport_id=pack.pk, rows=rows, actor=None)
            rows = [r for r, s in zip(rows, samples, strict=True) if s in kept]
        if rows:
            telemetry.telemetry_ingest(passport_id=pack.pk, rows=rows, actor=None)
        pack.refresh_from_db()
        summary = telemetry.telemetry_summary(pack, days=30, now=T0 + timedelta(days=6))
        by_day: dict = {}
        for m, soh, soc, temperature in kept:
            day = (T0 + timedelta(minutes=m)).date().isoformat()
            by_day.setdefault(day, []).append((soh, soc, temperature))
        assert [d["day"] for d in summary["daily"]] == sorted(by_day)
        for day in summary["daily"]:
            values = by_day[day["day"]]
            mean_soh = sum(v[0] for v in values) / len(values)
            assert 0 <= day["sohAvg"] <= 100
            assert 0 <= day["socAvg"] <= 100
            assert -40 <= day["temperatureMin"] <= day["temperatureMax"] <= 125
            assert day["sohAvg"] == pytest.approx(mean_soh, abs=0.006)
            assert day["temperatureMax"] == pytest.approx(
                max(v[2] for v in values), abs=0.006
            )
        change = summary["sohChange"]
        if len(by_day) < 2:
            assert change is None
        else:
            assert -100 <= change <= 100
        for metric, (low, high) in BOUNDS.items():
            trend = trends.trend_get(
                metric=metric,
                bucket="day",
                start=T0,
                end=T0 + timedelta(days=6),
                passport=str(pack.uuid),
            )
            for point in trend.series[0].points:
                assert point.value is None or low <= point.value <= high
        transaction.set_rollback(True)
