#!/usr/bin/env bash
# What a new user trips over in the CLI, each a regression check: a backfill
# that was cancelled counts its runs as cancelled, not failed; `runs retry
# --wait` follows the run as `trigger --wait` does and exits with its
# result; a misspelt run id or task name gets a did-you-mean (`logs`, `runs
# show`). Then, against a stand-in for the scheduler that serves fixed
# answers (fields the scheduler is still being taught): `runs show` prints
# the params in effect (`params_effective`), and a failed task's summary
# shows the last lines of its stderr (`stderr_tail`, `--error-lines N`).
source "$(dirname "$0")/lib.sh"

put_dag bfc <<'YAML'
dag: bfc
schedule: "@daily"
start_date: 2026-01-01
end_date: 2026-01-08
catchup: false
defaults: {retries: 0}
tasks:
  nap: {command: [sh, -c, "if [ {{ ds }} = 2026-01-01 ]; then exit 1; fi; sleep 30 # bfc-marker-{{ ds }}"]}
YAML
put_dag flaky <<YAML
dag: flaky
defaults: {retries: 0}
tasks:
  prep: {command: [sh, -c, "echo prep"]}
  work:
    needs: [prep]
    command: [sh, -c, "echo err-1 >&2; echo err-2 >&2; sleep 0.5; [ -e $T/fixed ] || exit 3"]
  after: {needs: [work], command: ["true"]}
YAML
export CAIRN_NOW=2026-01-10T12:00:00Z
start_scheduler s
start_worker w1 --isolation none --slots 4
wait_until 10 bash -c '"$0" dags list --json | jq -e "[.dags[] | select(.dag == \"bfc\" or .dag == \"flaky\")] | length == 2"' "$CAIRN"

# --- a cancelled backfill: its runs are cancelled, not failed
"$CAIRN" backfill bfc --from 2026-01-01 --to 2026-01-04 --max-active-runs 2 --wait \
    >"$T/bf-wait.out" 2>&1 &
bf_wait=$!
PIDS+=("$bf_wait")
id=
wait_until 10 bash -c '"$0" backfill list --dag bfc --json | jq -e ".backfills | length == 1"' "$CAIRN"
id=$("$CAIRN" backfill list --dag bfc --json | jq -r '.backfills[0].id')
# (the [2] keeps pgrep from finding this very command line)
check "the backfill runs two dates at a time" wait_until 20 bash -c \
    'pgrep -f bfc-marker-2026-01-0[2] >/dev/null && pgrep -f bfc-marker-2026-01-0[3] >/dev/null'
out=$("$CAIRN" backfill cancel "$id")
check "backfill cancel counts the cancelled runs as cancelled" \
    grep -q "backfill $id cancelled: 3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped" <<<"$out"
check "  the API agrees (1 failed, 2 cancelled)" \
    test "$("$CAIRN" backfill show "$id" --json | jq -c '[.progress.failed, .progress.cancelled]')" = "[1,2]"
check "  backfill show" grep -q "^progress      3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped$" \
    <<<"$("$CAIRN" backfill show "$id")"
check "  backfill list" grep -q "$id .* 3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped" \
    <<<"$("$CAIRN" backfill list --dag bfc)"
kill_wait "$bf_wait" 0 # (signal 0: only wait for it)
check "  backfill --wait ends, exit 1 (not every run succeeded)" test "$EXIT_STATUS" = 1
check "  its last progress line counts them as cancelled" \
    grep -q "^$id: 3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped$" "$T/bf-wait.out"
check "  and it says how the backfill ended" grep -q "^backfill $id cancelled in " "$T/bf-wait.out"

# --- runs retry --wait follows the run, as trigger --wait does
r=$("$CAIRN" trigger flaky)
check "a run with a failing task fails" test "$(wait_run "$r" flaky)" = failed
out=$("$CAIRN" runs retry "$r" --dag flaky --wait 2>&1) && rc=0 || rc=$?
check "runs retry --wait of a run that fails again exits 1" test "$rc" = 1
check "  it prints each change of state, as trigger --wait" grep -Eq "^[0-9:]{8} work running \(attempt 2 on w1\)$" <<<"$out"
check "  the failure" grep -Eq "^[0-9:]{8} work failed: exit code 3$" <<<"$out"
check "  not the tasks that finished before the retry" bash -c '! grep -Eq "^[0-9:]{8} prep " <<<"$0"' "$out"
check "  then the task table" grep -Eq "^work +failed +2/[0-9]+ +w1 " <<<"$out"
check "  and how the run ended" grep -q "^run $r failed in " <<<"$out"
touch "$T/fixed"
out=$("$CAIRN" runs retry "$r" --dag flaky --wait 2>&1) && rc=0 || rc=$?
check "runs retry --wait once the cause is fixed exits 0" test "$rc" = 0
check "  the downstream task ran" grep -Eq "^[0-9:]{8} after success \(attempt 1" <<<"$out"
check "  and the run succeeded" grep -q "^run $r success in " <<<"$out"
out=$("$CAIRN" runs retry "$r" --dag flaky --wait --json 2>/dev/null) && rc=0 || rc=$?
check "runs retry --wait of a run with nothing to retry is an error" test "$rc" = 1
rm "$T/fixed"
r2=$("$CAIRN" trigger flaky --logical-date 2026-02-03T00:00:00Z)
check "another failed run" test "$(wait_run "$r2" flaky)" = failed
out=$("$CAIRN" runs retry "$r2" --dag flaky --wait --json 2>/dev/null) && rc=0 || rc=$?
check "runs retry --wait --json: exit 1, the final run as JSON" \
    bash -c '[ "$1" = 1 ] && jq -e ".state == \"failed\" and (.tasks[] | select(.task == \"work\") | .attempts) == 2" <<<"$0" >/dev/null' "$out" "$rc"

