"""Shapes of the control-UI runbook endpoints (contract payloads A and B).

camelCase, display enums, times as "2026-01-15T10:30:00Z". The values come from
``bpmos.dashboards.controltower``; nothing here computes.
"""

from rest_framework import serializers

from bpmos.dashboards.controltower import RunbookHealth, StageState
from bpmos.fields import choice_labels, utc_datetime
from exceptions.api.serializers import EXCEPTION_TYPES, SEVERITIES
from passports.models import CustodianKind
from passports.selectors import CUSTODIANS_SHOWN, WARRANTY_EXPIRING_DAYS
from runbooks.api.serializers import GATE_STATUSES, GATE_TYPES
from runbooks.models import RunbookKind

# The display enums, named once for the OpenAPI schema (ENUM_NAME_OVERRIDES).
RUNBOOK_STATUSES = [health.value for health in RunbookHealth]
STAGE_STATUSES = [state.value for state in StageState]
CUSTODIAN_KINDS = choice_labels(CustodianKind)


class RunbookSummarySerializer(serializers.Serializer):
    """Payload A "Runbook Summary", plus ``progress`` (whole percent)."""

    id = serializers.CharField(help_text='Runbook id, e.g. "manufacturing".')
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=RUNBOOK_STATUSES)
    currentStage = serializers.CharField(
        source="current_stage", allow_null=True, help_text='"S5 Module Assembly"'
    )
    blockReason = serializers.CharField(
        source="block_reason", allow_null=True, help_text="Null unless Blocked."
    )
    roles = serializers.ListField(child=serializers.CharField())
    lastUpdate = utc_datetime(source="last_update")
    progress = serializers.IntegerField(
        min_value=0, max_value=100, help_text="Done stages of active work orders, %."
    )


class WorkOrderCountsSerializer(serializers.Serializer):
    planned = serializers.IntegerField()
    inProgress = serializers.IntegerField(source="in_progress")
    completed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class CustodyShareSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CUSTODIAN_KINDS)
    count = serializers.IntegerField(min_value=0)


class CustodyHolderSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CUSTODIAN_KINDS)
    name = serializers.CharField(help_text='"Greenline Telecom Infra Ltd"')
    count = serializers.IntegerField(min_value=1)


class CustodyContextSerializer(serializers.Serializer):
    """Who holds the batteries of the runbook's lots now (battery passports)."""

    passports = serializers.IntegerField(
        min_value=1,
        help_text="Batteries of the lots, as units: passports not assembled into "
        "another (a pack counts once with its modules and cells).",
    )
    mix = CustodyShareSerializer(
        many=True,
        help_text="Count per custodian kind, every kind, in chain order "
        "(Manufacturer, Logistics, Customer, Service, Recycler).",
    )
    custodians = CustodyHolderSerializer(
        many=True,
        help_text=f"The current custodians, largest first (at most "
        f"{CUSTODIANS_SHOWN}).",
    )


class WarrantyContextSerializer(serializers.Serializer):
    """Warranty standing of the batteries of the runbook's lots. Cover starts at
    delivery (the passport's ``delivered`` event) and lasts its warranty months;
    notDelivered + underWarranty + expired = passports."""

    passports = serializers.IntegerField(min_value=1)
    notDelivered = serializers.IntegerField(
        source="not_delivered", help_text="Not delivered yet: cover not started."
    )
    underWarranty = serializers.IntegerField(
        source="under_warranty", help_text="Delivered and still covered."
    )
    expiringWithin90Days = serializers.IntegerField(
        source="expiring_soon",
        help_text=f"Of underWarranty, cover ending within "
        f"{WARRANTY_EXPIRING_DAYS} days.",
    )
    expired = serializers.IntegerField(help_text="Delivered, cover ended.")
    nextExpiry = utc_datetime(
        source="next_expiry",
        allow_null=True,
        help_text="When the next cover ends; null when none is running.",
    )


class RunbookDetailSerializer(serializers.Serializer):
    """The summary's keys, then the runbook's template facts and context."""

    id = serializers.CharField(source="summary.id")
    title = serializers.CharField(source="summary.title")
    status = serializers.ChoiceField(source="summary.status", choices=RUNBOOK_STATUSES)
    currentStage = serializers.CharField(
        source="summary.current_stage", allow_null=True
    )
    blockReason = serializers.CharField(source="summary.block_reason", allow_null=True)
    roles = serializers.ListField(source="summary.roles", child=serializers.CharField())
    lastUpdate = utc_datetime(source="summary.last_update")
    progress = serializers.IntegerField(source="summary.progress")
    kind = serializers.ChoiceField(choices=choice_labels(RunbookKind))
    description = serializers.CharField()
    sequential = serializers.BooleanField()
    stageCount = serializers.IntegerField(source="stage_count")
    workOrders = WorkOrderCountsSerializer(source="work_orders")
    custody = CustodyContextSerializer(
        allow_null=True,
        help_text="Current custody of the batteries of the lots of the runbook's "
        "work orders (any status); null when those lots have no passports.",
    )
    warranty = WarrantyContextSerializer(
        allow_null=True,
        help_text="Warranty context of the same batteries; null when those lots "
        "have no passports.",
    )


class StageGateSerializer(serializers.Serializer):
    """The stage's most restrictive gate (Locked > Closed > Open)."""

    status = serializers.ChoiceField(choices=GATE_STATUSES)
    type = serializers.ChoiceField(choices=GATE_TYPES)
    condition = serializers.CharField()


class StageExceptionSerializer(serializers.Serializer):
    id = serializers.CharField(help_text='"EX-001"')
    type = serializers.ChoiceField(choices=EXCEPTION_TYPES)
    severity = serializers.ChoiceField(choices=SEVERITIES)


class StageDetailSerializer(serializers.Serializer):
    """Payload B "Stage Detail"."""

    id = serializers.CharField(help_text='Stage id, e.g. "mfg-05".')
    name = serializers.CharField(help_text='"Module Assembly (S5)"')
    status = serializers.ChoiceField(choices=STAGE_STATUSES)
    gate = StageGateSerializer(allow_null=True)
    exception = StageExceptionSerializer(allow_null=True)
