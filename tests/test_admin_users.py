"""The user admin, driven through a real browser-like HTTP session."""

import re

import pytest
from django.utils import timezone

from bpmos.accounts.models import User
from elog.models import AuditRecord
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _csrf(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def admin_login(http, username: str) -> None:
    page = http.get("/admin/login/")
    response = http.post(
        "/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": _csrf(page.text),
            "username": username,
            "password": PASSWORD,
        },
        headers={"Referer": f"{http.base_url}/admin/login/"},
    )
    assert response.status_code == 302, response.text[:300]


def change_user(http, user: User, **changes) -> None:
    # The admin form carries date_joined to the second; a stored value with
    # microseconds would itself (correctly) be audited as changed.
    User.objects.filter(pk=user.pk).update(
        date_joined=timezone.now().replace(microsecond=0)
    )
    user.refresh_from_db()
    url = f"/admin/accounts/user/{user.pk}/change/"
    page = http.get(url)
    assert page.status_code == 200
    form = {
        "csrfmiddlewaretoken": _csrf(page.text),
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "role": user.role,
        "is_active": "on" if user.is_active else "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "_save": "Save",
    }
    if user.is_staff:
        form["is_staff"] = "on"
    if user.is_superuser:
        form["is_superuser"] = "on"
    form.update(changes)
    form = {key: value for key, value in form.items() if value != ""}
    response = http.post(url, data=form, headers={"Referer": f"{http.base_url}{url}"})
    assert response.status_code == 302, response.text[:2000]


def test_admin_edit_is_audited_with_before_and_after(http, make_user):
    make_user("admin", username="root-admin")
    target = make_user("operator", username="ona", first_name="Ona")
    admin_login(http, "root-admin")
    change_user(http, target, first_name="Oona")
    record = AuditRecord.objects.get(action="accounts.user.admin_changed")
    assert record.actor_username == "root-admin"
    assert record.source == "admin"
    assert record.before == {"first_name": "Ona"}
    assert record.after == {"first_name": "Oona"}


def test_admin_role_change_goes_through_the_service(http, make_user):
    make_user("admin", username="root-admin")
    target = make_user("operator", username="ona")
    admin_login(http, "root-admin")
    change_user(http, target, role="auditor")
    target.refresh_from_db()
    assert (target.role, target.is_staff, target.is_superuser) == (
        "auditor",
        True,
        False,
    )
    record = AuditRecord.objects.get(action="user.role_changed")
    assert (record.before["role"], record.after["role"]) == ("operator", "auditor")
    assert not AuditRecord.objects.filter(action="accounts.user.admin_changed").exists()


def test_admin_form_deactivation_goes_through_the_service(http, make_user):
    make_user("admin", username="root-admin")
    target = make_user("operator", username="ona")
    admin_login(http, "root-admin")
    change_user(http, target, is_active="")
    target.refresh_from_db()
    assert (target.is_active, target.token_generation) == (False, 1)
    record = AuditRecord.objects.get(action="user.deactivated")
    assert (record.before["is_active"], record.after["is_active"]) == (True, False)
    assert not AuditRecord.objects.filter(action="accounts.user.admin_changed").exists()

    change_user(http, target, is_active="on")
    target.refresh_from_db()
    assert (target.is_active, target.token_generation) == (True, 1)
    assert AuditRecord.objects.filter(action="user.reactivated").count() == 1


def test_admin_form_cannot_deactivate_the_last_admin(http, make_user):
    root = make_user("admin", username="root-admin")
    admin_login(http, "root-admin")
    change_user(http, root, is_active="")
    root.refresh_from_db()
    assert (root.is_active, root.token_generation) == (True, 0)
    assert not AuditRecord.objects.filter(action="user.deactivated").exists()
