"""Stage and work-order metrics (docs/metrics.md), computed by hand and compared.

Actual times are set through the ORM so every number is known in advance; the
selectors take ``now`` so running stages are deterministic too.
"""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from runbooks import selectors, services
from runbooks.models import StageStatus, WorkOrderStage, WorkOrderStatus
from tests.conftest import bearer
from tests.factories_production import T0, make_runbook, make_work_order, stages_of

pytestmark = pytest.mark.django_db(transaction=True)


def at(hours: int, minutes: int = 0):
    """08:00 on the factory's day is at(8)."""
    return T0.replace(hour=hours, minute=minutes)


def set_stage(stage: WorkOrderStage, status: str, start=None, end=None) -> None:
    WorkOrderStage.objects.filter(pk=stage.pk).update(
        status=status, actual_start=start, actual_end=end
    )


@pytest.fixture
def worked(make_user):
    """The docs' worked example: S1 done early, S2 done late, S3 running."""
    make_runbook()
    planner = make_user("planner")
    work_order = make_work_order(planner)  # 08:00-11:00, stages of 60 minutes
    s1, s2, s3 = stages_of(work_order)
    set_stage(s1, StageStatus.DONE, at(8), at(8, 50))
    set_stage(s2, StageStatus.DONE, at(8, 50), at(10, 20))
    set_stage(s3, StageStatus.IN_PROGRESS, at(10, 20))
    work_order.status, work_order.started_at = WorkOrderStatus.IN_PROGRESS, at(8)
    work_order.save()
    return work_order, s1, s2, s3, planner


def test_stage_metrics_of_the_worked_example(worked):
    work_order, s1, s2, s3, _ = worked
    now = at(11, 15)
    assert selectors.stage_metrics(stage_id=s1.pk, now=now).as_dict() == {
        "stage_id": s1.pk,
        "work_order_id": work_order.pk,
        "status": "done",
        "planned_minutes": 60.0,
        "actual_minutes": 50.0,
        "delay_minutes": 0.0,
        "efficiency_score": 120.0,
        "on_time": True,
    }
    assert selectors.stage_metrics(stage_id=s2.pk, now=now).as_dict() == {
        "stage_id": s2.pk,
        "work_order_id": work_order.pk,
        "status": "done",
        "planned_minutes": 60.0,
        "actual_minutes": 90.0,
        "delay_minutes": 20.0,
        "efficiency_score": 66.7,
        "on_time": False,
    }
    assert selectors.stage_metrics(stage_id=s3.pk, now=now).as_dict() == {
        "stage_id": s3.pk,
        "work_order_id": work_order.pk,
        "status": "in_progress",
        "planned_minutes": 60.0,
        "actual_minutes": 55.0,
        "delay_minutes": 15.0,
        "efficiency_score": None,
        "on_time": None,
    }


def test_running_stage_is_not_late_before_its_planned_end(worked):
    s3 = worked[3]
    metrics = selectors.stage_metrics(stage_id=s3.pk, now=at(10, 50))
    assert (metrics.actual_minutes, metrics.delay_minutes) == (30.0, 0.0)


def test_work_order_metrics_of_the_worked_example(worked):
    work_order = worked[0]
    assert selectors.work_order_metrics(
        work_order_id=work_order.pk, now=at(11, 15)
    ).as_dict() == {
        "work_order_id": work_order.pk,
        "status": "in_progress",
        "stages_total": 3,
        "stages_done": 2,
        "stages_on_time": 1,
        "delay_minutes": 15.0,
        "efficiency_score": 85.7,  # 100 * (60 + 60) / (50 + 90)
        "on_time_percentage": 50.0,
    }


