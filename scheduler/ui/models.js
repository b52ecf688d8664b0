/* ---- #/models: the model registry, per DAG and task ----
 *
 * From GET models (docs/api.md, "Models"): every publishing task with its
 * releases (newest logical date first, as `latest` follows), the stages
 * that point at each (latest, production, staging), their metrics and
 * files, and GET models/D/T for a model's stage history (who promoted or
 * rolled back what, when). Promote and rollback are the CLI's and the
 * API's (`cairn models promote`). */

const STAGES = ["latest", "production", "staging"];

/* {dag: {task: model}} for the models the registry lists. */
async function modelReleases() {
  const m = await api("models");
  const out = {};
  for (const x of m.models || []) (out[x.dag] = out[x.dag] || {})[x.task] = x;
  return out;
}

const metricText = (metrics) => Object.keys(metrics || {}).flatMap((t) =>
  Object.keys(metrics[t] || {}).map((k) => t + "." + k + "=" + metrics[t][k])).join(" ");

function historyList(hist) {
  const rows = (hist || []).slice(-10).reverse().map((h) => html`<li>
    ${time(h.at)} <span class="mono">${h.by}</span> ${h.action} <span class="mono">${h.stage}</span>
    → <span class="mono">${h.release}</span>${h.previous ? html` <span class="muted">(was
    <span class="mono">${h.previous}</span>)</span>` : none}</li>`);
  return html`<div data-history>${rows.length ? html`<ul class="history">${rows}</ul>`
    : html`<p class="muted">No stage was promoted or rolled back yet.</p>`}</div>`;
}

