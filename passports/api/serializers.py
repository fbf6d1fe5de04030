"""Shapes of the passport and registry API: camelCase, display enums
(``"kind": "Pack"``, ``"state": "QA Passed"``, custodian ``"Manufacturer"``),
times as ``"2026-01-15T10:30:00Z"``, quantities as JSON numbers.

The EU attribute groups are built from ``passports.models.PUBLIC_FIELDS`` and
``RESTRICTED_FIELDS``, so which field is public is said once, in the model
module; who may see the restricted groups is said once, in ``bpmos.access``
(ACTIONS ``passport-restricted``), and applied by ``PassportDetailSerializer``.
Input serializers describe the bodies for the schema and check their shape;
every rule is the services'.
"""

from __future__ import annotations

import copy
import functools
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import models as dj
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.errors import InvalidInput
from bpmos.fields import DateTimeField, PositiveDecimalField, utc_datetime, utc_text
from bpmos.filters import enum_value
from bpmos.listrows import labels_of
from elog.models import SignatureMeaning
from passports import attributes, conformity, gs1, services, signatures
from passports import bpan as bpan_rules
from passports.models import (
    PUBLIC_FIELDS,
    RESTRICTED_FIELDS,
    Chemistry,
    CustodianKind,
    EventKind,
    Kind,
    Passport,
    State,
)
from passports.telemetry import MEASUREMENTS

# The display enums, named once for the OpenAPI schema.
PASSPORT_KINDS = list(Kind.labels)
PASSPORT_STATES = list(State.labels)
CUSTODIAN_KINDS = list(CustodianKind.labels)
EVENT_KINDS = list(EventKind.values)
# The EU attribute set's (passports.attributes).
ATTRIBUTE_TIERS = [str(tier) for tier in attributes.Tier]
ATTRIBUTE_SOURCES = [str(source) for source in attributes.Source]
BATTERY_CATEGORIES = list(attributes.BatteryCategory.labels)
# What a client may record (``passports.services.RECORDABLE_KINDS``); the
# others are the services' own (manufactured, assembled...): "manufactured"
# was schema-valid in a request and a 400.
RECORDABLE_EVENT_KINDS = [str(kind) for kind in services.RECORDABLE_KINDS]


def camel(name: str) -> str:
    """``rated_capacity_ah`` -> ``ratedCapacityAh``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    """``ratedCapacityAh`` -> ``rated_capacity_ah``."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


# --- the EU attribute groups ----------------------------------------------------------


def _field_for(name: str, *, optional: bool = False) -> serializers.Field:
    """A read-only serializer field for one Passport field, under its camelCase
    key (enums as display labels). ``optional``: the schema does not require it
    (drf-spectacular requires every read-only field; these serializers only
    write their output, so a plain ``required=False`` field says it)."""
    model_field = Passport._meta.get_field(name)
    common: dict[str, Any] = {"required": False} if optional else {"read_only": True}
    if model_field.help_text:
        common["help_text"] = model_field.help_text
    if name == "kind":
        return serializers.ChoiceField(
            choices=PASSPORT_KINDS, source="get_kind_display", **common
        )
    if camel(name) != name:
        common["source"] = name
    if model_field.null:
        common["allow_null"] = True
    if isinstance(model_field, dj.UUIDField):
        return serializers.UUIDField(**common)
    if isinstance(model_field, dj.DateTimeField):
        common.pop("read_only", None)
        return utc_datetime(**common)
    if isinstance(model_field, dj.DecimalField):
        return serializers.DecimalField(
            max_digits=model_field.max_digits,
            decimal_places=model_field.decimal_places,
            coerce_to_string=False,
            **common,
        )
    if isinstance(model_field, dj.JSONField):
        if isinstance(model_field.default(), list):
            return serializers.ListField(child=serializers.CharField(), **common)
        return serializers.DictField(child=serializers.FloatField(), **common)
    if isinstance(model_field, dj.FloatField):
        return serializers.FloatField(**common)
    if isinstance(model_field, dj.IntegerField):
        return serializers.IntegerField(**common)
    return serializers.CharField(**common)


def _group_serializer(
    class_name: str, names: tuple[str, ...], optional: tuple[str, ...] = ()
) -> type:
    attrs: dict[str, Any] = {
        camel(name): _field_for(name, optional=name in optional) for name in names
    }
    attrs["__doc__"] = f"EU battery passport attribute group: {', '.join(names)}."
    return type(class_name, (serializers.Serializer,), attrs)


def _group_name(group: str) -> str:
    return group[:1].upper() + group[1:]


PUBLIC_GROUPS: dict[str, type] = {
    group: _group_serializer(f"Passport{_group_name(group)}Public", names)
    for group, names in PUBLIC_FIELDS.items()
}
# A privileged reader's groups: every public group widened by its restricted
# fields, then the restricted-only groups. The widening fields are optional in
# the schema: the detail answers others the same group without them (the fuzz
# campaign as operator: "barcode is a required property").
FULL_GROUPS: dict[str, type] = {
    group: _group_serializer(
        f"Passport{_group_name(group)}",
        PUBLIC_FIELDS.get(group, ()) + RESTRICTED_FIELDS.get(group, ()),
        optional=RESTRICTED_FIELDS.get(group, ()) if group in PUBLIC_FIELDS else (),
    )
    for group in {**PUBLIC_FIELDS, **RESTRICTED_FIELDS}
}


