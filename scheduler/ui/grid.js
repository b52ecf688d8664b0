/* ---- the grid: runs as columns (by logical date, oldest first) x tasks ---- */

/* g: the answer of GET dags/D/grid. */
function gridHtml(dag, g) {
  const runs = g.runs || [], tasks = g.tasks || [];
  if (!runs.length) return html`<div class="panel" data-view="grid"><div class="empty">No runs
    yet.</div></div>`;
  const out = ['<div class="panel gridwrap" data-view="grid"><table class="grid"><thead><tr>' +
               '<th class="gtask">Task</th>'];
  for (const r of runs) {
    out.push('<th class="grun"><a class="cell s-' + esc(r.state) + '" data-run="' + esc(r.run_id) +
      '" data-state="' + esc(r.state) + '" href="' + esc(route("run", dag, r.run_id)) + '" title="' +
      esc(r.logical_date + " · " + r.run_id + " · " + r.state) + '">' + esc(letter(r.state)) +
      "</a></th>");
  }
  out.push("</tr></thead><tbody>");
  tasks.forEach((t, ti) => {
    out.push('<tr><th class="gtask" title="' + esc(t) + '">' + esc(t) + "</th>");
    for (let ri = 0; ri < runs.length; ri++) {
      const r = runs[ri];
      const st = (r.states || [])[ti] || "";
      if (!st) { out.push('<td><span class="cell none" data-task="' + esc(t) +
                          '" data-state="none"></span></td>'); continue; }
      out.push('<td><a class="cell s-' + st + '" data-task="' + esc(t) + '" data-state="' + st +
        '" data-run="' + esc(r.run_id) + '" data-row="' + ti + '" data-col="' + ri +
        '" tabindex="-1" href="' + esc(route("run", dag, r.run_id, t)) + '" title="' +
        esc(t + " · " + r.logical_date + " · " + st) + '">' + letter(st) + "</a></td>");
    }
    out.push("</tr>");
  });
  out.push("</tbody></table></div>");
  return raw(out.join(""));
}

/* Arrow keys move between grid cells; Enter follows the link (it is one). */
document.addEventListener("keydown", (ev) => {
  const cell = ev.target.closest && ev.target.closest("a.cell[data-row]");
  if (!cell) return;
  const d = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[ev.key];
  if (!d) return;
  const next = document.querySelector('a.cell[data-row="' + (Number(cell.dataset.row) + d[0]) +
                                      '"][data-col="' + (Number(cell.dataset.col) + d[1]) + '"]');
  if (next) { next.focus(); ev.preventDefault(); }
});
