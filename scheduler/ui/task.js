/* ---- the task instance panel: attempts, command, env, inputs, outputs ---- */

const SECRET_RE = /(secret|token|password|passwd|key|credential)/i;

function maskEnv(kv) {
  const i = kv.indexOf("=");
  const k = i < 0 ? kv : kv.slice(0, i);
  return SECRET_RE.test(k) ? k + "=••••••" : kv;
}

const shellWord = (w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : "'" + w.replace(/'/g, "'\\''") + "'");

/* The lineage tree of an output (GET .../lineage) as a small graph: a node
 * per artifact, an edge from each input's producer. */
function lineageGraph(lg) {
  const nodes = new Map();
  const keyOf = (n) => n.dag + "/" + n.run_id + "/" + n.task + "/" + n.name + "#" + n.attempt;
  const label = (n, root) => n.task + "/" + n.name + (n.run_id !== root.run_id ? " @" +
    String(n.logical_date || n.run_id).slice(0, 10) : "");
  const walk = (n, root) => {
    const k = keyOf(n);
    if (!nodes.has(k)) nodes.set(k, { task: label(n, root), needs: [], n: n });
    for (const i of n.inputs || []) {
      if (!i.from) continue;
      walk(i.from, root);
      const from = nodes.get(keyOf(i.from)).task;
      if (!nodes.get(k).needs.includes(from)) nodes.get(k).needs.push(from);
    }
  };
  walk(lg.lineage, lg.lineage);
  const tasks = [...nodes.values()];
  const byLabel = new Map(tasks.map((x) => [x.task, x.n]));
  const lay = graphLayout("lineage:" + keyOf(lg.lineage) + ":" + tasks.length, tasks);
  return graphSvg(tasks, lay, (name) => ({ state: byLabel.get(name) && byLabel.get(name).attempt === 0
    ? "skipped" : "success" }), null, "lineage");
}

async function taskPanel(dag, r, t, attemptArg, lineageOf) {
  const attempts = t.attempts ? (await api(taskPath(dag, r.run_id, t.task, "/attempts"))).attempts
                              : [];
  const want = attemptArg ? Number(attemptArg) : attempts.length ? attempts[attempts.length - 1].attempt
                                                                 : null;
  const a = attempts.find((x) => x.attempt === want) || null;
  const arows = attempts.map((x) => html`<tr data-href="${route("run", dag, r.run_id, t.task,
      String(x.attempt))}" class="${x.attempt === want ? "selected" : ""}" data-attempt="${x.attempt}"
      data-state="${x.state}"><td class="num">${x.attempt}</td><td>${badge(x.state)}</td>
    <td>${orNone(x.worker)}</td><td class="nowrap">${time(x.started_at)}</td>
    <td class="num">${duration(x)}</td><td class="num mono">${orNone(exitText(x))}</td>
    <td class="err-cell" title="${x.error || ""}">${(x.error || "").split("\n")[0]}</td></tr>`);
  const outs = (t.outputs || []).map((o) => html`<tr><td class="mono">${o.name}</td>
    <td class="num">${fmtSize(o.size)}</td><td class="mono" title="${o.sha256}">${(o.sha256 ||
      "").slice(0, 16)}</td><td><button data-act="download" data-path="${runPath(dag, r.run_id,
      "/artifacts/" + enc(t.task) + "/" + enc(o.name) + "/content")}" data-name="${o.name}"
      >download</button> <a href="${route("run", dag, r.run_id, t.task) + query({ lineage: o.name
      })}" data-lineage="${o.name}">lineage</a></td></tr>`);
  let lineage = "";
  if (lineageOf) {
    try {
      const lg = await api(runPath(dag, r.run_id, "/artifacts/" + enc(t.task) + "/" +
                                   enc(lineageOf) + "/lineage"));
      lineage = html`<h3>Lineage of ${lineageOf}</h3><p class="muted">Each box is an artifact
        and the attempt that stored it; arrows come from the inputs it was given.</p>
        ${lineageGraph(lg)}`;
    } catch (e) {
      if (!e.status) throw e;
      lineage = html`<div class="banner">lineage of ${lineageOf}: ${e.message}</div>`;
    }
  }
  const ins = ((a && a.inputs) || []).map((i) => html`<tr><td class="mono">${i.name}</td>
    <td>${i.task}</td><td class="mono">${i.file}</td><td class="mono" title="${i.sha256}">${(i.sha256
      || "").slice(0, 16)}</td></tr>`);
  const metrics = Object.keys(t.metrics || {}).map((k) =>
    html`<span class="chip mono">${k}=${t.metrics[k]}</span>`);
  let instances = "";
  if (t.map) {
    const inst = await api(taskPath(dag, r.run_id, t.task, "/instances", { limit: 200 }));
    instances = html`<h3>Instances (${t.map.n})</h3><div class="instances">${inst.instances.map(
      (x) => html`<a class="cell s-${x.state}" data-task="${x.task}" data-state="${x.state}"
        href="${route("run", dag, r.run_id, x.task)}" title="${x.task} · ${x.state}">${letter(
        x.state)}</a>`)}</div>`;
  }
  const acts = canAct() && ENDED.concat(["up_for_retry"]).includes(t.state)
    ? html`<button data-act="clear" data-dag="${dag}" data-run="${r.run_id}" data-task="${t.task}"
      >Clear…</button>` : "";
  return html`<section class="panel taskpanel" data-view="task" data-task="${t.task}"
      data-state="${t.state}">
    <h2>Task <span class="mono">${t.task}</span> ${badge(t.state)} <span class="actions">${acts}
      <a href="${route("run", dag, r.run_id)}" class="close">close</a></span></h2>
    ${t.error ? html`<div class="errors">${t.error}</div>` : ""}
    ${taskNote(t) ? html`<div class="muted">${taskNote(t)}</div>` : ""}
    ${instances}
    <h3>Attempts</h3>
    ${table([["#", "num"], ["State"], ["Worker"], ["Started"], ["Duration", "num"], ["Exit", "num"],
             ["Error"]], arows, "Not started yet.")}
    ${a ? html`<h3>Attempt ${a.attempt}</h3><dl class="meta">
      <dt>Image</dt><dd class="mono">${orNone(a.image)}</dd>
      <dt>Command</dt><dd><pre class="cmd">${a.argv ? a.argv.map(shellWord).join(" ") : ""}</pre></dd>
      <dt>Env</dt><dd><pre class="cmd">${(a.env || []).map(maskEnv).join("\n")}</pre></dd>
      <dt>Log size</dt><dd>${fmtSize(a.log_size)}</dd></dl>` : ""}
    <h3>Inputs</h3>${table([["Name"], ["From task"], ["File"], ["SHA-256"]], ins, "No inputs.")}
    <h3>Outputs</h3>${table([["Name"], ["Size", "num"], ["SHA-256"], [""]], outs, "No outputs.")}
    ${lineage}
    ${metrics.length ? html`<h3>Metrics</h3><div>${metrics}</div>` : ""}
  </section>`;
}
