/* BPM-OS pages: the live client (docs/pages.md, docs/websocket.md). No library.
 *
 *   BPMOS.api(path, {method, body})  -> the API's JSON (the page's own token)
 *   BPMOS.live({topics, onEvent, onResync})
 *
 * The session signs the page in; POST /board/token/ (CSRF) hands it a short-lived
 * access token, which the API calls and the WebSocket use exactly as any client's.
 * The socket signs in with its first message, subscribes, and resumes from the
 * last event id after a drop or a server restart (the server replays what was
 * missed); it re-authenticates before the token expires. <body data-live> says
 * connecting / connected / reconnecting, for the page's indicator and for tests.
 */
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  let token = null;
  let tokenPromise = null;

  async function freshToken() {
    if (!tokenPromise) {
      tokenPromise = fetch("/board/token/", {
        method: "POST",
        credentials: "same-origin",
        headers: {"X-CSRFToken": csrf()},
      }).then(async (r) => {
        if (r.status === 403 || r.redirected) { location.reload(); throw new Error("signed out"); }
        if (!r.ok) throw new Error("token " + r.status);
        token = (await r.json()).access;
        return token;
      }).finally(() => { tokenPromise = null; });
    }
    return tokenPromise;
  }

  async function api(path, opts) {
    opts = opts || {};
    for (let attempt = 0; attempt < 2; attempt++) {
      const t = token && attempt === 0 ? token : await freshToken();
      const headers = {"Authorization": "Bearer " + t, "Accept": "application/json"};
      if (opts.body !== undefined) headers["Content-Type"] = "application/json";
      const r = await fetch(path, {
        method: opts.method || "GET", headers, credentials: "omit",
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
      if (r.status === 401 && attempt === 0) continue;
      const text = await r.text();
      const data = text ? JSON.parse(text) : null;
      if (!r.ok) {
        const err = new Error((data && data.error) || ("HTTP " + r.status));
        err.status = r.status; err.body = data;
        throw err;
      }
      return data;
    }
  }

  function setState(state, text) {
    document.body.dataset.live = state;
    const label = document.querySelector(".live-state .live-text");
    if (label) label.textContent = text;
  }

  function live(options) {
    const key = "bpmos.lastEventId:" + location.pathname;
    let lastId = Number(sessionStorage.getItem(key) || 0);
    const applied = new Set();
    let delay = 500;
    let renewTimer = null;
    let opened = false;

    async function open() {
      setState(opened ? "reconnecting" : "connecting", opened ? "Reconnecting…" : "Connecting…");
      let t;
      try { t = await freshToken(); } catch (e) { return retry(); }
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(scheme + "://" + location.host + "/ws/events/");
      ws.onopen = () => ws.send(JSON.stringify({action: "authenticate", token: t}));
      ws.onmessage = ({data}) => {
        const msg = JSON.parse(data);
        if (msg.type === "authenticated") {
          clearTimeout(renewTimer);
          const ms = Date.parse(msg.expiresAt) - Date.now() - 60000;
          renewTimer = setTimeout(async () => {
            try { ws.send(JSON.stringify({action: "authenticate", token: await freshToken()})); } catch (e) { ws.close(); }
          }, Math.max(ms, 5000));
          if (!ws.subscribed) {
            ws.subscribed = true;
            const msgOut = {action: "subscribe", topics: options.topics};
            if (lastId) msgOut.last_event_id = lastId;
            ws.send(JSON.stringify(msgOut));
          }
        } else if (msg.type === "subscribed") {
          delay = 500;
          setState("connected", "Live");
          if (opened && options.onResync) options.onResync();
          opened = true;
        } else if (msg.type === "event") {
          if (applied.has(msg.id)) return;
          applied.add(msg.id);
          if (applied.size > 5000) applied.clear();
          if (msg.id > lastId) { lastId = msg.id; sessionStorage.setItem(key, String(lastId)); }
          try { options.onEvent(msg); } catch (e) { console.error(e); }
        } else if (msg.type === "replayed" && msg.truncated && options.onResync) {
          options.onResync();
        }
      };
      ws.onclose = (e) => {
        clearTimeout(renewTimer);
        if (e.code === 4401) token = null;
        retry();
      };
    }

    function retry() {
      setState("reconnecting", "Reconnecting…");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 5000);
    }

    open();
  }

  window.BPMOS = {api, live, freshToken};
})();
