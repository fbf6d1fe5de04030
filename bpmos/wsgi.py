"""WSGI entry point: production serves the REST API under gunicorn (design §2)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bpmos.settings")
application = get_wsgi_application()
