/* ---- the DAG graph: a layered left-to-right layout drawn as SVG ---- */

const NODE_W = 168, NODE_H = 34;
const DAGRE_MAX_NODES = 1500;   /* beyond this, the linear-time layout below */
const layoutCache = new Map();  /* key: DAG + version -> layout */

/* tasks: [{task, needs, mapped}]. Returns {nodes: {name: {x, y}} (centres),
 * edges: [{from, to, points: [{x, y}]}], width, height}. */
function graphLayout(key, tasks) {
  if (layoutCache.has(key)) return layoutCache.get(key);
  const lay = tasks.length <= DAGRE_MAX_NODES && typeof dagre !== "undefined"
    ? dagreLayout(tasks) : rankLayout(tasks);
  if (layoutCache.size > 8) layoutCache.clear();
  layoutCache.set(key, lay);
  return lay;
}

function dagreLayout(tasks) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 14, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const t of tasks) g.setNode(t.task, { width: NODE_W, height: NODE_H });
  for (const t of tasks) for (const n of t.needs || []) g.setEdge(n, t.task);
  dagre.layout(g);
  const nodes = {};
  for (const t of tasks) { const n = g.node(t.task); nodes[t.task] = { x: n.x, y: n.y }; }
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points }));
  const gr = g.graph();
  return { nodes: nodes, edges: edges, width: gr.width, height: gr.height };
}

/* Longest-path layers, then one barycentre pass to order each layer: linear
 * in tasks + edges, for DAGs too big for a full layered layout. */
function rankLayout(tasks) {
  const byName = new Map(tasks.map((t, i) => [t.task, i]));
  const rank = new Array(tasks.length).fill(-1);
  const rankOf = (i) => {
    const stack = [i];
    while (stack.length) {
      const j = stack[stack.length - 1];
      if (rank[j] >= 0) { stack.pop(); continue; }
      let r = 0, ready = true;
      for (const n of tasks[j].needs || []) {
        const k = byName.get(n);
        if (k === undefined) continue;
        if (rank[k] < 0) { stack.push(k); ready = false; } else r = Math.max(r, rank[k] + 1);
      }
      if (ready) { rank[j] = r; stack.pop(); }
    }
  };
  tasks.forEach((t, i) => rankOf(i));
  const layers = [];
  tasks.forEach((t, i) => { (layers[rank[i]] = layers[rank[i]] || []).push(i); });
  const pos = new Array(tasks.length).fill(0);
  layers.forEach((layer, r) => {
    if (r > 0) {
      const key = new Map(layer.map((i) => {
        const ns = (tasks[i].needs || []).map((n) => pos[byName.get(n)]).filter((p) => p >= 0);
        return [i, ns.length ? ns.reduce((a, b) => a + b, 0) / ns.length : 0];
      }));
      layer.sort((a, b) => key.get(a) - key.get(b));
    }
    layer.forEach((i, k) => { pos[i] = k; });
  });
  const nodes = {};
  const dx = NODE_W + 48, dy = NODE_H + 14;
  tasks.forEach((t, i) => { nodes[t.task] = { x: 8 + NODE_W / 2 + rank[i] * dx,
                                              y: 8 + NODE_H / 2 + pos[i] * dy }; });
  const edges = [];
  for (const t of tasks) for (const n of t.needs || []) {
    const a = nodes[n], b = nodes[t.task];
    if (a && b) edges.push({ from: n, to: t.task,
                             points: [{ x: a.x + NODE_W / 2, y: a.y }, { x: b.x - NODE_W / 2, y: b.y }] });
  }
  const tallest = Math.max(1, ...layers.map((l) => l.length));
  return { nodes: nodes, edges: edges, width: 16 + layers.length * dx - 48,
           height: 16 + tallest * dy - 14 };
}

/* Above this many tasks only the nodes and edges in and near the visible
 * part of the graph are in the page, drawn again as it scrolls. */
const GRAPH_VIRTUAL_MIN = 2000;
let graphVirtual = null;  /* {tasks, lay, info, selected} of the graph shown */

