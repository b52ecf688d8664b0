/* ---- views: each returns the page's HTML ---- */

async function viewDags(params) {
  const [dags, runs] = await Promise.all([api("dags"), api("runs?limit=500")]);
  /* each DAG's last runs by logical date, newest last (a backfill of old
   * dates, created later, is not the latest) */
  const last = {};
  for (const r of runs.runs) (last[r.dag] = last[r.dag] || []).push(r);
  for (const k of Object.keys(last)) {
    last[k].sort((x, y) => (x.logical_date < y.logical_date ? -1 : x.logical_date > y.logical_date));
    last[k] = last[k].slice(-10);
  }
  const q = (params.q || "").toLowerCase();
  const tags = [...new Set(dags.dags.flatMap((d) => d.tags || []))].sort();
  const shownDags = dags.dags.filter((d) => (!q || d.dag.toLowerCase().includes(q) ||
    (d.description || "").toLowerCase().includes(q)) && (!params.tag ||
    (d.tags || []).includes(params.tag)));
  const rows = [];
  for (const d of shownDags) {
    const lr = last[d.dag] || [];
    const errors = d.errors || [];
    const tz = d.schedule && d.timezone && d.timezone !== "UTC" ? d.timezone : "";
    const squares = lr.map((r) => html`<a class="cell s-${r.state}" data-state="${r.state}"
      href="${route("run", r.dag, r.run_id)}" title="${r.logical_date} · ${r.state}">${letter(
      r.state)}</a>`);
    const toggle = canAct() ? html`<button data-act="${d.paused ? "unpause" : "pause"}"
      data-dag="${d.dag}" class="toggle" aria-pressed="${d.paused}">${d.paused ? "paused" : "on"
      }</button>` : d.paused ? badge("paused") : none;
    rows.push(html`<tr data-href="${route("dag", d.dag)}" data-dag="${d.dag}">
      <td><a href="${route("dag", d.dag)}"><strong>${d.dag}</strong></a>
        <div class="muted">${d.description || ""}</div></td>
      <td class="mono nowrap">${d.schedule || html`<span class="muted">manual</span>`}
        <span class="muted">${tz}</span></td>
      <td>${toggle}</td>
      <td class="num">${d.tasks}</td>
      <td>${(d.tags || []).map((t) => html`<span class="chip">${t}</span>`)}</td>
      <td class="mono">${d.version ? short(d.version) : badge("error", "never loaded")}</td>
      <td class="nowrap squares">${lr.length ? squares : none}</td>
      <td class="num">${errors.length ? badge("error", errors.length) : none}</td></tr>`);
    if (errors.length) {
      const lines = errors.map((e) => html`${e.file || d.file}${e.line ? ":" + e.line + ":" +
        e.column : ""}: ${e.message}\n${e.hint ? html`  <span class="hint">hint: ${e.hint}</span>\n`
                                                 : ""}`);
      rows.push(html`<tr><td colspan="8"><pre class="errors">${lines}</pre></td></tr>`);
    }
  }
  const tagOpts = tags.map((t) => html`<option value="${t}" ${t === params.tag ? "selected" : ""}
    >${t}</option>`);
  return html`<div data-view="dags"><h1>DAGs</h1>
    <div class="filters"><label>Search <input id="f-q" type="search" value="${params.q || ""}"
      placeholder="name or description"></label>
      <label>Tag <select id="f-tag"><option value="">all</option>${tagOpts}</select></label></div>
    ${table([["DAG"], ["Schedule"], ["Paused"], ["Tasks", "num"], ["Tags"], ["Version"],
      ["Last runs"], ["Errors", "num"]], rows, "No DAGs loaded.")}</div>`;
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
  return html`<div data-view="runs"><h1>Runs</h1>
    <div class="filters">
      <label>DAG <select id="f-dag">${option("", params.dag, "all")}${dagOptions}</select></label>
      <label>State <select id="f-state">${option("", params.state, "all")}${stateOptions}
      </select></label>
    </div>
    ${table([["Run ID"], ["DAG"], ["State"], ["Type"], ["Logical date"], ["Started"],
             ["Ended"], ["Duration", "num"]], rows, "No runs.")}
    ${params.dag ? await metricsTable(params.dag) : ""}</div>`;
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
      <td>${x.gpus && x.gpus.length ? x.gpus.length : none}</td>
      <td class="nowrap" title="${x.last_seen}">${ago(x.last_seen)}</td>
      <td class="nowrap">${time(x.connected_at)}</td>
      <td>${running.length ? running : html`<span class="muted">idle</span>`}</td></tr>`;
  });
  return html`<div data-view="workers"><h1>Workers</h1>${table([["Name"], ["Host"], ["State"],
    ["Busy / slots"], ["Labels"], ["GPUs"], ["Last seen"], ["Connected"], ["Running"]], rows,
    "No workers connected.")}</div>`;
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
  return html`<div data-view="backfills"><h1>Backfills</h1>${table([["Id"], ["DAG"], ["State"], ["From / to"],
    ["Reprocess"], ["Done / total"], ["Running", "num"], ["Failed", "num"],
    ["Skipped", "num"], ["Created"]], rows,
    html`No backfills. Start one with <code>cairn backfill DAG --from DATE --to DATE</code>.`)}</div>`;
}
