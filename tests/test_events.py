"""The outbox: stored in the caller's transaction, sent after commit, re-sent.

These tests let this process play the ASGI server: channels it creates on the
channel layer stand in for WebSocket clients (end-to-end tests with a real
server and client are in test_websocket.py).
"""

from __future__ import annotations

import asyncio
import json
import typing

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.test import override_settings

from bpmos import access, events
from bpmos.accounts.events import UserChanged
from bpmos.accounts.services import user_role_change
from bpmos.dashboards import live as dashboards_live
from bpmos.events import pump, services
from bpmos.events.consumers import DeliveredIds
from bpmos.events.models import OutboxEvent, OutboxTopic
from bpmos.events.selectors import REPLAY_MAX_EVENTS, outbox_replay
from bpmos.events.tasks import events_deliver_task, events_redeliver_task
from bpmos.events.types import DECLARED, Event
from bpmos.roles import Role
from compliance import events as compliance_events
from exceptions import events as exception_events
from inventory import events as inventory_events
from lines import events as line_events
from passports import events as passport_events
from runbooks import events as runbook_events
from scada import events as alarm_events

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]
        },
    }
}


@pytest.fixture(autouse=True)
def _this_process_holds_the_subscribers():
    # With an in-memory layer only the ASGI process's pump makes delivery
    # possible; here the test's own channels are the subscribers.
    services.mark_local_pump_running(True)
    yield
    services.mark_local_pump_running(False)


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN)


@pytest.fixture
def listen():
    """``listen(topic)`` -> a channel in that topic's group, and its receive()."""

    async def join(topic: str):
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(services.group_name(topic), channel)

        async def receive(timeout: float = 10.0) -> dict:
            # A wait for what must arrive: it returns as soon as it does. 2 s ran
            # out once on PostgreSQL and Redis with the machine loaded.
            return await asyncio.wait_for(layer.receive(channel), timeout)

        return receive

    return join


def run(scenario):
    """Run an async scenario; its sync_to_async calls use this thread's database."""
    return async_to_sync(scenario)()


def change_role(user, role: str, *, actor) -> OutboxEvent:
    with transaction.atomic():
        user_role_change(user_id=user.pk, role=role, actor=actor)
    return OutboxEvent.objects.latest("id")


@transaction.atomic
def role_change_that_fails(user, *, actor) -> None:
    user_role_change(user_id=user.pk, role=Role.SUPERVISOR, actor=actor)
    raise RuntimeError("the change fails after publishing")


def publish_while_layer_is_down(user, role: str, *, actor) -> OutboxEvent:
    with override_settings(CHANNEL_LAYERS=DEAD_LAYER):
        row = change_role(user, role, actor=actor)
    row.refresh_from_db()
    return row


# --- publish and deliver ----------------------------------------------------------


def test_committed_event_is_stored_sent_and_marked_delivered(admin, make_user, listen):
    operator = make_user(Role.OPERATOR, username="olga")

    async def scenario():
        receive = await listen("users")
        row = await sync_to_async(change_role)(operator, Role.PLANNER, actor=admin)
        return row, await receive()

    row, message = run(scenario)
    assert message == {
        "type": "event.message",
        "event": {
            "id": row.pk,
            "name": "user.role_changed",
            "topics": ["users"],
            "occurredAt": row.created_at.isoformat().replace("+00:00", "Z"),
            "data": {
                "id": operator.pk,
                "username": "olga",
                "role": "planner",
                "isActive": True,
            },
        },
    }
    row.refresh_from_db()
    assert row.delivered_at is not None
    assert row.attempts == 1
    assert list(OutboxTopic.objects.values_list("event_id", "topic")) == [
        (row.pk, "users")
    ]


def test_rolled_back_event_is_neither_stored_nor_sent(admin, make_user, listen):
    operator = make_user(Role.OPERATOR)

    async def scenario():
        receive = await listen("users")
        with pytest.raises(RuntimeError, match="after publishing"):
            await sync_to_async(role_change_that_fails)(operator, actor=admin)
        committed = await sync_to_async(change_role)(
            operator, Role.PLANNER, actor=admin
        )
        return committed, await receive()

    committed, first = run(scenario)
    assert first["event"]["id"] == committed.pk
    assert first["event"]["data"]["role"] == "planner"
    assert OutboxEvent.objects.count() == 1
    assert OutboxTopic.objects.count() == 1


