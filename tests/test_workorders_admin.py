"""Runbooks, gates, work orders and assignments in the Django admin: rules go
through the services, every write is audited, auditors only read."""

import pytest
from django.urls import reverse

from elog.models import AuditRecord
from runbooks import services
from runbooks.models import Gate, GateStatus, StageAssignment, Step
from tests.conftest import PASSWORD
from tests.factories_production import (
    gate_of,
    make_runbook,
    make_work_order,
    row_counts,
    stages_of,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(make_user):
    runbook = make_runbook()
    planner = make_user("planner")
    work_order = make_work_order(planner, runbook=runbook)
    return runbook, gate_of(runbook), work_order, planner


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("admin", username="ada"))
    return client


def changelist(model: str) -> str:
    return reverse(f"admin:runbooks_{model}_changelist")


def post_action(client, model: str, action: str, ids, *, follow=False, **extra):
    return client.post(
        changelist(model),
        {"action": action, "_selected_action": [str(i) for i in ids], **extra},
        follow=follow,
    )


def form_data(response) -> dict:
    """The POST body a change form would submit unchanged (main form + inlines)."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, field in formset.management_form.fields.items():
            data[formset.management_form.add_prefix(name)] = (
                formset.management_form[name].value() or field.initial or 0
            )
        for form in formset.initial_forms:
            add(form)
    return data


# --- gates: status only through gate_set -------------------------------------------


def test_admin_locks_a_gate_with_a_reason_through_the_service(admin_client, plant):
    gate = plant[1]
    page = post_action(admin_client, "gate", "lock_gates", [gate.pk])
    assert page.status_code == 200
    assert b'name="reason"' in page.content
    gate.refresh_from_db()
    assert gate.status == "open"  # nothing yet: the reason is asked first
    done = post_action(
        admin_client,
        "gate",
        "lock_gates",
        [gate.pk],
        reason="Seal Check Failed",
        apply="yes",
    )
    assert done.status_code == 302
    gate.refresh_from_db()
    assert (gate.status, gate.reason, gate.changed_by.username) == (
        "locked",
        "Seal Check Failed",
        "ada",
    )
    record = AuditRecord.objects.get(action="gate.locked")
    assert (record.actor_username, record.source) == ("ada", "admin")
    assert record.before == {"status": "open", "reason": ""}
    assert record.after == {"status": "locked", "reason": "Seal Check Failed"}


def test_locking_without_a_reason_asks_again_and_changes_nothing(admin_client, plant):
    gate = plant[1]
    before = row_counts()
    page = post_action(
        admin_client, "gate", "lock_gates", [gate.pk], reason="  ", apply="yes"
    )
    assert page.status_code == 200
    assert b"This field is required." in page.content
    gate.refresh_from_db()
    assert gate.status == "open"
    assert row_counts() == before


def test_admin_closes_and_unlocks_gates_through_the_service(
    admin_client, plant, make_user
):
    gate = plant[1]
    assert (
        post_action(admin_client, "gate", "close_gates", [gate.pk]).status_code == 302
    )
    gate.refresh_from_db()
    assert gate.status == "closed"
    services.gate_set(
        gate_id=gate.pk, action="lock", reason="x", actor=make_user("supervisor")
    )
    # unlocking is a signed step: refused without the admin's password ...
    assert post_action(admin_client, "gate", "open_gates", [gate.pk]).status_code == 302
    gate.refresh_from_db()
    assert (gate.status, gate.reason) == ("locked", "x")
    # ... and applied with it
    assert (
        post_action(
            admin_client, "gate", "open_gates", [gate.pk], password=PASSWORD
        ).status_code
        == 302
    )
    gate.refresh_from_db()
    assert (gate.status, gate.reason) == ("open", "")
    assert list(
        AuditRecord.objects.filter(target_type="runbooks.gate")
        .order_by("seq")
        .values_list("action", flat=True)
    ) == ["gate.closed", "gate.locked", "gate.unlocked"]


def test_a_refused_gate_action_is_reported_not_applied(admin_client, plant):
    gate = plant[1]
    before = row_counts()
    response = post_action(admin_client, "gate", "open_gates", [gate.pk], follow=True)
    assert response.status_code == 200
    assert "is already Open" in response.content.decode()
    assert row_counts() == before


def test_the_gate_form_cannot_change_the_status(admin_client, plant):
    gate = plant[1]
    url = reverse("admin:runbooks_gate_change", args=[gate.pk])
    data = form_data(admin_client.get(url))
    data.update({"status": "locked", "condition": "Seal check passed (v2)"})
    assert admin_client.post(url, data).status_code == 302
    gate.refresh_from_db()
    assert (gate.status, gate.condition) == ("open", "Seal check passed (v2)")
    record = AuditRecord.objects.get(action="runbooks.gate.admin_changed")
    assert record.before == {"condition": "Seal check passed"}
    assert record.after == {"condition": "Seal check passed (v2)"}


def test_a_locked_gate_cannot_be_deleted(admin_client, plant, make_user):
    gate = plant[1]
    services.gate_set(
        gate_id=gate.pk, action="lock", reason="x", actor=make_user("supervisor")
    )
    url = reverse("admin:runbooks_gate_delete", args=[gate.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Gate.objects.filter(pk=gate.pk).exists()
    listing = admin_client.get(changelist("gate"))
    choices = listing.context["action_form"].fields["action"].choices
    assert [name for name, _ in choices] == [
        "",
        "export_csv",  # the back-office's read action, on every list
        "open_gates",
        "close_gates",
        "lock_gates",
    ]


# --- templates: inline edits are audited -------------------------------------------


def test_inline_step_edits_are_audited(admin_client, plant):
    stage = plant[1].stage
    step = Step.objects.get(stage=stage)
    url = reverse("admin:runbooks_stage_change", args=[stage.pk])
    data = form_data(admin_client.get(url))
    prefix = next(k for k, v in data.items() if k.endswith("-id") and v == step.pk)
    data[prefix.replace("-id", "-instruction")] = "Press modules at 4 kN"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["errors"]
    step.refresh_from_db()
    assert step.instruction == "Press modules at 4 kN"
    record = AuditRecord.objects.get(action="runbooks.step.admin_changed")
    assert (record.actor_username, record.target_id) == ("ada", str(step.pk))
    assert record.before == {"instruction": "Do Module Assembly"}
    assert record.after == {"instruction": "Press modules at 4 kN"}


# --- work orders and assignments ---------------------------------------------------


def test_work_orders_are_read_only_in_the_admin(admin_client, plant):
    work_order = plant[2]
    page = admin_client.get(
        reverse("admin:runbooks_workorder_change", args=[work_order.pk])
    )
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.get(reverse("admin:runbooks_workorder_add")).status_code == 403


def test_admin_cancels_a_work_order_with_a_reason(admin_client, plant):
    work_order = plant[2]
    page = post_action(admin_client, "workorder", "cancel_work_orders", [work_order.pk])
    assert page.status_code == 200
    assert b'name="reason"' in page.content
    done = post_action(
        admin_client,
        "workorder",
        "cancel_work_orders",
        [work_order.pk],
        reason="Duplicate order",
        apply="yes",
    )
    assert done.status_code == 302
    work_order.refresh_from_db()
    assert work_order.status == "cancelled"
    record = AuditRecord.objects.get(action="workorder.cancelled")
    assert (record.source, record.after["reason"]) == ("admin", "Duplicate order")


def test_removing_an_assignment_goes_through_the_service(
    admin_client, plant, make_user
):
    _, _, work_order, planner = plant
    stage = stages_of(work_order)[0]
    worker = make_user("operator", username="olga")
    assignment = services.stage_assign(
        stage_id=stage.pk, user_id=worker.pk, actor=planner
    )
    url = reverse("admin:runbooks_stageassignment_delete", args=[assignment.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not StageAssignment.objects.exists()
    record = AuditRecord.objects.get(action="stage.unassigned")
    assert (record.actor_username, record.before) == ("ada", {"user_id": worker.pk})


# --- auditors read, nobody else gets in ---------------------------------------------


def test_auditors_browse_read_only(client, make_user, plant):
    gate = plant[1]
    client.force_login(make_user("auditor"))
    for model in ("runbook", "stage", "gate", "workorder", "stageassignment"):
        assert client.get(changelist(model)).status_code == 200, model
    page = client.get(reverse("admin:runbooks_gate_change", args=[gate.pk]))
    assert b'name="_save"' not in page.content
    before = row_counts()
    post_action(client, "gate", "lock_gates", [gate.pk], reason="x", apply="yes")
    gate.refresh_from_db()
    assert gate.status == GateStatus.OPEN
    assert row_counts() == before


def test_other_roles_have_no_admin(client, make_user, plant):
    client.force_login(make_user("supervisor"))  # not staff: the admin is not theirs
    response = client.get(changelist("gate"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
