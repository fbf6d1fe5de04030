"""Stored Idempotency-Keys in the back-office (bpmos/idempotency/admin.py),
through the real admin: admins and auditors list, search and filter them;
nobody adds or changes one; admins delete (audited, not while the request
runs) and purge the expired ones with the beat task's service (audited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from bpmos.idempotency import services
from bpmos.idempotency.models import IdempotencyKey, KeyStatus
from elog.models import AuditRecord
from tests.conftest import bearer
from tests.idempotency_support import RESERVE, make_lot

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:idempotency_idempotencykey_changelist")


def _delete_url(key: IdempotencyKey) -> str:
    return reverse("admin:idempotency_idempotencykey_delete", args=[key.pk])


def _stored(user, key: str, *, expired: bool = False, running: bool = False):
    """A key as the middleware leaves it: completed with a 201 (or still
    running), expired or live."""
    now = timezone.now()
    created = now - timedelta(hours=30 if expired else 1)
    return IdempotencyKey.objects.create(
        user=user,
        key=key,
        method="POST",
        path=RESERVE,
        fingerprint="f" * 64,
        status=KeyStatus.STARTED if running else KeyStatus.COMPLETED,
        locked_until=now + timedelta(seconds=30) if running else created,
        response_status=None if running else 201,
        response_body=b'{"id": 1}',
        created_at=created,
        completed_at=None if running else created,
        expires_at=created + timedelta(hours=24),
    )


@pytest.fixture
def sam(make_user):
    return make_user("supervisor", username="sam")


@pytest.fixture
def ada(client, make_user):
    ada = make_user("admin", username="ada", is_staff=True, is_superuser=True)
    client.force_login(ada)
    return ada


@pytest.fixture
def keys(sam, make_user):
    other = make_user("operator", username="otto")
    return {
        "live": _stored(sam, "mob-res-1"),
        "expired": _stored(sam, "mob-res-0", expired=True),
        "running": _stored(other, "scada-7", running=True),
        "old": _stored(other, "scada-1", expired=True),
    }


def _listed(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row.key for row in response.context["cl"].result_list]


def test_a_key_the_api_stored_is_listed_with_its_request(client, ada, sam):
    """A real retry-safe POST stores its key; the admin shows who sent it,
    for which request, and the answer's status."""
    make_lot(sam)
    api = APIClient()
    response = api.post(
        RESERVE,
        {"quantity": 2, "dispatchRef": "DSP-1"},
        format="json",
        headers={**bearer(sam), "Idempotency-Key": "mob-42"},
    )
    assert response.status_code == 201, response.content
    listing = client.get(CHANGELIST)
    assert _listed(listing) == ["mob-42"]
    html = listing.content.decode()
    for cell in (
        '<td class="field-user nowrap">sam (supervisor)</td>',
        '<td class="field-method">POST</td>',
        f'<td class="field-path">{RESERVE}</td>',
        '<td class="field-status">Completed</td>',
        '<td class="field-response_status">201</td>',
    ):
        assert cell in html
    # The stored answer is not shown (it is one user's answer).
    page = client.get(
        reverse(
            "admin:idempotency_idempotencykey_change",
            args=[IdempotencyKey.objects.get().pk],
        )
    )
    assert page.status_code == 200
    assert "dispatchRef" not in page.content.decode()
    assert "DSP-1" not in page.content.decode()


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_search_and_filters(client, make_user, keys, role):
    client.force_login(make_user(role, is_staff=True))
    assert _listed(client.get(CHANGELIST, {"q": "scada"})) == ["scada-7", "scada-1"]
    assert _listed(client.get(CHANGELIST, {"q": "otto"})) == ["scada-7", "scada-1"]
    assert _listed(client.get(CHANGELIST, {"status__exact": "started"})) == ["scada-7"]
    assert sorted(_listed(client.get(CHANGELIST, {"expired": "yes"}))) == [
        "mob-res-0",
        "scada-1",
    ]
    assert sorted(_listed(client.get(CHANGELIST, {"expired": "no"}))) == [
        "mob-res-1",
        "scada-7",
    ]


def test_nobody_adds_or_changes_a_key(client, ada, keys):
    assert (
        client.get(reverse("admin:idempotency_idempotencykey_add")).status_code == 403
    )
    change = reverse("admin:idempotency_idempotencykey_change", args=[keys["live"].pk])
    assert (
        client.post(change, {"key": "forged", "status": "started"}).status_code == 403
    )
    keys["live"].refresh_from_db()
    assert (keys["live"].key, keys["live"].status) == ("mob-res-1", "completed")


