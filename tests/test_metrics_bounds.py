"""The bounds of ``efficiency_score`` (docs/metrics.md): null for work that was
not timed (under a minute) or not planned, else 100 x planned / actual capped at
200, so it lies in 0..200 for a stage or a work order whatever its times.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbooks import selectors
from runbooks.models import StageStatus, WorkOrderStage, WorkOrderStatus
from tests.conftest import bearer
from tests.factories_production import T0, make_runbook, make_work_order, stages_of
from tests.support_hypothesis import examples

SECOND = timedelta(seconds=1)


def test_efficiency_score_by_hand():
    assert selectors.efficiency_score(60, 50) == 120
    assert selectors.efficiency_score(60, 90) == pytest.approx(66.667, abs=1e-3)
    assert selectors.efficiency_score(60, 25) == 200  # 240 capped
    assert selectors.efficiency_score(600, 1 / 60) is None  # one second: not timed
    assert selectors.efficiency_score(60, 1.0) == 200  # exactly a minute is timed
    assert selectors.efficiency_score(60, None) is None  # never started
    assert selectors.efficiency_score(0, 30) is None  # nothing planned
    assert selectors.efficiency_score(5e-324, 200) is None  # nor a float's dust
    assert selectors.efficiency_score(1 / 60, 10**7) > 0  # one second is a plan


@settings(max_examples=examples(500), deadline=None)
@given(
    planned=st.floats(-1e7, 1e7, allow_nan=False),
    actual=st.none() | st.floats(-1e7, 1e7, allow_nan=False),
)
def test_efficiency_score_is_null_or_within_0_and_200(planned, actual):
    score = selectors.efficiency_score(planned, actual)
    if actual is None or actual < 1 or planned < 1 / 60:  # under a second: no plan
        assert score is None
    else:
        assert 0 < score <= 200
        assert selectors._round(score) <= 200.0


# One stage: offsets in seconds from T0 (planned start, planned length, actual
# start, actual length, done or running).
stage_times = st.tuples(
    st.integers(-(10**6), 10**6),
    st.integers(1, 10**6),
    st.none() | st.integers(-(10**6), 10**6),
    st.integers(-10, 10**6),
    st.booleans(),
)


def _stage(times) -> WorkOrderStage:
    planned_at, planned_for, started_at, took, done = times
    start = T0 + planned_at * SECOND
    actual_start = None if started_at is None else T0 + started_at * SECOND
    return WorkOrderStage(
        work_order_id=1,
        position=1,
        planned_start=start,
        planned_end=start + planned_for * SECOND,
        actual_start=actual_start,
        actual_end=actual_start + took * SECOND if actual_start and done else None,
        status=StageStatus.DONE if actual_start and done else StageStatus.IN_PROGRESS,
    )


@settings(max_examples=examples(300), deadline=None)
@given(stages=st.lists(stage_times, min_size=1, max_size=8))
def test_stage_and_work_order_efficiency_are_bounded(stages):
    now = T0 + timedelta(days=30)
    built = [_stage(times) for times in stages]
    for stage in built:
        score = selectors._stage_metrics(stage, now).efficiency_score
        assert score is None or 0 <= score <= 200
        if stage.status != StageStatus.DONE:
            assert score is None
    done = [stage for stage in built if selectors._is_done(stage)]
    planned, actual = selectors._timed_sums(done, now)
    score = selectors._round(selectors.efficiency_score(planned, actual))
    assert score is None or 0 <= score <= 200
    if all(s.actual_end - s.actual_start < timedelta(minutes=1) for s in done):
        assert score is None  # no timed stage


@pytest.mark.django_db(transaction=True)
def test_stages_done_within_a_second_have_no_efficiency(http, make_user):
    # The 61,662,553.2: stages started and done in the same second.
    make_runbook()
    planner = make_user("planner")
    work_order = make_work_order(planner)  # stages of 60 planned minutes
    s1, s2, s3 = stages_of(work_order)
    for stage in (s1, s2):
        WorkOrderStage.objects.filter(pk=stage.pk).update(
            status=StageStatus.DONE,
            actual_start=T0,
            actual_end=T0 + timedelta(microseconds=58),
        )
    WorkOrderStage.objects.filter(pk=s3.pk).update(
        status=StageStatus.DONE, actual_start=T0, actual_end=T0 + timedelta(minutes=40)
    )
    work_order.status = WorkOrderStatus.COMPLETED
    work_order.completed_at = T0 + timedelta(minutes=40)
    work_order.save()
    body = http.get(
        f"/api/workorders/{work_order.pk}/metrics", headers=bearer(planner)
    ).json()
    # Only S3 was timed: 100 x 60 / 40 = 150.
    assert (body["stages_done"], body["efficiency_score"]) == (3, 150.0)
    stage = http.get(f"/api/stages/{s1.pk}/metrics", headers=bearer(planner)).json()
    assert (stage["actual_minutes"], stage["efficiency_score"]) == (0.0, None)
    # With S3 untimed too, the work order has no efficiency at all.
    WorkOrderStage.objects.filter(pk=s3.pk).update(actual_end=T0 + SECOND)
    body = http.get(
        f"/api/workorders/{work_order.pk}/metrics", headers=bearer(planner)
    ).json()
    assert body["efficiency_score"] is None
