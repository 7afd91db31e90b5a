// The crmagento admin dashboard: reads the admin API every few seconds and renders it. Plain JS, no build.
// Everything from the API is put in the page with textContent, never as HTML: event data and error
// messages come from outside and must not run as script in a page that holds the admin token.
"use strict";

const TOKEN_KEY = "crmagento.adminToken";
const REFRESH_MS = 3000;
const BUSY_REFRESH_MS = 1000; // while an admin job is queued or running, so its progress moves visibly
const SERIES_EVERY_MS = 10_000; // the series move per minute: no need to read 1,440 points every 3 s
const EVENT_LIMIT = 15;
const JOB_LIMIT = 10;
const DEAD_LETTER_PAGE = 500;
const DEAD_LETTER_PAGES = 4; // grouped from the newest 2,000 at most; the count says how many there are
const DEAD_LETTER_EVERY_MS = 15_000;
const REPLAY_REASON_MAX = 1000; // the replay filter's limit (crmcore/deadletters.py)

class Unauthorized extends Error {}

// API paths are relative to the page (/admin/ui -> /admin/status), so a proxy's path prefix is kept.
function apiUrl(path) {
  return new URL(path, window.location.href);
}

function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(apiUrl(path), init);
  if (resp.status === 401) throw new Unauthorized();
  let answer = null;
  try {
    answer = await resp.json();
  } catch {
    answer = null;
  }
  return { status: resp.status, ok: resp.ok, body: answer };
}

function problemText(answer) {
  const b = answer.body || {};
  return b.detail || b.title || `HTTP ${answer.status}`;
}

// A 404 naming one of our problem types is an answer ("nothing by that name"); any other 404 means this
// gateway has no such route yet (an older version): the panel says "not available" instead of failing.
function isProblem(answer, slug) {
  const type = (answer.body && answer.body.type) || "";
  return typeof type === "string" && type.endsWith(`:${slug}`);
}

// ------------------------------------------------------------------------------------------ DOM helpers

const $ = (sel) => document.querySelector(sel);
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "title") node.title = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "–" : String(child)));
  }
  return node;
}

// The same for SVG: attributes only, text by textContent.
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text != null) node.textContent = String(text);
  return node;
}