def test_an_admin_deletes_a_key_and_it_is_audited(client, ada, keys):
    key = keys["live"]
    response = client.post(_delete_url(key), {"post": "yes"})
    assert response.status_code == 302
    assert not IdempotencyKey.objects.filter(pk=key.pk).exists()
    (record,) = AuditRecord.objects.filter(action="idempotency.key_deleted")
    assert record.actor_id == ada.pk
    assert record.target_id == str(key.pk)
    assert record.before["key"] == "mob-res-1"
    assert record.before["response_status"] == 201


def test_a_key_whose_request_still_runs_is_not_deleted(client, ada, keys):
    """Deleting it would let a retry run the request beside the first: the
    delete page and the bulk delete that includes it are refused, and the
    service refuses it too (a key that started after the page was drawn)."""
    running = keys["running"]
    assert client.get(_delete_url(running)).status_code == 403
    bulk = {
        "action": "delete_selected",
        helpers.ACTION_CHECKBOX_NAME: [running.pk, keys["old"].pk],
        "post": "yes",
    }
    assert client.post(CHANGELIST, bulk).status_code == 403
    assert IdempotencyKey.objects.count() == 4
    with pytest.raises(services.KeyInProgress):
        services.key_delete(key_id=running.pk, actor=ada)
    assert IdempotencyKey.objects.filter(pk=running.pk).exists()
    assert not AuditRecord.objects.filter(action__startswith="idempotency.").exists()


def test_a_bulk_delete_is_audited_key_by_key(client, ada, keys):
    bulk = {
        "action": "delete_selected",
        helpers.ACTION_CHECKBOX_NAME: [keys["old"].pk, keys["expired"].pk],
        "post": "yes",
    }
    response = client.post(CHANGELIST, bulk, follow=True)
    assert "Deleted 2 key(s)." in [str(m) for m in response.context["messages"]]
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == [
        "mob-res-1",
        "scada-7",
    ]
    deleted = AuditRecord.objects.filter(action="idempotency.key_deleted")
    assert sorted(deleted.values_list("target_id", flat=True)) == sorted(
        [str(keys["old"].pk), str(keys["expired"].pk)]
    )


def test_purge_expired_deletes_only_the_expired_and_is_audited(client, ada, keys):
    response = client.post(
        CHANGELIST, {"action": "purge_expired", "index": "0"}, follow=True
    )
    assert "Purged 2 expired key(s)." in [str(m) for m in response.context["messages"]]
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == [
        "mob-res-1",
        "scada-7",
    ]
    (record,) = AuditRecord.objects.filter(action="idempotency.keys_purged")
    assert record.actor_id == ada.pk
    assert record.after["deleted"] == 2


def test_an_auditor_reads_but_deletes_and_purges_nothing(client, make_user, keys):
    client.force_login(make_user("auditor", is_staff=True))
    listing = client.get(CHANGELIST)
    assert len(_listed(listing)) == 4
    choices = [v for v, _ in listing.context["action_form"].fields["action"].choices]
    assert "purge_expired" not in choices
    assert "delete_selected" not in choices
    assert client.get(_delete_url(keys["live"])).status_code == 403
    client.post(CHANGELIST, {"action": "purge_expired", "index": "0"})
    client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            helpers.ACTION_CHECKBOX_NAME: [keys["live"].pk],
            "post": "yes",
        },
    )
    assert IdempotencyKey.objects.count() == 4
    assert not AuditRecord.objects.filter(action__startswith="idempotency.").exists()


@pytest.mark.parametrize("role", ["operator", "planner", "supervisor", "plant-head"])
def test_other_roles_are_refused(client, make_user, keys, role):
    """Even made staff by hand, no other role sees the page or runs its actions."""
    user = make_user(role)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    assert client.get(CHANGELIST).status_code == 403
    client.post(CHANGELIST, {"action": "purge_expired", "index": "0"})
    assert IdempotencyKey.objects.count() == 4


def test_the_beat_task_purges_with_the_same_service_unaudited(keys):
    from bpmos.idempotency.tasks import idempotency_keys_prune_task

    assert idempotency_keys_prune_task() == 2
    assert IdempotencyKey.objects.count() == 2
    assert not AuditRecord.objects.filter(action__startswith="idempotency.").exists()
