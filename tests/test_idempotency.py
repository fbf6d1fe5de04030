"""Idempotency-Key on the API's POSTs over real HTTP (docs/api.md): a retry
replays the first answer and acts once; another request with the key is
refused and changes nothing; keys are per user, expire, and 5xx answers are
not kept. Runs on SQLite and PostgreSQL (the races: test_idempotency_concurrency)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from bpmos.errors import DependencyUnavailable
from bpmos.idempotency import OUTSIDE
from bpmos.idempotency.models import IdempotencyKey, KeyStatus
from bpmos.idempotency.tasks import idempotency_keys_prune_task
from elog.models import AuditRecord
from inventory import services as inventory
from inventory.api.views import ItemReserveView
from inventory.models import Item, ItemStatus, Reservation
from passports.models import EventKind, PassportEvent
from runbooks.models import WorkOrderStage
from tests.conftest import bearer
from tests.dispatch_support import make_pack
from tests.factories_production import make_runbook, make_work_order, stages_of
from tests.idempotency_support import LOT, RESERVE, effects, make_lot
from tests.support import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"quantity": 2, "dispatchRef": "DSP-0042"}


@pytest.fixture
def sam(make_user):
    sam = make_user("supervisor", username="sam")
    make_lot(sam)
    return sam


def post(http, user, path, body, key=None, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return http.post(path, json=body, headers={**bearer(user), **headers})


# --- replay -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["atomic", OUTSIDE])
def test_retried_reservation_replays_the_first_answer_and_reserves_once(
    http, sam, monkeypatch, mode
):
    monkeypatch.setattr(ItemReserveView, "idempotency", mode, raising=False)
    before = effects()
    first = post(http, sam, RESERVE, BODY, key="res-1")
    assert first.status_code == 201, first.text
    after_first = effects()
    assert after_first == {
        "reservations": before["reservations"] + 1,
        "audit": before["audit"] + 1,
        "events": after_first["events"],
    }
    again = post(
        http, sam, RESERVE, {"dispatchRef": "DSP-0042", "quantity": 2}, "res-1"
    )
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert effects() == after_first


def test_without_the_header_every_post_acts(http, sam):
    before = effects()
    for _ in range(2):
        assert post(http, sam, RESERVE, BODY).status_code == 201
    assert effects()["reservations"] == before["reservations"] + 2
    assert not IdempotencyKey.objects.exists()


def test_retried_dispatch_ships_once(http, sam):
    make_pack(sam, "PK-001")
    body = {"productId": "PK-001", "carrier": "BlueDart"}
    path = "/api/live-products/dispatchable"
    first = post(http, sam, path, body, key="ship-PK-001")
    assert first.status_code == 200, first.text
    audit = AuditRecord.objects.count()
    again = post(http, sam, path, body, key="ship-PK-001")
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    dispatched = PassportEvent.objects.filter(kind=EventKind.DISPATCHED)
    assert dispatched.count() == 1
    assert AuditRecord.objects.count() == audit
    # Without the key the retry is what it always was: refused, already past.
    assert_envelope(post(http, sam, path, body), 409, "already_past")


def test_a_refusal_is_kept_and_replayed_even_after_the_state_changed(http, sam):
    make_runbook()
    work_order = make_work_order(sam)
    second = stages_of(work_order)[1]
    path = f"/api/stages/{second.pk}/start/"
    refused = post(http, sam, path, {}, key="start-2")
    assert_envelope(refused, 409, "stage_out_of_order")
    first = stages_of(work_order)[0]
    assert post(http, sam, f"/api/stages/{first.pk}/start/", {}).status_code == 200
    assert post(http, sam, f"/api/stages/{first.pk}/done/", {}).status_code == 200
    again = post(http, sam, path, {}, key="start-2")
    assert (again.status_code, again.content) == (409, refused.content)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert WorkOrderStage.objects.get(pk=second.pk).status == "planned"
    # A new key is a new request: now it starts.
    assert post(http, sam, path, {}, key="start-2b").status_code == 200


# --- refusals -----------------------------------------------------------------


def test_the_key_with_another_request_is_422_and_changes_nothing(http, sam):
    assert post(http, sam, RESERVE, BODY, key="k-1").status_code == 201
    before = effects()
    for path, body in [
        (RESERVE, {"quantity": 3, "dispatchRef": "DSP-0042"}),  # another body
        (f"/api/inventory/items/{LOT}/hold/", {"reason": "Lumps"}),  # another path
        (RESERVE + "?x=1", BODY),  # another query
    ]:
        refused = post(http, sam, path, body, key="k-1")
        body = assert_envelope(refused, 422, "idempotency_key_reused")
        assert body["details"] == {"method": "POST", "path": RESERVE}
    assert effects() == before
    assert Item.objects.get(code=LOT).status == ItemStatus.GOOD


def test_a_malformed_key_is_400_and_changes_nothing(http, sam):
    before = effects()
    for key in ["", "k" * 256, "caf\u00e9", "tab\there"]:
        response = http.post(
            RESERVE, json=BODY, headers={**bearer(sam), "Idempotency-Key": key.encode()}
        )
        assert_envelope(response, 400, "idempotency_key_invalid")
    assert effects() == before
    assert not IdempotencyKey.objects.exists()


def test_a_key_of_255_printable_characters_is_accepted(http, sam):
    # Every printable character, the space inside (HTTP strips it at the ends).
    key = "a b" + "".join(chr(33 + i % 94) for i in range(252))
    assert post(http, sam, RESERVE, BODY, key=key).status_code == 201
    assert IdempotencyKey.objects.get().key == key


def test_keys_are_per_user(http, sam, make_user):
    other = make_user("supervisor")
    first = post(http, sam, RESERVE, BODY, key="shared")
    second = post(http, other, RESERVE, BODY, key="shared")
    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert IdempotencyKey.objects.filter(key="shared").count() == 2


def test_without_a_token_the_key_is_not_looked_at(http, sam):
    response = http.post(RESERVE, json=BODY, headers={"Idempotency-Key": "x"})
    assert_envelope(response, 401, "not_authenticated")
    assert not IdempotencyKey.objects.exists()


def test_the_key_is_in_progress_while_its_lease_runs(http, sam):
    """What a second request meets while the first still runs (the race itself
    is in test_idempotency_concurrency): 409, Retry-After, nothing done."""
    before = effects()
    IdempotencyKey.objects.create(
        user=sam,
        key="busy",
        method="POST",
        path=RESERVE,
        fingerprint=_fingerprint(RESERVE, BODY),
        locked_until=timezone.now() + timedelta(seconds=30),
        expires_at=timezone.now() + timedelta(hours=24),
    )
    response = post(http, sam, RESERVE, BODY, key="busy")
    assert_envelope(response, 409, "idempotency_in_progress")
    assert response.headers["Retry-After"] == "5"
    assert effects() == before


def test_a_claim_whose_runner_is_gone_is_taken_over(http, sam):
    """A request cut short (its work rolled back with it) leaves a started
    claim; once its lease has run out a retry runs the request."""
    IdempotencyKey.objects.create(
        user=sam,
        key="crashed",
        method="POST",
        path=RESERVE,
        fingerprint=_fingerprint(RESERVE, BODY),
        locked_until=timezone.now() - timedelta(seconds=1),
        expires_at=timezone.now() + timedelta(hours=24),
    )
    before = effects()
    response = post(http, sam, RESERVE, BODY, key="crashed")
    assert response.status_code == 201
    assert effects()["reservations"] == before["reservations"] + 1
    assert IdempotencyKey.objects.get(key="crashed").status == KeyStatus.COMPLETED


def _fingerprint(path, body):
    import json

    from bpmos.idempotency.services import request_fingerprint

    return request_fingerprint(method="POST", path=path, body=json.dumps(body).encode())


# --- 5xx and expiry -----------------------------------------------------------


def test_a_5xx_is_not_kept_and_its_work_is_rolled_back(http, sam, monkeypatch):
    real = inventory.item_reserve

    def reserve_then_fail(**kwargs):
        real(**kwargs)
        raise DependencyUnavailable("The scale is offline.")

    monkeypatch.setattr(inventory, "item_reserve", reserve_then_fail)
    before = effects()
    failed = post(http, sam, RESERVE, BODY, key="flaky")
    assert_envelope(failed, 503, "dependency_unavailable")
    assert effects()["reservations"] == before["reservations"]
    assert not IdempotencyKey.objects.exists()
    monkeypatch.setattr(inventory, "item_reserve", real)
    retried = post(http, sam, RESERVE, BODY, key="flaky")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert effects()["reservations"] == before["reservations"] + 1


def test_an_expired_key_is_a_new_key_and_the_beat_task_prunes_it(http, sam):
    assert post(http, sam, RESERVE, BODY, key="old").status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    before = effects()
    again = post(http, sam, RESERVE, BODY, key="old")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert effects()["reservations"] == before["reservations"] + 1
    (kept,) = IdempotencyKey.objects.all()
    assert kept.expires_at - kept.created_at == timedelta(hours=24)
    assert idempotency_keys_prune_task() == 0
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert idempotency_keys_prune_task() == 1
    assert not IdempotencyKey.objects.exists()


async def test_replay_under_asgi_as_the_embedded_daphne_serves_it(make_user):
    """`make run` serves the API from daphne: the middleware runs under ASGI."""
    sam = await sync_to_async(make_user)("supervisor", username="sam")
    await sync_to_async(make_lot)(sam)
    headers = {**(await sync_to_async(bearer)(sam)), "Idempotency-Key": "asgi-1"}
    client = AsyncClient()
    first, again = [
        await client.post(
            RESERVE, BODY, content_type="application/json", headers=headers
        )
        for _ in range(2)
    ]
    assert first.status_code == 201, first.content
    assert (again.content, again["Idempotent-Replayed"]) == (first.content, "true")
    assert await sync_to_async(Reservation.objects.count)() == 1


# --- the schema ---------------------------------------------------------------


def test_schema_documents_the_header_and_its_answers(http, db):
    paths = http.get("/api/schema/", headers={"Accept": "application/json"}).json()[
        "paths"
    ]
    reserve = paths["/api/inventory/items/{item_id}/reserve/"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in reserve["parameters"]]
    assert {"409", "422"} <= set(reserve["responses"])
    assert "Idempotent-Replayed" in reserve["responses"]["201"]["headers"]
    for exempt in (
        "/api/auth/login/",
        "/api/live-products/dispatchable/stream-ticket/",
    ):
        names = [p["name"] for p in paths[exempt]["post"].get("parameters", [])]
        assert "Idempotency-Key" not in names
        assert "422" not in paths[exempt]["post"]["responses"]