function fillTable(table, rows) {
  table.querySelector("tbody").replaceChildren(...rows);
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function clock(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : d.toLocaleString();
}

function hm(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const text = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return plotWindow === "day" && d.toDateString() !== new Date().toDateString() ? `${d.toLocaleDateString()} ${text}` : text;
}

function compact(value) {
  if (value == null) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function seconds(s) {
  if (s == null || Number.isNaN(s)) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

function millis(ms) {
  return ms == null ? "–" : seconds(ms / 1000);
}

function number(n) {
  if (n == null) return "–";
  if (Math.abs(n) >= 10000) return `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function shortId(id) {
  const text = String(id == null ? "" : id);
  return text.length > 12 ? `…${text.slice(-8)}` : text;
}

function setBanner(message) {
  const banner = $("#banner");
  banner.textContent = message || "";
  banner.hidden = !message;
}

// A state word in a coloured pill: the word carries the meaning, the colour only repeats it.
function pill(state, text, extra = "") {
  return el("span", { className: `pill ${state} ${extra}`.trim(), dataset: { state } }, text);
}

// Details the operator opened stay open across refreshes (each refresh redraws the tables).
const openDetails = new Set();

function details(key, label, content) {
  const box = el("details", { dataset: { key } }, el("summary", {}, label), content);
  if (openDetails.has(key)) box.open = true;
  box.addEventListener("toggle", () => (box.open ? openDetails.add(key) : openDetails.delete(key)));
  return box;
}

function jsonBlock(value) {
  return el("pre", { className: "json" }, JSON.stringify(value, null, 2));
}

// ------------------------------------------------------------------------------------------ summaries

// A count from what the workers report: a number, a list, or a {count, skus} sample.
function count(value) {
  if (value == null) return 0;
  if (Array.isArray(value)) return value.length;
  if (typeof value === "object") return Number(value.count) || 0;
  return Number(value) || 0;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function summarizeReconcile(r) {
  const parts = [];
  if (r.compared != null) parts.push(`${r.compared} compared`);
  const found = r.drift_found != null ? r.drift_found : count(r.drift);
  if (r.dry_run) parts.push(`drift ${found} (dry run, nothing written)`);
  else if (r.drift_fixed != null) parts.push(`drift ${found}, ${r.drift_fixed} fixed`);
  else parts.push(`drift ${found}`);
  const missingM = count(r.missing_in_magento);
  const missingC = count(r.missing_in_cr);
  if (missingM) parts.push(`${missingM} missing in Magento`);
  if (missingC) parts.push(`${missingC} missing in Cloud Retailer`);
  const errors = r.error_count != null ? r.error_count : count(r.errors);
  if (errors) parts.push(plural(errors, "error"));
  if (Array.isArray(r.links) && r.links.length > 1) {
    parts.push(r.links.map((l) => `${l.source_code}: drift ${l.drift_found}, ${l.drift_fixed} written`).join("; "));
  }
  return parts.join(", ");
}

function summarizeResync(r) {
  const parts = [];
  if (r.queued != null) parts.push(r.fed != null && r.fed !== r.queued ? `${r.queued} queued of ${r.fed}` : `${r.queued} queued`);
  const unknown = count(r.not_in_cloud_retailer);
  if (unknown) parts.push(`${unknown} unknown`);
  if (r.magento_unlinked) parts.push(`${r.magento_unlinked} unlinked in Magento`);
  return parts.join(", ");
}

function summarizeOrders(r) {
  const parts = [];
  if (r.checked != null) parts.push(`${r.checked} checked`);
  if (r.queued != null) parts.push(`${r.queued} queued`);
  if (r.already_imported) parts.push(`${r.already_imported} already imported`);
  if (r.in_dead_letters) parts.push(`${r.in_dead_letters} in dead letters`);
  const skipped = count(r.not_found) + count(r.not_complete) + count(r.other_website);
  if (skipped) parts.push(`${skipped} skipped`);
  return parts.join(", ");
}

function summarizeCatchup(r) {
  const parts = [];
  for (const key of ["found", "queued", "applied", "failed"]) if (r[key] != null) parts.push(`${r[key]} ${key}`);
  return parts.join(", ");
}

function summarizeInitial(r) {
  return Object.entries(r)
    .filter(([, p]) => p && typeof p === "object")
    .map(([name, p]) => {
      const done = p.total != null ? ` ${p.done || 0}/${p.total}` : p.done ? ` ${p.done}` : "";
      return `${name} ${p.status || "?"}${done}${p.failed ? ` (${p.failed} failed)` : ""}`;
    })
    .join(", ");
}

function summarizeGeneric(r) {
  const numbers = Object.entries(r).filter(([, v]) => typeof v === "number");
  const shown = numbers.slice(0, 4).map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`);
  const keys = Object.keys(r).length;
  return [...shown, `${plural(keys, "field")}`].join(", ");
}

// One per job kind (and report name): the line an operator reads; the full result stays behind "details".
const SUMMARIZERS = {
  "reconcile-inventory": summarizeReconcile,
  "resync-products": summarizeResync,
  "resync-categories": summarizeResync,
  "resync-customers": summarizeResync,
  "resync-orders": summarizeOrders,
  "resync-catchup": summarizeCatchup,
  catchup: summarizeCatchup,
  "initial-sync": summarizeInitial,
};

function summarize(kind, result) {
  if (result == null) return "";
  if (typeof result !== "object" || Array.isArray(result)) return compact(result);
  if (result.status === "skipped" && result.reason) return `skipped: ${result.reason}`;
  const summarizer = SUMMARIZERS[kind] || summarizeGeneric;
  let text = "";
  try {
    text = summarizer(result);
  } catch {
    text = "";
  }
  return text || summarizeGeneric(result);
}

// ------------------------------------------------------------------------------------------ top row

const REMOTE_STATES = { up: "ok", unavailable: "warn", misconfigured: "bad" };

function setTile(tile, state, note) {
  tile.classList.remove("ok", "warn", "bad", "idle");
  tile.classList.add(state);
  tile.dataset.state = state;
  const noteEl = tile.querySelector(".small");
  if (noteEl && note != null) noteEl.textContent = note;
}

function renderStatus(answer) {
  const s = answer.body || {};
  const redis = $("#redis-state");
  redis.hidden = false;
  redis.textContent = s.redis === "ok" ? "Redis ok" : "Redis unavailable";
  redis.className = s.redis === "ok" ? "pill ok" : "pill bad";

  const workers = s.workers || [];
  const stale = workers.filter((w) => w.age_seconds > 60).length;
  $("#queue-depth").textContent = compact(s.queue_depth);
  $("#worker-count").textContent = compact(workers.length);
  $("#dead-letter-count").textContent = compact(s.dead_letters);
  $("#recent-count").textContent = compact(s.recent_events);
  const outcomes = Object.entries(s.jobs || {}).map(([k, v]) => `${k} ${v}`);
  $("#outcomes").textContent = outcomes.length ? outcomes.join(", ") : "none yet";

  const depth = s.queue_depth || 0;
  if (s.queue_depth == null) setTile($("#queue-tile"), "bad", "unknown");
  else if (depth > 0 && workers.length === 0) setTile($("#queue-tile"), "bad", "waiting: no worker");
  else if (depth > 1000) setTile($("#queue-tile"), "warn", "backlog");
  else setTile($("#queue-tile"), "ok", depth ? "being worked" : "empty");
  const dead = s.dead_letters || 0;
  setTile($("#dead-tile"), dead ? "warn" : "ok", dead ? "need a look: see below" : "none");
  if (!workers.length) setTile($("#worker-tile"), "bad", "none running");
  else if (stale) setTile($("#worker-tile"), "warn", `${stale} silent over 60 s`);
  else setTile($("#worker-tile"), "ok", "heartbeats fresh");
  setTile($("#recent-tile"), "idle", null);

  fillTable(
    $("#workers"),
    workers.map((w) =>
      el(
        "tr",
        { dataset: { id: w.id } },
        el("td", { className: "id" }, w.id),
        el("td", {}, w.host),
        el("td", {}, w.pid),
        el("td", {}, w.jobs_running),
        el("td", { className: w.age_seconds > 60 ? "stale" : "" }, `${w.age_seconds} s`),
      ),
    ),
  );
  $("#no-workers").hidden = workers.length > 0 || s.redis !== "ok";
  renderRemotes(s.remotes || {});
  renderDomains(s.domains);
  renderReports(s.reports || {});
  renderStockLinks(s.stock_links || []);
}

// Each Cloud Retailer location and the Magento source its on-hand feeds, with the last reconciliation's figures.
function renderStockLinks(links) {
  fillTable(
    $("#stock-links"),
    links.map((link) =>
      el(
        "tr",
        { className: "stock-link", dataset: { source: link.source_code } },
        el("td", { className: "id" }, link.default ? `${link.location_id} (default)` : link.location_id),
        el("td", { className: "id" }, link.source_code),
        el("td", { className: link.drift_found ? "drift stale" : "drift" }, compact(link.drift_found)),
        el("td", { className: "written" }, compact(link.drift_fixed)),
        el("td", { className: "held" }, compact(link.held_skus)),
        el("td", { className: "small when" }, link.last_reconcile ? clock(link.last_reconcile) : "never"),
      ),
    ),
  );
  $("#stock-links").hidden = links.length === 0;
  $("#no-stock-links").hidden = links.length > 0;
}

function parkedText(r) {
  if (!r.parked) return "parked: none";
  return `parked: ${r.parked} ${r.parked === 1 ? "entity" : "entities"}, ${r.parked_events} event(s)`;
}

function renderRemotes(remotes) {
  for (const tile of document.querySelectorAll("#health .remote")) {
    const r = remotes[tile.dataset.remote];
    const state = r ? REMOTE_STATES[r.state] || "bad" : "idle";
    setTile(tile, state, null);
    tile.dataset.remoteState = r ? r.state : "";
    const label = tile.querySelector(".remote-state");
    label.textContent = r ? r.state : "unknown";
    label.className = `pill ${state} remote-state`;
    const summary = tile.querySelector(".remote-summary");
    // The setting's name is what the operator has to fix (the workers' checks put it in the summary).
    const text = !r ? "not reported" : r.setting && !String(r.summary).includes(r.setting) ? `${r.summary} (setting ${r.setting})` : r.summary;
    summary.textContent = text == null || String(text) === (r && r.state) ? "" : String(text);
    summary.title = summary.textContent;
    summary.className = r && r.state !== "up" ? "remote-summary small error" : "remote-summary small";
    const parked = tile.querySelector(".parked");
    parked.textContent = r ? parkedText(r) : "";
    parked.className = r && r.parked ? "parked small parked-some" : "parked small";
  }
}

const DOMAINS = ["products", "stock", "categories", "customers", "orders"];

function domainState(d) {
  const p99 = d.lag_p99_ms;
  if (d.failed_15m > 0 && !d.applied_15m) return ["bad", "failing"];
  if (p99 != null && p99 >= 300_000) return ["bad", "far behind"];
  if (d.failed_15m > 0) return ["warn", "some failing"];
  if (p99 != null && p99 >= 60_000) return ["warn", "slow"];
  if (!d.applied_15m) return ["idle", "quiet"];
  return ["ok", "ok"];
}

function age(d) {
  if (!d.newest_applied_at) return "never";
  return `${seconds(d.age_seconds)} ago (${clock(d.newest_applied_at)})`;
}

function renderDomains(domains) {
  const missing = domains == null || typeof domains !== "object";
  $("#domains").hidden = missing;
  $("#domains-missing").hidden = !missing;
  if (missing) return;
  const names = [...DOMAINS.filter((n) => n in domains), ...Object.keys(domains).filter((n) => !DOMAINS.includes(n))];
  fillTable(
    $("#domains"),
    names.map((name) => {
      const d = domains[name] || {};
      const [state, word] = domainState(d);
      return el(
        "tr",
        { dataset: { domain: name, state } },
        el("th", { scope: "row" }, name),
        el("td", {}, pill(state, word, "domain-state")),
        el("td", { className: "age" }, age(d)),
        el("td", { className: "num" }, millis(d.lag_p50_ms)),
        el("td", { className: "num" }, millis(d.lag_p99_ms)),
        el("td", { className: "num" }, number(d.applied_15m)),
        el("td", { className: d.failed_15m ? "num error" : "num" }, number(d.failed_15m)),
      );
    }),
  );
}

// ------------------------------------------------------------------------------------------ plots

const W = 320;
const H = 120;
const PAD = { left: 40, right: 8, top: 8, bottom: 20 };

const CHARTS = [
  { id: "received", title: "Webhooks received", lines: [["received", "received"]], fmt: number, total: true },
  { id: "applied", title: "Changes applied", lines: [["applied", "applied"]], fmt: number, total: true },
  { id: "failed", title: "Failures", lines: [["failed", "failed"]], fmt: number, total: true, bad: true },
  { id: "queue", title: "Queue depth", lines: [["queue_depth", "depth"]], fmt: number },
  {
    id: "lag",
    title: "Lag",
    lines: [
      ["lag_p50_ms", "p50"],
      ["lag_p99_ms", "p99"],
    ],
    fmt: millis,
  },
];

let plotWindow = "hour";
let seriesAt = 0;

function lastValue(points, key) {
  for (let i = points.length - 1; i >= 0; i -= 1) if (points[i][key] != null) return points[i][key];
  return null;
}

function chart(spec, points) {
  const values = spec.lines.flatMap(([key]) => points.map((p) => p[key]).filter((v) => v != null));
  const max = Math.max(1, ...values);
  const n = points.length;
  const x = (i) => PAD.left + (n > 1 ? (i * (W - PAD.left - PAD.right)) / (n - 1) : 0);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const graph = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `${spec.title}, last ${plotWindow}`,
    class: "chart",
  });
  const bottom = H - PAD.bottom;
  graph.append(
    svg("line", { x1: PAD.left, y1: bottom, x2: W - PAD.right, y2: bottom, class: "axis" }),
    svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom, class: "axis" }),
    svg("text", { x: PAD.left - 4, y: PAD.top + 8, "text-anchor": "end", class: "tick" }, spec.fmt(max)),
    svg("text", { x: PAD.left - 4, y: bottom, "text-anchor": "end", class: "tick" }, "0"),
  );
  if (n) {
    graph.append(
      svg("text", { x: PAD.left, y: H - 5, class: "tick" }, hm(points[0].t)),
      svg("text", { x: W - PAD.right, y: H - 5, "text-anchor": "end", class: "tick" }, hm(points[n - 1].t)),
    );
  }
  let plotted = 0;
  spec.lines.forEach(([key], index) => {
    // A minute with no value (no sample, no lag measured) leaves a gap, not a drop to zero.
    let d = "";
    let pen = false;
    points.forEach((p, i) => {
      const v = p[key];
      if (v == null) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
      pen = true;
      plotted += 1;
    });
    if (d) graph.append(svg("path", { d: d.trim(), class: `line line-${index}${spec.bad ? " bad" : ""}`, "data-key": key }));
  });
  graph.dataset.points = String(plotted);
  const last = spec.lines
    .map(([key, label]) => `${spec.lines.length > 1 ? `${label} ` : ""}${spec.fmt(lastValue(points, key))}`)
    .join(" · ");
  const total = spec.total ? points.reduce((sum, p) => sum + (p[spec.lines[0][0]] || 0), 0) : null;
  const legend = el(
    "figcaption",
    {},
    el("span", { className: "chart-title" }, spec.title),
    el("span", { className: "chart-last", title: "the newest minute with a value" }, last),
  );
  if (total != null) legend.append(el("span", { className: "chart-total muted" }, `Σ ${number(total)}`));
  return el("figure", { className: "plot", dataset: { chart: spec.id } }, legend, graph);
}