def public_groups(passport: Passport) -> dict[str, Any]:
    return {group: cls(passport).data for group, cls in PUBLIC_GROUPS.items()}


def full_groups(passport: Passport) -> dict[str, Any]:
    return {group: cls(passport).data for group, cls in FULL_GROUPS.items()}


# --- small shapes ---------------------------------------------------------------------


class CustodianSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=CUSTODIAN_KINDS, source="get_custodian_kind_display"
    )
    name = serializers.CharField(source="custodian_name")


class PassportRefSerializer(serializers.Serializer):
    """A passport named in another's genealogy."""

    id = serializers.UUIDField(source="uuid")
    serial = serializers.CharField()
    kind = serializers.ChoiceField(choices=PASSPORT_KINDS, source="get_kind_display")
    bpan = serializers.CharField(allow_null=True)
    state = serializers.ChoiceField(choices=PASSPORT_STATES, source="get_state_display")


class PassportSummarySerializer(serializers.Serializer):
    """A passport in a list: identity, where it is in its life, who holds it."""

    id = serializers.UUIDField(source="uuid")
    serial = serializers.CharField()
    kind = serializers.ChoiceField(choices=PASSPORT_KINDS, source="get_kind_display")
    bpan = serializers.CharField(allow_null=True)
    model = serializers.CharField()
    lot = serializers.CharField()
    state = serializers.ChoiceField(choices=PASSPORT_STATES, source="get_state_display")
    onHold = serializers.BooleanField(source="on_hold")
    holdReason = serializers.CharField(source="hold_reason")
    custodian = CustodianSerializer(source="*")
    version = serializers.IntegerField(help_text="Ledger events so far.")
    manufacturedAt = utc_datetime(source="manufactured_at")
    updatedAt = utc_datetime(source="updated_at")


# ``PassportSummarySerializer`` for ``values()`` rows (``bpmos.listrows``): the
# list page's rows without a model instance or a field object per value.
PASSPORT_ROW_FIELDS = (
    "uuid",
    "serial",
    "kind",
    "bpan",
    "model",
    "lot",
    "state",
    "on_hold",
    "hold_reason",
    "custodian_kind",
    "custodian_name",
    "version",
)
# Its times, read as ``<name>_text`` (``bpmos.listrows.time_texts``, whole
# seconds).
PASSPORT_ROW_TIMES = ("manufactured_at", "updated_at")


@functools.cache
def _summary_labels() -> tuple[dict, dict, dict]:
    """Stored kind, state and custodian kind -> what the summary prints."""
    fields = PassportSummarySerializer().fields
    return (
        labels_of(fields["kind"], Kind.choices),
        labels_of(fields["state"], State.choices),
        labels_of(fields["custodian"].fields["kind"], CustodianKind.choices),
    )


def passport_rows(rows: list[dict]) -> list[dict]:
    """What ``PassportSummarySerializer`` prints for the same passports (the
    tests compare them), from ``PASSPORT_ROW_FIELDS`` and ``PASSPORT_ROW_TIMES``
    rows."""
    kinds, states, custodians = _summary_labels()
    return [
        {
            "id": str(row["uuid"]),
            "serial": row["serial"],
            "kind": kinds.get(row["kind"], row["kind"]),
            "bpan": row["bpan"],
            "model": row["model"],
            "lot": row["lot"],
            "state": states.get(row["state"], row["state"]),
            "onHold": row["on_hold"],
            "holdReason": row["hold_reason"],
            "custodian": {
                "kind": custodians.get(row["custodian_kind"], row["custodian_kind"]),
                "name": row["custodian_name"],
            },
            "version": row["version"],
            "manufacturedAt": utc_text(row["manufactured_at_text"]),
            "updatedAt": utc_text(row["updated_at_text"]),
        }
        for row in rows
    ]


class LastEventSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=EVENT_KINDS)
    label = serializers.CharField()
    occurredAt = utc_datetime(source="occurred_at")


class RegistryEntrySerializer(PassportSummarySerializer):
    """A passport in the registry (S9): the summary and its last ledger event."""

    lastEvent = serializers.SerializerMethodField()

    @extend_schema_field(LastEventSerializer(allow_null=True))
    def get_lastEvent(self, passport) -> dict | None:
        kind = getattr(passport, "last_event_kind", None)
        if not kind:
            return None
        return {
            "version": passport.version,
            "kind": kind,
            "label": EventKind(kind).label if kind in EventKind.values else kind,
            "occurredAt": utc_datetime().to_representation(
                passport.last_event_occurred_at
            ),
        }


class SignatureSerializer(serializers.Serializer):
    """An electronic signature as the trace shows it: who (username and
    printed name), what it means, how and when, and the hash it is bound to."""

    signer = serializers.CharField()
    signerName = serializers.CharField()
    meaning = serializers.ChoiceField(choices=SignatureMeaning.choices)
    meaningLabel = serializers.CharField()
    method = serializers.CharField()
    signedAt = DateTimeField()
    boundHash = serializers.CharField()
    hash = serializers.CharField()


