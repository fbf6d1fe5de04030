"""WSGI entry point: production serves the REST API under gunicorn (design §2)."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
application = get_wsgi_application()

# Import the URLconf, and with it every view, serializer and service module,
# while the worker boots rather than in the first request it serves (about a
# second of imports that otherwise lands on one client after every restart).
get_resolver().url_patterns  # noqa: B018 - the attribute access does the import
