"""WhiteNoise's list of static files made once per test process (docs/testing.md).

Django's test clients (``Client``, DRF's ``APIClient``) build the middleware
chain anew for every client, and a test makes a client per test or per request
(``APIClient().post(...)``). ``WhiteNoiseMiddleware.__init__`` then, in the
embedded configuration (``WHITENOISE_USE_FINDERS``: not in production), walks
every static file the finders know (187: the admin's, DRF's, Swagger UI's),
``stat``s each and builds its headers: about 15 ms of CPU per client on an
idle machine, 0.3 s per request at load 12 (a profile of
``tests/test_production_properties.py``: 60 % of its requests' time).

The list depends only on the files on disk and the settings that name or
shape them, and no test changes a static file. ``install()`` keeps, per
process, what ``add_files_from_finders`` adds under those settings and gives
every next middleware the same entries: the same URLs, paths and headers, as
immutable as before (WhiteNoise builds each response anew from them). A test
that changes one of those settings gets a list of its own.
"""

from __future__ import annotations

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

_found: dict[str, dict] = {}


def _key(middleware: WhiteNoiseMiddleware) -> str:
    names = sorted(
        name
        for name in dir(settings)
        if name.startswith(("WHITENOISE_", "STATIC"))
        or name in {"INSTALLED_APPS", "DEBUG", "FORCE_SCRIPT_NAME"}
    )
    return repr(
        (
            [(name, getattr(settings, name)) for name in names],
            middleware.static_prefix,
            middleware.max_age,
            middleware.allow_all_origins,
            middleware.charset,
            middleware.index_file,
        )
    )


def original_add_files_from_finders():
    """WhiteNoise's own ``add_files_from_finders`` (for the test of this)."""
    method = WhiteNoiseMiddleware.add_files_from_finders
    return getattr(method, "original", method)


def install() -> None:
    original = WhiteNoiseMiddleware.add_files_from_finders
    if getattr(original, "once_per_process", False):
        return

    def add_files_from_finders(self):
        key = _key(self)
        if key not in _found:
            kept, self.files = self.files, {}
            try:
                original(self)
                _found[key] = self.files
            finally:
                self.files = {**kept, **self.files}
            return
        self.files.update(_found[key])

    add_files_from_finders.once_per_process = True
    add_files_from_finders.original = original
    WhiteNoiseMiddleware.add_files_from_finders = add_files_from_finders