class LedgerEventSerializer(serializers.Serializer):
    """One ledger event. ``kind`` is the code a client posts (``qa_passed``),
    ``label`` its display text."""

    version = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=EVENT_KINDS)
    label = serializers.CharField(source="get_kind_display")
    occurredAt = utc_datetime(source="occurred_at")
    actor = serializers.CharField(
        source="actor_username", help_text="Username; empty for the system."
    )
    data = serializers.DictField()
    prevHash = serializers.CharField(source="prev_hash")
    hash = serializers.CharField()
    signatures = serializers.SerializerMethodField(
        help_text="The electronic signatures bound to this event's hash."
    )

    @extend_schema_field(SignatureSerializer(many=True))
    def get_signatures(self, event) -> list[dict]:
        shown = getattr(event, "signatures_shown", None)
        if shown is None:
            shown = signatures.signatures_by_event([event]).get(event.pk, [])
        return shown


def attach_signatures(events) -> list:
    """Give each event its signatures (one query for all), for the serializer."""
    events = list(events)
    found = signatures.signatures_by_event(events)
    for event in events:
        event.signatures_shown = found.get(event.pk, [])
    return events


def attach_signatures_none(events) -> list:
    """Mark events that cannot carry a signature (a batch's) as having none."""
    events = list(events)
    for event in events:
        event.signatures_shown = []
    return events


class PublicEventSerializer(serializers.Serializer):
    """A ledger event as the public sees it: what and when, not who or details."""

    version = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=EVENT_KINDS)
    label = serializers.CharField(source="get_kind_display")
    occurredAt = utc_datetime(source="occurred_at")


class GenealogySummarySerializer(serializers.Serializer):
    parent = PassportRefSerializer(allow_null=True)
    componentCount = serializers.IntegerField()


class TelemetryLatestSerializer(serializers.Serializer):
    sohPercent = serializers.FloatField(allow_null=True)
    socPercent = serializers.FloatField(allow_null=True)
    temperatureC = serializers.FloatField(allow_null=True)
    at = utc_datetime(allow_null=True, help_text="Time of the newest sample.")


class TelemetryDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    readings = serializers.IntegerField()
    sohAvg = serializers.FloatField(allow_null=True)
    socAvg = serializers.FloatField(allow_null=True)
    temperatureMin = serializers.FloatField(allow_null=True)
    temperatureMax = serializers.FloatField(allow_null=True)


class TelemetrySummarySerializer(serializers.Serializer):
    """Latest values and daily trends (``passports.telemetry.telemetry_summary``)."""

    latest = TelemetryLatestSerializer()
    readings = serializers.IntegerField(help_text="Samples stored in all.")
    firstAt = utc_datetime(allow_null=True)
    lastAt = utc_datetime(allow_null=True)
    days = serializers.IntegerField(help_text="Days of trend in ``daily``.")
    daily = TelemetryDaySerializer(many=True)
    sohChange = serializers.FloatField(
        allow_null=True, help_text="Last day's mean SoH minus the first day's."
    )


class ConformityRuleSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text='Stable rule id, e.g. "bpan.check".')
    message = serializers.CharField(help_text="What is missing or malformed.")


class ConformitySerializer(serializers.Serializer):
    """A passport against ``passports.conformity``'s rules (the rules behind the
    Aadhaar Ready %, docs/compliance.md)."""

    ready = serializers.BooleanField(help_text="Fails no rule of its kind.")
    failingRules = ConformityRuleSerializer(
        many=True, help_text="The rules it fails, in the rules' order."
    )


# --- detail (trace) -------------------------------------------------------------------


def _group_field(cls: type, *, restricted: bool) -> serializers.Field:
    note = " Only for readers of restricted data." if restricted else ""
    return cls(required=not restricted, help_text=f"{cls.__doc__}{note}")


class PassportDetailSchema(PassportSummarySerializer):
    """The schema of a detail (trace) for a reader of restricted data; others
    get the same without ``materials``, ``stateOfHealth``, ``telemetry`` and
    the identity's barcode and RFID. Built by ``passport_detail``."""

    restricted = serializers.BooleanField(
        help_text="Whether the restricted attribute groups are included."
    )
    headHash = serializers.CharField(help_text="Hash of the last ledger event.")
    genealogy = GenealogySummarySerializer()
    conformity = ConformitySerializer()
    telemetry = TelemetrySummarySerializer(required=False)
    ledger = LedgerEventSerializer(many=True)


for _group, _cls in FULL_GROUPS.items():
    PassportDetailSchema._declared_fields[_group] = _group_field(
        _cls, restricted=_group not in PUBLIC_FIELDS
    )


class PassportPublicSchema(serializers.Serializer):
    """What anyone holding the identifier may see (the QR code's target)."""

    id = serializers.UUIDField()
    serial = serializers.CharField()
    kind = serializers.ChoiceField(choices=PASSPORT_KINDS)
    state = serializers.ChoiceField(choices=PASSPORT_STATES)
    history = PublicEventSerializer(many=True)


for _group, _cls in PUBLIC_GROUPS.items():
    PassportPublicSchema._declared_fields[_group] = _cls()


class LookupResultSerializer(serializers.Serializer):
    matchedBy = serializers.ChoiceField(
        choices=["uuid", "bpan", "serial", "barcode", "rfid"]
    )
    passport = PassportSummarySerializer()


class GenealogyNodeSerializer(PassportRefSerializer):
    components = serializers.ListField(
        child=serializers.DictField(),
        help_text="The same shape, one level down (modules of a pack, then cells).",
    )


