"""The same Idempotency-Key sent at once from many connections (real HTTP,
one thread and one database connection each): the work happens exactly once.

PostgreSQL: a request that meets the key while the first runs is refused with
409 ``idempotency_in_progress``; SQLite serialises the writers, so there it
waits and replays the answer. Both are checked; the count of effects is the
same on both engines.
"""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest
from django.db import connection

from bpmos.idempotency.models import IdempotencyKey, KeyStatus
from inventory import services as inventory
from tests.conftest import bearer
from tests.idempotency_support import RESERVE, effects, make_lot
from tests.support import run_together

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"quantity": 1, "dispatchRef": "DSP-7"}


@pytest.fixture
def sam(make_user):
    sam = make_user("supervisor", username="sam")
    make_lot(sam)
    return sam


def race(url: str, headers: dict[str, str], clients: int) -> list[httpx.Response]:
    """POST the same reservation from ``clients`` threads released together
    (each with a client of its own, made before)."""
    with contextlib.ExitStack() as stack:
        posts = [
            stack.enter_context(httpx.Client(base_url=url, timeout=30)).post
            for _ in range(clients)
        ]
        responses = run_together(
            [
                lambda post=post: post(RESERVE, json=BODY, headers=headers)
                for post in posts
            ],
            timeout=60,
        )
    errors = [r for r in responses if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    return responses


def test_same_key_at_once_reserves_exactly_once(live_server, sam):
    before = effects()
    headers = {**bearer(sam), "Idempotency-Key": "burst-1"}
    responses = race(live_server.url, headers, clients=6)
    fresh = [
        r
        for r in responses
        if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    replayed = [r for r in responses if r.headers.get("Idempotent-Replayed")]
    busy = [r for r in responses if r.status_code == 409]
    assert len(fresh) == 1, [(r.status_code, r.text) for r in responses]
    assert len(fresh) + len(replayed) + len(busy) == 6
    assert {r.content for r in replayed} <= {fresh[0].content}
    assert {r.json()["code"] for r in busy} <= {"idempotency_in_progress"}
    after = effects()
    assert after["reservations"] == before["reservations"] + 1
    assert after["audit"] == before["audit"] + 1
    assert IdempotencyKey.objects.get().status == KeyStatus.COMPLETED


def test_a_retry_while_the_first_runs_never_acts_twice(live_server, sam, monkeypatch):
    real = inventory.item_reserve
    started = threading.Event()

    def slow_reserve(**kwargs):
        reservation = real(**kwargs)
        started.set()
        time.sleep(1.5)  # the first request is still in its transaction
        return reservation

    monkeypatch.setattr(inventory, "item_reserve", slow_reserve)
    headers = {**bearer(sam), "Idempotency-Key": "slow-1"}
    before = effects()
    first: list[httpx.Response] = []

    def send_first():
        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            first.append(client.post(RESERVE, json=BODY, headers=headers))

    thread = threading.Thread(target=send_first, daemon=True)
    thread.start()
    assert started.wait(timeout=20)
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        retry = client.post(RESERVE, json=BODY, headers=headers)
        thread.join(timeout=30)
        (original,) = first
        assert original.status_code == 201
        if connection.vendor == "postgresql":
            assert retry.status_code == 409
            assert retry.json()["code"] == "idempotency_in_progress"
            assert int(retry.headers["Retry-After"]) >= 1
        else:  # SQLite: the retry waited for the first to commit
            assert retry.headers["Idempotent-Replayed"] == "true"
        later = client.post(RESERVE, json=BODY, headers=headers)
    assert (later.status_code, later.content) == (201, original.content)
    assert later.headers["Idempotent-Replayed"] == "true"
    assert effects()["reservations"] == before["reservations"] + 1
