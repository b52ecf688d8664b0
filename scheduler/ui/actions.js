/* ---- actions: trigger, pause/unpause, retry, cancel, clear, download ---- */

function toast(text, bad) {
  const t = $("toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, bad ? 8000 : 3000);
}

/* Shows the dialog with body (HTML) and an OK button labelled ok; resolves
 * to the form's element values, or null when dismissed. */
function dialogAsk(title, body, ok, danger) {
  const dlg = $("dlg");
  $("dlg-title").textContent = title;
  $("dlg-body").innerHTML = part(body);
  $("dlg-ok").textContent = ok;
  $("dlg-ok").className = danger ? "danger" : "";
  /* resolved from the close event, so a dialog opened right after this one
   * closed never sees this one's close */
  return new Promise((resolve) => {
    let result = null;
    $("dlg-form").onsubmit = (ev) => {
      ev.preventDefault();
      result = {};
      for (const el of $("dlg-form").elements) {
        if (!el.name) continue;
        result[el.name] = el.type === "checkbox" ? el.checked : el.value;
      }
      dlg.close();
    };
    dlg.onclose = () => {
      dlg.onclose = null;
      $("dlg-form").onsubmit = null;
      resolve(result);
    };
    dlg.showModal();
  });
}

async function actTrigger(dag) {
  const d = await dagDetail(dag);
  const fields = (d.params || []).map((p) => {
    const id = "p-" + p.name;
    if (p.type === "bool") return html`<label>${p.name} <input type="checkbox" name="${id}"
      ${p.default === "true" ? "checked" : ""}></label>`;
    return html`<label>${p.name} <span class="muted">${p.type}</span> <input name="${id}"
      value="${p.default}" inputmode="${p.type === "number" ? "decimal" : "text"}"
      data-type="${p.type}"></label>`;
  });
  const v = await dialogAsk("Trigger " + dag, html`${fields}
    <label>Logical date <input type="datetime-local" name="logical_date" step="1"></label>
    <p class="muted">Leave the date empty for now. Params are sent only where changed.</p>`,
    "Trigger");
  if (!v) return;
  const params = {};
  for (const p of d.params || []) {
    const val = v["p-" + p.name];
    const text = p.type === "bool" ? String(val) : val;
    if (text !== p.default) {
      if (p.type === "number" && text.trim() === "") { toast(p.name + " needs a number", true); return; }
      params[p.name] = text;
    }
  }
  const body = { params: params };
  if (v.logical_date) body.logical_date = new Date(v.logical_date + "Z").toISOString()
                                          .replace(/\.000Z$/, "Z");
  const r = await api("dags/" + enc(dag) + "/trigger", { method: "POST", body: body });
  toast("triggered " + r.run_id);
  location.hash = route("run", dag, r.run_id);
}

async function actBackfill(dag) {
  const v = await dialogAsk("Backfill " + dag, html`
    <label>From <input type="date" name="from" required></label>
    <label>To <input type="date" name="to" required></label>
    <label>Dates that have a run <select name="reprocess">
      <option value="none">keep them</option><option value="failed">rerun their failed tasks</option>
      <option value="all">rerun them</option></select></label>
    <p class="muted">The next step previews the runs it would make.</p>`, "Preview");
  if (!v) return;
  const body = { from: v.from, to: v.to, reprocess: v.reprocess };
  const p = await api("dags/" + enc(dag) + "/backfill", { method: "POST",
                                                          body: Object.assign({ dry_run: true }, body) });
  const counts = {};
  for (const r of p.runs || []) counts[r.action] = (counts[r.action] || 0) + 1;
  const rows = (p.runs || []).slice(0, 30).map((r) => html`<tr data-date="${r.logical_date}"
    data-action="${r.action}"><td class="mono">${r.logical_date}</td><td>${r.action}</td>
    <td>${r.state ? badge(r.state) : ""}</td></tr>`);
  const ok = await dialogAsk("Backfill " + dag + ": " + p.total + " dates", html`
    <p data-preview="${p.total}">${Object.keys(counts).map((k) => counts[k] + " " + k).join(", ")}</p>
    <table class="preview"><tbody>${rows}</tbody></table>
    ${p.total > 30 ? html`<p class="muted">and ${p.total - 30} more</p>` : ""}`, "Start backfill");
  if (!ok) return;
  const b = await api("dags/" + enc(dag) + "/backfill", { method: "POST", body: body });
  toast("started backfill " + b.id);
  location.hash = route("backfills");
}

async function actClear(dag, run, task) {
  const v = await dialogAsk("Clear " + task, html`<p>The task runs again${""}; its earlier
    attempts are kept.</p>
    <label><input type="checkbox" name="downstream" checked> and the tasks downstream of it</label>
    <label><input type="checkbox" name="failed_only"> only those that did not succeed</label>`,
    "Clear", true);
  if (!v) return;
  await api(runPath(dag, run, "/clear"), { method: "POST",
    body: { task: task, downstream: v.downstream, failed_only: v.failed_only } });
  toast("cleared " + task);
}

async function actConfirm(title, text, ok) {
  return (await dialogAsk(title, html`<p>${text}</p>`, ok, true)) !== null;
}

async function actDownload(path, name) {
  const res = await api(path, { raw: true });
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

document.addEventListener("click", async (ev) => {
  const b = ev.target.closest && ev.target.closest("button[data-act]");
  if (!b) return;
  ev.preventDefault();
  ev.stopPropagation();
  const { act, dag, run, task } = b.dataset;
  try {
    if (act === "download") { await actDownload(b.dataset.path, b.dataset.name); return; }
    if (!canAct()) return;
    if (act === "trigger") await actTrigger(dag);
    else if (act === "backfill") await actBackfill(dag);
    else if (act === "pause" || act === "unpause") {
      await api("dags/" + enc(dag) + "/" + act, { method: "POST" });
      toast((act === "pause" ? "paused " : "unpaused ") + dag);
    } else if (act === "retry") {
      if (!await actConfirm("Retry run", "Run the failed tasks of " + run + " again?", "Retry")) return;
      await api(runPath(dag, run, "/retry"), { method: "POST" });
      toast("retrying " + run);
    } else if (act === "cancel") {
      if (!await actConfirm("Cancel run", "Cancel " + run + "? Running tasks are stopped.",
                            "Cancel run")) return;
      await api(runPath(dag, run, "/cancel"), { method: "POST" });
      toast("cancelled " + run);
    } else if (act === "clear") await actClear(dag, run, task);
    else if (act === "promote") {
      const { release, stage } = b.dataset;
      if (!await actConfirm("Promote " + release, "Point " + dag + "/" + task + "'s " + stage +
                            " link at " + release + "?", "Promote")) return;
      await api("models/" + enc(dag) + "/" + enc(task) + "/releases/" + enc(release) + "/promote",
                { method: "POST", body: { stage: stage } });
      toast(release + " is " + stage);
    } else if (act === "rollback") {
      const { stage } = b.dataset;
      if (!await actConfirm("Roll back " + stage, "Put " + dag + "/" + task + "'s " + stage +
                            " link back on the release it pointed at before?", "Roll back")) return;
      const h = await api("models/" + enc(dag) + "/" + enc(task) + "/rollback",
                          { method: "POST", body: { stage: stage } });
      toast(stage + " is " + h.release + " again");
    }
    refresh();
  } catch (e) {
    toast(act + " failed: " + e.message, true);
  }
});
