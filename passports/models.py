"""Battery passports: identity, genealogy, the event ledger and its projections.

A ``Passport`` is one cell, module or pack. What happened to it is its
``PassportEvent`` ledger: append-only (database triggers refuse UPDATE and
DELETE), numbered 1, 2, 3… per passport, each event carrying the previous
event's hash. The passport row's ``state``, ``on_hold``, custodian and
``version`` are a projection of that ledger (``passports.lifecycle.replay``
rebuilds them from the events alone); only ``passports.ledger.append`` writes
either, in one transaction.

The EU battery passport's attribute groups (Regulation (EU) 2023/1542, Annex
XIII) map onto the fields below; ``PUBLIC_FIELDS`` and ``RESTRICTED_FIELDS``
say which a member of the public may see and which only persons with a
legitimate interest (here: supervisors, plant heads, auditors, admins).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.encoding import force_str

from bpmos.auditkeys import KEY_ID_MAX_LENGTH
from passports.attributes import BatteryCategory


class Kind(models.TextChoices):
    CELL = "cell", "Cell"
    MODULE = "module", "Module"
    PACK = "pack", "Pack"


# What a passport of each kind may be assembled into.
PARENT_KIND: dict[str, str | None] = {
    Kind.CELL: Kind.MODULE,
    Kind.MODULE: Kind.PACK,
    Kind.PACK: None,
}


class State(models.TextChoices):
    """Where a passport is in its life (derived from its ledger)."""

    MANUFACTURED = "manufactured", "Manufactured"
    QA_PASSED = "qa_passed", "QA Passed"
    QA_FAILED = "qa_failed", "QA Failed"
    PROVISIONED = "provisioned", "Provisioned"
    ASSEMBLED = "assembled", "Assembled"
    WAREHOUSED = "warehoused", "Warehoused"
    RESERVED = "reserved", "Reserved"
    DISPATCHED = "dispatched", "Dispatched"
    IN_SERVICE = "in_service", "In Service"
    END_OF_LIFE = "end_of_life", "End of Life"
    RECYCLED = "recycled", "Recycled"
    # Repurposed, reused or remanufactured: the battery lives on under a new
    # passport (``Passport.successors``); this one takes no further event.
    SUPERSEDED = "superseded", "Superseded"


class BatteryStatus(models.TextChoices):
    """The EU battery status (Regulation (EU) 2023/1542, Annex XIII 4(c);
    Battery Pass data model ``batteryStatus``). ``Passport.battery_status``
    stores what a second-life change made of the battery; ``Waste`` is derived
    from the ledger's state (``passports.attributes.eu_status``)."""

    ORIGINAL = "original", "Original"
    REPURPOSED = "repurposed", "Repurposed"
    REUSED = "reused", "Reused"
    REMANUFACTURED = "remanufactured", "Remanufactured"
    WASTE = "waste", "Waste"


class CustodianKind(models.TextChoices):
    """Who holds a battery: the chain of custody moves only by recorded events."""

    MANUFACTURER = "manufacturer", "Manufacturer"
    LOGISTICS = "logistics", "Logistics"
    CUSTOMER = "customer", "Customer"
    SERVICE = "service", "Service"
    RECYCLER = "recycler", "Recycler"


class Chemistry(models.TextChoices):
    LFP = "LFP", "Lithium iron phosphate"
    NMC = "NMC", "Lithium nickel manganese cobalt oxide"
    NCA = "NCA", "Lithium nickel cobalt aluminium oxide"
    LMO = "LMO", "Lithium manganese oxide"
    LTO = "LTO", "Lithium titanate"
    NA_ION = "NaION", "Sodium-ion"


class PassportQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Passports written in bulk (benches, fixtures: ``services.register``
        is the service's one writer) are counted in the custody roll-up too."""
        from passports import rollups

        created = super().bulk_create(objs, *args, **kwargs)
        rollups.custody_units_add(rollups.custody_units_of(created))
        return created


# Passport.choice_label's tables, per field name (the labels as declared).
_CHOICE_LABELS: dict[str, dict] = {}


class Passport(models.Model):
    """One battery (cell, module or pack) and the projection of its ledger."""

    # --- identity (public) ---
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    serial = models.CharField(max_length=64, unique=True)
    barcode = models.CharField(max_length=64, unique=True, null=True, blank=True)
    rfid = models.CharField(
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text="RFID tag id (EPC), upper-case hex.",
    )
    bpan = models.CharField(
        max_length=21,
        unique=True,
        null=True,
        blank=True,
        help_text="Battery Pack Aadhaar Number (packs): docs/passports.md.",
    )
    gtin = models.CharField(
        max_length=14,
        blank=True,
        help_text="GS1 GTIN of the trade item, 14 digits (shorter GTINs are "
        "padded with zeros): with the serial, the GS1 Digital Link "
        "/01/{gtin}/21/{serial} (passports.gs1).",
    )
    model = models.CharField(max_length=64, help_text="Product / model code.")
    lot = models.CharField(max_length=64, blank=True, help_text="Production lot.")
    # --- manufacturer and site (public) ---
    manufacturer = models.CharField(max_length=120)
    manufacturer_id = models.CharField(
        max_length=64, blank=True, help_text="Registration id of the manufacturer."
    )
    site = models.CharField(max_length=120, help_text="Plant that made it.")
    manufactured_at = models.DateTimeField()
    # --- chemistry and materials (chemistry public; the rest restricted) ---
    chemistry = models.CharField(max_length=8, choices=Chemistry.choices)
    cathode_material = models.CharField(max_length=120, blank=True)
    anode_material = models.CharField(max_length=120, blank=True)
    electrolyte = models.CharField(max_length=120, blank=True)
    critical_raw_materials = models.JSONField(
        default=list, blank=True, help_text='e.g. ["lithium", "cobalt"]'
    )
    material_composition = models.JSONField(
        default=dict, blank=True, help_text="Mass share by material, %."
    )
    recycled_content = models.JSONField(
        default=dict, blank=True, help_text="Recycled share by material, %."
    )
    hazardous_substances = models.JSONField(default=list, blank=True)
    # --- capacity and performance ---
    rated_capacity_ah = models.DecimalField(max_digits=8, decimal_places=2)
    nominal_voltage_v = models.DecimalField(max_digits=7, decimal_places=2)
    energy_kwh = models.DecimalField(max_digits=8, decimal_places=3)
    mass_kg = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    expected_cycles = models.PositiveIntegerField(null=True, blank=True)
    warranty_months = models.PositiveSmallIntegerField(default=0)
    # --- carbon footprint ---
    carbon_footprint_kg_co2e_per_kwh = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True
    )
    carbon_footprint_class = models.CharField(max_length=4, blank=True)
    # --- the rest of the EU attribute set (passports.attributes declares each
    # one's key, unit, tier and source; all typed in at registration unless
    # noted) ---
    battery_category = models.CharField(
        max_length=12,
        choices=BatteryCategory.choices,
        blank=True,
        help_text="EU category the passport is required for: EV, industrial, "
        "LMT, stationary.",
    )
    economic_operator = models.CharField(max_length=120, blank=True)
    minimum_voltage_v = models.DecimalField(
        max_digits=7, decimal_places=2, null=True, blank=True
    )
    maximum_voltage_v = models.DecimalField(
        max_digits=7, decimal_places=2, null=True, blank=True
    )
    original_power_capability_w = models.DecimalField(
        max_digits=10, decimal_places=1, null=True, blank=True
    )
    rated_maximum_power_w = models.DecimalField(
        max_digits=10, decimal_places=1, null=True, blank=True
    )
    initial_round_trip_efficiency_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    round_trip_efficiency_half_life_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="At 50 % of the cycle life (LIMS).",
    )
    initial_internal_resistance_mohm = models.DecimalField(
        max_digits=10, decimal_places=3, null=True, blank=True, help_text="LIMS."
    )
    initial_self_discharge_percent = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="% of capacity per month (LIMS).",
    )
    expected_lifetime_years = models.PositiveSmallIntegerField(null=True, blank=True)
    c_rate_life_cycle_test = models.DecimalField(
        max_digits=6, decimal_places=3, null=True, blank=True
    )
    lifetime_reference_test = models.URLField(max_length=300, blank=True)
    capacity_threshold_for_exhaustion_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    idle_temperature_min_c = models.DecimalField(
        max_digits=5, decimal_places=1, null=True, blank=True
    )
    idle_temperature_max_c = models.DecimalField(
        max_digits=5, decimal_places=1, null=True, blank=True
    )
    carbon_footprint_per_stage = models.JSONField(
        default=dict,
        blank=True,
        help_text="kg CO2e per kWh by life-cycle stage: raw_material_extraction, "
        "main_production, distribution, end_of_life_recycling.",
    )
    carbon_footprint_study = models.URLField(max_length=300, blank=True)
    renewable_content_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    dismantling_information = models.URLField(max_length=300, blank=True)
    spare_part_sources = models.JSONField(default=list, blank=True)
    safety_measures = models.URLField(max_length=300, blank=True)
    extinguishing_agent = models.CharField(max_length=120, blank=True)
    end_of_life_information = models.URLField(max_length=300, blank=True)
    labels = models.JSONField(
        default=list, blank=True, help_text='e.g. ["separate_collection", "ce"]'
    )
    declaration_of_conformity = models.URLField(max_length=300, blank=True)
    test_report = models.URLField(
        max_length=300,
        blank=True,
        help_text="Results of test reports proving compliance (authorities only).",
    )
    due_diligence_report = models.URLField(max_length=300, blank=True)
    third_party_assurances = models.URLField(max_length=300, blank=True)
    # --- usage summary of a pack in the field (telemetry; lastUpdate below) ---
    full_cycles = models.PositiveIntegerField(null=True, blank=True)
    energy_throughput_kwh = models.DecimalField(
        max_digits=12, decimal_places=3, null=True, blank=True
    )
    capacity_throughput_ah = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True
    )
    temperature_min_c = models.FloatField(null=True, blank=True)
    temperature_max_c = models.FloatField(null=True, blank=True)
    time_above_max_temperature_s = models.PositiveBigIntegerField(null=True, blank=True)
    time_below_min_temperature_s = models.PositiveBigIntegerField(null=True, blank=True)
    deep_discharge_events = models.PositiveIntegerField(null=True, blank=True)
    overcharge_events = models.PositiveIntegerField(null=True, blank=True)
    usage_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="lastUpdate of the usage summary."
    )
    # --- genealogy ---
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="components",
        help_text="The module a cell is in, the pack a module is in.",
    )
    # --- second life (passports.secondlife): a repurposed, reused or
    # remanufactured battery gets a new passport linked to this one both ways
    # (``predecessor`` here, ``successors`` back; each chain holds its event).
    predecessor = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="successors",
        help_text="The passport of the battery this one was repurposed, reused "
        "or remanufactured from.",
    )
    battery_status = models.CharField(
        max_length=16,
        choices=BatteryStatus.choices,
        default=BatteryStatus.ORIGINAL,
        help_text="EU status the battery got from a second-life change (Waste "
        "is derived from the state).",
    )
    # --- projection of the ledger (written only by passports.ledger.append) ---
    state = models.CharField(max_length=20, choices=State.choices)
    on_hold = models.BooleanField(default=False)
    hold_reason = models.CharField(max_length=300, blank=True)
    custodian_kind = models.CharField(max_length=20, choices=CustodianKind.choices)
    custodian_name = models.CharField(max_length=120)
    version = models.PositiveIntegerField(
        default=0, help_text="Number of ledger events; the next is version + 1."
    )
    head_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # --- telemetry summary (written by passports.telemetry) ---
    soh_percent = models.FloatField(null=True, blank=True)
    soc_percent = models.FloatField(null=True, blank=True)
    temperature_c = models.FloatField(null=True, blank=True)
    telemetry_at = models.DateTimeField(null=True, blank=True)

    objects = PassportQuerySet.as_manager()

    class Meta:
        ordering = ["-manufactured_at", "serial"]
        indexes = [
            models.Index(fields=["kind", "state"]),
            models.Index(fields=["lot"]),
            # The passport list's order (newest manufactured first): a page
            # read off the index, not a sort of every passport.
            models.Index(
                fields=["-manufactured_at", "serial"], name="passport_list_idx"
            ),
            # The dashboards: batteries on hold (count, and the supervisor's
            # list, longest held first) and the custody mix of the units (not
            # assembled into another), both without reading every passport.
            # The on-hold index keys on ``id`` only, not ``updated_at``: every
            # ledger append sets ``updated_at``, and a column in any index
            # (a partial one's too) makes every update of a passport write
            # all its indexes (no HOT update). The list reads the few rows on
            # hold off this index and sorts them (docs/passports.md, "HOT
            # projection updates").
            models.Index(
                fields=["id"],
                condition=Q(on_hold=True),
                name="passport_on_hold_idx",
            ),
            models.Index(
                fields=["custodian_kind"],
                condition=Q(parent__isnull=True),
                name="passport_unit_custody_idx",
            ),
            # The custody and warranty context of a runbook's lots: the
            # distinct lots of the units, one index descent per lot
            # (``passports.selectors.unit_lots_among``), instead of matching
            # every unit against tens of thousands of work orders' lots.
            # The condition is ``selectors.UNIT_LOT_SQL``'s, word for word.
            models.Index(
                fields=["lot"],
                condition=Q(parent__isnull=True) & ~Q(lot="") & ~Q(state="superseded"),
                name="passport_unit_lot_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(bpan__isnull=True) | Q(kind="pack"),
                name="passport_bpan_packs_only",
            ),
            models.CheckConstraint(
                condition=Q(gtin="") | Q(gtin__regex=r"^[0-9]{14}$"),
                name="passport_gtin_14_digits",
            ),
            models.UniqueConstraint(
                fields=["gtin", "serial"],
                condition=~Q(gtin=""),
                name="passport_gtin_serial_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.choice_label('kind')} {self.serial}"

    def choice_label(self, name: str) -> str:
        """``get_<name>_display()`` of a field with choices, from a table made
        once: Django's builds the choices' dict on every call (the audit log
        and the live events name every appended passport)."""
        value = getattr(self, name)
        labels = _CHOICE_LABELS.get(name)
        if labels is None:
            field = self._meta.get_field(name)
            labels = _CHOICE_LABELS[name] = dict(field.flatchoices)
        return force_str(labels.get(value, value), strings_only=True)


# EU battery passport attribute groups (Annex XIII) → fields. Public: anyone
# holding the identifier; restricted: persons with a legitimate interest.
PUBLIC_FIELDS: dict[str, tuple[str, ...]] = {
    "identity": ("uuid", "kind", "serial", "bpan", "gtin", "model", "lot"),
    "manufacturer": ("manufacturer", "manufacturer_id", "site", "manufactured_at"),
    "chemistry": ("chemistry", "critical_raw_materials", "hazardous_substances"),
    "performance": (
        "rated_capacity_ah",
        "nominal_voltage_v",
        "energy_kwh",
        "mass_kg",
        "expected_cycles",
        "warranty_months",
    ),
    "carbonFootprint": (
        "carbon_footprint_kg_co2e_per_kwh",
        "carbon_footprint_class",
    ),
}
RESTRICTED_FIELDS: dict[str, tuple[str, ...]] = {
    "identity": ("barcode", "rfid"),
    "materials": (
        "cathode_material",
        "anode_material",
        "electrolyte",
        "material_composition",
        "recycled_content",
    ),
    "stateOfHealth": ("soh_percent", "soc_percent", "temperature_c", "telemetry_at"),
}


class EventKind(models.TextChoices):
    MANUFACTURED = "manufactured", "Manufactured"
    QA_PASSED = "qa_passed", "QA passed"
    QA_FAILED = "qa_failed", "QA failed"
    PROVISIONED = "provisioned", "Provisioned"
    ASSEMBLED = "assembled", "Assembled into parent"
    WAREHOUSED = "warehoused", "Warehoused"
    RESERVED = "reserved", "Reserved"
    RESERVATION_RELEASED = "reservation_released", "Reservation released"
    HELD = "held", "Put on hold"
    RELEASED = "released", "Hold released"
    DISPATCHED = "dispatched", "Dispatched"
    CUSTODY_TRANSFERRED = "custody_transferred", "Custody transferred"
    DELIVERED = "delivered", "Delivered"
    SERVICED = "serviced", "Serviced"
    TELEMETRY_SUMMARISED = "telemetry_summarised", "Telemetry summarised"
    END_OF_LIFE = "end_of_life", "End of life"
    RECYCLED = "recycled", "Recycled"
    # Second life (passports.secondlife): the old passport's last event names
    # its successor; the new passport's first event names its predecessor.
    REPURPOSED = "repurposed", "Repurposed"
    REUSED = "reused", "Prepared for re-use"
    REMANUFACTURED = "remanufactured", "Remanufactured"
    REGISTERED_FROM = "registered_from", "Registered from a previous passport"
    MOVED_TO_PAST = "moved_to_past", "Moved to past (dispatch desk)"
    REACTIVATED = "reactivated", "Reactivated (dispatch desk)"


class PassportEventQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Ledger rows written in bulk (benches, fixtures: ``ledger.append``
        is the service's one writer) keep the first-QA roll-ups too."""
        from passports import rollups

        created = super().bulk_create(objs, *args, **kwargs)
        rollups.first_qa_refresh(
            passport_ids={
                event.passport_id
                for event in created
                if event.kind in rollups.QA_RESULTS
            }
        )
        return created


class PassportEvent(models.Model):
    """One entry of a passport's ledger. Never updated, never deleted.

    ``hash`` is an HMAC-SHA256 made with the audit key ``key_id`` names
    (``bpmos/auditkeys.py``, ``passports.ledger``)."""

    passport = models.ForeignKey(
        Passport, on_delete=models.PROTECT, related_name="events"
    )
    version = models.PositiveIntegerField(help_text="1 for the first event, then +1.")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    key_id = models.CharField(
        max_length=KEY_ID_MAX_LENGTH,
        help_text="Id of the audit key that signed this event (bpmos/auditkeys.py).",
    )

    objects = PassportEventQuerySet.as_manager()

    class Meta:
        ordering = ["passport_id", "version"]
        indexes = [
            # GET /api/logs: the newest events before a cursor (an index scan).
            models.Index(fields=["occurred_at", "id"], name="passport_event_log_idx"),
            # EPR's first dispatch / end of life / recycling per pack and the
            # dashboards' first-pass yield filter by kind, then time.
            models.Index(
                fields=["kind", "occurred_at"], name="passport_event_kind_idx"
            ),
            # First-pass yield: "no earlier QA result of this passport" is one
            # probe into the QA results alone.
            models.Index(
                fields=["passport", "version"],
                condition=Q(kind__in=["qa_passed", "qa_failed"]),
                name="passport_event_qa_idx",
            ),
            # A unit's delivery (the warranty context's first delivered
            # event): one probe into the delivered events alone, not a walk
            # of a pack's telemetry summaries.
            models.Index(
                fields=["passport", "version"],
                condition=Q(kind="delivered"),
                include=["occurred_at"],
                name="passport_event_delivered_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["passport", "version"], name="passport_event_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.passport_id}#{self.version} {self.kind}"


class JobState(models.TextChoices):
    """The dispatch desk's live/past flag (dispatch contract)."""

    ON = "ON", "Live"
    OFF = "OFF", "Past"


class DispatchJob(models.Model):
    """The dispatch desk's job for a product: live (ON) until dispatched or moved
    to past (OFF). A product's latest job is the one that counts; reactivation
    turns the latest job ON again (recorded in the ledger either way)."""

    passport = models.ForeignKey(
        Passport, on_delete=models.PROTECT, related_name="dispatch_jobs"
    )
    state = models.CharField(max_length=3, choices=JobState.choices)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "passport"])]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.state}) for {self.passport_id}"


