"""Scheduled compliance returns by email (compliance.mailing, its Celery task
and admin): mailed through a real SMTP server started here (aiosmtpd) with the
return's CSV attached; a refused connection retried and then failed, each
attempt a delivery row and an audit record; the beat PeriodicTask kept in step
with the schedule; the embedded default writing mail to files under
DATA_DIR/mail; recipients checked in the admin."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import importlib
import io
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.apps import apps
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from pypdf import PdfReader

from bpmos.celery import app as celery_app
from compliance import epr, mailing, returns, tasks_mailing
from compliance.models import (
    ComplianceReturn,
    CsvSchema,
    DeliveryStatus,
    EmailDelivery,
    ReturnStatus,
    ScheduledReturn,
    SchemaLevel,
)
from compliance.periods import Period, plant_zone
from elog.models import AuditRecord
from passports import ledger, services
from tests.factories_passports import EVENT_DATA, register

pytestmark = pytest.mark.django_db

IST = plant_zone
PATH_TO_DISPATCH = ("qa_passed", "provisioned", "warehoused", "reserved", "dispatched")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every message it accepts; refuses the
    recipients named in ``refuse`` with the answer given there."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.refuse: dict[str, str] = {}
        self.port = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(envelope.content, policy=email.policy.default)
            for envelope in self.envelopes
        ]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on a free port; Django's SMTP backend pointed at it."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "bpmos@plant.example"
    yield inbox
    controller.stop()


@pytest.fixture
def refused_smtp(settings):
    """Django's SMTP backend pointed at a port where nothing listens."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5


@pytest.fixture
def eager():
    """Celery runs tasks in the caller (apply_async included), as a worker would."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = True
    yield
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = before


@pytest.fixture
def crontab():
    return CrontabSchedule.objects.create(
        minute="0", hour="7", day_of_month="1", timezone="Asia/Kolkata"
    )


@pytest.fixture
def pack_schema() -> CsvSchema:
    """The default pack-level layout data migration 0002 ships (shipped again
    when a transactional test elsewhere in the run flushed it)."""
    migration = importlib.import_module("compliance.migrations.0002_csv_schemas")
    migration.ship(apps, None)
    return CsvSchema.objects.get(level=SchemaLevel.PACK, is_default=True)


@pytest.fixture
def owner(make_user):
    return make_user("admin", username="compliance-admin")


def last_month() -> Period:
    return mailing.period_for("previous_month", timezone.now())


@pytest.fixture
def dispatched_packs():
    """Two packs first dispatched in the previous month (plant time), one
    dispatched this month: the previous month's return has two rows."""
    period = last_month()
    day = datetime.combine(period.first, datetime.min.time(), tzinfo=IST())
    serials = []
    for number, mass in ((1, "41.500"), (2, "38.250")):
        made = day + timedelta(hours=number)
        pack = register(
            "pack",
            serial=f"MAIL-{number}",
            model="PACK-LFP",
            mass_kg=mass,
            manufactured_at=made.isoformat(),
        )
        for offset, kind in enumerate(PATH_TO_DISPATCH, start=1):
            record_at(pack, kind, made + timedelta(minutes=10 * offset))
        serials.append(pack.serial)
    return serials


def record_at(pack, kind: str, at: datetime) -> None:
    """One ledger event at a given time, through the service that owns it."""
    data = EVENT_DATA.get(kind, {})
    if kind in services.RECORDABLE_KINDS:
        services.passport_event_record(
            passport_id=pack.pk,
            kind=kind,
            data=data,
            occurred_at=at.isoformat(),
            actor=None,
        )
    else:  # provisioned
        ledger.append(
            passport=pack.pk, kind=kind, data=data, occurred_at=at, actor=None
        )


def make_schedule(owner, crontab, **changes) -> ScheduledReturn:
    values = {
        "name": "CPCB monthly",
        "period": "previous_month",
        "recipients": "epr@cpcb.example, compliance@plant.example",
        "format": "csv",
        "crontab": crontab,
        "owner": owner,
    }
    return ScheduledReturn.objects.create(**(values | changes))


def pdf_text(content: bytes) -> str:
    return "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(content)).pages
    )


def attachment_of(message) -> tuple[str, bytes]:
    [part] = list(message.iter_attachments())
    return part.get_filename(), part.get_payload(decode=True)


# --- the period a run reports (plant time) --------------------------------------------


