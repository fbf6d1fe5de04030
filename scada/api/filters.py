"""Pieces the SCADA FilterSets share (alarms, floods, alert rules, LIMS results).

django-filter's ``BooleanFilter`` reads ``?enabled=maybe`` as "not given" and
answers the whole list, so a mistyped filter looks like an empty one that
matched everything. ``BooleanFilter`` here takes ``true``/``false`` (and
``1``/``0``, as django-filter does) and answers anything else with a 400
naming the parameter; an empty value is still "not given".
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

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
