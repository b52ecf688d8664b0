// The web UI in a real browser (Debian's chromium through playwright-core)
// against the live scheduler that tests/integration/test_ui.sh started.
// Env: CAIRN_SERVER, OUT (folder for screenshots), RUN1 RUN2 (runs of DAG
// ui, all success), RUNF (a failed run of DAG fail), FIXED (a file that
// makes fail's broken task succeed once it exists), RUNV (a run of DAG
// versioned, whose file changed after it: n 1 then n 2 and extra),
// PREFIX_URL (the UI through nginx under a path prefix, ending in /),
// PUB_RUNS (three runs of DAG pub, logical dates 02-01, 03-01, 03-02, each
// publishing fit's model.txt).
// Prints "ok - ..." / "not ok - ..." per check; exits 1 if any failed.
// SHOTS=1 also writes a screenshot of each step's last view to OUT.
import { chromium } from "playwright-core";
import fs from "node:fs";

const base = process.env.CAIRN_SERVER;
const OUT = process.env.OUT || "/tmp";
const { RUN1, RUN2, RUNF, FIXED, RUNV } = process.env;
let passed = 0, failed = 0;
const errors = [];  // console errors and page errors, with the view they came from

function check(what, cond, detail) {
  if (cond) { passed++; console.log("ok - " + what); }
  else { failed++; console.log("not ok - " + what + (detail !== undefined ? " (" + detail + ")" : "")); }
  return cond;
}

async function api(path, opts) {
  const res = await fetch(base + "/api/v1/" + path, opts);
  const body = await res.json();
  if (!res.ok) throw new Error(path + ": " + res.status + " " + JSON.stringify(body));
  return body;
}
const post = (path, body) => api(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify(body || {}) });
const run = (dag, id) => api("runs/" + encodeURIComponent(id) + "?dag=" + dag);
async function until(what, fn, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => false);
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
                                        args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
page.setDefaultTimeout(15000);
page.on("console", (m) => { if (m.type() === "error") errors.push(page.url() + ": " + m.text()); });
page.on("pageerror", (e) => errors.push(page.url() + ": " + e.message));

let shot = 0;
async function step(name, fn) {
  const t0 = Date.now();
  const failedBefore = failed;
  try {
    await fn();
    console.log("# " + name + ": " + (Date.now() - t0) + " ms");
    if (failed > failedBefore) { /* a check of this step failed: what the page showed */
      const file = OUT + "/ui-" + String(++shot).padStart(2, "0") + "-" + name.replace(/\W+/g, "_") + ".png";
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.log("# screenshot of the failed step: " + file);
    } else if (process.env.SHOTS) {
      await page.screenshot({ path: OUT + "/view-" + name.replace(/\W+/g, "_") + ".png" });
    }
  }
  catch (e) {
    const file = OUT + "/ui-" + String(++shot).padStart(2, "0") + "-" + name.replace(/\W+/g, "_") + ".png";
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    check(name + " (" + e.message.split("\n")[0] + "; screenshot " + file + ")", false);
  }
}
async function go(hash, selector) {
  await page.goto(base + "/#" + hash);
  if (selector) await page.waitForSelector(selector);
}
const attrs = (sel, attr) => page.$$eval(sel, (els, a) => els.map((e) => e.getAttribute(a)), attr);
const enc = encodeURIComponent;

await step("DAGs view", async () => {
  await go("/dags", '[data-view="dags"] tr[data-dag="ui"]');
  check("dags: every DAG has a row", (await attrs("tr[data-dag]", "data-dag")).sort().join() ===
        "big,daily,fail,long,many,onpub,pub,slow,ui,versioned,wide");
  const sq = await attrs('tr[data-dag="ui"] .squares .cell', "data-state");
  check("dags: ui shows its last runs as squares", sq.join() === "success,success", sq.join());
  check("dags: the pause toggle is there", await page.$('tr[data-dag="ui"] button[data-act="pause"]') !== null);
  await page.fill("#f-q", "fai");
  await page.waitForFunction(() => document.querySelectorAll("tr[data-dag]").length === 1 &&
                                   document.querySelector("tr[data-dag]").dataset.dag === "fail");
  check("dags: the search box filters", (await attrs("tr[data-dag]", "data-dag")).join() === "fail");
  await page.fill("#f-q", "");
  await page.waitForFunction(() => document.querySelectorAll("tr[data-dag]").length === 11);
  await page.selectOption("#f-tag", "ml");
  await page.waitForFunction(() => document.querySelectorAll("tr[data-dag]").length === 1);
  check("dags: the tag filter filters", (await attrs("tr[data-dag]", "data-dag")).join() === "ui");
});