@pytest.mark.parametrize(
    ("now", "period", "first", "last"),
    [
        # 10:00 UTC on 3 December 2026 is 15:30 IST the same day.
        ("2026-12-03T10:00:00Z", "previous_month", "2026-11-01", "2026-11-30"),
        ("2026-12-03T10:00:00Z", "previous_quarter", "2026-07-01", "2026-09-30"),
        ("2026-12-03T10:00:00Z", "previous_fy", "2025-04-01", "2026-03-31"),
        ("2026-12-03T10:00:00Z", "fy_to_date", "2026-04-01", "2026-12-02"),
        # 18:40 UTC on 31 March 2027 is 00:10 IST on 1 April: a new FY in the plant.
        ("2027-03-31T18:40:00Z", "previous_month", "2027-03-01", "2027-03-31"),
        ("2027-03-31T18:40:00Z", "previous_quarter", "2027-01-01", "2027-03-31"),
        ("2027-03-31T18:40:00Z", "previous_fy", "2026-04-01", "2027-03-31"),
        ("2027-03-31T18:40:00Z", "fy_to_date", "2026-04-01", "2027-03-31"),
        # 18:00 UTC on 31 March 2027 is still 23:30 IST on 31 March.
        ("2027-03-31T18:00:00Z", "previous_quarter", "2026-10-01", "2026-12-31"),
        ("2027-03-31T18:00:00Z", "fy_to_date", "2026-04-01", "2027-03-30"),
        ("2027-01-15T06:00:00Z", "previous_month", "2026-12-01", "2026-12-31"),
        ("2027-01-15T06:00:00Z", "previous_quarter", "2026-10-01", "2026-12-31"),
        ("2027-01-15T06:00:00Z", "previous_fy", "2025-04-01", "2026-03-31"),
        ("2026-05-10T06:00:00Z", "previous_quarter", "2026-01-01", "2026-03-31"),
    ],
)
def test_the_period_of_a_run_is_in_plant_time(now, period, first, last):
    at = datetime.fromisoformat(now).astimezone(UTC)
    assert mailing.period_for(period, at) == Period(
        date.fromisoformat(first), date.fromisoformat(last)
    )


# --- recipients -----------------------------------------------------------------------


def test_recipients_are_parsed_and_checked():
    assert mailing.recipients_parse(
        " a@plant.example, B@cpcb.example;a@plant.example\nc@x.example "
    ) == ["a@plant.example", "B@cpcb.example", "c@x.example"]
    with pytest.raises(mailing.InvalidInput) as refused:
        mailing.recipients_parse("a@plant.example, not-an-address, x@")
    assert refused.value.details == {
        "recipients": [
            '"not-an-address" is not an e-mail address.',
            '"x@" is not an e-mail address.',
        ]
    }
    with pytest.raises(mailing.InvalidInput):
        mailing.recipients_parse(" , ")


# --- a send through a real SMTP server ------------------------------------------------


