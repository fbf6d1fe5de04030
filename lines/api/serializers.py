"""Shapes of the machines API, as the mobile contract spells them (snake_case,
machine states as stored: ``running``, ``down``...).

Readings are not parsed by a serializer: a batch of thousands is checked in
plain Python by ``lines.services.readings_validate``. ``ReadingInSerializer``
only describes one reading for the OpenAPI schema.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.fields import DateTimeField
from lines import services
from lines.models import Machine, MachineState, ReadingQuality


class MachineSerializer(serializers.ModelSerializer):
    """A machine with its station and line ids and its current state."""

    station_id = serializers.CharField(source="station.slug", help_text="st-02")
    line_id = serializers.CharField(source="station.line.slug", help_text="line-a")

    class Meta:
        model = Machine
        fields = [
            "id",
            "code",
            "name",
            "machine_type",
            "location",
            "status",
            "status_reason",
            "status_since",
            "station_id",
            "line_id",
            "is_active",
        ]
        read_only_fields = fields


@extend_schema_field(
    {"oneOf": [{"type": "number"}, {"type": "string", "minLength": 1, "maxLength": 64}]}
)
class _ReadingValueField(serializers.JSONField):
    """A number or a text (``readings_validate`` refuses null, lists and
    objects; which of the two a tag takes is the service's rule)."""


class ReadingInSerializer(serializers.Serializer):
    """One reading (schema only; see ``lines.services.readings_validate``).
    Any key but these is refused ("Unknown field."): the schema says
    ``additionalProperties: false`` and declares the aliases too."""

    refuses_unknown_fields = True

    tag = serializers.RegexField(
        services.TAG_RE,
        max_length=64,
        help_text=(
            "state | good_count | reject_count | cycle_time | any other tag. "
            "Alias: reading_type."
        ),
    )
    ts = DateTimeField(help_text="ISO 8601 with a time zone. Alias: timestamp.")
    value = _ReadingValueField(
        help_text=(
            f"A number; for tag state one of {', '.join(MachineState.values)}; "
            "counts are whole pieces made since the previous count reading."
        )
    )
    reason = serializers.CharField(
        required=False, max_length=200, help_text="Why (state readings)."
    )
    unit = serializers.CharField(required=False, max_length=16)
    quality = serializers.ChoiceField(
        choices=ReadingQuality.choices, required=False, default="good"
    )
    reading_type = serializers.RegexField(
        services.TAG_RE, max_length=64, required=False, help_text="Alias of tag."
    )
    timestamp = DateTimeField(required=False, help_text="Alias of ts.")
    machine_id = serializers.IntegerField(
        required=False, help_text="If given, the machine in the URL."
    )


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Readings stored by this request.")
    duplicates = serializers.IntegerField(
        help_text="Readings already stored (same machine, tag and ts), skipped."
    )