class GenealogySerializer(serializers.Serializer):
    passport = PassportRefSerializer()
    ancestors = PassportRefSerializer(many=True, help_text="Nearest first.")
    components = GenealogyNodeSerializer(many=True)


class EventRecordedSerializer(serializers.Serializer):
    event = LedgerEventSerializer()
    passport = PassportSummarySerializer()


class TelemetryIngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Samples stored now.")
    duplicates = serializers.IntegerField(help_text="Already stored or repeated.")
    latest = TelemetryLatestSerializer()


class BpanPartsSerializer(serializers.Serializer):
    bpan = serializers.CharField()
    country = serializers.CharField()
    manufacturerCode = serializers.CharField()
    chemistry = serializers.CharField()
    nominalVoltageV = serializers.IntegerField()
    energyKwh = serializers.IntegerField()
    manufactured = serializers.CharField(help_text='"2026-03"')
    plantCode = serializers.CharField()
    serial = serializers.CharField()


class BpanValidResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    bpan = serializers.CharField(help_text="Compacted: upper case, no separators.")
    parts = BpanPartsSerializer()


class LedgerBrokenLinkSerializer(serializers.Serializer):
    passportId = serializers.CharField()
    serial = serializers.CharField()
    version = serializers.IntegerField()
    eventId = serializers.IntegerField(allow_null=True)
    problem = serializers.ChoiceField(
        choices=[
            "altered",
            "removed",
            "inserted",
            "reordered",
            "projection",
            "unverifiable",
        ]
    )
    message = serializers.CharField()


class LedgerUnverifiableSerializer(serializers.Serializer):
    keyId = serializers.CharField(help_text="The unknown audit key's id.")
    events = serializers.IntegerField()
    passports = serializers.IntegerField()


class LedgerVerifyResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    passportsChecked = serializers.IntegerField()
    eventsChecked = serializers.IntegerField()
    firstBroken = LedgerBrokenLinkSerializer(allow_null=True)
    unverifiable = LedgerUnverifiableSerializer(
        many=True,
        help_text="Per key id, the events signed with a key the audit keyring "
        "does not hold (checked but for their HMAC): empty when ok.",
    )


# --- ledger checkpoints and inclusion proofs (passports.checkpoints) -----------------


class LedgerCheckpointSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    createdAt = DateTimeField()
    root = serializers.CharField(help_text="Merkle root (SHA-256, hex).")
    previousRoot = serializers.CharField(
        help_text="The previous checkpoint's root (64 zeros for the first): leaf 0."
    )
    leafCount = serializers.IntegerField()
    eventCount = serializers.IntegerField(help_text="Events newly covered.")
    firstEventId = serializers.IntegerField()
    lastEventId = serializers.IntegerField()


class ProofPassportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    serial = serializers.CharField()


class ProofLinkSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    hash = serializers.CharField()


class ProofChainEventSerializer(serializers.Serializer):
    """One event of the chain path, with every field its HMAC covers."""

    version = serializers.IntegerField()
    kind = serializers.CharField()
    occurredAt = DateTimeField()
    actorUsername = serializers.CharField(allow_blank=True)
    data = serializers.DictField()
    prevHash = serializers.CharField()
    hash = serializers.CharField()
    keyId = serializers.CharField()


class ProofLeafSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The leaf's index in the tree.")
    data = serializers.CharField(
        help_text="The leaf: canonical JSON of {hash, passport, version}."
    )


class LedgerProofSerializer(serializers.Serializer):
    """An event's inclusion in a checkpoint (``passports.merkle.verify_proof``)."""

    passport = ProofPassportSerializer()
    event = ProofLinkSerializer()
    chain = ProofChainEventSerializer(
        many=True, help_text="The event, then each event after it up to the head."
    )
    head = ProofLinkSerializer(help_text="The head the checkpoint holds.")
    leaf = ProofLeafSerializer()
    auditPath = serializers.ListField(
        child=serializers.CharField(),
        help_text="RFC 6962 audit path, bottom-up, hex.",
    )
    checkpoint = LedgerCheckpointSerializer()


# --- input (shape only; the services hold the rules) ----------------------------------

# camelCase body key -> the service's snake_case key, for registration.
REGISTER_FIELDS = (
    "kind",
    "serial",
    "model",
    "lot",
    "manufacturer",
    "manufacturerId",
    "site",
    "manufacturedAt",
    "chemistry",
    "cathodeMaterial",
    "anodeMaterial",
    "electrolyte",
    "criticalRawMaterials",
    "materialComposition",
    "recycledContent",
    "hazardousSubstances",
    "ratedCapacityAh",
    "nominalVoltageV",
    "energyKwh",
    "massKg",
    "expectedCycles",
    "warrantyMonths",
    "carbonFootprintKgCo2ePerKwh",
    "carbonFootprintClass",
    "barcode",
    "rfid",
    "bpan",
    "gtin",
    "manufacturerCode",
    "plantCode",
    "bpanSerial",
    *(camel(name) for name in attributes.REGISTERED_FIELDS),
)