def test_event_published_while_layer_is_down_is_kept_and_redelivered(
    admin, make_user, listen
):
    operator = make_user(Role.OPERATOR)
    row = publish_while_layer_is_down(operator, Role.PLANNER, actor=admin)
    assert (row.delivered_at, row.attempts) == (None, 1)
    operator.refresh_from_db()
    assert operator.role == Role.PLANNER  # the change itself committed

    async def scenario():
        receive = await listen("users")
        too_fresh = await sync_to_async(services.events_redeliver)(
            older_than_seconds=60
        )
        redelivered = await sync_to_async(services.events_redeliver)(
            older_than_seconds=0
        )
        return too_fresh, redelivered, await receive()

    too_fresh, redelivered, message = run(scenario)
    assert (too_fresh, redelivered) == (0, 1)
    assert message["event"]["id"] == row.pk
    row.refresh_from_db()
    assert row.delivered_at is not None
    assert row.attempts == 2


def test_beat_task_redelivers(admin, make_user, listen, settings):
    settings.BPMOS_EVENT_REDELIVERY_AFTER = 0
    row = publish_while_layer_is_down(make_user(), Role.PLANNER, actor=admin)

    async def scenario():
        receive = await listen("users")
        sent = await sync_to_async(events_redeliver_task)()
        return sent, await receive()

    sent, message = run(scenario)
    assert sent == 1
    assert message["event"]["id"] == row.pk


def test_deliver_task_sends_its_chunk_once(admin, make_user, listen):
    rows = [
        publish_while_layer_is_down(make_user(), Role.PLANNER, actor=admin)
        for _ in range(3)
    ]
    chunk = [rows[0].pk, rows[1].pk]

    async def scenario():
        receive = await listen("users")
        sent = await sync_to_async(events_deliver_task)(chunk)
        again = await sync_to_async(events_deliver_task)(chunk)
        return sent, again, [await receive(), await receive()]

    sent, again, messages = run(scenario)
    assert (sent, again) == (2, 0)  # a chunk taken twice is sent once
    assert [m["event"]["id"] for m in messages] == chunk
    for row in rows:
        row.refresh_from_db()
    assert [row.delivered_at is not None for row in rows] == [True, True, False]


def test_redelivery_stops_at_the_first_failed_send(admin, make_user, monkeypatch):
    rows = [
        publish_while_layer_is_down(make_user(), Role.PLANNER, actor=admin)
        for _ in range(3)
    ]
    layer = get_channel_layer()
    sends = []

    async def second_send_fails(group, message):
        sends.append(message["event"]["id"])
        if len(sends) == 2:
            raise ConnectionError("Redis went away")

    monkeypatch.setattr(layer, "group_send", second_send_fails)
    assert services.events_redeliver(older_than_seconds=0) == 1
    assert sends == [rows[0].pk, rows[1].pk]
    state = list(
        OutboxEvent.objects.order_by("id").values_list("delivered_at", "attempts")
    )
    assert state[0][0] is not None
    assert state[1:] == [(None, 2), (None, 1)]  # failed once more; not tried


def test_hung_layer_send_times_out_and_keeps_the_event(admin, make_user, monkeypatch):
    row = publish_while_layer_is_down(make_user(), Role.PLANNER, actor=admin)
    layer = get_channel_layer()

    async def hangs(group, message):
        await asyncio.sleep(30)

    monkeypatch.setattr(layer, "group_send", hangs)
    monkeypatch.setattr(services, "SEND_TIMEOUT_SECONDS", 0.2)
    assert services.events_redeliver(older_than_seconds=0) == 0
    row.refresh_from_db()
    assert (row.delivered_at, row.attempts) == (None, 2)


# --- the pump (embedded mode) -----------------------------------------------------


def test_pump_sends_what_another_process_left_in_the_outbox(admin, make_user, listen):
    row = publish_while_layer_is_down(make_user(), Role.PLANNER, actor=admin)

    async def scenario():
        receive = await listen("users")
        sent = await pump.pump_once()
        return sent, await receive()

    sent, message = run(scenario)
    assert sent == 1
    assert message["event"]["id"] == row.pk
    row.refresh_from_db()
    assert row.delivered_at is not None
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_pump_starts_only_with_an_in_memory_layer():
    services.mark_local_pump_running(False)

    async def scenario():
        pump.ensure_started()
        pump.ensure_started()  # idempotent: still one task
        task = pump._task
        running = services.can_deliver_here()
        await pump.stop()
        return task, running

    task, running = run(scenario)
    if services.layer_is_shared():
        assert task is None
    else:
        assert task is not None
        assert running is True
        assert task.cancelled()
    assert pump._task is None


