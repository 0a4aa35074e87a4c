// The three views. Each mounts into <main> and returns { unmount() }, which closes its stream and timers.

import { apiJson, ApiError } from "./auth.js";
import { openStream } from "./stream.js";
import { h, field, ago, dateTime, clockMs, span, percentText, prettyJson, debounce } from "./util.js";

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const PAGE = 50;
const MAX_ROWS = 500; // live inserts beyond this are left to a reload
const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
const MAX_LOG_LINES = 5000;

function errorBox(err) {
  return h("div", { class: "error-box", role: "alert", text: err instanceof ApiError ? err.message : `Something went wrong: ${err.message}` });
}

function badge(status) { return h("span", { class: `badge b-${status}`, text: status }); }

function progressCell(doc, big = false) {
  const fill = h("span");
  const pct = doc.progress_percent;
  fill.style.width = `${Math.max(0, Math.min(100, pct ?? (doc.status === "COMPLETED" ? 100 : 0)))}%`;
  const bar = h("div", { class: `bar ${big ? "big" : ""} c-${doc.status}`, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct ?? 0, "aria-label": `progress of ${doc.process_name || doc.process_id}` }, fill);
  const pctText = pct === null && doc.status === "COMPLETED" ? "done" : percentText(pct);
  return h("div", { class: "progress" }, bar, h("span", { class: "pct", text: pctText }), big ? null : h("span", { class: "step", title: doc.current_step || "", text: doc.current_step || "" }));
}

function durationOrEta(doc, now = Date.now()) {
  if (doc.duration_ms !== null && doc.duration_ms !== undefined) return span(doc.duration_ms);
  if (doc.estimated_completion) {
    const left = new Date(doc.estimated_completion).getTime() - now;
    return left > 0 ? `ETA ${span(left)}` : "ETA overdue";
  }
  if (doc.started_at && !TERMINAL.has(doc.status)) return `${span(now - new Date(doc.started_at).getTime())} so far`;
  return "—";
}

// The API's order, newest first: last_seen_at descending (to the microsecond; Date keeps only
// milliseconds), then process_id ascending.
function seenAt(doc) {
  const iso = doc.last_seen_at || "";
  return iso.replace(/(\.\d+)?Z$/, (tail) => `${(tail.length > 1 ? tail.slice(0, -1) : ".").padEnd(7, "0")}Z`);
}
function comesBefore(a, b) {
  const sa = seenAt(a);
  const sb = seenAt(b);
  return sa > sb || (sa === sb && a.process_id < b.process_id);
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text; // an unchanged cell costs no layout
}

function processHref(id) { return `/ui/processes/${encodeURIComponent(id)}`; }

