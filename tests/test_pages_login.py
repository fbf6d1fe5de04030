"""The plant's sign-in page, ``/`` and the live pages' socket token
(bpmos/accounts/pages.py; docs/pages.md)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from bpmos import access
from bpmos.roles import Role
from elog.models import AuditRecord
from tests.conftest import PASSWORD
from tests.support_browser import WALL, save_screens, sign_in

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    response = client.post(
        "/login/",
        {
            "username": user.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302, response.content[:300]
    return client


def test_the_login_page_is_html_and_public():
    response = Client().get("/login/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert 'name="username"' in body
    assert 'name="password"' in body
    assert "csrfmiddlewaretoken" in body


@pytest.mark.parametrize("role", list(Role))
def test_every_role_signs_in_and_home_leads_to_its_board(make_user, role):
    user = make_user(role)
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 302
    from django.shortcuts import resolve_url

    assert home["Location"] == resolve_url(access.HOME_PAGE[role])
    assert AuditRecord.objects.filter(
        action="user.logged_in", actor_id=user.pk
    ).exists()


def test_an_operator_is_not_told_to_use_a_staff_account(make_user):
    """The admin's login refuses operators; the plant's signs them in."""
    user = make_user(Role.OPERATOR)
    admin_login = Client().post(
        "/admin/login/", {"username": user.username, "password": PASSWORD}
    )
    assert b"staff account" in admin_login.content
    plant = Client().post("/login/", {"username": user.username, "password": PASSWORD})
    assert plant.status_code == 302


def test_a_wrong_password_is_refused_audited_and_throttled(make_user, settings):
    user = make_user(Role.OPERATOR)
    client = Client()
    for _ in range(5):
        response = client.post("/login/", {"username": user.username, "password": "x"})
        assert response.status_code == 200
        assert b"Wrong username or password" in response.content
    assert AuditRecord.objects.filter(action="user.login_failed").count() == 5
    # The sixth try is refused before the password is checked, even a right one.
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_signed_out_users_are_sent_to_the_login_page():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_the_socket_token_needs_the_session_and_csrf(make_user):
    user = make_user(Role.SUPERVISOR)
    assert Client().post("/board/token/").status_code == 302  # signed out
    client = signed_in(user)
    assert client.post("/board/token/").status_code == 403  # no CSRF token
    client.get("/login/")  # any page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post("/board/token/", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "expiresIn"}
    token = AccessToken(body["access"])
    assert token["user_id"] == str(user.pk) or token["user_id"] == user.pk
    assert token["gen"] == user.token_generation
    # The API takes it like any client's token.
    me = Client().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["username"] == user.username
    assert client.get("/board/token/").status_code == 405


def test_sign_out_ends_the_session(make_user):
    client = signed_in(make_user(Role.OPERATOR))
    client.get("/login/")
    csrf = client.cookies["csrftoken"].value
    response = client.post("/logout/", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 302
    assert client.get("/")["Location"].startswith("/login/")


@pytest.mark.django_db(transaction=True)
def test_signing_in_in_a_real_browser(browser, live_server, make_user):
    user = make_user(Role.OPERATOR, first_name="Asha", last_name="Rao")
    context = browser.new_context(base_url=live_server.url, viewport=WALL)
    page = context.new_page()
    page.goto("/")
    assert "/login/" in page.url
    save_screens(page, "login")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.inner_text(".error")
    context.close()
    context, page = sign_in(browser, live_server.url, user)
    assert "Asha Rao" in page.inner_text("header")
    page.click("text=Sign out")
    # The sign-in page, with or without the page to return to: the board's
    # script may ask for a new token while the sign-out is on its way, be sent
    # to sign in and reload the board, which sends it to /login/?next=...
    page.wait_for_url(re.compile(r"/login/(\?next=[^&]*)?$"))
    assert page.locator("#id_username").is_visible()
    context.close()


def test_every_page_route_is_declared_in_pages():
    """A page without a row in ``access.PAGES`` would be refused to everyone;
    one with a row but another name would be a hole: every routed page name
    is declared (fail closed, as POLICY is for the API)."""
    from django.urls import get_resolver

    from bpmos import urls

    names = set()

    def walk(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)
            elif pattern.name:
                names.add(pattern.name)

    walk(urls.page_patterns)
    assert names, "no page routes found"
    assert names <= set(access.PAGES), names - set(access.PAGES)
    assert get_resolver().reverse_dict  # the URLconf loads
