"""JSON-typed fields for JSON bodies (SCADA's alert rules, shelving, work
orders, LIMS fetch; compliance's returns): a value of the type the schema
shows, or a 400.

DRF's ``FloatField`` takes ``float(data)``, so ``{"low_limit": false}`` made a
rule with a low limit of 0.0 and ``{"high_limit": "80"}`` one of 80;
``IntegerField`` takes ``"5"``; ``BooleanField`` takes ``"yes"``, ``"on"`` and
``1``. The schema shows numbers and booleans, and no client of ours sends them
as text, so anything else is refused with the field's own ``invalid`` message
("A valid number is required.") in the usual 400 ``validation_error``.
(Multipart bodies, ``POST /api/lims/import``, keep DRF's fields: a form sends
every value as text.) ``read_body`` is for the actions that take no body.
"""

from __future__ import annotations

from rest_framework import serializers


def _is_number(data) -> bool:
    return isinstance(data, int | float) and not isinstance(data, bool)


class NumberField(serializers.FloatField):
    """A JSON number (an integer or a float); not a boolean, not text."""

    def to_internal_value(self, data):
        if not _is_number(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class WholeNumberField(serializers.IntegerField):
    """A JSON integer (``5``, or ``5.0``, which JSON cannot tell apart); not a
    boolean, not text."""

    def to_internal_value(self, data):
        if not _is_number(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class FlagField(serializers.BooleanField):
    """``true`` or ``false``; not ``"true"``, ``1`` or ``"yes"``."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def read_body(request) -> None:
    """A body-less action still parses what was sent: a malformed body is the
    400 ``parse_error`` every write gives (docs/design.md §4), not ignored while
    the action runs."""
    request.data  # noqa: B018 -- the parsing is the point
