"""Serializer field helpers every app's API shares (one home; docs/design.md §4).

The contracts' time format and the display-enum lists were written once per app
before; an app's serializers import them from here, so no app has to import
another app's serializers for a field.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rest_framework import serializers

# The contract's time format: "2026-01-15T10:30:00Z" (UTC, whole seconds).
UTC_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def utc_datetime(**kwargs) -> serializers.DateTimeField:
    """A read-only time in the contract's format."""
    return serializers.DateTimeField(
        format=UTC_SECONDS, default_timezone=UTC, read_only=True, **kwargs
    )


def utc_text(value: datetime | None) -> str | None:
    """Format a time the way ``utc_datetime`` fields do."""
    return value.astimezone(UTC).strftime(UTC_SECONDS) if value else None


def choice_labels(choices) -> list[str]:
    """The display labels of a ``TextChoices`` (the contracts' display enums)."""
    return [label for _, label in choices.choices]
