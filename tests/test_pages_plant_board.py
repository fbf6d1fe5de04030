"""The plant board, ``/board/lines/`` (lines/pages.py; docs/pages.md "Plant
board"): who may open it, what the server renders (the API's figures), and in
a real browser against a real daphne: a station change made through the API
on the board within a second, and the board's recovery after a server restart.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from html.parser import HTMLParser

import httpx
import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from bpmos.roles import Role
from lines import services
from lines.models import Line
from tests import factories_lines as f
from tests.conftest import bearer
from tests.support import WAIT_SECONDS, daphne_server
from tests.support_browser import (
    PHONE,
    save_screens,
    server_knows_password,
    sign_in,
)

BOARD = "/board/lines/"


# --- a small plant, its readings in the current shift ----------------------------


def shift_started_an_hour_ago(line: Line) -> datetime:
    """Move ``line``'s shift calendar so its current shift began an hour ago
    (shifts of 480 minutes tile the day from any start); returns that start."""
    start = (timezone.now() - timedelta(hours=1)).replace(second=0, microsecond=0)
    line.shift_start = start.time()
    line.save()
    return start


def small_plant() -> tuple[Line, Line]:
    """Line A: Cell Load running, Weld blocked by the safety curtain, pieces
    made this shift; Line B (Packs): no readings at all."""
    line = f.make_line()
    other = f.make_line(
        slug="line-b",
        name="Line B (Packs)",
        position=2,
        stations=(
            ("st-01", "Pack Assembly", "30"),
            ("st-02", "End-of-line Test", "40"),
        ),
    )
    start = shift_started_an_hour_ago(line)
    shift_started_an_hour_ago(other)
    at = lambda minutes: start + timedelta(minutes=minutes)  # noqa: E731
    f.ingest(
        f.machine(line, "st-01"),
        [
            f.state(at(5), "running"),
            f.reading("good_count", at(30), 150),
            f.reading("reject_count", at(30), 6),
        ],
    )
    f.ingest(
        f.machine(line, "st-02"),
        [
            f.state(at(5), "running"),
            f.reading("good_count", at(30), 60),
            f.reading("reject_count", at(30), 4),
            f.state(at(40), "blocked", "Safety Curtain"),
        ],
    )
    return line, other


class BoardParser(HTMLParser):
    """What the board shows, from its HTML: per line its mode, health and OEE
    figures, per station its state and reason (the texts of the elements
    marked ``data-field`` and ``data-figure``)."""

    def __init__(self):
        super().__init__()
        self.lines: dict[str, dict] = {}
        self.line = self.station = None
        self.capture: tuple[dict, str] | None = None
        self.depth = 0
        self.names: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-line" in a:
            self.line = self.lines.setdefault(
                a["data-line"], {"stations": {}, "figures": {}}
            )
            self.station = None
        if "data-station" in a and self.line is not None:
            self.station = self.line["stations"].setdefault(
                a["data-station"], {"class": a.get("class", "")}
            )
        if tag == "h2" and self.line is not None:
            self.capture = (self.line, "name")
        elif tag == "span" and "station-name" in a.get("class", ""):
            self.capture = (self.station, "name")
        elif "data-field" in a:
            on_station = a["data-field"] in ("state", "reason")
            target = self.station if on_station else self.line
            self.capture = (target, a["data-field"])
            if a["data-field"] == "reason" and "hidden" in a:
                target["reason_hidden"] = True
        elif "data-figure" in a:
            self.capture = (self.line["figures"], a["data-figure"])

    def handle_data(self, data):
        if self.capture is not None:
            target, key = self.capture
            target[key] = target.get(key, "") + data

    def handle_endtag(self, tag):
        self.capture = None


def board_of(html: str) -> dict[str, dict]:
    parser = BoardParser()
    parser.feed(html)
    for line in parser.lines.values():
        for station in line["stations"].values():
            station["reason"] = station.get("reason", "").strip()
    return parser.lines


def shown(value) -> str:
    """A percentage as the board shows it: one decimal, "—" when undefined."""
    return "—" if value is None else f"{value:.1f}"


# --- who may open it, and what the server renders -----------------------------------


@pytest.mark.django_db
def test_signed_out_users_are_sent_to_sign_in():
    response = Client().get(BOARD)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={BOARD}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_every_role_may_open_the_board(make_user, role):
    client = Client()
    client.force_login(make_user(role))
    response = client.get(BOARD)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "no-cache" in response["Cache-Control"]
    body = response.content.decode()
    assert "bpmos/board-lines.js" in body
    assert "bpmos/live.js" in body
    assert 'aria-current="page"' in body  # the navigation marks the board


@pytest.mark.django_db
def test_an_empty_plant_says_so(make_user):
    client = Client()
    client.force_login(make_user(Role.SUPERVISOR))
    body = client.get(BOARD).content.decode()
    assert "data-empty" in body
    assert "No production lines yet" in body
    assert "data-line=" not in body


@pytest.mark.django_db
def test_the_board_shows_lines_stations_states_reason_and_the_apis_oee(make_user):
    small_plant()
    services.oee_snapshots_refresh()  # beat
    user = make_user(Role.PLANNER)
    client = Client()
    client.force_login(user)
    response = client.get(BOARD)
    assert response.status_code == 200
    board = board_of(response.content.decode())
    assert list(board) == ["line-a", "line-b"]  # line order

    a = board["line-a"]
    assert a["name"] == "Line A (Modules)"
    assert (a["mode"], a["health"]) == ("Blocked", "Critical")
    cell, weld = a["stations"]["st-01"], a["stations"]["st-02"]
    assert (cell["name"], cell["state"], cell["reason"]) == ("Cell Load", "Running", "")
    assert cell.get("reason_hidden")
    assert "station-running" in cell["class"]
    assert (weld["name"], weld["state"], weld["reason"]) == (
        "Weld",
        "Blocked",
        "Safety Curtain",
    )
    assert "station-blocked" in weld["class"]
    assert not weld.get("reason_hidden")
    b = board["line-b"]
    assert [s["name"] for s in b["stations"].values()] == [
        "Pack Assembly",
        "End-of-line Test",
    ]
    assert {s["state"] for s in b["stations"].values()} == {"Idle"}
    assert (b["mode"], b["health"]) == ("Idle", "Warning")  # OEE 0 % < target

    # The figures are the API's own, for both lines.
    api = Client(headers=bearer(user))
    for slug in ("line-a", "line-b"):
        report = api.get(f"/api/lines/{slug}/oee").json()
        assert report["source"] == "snapshot"
        figures = board[slug]["figures"]
        for name in ("oee", "availability", "performance", "quality"):
            assert figures[name] == shown(report[name]), (slug, name)
        assert figures["goodCount"] == str(report["goodCount"])
        assert figures["rejectCount"] == str(report["rejectCount"])
        assert figures["computedAt"] == report["computedAt"][11:16]
    # Line A made pieces this shift: its figures are real numbers.
    assert board["line-a"]["figures"]["goodCount"] == "210"
    assert board["line-a"]["figures"]["quality"] == shown(210 / 220 * 100)
    summary = api.get("/api/live-status/lines").json()
    for served in summary:
        for station in served["stations"]:
            on_board = board[served["id"]]["stations"][station["id"]]
            assert on_board["state"] == station["state"]
            assert on_board["reason"] == station.get("reason", "")


@pytest.mark.django_db
def test_without_a_snapshot_the_board_shows_the_figures_computed_now(make_user):
    """Before beat's first refresh, the API computes the shift's OEE from the
    readings ("source": "live"); the board shows the same figures."""
    small_plant()
    user = make_user(Role.OPERATOR)
    client = Client()
    client.force_login(user)
    # The live figures run to "now": the board and the API read the same one.
    with time_machine.travel(timezone.now(), tick=False):
        board = board_of(client.get(BOARD).content.decode())
        report = Client(headers=bearer(user)).get("/api/lines/line-a/oee").json()
    assert report["source"] == "live"
    for name in ("oee", "availability", "performance", "quality"):
        assert board["line-a"]["figures"][name] == shown(report[name])
    # No running time yet on line B: performance and quality are undefined.
    assert board["line-b"]["figures"]["performance"] == "—"
    assert board["line-b"]["figures"]["oee"] == "0.0"


@pytest.mark.django_db
def test_inactive_lines_are_not_on_the_board(make_user):
    _line, other = small_plant()
    other.is_active = False
    other.save()
    client = Client()
    client.force_login(make_user(Role.PLANT_HEAD))
    assert list(board_of(client.get(BOARD).content.decode())) == ["line-a"]


# --- in a real browser, against a real daphne ---------------------------------------


def plant_with_history(hours: int = 8) -> tuple[Line, Line, Line]:
    """Three lines with ``hours`` of readings up to a few minutes ago, rolled
    up by the hour (the sparklines' source) and a fresh OEE snapshot."""
    now = timezone.now().replace(microsecond=0)
    lines = (
        f.make_line(name="Line A (Modules)"),
        f.make_line(
            slug="line-c",
            name="Line C (Cells)",
            position=0,
            stations=(
                ("st-01", "Cell Sorting", "4"),
                ("st-02", "OCV Test", "6"),
                ("st-03", "Cell Stacking", "8"),
            ),
        ),
        f.make_line(
            slug="line-p",
            name="Line P (Packs)",
            position=3,
            stations=(("st-01", "Pack Assembly", "30"), ("st-02", "EOL Test", "40")),
        ),
    )
    start = now - timedelta(hours=hours)
    for line_index, line in enumerate(lines):
        for station in line.stations.all():
            machine = f.machine(line, station.slug)
            ideal = float(station.ideal_cycle_seconds)
            rows = []
            for step in range(hours * 4):  # every 15 minutes
                moment = start + timedelta(minutes=15 * step)
                down = (step + line_index + station.position) % 7 == 3
                rows.append(f.state(moment, "down" if down else "running"))
                pieces = 0 if down else int(900 / ideal * (0.7 + 0.05 * (step % 5)))
                counted = moment + timedelta(minutes=14)
                rows.append(f.reading("good_count", counted, pieces))
                rows.append(f.reading("reject_count", counted, step % 3))
            f.ingest(machine, rows)
    services.machine_hours_refresh()
    services.oee_snapshots_refresh()
    return lines


def post_state(base: str, token: dict, machine, state: str, reason: str = ""):
    response = httpx.post(
        f"{base}/api/machines/{machine.pk}/readings",
        json=[f.state(timezone.now(), state, reason)],
        headers=token,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response


WATCH_STATION = """([line, station, wanted]) => {
  const el = document.querySelector(
    `[data-line="${line}"] [data-station="${station}"]`);
  window.__seen = null;
  new MutationObserver((changes, observer) => {
    if (el.classList.contains("station-" + wanted)) {
      window.__seen = Date.now();
      observer.disconnect();
    }
  }).observe(el, {attributes: true, childList: true, subtree: true});
}"""


def station_text(page, line: str, station: str) -> str:
    return page.text_content(f'[data-line="{line}"] [data-station="{station}"]')


@pytest.mark.django_db(transaction=True)
def test_a_station_change_made_through_the_api_is_on_the_board_within_a_second(
    browser,
    make_user,
    tmp_path,
):
    lines = plant_with_history()
    line_a = lines[0]
    gateway = bearer(make_user(Role.OPERATOR, username="scada-gateway"))
    supervisor = server_knows_password(
        make_user(Role.SUPERVISOR, first_name="Meera", last_name="Iyer")
    )
    with daphne_server(tmp_path / "daphne.log") as port:
        base = f"http://127.0.0.1:{port}"
        context, page = sign_in(browser, base, supervisor, next_path=BOARD)
        try:
            assert page.url.endswith(BOARD)
            # The first connection after the server's start (a loaded CI machine
            # took past the context's 10 s); the timed part is the changes below.
            page.wait_for_selector(
                "body[data-live=connected]", timeout=WAIT_SECONDS * 1000
            )
            # The sparklines are drawn from the trend of the finished hours.
            page.wait_for_selector('[data-line="line-a"] .spark-line')
            caption = page.inner_text('[data-line="line-a"] [data-spark-caption]')
            assert "%" in caption
            assert "no finished hour" not in caption
            assert "Running" in station_text(page, "line-a", "st-02")

            delays = []
            for state, reason, wanted in (
                ("blocked", "Safety Curtain", "blocked"),
                ("running", "", "running"),
                ("down", "Servo fault", "blocked"),
            ):
                page.evaluate(WATCH_STATION, ["line-a", "st-02", wanted])
                sent = time.time()
                post_state(base, gateway, f.machine(line_a, "st-02"), state, reason)
                page.wait_for_function("window.__seen !== null", timeout=5000)
                delays.append(page.evaluate("window.__seen") / 1000 - sent)
                text = station_text(page, "line-a", "st-02")
                if reason:
                    assert reason in text
            print(f"plant board: change to screen {[round(d, 3) for d in delays]} s")
            assert max(delays) < 1.0, delays
            # The line's mode and health followed (their own event, line.changed,
            # may land after the station's), and the summary counts it.
            page.wait_for_function(
                """() => document.querySelector('[data-line="line-a"] .line-head')
                    .textContent.includes("Blocked")""",
                timeout=5000,
            )
            head = page.text_content('[data-line="line-a"] .line-head')
            assert "Blocked" in head
            assert "Critical" in head
            card_class = page.get_attribute('[data-line="line-a"]', "class")
            assert "line-health-critical" in card_class
            assert page.inner_text('[data-count="blocked"]') == "1"
            save_screens(page, "plant-board")
            # A phone: the lines stack, nothing runs off the side.
            page.set_viewport_size(PHONE)
            page.wait_for_timeout(150)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], width
        finally:
            context.close()


@pytest.mark.django_db(transaction=True)
def test_the_board_recovers_after_the_server_restarts(
    browser,
    make_user,
    tmp_path,
):
    line = f.make_line()
    weld, cell = f.machine(line, "st-02"), f.machine(line, "st-01")
    gateway_user = make_user(Role.OPERATOR, username="scada-gateway")
    gateway = bearer(gateway_user)
    supervisor = server_knows_password(make_user(Role.SUPERVISOR))
    with daphne_server(tmp_path / "first.log") as port:
        base = f"http://127.0.0.1:{port}"
        context, page = sign_in(browser, base, supervisor, next_path=BOARD)
        page.wait_for_selector("body[data-live=connected]", timeout=WAIT_SECONDS * 1000)
    try:
        # The server is gone: the board says so, and keeps what it showed.
        page.wait_for_selector("body[data-live=reconnecting]", timeout=5000)
        assert "Idle" in station_text(page, "line-a", "st-02")
        # A change while it is down (the gateway's batch through the service
        # the API calls): the event waits in the outbox for the replay.
        f.ingest(weld, [f.state(timezone.now(), "blocked", "Door Open")], gateway_user)
        with daphne_server(tmp_path / "second.log", port=port) as again:
            assert again == port
            page.wait_for_selector("body[data-live=connected]", timeout=20_000)
            page.wait_for_selector(
                '[data-line="line-a"] [data-station="st-02"].station-blocked',
                timeout=5000,
            )
            assert "Door Open" in station_text(page, "line-a", "st-02")
            # And a change made after it came back is live again.
            page.evaluate(WATCH_STATION, ["line-a", "st-01", "running"])
            sent = time.time()
            post_state(base, gateway, cell, "running")
            page.wait_for_function("window.__seen !== null", timeout=5000)
            assert page.evaluate("window.__seen") / 1000 - sent < 1.0
            assert page.get_attribute("body", "data-live") == "connected"
    finally:
        context.close()
