// Render the web UI's views in Node against a live scheduler, without a
// browser: a stub DOM, the page's own script, and the real API through
// fetch. Usage: node views.js SCRIPT.js BASE_URL DAG RUN_ID BACKFILL_ID
// Prints one line per check, "ok - ..." or "not ok - ...".
"use strict";
const fs = require("fs");
const [script, base, dag, runId, bfId] = process.argv.slice(2);
const realFetch = global.fetch;
const noop = new Proxy(function () {}, {
  get: (t, k) => (k === Symbol.toPrimitive ? () => "" : noop),
  apply: () => noop,
});
const code = fs.readFileSync(script, "utf8");
// the page's globals, stubbed for its script only
const views = new Function("document", "window", "location", "addEventListener", "setTimeout",
  "clearTimeout", "setInterval", "fetch",
  code + "\nreturn { viewDags, viewRuns, viewRun, viewBackfills, viewWorkers };")(
  noop, noop, { hash: "#/dags" }, () => {}, () => 0, () => {}, () => 0,
  (path, opts) => realFetch(base + "/" + path, opts));
let failed = 0;
const check = (what, cond) => {
  console.log((cond ? "ok - " : "not ok - ") + what);
  if (!cond) failed++;
};
(async () => {
  const d = (await views.viewDags()).s;
  check("DAGs view lists the DAG", d.includes(dag));
  const r = (await views.viewRuns({ dag })).s;
  check("runs view lists the run", r.includes(runId));
  check("runs of one DAG show its metrics across runs", r.includes("Metrics of the last runs") && r.includes("score.acc"));
  const one = (await views.viewRun(dag, runId)).s;
  check("run view lists its tasks", one.includes("score"));
  const b = (await views.viewBackfills()).s;
  check("backfills view lists the backfill with its progress", b.includes(bfId) && b.includes("2 / 2"));
  const w = (await views.viewWorkers()).s;
  check("workers view lists the worker", w.includes("w1"));
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log("not ok - a view threw: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