await step("DAG graph", async () => {
  await go("/dag/ui", '[data-view="graph"] g.node');
  const nodes = await page.$$eval('[data-view="graph"] g.node', (els) =>
    els.map((e) => e.dataset.task + "=" + e.dataset.state));
  check("graph: one node per task, coloured by the latest run", nodes.sort().join() ===
        "flaky=success,prep=success,score=success,train=success", nodes.join());
  check("graph: edges drawn", (await page.$$('[data-view="graph"] path.edge')).length === 4);
  const xs = await page.$$eval('[data-view="graph"] g.node rect:first-of-type', (els) =>
    Object.fromEntries(els.map((e) => [e.parentNode.dataset.task, Number(e.getAttribute("x"))])));
  check("graph: laid out left to right by dependency", xs.prep < xs.train && xs.prep < xs.flaky &&
        xs.train < xs.score && xs.flaky < xs.score, JSON.stringify(xs));
  const bar = await page.textContent('g.node[data-task="train"] .mapn');
  check("graph: the mapped task is one node with its progress", bar === "3/3", bar);
  check("graph: each node has its state's letter",
        (await page.textContent('g.node[data-task="prep"] .nletter')) === "S");
  await page.click('g.node[data-task="flaky"]');
  await page.waitForSelector('[data-view="taskspec"]');
  check("graph: a click shows the task's details",
        (await page.textContent('[data-view="taskspec"]')).includes("all_success"));
  await page.focus('g.node[data-task="prep"]');
  await page.keyboard.press("ArrowRight");
  const right1 = await page.evaluate(() => document.activeElement.dataset.task);
  await page.keyboard.press("ArrowRight");
  const right2 = await page.evaluate(() => document.activeElement.dataset.task);
  await page.keyboard.press("ArrowLeft");
  const left1 = await page.evaluate(() => document.activeElement.dataset.task);
  check("graph: arrow keys move between nodes (prep → downstream → score → back)",
        ["train", "flaky"].includes(right1) && right2 === "score" && ["train", "flaky"].includes(left1),
        [right1, right2, left1].join(" "));
  await page.focus('g.node[data-task="prep"]');
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.hash.includes("task=prep"));
  check("graph: Enter on a focused node opens it", true);
});

await step("DAG grid", async () => {
  await go("/dag/ui/grid", '[data-view="grid"] a.cell[data-task]');
  const cells = await page.$$eval('[data-view="grid"] a.cell[data-task]', (els) =>
    els.map((e) => e.dataset.run + "/" + e.dataset.task + "=" + e.dataset.state));
  check("grid: 2 runs x 4 tasks, all success", cells.length === 8 &&
        cells.every((c) => c.endsWith("=success")), cells.join());
  const cols = await attrs('[data-view="grid"] .ghead a.cell', "data-run");
  check("grid: runs as columns, oldest first", cols.join() === RUN1 + "," + RUN2, cols.join());
  await page.focus(`a.cell[data-run="${RUN1}"][data-task="prep"]`);
  await page.keyboard.press("ArrowDown");
  check("grid: arrow keys move between cells", await page.evaluate(() =>
    document.activeElement.dataset.task) === "train");
  await page.keyboard.press("ArrowRight");
  const at = await page.evaluate(() => [document.activeElement.dataset.task,
    document.activeElement.dataset.run, document.activeElement.classList.contains("sel")]);
  check("grid: ArrowRight selects the next run's cell", at.join() === "train," + RUN2 + ",true",
        at.join());
  await page.keyboard.press("ArrowLeft");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /\/train$/.test(decodeURIComponent(location.hash)));
  check("grid: Enter opens the selected cell", decodeURIComponent(await page.evaluate(() =>
    location.hash)) === `#/run/ui/${RUN1}/train`);
  await go("/dag/ui/grid", '[data-view="grid"] a.cell[data-task]');
  await page.click(`a.cell[data-run="${RUN1}"][data-task="flaky"]`);
  await page.waitForSelector('[data-view="task"][data-task="flaky"]');
  check("grid: a click opens that task instance",
        decodeURIComponent(await page.evaluate(() => location.hash)) === `#/run/ui/${RUN1}/flaky`);
});

