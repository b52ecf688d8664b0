"use strict";

const REFRESH_MS = 2000;          /* every view reloads this often */
const LOG_POLL_MS = 1000;         /* a followed log asks for more this often */
const LOG_MAX_CHARS = 4 << 20;    /* older output is dropped beyond this */
const ENDED = ["success", "failed", "upstream_failed", "skipped", "cancelled"];

const $ = (id) => document.getElementById(id);

/* ---- HTML building: html`...` escapes every value unless it is raw() ---- */

class Raw { constructor(s) { this.s = s; } }
const raw = (s) => new Raw(s);

function esc(v) {
  const map = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g, (c) => map[c]);
}

function part(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(part).join("");
  return esc(v);
}

function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += part(v) + strings[i + 1]; });
  return raw(out);
}

/* ---- API: every request of the page goes through api() ---- */

/* A scheduler with --api-tokens answers 401 without a bearer token: the page
 * asks for one once (one prompt for every request waiting on it), keeps it
 * in this tab's sessionStorage and sends it on every call. */
const TOKEN_KEY = "cairn.api-token";
let tokenAsk = null;

function storedToken() {
  try {
    const t = window.sessionStorage.getItem(TOKEN_KEY);
    return typeof t === "string" ? t : "";
  } catch (e) { return ""; }
}

/* The token to retry with after a 401 to a request sent with `sent`: one
 * stored since (another request asked already), else the user's answer. */
function askToken(sent) {
  const now = storedToken();
  if (now && now !== sent) return Promise.resolve(now);
  const refused = sent !== "";
  if (!tokenAsk) {
    tokenAsk = Promise.resolve().then(() => {
      const t = window.prompt(refused ? "That token was refused. API token:" :
                              "This scheduler needs an API token (cairn tokens create):", "");
      const tok = typeof t === "string" ? t.trim() : "";
      try { window.sessionStorage.setItem(TOKEN_KEY, tok); } catch (e) { /* private mode */ }
      return tok;
    }).finally(() => { tokenAsk = null; });
  }
  return tokenAsk;
}

function apiFetch(path, opts) {
  const o = Object.assign({}, opts || {});
  o.headers = Object.assign({ Accept: "application/json" }, o.headers || {});
  const tok = storedToken();
  if (tok) o.headers.Authorization = "Bearer " + tok;
  if (o.method && o.method !== "GET" && o.method !== "HEAD")
    o.headers["Content-Type"] = "application/json";
  return fetch("api/v1/" + path, o).then(async (res) => {
    if (res.status !== 401) return res;
    const t = await askToken(tok);
    if (!t) return res;
    o.headers.Authorization = "Bearer " + t;
    return fetch("api/v1/" + path, o);
  });
}

/* api(path, {method, body, raw}): path is under api/v1/ (relative, so the
 * page works behind a path prefix); body is sent as JSON. Resolves to the
 * answer's JSON (raw: the Response itself, for downloads); rejects with an
 * Error carrying .status and .body. */
/* The last 200 answer of each GET path with its ETag: asked again with
 * If-None-Match, a 304 (nothing changed) gives that answer back without a
 * body downloaded or parsed. Answers are shared: callers do not change them. */
const etagCache = new Map();  /* path -> {etag, body, size} */
const ETAG_CACHE_MAX = 200, ETAG_CACHE_BYTES = 32 << 20;
let etagBytes = 0;
let apiStats = { requests: 0, notModified: 0 };  /* for the tests (window.cairnApiStats) */
window.cairnApiStats = () => Object.assign({}, apiStats);

async function api(path, opts) {
  opts = opts || {};
  const init = { method: opts.method || "GET", headers: { Accept: "application/json" } };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  const poll = init.method === "GET" && !opts.raw;
  const had = poll ? etagCache.get(path) : null;
  if (had) init.headers["If-None-Match"] = had.etag;
  if (poll) init.cache = "no-store";  /* the 304 comes to us, not to the browser's cache */
  const res = await apiFetch(path, init);
  apiStats.requests++;
  if (had && res.status === 304) { apiStats.notModified++; return had.body; }
  if (opts.raw && res.ok) return res;
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (poll && res.ok && res.headers.get("ETag")) {
    const size = Number(res.headers.get("Content-Length")) || 0;
    if (had) etagBytes -= had.size;
    if (etagCache.size >= ETAG_CACHE_MAX || etagBytes + size > ETAG_CACHE_BYTES) {
      etagCache.clear();
      etagBytes = 0;
    }
    etagCache.set(path, { etag: res.headers.get("ETag"), body: body, size: size });
    etagBytes += size;
  }
  if (!res.ok) {
    const err = new Error(body && body.error ? body.error.message : "HTTP " + res.status);
    err.status = res.status;
    err.body = body;
    throw err;
  }
  return body;
}