# --- did you mean: a misspelt task or run id
err=$("$CAIRN" logs "$r" wrok --dag flaky 2>&1 >/dev/null) && rc=0 || rc=$?
check "logs with a misspelt task exits 1" test "$rc" = 1
check "  the scheduler's message" grep -q "^cairn: run '$r' of DAG 'flaky' has no task 'wrok'$" <<<"$err"
check "  and a did-you-mean" grep -q "^  hint: did you mean 'work'?$" <<<"$err"
err=$("$CAIRN" logs "$r" zzzzzzzz --dag flaky 2>&1 >/dev/null) || true
check "logs with a task nothing like one: what the run has" \
    grep -q "^  hint: run '$r' has tasks prep, work, after$" <<<"$err"
err=$("$CAIRN" logs "$r" af 2>&1 >/dev/null) || true
check "logs with the start of a task name (and no --dag)" grep -q "^  hint: did you mean 'after'?$" <<<"$err"
bad_id=${r:0:-3}9Z
err=$("$CAIRN" logs "$bad_id" work --dag flaky 2>&1 >/dev/null) && rc=0 || rc=$?
check "logs with a misspelt run id exits 1" test "$rc" = 1
check "  the scheduler's message" grep -q "^cairn: no run '$bad_id' of DAG 'flaky'$" <<<"$err"
check "  and a did-you-mean" grep -q "^  hint: did you mean '$r'?$" <<<"$err"
err=$(timeout 10 "$CAIRN" logs "$bad_id" work --follow 2>&1 >/dev/null) && rc=0 || rc=$?
check "logs --follow with a misspelt run id stops at once (exit 1, not waiting)" test "$rc" = 1
check "  with the did-you-mean" grep -q "^  hint: did you mean '$r'?$" <<<"$err"
err=$("$CAIRN" runs show manual__2026-02-03 --dag flaky 2>&1 >/dev/null) && rc=0 || rc=$?
check "runs show with the start of a run id exits 1" test "$rc" = 1
check "  and names the run it starts" grep -q "^  hint: did you mean '$r2'?$" <<<"$err"
err=$("$CAIRN" runs show "$bad_id" 2>&1 >/dev/null) || true
check "runs show with a misspelt run id and no --dag" grep -q "^  hint: did you mean '$r'?$" <<<"$err"
err=$("$CAIRN" runs show nothing-like-any-run --dag flaky 2>&1 >/dev/null) || true
check "runs show with a run id nothing like one: the DAG's latest runs" \
    grep -q "^  hint: the latest runs of DAG 'flaky': $r2, $r$" <<<"$err"
err=$("$CAIRN" runs show "$r" --dag flakey 2>&1 >/dev/null) || true
check "runs show with the wrong --dag: where the run is" \
    grep -q "^  hint: run '$r' is a run of DAG 'flaky' (--dag flaky)$" <<<"$err"
check "runs show with the right id still works" "$CAIRN" runs show "$r" --dag flaky

# --- a stand-in for the scheduler, with fields it does not serve yet
cat >"$T/fake.py" <<'PY'
"""fake.py ANSWERS PORTFILE: answer "METHOD /path" (query left out) with the
JSON of ANSWERS; anything else is a 404 in the API's error shape."""
import http.server
import json
import sys

answers = json.load(open(sys.argv[1]))


class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        key = self.command + " " + self.path.split("?", 1)[0]
        body, status = answers.get(key), 200
        if body is None:
            status = 404
            body = {"error": {"code": "not_found", "message": "no such endpoint: " + key}}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass


