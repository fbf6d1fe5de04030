"""Scheduled compliance returns by email (docs/compliance.md, "Scheduled
compliance emails").

An admin schedules a return in the Django admin (``ScheduledReturn``: a period,
recipients, a format and a django-celery-beat crontab). ``schedule_sync`` keeps
one django-celery-beat ``PeriodicTask`` per schedule, so beat's
``DatabaseScheduler`` runs ``compliance.tasks_mailing.scheduled_return_send_task``
on the crontab. Each run builds the return for the period, approves it as the
schedule's owner, renders the attachment and mails it through Django's email
(SMTP from ``EMAIL_URL``; files under ``DATA_DIR/mail`` in the embedded
default). Each attempt is one ``EmailDelivery`` row and one audit record; a
failure the mail server may get over (refused connection, timeout, a 4xx
answer) is retried by the task with a backoff, the rest fail at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import smtplib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email import encoders
from email.mime.base import MIMEBase

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from bpmos import access
from bpmos.errors import DomainError, Forbidden, InvalidInput
from compliance import epr, returns
from compliance.models import (
    ComplianceReturn,
    CsvSchema,
    DeliveryStatus,
    EmailDelivery,
    ReturnStatus,
    ScheduledReturn,
    ScheduleFormat,
    SchedulePeriod,
    SchemaLevel,
)
from compliance.periods import Period, fy_label, fy_of, fy_period, local_date
from compliance.reports.base import Param
from compliance.reports.catalog import EPRReturn
from compliance.reports.pdf import report_pdf
from elog import audit

TASK_NAME = "compliance.tasks_mailing.scheduled_return_send_task"
# Attempts per send: the first and up to five retries (the task's max_retries).
MAX_ATTEMPTS = 6
MAX_RECIPIENTS = 50
_SEPARATORS = re.compile(r"[,;\s]+")


def periodic_task_name(schedule_id: int) -> str:
    """The django-celery-beat row that runs a schedule (one per schedule)."""
    return f"compliance-return:{schedule_id}"


# --- recipients ---------------------------------------------------------------------


def recipients_parse(text: str) -> list[str]:
    """The addresses of a recipients field: comma (or semicolon, space, new
    line) separated, each checked by Django's ``validate_email``, duplicates
    dropped in order. InvalidInput (``details["recipients"]``) names each bad
    one; none at all is refused too."""
    found: list[str] = []
    problems: list[str] = []
    for part in _SEPARATORS.split(text or ""):
        address = part.strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            problems.append(f'"{address[:100]}" is not an e-mail address.')
            continue
        if address.lower() not in {known.lower() for known in found}:
            found.append(address)
    if not problems and not found:
        problems.append("Name at least one e-mail address.")
    if len(found) > MAX_RECIPIENTS:
        problems.append(f"At most {MAX_RECIPIENTS} addresses.")
    if problems:
        raise InvalidInput(
            "The recipients are not all e-mail addresses.",
            details={"recipients": problems},
        )
    return found


# --- the period a run reports ---------------------------------------------------------


def period_for(period: str, now: datetime) -> Period:
    """The days a schedule's return covers when it runs at ``now``, in plant
    time (``BPMOS_PLANT_TIMEZONE``):

    * ``previous_month``: the calendar month before the current one;
    * ``previous_quarter``: the FY quarter before the current one (FY quarters
      are Apr-Jun, Jul-Sep, Oct-Dec and Jan-Mar);
    * ``previous_fy``: the financial year before the current one;
    * ``fy_to_date``: from 1 April to the last complete day (yesterday); run on
      1 April, that is the whole year just ended.
    """
    today = local_date(now)
    if period == SchedulePeriod.PREVIOUS_MONTH:
        last = today.replace(day=1) - timedelta(days=1)
        return Period(last.replace(day=1), last)
    if period == SchedulePeriod.PREVIOUS_QUARTER:
        # FY quarters start in April, July, October and January: calendar quarters.
        quarter_start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        last = quarter_start - timedelta(days=1)
        return Period(date(last.year, last.month - 2, 1), last)
    if period == SchedulePeriod.PREVIOUS_FY:
        start_year = int(fy_of(today)[:4]) - 1
        return fy_period(fy_label(start_year))
    if period == SchedulePeriod.FY_TO_DATE:
        yesterday = today - timedelta(days=1)
        return Period(fy_period(fy_of(yesterday)).first, yesterday)
    raise InvalidInput(
        f'Unknown schedule period "{period}".',
        details={"period": [f"One of {', '.join(SchedulePeriod.values)}."]},
    )


# --- the PeriodicTask behind a schedule ---------------------------------------------


@transaction.atomic
def schedule_sync(schedule: ScheduledReturn) -> PeriodicTask:
    """Create or update the schedule's django-celery-beat ``PeriodicTask``
    (named ``compliance-return:<id>``, its crontab, enabled as the schedule
    is), and link it to the schedule. Beat's DatabaseScheduler notices the
    change (django-celery-beat bumps its change marker on save)."""
    name = periodic_task_name(schedule.pk)
    task = PeriodicTask.objects.select_for_update().filter(
        name=name
    ).first() or PeriodicTask(name=name)
    task.task = TASK_NAME
    task.crontab = schedule.crontab
    task.interval = task.solar = task.clocked = None
    task.kwargs = json.dumps({"schedule_id": schedule.pk})
    task.args = "[]"
    task.enabled = schedule.enabled
    task.one_off = False
    task.description = f"Scheduled compliance return: {schedule.name}"[:200]
    task.save()
    if schedule.periodic_task_id != task.pk:
        ScheduledReturn.objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task
    return task


@transaction.atomic
def schedule_unsync(schedule: ScheduledReturn) -> None:
    """Remove the schedule's ``PeriodicTask`` (the schedule is being deleted),
    so beat stops running it."""
    PeriodicTask.objects.filter(name=periodic_task_name(schedule.pk)).delete()


# --- one send -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str
    ret: ComplianceReturn

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def mime_part(self) -> MIMEBase:
        """The file as a base64 MIME part: the recipient gets exactly these
        bytes (a text/* part sent as text may have its line ends rewritten on
        the way), so the SHA-256 in the mail's body checks."""
        maintype, subtype = self.mimetype.split("/", 1)
        # The CSV is UTF-8 (bpmos.csvsafe); say so, or a reader guesses.
        params = {"charset": "utf-8"} if maintype == "text" else {}
        part = MIMEBase(maintype, subtype, **params)
        part.set_payload(self.content)
        encoders.encode_base64(part)
        part.add_header("Content-Disposition", "attachment", filename=self.filename)
        return part


def _schema_for(schedule: ScheduledReturn) -> CsvSchema:
    if schedule.schema_id is not None:
        return schedule.schema
    schema = CsvSchema.objects.filter(level=SchemaLevel.PACK, is_default=True).first()
    if schema is None:
        raise InvalidInput(
            "No CSV schema: the schedule names none and there is no default "
            "pack-level schema.",
            details={"schema": ["Choose a CSV schema."]},
        )
    return schema


def _owner_check(schedule: ScheduledReturn) -> None:
    """The owner approves what is sent: refused before anything is built when
    they may no longer approve a return (deactivated, or no longer a
    supervisor, plant head or admin). An admin saving the schedule in the
    admin takes it over."""
    owner = schedule.owner
    if not owner.is_active or owner.role not in access.SUPERVISORS:
        raise Forbidden(
            f"The schedule's owner {owner.get_username()} may no longer approve "
            "a return (deactivated or role changed); an admin saving the "
            "schedule in the admin becomes its owner.",
            code="permission_denied",
        )


def _return_for(
    schedule: ScheduledReturn, period: Period, return_id: int | None
) -> ComplianceReturn:
    """The approved return a send attaches: the one an earlier attempt of the
    same run built (a retry never builds a second), or a new one for the
    period, built and approved as the schedule's owner."""
    if return_id is not None:
        ret = ComplianceReturn.objects.filter(pk=return_id).first()
        if ret is not None and ret.status == ReturnStatus.APPROVED:
            return ret
    _owner_check(schedule)
    ret = returns.return_build(
        period=period,
        actor=schedule.owner,
        note=f"Scheduled return: {schedule.name}"[:300],
    )
    return returns.return_approve(return_id=ret.pk, actor=schedule.owner)


class ReturnDocument(EPRReturn):
    """The EPR return report (``compliance.reports.catalog.EPRReturn``) over
    an approved return's frozen rows and figures instead of live ones: the
    PDF shows exactly what was approved, as the CSV does."""

    params = (
        Param("period", "string", "Period (plant time)"),
        Param("returnId", "string", "Return"),
        Param("approvedBy", "string", "Approved by"),
    )

    def __init__(self, ret: ComplianceReturn) -> None:
        self.ret = ret
        self.title = f"Compliance return {ret.pk}: {_span(ret)}"

    def params_for_pdf(self) -> dict[str, str]:
        ret = self.ret
        approver = ret.approved_by.get_username() if ret.approved_by else ""
        return {
            "fy": _span(ret),  # the base report's chart title names it
            "period": f"{ret.period_start} to {ret.period_end}",
            "returnId": str(ret.pk),
            "approvedBy": f"{approver} ({ret.approved_role})" if approver else "",
        }

    def _facts(self, params) -> list[epr.PackFact]:
        return [
            epr.PackFact(
                passport_id=line.passport_id,
                event=line.event,
                occurred_at=line.occurred_at,
                serial=line.serial,
                bpan=line.bpan,
                model=line.model,
                category=line.category or None,
                chemistry=line.chemistry,
                mass_kg=line.mass_kg,
                custodian=line.custodian,
            )
            # Line ids keep the order the return was built (and hashed) in.
            for line in self.ret.lines.order_by("id")
        ]

    def _figures(self, params) -> dict:
        return self.ret.figures

    def charts(self, params):
        charts = super().charts(params)
        for chart in charts:
            chart.title = f"EPR {_span(self.ret)}: against the obligations"
        return charts


def _span(ret: ComplianceReturn) -> str:
    if ret.financial_year:
        return f"FY {ret.financial_year}"
    return f"{ret.period_start} to {ret.period_end}"


def _pdf(ret: ComplianceReturn) -> bytes:
    document = ReturnDocument(ret)
    return report_pdf(document, document.params_for_pdf())


def attachment_for(
    schedule: ScheduledReturn, period: Period, *, return_id: int | None = None
) -> Attachment:
    """The file a send attaches: the approved return for ``period`` in the
    schedule's format (CSV in the schedule's schema, or the default pack-level
    one)."""
    ret = _return_for(schedule, period, return_id)
    stem = f"compliance-return-{ret.period_start}-to-{ret.period_end}-{ret.pk}"
    if schedule.format == ScheduleFormat.PDF:
        return Attachment(f"{stem}.pdf", _pdf(ret), "application/pdf", ret)
    schema = _schema_for(schedule)
    # A mailed CSV is an export like any other: counted on the return and
    # audited as compliance_export (source "email"), by the schedule's owner.
    export = returns.return_export(
        return_id=ret.pk, schema_slug=schema.slug, actor=schedule.owner, source="email"
    )
    return Attachment(f"{stem}-{schema.slug}.csv", export.content, "text/csv", ret)


def _subject(schedule: ScheduledReturn, period: Period) -> str:
    span = period.financial_year or f"{period.first} to {period.last}"
    return f"Compliance return {span}: {schedule.name}"[:200]


def _body(schedule: ScheduledReturn, period: Period, attachment: Attachment) -> str:
    ret = attachment.ret
    approver = (ret.approved_by or schedule.owner).get_username()
    return (
        f"The compliance return of {period.first} to {period.last} (plant time"
        f"{', FY ' + period.financial_year if period.financial_year else ''}) "
        f'is attached, as scheduled in BPM-OS ("{schedule.name}").\n\n'
        f"Return: {ret.pk}, {ret.row_count} pack rows, approved by "
        f"{approver}.\n"
        f"Attachment: {attachment.filename}, SHA-256 {attachment.checksum}.\n"
    )


def _is_transient(error: Exception) -> bool:
    """May a later attempt succeed? Connection trouble, timeouts and 4xx
    answers may pass; a 5xx answer (bad mailbox, refused sender) will not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return any(code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code < 500
    return isinstance(error, smtplib.SMTPException | OSError)


def _describe(error: Exception) -> str:
    if isinstance(error, DomainError):
        details = "; ".join(
            f"{field}: {' '.join(map(str, msgs if isinstance(msgs, list) else [msgs]))}"
            for field, msgs in (error.details or {}).items()
        )
        return f"{error.message} ({details})" if details else error.message
    return f"{type(error).__name__}: {error}"[:2000]


def _finish(
    delivery: EmailDelivery,
    schedule: ScheduledReturn,
    *,
    status: str,
    error: str = "",
) -> EmailDelivery:
    """Record an attempt's outcome: the delivery row, the schedule's last
    status, and the audit record, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        delivery.status = status
        delivery.error = error
        fields = ["status", "error", "ret", "attachment_name", "checksum"]
        if status == DeliveryStatus.SENT:
            delivery.sent_at = now
            fields.append("sent_at")
        delivery.save(update_fields=fields)
        changes: dict = {"last_status": status}
        if status == DeliveryStatus.SENT:
            changes["last_sent_at"] = now
        ScheduledReturn.objects.filter(pk=schedule.pk).update(**changes)
        audit.record(
            actor=schedule.owner,
            action=(
                "compliance_email_sent"
                if status == DeliveryStatus.SENT
                else "compliance_email_failed"
            ),
            target=schedule,
            after={
                "delivery": delivery.pk,
                "attempt": delivery.attempt,
                "status": status,
                "recipients": delivery.recipients,
                "subject": delivery.subject,
                "return": delivery.ret_id,
                "attachment": delivery.attachment_name,
                "checksum": delivery.checksum,
                "error": error,
            },
        )
    return delivery


def scheduled_send(
    *,
    schedule_id: int,
    attempt: int = 1,
    max_attempts: int = MAX_ATTEMPTS,
    return_id: int | None = None,
    now: datetime | None = None,
) -> EmailDelivery | None:
    """One attempt to mail a schedule's return; None when the schedule is gone
    (its beat task is then deleted too).

    Records an ``EmailDelivery`` (``sending`` before the mail server is asked,
    then ``sent``, ``retrying`` or ``failed`` with the error), updates the
    schedule's last status, and audits the attempt as the schedule's owner
    (``compliance_email_sent`` / ``compliance_email_failed``). ``retrying``
    means a later attempt may succeed (the caller retries, passing the
    delivery's ``ret_id`` so the same return is sent); at ``max_attempts`` it
    is ``failed``. Building or rendering the return failing is ``failed`` at
    once: retrying would fail the same way.
    """
    schedule = (
        ScheduledReturn.objects.select_related("owner", "schema")
        .filter(pk=schedule_id)
        .first()
    )
    if schedule is None:
        # Deleted outside the admin: stop beat from running its task for ever.
        PeriodicTask.objects.filter(name=periodic_task_name(schedule_id)).delete()
        return None
    delivery = EmailDelivery.objects.create(
        schedule=schedule,
        attempt=attempt,
        status=DeliveryStatus.SENDING,
        recipients=schedule.recipients[:2000],
        subject=f"Compliance return: {schedule.name}"[:200],
    )
    try:
        period = _period_of_run(schedule, return_id, now or timezone.now())
        delivery.subject = _subject(schedule, period)
        recipients = recipients_parse(schedule.recipients)
        delivery.recipients = ", ".join(recipients)
        delivery.save(update_fields=["subject", "recipients"])
        attachment = attachment_for(schedule, period, return_id=return_id)
    except Exception as error:
        # Building or rendering: retrying would fail the same way.
        _finish(
            delivery, schedule, status=DeliveryStatus.FAILED, error=_describe(error)
        )
        if not isinstance(error, DomainError):
            raise
        return delivery
    delivery.ret = attachment.ret
    delivery.attachment_name = attachment.filename
    delivery.checksum = attachment.checksum
    message = EmailMessage(
        subject=delivery.subject,
        body=_body(schedule, period, attachment),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        connection=get_connection(fail_silently=False),
    )
    message.attach(attachment.mime_part())
    try:
        message.send()
    except Exception as error:  # only mail errors are retried; see below
        if not isinstance(error, smtplib.SMTPException | OSError):
            _finish(
                delivery, schedule, status=DeliveryStatus.FAILED, error=_describe(error)
            )
            raise
        retry = _is_transient(error) and attempt < max_attempts
        return _finish(
            delivery,
            schedule,
            status=DeliveryStatus.RETRYING if retry else DeliveryStatus.FAILED,
            error=_describe(error),
        )
    return _finish(delivery, schedule, status=DeliveryStatus.SENT)


def _period_of_run(
    schedule: ScheduledReturn, return_id: int | None, now: datetime
) -> Period:
    """A retry reports the period of the return its first attempt built."""
    earlier = (
        ComplianceReturn.objects.filter(pk=return_id).first()
        if return_id is not None
        else None
    )
    if earlier is not None:
        return Period(earlier.period_start, earlier.period_end)
    return period_for(schedule.period, now)


def retry_delay(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 1, 2, 4, 8, 16 minutes."""
    return min(60 * 2**retries, 3600)
