"""Concurrent moves of one stage or issue: the row lock lets exactly one win.

PostgreSQL only: SQLite serialises whole transactions and ignores
``select_for_update``, so the race cannot happen there.
"""

import pytest

from elog.models import AuditRecord
from exceptions import services as exception_services
from runbooks import services
from tests.factories_production import make_runbook, make_work_order, stages_of
from tests.support import outcome_code, run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql_only]


def race(attempts: int, call) -> list[str]:
    """Run ``call`` from ``attempts`` threads at once; each outcome or error code."""
    return sorted(outcome_code(r) for r in run_together([call] * attempts, timeout=30))


def test_concurrent_starts_of_one_stage_exactly_one_wins(make_user):
    make_runbook()
    supervisor = make_user("supervisor")
    work_order = make_work_order(supervisor)
    first = stages_of(work_order)[0]
    outcomes = race(
        4, lambda: services.stage_start(stage_id=first.pk, actor=supervisor)
    )
    assert outcomes == ["illegal_transition"] * 3 + ["ok"]
    assert AuditRecord.objects.filter(action="stage.started").count() == 1
    first.refresh_from_db()
    work_order.refresh_from_db()
    assert (first.status, work_order.status) == ("in_progress", "in_progress")
    assert work_order.started_at == first.actual_start


def test_concurrent_acknowledgements_of_one_issue_exactly_one_wins(make_user):
    make_runbook()
    operator = make_user("operator")
    stage = stages_of(make_work_order(make_user("planner")))[0]
    issue = exception_services.stage_issue_raise(
        stage_id=stage.pk, type="safety", description="sparks", actor=operator
    )
    outcomes = race(
        3,
        lambda: exception_services.exception_acknowledge(
            exception_id=issue.pk, actor=operator
        ),
    )
    assert outcomes == ["illegal_transition", "illegal_transition", "ok"]
    assert AuditRecord.objects.filter(action="exception.acknowledged").count() == 1
