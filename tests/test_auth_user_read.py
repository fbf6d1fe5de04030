"""The token's user read by a statement kept compiled and prepared
(``bpmos.compiled.instance_get``, through ``BpmosJWTAuthentication.get_user``):
the same user, the same refusals as simplejwt's ``User.objects.get`` path,
through a real HTTP server."""

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from bpmos.accounts.models import User
from bpmos.compiled import instance_get
from tests.conftest import bearer

pytestmark = pytest.mark.django_db(transaction=True)


def user_by_id(user_id):
    return instance_get(User, "id", user_id)


def test_the_raw_read_loads_the_user_the_orm_loads(make_user):
    user = make_user("supervisor", username="shift-lead")
    User.objects.filter(pk=user.pk).update(token_generation=3, first_name="Asha")
    read = user_by_id(user.pk)
    expected = User.objects.get(pk=user.pk)
    assert [getattr(read, f.attname) for f in User._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in User._meta.concrete_fields
    ]
    assert (read._state.adding, read._state.db) == (False, "default")
    assert read.role == "supervisor"
    assert read.token_generation == 3


def test_the_raw_read_of_an_unknown_id_is_none(db):
    assert user_by_id(987654) is None


def test_an_access_token_of_a_deleted_user_is_401(http, make_user):
    # A user who never signed in (one with audit records cannot be deleted).
    gone = make_user("operator", username="gone")
    token = bearer(gone)
    gone.delete()
    response = http.get("/api/auth/me", headers=token)
    assert response.status_code == 401
    body = response.json()
    assert (body["success"], body["error"]) == (False, "User not found")


def test_an_access_token_of_an_inactive_user_is_401(http, make_user):
    user = make_user("operator", username="paused")
    token = bearer(user)
    assert http.get("/api/auth/me", headers=token).status_code == 200
    # Inactive without a deactivation (no generation bump): the active check.
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = http.get("/api/auth/me", headers=token)
    assert response.status_code == 401
    assert response.json()["error"] == "User is inactive"


def test_an_access_token_without_a_user_claim_is_401(http, make_user):
    user = make_user("operator", username="nameless")
    token = AccessToken.for_user(user)
    del token["user_id"]
    response = http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["success"] is False
