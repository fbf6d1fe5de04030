"""Serializers of ``GET /api/logs`` and its CSV export (docs/logs.md): the
query (strict: a bad value is a 400 naming its parameter) and the one
``LogEvent`` shape (camelCase: every key is one word)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bpmos.dashboards import logs
from bpmos.filters import BoundedIsoDateTimeField
from bpmos.logevents import CATEGORIES, SEVERITIES, LogEvent

MAX_SEARCH = 200


class MultiChoiceField(serializers.Field):
    """One or more of ``choices``, repeated (``?category=a&category=b``) or
    comma-separated (``?category=a,b``): a frozenset, or a 400 naming the
    parameter for an unknown or empty value."""

    default_error_messages = {
        "invalid_choice": '"{input}" is not a valid choice ({choices}).',
        "empty": "Give at least one value.",
        "too_many": "Too many values.",
    }

    def __init__(self, choices, **kwargs):
        self.choices = tuple(choices)
        super().__init__(**kwargs)

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):
            if self.field_name not in dictionary:
                return serializers.empty
            return dictionary.getlist(self.field_name)
        return dictionary.get(self.field_name, serializers.empty)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or len(data) > 20:
            self.fail("too_many")
        values = []
        for item in data:
            if not isinstance(item, str):
                self.fail("invalid_choice", input=item, choices=", ".join(self.choices))
            for part in item.split(","):
                part = part.strip()
                if not part:
                    self.fail("empty")
                if part not in self.choices:
                    self.fail(
                        "invalid_choice",
                        input=part[:50],
                        choices=", ".join(self.choices),
                    )
                values.append(part)
        if not values:
            self.fail("empty")
        return frozenset(values)

    def to_representation(self, value):
        return sorted(value)


@extend_schema_field({"type": "string", "format": "date-time"})
class BoundedDateTimeField(serializers.Field):
    """An ISO 8601 time from 2000-01-01 to 2100-01-01 UTC (as
    ``bpmos.filters.DateTimeFilter``); empty is not given."""

    bounded_time = True  # the schema's TIME_PATTERN (bpmos.openapi)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Enter an ISO 8601 date-time.")
        if len(data) > 64:
            raise serializers.ValidationError("Enter an ISO 8601 date-time.")
        try:
            return BoundedIsoDateTimeField(required=False).clean(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None

    def to_representation(self, value):
        return value.isoformat() if value else None


class LogFilterSerializer(serializers.Serializer):
    """The filters (both endpoints). ``from``/``to`` are set below (keywords)."""

    category = MultiChoiceField(CATEGORIES, required=False)
    severity = MultiChoiceField(SEVERITIES, required=False)
    search = serializers.CharField(
        max_length=MAX_SEARCH, required=False, allow_blank=True, trim_whitespace=True
    )
    cursor = serializers.CharField(max_length=512, required=False, allow_blank=True)

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"to": ["`to` must be after `from`."]})
        return attrs


LogFilterSerializer._declared_fields["from"] = BoundedDateTimeField(
    required=False, allow_null=True, help_text="Inclusive"
)
LogFilterSerializer._declared_fields["to"] = BoundedDateTimeField(
    required=False, allow_null=True, help_text="Exclusive"
)


class LogListQuerySerializer(LogFilterSerializer):
    page_size = serializers.IntegerField(
        min_value=1, max_value=logs.MAX_PAGE_SIZE, required=False
    )


class LogExportQuerySerializer(LogFilterSerializer):
    format = serializers.ChoiceField(choices=["csv"], required=False, default="csv")


class LogTargetSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField()
    label = serializers.CharField(allow_blank=True)


class InlineEnumField(serializers.CharField):
    """A string of ``choices``: in the schema a pattern naming them, not an
    enum (drf-spectacular would hoist it into a component whose name collides
    with the compliance "category" enum's)."""

    def __init__(self, choices, **kwargs):
        self.choices_ = tuple(choices)
        super().__init__(**kwargs)


class _InlineEnumExtension(OpenApiSerializerFieldExtension):
    target_class = InlineEnumField

    def map_serializer_field(self, auto_schema, direction):
        choices = self.target.choices_
        return {
            "type": "string",
            "pattern": f"^({'|'.join(choices)})$",
            "description": "One of: " + ", ".join(choices) + ".",
        }


class LogEventSerializer(serializers.Serializer):
    """One event of the stream (``bpmos.logevents.LogEvent``)."""

    id = serializers.CharField(
        help_text='Unique across the stream: "<category>:<pk>" '
        '("audit:1042"; system events "system:<kind>:<pk>").'
    )
    timestamp = serializers.DateTimeField(read_only=True)
    category = InlineEnumField(CATEGORIES)
    severity = InlineEnumField(SEVERITIES)
    actor = serializers.CharField(
        allow_null=True, help_text="The username, or null for the system."
    )
    action = serializers.CharField()
    target = LogTargetSerializer(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    source = serializers.CharField(
        help_text='Where it came from: "api", "admin", "task", "collector", ...'
    )


class LogPageSerializer(serializers.Serializer):
    results = LogEventSerializer(many=True)
    next = serializers.URLField(
        allow_null=True,
        help_text="The next (older) page, or null at the end of the stream.",
    )


_TIMESTAMP = serializers.DateTimeField()


def _text(value) -> str | None:
    return None if value is None else str(value)


def page_data(events: list[LogEvent], next_url: str | None) -> dict:
    """``LogPageSerializer({"results": ..., "next": ...}).data``, built
    directly: the same keys in the same order and the same values (a
    ``CharField`` is ``str()``, the timestamp ``DateTimeField``'s), without
    DRF's per-field walk of every event (a few ms a page of 50, about what
    its queries now cost the database). ``LogPageSerializer`` stays the
    schema; ``tests/test_logs_floor.py`` holds the two equal."""
    results = []
    for event in events:
        target = event.target
        results.append(
            {
                "id": str(event.id),
                "timestamp": _TIMESTAMP.to_representation(event.timestamp),
                "category": str(event.category),
                "severity": str(event.severity),
                "actor": _text(event.actor),
                "action": str(event.action),
                "target": None
                if target is None
                else {
                    "type": str(target.type),
                    "id": str(target.id),
                    "label": str(target.label),
                },
                "message": str(event.message),
                "source": str(event.source),
            }
        )
    return {"results": results, "next": next_url}