class PassportRegisterSerializer(serializers.Serializer):
    """Register a battery (schema only: ``passports.services.passport_register``
    checks the body). A pack without ``bpan`` is issued one when
    ``manufacturerCode`` and ``plantCode`` are given. Any other key is
    refused (``PassportRegisterInSerializer``: ``REGISTER_FIELDS``). An
    optional key sent as null is not given; so is "" for a text and for an
    EU attribute (``EMPTY_IS_ABSENT``)."""

    refuses_unknown_fields = True

    kind = serializers.ChoiceField(choices=PASSPORT_KINDS)
    # The columns' lengths (``passports.services``: "At most N characters.").
    serial = serializers.CharField(max_length=64)
    model = serializers.CharField(max_length=64)
    lot = serializers.CharField(required=False, max_length=64)
    manufacturer = serializers.CharField(max_length=120)
    manufacturerId = serializers.CharField(required=False, max_length=64)
    site = serializers.CharField(max_length=120)
    manufacturedAt = DateTimeField(required=False)
    chemistry = serializers.ChoiceField(choices=Chemistry.values)
    cathodeMaterial = serializers.CharField(required=False, max_length=120)
    anodeMaterial = serializers.CharField(required=False, max_length=120)
    electrolyte = serializers.CharField(required=False, max_length=120)
    criticalRawMaterials = serializers.ListField(
        child=serializers.CharField(), required=False
    )
    # Material -> percent, each 0-100 (``passports.services``: "A map of
    # material to percent (0-100).").
    materialComposition = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=100), required=False
    )
    recycledContent = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=100), required=False
    )
    hazardousSubstances = serializers.ListField(
        child=serializers.CharField(), required=False
    )
    # Each above 0 (``passports.services._decimal``: "Must be a positive number.").
    ratedCapacityAh = PositiveDecimalField(max_digits=8, decimal_places=2)
    nominalVoltageV = PositiveDecimalField(max_digits=7, decimal_places=2)
    energyKwh = PositiveDecimalField(max_digits=8, decimal_places=3)
    massKg = PositiveDecimalField(max_digits=8, decimal_places=3, required=False)
    # 0 up to the column (``passports.services.WHOLE_NUMBER_LIMITS``).
    expectedCycles = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=services.WHOLE_NUMBER_LIMITS["expected_cycles"],
    )
    warrantyMonths = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=services.WHOLE_NUMBER_LIMITS["warranty_months"],
    )
    carbonFootprintKgCo2ePerKwh = PositiveDecimalField(
        max_digits=8, decimal_places=2, required=False
    )
    carbonFootprintClass = serializers.CharField(required=False, max_length=4)
    barcode = serializers.CharField(required=False, max_length=64)
    rfid = serializers.CharField(required=False, max_length=64)
    bpan = serializers.CharField(required=False)
    gtin = serializers.CharField(
        required=False,
        help_text="GS1 GTIN (8, 12, 13 or 14 digits, check digit verified); "
        "with it the serial is a GS1 serial (AI 21: up to 20 characters).",
    )
    manufacturerCode = serializers.CharField(required=False)
    plantCode = serializers.CharField(required=False)
    bpanSerial = serializers.CharField(required=False)


def _register_field(name: str) -> serializers.Field:
    """The schema of a typed-in EU attribute at registration."""
    model_field = Passport._meta.get_field(name)
    attribute = attributes.BY_FIELD.get(name)
    help_text = (attribute.label if attribute else name) + (
        f" ({attribute.unit})" if attribute and attribute.unit else ""
    )
    common: dict[str, Any] = {"required": False, "help_text": help_text}
    if name == "battery_category":
        return serializers.ChoiceField(choices=BATTERY_CATEGORIES, **common)
    if isinstance(model_field, dj.DecimalField):
        # The attribute's own check, as bounds (``bpmos.openapi.AutoSchema``
        # adds the column's places as ``multipleOf``): a positive one is at
        # least its smallest step, a percent 0-100; the idle temperature
        # bounds (no attribute of their own) any number the column holds.
        check = attribute.check if attribute else None
        bounds: dict[str, Decimal] = {}
        if check is attributes.is_positive:
            bounds["min_value"] = Decimal(1).scaleb(-model_field.decimal_places)
        elif check is attributes.is_percent:
            bounds = {"min_value": Decimal(0), "max_value": Decimal(100)}
        return serializers.DecimalField(
            max_digits=model_field.max_digits,
            decimal_places=model_field.decimal_places,
            coerce_to_string=False,
            **bounds,
            **common,
        )
    if isinstance(model_field, dj.IntegerField):
        return serializers.IntegerField(min_value=1, max_value=32767, **common)
    if isinstance(model_field, dj.URLField):
        return serializers.URLField(max_length=model_field.max_length, **common)
    if isinstance(model_field, dj.CharField):
        return serializers.CharField(max_length=model_field.max_length, **common)
    if name == "carbon_footprint_per_stage":
        return serializers.DictField(
            child=serializers.FloatField(min_value=0), **common
        )
    if name == "labels":
        return serializers.ListField(
            child=serializers.ChoiceField(choices=sorted(attributes.LABELS)), **common
        )
    return serializers.ListField(child=serializers.CharField(), **common)


for _name in attributes.REGISTERED_FIELDS:
    PassportRegisterSerializer._declared_fields[camel(_name)] = _register_field(_name)


def _empty_is_absent(key: str, field: serializers.Field) -> str | None:
    """What registration (``passports.services.passport_register``) reads as
    not given, for ``bpmos.openapi.AutoSchema`` to state: an EU attribute sent
    as null, "", [] or {} is not declared; another optional key null, or ""
    where it takes text. The materials' lists and maps take neither."""
    name = snake(key)
    if name in attributes.REGISTERED_FIELDS:
        return "empty"
    if field.required or isinstance(
        field, serializers.ListField | serializers.DictField
    ):
        return None
    if name in STRIPPED_TEXT:
        return "text"  # services._text: white space alone is blank
    if isinstance(
        field, serializers.CharField | serializers.ChoiceField | DateTimeField
    ):
        return "blank"
    return "null"


