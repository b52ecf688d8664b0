/* ---- the DAG page: #/dag/D (graph), #/dag/D/grid, #/dag/D/source, #/dag/D/params,
 * #/dag/D/metrics ---- */

function dagHeader(d, tab) {
  const tabs = [["graph", "Graph"], ["grid", "Grid"], ["source", "Source"], ["params", "Params"],
                ["metrics", "Metrics"]].map((t) => html`<a href="${route("dag", d.dag) +
    (t[0] === "graph" ? "" : "/" + t[0])}" class="${tab === t[0] ? "active" : ""}">${t[1]}</a>`);
  const acts = canAct() ? html`<span class="actions">
      <button data-act="trigger" data-dag="${d.dag}">Trigger…</button>
      ${d.schedule ? html`<button data-act="backfill" data-dag="${d.dag}">Backfill…</button>` : ""}
      <button data-act="${d.paused ? "unpause" : "pause"}" data-dag="${d.dag}"
        >${d.paused ? "Unpause" : "Pause"}</button></span>` : "";
  return html`<h1>DAG <span class="mono">${d.dag}</span> ${d.paused ? badge("paused") : ""}
    ${acts}</h1>
    <div class="muted">${d.description || ""} ${d.schedule ? html`· <span class="mono">${d.schedule
      }</span> ${d.timezone || ""}` : "· manual"} · ${d.tasks} tasks ·
      <a href="${route("runs") + query({ dag: d.dag })}">runs</a></div>
    <nav class="tabs">${tabs}</nav>`;
}

async function viewDag(dag, tab, params) {
  tab = tab || "graph";
  const list = await dagList();
  const d = await dagDetail(dag, list);
  let body;
  if (tab === "grid") {
    const g = await api("dags/" + enc(dag) + "/grid" + query({ limit: params.limit || 100 }));
    body = html`<p class="muted">${g.runs.length} runs by logical date (oldest left) ×
      ${g.tasks.length} tasks. Arrow keys move the selected cell, Enter opens it.</p>${gridHtml(dag,
      g)}`;
  } else if (tab === "source") {
    body = await dagSource(d, params);
  } else if (tab === "params") {
    const rows = (d.params || []).map((p) => html`<tr><td class="mono">${p.name}</td>
      <td class="mono">${p.default}</td><td class="muted">${p.type}</td></tr>`);
    body = html`<div data-view="params">${table([["Param"], ["Default"], ["Type"]], rows,
      "This DAG declares no params.")}</div>`;
  } else if (tab === "metrics") {
    let m = null;
    try { m = await api("dags/" + enc(dag) + "/metrics?last=" + (params.last || 50)); }
    catch (e) { if (e.status !== 404) throw e; }
    body = m ? metricCharts(m) : html`<div class="panel"><div class="empty">No runs.</div></div>`;
  } else {
    const runs = await api("runs" + query({ dag: dag, limit: 1 }));
    const latest = params.run || (runs.runs[0] && runs.runs[0].run_id);
    const run = latest ? await runGet(dag, latest) : null;
    const byTask = new Map(((run && run.tasks) || []).map((t) => [t.task, t]));
    const tasks = d.task_list || [];
    const lay = graphLayout(dag + "@" + d.version, tasks);
    const sel = params.task ? tasks.find((t) => t.task === params.task) : null;
    body = html`<p class="muted">${run ? html`Coloured by run
      <a class="mono" href="${route("run", dag, run.run_id)}">${run.run_id}</a> ${badge(run.state)}`
      : "No runs yet."} Click a task for its details.</p>
      ${graphSvg(tasks, lay, (n) => byTask.get(n), params.task)}
      ${sel ? taskSpec(dag, sel, run && byTask.get(sel.task), run) : ""}`;
  }
  return html`<div data-view="dag" data-dag="${dag}">${dagHeader(d, tab)}${body}</div>`;
}

function taskSpec(dag, t, ti, run) {
  return html`<div class="panel" data-view="taskspec"><dl class="meta">
    <dt>Task</dt><dd class="mono">${t.task}</dd>
    <dt>Needs</dt><dd>${(t.needs || []).length ? t.needs.map((n) =>
      html`<span class="chip mono">${n}</span>`) : none}</dd>
    <dt>Trigger rule</dt><dd>${t.trigger_rule}</dd><dt>Image</dt><dd class="mono">${t.image}</dd>
    <dt>Retries</dt><dd>${t.retries}</dd>
    <dt>Timeout</dt><dd>${t.timeout_ms ? fmtDuration(t.timeout_ms) : none}</dd>
    <dt>Cache</dt><dd>${t.cache ? "yes" : "no"}</dd><dt>Mapped</dt><dd>${t.mapped ? "yes" : "no"}</dd>
    ${ti ? html`<dt>Latest run</dt><dd>${badge(ti.state)}
      <a href="${route("run", dag, run.run_id, t.task)}">open the task instance</a></dd>` : ""}
  </dl></div>`;
}

/* #/dag/D/source?run=R: the YAML of the version run R used (default: the
 * latest run; the current version if there is none, or ?version=V), with
 * that version's params and the run's own values. */
async function dagSource(d, params) {
  const runs = (await api("runs" + query({ dag: d.dag, limit: 50 }))).runs || [];
  let run = params.version ? null : params.run ? runs.find((r) => r.run_id === params.run) : runs[0];
  if (!run && params.run && !params.version) run = await api(runPath(d.dag, params.run));
  const version = params.version || (run && run.dag_version) || d.version;
  if (!version) return html`<div class="panel"><div class="empty">This DAG never loaded.</div></div>`;
  const v = await api("dags/" + enc(d.dag) + "/versions/" + enc(version));
  const opts = [html`<option value="" data-version="${d.version || ""}" ${!run ? "selected" : ""}
    >the current version</option>`]
    .concat(runs.map((r) => html`<option value="${r.run_id}" ${run && run.run_id === r.run_id ?
      "selected" : ""}>${r.run_id} · ${(r.dag_version || "").slice(0, 12)}</option>`));
  if (run && !runs.some((r) => r.run_id === run.run_id))
    opts.push(html`<option value="${run.run_id}" selected>${run.run_id}</option>`);
  const given = (run && run.params) || {};
  const rows = (v.params || []).map((p) => html`<tr data-param="${p.name}">
    <td class="mono">${p.name}</td><td class="mono">${p.default}</td><td class="muted">${p.type}</td>
    ${run ? html`<td class="mono">${p.name in given ? String(given[p.name]) : none}</td>` : ""}</tr>`);
  const lines = v.source.replace(/\n$/, "").split("\n").map((l, i) =>
    html`<span class="ln">${i + 1}</span>${l}\n`);
  return html`<div data-view="source" data-version="${v.version}">
    <div class="filters"><label>Version of <select id="f-srcrun" data-dag="${d.dag}">${opts}
      </select></label></div>
    <p class="muted">Version <span class="mono" title="${v.version}">${v.version.slice(0, 12)}</span>
      ${v.current ? "(the current one)" : "(not the current one: the file has changed since)"}
      ${run ? html`· used by run <a class="mono" href="${route("run", d.dag, run.run_id)}"
        >${run.run_id}</a>` : ""}</p>
    <h2>Params</h2>${table([["Param"], ["Default"], ["Type"]].concat(run ? [["This run"]] : []),
      rows, "This version declares no params.")}
    <h2>YAML</h2><div class="panel"><pre class="source">${lines}</pre></div></div>`;
}
