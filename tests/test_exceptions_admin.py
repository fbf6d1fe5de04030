"""Exceptions in the Django admin: auditors browse, admins acknowledge and
resolve through the services, and a resolve without a note changes nothing.
"""

import pytest
from django.urls import reverse

from elog.models import AuditRecord
from exceptions.models import ExceptionStatus, PlantException
from tests.factories_tower import make_runbook, raise_exception

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:exceptions_plantexception_changelist"


@pytest.fixture
def two(make_user):
    boss = make_user("supervisor")
    runbook = make_runbook()
    return [
        raise_exception(boss, runbook=runbook, severity="high", title="Spill"),
        raise_exception(boss, runbook=runbook, severity="low", title="Smudge"),
    ]


def act(client, action: str, exceptions, **extra):
    return client.post(
        reverse(CHANGELIST),
        {
            "action": action,
            "_selected_action": [exc.pk for exc in exceptions],
            **extra,
        },
        follow=True,
    )


def statuses() -> list[str]:
    return list(PlantException.objects.order_by("id").values_list("status", flat=True))


def test_admin_filters_the_changelist(client, make_user, two):
    client.force_login(make_user("admin"))
    response = client.get(reverse(CHANGELIST), {"severity__exact": "high"})
    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [two[0].pk]
    assert b"EX-" in response.content


def test_admin_acknowledges_through_the_service(client, make_user, two):
    admin_user = make_user("admin")
    client.force_login(admin_user)
    response = act(client, "acknowledge", two)
    assert response.status_code == 200
    assert statuses() == [ExceptionStatus.ACKNOWLEDGED] * 2
    records = AuditRecord.objects.filter(action="exception.acknowledged")
    assert sorted(records.values_list("target_id", flat=True)) == sorted(
        str(e.pk) for e in two
    )
    assert {r.actor_id for r in records} == {admin_user.pk}
    again = act(client, "acknowledge", two[:1])
    assert f"{two[0].code}: {two[0].code} is Acknowledged" in again.content.decode()


def test_admin_resolves_with_the_note_typed_beside_the_action(client, make_user, two):
    client.force_login(make_user("admin"))
    act(client, "resolve", two[:1], resolution_note="  Cleaned up  ")
    first = PlantException.objects.get(pk=two[0].pk)
    assert (first.status, first.resolution_note) == ("resolved", "Cleaned up")
    assert statuses()[1] == ExceptionStatus.OPEN


def test_admin_resolve_without_a_note_changes_nothing(client, make_user, two):
    client.force_login(make_user("admin"))
    before = AuditRecord.objects.count()
    response = act(client, "resolve", two, resolution_note="   ")
    assert "nothing was resolved" in response.content.decode()
    assert statuses() == [ExceptionStatus.OPEN] * 2
    assert AuditRecord.objects.count() == before


def test_auditor_reads_but_has_no_actions_and_cannot_edit(client, make_user, two):
    client.force_login(make_user("auditor"))
    listing = client.get(reverse(CHANGELIST))
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 2
    # Only the back-office's read action (the CSV export) is offered.
    choices = listing.context["action_form"].fields["action"].choices
    assert [value for value, _ in choices if value] == ["export_csv"]
    act(client, "acknowledge", two)
    assert statuses() == [ExceptionStatus.OPEN] * 2
    change = client.post(
        reverse("admin:exceptions_plantexception_change", args=[two[0].pk]),
        {"title": "Renamed", "description": ""},
    )
    assert change.status_code == 403
    assert PlantException.objects.get(pk=two[0].pk).title == "Spill"


def test_admin_edits_the_title_as_an_audited_plain_edit(client, make_user, two):
    client.force_login(make_user("admin"))
    response = client.post(
        reverse("admin:exceptions_plantexception_change", args=[two[0].pk]),
        {"title": "Electrolyte spill", "description": "Bay 3"},
    )
    assert response.status_code == 302
    exc = PlantException.objects.get(pk=two[0].pk)
    assert (exc.title, exc.description, exc.status) == (
        "Electrolyte spill",
        "Bay 3",
        "open",
    )
    record = AuditRecord.objects.get(action="exceptions.plantexception.admin_changed")
    assert record.before == {"title": "Spill", "description": ""}
    assert record.after == {"title": "Electrolyte spill", "description": "Bay 3"}
