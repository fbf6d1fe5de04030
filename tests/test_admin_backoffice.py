"""The back-office (``/admin/``, ``bpmos.adminsite``) as auditors and admins use it.

On the demo plant (``seed_demo``, rolled back after the module): every
registered model's list and one of its rows, read by an auditor, show no write
control; admins still configure connectors, alert rules, report schedules and
beat schedules; the CSV export follows the list's filters, escapes formulas and
is audited; the chain verifications say what they found, a broken chain too
(made with raw SQL and the append-only triggers bypassed, as the chain tests do).
"""

from __future__ import annotations

import contextlib
import csv
import io
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from bpmos.adminsite import DOMAINS, OTHER, is_read_action
from compliance.models import ComplianceReturn, EmailDelivery, ReportJob
from elog import audit
from elog.models import AuditRecord, ShiftLogEntry
from passports.models import Passport, PassportEvent
from scada.models import AlarmEvent, AlarmHistory, AlertRule, Connector
from tests.support_backoffice import fill_every_model, is_reader_control


@pytest.fixture
def auditor(client, make_user):
    user = make_user("auditor", username="audrey")
    client.force_login(user)
    return user


@pytest.fixture
def plant_admin(client, make_user):
    user = make_user("admin", username="adele")
    client.force_login(user)
    return user


