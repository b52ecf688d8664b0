/* ---- views: each returns the page's HTML ---- */

async function viewDags() {
  const [dags, runs] = await Promise.all([api("dags"), api("runs?limit=100")]);
  /* the latest run of a DAG is the one of the newest logical date (a
   * backfill of old dates, created later, is not the latest) */
  const latest = {};
  for (const r of runs.runs)
    if (!latest[r.dag] || r.logical_date > latest[r.dag].logical_date) latest[r.dag] = r;
  const rows = [];
  for (const d of dags.dags) {
    const last = latest[d.dag];
    const errors = d.errors || [];
    const tz = d.schedule && d.timezone && d.timezone !== "UTC" ? d.timezone : "";
    rows.push(html`<tr data-href="${route("runs") + query({ dag: d.dag })}">
      <td><strong>${d.dag}</strong><div class="muted">${d.description || ""}</div></td>
      <td class="mono nowrap">${d.schedule || html`<span class="muted">manual</span>`}
        <span class="muted">${tz}</span></td>
      <td>${d.paused ? badge("paused") : none}</td>
      <td class="num">${d.tasks}</td>
      <td>${(d.tags || []).map((t) => html`<span class="chip">${t}</span>`)}</td>
      <td class="mono">${d.version ? short(d.version) : badge("error", "never loaded")}</td>
      <td>${last ? html`<a href="${route("run", last.dag, last.run_id)}">${badge(last.state)}</a>
        <span class="muted">${fmtTime(last.logical_date)}</span>` : none}</td>
      <td class="num">${errors.length ? badge("error", errors.length) : none}</td></tr>`);
    if (errors.length) {
      const lines = errors.map((e) => html`${e.file || d.file}${e.line ? ":" + e.line + ":" +
        e.column : ""}: ${e.message}\n${e.hint ? html`  <span class="hint">hint: ${e.hint}</span>\n`
                                                 : ""}`);
      rows.push(html`<tr><td colspan="8"><pre class="errors">${lines}</pre></td></tr>`);
    }
  }
  return html`<h1>DAGs</h1>${table([["DAG"], ["Schedule"], ["Paused"], ["Tasks", "num"],
    ["Tags"], ["Version"], ["Latest run"], ["Errors", "num"]], rows, "No DAGs loaded.")}`;
}

async function viewRuns(params) {
  const [dags, runs] = await Promise.all([
    api("dags"), api("runs" + query({ dag: params.dag, state: params.state, limit: 100 }))]);
  const option = (value, current, label) =>
    html`<option value="${value}" ${value === (current || "") ? "selected" : ""}>${label ||
      value}</option>`;
  const dagOptions = dags.dags.map((d) => option(d.dag, params.dag));
  const stateOptions = ["queued", "running", "success", "failed", "cancelled"].map((s) =>
    option(s, params.state));
  const rows = runs.runs.map((r) => html`<tr data-href="${route("run", r.dag, r.run_id)}">
    <td class="mono">${r.run_id}</td><td>${r.dag}</td><td>${badge(r.state)}</td>
    <td class="muted">${r.run_type}</td><td class="nowrap">${time(r.logical_date)}</td>
    <td class="nowrap">${time(r.started_at)}</td>
    <td class="nowrap">${time(r.ended_at, r.started_at)}</td>
    <td class="num">${duration(r)}</td></tr>`);
  return html`<h1>Runs</h1>
    <div class="filters">
      <label>DAG <select id="f-dag">${option("", params.dag, "all")}${dagOptions}</select></label>
      <label>State <select id="f-state">${option("", params.state, "all")}${stateOptions}
      </select></label>
    </div>
    ${table([["Run ID"], ["DAG"], ["State"], ["Type"], ["Logical date"], ["Started"],
             ["Ended"], ["Duration", "num"]], rows, "No runs.")}
    ${params.dag ? await metricsTable(params.dag) : ""}`;
}

/* Each task's metrics across the DAG's last runs (drift across retrains). */
async function metricsTable(dag) {
  let m;
  try { m = await api("dags/" + enc(dag) + "/metrics?last=20"); } catch (e) { return ""; }
  const cols = m.columns || [];
  if (!cols.length) return "";
  const fmt = (v) => (v === undefined || v === null ? none : Number(v).toPrecision(4));
  const rows = m.runs.filter((r) => Object.keys(r.metrics || {}).length).map((r) =>
    html`<tr data-href="${route("run", dag, r.run_id)}">
      <td class="mono">${r.run_id}</td><td>${badge(r.state)}</td>
      ${cols.map((c) => html`<td class="num mono">${fmt((r.metrics || {})[c])}</td>`)}</tr>`);
  return html`<h2>Metrics of the last runs</h2>${table([["Run ID"], ["State"]].concat(
    cols.map((c) => [c, "num"])), rows, "No metrics.")}`;
}

