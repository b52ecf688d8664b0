/* ---- log viewer: follows one attempt's log by polling with offset ---- */

const log = { key: null, dag: null, run: null, task: null, attempt: null, latest: true,
              offset: 0, complete: false, busy: false, timer: null, gen: 0, chars: 0 };

/* Start showing a log (attempt null: the latest); keeps going if already shown. */
function logOpen(dag, run, task, attempt, force) {
  const key = [dag, run, task, attempt || ""].join("/");
  $("logpanel").hidden = false;
  if (log.key === key && !force) return;
  clearTimeout(log.timer);
  Object.assign(log, { key: key, dag: dag, run: run, task: task, latest: !attempt,
                       attempt: attempt ? Number(attempt) : null, offset: 0, complete: false,
                       busy: false, gen: log.gen + 1, chars: 0 });
  $("log").textContent = "";
  $("log-matches").textContent = "";
  $("log-search").value = "";
  $("log-title").textContent = "Log · " + task;
  $("log-state").textContent = "loading";
  logPoll();
}

function logFollowing(on) { $("logpanel").dataset.following = on ? "true" : "false"; }

function logClose() {
  clearTimeout(log.timer);
  logFollowing(false);
  Object.assign(log, { key: null, gen: log.gen + 1 });
  $("logpanel").hidden = true;
}

function logAppend(text) {
  const pre = $("log");
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 30;
  pre.appendChild(document.createTextNode(text));
  log.chars += text.length;
  while (log.chars > LOG_MAX_CHARS && pre.firstChild !== pre.lastChild) {
    log.chars -= pre.firstChild.textContent.length;
    pre.removeChild(pre.firstChild);
  }
  if (atBottom) pre.scrollTop = pre.scrollHeight;
  if ($("log-search").value) logSearch();
}

/* Search: the count of matching lines, and the first one scrolled to. */
function logSearch() {
  const q = $("log-search").value;
  const text = $("log").textContent;
  if (!q) { $("log-matches").textContent = ""; return; }
  const lines = text.split("\n");
  const lq = q.toLowerCase();
  const hits = lines.filter((l) => l.toLowerCase().includes(lq)).length;
  $("log-matches").textContent = hits + (hits === 1 ? " line" : " lines");
  $("log-matches").dataset.hits = String(hits);
  const at = text.toLowerCase().indexOf(lq);
  if (at >= 0) {
    const line = text.slice(0, at).split("\n").length - 1;
    const pre = $("log");
    pre.scrollTop = (line * pre.scrollHeight) / Math.max(1, lines.length) - pre.clientHeight / 3;
  }
}

$("log-search").addEventListener("input", logSearch);

$("log-download").addEventListener("click", () => {
  const blob = new Blob([$("log").textContent], { type: "text/plain" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = (log.task || "task") + "-attempt-" + (log.attempt || 0) + ".log";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
});

async function logPoll() {
  const gen = log.gen;
  if (log.busy || log.complete) return;
  log.busy = true;
  try {
    for (;;) {
      let c;
      try {
        c = await api(taskPath(log.dag, log.run, log.task, "/logs",
                               { attempt: log.attempt, offset: log.offset }));
      } catch (e) {
        if (e.status !== 404 || log.offset !== 0) throw e;
        if (gen === log.gen) $("log-state").textContent = "waiting for the task to start";
        break;
      }
      if (gen !== log.gen) return;
      if (log.attempt === null && !c.attempt) {   /* attempt 0: not started yet */
        $("log-state").textContent = "waiting for the task to start";
        break;
      }
      if (log.attempt === null) log.attempt = c.attempt;
      if (c.data) logAppend(c.data);
      const moved = c.next_offset > log.offset;
      log.offset = c.next_offset;
      log.complete = Boolean(c.complete || c.final) && !moved;
      logFollowing(!log.complete);
      $("log-state").textContent = "attempt " + log.attempt +
        (!log.complete ? " · following"
         : c.log_lost ? " · incomplete: " + c.log_lost + " bytes could not be stored"
         : " · complete");
      if (!moved) break;
    }
  } catch (e) {
    if (gen === log.gen) $("log-state").textContent = "cannot load the log: " + e.message;
  } finally {
    if (gen === log.gen) {
      log.busy = false;
      if (!log.complete) log.timer = setTimeout(logPoll, LOG_POLL_MS);
    }
  }
}

/* Refresh the attempt buttons; when following the latest attempt and a retry
   started after the shown one ended, switch to the new one. */
async function logAttempts(task) {
  const gen = log.gen;
  const res = await api(taskPath(log.dag, log.run, log.task, "/attempts"));
  if (gen !== log.gen) return;
  if (log.latest && log.complete && task && task.attempts > log.attempt) {
    logOpen(log.dag, log.run, log.task, null, true);
  } else if (task && !task.attempts && ENDED.includes(task.state)) {
    clearTimeout(log.timer);
    log.complete = true;
    logFollowing(false);
    $("log-state").textContent = "no log: the task ended without running";
  }
  $("log-attempts").innerHTML = part((res.attempts || []).map((a) => html`<button
      data-attempt="${a.attempt}" class="${a.attempt === log.attempt ? "active" : ""}"
      title="${a.state}${a.worker ? " on " + a.worker : ""}${a.error ? ": " + a.error : ""}"
      >attempt ${a.attempt}</button>`));
}

$("log-attempts").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-attempt]");
  if (b) location.hash = route("run", log.dag, log.run, log.task, b.dataset.attempt);
});
