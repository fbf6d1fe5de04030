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

An empty value (``?to=``, ``?status=``) is a 400 naming the parameter, not
"not given": the schema declares no ``allowEmptyValue`` for it, and a fuzzer
reading the schema sent ``?to=`` and got the whole list. Where a client may
send a filter empty (the control UI's filters, ``ordering``), the FilterSet
lists it in ``allow_empty`` and the schema says ``allowEmptyValue: true``
(``FilterSchemaExtension`` below); a string parameter that may not be empty
says ``minLength: 1``.

A request that names none of a FilterSet's filters (a list's first page, the
load bench's) is not run through it: ``FilterBackend`` applies
``FilterSet.after_filters`` alone, which is all the FilterSet would change
(``tests/test_filters_skip.py`` checks that for every FilterSet), without the
copies of its filters and form fields and the form's validation that building
one costs on every request (docs/performance.md, "The 50-row list pages").
"""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC
from typing import ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import TextChoices
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from bpmos.fields import TIME_SCHEMA, time_problem
from bpmos.textfields import not_blank

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
        if value is None:
            return None
        problem = time_problem(value)
        if problem is not None:
            raise ValidationError(problem, code="out_of_range")
        # In UTC: ISO 8601 takes offsets up to +23:59, PostgreSQL only up to
        # +15:59 ("time zone displacement out of range", a 500 for
        # ?shift=2010-06-07T19:02:59+23:36). The instant is the same.
        return value.astimezone(UTC) if timezone.is_aware(value) else value


@extend_schema_field(TIME_SCHEMA)
class DateTimeFilter(filters.IsoDateTimeFilter):
    """An ISO 8601 time from 2000-01-01 to 2100-01-01 UTC (``time_problem``,
    stated by ``TIME_PATTERN``); 400 otherwise."""

    field_class = BoundedIsoDateTimeField


# django-filter's ``BooleanFilter`` reads ``?enabled=maybe`` as "not given" and
# answers the whole list. ``BooleanFilter`` here takes ``true``/``false`` (and
# ``1``/``0``) and answers anything else with a 400 naming the parameter.
# ``FilterSet`` uses it for every boolean column (``?is_active=null`` was the
# whole list); an empty value is refused by ``FilterSet``.
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
_DEFAULTS[models.BooleanField] = {"filter_class": BooleanFilter}

EMPTY_VALUE_MESSAGE = "May not be empty: leave the parameter out instead."


def empty_parameters(data, names) -> list[str]:
    """Which of ``names`` ``data`` (a QueryDict) holds with an empty value."""
    getlist = getattr(data, "getlist", None)
    found = []
    for name in names:
        if name not in data:
            continue
        values = getlist(name) if getlist else [data.get(name)]
        if any(str(value).strip() == "" for value in values):
            found.append(name)
    return found


class FilterSet(filters.FilterSet):
    """Every FilterSet's base: integer columns filter through ``IntegerFilter``,
    date-time columns through ``DateTimeFilter``, boolean columns through
    ``BooleanFilter``; an empty value is a 400 unless ``allow_empty`` names
    the filter."""

    FILTER_DEFAULTS = _DEFAULTS
    # Filters whose empty value means "not given" (schema: allowEmptyValue).
    allow_empty: ClassVar[frozenset[str]] = frozenset({"ordering"})

    def filter_queryset(self, queryset):
        return self.after_filters(super().filter_queryset(queryset))

    @classmethod
    def after_filters(cls, queryset):
        """What filtering does to ``queryset`` beyond the filters, also when
        no filter is given (a default order, say): nothing here."""
        return queryset

    @classmethod
    def filters_nothing(cls, query_params) -> bool:
        """Whether filtering a request with ``query_params`` is
        ``after_filters`` alone: only page, order and search parameters, none
        of them one of the filters, and no filter required (absent, a 400)."""
        filters = cls.base_filters
        return all(
            name in _NOT_FILTERS and name not in filters for name in query_params
        ) and not any(item.extra.get("required") for item in filters.values())

    def is_valid(self) -> bool:
        valid = super().is_valid()
        names = [name for name in self.filters if name not in self.allow_empty]
        for name in empty_parameters(self.data, names):
            # The one message, not also the field's own ("Select a valid
            # choice.  is not one of the available choices.").
            self.form.errors[name] = self.form.error_class([EMPTY_VALUE_MESSAGE])
            getattr(self.form, "cleaned_data", {}).pop(name, None)
            valid = False
        return valid


# Parameters of the pagination and DRF's search and ordering backends.
_NOT_FILTERS = frozenset({"page", "page_size", "search", "ordering"})


class FilterBackend(filters.DjangoFilterBackend):
    """DjangoFilterBackend whose generated FilterSets (``filterset_fields``)
    use ``FilterSet`` above, and which skips building one for a request that
    names none of its filters (``FilterSet.filters_nothing``)."""

    filterset_base = FilterSet

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if (
            filterset_class is not None
            and issubclass(filterset_class, FilterSet)
            and _builds_plainly(filterset_class)
            and filterset_class.filters_nothing(request.query_params)
        ):
            return filterset_class.after_filters(queryset)
        return super().filter_queryset(request, queryset, view)


def _builds_plainly(filterset_class: type[FilterSet]) -> bool:
    """Whether ``filterset_class`` builds and filters as ``FilterSet`` does
    (its own ``after_filters`` aside): no ``__init__``, ``qs`` or
    ``filter_queryset`` of its own."""
    return (
        filterset_class.__init__ is FilterSet.__init__
        and filterset_class.qs is FilterSet.qs
        and filterset_class.filter_queryset is FilterSet.filter_queryset
    )


class FilterSchemaExtension(DjangoFilterExtension):
    """drf-spectacular's django-filter parameters, saying what ``FilterSet``
    does with an empty value: ``allowEmptyValue`` for the filters in
    ``allow_empty``, ``minLength: 1`` for the other free-text ones."""

    # Every FilterSet backend: ours and django-filter's own (some views name it).
    target_class = "django_filters.rest_framework.DjangoFilterBackend"
    match_subclasses = True
    priority = 1

    def resolve_filter_field(
        self, auto_schema, model, filterset_class, field_name, filter_field
    ):
        parameters = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        allow_empty = getattr(filterset_class, "allow_empty", frozenset())
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if isinstance(filter_field, EnumFilter):
                # What it answers to: the values and the labels (any case).
                schema["enum"] = filter_field.choices()
            if field_name in allow_empty:
                parameter["allowEmptyValue"] = True
            elif (
                schema.get("type") == "string"
                and "enum" not in schema
                and "format" not in schema
            ):
                # A blank value (" " as well as "") is a 400 (``FilterSet``).
                not_blank(schema)
        return parameters


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

    def choices(self) -> list[str]:
        """The stored values, then the labels that differ from them."""
        values = list(self.enum.values)
        return values + [label for label in self.enum.labels if label not in values]

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        stored = enum_value(self.enum, value)
        if stored is None:
            raise ValidationError(
                {self.field_name: [f"One of {', '.join(self.enum.labels)}."]}
            )
        return qs.filter(**{self.field_name: stored})