// == Processes =========================================================================================
export function processesView({ main, config, navigate }) {
  const params = new URLSearchParams(location.search);
  const filters = {
    status: (params.get("status") || "").toUpperCase(),
    process_type: params.get("process_type") || "",
    package_name: params.get("package_name") || "",
    q: params.get("q") || "",
  };
  if (filters.status && !config.statuses.includes(filters.status)) filters.status = "";
  const pages = []; // cursors of the pages before this one
  let cursor = params.get("cursor");
  let stream = null;
  let ticker = null;
  let rows = new Map(); // process_id -> { tr, doc }
  let nextCursor = null;
  let loadToken = 0;

  const countButtons = new Map();
  const counts = h("div", { class: "counts", role: "group", "aria-label": "Processes by status (click to filter)" });
  const allButton = h("button", { type: "button", class: "count s-ALL", "aria-pressed": String(!filters.status), dataset: { status: "" } }, h("span", { class: "n", text: "—" }), h("span", { class: "k", text: "All" }));
  counts.append(allButton);
  countButtons.set("", allButton);
  for (const status of config.statuses) {
    const b = h("button", { type: "button", class: `count s-${status}`, "aria-pressed": String(filters.status === status), dataset: { status } }, h("span", { class: "n", text: "—" }), h("span", { class: "k", text: status.toLowerCase() }));
    counts.append(b);
    countButtons.set(status, b);
  }
  counts.addEventListener("click", (event) => {
    const b = event.target.closest("button[data-status]");
    if (!b) return;
    const status = b.dataset.status;
    filters.status = filters.status === status ? "" : status;
    statusSelect.value = filters.status;
    apply();
  });

  const statusSelect = h("select", { id: "f-status", name: "status" }, h("option", { value: "", text: "All statuses" }), config.statuses.map((s) => h("option", { value: s, text: s })));
  statusSelect.value = filters.status;
  const typeInput = h("input", { type: "text", id: "f-type", name: "process_type", value: filters.process_type, placeholder: "any", autocomplete: "off", maxlength: 200 });
  const packageInput = h("input", { type: "text", id: "f-package", name: "package_name", value: filters.package_name, placeholder: "any", autocomplete: "off", maxlength: 200 });
  const searchInput = h("input", { type: "search", id: "f-q", name: "q", value: filters.q, placeholder: "process id or name", autocomplete: "off", maxlength: 200 });
  const liveState = h("span", { class: "live", role: "status", "aria-live": "polite" }, h("span", { class: "pulse", "aria-hidden": "true" }), h("span", { class: "text", text: "connecting" }));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter processes" },
    field("Search id or name", searchInput, "field grow"),
    field("Status", statusSelect),
    field("Process type", typeInput),
    field("Package", packageInput),
    liveState);
  form.addEventListener("submit", (event) => { event.preventDefault(); readInputs(); apply(); });
  const typed = debounce(() => { readInputs(); apply(); }, 300);
  for (const input of [typeInput, packageInput, searchInput]) input.addEventListener("input", typed);
  statusSelect.addEventListener("change", () => { readInputs(); apply(); });

  function readInputs() {
    filters.status = statusSelect.value;
    filters.process_type = typeInput.value.trim();
    filters.package_name = packageInput.value.trim();
    filters.q = searchInput.value.trim();
  }

  const tbody = h("tbody");
  const table = h("table", { "aria-label": "Processes, newest first" },
    h("thead", {}, h("tr", {}, ["Status", "Process", "Type", "Package", "Progress", "Started", "Last seen", "Duration / ETA"].map((t, i) => h("th", { scope: "col", class: i === 7 ? "num" : "", text: t })))),
    tbody);
  const newestButton = h("button", { type: "button", class: "btn", id: "page-newest", text: "Newest" });
  const newerButton = h("button", { type: "button", class: "btn", id: "page-newer", text: "← Newer" });
  const olderButton = h("button", { type: "button", class: "btn", id: "page-older", text: "Older →" });
  const pageInfo = h("span", { class: "info" });
  newestButton.addEventListener("click", () => { pages.length = 0; cursor = null; apply(); });
  newerButton.addEventListener("click", () => { cursor = pages.pop() ?? null; apply({ keepPages: true }); });
  olderButton.addEventListener("click", () => { pages.push(cursor); cursor = nextCursor; apply({ keepPages: true }); });
  const errorSlot = h("div");
  main.replaceChildren(
    h("h1", { class: "sr-only", text: "Processes" }),
    counts, form, errorSlot,
    h("div", { class: "panel" }, table, h("div", { class: "pager" }, pageInfo, h("span", { class: "spacer" }), newestButton, newerButton, olderButton)),
  );

  function query(extra = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filters, ...extra })) if (v) q.set(k, v);
    return q;
  }

  function apply({ keepPages = false } = {}) {
    if (!keepPages) { pages.length = 0; cursor = null; }
    const q = query(cursor ? { cursor } : {});
    const url = `/ui${q.toString() ? `?${q}` : ""}`;
    history.replaceState(null, "", url);
    for (const [status, b] of countButtons) b.setAttribute("aria-pressed", String(filters.status === status));
    load();
    connect();
  }

  function matches(doc) { return !filters.status || doc.status === filters.status; }

  function renderRow(doc, tr = h("tr")) {
    tr.className = `st-${doc.status}`;
    tr.dataset.id = doc.process_id;
    const link = h("a", { href: processHref(doc.process_id), "data-route": true }, h("span", { class: "pname", text: doc.process_name || doc.process_id }));
    tr.replaceChildren(
      h("td", {}, badge(doc.status)),
      h("td", {}, link, h("span", { class: "pid", text: doc.process_id, title: doc.process_id })),
      h("td", { text: doc.process_type || "—" }),
      h("td", { text: doc.package_name || "—" }),
      h("td", {}, progressCell(doc)),
      h("td", { class: "time", text: dateTime(doc.started_at), title: doc.started_at || "" }),
      h("td", { class: "time seen", text: ago(doc.last_seen_at), title: doc.last_seen_at || "" }),
      h("td", { class: "num eta", text: durationOrEta(doc) }),
    );
    return tr;
  }

  // The common update (progress, step, last seen) touches only what changed; a new status, name or
  // the like re-renders the row. Answers false when the row must be re-rendered.
  function patchRow(tr, before, doc) {
    for (const key of ["status", "process_name", "process_type", "package_name", "started_at", "duration_ms"]) {
      if (before[key] !== doc[key]) return false;
    }
    if (before.progress_percent !== doc.progress_percent) {
      const pct = doc.progress_percent;
      tr.querySelector(".bar > span").style.width = `${Math.max(0, Math.min(100, pct ?? 0))}%`;
      tr.querySelector("[role=progressbar]").setAttribute("aria-valuenow", pct ?? 0);
      setText(tr.querySelector(".pct"), percentText(pct));
    }
    if (before.current_step !== doc.current_step) {
      const step = tr.querySelector(".step");
      setText(step, doc.current_step || "");
      step.title = doc.current_step || "";
    }
    setText(tr.querySelector(".seen"), ago(doc.last_seen_at));
    tr.querySelector(".seen").title = doc.last_seen_at || "";
    setText(tr.querySelector(".eta"), durationOrEta(doc));
    return true;
  }

  function emptyRow(text) { return h("tr", { class: "empty-row" }, h("td", { colspan: 8, class: "empty", text })); }

  async function load() {
    const mine = ++loadToken;
    errorSlot.replaceChildren();
    const q = query({ limit: PAGE, ...(cursor ? { cursor } : {}) });
    q.delete("q");
    if (filters.q) q.set("q", filters.q);
    try {
      const page = await apiJson(`/processes?${q}`);
      if (mine !== loadToken) return;
      rows = new Map();
      tbody.replaceChildren(...page.items.map((doc) => { const tr = renderRow(doc); rows.set(doc.process_id, { tr, doc }); return tr; }));
      if (!page.items.length) tbody.replaceChildren(emptyRow(cursor ? "No older processes." : "No processes match. New ones appear here as they start."));
      nextCursor = page.next_cursor;
      olderButton.disabled = !nextCursor;
      newerButton.disabled = !cursor;
      newestButton.disabled = !cursor;
      const first = pages.length * PAGE + 1;
      pageInfo.textContent = page.items.length ? `rows ${first}–${first + page.items.length - 1}${cursor ? "" : " · newest first, live"}` : "";
    } catch (err) {
      if (mine === loadToken) errorSlot.replaceChildren(errorBox(err));
    }
  }

  let pending = [];
  let frame = 0;
  function onChanges(docs) {
    pending.push(...docs);
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    const batch = pending;
    pending = [];
    const onFirstPage = !cursor;
    for (const doc of batch) {
      const known = rows.get(doc.process_id);
      if (known) {
        if (!matches(doc)) { known.tr.remove(); rows.delete(doc.process_id); continue; }
        const before = known.doc;
        known.doc = doc;
        if (!patchRow(known.tr, before, doc)) {
          renderRow(doc, known.tr);
          known.tr.classList.remove("flash");
          requestAnimationFrame(() => known.tr.classList.add("flash"));
        }
      } else if (onFirstPage && matches(doc) && rows.size < MAX_ROWS && belongs(doc)) {
        // A row this page has not shown: placed by last_seen_at among the rows (newest first), and
        // only if it falls inside the page's range (older rows are the next page's).
        const tr = renderRow(doc);
        tr.classList.add("flash");
        tbody.querySelector("tr.empty-row")?.remove();
        const next = [...tbody.children].find((row) => { const r = rows.get(row.dataset.id); return r && comesBefore(doc, r.doc); });
        if (next) tbody.insertBefore(tr, next);
        else tbody.append(tr);
        rows.set(doc.process_id, { tr, doc });
      }
    }
  }

  function belongs(doc) {
    if (!nextCursor || !rows.size) return true; // the whole list fits on this page
    let last = null;
    for (const r of rows.values()) if (last === null || comesBefore(last, r.doc)) last = r.doc;
    return comesBefore(doc, last);
  }

  function showCounts(c) {
    countButtons.get("").querySelector(".n").textContent = c.total.toLocaleString();
    for (const status of config.statuses) {
      const b = countButtons.get(status);
      const n = c.counts[status] ?? 0;
      b.querySelector(".n").textContent = n.toLocaleString();
      b.classList.toggle("hot", n > 0 && (status === "FAILED" || status === "STALLED"));
    }
  }

  function setLive(state, text) {
    liveState.className = `live ${state}`;
    liveState.querySelector(".text").textContent = text;
  }

  function connect() {
    stream?.close();
    const q = query();
    q.delete("status");
    stream = openStream(`/ui/api/processes/live?${q}`, {
      onEvent(type, data) {
        if (type === "processes") onChanges(JSON.parse(data));
        else if (type === "counts") showCounts(JSON.parse(data));
        else if (type === "resync") load();
      },
      onState(state, detail) {
        if (state === "open") setLive("on", "live");
        else if (state === "retry") setLive("off", `reconnecting in ${Math.round(detail / 1000)} s`);
        else if (state === "failed") setLive("off", `live updates stopped: ${detail}`);
      },
    });
  }

  ticker = setInterval(() => {
    const now = Date.now();
    for (const { tr, doc } of rows.values()) {
      setText(tr.querySelector(".seen"), ago(doc.last_seen_at, now));
      setText(tr.querySelector(".eta"), durationOrEta(doc, now));
    }
  }, 1000);

  if (cursor) { load(); connect(); } else apply();
  return {
    unmount() {
      stream?.close();
      clearInterval(ticker);
      cancelAnimationFrame(frame);
      loadToken++;
    },
  };
}

