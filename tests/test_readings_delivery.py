"""Readings ingest hands its line and station events to the process's delivery
thread (``bpmos.events.services._background``): the request answers
without waiting for Redis, and every committed event is still delivered, or
kept in the outbox for ``events_redeliver``.

Needs a shared channel layer (Redis); with the embedded in-memory layer the
events are delivered as every other event is (tests/test_events.py).
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.test import override_settings

from bpmos.events import services
from bpmos.events.models import OutboxEvent
from tests.conftest import bearer
from tests.factories_lines import at, ingest, machine, make_line, state

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not services.layer_is_shared(), reason="needs a shared (Redis) channel layer"
    ),
]

DEAD_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]
        },
    }
}


@pytest.fixture
def weld():
    return machine(make_line(), "st-02")


@pytest.fixture
def sender_threads(monkeypatch):
    """The names of the threads that sent outbox rows (the real send runs)."""
    names: list[str] = []
    send = services._send

    def recording(rows):
        names.append(threading.current_thread().name)
        return send(rows)

    monkeypatch.setattr(services, "_send", recording)
    return names


def receive_after(topic: str, action):
    """Join ``topic``'s group, run ``action`` (sync), return the first message."""

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(services.group_name(topic), channel)
        await asyncio.get_running_loop().run_in_executor(None, action)
        return await asyncio.wait_for(layer.receive(channel), 10)

    return async_to_sync(scenario)()


def test_a_status_change_is_delivered_by_the_delivery_thread(
    http, weld, make_user, sender_threads
):
    headers = bearer(make_user("operator", username="scada-gateway"))
    answers = []

    def post():
        answers.append(
            http.post(
                f"/api/machines/{weld.pk}/readings",
                json=[state(at(8), "running")],
                headers=headers,
            )
        )

    message = receive_after("lines", post)
    assert answers[0].status_code == 201, answers[0].text
    assert message["event"]["name"] in {"station.changed", "line.changed"}
    assert services._background.drain()
    rows = list(OutboxEvent.objects.order_by("id"))
    assert {row.name for row in rows} == {"station.changed", "line.changed"}
    assert all(row.delivered_at is not None and row.attempts == 1 for row in rows)
    assert set(sender_threads) == {"bpmos-event-delivery"}


def test_a_refused_batch_hands_nothing_over(http, weld, make_user, sender_threads):
    headers = bearer(make_user("operator", username="scada-gateway"))
    response = http.post(
        f"/api/machines/{weld.pk}/readings",
        json=[state(at(8), "running"), state(at(9), "no-such-state")],
        headers=headers,
    )
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert services._background.drain()
    assert sender_threads == []
    assert not OutboxEvent.objects.exists()


def test_what_the_thread_cannot_send_stays_for_redelivery(weld, sender_threads):
    with override_settings(CHANNEL_LAYERS=DEAD_LAYER):
        with transaction.atomic():
            ingest(weld, [state(at(8), "running")])
        assert services._background.drain(timeout=30)
    rows = list(OutboxEvent.objects.order_by("id"))
    assert rows
    # The first send failed (one attempt); the rest were not tried after it.
    assert [(row.delivered_at, row.attempts) for row in rows] == [(None, 1)] + [
        (None, 0)
    ] * (len(rows) - 1)
    assert services.events_redeliver(older_than_seconds=0) == len(rows)
    assert all(
        row.delivered_at is not None for row in OutboxEvent.objects.order_by("id")
    )
