"""The delivery of several outbox rows at once (``services.adeliver_rows``)
through channels_redis: consecutive rows of the same topics go together
(``_group_send_many``: each group's members read once, every message in one
pipeline), every subscriber gets every message once, in order, across runs
of different topics; a run that fails leaves its rows (and the rest) for the
next attempt; the marks are one round trip."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bpmos.events import services
from bpmos.events.models import OutboxEvent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not services.layer_is_shared(), reason="needs a shared (Redis) channel layer"
    ),
]


def rows_of(topics: list[list[str]]) -> list[OutboxEvent]:
    return [
        OutboxEvent.objects.create(name="user.changed", topics=t, data={"n": n})
        for n, t in enumerate(topics)
    ]


def test_every_subscriber_gets_every_row_once_in_order():
    # users, users, audit (no subscriber), users+passports, passports, users
    topics = [["users"], ["users"], ["audit"], ["users", "passports"]]
    rows = rows_of([*topics, ["passports"], ["users"]])

    async def scenario():
        layer = get_channel_layer()
        assert services._sends_in_batches(layer)
        both, users_only = await layer.new_channel(), await layer.new_channel()
        for channel, topics in (
            (both, ("users", "passports")),
            (users_only, ("users",)),
        ):
            for topic in topics:
                await layer.group_add(services.group_name(topic), channel)
        outcome = await services.adeliver_rows(rows)

        async def got(channel, count):
            return [
                (await asyncio.wait_for(layer.receive(channel), 10))["event"]["id"]
                for _ in range(count)
            ]

        # A row of two topics reaches a member of both once per group.
        return outcome, await got(both, 6), await got(users_only, 4)

    (delivered, failed), both, users_only = async_to_sync(scenario)()
    ids = [row.pk for row in rows]
    assert (delivered, failed) == (ids, [])
    assert both == [ids[0], ids[1], ids[3], ids[3], ids[4], ids[5]]
    assert users_only == [ids[0], ids[1], ids[3], ids[5]]


def test_a_failed_run_fails_its_first_row_and_leaves_the_rest(monkeypatch):
    rows = rows_of([["users"], ["users"], ["audit"], ["audit"], ["users"]])
    send = services._group_send_many
    groups: list[str] = []

    async def audit_fails(layer, group, messages):
        groups.append(group)
        if group == services.group_name("audit"):
            raise ConnectionError("Redis went away")
        await send(layer, group, messages)

    monkeypatch.setattr(services, "_group_send_many", audit_fails)
    delivered, failed = services._deliver_rows(rows)
    assert (delivered, failed) == ([rows[0].pk, rows[1].pk], [rows[2].pk])
    assert groups == [services.group_name("users"), services.group_name("audit")]
    state = list(
        OutboxEvent.objects.order_by("id").values_list("delivered_at", "attempts")
    )
    assert [at is not None for at, _ in state] == [True, True, False, False, False]
    assert [n for _, n in state] == [1, 1, 1, 0, 0]  # the rest not tried


@pytest.mark.postgresql_only
def test_the_marks_are_one_round_trip():
    rows = rows_of([["users"], ["users"], ["audit"]])
    with CaptureQueriesContext(connection) as queries:
        services.event_outcome_record(
            delivered=[rows[0].pk, rows[1].pk], failed=[rows[2].pk]
        )
    assert len(queries) == 1
    state = list(
        OutboxEvent.objects.order_by("id").values_list("delivered_at", "attempts")
    )
    assert [(at is not None, n) for at, n in state] == [
        (True, 1),
        (True, 1),
        (False, 1),
    ]