async function viewModels() {
  const all = await modelReleases();
  const sections = [];
  for (const dag of Object.keys(all).sort()) {
    for (const task of Object.keys(all[dag]).sort()) {
      const model = all[dag][task];
      let hist = [];
      try {
        hist = (await api("models/" + enc(dag) + "/" + enc(task))).history || [];
      } catch (e) {
        if (e.status !== 404) throw e;
      }
      const rows = (model.releases || []).map((r) => {
        const stages = r.stages || [];
        const promote = canAct() ? ["production", "staging"].filter((st) => !stages.includes(st))
          .map((st) => html`<button class="small" data-act="promote" data-dag="${dag}"
            data-task="${task}" data-release="${r.release}" data-stage="${st}">→ ${st}</button> `) : none;
        return html`<tr data-dag="${dag}" data-task="${task}" data-release="${r.release}"
          data-latest="${stages.includes("latest")}">
          <td class="mono"><a href="${route("models", dag, task, r.release)}">${r.release}</a></td>
          <td>${stages.map((st) => html`<span class="chip stage" data-stage="${st}">${st}</span> `)}
            ${promote}</td>
          <td>${r.run_id ? html`<a class="mono" href="${route("run", dag, r.run_id, task)}">${r.run_id}</a>`
            : none}</td>
          <td class="nowrap">${time(r.logical_date)}</td>
          <td class="mono small">${metricText(r.metrics) || none}</td>
          <td>${(r.files || []).map((f) => html`<div class="mono" title="sha256 ${f.sha256}">${f.name}
            <span class="muted">${fmtSize(f.size)} · ${String(f.sha256 || "").slice(0, 12)}</span></div>`)}</td>
          <td>${r.error ? html`<span class="err">${r.error}</span>` : r.artifacts || none}</td></tr>`;
      });
      const links = STAGES.filter((st) => model.stages && model.stages[st]).map((st) =>
        html`<span class="chip stage" data-stage="${st}">${st}</span> →
          <span class="mono">${model.stages[st]}</span>
          ${canAct() && st !== "latest" ? html`<button class="small" data-act="rollback"
            data-dag="${dag}" data-task="${task}" data-stage="${st}">roll back</button>` : none} `);
      sections.push(html`<section data-dag="${dag}" data-task="${task}">
        <h2><a href="${route("dag", dag)}">${dag}</a> / <span class="mono">${task}</span></h2>
        <p class="muted">${links.length ? links : "No release yet."}
          <span class="mono path">${model.path || ""}</span></p>
        ${table([["Release"], ["Stages"], ["Run"], ["Logical date"], ["Metrics"], ["Files"],
                 ["Artifacts"]], rows, "No release yet.")}
        <h3>Stage history</h3>${historyList(hist)}</section>`);
    }
  }
  return html`<div data-view="models"><h1>Models</h1>
    <p class="muted">The releases of each task with <code>publish</code>, newest logical date
      first; <code>latest</code> follows the newest logical date, <code>production</code> and
      <code>staging</code> move with <code>cairn models promote</code> and
      <code>rollback</code>.</p>
    ${sections.length ? sections : html`<div class="panel"><div class="empty">No DAG publishes a
      model (a task's <code>publish</code> list).</div></div>`}</div>`;
}

/* ---- #/models/D/T/R: one release, with what made it ---- */
async function viewRelease(dag, task, release) {
  const r = await api("models/" + enc(dag) + "/" + enc(task) + "/releases/" + enc(release));
  const lin = r.lineage || {};
  const stages = r.stages || [];
  const kv = (rows) => html`<table class="kv">${rows.filter((x) => x[1] !== undefined && x[1] !== null &&
    x[1] !== "").map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}</table>`;
  const code = lin.code || {};
  const inputs = (lin.inputs || []).map((i) => html`<tr><td class="mono">${i.task}/${i.file}</td>
    <td class="mono" title="${i.sha256}">${String(i.sha256 || "").slice(0, 12)}</td></tr>`);
  const outs = (r.outputs || r.files || []).map((f) => html`<tr><td class="mono">${f.name}</td>
    <td class="num">${fmtSize(f.size)}</td><td class="mono" title="${f.sha256}">${String(f.sha256 ||
    "").slice(0, 12)}</td><td>${f.stored === false ? "collected" : "stored"}</td></tr>`);
  const params = Object.keys(r.params || {}).map((k) => html`<tr><td class="mono">${k}</td>
    <td class="mono">${String(r.params[k])}</td></tr>`);
  const promote = canAct() ? ["production", "staging"].filter((st) => !stages.includes(st))
    .map((st) => html`<button data-act="promote" data-dag="${dag}" data-task="${task}"
      data-release="${release}" data-stage="${st}">Promote to ${st}</button> `) : none;
  return html`<div data-view="release" data-dag="${dag}" data-task="${task}" data-release="${release}">
    <h1><a href="${route("models")}">Models</a> / ${dag} / <span class="mono">${task}</span> /
      <span class="mono">${release}</span></h1>
    <p>${stages.map((st) => html`<span class="chip stage" data-stage="${st}">${st}</span> `)}
      ${promote}</p>
    ${r.note ? html`<div class="banner">${r.note}</div>` : none}
    <section><h2>Release</h2>${kv([
      ["run", r.run_id ? html`<a class="mono" href="${route("run", dag, r.run_id, task)}">${r.run_id}</a>` : none],
      ["logical date", time(r.logical_date)], ["published", time(r.created_at)],
      ["digest", html`<span class="mono">${r.digest || ""}</span>`], ["artifacts", r.artifacts],
      ["metrics", html`<span class="mono">${metricText(r.metrics)}</span>`],
      ["folder", html`<span class="mono">${r.path || ""}</span>`]])}</section>
    <section data-lineage><h2>What made it</h2>${kv([
      ["DAG version", html`<span class="mono">${code.dag_version || r.dag_version || ""}</span>`],
      ["image", lin.image ? html`<span class="mono">${lin.image}</span>` : undefined],
      ["image digest", lin.image_digest ? html`<span class="mono">${lin.image_digest}</span>` : undefined],
      ["code", code.dir ? html`<span class="mono">${code.dir} ${String(code.sha256 || "").slice(0, 12)}</span>` : undefined],
      ["cache key", code.cache_key ? html`<span class="mono">${code.cache_key.slice(0, 16)}</span>` : undefined],
      ["worker", lin.worker], ["command", (lin.argv || []).length ?
        html`<span class="mono">${(lin.argv || []).join(" ")}</span>` : undefined]])}
      <h3>Inputs</h3>${table([["Input"], ["Digest"]], inputs, "No inputs recorded.")}
      <h3>Params</h3>${table([["Param"], ["Value"]], params, "No params.")}</section>
    <section><h2>Files</h2>${table([["File"], ["Size", "num"], ["Digest"], ["Artifact"]], outs,
      "No files.")}</section>
    <section><h2>Stage history</h2>${historyList(r.history)}</section></div>`;
}
