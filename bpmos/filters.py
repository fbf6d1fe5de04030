"""The project's FilterSet base and filter backend: numbers bounded to what the
database stores.

django-filter's ``NumberFilter`` takes any decimal up to 1e50, so
``?workOrderId=99999999999999999999999`` reached the database and failed there
(``OverflowError``, a 500). ``IntegerFilter`` takes a whole number within a
64-bit column's range and answers anything else with a 400 naming the
parameter. Declare it for id parameters; ``FilterSet`` (the base of every
FilterSet here, and of those ``filterset_fields`` generates through
``FilterBackend``) uses it for every integer column.

``DateTimeFilter`` does the same for times: an ISO 8601 time within
``bpmos.fields``' bounds (2000-01-01 to 2100-01-01 UTC), so a year-9999 ``to``
with a negative offset no longer overflows on its way to the database (a 500),
and a window in year 28 is a 400 naming the parameter rather than an answer.
``FilterSet`` uses it for every date-time column.
"""

from __future__ import annotations

from copy import deepcopy

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import TextChoices
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from bpmos.fields import time_problem

# A signed 64-bit column (BigAutoField, BigIntegerField) on PostgreSQL and SQLite.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


# The bounds are in the schema too: a fuzzer that reads ``integer`` sends
# -2108910441498094338048, which is the 400 below, not a match.
@extend_schema_field(
    {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX}
)
class IntegerFilter(filters.NumberFilter):
    """A whole number a 64-bit column can hold; 400 otherwise."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", INT64_MIN)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(*args, **kwargs)

    def get_max_validator(self):
        return None  # the bounds are the field's own


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time within ``bpmos.fields``' bounds."""

    def to_python(self, value):
        value = super().to_python(value)
        problem = time_problem(value) if value is not None else None
        if problem is not None:
            raise ValidationError(problem, code="out_of_range")
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 time from 2000-01-01 to 2100-01-01 UTC; 400 otherwise."""

    field_class = BoundedIsoDateTimeField


# django-filter's ``BooleanFilter`` reads ``?enabled=maybe`` as "not given" and
# answers the whole list. ``BooleanFilter`` here takes ``true``/``false`` (and
# ``1``/``0``) and answers anything else with a 400 naming the parameter; an
# empty value is still "not given". Declared per filter (the SCADA FilterSets
# use it); the other apps' boolean filters still read junk as "not given".
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


class StrictBooleanField(forms.Field):
    """``true``, ``false``, ``1`` or ``0`` (any case); empty is None."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        parsed = _BOOLEANS.get(str(value).strip().lower())
        if parsed is None:
            raise ValidationError("Enter true or false.", code="invalid")
        return parsed


@extend_schema_field(OpenApiTypes.BOOL)
class BooleanFilter(filters.BooleanFilter):
    """A boolean query parameter; 400 for anything but true or false."""

    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        # django-filter's BooleanWidget turns what it does not know into None
        # before the field sees it; the field reads the raw text instead.
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


_DEFAULTS = deepcopy(FILTER_FOR_DBFIELD_DEFAULTS)
_DEFAULTS.update(
    {
        field: {"filter_class": IntegerFilter}
        for field in (
            models.AutoField,
            models.SmallIntegerField,
            models.IntegerField,
            models.PositiveIntegerField,
            models.PositiveSmallIntegerField,
        )
    }
)
_DEFAULTS[models.DateTimeField] = {"filter_class": DateTimeFilter}


class FilterSet(filters.FilterSet):
    """Every FilterSet's base: integer columns filter through ``IntegerFilter``,
    date-time columns through ``DateTimeFilter``."""

    FILTER_DEFAULTS = _DEFAULTS


class FilterBackend(filters.DjangoFilterBackend):
    """DjangoFilterBackend whose generated FilterSets (``filterset_fields``)
    use ``FilterSet`` above."""

    filterset_base = FilterSet


def enum_value(enum: type[TextChoices], raw: str) -> str | None:
    """The stored value ``raw`` names (value or label, any case; spaces and
    underscores alike), or None."""
    folded = raw.strip().casefold().replace(" ", "_")
    for value, label in enum.choices:
        if folded in {value.casefold(), label.casefold().replace(" ", "_")}:
            return value
    return None


class EnumFilter(filters.CharFilter):
    """One of an enum's values or labels; 400 naming the choices otherwise."""

    def __init__(self, *, enum: type[TextChoices], **kwargs):
        self.enum = enum
        kwargs.setdefault(
            "help_text", f"One of {', '.join(enum.labels)} (or the stored value)."
        )
        super().__init__(**kwargs)

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        stored = enum_value(self.enum, value)
        if stored is None:
            raise ValidationError(
                {self.field_name: [f"One of {', '.join(self.enum.labels)}."]}
            )
        return qs.filter(**{self.field_name: stored})
