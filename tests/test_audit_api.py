"""The audit API: writes are audited, the log is read-only, filters, verification.

End-to-end cases go over a real socket (``http``); the filter matrix and the
query-count pin use DRF's in-process client, which needs no committed data.
"""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.db import connection
from rest_framework.test import APIClient

from bpmos import context
from elog import audit
from elog.models import AuditRecord
from tests.conftest import bearer

FORGED_HASH = "f" * 64


def forge_newest_record() -> int:
    """Append a copy of the newest record with a made-up hash; INSERT is allowed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO elog_auditrecord (seq, occurred_at, actor_username, "
            "actor_role, action, target_type, target_id, target_repr, request_id, "
            "source, prev_hash, hash, key_id) "
            "SELECT seq + 1, occurred_at, actor_username, actor_role, "
            "'user.registered', target_type, target_id, target_repr, request_id, "
            "source, hash, %s, key_id FROM elog_auditrecord ORDER BY seq DESC LIMIT 1",
            [FORGED_HASH],
        )
    return AuditRecord.objects.get(hash=FORGED_HASH).pk


# --- over a real socket ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_api_write_is_audited_with_who_what_where(http, make_user):
    admin = make_user("admin", username="ada")
    response = http.post(
        "/api/auth/register",
        json={
            "username": "newbie",
            "password": "Plant-Floor-2026!",
            "role": "operator",
        },
        headers={**bearer(admin), "X-Request-ID": "audit-e2e-1"},
    )
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "audit-e2e-1"
    newbie_id = response.json()["id"]
    record = AuditRecord.objects.get()
    assert {
        "seq": record.seq,
        "actor_id": record.actor_id,
        "actor_username": record.actor_username,
        "actor_role": record.actor_role,
        "action": record.action,
        "target_type": record.target_type,
        "target_id": record.target_id,
        "target_repr": record.target_repr,
        "before": record.before,
        "after": record.after,
        "request_id": record.request_id,
        "client_address": record.client_address,
        "source": record.source,
    } == {
        "seq": 1,
        "actor_id": admin.pk,
        "actor_username": "ada",
        "actor_role": "admin",
        "action": "user.registered",
        "target_type": "accounts.user",
        "target_id": str(newbie_id),
        "target_repr": "newbie (operator)",
        "before": None,
        "after": {
            "username": "newbie",
            "role": "operator",
            "is_active": True,
            "email": "",
        },
        "request_id": "audit-e2e-1",
        "client_address": "127.0.0.1",
        "source": "api",
    }

    auditor = make_user("auditor")
    detail = http.get(f"/api/audit/{record.pk}", headers=bearer(auditor))
    assert detail.status_code == 200
    assert detail.json() == {
        "id": record.pk,
        "seq": 1,
        "occurred_at": record.occurred_at.isoformat().replace("+00:00", "Z"),
        "actor": admin.pk,
        "actor_username": "ada",
        "actor_role": "admin",
        "action": "user.registered",
        "target_type": "accounts.user",
        "target_id": str(newbie_id),
        "target_repr": "newbie (operator)",
        "before": None,
        "after": {
            "username": "newbie",
            "role": "operator",
            "is_active": True,
            "email": "",
        },
        "request_id": "audit-e2e-1",
        "client_address": "127.0.0.1",
        "source": "api",
        "prev_hash": "0" * 64,
        "hash": record.hash,
    }
    verify = http.get("/api/audit/verify", headers=bearer(auditor))
    assert verify.status_code == 200
    assert verify.json() == {
        "ok": True,
        "checked": 1,
        "head_seq": 1,
        "head_hash": record.hash,
        "first_broken": None,
        "unverifiable": [],
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("auditor", 200),
        ("admin", 200),
        ("operator", 403),
        ("planner", 403),
        ("supervisor", 403),
        ("plant-head", 403),
    ],
)
def test_verify_is_for_auditors_and_admins(http, make_user, role, status):
    response = http.get("/api/audit/verify/", headers=bearer(make_user(role)))
    assert response.status_code == status


@pytest.mark.django_db(transaction=True)
def test_verify_needs_a_token(http):
    response = http.get("/api/audit/verify")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.django_db(transaction=True)
def test_verify_refused_to_an_operator_with_the_envelope(http, make_user):
    response = http.get("/api/audit/verify", headers=bearer(make_user("operator")))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db(transaction=True)
def test_verify_endpoint_names_a_forged_record(http, make_user):
    admin = make_user("admin")
    first = audit.record(actor=admin, action="user.registered", target=admin)
    forged_id = forge_newest_record()
    response = http.get("/api/audit/verify", headers=bearer(make_user("auditor")))
    assert response.status_code == 200
    assert response.json() == {
        "ok": False,
        "checked": 2,
        "head_seq": 2,
        "head_hash": FORGED_HASH,
        "first_broken": {
            "seq": 2,
            "id": forged_id,
            "problem": "altered",
            "message": (
                "Record #2, the newest, does not match its hash: it was altered, or "
                "forged and appended (with no record after it, the two cannot be "
                "told apart)."
            ),
        },
        "unverifiable": [],
    }
    anchored = http.get(
        "/api/audit/verify",
        params={"anchor_seq": 1, "anchor_hash": first.hash},
        headers=bearer(admin),
    )
    assert anchored.json()["first_broken"]["seq"] == 2


# --- in process -------------------------------------------------------------------


@pytest.fixture
def api_as(make_user):
    def make(role: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=bearer(make_user(role))["Authorization"])
        return client

    return make


@pytest.fixture
def log(db, make_user, monkeypatch):
    """Four records at 08:00, 09:00, 10:00 and 11:00 on 2026-03-02 (UTC)."""
    ada = make_user("admin", username="ada")
    olga = make_user("operator", username="olga")
    times = iter(datetime(2026, 3, 2, hour, tzinfo=UTC) for hour in (8, 9, 10, 11))
    monkeypatch.setattr("elog.audit.timezone", SimpleNamespace(now=lambda: next(times)))

    def write(request_id: str, **kwargs) -> AuditRecord:
        token = context.bind(
            context.RequestContext(
                request_id=request_id, client_address="10.0.0.7", source="api"
            )
        )
        try:
            return audit.record(**kwargs)
        finally:
            context.reset(token)

    write("req-a", actor=ada, action="user.registered", target=olga)
    write("req-b", actor=olga, action="user.logged_in", target=olga)
    write(
        "req-c",
        actor=ada,
        action="passport.dispatched",
        target_type="passports.passport",
        target_id="P-7",
    )
    write("", actor=None, action="system.checked")
    return SimpleNamespace(ada=ada, olga=olga)


def seqs(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [record["seq"] for record in response.json()["results"]]


def test_list_is_paginated_newest_first(api_as, log):
    response = api_as("auditor").get("/api/audit/", {"page_size": 3})
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    assert seqs(response) == [4, 3, 2]
    assert body["next"] == "http://testserver/api/audit/?page=2&page_size=3"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "user.logged_in"}, [2]),
        ({"actor": "{ada}"}, [3, 1]),
        ({"actor_role": "admin"}, [3, 1]),
        ({"actor_role": "operator"}, [2]),
        ({"target_type": "passports.passport"}, [3]),
        ({"target_id": "{olga}"}, [2, 1]),
        ({"request_id": "req-c"}, [3]),
        ({"source": "api"}, [4, 3, 2, 1]),
        ({"from": "2026-03-02T09:00:00Z"}, [4, 3, 2]),
        ({"to": "2026-03-02T09:00:00Z"}, [2, 1]),
        ({"from": "2026-03-02T09:00:00Z", "to": "2026-03-02T10:00:00Z"}, [3, 2]),
        ({"search": "olga"}, [2, 1]),
        ({"search": "passport"}, [3]),
        ({"search": "req-b"}, [2]),
        ({"ordering": "seq"}, [1, 2, 3, 4]),
        ({"ordering": "-occurred_at"}, [4, 3, 2, 1]),
    ],
)
def test_list_filters(api_as, log, params, expected):
    query = {
        key: value.format(ada=log.ada.pk, olga=log.olga.pk)
        for key, value in params.items()
    }
    assert seqs(api_as("auditor").get("/api/audit", query)) == expected


def test_list_rejects_an_unknown_role_filter(api_as, log):
    response = api_as("auditor").get("/api/audit/", {"actor_role": "wizard"})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["details"]) == {"actor_role"}


def test_list_query_count_is_pinned(api_as, log, django_assert_num_queries):
    client = api_as("admin")
    with django_assert_num_queries(3):  # the caller, the count, the page
        response = client.get("/api/audit/")
    assert seqs(response) == [4, 3, 2, 1]


def test_list_is_refused_to_other_roles(api_as, log):
    response = api_as("supervisor").get("/api/audit/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_detail_of_unknown_record_is_404(api_as, db):
    response = api_as("auditor").get("/api/audit/999999")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_offers_no_writes(api_as, log, method):
    record = AuditRecord.objects.get(seq=1)
    client = api_as("admin")
    for path in ("/api/audit/", f"/api/audit/{record.pk}", "/api/audit/verify"):
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 405, path
        assert response.json()["code"] == "method_not_allowed"
    assert AuditRecord.objects.count() == 4
    assert AuditRecord.objects.get(seq=1).hash == record.hash


def test_verify_rejects_half_an_anchor(api_as, log):
    response = api_as("auditor").get("/api/audit/verify", {"anchor_seq": 2})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"] == {
        "anchor_hash": ["64 lower-case hexadecimal characters are required."]
    }
    malformed = api_as("auditor").get(
        "/api/audit/verify", {"anchor_seq": 0, "anchor_hash": "xyz"}
    )
    assert malformed.status_code == 400
    assert set(malformed.json()["details"]) == {"anchor_seq", "anchor_hash"}


def test_openapi_schema_documents_the_audit_endpoints(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    assert {path for path in schema["paths"] if path.startswith("/api/audit")} == {
        "/api/audit/",
        "/api/audit/{id}/",
        "/api/audit/verify/",
    }
    list_params = {
        p["name"] for p in schema["paths"]["/api/audit/"]["get"]["parameters"]
    }
    assert list_params == {
        "action",
        "actor",
        "actor_role",
        "target_type",
        "target_id",
        "request_id",
        "source",
        "from",
        "to",
        "search",
        "ordering",
        "page",
        "page_size",
    }
    verify = schema["paths"]["/api/audit/verify/"]["get"]
    assert {p["name"] for p in verify["parameters"]} == {"anchor_seq", "anchor_hash"}
    ok_body = verify["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok_body == {"$ref": "#/components/schemas/VerifyResult"}
    assert set(schema["components"]["schemas"]["VerifyResult"]["properties"]) == {
        "ok",
        "checked",
        "head_seq",
        "head_hash",
        "first_broken",
        "unverifiable",
    }
