"""The API's JSON renderer: DRF's, made unable to fail on what it echoes.

DRF renders with ``ensure_ascii=False`` and encodes the text to UTF-8, which
fails on a lone UTF-16 surrogate (``"\\ud800"``): a string that is not text.
The parser refuses such bodies, but an error message can still echo one from
elsewhere (a query parameter, a header, a stored value); rather than a 500,
the surrogate is rendered as U+FFFD, the replacement character.

``RowsJSONRenderer`` writes the same bytes faster for the list pages.
``FirstRendererNegotiation`` is for the routes whose answer is a file.
"""

import re

import orjson
from rest_framework import renderers
from rest_framework.negotiation import DefaultContentNegotiation

_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError as exc:
            # exc.object is the whole rendered text that failed to encode.
            return _SURROGATE.sub("\ufffd", exc.object).encode()


def _not_plain(value):
    raise TypeError(type(value).__name__)


# orjson writes these itself, not as DRF's encoder does: sent to _not_plain.
_PLAIN_ONLY = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# U+2028 and U+2029 in UTF-8, and as DRF escapes them.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class RowsJSONRenderer(JSONRenderer):
    """``JSONRenderer``'s bytes, written by orjson (a 68 KB dispatch list in
    tens of microseconds instead of a millisecond), for a view whose bodies
    hold no float: orjson writes some floats differently (``1e-7`` where
    Python writes ``1e-07``). The list pages' rows (``bpmos.listrows``) are
    text, whole numbers, booleans and null. For those it writes what DRF
    does: no spaces, UTF-8 unescaped, U+2028 and U+2029 escaped. Anything
    else orjson refuses (a date, a lazy text, a non-text key, an integer
    past 64 bits, a lone surrogate) and an indented answer go to
    ``JSONRenderer``."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if (
            data is None
            or self.ensure_ascii
            or not self.compact
            or self.get_indent(accepted_media_type or "", renderer_context or {})
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_not_plain, option=_PLAIN_ONLY)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _LINE_SEPARATORS:
            if raw in body:
                body = body.replace(raw, escaped)
        return body


class FirstRendererNegotiation(DefaultContentNegotiation):
    """For the routes that answer with a file they build themselves (a CSV, a
    PDF, a passport's export): errors and job bodies are JSON (the view's first
    renderer) whatever the client accepts (it may ask for ``text/csv`` or
    ``application/pdf``), and ``format`` is the route's own query parameter
    when it has one, not DRF's renderer override (which would answer
    ``?format=pdf`` with 404 and ignore an empty one)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
