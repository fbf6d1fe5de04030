"""Login, refresh, logout and blacklisting, user admin, roles read from the DB."""

import io

import pytest
from django.core.management import call_command
from rest_framework_simplejwt.tokens import RefreshToken

from bpmos.accounts.models import User
from bpmos.events.models import OutboxEvent
from elog.models import AuditRecord
from tests.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db(transaction=True)


def login(http, username, password=PASSWORD):
    return http.post(
        "/api/auth/login", json={"username": username, "password": password}
    )


def test_login_returns_tokens_and_user(http, make_user):
    user = make_user("planner", username="pat")
    response = login(http, "pat")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert body["user"]["id"] == user.pk
    assert body["user"]["username"] == "pat"
    assert body["user"]["role"] == "planner"
    me = http.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "pat"


def test_login_wrong_password_is_401_envelope(http, make_user):
    make_user("operator", username="olga")
    response = login(http, "olga", "nope")
    assert response.status_code == 401
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "invalid_credentials"
    assert body["request_id"] == response.headers["X-Request-ID"]
    record = AuditRecord.objects.get(action="user.login_failed")
    assert record.after == {"username": "olga"}
    assert record.actor_id is None
    assert record.request_id == body["request_id"]


def test_login_missing_fields_is_400_with_field_details(http, db):
    response = http.post("/api/auth/login", json={"username": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["details"] == {"password": ["This field is required."]}


def test_repeated_failed_logins_are_throttled(http, make_user):
    make_user("operator", username="olga")
    statuses = [login(http, "olga", "wrong").status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 401, 401, 429]
    throttled = login(http, "olga")  # even the right password waits now
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert int(throttled.headers["Retry-After"]) > 0


def test_successful_logins_are_not_throttled(http, make_user):
    make_user("operator", username="olga")
    assert [login(http, "olga").status_code for _ in range(8)] == [200] * 8


def test_refresh_rotates_and_blacklists_the_old_token(http, make_user):
    make_user("operator", username="olga")
    first = login(http, "olga").json()
    rotated = http.post("/api/auth/refresh", json={"refresh": first["refresh"]})
    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]
    reused = http.post("/api/auth/refresh", json={"refresh": first["refresh"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"


def test_logout_blacklists_refresh_token(http, make_user):
    make_user("operator", username="olga")
    tokens = login(http, "olga").json()
    auth = {"Authorization": f"Bearer {tokens['access']}"}
    out = http.post(
        "/api/auth/logout", json={"refresh": tokens["refresh"]}, headers=auth
    )
    assert out.status_code == 204
    again = http.post("/api/auth/refresh", json={"refresh": tokens["refresh"]})
    assert again.status_code == 401
    assert (
        AuditRecord.objects.filter(
            action="user.logged_out", actor_username="olga"
        ).count()
        == 1
    )


def test_logout_refuses_someone_elses_token(http, make_user):
    make_user("operator", username="olga")
    other = make_user("operator", username="omar")
    olga_tokens = login(http, "olga").json()
    response = http.post(
        "/api/auth/logout",
        json={"refresh": olga_tokens["refresh"]},
        headers=bearer(other),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "token_not_valid"
    assert (
        http.post(
            "/api/auth/refresh", json={"refresh": olga_tokens["refresh"]}
        ).status_code
        == 200
    )


def test_expired_or_garbage_access_token_is_401(http, db):
    response = http.get("/api/auth/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_admin_registers_user_and_it_is_audited(http, make_user):
    admin = make_user("admin")
    response = http.post(
        "/api/auth/register",
        json={
            "username": "newbie",
            "password": "Plant-Floor-2026!",
            "role": "operator",
        },
        headers=bearer(admin),
    )
    assert response.status_code == 201
    assert response.json()["role"] == "operator"
    assert login(http, "newbie", "Plant-Floor-2026!").status_code == 200
    record = AuditRecord.objects.get(
        action="user.registered", target_repr__startswith="newbie"
    )
    assert record.actor_id == admin.pk
    assert record.actor_role == "admin"
    assert record.after["role"] == "operator"
    assert record.request_id == response.headers["X-Request-ID"]
    assert record.client_address == "127.0.0.1"


def test_register_rejects_bad_input_and_changes_nothing(http, make_user):
    admin = make_user("admin")
    before_users, before_audit = User.objects.count(), AuditRecord.objects.count()
    response = http.post(
        "/api/auth/register",
        json={"username": "bad name!", "password": "x", "role": "wizard"},
        headers=bearer(admin),
    )
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"username", "role"}
    weak = http.post(
        "/api/auth/register",
        json={"username": "weak", "password": "123", "role": "operator"},
        headers=bearer(admin),
    )
    assert weak.status_code == 400
    assert "password" in weak.json()["details"]
    assert User.objects.count() == before_users
    assert AuditRecord.objects.count() == before_audit


def test_register_duplicate_username_is_409(http, make_user):
    admin = make_user("admin")
    make_user("operator", username="taken")
    response = http.post(
        "/api/auth/register",
        json={"username": "TAKEN", "password": "Plant-Floor-2026!", "role": "operator"},
        headers=bearer(admin),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


def test_register_is_admin_only(http, make_user):
    supervisor = make_user("supervisor")
    response = http.post(
        "/api/auth/register",
        json={"username": "x1", "password": "Plant-Floor-2026!", "role": "operator"},
        headers=bearer(supervisor),
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not User.objects.filter(username="x1").exists()


def test_role_change_takes_effect_on_the_next_request(http, make_user):
    admin = make_user("admin")
    target = make_user("admin", username="soon-operator")
    token = bearer(target)  # issued while target is still an admin
    assert http.get("/api/auth/users", headers=token).status_code == 200
    changed = http.patch(
        f"/api/auth/users/{target.pk}/role",
        json={"role": "operator"},
        headers=bearer(admin),
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "operator"
    assert http.get("/api/auth/users", headers=token).status_code == 403
    record = AuditRecord.objects.get(action="user.role_changed")
    assert (record.before["role"], record.after["role"]) == ("admin", "operator")


def test_deactivation_takes_effect_on_the_next_request_and_refresh(http, make_user):
    admin = make_user("admin")
    make_user("operator", username="leaver")
    tokens = login(http, "leaver").json()
    auth = {"Authorization": f"Bearer {tokens['access']}"}
    assert http.get("/api/auth/me", headers=auth).status_code == 200
    leaver = User.objects.get(username="leaver")
    assert (
        http.post(
            f"/api/auth/users/{leaver.pk}/deactivate", headers=bearer(admin)
        ).status_code
        == 200
    )
    assert http.get("/api/auth/me", headers=auth).status_code == 401
    assert (
        http.post("/api/auth/refresh", json={"refresh": tokens["refresh"]}).status_code
        == 401
    )
    assert login(http, "leaver").status_code == 401
    assert (
        http.post(
            f"/api/auth/users/{leaver.pk}/reactivate", headers=bearer(admin)
        ).status_code
        == 200
    )
    assert login(http, "leaver").status_code == 200


def test_last_admin_cannot_be_demoted_or_deactivated(http, make_user):
    admin = make_user("admin")
    demote = http.patch(
        f"/api/auth/users/{admin.pk}/role",
        json={"role": "auditor"},
        headers=bearer(admin),
    )
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_admin"
    off = http.post(f"/api/auth/users/{admin.pk}/deactivate", headers=bearer(admin))
    assert off.status_code == 409
    admin.refresh_from_db()
    assert (admin.role, admin.is_active) == ("admin", True)


def test_users_list_is_paginated_and_filterable(http, make_user):
    admin = make_user("admin")
    for _ in range(3):
        make_user("operator")
    make_user("auditor")
    response = http.get(
        "/api/auth/users", params={"role": "operator"}, headers=bearer(admin)
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert {user["role"] for user in body["results"]} == {"operator"}


def test_role_change_to_unknown_user_is_404(http, make_user):
    admin = make_user("admin")
    response = http.patch(
        "/api/auth/users/999999/role", json={"role": "planner"}, headers=bearer(admin)
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def _deactivate_and_reactivate(http, admin, user) -> None:
    for step in ("deactivate", "reactivate"):
        done = http.post(f"/api/auth/users/{user.pk}/{step}", headers=bearer(admin))
        assert done.status_code == 200, done.text


def test_reactivation_does_not_revive_tokens_issued_before_deactivation(
    http, make_user
):
    admin = make_user("admin")
    make_user("operator", username="leaver")
    old = login(http, "leaver").json()
    old_rotated = http.post("/api/auth/refresh", json={"refresh": old["refresh"]})
    assert old_rotated.status_code == 200
    old_rotated = old_rotated.json()
    leaver = User.objects.get(username="leaver")
    _deactivate_and_reactivate(http, admin, leaver)

    for access in (old["access"], old_rotated["access"]):
        me = http.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 401
        body = me.json()
        assert (body["success"], body["code"]) == (False, "token_not_valid")
        assert body["error"] == (
            "Token was issued before the account was deactivated; sign in again."
        )
    refused = http.post("/api/auth/refresh", json={"refresh": old_rotated["refresh"]})
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_not_valid"
    leaver.refresh_from_db()
    assert (leaver.is_active, leaver.token_generation) == (True, 1)

    # Signing in again gives tokens that work, refresh and rotate as usual.
    new = login(http, "leaver").json()
    auth = {"Authorization": f"Bearer {new['access']}"}
    assert http.get("/api/auth/me", headers=auth).json()["username"] == "leaver"
    rotated = http.post("/api/auth/refresh", json={"refresh": new["refresh"]})
    assert rotated.status_code == 200
    again = http.get(
        "/api/auth/me",
        headers={"Authorization": f"Bearer {rotated.json()['access']}"},
    )
    assert again.status_code == 200


def test_tokens_without_a_generation_claim_die_at_the_first_deactivation(
    http, make_user
):
    admin = make_user("admin")
    user = make_user("planner")
    auth = bearer(user)  # simplejwt's own for_user: no "gen" claim, counts as 0
    assert http.get("/api/auth/me", headers=auth).status_code == 200
    _deactivate_and_reactivate(http, admin, user)
    refused = http.get("/api/auth/me", headers=auth)
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_not_valid"


def test_a_second_deactivation_ends_the_tokens_of_the_first_reactivation(
    http, make_user
):
    admin = make_user("admin")
    make_user("operator", username="twice")
    user = User.objects.get(username="twice")
    _deactivate_and_reactivate(http, admin, user)
    between = login(http, "twice").json()
    _deactivate_and_reactivate(http, admin, user)
    auth = {"Authorization": f"Bearer {between['access']}"}
    assert http.get("/api/auth/me", headers=auth).status_code == 401
    refresh = http.post("/api/auth/refresh", json={"refresh": between["refresh"]})
    assert refresh.status_code == 401
    assert login(http, "twice").status_code == 200


def test_role_change_keeps_the_tokens_valid(http, make_user):
    # Only a deactivation ends tokens; a role change counts on the next request.
    admin = make_user("admin")
    make_user("operator", username="mover")
    tokens = login(http, "mover").json()
    mover = User.objects.get(username="mover")
    http.patch(
        f"/api/auth/users/{mover.pk}/role",
        json={"role": "planner"},
        headers=bearer(admin),
    )
    me = http.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {tokens['access']}"}
    )
    assert (me.status_code, me.json()["role"]) == (200, "planner")
    assert (
        http.post("/api/auth/refresh", json={"refresh": tokens["refresh"]}).status_code
        == 200
    )


def test_refresh_token_of_a_deleted_user_is_401_not_500(http, make_user):
    # A user who never signed in (one with audit records cannot be deleted).
    gone = make_user("operator", username="gone")
    refresh = str(RefreshToken.for_user(gone))
    gone.delete()
    response = http.post("/api/auth/refresh", json={"refresh": refresh})
    assert response.status_code == 401
    body = response.json()
    assert (body["success"], body["code"]) == (False, "authentication_failed")
    assert body["error"] == "No active account found for the given token."


def test_createsuperuser_makes_an_admin_who_can_manage_users(http, db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command(
        "createsuperuser",
        "--noinput",
        "--username",
        "root",
        "--email",
        "root@plant.example",
        stdout=io.StringIO(),
    )
    root = User.objects.get(username="root")
    record = AuditRecord.objects.get(action="user.registered")
    assert (record.actor_id, record.target_id) == (None, str(root.pk))
    assert record.after == {
        "username": "root",
        "role": "admin",
        "is_active": True,
        "email": "root@plant.example",
    }
    event = OutboxEvent.objects.get(name="user.registered")
    assert (event.data["username"], event.data["role"]) == ("root", "admin")
    assert (root.role, root.is_staff, root.is_superuser, root.is_active) == (
        "admin",
        True,
        True,
        True,
    )
    access = login(http, "root").json()["access"]
    users = http.get("/api/auth/users", headers={"Authorization": f"Bearer {access}"})
    assert users.status_code == 200
    assert [u["role"] for u in users.json()["results"]] == ["admin"]


def test_a_superuser_with_another_role_is_refused(db):
    with pytest.raises(ValueError, match=r"A superuser must have the admin role\."):
        User.objects.create_superuser("odd", password=PASSWORD, role="operator")
    assert not User.objects.filter(username="odd").exists()
