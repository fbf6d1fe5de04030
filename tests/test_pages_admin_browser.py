"""The back-office in a real browser (docs/pages.md, "Back-office"): an auditor
signs in through the plant's page, walks every registered model's list and one
of its rows and meets no write control, then verifies the audit chain and a
passport's ledger and reads the result on the page.

The admin needs no WebSocket: pytest-django's ``live_server`` serves it. The
test is transactional, so the server's thread sees the demo plant it seeds.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from passports.models import Passport
from tests.support_backoffice import fill_every_model, is_reader_control
from tests.support_browser import save_screens, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

# Every form control on the page, as the browser sees it.
CONTROLS_JS = """() => Array.from(
    document.querySelectorAll('input, select, textarea, button')
).map(e => ({
    tag: e.tagName.toLowerCase(),
    type: e.getAttribute('type'),
    name: e.getAttribute('name'),
    id: e.id || null,
    value: e.getAttribute('value'),
    readOnly: e.hasAttribute('data-read-only'),
    form: e.form ? (e.form.getAttribute('action') || '') : null,
}))"""

READ_ACTIONS = {"", "export_csv", "verify_ledgers"}


def write_controls(page) -> list[dict]:
    found = []
    for raw in page.evaluate(CONTROLS_JS):
        control = {
            key: value
            for key, value in raw.items()
            if value is not None and key != "readOnly"
        }
        control["form"] = raw["form"]
        if raw["readOnly"]:
            control["data-read-only"] = ""
        if not is_reader_control(control):
            found.append(control)
    return found


def action_options(page) -> set[str]:
    return set(
        page.eval_on_selector_all(
            "select[name=action] option", "options => options.map(o => o.value)"
        )
    )


@pytest.fixture
def plant(make_user):
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    fill_every_model(make_user)


def test_an_auditor_finds_no_write_control_and_verifies_the_chains(
    browser,
    live_server,
    make_user,
    plant,
):
    auditor = make_user("auditor", username="audrey")
    context, page = sign_in(browser, live_server.url, auditor, next_path="/admin/")
    try:
        assert page.url.endswith("/admin/")
        assert page.inner_text("#site-name") == "BPM-OS"
        captions = page.eval_on_selector_all(
            "#content-main .module caption", "cs => cs.map(c => c.textContent.trim())"
        )
        assert captions[:3] == ["Production", "Lines & SCADA", "Inventory"]
        save_screens(page, "admin-index")

        walked = []
        for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
            opts = model._meta
            name = f"admin:{opts.app_label}_{opts.model_name}"
            page.goto(reverse(f"{name}_changelist"))
            assert page.locator("#changelist").count() == 1, opts.label
            assert write_controls(page) == [], opts.label
            assert page.locator("a.addlink").count() == 0, opts.label
            assert action_options(page) <= READ_ACTIONS, opts.label
            row = model._default_manager.order_by("pk").first()
            page.goto(reverse(f"{name}_change", args=[row.pk]))
            assert page.locator("#content-main").count() == 1, opts.label
            assert write_controls(page) == [], opts.label
            assert page.locator("a.deletelink").count() == 0, opts.label
            walked.append(opts.label)
        assert len(walked) == len(admin.site._registry)

        page.goto(reverse("admin:elog_auditrecord_changelist"))
        page.click("button.verify-chain")
        page.wait_for_load_state("networkidle")
        message = page.inner_text(".messagelist li")
        assert message.startswith("The audit chain is intact:"), message
        save_screens(page, "admin-audit-log")

        passport = Passport.objects.order_by("pk").first()
        page.goto(reverse("admin:passports_passport_change", args=[passport.pk]))
        page.click("button.verify-chain")
        page.wait_for_load_state("networkidle")
        message = page.inner_text(".messagelist li")
        assert message.startswith("The ledgers are intact:"), message
        assert "of 1 passport(s) verified" in message
    finally:
        context.close()
