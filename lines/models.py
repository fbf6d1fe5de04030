"""Lines, their stations and machines, the machines' readings, and the OEE read
model.

A **Line** ("line-a", "Line A (Modules)") is an ordered set of **Stations**
("st-01" Cell Load, ...); each station has one or more **Machines**. Machines
report **MachineReadings**: any tag with a timestamp, a value, a unit and a
quality. Four tags mean something to BPM-OS (``ReadingTag``): ``state`` (the
machine's state code, ``MachineState``), ``good_count`` and ``reject_count``
(pieces made since the previous count reading) and ``cycle_time`` (seconds).

A machine's ``status`` is the state of its latest state reading, kept by
``lines.services.readings_ingest`` (the one writer); a station's state and a
line's mode and health are computed from those (``lines.selectors``), never
stored. Machine states are facts reported by the machine, not requests, so any
state may follow any other: there is no transition table here.

``OEESnapshot`` is the read model dashboards use: OEE per line and station and
shift, recomputed by Celery beat (``lines.tasks``) so no dashboard request scans
raw readings.
"""

from datetime import time

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

MINUTES_PER_DAY = 24 * 60


class MachineState(models.TextChoices):
    """The state code of a ``state`` reading (and a machine's current status)."""

    RUNNING = "running", "Running"
    READY = "ready", "Ready"  # powered and primed, waiting for material or work
    IDLE = "idle", "Idle"  # stopped, nothing scheduled
    BLOCKED = "blocked", "Blocked"  # stopped by an interlock or the next station
    MAINTENANCE = "maintenance", "Maintenance"
    DOWN = "down", "Down"  # broken down


# A machine in one of these states stops its station (contract state "Blocked").
STOPPED_STATES = frozenset(
    {MachineState.BLOCKED, MachineState.DOWN, MachineState.MAINTENANCE}
)


class ReadingTag(models.TextChoices):
    """Tags BPM-OS computes with; any other tag is stored as it comes."""

    STATE = "state", "State"
    GOOD_COUNT = "good_count", "Good count"
    REJECT_COUNT = "reject_count", "Reject count"
    CYCLE_TIME = "cycle_time", "Cycle time"


class ReadingQuality(models.TextChoices):
    """OPC UA's three quality classes; OEE ignores ``bad`` readings."""

    GOOD = "good", "Good"
    UNCERTAIN = "uncertain", "Uncertain"
    BAD = "bad", "Bad"