function renderSeries(answer) {
  const missing = answer.status === 404;
  $("#plots-missing").hidden = !missing;
  if (missing) {
    $("#plots-missing").textContent = "Plots: not available on this gateway (no /admin/series).";
    $("#plots").replaceChildren();
    return;
  }
  if (!answer.ok) {
    $("#plots-missing").hidden = false;
    $("#plots-missing").textContent = `Plots: ${problemText(answer)}`;
    return;
  }
  const points = (answer.body && answer.body.points) || [];
  $("#plot-window-label").textContent = answer.body.window === "day" ? "day" : "hour";
  $("#plots").replaceChildren(...CHARTS.map((spec) => chart(spec, points)));
}

async function loadSeries(force) {
  if (!force && Date.now() - seriesAt < SERIES_EVERY_MS) return;
  seriesAt = Date.now();
  renderSeries(await call("GET", `series?window=${plotWindow}`));
}

function setWindow(name) {
  plotWindow = name;
  for (const b of document.querySelectorAll("button.window")) b.setAttribute("aria-pressed", String(b.dataset.window === name));
  loadSeries(true).catch((err) => (err instanceof Unauthorized ? signOut("The gateway refused this token.") : null));
}

// ------------------------------------------------------------------------------------------ jobs

function durationOf(job) {
  const start = Date.parse(job.started || job.created || "");
  if (Number.isNaN(start)) return "–";
  const end = job.finished ? Date.parse(job.finished) : Date.now();
  return Number.isNaN(end) ? "–" : seconds(Math.max(0, (end - start) / 1000));
}