def test_a_scheduled_return_is_mailed_with_its_csv(
    smtp_server, eager, owner, crontab, pack_schema, dispatched_packs
):
    schedule = make_schedule(owner, crontab)
    before = AuditRecord.objects.filter(action="compliance_email_sent").count()

    result = tasks_mailing.scheduled_return_send_task.apply(
        kwargs={"schedule_id": schedule.pk}
    )

    assert result.get() == "sent"
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "bpmos@plant.example"
    assert envelope.rcpt_tos == ["epr@cpcb.example", "compliance@plant.example"]
    [message] = smtp_server.messages()
    period = last_month()
    assert message["Subject"] == (
        f"Compliance return {period.first} to {period.last}: CPCB monthly"
    )
    assert message["To"] == "epr@cpcb.example, compliance@plant.example"
    [ret] = ComplianceReturn.objects.all()
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"Return: {ret.pk}, 2 pack rows, approved by compliance-admin." in body
    assert (ret.period_start, ret.period_end) == (period.first, period.last)
    assert ret.status == ReturnStatus.APPROVED
    assert ret.approved_by == owner
    [part] = list(message.iter_attachments())
    assert (part.get_content_type(), part.get_content_charset()) == (
        "text/csv",
        "utf-8",
    )
    name, content = attachment_of(message)
    assert name == (
        f"compliance-return-{period.first}-to-{period.last}-{ret.pk}"
        f"-{pack_schema.slug}.csv"
    )
    assert content == _csv_of(ret, pack_schema)
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert [
        (row["Battery Serial Number"], row["Weight (kg)"], row["Date"]) for row in rows
    ] == [
        ("MAIL-1", "41.500", period.first.isoformat()),
        ("MAIL-2", "38.250", period.first.isoformat()),
    ]
    assert list(rows[0]) == [column["header"] for column in pack_schema.columns]
    [delivery] = EmailDelivery.objects.all()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempt == 1
    assert delivery.ret == ret
    assert delivery.recipients == "epr@cpcb.example, compliance@plant.example"
    assert delivery.attachment_name == name
    assert delivery.checksum == hashlib.sha256(content).hexdigest()
    assert f"Attachment: {name}, SHA-256 {delivery.checksum}." in body
    assert delivery.error == ""
    assert delivery.sent_at is not None
    schedule.refresh_from_db()
    assert schedule.last_status == "sent"
    assert schedule.last_sent_at == delivery.sent_at
    [audit] = AuditRecord.objects.filter(action="compliance_email_sent")[before:]
    assert audit.actor_id == owner.pk
    assert audit.source == "task"
    assert (audit.target_type, audit.target_id) == (
        "compliance.scheduledreturn",
        str(schedule.pk),
    )
    assert audit.after["delivery"] == delivery.pk
    assert audit.after["return"] == ret.pk
    assert audit.after["checksum"] == delivery.checksum
    # The mailed CSV is an export: counted on the return, audited as one.
    assert ret.export_count == 1
    [export] = AuditRecord.objects.filter(action="compliance_export")
    assert export.actor_id == owner.pk
    assert export.after["source"] == "email"
    assert export.after["sha256"] == delivery.checksum


def _csv_of(ret, schema) -> bytes:
    return returns.return_csv(ret, schema)


def test_a_refused_connection_is_retried_then_failed(
    refused_smtp, eager, owner, crontab, pack_schema, dispatched_packs
):
    schedule = make_schedule(owner, crontab)

    result = tasks_mailing.scheduled_return_send_task.apply(
        kwargs={"schedule_id": schedule.pk}
    )

    assert result.get() == "failed"
    deliveries = list(EmailDelivery.objects.order_by("attempt"))
    assert [(d.attempt, d.status) for d in deliveries] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "retrying"),
        (4, "retrying"),
        (5, "retrying"),
        (6, "failed"),
    ]
    assert all("ConnectionRefusedError" in d.error for d in deliveries)
    assert all(d.sent_at is None for d in deliveries)
    # Every attempt sends the return the first one built.
    [ret] = ComplianceReturn.objects.all()
    assert {d.ret_id for d in deliveries} == {ret.pk}
    audits = AuditRecord.objects.filter(action="compliance_email_failed").order_by(
        "seq"
    )
    assert [(a.after["attempt"], a.after["status"]) for a in audits] == [
        (d.attempt, d.status) for d in deliveries
    ]
    assert {a.actor_id for a in audits} == {owner.pk}
    assert not AuditRecord.objects.filter(action="compliance_email_sent").exists()
    schedule.refresh_from_db()
    assert (schedule.last_status, schedule.last_sent_at) == ("failed", None)


def test_a_retry_after_the_server_is_back_sends(
    smtp_server, owner, crontab, pack_schema, dispatched_packs, settings
):
    schedule = make_schedule(owner, crontab)
    settings.EMAIL_PORT = free_port()  # the server is down
    first = mailing.scheduled_send(schedule_id=schedule.pk, attempt=1)
    assert (first.status, first.attempt) == ("retrying", 1)
    assert smtp_server.envelopes == []

    settings.EMAIL_PORT = smtp_server.port  # and back
    second = mailing.scheduled_send(
        schedule_id=schedule.pk, attempt=2, return_id=first.ret_id
    )

    assert (second.status, second.ret_id) == ("sent", first.ret_id)
    assert ComplianceReturn.objects.count() == 1
    [message] = smtp_server.messages()
    assert attachment_of(message)[0] == first.attachment_name


def test_a_permanent_refusal_fails_at_once(
    smtp_server, eager, owner, crontab, pack_schema, dispatched_packs
):
    smtp_server.refuse = {"gone@cpcb.example": "550 5.1.1 No such mailbox"}
    schedule = make_schedule(owner, crontab, recipients="gone@cpcb.example")

    result = tasks_mailing.scheduled_return_send_task.apply(
        kwargs={"schedule_id": schedule.pk}
    )

    assert result.get() == "failed"
    [delivery] = EmailDelivery.objects.all()
    assert (delivery.attempt, delivery.status) == (1, "failed")
    assert "550" in delivery.error
    assert "No such mailbox" in delivery.error
    assert smtp_server.envelopes == []


