"""tests/support_static.py: WhiteNoise's static files, listed once per test
process, are served exactly as a fresh listing serves them."""

from django.test import Client
from whitenoise.middleware import WhiteNoiseMiddleware

from tests import support_static

CSS = "/static/admin/css/base.css"
# The headers WhiteNoise sets (a request id, for one, differs per request).
WHITENOISE_HEADERS = (
    "Content-Type",
    "Content-Length",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Access-Control-Allow-Origin",
)


def test_the_kept_listing_is_the_fresh_one():
    kept = WhiteNoiseMiddleware(lambda request: None)  # the process's copy
    fresh = WhiteNoiseMiddleware(lambda request: None)
    fresh.files = {}  # listed again as WhiteNoise's __init__ does, uncached
    if fresh.static_root:
        fresh.add_files(fresh.static_root, prefix=fresh.static_prefix)
    support_static.original_add_files_from_finders()(fresh)
    assert CSS in fresh.files
    assert kept.files.keys() == fresh.files.keys()
    for url, static_file in fresh.files.items():
        assert kept.files[url].alternatives == static_file.alternatives, url


def test_every_client_serves_a_static_file_alike():
    answers = [Client().get(CSS) for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    bodies = {b"".join(a.streaming_content) for a in answers}
    assert len(bodies) == 1
    assert b"body" in bodies.pop()
    served = {
        tuple((name, a.headers.get(name)) for name in WHITENOISE_HEADERS)
        for a in answers
    }
    assert len(served) == 1
    assert dict(served.pop())["ETag"]