function nodeSvg(t, n, i, selected) {
  const st = i.state || "none";
  const x = n.x - NODE_W / 2, y = n.y - NODE_H / 2;
  const label = t.task.length > 20 ? t.task.slice(0, 19) + "…" : t.task;
  let bar = "";
  if (t.mapped || i.map) {
    const m = i.map || {};
    const c = m.counts || {};
    const done = ENDED.reduce((a, s) => a + (c[s] || 0), 0);
    const w = m.n ? Math.round(((NODE_W - 12) * done) / m.n) : 0;
    bar = '<rect class="mapbar" x="' + (x + 6) + '" y="' + (y + NODE_H - 6) + '" width="' +
          (NODE_W - 12) + '" height="3"/><rect class="mapbar-done" x="' + (x + 6) + '" y="' +
          (y + NODE_H - 6) + '" width="' + w + '" height="3"/><text class="mapn" x="' +
          (x + NODE_W - 6) + '" y="' + (y + 13) + '">' + done + "/" + (m.n === undefined ? "?" : m.n) +
          "</text>";
  }
  return '<g class="node s-' + esc(st) + (t.task === selected ? " selected" : "") +
    '" data-task="' + esc(t.task) + '" data-state="' + esc(st) + '" tabindex="0" role="button"' +
    ' aria-label="' + esc(t.task + ": " + st) + '"><title>' + esc(t.task + " · " + st) +
    '</title><rect x="' + x + '" y="' + y + '" width="' + NODE_W + '" height="' + NODE_H +
    '" rx="5"/><text class="nletter" x="' + (x + 12) + '" y="' + (n.y + 4) + '">' +
    esc(i.state ? letter(st) : "·") + '</text><text class="nlabel" x="' + (x + 26) + '" y="' +
    (n.y + 4) + '">' + esc(label) + "</text>" + bar + "</g>";
}

const edgeSvg = (e) => '<path class="edge" d="' + e.points.map((p, i) => (i ? "L" : "M") +
  p.x.toFixed(1) + " " + p.y.toFixed(1)).join("") + '" marker-end="url(#arrow)"/>';

/* The nodes and edges of lay inside box {x0, y0, x1, y1} (all if null). */
function graphParts(tasks, lay, info, selected, box) {
  const inBox = (p) => !box || (p.x >= box.x0 - NODE_W && p.x <= box.x1 + NODE_W &&
                                p.y >= box.y0 - NODE_H && p.y <= box.y1 + NODE_H);
  const parts = [];
  for (const e of lay.edges) {
    if (!box || inBox(e.points[0]) || inBox(e.points[e.points.length - 1])) parts.push(edgeSvg(e));
  }
  for (const t of tasks) {
    const n = lay.nodes[t.task];
    if (n && inBox(n)) parts.push(nodeSvg(t, n, info(t.task) || {}, selected));
  }
  return parts.join("");
}

/* The SVG of a layout: info(name) -> {state, map: {n, counts}} or null.
 * selected: a task name to outline. A big graph is drawn by graphPaint()
 * once the view is in the page. */
function graphSvg(tasks, lay, info, selected, view) {
  const virtual = tasks.length >= GRAPH_VIRTUAL_MIN;
  if (virtual) graphVirtual = { tasks: tasks, lay: lay, info: info, selected: selected };
  const w = Math.ceil(lay.width), h = Math.ceil(lay.height);
  return raw('<div class="panel graphwrap" data-view="' + (view || "graph") + '" data-nodes="' +
    tasks.length + '"' +
    (virtual ? ' data-virtual="true"' : "") + '><svg class="graph" width="' + w + '" height="' + h +
    '" viewBox="0 0 ' + w + " " + h + '"><defs><marker id="arrow" viewBox="0 0 8 8" refX="8" ' +
    'refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L8 4L0 8z" ' +
    'class="arrowhead"/></marker></defs><g class="layer">' +
    (virtual ? "" : graphParts(tasks, lay, info, selected, null)) + "</g></svg></div>");
}

/* Draw the visible part of a big graph (a no-op for a small one). */
function graphPaint() {
  const wrap = document.querySelector('.graphwrap[data-virtual="true"]');
  if (!wrap || !graphVirtual) return;
  const v = graphVirtual;
  const pad = 400;
  const box = { x0: wrap.scrollLeft - pad, y0: wrap.scrollTop - pad,
                x1: wrap.scrollLeft + wrap.clientWidth + pad, y1: wrap.scrollTop + wrap.clientHeight + pad };
  const s = graphParts(v.tasks, v.lay, v.info, v.selected, box);
  const layer = wrap.querySelector("g.layer");
  if (layer.painted !== s) {
    const focus = document.activeElement && document.activeElement.dataset &&
                  document.activeElement.dataset.task;
    layer.innerHTML = s;
    layer.painted = s;
    if (focus) {
      const g = layer.querySelector('g.node[data-task="' + CSS.escape(focus) + '"]');
      if (g) g.focus({ preventScroll: true });
    }
  }
}

let graphPaintPending = false;
document.addEventListener("scroll", (ev) => {
  if (!ev.target.classList || !ev.target.classList.contains("graphwrap") || graphPaintPending) return;
  graphPaintPending = true;
  requestAnimationFrame(() => { graphPaintPending = false; graphPaint(); });
}, true);