await step("run page", async () => {
  await go(`/run/ui/${enc(RUN1)}`, '[data-view="run"] [data-view="gantt"] rect.gbar');
  check("run: its state", (await page.getAttribute('[data-view="run"]', "data-state")) === "success");
  const nodes = await attrs('[data-view="run"] [data-view="graph"] g.node', "data-state");
  check("run: graph coloured by state", nodes.length === 4 && nodes.every((s) => s === "success"));
  const rows = await attrs('[data-view="run"] tr[data-task]', "data-task");
  check("run: the task table lists each task", rows.join() === "prep,train,flaky,score", rows.join());
  const bars = await page.$$eval('[data-view="gantt"] rect.gbar', (els) => els.map((e) =>
    e.dataset.task + "#" + e.dataset.attempt + "=" + e.dataset.state));
  check("gantt: the retry is visible (flaky: attempt 1 failed, 2 success)",
        bars.includes("flaky#1=failed") && bars.includes("flaky#2=success"), bars.join());
  const crit = await attrs('[data-view="gantt"] rect.gbar[data-critical="true"]', "data-task");
  check("gantt: the critical path ends at score and starts at prep",
        crit.includes("score") && crit.includes("prep"), crit.join());
  const redCells = await page.$$eval('[data-view="run"] td.err-cell', (els) =>
    els.filter((e) => e.textContent.trim() !== "").length);
  check("run: no error text for tasks that succeeded", redCells === 0);
  check("run: no horizontal scrollbar at 1,400 px", await page.evaluate(() =>
    document.documentElement.scrollWidth <= window.innerWidth));
});

await step("task panel", async () => {
  await go(`/run/ui/${enc(RUN1)}/score`, '[data-view="task"][data-task="score"]');
  const text = await page.textContent('[data-view="task"]');
  check("task: the rendered command", text.includes("score.sh 2026-01-05"));
  check("task: its env", text.includes("CAIRN_"));
  check("task: inputs with their digest", text.includes("data") && text.includes("prep"));
  check("task: outputs with size and a download", text.includes("m.json") &&
        (await page.$('[data-view="task"] button[data-act="download"][data-name="m.json"]')) !== null);
  check("task: its metrics", text.includes("acc=0.85"), text.match(/acc=[0-9.]*/));
  const [dl] = await Promise.all([page.waitForEvent("download"),
    page.click('[data-view="task"] button[data-act="download"][data-name="m.json"]')]);
  const body = fs.readFileSync(await dl.path(), "utf8");
  check("task: the download is the output's bytes", body.trim() === '{"acc": 0.85}', body);
  await page.click('[data-view="task"] a[data-lineage="m.json"]');
  await page.waitForSelector('[data-view="lineage"] g.node');
  const lin = (await attrs('[data-view="lineage"] g.node', "data-task")).sort();
  check("task: an output's lineage as a graph (score/m.json from prep/data.txt)",
        lin.join() === "prep/data.txt,score/m.json" &&
        (await page.$$('[data-view="lineage"] path.edge')).length === 1, lin.join());
  await go(`/run/ui/${enc(RUN1)}/flaky`, '[data-view="task"] tr[data-attempt="2"]');
  const at = await page.textContent('[data-view="task"] tr[data-attempt="1"]');
  check("task: attempts with their exit codes", at.includes("3") && at.includes("failed"));
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("second try"));
  check("task: the log of the latest attempt", true);
  await page.click('#log-attempts button[data-attempt="1"]');
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("first try fails"));
  check("task: the log of an earlier attempt", true);
});

await step("params and metrics", async () => {
  await go("/dag/ui/params", '[data-view="params"] tr td');
  const t = await page.textContent('[data-view="params"]');
  check("params: names with defaults", t.includes("items") && t.includes("0.1") && t.includes("base"));
  await go("/dag/ui/metrics", '[data-view="metrics"] figure.chart');
  check("metrics: a line chart per metric, a point per run",
        (await page.$$('figure.chart[data-metric="score.acc"] circle')).length === 2);
});

