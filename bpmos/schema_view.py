"""``/api/schema``: drf-spectacular's view, the document built once per process.

drf-spectacular generates the whole OpenAPI document on every request (0.3 s
of CPU here once warm, 1 s the first time) and renders it again each time
(YAML, the default format, is pure-Python PyYAML: 1.5 s for the 850 KB
document). The document depends only on the code: the URLconf, the API
version, the language, the host asked and ``SPECTACULAR_SETTINGS``, none of
which a request changes. So ``SchemaView`` keeps each document it generated
under that key for the life of the process, and its renderers keep each
rendering of a kept document per format. Every request still goes through
the view's permission, content negotiation and headers; only the work that
gives the same bytes each time is done once. A deploy (new code) starts new
processes, so a kept document is never older than the code serving it.
"""

from __future__ import annotations

import json
import threading

from django.conf import settings
from django.utils import translation
from drf_spectacular import renderers
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

_lock = threading.Lock()
_documents: dict[tuple, dict] = {}
_renderings: dict[tuple, bytes] = {}


_settings_keys: list[tuple[object, str]] = []  # (the settings object, its key)


def _settings_key(spectacular: object) -> str:
    """``SPECTACULAR_SETTINGS`` as a key, serialised once per settings object
    (``override_settings`` in tests installs a new one; the object is held so
    its id cannot be reused)."""
    for held, key in _settings_keys:
        if held is spectacular:
            return key
    key = json.dumps(spectacular, sort_keys=True, default=str)
    with _lock:
        _settings_keys.append((spectacular, key))
        del _settings_keys[:-8]  # the few objects a process (or a test run) uses
    return key


def kept_documents() -> dict[tuple, dict]:
    """The documents this process keeps (for tests and diagnostics)."""
    return _documents


def _is_kept(data) -> bool:
    return any(data is document for document in _documents.values())


class _RenderedOnce:
    """A renderer that renders a kept document once per format and media type.
    Anything else (an error's envelope, say) is rendered as usual, not kept."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not _is_kept(data):
            return super().render(data, accepted_media_type, renderer_context)
        key = (type(self), accepted_media_type, id(data))
        rendered = _renderings.get(key)
        if rendered is None:
            rendered = super().render(data, accepted_media_type, renderer_context)
            _renderings[key] = rendered
        return rendered


class YamlRenderer(_RenderedOnce, renderers.OpenApiYamlRenderer):
    pass


class YamlRenderer2(_RenderedOnce, renderers.OpenApiYamlRenderer2):
    pass


class JsonRenderer(_RenderedOnce, renderers.OpenApiJsonRenderer):
    pass


class JsonRenderer2(_RenderedOnce, renderers.OpenApiJsonRenderer2):
    pass


class SchemaView(SpectacularAPIView):
    renderer_classes = [YamlRenderer, YamlRenderer2, JsonRenderer, JsonRenderer2]

    def _get_schema_response(self, request):
        version = (
            self.api_version or request.version or self._get_version_parameter(request)
        )
        key = (
            repr(self.urlconf or settings.ROOT_URLCONF),
            repr(self.patterns),
            version,
            self.serve_public,
            translation.get_language(),
            request.get_host(),
            _settings_key(getattr(settings, "SPECTACULAR_SETTINGS", {})),
        )
        document = _documents.get(key)
        if document is None:
            # One generation at a time: a burst of first requests (Swagger UI
            # and a fuzzer at start-up) waits for one document, not builds four.
            with _lock:
                document = _documents.get(key)
                if document is None:
                    document = self._generate(request, version)
                    _documents[key] = document
        filename = self._get_filename(request, version)
        return Response(
            data=document,
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )

    def _generate(self, request, version) -> dict:
        generator = self.generator_class(
            urlconf=self.urlconf, api_version=version, patterns=self.patterns
        )
        return generator.get_schema(request=request, public=self.serve_public)
