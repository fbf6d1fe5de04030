"""Compliance: the tables behind EPR, the "Aadhaar Ready %" score, the
regulator's returns and their CSV layouts, scheduled compliance emails, and
report jobs (docs/compliance.md).

Business rules live in one module per area, never here:

* ``compliance.categories`` and ``compliance.epr_schedule``: which BWMR category
  each product model is, and the rules' targets per financial year;
* ``compliance.epr``: mass placed on the market, collected, recycled, the gap;
* ``compliance.score``: the Aadhaar Ready % (the validator itself is
  ``passports.conformity``, reused by the passport API);
* ``compliance.returns``: build, approve and export a return (CSV schemas,
  CSV-injection escaping, the ``compliance_export`` audit row);
* ``compliance.mailing``: scheduled returns by email (django-celery-beat);
* ``compliance.reports``: the report registry, previews, CSV and PDF downloads
  and long-running report jobs.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Category(models.TextChoices):
    """Battery categories of the Battery Waste Management Rules 2022, rule 3(1)."""

    PORTABLE = "portable", "Portable"
    AUTOMOTIVE = "automotive", "Automotive"
    INDUSTRIAL = "industrial", "Industrial"
    EV = "ev", "Electric vehicle"


class CategoryDeclaration(models.Model):
    """The one place that says which BWMR category a product model belongs to.

    A passport's category is derived from its ``model`` through this table; a
    model with no declaration is reported as undeclared, never guessed."""

    model = models.CharField(
        max_length=64, unique=True, help_text="Product / model code of passports."
    )
    category = models.CharField(max_length=12, choices=Category.choices)
    note = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return f"{self.model} → {self.get_category_display()}"


class ScoreSnapshot(models.Model):
    """One computation of the Aadhaar Ready % (Celery beat writes one; the
    API reads the newest, never scanning passports per request)."""

    computed_at = models.DateTimeField(db_index=True)
    total = models.PositiveIntegerField()
    ready = models.PositiveIntegerField()
    # {"cell": {"total": n, "ready": m}, "module": {...}, "pack": {...}}
    per_kind = models.JSONField(default=dict)
    # [{"rule": "bpan.check", "message": "...", "count": n}, ...] most frequent first
    failing_rules = models.JSONField(default=list)
    # Completeness of the EU attribute set (passports.attributes, the same
    # validator): {"complete": n, "percentSum": x, "perCategory": {category or
    # "undeclared": {"total", "complete"}}, "missing": [{"key", "count"}, ...]}
    completeness = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"Score {self.ready}/{self.total} at {self.computed_at:%Y-%m-%d %H:%M}"


class SchemaLevel(models.TextChoices):
    SUMMARY = "summary", "One row per category (EPR figures)"
    PACK = "pack", "One row per pack (the rows behind the figures)"


class CsvSchema(models.Model):
    """A regulator CSV layout: which columns, in which order, with which
    headers. Admins edit them; the CPCB defaults ship in a data migration.
    ``columns`` is ``[{"header": "...", "field": "..."}]`` where ``field`` is
    one of ``compliance.returns.SUMMARY_FIELDS`` or ``PACK_FIELDS`` (by level)."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=120)
    level = models.CharField(max_length=10, choices=SchemaLevel.choices)
    columns = models.JSONField(default=list)
    is_default = models.BooleanField(
        default=False, help_text="Used when an export names no schema (one per level)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["level"],
                condition=models.Q(is_default=True),
                name="csv_schema_one_default_per_level",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ReturnStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"


class ComplianceReturn(models.Model):
    """A compliance return for a period: the EPR figures and the per-pack rows
    behind them, frozen when built. Only an approved return is exported."""

    period_start = models.DateField(help_text="First day (plant time).")
    period_end = models.DateField(help_text="Last day, inclusive (plant time).")
    financial_year = models.CharField(
        max_length=7, blank=True, help_text='"2026-27" when the period is one FY.'
    )
    status = models.CharField(
        max_length=10, choices=ReturnStatus.choices, default=ReturnStatus.DRAFT
    )
    # compliance.epr figures per category, as JSON (strings for decimals).
    figures = models.JSONField(default=dict)
    row_count = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the figures and rows as built."
    )
    built_at = models.DateTimeField()
    built_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    approved_role = models.CharField(max_length=20, blank=True)
    export_count = models.PositiveIntegerField(default=0)
    last_exported_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-built_at", "-id"]

    def __str__(self) -> str:
        span = f"{self.period_start}..{self.period_end}"
        return f"Return {self.pk} {span} ({self.status})"