await step("the YAML a run used", async () => {
  await go(`/run/versioned/${enc(RUNV)}`, '[data-view="run"] a[data-link="source"]');
  await page.click('[data-view="run"] a[data-link="source"]');
  await page.waitForSelector('[data-view="source"] pre.source');
  let t = await page.textContent('[data-view="source"] pre.source');
  check("source: the run's version of the YAML", t.includes("first version") &&
        !t.includes("second version"), t);
  check("source: it says it is not the current one",
        (await page.textContent('[data-view="source"]')).includes("not the current one"));
  const ps = await page.$$eval('[data-view="source"] tr[data-param]', (els) =>
    els.map((e) => [...e.querySelectorAll("td")].slice(0, 2).map((td) => td.textContent.trim()).join("=")));
  check("source: that version's params with their defaults", ps.join() === "n=1", ps.join());
  await page.selectOption("#f-srcrun", "");
  await page.waitForFunction(() => (document.querySelector('[data-view="source"] pre.source') || {})
    .textContent.includes("second version"));
  const ps2 = await attrs('[data-view="source"] tr[data-param]', "data-param");
  check("source: the current version and its params", ps2.join() === "n,extra", ps2.join());
});

await step("live log", async () => {
  const r = await post("dags/slow/trigger", {});
  await go(`/run/slow/${enc(r.run_id)}/ticker`, "#logpanel");
  await page.waitForFunction(() => document.getElementById("log").textContent.includes("tick 2"));
  check("log: follows while the task runs",
        (await page.getAttribute("#logpanel", "data-following")) === "true" &&
        !(await page.textContent("#log")).includes("done ticking"));
  await page.waitForFunction(() => document.getElementById("logpanel").dataset.following === "false",
                             null, { timeout: 20000 });
  check("log: stops following when the attempt ends",
        (await page.textContent("#log")).includes("done ticking") &&
        (await page.textContent("#log-state")).includes("complete"));
  const n = (await page.textContent("#log")).split("\n").filter((l) => l.startsWith("tick")).length;
  check("log: every line once", n === 8, n);
  await page.fill("#log-search", "tick 3");
  check("log: search counts the matching lines", (await page.getAttribute("#log-matches", "data-hits")) === "1");
  const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#log-download")]);
  check("log: download", fs.readFileSync(await dl.path(), "utf8").includes("done ticking"));
});

await step("polling with ETags", async () => {
  await go("/dag/versioned/grid", '[data-view="grid"] a.cell[data-task="say"]');
  const stats = () => page.evaluate(() => window.cairnApiStats());
  const s0 = await stats();
  await page.waitForFunction((n) => window.cairnApiStats().notModified >= n + 2, s0.notModified,
                             { timeout: 20000 });
  const s1 = await stats();
  check("poll: an idle grid page is answered 304 (nothing downloaded)",
        s1.notModified - s0.notModified >= 2, JSON.stringify([s0, s1]));
  const before = (await attrs('[data-view="grid"] a.cell[data-task="say"]', "data-run")).length;
  const r = await post("dags/versioned/trigger", {});
  await page.waitForSelector(`[data-view="grid"] a.cell[data-task="say"][data-run="${r.run_id}"]`);
  check("poll: the grid still shows a new run", (await attrs('[data-view="grid"] a.cell[data-task="say"]',
        "data-run")).length === before + 1);
  await page.waitForSelector(`a.cell[data-task="say"][data-run="${r.run_id}"][data-state="success"]`,
                             { timeout: 30000 });
  check("poll: and its cell turns success when it ends", true);
});

await step("trigger with params", async () => {
  await go("/dag/ui", 'button[data-act="trigger"]');
  await page.click('button[data-act="trigger"]');
  await page.waitForSelector("#dlg[open] input[name=p-label]");
  await page.fill("#dlg input[name=p-label]", "fromui");
  await page.fill("#dlg input[name=p-lr]", "0.5");
  await page.fill("#dlg input[name=logical_date]", "2026-02-01T00:00:00");
  await page.click("#dlg-ok");
  await page.waitForFunction(() => location.hash.startsWith("#/run/ui/"));
  const id = decodeURIComponent((await page.evaluate(() => location.hash)).split("/")[3]);
  const r = await run("ui", id);
  check("trigger: the run has the params given in the form",
        JSON.stringify(r.params) === JSON.stringify({ lr: "0.5", label: "fromui" }) ||
        JSON.stringify(r.params) === JSON.stringify({ label: "fromui", lr: "0.5" }), JSON.stringify(r.params));
  check("trigger: and the logical date", r.logical_date === "2026-02-01T00:00:00Z", r.logical_date);
  await page.waitForSelector('[data-view="run"]');
  check("trigger: the page shows the new run", true);
});

