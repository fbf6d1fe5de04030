"""The audit log: append-only, hash-chained records of every write."""

from django.conf import settings
from django.db import models

from bpmos.auditkeys import KEY_ID_MAX_LENGTH


class AuditRecord(models.Model):
    """One write: who did what to which object, from where, with before/after.

    Records form a chain: ``seq`` counts from 1 without gaps and ``prev_hash``
    is the previous record's ``hash``; ``hash`` is an HMAC-SHA256 (key from
    ``BPMOS_AUDIT_KEY``) over this record's content and ``prev_hash``, so an
    altered, removed or inserted record breaks the chain where it happened and
    someone with database access but not the key cannot re-forge it. Database
    triggers refuse UPDATE and DELETE (migration 0002, PostgreSQL and SQLite);
    the application offers neither (see ``elog.audit``).
    ``elog.services.audit_chain_verify`` walks the chain. ``key_id`` names the
    key of the audit keyring that made ``hash`` (``bpmos/auditkeys.py``), so the
    key can be rotated; it is not itself hashed (the hash was made before the
    column existed), but a changed ``key_id`` makes the record fail under the
    key it names, or name no key at all (unverifiable).
    """

    seq = models.PositiveBigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # a user with history is deactivated, never deleted
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True, db_index=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    source = models.CharField(max_length=20, default="system")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    key_id = models.CharField(
        max_length=KEY_ID_MAX_LENGTH,
        help_text="Id of the audit key that signed this record (bpmos/auditkeys.py).",
    )

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_repr}"


class AuditPending(models.Model):
    """An audit record written while another transaction held the audit
    chain's lock, waiting to be chained (``elog.audit``, "Staged records").

    The same content as an ``AuditRecord`` without its place in the chain
    (``seq``, ``prev_hash``, ``hash``): ``mac`` is an HMAC-SHA256 over that
    content (``audit.compute_hash`` with seq 0 and prev_hash "pending"), made
    with the audit key ``key_id`` names. ``audit.seal_pending`` moves rows into
    the chain, in id order, right after their transaction commits (and a beat
    task sweeps what a crash left), checking each ``mac`` first: a row whose
    content no longer matches is never chained, and stays here for the
    auditor to see."""

    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    source = models.CharField(max_length=20, default="system")
    mac = models.CharField(max_length=64)
    key_id = models.CharField(max_length=KEY_ID_MAX_LENGTH)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "audit records pending"

    def __str__(self) -> str:
        return f"pending {self.action} {self.target_repr}"


class ShiftLogEntryType(models.TextChoices):
    """What a shift-log entry records. The first three are the connectors
    contract's auto-entries (written by the services that do those things);
    ``handover_ack`` is written by the acknowledge action; the rest by people
    through ``POST /api/logs/write``."""

    READINGS_APPROVED = "readings_approved", "Readings approved"
    WORK_ORDER_CREATED = "work_order_created", "Work order created"
    ALARM_ACKNOWLEDGED = "alarm_acknowledged", "Alarm acknowledged"
    NOTE = "note", "Note"
    HANDOVER = "handover", "Shift handover"
    HANDOVER_ACK = "handover_ack", "Handover acknowledged"
    CORRECTION = "correction", "Correction"
    INCIDENT = "incident", "Incident"
    SAFETY = "safety", "Safety"
    QUALITY = "quality", "Quality"
    MAINTENANCE = "maintenance", "Maintenance"


class ShiftLogEntry(models.Model):
    """One entry of the electronic shift log: immutable, like the audit log.

    Database triggers refuse UPDATE and DELETE (migration 0004, PostgreSQL and
    SQLite); a mistake is corrected by a new ``correction`` entry whose
    ``corrects`` names the entry it corrects, and a handover is acknowledged
    by a new ``handover_ack`` entry whose ``acknowledges`` names it (at most
    one each: the unique constraint). ``shift_start``/``shift_end`` is the
    shift of the plant's calendar (the one OEE uses, ``elog.shifts``) that
    ``created_at`` falls in. ``operator`` is null for the system's own
    auto-entries (a beat task's LIMS fetch).
    """

    plant_id = models.CharField(max_length=50)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # a user with history is deactivated, never deleted
        related_name="+",
    )
    operator_name = models.CharField(max_length=150)
    entry_type = models.CharField(max_length=30, choices=ShiftLogEntryType.choices)
    body = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    line = models.CharField(max_length=50, blank=True, help_text="A line's slug.")
    shift_start = models.DateTimeField()
    shift_end = models.DateTimeField()
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    corrects = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="corrections",
    )
    acknowledges = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="acknowledgement",
    )
    automatic = models.BooleanField(default=False)
    source = models.CharField(max_length=20, default="system")
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "shift log entries"
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="elog_shiftlog_newest"),
            models.Index(fields=["shift_start"], name="elog_shiftlog_shift"),
            models.Index(
                fields=["entry_type", "-created_at"], name="elog_shiftlog_type"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(entry_type="correction", corrects__isnull=False)
                    | (
                        ~models.Q(entry_type="correction")
                        & models.Q(corrects__isnull=True)
                    )
                ),
                name="elog_shiftlog_correction_references",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(entry_type="handover_ack", acknowledges__isnull=False)
                    | (
                        ~models.Q(entry_type="handover_ack")
                        & models.Q(acknowledges__isnull=True)
                    )
                ),
                name="elog_shiftlog_ack_references",
            ),
            models.CheckConstraint(
                condition=models.Q(shift_end__gt=models.F("shift_start")),
                name="elog_shiftlog_shift_window",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.entry_type} by {self.operator_name}"


class SignatureMeaning(models.TextChoices):
    """What a signer means by signing (21 CFR 11.50(a)(3)): the steps that
    release a battery."""

    QA_RELEASE = "qa_release", "QA release"
    GATE_OVERRIDE = "gate_override", "Gate override"
    DISPATCH_RELEASE = "dispatch_release", "Dispatch release"


class ElectronicSignature(models.Model):
    """An electronic signature (21 CFR Part 11 style) bound to one record.

    The signer re-entered their password (``method`` "password", checked with
    Django's ``check_password``) at the moment of signing (11.200(a)). The
    signature shows the signer's printed name, the time and the meaning
    (11.50), and is linked to its record (11.70) by ``bound_hash``: the hash of
    the passport ledger event it signs, or the content hash of the gate change
    it authorises. ``hash`` is an HMAC-SHA256 (the audit keyring's key
    ``key_id``) over every other field, so a signature cannot be edited, or
    copied onto another record, by someone without the key. Append-only in the
    database (migration 0009's triggers).
    """

    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signer_username = models.CharField(max_length=150)
    signer_name = models.CharField(max_length=300)
    meaning = models.CharField(max_length=20, choices=SignatureMeaning.choices)
    method = models.CharField(max_length=20, default="password")
    signed_at = models.DateTimeField()
    record_type = models.CharField(max_length=100)
    record_id = models.CharField(max_length=64)
    bound_hash = models.CharField(max_length=64, db_index=True)
    hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=KEY_ID_MAX_LENGTH)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["record_type", "record_id"])]

    def __str__(self) -> str:
        return f"{self.get_meaning_display()} by {self.signer_username}"
