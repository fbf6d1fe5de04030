"""SCADA: connectors to the field (OPC UA, CMMS, LIMS), the tags that map a
connector's nodes to the plant, normalized readings, alert rules, alarms with
ISA-18.2 states, and the maintenance work orders sent to the CMMS.

The shapes follow the connectors contract (docs/contracts/
connectors-scada-cmms-compliance.md): ``ScadaReading`` (timestamp, tag_name,
value, unit, quality, alarm_state), ``AlarmEvent`` (timestamp, tag_name,
alarm_state, message, value) and the normalized maintenance work order
(asset_id, asset_name, description, priority, source_alarm_id,
created_by_system, assignee, scada_snapshot). Business rules live in
``scada.readings``, ``scada.alarms``, ``scada.maintenance`` and
``scada.quality``; this module only declares the tables.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from bpmos.transitions import StatusTransitions


class ConnectorKind(models.TextChoices):
    OPCUA = "opcua", "OPC UA"
    CMMS = "cmms", "CMMS (REST)"
    LIMS = "lims", "LIMS (REST)"


class ConnectorMode(models.TextChoices):
    POLL = "poll", "Poll"
    SUBSCRIBE = "subscribe", "Subscribe"


class CommState(models.TextChoices):
    """What the collector last knew of a connector's link to its server."""

    UNKNOWN = "unknown", "Unknown"
    OK = "ok", "OK"
    LOST = "lost", "Communication lost"


class Connector(models.Model):
    """A configured link to one field system (an OPC UA server, a CMMS, a LIMS).

    ``settings`` holds the kind's non-secret options (OPC UA security policy,
    CMMS path, LIMS results path, timeouts); ``credentials`` holds the secrets
    (user/password, an auth header) and is write-only in the API and the admin.
    The collector picks up a change through ``updated_at``.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ConnectorKind.choices)
    endpoint = models.CharField(
        max_length=500,
        help_text="opc.tcp://host:4840/path for OPC UA; the base URL for a REST system",
    )
    enabled = models.BooleanField(default=True)
    mode = models.CharField(
        max_length=10, choices=ConnectorMode.choices, default=ConnectorMode.POLL
    )
    poll_interval_s = models.PositiveIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(86_400)],
        help_text="Seconds between polls (poll mode) or the publishing interval "
        "(subscribe mode).",
    )
    settings = models.JSONField(default=dict, blank=True)
    credentials = models.JSONField(
        default=dict,
        blank=True,
        help_text="Secrets (username/password, auth header); never shown back.",
    )
    comm_state = models.CharField(
        max_length=10, choices=CommState.choices, default=CommState.UNKNOWN
    )
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class TagKind(models.TextChoices):
    """The reading a tag feeds: the machine ones go through lines ingestion."""

    STATE = "state", "Machine state"
    GOOD_COUNT = "good_count", "Good count"
    REJECT_COUNT = "reject_count", "Reject count"
    CYCLE_TIME = "cycle_time", "Cycle time"
    ANALOG = "analog", "Analog value"


class Quality(models.TextChoices):
    """OPC UA's three status classes (the same words as lines' readings)."""

    GOOD = "good", "Good"
    UNCERTAIN = "uncertain", "Uncertain"
    BAD = "bad", "Bad"


class Tag(models.Model):
    """One of a connector's nodes, named for the plant and mapped to what it feeds."""

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="tags"
    )
    node_id = models.CharField(max_length=500, help_text="e.g. ns=2;s=Line1.Temp")
    tag_name = models.CharField(
        max_length=64, unique=True, help_text="Plant-wide name: letters, digits _.:/-"
    )
    unit = models.CharField(max_length=16, blank=True)
    machine = models.ForeignKey(
        "lines.Machine",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="scada_tags",
    )
    kind = models.CharField(
        max_length=20, choices=TagKind.choices, default=TagKind.ANALOG
    )
    area = models.CharField(
        max_length=64,
        blank=True,
        help_text="Alarm area for flood detection; defaults to the machine's line.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["tag_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "node_id"], name="scada_tag_connector_node"
            )
        ]

    def __str__(self) -> str:
        return self.tag_name


class AlarmFlag(models.TextChoices):
    """A reading's ``alarm_state`` (the contract's field): did a rule see it as
    outside its limits when it was stored."""

    NORMAL = "normal", "Normal"
    ACTIVE = "active", "Active"


