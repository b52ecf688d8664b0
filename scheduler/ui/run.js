/* ---- the run page: #/run/D/R[/TASK[/ATTEMPT]] ---- */

const attemptCache = new Map();  /* dag/run/task -> attempts, once the task ended */

async function taskAttempts(dag, runId, t) {
  const key = dag + "/" + runId + "/" + t.task;
  const c = attemptCache.get(key);
  if (c && c.n === t.attempts && c.state === t.state) return c.attempts;
  const a = (await api(taskPath(dag, runId, t.task, "/attempts"))).attempts || [];
  if (attemptCache.size > 2000) attemptCache.clear();
  if (ENDED.includes(t.state)) attemptCache.set(key, { n: t.attempts, state: t.state, attempts: a });
  return a;
}

function taskNote(t) {
  if (t.cached_from) return "cached from " + t.cached_from.run_id + " (attempt " +
                            t.cached_from.attempt + ")";
  if (t.published) return "published to " + t.published.path;
  if (t.state === "up_for_retry" && t.next_retry_at) return "retry at " +
                                                          fmtTime(t.next_retry_at, Date.now());
  return "";
}

/* What made an event run (its `event`), as one line. */
function eventText(e) {
  if (!e) return "";
  const dg = (x) => (x ? String(x).slice(0, 12) : "?");
  if (e.kind === "on_file") return `on_file ${e.path} (sha256 ${dg(e.digest)})`;
  if (e.kind === "on_publish") return `on_publish ${e.source} release ${e.release_id} (sha256 ${dg(e.release_digest)})`;
  if (e.kind === "on_webhook") return `on_webhook ${JSON.stringify(e.params || {})}`;
  if (e.kind === "all") return `all: ${(e.events || []).map(eventText).join("; ")}`;
  return String(e.kind);
}

async function viewRun(dag, runId, selected, attempt, qp) {
  const [r, d] = await Promise.all([runGet(dag, runId), dagDetail(dag).catch(() => null)]);
  dag = r.dag;
  const tasks = r.tasks || [];
  const byTask = new Map(tasks.map((t) => [t.task, t]));
  const spec = d && d.task_list ? d.task_list : tasks.map((t) => ({ task: t.task, needs: [] }));
  const needs = new Map(spec.map((t) => [t.task, t.needs || []]));
  const params = Object.keys(r.params_effective || r.params || {}).map((k) => {
    const v = (r.params_effective || r.params)[k];
    const given = r.params && k in r.params;
    return html`<span class="chip mono ${given ? "" : "muted"}" title="${given ? "given" :
      "default"}">${k}=${typeof v === "string" ? v : JSON.stringify(v)}</span>`;
  });
  const summary = Object.keys(r.task_counts || {}).map((s) =>
    [badge(s, r.task_counts[s] + " " + s.replace(/_/g, " ")), " "]);
  const rows = tasks.map((t) => html`<tr data-href="${route("run", dag, r.run_id, t.task)}"
      class="${t.task === selected ? "selected" : ""}" data-task="${t.task}" data-state="${t.state}">
    <td><strong>${t.task}</strong>${t.map ? html` <span class="muted">×${t.map.n}</span>` : ""}</td>
    <td>${badge(t.state, t.cached ? "success (cached)" : undefined)}</td>
    <td class="num">${t.attempts}<span class="muted">${t.max_attempts ? "/" + t.max_attempts
                                                                        : ""}</span></td>
    <td>${orNone(t.worker)}</td><td class="nowrap">${time(t.started_at)}</td>
    <td class="num">${duration(t)}</td><td class="num mono">${orNone(exitText(t))}</td>
    <td class="err-cell" title="${t.error || ""}">${(t.error || "").split("\n")[0]}</td>
    <td class="note-cell muted" title="${taskNote(t)}">${taskNote(t)}</td></tr>`);
  const acts = canAct() ? html`<span class="actions">
    ${r.state === "failed" || r.state === "cancelled" ? html`<button data-act="retry"
      data-dag="${dag}" data-run="${r.run_id}">Retry failed</button>` : ""}
    ${r.state === "queued" || r.state === "running" ? html`<button data-act="cancel" class="danger"
      data-dag="${dag}" data-run="${r.run_id}">Cancel run</button>` : ""}</span>` : "";
  let gantt = "";
  if (tasks.length <= 500) {
    const withAttempts = await Promise.all(tasks.map(async (t) => ({ t: t,
      attempts: t.attempts > 1 ? await taskAttempts(dag, r.run_id, t) : null })));
    gantt = ganttSvg(dag, r, withAttempts, needs);
  }
  let panel = "";
  if (selected) {
    const t = byTask.get(selected);
    panel = t ? await taskPanel(dag, r, t, attempt, (qp || {}).lineage)
              : html`<div class="banner">No task ${selected} in this run.</div>`;
  }
  const lay = graphLayout(dag + "@" + (d ? d.version : r.dag_version), spec);
  return html`<div data-view="run" data-dag="${dag}" data-run="${r.run_id}" data-state="${r.state}">
    <h1>Run <span class="mono">${r.run_id}</span> ${badge(r.state)} ${acts}</h1>
    <div class="panel"><dl class="meta">
      <dt>DAG</dt><dd><a href="${route("dag", dag)}">${dag}</a></dd>
      <dt>Type</dt><dd>${orNone(r.run_type)}${r.backfill_id ? html` · backfill
        <span class="mono">${r.backfill_id}</span>` : ""}${r.event ? html` ·
        <span class="mono">${eventText(r.event)}</span>` : ""}</dd>
      <dt>Logical date</dt><dd>${time(r.logical_date)}</dd>
      <dt>Started</dt><dd>${time(r.started_at)}</dd><dt>Ended</dt><dd>${time(r.ended_at)}</dd>
      <dt>Duration</dt><dd>${orNone(duration(r))}</dd>
      <dt>Version</dt><dd class="mono">${r.dag_version ? html`<a data-link="source"
        href="${route("dag", dag, "source") + query({ run: r.run_id })}">${short(r.dag_version)
        }</a> <span class="muted">(its YAML)</span>` : none}</dd>
      <dt>Params</dt><dd>${params.length ? params : none}</dd>
    </dl></div>
    ${panel}
    <h2>Graph</h2>${graphSvg(spec, lay, (n) => byTask.get(n), selected)}
    <h2>Tasks ${summary}</h2>
    ${table([["Task"], ["State"], ["Attempts", "num"], ["Worker"], ["Started"], ["Duration", "num"],
             ["Exit", "num"], ["Error"], ["Note"]], rows, "No tasks.")}
    ${gantt ? html`<h2>Timeline</h2>${gantt}` : ""}</div>`;
}

