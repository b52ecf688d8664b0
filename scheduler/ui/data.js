/* ---- cached reads: a DAG's detail per version, runs followed incrementally ---- */

const dagDetailCache = new Map();  /* dag -> detail, while its version is the same */
const runCache = new Map();        /* dag/run -> {run, cursor} */

async function dagList() { return api("dags"); }

/* The DAG's detail (task_list, params), fetched again only when the
 * version in the DAG list changed. */
async function dagDetail(dag, list) {
  list = list || await dagList();
  const d = (list.dags || []).find((x) => x.dag === dag);
  const c = dagDetailCache.get(dag);
  if (c && d && c.version === d.version) return Object.assign({}, c, d, { task_list: c.task_list,
                                                                          params: c.params });
  const full = await api("dags/" + enc(dag));
  dagDetailCache.set(dag, full);
  return full;
}

/* A run with all its tasks; while the scheduler holds it, later calls ask
 * only for the rows that changed (changes_after). */
async function runGet(dag, runId) {
  const key = dag + "/" + runId;
  const c = runCache.get(key);
  const params = { tasks: "all" };
  if (c && c.run.cursor) params.changes_after = c.run.cursor;
  let r = await api(runPath(dag, runId, "", params));
  if (r.incremental && c) {  /* (api's answers are shared: merged into a copy) */
    const byName = new Map(c.run.tasks.map((t, i) => [t.task, i]));
    const tasks = c.run.tasks.slice();
    for (const t of r.tasks || []) {
      if (byName.has(t.task)) tasks[byName.get(t.task)] = t; else tasks.push(t);
    }
    r = Object.assign({}, r, { tasks: tasks });
    delete r.incremental;
  }
  if (runCache.size > 20) runCache.clear();
  runCache.set(key, { run: r });
  return r;
}