await step("pause and unpause", async () => {
  await go("/dag/fail", 'button[data-act="pause"]');
  await page.click('button[data-act="pause"]');
  await until("paused", async () => (await api("dags/fail")).paused === true);
  await page.waitForSelector('button[data-act="unpause"]');
  check("pause: the DAG is paused", true);
  await page.click('button[data-act="unpause"]');
  await until("unpaused", async () => (await api("dags/fail")).paused === false);
  check("unpause: the DAG is unpaused", true);
});

await step("retry a run", async () => {
  fs.writeFileSync(FIXED, "");
  await go(`/run/fail/${enc(RUNF)}`, 'button[data-act="retry"]');
  await page.click('button[data-act="retry"]');
  await page.waitForSelector("#dlg[open]");
  await page.click("#dlg-ok");
  const r = await until("the retried run succeeds", async () => {
    const x = await run("fail", RUNF); return x.state === "success" && x;
  });
  const first = r.tasks.find((t) => t.task === "first");
  check("retry: the run succeeds, the task that had succeeded did not run again",
        r.state === "success" && first.attempts === 1);
});

await step("clear a task", async () => {
  await go(`/run/fail/${enc(RUNF)}/first`, 'button[data-act="clear"]');
  await page.click('button[data-act="clear"]');
  await page.waitForSelector("#dlg[open] input[name=downstream]");
  await page.click("#dlg-ok");
  const r = await until("the cleared tasks ran again", async () => {
    const x = await run("fail", RUNF);
    return x.state === "success" && x.tasks.every((t) => t.attempts >= 2) && x;
  });
  check("clear: the task and those downstream ran again", Boolean(r));
});

await step("cancel a run", async () => {
  const r = await post("dags/long/trigger", {});
  await until("long is running", async () => (await run("long", r.run_id)).state === "running");
  await go(`/run/long/${enc(r.run_id)}`, 'button[data-act="cancel"]');
  await page.click('button[data-act="cancel"]');
  await page.click("#dlg-cancel");   // dismissed: nothing happens
  await new Promise((res) => setTimeout(res, 300));
  check("cancel: dismissing the confirmation does nothing", (await run("long", r.run_id)).state === "running");
  await page.click('button[data-act="cancel"]');
  await page.click("#dlg-ok");
  await until("cancelled", async () => (await run("long", r.run_id)).state === "cancelled");
  check("cancel: the run is cancelled", true);
});

await step("start a backfill", async () => {
  await go("/dag/daily", 'button[data-act="backfill"]');
  await page.click('button[data-act="backfill"]');
  await page.fill("#dlg input[name=from]", "2026-01-01");
  await page.fill("#dlg input[name=to]", "2026-01-03");
  await page.click("#dlg-ok");
  await page.waitForSelector("#dlg[open] [data-preview]");
  const acts = await attrs("#dlg tr[data-action]", "data-action");
  check("backfill: the preview lists the 3 new runs", acts.join() === "new,new,new", acts.join());
  check("backfill: nothing is made before it is confirmed",
        (await api("backfills?dag=daily")).backfills.length === 0);
  await page.click("#dlg-ok");
  await page.waitForSelector('[data-view="backfills"] td');
  const b = await until("the backfill", async () => (await api("backfills?dag=daily")).backfills[0]);
  check("backfill: started, 3 dates", b.total === 3, JSON.stringify(b));
});