/* The critical path: from the task that ended last, back through the
 * upstream it waited for longest (the one that ended last). */
function criticalPath(tasks, needs) {
  const byName = new Map(tasks.map((t) => [t.task, t]));
  const end = (t) => (t.ended_at ? Date.parse(t.ended_at) : t.started_at ? Date.now() : -1);
  let cur = null;
  for (const t of tasks) if (end(t) >= 0 && (!cur || end(t) > end(cur))) cur = t;
  const path = new Set();
  while (cur && !path.has(cur.task)) {
    path.add(cur.task);
    let next = null;
    for (const n of needs.get(cur.task) || []) {
      const u = byName.get(n);
      if (u && end(u) >= 0 && (!next || end(u) > end(next))) next = u;
    }
    cur = next;
  }
  return path;
}

/* A bar per attempt: queued (light) then running, coloured by its state. */
function ganttSvg(dag, r, items, needs) {
  const shown = items.filter((x) => x.t.started_at || x.t.queued_at);
  if (!shown.length) return html`<div class="panel" data-view="gantt"><div class="empty">Nothing
    has started yet.</div></div>`;
  const ms = (s) => (s ? Date.parse(s) : null);
  const now = Date.now();
  let t0 = Infinity, t1 = -Infinity;
  for (const x of shown) {
    const spans = x.attempts || [x.t];
    for (const a of spans) {
      const s = ms(a.started_at), e = ms(a.ended_at) || now;
      if (s !== null) { t0 = Math.min(t0, s); t1 = Math.max(t1, e); }
    }
    if (x.t.queued_at) { t0 = Math.min(t0, ms(x.t.queued_at)); }
  }
  if (!(t1 > t0)) t1 = t0 + 1000;
  const crit = criticalPath(shown.map((x) => x.t), needs);
  const LW = 170, W = 1300, RH = 20;
  const X = (v) => LW + ((v - t0) * (W - LW - 10)) / (t1 - t0);
  const out = [];
  shown.forEach((x, i) => {
    const y = 4 + i * RH;
    const c = crit.has(x.t.task);
    out.push('<text class="glabel' + (c ? " critical" : "") + '" x="4" y="' + (y + 13) + '">' +
             esc(x.t.task.length > 24 ? x.t.task.slice(0, 23) + "…" : x.t.task) + "</text>");
    const spans = x.attempts || [Object.assign({ attempt: x.t.attempts }, x.t)];
    const last = spans[spans.length - 1];
    if (x.t.queued_at && last && last.started_at && ms(x.t.queued_at) <= ms(last.started_at)) {
      out.push('<rect class="gqueued" x="' + X(ms(x.t.queued_at)).toFixed(1) + '" y="' + (y + 5) +
        '" width="' + Math.max(1, X(ms(last.started_at)) - X(ms(x.t.queued_at))).toFixed(1) +
        '" height="8"><title>' + esc(x.t.task + " queued " + fmtTime(x.t.queued_at)) +
        "</title></rect>");
    }
    for (const a of spans) {
      if (!a.started_at) continue;
      const s = X(ms(a.started_at)), e = X(ms(a.ended_at) || now);
      const st = a.state || x.t.state;
      out.push('<rect class="gbar s-' + esc(st) + (c ? " critical" : "") + '" data-task="' +
        esc(x.t.task) + '" data-state="' + esc(st) + '" data-attempt="' + esc(a.attempt) +
        '" data-critical="' + c + '" x="' + s.toFixed(1) + '" y="' + (y + 2) + '" width="' +
        Math.max(2, e - s).toFixed(1) + '" height="14"><title>' + esc(x.t.task + " attempt " +
        a.attempt + ": " + st + " · " + fmtDuration((ms(a.ended_at) || now) - ms(a.started_at))) +
        "</title></rect>");
    }
  });
  const H = 8 + shown.length * RH;
  return raw('<div class="panel ganttwrap" data-view="gantt"><svg class="gantt" viewBox="0 0 ' + W +
    " " + (H + 14) + '" width="100%" preserveAspectRatio="xMinYMin meet">' + out.join("") +
    '<text class="tick" x="' + LW + '" y="' + (H + 10) + '">' + esc(fmtTime(new Date(t0)
    .toISOString())) + '</text><text class="tick end" x="' + (W - 10) + '" y="' + (H + 10) + '">+' +
    esc(fmtDuration(t1 - t0)) + '</text></svg><div class="muted legend">Light: queued · bar: an ' +
    "attempt, by state · outlined: the critical path</div></div>");
}