async function viewRun(dag, runId, selected) {
  const r = await api(runPath(dag, runId));
  const params = Object.keys(r.params || {}).map((k) => {
    const v = r.params[k];
    return html`<span class="chip mono">${k}=${typeof v === "string" ? v : JSON.stringify(v)}</span>`;
  });
  const tasks = r.tasks || [];
  const counts = {};
  for (const t of tasks) counts[t.state] = (counts[t.state] || 0) + 1;
  const summary = Object.keys(counts).map((s) => [badge(s, counts[s] + " " + s.replace(/_/g, " ")),
                                                  " "]);
  const rows = tasks.map((t) => {
    const retry = t.state === "up_for_retry" && t.next_retry_at
      ? " (retry at " + fmtTime(t.next_retry_at, Date.now()) + ")" : "";
    const note = t.cached_from
      ? "cached from " + t.cached_from.run_id + " (attempt " + t.cached_from.attempt + ")"
      : t.published ? "published to " + t.published.path : "";
    const error = (t.error || note) + retry;
    return html`<tr data-href="${route("run", r.dag, r.run_id, t.task)}"
                    class="${t.task === selected ? "selected" : ""}">
      <td><strong>${t.task}</strong></td>
      <td>${badge(t.state, t.cached ? "success (cached)" : undefined)}</td>
      <td class="num">${t.attempts}<span class="muted">${t.max_attempts ? "/" + t.max_attempts
                                                                          : ""}</span></td>
      <td>${orNone(t.worker)}</td><td class="nowrap">${time(t.started_at)}</td>
      <td class="nowrap">${time(t.ended_at, t.started_at)}</td>
      <td class="num">${duration(t)}</td><td class="num mono">${orNone(exitText(t))}</td>
      <td class="err-cell ${t.state === "skipped" ? "muted" : ""}" title="${error}"
        >${error.split("\n")[0]}</td></tr>`;
  });
  return html`<h1>Run <span class="mono">${r.run_id}</span></h1>
    <div class="panel"><dl class="meta">
      <dt>DAG</dt><dd><a href="${route("runs") + query({ dag: r.dag })}">${r.dag}</a></dd>
      <dt>State</dt><dd>${badge(r.state)}</dd>
      <dt>Type</dt><dd>${orNone(r.run_type)}</dd>
      <dt>Logical date</dt><dd>${time(r.logical_date)}</dd>
      <dt>Started</dt><dd>${time(r.started_at)}</dd>
      <dt>Ended</dt><dd>${time(r.ended_at)}</dd>
      <dt>Duration</dt><dd>${orNone(duration(r))}</dd>
      <dt>Version</dt><dd class="mono">${short(r.dag_version)}</dd>
      <dt>Params</dt><dd>${params.length ? params : none}</dd>
    </dl></div>
    <h2>Tasks ${summary}</h2>
    ${table([["Task"], ["State"], ["Attempts", "num"], ["Worker"], ["Started"], ["Ended"],
             ["Duration", "num"], ["Exit", "num"], ["Error"]], rows, "No tasks.")}
    ${selected ? "" : html`<p class="muted">Select a task to see its log.</p>`}`;
}

async function viewWorkers() {
  const w = await api("workers");
  const rows = w.workers.map((x) => {
    const pct = x.slots ? Math.min(100, Math.round((100 * x.busy) / x.slots)) : 0;
    const labels = Object.keys(x.labels || {}).map((k) =>
      html`<span class="chip">${k}=${x.labels[k]}</span>`);
    const running = (x.running || []).map((r) =>
      html`<div><a href="${route("run", r.dag, r.run_id, r.task)}">${r.dag} / ${r.task}</a>
        <span class="muted">attempt ${r.attempt}</span></div>`);
    return html`<tr><td><strong>${x.name}</strong></td><td class="muted">${x.host}</td>
      <td>${badge(x.state)}</td>
      <td class="nowrap"><span class="bar"><span style="width: ${pct}%"></span></span>${x.busy}
        / ${x.slots}</td>
      <td>${labels.length ? labels : none}</td>
      <td class="nowrap" title="${x.last_seen}">${ago(x.last_seen)}</td>
      <td class="nowrap">${time(x.connected_at)}</td>
      <td>${running.length ? running : html`<span class="muted">idle</span>`}</td></tr>`;
  });
  return html`<h1>Workers</h1>${table([["Name"], ["Host"], ["State"], ["Busy / slots"],
    ["Labels"], ["Last seen"], ["Connected"], ["Running"]], rows, "No workers connected.")}`;
}

async function viewBackfills() {
  const b = await api("backfills");
  const rows = b.backfills.map((x) => {
    const p = x.progress || {};
    const done = (p.success || 0) + (p.failed || 0) + (p.cancelled || 0) + (p.skipped || 0);
    const pct = x.total ? Math.min(100, Math.round((100 * done) / x.total)) : 100;
    return html`<tr data-href="${route("runs") + query({ dag: x.dag })}">
      <td class="mono">${x.id}</td><td><strong>${x.dag}</strong></td>
      <td>${badge(x.state)}</td>
      <td class="mono nowrap">${x.from}<div class="muted">${x.to}</div></td>
      <td>${x.reprocess}</td>
      <td class="nowrap"><span class="bar"><span style="width: ${pct}%"></span></span>
        ${done} / ${x.total}</td>
      <td class="num">${p.running || 0}</td>
      <td class="num">${(p.failed || 0) + (p.cancelled || 0) ? badge("failed", (p.failed || 0) +
        (p.cancelled || 0)) : 0}</td>
      <td class="num">${p.skipped || 0}</td>
      <td class="nowrap">${time(x.created_at)}</td></tr>`;
  });
  return html`<h1>Backfills</h1>${table([["Id"], ["DAG"], ["State"], ["From / to"],
    ["Reprocess"], ["Done / total"], ["Running", "num"], ["Failed", "num"],
    ["Skipped", "num"], ["Created"]], rows,
    html`No backfills. Start one with <code>cairn backfill DAG --from DATE --to DATE</code>.`)}`;
}