# The optional texts registration reads with ``services._text`` (stripped).
STRIPPED_TEXT = (*services.OPTIONAL_TEXT, "barcode", "rfid")


# The attribute checks a schema can state (``passports.attributes``; the view
# keeps the service's 400): a link is an http(s) address, a list of names
# holds each name once, as text (twice in other case stays the service's),
# the labels each once, the carbon footprint a number for every stage.
PassportRegisterSerializer.property_rules = {
    **{
        camel(name): {"pattern": attributes.URL_PATTERN}
        for name in attributes.REGISTERED_FIELDS
        if isinstance(Passport._meta.get_field(name), dj.URLField)
    },
    "sparePartSources": {
        "uniqueItems": True,
        "items": {"type": "string", "pattern": attributes.TEXT_PATTERN},
    },
    "labels": {"uniqueItems": True},
    "gtin": {"pattern": gs1.SCHEMA_PATTERN},
    "carbonFootprintPerStage": {
        "properties": {
            stage: {"type": "number", "minimum": 0}
            for stage in attributes.CARBON_STAGES
        },
        "required": list(attributes.CARBON_STAGES),
        "additionalProperties": False,
    },
}
PassportRegisterSerializer.empty_is_absent = {
    key: how
    for key, field in PassportRegisterSerializer._declared_fields.items()
    if (how := _empty_is_absent(key, field))
}


class PassportRegisterInSerializer(serializers.Serializer):
    """Registration's body in the service's terms: camelCase keys become the
    model's field names and ``kind`` may be its display name. Shape only: a
    field registration does not know is refused (400 naming it); the values
    are checked by ``passports.services.passport_register``."""

    def to_internal_value(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(data) - set(REGISTER_FIELDS))
        if unknown:
            raise InvalidInput(
                f"Invalid input: {unknown[0]}: Unknown field.",
                code="validation_error",
                details={unknown[0]: ["Unknown field."]},
            )
        values = {snake(key): value for key, value in data.items()}
        if isinstance(values.get("kind"), str):
            values["kind"] = enum_value(Kind, values["kind"]) or values["kind"]
        return values


# The services' own words for a version below 1 (passports.services), so the
# schema states the bound (minimum 1) and the answer stays the same.
EXPECTED_VERSION_ERRORS = {"min_value": "The version you read: 1 or more."}


class EventRecordSerializer(serializers.Serializer):
    """Record a lifecycle event; ``data`` per kind is in docs/passports.md."""

    kind = serializers.ChoiceField(choices=RECORDABLE_EVENT_KINDS)
    data = serializers.DictField(required=False)
    expectedVersion = serializers.IntegerField(
        required=False,
        min_value=1,
        error_messages=EXPECTED_VERSION_ERRORS,
        help_text="The version you read; 409 if it moved on.",
    )
    occurredAt = DateTimeField(required=False)
    password = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Re-entered to sign a signed step (released: the QA release).",
    )


class SignRequestSerializer(serializers.Serializer):
    """Sign the head event of a passport's ledger (a dispatch release)."""

    refuses_unknown_fields = True  # the view's "Unknown field." (400)

    meaning = serializers.ChoiceField(choices=[SignatureMeaning.DISPATCH_RELEASE])
    password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Re-entered.",
    )
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="The head version you read."
    )


class EventBatchItemSerializer(EventRecordSerializer):
    passport = serializers.CharField(
        help_text="UUID, BPAN, serial, barcode or RFID tag of the passport."
    )
    password = None  # a batch holds no signed step


class EventBatchSerializer(serializers.Serializer):
    """Events recorded in one transaction, in order, all or nothing."""

    events = EventBatchItemSerializer(many=True, min_length=1, max_length=1000)


class BatchLedgerEventSerializer(LedgerEventSerializer):
    passportId = serializers.UUIDField(help_text="The passport's UUID.")
    serial = serializers.CharField()


class EventBatchRecordedSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    events = BatchLedgerEventSerializer(many=True)


class CustodianInSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CUSTODIAN_KINDS)
    name = serializers.CharField(max_length=services.CUSTODIAN_NAME_MAX)


class CustodyTransferSerializer(serializers.Serializer):
    to = CustodianInSerializer()
    reference = serializers.CharField(
        required=False, max_length=services.CUSTODY_REFERENCE_MAX
    )
    expectedVersion = serializers.IntegerField(
        required=False, min_value=1, error_messages=EXPECTED_VERSION_ERRORS
    )


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
)
class _IdentifierListField(serializers.ListField):
    """The view refuses an empty list (its own message); the schema says so."""


class ComponentsSerializer(serializers.Serializer):
    components = _IdentifierListField(
        child=serializers.CharField(), help_text="Identifiers of the components."
    )


def _measurement(name: str, **kwargs) -> serializers.FloatField:
    _, low, high = MEASUREMENTS[name]
    # null: not measured in this sample (the service reads it so).
    return serializers.FloatField(
        required=False, allow_null=True, min_value=low, max_value=high, **kwargs
    )


