// The crmagento admin dashboard: reads the admin API every few seconds and renders it. Plain JS, no build.
// Everything from the API is put in the page with textContent, never as HTML: event data and error
// messages come from outside and must not run as script in a page that holds the admin token.
"use strict";

const TOKEN_KEY = "crmagento.adminToken";
const REFRESH_MS = 3000;
const BUSY_REFRESH_MS = 1000; // while an admin job is queued or running, so its progress moves visibly
const EVENT_LIMIT = 25;

class Unauthorized extends Error {}

// API paths are relative to the page (/admin/ui -> /admin/status), so a proxy's path prefix is kept.
function apiUrl(path) {
  return new URL(path, window.location.href);
}

function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

async function call(method, path) {
  const resp = await fetch(apiUrl(path), {
    method,
    headers: { Authorization: `Bearer ${token()}`, Accept: "application/json" },
    cache: "no-store",
  });
  if (resp.status === 401) throw new Unauthorized();
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  return { status: resp.status, ok: resp.ok, body };
}

function problemText(answer) {
  const b = answer.body || {};
  return b.detail || b.title || `HTTP ${answer.status}`;
}

// ------------------------------------------------------------------------------------------ DOM helpers

const $ = (sel) => document.querySelector(sel);

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

function fillTable(table, rows) {
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren(...rows);
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function compact(value) {
  if (value == null) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function setBanner(message) {
  const banner = $("#banner");
  banner.textContent = message || "";
  banner.hidden = !message;
}

// ------------------------------------------------------------------------------------------ rendering

function renderStatus(answer) {
  const s = answer.body || {};
  const redis = $("#redis-state");
  redis.hidden = false;
  redis.textContent = s.redis === "ok" ? "Redis ok" : "Redis unavailable";
  redis.className = s.redis === "ok" ? "pill ok" : "pill bad";
  $("#queue-depth").textContent = compact(s.queue_depth);
  $("#worker-count").textContent = compact((s.workers || []).length);
  $("#dead-letter-count").textContent = compact(s.dead_letters);
  $("#recent-count").textContent = compact(s.recent_events);
  const outcomes = Object.entries(s.jobs || {}).map(([k, v]) => `${k} ${v}`);
  $("#outcomes").textContent = outcomes.length ? `Event outcomes so far: ${outcomes.join(", ")}` : "";

  const workers = s.workers || [];
  fillTable(
    $("#workers"),
    workers.map((w) =>
      el(
        "tr",
        { dataset: { id: w.id } },
        el("td", {}, w.id),
        el("td", {}, w.host),
        el("td", {}, w.pid),
        el("td", {}, w.jobs_running),
        el("td", { className: w.age_seconds > 60 ? "stale" : "" }, `${w.age_seconds} s`),
      ),
    ),
  );
  $("#no-workers").hidden = workers.length > 0 || s.redis !== "ok";
  renderRemotes(s.remotes || {});
  renderReports(s.reports || {});
}

const REMOTE_LABELS = { magento: "Magento", cloudretailer: "Cloud Retailer" };
const REMOTE_PILLS = { up: "pill ok", unavailable: "pill warn", misconfigured: "pill bad" };

function parkedText(r) {
  if (!r.parked) return "none";
  return `${r.parked} ${r.parked === 1 ? "entity" : "entities"}, ${r.parked_events} event(s)`;
}

function renderRemotes(remotes) {
  fillTable(
    $("#remotes"),
    Object.entries(remotes).map(([name, r]) =>
      el(
        "tr",
        { dataset: { remote: name, state: r.state } },
        el("td", {}, REMOTE_LABELS[name] || name),
        el("td", {}, el("span", { className: `${REMOTE_PILLS[r.state] || "pill bad"} remote-state` }, r.state)),
        // The setting's name is what the operator has to fix (the workers' checks put it in the summary).
        el(
          "td",
          { className: r.state === "up" ? "remote-summary" : "remote-summary error" },
          r.setting && !r.summary.includes(r.setting) ? `${r.summary} (setting ${r.setting})` : r.summary,
        ),
        el("td", { className: r.parked ? "parked parked-some" : "parked" }, parkedText(r)),
      ),
    ),
  );
}

function renderReports(reports) {
  const boxes = Object.entries(reports).map(([name, report]) => {
    const fields = report && typeof report === "object" ? Object.entries(report) : [["value", report]];
    const dl = el("dl");
    for (const [key, value] of fields) dl.append(el("dt", {}, key), el("dd", {}, compact(value)));
    return el("div", { className: "report", dataset: { name } }, el("h3", {}, name), dl);
  });
  const holder = $("#reports");
  holder.replaceChildren(...(boxes.length ? boxes : [el("p", { className: "muted" }, "No report yet.")]));
}

function renderEvents(items) {
  fillTable(
    $("#events"),
    items.map((e) =>
      el(
        "tr",
        { dataset: { id: e.id, source: e.source } },
        el("td", {}, when(e.received_at)),
        el("td", { className: "id" }, e.id),
        el("td", {}, e.source),
        el("td", {}, e.type),
        el("td", {}, e.entity),
        el("td", { className: `status status-${e.status}` }, e.status),
        el("td", {}, e.attempts),
        el("td", { className: e.last_error ? "error" : "" }, e.last_error),
      ),
    ),
  );
}

function renderDeadLetters(page) {
  const items = page.items || [];
  fillTable(
    $("#dead-letters"),
    items.map((dl) => {
      const button = el("button", { type: "button", className: "replay", dataset: { id: dl.id } }, "Replay");
      button.addEventListener("click", () => replay(dl.id, button));
      return el(
        "tr",
        { dataset: { id: dl.id } },
        el("td", {}, when(dl.failed_at)),
        el("td", {}, dl.entity),
        el("td", {}, dl.type),
        el("td", {}, dl.attempts),
        el("td", { className: "error" }, dl.reason),
        el("td", { className: "id" }, (dl.event_ids || []).join(", ")),
        el("td", {}, button),
      );
    }),
  );
  $("#no-dead-letters").hidden = items.length > 0;
}

function renderJobs(items) {
  fillTable(
    $("#jobs"),
    items.map((job) => {
      const p = job.progress || {};
      const settled = (p.done || 0) + (p.failed || 0);
      const bar = el("progress", { max: String(p.total || 1) });
      if (p.total != null) bar.value = settled;
      else if (job.status === "done" || job.status === "failed") bar.value = 1;
      else bar.removeAttribute("value"); // indeterminate until the job knows its total
      const label = `${settled}/${p.total == null ? "?" : p.total}${p.failed ? `, ${p.failed} failed` : ""}`;
      const outcome = job.error || (job.result ? compact(job.result) : null);
      return el(
        "tr",
        { dataset: { id: job.id, status: job.status } },
        el("td", { className: "id" }, job.id),
        el("td", { className: `status status-${job.status}` }, job.status),
        el("td", {}, bar, el("span", { className: "progress-label" }, label)),
        el("td", {}, when(job.created)),
        el("td", {}, when(job.finished)),
        el("td", { className: job.error ? "error" : "" }, outcome),
      );
    }),
  );
  return items.some((job) => job.status === "queued" || job.status === "running");
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
    const [status, events, deadLetters, jobs] = await Promise.all([
      call("GET", "status"),
      loadEvents(),
      call("GET", "dead-letters?limit=50"),
      call("GET", "jobs"),
    ]);
    if (mine !== generation) return;
    renderStatus(status);
    const problems = [];
    if (status.status !== 200) problems.push("Redis is not answering: nothing can be queued or read.");
    if (events) renderEvents(events);
    if (deadLetters.ok) renderDeadLetters(deadLetters.body);
    else problems.push(`Dead letters: ${problemText(deadLetters)}`);
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