function renderJobs(items) {
  const shown = items.slice(0, JOB_LIMIT);
  fillTable(
    $("#jobs"),
    shown.map((job) => {
      const p = job.progress || {};
      const settled = (p.done || 0) + (p.failed || 0);
      const bar = el("progress", { max: String(p.total || 1) });
      if (p.total != null) bar.value = settled;
      else if (job.status === "done" || job.status === "failed") bar.value = 1;
      else bar.removeAttribute("value"); // indeterminate until the job knows its total
      const label = `${settled}/${p.total == null ? "?" : p.total}${p.failed ? `, ${p.failed} failed` : ""}`;
      const progress = el("td", { className: "progress" }, bar, el("span", { className: "progress-label" }, label));
      if (job.phase || job.phases) {
        // A job made of phases (the initial sync): which one runs, and how far along the list it is.
        const phases = job.phases || [];
        const finished = phases.filter((ph) => ph.status === "done" || ph.status === "skipped").length;
        const text = job.phase ? `phase ${job.phase}` : "phases";
        progress.append(el("div", { className: "phase small" }, phases.length ? `${text} (${finished}/${phases.length})` : text));
      }
      const outcome = el("td", { className: "outcome fill" });
      if (job.status === "waiting" && job.reason) outcome.append(el("div", { className: "clamp", title: job.reason }, job.reason));
      if (job.error) outcome.append(el("div", { className: "error clamp", title: job.error }, job.error));
      if (job.result != null) {
        const line = summarize(job.kind, job.result);
        outcome.append(
          el("div", { className: "summary clamp", title: line }, line),
          details(`job:${job.id}`, "details", jsonBlock(job.result)),
        );
      } else if (!job.error && !(job.status === "waiting" && job.reason)) {
        outcome.append(el("span", { className: "muted" }, job.status === "done" ? "no result" : "…"));
      }
      return el(
        "tr",
        { dataset: { id: job.id, status: job.status, kind: job.kind } },
        el(
          "td",
          { className: "job" },
          el("span", { className: "kind" }, job.kind),
          " ",
          el("span", { className: "id muted", title: job.id }, shortId(job.id)),
          el("div", { className: "small muted" }, `started ${clock(job.started || job.created)}`),
        ),
        el("td", { className: `status status-${job.status}` }, job.status),
        progress,
        el("td", { className: "took" }, durationOf(job)),
        outcome,
      );
    }),
  );
  $("#no-jobs").hidden = items.length > 0;
  return items.some((job) => job.status === "queued" || job.status === "running");
}