// == One process ========================================================================================
export function processView({ main }, processId) {
  let stream = null;
  let statusTimer = null;
  let closed = false;
  const lines = [];
  const summary = h("div");
  const errorSlot = h("div");

  // log tail controls
  const levelSelect = h("select", { id: "log-level", name: "level" }, LEVELS.map((l) => h("option", { value: l, text: `${l} and above` })));
  levelSelect.value = "TRACE";
  const searchInput = h("input", { type: "search", id: "log-search", name: "log-search", placeholder: "text in message or component", autocomplete: "off" });
  const follow = h("input", { type: "checkbox", id: "log-follow", name: "follow", checked: true });
  const meta = h("span", { class: "meta", role: "status", "aria-live": "polite", text: "connecting…" });
  const logBox = h("div", { class: "log", id: "log", role: "log", tabindex: 0, "aria-label": "Log lines, oldest first" });
  const logEnd = h("div", { class: "logend", hidden: true });
  logBox.append(logEnd);

  main.replaceChildren(
    h("div", { class: "crumbs" }, h("a", { href: "/ui", "data-route": true, text: "← Processes" })),
    errorSlot,
    summary,
    h("section", { class: "panel", "aria-labelledby": "log-title" },
      h("div", { class: "logbar" },
        h("h2", { id: "log-title", class: "sr-only", text: "Log" }),
        field("Level", levelSelect),
        field("Search log", searchInput, "field grow"),
        h("div", { class: "check" }, follow, h("label", { for: "log-follow", text: "Auto-scroll" })),
        meta),
      logBox),
  );

  const visible = (entry) => {
    if (LEVELS.indexOf(entry.level) < LEVELS.indexOf(levelSelect.value)) return false;
    const needle = searchInput.value.trim().toLowerCase();
    return !needle || entry.message.toLowerCase().includes(needle) || (entry.component || "").toLowerCase().includes(needle);
  };

  function lineOf(entry) {
    const ids = [entry.trace_id ? `trace ${entry.trace_id}` : null, entry.span_id ? `span ${entry.span_id}` : null].filter(Boolean).join(" · ");
    const row = h("div", { class: `line l-${entry.level}`, dataset: { level: entry.level, seq: entry.seq } },
      h("span", { class: "t", text: clockMs(entry.timestamp), title: entry.timestamp }),
      h("span", { class: `lv lv-${entry.level}`, text: entry.level }),
      h("span", { class: "msg" }, entry.component ? h("span", { class: "comp", text: `[${entry.component}]` }) : null, entry.message,
        entry.details ? h("span", { class: "det", text: `  ${JSON.stringify(entry.details)}` }) : null,
        entry.duration_us !== null && entry.duration_us !== undefined ? h("span", { class: "det", text: `  (${(entry.duration_us / 1000).toFixed(1)} ms)` }) : null),
      h("span", { class: "ids", text: ids, title: ids }));
    row.hidden = !visible(entry);
    return row;
  }

  function countText() {
    const shown = lines.filter((l) => !l.el.hidden).length;
    return `${shown.toLocaleString()} of ${lines.length.toLocaleString()} lines`;
  }

  logBox.addEventListener("scroll", () => {
    // Scrolling up stops auto-scroll; scrolling back to the bottom resumes it. (Auto-scroll itself
    // only ever lands at the bottom, so it never switches itself off.)
    const atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 8;
    if (follow.checked !== atBottom) follow.checked = atBottom;
  });
  follow.addEventListener("change", () => { if (follow.checked) scrollDown(); });
  function scrollDown() { logBox.scrollTop = logBox.scrollHeight; }

  let queued = [];
  let frame = 0;
  function addLines(entries) {
    queued.push(...entries);
    if (!frame) frame = requestAnimationFrame(flushLines);
  }
  function flushLines() {
    frame = 0;
    const fragment = document.createDocumentFragment();
    for (const entry of queued) {
      const el = lineOf(entry);
      lines.push({ entry, el });
      fragment.append(el);
    }
    queued = [];
    logBox.insertBefore(fragment, logEnd);
    while (lines.length > MAX_LOG_LINES) lines.shift().el.remove();
    meta.textContent = countText() + (closed ? " · ended" : " · live");
    if (follow.checked) scrollDown();
  }

  const refilter = () => {
    for (const { entry, el } of lines) el.hidden = !visible(entry);
    meta.textContent = countText() + (closed ? " · ended" : " · live");
    if (follow.checked) scrollDown();
  };
  levelSelect.addEventListener("change", refilter);
  searchInput.addEventListener("input", debounce(refilter, 150));

  let lastStatus = null;
  function renderStatus(doc) {
    lastStatus = doc;
    const kv = (pairs) => h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
    const now = Date.now();
    const eta = doc.estimated_completion ? `${dateTime(doc.estimated_completion)} (in ${span(Math.max(0, new Date(doc.estimated_completion).getTime() - now))})` : null;
    const progressCard = h("section", { class: "card", "aria-labelledby": "progress-title" },
      h("h2", { id: "progress-title", text: "Progress" }),
      h("div", { class: "bigprogress" }, progressCell(doc, true)),
      kv([["Step", doc.current_step], ["ETA", TERMINAL.has(doc.status) ? null : eta], ["Duration", doc.duration_ms !== null ? span(doc.duration_ms) : null]]));
    const timings = h("section", { class: "card", "aria-labelledby": "timing-title" },
      h("h2", { id: "timing-title", text: "Timings" }),
      kv([["Started", dateTime(doc.started_at)], ["Last seen", `${dateTime(doc.last_seen_at)} (${ago(doc.last_seen_at)})`], ["Ended", doc.ended_at ? dateTime(doc.ended_at) : null],
        ["Duration", doc.duration_ms !== null ? span(doc.duration_ms) : doc.started_at ? `${span(now - new Date(doc.started_at).getTime())} so far` : null],
        ["Events", doc.event_count.toLocaleString()], ["Log lines", doc.log_count.toLocaleString()]]));
    const identity = h("section", { class: "card", "aria-labelledby": "ident-title" },
      h("h2", { id: "ident-title", text: "Process" }),
      kv([["Type", doc.process_type], ["Package", doc.package_name], ["Procedure", doc.procedure_name], ["Correlation", doc.correlation_id], ["Tenant", doc.tenant_id]]));
    const left = [progressCard];
    if (doc.error_code || doc.error_message || doc.status === "FAILED") {
      const traceSlot = h("div");
      left.push(h("section", { class: "card errorcard", "aria-labelledby": "error-title" },
        h("h2", { id: "error-title", text: doc.status === "CANCELLED" ? "Cancelled" : "Error" }),
        kv([["Code", doc.error_code], ["Message", doc.error_message]]), traceSlot));
      loadTrace(traceSlot);
    }
    if (doc.result) left.push(h("section", { class: "card", "aria-labelledby": "result-title" }, h("h2", { id: "result-title", text: "Result" }), h("pre", { class: "json", text: prettyJson(doc.result) })));
    if (doc.metadata) left.push(h("section", { class: "card", "aria-labelledby": "meta-title" }, h("h2", { id: "meta-title", text: "Metadata" }), h("pre", { class: "json", text: prettyJson(doc.metadata) })));
    summary.replaceChildren(
      h("div", { class: "head" }, h("h1", { text: doc.process_name || doc.process_id }), badge(doc.status), h("span", { class: "pid", text: doc.process_id })),
      h("div", { class: "grid" }, h("div", {}, left), h("div", {}, timings, identity)),
    );
    document.title = `${doc.process_name || doc.process_id} · ${doc.status} · Process Sentinel`;
  }

  let traceText;
  async function loadTrace(slot) {
    if (traceText === undefined) {
      try {
        traceText = (await apiJson(`/ui/api/stack-trace/${encodeURIComponent(processId)}`)).stack_trace;
      } catch {
        traceText = null;
      }
    }
    if (traceText) slot.replaceChildren(h("h2", { text: "Stack trace" }), h("pre", { class: "trace", text: traceText }));
  }

  async function refreshStatus() {
    try {
      const doc = await apiJson(`/status/${encodeURIComponent(processId)}`);
      renderStatus(doc);
      if (TERMINAL.has(doc.status)) stopStatusPolling();
      return doc;
    } catch (err) {
      errorSlot.replaceChildren(errorBox(err.status === 404 ? new ApiError(404, `No process '${processId}' in your tenant.`) : err));
      stopStatusPolling();
      return null;
    }
  }
  function stopStatusPolling() { clearInterval(statusTimer); statusTimer = null; }

  (async () => {
    const doc = await refreshStatus();
    if (!doc) return;
    // The status is re-read every 2 s while the process runs (one cheap keyed read); the log tail is
    // the page's one stream.
    if (!TERMINAL.has(doc.status)) statusTimer = setInterval(refreshStatus, 2000);
    stream = openStream(`/logs/${encodeURIComponent(processId)}?follow=true`, {
      onEvent(type, data) {
        if (type === "log") addLines([JSON.parse(data)]);
        else if (type === "end") {
          // Terminal: everything is out. Close for good (no reconnect, no replay).
          closed = true;
          renderStatus(JSON.parse(data));
          stopStatusPolling();
          logEnd.hidden = false;
          logEnd.textContent = `— end of log · the process ended ${JSON.parse(data).status} —`;
          meta.textContent = countText() + " · ended";
          return "stop";
        }
        return undefined;
      },
      onState(state, detail) {
        if (state === "open") meta.textContent = countText() + " · live";
        else if (state === "retry") meta.textContent = `${countText()} · reconnecting in ${Math.round(detail / 1000)} s`;
        else if (state === "failed") meta.textContent = `log stream stopped: ${detail}`;
      },
    });
  })();

  const ticker = setInterval(() => { if (lastStatus && !TERMINAL.has(lastStatus.status) && !statusTimer) renderStatus(lastStatus); }, 1000);
  return {
    unmount() {
      stream?.close();
      stopStatusPolling();
      clearInterval(ticker);
      cancelAnimationFrame(frame);
      document.title = "Process Sentinel";
    },
  };
}

