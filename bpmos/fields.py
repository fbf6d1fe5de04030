"""Serializer field helpers every app's API shares (one home; docs/design.md §4).

The contracts' time format and the display-enum lists were written once per app
before; an app's serializers import them from here, so no app has to import
another app's serializers for a field.

Times in, times out:

- Out: ``utc_datetime`` / ``utc_text`` print the contract's format,
  ``2026-01-15T10:30:00Z``, always with a four-digit year (``strftime("%Y")``
  printed year 28 as ``28-05-09T...``, which is not ISO 8601).
- In: every time a client sends lies in ``[EARLIEST, LATEST)``, 2000-01-01 to
  2100-01-01 UTC. Nothing of this plant is older than 2000, and a year past
  2100 is a typo; the bounds also keep a time far from Python's year 1 and
  9999, where converting it to UTC overflowed (a 500). ``DateTimeField`` (a
  body), ``bpmos.filters.DateTimeFilter`` (a query parameter) and
  ``time_problem`` (hand-parsed input: ingest rows, the OEE window) apply
  them; a use may be stricter (the ledger and ingests refuse the future).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TOO_EARLY = f"Cannot be before {EARLIEST.date().isoformat()}."
TOO_LATE = f"Must be before {LATEST.date().isoformat()}."


def time_problem(value: datetime) -> str | None:
    """Why ``value`` is outside ``[EARLIEST, LATEST)``, or None.

    Compares without converting (comparing aware times cannot overflow, while
    ``astimezone`` near year 1 or 9999 can); a naive ``value`` is read in the
    current time zone, as Django reads it.
    """
    if timezone.is_naive(value):
        value = value.replace(tzinfo=timezone.get_current_timezone())
    if value < EARLIEST:
        return TOO_EARLY
    if value >= LATEST:
        return TOO_LATE
    return None


def utc_text(value: datetime | None) -> str | None:
    """A time in the contract's format: ``2026-01-15T10:30:00Z`` (UTC, whole
    seconds, a four-digit year even before year 1000). A naive time is UTC;
    a text is taken as printed already (``bpmos.listrows.time_texts``)."""
    if value is None or value.__class__ is str:
        return value
    if timezone.is_aware(value):
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


class UtcDateTimeField(serializers.DateTimeField):
    """A time printed by ``utc_text`` (strings, already formatted, pass)."""

    def to_representation(self, value):
        if not value or isinstance(value, str):
            return value or None
        return utc_text(value)


def utc_datetime(**kwargs) -> serializers.DateTimeField:
    """A read-only time in the contract's format."""
    return UtcDateTimeField(default_timezone=UTC, read_only=True, **kwargs)


class DateTimeField(serializers.DateTimeField):
    """DRF's ``DateTimeField`` within ``[EARLIEST, LATEST)``: anything outside
    is a 400 naming the field ("Cannot be before 2000-01-01."), before the
    conversion to UTC that overflowed near year 1 and 9999."""

    default_error_messages = {"too_early": TOO_EARLY, "too_late": TOO_LATE}

    def to_internal_value(self, value):
        parsed = value
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:  # well formed but no such date ("0000-01-01")
                parsed = None
        if isinstance(parsed, datetime):
            problem = time_problem(parsed)
            if problem is not None:
                self.fail("too_early" if problem == TOO_EARLY else "too_late")
        return super().to_internal_value(value)


def choice_labels(choices) -> list[str]:
    """The display labels of a ``TextChoices`` (the contracts' display enums)."""
    return [label for _, label in choices.choices]


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 2_147_483_647})
class PositiveCountField(serializers.IntegerField):
    """A quantity the service requires to be at least 1 (with its own message,
    so the field itself does not refuse 0): the schema says ``minimum: 1``,
    or a fuzzer's 0 is "valid" and answered 400. Up to an integer column."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", 2_147_483_647)
        super().__init__(**kwargs)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JsonObjectField(serializers.JSONField):
    """A JSON object whose service refuses null, a list or a scalar: the schema
    says ``object``, where a bare JSONField let a fuzzer send null as valid."""
