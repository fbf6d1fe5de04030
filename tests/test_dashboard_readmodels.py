"""The dashboards' read models (``bpmos.dashboards.readmodels``): the summary,
the distributions and every role's cards and attention list are served from
the cache (the caller's token lookup and at most one more query) until a
write changes them, and the next read after a write shows it: over a real
socket with committed transactions, through the domain services; a raw
``update()`` that only its domain event announces; a new shift, day or week
never served the previous one's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from rest_framework.test import APIClient

from bpmos import events
from bpmos.dashboards import readmodels
from bpmos.events import Event
from bpmos.roles import Role
from compliance import returns
from exceptions.models import PlantException
from inventory import services as inventory_services
from runbooks import services as runbook_services
from scada import alarms
from tests.conftest import api_as as api
from tests.conftest import bearer
from tests.factories_lines import make_line
from tests.test_dashboard_roles import plant  # noqa: F401 (the fixture)

ENDPOINTS = ["/api/dashboard/summary", "/api/dashboard/distributions"] + [
    f"/api/dashboard/{role}/{what}"
    for role in Role.values
    for what in ("summary", "attention")
]
CLOCK_KEYS = {"asOf", "generatedAt"}  # the time of the request, not of the figures


def reader_of(path: str, plant, make_user):  # noqa: F811
    """A user who may read ``path``: the operator olga for her own dashboard,
    the role itself for the others, the plant head for the plant figures."""
    role = path.split("/")[3]
    if role == "operator":
        return plant["olga"]
    return make_user(role if role in Role.values else "plant-head")


def without_clock(body: dict) -> dict:
    return {key: value for key, value in body.items() if key not in CLOCK_KEYS}


@pytest.mark.django_db(transaction=True)  # reads inside a transaction compute
@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_second_read_is_served_from_the_cache(
    path,
    plant,  # noqa: F811
    make_user,
    django_assert_max_num_queries,
):
    client = api(reader_of(path, plant, make_user))
    first = client.get(path)
    assert first.status_code == 200, first.json()
    # The token's user, and at most one figure read per request (the
    # admin's connectors); everything else from the cache.
    with django_assert_max_num_queries(2):
        second = client.get(path)
    assert second.status_code == 200
    assert without_clock(second.json()) == without_clock(first.json())


def _get(http, user, path: str) -> dict:
    response = http.get(path, headers=bearer(user))
    assert response.status_code == 200, response.text
    return response.json()


def _cards(body: dict) -> dict:
    return {card["id"]: card["value"] for card in body["cards"]}


def _item_ids(body: dict) -> list[str]:
    return [item["id"] for item in body["items"]]


def _on_hold(body: dict) -> int:
    return sum(stage["onHold"] for stage in body["stageMix"])


def _stock(body: dict, status: str) -> int:
    return next(s["count"] for s in body["inventoryByStatus"] if s["status"] == status)


@pytest.mark.django_db(transaction=True)
def test_every_write_is_on_the_next_read_over_a_real_socket(
    http,
    plant,  # noqa: F811
    make_user,
):
    boss, olga = plant["boss"], plant["olga"]
    head, planner = make_user("plant-head"), make_user("planner")

    def read_all():
        return {
            "summary": _get(http, head, "/api/dashboard/summary"),
            "distributions": _get(http, head, "/api/dashboard/distributions"),
            "operator": _get(http, olga, "/api/dashboard/operator/summary"),
            "operator list": _get(http, olga, "/api/dashboard/operator/attention"),
            "planner": _get(http, planner, "/api/dashboard/planner/summary"),
            "planner list": _get(http, planner, "/api/dashboard/planner/attention"),
            "supervisor": _get(http, boss, "/api/dashboard/supervisor/summary"),
            "supervisor list": _get(http, boss, "/api/dashboard/supervisor/attention"),
            "head": _get(http, head, "/api/dashboard/plant-head/summary"),
            "head list": _get(http, head, "/api/dashboard/plant-head/attention"),
        }

    before = read_all()
    served = read_all()  # from the cache now, and the same
    assert {name: without_clock(body) for name, body in served.items()} == {
        name: without_clock(body) for name, body in before.items()
    }
    assert before["summary"]["hold"]["inventoryItems"] == 1
    assert _stock(before["distributions"], "Hold") == 1
    assert _cards(before["supervisor"])["holdsToRelease"] == 2

    # An item put on hold (inventory service).
    inventory_services.item_hold(item_code="CELL-2", reason="Swollen", actor=boss)
    after = read_all()
    assert after["summary"]["hold"]["inventoryItems"] == 2
    assert after["summary"]["hold"]["total"] == before["summary"]["hold"]["total"] + 1
    assert _stock(after["distributions"], "Hold") == 2
    assert _cards(after["supervisor"])["holdsToRelease"] == 3
    assert "item-CELL-2" in _item_ids(after["supervisor list"])

    # The held stage resumed (runbooks service).
    stage = f"stage-{plant['stage'].pk}"
    assert stage in _item_ids(after["operator list"])
    assert stage in _item_ids(after["planner list"])
    assert _on_hold(after["distributions"]) == 1
    runbook_services.stage_resume(stage_id=plant["stage"].pk, actor=boss)
    after = read_all()
    assert after["summary"]["hold"]["workOrderStages"] == 0
    assert _on_hold(after["distributions"]) == 0
    assert _cards(after["operator"])["blockedStages"] == 0
    assert _cards(after["operator"])["inProgressStages"] == 1
    assert _cards(after["planner"])["blockedStages"] == 0
    assert stage not in _item_ids(after["operator list"])
    assert stage not in _item_ids(after["planner list"])

    # An alarm acknowledged (SCADA service).
    assert _cards(after["operator"])["unacknowledgedAlarms"] == 2
    alarms.alarm_acknowledge(alarm_id=plant["unacked"].pk, actor=olga)
    after = read_all()
    assert _cards(after["operator"])["unacknowledgedAlarms"] == 1
    assert f"alarm-{plant['unacked'].pk}" not in _item_ids(after["operator list"])

    # A draft return approved (a queryset update announced by its event).
    assert _cards(after["supervisor"])["returnsToApprove"] == 1
    returns.return_approve(return_id=plant["draft"].pk, actor=boss)
    after = read_all()
    assert _cards(after["supervisor"])["returnsToApprove"] == 0
    assert f"return-{plant['draft'].pk}" not in _item_ids(after["supervisor list"])

    # A work order planned (runbooks service).
    planned = _cards(after["planner"])["plannedWorkOrders"]
    runbook_services.work_order_create(
        product_code="PACK-48V",
        lot_no="LOT-NEW",
        qty=4,
        planned_start=datetime.now(UTC),
        planned_end=datetime.now(UTC) + timedelta(hours=1),
        actor=boss,
        runbook_slug=plant["stage"].work_order.runbook.slug,
    )
    after = read_all()
    assert _cards(after["planner"])["plannedWorkOrders"] == planned + 1


@pytest.mark.django_db(transaction=True)
def test_a_raw_update_is_seen_once_its_event_is_published(plant):  # noqa: F811
    """A service that writes with ``update()`` (no signal) and publishes its
    domain event in the same transaction: the event alone drops the
    payloads, on commit (inside the writer's own transaction they are
    computed, never served)."""
    client = api(plant["boss"])
    path = "/api/dashboard/supervisor/summary"
    escalated = plant["to_supervisor"]
    assert client.get(path).json()["cards"][1]["value"] == 1
    with transaction.atomic():
        PlantException.objects.filter(pk=escalated.pk).update(escalation_level=0)
        events.publish(
            Event(
                name="exception.escalated",
                topics=("exceptions",),
                data={"id": escalated.pk, "escalationLevel": 0},
            )
        )
        # In the writer's own transaction: already dropped.
        assert client.get(path).json()["cards"][1]["value"] == 0
    assert client.get(path).json()["cards"][1]["value"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_transaction_drops_its_read_models_once_on_commit_none_on_rollback(
    monkeypatch,
):
    """However many events a transaction publishes, its read models are
    dropped in one cache round trip, after its commit (a ledger append paid
    two); a rolled-back one drops nothing; a write in autocommit at once."""
    from bpmos import readcache

    calls: list[set[str]] = []
    real = readcache.invalidate_many

    def counted(models):
        models = list(models)
        calls.append({model.name for model in models})
        real(models)

    monkeypatch.setattr(readcache, "invalidate_many", counted)

    def escalated(pk):
        return Event(
            name="exception.escalated",
            topics=("exceptions",),
            data={"id": pk, "escalationLevel": 1},
        )

    held = Event(name="item.held", topics=("inventory",), data={"code": "X"})
    with transaction.atomic():
        events.publish(escalated(1))
        events.publish_many([escalated(2), held])
        assert calls == []  # nothing before the commit
    assert calls == [
        {m.name for m in readmodels.read_models_of("exception.escalated")}
        | {m.name for m in readmodels.read_models_of("item.held")}
    ]
    calls.clear()
    with transaction.atomic():
        events.publish(escalated(3))
        transaction.set_rollback(True)
    assert calls == []
    events.publish(held)  # autocommit: dropped at once
    assert calls == [{m.name for m in readmodels.read_models_of("item.held")}]


@pytest.mark.django_db(transaction=True)
def test_a_ledger_append_is_on_the_next_read_after_its_commit(
    make_user, django_assert_max_num_queries
):
    """A single append (its read models dropped once, on commit) is on the
    next read: a passport put on hold, then released."""
    from bpmos.dashboards import kpis
    from passports import ledger
    from tests.factories_passports import make_passport

    boss = make_user("supervisor")
    pack = make_passport("pack", "warehoused")
    held = kpis.summary_get().hold.passports  # computed and stored
    with django_assert_max_num_queries(0):  # served from the cache
        assert kpis.summary_get().hold.passports == held
    ledger.append(passport=pack.pk, kind="held", data={"reason": "Swollen"}, actor=boss)
    assert kpis.summary_get().hold.passports == held + 1
    ledger.append(passport=pack.pk, kind="released", data={}, actor=boss)
    assert kpis.summary_get().hold.passports == held


@pytest.mark.django_db(transaction=True)
def test_a_payload_is_never_served_outside_its_window(make_user):
    """Line A's shifts start 06:00, 14:00, 22:00. A summary read at 13:59 and
    one at 14:00 (nothing written in between) are different shifts; the day
    and the week roll over at midnight UTC."""
    make_line()
    client = APIClient()
    client.force_authenticate(make_user("operator"))  # a token would expire

    def read(when: datetime) -> dict:
        with time_machine.travel(when, tick=False):
            summary = client.get("/api/dashboard/summary").json()
            operator = client.get("/api/dashboard/operator/summary").json()
        return summary | {"shiftInfo": operator["cards"][0]["details"]}

    late = read(datetime(2026, 3, 8, 13, 59, tzinfo=UTC))  # a Sunday
    assert late["shift"]["from"] == "2026-03-08T06:00:00Z"
    assert late["shiftInfo"]["start"] == "2026-03-08T06:00:00Z"
    assert read(datetime(2026, 3, 8, 13, 59, 30, tzinfo=UTC))["shift"] == late["shift"]
    next_shift = read(datetime(2026, 3, 8, 14, 0, tzinfo=UTC))
    assert next_shift["shift"]["from"] == "2026-03-08T14:00:00Z"
    assert next_shift["shiftInfo"]["start"] == "2026-03-08T14:00:00Z"
    assert next_shift["today"] == late["today"]
    monday = read(datetime(2026, 3, 9, 0, 0, tzinfo=UTC))
    assert monday["shift"]["from"] == "2026-03-08T22:00:00Z"
    assert monday["today"]["from"] == "2026-03-09T00:00:00Z"
    assert monday["week"]["from"] == "2026-03-09T00:00:00Z"
    assert late["week"]["from"] == "2026-03-02T00:00:00Z"


@pytest.mark.django_db(transaction=True)
def test_a_read_inside_a_transaction_is_computed_not_stored(
    plant,  # noqa: F811
    django_assert_max_num_queries,
):
    """A payload computed inside a transaction may count writes no signal
    reported (``bulk_create``) and that roll back: it is never stored."""
    from bpmos.dashboards import kpis
    from inventory.models import Item

    assert kpis.summary_get().hold.inventory_items == 1  # stored (autocommit)
    with transaction.atomic():
        Item.objects.filter(code="CELL-2").update(status="hold")  # no signal
        assert kpis.summary_get().hold.inventory_items == 2  # computed
        transaction.set_rollback(True)
    with django_assert_max_num_queries(0):  # served: the cache only
        assert kpis.summary_get().hold.inventory_items == 1


def test_the_domain_events_drop_the_read_models_they_can_change():
    """Each event family drops exactly the read models computed from the
    models it writes."""

    def names(event: str) -> set[str]:
        return {model.name for model in readmodels.read_models_of(event)}

    assert names("alarm.raised") == {
        "dashboard-operator-summary",
        "dashboard-operator-attention",
    }
    assert names("passport.changed") == {
        "dashboard-first-pass",
        "dashboard-holds",
        "dashboard-custody",
        "dashboard-supervisor-summary",
        "dashboard-supervisor-attention",
    }
    assert names("item.held") == {
        "dashboard-holds",
        "dashboard-stock",
        "dashboard-supervisor-summary",
        "dashboard-supervisor-attention",
    }
    assert "dashboard-stage-wip" in names("stage.held")
    assert "dashboard-plan" in names("workorder.completed")
    assert "dashboard-supervisor-attention" in names("compliance_return.approved")
    assert "dashboard-plant-head-attention" in names("exception.escalated")
    assert "dashboard-admin-summary" in names("user.registered")
    assert names("attention.changed") == set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", Role.values)
def test_the_served_attention_body_is_the_serializers(
    role,
    plant,  # noqa: F811
    make_user,
):
    """The attention list is cached written out (its items as the API writes
    them): the same body as the serializer makes of the list computed now,
    when computed and when served."""
    from bpmos.dashboards import attention
    from bpmos.dashboards.api.roles_serializers import AttentionListSerializer

    user = plant["olga"] if role == "operator" else make_user(role)
    expected = AttentionListSerializer(
        attention.attention_list(role=role, user=user)
    ).data
    assert attention.attention_body(role=role, user=user) == expected  # computed
    assert attention.attention_body(role=role, user=user) == expected  # served
    assert expected["count"] > 0 or role == "auditor"  # never verified: none