// == Dead letters ========================================================================================
export function deadLettersView({ main, config }) {
  const tbody = h("tbody");
  const errorSlot = h("div");
  const olderButton = h("button", { type: "button", class: "btn", id: "dl-older", text: "Older →" });
  const newestButton = h("button", { type: "button", class: "btn", id: "dl-newest", text: "Newest" });
  const info = h("span");
  let before = null;
  let next = null;
  let first = 1;
  let mounted = true;
  main.replaceChildren(
    h("h1", { text: "Dead letters" }),
    h("p", { class: "crumbs", text: `Messages the ingest refused, newest first, with the reason and the raw payload as received. Visible to the ${config.adminRole} role.` }),
    errorSlot,
    h("div", { class: "panel" },
      h("table", { "aria-label": "Dead letters, newest first" },
        h("thead", {}, h("tr", {}, ["#", "Dead at", "Code", "Reason", "Payload"].map((t) => h("th", { scope: "col", text: t })))),
        tbody),
      h("div", { class: "pager" }, info, h("span", { class: "spacer" }), newestButton, olderButton)),
  );
  async function load() {
    errorSlot.replaceChildren();
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (before) q.set("before", String(before));
      const page = await apiJson(`/ui/api/dead-letters?${q}`);
      if (!mounted) return;
      next = page.next_before;
      tbody.replaceChildren(...page.items.map((d) => h("tr", {},
        h("td", { class: "num", text: d.id }),
        h("td", { class: "time", text: dateTime(d.dead_at), title: d.dead_at }),
        h("td", {}, h("span", { class: "code", text: d.code })),
        h("td", { text: d.reason }),
        h("td", {}, h("details", { class: "dl-payload" }, h("summary", { text: d.payload.length > 80 ? `${d.payload.slice(0, 80)}…` : d.payload || "(empty)" }), h("pre", { class: "json", text: d.payload }))))));
      if (!page.items.length) tbody.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "empty", text: "No dead letters. Every message so far was ingested." })));
      olderButton.disabled = !next;
      newestButton.disabled = !before;
      info.textContent = page.items.length ? `rows ${first}–${first + page.items.length - 1}` : "";
    } catch (err) {
      if (!mounted) return;
      tbody.replaceChildren();
      errorSlot.replaceChildren(errorBox(err.status === 403 ? new ApiError(403, `Dead letters are for the ${config.adminRole} role; your token does not have it.`) : err));
      olderButton.disabled = true;
      newestButton.disabled = true;
    }
  }
  olderButton.addEventListener("click", () => { before = next; first += PAGE; load(); });
  newestButton.addEventListener("click", () => { before = null; first = 1; load(); });
  load();
  return { unmount() { mounted = false; } };
}
