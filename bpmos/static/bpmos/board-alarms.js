/* BPM-OS alarm board (/board/alarms/; docs/pages.md "Alarm board"). No library.
 *
 * The server renders the open alarms; this script keeps them as a model (by id),
 * applies the `alerts` topic's alarm.<change> events to it (BPMOS.live), and
 * re-renders the rows it changed, sorted by severity (critical first), then the
 * longest-standing first. Ages tick every second.
 *
 * Acknowledge, shelve and unshelve call the API with the page's bearer token
 * (BPMOS.api): the same views, rules and services as any client's. Nothing is
 * decided here: a button is shown when the API's rule lets the role act and the
 * state allows it, and whatever the API refuses (403, 409, 400) is said on the
 * page, never swallowed.
 */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("alarm-board-data").textContent);
  const may = config.may;
  const SEVERITIES = ["critical", "high", "medium", "low"];
  const SHOWN = new Set(config.shown);
  const ACKNOWLEDGEABLE = new Set(config.acknowledgeable);
  // The server's clock, not the screen's: a wall PC's clock may be off.
  const skew = Date.parse(config.serverNow) - Date.now();
  const now = () => Date.now() + skew;

  const model = new Map();      // id -> the alarm (the API's list shape, merged with events)
  const lastEvent = new Map();  // id -> the last event id applied to it
  const rows = new Map();       // id -> {tr, key}
  for (const alarm of config.alarms) model.set(alarm.id, alarm);

  const $ = (sel) => document.querySelector(sel);
  const activeBody = $("#alarm-rows");
  const hiddenBody = $("#alarm-hidden-rows");
  const errorBox = $("#alarm-error");

  // --- formatting (the server's scada.pages.age_text says the same) ---

  function formatAge(seconds) {
    const s = Math.max(Math.floor(seconds), 0);
    const pad = (n) => String(n).padStart(2, "0");
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + pad(Math.floor(s % 3600 / 60)) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor(s % 86400 / 3600) + " h";
  }

  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false});
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child);
    }
    return node;
  }

  function meta(a) {
    const parts = [a.tag_name || a.kind];
    if (a.value !== null && a.value !== undefined) {
      let v = "value " + a.value;
      if (a.limit !== null && a.limit !== undefined) v += " (limit " + a.limit + ")";
      parts.push(v);
    }
    if (a.acknowledged_by) parts.push("acknowledged by " + a.acknowledged_by);
    if (a.alarm_state === "shelved") {
      let s = "shelved";
      if (a.shelved_until) s += " until " + clock(a.shelved_until);
      if (a.shelved_by) s += " by " + a.shelved_by;
      if (a.shelve_reason) s += ": " + a.shelve_reason;
      parts.push(s);
    }
    return parts.join(" · ");
  }

  function renderRow(a) {
    const buttons = [];
    if (may.acknowledge && ACKNOWLEDGEABLE.has(a.alarm_state)) {
      buttons.push(el("button", {type: "button", class: "act act-acknowledge", "data-action": "acknowledge"}, "Acknowledge"));
    }
    if (may.shelve && SHOWN.has(a.alarm_state)) {
      buttons.push(el("button", {type: "button", class: "act act-shelve", "data-action": "shelve"}, "Shelve"));
    }
    if (may.unshelve && a.alarm_state === "shelved") {
      buttons.push(el("button", {type: "button", class: "act act-unshelve", "data-action": "unshelve"}, "Unshelve"));
    }
    const since = Date.parse(a.timestamp);
    return el("tr", {
      class: "alarm sev-" + a.severity + " st-" + a.alarm_state,
      dataset: {id: String(a.id), state: a.alarm_state, severity: a.severity},
    },
      el("td", {class: "c-sev"}, el("span", {class: "state state-" + a.severity},
        config.severityLabels[a.severity] || a.severity)),
      el("td", {class: "c-state"}, el("span", {class: "alarm-state as-" + a.alarm_state},
        config.stateLabels[a.alarm_state] || a.alarm_state)),
      el("td", {class: "c-what"},
        el("div", {class: "alarm-message"}, a.message),
        el("div", {class: "alarm-meta muted"}, meta(a))),
      el("td", {class: "c-area"}, a.area || ""),
      el("td", {class: "c-age"}, el("time", {class: "age", datetime: a.timestamp, "data-since": a.timestamp},
        formatAge((now() - since) / 1000))),
      el("td", {class: "c-act"}, ...buttons),
    );
  }

  function order(a, b) {
    const rank = (x) => { const i = SEVERITIES.indexOf(x.severity); return i < 0 ? SEVERITIES.length : i; };
    return rank(a) - rank(b) || Date.parse(a.timestamp) - Date.parse(b.timestamp) || a.id - b.id;
  }

  function rowFor(a) {
    const key = JSON.stringify([a, may]);
    const known = rows.get(a.id);
    if (known && known.key === key) return known.tr;
    const tr = renderRow(a);
    if (known) known.tr.replaceWith(tr);
    rows.set(a.id, {tr, key});
    return tr;
  }

  function place(body, alarms) {
    // Append in order: a row already in place stays (and keeps its focus).
    alarms.forEach((a, i) => {
      const tr = rowFor(a);
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    while (body.children.length > alarms.length) body.lastElementChild.remove();
  }

  function render() {
    const all = [...model.values()].sort(order);
    const shown = all.filter((a) => SHOWN.has(a.alarm_state));
    const hidden = all.filter((a) => !SHOWN.has(a.alarm_state));
    for (const id of [...rows.keys()]) if (!model.has(id)) { rows.get(id).tr.remove(); rows.delete(id); }
    place(activeBody, shown);
    place(hiddenBody, hidden);
    $("#alarms-active").hidden = shown.length === 0;
    $("#alarm-empty").hidden = shown.length !== 0;
    $("#alarm-hidden-section").hidden = hidden.length === 0;
    $("#alarm-hidden-count").textContent = String(hidden.length);
    for (const severity of SEVERITIES) {
      $('.count[data-severity="' + severity + '"] b').textContent =
        String(shown.filter((a) => a.severity === severity).length);
    }
    $('.count[data-severity="unacknowledged"] b').textContent =
      String(shown.filter((a) => ACKNOWLEDGEABLE.has(a.alarm_state)).length);
  }

  function tick() {
    const t = now();
    for (const node of document.querySelectorAll("time[data-since]")) {
      node.textContent = formatAge((t - Date.parse(node.dataset.since)) / 1000);
    }
  }

  // --- the model: events, API answers, resync ---

  function apply(alarm) {
    if (alarm.alarm_state === "normal") { model.delete(alarm.id); return; }
    const before = model.get(alarm.id) || {};
    const merged = Object.assign({}, before, alarm);
    if (merged.alarm_state !== "shelved") { merged.shelved_by = null; merged.shelve_reason = ""; }
    model.set(alarm.id, merged);
    // The event does not carry who shelved it and why: ask for the alarm.
    if (merged.alarm_state === "shelved" && !("shelve_reason" in alarm) &&
        (before.alarm_state !== "shelved" || before.shelved_until !== alarm.shelved_until)) {
      BPMOS.api("/api/alarms/" + alarm.id).then((full) => {
        const current = model.get(full.id);
        if (current && current.alarm_state === full.alarm_state) { apply(full); render(); }
      }).catch(() => {});  // the row is right already; only its reason is missing
    }
  }

  function onEvent(msg) {
    if (!msg.name || !msg.name.startsWith("alarm.")) return;
    const id = msg.data.id;
    if ((lastEvent.get(id) || 0) > msg.id) return;  // an older change of this alarm
    lastEvent.set(id, msg.id);
    apply(msg.data);
    render();
  }

  async function resync() {
    try {
      const body = await BPMOS.api("/api/alarms?open=true&page_size=500");
      const list = Array.isArray(body) ? body : body.results;
      model.clear();
      for (const alarm of list) if (alarm.alarm_state !== "normal") model.set(alarm.id, alarm);
      render();
    } catch (err) {
      showError("Could not reload the alarms: " + describe(err));
    }
  }

  // --- errors: said on the page ---

  function describe(err) {
    if (!err || err.status === undefined) return "the server could not be reached (" + (err && err.message) + ").";
    let text = (err.body && err.body.error) || err.message;
    const details = err.body && err.body.details;
    if (details && typeof details === "object") {
      const fields = Object.entries(details)
        .filter(([, v]) => Array.isArray(v))
        .map(([k, v]) => k + ": " + v.join(" "));
      if (fields.length) text += " (" + fields.join("; ") + ")";
    }
    return text + " [" + err.status + "]";
  }

  function showError(text) {
    errorBox.querySelector(".alarm-error-text").textContent = text;
    errorBox.hidden = false;
  }

  errorBox.querySelector(".alarm-error-dismiss").addEventListener("click", () => { errorBox.hidden = true; });

  // --- actions ---

  const VERBS = {acknowledge: "acknowledge", shelve: "shelve", unshelve: "unshelve"};

  async function act(id, action, body) {
    const answer = await BPMOS.api("/api/alarms/" + id + "/" + action, {method: "POST", body});
    apply(answer);
    render();
    return answer;
  }

  async function onClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const tr = button.closest("tr[data-id]");
    const id = Number(tr.dataset.id);
    const action = button.dataset.action;
    if (action === "shelve") { openShelve(id); return; }
    button.disabled = true;
    try {
      await act(id, action);
      errorBox.hidden = true;
    } catch (err) {
      showError("Could not " + VERBS[action] + " alarm " + id + ": " + describe(err));
      button.disabled = false;
    }
  }
  activeBody.addEventListener("click", onClick);
  hiddenBody.addEventListener("click", onClick);

  const dialog = $("#shelve-dialog");
  let shelving = null;

  function openShelve(id) {
    const alarm = model.get(id);
    shelving = id;
    dialog.querySelector(".shelve-what").textContent =
      "Alarm " + id + (alarm ? ": " + alarm.message : "");
    dialog.querySelector(".shelve-error").hidden = true;
    dialog.querySelector("#shelve-reason").value = "";
    dialog.querySelector(".shelve-submit").disabled = false;
    dialog.showModal();
    dialog.querySelector("#shelve-reason").focus();
  }

  if (dialog) {
    dialog.querySelector(".shelve-cancel").addEventListener("click", () => dialog.close());
    dialog.querySelector("#shelve-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const submit = dialog.querySelector(".shelve-submit");
      const box = dialog.querySelector(".shelve-error");
      submit.disabled = true;
      try {
        await act(shelving, "shelve", {
          minutes: Number(dialog.querySelector("#shelve-minutes").value),
          reason: dialog.querySelector("#shelve-reason").value,
        });
        dialog.close();
        errorBox.hidden = true;
      } catch (err) {
        box.textContent = "Could not shelve alarm " + shelving + ": " + describe(err);
        box.hidden = false;
        submit.disabled = false;
      }
    });
  }

  // --- start: the server's rows become the model's ---

  for (const tr of [...activeBody.children, ...hiddenBody.children]) tr.remove();
  render();
  setInterval(tick, 1000);

  // The first subscription starts from now: refetch once it is live, so a change
  // made between the page's render and the subscription is not missed.
  let firstLive = true;
  new MutationObserver(() => {
    if (firstLive && document.body.dataset.live === "connected") { firstLive = false; resync(); }
  }).observe(document.body, {attributes: true, attributeFilter: ["data-live"]});
  BPMOS.live({topics: ["alerts"], onEvent, onResync: resync});

  window.BPMOS_ALARM_BOARD = {model, resync};
})();
