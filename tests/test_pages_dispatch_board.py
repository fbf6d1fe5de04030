"""The dispatch board, ``/board/dispatch/`` (passports/pages.py; docs/pages.md):
who opens it, what it renders, which buttons each role gets; then in a real
browser against a real daphne: a move made through the API by another client
removes the row (over the contract's SSE stream, opened with a ticket), and a
supervisor moves a product to past and reactivates it from the page, with a
confirmation, and the API shows it."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from django.test import Client

from bpmos import access
from bpmos.events.models import OutboxEvent
from bpmos.roles import Role
from passports import pages
from passports.dispatch import services as dispatch
from passports.models import EventKind
from tests.conftest import PASSWORD, bearer
from tests.dispatch_support import latest_job, make_pack, record
from tests.support import daphne_server
from tests.support_browser import WALL, save_screens, server_knows_password, sign_in

URL = "/board/dispatch/"
MOVE_BUTTON = 'data-action="move_to_past"'
REACTIVATE_BUTTON = 'data-action="reactivate"'


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def config_of(body: str) -> dict:
    found = re.search(
        r'<script id="dispatch-config" type="application/json">(.*?)</script>',
        body,
        re.S,
    )
    assert found, "the page hands its script no configuration"
    return json.loads(found.group(1))


def live_rows(body: str) -> list[str]:
    table = body.split('id="live-products"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-product-id="([^"]+)"', table)


# --- the page, through Django's client ----------------------------------------------


@pytest.mark.django_db
def test_signed_out_is_sent_to_the_login_page():
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={URL}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_every_role_opens_it_and_sees_the_dispatchable_list(make_user, role):
    sam = make_user(Role.SUPERVISOR)
    make_pack(sam, "PK-001")
    make_pack(sam, "PK-002", until="reserved")
    make_pack(sam, "PK-HOLD", until="held")  # live but may not ship
    make_pack(sam, "PK-GONE", until="dispatched")
    make_pack(sam, "PK-NEW", until="provisioned")  # never on the desk
    response = signed_in(make_user(role)).get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert live_rows(body) == ["PK-001", "PK-002"]
    assert '<span id="dispatch-count">2</span>' in body
    assert 'aria-current="page">Dispatch board' in body


@pytest.mark.django_db
def test_the_first_list_is_the_apis_list(make_user):
    sam = make_user(Role.SUPERVISOR)
    for serial in ("PK-003", "PK-001", "PK-002"):
        make_pack(sam, serial, location=f"WH-A / {serial}")
    auth = bearer(sam)["Authorization"]
    api = (
        Client().get("/api/live-products/dispatchable", HTTP_AUTHORIZATION=auth).json()
    )
    body = signed_in(sam).get(URL).content.decode()
    assert live_rows(body) == [p["productId"] for p in api["products"]]
    for product in api["products"]:
        serial = product["productId"]
        row = re.search(
            rf'<tr data-product-id="{serial}" data-job-id="(\d+)">(.*?)</tr>',
            body,
            re.S,
        )
        assert row.group(1) == product["jobId"]
        for key in ("bpan", "model", "lot", "state", "location"):
            assert f">{product.get(key) or '—'}<" in row.group(2), key


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_buttons_follow_the_apis_own_rule(make_user, role):
    sam = make_user(Role.SUPERVISOR)
    make_pack(sam, "PK-001")
    off = make_pack(sam, "PK-OFF")
    dispatch.product_move_to_past(
        passport_id=off.pk, reason="damaged in storage", actor=sam
    )
    allowed = access.allows(access.rule_for("dispatch-lifecycle", "POST"), role)
    assert allowed == access.allows(
        access.rule_for("dispatch-move-to-past", "POST"), role
    )
    body = signed_in(make_user(role)).get(URL).content.decode()
    assert (MOVE_BUTTON in body) is allowed
    assert (REACTIVATE_BUTTON in body) is allowed
    assert ('<dialog id="confirm-move"' in body) is allowed
    assert config_of(body)["canMove"] is allowed
    # The roles the design names: supervisors move, the shop floor watches.
    if role in (Role.SUPERVISOR, Role.PLANT_HEAD, Role.ADMIN):
        assert allowed
    if role in (Role.OPERATOR, Role.PLANNER, Role.AUDITOR):
        assert not allowed


@pytest.mark.django_db
def test_only_products_that_may_come_back_are_offered_for_reactivation(make_user):
    sam = make_user(Role.SUPERVISOR)
    damaged = make_pack(sam, "PK-DMG")
    dispatch.product_move_to_past(
        passport_id=damaged.pk, reason="damaged in storage", actor=sam
    )
    make_pack(sam, "PK-GONE", until="dispatched")  # left the plant
    held = make_pack(sam, "PK-HELD")
    dispatch.product_move_to_past(passport_id=held.pk, reason="recount", actor=sam)
    record(sam, held, EventKind.HELD, reason="Swollen cell suspected")
    body = signed_in(sam).get(URL).content.decode()
    past = body.split('id="past-products"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-product-id="([^"]+)" data-job-id="(\d+)">', past)
    assert rows == [("PK-DMG", str(latest_job(damaged).pk))]
    assert "damaged in storage" in past


@pytest.mark.django_db
def test_the_stream_resumes_from_the_newest_dispatch_event_at_render(make_user):
    sam = make_user(Role.SUPERVISOR)
    make_pack(sam, "PK-001")
    newest = OutboxEvent.objects.filter(topic_rows__topic="dispatch").latest("pk")
    make_pack(sam, "PK-NEW", until="provisioned")  # other topics only
    config = config_of(signed_in(sam).get(URL).content.decode())
    assert config["lastEventId"] == newest.pk
    assert config["api"] == {
        "list": "/api/live-products/dispatchable",
        "lifecycle": "/api/products/lifecycle",
        "ticket": "/api/live-products/dispatchable/stream-ticket",
    }
    assert pages.DISPATCH_API["lifecycle"] == "dispatch-lifecycle"


# --- in a real browser, against a real daphne ------------------------------------


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("daphne-dispatch-board") / "daphne.log"
    with daphne_server(log_path) as port:
        yield f"http://127.0.0.1:{port}"


def daphne_user(make_user, role: str, username: str):
    """A user the daphne process can sign in (``server_knows_password``)."""
    return server_knows_password(make_user(role, username=username))


def live_row(page, serial: str):
    return page.locator(f'#live-products tr[data-product-id="{serial}"]')


def past_row(page, serial: str):
    return page.locator(f'#past-products tr[data-product-id="{serial}"]')


def open_board(browser, server, user):
    """``user`` signed in through ``/login/`` (tests.support_browser.sign_in),
    on the board with its stream open."""
    context, page = sign_in(browser, server, user, viewport=WALL, next_path=URL)
    said: list[str] = []
    page.on("console", lambda msg: said.append(f"console {msg.type}: {msg.text}"))
    page.on("pageerror", lambda error: said.append(f"page error: {error}"))
    assert page.url == f"{server}{URL}", page.url
    try:
        page.wait_for_function("document.body.dataset.live === 'connected'")
    except Exception:
        live = page.evaluate("document.body.dataset.live")
        pytest.fail(f"the stream did not open (data-live={live}): {said}")
    return context, page


def lifecycle(server, user, serial: str) -> dict:
    response = httpx.get(
        f"{server}/api/products/lifecycle",
        params={"productId": serial},
        headers=bearer(user),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["lifecycle"]


@pytest.mark.django_db(transaction=True)
def test_a_move_through_the_api_removes_the_row(browser, server, make_user):
    sam = make_user(Role.SUPERVISOR, username="sam")
    olga = daphne_user(make_user, Role.OPERATOR, "olga")
    first = make_pack(sam, "PK-001")
    make_pack(sam, "PK-002")
    context, page = open_board(browser, server, olga)
    try:
        assert live_row(page, "PK-001").count() == 1
        assert page.locator("button[data-action]").count() == 0  # an operator watches
        # Another client, through the API.
        response = httpx.post(
            f"{server}/api/live-products/dispatchable",
            json={"productId": "PK-001", "jobId": str(latest_job(first).pk)},
            headers=bearer(sam),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        live_row(page, "PK-001").wait_for(state="detached", timeout=5000)
        assert live_row(page, "PK-002").count() == 1
        assert page.locator("#dispatch-count").inner_text() == "1"
        save_screens(page, "dispatch-board-operator")
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_a_supervisor_moves_to_past_and_reactivates_from_the_page(
    browser,
    server,
    make_user,
):
    sam = daphne_user(make_user, Role.SUPERVISOR, "sam")
    for serial in ("PK-001", "PK-002", "PK-003", "PK-004"):
        make_pack(sam, serial, location="WH-A / Rack 3")
    context, page = open_board(browser, server, sam)
    try:
        save_screens(page, "dispatch-board")
        # Cancel changes nothing.
        live_row(page, "PK-002").locator("button[data-action=move_to_past]").click()
        dialog = page.locator("dialog#confirm-move")
        dialog.wait_for(state="visible")
        page.click("#confirm-cancel")
        dialog.wait_for(state="hidden")
        assert lifecycle(server, sam, "PK-002")["currentState"] == "ON"

        live_row(page, "PK-002").locator("button[data-action=move_to_past]").click()
        dialog.wait_for(state="visible")
        assert page.input_value("#confirm-reason") == "dispatched"
        page.fill("#confirm-reason", "damaged in storage")
        save_screens(page, "dispatch-board-confirm")
        page.click("#confirm-ok")
        dialog.wait_for(state="hidden")
        live_row(page, "PK-002").wait_for(state="detached")
        past_row(page, "PK-002").wait_for()
        after = lifecycle(server, sam, "PK-002")
        assert after["currentState"] == "OFF"
        assert after["jobs"][0]["reason"] == "damaged in storage"
        assert after["transitions"][-1]["by"] == "sam"

        # And back, from the list of products off the desk.
        past_row(page, "PK-002").locator("button[data-action=reactivate]").click()
        dialog.wait_for(state="visible")
        page.fill("#confirm-reason", "inspected, fine")
        page.click("#confirm-ok")
        past_row(page, "PK-002").wait_for(state="detached")
        live_row(page, "PK-002").wait_for()
        back = lifecycle(server, sam, "PK-002")
        assert back["currentState"] == "ON"
        assert back["transitions"][-1]["event"] == "reactivated"
    finally:
        context.close()


@pytest.mark.django_db(transaction=True)
def test_a_refused_move_is_shown_on_the_page(browser, server, make_user):
    sam = daphne_user(make_user, Role.SUPERVISOR, "sam")
    held = make_pack(sam, "PK-HELD")
    dispatch.product_move_to_past(passport_id=held.pk, reason="recount", actor=sam)
    context, page = open_board(browser, server, sam)
    try:
        past_row(page, "PK-HELD").wait_for()
        # Put on hold after the page was rendered (the desk is not told: the
        # product is not live), so the API refuses the reactivation.
        record(sam, held, EventKind.HELD, reason="Swollen cell suspected")
        past_row(page, "PK-HELD").locator("button[data-action=reactivate]").click()
        page.click("#confirm-ok")
        error = page.locator("#confirm-error")
        error.wait_for(state="visible")
        assert "on_hold" in error.inner_text()
        assert "release the hold first" in page.locator("#board-error").inner_text()
        assert lifecycle(server, sam, "PK-HELD")["currentState"] == "OFF"
    finally:
        context.close()