// ------------------------------------------------------------------------------------------ reports

const REPORT_STATES = { ok: "ok", partial: "warn", failed: "bad", skipped: "idle" };

function renderReports(reports) {
  const rows = Object.entries(reports).map(([name, report]) => {
    const r = report && typeof report === "object" ? report : { value: report };
    const state = REPORT_STATES[r.status] || "idle";
    const line = r.error ? r.error : summarize(name, r);
    return el(
      "tr",
      { className: "report", dataset: { name } },
      el("td", { className: "kind" }, name),
      el("td", {}, r.status ? pill(state, r.status) : "–"),
      el("td", { className: "small when" }, r.finished ? `${clock(r.finished)}${r.seconds != null ? `, took ${seconds(r.seconds)}` : ""}` : "–"),
      el(
        "td",
        { className: "outcome fill" },
        el("div", { className: r.error ? "error clamp" : "summary clamp", title: line }, line),
        details(`report:${name}`, "details", jsonBlock(report)),
      ),
    );
  });
  fillTable($("#reports"), rows);
  $("#reports").hidden = rows.length === 0;
  $("#no-reports").hidden = rows.length > 0;
}

// ------------------------------------------------------------------------------------------ dead letters

// The listing is read again when the count moves, else every DEAD_LETTER_EVERY_MS: grouping reads up to 2,000
// dead letters, too many to read every second while a job runs.
let deadLetterCache = null;

async function loadDeadLetters(expected) {
  if (expected === 0) return { total: 0, items: [] };
  const c = deadLetterCache;
  if (c && expected != null && c.total === expected && Date.now() - c.at < DEAD_LETTER_EVERY_MS) return c;
  const fresh = await readDeadLetters();
  deadLetterCache = fresh.error ? null : { ...fresh, at: Date.now() };
  return fresh;
}

