"""JSON request bodies, bounded: every JSON body the API reads goes through here.

``json.loads`` recurses once per nesting level, so ~1,000 levels of ``[`` (2 KB)
raise ``RecursionError`` (a 500), and a body a little shallower parses but can
break whatever walks it next (validation, hashing, rendering an error that
echoes it). A lone UTF-16 surrogate (``"\\ud800"``) is valid JSON syntax but not
text: it cannot be encoded to UTF-8, so storing it or echoing it in an error
fails later. A NUL (``"\\u0000"``) is text PostgreSQL cannot store, in ``text``
or ``jsonb``: DRF's string fields refuse it, but not in a map's key or in a
free-form object (a shift log's ``metadata``, a passport's
``materialComposition``), where it was a 500 (the campaign of 2026-12-05).
All three are refused here, at the door, as a 400 ``parse_error``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import APIException, ParseError
from rest_framework.utils import json as drf_json

# Deeper than any payload of the contracts (their deepest is 4); far below the
# interpreter's recursion limit.
MAX_DEPTH = 32

# A \u escape of a UTF-16 surrogate, as it appears in the raw body.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# A \u escape of NUL (a raw NUL byte is not valid JSON).
_NUL_ESCAPE = re.compile(rb"\\u0000")


class BodyTooLarge(APIException):
    """The body is larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413,
    ``payload_too_large`` in the envelope). A DRF exception, not a
    ``bpmos.errors`` one: DRF imports this module while ``bpmos.errors`` is
    still importing DRF."""

    status_code = 413
    default_detail = "The request body is too large."


class UnsafeJSON(ValueError):
    """The body parses as JSON but cannot be accepted (too deep, not text)."""


def check(raw: bytes | str, data: Any) -> Any:
    """``data`` (parsed from ``raw``) if it is at most ``MAX_DEPTH`` deep and all
    its strings are text; raises ``UnsafeJSON`` otherwise.

    Walks the data only when the raw body could hold a problem: more brackets
    than ``MAX_DEPTH``, a surrogate escape or a NUL escape.
    """
    encoded = raw.encode() if isinstance(raw, str) else raw
    deep = encoded.count(b"[") + encoded.count(b"{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(encoded) is not None
    nul = _NUL_ESCAPE.search(encoded) is not None
    if not (deep or surrogates or nul):
        return data
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            items: Any = (*value.keys(), *value.values())
        elif isinstance(value, list):
            items = value
        elif isinstance(value, str):
            if surrogates and _SURROGATE.search(value):
                raise UnsafeJSON(
                    "The body holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                    "which is not text."
                )
            if nul and "\x00" in value:
                raise UnsafeJSON(
                    "The body holds a NUL character (\\u0000), which cannot be "
                    "stored as text."
                )
            continue
        else:
            continue
        if depth >= MAX_DEPTH:
            raise UnsafeJSON(f"The body is nested deeper than {MAX_DEPTH} levels.")
        stack.extend((item, depth + 1) for item in items)
    return data


def loads(raw: bytes | str, **kwargs: Any) -> Any:
    """``json.loads(raw, **kwargs)`` that raises ``ValueError`` (never
    ``RecursionError``) for anything it refuses, ``UnsafeJSON`` included."""
    try:
        data = json.loads(raw, **kwargs)
    except RecursionError:
        raise UnsafeJSON(
            f"The body is nested deeper than {MAX_DEPTH} levels."
        ) from None
    return check(raw, data)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (the project's only parser), bounded as above."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        parse_constant = drf_json.strict_constant if self.strict else None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise BodyTooLarge(
                f"The body is larger than {limit} bytes; send large loads in "
                "several requests."
            )
        try:
            return loads(raw.decode(encoding), parse_constant=parse_constant)
        except ValueError as exc:  # UnicodeDecodeError and UnsafeJSON included
            raise ParseError(f"JSON parse error - {exc}") from None