def test_completed_work_order_metrics_over_http(http, worked):
    work_order, _, _, s3, planner = worked
    set_stage(s3, StageStatus.DONE, at(10, 20), at(11, 30))
    work_order.status, work_order.completed_at = WorkOrderStatus.COMPLETED, at(11, 30)
    work_order.save()
    response = http.get(
        f"/api/workorders/{work_order.pk}/metrics", headers=bearer(planner)
    )
    assert response.status_code == 200
    assert response.json() == {
        "work_order_id": work_order.pk,
        "status": "completed",
        "stages_total": 3,
        "stages_done": 3,
        "stages_on_time": 1,
        "delay_minutes": 30.0,  # completed 11:30, planned 11:00
        "efficiency_score": 85.7,  # 100 * 180 / (50 + 90 + 70)
        "on_time_percentage": 33.3,  # 1 of 3
    }
    stage = http.get(f"/api/stages/{s3.pk}/metrics/", headers=bearer(planner))
    assert stage.status_code == 200
    assert stage.json() == {
        "stage_id": s3.pk,
        "work_order_id": work_order.pk,
        "status": "done",
        "planned_minutes": 60.0,
        "actual_minutes": 70.0,
        "delay_minutes": 30.0,
        "efficiency_score": 85.7,  # 100 * 60 / 70
        "on_time": False,
    }


def test_metrics_of_a_work_order_not_yet_due(http, make_user):
    make_runbook()
    operator = make_user("operator")
    later = T0.replace(year=2099)  # planned windows end before 2100 (the time bound)
    work_order = make_work_order(make_user("planner"), start=later, hours=6)
    first = stages_of(work_order)[0]
    assert http.get(
        f"/api/workorders/{work_order.pk}/metrics", headers=bearer(operator)
    ).json() == {
        "work_order_id": work_order.pk,
        "status": "planned",
        "stages_total": 3,
        "stages_done": 0,
        "stages_on_time": 0,
        "delay_minutes": 0.0,
        "efficiency_score": None,
        "on_time_percentage": None,
    }
    assert http.get(
        f"/api/stages/{first.pk}/metrics", headers=bearer(operator)
    ).json() == {
        "stage_id": first.pk,
        "work_order_id": work_order.pk,
        "status": "planned",
        "planned_minutes": 120.0,  # 6 hours over three equal stages
        "actual_minutes": None,
        "delay_minutes": 0.0,
        "efficiency_score": None,
        "on_time": None,
    }


def test_a_stage_never_started_is_late_once_its_planned_end_passes(worked):
    work_order = make_work_order(worked[4], lot_no="LOT-2")
    first = stages_of(work_order)[0]  # planned 08:00-09:00
    metrics = selectors.stage_metrics(stage_id=first.pk, now=at(9, 40))
    assert (metrics.actual_minutes, metrics.delay_minutes, metrics.on_time) == (
        None,
        40.0,
        None,
    )


def test_time_on_hold_counts_as_actual_time(worked):
    s3 = worked[3]
    WorkOrderStage.objects.filter(pk=s3.pk).update(status=StageStatus.HOLD)
    metrics = selectors.stage_metrics(stage_id=s3.pk, now=at(12, 20))
    assert (metrics.actual_minutes, metrics.delay_minutes) == (120.0, 80.0)


def test_a_cancelled_work_order_has_no_delay(worked):
    work_order, *_, planner = worked
    services.work_order_cancel(work_order_id=work_order.pk, reason="x", actor=planner)
    metrics = selectors.work_order_metrics(work_order_id=work_order.pk, now=at(23, 0))
    assert (metrics.status, metrics.delay_minutes, metrics.stages_done) == (
        "cancelled",
        None,
        2,
    )


def test_fractional_minutes_are_rounded_to_one_decimal(worked):
    s1 = worked[1]
    set_stage(s1, StageStatus.DONE, at(8), at(8) + timedelta(minutes=47, seconds=20))
    metrics = selectors.stage_metrics(stage_id=s1.pk, now=at(12))
    # 47:20 is 47.333... minutes; 100 * 60 / 47.333... = 126.76...
    assert (metrics.actual_minutes, metrics.efficiency_score) == (47.3, 126.8)


def test_unknown_stage_metrics_is_404(http, make_user):
    response = http.get("/api/stages/987654/metrics", headers=bearer(make_user()))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db(transaction=False)
def test_metrics_query_counts(worked, make_user, django_assert_num_queries):
    work_order, s1, *_ = worked
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(make_user())["Authorization"])
    with django_assert_num_queries(3):  # user, work order, its stages
        assert client.get(f"/api/workorders/{work_order.pk}/metrics").status_code == 200
    with django_assert_num_queries(2):  # user, stage
        assert client.get(f"/api/stages/{s1.pk}/metrics").status_code == 200
