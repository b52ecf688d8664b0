#!/usr/bin/env bash
# --log-format json: both daemons write one JSON object per line (ts, level,
# msg_id, msg), through a run with a failing task and a stop; a format
# that does not exist is refused before anything starts.
source "$(dirname "$0")/lib.sh"

put_dag j <<'EOF2'
dag: j
tasks:
  ok: {command: ["true"]}
  bad: {command: [sh, -c, 'echo "quote \" and tab	and ü" >&2; exit 1']}
EOF2

out=$("$SCHED" --dags "$T/dags" --data "$T/x" --log-format xml 2>&1) && rc=0 || rc=$?
check "the scheduler refuses --log-format xml (exit 2)" [ "$rc" = 2 ]
check "... saying what it takes" grep -q "text or json" <<<"$out"
out=$("$WORKER" --scheduler tcp://127.0.0.1:1 --data "$T/y" --log-format xml 2>&1) && rc=0 || rc=$?
check "the worker refuses --log-format xml (exit 2)" [ "$rc" = 2 ]

start_scheduler s --log-format json
start_worker w1 --slots 2 --isolation none --log-format json
RUN=$("$CAIRN" trigger j)
check "the run failed" [ "$(wait_run "$RUN" j 30)" = failed ]
kill_wait "$PID_w1"
forget_pid "$PID_w1"

# every line: an object with the four fields, a known level, a CAIRN- id
lint() {
    /usr/bin/python3 - "$1" <<'PY'
import json, re, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    assert isinstance(o, dict), line
    for k in ("ts", "level", "msg_id", "msg"):
        assert isinstance(o.get(k), str), (k, line)
    assert o["level"] in ("error", "warn", "notice", "info", "debug"), line
    assert o["msg_id"].startswith("CAIRN-"), line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["ts"]), line
    n += 1
assert n >= 3, n
PY
}
check "every scheduler log line is a JSON object with ts, level, msg_id, msg" lint "$T/s.log"
check "every worker log line is a JSON object with ts, level, msg_id, msg" lint "$T/w1.log"
check "the scheduler's start is a JSON line" \
    grep -q '"msg_id":"CAIRN-START"' "$T/s.log"
check "the worker's stop is a JSON line" grep -q '"msg_id":"CAIRN-STOPPED"' "$T/w1.log"
check "the failed task is logged by id" grep -q '"msg_id":"CAIRN-TASK-EXIT"' "$T/w1.log"

finish