s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[2], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 - "$T/answers.json" <<'PY'
import json, sys
tail = ["Traceback (most recent call last):", "  File \"/pipeline/train.py\", line 3", "    fit()",
        "  File \"/pipeline/train.py\", line 9, in fit", "    raise ValueError(x)",
        "ValueError: no rows\tleft", "exit \x1b[31mred\x1b[0m"]
task = lambda name, state, **kw: dict({"task": name, "state": state, "attempts": 1,
                                       "max_attempts": 1, "worker": "w1"}, **kw)
run = {"run_id": "r1", "dag": "d", "state": "failed", "run_type": "manual",
       "logical_date": "2026-01-01T00:00:00Z", "dag_version": "0123456789abcdef",
       "params": {"beta": "x"}, "params_effective": {"alpha": 1, "beta": "x", "gamma": "g"},
       "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:05Z",
       "tasks": [task("ok", "success", exit_code=0, stderr_tail=["not shown"]),
                 task("train", "failed", exit_code=3, error="exit code 3", stderr_tail=tail),
                 task("quiet", "failed", exit_code=1, error="exit code 1"),
                 task("down", "upstream_failed", attempts=0, error="upstream 'train' failed",
                      stderr_tail=["not shown either"])]}
old = dict(run, run_id="r0")
del old["params_effective"]
json.dump({"GET /api/v1/runs/r1": run, "GET /api/v1/runs/r0": old,
           "POST /api/v1/dags/d/trigger": dict(run, state="queued"),
           "POST /api/v1/runs/r1/retry": dict(run, state="queued")}, open(sys.argv[1], "w"))
PY
python3 "$T/fake.py" "$T/answers.json" "$T/fake.port" &
PIDS+=($!)
wait_until 10 test -s "$T/fake.port"
fake=http://127.0.0.1:$(cat "$T/fake.port")

out=$("$CAIRN" runs show r1 --dag d --server "$fake") || true
check "runs show prints the params in effect, defaults included" \
    grep -q "^params        alpha=1, beta=x, gamma=g$" <<<"$out"
out0=$("$CAIRN" runs show r0 --dag d --server "$fake") || true
check "  (an older scheduler without params_effective: the run's params)" \
    grep -q "^params        beta=x$" <<<"$out0"
want='train (attempt 1 of 1): exit code 3
        fit()
      File "/pipeline/train.py", line 9, in fit
        raise ValueError(x)
    ValueError: no rows	left
    exit ?[31mred?[0m
quiet (attempt 1 of 1): exit code 1
down: upstream '"'train'"' failed'
errs() { sed -n '/^train (attempt/,$p' <<<"$1" | sed '/^$/,$d'; }
check "a failed task's summary ends with the last 5 lines of its stderr, indented" \
    test "$(errs "$out")" = "$want"
out=$("$CAIRN" runs show r1 --dag d --server "$fake" --error-lines 1) || true
check "  --error-lines 1: the last line" test "$(errs "$out" | sed -n 2p)" = "    exit ?[31mred?[0m"
check "  and no other" test "$(errs "$out" | sed -n 3p)" = "quiet (attempt 1 of 1): exit code 1"
out=$("$CAIRN" runs show r1 --dag d --server "$fake" --error-lines 0) || true
check "  --error-lines 0: none" test "$(errs "$out" | sed -n 2p)" = "quiet (attempt 1 of 1): exit code 1"
out=$("$CAIRN" runs show r1 --dag d --server "$fake" --error-lines 50) || true
check "  --error-lines 50: all there are" test "$(errs "$out" | sed -n 2p)" = "    Traceback (most recent call last):"
check "  --error-lines takes a number" bash -c '"$0" runs show r1 --error-lines x --server "$1" 2>&1 | grep -q -- "--error-lines takes a number (0 or more), not '"'x'"'"' "$CAIRN" "$fake"
out=$("$CAIRN" trigger d --wait --server "$fake") && rc=0 || rc=$?
check "trigger --wait of a run that failed: exit 1" test "$rc" = 1
check "  with the same summary, stderr lines included" test "$(errs "$out")" = "$want"
out=$("$CAIRN" trigger d --wait --error-lines 0 --server "$fake") || true
check "  trigger --error-lines 0" test "$(errs "$out" | sed -n 2p)" = "quiet (attempt 1 of 1): exit code 1"
out=$("$CAIRN" runs retry r1 --dag d --wait --server "$fake") && rc=0 || rc=$?
check "runs retry --wait of a run that failed: exit 1" test "$rc" = 1
check "  with the same summary, stderr lines included" test "$(errs "$out")" = "$want"
out=$("$CAIRN" runs retry r1 --dag d --wait --error-lines 2 --server "$fake") || true
check "  runs retry --error-lines 2" test "$(errs "$out" | sed -n 3,4p)" = "    exit ?[31mred?[0m
quiet (attempt 1 of 1): exit code 1"
finish
