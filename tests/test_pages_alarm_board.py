"""The alarm board, ``/board/alarms/`` (scada/pages.py; docs/pages.md "Alarm
board"): who may open it, what it lists and in which order, the buttons each
role gets (the API's own rule), and, in a real browser against a real daphne,
acknowledging and shelving from the page, the API's refusals said on the page,
and an alarm raised while the page is open appearing live."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from bpmos import access
from bpmos.accounts.services import user_role_change
from bpmos.roles import Role
from elog.models import AuditRecord
from scada import alarms
from scada.models import AlarmEvent, AlarmState, ScadaReading
from scada.pages import age_text
from tests.conftest import PASSWORD
from tests.support import WAIT_SECONDS, daphne_server
from tests.support_browser import PHONE, save_screens, sign_in
from tests.test_scada_alarms import make_connector, make_rule, make_tag

S = AlarmState
URL = "/board/alarms/"


def an_alarm(
    state: str = S.UNACK_ACTIVE,
    *,
    severity: str = "medium",
    minutes_ago: float = 5,
    message: str = "Cell temperature high",
    **extra,
) -> AlarmEvent:
    """An alarm put straight into ``state`` (consistent underlying state)."""
    now = timezone.now()
    active = state not in {S.UNACK_RTN, S.NORMAL}
    acknowledged = state in {S.ACK_ACTIVE, S.NORMAL}
    fields = {
        "timestamp": now - timedelta(minutes=minutes_ago),
        "tag_name": "l1.temp",
        "status": state,
        "severity": severity,
        "active": active,
        "acknowledged_at": now if acknowledged else None,
        "message": message,
        "area": "line-a",
        "value": 92.5,
        "limit": 80.0,
        "closed_at": now if state == S.NORMAL else None,
        **extra,
    }
    return AlarmEvent.objects.create(**fields)


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def ids_in(html: str, tbody_id: str) -> list[int]:
    match = re.search(rf'<tbody id="{tbody_id}">(.*?)</tbody>', html, re.S)
    assert match, tbody_id
    return [
        int(i) for i in re.findall(r'<tr class="alarm[^"]*" data-id="(\d+)"', match[1])
    ]


def buttons_of(html: str, alarm_id: int) -> list[str]:
    match = re.search(rf'data-id="{alarm_id}".*?</tr>', html, re.S)
    assert match, alarm_id
    return re.findall(r'data-action="(\w+)"', match[0])


# --- who may open it ------------------------------------------------------------


@pytest.mark.django_db
def test_signed_out_users_are_sent_to_the_login_page():
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={URL}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_every_role_opens_the_board(make_user, role):
    assert access.may_open_page("board-alarms", role)
    response = signed_in(make_user(role)).get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.content.decode()
    assert "<h1>Alarm board</h1>" in body
    assert 'aria-current="page">Alarm board</a>' in body
    assert "bpmos/board-alarms.js" in body
    assert "bpmos/live.js" in body


# --- what it lists ------------------------------------------------------------


@pytest.mark.django_db
def test_open_alarms_by_severity_then_age_hidden_ones_apart(make_user):
    low_old = an_alarm(severity="low", minutes_ago=90)
    critical_new = an_alarm(severity="critical", minutes_ago=1)
    high = an_alarm(S.UNACK_RTN, severity="high", minutes_ago=30)
    critical_old = an_alarm(S.ACK_ACTIVE, severity="critical", minutes_ago=20)
    closed = an_alarm(S.NORMAL, severity="critical", message="Closed one")
    shelved = an_alarm(
        S.SHELVED,
        severity="high",
        shelved_until=timezone.now() + timedelta(hours=1),
        shelve_reason="Sensor swap",
    )
    suppressed = an_alarm(S.SUPPRESSED, severity="low", minutes_ago=200)
    body = signed_in(make_user(Role.OPERATOR)).get(URL).content.decode()
    assert ids_in(body, "alarm-rows") == [
        critical_old.pk,
        critical_new.pk,
        high.pk,
        low_old.pk,
    ]
    assert ids_in(body, "alarm-hidden-rows") == [shelved.pk, suppressed.pk]
    assert f'data-id="{closed.pk}"' not in body
    assert "Closed one" not in body
    # The ISA-18.2 state in words, the age, the counts of what is shown.
    assert "Unacknowledged, returned to normal" in body
    assert "Acknowledged, active" in body
    assert "shelved: Sensor swap" in body
    assert ">1 h 30 min</time>" in body or ">1 h 29 min</time>" in body
    assert "<b>2</b> critical" in body
    assert "<b>1</b> high" in body
    assert "<b>0</b> medium" in body
    assert "<b>3</b> unacknowledged" in body  # critical_new, high, low_old
    assert 'id="alarm-empty" hidden' in body
    # The script starts from the same rows, in the API's shape.
    data = re.search(
        r'<script id="alarm-board-data" type="application/json">(.*?)</script>',
        body,
        re.S,
    )
    assert data
    assert f'"id": {shelved.pk}' in data[1]
    assert '"alarm_state": "unack_rtn"' in data[1]


@pytest.mark.django_db
def test_no_open_alarm_is_a_clear_empty_state(make_user):
    an_alarm(S.NORMAL)
    body = signed_in(make_user(Role.OPERATOR)).get(URL).content.decode()
    assert "<strong>No active alarms.</strong>" in body
    assert 'id="alarm-empty" hidden' not in body
    assert ids_in(body, "alarm-rows") == []
    assert (
        'id="alarm-hidden-section" aria-labelledby="alarms-hidden-title" hidden' in body
    )


@pytest.mark.django_db
def test_the_board_reads_a_fixed_number_of_queries(
    make_user, django_assert_num_queries
):
    client = signed_in(make_user(Role.SUPERVISOR))
    an_alarm()
    client.get(URL)  # warm the session
    with django_assert_num_queries(3) as few:
        client.get(URL)
    for severity in ("critical", "high", "low", "medium"):
        an_alarm(severity=severity)
        an_alarm(S.SHELVED, severity=severity)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(URL)


def test_age_text_matches_the_script():
    assert [age_text(s) for s in (0, 59, 60, 3599, 3600, 86399, 90000)] == [
        "0 s",
        "59 s",
        "1 min 00 s",
        "59 min 59 s",
        "1 h 00 min",
        "23 h 59 min",
        "1 d 1 h",
    ]


# --- the buttons: the API's rule for each action ----------------------------------

BUTTONS = {  # role: (on an unacknowledged alarm, on a shelved one)
    Role.OPERATOR: (["acknowledge"], []),
    Role.PLANNER: (["acknowledge"], []),
    Role.SUPERVISOR: (["acknowledge", "shelve"], ["unshelve"]),
    Role.PLANT_HEAD: (["acknowledge", "shelve"], ["unshelve"]),
    Role.ADMIN: (["acknowledge", "shelve"], ["unshelve"]),
    Role.AUDITOR: ([], []),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_buttons_only_for_the_roles_the_api_allows(make_user, role):
    unacknowledged = an_alarm()
    acknowledged = an_alarm(S.ACK_ACTIVE, severity="high")
    shelved = an_alarm(S.SHELVED, shelved_until=timezone.now() + timedelta(hours=1))
    body = signed_in(make_user(role)).get(URL).content.decode()
    on_unacknowledged, on_shelved = BUTTONS[role]
    assert buttons_of(body, unacknowledged.pk) == on_unacknowledged
    assert buttons_of(body, shelved.pk) == on_shelved
    # Acknowledged already: nothing to acknowledge, still something to shelve.
    assert buttons_of(body, acknowledged.pk) == [
        b for b in on_unacknowledged if b != "acknowledge"
    ]
    # The same answer as the API's own rule.
    may_shelve = access.allows(access.rule_for("alarm-shelve", "POST"), role)
    may_ack = access.allows(access.rule_for("alarm-acknowledge", "POST"), role)
    assert ("shelve" in on_unacknowledged) is may_shelve
    assert ("acknowledge" in on_unacknowledged) is may_ack
    assert ('id="shelve-dialog"' in body) is may_shelve


@pytest.mark.django_db
def test_the_api_takes_no_session_cookie_so_a_forged_post_cannot_act(make_user):
    """The page acts through the API with its bearer token, which only the
    CSRF-checked ``POST /board/token/`` hands out; the API ignores the session
    cookie, so a cross-site form riding the cookie is refused, and changes
    nothing."""
    alarm = an_alarm()
    client = signed_in(make_user(Role.SUPERVISOR))
    client.get(URL)
    csrf = client.cookies["csrftoken"].value
    audits = AuditRecord.objects.count()
    for path, data in (
        (f"/api/alarms/{alarm.pk}/acknowledge", {}),
        (f"/api/alarms/{alarm.pk}/shelve", {"minutes": 30, "reason": "x"}),
    ):
        response = client.post(
            path, data, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
        )
        assert response.status_code == 401, response.content
        assert response.json()["code"] == "not_authenticated"
    alarm.refresh_from_db()
    assert alarm.status == S.UNACK_ACTIVE
    assert AuditRecord.objects.count() == audits
    # No board POST of its own: the page answers GET only.
    assert client.post(URL, HTTP_X_CSRFTOKEN=csrf).status_code == 405


# --- in a real browser, against a real daphne ------------------------------------


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("daphne-alarm-board") / "daphne.log"
    with daphne_server(log_path) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _server_password_hashing(request, settings):
    """The daphne process checks passwords with the default hashers, not the
    tests' fast MD5 one: the browser tests' users get a hash it can read."""
    if "server" in request.fixturenames:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def api_alarm(server: str, user, alarm_id: int) -> dict:
    """``GET /api/alarms/{id}`` on the real server with ``user``'s JWT."""
    response = httpx.get(
        f"{server}/api/alarms/{alarm_id}",
        headers={"Authorization": f"Bearer {AccessToken.for_user(user)}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def open_board(browser, server, user, **kwargs):
    context, page = sign_in(browser, server, user, next_path=URL, **kwargs)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.reload()
    assert urlsplit(page.url).path == URL, page.url
    try:
        page.wait_for_selector('body[data-live="connected"]', state="attached")
    finally:
        assert errors == [], errors
    return context, page


def raise_alarm(tag, value: float) -> AlarmEvent:
    """A reading beyond the rule's limit, stored and evaluated now: the real
    path of an alarm (scada.alarms.readings_evaluate), committed."""
    with transaction.atomic():
        reading = ScadaReading.objects.create(
            tag=tag,
            connector_id=tag.connector_id,
            tag_name=tag.tag_name,
            timestamp=timezone.now(),
            value=value,
            quality="good",
        )
        [alarm] = alarms.readings_evaluate(readings=[reading])
    return alarm


def row(page, alarm_id: int) -> str:
    return f'tr[data-id="{alarm_id}"]'


@pytest.mark.django_db(transaction=True)
def test_operator_acknowledges_on_the_board_and_the_api_shows_it(
    browser,
    server,
    make_user,
):
    operator = make_user(Role.OPERATOR, username="olga", first_name="Olga")
    an_alarm(
        severity="critical", minutes_ago=3, message="Thermal runaway risk: cell 12"
    )
    an_alarm(
        S.ACK_ACTIVE,
        severity="high",
        minutes_ago=14,
        message="Coolant flow low",
        tag_name="l1.coolant",
        area="line-1",
    )
    an_alarm(S.UNACK_RTN, severity="medium", minutes_ago=42, message="Weld current")
    an_alarm(S.UNACK_ACTIVE, severity="low", minutes_ago=95, message="Filter dirty")
    an_alarm(
        S.SHELVED,
        severity="medium",
        minutes_ago=120,
        message="Door sensor chatter",
        shelved_until=timezone.now() + timedelta(hours=2),
        shelve_reason="Sensor replaced at 14:00",
    )
    alarm = an_alarm(severity="high", minutes_ago=8, message="Busbar temperature high")
    context, page = open_board(browser, server, operator)
    assert page.inner_text(f"{row(page, alarm.pk)} .alarm-state") == (
        "Unacknowledged, active"
    )
    # The age ticks.
    age = page.locator(f"{row(page, alarm.pk)} time.age")
    first = age.inner_text()
    assert first.startswith("8 min")
    page.wait_for_function(
        "([sel, was]) => document.querySelector(sel).textContent !== was",
        arg=[f"{row(page, alarm.pk)} time.age", first],
    )
    # Operators acknowledge; they do not shelve.
    assert page.locator("button[data-action=shelve]").count() == 0
    save_screens(page, "alarm-board")
    page.click(f"{row(page, alarm.pk)} button[data-action=acknowledge]")
    page.wait_for_selector(f'{row(page, alarm.pk)}[data-state="ack_active"]')
    assert page.locator(f"{row(page, alarm.pk)} button").count() == 0
    assert "acknowledged by olga" in page.inner_text(row(page, alarm.pk))
    assert page.is_hidden("#alarm-error")
    body = api_alarm(server, operator, alarm.pk)
    assert body["alarm_state"] == "ack_active"
    assert body["acknowledged_by"] == "olga"
    assert [h["change"] for h in body["history"]] == ["acknowledged"]
    assert (
        AuditRecord.objects.filter(
            action="alarm.acknowledged", actor_id=operator.pk
        ).count()
        == 1
    )
    context.close()


@pytest.mark.django_db(transaction=True)
def test_supervisor_shelves_and_a_refusal_is_shown(
    browser,
    server,
    make_user,
):
    supervisor = make_user(Role.SUPERVISOR, username="sam")
    other = make_user(Role.SUPERVISOR, username="kim")
    alarm = an_alarm(severity="high", message="Busbar temperature high")
    raced = an_alarm(severity="medium", message="Weld current")
    context, page = open_board(browser, server, supervisor)
    page.click(f"{row(page, alarm.pk)} button[data-action=shelve]")
    page.wait_for_selector("#shelve-dialog[open]")
    page.select_option("#shelve-minutes", "30")
    page.fill("#shelve-reason", "Thermocouple being replaced")
    page.click("#shelve-dialog .shelve-submit")
    page.wait_for_selector("#shelve-dialog", state="hidden")
    shelved_row = f'#alarm-hidden-rows {row(page, alarm.pk)}[data-state="shelved"]'
    page.wait_for_selector(shelved_row)
    assert "Thermocouple being replaced" in page.inner_text(shelved_row)
    assert "by sam" in page.inner_text(shelved_row)
    body = api_alarm(server, supervisor, alarm.pk)
    assert body["alarm_state"] == "shelved"
    assert body["shelve_reason"] == "Thermocouple being replaced"
    assert body["shelved_by"] == "sam"
    until = datetime.fromisoformat(body["shelved_until"])
    assert timedelta(minutes=29) < until - timezone.now() <= timedelta(minutes=30)

    # Someone else shelves the other alarm while the dialog is open: the API's
    # 409 is said in the dialog, and nothing changes.
    page.click(f"{row(page, raced.pk)} button[data-action=shelve]")
    page.fill("#shelve-reason", "Me too")
    alarms.alarm_shelve(alarm_id=raced.pk, actor=other, reason="First", minutes=10)
    page.click("#shelve-dialog .shelve-submit")
    error = page.locator("#shelve-dialog .shelve-error")
    error.wait_for(state="visible")
    assert error.inner_text() == (
        f"Could not shelve alarm {raced.pk}: Alarm {raced.pk} is Shelved; "
        "it cannot be shelved. [409]"
    )
    assert api_alarm(server, supervisor, raced.pk)["shelve_reason"] == "First"
    page.click("#shelve-dialog .shelve-cancel")
    # A supervisor unshelves from the same list.
    page.click(f"{row(page, alarm.pk)} button[data-action=unshelve]")
    page.wait_for_selector(
        f'#alarm-rows {row(page, alarm.pk)}[data-state="unack_active"]'
    )
    assert api_alarm(server, supervisor, alarm.pk)["alarm_state"] == "unack_active"
    context.close()


@pytest.mark.django_db(transaction=True)
def test_a_role_taken_away_while_the_page_is_open_gets_the_403_on_the_page(
    browser,
    server,
    make_user,
):
    admin = make_user(Role.ADMIN)
    supervisor = make_user(Role.SUPERVISOR)
    alarm = an_alarm()
    context, page = open_board(browser, server, supervisor)
    with transaction.atomic():
        user_role_change(user_id=supervisor.pk, role=Role.OPERATOR, actor=admin)
    page.click(f"{row(page, alarm.pk)} button[data-action=shelve]")
    page.fill("#shelve-reason", "Sensor swap")
    page.click("#shelve-dialog .shelve-submit")
    error = page.locator("#shelve-dialog .shelve-error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith(f"Could not shelve alarm {alarm.pk}: ")
    assert error.inner_text().endswith("[403]")
    alarm.refresh_from_db()
    assert alarm.status == S.UNACK_ACTIVE
    context.close()


@pytest.mark.django_db(transaction=True)
def test_an_alarm_raised_while_the_page_is_open_appears_live(
    browser,
    server,
    make_user,
):
    operator = make_user(Role.OPERATOR)
    tag = make_tag(make_connector(), area="line-2")
    make_rule(tag, severity="critical", message="Cell over-temperature")
    context, page = open_board(browser, server, operator, viewport=PHONE)
    page.locator("#alarm-empty").wait_for(state="visible")
    save_screens(page, "alarm-board-empty")
    alarm = raise_alarm(tag, 95.0)
    page.wait_for_selector(
        f'{row(page, alarm.pk)}[data-state="unack_active"]', timeout=3000
    )
    assert page.is_hidden("#alarm-empty")
    text = page.inner_text(row(page, alarm.pk))
    assert "Cell over-temperature: l1.temp high 95 (limit 80)" in text
    assert "line-2" in text
    assert page.inner_text('.count[data-severity="critical"] b') == "1"
    # Back to normal and acknowledged elsewhere: it closes, and leaves the board.
    with transaction.atomic():
        locked = alarms.lock_open(pk=alarm.pk)
        alarms.return_to_normal(locked, at=timezone.now())
    page.wait_for_selector(f'{row(page, alarm.pk)}[data-state="unack_rtn"]')
    alarms.alarm_acknowledge(alarm_id=alarm.pk, actor=operator)
    page.wait_for_selector(row(page, alarm.pk), state="detached")
    page.locator("#alarm-empty").wait_for(state="visible")
    context.close()


@pytest.mark.django_db(transaction=True)
def test_an_auditor_sees_no_buttons(browser, server, make_user):
    auditor = make_user(Role.AUDITOR)
    an_alarm()
    an_alarm(S.SHELVED, shelved_until=timezone.now() + timedelta(hours=1))
    tag = make_tag(make_connector())
    make_rule(tag)
    context, page = open_board(browser, server, auditor)
    alarm = raise_alarm(tag, 90.0)
    page.wait_for_selector(row(page, alarm.pk))
    # The live row may land before the board's first list has painted the
    # other two (a loaded CI run saw 2): wait for all three, then look.
    page.wait_for_function(
        "document.querySelectorAll('tr.alarm').length >= 3",
        timeout=WAIT_SECONDS * 1000,
    )
    assert page.locator("tr.alarm").count() == 3
    assert page.locator("main button[data-action]").count() == 0
    assert page.locator("#shelve-dialog").count() == 0
    context.close()