class Line(models.Model):
    """A physical production line and the shift pattern its OEE is planned by.

    Shifts of ``shift_minutes`` start every day at ``shift_start`` (UTC) and tile
    the day; each has ``planned_downtime_minutes`` of planned stops (breaks,
    planned changeovers) that OEE does not count as lost time.
    """

    slug = models.SlugField(max_length=50, unique=True, help_text="API id: line-a")
    name = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    runbook = models.ForeignKey(
        "runbooks.Runbook",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="lines",
        help_text="The runbook whose work orders this line executes.",
    )
    shift_start = models.TimeField(
        default=time(6, 0), help_text="Start of the first shift of the day (UTC)."
    )
    shift_minutes = models.PositiveIntegerField(
        default=480, help_text="Length of a shift; shifts tile the day."
    )
    planned_downtime_minutes = models.PositiveIntegerField(
        default=30, help_text="Planned stops per shift (breaks, changeovers)."
    )
    oee_target = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        default=60,
        help_text="OEE (%) below which the line's health is Warning.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(shift_minutes__gt=0)
                & Q(shift_minutes__lte=MINUTES_PER_DAY),
                name="line_shift_length_valid",
            ),
            models.CheckConstraint(
                condition=Q(planned_downtime_minutes__lt=F("shift_minutes")),
                name="line_downtime_shorter_than_shift",
            ),
            models.CheckConstraint(
                condition=Q(oee_target__gte=0) & Q(oee_target__lte=100),
                name="line_oee_target_percent",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.shift_minutes and MINUTES_PER_DAY % self.shift_minutes:
            raise ValidationError(
                {"shift_minutes": "Shifts must tile the day (1440 / length whole)."}
            )

    @property
    def topic(self) -> str:
        """The live-event topic of this line alone (``bpmos.access.TOPICS``)."""
        return f"line.{self.pk}"


class Station(models.Model):
    """A workspace on a line, e.g. st-02 Weld; its state comes from its machines."""

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="stations")
    slug = models.SlugField(max_length=50, help_text="API id within its line: st-01")
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField()
    ideal_cycle_seconds = models.DecimalField(
        max_digits=9,
        decimal_places=3,
        help_text="Ideal time to make one piece on one machine (OEE performance).",
    )
    runbook_stage = models.ForeignKey(
        "runbooks.Stage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="stations",
        help_text="The runbook stage this station performs, if any.",
    )

    class Meta:
        ordering = ["line", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "slug"], name="station_slug_unique_per_line"
            ),
            models.UniqueConstraint(
                fields=["line", "position"], name="station_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(ideal_cycle_seconds__gt=0),
                name="station_ideal_cycle_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line.slug}/{self.slug} {self.name}"


class Machine(models.Model):
    """A machine at a station that reports readings (mobile contract "Machine").

    ``status``, ``status_reason`` and ``status_since`` mirror its latest state
    reading; only ``lines.services.readings_ingest`` writes them.
    """

    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, related_name="machines"
    )
    code = models.SlugField(
        max_length=64, unique=True, help_text="Plant tag prefix, e.g. la-weld-01"
    )
    name = models.CharField(max_length=100)
    machine_type = models.CharField(max_length=50, help_text="e.g. laser welder")
    location = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=20, choices=MachineState.choices, default=MachineState.IDLE
    )
    status_reason = models.CharField(max_length=200, blank=True)
    status_since = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["station", "id"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class TimeRangeIndex(models.Index):
    """A BRIN index on PostgreSQL, a plain index elsewhere (SQLite in development).

    For append-mostly time columns: readings arrive roughly in time order, so a
    BRIN's block ranges stay narrow, and it costs a fraction of a btree on every
    insert (docs/lines.md has the measured figures).
    """

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            using = " USING brin"
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class MachineReading(models.Model):
    """One value a machine reported for one tag at one time.

    (machine, tag, ts) is unique: re-sending a reading stores nothing twice.
    ``value`` holds numbers; ``text`` holds the state code of a ``state`` reading
    (``value`` is then null) and ``note`` its reason ("Safety Curtain").
    Written only in bulk by ``lines.services.readings_ingest``.
    """

    # No index of its own: the unique (machine, tag, ts) index serves every
    # lookup by machine, and each extra index slows ingestion.
    machine = models.ForeignKey(
        Machine, on_delete=models.PROTECT, related_name="readings", db_index=False
    )
    tag = models.CharField(max_length=64)
    ts = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    text = models.CharField(max_length=64, blank=True, default="")
    note = models.CharField(max_length=200, blank=True, default="")
    unit = models.CharField(max_length=16, blank=True, default="")
    quality = models.CharField(
        max_length=10, choices=ReadingQuality.choices, default=ReadingQuality.GOOD
    )

    class Meta:
        ordering = ["machine", "tag", "ts"]
        constraints = [
            # Also the index behind every per-machine query (a tag over a window,
            # the latest state before a time).
            models.UniqueConstraint(
                fields=["machine", "tag", "ts"], name="machine_reading_unique"
            ),
        ]
        # Window aggregates over all machines (docs/performance.md: btree or BRIN on
        # ts; BRIN here, about 25 % cheaper inserts). Every per-machine query
        # uses the unique index above, not this one.
        indexes = [TimeRangeIndex(fields=["ts"], name="machine_reading_ts_brin")]

    def __str__(self) -> str:
        shown = self.text or self.value
        return f"{self.machine_id} {self.tag}={shown} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class OEESnapshot(models.Model):
    """OEE of a line (``station`` null) or a station over one shift, so far.

    Recomputed by Celery beat (``lines.tasks.oee_snapshots_refresh_task``) over
    [``window_start``, ``window_end``); ``window_end`` is the time it was computed
    up to, the shift's end once the shift is over. Percentages are null when
    undefined (docs/oee.md).
    """

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="oee")
    station = models.ForeignKey(
        Station,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="oee",
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    shift_end = models.DateTimeField()
    planned_busy_seconds = models.FloatField()
    run_seconds = models.FloatField()
    ideal_seconds = models.FloatField(help_text="Ideal cycle time x produced.")
    good_count = models.BigIntegerField()
    reject_count = models.BigIntegerField()
    availability = models.DecimalField(
        max_digits=4, decimal_places=1, null=True, blank=True
    )
    performance = models.DecimalField(
        max_digits=4, decimal_places=1, null=True, blank=True
    )
    quality = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    oee = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "OEE snapshot"
        verbose_name_plural = "OEE snapshots"
        ordering = ["line", "-window_start", "station"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "window_start"],
                condition=Q(station__isnull=True),
                name="oee_snapshot_line_window_unique",
            ),
            models.UniqueConstraint(
                fields=["station", "window_start"],
                condition=Q(station__isnull=False),
                name="oee_snapshot_station_window_unique",
            ),
        ]

    def __str__(self) -> str:
        scope = self.station.slug if self.station_id else "line"
        return f"{self.line.slug}/{scope} {self.window_start:%Y-%m-%d %H:%M} {self.oee}"