class ScadaReading(models.Model):
    """One normalized reading, as the contract names it. Unique per tag and
    source timestamp, so a re-delivered value (a resubscription) is not stored
    twice."""

    timestamp = models.DateTimeField(help_text="The source timestamp")
    received_at = models.DateTimeField(auto_now_add=True)
    tag = models.ForeignKey(
        Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connector = models.ForeignKey(
        Connector, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag_name = models.CharField(max_length=64)
    value = models.FloatField(null=True, blank=True)
    value_text = models.CharField(max_length=64, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    quality = models.CharField(
        max_length=10, choices=Quality.choices, default=Quality.GOOD
    )
    alarm_state = models.CharField(
        max_length=10, choices=AlarmFlag.choices, default=AlarmFlag.NORMAL
    )

    class Meta:
        verbose_name = "SCADA reading"
        verbose_name_plural = "SCADA readings"
        ordering = ["-timestamp", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tag_name", "timestamp"], name="scada_reading_tag_ts"
            )
        ]
        indexes = [
            models.Index(fields=["connector", "timestamp"]),
            models.Index(fields=["timestamp"]),
        ]

    def __str__(self) -> str:
        return f"{self.tag_name}@{self.timestamp:%Y-%m-%dT%H:%M:%S}"


class AlarmSeverity(models.TextChoices):
    """The contract's priority words (the same as exceptions' severities)."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class AlertRule(models.Model):
    """Limits on one tag (ISA-18.2 alarm point): high/low limits, deadband,
    on-delay and off-delay, severity, and what an alarm becomes if nobody
    acknowledges it."""

    name = models.CharField(max_length=100, unique=True)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="rules")
    high_limit = models.FloatField(null=True, blank=True)
    low_limit = models.FloatField(null=True, blank=True)
    deadband = models.FloatField(
        default=0,
        validators=[MinValueValidator(0)],
        help_text="An active alarm returns to normal only this far inside the limit.",
    )
    on_delay_s = models.PositiveIntegerField(
        default=0, help_text="The limit must be exceeded this long before it alarms."
    )
    off_delay_s = models.PositiveIntegerField(
        default=0, help_text="The value must be back this long before it clears."
    )
    severity = models.CharField(
        max_length=10, choices=AlarmSeverity.choices, default=AlarmSeverity.MEDIUM
    )
    message = models.CharField(max_length=200, blank=True)
    escalate_after_s = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Active and unacknowledged this long becomes an exception "
        "(critical alarms do at once).",
    )
    create_work_order = models.BooleanField(
        default=False,
        help_text="An escalated alarm also opens a CMMS maintenance work order.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Evaluation state (scada.alarms.RuleState; only scada.alarms writes it):
    # whether the rule sees its tag in alarm, on which side, the on-delay and
    # off-delay timers, and the last good reading it evaluated.
    in_alarm = models.BooleanField(default=False, editable=False)
    alarm_side = models.CharField(max_length=4, blank=True, editable=False)
    pending_since = models.DateTimeField(null=True, blank=True, editable=False)
    clearing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_reading_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_value = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlarmState(models.TextChoices):
    """ISA-18.2's alarm states (ANSI/ISA-18.2-2016 figure 5)."""

    NORMAL = "normal", "Normal"
    UNACK_ACTIVE = "unack_active", "Unacknowledged, active"
    ACK_ACTIVE = "ack_active", "Acknowledged, active"
    UNACK_RTN = "unack_rtn", "Unacknowledged, returned to normal"
    SHELVED = "shelved", "Shelved"
    SUPPRESSED = "suppressed", "Suppressed by design"
    OUT_OF_SERVICE = "out_of_service", "Out of service"


class AlarmEvent(StatusTransitions, models.Model):
    """One alarm occurrence, from activation until it is acknowledged and back
    to normal (``normal``: closed). ``status`` holds the ISA-18.2 state (the
    contract's ``alarm_state``); the transition table lives in
    ``scada.alarms``."""

    timestamp = models.DateTimeField(db_index=True, help_text="When it went active")
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag = models.ForeignKey(
        Tag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connector = models.ForeignKey(
        Connector, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag_name = models.CharField(max_length=64, blank=True)
    kind = models.CharField(
        max_length=20,
        default="limit",
        help_text="limit (a rule's high/low) or comm_loss (a connector's server)",
    )
    status = models.CharField(
        max_length=20, choices=AlarmState.choices, default=AlarmState.UNACK_ACTIVE
    )
    severity = models.CharField(
        max_length=10, choices=AlarmSeverity.choices, default=AlarmSeverity.MEDIUM
    )
    area = models.CharField(max_length=64, blank=True)
    message = models.CharField(max_length=300)
    value = models.FloatField(null=True, blank=True)
    limit = models.FloatField(null=True, blank=True)
    active = models.BooleanField(default=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    returned_at = models.DateTimeField(null=True, blank=True)
    shelved_until = models.DateTimeField(null=True, blank=True)
    shelved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    shelve_reason = models.CharField(max_length=200, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    exception = models.ForeignKey(
        "exceptions.PlantException",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["status", "timestamp"]),
            # GET /api/logs's connector source (scada.logsource.comm_source)
            # joins the journal to the few comm-loss alarms on every page:
            # found here, not by reading every alarm.
            models.Index(
                fields=["id"],
                condition=Q(kind="comm_loss"),
                name="scada_alarm_comm_loss_idx",
            ),
        ]
        constraints = [
            # One open occurrence per rule (and one comm-loss alarm per connector).
            models.UniqueConstraint(
                fields=["rule"],
                condition=Q(closed_at__isnull=True, rule__isnull=False),
                name="scada_alarm_one_open_per_rule",
            ),
            models.UniqueConstraint(
                fields=["connector", "kind"],
                condition=Q(closed_at__isnull=True, kind="comm_loss"),
                name="scada_alarm_one_open_comm_loss",
            ),
        ]

    TRANSITIONS = {}  # filled in by scada.alarms

    def __str__(self) -> str:
        return f"Alarm {self.pk} {self.tag_name} {self.status}"

    @property
    def transition_subject(self) -> str:
        return f"Alarm {self.pk}"


class AlarmHistory(models.Model):
    """One change of an alarm (ISA-18.2's event journal): activations, returns,
    operator actions, escalation. Flood and chattering detection count its
    ``activated`` rows; ``rule`` and ``area`` are copied so they count fast."""

    alarm = models.ForeignKey(
        AlarmEvent, on_delete=models.CASCADE, related_name="history"
    )
    at = models.DateTimeField(db_index=True)
    change = models.CharField(max_length=30)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20)
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    area = models.CharField(max_length=64, blank=True)
    value = models.FloatField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "alarm history entry"
        verbose_name_plural = "alarm history"
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["change", "area", "at"]),
            models.Index(fields=["change", "rule", "at"]),
            # GET /api/logs: the newest changes before a cursor.
            models.Index(fields=["at", "id"], name="scada_alarmhistory_log_idx"),
        ]

    def __str__(self) -> str:
        return f"Alarm {self.alarm_id} {self.change} at {self.at:%H:%M:%S}"


class AlarmFlood(models.Model):
    """An alarm flood of one area (ISA-18.2: more than 10 alarms in 10 minutes),
    from the activation that started it until the rate falls back."""

    area = models.CharField(max_length=64)
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    alarm_count = models.PositiveIntegerField(
        default=0, help_text="Activations in the area while the flood lasted."
    )
    peak_rate = models.PositiveIntegerField(
        default=0, help_text="Most activations seen in one 10-minute window."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["area"],
                condition=Q(ended_at__isnull=True),
                name="scada_flood_one_open_per_area",
            )
        ]

    def __str__(self) -> str:
        return f"Flood {self.area} from {self.started_at:%Y-%m-%d %H:%M}"


class DeliveryState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class MaintenanceWorkOrder(models.Model):
    """A maintenance work order in the contract's normalized schema, and its
    delivery to the CMMS. An alarm opens at most one open work order."""

    asset_id = models.CharField(max_length=64)
    asset_name = models.CharField(max_length=200)
    description = models.TextField()
    priority = models.CharField(max_length=10, choices=AlarmSeverity.choices)
    source_alarm = models.ForeignKey(
        AlarmEvent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="work_orders",
    )
    created_by_system = models.CharField(max_length=64, default="bpmos")
    assignee = models.CharField(max_length=100, blank=True)
    scada_snapshot = models.JSONField(default=dict, blank=True)
    connector = models.ForeignKey(
        Connector,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The CMMS it is sent to",
    )
    delivery_state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    external_id = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_alarm"],
                condition=Q(closed_at__isnull=True, source_alarm__isnull=False),
                name="scada_wo_one_open_per_alarm",
            )
        ]

    def __str__(self) -> str:
        return f"MWO-{self.pk} {self.asset_name}"


