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


# What the server refuses in a string, said in the schema (the long fuzz
# campaign, docs/testing.md, found each as "schema-valid, answered 400"):
#
# * NUL: DRF's CharField refuses it in a body, ``bpmos.middleware`` in any
#   /api/ query value (PostgreSQL text cannot hold it): ``NO_NUL_PATTERN``.
# * Blank: DRF's CharField and the query checks strip a value (every
#   ``str.isspace()`` character) before calling it blank, so " " is as empty as
#   "": a string that may not be blank has ``NOT_BLANK_PATTERN``, whose
#   lookahead refuses a value of ECMA ``\s`` and the four separators and NEL
#   that Python strips besides. A lookahead rather than a negated class:
#   Schemathesis 4.32 draws nothing from a negated class holding a non-ASCII
#   character, and then sends the parameter empty.
NO_NUL_PATTERN = r"^[^\x00]*$"
NOT_BLANK_PATTERN = r"^(?![\s\x1c-\x1f\x85]*$)[^\x00]*$"
# Its complement: a value that is blank once stripped ("" included).
BLANK_PATTERN = r"^[\s\x1c-\x1f\x85]*$"


def not_blank(schema: dict) -> dict:
    """``schema`` (a free-text string) marked as refusing a blank value or NUL."""
    schema["minLength"] = max(schema.get("minLength", 1), 1)
    schema.setdefault("pattern", NOT_BLANK_PATTERN)
    return schema


def no_nul(schema: dict) -> dict:
    """``schema`` (a free-text string that may be blank) refusing NUL."""
    schema.setdefault("pattern", NO_NUL_PATTERN)
    return schema