/* Whether this user may act (trigger, clear, retry, cancel, pause): every
 * action button is drawn only when it is true. */
let userRole = null;  /* from GET whoami; null until it answered */
function canAct() { return userRole === "operator" || userRole === "admin"; }

/* A state's letter, shown beside its colour (colour is never the only cue). */
const STATE_LETTER = { success: "S", failed: "F", running: "R", queued: "Q", leased: "L",
                       pending: "P", up_for_retry: "U", upstream_failed: "X", skipped: "K",
                       cancelled: "C", publishing: "B", paused: "Z" };
const letter = (state) => STATE_LETTER[state] || (state ? "?" : "");

const enc = encodeURIComponent;

function query(params) {
  const keys = Object.keys(params).filter((k) => params[k] !== undefined &&
                                                 params[k] !== null && params[k] !== "");
  return keys.length ? "?" + keys.map((k) => enc(k) + "=" + enc(params[k])).join("&") : "";
}

const runPath = (dag, run, tail, params) =>
  "runs/" + enc(run) + (tail || "") + query(Object.assign({ dag: dag }, params));
const taskPath = (dag, run, task, what, params) =>
  runPath(dag, run, "/tasks/" + enc(task) + what, params);

/* Location hashes: #/dags, #/dag/D[/grid|/source|/params|/metrics], #/runs?dag=D&state=S,
 * #/run/DAG/RUN[/TASK[/ATTEMPT]], #/backfills, #/workers, #/models */
const route = (...parts) => "#/" + parts.map(enc).join("/");

/* ---- formatting ---- */

const pad = (n) => String(n).padStart(2, "0");

/* Local time "2026-11-23 10:00:01"; only "10:00:01" if on the same day as ref. */
function fmtTime(iso, ref) {
  const d = new Date(iso);
  if (!iso || isNaN(d)) return iso || "";
  const hms = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  if (ref && new Date(ref).toDateString() === d.toDateString()) return hms;
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + hms;
}

function fmtDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "";
  ms = Math.max(0, Math.round(ms));
  const s = Math.floor(ms / 1000);
  if (ms < 1000) return ms + "ms";
  if (s < 60) return s + "." + Math.floor((ms % 1000) / 100) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + pad(s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + pad(Math.floor((s % 3600) / 60)) + "m";
  return Math.floor(s / 86400) + "d" + pad(Math.floor((s % 86400) / 3600)) + "h";
}

/* A run's or task's duration; still counting while it runs. */
function duration(o) {
  if (o.duration_ms !== null && o.duration_ms !== undefined) return fmtDuration(o.duration_ms);
  if (!o.started_at) return "";
  const end = o.ended_at ? Date.parse(o.ended_at) : Date.now();
  return fmtDuration(end - Date.parse(o.started_at));
}

function ago(iso) {
  if (!iso) return "";
  const ms = Date.now() - Date.parse(iso);
  return (ms < 60000 ? Math.max(0, Math.floor(ms / 1000)) + "s" : fmtDuration(ms)) + " ago";
}

function exitText(t) {
  if (t.timed_out) return "timeout";
  if (t.oom_killed) return "oom";
  if (t.signal !== null && t.signal !== undefined) {
    return typeof t.signal === "number" ? "signal " + t.signal : String(t.signal);
  }
  return t.exit_code !== null && t.exit_code !== undefined ? String(t.exit_code) : "";
}

const none = raw('<span class="muted">–</span>');
const orNone = (v) => (v === null || v === undefined || v === "" ? none : v);
const time = (iso, ref) => (iso ? html`<span title="${iso}">${fmtTime(iso, ref)}</span>` : none);
const badge = (state, label) =>
  html`<span class="badge s-${state}" data-state="${state}"><b class="letter">${letter(state)
    }</b>${label || String(state).replace(/_/g, " ")}</span>`;
const short = (version) => (version ? html`<span title="${version}">${version.slice(0, 12)}</span>`
                                    : none);

/* columns: [title, "num"?]...; rows: html rows. */
function table(columns, rows, emptyText) {
  if (!rows.length) return html`<div class="panel"><div class="empty">${emptyText}</div></div>`;
  const head = columns.map((c) => html`<th class="${c[1] || ""}">${c[0]}</th>`);
  return html`<div class="panel"><table><thead><tr>${head}</tr></thead>
    <tbody>${rows}</tbody></table></div>`;
}

function fmtSize(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}
