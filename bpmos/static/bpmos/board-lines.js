/* The plant board (/board/lines/; docs/pages.md "Plant board"). No library.
 *
 * The server renders the first state. This script then
 *   - follows the `lines` topic (BPMOS.live): station.changed and line.changed
 *     repaint the station or line they name, at once;
 *   - refetches GET /api/live-status/lines when the socket (re)connects, when a
 *     replay was truncated, every minute, and when an event names a line or
 *     station the page does not show (a changed plant reloads the page, which
 *     the server renders);
 *   - refreshes each line's OEE (GET /api/lines/{lineId}/oee, this shift so
 *     far: beat's snapshot, recomputed every minute) every minute and when a
 *     line's health changes;
 *   - draws each line's sparkline, its OEE per hour over the last 24 hours
 *     (GET /api/dashboard/trends?metric=oee&bucket=hour), every five minutes.
 */
(function () {
  "use strict";
  const board = document.querySelector("[data-plant-board]");
  if (!board || !window.BPMOS) return;

  const MINUTE = 60000;
  const SPARK_EVERY = 5 * MINUTE;
  const RELOAD_KEY = "bpmos.board-lines.reloadedAt";

  // A local counter of applied changes: a refetch started before a live event
  // was applied must not paint over it with what it read earlier.
  let applied = 0;
  const touched = new Map();   // "line" or "line/station" -> `applied` when last painted
  const lastEvent = new Map(); // the same keys -> the id of the newest event applied

  const cards = () => Array.from(board.querySelectorAll("[data-line]"));
  const lineCard = (id) => board.querySelector('[data-line="' + CSS.escape(id) + '"]');
  const stationOf = (card, id) => card.querySelector('[data-station="' + CSS.escape(id) + '"]');
  const fixed = (value) => (value === null || value === undefined ? "—" : Number(value).toFixed(1));

  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
  }

  function paintStation(el, state, reason) {
    const key = String(state).toLowerCase();
    el.className = "station station-" + key;
    const pill = el.querySelector('[data-field="state"]');
    pill.className = "state state-" + key;
    pill.textContent = state;
    const why = el.querySelector('[data-field="reason"]');
    why.textContent = reason || "";
    why.hidden = !reason;
  }

  function paintLine(card, mode, health) {
    const pill = card.querySelector('[data-field="mode"]');
    pill.className = "state state-" + String(mode).toLowerCase();
    pill.textContent = mode;
    const badge = card.querySelector('[data-field="health"]');
    badge.className = "health health-" + String(health).toLowerCase();
    badge.textContent = health;
    card.className = card.className.replace(/\bline-health-\S+/, "line-health-" + String(health).toLowerCase());
  }

  function paintSummary() {
    const blocked = board.querySelectorAll(".station.station-blocked").length;
    const count = board.querySelector('[data-count="blocked"]');
    if (count) {
      count.textContent = blocked;
      count.parentElement.classList.toggle("summary-bad", blocked > 0);
    }
  }

  // A newer event for the same key was applied already (events can arrive
  // out of order after a reconnect): keep what is shown.
  function isStale(key, id) {
    if ((lastEvent.get(key) || 0) > id) return true;
    lastEvent.set(key, id);
    touched.set(key, ++applied);
    return false;
  }

  function onEvent(msg) {
    const data = msg.data || {};
    if (msg.name === "station.changed") {
      const card = lineCard(data.lineId);
      const el = card && stationOf(card, data.id);
      if (!el) return resync();
      if (isStale(data.lineId + "/" + data.id, msg.id)) return;
      paintStation(el, data.state, data.reason);
      flash(el);
      paintSummary();
    } else if (msg.name === "line.changed") {
      const card = lineCard(data.id);
      if (!card) return resync();
      if (isStale(data.id, msg.id)) return;
      paintLine(card, data.mode, data.health);
      if (data.health !== data.previousHealth) refreshOee([card]);
    }
  }

  // --- refetching the state ------------------------------------------------------

  function shape(lines) {
    return lines.map((l) => l.id + ":" + l.stations.map((s) => s.id).join(",")).join("|");
  }

  function shownShape() {
    return cards().map((card) => card.dataset.line + ":" +
      Array.from(card.querySelectorAll("[data-station]")).map((s) => s.dataset.station).join(",")).join("|");
  }

  function reloadSoon() {
    // The plant changed (a line or station added or removed): the server
    // renders it. At most one reload every 15 s, should the two ever disagree.
    const last = Number(sessionStorage.getItem(RELOAD_KEY) || 0);
    const wait = Math.max(0, last + 15000 - Date.now());
    setTimeout(() => {
      sessionStorage.setItem(RELOAD_KEY, String(Date.now()));
      location.reload();
    }, wait);
  }

  function applyLines(lines, startedAt) {
    if (shape(lines) !== shownShape()) return reloadSoon();
    for (const line of lines) {
      const card = lineCard(line.id);
      if ((touched.get(line.id) || 0) <= startedAt) paintLine(card, line.mode, line.health);
      for (const station of line.stations) {
        const key = line.id + "/" + station.id;
        if ((touched.get(key) || 0) > startedAt) continue;
        paintStation(stationOf(card, station.id), station.state, station.reason || "");
      }
    }
    paintSummary();
  }

  let fetching = null;
  let again = false;
  function resync() {
    if (fetching) { again = true; return; }
    const startedAt = applied;
    fetching = BPMOS.api("/api/live-status/lines")
      .then((lines) => applyLines(lines, startedAt))
      .catch((e) => console.warn("plant board: refetch failed", e))
      .finally(() => {
        fetching = null;
        if (again) { again = false; resync(); }
      });
  }

  // --- OEE -------------------------------------------------------------------------

  function paintOee(card, report) {
    const box = card.querySelector("[data-oee]");
    for (const name of ["oee", "availability", "performance", "quality"]) {
      box.querySelector('[data-figure="' + name + '"]').textContent = fixed(report[name]);
    }
    box.querySelector(".oee-value small").hidden = report.oee === null;
    box.querySelector('[data-figure="goodCount"]').textContent = report.goodCount;
    box.querySelector('[data-figure="rejectCount"]').textContent = report.rejectCount;
    const at = box.querySelector('[data-figure="computedAt"]');
    at.dateTime = report.computedAt;
    at.textContent = String(report.computedAt).slice(11, 16);
    box.dataset.source = report.source;
    const target = Number(card.dataset.oeeTarget);
    box.classList.toggle("below-target", report.oee !== null && report.oee < target);
  }

  async function refreshOee(which) {
    // One line after the other: a handful of small requests a minute.
    for (const card of which || cards()) {
      try {
        paintOee(card, await BPMOS.api("/api/lines/" + encodeURIComponent(card.dataset.line) + "/oee"));
      } catch (e) {
        console.warn("plant board: OEE of " + card.dataset.line, e);
      }
    }
  }

  // --- sparklines --------------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";
  const W = 240, H = 48, PAD = 4;

  function svgEl(name, attrs) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    return el;
  }

  function drawSpark(card, points) {
    const figure = card.querySelector("[data-spark]");
    const svg = figure.querySelector("svg");
    const n = points.length;
    const x = (i) => PAD + (n > 1 ? (i * (W - 2 * PAD)) / (n - 1) : (W - 2 * PAD) / 2);
    const y = (v) => H - PAD - (Math.max(0, Math.min(100, v)) / 100) * (H - 2 * PAD);
    svg.replaceChildren();
    const target = Number(card.dataset.oeeTarget);
    if (!Number.isNaN(target)) {
      svg.appendChild(svgEl("line", {
        class: "spark-target", x1: PAD, x2: W - PAD, y1: y(target), y2: y(target),
        "vector-effect": "non-scaling-stroke",
      }));
    }
    // One path, broken where an hour has no value; a lone hour is a short dash.
    let d = "";
    let run = [];
    const flush = () => {
      if (run.length === 1) d += "M" + (run[0][0] - 2) + " " + run[0][1] + "h4";
      else if (run.length > 1) d += "M" + run.map((p) => p[0].toFixed(1) + " " + p[1].toFixed(1)).join("L");
      run = [];
    };
    points.forEach((p, i) => {
      if (p.value === null || p.value === undefined) flush();
      else run.push([x(i), y(p.value)]);
    });
    flush();
    if (d) svg.appendChild(svgEl("path", {class: "spark-line", d, "vector-effect": "non-scaling-stroke"}));
    const known = points.filter((p) => p.value !== null && p.value !== undefined);
    const caption = figure.querySelector("[data-spark-caption]");
    if (known.length) {
      const last = known[known.length - 1];
      const low = Math.min(...known.map((p) => p.value));
      const high = Math.max(...known.map((p) => p.value));
      caption.textContent = "OEE per hour, last 24 h · " + last.t.slice(11, 16) + " UTC " +
        fixed(last.value) + " % · range " + fixed(low) + "–" + fixed(high) + " %";
    } else {
      caption.textContent = "OEE per hour, last 24 h · no finished hour yet";
    }
    svg.setAttribute("aria-label", caption.textContent);
    figure.classList.toggle("spark-empty", !known.length);
  }

  async function refreshSparks() {
    if (!cards().length) return;
    try {
      const trend = await BPMOS.api("/api/dashboard/trends?metric=oee&bucket=hour");
      for (const series of trend.series) {
        const card = lineCard(series.id);
        if (card) drawSpark(card, series.points);
      }
    } catch (e) {
      console.warn("plant board: sparklines", e);
    }
  }

  // --- start -------------------------------------------------------------------------

  // The first connection refetches once too: a change committed between the
  // server's render and the subscription is in no replay.
  const firstConnect = new MutationObserver(() => {
    if (document.body.dataset.live === "connected") {
      firstConnect.disconnect();
      resync();
    }
  });
  firstConnect.observe(document.body, {attributes: true, attributeFilter: ["data-live"]});

  BPMOS.live({topics: ["lines"], onEvent, onResync: resync});
  refreshSparks();
  setInterval(() => { resync(); refreshOee(); }, MINUTE);
  setInterval(refreshSparks, SPARK_EVERY);
})();
