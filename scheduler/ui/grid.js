/* ---- the grid: runs as columns (by logical date, oldest first) x tasks ----
 *
 * Virtualised: the view's HTML is only a scroll box the size of the whole
 * grid; gridPaint() puts in it the cells, task names and run heads of the
 * rows and columns in and near the visible part, and again as it scrolls,
 * so a grid of 300 tasks x 1,000 runs holds a few hundred cells, not
 * 300,000. The sticky head row and name column stay in place. */

const GRID_CELL = 18;     /* px per row and per column */
const GRID_HEAD = 24;     /* the run heads' row */
const GRID_OVERSCAN = 6;  /* rows / columns drawn beyond the visible ones */
const GRID_BLOCK = 16;    /* the drawn part starts and ends at multiples of this, so
                             scrolling by a row or a few draws nothing new */
let gridVirtual = null;   /* {dag, g, labelW} of the grid shown */
const gridSel = new Map(); /* dag -> {row, col}: the selected cell */
const gridScroll = new Map(); /* dag -> {left, top} as it was left */

/* g: the answer of GET dags/D/grid. */
function gridHtml(dag, g) {
  const runs = g.runs || [], tasks = g.tasks || [];
  if (!runs.length) return html`<div class="panel" data-view="grid"><div class="empty">No runs
    yet.</div></div>`;
  const longest = tasks.reduce((m, t) => Math.max(m, t.length), 4);
  const labelW = Math.min(220, 20 + 7 * longest);
  gridVirtual = { dag: dag, g: g, labelW: labelW };
  const w = labelW + runs.length * GRID_CELL + 4, h = GRID_HEAD + tasks.length * GRID_CELL + 4;
  return html`<div class="panel gridwrap" data-view="grid" data-dag="${dag}"
    data-rows="${tasks.length}" data-cols="${runs.length}" tabindex="0" role="region"
    aria-label="runs by tasks; arrow keys move, Enter opens"
    ><div class="gsizer" style="width: ${w}px; height: ${h}px"><div class="ghead" style="width: ${w
    }px; height: ${GRID_HEAD}px"><div class="gcorner" style="width: ${labelW}px">Task</div
    ><div class="gheads"></div></div><div class="glabels" style="width: ${labelW}px; height: ${
    tasks.length * GRID_CELL}px"></div><div class="gcells"></div></div></div>`;
}

/* The rows and columns in view (with the overscan) of wrap. */
function gridWindow(wrap, v) {
  const nr = v.g.tasks.length, nc = v.g.runs.length;
  const down = (x) => Math.max(0, Math.floor(x / GRID_BLOCK) * GRID_BLOCK);
  const up = (x, n) => Math.min(n, Math.ceil(x / GRID_BLOCK) * GRID_BLOCK);
  const c0 = down(Math.floor(wrap.scrollLeft / GRID_CELL) - GRID_OVERSCAN);
  const c1 = up(Math.ceil((wrap.scrollLeft + wrap.clientWidth - v.labelW) / GRID_CELL) +
                GRID_OVERSCAN, nc);
  const r0 = down(Math.floor(wrap.scrollTop / GRID_CELL) - GRID_OVERSCAN);
  const r1 = up(Math.ceil((wrap.scrollTop + wrap.clientHeight - GRID_HEAD) / GRID_CELL) +
                GRID_OVERSCAN, nr);
  return { r0: r0, r1: r1, c0: c0, c1: c1 };
}

/* Mark the selected cell (drawn apart from the cells, so that moving the
 * selection redraws nothing). */
function gridMark(wrap, v) {
  const sel = gridSel.get(v.dag);
  const old = wrap.querySelector(".gcells .cell.sel");
  const el = sel ? wrap.querySelector('.gcells [data-row="' + sel.row + '"][data-col="' + sel.col +
                                      '"]') : null;
  if (old && old !== el) { old.classList.remove("sel"); old.removeAttribute("aria-current"); }
  if (el) { el.classList.add("sel"); el.setAttribute("aria-current", "true"); }
}

function gridCell(v, ri, ti) {
  const r = v.g.runs[ri], t = v.g.tasks[ti];
  const st = (r.states || [])[ti] || "";
  const pos = 'style="left: ' + (v.labelW + ri * GRID_CELL) + "px; top: " +
              (GRID_HEAD + ti * GRID_CELL) + 'px"';
  if (!st) return '<span class="cell none" ' + pos + ' data-task="' + esc(t) + '" data-run="' +
                  esc(r.run_id) + '" data-state="none" data-row="' + ti + '" data-col="' + ri +
                  '" tabindex="-1" title="' + esc(t + " · not in this run") + '"></span>';
  return '<a class="cell s-' + esc(st) + '" ' + pos + ' data-task="' +
    esc(t) + '" data-state="' + esc(st) + '" data-run="' + esc(r.run_id) + '" data-row="' + ti +
    '" data-col="' + ri + '" tabindex="-1' +
    '" href="' + esc(route("run", v.dag, r.run_id, t)) + '" title="' +
    esc(t + " · " + r.logical_date + " · " + st) + '">' + esc(letter(st)) + "</a>";
}