class TelemetryReadingInSerializer(serializers.Serializer):
    """One sample: a time and at least one measurement (a row with none is a
    400 "Holds no measurement."; the schema says so with ``anyOf``)."""

    # Each measurement by its name or the model's (``soh_percent``), which the
    # service takes too: a row with only an alias is not refused.
    one_of_required = (
        *MEASUREMENTS,
        *(column for column, _, _ in MEASUREMENTS.values()),
    )
    # Any other key is refused ("Unknown field."): the schema says
    # ``additionalProperties: false`` (``bpmos.openapi.AutoSchema``), and
    # declares the model's names the service takes as aliases below.
    refuses_unknown_fields = True

    ts = DateTimeField()
    # The bounds are the service's (``passports.telemetry.MEASUREMENTS``): a
    # current of -8000 A was schema-valid and refused.
    sohPercent = _measurement("sohPercent")
    socPercent = _measurement("socPercent")
    temperatureC = _measurement("temperatureC")
    voltageV = _measurement("voltageV")
    currentA = _measurement("currentA")


for _name, (_column, _, _) in MEASUREMENTS.items():
    TelemetryReadingInSerializer._declared_fields[_column] = _measurement(
        _name, help_text=f"Alias of {_name}."
    )


@extend_schema_field({"type": "string", "pattern": bpan_rules.SCHEMA_PATTERN})
class _BpanField(serializers.CharField):
    """A BPAN as ``passports.bpan.parse`` reads it: 21 characters in its
    sections, either case, spaces and hyphens anywhere. Its check character
    is not in the pattern: saying whether it matches is the endpoint's answer
    (400)."""


class BpanValidateSerializer(serializers.Serializer):
    bpan = _BpanField()


# --- builders -------------------------------------------------------------------------


def _second_life(passport: Passport) -> dict[str, Any]:
    """The EU battery status and the second-life links, in the detail and the
    public passport (``passports.secondlife``)."""
    from passports import secondlife

    return {
        "batteryStatus": attributes.eu_status(
            state=passport.state, battery_status=passport.battery_status
        ),
        "secondLife": secondlife.lineage(passport),
    }


class PassportLinkSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    serial = serializers.CharField()
    bpan = serializers.CharField(allow_null=True)
    batteryStatus = serializers.ChoiceField(
        choices=list(attributes.BATTERY_STATUSES), allow_null=True
    )


class SecondLifeLinksSerializer(serializers.Serializer):
    """A passport's second-life links: where it came from, what came of it."""

    predecessor = PassportLinkSerializer(allow_null=True)
    successors = PassportLinkSerializer(many=True)


for _schema in (PassportDetailSchema, PassportPublicSchema):
    _schema._declared_fields["batteryStatus"] = serializers.ChoiceField(
        choices=list(attributes.BATTERY_STATUSES),
        allow_null=True,
        help_text="EU battery status (Annex XIII 4(c)).",
    )
    _schema._declared_fields["secondLife"] = SecondLifeLinksSerializer()


class SecondLifeSerializer(serializers.Serializer):
    """A second-life change (schema only: ``passports.secondlife`` checks it).
    Any registration field (``PassportRegisterSerializer``, but ``kind``,
    ``manufacturer`` and ``manufacturedAt``) may be given to override what the
    new passport inherits; any other key is refused (``SECOND_LIFE_FIELDS``)."""

    refuses_unknown_fields = True

    status = serializers.ChoiceField(choices=["Repurposed", "Reused", "Remanufactured"])
    serial = serializers.CharField(
        max_length=64, help_text="The new passport's serial."
    )
    operator = serializers.CharField(
        max_length=120,
        help_text="Economic operator placing the battery on the market again: "
        "the new passport's manufacturer and custodian.",
    )
    site = serializers.CharField(required=False, max_length=120)
    note = serializers.CharField(required=False, max_length=300)
    expectedVersion = serializers.IntegerField(required=False, min_value=1)
    occurredAt = DateTimeField(required=False)
    gtin = serializers.CharField(required=False)
    bpan = serializers.CharField(required=False)
    manufacturerCode = serializers.CharField(required=False)
    plantCode = serializers.CharField(required=False)
    bpanSerial = serializers.CharField(required=False)
    model = serializers.CharField(required=False, max_length=64)
    batteryCategory = serializers.ChoiceField(
        choices=BATTERY_CATEGORIES, required=False
    )
    chemistry = serializers.ChoiceField(choices=Chemistry.values, required=False)
    ratedCapacityAh = PositiveDecimalField(
        max_digits=8, decimal_places=2, required=False
    )
    nominalVoltageV = PositiveDecimalField(
        max_digits=7, decimal_places=2, required=False
    )
    energyKwh = PositiveDecimalField(max_digits=8, decimal_places=3, required=False)


for _key, _field in PassportRegisterSerializer._declared_fields.items():
    if _key in SecondLifeSerializer._declared_fields or _key in {
        "kind",
        "manufacturer",
        "manufacturedAt",
    }:
        continue
    if not _field.required:  # the required ones are declared optional above
        SecondLifeSerializer._declared_fields[_key] = copy.deepcopy(_field)


SecondLifeSerializer.property_rules = PassportRegisterSerializer.property_rules


class SecondLifeResultSerializer(serializers.Serializer):
    passport = PassportSummarySerializer(help_text="The new passport.")
    predecessor = PassportSummarySerializer(help_text="The old one, Superseded.")
    events = LedgerEventSerializer(
        many=True, help_text="The old chain's event, then the new chain's first."
    )