await step("models", async () => {
  const [r0, r1, r2] = process.env.PUB_RUNS.split(" ");
  await go("/models", '[data-view="models"] tr[data-release]');
  const rows = await page.$$eval('[data-view="models"] tr[data-release]', (els) =>
    els.map((e) => [e.dataset.dag, e.dataset.task, e.dataset.release, e.dataset.latest].join(" ")));
  check("models: fit's three releases, newest logical date first, only the newest is latest",
        rows.join("|") === [`pub fit ${r2}-a1 true`, `pub fit ${r1}-a1 false`, `pub fit ${r0}-a1 false`].join("|"),
        rows.join("|"));
  const t = await page.textContent(`[data-view="models"] tr[data-release="${r2}-a1"]`);
  check("models: a release lists its files with their size", t.includes("model.txt") && /\d+ B/.test(t), t);
  check("models: the latest stage and where its link points",
        (await page.$(`tr[data-release="${r2}-a1"] [data-stage="latest"]`)) !== null &&
        (await page.textContent('[data-view="models"] section[data-dag="pub"] p')).includes("latest"));
  check("models: the production stage is on the release promoted to it",
        (await page.$(`tr[data-release="${r1}-a1"] span.chip[data-stage="production"]`)) !== null &&
        (await page.$$('[data-view="models"] tr span.chip[data-stage="production"]')).length === 1);
  const hist = await page.textContent('[data-view="models"] section[data-dag="pub"] [data-history]');
  check("models: the stage history says who promoted what", hist.includes("promote") &&
        hist.includes(`${r1}-a1`) && hist.includes("local"), hist);
  await page.click(`tr[data-release="${r1}-a1"] a[href^="#/run/"]`);
  await page.waitForSelector('[data-view="task"][data-task="fit"]');
  check("models: a release links to the task instance that made it",
        decodeURIComponent(await page.evaluate(() => location.hash)) === `#/run/pub/${r1}/fit`);
});

await step("an event run's page says what made it", async () => {
  const ev = await until("an event run of onpub", async () =>
    ((await api("runs?dag=onpub")).runs || [])[0] || null);
  await go(`/run/onpub/${ev.run_id}`, '[data-view="run"]');
  /* (the page before was another run's: wait for this one's) */
  await page.waitForFunction((id) => (document.querySelector('[data-view="run"]') || {})
    .textContent.includes(id), ev.run_id).catch(() => {});
  const t = await page.textContent('[data-view="run"]');
  check("run: an event run shows its type and the release that started it",
        t.includes("event") && t.includes("on_publish pub/fit release"), t.slice(0, 300));
});

await step("model release page and stage actions", async () => {
  const [, r1, r2] = process.env.PUB_RUNS.split(" ");
  await go(`/models/pub/fit/${r2}-a1`, '[data-view="release"] [data-lineage]');
  const txt = await page.textContent('[data-view="release"]');
  check("release: its page shows the run, what made it and its files",
        txt.includes(r2) && txt.includes("DAG version") && txt.includes("model.txt"), txt.slice(0, 300));
  await page.click('[data-view="release"] button[data-act="promote"][data-stage="production"]');
  await page.click("#dlg-ok");
  const up = await until("production on the newest release", async () => {
    const m = await api("models/pub/fit");
    return m.stages.production === `${r2}-a1` ? m : null;
  });
  check("release: Promote to production switches the link", up !== null);
  await go("/models", '[data-view="models"] section[data-dag="pub"] button[data-act="rollback"][data-stage="production"]');
  await page.click('[data-view="models"] section[data-dag="pub"] button[data-act="rollback"][data-stage="production"]');
  await page.click("#dlg-ok");
  const back = await until("production back on the release before", async () => {
    const m = await api("models/pub/fit");
    return m.stages.production === `${r1}-a1` ? m : null;
  });
  check("models: roll back puts production back on the release before", back !== null);
});

await step("workers and backfills", async () => {
  await go("/workers", '[data-view="workers"]');
  check("workers: lists w1", (await page.textContent('[data-view="workers"]')).includes("w1"));
  await go("/backfills", '[data-view="backfills"]');
  check("backfills: renders", true);
});

await step("phone width and dark mode", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: "dark" });
  for (const h of ["/dags", "/dag/ui", `/run/ui/${enc(RUN1)}/score`]) {
    await go(h, '[data-view] h1');
    await page.waitForTimeout(200);
    check("phone: no horizontal scrollbar on #" + h, await page.evaluate(() =>
      document.documentElement.scrollWidth <= window.innerWidth));
  }
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check("dark mode: a dark background", bg === "rgb(18, 22, 28)", bg);
  if (process.env.SHOTS) await page.screenshot({ path: OUT + "/view-phone-dark.png", fullPage: true });
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.emulateMedia({ colorScheme: "light" });
});

