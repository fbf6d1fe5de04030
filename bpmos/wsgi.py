"""WSGI entry point: production serves the REST API under gunicorn
(docs/design.md §2)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
application = get_wsgi_application()

# Import the URLconf, and with it every view, serializer and service module,
# while the worker boots rather than in the first request it serves (about a
# second of imports that otherwise lands on one client after every restart).
get_resolver().url_patterns  # noqa: B018 - the attribute access does the import

# Everything loaded so far lives as long as the worker: move it out of the
# garbage collector's reach, so a full collection (triggered by the objects a
# request allocates, e.g. a 1,000-reading batch) walks the request's objects,
# not the whole of Django (~1 ms a request on average, measured on ingest).
gc.freeze()