def registered() -> list[tuple[type, admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def url(model, view: str, *args) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


MODELS = [model for model, _ in registered()]


@pytest.fixture
def every_model_has_a_row(demo_plant, make_user):
    """The demo plant, and a row for the models it leaves empty."""
    fill_every_model(make_user)


# --- what marks a page as writable ----------------------------------------------

WRITE_MARKS = [
    'class="addlink"',
    'class="deletelink"',
    'name="_save"',
    'name="_continue"',
    'name="_addanother"',
    'name="_saveasnew"',
]


class _Controls(HTMLParser):
    def __init__(self):
        super().__init__()
        self.form_action = None
        self.found: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form_action = attrs.get("action") or ""
        elif tag in {"input", "select", "textarea", "button"}:
            self.found.append({"tag": tag, "form": self.form_action, **attrs})

    def handle_endtag(self, tag):
        if tag == "form":
            self.form_action = None


def write_controls(html: str) -> list[dict]:
    """Every form control of the page that is not a reader's."""
    parser = _Controls()
    parser.feed(html)
    return [control for control in parser.found if not is_reader_control(control)]


# --- auditors: every model, read-only -------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_auditor_reads_every_model_without_a_write_control(
    client, auditor, every_model_has_a_row, model
):
    listing = client.get(url(model, "changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert not [mark for mark in WRITE_MARKS if mark in html]
    assert write_controls(html) == []
    actions = listing.context["action_form"]
    if actions is not None:
        choices = [value for value, _ in actions.fields["action"].choices if value]
        modeladmin = admin.site._registry[model]
        assert choices, "the CSV export is on every list"
        for name in choices:
            assert is_read_action(modeladmin.get_action(name)[0]), name
        assert set(actions.fields) == {"action", "select_across"}

    row = model._default_manager.order_by("pk").first()
    assert row is not None, f"no {model._meta.label} row to open"
    page = client.get(url(model, "change", row.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert not [mark for mark in WRITE_MARKS if mark in html]
    assert write_controls(html) == []
    assert client.get(url(model, "add")).status_code == 403
    assert client.get(url(model, "delete", row.pk)).status_code == 403


@pytest.mark.parametrize(
    "model", [Connector, AlertRule, PeriodicTask, CrontabSchedule, ShiftLogEntry]
)
def test_auditor_posts_change_nothing(client, auditor, every_model_has_a_row, model):
    row = model._default_manager.order_by("pk").first()
    before = AuditRecord.objects.count()
    assert client.post(url(model, "change", row.pk), {}).status_code == 403
    assert client.post(url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert client.post(url(model, "add"), {}).status_code == 403
    # Actions that write are not offered, and asking for one by name does nothing.
    client.post(
        url(model, "changelist"),
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert model._default_manager.filter(pk=row.pk).exists()
    assert AuditRecord.objects.count() == before


def test_auditor_cannot_run_an_alarm_action(client, auditor, every_model_has_a_row):
    alarm = AlarmEvent.objects.filter(acknowledged_at__isnull=True).first()
    if alarm is None:
        pytest.skip("the demo plant has no unacknowledged alarm")
    client.post(
        url(AlarmEvent, "changelist"),
        {"action": "acknowledge", "_selected_action": [alarm.pk]},
    )
    alarm.refresh_from_db()
    assert alarm.acknowledged_at is None


def test_users_page_shows_no_password_hash_to_an_auditor(
    client, auditor, every_model_has_a_row
):
    from bpmos.accounts.models import User

    user = User.objects.exclude(password="").first()
    page = client.get(url(User, "change", user.pk)).content.decode()
    _algorithm, _, rest = user.password.partition("$")
    assert rest
    assert rest not in page


# --- admins: the configuration stays editable -----------------------------------


CONFIGURATION = [
    "scada.Connector",
    "scada.AlertRule",
    "compliance.ScheduledReturn",
    "django_celery_beat.PeriodicTask",
    "django_celery_beat.CrontabSchedule",
    "django_celery_beat.IntervalSchedule",
    "django_celery_beat.ClockedSchedule",
    "django_celery_beat.SolarSchedule",
]


@pytest.mark.parametrize("label", CONFIGURATION)
def test_admins_configure(client, plant_admin, every_model_has_a_row, label):
    from django.apps import apps

    model = apps.get_model(label)
    add = client.get(url(model, "add"))
    assert add.status_code == 200
    assert 'name="_save"' in add.content.decode()
    row = model._default_manager.order_by("pk").first()
    change = client.get(url(model, "change", row.pk))
    assert 'name="_save"' in change.content.decode()
    assert 'class="addlink"' in client.get(url(model, "changelist")).content.decode()


def test_an_admin_beat_schedule_is_saved_and_audited(client, plant_admin, db):
    response = client.post(
        url(CrontabSchedule, "add"),
        {
            "minute": "15",
            "hour": "6",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": "Asia/Kolkata",
            # The inline of the tasks on this schedule (none).
            "periodictask_set-TOTAL_FORMS": "0",
            "periodictask_set-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    schedule = CrontabSchedule.objects.get(minute="15", hour="6")
    record = AuditRecord.objects.get(
        action="django_celery_beat.crontabschedule.admin_created"
    )
    assert record.target_id == str(schedule.pk)
    assert record.actor_username == "adele"


def test_an_admin_beat_action_is_audited(client, plant_admin, every_model_has_a_row):
    task = PeriodicTask.objects.order_by("pk").first()
    client.post(
        url(PeriodicTask, "changelist"),
        {"action": "toggle_tasks", "_selected_action": [task.pk], "index": "0"},
    )
    was = task.enabled
    task.refresh_from_db()
    assert task.enabled is not was
    record = AuditRecord.objects.get(
        action="django_celery_beat.periodictask.admin_toggle_tasks"
    )
    assert record.after == {"rows": [str(task.pk)]}
    assert record.actor_username == "adele"


def test_admin_alarm_actions_stay_for_admins(
    client, plant_admin, every_model_has_a_row
):
    listing = client.get(url(AlarmEvent, "changelist"))
    choices = {
        value for value, _ in listing.context["action_form"].fields["action"].choices
    }
    assert {"suppress", "export_csv"} <= choices
    assert "reason" in listing.context["action_form"].fields


# --- the index by domain --------------------------------------------------------


def test_index_is_grouped_by_the_plants_domains(client, auditor, db):
    index = client.get(reverse("admin:index"))
    html = index.content.decode()
    assert "<title>Back-office | BPM-OS</title>" in html
    assert ">BPM-OS</a>" in html  # the header
    groups = {app["name"]: app for app in index.context["app_list"]}
    assert list(groups) == [name for name, _ in DOMAINS]  # every domain, in order
    assert OTHER not in groups
    listed = {
        f"{model['app_label']}.{model['object_name']}"
        for app in groups.values()
        for model in app["models"]
    }
    assert listed == {model._meta.label for model in MODELS}
    names = lambda domain: [m["object_name"] for m in groups[domain]["models"]]  # noqa: E731
    assert names("Logs & audit") == ["AuditRecord", "ShiftLogEntry"]
    assert "PeriodicTask" in names("Schedules")
    assert {"AlarmEvent", "AlarmHistory", "Connector", "AlertRule"} <= set(
        names("Lines & SCADA")
    )
    assert "ComplianceReturn" in names("Compliance & reports")


def test_other_staff_see_no_model(client, make_user, db):
    planner = make_user("planner")
    planner.is_staff = True
    planner.save(update_fields=["is_staff"])
    client.force_login(planner)
    assert client.get(reverse("admin:index")).context["app_list"] == []
    assert client.get(url(PeriodicTask, "changelist")).status_code == 403


# --- lists: date drill-down, filters and search ---------------------------------


@pytest.mark.parametrize(
    "model",
    [
        AuditRecord,
        PassportEvent,
        AlarmEvent,
        AlarmHistory,
        ShiftLogEntry,
        ComplianceReturn,
        EmailDelivery,
        ReportJob,
    ],
    ids=lambda m: m._meta.label,
)
def test_logs_have_dates_filters_and_search(client, auditor, model):
    modeladmin = admin.site._registry[model]
    assert modeladmin.date_hierarchy
    assert modeladmin.list_filter
    assert modeladmin.search_fields


def test_alarm_history_filters_and_search(client, auditor, every_model_has_a_row):
    change = AlarmHistory.objects.order_by("pk").first()
    if change is None:
        pytest.skip("the demo plant has no alarm history")
    listing = client.get(
        url(AlarmHistory, "changelist"),
        {"change": change.change, "at__year": change.at.year},
    )
    assert listing.status_code == 200
    shown = listing.context["cl"].result_list
    assert shown
    assert {row.change for row in shown} == {change.change}


# --- the CSV export -------------------------------------------------------------


@pytest.fixture
def records(db, make_user):
    ada = make_user("admin", username="ada-bo")
    olga = make_user("operator", username="olga-bo")
    audit.record(actor=ada, action="user.registered", target=olga)
    audit.record(actor=olga, action="user.logged_in", target=olga)
    audit.record(actor=ada, action='=HYPERLINK("http://x")', target=olga)
    # The newest three (the demo plant's may come before them in this module).
    return list(AuditRecord.objects.order_by("-seq")[:3])[::-1]


def export(client, model, params: dict, selected: list, select_across: bool):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(
        url(model, "changelist") + (f"?{query}" if query else ""),
        {
            "action": "export_csv",
            "_selected_action": selected,
            "select_across": "1" if select_across else "0",
            "index": "0",
        },
    )


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_csv_export_honours_the_filters_and_is_audited(client, records, auditor):
    response = export(
        client,
        AuditRecord,
        {"actor_role": "admin", "q": "olga-bo"},
        [records[0].pk],
        select_across=True,
    )
    header, *rows = rows_of(response)
    assert header[:4] == ["Id", "Seq", "Occurred at", "Actor username"]
    # Every admin's record on olga that the filter and search match (not the
    # one only ticked), newest first; none of olga's own.
    seqs = [str(records[2].seq), str(records[0].seq)]
    assert [row[1] for row in rows] == seqs
    assert rows[0][header.index("Action")] == '\'=HYPERLINK("http://x")'
    record = AuditRecord.objects.get(action="admin.csv_exported")
    assert record.actor_username == "audrey"
    assert record.target_type == "elog.auditrecord"
    assert record.after["rows"] == 2
    assert record.after["filters"] == {"actor_role": ["admin"], "q": ["olga-bo"]}
    assert record.after["selection"] == "all matching"


def test_csv_export_of_the_selected_rows(client, records, auditor):
    _header, *rows = rows_of(
        export(client, AuditRecord, {}, [records[1].pk], select_across=False)
    )
    assert [row[1] for row in rows] == [str(records[1].seq)]
    assert AuditRecord.objects.get(action="admin.csv_exported").after["rows"] == 1


def test_a_sample_rows_formula_is_exported_escaped(
    client, auditor, every_model_has_a_row
):
    delivery = EmailDelivery.objects.get(error__startswith="=cmd")
    _header, *rows = rows_of(
        export(client, EmailDelivery, {}, [delivery.pk], select_across=False)
    )
    assert rows[0][-1] == "'=cmd|' /C calc'!A0"


def test_csv_export_never_writes_a_secret(client, plant_admin, db):
    from bpmos.accounts.models import User

    header, *rows = rows_of(
        export(client, User, {}, [plant_admin.pk], select_across=False)
    )
    assert plant_admin.password not in "".join(",".join(row) for row in rows)
    assert "Password" not in header


# --- verifying the chains -------------------------------------------------------


@contextlib.contextmanager
def trigger_bypassed():
    """UPDATE and DELETE of append-only rows until the test rolls back (as
    tests/test_audit_chain.py does)."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            pytest.skip("tampering is made with PostgreSQL's replica role")
        cursor.execute("SET LOCAL session_replication_role = replica")
        yield cursor
        cursor.execute("SET LOCAL session_replication_role = origin")


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_verify_the_audit_chain(client, records, auditor):
    verified = client.post(reverse("admin:elog_auditrecord_verify"), follow=True)
    assert verified.status_code == 200
    head = AuditRecord.objects.order_by("-seq").first().seq
    assert messages_of(verified) == [
        f"The audit chain is intact: {head} records verified, the newest #{head}."
    ]
    page = verified.content.decode()
    assert "The audit chain is intact" in page
    assert "Verify the chain" in page

    with trigger_bypassed() as cursor:
        cursor.execute(
            "UPDATE elog_auditrecord SET action = 'user.nothing' WHERE id = %s",
            [records[1].pk],
        )
    broken = client.post(reverse("admin:elog_auditrecord_verify"), follow=True)
    (message,) = messages_of(broken)
    assert message.startswith(
        f"The audit chain is broken at record #{records[1].seq} "
        f"(id {records[1].pk}), altered:"
    )


def test_verify_is_a_post(client, records, auditor):
    response = client.get(reverse("admin:elog_auditrecord_verify"), follow=True)
    assert messages_of(response) == []


def test_verify_passport_ledgers(client, auditor, every_model_has_a_row):
    passport = Passport.objects.filter(version__gte=2).order_by("pk").first()
    events = PassportEvent.objects.filter(passport=passport).count()
    one = client.post(
        reverse("admin:passports_passport_verify_one", args=[passport.pk]),
        follow=True,
    )
    assert messages_of(one) == [
        f"The ledgers are intact: {events} events of 1 passport(s) verified."
    ]
    every = client.post(
        reverse("admin:passports_passport_verify"), {"back": "ledger"}, follow=True
    )
    assert every.redirect_chain[-1][0] == url(PassportEvent, "changelist")
    total = PassportEvent.objects.count()
    assert messages_of(every) == [
        f"The ledgers are intact: {total} events of {Passport.objects.count()} "
        "passport(s) verified."
    ]

    second = PassportEvent.objects.get(passport=passport, version=2)
    with trigger_bypassed() as cursor:
        cursor.execute(
            "UPDATE passports_passportevent SET data = '{\"forged\": true}' "
            "WHERE id = %s",
            [second.pk],
        )
    action = client.post(
        url(Passport, "changelist"),
        {"action": "verify_ledgers", "_selected_action": [passport.pk], "index": "0"},
        follow=True,
    )
    (message,) = messages_of(action)
    assert message.startswith(
        f"The ledger of {passport.serial} is broken at event 2, altered:"
    )