await step("a 10,000-task graph", async () => {
  const t0 = Date.now();
  await go("/dag/big");
  await page.waitForSelector('[data-view="graph"][data-nodes="10000"] g.node[data-task="t0"]',
                             { timeout: 30000 });
  const ms = Date.now() - t0;
  console.log("# 10,000-task graph rendered in " + ms + " ms");
  check("big graph: drawn in under 10 s", ms < 10000, ms);
  const drawn = (await page.$$('[data-view="graph"] g.node')).length;
  check("big graph: only the visible part is in the page", drawn > 20 && drawn < 2000, drawn);
  await page.$eval(".graphwrap", (w) => { w.scrollLeft = w.scrollWidth; w.scrollTop = w.scrollHeight; });
  await page.waitForSelector('g.node[data-task="t9999"]');
  check("big graph: scrolling to the far corner draws the last task", true);
  check("big graph: and only around it", (await page.$('g.node[data-task="t0"]')) === null);
});

await step("a 300 x 30 grid, virtualised", async () => {
  const g = await api("dags/wide/grid");
  const runs = g.runs.map((r) => r.run_id);
  await page.setViewportSize({ width: 480, height: 800 });  /* fewer columns than 30 in view */
  await go("/dag/wide/grid", '.gridwrap[data-rows="300"][data-cols="30"] .gcells a.cell');
  const n = await page.$$eval(".gridwrap .gcells .cell", (els) => els.length);
  console.log("# 300 x 30 grid: " + n + " cells in the page");
  check("wide grid: the page holds far fewer cells than 9,000", n > 20 && n < 3000, n);
  const right = async () => page.$$eval(".gridwrap .gcells .cell", (els) => els.every((e) => {
    const row = Number(e.dataset.row), col = Number(e.dataset.col);
    return e.dataset.row === undefined || (window.__g.tasks[row] === e.dataset.task &&
      window.__g.runs[col].run_id === e.dataset.run);
  }));
  await page.evaluate((x) => { window.__g = x; }, g);
  check("wide grid: every cell drawn is its row's task and its column's run", await right());
  /* is the cell of task t, run r drawn, and inside the grid's box, not
   * under its run heads or task names */
  const shows = (t, r) => page.evaluate(([t, r]) => {
    const e = document.querySelector(`.gcells .cell[data-task="${t}"][data-run="${r}"]`);
    if (!e) return false;
    const w = document.querySelector(".gridwrap"), b = e.getBoundingClientRect();
    const box = w.getBoundingClientRect();
    const top = w.querySelector(".ghead").getBoundingClientRect().bottom;
    const left = w.querySelector(".glabels").getBoundingClientRect().right;
    return b.top >= top - 1 && b.left >= left - 1 && b.bottom <= box.top + w.clientHeight + 1 &&
           b.right <= box.left + w.clientWidth + 1;
  }, [t, r]);
  check("wide grid: opens on the newest runs", await shows("t0", runs[29]) && !(await shows("t0", runs[0])));
  await page.$eval(".gridwrap", (w) => { w.scrollTop = w.scrollHeight; });
  await page.waitForSelector(`.gcells .cell[data-task="t299"][data-run="${runs[29]}"]`);
  check("wide grid: scrolled down, the last task shows", await shows("t299", runs[29]));
  check("wide grid: and the first is no longer in the page",
        (await page.$('.gcells .cell[data-task="t0"]')) === null);
  await page.$eval(".gridwrap", (w) => { w.scrollLeft = 0; });
  await page.waitForSelector(`.gcells .cell[data-task="t299"][data-run="${runs[0]}"]`);
  check("wide grid: scrolled left, the oldest run shows", await shows("t299", runs[0]) &&
        await right());
  await page.$eval(".gridwrap", (w) => { w.scrollTop = 0; });
  await page.waitForSelector(`.gcells a.cell[data-task="t0"][data-run="${runs[0]}"]`);
  await page.focus(`.gcells a.cell[data-task="t0"][data-run="${runs[0]}"]`);
  const drawn = await page.$$eval(".gcells .cell[data-row]", (els) =>
    Math.max(...els.map((e) => Number(e.dataset.row))));
  const row = () => page.evaluate(() => Number(document.activeElement.dataset.row));
  for (let i = 0; i < 10 && await row() <= drawn; i++) await page.keyboard.press("PageDown");
  const r0 = await row();
  for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  const want = "t" + (r0 + 3);
  const at = await page.evaluate(() => [document.activeElement.dataset.task, document.activeElement.dataset.run]);
  check("wide grid: Page Down and the arrow keys go past the rows drawn at first (" + drawn + ")",
        r0 > drawn && at.join() === want + "," + runs[2], at.join() + " from row " + r0);
  check("wide grid: and the selected cell is in view", await shows(want, runs[2]));
  await page.keyboard.press("Enter");
  await page.waitForFunction((w) => decodeURIComponent(location.hash).endsWith("/" + w), want);
  check("wide grid: Enter opens it", decodeURIComponent(await page.evaluate(() => location.hash)) ===
        `#/run/wide/${runs[2]}/${want}`);
  await page.setViewportSize({ width: 1400, height: 900 });
});

