/* ---- #/models: the releases in the models folder, per DAG and task ----
 *
 * Read from what the API has now: the tasks with `publish` (GET dags/D's
 * task_list) and the `published` member of their instances in the DAG's
 * last runs (GET runs/R). Each release is {dag, task, run, logical_date,
 * path, latest, is_latest, files}; modelReleases() is the one place that
 * gathers them, so a registry API can take its place. */

const MODELS_RUNS = 20;   /* runs per DAG looked at (?last=N, at most 200) */

const releaseName = (path) => String(path || "").replace(/\/+$/, "").split("/").pop();

/* {dag: {task: [release...]}} for the DAGs with publishing tasks. */
async function modelReleases(last) {
  const list = await dagList();
  const out = {};
  await Promise.all((list.dags || []).filter((d) => d.version).map(async (d) => {
    const det = await dagDetail(d.dag, list);
    const pub = (det.task_list || []).filter((t) => (t.publish || []).length).map((t) => t.task);
    if (!pub.length) return;
    out[d.dag] = Object.fromEntries(pub.map((t) => [t, []]));
    const runs = (await api("runs" + query({ dag: d.dag, limit: last }))).runs || [];
    await Promise.all(runs.map(async (r) => {
      const full = await api(runPath(d.dag, r.run_id));
      for (const ti of full.tasks || []) {
        if (!out[d.dag][ti.task] || !ti.published) continue;
        out[d.dag][ti.task].push(Object.assign({ dag: d.dag, task: ti.task, run: r.run_id,
          logical_date: r.logical_date, attempt: ti.attempts }, ti.published));
      }
    }));
  }));
  return out;
}

/* The release `latest` points at: the one of the newest logical date among
 * those that switched it (as the scheduler moves it; a hand-made rollback
 * is not seen here). */
function latestRelease(rels) {
  let best = null;
  for (const r of rels) {
    if (r.is_latest && (!best || r.logical_date > best.logical_date ||
                        (r.logical_date === best.logical_date && r.attempt > best.attempt))) best = r;
  }
  return best;
}

async function viewModels(params) {
  const last = Math.min(200, Math.max(1, Number(params.last) || MODELS_RUNS));
  const all = await modelReleases(last);
  const sections = [];
  for (const dag of Object.keys(all).sort()) {
    for (const task of Object.keys(all[dag])) {
      const rels = all[dag][task].slice().sort((a, b) =>
        (a.logical_date < b.logical_date ? 1 : a.logical_date > b.logical_date ? -1 : 0));
      const cur = latestRelease(rels);
      const rows = rels.map((r) => {
        const isCur = cur === r;
        return html`<tr data-dag="${dag}" data-task="${task}" data-release="${releaseName(r.path)}"
          data-latest="${isCur}">
          <td class="mono">${releaseName(r.path)}</td>
          <td>${isCur ? html`<span class="chip stage" data-stage="latest">latest</span>` : none}</td>
          <td><a class="mono" href="${route("run", dag, r.run, task)}">${r.run}</a></td>
          <td class="nowrap">${time(r.logical_date)}</td>
          <td>${(r.files || []).map((f) => html`<div class="mono" title="sha256 ${f.sha256}">${f.name}
            <span class="muted">${fmtSize(f.size)} · ${String(f.sha256 || "").slice(0, 12)}</span></div>`)}</td>
          <td class="mono muted path">${r.path}</td></tr>`;
      });
      sections.push(html`<section data-dag="${dag}" data-task="${task}">
        <h2><a href="${route("dag", dag)}">${dag}</a> / <span class="mono">${task}</span></h2>
        <p class="muted">${cur ? html`<span class="mono">${cur.latest}</span> →
          <span class="mono">${releaseName(cur.path)}</span>` : "No release yet."}</p>
        ${table([["Release"], ["Stage"], ["Run"], ["Logical date"], ["Files"], ["Folder"]], rows,
          "No release in the last runs.")}</section>`);
    }
  }
  return html`<div data-view="models"><h1>Models</h1>
    <p class="muted">Releases of the tasks with <code>publish</code>, from the last ${last} runs of
      each DAG (<code>?last=N</code>), newest logical date first; <code>latest</code> is the
      release that link points at.</p>
    ${sections.length ? sections : html`<div class="panel"><div class="empty">No DAG publishes a
      model (a task's <code>publish</code> list).</div></div>`}</div>`;
}
