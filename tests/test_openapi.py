"""OpenAPI 3 at /api/schema/, Swagger UI at /api/docs/, the error envelope in both."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from openapi_spec_validator import validate

from tests.support import ENVELOPE_KEYS, api_routes

pytestmark = pytest.mark.django_db(transaction=True)

ERROR_REF = "#/components/schemas/Error"
# The schema and the docs page describe the API; they are not part of it
# (drf-spectacular leaves them out of the schema by design).
NOT_DOCUMENTED = {"schema", "docs"}
OPERATIONS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(http):
    response = http.get("/api/schema/", params={"format": "json"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(
        "application/vnd.oai.openapi+json"
    )
    return response.json()


def _template_regex(template: str) -> re.Pattern:
    """'/api/users/{id}/' -> a regex matching '/api/users/987654' (slash optional)."""
    parts = re.split(r"(\{[^}]+\})", template.rstrip("/"))
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body + "/?")


def test_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_schema_is_served_as_json_on_accept_header(http, db):
    response = http.get(
        "/api/schema", headers={"Accept": "application/vnd.oai.openapi+json"}
    )
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "BPM-OS API"


def test_every_api_route_and_method_is_in_the_schema(schema):
    templates = [
        (_template_regex(path), item) for path, item in schema["paths"].items()
    ]
    missing = []
    for route in api_routes():
        if route.name in NOT_DOCUMENTED:
            continue
        if "format" in route.kwargs:
            continue  # DRF's .json suffix twin of a route documented without it
        items = [item for regex, item in templates if regex.fullmatch(route.path)]
        documented = {method for item in items for method in item}
        missing += [
            f"{method} {route.path} [{route.name}]"
            for method in route.methods
            if method.lower() not in documented
        ]
    assert not missing, "Routes missing from the schema:\n" + "\n".join(missing)


def test_error_envelope_is_a_schema_component(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == ENVELOPE_KEYS
    assert set(error["properties"]) == ENVELOPE_KEYS


def test_every_operation_documents_its_4xx_with_the_error_schema(schema):
    problems = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in OPERATIONS:
                continue
            client_errors = {
                status: response
                for status, response in operation["responses"].items()
                if status.startswith("4")
            }
            if not {"400", "401", "403", "404"} <= set(client_errors):
                problems.append(f"{method} {path}: 4xx are {sorted(client_errors)}")
            for status, response in client_errors.items():
                ref = response.get("content", {}).get("application/json", {})
                if ref.get("schema") != {"$ref": ERROR_REF}:
                    problems.append(f"{method} {path} {status}: not the Error schema")
    assert not problems, "\n".join(problems)


def test_docs_serve_swagger_ui(http, db):
    response = http.get("/api/docs/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert "/api/schema" in response.text


def test_schema_generation_has_no_warnings(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yaml"),
        ],
        cwd=Path(settings.BASE_DIR),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stderr