class ReturnEvent(models.TextChoices):
    PLACED = "placed", "Placed on the market (first dispatch)"
    COLLECTED = "collected", "Collected back (end of life)"
    RECYCLED = "recycled", "Recycled"


class ReturnLine(models.Model):
    """One pack row of a return, as it was when the return was built."""

    ret = models.ForeignKey(
        ComplianceReturn, on_delete=models.CASCADE, related_name="lines"
    )
    passport = models.ForeignKey(
        "passports.Passport", on_delete=models.PROTECT, related_name="+"
    )
    event = models.CharField(max_length=10, choices=ReturnEvent.choices)
    occurred_at = models.DateTimeField()
    serial = models.CharField(max_length=64)
    bpan = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=64)
    category = models.CharField(
        max_length=12, blank=True, help_text="Blank: the model has no declaration."
    )
    chemistry = models.CharField(max_length=8)
    mass_kg = models.DecimalField(max_digits=8, decimal_places=3, null=True)
    custodian = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["ret_id", "event", "occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.ret_id}: {self.serial} {self.event}"


class SchedulePeriod(models.TextChoices):
    PREVIOUS_MONTH = "previous_month", "The previous calendar month"
    PREVIOUS_QUARTER = "previous_quarter", "The previous FY quarter"
    PREVIOUS_FY = "previous_fy", "The previous financial year"
    FY_TO_DATE = "fy_to_date", "The financial year to date"


class ScheduleFormat(models.TextChoices):
    CSV = "csv", "CSV (the return, in the schema's layout)"
    PDF = "pdf", "PDF (the EPR return report)"


class ScheduledReturn(models.Model):
    """A return an admin schedules: built by Celery beat for a period and
    mailed to recipients as an attachment. The admin who schedules it is the
    approver of what it sends (recorded on each return it builds)."""

    name = models.CharField(max_length=120, unique=True)
    period = models.CharField(max_length=20, choices=SchedulePeriod.choices)
    recipients = models.TextField(help_text="E-mail addresses, comma separated.")
    format = models.CharField(
        max_length=3, choices=ScheduleFormat.choices, default=ScheduleFormat.CSV
    )
    schema = models.ForeignKey(
        CsvSchema,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="CSV layout (blank: the default pack-level schema).",
    )
    crontab = models.ForeignKey(
        "django_celery_beat.CrontabSchedule",
        on_delete=models.PROTECT,
        help_text="When to send (django-celery-beat crontab).",
    )
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who scheduled it: the approver of every return it sends.",
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed (retries exhausted)"


class EmailDelivery(models.Model):
    """One attempt to mail a scheduled return (shown in the admin)."""

    schedule = models.ForeignKey(
        ScheduledReturn, on_delete=models.CASCADE, related_name="deliveries"
    )
    ret = models.ForeignKey(
        ComplianceReturn,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    recipients = models.TextField()
    subject = models.CharField(max_length=200)
    attachment_name = models.CharField(max_length=200, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # GET /api/logs: the newest failed e-mails before a cursor.
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(status__in=["retrying", "failed"]),
                name="compliance_email_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} attempt {self.attempt}: {self.status}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ReportJob(models.Model):
    """A report rendered by a Celery worker (long reports): a client polls its
    progress and downloads the file when it is done."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    report_id = models.CharField(max_length=50)
    params = models.JSONField(default=dict)
    format = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    progress = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.report_id} ({self.format}) {self.status}"
