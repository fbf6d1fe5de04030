"""The audit log in the Django admin: auditors and admins read it, nobody writes."""

import pytest
from django.urls import reverse

from elog import audit
from elog.models import AuditRecord


@pytest.fixture
def records(db, make_user):
    ada = make_user("admin", username="ada")
    olga = make_user("operator", username="olga")
    audit.record(actor=ada, action="user.registered", target=olga)
    audit.record(actor=olga, action="user.logged_in", target=olga)
    audit.record(actor=ada, action="user.role_changed", target=olga)
    return list(AuditRecord.objects.order_by("seq"))


def changelist(client, **params):
    return client.get(reverse("admin:elog_auditrecord_changelist"), params)


def listed_seqs(response) -> list[int]:
    assert response.status_code == 200
    return [record.seq for record in response.context["cl"].result_list]


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditors_and_admins_browse_the_log(client, make_user, records, role):
    client.force_login(make_user(role))
    assert listed_seqs(changelist(client)) == [3, 2, 1]
    detail = client.get(reverse("admin:elog_auditrecord_change", args=[records[0].pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content  # a read-only page
    index = client.get(reverse("admin:index"))
    elog_models = [
        model["object_name"]
        for app in index.context["app_list"]
        if app["name"] == "Logs & audit"
        for model in app["models"]
    ]
    # The audit log, and the electronic shift log beside it (read-only too).
    assert elog_models == ["AuditRecord", "ShiftLogEntry"]


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_nobody_adds_changes_or_deletes_in_the_admin(client, make_user, records, role):
    client.force_login(make_user(role))
    record = records[1]
    add = client.get(reverse("admin:elog_auditrecord_add"))
    change = client.post(
        reverse("admin:elog_auditrecord_change", args=[record.pk]),
        {"action": "user.nothing"},
    )
    delete = client.post(
        reverse("admin:elog_auditrecord_delete", args=[record.pk]), {"post": "yes"}
    )
    bulk = client.post(
        reverse("admin:elog_auditrecord_changelist"),
        {"action": "delete_selected", "_selected_action": [record.pk]},
    )
    assert [add.status_code, change.status_code, delete.status_code] == [
        403,
        403,
        403,
    ]
    # No delete action is offered: back to the list, nothing deleted.
    assert bulk.status_code in {200, 302}
    # Only the back-office's read action (the CSV export) is offered.
    choices = changelist(client).context["action_form"].fields["action"].choices
    assert [value for value, _ in choices if value] == ["export_csv"]
    assert AuditRecord.objects.count() == 3
    assert AuditRecord.objects.get(pk=record.pk).action == "user.logged_in"


def test_staff_without_a_reader_role_is_refused(client, make_user, records):
    planner = make_user("planner")
    planner.is_staff = True  # e.g. set by hand in the shell: the role still decides
    planner.save(update_fields=["is_staff"])
    client.force_login(planner)
    assert changelist(client).status_code == 403


def test_non_staff_are_sent_to_the_login_page(client, make_user, records):
    client.force_login(make_user("operator"))
    response = changelist(client)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "user.logged_in"}, [2]),
        ({"actor_role": "admin"}, [3, 1]),
        ({"target_type": "accounts.user"}, [3, 2, 1]),
        ({"source": "system"}, [3, 2, 1]),
        ({"q": "role_changed"}, [3]),
        ({"q": "olga"}, [3, 2, 1]),
    ],
)
def test_admin_filters_and_search(client, make_user, records, params, expected):
    client.force_login(make_user("auditor"))
    assert listed_seqs(changelist(client, **params)) == expected


def test_admin_date_hierarchy(client, make_user, records):
    client.force_login(make_user("auditor"))
    occurred = records[0].occurred_at
    params = {
        "occurred_at__year": occurred.year,
        "occurred_at__month": occurred.month,
        "occurred_at__day": occurred.day,
    }
    assert listed_seqs(changelist(client, **params)) == [3, 2, 1]
