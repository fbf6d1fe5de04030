"""Passports in the Django admin: auditors and admins browse with filters and
search; nobody adds, changes or deletes a passport, a ledger event or any
passport record there; hold and release go through the service."""

import pytest
from django.urls import reverse

from bpmos.roles import Role
from elog.models import AuditRecord
from passports import telemetry
from passports.models import (
    DispatchJob,
    EventKind,
    Kind,
    Passport,
    PassportEvent,
    ProvisioningAttempt,
    TelemetryReading,
)
from tests.conftest import PASSWORD
from tests.factories_passports_api import (
    a_bpan,
    append,
    counts,
    register,
    warehoused_pack,
)

pytestmark = pytest.mark.django_db

MODELS = (
    "passport",
    "passportevent",
    "dispatchjob",
    "telemetryreading",
    "provisioningattempt",
)


@pytest.fixture
def plant(make_user):
    boss = make_user(Role.SUPERVISOR, username="sam")
    pack = warehoused_pack(boss, "PK-0001", bpan=a_bpan(), barcode="BC-1")
    other = register(boss, "PK-0002")
    append(boss, other, EventKind.QA_FAILED, reason="Leak")
    register(boss, "CL-0001", kind=Kind.CELL)
    telemetry.telemetry_ingest(
        passport_id=pack.pk,
        rows=[{"ts": "2026-03-01T00:00:00Z", "sohPercent": 99.0}],
        actor=boss,
    )
    ProvisioningAttempt.objects.create(passport=pack, status="confirmed", node_id=1)
    return pack


def as_user(client, make_user, role):
    client.force_login(make_user(role))
    return client


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:passports_{model}_{view}", args=args)


def listed(page) -> list:
    assert page.status_code == 200
    return list(page.context["cl"].result_list)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AUDITOR])
def test_readers_browse_every_list(client, make_user, plant, role):
    as_user(client, make_user, role)
    for model in MODELS:
        assert client.get(url(model)).status_code == 200, model
    detail = client.get(url("passport", "change", plant.pk))
    assert detail.status_code == 200
    text = detail.content.decode()
    for event in PassportEvent.objects.filter(passport=plant):
        assert event.hash in text  # the ledger, inline
    assert "warehoused" in text


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.SUPERVISOR, Role.PLANNER])
def test_others_do_not_see_the_admin(client, make_user, plant, role):
    as_user(client, make_user, role)
    response = client.get(url("passport"))
    assert response.status_code == 302  # to the admin login: not staff


def test_filters_and_search(client, make_user, plant):
    as_user(client, make_user, Role.AUDITOR)
    serials = lambda page: sorted(p.serial for p in listed(page))  # noqa: E731
    assert serials(client.get(url("passport"), {"kind__exact": "cell"})) == ["CL-0001"]
    assert serials(client.get(url("passport"), {"state__exact": "qa_failed"})) == [
        "PK-0002"
    ]
    assert serials(
        client.get(url("passport"), {"custodian_kind__exact": "manufacturer"})
    ) == ["CL-0001", "PK-0001", "PK-0002"]
    assert serials(client.get(url("passport"), {"on_hold__exact": "1"})) == []
    assert serials(client.get(url("passport"), {"q": "BC-1"})) == ["PK-0001"]
    assert serials(client.get(url("passport"), {"q": str(plant.uuid)})) == ["PK-0001"]
    hyphenated = f"{plant.bpan[:5]}-{plant.bpan[5:]}".lower()
    assert serials(client.get(url("passport"), {"q": hyphenated})) == ["PK-0001"]
    events = listed(client.get(url("passportevent"), {"q": "PK-0002"}))
    assert sorted(e.kind for e in events) == ["manufactured", "qa_failed"]
    assert (
        len(listed(client.get(url("passportevent"), {"kind__exact": "qa_passed"}))) == 1
    )
    assert len(listed(client.get(url("telemetryreading"), {"q": "PK-0001"}))) == 1


def test_nothing_is_added_changed_or_deleted_even_by_an_admin(client, make_user, plant):
    as_user(client, make_user, Role.ADMIN)
    event = PassportEvent.objects.filter(passport=plant).first()
    job = DispatchJob.objects.get(passport=plant)
    reading = TelemetryReading.objects.get(passport=plant)
    attempt = ProvisioningAttempt.objects.get(passport=plant)
    before = counts(plant)
    for model, pk in [
        ("passport", plant.pk),
        ("passportevent", event.pk),
        ("dispatchjob", job.pk),
        ("telemetryreading", reading.pk),
        ("provisioningattempt", attempt.pk),
    ]:
        assert client.get(url(model, "add")).status_code == 403, model
        assert client.post(url(model, "add"), {}).status_code == 403, model
        assert client.get(url(model, "delete", pk)).status_code == 403, model
        assert client.post(url(model, "delete", pk), {"post": "yes"}).status_code == 403
        # The change page is a read-only view: a POST changes nothing.
        assert client.post(url(model, "change", pk), {}).status_code == 403, model
    page = client.get(url("passport", "change", plant.pk)).content.decode()
    assert 'name="_save"' not in page
    assert counts(plant) == before
    assert PassportEvent.objects.get(pk=event.pk).hash == event.hash


def test_hold_and_release_actions_call_the_service(client, make_user, plant):
    as_user(client, make_user, Role.ADMIN)
    before = counts(plant)
    empty = client.post(
        url("passport"),
        {"action": "hold_passports", "_selected_action": [plant.pk], "reason": ""},
    )
    assert empty.status_code == 302
    assert counts(plant) == before  # no reason, nothing done
    client.post(
        url("passport"),
        {"action": "hold_passports", "_selected_action": [plant.pk], "reason": "Audit"},
    )
    plant.refresh_from_db()
    assert (plant.on_hold, plant.hold_reason, plant.version) == (True, "Audit", 5)
    event = PassportEvent.objects.get(passport=plant, version=5)
    assert (event.kind, event.data) == ("held", {"reason": "Audit"})
    record = AuditRecord.objects.filter(action="passport.held").get()
    assert record.source == "admin"
    # Holding again is refused by the lifecycle, reported, and writes nothing.
    before = counts(plant)
    again = client.post(
        url("passport"),
        {"action": "hold_passports", "_selected_action": [plant.pk], "reason": "Again"},
        follow=True,
    )
    assert "Already on hold." in again.content.decode()
    assert counts(plant) == before
    # the release is a signed step: without the password nothing is released
    client.post(
        url("passport"), {"action": "release_holds", "_selected_action": [plant.pk]}
    )
    plant.refresh_from_db()
    assert (plant.on_hold, plant.version) == (True, 5)
    client.post(
        url("passport"),
        {
            "action": "release_holds",
            "_selected_action": [plant.pk],
            "password": PASSWORD,
        },
    )
    plant.refresh_from_db()
    assert (plant.on_hold, plant.version) == (False, 6)


def test_auditors_have_no_hold_action(client, make_user, plant):
    as_user(client, make_user, Role.AUDITOR)
    page = client.get(url("passport"))
    assert "hold_passports" not in page.content.decode()
    before = counts(plant)
    client.post(
        url("passport"),
        {"action": "hold_passports", "_selected_action": [plant.pk], "reason": "x"},
    )
    assert counts(plant) == before
    assert Passport.objects.get(pk=plant.pk).on_hold is False
