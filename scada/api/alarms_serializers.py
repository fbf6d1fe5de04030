"""Alert rules and alarms as the connectors contract shapes them (snake_case;
times ISO 8601 UTC)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import DateTimeField, utc_datetime
from bpmos.filters import INT64_MAX
from bpmos.jsonfields import FlagField, NumberField, WholeNumberField
from exceptions.models import Severity
from scada.alarms import MAX_SHELVE
from scada.api.alarms_selectors import is_chattering
from scada.models import AlarmEvent, AlarmState

# The same words as exceptions' severities (one enum in the OpenAPI schema).
SEVERITIES = Severity.choices
MAX_DELAY_S = 86_400  # a day
MAX_ESCALATE_S = 7 * 86_400
CHATTER_PERIOD = timedelta(hours=24)  # the chattering report's default


class AlertRuleSerializer(serializers.Serializer):
    """A rule as read: its settings, and whether it sees its tag in alarm."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    tag = serializers.IntegerField(source="tag_id", help_text="Tag id.")
    tag_name = serializers.CharField(source="tag.tag_name")
    high_limit = serializers.FloatField(allow_null=True)
    low_limit = serializers.FloatField(allow_null=True)
    deadband = serializers.FloatField()
    on_delay_s = serializers.IntegerField()
    off_delay_s = serializers.IntegerField()
    severity = serializers.ChoiceField(choices=SEVERITIES)
    message = serializers.CharField()
    escalate_after_s = serializers.IntegerField(allow_null=True)
    create_work_order = serializers.BooleanField()
    enabled = serializers.BooleanField()
    in_alarm = serializers.BooleanField(
        help_text="The rule sees its tag beyond a limit (after the on-delay)."
    )
    created_at = utc_datetime()
    updated_at = utc_datetime()


class AlertRuleInputSerializer(serializers.Serializer):
    """A rule as written (POST: name and tag required; PATCH: any subset).
    The limits' rules (at least one, low below high, deadband at least 0 and
    below the gap) are the service's: 400 naming the field."""

    name = serializers.CharField(max_length=100)
    tag = WholeNumberField(min_value=1, max_value=INT64_MAX, help_text="Tag id.")
    high_limit = NumberField(required=False, allow_null=True)
    low_limit = NumberField(required=False, allow_null=True)
    deadband = NumberField(required=False, min_value=0)
    on_delay_s = WholeNumberField(required=False, min_value=0, max_value=MAX_DELAY_S)
    off_delay_s = WholeNumberField(required=False, min_value=0, max_value=MAX_DELAY_S)
    severity = serializers.ChoiceField(choices=SEVERITIES, required=False)
    message = serializers.CharField(max_length=200, required=False, allow_blank=True)
    escalate_after_s = WholeNumberField(
        required=False, allow_null=True, min_value=0, max_value=MAX_ESCALATE_S
    )
    create_work_order = FlagField(required=False)
    enabled = FlagField(required=False)


class AlarmSerializer(serializers.Serializer):
    """One alarm (the contract's AlarmEvent: timestamp, tag_name, alarm_state,
    message, value) with its ISA-18.2 context."""

    id = serializers.IntegerField()
    timestamp = utc_datetime(help_text="When it (last) went active.")
    tag_name = serializers.CharField()
    kind = serializers.CharField(help_text="limit or comm_loss")
    alarm_state = serializers.ChoiceField(choices=AlarmState.choices, source="status")
    active = serializers.BooleanField(help_text="The condition is abnormal now.")
    message = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    limit = serializers.FloatField(allow_null=True)
    severity = serializers.ChoiceField(choices=SEVERITIES)
    area = serializers.CharField()
    rule = serializers.IntegerField(source="rule_id", allow_null=True)
    connector = serializers.IntegerField(source="connector_id", allow_null=True)
    acknowledged_at = utc_datetime(allow_null=True)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", allow_null=True
    )
    returned_at = utc_datetime(allow_null=True)
    shelved_until = utc_datetime(allow_null=True)
    shelved_by = serializers.CharField(source="shelved_by.username", allow_null=True)
    shelve_reason = serializers.CharField()
    closed_at = utc_datetime(allow_null=True)
    exception = serializers.IntegerField(
        source="exception_id", allow_null=True, help_text="The exception it became."
    )
    chattering = serializers.SerializerMethodField(
        help_text="Its rule activated 3 or more times in the 60 s up to this "
        "activation."
    )

    def get_chattering(self, alarm: AlarmEvent) -> bool:
        return is_chattering(alarm)


class AlarmHistorySerializer(serializers.Serializer):
    at = utc_datetime()
    change = serializers.CharField()
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    actor = serializers.CharField(source="actor.username", allow_null=True)
    value = serializers.FloatField(allow_null=True)
    note = serializers.CharField()


class AlarmDetailSerializer(AlarmSerializer):
    """The alarm and every change it went through, oldest first."""

    history = AlarmHistorySerializer(many=True)


class AlarmShelveSerializer(serializers.Serializer):
    """Give ``minutes`` or ``until`` (at most 24 h ahead) and a reason."""

    minutes = WholeNumberField(
        required=False,
        min_value=1,
        max_value=int(MAX_SHELVE.total_seconds() // 60),
    )
    until = DateTimeField(required=False)
    reason = serializers.CharField(max_length=200)


class AlarmReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class AlertsProcessResultSerializer(serializers.Serializer):
    evaluated = serializers.IntegerField(help_text="Readings no rule had seen.")
    activated = serializers.IntegerField()
    returned = serializers.IntegerField()
    shelves_expired = serializers.IntegerField()
    escalated = serializers.IntegerField(help_text="Alarms that became exceptions.")
    work_orders = serializers.IntegerField(help_text="CMMS work orders asked for.")
    floods_ended = serializers.IntegerField()


class AlarmFloodSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    area = serializers.CharField()
    started_at = utc_datetime()
    ended_at = utc_datetime(allow_null=True)
    ongoing = serializers.SerializerMethodField()
    alarm_count = serializers.IntegerField()
    peak_rate = serializers.IntegerField(
        help_text="Most activations in one 10-minute window."
    )

    @extend_schema_field(serializers.BooleanField())
    def get_ongoing(self, flood) -> bool:
        return flood.ended_at is None


class AlarmChatteringQuerySerializer(serializers.Serializer):
    """The period: ``since`` before ``until`` (400 otherwise, rather than an
    empty report that reads as "nothing chattered")."""

    since = DateTimeField(required=False, help_text="Default: 24 hours before until.")
    until = DateTimeField(required=False, help_text="Default: now.")

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - CHATTER_PERIOD
        if since >= until:
            raise serializers.ValidationError(
                {"since": ["Must be before until (default: now)."]}
            )
        return {"since": since, "until": until}


class AlarmChatteringSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    rule_name = serializers.CharField()
    tag_name = serializers.CharField()
    area = serializers.CharField()
    activations = serializers.IntegerField(help_text="In the period.")
    most_in_window = serializers.IntegerField(help_text="Most within 60 s.")
    last_activation_at = utc_datetime()