def test_a_pump_whose_loop_closed_no_longer_counts_as_delivering_here():
    """A pump started on a loop that then closed (a test's, e.g. a consumer's
    connect) took its in-memory groups with it: this process must leave the
    outbox rows to the server's pump, not mark them delivered. Left set, the
    flag made later end-to-end stream tests in the same process wait forever."""
    services.mark_local_pump_running(False)

    async def scenario():
        pump.ensure_started()
        return services.can_deliver_here()

    running = run(scenario)  # its loop is closed when run() returns
    if services.layer_is_shared():
        assert services.can_deliver_here() is True
    else:
        assert running is True
        assert services.can_deliver_here() is False
    pump._task = None


# --- replay -----------------------------------------------------------------------


def test_replay_returns_later_events_of_the_topics_oldest_first(admin):
    def publish(topics):
        with transaction.atomic():
            return events.publish(
                Event(name="user.registered", topics=topics, data={"n": 1})
            ).pk

    before = publish(("users",))
    users = publish(("users",))
    both = publish(("users", "audit"))
    publish(("line.7",))
    audit = publish(("audit",))

    replay = outbox_replay(topics=["users", "audit"], after_id=before)
    assert [e["id"] for e in replay.events] == [users, both, audit]
    assert replay.events[1]["topics"] == ["users", "audit"]
    assert replay.truncated is False

    limited = outbox_replay(topics=["users", "audit"], after_id=before, limit=2)
    assert [e["id"] for e in limited.events] == [users, both]
    assert limited.truncated is True


def test_delivered_ids_are_exact_however_many_come_between():
    """The ids a connection sent, exactly: a copy is dropped however many
    events came between (the old "last 4,096" let one through after 4,097),
    and ids that arrive out of order (a late commit) are each sent once."""
    sent = DeliveredIds()
    first = list(range(10**6, 10**6 + 2 * REPLAY_MAX_EVENTS))
    assert all(sent.add(i) for i in first)
    assert [sent.add(i) for i in (first[0], first[-1], first[4096])] == [False] * 3
    late = 10**6 - 5  # stored before, committed after: not a copy
    assert (sent.add(late), sent.add(late)) == (True, False)
    assert sent.add(2**40) is True  # outbox ids are 64-bit
    assert len(sent) == len(first) + 2


# --- declarations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "topic", "allowed"),
    [
        (Role.ADMIN, "users", True),
        (Role.SUPERVISOR, "users", False),
        (Role.AUDITOR, "audit", True),
        (Role.ADMIN, "audit", True),
        (Role.PLANT_HEAD, "audit", False),
        (Role.OPERATOR, "lines", True),
        (Role.AUDITOR, "dispatch", True),
        (Role.OPERATOR, "line.42", True),
        (Role.OPERATOR, "line.x", False),
        (Role.OPERATOR, "line.<id>", False),
        (Role.ADMIN, "nope", False),
        (None, "lines", False),
    ],
)
def test_topic_declaration(role, topic, allowed):
    assert access.may_subscribe(role, topic) is allowed


def test_every_declared_topic_makes_a_valid_group_name():
    layer = get_channel_layer()
    for topic in access.TOPICS:
        concrete = topic.replace("<id>", "123456789012345678")
        assert access.topic_rule(concrete) is access.TOPICS[topic]
        assert layer.require_valid_group_name(services.group_name(concrete))


def test_events_need_a_declared_name_and_declared_topics():
    with pytest.raises(ValueError, match="not declared"):
        Event(name="user.renamed", topics=("users",))
    with pytest.raises(ValueError, match="undeclared topics"):
        Event(name="user.registered", topics=("users", "gossip"))
    with pytest.raises(ValueError, match="at least one topic"):
        Event(name="user.registered", topics=())


# How to build one real event of each declared name. An area that declares an
# event adds its builder here, so its payload's shape is checked too.
EXAMPLES = {
    f"user.{change}": lambda user, change=change: UserChanged.of(user, change=change)
    for change in ("registered", "role_changed", "deactivated", "reactivated")
}


def _production(user):
    """A small runbook with a work order, a gate and an exception."""
    from tests import factories_tower as f

    runbook = f.make_runbook()
    gate = f.make_gate(f.stage_of(runbook, "S5"))
    work_order = f.make_work_order(runbook, user)
    stage = f.wo_stage(work_order, "S1")
    exception = f.raise_exception(user, runbook=runbook, stage=gate.stage)
    return work_order, stage, gate, exception