class TelemetryReading(models.Model):
    """One BMS sample of a pack in the field: SoH, SoC, temperature."""

    passport = models.ForeignKey(
        Passport, on_delete=models.PROTECT, related_name="telemetry"
    )
    ts = models.DateTimeField()
    soh_percent = models.FloatField(null=True, blank=True)
    soc_percent = models.FloatField(null=True, blank=True)
    temperature_c = models.FloatField(null=True, blank=True)
    voltage_v = models.FloatField(null=True, blank=True)
    current_a = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["passport_id", "ts"]
        constraints = [
            models.UniqueConstraint(
                fields=["passport", "ts"], name="telemetry_passport_ts_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.passport_id}@{self.ts.isoformat()}"


class ProvisioningStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    REFUSED = "refused", "Refused by BMS"
    MISMATCH = "mismatch", "Read-back mismatch"
    TIMEOUT = "timeout", "Timed out"
    FAILED = "failed", "Failed"


class ProvisioningAttempt(models.Model):
    """One attempt to write a pack's identity and configuration to its BMS over
    CAN, and what the BMS confirmed. Confirmed attempts append ``provisioned``."""

    passport = models.ForeignKey(
        Passport, on_delete=models.PROTECT, related_name="provisioning_attempts"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=12,
        choices=ProvisioningStatus.choices,
        default=ProvisioningStatus.PENDING,
    )
    interface = models.CharField(max_length=120, blank=True)
    node_id = models.PositiveSmallIntegerField(default=0)
    written = models.JSONField(default=dict, blank=True)
    confirmed = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Provisioning {self.pk} of {self.passport_id}: {self.status}"


# --- roll-ups of the dashboards' trends (passports.rollups) -------------------------

# Sums of samples: exact decimals (NUMERIC on PostgreSQL), so a mean is the
# samples' AVG; six places hold every sample a BMS sends.
ROLLUP_SUM = {"max_digits": 24, "decimal_places": 6, "default": 0}


class TelemetryModelHour(models.Model):
    """Battery telemetry of one model in one UTC hour: per measurement (SoH,
    SoC, temperature) the sum, number, lowest and highest of the samples that
    carry it. Written only by ``passports.rollups`` in the transaction that
    stores the samples, so it always equals an aggregate of the raw rows."""

    model = models.CharField(max_length=64)
    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    last_ts = models.DateTimeField(
        help_text="The newest sample's time: a window ending after it holds the "
        "whole row."
    )
    soh_sum = models.DecimalField(**ROLLUP_SUM)
    soh_count = models.BigIntegerField(default=0)
    soh_min = models.FloatField(null=True, blank=True)
    soh_max = models.FloatField(null=True, blank=True)
    soc_sum = models.DecimalField(**ROLLUP_SUM)
    soc_count = models.BigIntegerField(default=0)
    soc_min = models.FloatField(null=True, blank=True)
    soc_max = models.FloatField(null=True, blank=True)
    temperature_sum = models.DecimalField(**ROLLUP_SUM)
    temperature_count = models.BigIntegerField(default=0)
    temperature_min = models.FloatField(null=True, blank=True)
    temperature_max = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["model", "hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "hour"], name="telemetry_model_hour_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model}@{self.hour.isoformat()}"


class FirstQaResult(models.Model):
    """A passport's first QA result (its lowest-version ``qa_passed`` or
    ``qa_failed`` ledger event), written by ``ledger.append`` with that event;
    later results never change it (first-pass yield: docs/metrics.md)."""

    passport = models.OneToOneField(
        Passport, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    occurred_at = models.DateTimeField()
    passed = models.BooleanField()
    kind = models.CharField(max_length=10, choices=Kind.choices)

    class Meta:
        ordering = ["occurred_at"]
        indexes = [
            # The summary's windows: an index-only range per window.
            models.Index(
                fields=["occurred_at", "kind", "passed"], name="first_qa_time_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.passport_id} {'passed' if self.passed else 'failed'}"


class FirstQaHour(models.Model):
    """Per UTC hour and passport kind: passports whose first QA result
    occurred in it (``tested``) and those that passed; kept with
    ``FirstQaResult``."""

    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    tested = models.BigIntegerField(default=0)
    passed = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["hour", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "kind"], name="first_qa_hour_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}@{self.hour.isoformat()}: {self.passed}/{self.tested}"


class CustodyUnitCount(models.Model):
    """Batteries as units (passports not assembled into another) held by one
    custodian kind: the dashboards' Custody Mix, counted where it changes
    (``passports.rollups.custody_units_add``, in the transaction of the
    change: a battery registered, its custody moved, it assembled into
    another) instead of over every passport per read."""

    custodian_kind = models.CharField(
        max_length=20, choices=CustodianKind.choices, primary_key=True
    )
    units = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["custodian_kind"]

    def __str__(self) -> str:
        return f"{self.custodian_kind}: {self.units}"


class PassportAccessGrant(models.Model):
    """A time-boxed grant an admin issues to an outside party (a recycler, a
    second-life operator, a customer's auditor) to read the legitimate-interest
    tier of one passport, or of every passport one customer holds. Only the
    SHA-256 of its token is stored; the token is shown once, at issue.
    ``passports.grants`` issues, revokes and checks it, auditing every use."""

    token_hash = models.CharField(max_length=64, unique=True)
    party = models.CharField(max_length=120, help_text="Who the grant is for.")
    passport = models.ForeignKey(
        Passport,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="access_grants",
    )
    customer = models.CharField(
        max_length=120,
        blank=True,
        help_text="Custodian name: the passports this customer holds.",
    )
    expires_at = models.DateTimeField()
    issued_at = models.DateTimeField(auto_now_add=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(passport__isnull=False) & Q(customer=""))
                | (Q(passport__isnull=True) & ~Q(customer="")),
                name="passport_grant_one_scope",
            ),
        ]

    def __str__(self) -> str:
        scope = f"passport {self.passport_id}" if self.passport_id else self.customer
        return f"Grant {self.pk} to {self.party} for {scope}"


class PackUsage(models.Model):
    """The running state behind a pack's usage summary (``passports.dynamic``):
    the last sample folded in and the exact running totals, so each telemetry
    batch adds only its own samples (the summary itself is on ``Passport``).
    Written only by ``passports.dynamic`` in the batch's transaction."""

    passport = models.OneToOneField(
        Passport, on_delete=models.CASCADE, primary_key=True, related_name="usage"
    )
    last_ts = models.DateTimeField(help_text="The newest sample folded in.")
    last_soc = models.FloatField(null=True, blank=True)
    last_temperature = models.FloatField(null=True, blank=True)
    last_voltage = models.FloatField(null=True, blank=True)
    last_current = models.FloatField(null=True, blank=True)
    soc_travel = models.DecimalField(
        **ROLLUP_SUM, help_text="Sum of |SoC change| in percentage points."
    )
    energy_wh = models.DecimalField(**ROLLUP_SUM, help_text="Sum of |V·I|·dt, Wh.")
    charge_ah = models.DecimalField(**ROLLUP_SUM, help_text="Sum of |I|·dt, Ah.")
    above_s = models.DecimalField(**ROLLUP_SUM)
    below_s = models.DecimalField(**ROLLUP_SUM)
    temperature_min = models.FloatField(null=True, blank=True)
    temperature_max = models.FloatField(null=True, blank=True)
    deep_discharges = models.PositiveIntegerField(default=0)
    overcharges = models.PositiveIntegerField(default=0)
    in_deep_discharge = models.BooleanField(default=False)
    in_overcharge = models.BooleanField(default=False)
    samples = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Usage of {self.passport_id} to {self.last_ts.isoformat()}"


class LedgerCheckpoint(models.Model):
    """One periodic Merkle root over the passport ledgers (``passports.checkpoints``,
    ``passports.merkle``). Never updated, never deleted.

    ``root`` is the RFC 6962 Merkle root (SHA-256) of ``leaf_count`` leaves:
    the previous checkpoint's seq and root (``previous_root``; 64 zeros for the
    first), then the head (passport UUID, version, event hash) of every
    passport chain that grew since the previous checkpoint (its
    ``LedgerCheckpointLeaf`` rows). ``first_event_id``/``last_event_id``: the
    lowest and highest id of the events this checkpoint newly covers."""

    seq = models.PositiveIntegerField(unique=True, help_text="1, 2, 3… no gaps.")
    created_at = models.DateTimeField()
    root = models.CharField(max_length=64)
    previous_root = models.CharField(max_length=64)
    leaf_count = models.PositiveIntegerField()
    event_count = models.PositiveIntegerField(
        help_text="Events newly covered (the heads' chains since their last leaf)."
    )
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"checkpoint {self.seq} {self.root[:12]}"


class LedgerCheckpointLeaf(models.Model):
    """One passport chain's head in a checkpoint's Merkle tree (leaf
    ``position``; leaf 0 is the previous checkpoint's root, not a row). Never
    updated, never deleted."""

    checkpoint = models.ForeignKey(
        LedgerCheckpoint, on_delete=models.PROTECT, related_name="leaves"
    )
    position = models.PositiveIntegerField()
    passport = models.ForeignKey(
        Passport, on_delete=models.PROTECT, related_name="checkpoint_leaves"
    )
    version = models.PositiveIntegerField()
    event_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["checkpoint_id", "position"]
        indexes = [
            # Which checkpoint first covers event (passport, version): the proof.
            models.Index(
                fields=["passport", "version"], name="passport_checkpoint_leaf_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "position"], name="checkpoint_leaf_position"
            ),
            models.UniqueConstraint(
                fields=["checkpoint", "passport"], name="checkpoint_leaf_passport"
            ),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.checkpoint_id} leaf {self.position}"