def test_a_pdf_schedule_mails_the_approved_return_as_a_pdf(
    smtp_server, eager, owner, crontab, pack_schema, dispatched_packs
):
    schedule = make_schedule(owner, crontab, format="pdf")

    result = tasks_mailing.scheduled_return_send_task.apply(
        kwargs={"schedule_id": schedule.pk}
    )

    assert result.get() == "sent"
    [message] = smtp_server.messages()
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    name, content = attachment_of(message)
    [ret] = ComplianceReturn.objects.all()
    period = last_month()
    assert name == f"compliance-return-{period.first}-to-{period.last}-{ret.pk}.pdf"
    text = "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(content)).pages
    )
    assert f"Compliance return {ret.pk}: {period.first} to {period.last}" in text
    assert "Approved by: compliance-admin (admin)" in text
    assert "MAIL-1" in text
    assert "MAIL-2" in text
    [delivery] = EmailDelivery.objects.all()
    assert delivery.checksum == hashlib.sha256(content).hexdigest()


def test_a_pdf_shows_the_rows_as_approved_not_as_they_are_now(
    settings, tmp_path, owner, crontab, pack_schema, dispatched_packs
):
    """A retry re-sends the return the first attempt built: a pack dispatched
    into the period since then is not in it (the PDF is the frozen return)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    schedule = make_schedule(owner, crontab, format="pdf")
    period = last_month()
    ret = returns.return_build(period=period, actor=owner)
    returns.return_approve(return_id=ret.pk, actor=owner)
    # Dispatched in the period, but recorded after the return was built.
    made = datetime.combine(period.first, datetime.min.time(), tzinfo=IST())
    made += timedelta(hours=5)
    late = register(
        "pack",
        serial="MAIL-LATE",
        model="PACK-LFP",
        mass_kg="40",
        manufactured_at=made.isoformat(),
    )
    for offset, kind in enumerate(PATH_TO_DISPATCH, start=1):
        record_at(late, kind, made + timedelta(minutes=offset))
    assert "MAIL-LATE" in [f.serial for f in epr.pack_facts(period)]

    delivery = mailing.scheduled_send(
        schedule_id=schedule.pk, attempt=2, return_id=ret.pk
    )

    assert (delivery.status, delivery.ret_id) == ("sent", ret.pk)
    [written] = list((tmp_path / "mail").iterdir())
    message = email.message_from_bytes(
        written.read_bytes(), policy=email.policy.default
    )
    _, content = attachment_of(message)
    text = "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(content)).pages
    )
    assert "MAIL-1" in text
    assert "MAIL-LATE" not in text


def test_a_deleted_schedule_sends_nothing_and_its_beat_task_goes(
    smtp_server, eager, crontab
):
    orphan = PeriodicTask.objects.create(
        name="compliance-return:987654",
        task=mailing.TASK_NAME,
        crontab=crontab,
        kwargs=json.dumps({"schedule_id": 987654}),
    )
    result = tasks_mailing.scheduled_return_send_task.apply(
        kwargs={"schedule_id": 987654}
    )
    assert result.get() == "missing"
    assert not PeriodicTask.objects.filter(pk=orphan.pk).exists()
    assert not EmailDelivery.objects.exists()
    assert smtp_server.envelopes == []


# --- the embedded default: files under DATA_DIR/mail ----------------------------------


def test_the_file_backend_writes_the_mail_under_the_data_dir(
    settings, tmp_path, owner, crontab, pack_schema, dispatched_packs
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    schedule = make_schedule(owner, crontab)

    delivery = mailing.scheduled_send(schedule_id=schedule.pk)

    assert delivery.status == "sent"
    [written] = list((tmp_path / "mail").iterdir())
    message = email.message_from_bytes(
        written.read_bytes(), policy=email.policy.default
    )
    name, content = attachment_of(message)
    assert name == delivery.attachment_name
    assert hashlib.sha256(content).hexdigest() == delivery.checksum


def _settings_in_a_fresh_process(tmp_path, **env_changes: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "BPMOS_", "CELERY_", "EMAIL_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "PYTEST_XDIST_WORKER"}
    } | {"DJANGO_SETTINGS_MODULE": "bpmos.settings", "BPMOS_DATA_DIR": str(tmp_path)}
    env |= env_changes
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from django.conf import settings as s; print(json.dumps("
            "{k: getattr(s, k, None) for k in ('EMAIL_BACKEND', 'EMAIL_FILE_PATH', "
            "'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_HOST_USER', 'EMAIL_USE_TLS', "
            "'EMAIL_USE_SSL')}))",
        ],
        cwd=Path(django_settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(shown.stdout)


def test_embedded_mail_goes_to_files_and_email_url_names_the_server(tmp_path):
    embedded = _settings_in_a_fresh_process(tmp_path)
    assert embedded["EMAIL_BACKEND"] == (
        "django.core.mail.backends.filebased.EmailBackend"
    )
    assert embedded["EMAIL_FILE_PATH"] == str(tmp_path / "mail")

    smtp = _settings_in_a_fresh_process(
        tmp_path, EMAIL_URL="smtp+tls://bpmos:secret@smtp.plant.example:587"
    )
    assert smtp["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"]) == ("smtp.plant.example", 587)
    assert (smtp["EMAIL_HOST_USER"], smtp["EMAIL_USE_TLS"]) == ("bpmos", True)


# --- the beat PeriodicTask ------------------------------------------------------------


def test_schedule_sync_creates_updates_and_disables_the_periodic_task(owner):
    every_hour = CrontabSchedule.objects.create(minute="5", hour="*", timezone="UTC")
    schedule = make_schedule(owner, every_hour)

    task = mailing.schedule_sync(schedule)

    assert task.name == f"compliance-return:{schedule.pk}"
    assert task.task == "compliance.tasks_mailing.scheduled_return_send_task"
    assert task.task in celery_app.tasks
    assert json.loads(task.kwargs) == {"schedule_id": schedule.pk}
    assert (task.crontab, task.enabled) == (every_hour, True)
    schedule.refresh_from_db()
    assert schedule.periodic_task == task
    # Beat's DatabaseScheduler (CELERY_BEAT_SCHEDULER) runs it.
    beat = DatabaseScheduler(app=celery_app, lazy=True)
    entry = beat.all_as_schedule()[task.name]
    assert (entry.task, entry.kwargs) == (task.task, {"schedule_id": schedule.pk})

    schedule.enabled = False
    schedule.save()
    again = mailing.schedule_sync(schedule)

    assert again.pk == task.pk
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False
    assert (
        task.name not in DatabaseScheduler(app=celery_app, lazy=True).all_as_schedule()
    )

    mailing.schedule_unsync(schedule)
    assert not PeriodicTask.objects.filter(name=task.name).exists()


# --- the admin ------------------------------------------------------------------------


def _form(crontab, **changes) -> dict:
    return {
        "name": "CPCB quarterly",
        "period": "previous_quarter",
        "recipients": "epr@cpcb.example,compliance@plant.example",
        "format": "csv",
        "schema": "",
        "crontab": str(crontab.pk),
        "enabled": "on",
        "deliveries-TOTAL_FORMS": "0",
        "deliveries-INITIAL_FORMS": "0",
    } | changes


def test_the_admin_refuses_bad_recipients(client, owner, crontab):
    client.force_login(owner)
    response = client.post(
        reverse("admin:compliance_scheduledreturn_add"),
        _form(crontab, recipients="epr@cpcb.example, nobody"),
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "recipients": ['"nobody" is not an e-mail address.']
    }
    assert not ScheduledReturn.objects.exists()
    assert not PeriodicTask.objects.filter(
        name__startswith="compliance-return"
    ).exists()


def test_the_admin_saves_a_schedule_with_its_periodic_task(client, owner, crontab):
    client.force_login(owner)
    response = client.post(
        reverse("admin:compliance_scheduledreturn_add"),
        _form(crontab, recipients=" epr@cpcb.example ;compliance@plant.example "),
    )
    assert response.status_code == 302
    schedule = ScheduledReturn.objects.get()
    assert schedule.owner == owner
    assert schedule.recipients == "epr@cpcb.example, compliance@plant.example"
    task = PeriodicTask.objects.get(name=f"compliance-return:{schedule.pk}")
    assert schedule.periodic_task == task
    assert (task.crontab, task.enabled) == (crontab, True)
    assert AuditRecord.objects.filter(
        action="compliance.scheduledreturn.admin_created",
        target_id=str(schedule.pk),
        actor_id=owner.pk,
    ).exists()

    change = reverse("admin:compliance_scheduledreturn_change", args=[schedule.pk])
    response = client.post(change, _form(crontab, enabled=""))
    assert response.status_code == 302
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False

    delete = reverse("admin:compliance_scheduledreturn_delete", args=[schedule.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not ScheduledReturn.objects.exists()
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_send_now_mails_the_return_and_the_deliveries_show(
    client,
    smtp_server,
    eager,
    owner,
    crontab,
    pack_schema,
    dispatched_packs,
    django_capture_on_commit_callbacks,
):
    schedule = make_schedule(owner, crontab, period="previous_month")
    client.force_login(owner)
    changelist = reverse("admin:compliance_scheduledreturn_changelist")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist,
            {"action": "send_now", "_selected_action": [str(schedule.pk)]},
        )

    assert response.status_code == 302
    [message] = smtp_server.messages()
    assert attachment_of(message)[0].endswith(".csv")
    [delivery] = EmailDelivery.objects.all()
    assert delivery.status == "sent"
    listing = client.get(
        reverse("admin:compliance_emaildelivery_changelist"), {"status__exact": "sent"}
    )
    assert [row.pk for row in listing.context["cl"].result_list] == [delivery.pk]
    page = client.get(
        reverse("admin:compliance_scheduledreturn_change", args=[schedule.pk])
    )
    assert delivery.attachment_name in page.content.decode()


def test_auditors_read_but_do_not_write_schedules(
    client, make_user, owner, crontab, eager, django_capture_on_commit_callbacks
):
    schedule = make_schedule(owner, crontab)
    client.force_login(make_user("auditor", is_staff=True))
    change = reverse("admin:compliance_scheduledreturn_change", args=[schedule.pk])
    assert client.get(change).status_code == 200
    assert client.get(reverse("admin:compliance_scheduledreturn_add")).status_code == (
        403
    )
    assert client.post(change, _form(crontab, name="Renamed")).status_code == 403
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = client.post(
            reverse("admin:compliance_scheduledreturn_changelist"),
            {"action": "send_now", "_selected_action": [str(schedule.pk)]},
        )
    # Not an action an auditor is offered: back to the list, nothing run.
    assert response.status_code in {200, 302}
    assert queued == []
    assert not EmailDelivery.objects.exists()
    assert ScheduledReturn.objects.get().name == "CPCB monthly"


def test_nobody_edits_a_delivery(client, owner, crontab):
    schedule = make_schedule(owner, crontab)
    delivery = EmailDelivery.objects.create(
        schedule=schedule, status="sent", recipients="a@b.example", subject="S"
    )
    client.force_login(owner)
    assert client.get(reverse("admin:compliance_emaildelivery_add")).status_code == 403
    change = reverse("admin:compliance_emaildelivery_change", args=[delivery.pk])
    assert client.post(change, {"status": "failed"}).status_code == 403
    assert EmailDelivery.objects.get().status == "sent"


def test_an_owner_who_may_no_longer_approve_stops_the_sends(
    smtp_server, eager, owner, crontab, pack_schema, dispatched_packs
):
    schedule = make_schedule(owner, crontab)
    owner.role = "planner"
    owner.apply_role_flags()
    owner.save()

    result = tasks_mailing.scheduled_return_send_task.apply(
        kwargs={"schedule_id": schedule.pk}
    )

    assert result.get() == "failed"
    [delivery] = EmailDelivery.objects.all()
    assert (delivery.attempt, delivery.status) == (1, "failed")
    assert delivery.error.startswith(
        "The schedule's owner compliance-admin may no longer approve a return"
    )
    assert not ComplianceReturn.objects.exists()
    assert smtp_server.envelopes == []


def test_an_admin_saving_a_schedule_takes_it_over(client, make_user, owner, crontab):
    schedule = make_schedule(owner, crontab)
    other = make_user("admin", username="second-admin")
    client.force_login(other)

    change = reverse("admin:compliance_scheduledreturn_change", args=[schedule.pk])
    response = client.post(change, _form(crontab, name="CPCB monthly"))

    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.owner == other
    [audit] = AuditRecord.objects.filter(
        action="compliance.scheduledreturn.owner_changed"
    )
    assert (audit.actor_id, audit.before, audit.after) == (
        other.pk,
        {"owner": "compliance-admin"},
        {"owner": "second-admin"},
    )
