"""How an exception reaches its runbook and template stage
(``exceptions.selectors.RUNBOOK_PATHS``, ``STAGE_PATHS``): its own, else its
stage's, else its work order's (or work-order stage's). The three readers (the
joined annotations of the lists, the control tower's id subqueries, the latest
change per runbook) read the same links."""

from datetime import timedelta

import pytest

from exceptions import selectors
from exceptions.models import PlantException
from runbooks.models import WorkOrderStage
from tests.factories_tower import (
    at,
    make_runbook,
    make_work_order,
    raise_exception,
    stage_of,
)

pytestmark = pytest.mark.django_db


def test_every_reader_links_an_exception_the_same_way(make_user):
    boss = make_user("supervisor")
    ours = make_runbook()
    other = make_runbook("maintenance", title="Maintenance", prefix="mnt")
    work_order = make_work_order(other, boss)
    wo_stage = WorkOrderStage.objects.filter(work_order=work_order).order_by(
        "position"
    )[1]
    own = raise_exception(boss, runbook=ours, title="own")
    by_stage = raise_exception(boss, stage=stage_of(ours, "S2"), title="stage")
    # Its own runbook wins over its stage's (another runbook's stage).
    nearest = raise_exception(
        boss, runbook=ours, stage=stage_of(other, "S1"), title="nearest"
    )
    by_work_order = raise_exception(boss, runbook=ours, title="work order")
    PlantException.objects.filter(pk=by_work_order.pk).update(
        runbook=None, stage=None, work_order=work_order
    )
    by_wo_stage = raise_exception(boss, runbook=ours, title="wo stage")
    PlantException.objects.filter(pk=by_wo_stage.pk).update(
        runbook=None, stage=None, work_order=work_order, work_order_stage=wo_stage
    )
    expected = {
        own.pk: (ours.pk, ours.slug, None),
        by_stage.pk: (ours.pk, ours.slug, stage_of(ours, "S2").pk),
        nearest.pk: (ours.pk, ours.slug, stage_of(other, "S1").pk),
        by_work_order.pk: (other.pk, other.slug, None),
        by_wo_stage.pk: (other.pk, other.slug, wo_stage.stage_id),
    }
    listed = {
        e.pk: (e.linked_runbook_id, e.linked_runbook_slug, e.linked_stage_id)
        for e in selectors.exception_list()
    }
    assert listed == expected
    rows = selectors.exception_open_rows(runbook_ids=[ours.pk, other.pk])
    assert {r.id: (r.linked_runbook_id, r.linked_stage_id) for r in rows} == {
        pk: (runbook_id, stage_id)
        for pk, (runbook_id, _slug, stage_id) in expected.items()
    }
    # The latest change per runbook: move each exception alone to the front.
    base = at("2026-01-15T08:00:00")
    for minute, (pk, (runbook_id, _slug, _stage)) in enumerate(
        expected.items(), start=1
    ):
        PlantException.objects.update(updated_at=base)
        later = base + timedelta(minutes=minute)
        PlantException.objects.filter(pk=pk).update(updated_at=later)
        found = selectors.exception_last_change_by_runbook(
            runbook_ids=[ours.pk, other.pk]
        )
        assert found[runbook_id] == later
        assert set(found.values()) == {base, later}
