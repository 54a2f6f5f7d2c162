// The trader's live page: the gateway's history, then its SSE stream, as a blotter and a chart.
// No framework, no build step, nothing inline (the gateway's CSP is default-src 'self').
// Data is only ever put on the page with textContent and setAttribute, never as HTML.
import { chartSvg } from "./chart.js";
import { knownZone, readClock } from "./clock.js";

(() => {
  const TOKEN_KEY = "tickwatch.token";
  const MUTED_KEY = "tickwatch.muted";
  const SUBSCRIPTION = "page";
  const HISTORY = 200;
  const MAX_ROWS = 2000; // a long day's alerts; older ones leave the page (not the gateway)
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
  const STALL_MS = 45000; // three missed heartbeats (15 s): the connection is gone
  const CHART_EVERY_MS = 2000;
  const CHART_IDLE_MS = 30000;
  const ZONE_RETRY_MS = [2000, 60000]; // no bars yet: its zone is asked again, less and less often
  const KIND_LABEL = {
    daily_move: "daily move",
    multi_year_high: "multi-year high",
    multi_year_low: "multi-year low",
    record_high: "record high",
    record_low: "record low",
    ytd_change: "year to date",
  };

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    alerts: new Map(), // alert_id -> {position, alert, at}, for the rows shown
    order: [], // alert_ids, newest first (by the alert's time, then its stream position)
    seen: new Set(), // every alert_id this page was given: none is shown twice
    lastEventId: null,
    filters: { instruments: [], kinds: [], stages: [] },
    selected: null, // {instrument, session}; null: follow the newest alert
    pinned: false,
    muted: localStorage.getItem(MUTED_KEY) === "1",
    audio: null,
    controller: null,
    refused: false,
    zones: new Map(), // instrument -> its exchange's time zone, from its bars
    zoneAsked: new Map(), // instrument -> {at, wait}: when its zone was asked, when to ask again
    zoneBusy: false,
    chart: null, // {instrument, session, bars} drawn last: drawn again when the width changes
  };

  class Refused extends Error {}

  // ---- positions: stream ids "ms-seq", compared as numbers

  function positionKey(position) {
    const [ms, seq] = String(position).split("-");
    return [Number(ms), Number(seq || 0)];
  }

  function newer(a, b) {
    const [am, as] = positionKey(a);
    const [bm, bs] = positionKey(b);
    return am !== bm ? am > bm : as > bs;
  }

  // ---- the token: from #token=..., else localStorage, else the form

  function takeTokenFromUrl() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const token = hash.get("token");
    if (token) {
      localStorage.setItem(TOKEN_KEY, token);
      history.replaceState(null, "", location.pathname + location.search);
    }
  }

  function showLogin(refused) {
    state.refused = refused;
    $("main").hidden = true;
    $("login").hidden = false;
    $("refused").hidden = !refused;
    $("signout").hidden = true;
    setStatus(refused ? "refused" : "idle", refused ? "token refused" : "no token");
    $("token").focus();
  }

  function authorized(extra) {
    return Object.assign({ Authorization: `Bearer ${state.token}` }, extra || {});
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({}, options, {
      headers: authorized(options && options.headers),
      cache: "no-store",
    }));
    if (response.status === 401) throw new Refused();
    if (!response.ok && response.status !== 404) {
      throw new Error(`${path}: HTTP ${response.status}`);
    }
    return response;
  }

  function setStatus(name, text) {
    const badge = $("status");
    badge.dataset.state = name;
    badge.textContent = text;
  }

  // ---- start, load, stream

  async function start() {
    state.token = localStorage.getItem(TOKEN_KEY);
    if (!state.token) {
      showLogin(false);
      return;
    }
    state.refused = false;
    $("login").hidden = true;
    $("main").hidden = false;
    $("signout").hidden = false;
    setStatus("connecting", "connecting");
    let attempt = 0;
    let loaded = false;
    while (!state.refused) {
      let connected = false;
      try {
        if (!loaded) {
          await loadAccount();
          await loadHistory();
          loaded = true;
        }
        await follow(() => { connected = true; attempt = 0; });
      } catch (error) {
        if (error instanceof Refused) {
          localStorage.removeItem(TOKEN_KEY);
          showLogin(true);
          return;
        }
      }
      if (state.refused) return;
      const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
      attempt += connected ? 0 : 1;
      setStatus("reconnecting", `reconnecting in ${Math.round(wait / 1000)} s`);
      await sleep(wait * (0.8 + Math.random() * 0.4));
    }
  }

  async function loadAccount() {
    const me = await (await api("/v1/me")).json();
    $("user").textContent = me.user;
    const subscriptions = await (await api("/v1/subscriptions")).json();
    const saved = subscriptions.find((s) => s.name === SUBSCRIPTION);
    if (saved) {
      state.filters = {
        instruments: saved.filters.instruments || [],
        kinds: saved.filters.kinds || [],
        stages: saved.filters.stages || [],
      };
      showFilters();
    }
  }

  async function loadHistory() {
    const page = await (await api(`/v1/alerts?limit=${HISTORY}`)).json();
    // Oldest first, so that each is placed as if it had just arrived.
    for (const item of page.items.slice().reverse()) add(item.position, item.alert);
    // Nothing kept yet: from the start, so that nothing published meanwhile is missed.
    state.lastEventId = page.items.length ? page.items[0].position : "0";
    render();
  }

  // The live stream, read with fetch (EventSource cannot send Authorization). Returns
  // when the stream ends; throws on an error. Resumes after state.lastEventId.
  async function follow(onOpen) {
    const controller = new AbortController();
    state.controller = controller;
    let stall = null;
    const watch = () => {
      clearTimeout(stall);
      stall = setTimeout(() => controller.abort(), STALL_MS);
    };
    const after = encodeURIComponent(state.lastEventId || "0");
    try {
      watch();
      const response = await fetch(`/v1/alerts/stream?after=${after}`, {
        headers: authorized({
          Accept: "text/event-stream",
          "Last-Event-ID": state.lastEventId || "0",
        }),
        cache: "no-store",
        signal: controller.signal,
      });
      if (response.status === 401) throw new Refused();
      if (!response.ok || !response.body) throw new Error(`stream: HTTP ${response.status}`);
      onOpen();
      setStatus("live", "live");
      const parser = sseParser(onEvent);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        watch();
        parser(value);
      }
    } finally {
      clearTimeout(stall);
      controller.abort();
    }
  }

  // Server-Sent Events as the HTML standard parses them: fields up to a blank line.
  function sseParser(dispatch) {
    let buffer = "";
    let event = { type: "message", data: [], id: null };
    return (chunk) => {
      buffer += chunk;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an unfinished line waits for the next chunk
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) dispatch(event.type, event.data.join("\n"), event.id);
          event = { type: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue; // a comment: the heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event.type = value;
        else if (field === "data") event.data.push(value);
        else if (field === "id" && !value.includes("\0")) event.id = value;
      }
    };
  }

  function onEvent(type, data, id) {
    if (type === "alert") {
      const alert = JSON.parse(data);
      if (id) state.lastEventId = id;
      if (add(id, alert)) {
        render();
        announce(alert);
        if (matches(alert)) {
          beep(alert);
          notify(alert);
        }
        chartSoon(alert);
      }
    } else if (type === "truncated") {
      const note = $("truncated");
      note.hidden = false;
      note.textContent = "Some older alerts were trimmed from the gateway before this page caught up.";
    }
  }

  // ---- the alerts, deduplicated by alert_id

  // A late alert (its partition was behind) goes where its time says, not on top.
  function add(position, alert) {
    if (!alert || !alert.alert_id || state.seen.has(alert.alert_id)) return false;
    state.seen.add(alert.alert_id);
    const entry = { position, alert, at: Date.parse(alert.ts) || 0 };
    state.alerts.set(alert.alert_id, entry);
    let low = 0;
    let high = state.order.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (above(state.alerts.get(state.order[middle]), entry)) low = middle + 1;
      else high = middle;
    }
    state.order.splice(low, 0, alert.alert_id);
    while (state.order.length > MAX_ROWS) state.alerts.delete(state.order.pop());
    return state.alerts.has(alert.alert_id); // false: older than every row kept
  }

  // Newest first by the alert's time; at the same time, the later stream position first.
  function above(a, b) {
    return a.at !== b.at ? a.at > b.at : newer(a.position, b.position);
  }

  function matches(alert) {
    const f = state.filters;
    return (!f.instruments.length || f.instruments.includes(alert.instrument))
      && (!f.kinds.length || f.kinds.includes(alert.kind))
      && (!f.stages.length || f.stages.includes(alert.stage));
  }

  // ---- the blotter

  function render() {
    const rows = $("rows");
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.alertId : null;
    const shown = state.order.filter((id) => matches(state.alerts.get(id).alert));
    const existing = new Map();
    for (const tr of rows.children) existing.set(tr.dataset.alertId, tr);
    const fragment = document.createDocumentFragment();
    for (const id of shown) fragment.appendChild(existing.get(id) || row(state.alerts.get(id).alert));
    rows.replaceChildren(fragment);
    $("empty").hidden = shown.length > 0;
    $("count").textContent = shown.length === state.order.length
      ? `(${shown.length})` : `(${shown.length} of ${state.order.length})`;
    updateInstruments();
    if (!state.pinned) {
      const newest = shown.length ? state.alerts.get(shown[0]).alert : null;
      if (newest) select(newest, false);
    }
    markSelected();
    const active = rows.querySelector('tr[tabindex="0"]');
    if (!active && rows.firstElementChild) rows.firstElementChild.tabIndex = 0;
    if (focusedId) {
      const again = rows.querySelector(`tr[data-alert-id="${CSS.escape(focusedId)}"]`);
      if (again && document.activeElement !== again) again.focus();
    }
    learnZones();
  }

  function row(alert) {
    const tr = document.createElement("tr");
    tr.setAttribute("role", "row"); // kept when a phone's style makes the row a grid
    tr.dataset.alertId = alert.alert_id;
    tr.dataset.instrument = alert.instrument;
    tr.tabIndex = -1;
    tr.className = alert.change >= 0 ? "up" : "down";
    showTime(cell(tr, "time", ""), alert);
    cell(tr, "instrument", alert.instrument);
    const move = cell(tr, "move", `${signed(alert.change)}%`);
    span(move, "kind", KIND_LABEL[alert.kind] || alert.kind);
    // No since date: nothing in history was at or beyond it; a record says so louder.
    // A year-to-date move has no "since" at all: it is measured from the year's start.
    const noSince = alert.kind === "ytd_change";
    cell(tr, "opt since", alert.since || (alert.record ? "★ record" : noSince ? "—" : "never"))
      .title = alert.since
      ? `the latest earlier session at or beyond this: ${alert.since}`
      : alert.record ? "beyond everything in history"
      : noSince ? "measured from the last close of the previous year"
      : "none earlier in history";
    showLeaders(cell(tr, "opt leaders", ""), alert);
    const message = cell(tr, "msg", "");
    message.title = alert.message; // the row shows two lines of it until it has the focus
    span(message, "text", alert.message);
    tr.addEventListener("click", () => { focusRow(tr); select(alert, true); });
    return tr;
  }

  function cell(tr, className, text) {
    const td = document.createElement("td");
    td.setAttribute("role", "cell");
    td.className = className;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function span(parent, className, text) {
    const node = document.createElement("span");
    node.className = className;
    node.textContent = text;
    parent.appendChild(node);
    return node;
  }

  function signed(value, digits = 2) {
    return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(digits)}`;
  }

  // The exchange's clock once the page knows the instrument's zone, else UTC; either way said.
  function showTime(td, alert) {
    const zone = state.zones.get(alert.instrument) || "UTC";
    const clock = readClock(alert.ts, zone);
    td.replaceChildren();
    span(td, "clock", `${clock.time} ${clock.zone}`);
    // A close alert's time is the session's close: said beside its day.
    span(td, "day", alert.stage === "close" ? `${clock.day} · close` : clock.day);
    td.title = `${alert.ts}, shown in ${zone}; session ${alert.session}`;
  }

  // The two who moved it most, short; everyone reported, with their points, on hover.
  function showLeaders(td, alert) {
    const index = alert.index;
    if (!index || !index.contributors || !index.contributors.length) return;
    for (const c of index.contributors.slice(0, 2)) {
      span(td, "leader", `${c.name || c.symbol} ${signed(c.change_pct, 1)}%`);
    }
    td.title = index.contributors
      .map((c) => `${c.name || c.symbol} ${signed(c.change_pct)}% (${signed(c.points, 0)} pts)`)
      .join("\n");
  }

  function updateInstruments() {
    const list = $("known-instruments");
    const names = [...new Set([...state.alerts.values()].map((a) => a.alert.instrument))].sort();
    if (list.childElementCount === names.length) return;
    list.replaceChildren(...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      return option;
    }));
  }

  function announce(alert) {
    $("announce").textContent = `New alert: ${alert.message}`;
  }

  // ---- keyboard: one focusable row at a time (a roving tabindex)

  function focusRow(tr) {
    for (const other of $("rows").querySelectorAll('tr[tabindex="0"]')) other.tabIndex = -1;
    tr.tabIndex = 0;
    tr.focus();
  }

  function onRowsKey(event) {
    const tr = event.target.closest("tr");
    if (!tr) return;
    let next = null;
    switch (event.key) {
      case "ArrowDown": case "j": next = tr.nextElementSibling; break;
      case "ArrowUp": case "k": next = tr.previousElementSibling; break;
      case "Home": next = tr.parentElement.firstElementChild; break;
      case "End": next = tr.parentElement.lastElementChild; break;
      case "Enter": case " ":
        select(state.alerts.get(tr.dataset.alertId).alert, true);
        event.preventDefault();
        return;
      default: return;
    }
    event.preventDefault();
    if (next) focusRow(next);
  }

  function onKey(event) {
    const typing = event.target.closest("input, select, textarea");
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "m") toggleMute();
  }

  // ---- filters, applied here and saved as the user's subscription "page"

  function showFilters() {
    $("f-instruments").value = state.filters.instruments.join(", ");
    $("f-kind").value = state.filters.kinds.length === 1 ? state.filters.kinds[0] : "";
    $("f-stage").value = state.filters.stages.length === 1 ? state.filters.stages[0] : "";
  }

  let saveTimer = null;

  function onFiltersChanged() {
    const instruments = $("f-instruments").value.split(/[\s,]+/).filter(Boolean);
    const kind = $("f-kind").value;
    const stage = $("f-stage").value;
    state.filters = { instruments, kinds: kind ? [kind] : [], stages: stage ? [stage] : [] };
    state.pinned = false;
    render();
    chartSoon(null);
    clearTimeout(saveTimer);
    saveTimer = setTimeout(saveFilters, 600);
  }

  async function saveFilters() {
    const note = $("filters-saved");
    try {
      const response = await api(`/v1/subscriptions/${SUBSCRIPTION}`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(state.filters),
      });
      note.textContent = response.ok ? "filters saved" : "filters not saved";
    } catch (error) {
      if (error instanceof Refused) showLogin(true);
      else note.textContent = "filters not saved (the gateway did not answer)";
    }
  }

  // ---- sound (WebAudio, no file) and desktop notifications

  function showMute() {
    const button = $("mute");
    button.setAttribute("aria-pressed", String(state.muted));
    button.textContent = state.muted ? "Sound off" : "Sound on";
  }

  function toggleMute() {
    state.muted = !state.muted;
    localStorage.setItem(MUTED_KEY, state.muted ? "1" : "0");
    showMute();
  }

  // Browsers start audio only after a gesture: the context is made on the first one.
  function wakeAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!state.audio) state.audio = new Context();
    if (state.audio.state === "suspended") state.audio.resume();
  }

  function beep(alert) {
    if (state.muted || !state.audio || state.audio.state !== "running") return;
    const ctx = state.audio;
    const oscillator = ctx.createOscillator();
    const gain = ctx.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = alert.change >= 0 ? 880 : 440;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.25);
    oscillator.connect(gain).connect(ctx.destination);
    oscillator.start();
    oscillator.stop(ctx.currentTime + 0.3);
  }

  function showNotify() {
    const button = $("notify");
    if (!("Notification" in window)) {
      button.hidden = true;
      return;
    }
    const granted = Notification.permission === "granted";
    button.disabled = granted || Notification.permission === "denied";
    button.textContent = granted ? "Notifications on"
      : Notification.permission === "denied" ? "Notifications blocked" : "Notify me";
  }

  function notify(alert) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const note = new Notification(`${alert.instrument} ${signed(alert.change)}%`, {
        body: alert.message,
        tag: alert.alert_id, // the same alert never twice
      });
      note.onclick = () => { window.focus(); select(alert, true); };
    } catch (error) {
      // Some browsers (Android Chrome) only notify from a service worker: the row is enough.
    }
  }

  // ---- the chart: the selected instrument's minute closes, its alerts as markers

  function select(alert, byUser) {
    if (byUser) state.pinned = true;
    const same = state.selected && state.selected.instrument === alert.instrument
      && state.selected.session === alert.session;
    state.selected = { instrument: alert.instrument, session: alert.session };
    markSelected();
    if (!same) chartNow();
  }

  function markSelected() {
    for (const tr of $("rows").children) {
      const alert = state.alerts.get(tr.dataset.alertId).alert;
      const on = !!state.selected && alert.instrument === state.selected.instrument
        && alert.session === state.selected.session;
      tr.classList.toggle("selected", on);
      if (on) tr.setAttribute("aria-current", "true");
      else tr.removeAttribute("aria-current");
    }
  }

  let chartTimer = null;
  let chartAt = 0;
  let chartBusy = false;

  function chartSoon(alert) {
    if (alert && state.selected && alert.instrument !== state.selected.instrument) return;
    if (chartTimer) return;
    const wait = Math.max(0, chartAt + CHART_EVERY_MS - Date.now());
    chartTimer = setTimeout(() => { chartTimer = null; chartNow(); }, wait);
  }

  async function chartNow() {
    if (!state.selected || chartBusy) {
      if (chartBusy) chartSoon(null);
      return;
    }
    chartBusy = true;
    chartAt = Date.now();
    const { instrument, session } = state.selected;
    if (!state.zones.has(instrument)) { // this answer brings its zone too
      state.zoneAsked.set(instrument, { at: Date.now(), wait: ZONE_RETRY_MS[0] });
    }
    try {
      const url = `/v1/bars/${encodeURIComponent(instrument)}?session=${encodeURIComponent(session)}`;
      const response = await api(url);
      const now = state.selected;
      if (!now || now.instrument !== instrument || now.session !== session) return;
      if (response.status === 404) {
        drawChart(instrument, session, null);
      } else {
        const bars = await response.json();
        learnZone(instrument, bars.timezone);
        drawChart(instrument, session, bars);
      }
    } catch (error) {
      if (error instanceof Refused) showLogin(true);
      else $("chart-note").textContent = "The chart could not be loaded; it will try again.";
    } finally {
      chartBusy = false;
    }
  }

  function drawChart(instrument, session, bars) {
    state.chart = { instrument, session, bars };
    const box = $("chart");
    $("chart-title").textContent = `${instrument} · ${session}${bars ? ` (${bars.timezone})` : ""}`;
    if (!bars || !bars.bars.length) {
      box.replaceChildren();
      $("chart-note").textContent = `No minute bars for ${instrument} in this session yet.`;
      return;
    }
    const marks = state.order.map((id) => state.alerts.get(id).alert)
      .filter((a) => a.instrument === instrument && a.session === session && matches(a));
    const svg = chartSvg(instrument, session, bars, marks, box.clientWidth);
    box.replaceChildren(svg);
    const markers = svg.querySelectorAll(".marker").length;
    $("chart-note").textContent = `${bars.bars.length} minutes in exchange time, `
      + `${marks.length} alert(s) on ${markers} marker(s).`;
  }

  // ---- exchange time zones, learnt from each instrument's bars

  function learnZone(instrument, timeZone) {
    const zone = knownZone(timeZone);
    if (state.zones.get(instrument) === zone) return;
    state.zones.set(instrument, zone);
    for (const tr of $("rows").children) {
      if (tr.dataset.instrument === instrument) {
        showTime(tr.querySelector("td.time"), state.alerts.get(tr.dataset.alertId).alert);
      }
    }
  }

  // The zones of instruments whose chart nobody opened, one request at a time, so that
  // every row's time is on its exchange's clock.
  async function learnZones() {
    if (state.zoneBusy || state.refused) return;
    state.zoneBusy = true;
    try {
      for (let instrument = zoneToAsk(); instrument; instrument = zoneToAsk()) {
        const before = state.zoneAsked.get(instrument);
        const wait = before ? Math.min(2 * before.wait, ZONE_RETRY_MS[1]) : ZONE_RETRY_MS[0];
        state.zoneAsked.set(instrument, { at: Date.now(), wait });
        const response = await api(`/v1/bars/${encodeURIComponent(instrument)}`);
        if (response.ok) learnZone(instrument, (await response.json()).timezone);
        else setTimeout(learnZones, wait); // a 404: its bars have not come yet
      }
    } catch (error) {
      if (error instanceof Refused) showLogin(true);
    } finally {
      state.zoneBusy = false;
    }
  }

  function zoneToAsk() {
    const now = Date.now();
    for (const id of state.order) {
      const name = state.alerts.get(id).alert.instrument;
      const asked = state.zoneAsked.get(name);
      if (!state.zones.has(name) && (!asked || now - asked.at >= asked.wait)) return name;
    }
    return null;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // ---- wiring

  function init() {
    takeTokenFromUrl();
    showMute();
    showNotify();
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      localStorage.setItem(TOKEN_KEY, token);
      $("token").value = "";
      start();
    });
    $("signout").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      state.refused = true; // ends the reconnect loop
      if (state.controller) state.controller.abort();
      location.reload();
    });
    $("mute").addEventListener("click", toggleMute);
    $("notify").addEventListener("click", async () => {
      if ("Notification" in window) await Notification.requestPermission();
      showNotify();
    });
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      onFiltersChanged();
    });
    $("filters").addEventListener("change", onFiltersChanged);
    $("rows").addEventListener("keydown", onRowsKey);
    document.addEventListener("keydown", onKey);
    for (const type of ["pointerdown", "keydown"]) {
      document.addEventListener(type, wakeAudio, { capture: true });
    }
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(() => {
        const last = state.chart;
        if (last) drawChart(last.instrument, last.session, last.bars);
      }, 100);
    });
    setInterval(() => {
      if (document.hidden) return;
      chartSoon(null);
      learnZones();
    }, CHART_IDLE_MS);
    start();
  }

  init();
})();
