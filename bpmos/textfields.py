"""Text fields take text: DRF's ``CharField`` made strict for every serializer.

DRF's ``CharField`` turns a number into its string ("basic numerics are
coerced"), so ``{"reason": -1}`` held an inventory item with the reason "-1",
and the same held for every reason, note and name in every contract. No
client of ours sends a number where the contract shows text, so a number
there is a mistake to report, not to store.

``install()`` (run once from ``bpmos.apps``) makes ``CharField`` and its
subclasses (email, slug, regex, URL, IP address fields; declared fields and
those ``ModelSerializer`` maps from model ``CharField``/``TextField`` alike)
answer anything but a string with their ``invalid`` error, "Not a valid
string.", in the usual 400 ``validation_error``. One place for the rule rather
than a project field class that every serializer, present and future, must
remember to use.
"""

from rest_framework import fields
from rest_framework.exceptions import ValidationError

_lenient = fields.CharField.to_internal_value
# CharField's own message; its subclasses reuse the "invalid" key for theirs
# ("Enter a valid email address."), which would misname the problem.
NOT_TEXT = fields.CharField.default_error_messages["invalid"]


def _text_only(self, data):
    if not isinstance(data, str):
        raise ValidationError(NOT_TEXT, code="invalid")
    return _lenient(self, data)


def install() -> None:
    """Make DRF's CharField refuse non-strings (idempotent)."""
    fields.CharField.to_internal_value = _text_only


class IdentifierField(fields.CharField):
    """An id the contracts show either way, as text or as a whole number
    (the dispatch desk's ``jobId``: ``"456"`` or ``456``): a string, or an
    integer taken as its digits; anything else is "Not a valid string."."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


# What ``str.strip()`` removes (every ``str.isspace()`` character, all below
# U+3001): DRF's CharField and the query checks strip a value before calling it
# blank, so " " is as empty as "". A string that may not be blank says
# ``minLength: 1`` and this pattern (unanchored: one character that is not
# stripped); ``minLength`` alone let a fuzzer send " " as valid and get a 400.
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
NOT_BLANK_PATTERN = "[^" + "".join(f"\\u{ord(c):04x}" for c in _WHITESPACE) + "]"


def not_blank(schema: dict) -> dict:
    """``schema`` (a free-text string) marked as refusing a blank value."""
    schema["minLength"] = max(schema.get("minLength", 1), 1)
    schema.setdefault("pattern", NOT_BLANK_PATTERN)
    return schema