def passport_detail(
    passport: Passport,
    *,
    restricted: bool,
    events: list,
    parent: Passport | None,
    component_count: int,
    telemetry: dict | None,
) -> dict[str, Any]:
    """The detail (trace) of a passport. ``restricted``: whether the reader may
    see the restricted groups (decided by the view from ``bpmos.access``);
    without it the restricted groups, the telemetry and the identity's barcode
    and RFID are left out, not nulled."""
    body: dict[str, Any] = dict(PassportSummarySerializer(passport).data)
    body["restricted"] = restricted
    body["headHash"] = passport.head_hash
    body.update(_second_life(passport))
    body.update(full_groups(passport) if restricted else public_groups(passport))
    body["genealogy"] = {
        "parent": PassportRefSerializer(parent).data if parent else None,
        "componentCount": component_count,
    }
    body["conformity"] = conformity.passport_conformity(passport).as_dict()
    if restricted and telemetry is not None:
        body["telemetry"] = TelemetrySummarySerializer(telemetry).data
    body["ledger"] = LedgerEventSerializer(attach_signatures(events), many=True).data
    return body


def passport_public(passport: Passport, *, events: list) -> dict[str, Any]:
    """What the public sees: identity and the public groups, and the history as
    kinds and times (no actors, no event data: those name people and firms)."""
    return {
        "id": str(passport.uuid),
        "serial": passport.serial,
        "kind": passport.get_kind_display(),
        "state": passport.get_state_display(),
        **_second_life(passport),
        **public_groups(passport),
        "history": PublicEventSerializer(events, many=True).data,
    }


# --- the EU attribute set and completeness (passports.attributes) ---------------


def _json_value(value: Any) -> Any:
    """A stored value as JSON: decimals as numbers, times in UTC, UUIDs as text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return utc_datetime().to_representation(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


class PassportAttributeSerializer(serializers.Serializer):
    """One attribute of the Battery Pass data model v1.2 with its value."""

    key = serializers.CharField(help_text='Battery Pass name, e.g. "ratedCapacity".')
    group = serializers.CharField(help_text="Battery Pass submodel.")
    label = serializers.CharField()
    tier = serializers.ChoiceField(choices=ATTRIBUTE_TIERS)
    unit = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=ATTRIBUTE_SOURCES)
    value = serializers.JSONField(allow_null=True, help_text="null: not declared.")
    # Not read-only: drf-spectacular requires every read-only field, and the
    # static attributes have no lastUpdate (the schema fuzz's chains found it).
    lastUpdate = DateTimeField(
        required=False,
        allow_null=True,
        help_text="Dynamic attributes only: when the value last changed.",
    )


def attribute_rows(rows: list[dict]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        attribute = row["attribute"]
        item = {
            "key": attribute.key,
            "group": attribute.group,
            "label": attribute.label,
            "tier": str(attribute.tier),
            "unit": attribute.unit,
            "source": str(attribute.source),
            "value": _json_value(row["value"]),
        }
        if "lastUpdate" in row:
            item["lastUpdate"] = _json_value(row["lastUpdate"])
        out.append(item)
    return out


class PassportAttributesSerializer(serializers.Serializer):
    """A passport's EU attribute set as the reader may see it."""

    id = serializers.UUIDField()
    serial = serializers.CharField()
    tiers = serializers.ListField(
        child=serializers.ChoiceField(choices=ATTRIBUTE_TIERS),
        help_text="The tiers this answer includes.",
    )
    attributes = PassportAttributeSerializer(many=True)


class MissingAttributeSerializer(serializers.Serializer):
    key = serializers.CharField()
    group = serializers.CharField()
    label = serializers.CharField()


class CompletenessSerializer(serializers.Serializer):
    """Which mandatory attributes of its category a passport has present and
    valid (``passports.attributes.completeness``)."""

    category = serializers.ChoiceField(
        choices=BATTERY_CATEGORIES,
        allow_null=True,
        help_text="null: not declared (then what every category needs counts).",
    )
    percent = serializers.FloatField(allow_null=True)
    complete = serializers.BooleanField()
    mandatory = serializers.IntegerField()
    present = serializers.IntegerField()
    missing = MissingAttributeSerializer(many=True)


class GrantSerializer(serializers.Serializer):
    """An access grant (``passports.grants``); never its token."""

    id = serializers.IntegerField()
    party = serializers.CharField()
    passportId = serializers.UUIDField(source="passport.uuid", allow_null=True)
    customer = serializers.CharField()
    expiresAt = utc_datetime(source="expires_at")
    issuedAt = utc_datetime(source="issued_at")
    revokedAt = utc_datetime(source="revoked_at", allow_null=True)


class GrantIssuedSerializer(GrantSerializer):
    token = serializers.CharField(
        help_text="Send as the X-Passport-Grant header; shown only now."
    )


class GrantIssueSerializer(serializers.Serializer):
    refuses_unknown_fields = True  # the view's "Unknown field." (400)

    party = serializers.CharField(max_length=120)
    passport = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Any identifier of the one passport (null: none).",
    )
    customer = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=120,
        help_text="Or: the custodian name (null: none).",
    )
    days = serializers.IntegerField(required=False, min_value=1, max_value=90)
