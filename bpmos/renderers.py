"""The API's JSON renderer: DRF's, made unable to fail on what it echoes.

DRF renders with ``ensure_ascii=False`` and encodes the text to UTF-8, which
fails on a lone UTF-16 surrogate (``"\\ud800"``): a string that is not text.
The parser refuses such bodies, but an error message can still echo one from
elsewhere (a query parameter, a header, a stored value); rather than a 500,
the surrogate is rendered as U+FFFD, the replacement character.
"""

import re

from rest_framework import renderers

_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError as exc:
            # exc.object is the whole rendered text that failed to encode.
            return _SURROGATE.sub("\ufffd", exc.object).encode()
