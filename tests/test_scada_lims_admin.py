"""LIMS results in the Django admin: auditors and admins read them with the
passport event each became; nobody adds, changes or deletes one there."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from scada import quality
from scada.models import LimsResult
from tests.factories_passports import register

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:scada_limsresult_changelist"


@pytest.fixture
def result(make_user):
    register("pack", serial="ADM-1", manufactured_at="2026-01-05T08:00:00Z")
    content = b"serial,test_name,result,tested_at\nADM-1,OCV,pass,2026-03-02T09:00Z\n"
    quality.lims_import_csv(file=ContentFile(content), actor=make_user("supervisor"))
    return LimsResult.objects.get()


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_the_changelist_shows_the_passport_event(client, make_user, result, role):
    client.force_login(make_user(role, is_staff=True))
    response = client.get(reverse(CHANGELIST), {"passed__exact": "1"})
    assert response.status_code == 200
    assert [r.pk for r in response.context["cl"].result_list] == [result.pk]
    assert f'<td class="field-passport_event_id">{result.passport_event_id}</td>' in (
        response.content.decode()
    )


def test_nobody_adds_changes_or_deletes_a_result(client, make_user, result):
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:scada_limsresult_add")).status_code == 403
    delete = reverse("admin:scada_limsresult_delete", args=[result.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:scada_limsresult_change", args=[result.pk])
    assert client.post(change, {"serial": "X"}).status_code == 403
    assert LimsResult.objects.get().serial == "ADM-1"


def test_an_operator_does_not_see_the_page(client, make_user, result):
    client.force_login(make_user("operator"))  # operators are not staff
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")
