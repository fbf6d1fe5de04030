"""The OpenAPI document generated once per test process (docs/testing.md).

drf-spectacular generates the whole document on every ``GET /api/schema``
(seconds of CPU: 35 s on a loaded 2-core machine), and the tests fetch it many
times: the role matrix once per caller, the OpenAPI and audit tests, the fuzz
regressions. The document depends only on the URLconf, the API version, the
request's host and ``SPECTACULAR_SETTINGS``, none of which a request changes,
so ``install()`` keeps each generated document under that key for the test
process and hands out a deep copy: every request still goes through the view,
its permission, negotiation and renderer. A test that changes one of those
settings (``override_settings(ROOT_URLCONF=...)``) gets a document of its own.
``manage.py spectacular`` in a subprocess (the no-warnings test) generates its
own, as before.

The served view keeps its documents and renderings itself
(``bpmos.schema_view``, in production too); this keeps the generator's own
documents for the tests that call ``SchemaGenerator`` directly or through
drf-spectacular's plain view.
"""

from __future__ import annotations

import json
from copy import deepcopy

from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

_documents: dict[tuple, dict] = {}


def _key(generator, request, public) -> tuple:
    return (
        str(generator.urlconf or settings.ROOT_URLCONF),
        repr(generator.patterns),
        generator.url,
        generator.api_version or getattr(request, "version", None),
        public,
        request.get_host() if request is not None else None,
        json.dumps(
            getattr(settings, "SPECTACULAR_SETTINGS", {}), sort_keys=True, default=str
        ),
    )


def install() -> None:
    original = SchemaGenerator.get_schema
    if getattr(original, "once_per_process", False):
        return

    def get_schema(self, request=None, public=False):
        key = _key(self, request, public)
        if key not in _documents:
            _documents[key] = original(self, request=request, public=public)
        return deepcopy(_documents[key])

    get_schema.once_per_process = True
    SchemaGenerator.get_schema = get_schema