async function readDeadLetters() {
  const items = [];
  let total = 0;
  for (let page = 0; page < DEAD_LETTER_PAGES; page += 1) {
    const answer = await call("GET", `dead-letters?limit=${DEAD_LETTER_PAGE}&offset=${page * DEAD_LETTER_PAGE}`);
    if (!answer.ok) return { error: problemText(answer) };
    total = answer.body.total;
    items.push(...answer.body.items);
    if (answer.body.items.length < DEAD_LETTER_PAGE || items.length >= total) break;
  }
  return { total, items };
}

// A reason names its record ("attribute set 'Shoes' (primary set of CR-000054) does not exist..."): the words
// holding a digit (SKUs, ids, counts) are what differs between dead letters of one cause, so a group's key is
// the reason with each of them as "…".
const VARIABLE_WORD = /[^\s'"(),:;]*\d[^\s'"(),:;]*/g;
const GROUP_FILTER_MIN = 8;

function reasonSignature(reason) {
  return reason.replace(VARIABLE_WORD, "…");
}

// The bulk replay filters by a text the reason contains: the longest fixed part of the group's signature.
function groupFilter(signature) {
  const parts = signature.split("…").map((part) => part.trim());
  const longest = parts.reduce((best, part) => (part.length > best.length ? part : best), "");
  return longest.length >= GROUP_FILTER_MIN ? longest : "";
}

function groupByReason(items) {
  const groups = new Map();
  for (const dl of items) {
    const text = String(dl.reason == null ? "" : dl.reason);
    const signature = reasonSignature(text);
    if (!groups.has(signature)) groups.set(signature, { signature, example: text, items: [], types: new Set(), newest: "" });
    const g = groups.get(signature);
    g.items.push(dl);
    g.types.add(String(dl.type));
    if (String(dl.failed_at || "") > g.newest) g.newest = String(dl.failed_at || "");
  }
  for (const g of groups.values()) {
    // One dead letter: its own reason, replayed by all of it. Several: the cause, replayed by its fixed part.
    const alone = g.items.length === 1;
    g.reason = alone ? g.example : g.signature;
    g.filter = alone ? g.example : groupFilter(g.signature);
  }
  return [...groups.values()].sort((a, b) => b.items.length - a.items.length || b.newest.localeCompare(a.newest));
}

function deadLetterList(group) {
  const list = el("ul", { className: "dl-items" });
  for (const dl of group.items.slice(0, 20)) {
    const button = el("button", { type: "button", className: "replay small-button", dataset: { id: dl.id } }, "Replay");
    button.addEventListener("click", () => replay(dl.id, button));
    list.append(
      el(
        "li",
        { dataset: { id: dl.id } },
        el("span", { className: "entity" }, dl.entity),
        ` · ${dl.type} · ${plural(dl.attempts || 0, "try", "tries")} · ${clock(dl.failed_at)} · `,
        el("span", { className: "id", title: (dl.event_ids || []).join(", ") }, (dl.event_ids || []).map(shortId).join(", ")),
        " ",
        button,
      ),
    );
  }
  if (group.items.length > 20) list.append(el("li", { className: "muted" }, `and ${group.items.length - 20} more`));
  return list;
}

function renderDeadLetters(page) {
  const groups = groupByReason(page.items || []);
  fillTable(
    $("#dead-letters"),
    groups.map((g) => {
      const button = el("button", { type: "button", className: "replay-group" }, "Replay this group");
      // The bulk replay filter needs enough fixed text; otherwise the group's dead letters are replayed one by one.
      if (!/\S/.test(g.filter)) button.disabled = true;
      button.addEventListener("click", () => replayGroup(g, button));
      const reasonText = g.reason || "(no reason)";
      return el(
        "tr",
        { className: "dl-group", dataset: { count: String(g.items.length) } },
        el(
          "td",
          { className: "reason fill" },
          el("div", { className: "error clamp", title: reasonText }, reasonText),
          details(`dl:${g.reason}`, `${plural(g.items.length, "entity", "entities")}`, deadLetterList(g)),
        ),
        el("td", { className: "num dl-count" }, g.items.length),
        el("td", { className: "small" }, [...g.types].join(", ")),
        el("td", { className: "small when" }, clock(g.newest)),
        el("td", {}, button),
      );
    }),
  );
  const total = page.total || 0;
  const note = $("#dead-letters-note");
  note.hidden = !(total > (page.items || []).length);
  note.textContent = note.hidden ? "" : `Grouped from the newest ${page.items.length} of ${total}.`;
  $("#no-dead-letters").hidden = groups.length > 0;
}

// ------------------------------------------------------------------------------------------ events

function renderEvents(items) {
  fillTable(
    $("#events"),
    items.map((e) =>
      el(
        "tr",
        { dataset: { id: e.id, source: e.source } },
        el("td", { className: "small when" }, clock(e.received_at)),
        el("td", { className: "id", title: `${e.source} ${e.id}` }, shortId(e.id)),
        el("td", { className: "small" }, e.type),
        el("td", { className: "entity small" }, e.entity),
        el("td", { className: `status status-${e.status}` }, e.status),
        el("td", { className: "num" }, e.attempts),
        el("td", { className: "fill" }, el("div", { className: e.last_error ? "error one-line" : "one-line", title: e.last_error || "" }, e.last_error)),
      ),
    ),
  );
}

// ------------------------------------------------------------------------------------------ search

function timelineTable(timeline) {
  const head = el("tr", {}, ...["At", "What", "Type", "Ref", "Job", "Try", "Error or detail"].map((h) => el("th", {}, h)));
  const rows = timeline.map((t) => {
    const detail = t.error || (t.detail == null ? null : compact(t.detail));
    return el(
      "tr",
      { className: "step" },
      el("td", { className: "small when" }, when(t.at)),
      el("td", { className: `status status-${t.what}` }, t.what),
      el("td", { className: "small" }, t.type),
      el("td", { className: "id", title: t.ref == null ? "" : String(t.ref) }, t.ref == null ? null : shortId(t.ref)),
      el("td", { className: "id", title: t.job == null ? "" : String(t.job) }, t.job == null ? null : shortId(t.job)),
      el("td", { className: "num" }, t.attempt),
      el("td", { className: t.error ? "error fill" : "small fill" }, el("div", { className: "one-line", title: detail || "" }, detail)),
    );
  });
  return el("table", { className: "compact timeline" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

function renderTrace(body) {
  const matches = body.matches || [];
  $("#trace").replaceChildren(
    ...matches.map((m) =>
      el(
        "div",
        { className: "match", dataset: { entity: m.entity } },
        el(
          "h3",
          {},
          el("span", { className: "entity" }, m.entity),
          el("span", { className: "muted small" }, ` ${m.source || ""} ${m.kind || ""}`),
          (m.aliases || []).length ? el("span", { className: "muted small" }, ` also known as ${(m.aliases || []).join(", ")}`) : "",
        ),
        timelineTable(m.timeline || []),
      ),
    ),
  );
}

async function search(event) {
  event.preventDefault();
  const q = $("#search").value.trim();
  const message = $("#search-message");
  $("#search-clear").hidden = !q;
  if (!q) {
    clearSearch();
    return;
  }
  message.textContent = "Looking…";
  try {
    const answer = await call("GET", `trace?q=${encodeURIComponent(q)}`);
    if (answer.ok) {
      const n = (answer.body.matches || []).length;
      message.textContent = `${plural(n, "entity", "entities")} for “${q}”.`;
      renderTrace(answer.body);
    } else if (answer.status === 404 && isProblem(answer, "trace-not-found")) {
      message.textContent = `Nothing kept in the event log goes by “${q}”.`;
      $("#trace").replaceChildren();
    } else if (answer.status === 404) {
      message.textContent = "Search: not available on this gateway (no /admin/trace).";
      $("#trace").replaceChildren();
    } else {
      message.textContent = `Search: ${problemText(answer)}`;
      $("#trace").replaceChildren();
    }
  } catch (err) {
    if (err instanceof Unauthorized) return signOut("The gateway refused this token.");
    message.textContent = `Search failed: ${err.message}`;
  }
}

function clearSearch() {
  $("#search").value = "";
  $("#search-message").textContent = "";
  $("#search-clear").hidden = true;
  $("#trace").replaceChildren();
}

// ------------------------------------------------------------------------------------------ refreshing

let timer = null;
// Each refresh takes a number; only the newest one renders and schedules the next, so a click's refresh and
// the timer's never draw stale data over fresh or start two timer chains.
let generation = 0;

async function loadEvents() {
  if (!$("#failures-only").checked) {
    const answer = await call("GET", `events?limit=${EVENT_LIMIT}`);
    return answer.ok ? answer.body.items : null;
  }
  const answers = await Promise.all(["failed", "dead"].map((s) => call("GET", `events?limit=${EVENT_LIMIT}&status=${s}`)));
  if (!answers.every((a) => a.ok)) return null;
  const merged = answers.flatMap((a) => a.body.items);
  merged.sort((a, b) => String(b.received_at).localeCompare(String(a.received_at)));
  return merged.slice(0, EVENT_LIMIT);
}

async function refresh() {
  window.clearTimeout(timer);
  const mine = ++generation;
  let busy = false;
  try {
    const status = await call("GET", "status");
    const [events, deadLetters, jobs] = await Promise.all([
      loadEvents(),
      loadDeadLetters(status.body ? status.body.dead_letters : undefined),
      call("GET", "jobs"),
      loadSeries(false),
    ]);
    if (mine !== generation) return;
    renderStatus(status);
    const problems = [];
    if (status.status !== 200) problems.push("Redis is not answering: nothing can be queued or read.");
    if (events) renderEvents(events);
    if (deadLetters.error) problems.push(`Dead letters: ${deadLetters.error}`);
    else renderDeadLetters(deadLetters);
    if (jobs.ok) busy = renderJobs(jobs.body.items);
    setBanner(problems.join(" "));
    $("#refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof Unauthorized) {
      signOut("The gateway refused this token.");
      return;
    }
    setBanner(`The gateway is not answering (${err.message}); retrying.`);
  }
  timer = window.setTimeout(refresh, busy ? BUSY_REFRESH_MS : REFRESH_MS);
}

// ------------------------------------------------------------------------------------------ actions

async function replay(id, button) {
  button.disabled = true;
  try {
    const answer = await call("POST", `dead-letters/${encodeURIComponent(id)}/replay`);
    if (answer.status === 202) {
      const n = (answer.body.event_ids || []).length;
      $("#action-message").textContent = `Dead letter ${id} replayed: ${n} event(s) queued again.`;
    } else {
      $("#action-message").textContent = `Dead letter ${id}: ${problemText(answer)}`;
    }
  } catch (err) {
    if (err instanceof Unauthorized) return signOut("The gateway refused this token.");
    $("#action-message").textContent = `Replay failed: ${err.message}`;
  }
  deadLetterCache = null; // what was replayed must go from the groups now
  await refresh();
}

async function replayGroup(group, button) {
  // The bulk replay takes every dead letter whose reason contains this text (case-insensitive): the whole
  // group, and any dead letter arrived since with the same cause.
  const reason = group.filter.slice(0, REPLAY_REASON_MAX);
  if (!window.confirm(`Replay every dead letter whose reason contains “${reason}” (${group.items.length} in this group)?`)) return;
  button.disabled = true;
  try {
    const answer = await call("POST", "dead-letters/replay", { reason });
    $("#action-message").textContent = answer.ok
      ? `Replayed ${plural(answer.body.replayed, "dead letter")} (${answer.body.events} event(s) queued again).`
      : `Replay of the group failed: ${problemText(answer)}`;
  } catch (err) {
    if (err instanceof Unauthorized) return signOut("The gateway refused this token.");
    $("#action-message").textContent = `Replay failed: ${err.message}`;
  }
  deadLetterCache = null; // what was replayed must go from the groups now
  await refresh();
}

async function startJob(button) {
  const { action, kind } = button.dataset;
  const dryRun = button.dataset.dryRun === "true";
  const what = action === "resync" ? `a resync of every ${kind.replace(/s$/, "")}` : "an inventory reconciliation";
  // A full resync reads every record of both systems: worth a second thought; a dry run writes nothing.
  if (!dryRun && !window.confirm(`Start ${what}?`)) return;
  const path = action === "resync" ? `resync/${kind}` : `reconcile/inventory?dry_run=${dryRun}`;
  try {
    const answer = await call("POST", path);
    $("#action-message").textContent =
      answer.status === 202 ? `Started job ${answer.body.job_id}.` : `Could not start: ${problemText(answer)}`;
  } catch (err) {
    if (err instanceof Unauthorized) return signOut("The gateway refused this token.");
    $("#action-message").textContent = `Could not start: ${err.message}`;
  }
  await refresh();
}

// ------------------------------------------------------------------------------------------ signing in

function show(signedIn) {
  $("#login").hidden = signedIn;
  $("#dashboard").hidden = !signedIn;
  $("#logout").hidden = !signedIn;
}

function signOut(message) {
  window.clearTimeout(timer);
  generation += 1; // a refresh still in flight must not draw or reschedule
  window.sessionStorage.removeItem(TOKEN_KEY);
  setBanner("");
  $("#redis-state").hidden = true;
  $("#refreshed").textContent = "";
  $("#login-error").textContent = message || "";
  seriesAt = 0;
  deadLetterCache = null;
  openDetails.clear();
  clearSearch();
  show(false);
  $("#token").focus();
}

function signIn(event) {
  event.preventDefault();
  const value = $("#token").value.trim();
  if (!value) return;
  window.sessionStorage.setItem(TOKEN_KEY, value);
  $("#token").value = "";
  $("#login-error").textContent = "";
  show(true);
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", signIn);
  $("#logout").addEventListener("click", () => signOut(""));
  $("#failures-only").addEventListener("change", refresh);
  $("#search-form").addEventListener("submit", search);
  $("#search-clear").addEventListener("click", clearSearch);
  for (const button of document.querySelectorAll("button.window")) {
    button.addEventListener("click", () => setWindow(button.dataset.window));
  }
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => startJob(button));
  }
  if (token()) {
    show(true);
    refresh();
  } else {
    signOut("");
  }
});