await step("a 1,000-run grid", async () => {
  await page.setViewportSize({ width: 1400, height: 900 });
  const dates = Array.from({ length: 1000 }, (_, i) =>
    new Date(Date.UTC(2020, 0, 1) + i * 86400000).toISOString().replace(/\.000Z$/, "Z"));
  for (let i = 0; i < dates.length; i += 10) {
    await Promise.all(dates.slice(i, i + 10).map((d) => post("dags/many/trigger", { logical_date: d })));
  }
  const t0 = Date.now();
  await go("/dag/many/grid?limit=1000");
  const newest = "manual__" + dates[999];
  await page.waitForSelector(`.gridwrap[data-cols="1000"] .gcells a.cell[data-task="b"][data-run="${newest}"]`,
                             { timeout: 30000 });
  const ms = Date.now() - t0;
  console.log("# 1,000-run grid rendered in " + ms + " ms");
  check("big grid: 1,000 runs x 2 tasks in under 10 s", ms < 10000, ms);
  const n = await page.$$eval(".gridwrap .gcells .cell", (els) => els.length);
  check("big grid: only the runs in view are drawn", n > 10 && n < 2000, n);
});

await step("behind a proxy under a path prefix", async () => {
  const prefix = process.env.PREFIX_URL;
  const path = new URL(prefix).pathname;
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  const elsewhere = [];
  p.on("request", (q) => { if (!new URL(q.url()).pathname.startsWith(path)) elsewhere.push(q.url()); });
  p.on("console", (m) => { if (m.type() === "error") errors.push("prefix " + p.url() + ": " + m.text()); });
  await p.goto(prefix + "#/runs?dag=ui");
  await p.waitForSelector(`[data-view="runs"] tr[data-href*="${enc(RUN1)}"]`);
  await p.click(`[data-view="runs"] tr[data-href*="${enc(RUN1)}"] td`);
  await p.waitForSelector('[data-view="run"] [data-view="graph"] g.node');
  const nodes = await p.$$eval('[data-view="run"] [data-view="graph"] g.node', (els) =>
    els.map((e) => e.dataset.task + "=" + e.dataset.state));
  check("prefix: the run page through nginx at " + path + " shows its graph",
        nodes.sort().join() === "flaky=success,prep=success,score=success,train=success", nodes.join());
  check("prefix: the URL kept the prefix", new URL(p.url()).pathname === path, p.url());
  check("prefix: every request went under the prefix", elsewhere.length === 0, elsewhere.join(" "));
  await ctx.close();
});

await step("a viewer sees no action buttons", async () => {
  const acts = 'button[data-act]:not([data-act="download"])';
  for (const [who, tok] of [["viewer", process.env.VIEWER_TOKEN], ["operator", process.env.OPERATOR_TOKEN]]) {
    const ctx = await browser.newContext();
    await ctx.addInitScript((t) => sessionStorage.setItem("cairn.api-token", t), tok);
    const p = await ctx.newPage();
    p.on("console", (m) => { if (m.type() === "error") errors.push(who + " " + p.url() + ": " + m.text()); });
    await p.goto(process.env.AUTH_SERVER + "/#/dag/ui");
    await p.waitForSelector('[data-view="graph"] g.node');
    await p.waitForFunction(() => typeof userRole === "string" || document.querySelector("button[data-act]"));
    await p.waitForTimeout(300);
    const n = (await p.$$(acts)).length;
    if (who === "viewer") check("viewer: the DAG page has no action buttons", n === 0, n);
    else check("operator: the DAG page has its action buttons", n >= 2, n);
    await ctx.close();
  }
});

check("no console errors on any view", errors.length === 0, errors.slice(0, 5).join(" | "));
await browser.close();
console.log(passed + " passed, " + failed + " failed");
process.exit(failed ? 1 : 0);