EXAMPLES.update(
    {
        **{
            f"stage.{change}": lambda user, change=change: runbook_events.stage_event(
                _production(user)[1], change
            )
            for change in (
                "started",
                "completed",
                "held",
                "resumed",
                "assigned",
                "unassigned",
            )
        },
        **{
            f"workorder.{change}": lambda user, change=change: (
                runbook_events.work_order_event(_production(user)[0], change)
            )
            for change in runbook_events.WORK_ORDER_EVENTS
        },
        "gate.changed": lambda user: runbook_events.gate_event(_production(user)[2]),
        **{
            f"exception.{change}": lambda user, change=change: (
                exception_events.exception_event(_production(user)[3], change)
            )
            for change in exception_events.EXCEPTION_EVENTS
        },
    }
)


def _stock(user):
    """A received lot with a reservation against a dispatch."""
    from inventory import services as inventory_services
    from tests import factories_inventory as f

    f.make_categories(), f.make_warehouse()
    item = f.receive(
        user, "RM-ADH-001", category="raw-materials", quantity=10, unit="kg"
    )
    reservation = inventory_services.item_reserve(
        item_code=item.code, quantity=4, dispatch_ref="DSP-0001", actor=user
    )
    return item, reservation


def _line_change(kind: str):
    """A line with a blocked station, and the event that change published."""
    from lines.status import LineHealth, LineMode, StationState, StationStatus
    from tests import factories_lines as f

    line = f.make_line()
    station = line.stations.get(slug="st-02")
    if kind == "station":
        return line_events.station_changed(
            line,
            station,
            before=StationStatus(StationState.RUNNING),
            after=StationStatus(StationState.BLOCKED, "Safety Curtain"),
            at=f.at(9),
        )
    return line_events.line_changed(
        line,
        mode=LineMode.BLOCKED,
        health=LineHealth.CRITICAL,
        previous_mode=LineMode.RUNNING,
        previous_health=LineHealth.OK,
        at=f.at(9),
    )


EXAMPLES.update(
    {
        **{
            f"item.{change}": lambda user, change=change: inventory_events.item_event(
                _stock(user)[0], change, reserved=4
            )
            for change in inventory_events.ITEM_EVENTS
        },
        **{
            f"reservation.{change}": lambda user, change=change: (
                inventory_events.reservation_event(_stock(user)[1], change)
            )
            for change in inventory_events.RESERVATION_EVENTS
        },
        "station.changed": lambda user: _line_change("station"),
        "line.changed": lambda user: _line_change("line"),
    }
)


def _desk(user, move: str):
    """A pack on the dispatch desk, and the event ``move`` published for it."""
    from django.utils import timezone

    from passports.dispatch import services as dispatch
    from passports.models import PassportEvent
    from tests.dispatch_support import latest_job, make_pack

    pack = make_pack(user, "PK-EX-1")
    job = latest_job(pack)
    if move == "changed":
        last = PassportEvent.objects.filter(passport=pack).latest("version")
        return passport_events.changed(pack, last)
    if move == "update":
        return passport_events.dispatchable_update(pack, is_dispatchable=True, count=1)
    if move == "reactivated":
        return passport_events.reactivated(pack, job, at=timezone.now())
    dispatch.product_move_to_past(passport_id=pack.pk, reason="recount", actor=user)
    job.refresh_from_db()
    return passport_events.moved_to_past(pack, job, at=timezone.now())


EXAMPLES.update(
    {
        "passport.changed": lambda user: _desk(user, "changed"),
        "product_moved_to_past": lambda user: _desk(user, "moved"),
        "product_reactivated": lambda user: _desk(user, "reactivated"),
        "dispatchable_products_update": lambda user: _desk(user, "update"),
    }
)


def _alarm(user):
    """An acknowledged limit alarm that became an exception (every field set)."""
    from datetime import UTC, datetime

    from scada.models import AlarmEvent, Connector, Tag
    from tests import factories_tower as f

    connector = Connector.objects.create(name="plc", kind="opcua", endpoint="x")
    tag = Tag.objects.create(connector=connector, node_id="n", tag_name="t1")
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    return AlarmEvent.objects.create(
        timestamp=at,
        tag=tag,
        connector=connector,
        tag_name="t1",
        status="ack_active",
        area="line-a",
        message="t1 high 90 (limit 80)",
        value=90.0,
        limit=80.0,
        acknowledged_at=at,
        acknowledged_by=user,
        shelved_until=at,
        exception=f.raise_exception(user, runbook=f.make_runbook()),
    )


def _flood():
    from datetime import UTC, datetime

    from scada.models import AlarmFlood

    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    return AlarmFlood.objects.create(
        area="line-a", started_at=at, ended_at=at, alarm_count=11, peak_rate=11
    )


