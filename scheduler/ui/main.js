/* ---- routing and the refresh loop ---- */

function parseRoute() {
  const [path, qs] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter((p) => p !== "").map(decodeURIComponent);
  return { name: parts[0] || "dags", args: parts.slice(1),
           params: Object.fromEntries(new URLSearchParams(qs || "")) };
}

let shown = "";       /* the view's HTML as last rendered */
let refreshGen = 0;   /* a newer refresh makes older ones drop their results */
let refreshTimer = null;

function setStatus(ok, text) {
  document.querySelector("#status .dot").classList.toggle("bad", !ok);
  $("status-text").textContent = text;
}

async function refresh() {
  clearTimeout(refreshTimer);
  const gen = ++refreshGen;
  const r = parseRoute();
  const tab = r.name === "run" ? "runs" : r.name === "dag" ? "dags" : r.name;
  document.querySelectorAll("nav a[data-tab]").forEach((a) =>
    a.classList.toggle("active", a.dataset.tab === tab));
  if (!document.hidden) {
    let view;
    graphVirtual = null;  /* (gridVirtual stays: the arrow keys use it while this refresh runs) */
    try {
      if (r.name === "runs") view = await viewRuns(r.params);
      else if (r.name === "run") view = await viewRun(r.args[0], r.args[1], r.args[2], r.args[3],
                                                     r.params);
      else if (r.name === "dag") view = await viewDag(r.args[0], r.args[1], r.params);
      else if (r.name === "workers") view = await viewWorkers();
      else if (r.name === "backfills") view = await viewBackfills();
      else if (r.name === "models" && r.args.length >= 3)
        view = await viewRelease(r.args[0], r.args[1], r.args[2]);
      else if (r.name === "models") view = await viewModels(r.params);
      else view = await viewDags(r.params);
      setStatus(true, "updated " + fmtTime(new Date().toISOString(), Date.now()));
    } catch (e) {
      if (e.status) view = html`<div class="banner">${e.message}</div>`;
      else if (!(e instanceof TypeError && /fetch/i.test(e.message))) console.error(e);
      setStatus(false, e.status ? "error " + e.status : "scheduler unreachable");
    }
    if (gen !== refreshGen) return;
    if (view && view.s !== shown) {
      const focus = document.activeElement && document.activeElement.id;
      const caret = focus && document.activeElement.selectionStart;
      $("view").innerHTML = view.s;
      shown = view.s;
      if (focus && $(focus) && $(focus).closest("#view")) {
        $(focus).focus();
        if (caret !== null && caret !== undefined && $(focus).setSelectionRange) {
          $(focus).setSelectionRange(caret, caret);
        }
      }
    }
    graphPaint();
    gridPaint();
    if (r.name === "run" && r.args.length >= 3) {
      try {
        const c = runCache.get(r.args[0] + "/" + r.args[1]);
        const run = c ? c.run : await api(runPath(r.args[0], r.args[1]));
        const t = (run.tasks || []).find((x) => x.task === r.args[2]);
        if (gen !== refreshGen) return;
        if (t && !t.attempts && !r.args[3] && !["leased", "running"].includes(t.state)) {
          logNone(r.args[2], t);
        } else {
          logOpen(r.args[0], r.args[1], r.args[2], r.args[3]);
          await logAttempts(t);
        }
      } catch (e) { /* the next refresh shows what is wrong */ }
    } else {
      logClose();
    }
    if (gen !== refreshGen) return;
  }
  refreshTimer = setTimeout(refresh, REFRESH_MS);
}

$("view").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr[data-href]");
  if (!tr || ev.target.closest("a,button,input,select") || String(window.getSelection())) return;
  location.hash = tr.dataset.href;
});

$("view").addEventListener("change", (ev) => {
  if (ev.target.id === "f-dag" || ev.target.id === "f-state") {
    location.hash = route("runs") + query({ dag: $("f-dag").value, state: $("f-state").value });
  } else if (ev.target.id === "f-srcrun") {
    const o = ev.target.selectedOptions[0];
    location.hash = route("dag", ev.target.dataset.dag, "source") +
      query(o && o.dataset.version ? { version: o.dataset.version } : { run: ev.target.value });
  } else if (ev.target.id === "f-tag") {
    location.hash = route("dags") + query({ q: $("f-q").value, tag: $("f-tag").value });
  }
});

$("view").addEventListener("input", (ev) => {
  if (ev.target.id !== "f-q") return;
  history.replaceState(null, "", route("dags") + query({ q: ev.target.value,
                                                        tag: $("f-tag").value }));
  refresh();
});

/* Graph nodes: a click or Enter opens the task (on a run page, its task
 * instance; on a DAG page, its details). */
function openNode(g) {
  const r = parseRoute();
  const task = g.dataset.task;
  if (g.closest('[data-view="lineage"]')) return;
  if (r.name === "run") location.hash = route("run", r.args[0], r.args[1], task);
  else if (r.name === "dag") location.hash = route("dag", r.args[0]) + query({ task: task });
}
$("view").addEventListener("click", (ev) => {
  const g = ev.target.closest && ev.target.closest("g.node[data-task]");
  if (g) openNode(g);
});
/* Arrow keys on a focused graph node: to the nearest node that way (the
 * layout runs left to right: right is downstream, left upstream). */
const ARROWS = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] };
function nodeToward(g, dir) {
  const mid = (el) => { const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; };
  const [x0, y0] = mid(g);
  let best = null, bestD = Infinity;
  for (const n of g.ownerSVGElement.querySelectorAll("g.node[data-task]")) {
    if (n === g) continue;
    const [x, y] = mid(n);
    const along = (x - x0) * dir[0] + (y - y0) * dir[1];
    if (along <= 1) continue;
    const d = along + 2 * Math.abs((x - x0) * dir[1] - (y - y0) * dir[0]);
    if (d < bestD) { bestD = d; best = n; }
  }
  return best;
}
$("view").addEventListener("keydown", (ev) => {
  const g = ev.target.closest && ev.target.closest("g.node[data-task]");
  if (!g) return;
  if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); openNode(g); return; }
  const dir = ARROWS[ev.key];
  const next = dir && nodeToward(g, dir);
  if (next) {
    ev.preventDefault();
    next.focus();
    if (next.scrollIntoView) next.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
});

/* The page's icon, relative like every URL of the page: without it the
 * browser asks for /favicon.ico, outside a proxy's path prefix. */
const icon = document.createElement("link");
icon.rel = "icon";
icon.href = "favicon.ico";
document.head.appendChild(icon);

window.addEventListener("hashchange", refresh);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });

api("health").then((h) => { document.title = "Cairn " + h.version; }).catch(() => {});
api("whoami").then((w) => { userRole = w.role; shown = ""; refresh(); })
  .catch(() => { /* no role known: no action buttons */ });
refresh();