class DeliveryAttempt(models.Model):
    """One attempt to send a work order to the CMMS: the failure log."""

    work_order = models.ForeignKey(
        MaintenanceWorkOrder, on_delete=models.CASCADE, related_name="delivery_log"
    )
    at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # GET /api/logs: the newest failed attempts before a cursor.
            models.Index(
                fields=["at", "id"],
                condition=Q(ok=False),
                name="scada_delivery_failed_log_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"MWO-{self.work_order_id} attempt {'ok' if self.ok else 'failed'}"


class LimsResult(models.Model):
    """One quality result from the LIMS (fetched or imported), kept once by its
    key, with the passport event it became."""

    key = models.CharField(
        max_length=200,
        unique=True,
        help_text="The LIMS result id, or serial|test|tested_at for a CSV row",
    )
    connector = models.ForeignKey(
        Connector, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    serial = models.CharField(max_length=100, db_index=True)
    test_name = models.CharField(max_length=100)
    passed = models.BooleanField()
    values = models.JSONField(default=dict, blank=True)
    tested_at = models.DateTimeField()
    passport_event_id = models.BigIntegerField(null=True, blank=True)
    source = models.CharField(max_length=10, default="csv")  # csv | api
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "LIMS result"
        verbose_name_plural = "LIMS results"
        ordering = ["-tested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.serial} {self.test_name} {'pass' if self.passed else 'fail'}"
