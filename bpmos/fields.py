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

  The rule is read on the time as written, so that the schema can state it
  (``TIME_PATTERN``: OpenAPI 3.0 has no minimum for a date-time): the date
  written is 2000-01-01 to 2099-12-31, and on the two edge days the offset
  may not carry the instant outside the bounds: on 2000-01-01 ``Z`` or a
  negative offset, on 2099-12-31 ``Z`` or a positive one. Every time it
  admits is within ``[EARLIEST, LATEST)`` in UTC; it refuses a few instants
  inside them that only an offset on an edge day can write (2000-01-01T10:00
  +05:30), which no time of this plant is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TOO_EARLY = f"Cannot be before {EARLIEST.date().isoformat()}."
TOO_LATE = f"Must be before {LATEST.date().isoformat()}."
_FIRST_DAY = EARLIEST.date()
_LAST_DAY = date(LATEST.year - 1, 12, 31)
FIRST_DAY_OFFSET = (
    f"On {_FIRST_DAY.isoformat()} give the time with Z or a negative offset "
    f"(never before {_FIRST_DAY.isoformat()} UTC)."
)
LAST_DAY_OFFSET = (
    f"On {_LAST_DAY.isoformat()} give the time with Z or a positive offset "
    f"(always before {LATEST.date().isoformat()} UTC)."
)

# The rule of ``time_problem`` for an RFC 3339 time (``format: date-time``), as
# an ECMA 262 pattern the schema carries beside the format: a year 20xx, a
# positive offset on 2000-01-01 only if zero, a negative one on 2099-12-31
# only if zero. The rest spells out what both RFC 3339 and the server's
# parser (Python's ``fromisoformat``) take: "T" or "t"; fraction digits of any
# length after a dot; no leap second; an upper-case "Z". The server also takes
# a space or a comma there, which RFC 3339 does not: the pattern leaves them
# out, or a generator drawing from it sends them as "invalid" and sees them
# accepted (``negative_data_rejection``). ``tests/test_schema_single_field_
# rules.py`` checks the pattern against ``time_problem``.
TIME_PATTERN = (
    r"^(?!2000-01-01[^+]*\+(?!00:00)|2099-12-31.[^-]*-(?!00:00))"
    r"20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
TIME_SCHEMA = {"type": "string", "format": "date-time", "pattern": TIME_PATTERN}


def time_problem(value: datetime) -> str | None:
    """Why ``value`` is outside the bounds (module docstring), or None.

    Reads the time as written (its wall clock and offset): no conversion, so
    nothing can overflow near year 1 or 9999; a naive ``value`` is read in
    the current time zone, as Django reads it.
    """
    if timezone.is_naive(value):
        value = value.replace(tzinfo=timezone.get_current_timezone())
    written = value.replace(tzinfo=None)
    if written < _WRITTEN_EARLIEST:
        return TOO_EARLY
    if written >= _WRITTEN_LATEST:
        return TOO_LATE
    offset = value.utcoffset()
    if offset:
        day = written.date()
        if day == _FIRST_DAY and offset > _ZERO:
            return FIRST_DAY_OFFSET
        if day == _LAST_DAY and offset < _ZERO:
            return LAST_DAY_OFFSET
    return None


_WRITTEN_EARLIEST = EARLIEST.replace(tzinfo=None)
_WRITTEN_LATEST = LATEST.replace(tzinfo=None)
_ZERO = EARLIEST.utcoffset()


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
    """DRF's ``DateTimeField`` within the bounds (``time_problem``): anything
    outside is a 400 naming the field ("Cannot be before 2000-01-01."), before
    the conversion to UTC that overflowed near year 1 and 9999. A request's
    schema says so (``TIME_PATTERN``, ``bpmos.openapi.AutoSchema``)."""

    bounded_time = True

    default_error_messages = {
        "too_early": TOO_EARLY,
        "too_late": TOO_LATE,
        "first_day_offset": FIRST_DAY_OFFSET,
        "last_day_offset": LAST_DAY_OFFSET,
    }
    _KEYS: ClassVar[dict[str, str]] = {
        message: key for key, message in default_error_messages.items()
    }

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
                self.fail(self._KEYS[problem])
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


class PositiveDecimalField(serializers.DecimalField):
    """A decimal the service requires to be above 0 (``passports.services``'
    "Must be a positive number."): the schema's pattern admits no sign and no
    zero (``bpmos.openapi.AutoSchema``), or a fuzzer's "0" or "-1" is "valid"
    and answered 400. The smallest step is the least value."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", Decimal(1).scaleb(-kwargs["decimal_places"]))
        super().__init__(**kwargs)
