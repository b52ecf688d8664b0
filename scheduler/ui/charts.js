/* ---- line charts of metrics across runs, drawn as SVG ---- */

/* series: [{x: label, y: number}] in order. */
function lineChart(title, series) {
  const W = 320, H = 140, L = 44, R = 8, T = 20, B = 22;
  const ys = series.map((p) => p.y);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (lo === hi) { lo -= 1; hi += 1; }
  const px = (i) => L + (series.length > 1 ? (i * (W - L - R)) / (series.length - 1) : (W - L - R) / 2);
  const py = (y) => T + ((hi - y) * (H - T - B)) / (hi - lo);
  const pts = series.map((p, i) => px(i).toFixed(1) + "," + py(p.y).toFixed(1)).join(" ");
  const dots = series.map((p, i) => '<circle cx="' + px(i).toFixed(1) + '" cy="' +
    py(p.y).toFixed(1) + '" r="2.5"><title>' + esc(p.x + ": " + p.y) + "</title></circle>").join("");
  const fmt = (v) => Number(v).toPrecision(3);
  return '<figure class="chart" data-metric="' + esc(title) + '"><svg width="' + W + '" height="' +
    H + '" viewBox="0 0 ' + W + " " + H + '"><text class="ctitle" x="' + L + '" y="13">' +
    esc(title) + '</text><line class="axis" x1="' + L + '" y1="' + T + '" x2="' + L + '" y2="' +
    (H - B) + '"/><line class="axis" x1="' + L + '" y1="' + (H - B) + '" x2="' + (W - R) + '" y2="' +
    (H - B) + '"/><text class="tick" x="' + (L - 4) + '" y="' + (T + 4) + '">' + fmt(hi) +
    '</text><text class="tick" x="' + (L - 4) + '" y="' + (H - B) + '">' + fmt(lo) +
    '</text><text class="tickx" x="' + L + '" y="' + (H - 6) + '">' +
    esc(series.length ? series[0].x : "") + '</text><text class="tickx end" x="' + (W - R) +
    '" y="' + (H - 6) + '">' + esc(series.length ? series[series.length - 1].x : "") +
    '</text><polyline points="' + pts + '"/>' + dots + "</svg></figure>";
}

/* m: the answer of GET dags/D/metrics (newest first): one chart a column. */
function metricCharts(m) {
  const cols = m.columns || [];
  if (!cols.length) return html`<div class="panel"><div class="empty">No metrics stored yet
    (a task's <code>metrics:</code> file).</div></div>`;
  const rows = (m.runs || []).slice().reverse();
  const charts = cols.map((c) => lineChart(c, rows.filter((r) => r.metrics &&
    typeof r.metrics[c] === "number").map((r) => ({ x: String(r.logical_date).slice(0, 10),
                                                     y: r.metrics[c] }))));
  return raw('<div class="charts" data-view="metrics">' + charts.join("") + "</div>");
}