class MachineHour(models.Model):
    """One machine's OEE inputs over one whole UTC hour [hour, hour + 1 h): the
    roll-up ``/oee`` windows read instead of raw readings (docs/oee.md).

    A row depends only on the readings inside its hour, never on earlier ones:
    the state in force when the hour starts is left open. ``first_change`` is
    how long that carried-in state holds (the whole hour when no state reading
    falls inside it), ``run`` the time in ``running`` from the hour's first
    state reading to its end, and ``last_state`` the state in force at the end
    (empty when the hour has no state reading). Summing hours in order while
    carrying the state gives exactly the raw computation's run time.

    Written by ``lines.services.machine_hours_refresh`` (beat) with the machine
    row locked; ``readings_ingest`` marks the hours a batch touches stale, and
    a stale or missing hour is computed from raw readings instead.
    """

    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, related_name="hours", db_index=False
    )
    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    first_change_microseconds = models.BigIntegerField(
        help_text="From the hour's start to its first state reading."
    )
    run_microseconds = models.BigIntegerField(
        help_text="Running, from the first state reading to the hour's end."
    )
    last_state = models.CharField(
        max_length=20, choices=MachineState.choices, blank=True
    )
    good_count = models.BigIntegerField()
    reject_count = models.BigIntegerField()
    is_stale = models.BooleanField(
        default=False, help_text="Readings arrived since it was computed."
    )

    class Meta:
        ordering = ["machine_id", "hour"]
        constraints = [
            # Also the index of every read: machines over a range of hours.
            models.UniqueConstraint(
                fields=["machine", "hour"], name="machine_hour_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["machine", "hour"],
                condition=Q(is_stale=True),
                name="machine_hour_stale",
            )
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} {self.hour:%Y-%m-%d %H:00}"


class MachineDay(models.Model):
    """One machine's fresh hourly roll-ups (``MachineHour``) of one UTC day
    [day, day + 1 day), composed: the roll-up the day and week buckets of the
    OEE and line-yield trends read (docs/dashboards.md, Trends).

    Like an hour, a day leaves the state carried in from before it open:
    ``lead`` is how long that state holds (the first changes of its fresh
    hours up to and including the first one with a state reading: all of them
    when none has one), ``run`` the time in ``running`` after that, and
    ``last_state`` the state in force after its last fresh hour ("" when none
    has a state reading). Composing days in order while carrying the state
    gives exactly what composing their fresh hours does. ``last_hour`` is the
    day's latest fresh hour: a window ending inside the day reads its hours
    instead when that hour is not before the window's end.

    Kept equal to the sum of its fresh hours by every writer of ``MachineHour``
    (``lines.services``: beat's roll-up and the stale marks of late readings),
    in the same transaction; a day without a fresh hour has no row.
    """

    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, related_name="days", db_index=False
    )
    day = models.DateTimeField(help_text="Start of the UTC day.")
    hours = models.PositiveSmallIntegerField(help_text="Fresh hours rolled up in it.")
    lead_microseconds = models.BigIntegerField(
        help_text="How long the state carried in from the previous day holds."
    )
    run_microseconds = models.BigIntegerField(
        help_text="Running, after the carried-in state's lead."
    )
    last_state = models.CharField(
        max_length=20, choices=MachineState.choices, blank=True
    )
    last_hour = models.DateTimeField(help_text="Its latest fresh hour.")
    good_count = models.BigIntegerField()
    reject_count = models.BigIntegerField()

    class Meta:
        ordering = ["machine_id", "day"]
        constraints = [
            # Also the index of every read: machines over a range of days.
            models.UniqueConstraint(
                fields=["machine", "day"], name="machine_day_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} {self.day:%Y-%m-%d}"