EXAMPLES.update(
    {
        **{
            f"alarm.{change}": lambda user, change=change: alarm_events.alarm_event(
                _alarm(user), change
            )
            for change in alarm_events.ALARM_CHANGES
        },
        **{
            f"alarm_flood.{change}": lambda user, change=change: (
                alarm_events.flood_event(_flood(), change)
            )
            for change in alarm_events.FLOOD_EVENTS
        },
    }
)

# The role dashboards' per-user attention topic (bpmos.dashboards.live).
EXAMPLES["attention.changed"] = lambda user: dashboards_live.attention_event(
    user_ids=[user.pk], kinds={"alarm", "gate"}
)


def _return(status: str):
    """A compliance return (every field set)."""
    from datetime import date

    from django.utils import timezone

    from compliance.models import ComplianceReturn

    return ComplianceReturn.objects.create(
        period_start=date(2026, 4, 1),
        period_end=date(2026, 6, 30),
        financial_year="2026-27",
        status=status,
        row_count=3,
        content_hash="0" * 64,
        built_at=timezone.now(),
    )


def _chain_status(user):
    from elog import events as elog_events

    broken = {"seq": 7, "id": 9, "problem": "hash", "message": "record 7 altered"}
    return elog_events.chain_status_event(
        {
            "ok": False,
            "checked": 12,
            "headSeq": 12,
            "verifiedAt": "2026-12-01T08:00:00Z",
            "firstBroken": broken,
        }
    )


EXAMPLES.update(
    {
        "compliance_return.built": lambda user: compliance_events.return_event(
            _return("draft"), "built"
        ),
        "compliance_return.approved": lambda user: compliance_events.return_event(
            _return("approved"), "approved"
        ),
        "audit_chain.changed": _chain_status,
    }
)


def test_every_declared_event_has_an_example():
    assert set(DECLARED) - set(EXAMPLES) == set()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_event_payload_matches_its_declared_type(name, make_user):
    payload_type = DECLARED[name]
    assert typing.is_typeddict(payload_type)
    event = EXAMPLES[name](make_user(Role.PLANNER))
    assert event.name == name
    hints = typing.get_type_hints(payload_type)
    sent = json.loads(json.dumps(event.data))  # what a client receives
    assert sent == event.data
    assert set(sent) == set(hints)
    for key, expected_type in hints.items():
        if isinstance(expected_type, type):  # plain int/str/bool/...; bool is no int
            assert type(sent[key]) is expected_type, key


@pytest.mark.django_db
def test_prune_drops_only_old_delivered_events(make_user):
    from datetime import timedelta

    from django.utils import timezone

    user = make_user(Role.ADMIN)
    old_delivered, old_pending, fresh_delivered = (
        services.event_publish(event=UserChanged.of(user, change="registered"))
        for _ in range(3)
    )
    long_ago = timezone.now() - timedelta(days=10)
    OutboxEvent.objects.filter(pk__in=[old_delivered.pk, old_pending.pk]).update(
        created_at=long_ago
    )
    OutboxEvent.objects.filter(pk__in=[old_delivered.pk, fresh_delivered.pk]).update(
        delivered_at=timezone.now()
    )
    assert services.events_prune(older_than=timedelta(days=7)) == 1
    remaining = set(OutboxEvent.objects.values_list("pk", flat=True))
    assert remaining == {old_pending.pk, fresh_delivered.pk}
    assert not OutboxTopic.objects.filter(event_id=old_delivered.pk).exists()


def test_a_resume_reads_page_after_page_up_to_its_bound(admin, monkeypatch):
    """``bpmos.events.replay``, the WebSocket's and the dispatch stream's
    catch-up: pages of ``REPLAY_LIMIT`` in id order, stopped at
    ``REPLAY_MAX_EVENTS`` with ``truncated`` (the SSE stream once stopped at
    the first page)."""
    from bpmos.events import replay, selectors

    def publish(topics):
        with transaction.atomic():
            return events.publish(
                Event(name="user.registered", topics=topics, data={"n": 1})
            ).pk

    start = publish(("users",))
    ids = [publish(("users",) if n % 3 else ("line.7",)) for n in range(9)]
    wanted = [pk for n, pk in zip(range(9), ids, strict=True) if n % 3]
    monkeypatch.setattr(selectors, "REPLAY_LIMIT", 2)

    def run(limit):
        monkeypatch.setattr(selectors, "REPLAY_MAX_EVENTS", limit)
        got = []

        async def forward(event):
            got.append(event["id"])

        count, truncated = async_to_sync(replay.replay)(["users"], start, forward)
        return got, count, truncated

    assert run(100) == (wanted, 6, False)  # three pages of two
    assert run(5) == (wanted[:5], 5, True)  # the bound, mid-page
