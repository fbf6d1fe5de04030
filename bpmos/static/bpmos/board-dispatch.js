/* BPM-OS dispatch board (docs/pages.md "Dispatch board"; docs/dispatch.md).
 *
 * The page is rendered with the live list; this script follows the dispatch
 * contract's SSE stream exactly as the contract's client does: POST the ticket
 * endpoint with the page's token (BPMOS.api), open `new EventSource(url)`, and
 * switch on `data.type` in `onmessage`. A used ticket cannot reconnect, so when
 * the browser gives up (or the server says the token ends) it starts over with
 * a new ticket, resuming from the last event id seen (`&lastEventId=`).
 *
 * Supervisors (the roles the API's route allows; the page renders the buttons
 * only for them) move a product to past or reactivate it after a confirmation
 * dialog that asks the reason, through POST /api/products/lifecycle. Errors are
 * shown on the page, in the API's own words.
 */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dispatch-config").textContent);
  const liveBody = document.querySelector("#live-products tbody");
  const pastTable = document.getElementById("past-products");
  const pastBody = pastTable ? pastTable.querySelector("tbody") : null;
  const boardError = document.getElementById("board-error");
  let lastId = config.lastEventId ? String(config.lastEventId) : "";
  let source = null;
  let retryDelay = 1000;

  // --- the page's state ---------------------------------------------------------

  function setLive(state, text) {
    document.body.dataset.live = state;
    const label = document.querySelector(".live-state .live-text");
    if (label) label.textContent = text;
  }

  function showError(message) {
    boardError.textContent = message;
    boardError.hidden = !message;
  }

  function describe(err) {
    const body = err && err.body;
    if (body && body.error) return body.error + (body.code ? " (" + body.code + ")" : "");
    return (err && err.message) || "Something went wrong.";
  }

  function when(iso) {
    if (!iso) return "—";
    const t = new Date(iso);
    return isNaN(t) ? iso : t.toLocaleString([], {dateStyle: "short", timeStyle: "short"});
  }

  function localiseTimes(root) {
    root.querySelectorAll(".when[data-time]").forEach((cell) => {
      cell.textContent = when(cell.dataset.time);
    });
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text === undefined || text === null || text === "" ? "—" : String(text);
    return td;
  }

  function actionCell(action, label) {
    const td = document.createElement("td");
    td.className = "actions";
    const button = document.createElement("button");
    button.type = "button";
    button.className = action === "reactivate" ? "reactivate" : "move";
    button.dataset.action = action;
    button.textContent = label;
    td.appendChild(button);
    return td;
  }

  function liveRow(p) {
    const tr = document.createElement("tr");
    tr.dataset.productId = p.productId;
    tr.dataset.jobId = p.jobId;
    tr.append(cell(p.productId, "product"), cell(p.bpan, "mono"), cell(p.model), cell(p.lot));
    const state = document.createElement("td");
    const pill = document.createElement("span");
    pill.className = "state state-ok";
    pill.textContent = p.state;
    state.appendChild(pill);
    tr.append(state, cell(p.location));
    const since = cell(when(p.updatedAt), "when");
    since.dataset.time = p.updatedAt;
    tr.appendChild(since);
    if (config.canMove) tr.appendChild(actionCell("move_to_past", "Move to past"));
    return tr;
  }

  function pastRow(d) {
    const tr = document.createElement("tr");
    tr.dataset.productId = d.productId;
    tr.dataset.jobId = d.jobId;
    tr.append(cell(d.productId, "product"), cell(d.bpan, "mono"), cell(d.model), cell(d.reason));
    const moved = cell(when(d.movedAt), "when");
    moved.dataset.time = d.movedAt || "";
    tr.append(moved, actionCell("reactivate", "Reactivate"));
    return tr;
  }

  function findRow(body, productId) {
    if (!body) return null;
    return Array.from(body.rows).find((r) => r.dataset.productId === productId) || null;
  }

  function updateEmpty() {
    document.getElementById("dispatch-count").textContent = String(liveBody.rows.length);
    document.getElementById("live-empty").hidden = liveBody.rows.length > 0;
    if (pastBody) document.getElementById("past-empty").hidden = pastBody.rows.length > 0;
  }

  function removeLive(productId) {
    const row = findRow(liveBody, productId);
    if (row) row.remove();
    updateEmpty();
  }

  // A product taken off the desk for another reason than shipping may come
  // back: offer it for reactivation (the API still decides: on hold is 409).
  function addPast(data, fromRow) {
    if (!pastBody || String(data.reason || "").toLowerCase() === "dispatched") return;
    const old = findRow(pastBody, data.productId);
    if (old) old.remove();
    const cells = fromRow ? fromRow.cells : null;
    pastBody.prepend(pastRow({
      productId: data.productId,
      jobId: data.jobId,
      reason: data.reason,
      movedAt: data.movedAt,
      bpan: cells ? cells[1].textContent : "",
      model: cells ? cells[2].textContent : "",
    }));
    updateEmpty();
  }

  function removePast(productId) {
    const row = findRow(pastBody, productId);
    if (row) row.remove();
    updateEmpty();
  }

  let refreshing = null;
  async function refreshLive() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const body = await BPMOS.api(config.api.list);
        liveBody.replaceChildren(...body.products.map(liveRow));
        updateEmpty();
      } catch (err) {
        showError("Could not reload the list: " + describe(err));
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  // --- the stream (the contract's EventSource usage, with a ticket) -------------

  function onMessage(event) {
    if (event.lastEventId) lastId = event.lastEventId;
    const msg = JSON.parse(event.data);
    const data = msg.data || {};
    switch (msg.type) {
      case "connection_established":
        retryDelay = 1000;
        setLive("connected", "Live");
        break;
      case "product_moved_to_past": {
        const row = findRow(liveBody, data.productId);
        addPast(data, row);
        removeLive(data.productId);
        break;
      }
      case "product_reactivated":
        removePast(data.productId);
        refreshLive();
        break;
      case "dispatchable_products_update":
        if (!data.isDispatchable) removeLive(data.productId);
        if (data.isDispatchable || Number(data.count) !== liveBody.rows.length) refreshLive();
        break;
      case "replayed":
        if (data.truncated) refreshLive();
        break;
      case "connection_closing":
        // The token behind the ticket ends: start over with a new one now.
        reopen(0);
        break;
    }
  }

  function reopen(delay) {
    if (source) { source.close(); source = null; }
    setLive("reconnecting", "Reconnecting…");
    setTimeout(openStream, delay);
  }

  async function openStream() {
    if (!document.body.dataset.live || document.body.dataset.live === "off") {
      setLive("connecting", "Connecting…");
    }
    let ticket;
    try {
      ticket = await BPMOS.api(config.api.ticket, {method: "POST"});
    } catch (err) {
      retryDelay = Math.min(retryDelay * 2, 10000);
      return reopen(retryDelay);
    }
    const url = ticket.url + (lastId ? "&lastEventId=" + encodeURIComponent(lastId) : "");
    const es = new EventSource(url);
    source = es;
    es.onmessage = onMessage;
    es.onerror = () => {
      if (source !== es) return;
      // The browser retries by itself with the same URL; a used ticket is
      // refused, it closes, and we start over with a new ticket.
      setLive("reconnecting", "Reconnecting…");
      if (es.readyState === EventSource.CLOSED) {
        retryDelay = Math.min(retryDelay * 2, 10000);
        reopen(retryDelay);
      }
    };
  }

  // --- move to past and reactivate, with a confirmation -------------------------

  const dialog = document.getElementById("confirm-move");
  let pending = null;

  function openDialog(action, row) {
    pending = {action, productId: row.dataset.productId, jobId: row.dataset.jobId, row};
    const moving = action === "move_to_past";
    document.getElementById("confirm-title").textContent = moving ? "Move to past?" : "Reactivate?";
    document.getElementById("confirm-text").textContent = moving
      ? "Take " + pending.productId + " off the dispatch desk. The reason \"dispatched\" ships it to the carrier; any other reason only takes it off the desk."
      : "Put " + pending.productId + " back on the dispatch desk.";
    const reason = document.getElementById("confirm-reason");
    reason.value = moving ? "dispatched" : "";
    reason.required = moving;
    document.getElementById("confirm-reason-label").textContent = moving ? "Reason (required)" : "Reason (optional)";
    document.getElementById("confirm-carrier-row").hidden = !moving;
    document.getElementById("confirm-carrier").value = "";
    const error = document.getElementById("confirm-error");
    error.hidden = true;
    error.textContent = "";
    document.getElementById("confirm-ok").disabled = false;
    document.getElementById("confirm-ok").textContent = moving ? "Move to past" : "Reactivate";
    dialog.showModal();
    reason.focus();
    reason.select();
  }

  async function confirm(e) {
    e.preventDefault();
    if (!pending) return;
    const reason = document.getElementById("confirm-reason").value.trim();
    const error = document.getElementById("confirm-error");
    if (pending.action === "move_to_past" && !reason) {
      error.textContent = "A reason is required.";
      error.hidden = false;
      return;
    }
    const body = {productId: pending.productId, jobId: pending.jobId, action: pending.action};
    if (reason) body.reason = reason;
    const carrier = document.getElementById("confirm-carrier").value.trim();
    if (pending.action === "move_to_past" && carrier) body.carrier = carrier;
    const ok = document.getElementById("confirm-ok");
    ok.disabled = true;
    try {
      const answer = await BPMOS.api(config.api.lifecycle, {method: "POST", body});
      const life = answer.lifecycle;
      const done = pending;
      pending = null;
      dialog.close();
      showError("");
      if (done.action === "move_to_past") {
        addPast({productId: done.productId, jobId: life.jobId, reason: reason, movedAt: life.updatedAt}, done.row);
        removeLive(done.productId);
      } else {
        removePast(done.productId);
        refreshLive();
      }
    } catch (err) {
      error.textContent = describe(err);
      error.hidden = false;
      ok.disabled = false;
      showError(pending.productId + ": " + describe(err));
    }
  }

  if (dialog) {
    document.getElementById("confirm-form").addEventListener("submit", confirm);
    document.getElementById("confirm-cancel").addEventListener("click", () => {
      pending = null;
      dialog.close();
    });
    document.querySelector("main").addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      if (!button) return;
      openDialog(button.dataset.action, button.closest("tr"));
    });
  }

  localiseTimes(document);
  openStream();
})();
