"""Shapes of the dispatch desk's contract: ``{ "success": true, ... }`` bodies
with ``productId``, ``jobId``, ``currentState`` ("ON"/"OFF") and
``isDispatchable``; lifecycle states as display names ("Warehoused"); times in
UTC ("2026-01-15T10:30:00Z"). Values come from ``passports.dispatch.selectors``;
nothing here computes. Request serializers only check types and presence: the
rules are ``passports.dispatch.services``'. The dashboard status body
(``DashboardStatusSerializer``) is served by ``bpmos.dashboards``.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import utc_datetime, utc_text
from bpmos.textfields import IdentifierField
from passports.models import JobState, Kind, State

JOB_STATES = JobState.values  # ["ON", "OFF"]
LIFECYCLE_ACTIONS = ["move_to_past", "reactivate", "update_state"]


@extend_schema_field({"type": "string", "enum": LIFECYCLE_ACTIONS})
class _ActionField(serializers.CharField):
    """Text in the contract's error format (the view answers an unknown action
    400 naming the three); the schema lists them."""


def _success() -> serializers.BooleanField:
    return serializers.BooleanField(default=True, help_text="Always true.")


# --- requests -----------------------------------------------------------------


class _ProductRefSerializer(serializers.Serializer):
    productId = serializers.CharField(
        max_length=64,
        help_text="The product's serial (or its UUID, BPAN, barcode or RFID).",
    )
    jobId = IdentifierField(  # "456" or 456
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=20,
        help_text="The job the caller saw; refused (409) when no longer the latest.",
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=300,
        trim_whitespace=False,  # the service trims and judges it
    )
    carrier = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=120,
        help_text='Who takes custody when the reason is "dispatched" '
        '(default "Logistics").',
    )


class MoveToPastInSerializer(_ProductRefSerializer):
    """Move a live product to past; reason "dispatched" (the default) ships it."""


class LifecycleActionInSerializer(_ProductRefSerializer):
    """One lifecycle action on a product."""

    action = _ActionField(
        max_length=40,
        help_text="move_to_past | reactivate | update_state; anything else is 400.",
    )
    # The contract's two job states, and nothing else, whatever the action: a
    # "state" of "X" with move_to_past was once ignored, and the schema said
    # "text up to 3 characters". Blank and null stay "not given" (the body's
    # shape is the contract's); update_state without one is 400 (the service).
    state = serializers.ChoiceField(
        choices=JOB_STATES,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text='For update_state: "ON" reactivates, "OFF" moves to past.',
    )


# --- responses ----------------------------------------------------------------


class DispatchableProductSerializer(serializers.Serializer):
    """One product the desk may ship now."""

    productId = serializers.CharField(source="serial")
    jobId = serializers.CharField(source="job_id")
    serial = serializers.CharField()
    bpan = serializers.CharField(allow_null=True)
    kind = serializers.CharField(source="get_kind_display", help_text='"Pack"')
    model = serializers.CharField()
    lot = serializers.CharField()
    state = serializers.CharField(
        source="get_state_display", help_text='"Warehoused" or "Reserved".'
    )
    currentState = serializers.CharField(
        default=JobState.ON, help_text='Always "ON" here.'
    )
    isDispatchable = serializers.BooleanField(
        default=True, help_text="Always true here."
    )
    location = serializers.CharField(
        required=False, help_text="Where it was warehoused, when recorded."
    )
    updatedAt = utc_datetime(source="updated_at")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["jobId"] = str(instance.job_id)
        data["currentState"] = JobState.ON
        data["isDispatchable"] = True
        if not getattr(instance, "location", None):
            data.pop("location", None)
        return data


def dispatchable_product_rows(rows: list[dict]) -> list[dict]:
    """What ``DispatchableProductSerializer`` prints for the same products (the
    tests compare them), from ``selectors.dispatchable_rows()``: no model
    instance or field object per value."""
    kinds, states = dict(Kind.choices), dict(State.choices)
    products = []
    for row in rows:
        product = {
            "productId": row["serial"],
            "jobId": str(row["job_id"]),
            "serial": row["serial"],
            "bpan": row["bpan"],
            "kind": str(kinds.get(row["kind"], row["kind"])),
            "model": row["model"],
            "lot": row["lot"],
            "state": str(states.get(row["state"], row["state"])),
            "currentState": JobState.ON,
            "isDispatchable": True,
        }
        if row["location"]:
            product["location"] = str(row["location"])
        product["updatedAt"] = utc_text(row["updated_at_text"])
        products.append(product)
    return products


class DispatchableListSerializer(serializers.Serializer):
    success = _success()
    products = DispatchableProductSerializer(many=True)
    count = serializers.IntegerField()


class DispatchCustodianSerializer(serializers.Serializer):
    kind = serializers.CharField(source="custodian_kind", help_text='"manufacturer"')
    name = serializers.CharField(source="custodian_name")


class StageSerializer(serializers.Serializer):
    """One ledger event of the product."""

    stage = serializers.CharField(source="kind", help_text='Event kind: "warehoused".')
    label = serializers.CharField(source="get_kind_display")
    timestamp = utc_datetime(source="occurred_at")
    version = serializers.IntegerField(help_text="Its place in the ledger (1, 2…).")
    by = serializers.CharField(source="actor_username", help_text="Username or ''.")
    data = serializers.DictField(help_text="What the event recorded.")


class JobSerializer(serializers.Serializer):
    """One dispatch job of the product, newest first."""

    jobId = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=JOB_STATES)
    reason = serializers.CharField()
    createdAt = utc_datetime(source="created_at")
    updatedAt = utc_datetime(source="updated_at")

    def get_jobId(self, job) -> str:
        return str(job.pk)


class TransitionSerializer(serializers.Serializer):
    """One move between live and past."""

    # "from" is a Python keyword: declared in __init__ below.
    to = serializers.ChoiceField(source="to_state", choices=JOB_STATES)
    reason = serializers.CharField()
    at = utc_datetime()
    by = serializers.CharField(help_text="Username of who made the move.")
    jobId = serializers.CharField(source="job_id", allow_null=True)
    event = serializers.CharField(help_text="dispatched | moved_to_past | reactivated")
    carrier = serializers.CharField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        ordered = {
            "from": serializers.ChoiceField(source="from_state", choices=JOB_STATES)
        }
        ordered.update(fields)
        return ordered

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not data.get("carrier"):
            data.pop("carrier", None)
        return data


class LifecycleSerializer(serializers.Serializer):
    """Everything about one product's lifecycle: its stages (ledger events with
    timestamps), its desk state and every live/past move."""

    productId = serializers.CharField(source="passport.serial")
    passportId = serializers.UUIDField(source="passport.uuid")
    jobId = serializers.SerializerMethodField()
    currentState = serializers.ChoiceField(
        source="current_state",
        choices=JOB_STATES,
        allow_null=True,
        help_text="Null until the product first reaches the warehouse.",
    )
    isDispatchable = serializers.BooleanField(source="is_dispatchable")
    serial = serializers.CharField(source="passport.serial")
    bpan = serializers.CharField(source="passport.bpan", allow_null=True)
    kind = serializers.CharField(source="passport.get_kind_display")
    model = serializers.CharField(source="passport.model")
    lot = serializers.CharField(source="passport.lot")
    state = serializers.CharField(
        source="passport.get_state_display", help_text='Lifecycle: "Warehoused".'
    )
    onHold = serializers.BooleanField(source="passport.on_hold")
    holdReason = serializers.CharField(source="passport.hold_reason")
    custodian = DispatchCustodianSerializer(source="passport")
    version = serializers.IntegerField(source="passport.version")
    stages = StageSerializer(source="events", many=True)
    jobs = JobSerializer(many=True)
    transitions = TransitionSerializer(many=True)
    updatedAt = utc_datetime(source="passport.updated_at")

    def get_jobId(self, lifecycle) -> str | None:
        return str(lifecycle.job.pk) if lifecycle.job is not None else None


class LifecycleResponseSerializer(serializers.Serializer):
    success = _success()
    lifecycle = LifecycleSerializer()


class TransitionHistorySerializer(serializers.Serializer):
    success = _success()
    productId = serializers.CharField()
    transitions = TransitionSerializer(many=True)


class ProductCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    live = serializers.IntegerField(help_text='Latest job "ON".')
    past = serializers.IntegerField(help_text='Latest job "OFF".')
    dispatchable = serializers.IntegerField()
    onHold = serializers.IntegerField(source="on_hold")
    byState = serializers.DictField(
        source="by_state",
        child=serializers.IntegerField(),
        help_text='Lifecycle state (display name) -> count: {"Warehoused": 12, …}.',
    )


class MachineCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    byState = serializers.DictField(
        source="by_state",
        child=serializers.IntegerField(),
        help_text='Machine state (display name) -> count: {"Running": 9, …}.',
    )


class StatisticsSerializer(serializers.Serializer):
    dispatchedToday = serializers.IntegerField(source="dispatched_today")
    movedToPastToday = serializers.IntegerField(
        source="moved_to_past_today", help_text="Dispatches and manual moves."
    )
    reactivatedToday = serializers.IntegerField(source="reactivated_today")
    warehousedToday = serializers.IntegerField(source="warehoused_today")
    since = utc_datetime(help_text="Start of today (TIME_ZONE).")
    lastDispatchedAt = utc_datetime(source="last_dispatched_at", allow_null=True)


class DashboardStatusSerializer(serializers.Serializer):
    success = _success()
    products = ProductCountsSerializer()
    machines = MachineCountsSerializer()
    statistics = StatisticsSerializer()
    timestamp = utc_datetime()


class StreamTicketSerializer(serializers.Serializer):
    success = _success()
    ticket = serializers.CharField(help_text="Single use; redeem within expiresIn s.")
    expiresIn = serializers.IntegerField(help_text="Seconds to open the stream.")
    url = serializers.CharField(help_text="The stream URL with the ticket.")
