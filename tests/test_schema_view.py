"""``/api/schema``: the document generated once per process, each format
rendered once, the same bytes as drf-spectacular's own view (bpmos/schema_view.py)."""

import json

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView
from rest_framework.test import APIRequestFactory

from bpmos import schema_view
from tests.support import ENVELOPE_KEYS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def nothing_kept(monkeypatch):
    """The process's kept documents and renderings emptied for the test (and
    put back after it, so other tests keep theirs); every generation counted."""
    monkeypatch.setattr(schema_view, "_documents", {})
    monkeypatch.setattr(schema_view, "_renderings", {})
    generated = []
    generate = schema_view.SchemaView._generate

    def counted(self, request, version):
        generated.append(version)
        return generate(self, request, version)

    monkeypatch.setattr(schema_view.SchemaView, "_generate", counted)
    return generated


def test_the_document_is_generated_once_and_each_format_rendered_once(
    http, nothing_kept
):
    first = http.get("/api/schema/")
    again = http.get("/api/schema/")
    as_json = http.get("/api/schema/", params={"format": "json"})
    as_json_again = http.get(
        "/api/schema", headers={"Accept": "application/vnd.oai.openapi+json"}
    )

    assert [r.status_code for r in (first, again, as_json, as_json_again)] == [200] * 4
    assert nothing_kept == [None]
    assert first.content == again.content
    assert first.headers["Content-Type"].startswith("application/vnd.oai.openapi")
    assert first.headers["Content-Disposition"] == 'inline; filename="BPM-OS API.yaml"'
    assert as_json.headers["Content-Disposition"] == (
        'inline; filename="BPM-OS API.json"'
    )
    assert as_json.content == as_json_again.content
    # Both formats say the same document.
    assert yaml.safe_load(first.content) == as_json.json()
    assert len(schema_view._renderings) == 2


def test_the_kept_document_is_drf_spectaculars_own(http, nothing_kept):
    ours = http.get("/api/schema/", params={"format": "json"}).json()

    request = APIRequestFactory().get("/api/schema/?format=json")
    theirs = SpectacularAPIView.as_view()(request)
    theirs.render()
    assert theirs.status_code == 200
    assert ours == json.loads(theirs.content)
    assert ours == json.loads(
        json.dumps(SchemaGenerator().get_schema(request=None, public=True))
    )


def test_a_refused_format_is_the_envelope_and_nothing_is_kept(http, nothing_kept):
    http.get("/api/schema/")  # one document and one rendering kept
    response = http.get("/api/schema/", params={"format": "xml"})

    assert response.status_code == 404
    assert set(response.json()) == ENVELOPE_KEYS
    assert len(schema_view._documents) == 1
    assert len(schema_view._renderings) == 1


def test_a_document_not_kept_is_rendered_as_usual():
    """The renderers keep only the view's own documents: any other data (an
    error's body) is rendered each time and never held."""
    renderer = schema_view.JsonRenderer()
    body = {"success": False}
    assert json.loads(renderer.render(body)) == body
    body["success"] = True
    assert json.loads(renderer.render(body)) == {"success": True}
    assert not any(key[2] == id(body) for key in schema_view._renderings)


def test_other_spectacular_settings_are_another_document(http, nothing_kept, settings):
    """The key holds ``SPECTACULAR_SETTINGS``, serialised once per settings
    object: settings replaced (a test's override) are another key, so another
    document; the same settings keep theirs."""
    http.get("/api/schema/", params={"format": "json"})
    http.get("/api/schema/", params={"format": "json"})
    settings.SPECTACULAR_SETTINGS = {
        **settings.SPECTACULAR_SETTINGS,
        "DESCRIPTION": "Another plant",
    }
    other = http.get("/api/schema/", params={"format": "json"})

    again = http.get("/api/schema/", params={"format": "json"})

    assert (other.status_code, again.status_code) == (200, 200)
    assert nothing_kept == [None, None]
    assert len(schema_view._documents) == 2