/* Draw the part of the grid in view (a no-op when no grid is shown). */
function gridPaint() {
  const wrap = document.querySelector('.gridwrap[data-rows]');
  const v = gridVirtual;
  if (!wrap || !v || wrap.dataset.dag !== v.dag) return;
  if (!wrap.placed) {  /* a new box: where this DAG's grid was left, else the newest runs */
    wrap.placed = true;
    const at = gridScroll.get(v.dag);
    wrap.scrollLeft = at ? at.left : wrap.scrollWidth;
    wrap.scrollTop = at ? at.top : 0;
  }
  gridScroll.set(v.dag, { left: wrap.scrollLeft, top: wrap.scrollTop });
  const win = gridWindow(wrap, v);
  const heads = [], labels = [], cells = [];
  for (let ri = win.c0; ri < win.c1; ri++) {
    const r = v.g.runs[ri];
    heads.push('<a class="cell s-' + esc(r.state) + '" style="left: ' + (v.labelW + ri * GRID_CELL) +
      'px" data-run="' + esc(r.run_id) + '" data-state="' + esc(r.state) + '" href="' +
      esc(route("run", v.dag, r.run_id)) + '" title="' + esc(r.logical_date + " · " + r.run_id +
      " · " + r.state) + '">' + esc(letter(r.state)) + "</a>");
  }
  for (let ti = win.r0; ti < win.r1; ti++) {
    const t = v.g.tasks[ti];
    labels.push('<div class="gtask" style="top: ' + (ti * GRID_CELL) + "px; width: " + v.labelW +
      'px" title="' + esc(t) + '">' + esc(t) + "</div>");
    for (let ri = win.c0; ri < win.c1; ri++) cells.push(gridCell(v, ri, ti));
  }
  const s = heads.join("") + "\u0000" + labels.join("") + "\u0000" + cells.join("");
  if (wrap.painted === s) { gridMark(wrap, v); return; }
  const focus = document.activeElement && document.activeElement.closest &&
                document.activeElement.closest(".gridwrap .cell[data-row]");
  wrap.painted = s;
  wrap.querySelector(".gheads").innerHTML = heads.join("");
  wrap.querySelector(".glabels").innerHTML = labels.join("");
  wrap.querySelector(".gcells").innerHTML = cells.join("");
  gridMark(wrap, v);
  if (focus) gridFocus(wrap, Number(focus.dataset.row), Number(focus.dataset.col), false);
}

/* Select the cell at (row, col), scrolling it into view and drawing it;
 * focus it. Returns whether there is such a cell. */
function gridFocus(wrap, row, col, scroll) {
  const v = gridVirtual;
  if (!v || row < 0 || col < 0 || row >= v.g.tasks.length || col >= v.g.runs.length) return false;
  if (scroll) {
    const x = col * GRID_CELL, y = row * GRID_CELL;
    const viewW = wrap.clientWidth - v.labelW, viewH = wrap.clientHeight - GRID_HEAD;
    if (x < wrap.scrollLeft) wrap.scrollLeft = x;
    else if (x + GRID_CELL > wrap.scrollLeft + viewW) wrap.scrollLeft = x + GRID_CELL - viewW;
    if (y < wrap.scrollTop) wrap.scrollTop = y;
    else if (y + GRID_CELL > wrap.scrollTop + viewH) wrap.scrollTop = y + GRID_CELL - viewH;
    gridSel.set(v.dag, { row: row, col: col });
    gridPaint();
  }
  const el = wrap.querySelector('.gcells [data-row="' + row + '"][data-col="' + col + '"]');
  if (el) el.focus({ preventScroll: true });
  return true;
}

/* Arrow keys move the selected cell (Home / End: first / last run, PageUp /
 * PageDown: a screen of tasks); Enter follows its link (it is one). On the
 * grid's box itself, an arrow key selects the cell selected last (or the
 * newest run's first task). */
document.addEventListener("keydown", (ev) => {
  const wrap = ev.target.closest && ev.target.closest(".gridwrap[data-rows]");
  if (!wrap || !gridVirtual) return;
  const cell = ev.target.closest(".cell[data-row]");
  const page = Math.max(1, Math.floor((wrap.clientHeight - GRID_HEAD) / GRID_CELL) - 1);
  const d = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0],
              PageUp: [-page, 0], PageDown: [page, 0] }[ev.key];
  const last = gridVirtual.g.runs.length - 1;
  if (!cell) {
    if (!d && ev.key !== "Enter") return;
    const sel = gridSel.get(gridVirtual.dag) || { row: 0, col: last };
    if (gridFocus(wrap, sel.row, sel.col, true)) ev.preventDefault();
    return;
  }
  const row = Number(cell.dataset.row), col = Number(cell.dataset.col);
  let next = null;
  if (d) next = [Math.min(Math.max(0, row + d[0]), gridVirtual.g.tasks.length - 1),
                 Math.min(Math.max(0, col + d[1]), last)];
  else if (ev.key === "Home") next = [row, 0];
  else if (ev.key === "End") next = [row, last];
  if (!next) return;
  ev.preventDefault();
  gridFocus(wrap, next[0], next[1], true);
});

/* A click on a cell selects it (and opens it: it is a link). */
document.addEventListener("click", (ev) => {
  const cell = ev.target.closest && ev.target.closest(".gridwrap a.cell[data-row]");
  if (cell && gridVirtual) gridSel.set(gridVirtual.dag, { row: Number(cell.dataset.row),
                                                          col: Number(cell.dataset.col) });
});

let gridPaintPending = false;
document.addEventListener("scroll", (ev) => {
  if (!ev.target.classList || !ev.target.classList.contains("gridwrap") || gridPaintPending) return;
  gridPaintPending = true;
  requestAnimationFrame(() => { gridPaintPending = false; gridPaint(); });
}, true);
window.addEventListener("resize", () => gridPaint());
