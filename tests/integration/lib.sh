# Shared helpers for integration tests (sourced). Each test runs the real
# binaries from $CAIRN_BIN in its own folder $T (under $TMPDIR or /tmp) and
# fails if anything it started outlives it (see cleanup). KEEP=1 keeps $T.
set -euo pipefail
: "${CAIRN_BIN:?set CAIRN_BIN to the build folder}"
: "${CAIRN_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CAIRN=$CAIRN_BIN/cli/cairn
SCHED=$CAIRN_BIN/scheduler/cairn-scheduler
WORKER=$CAIRN_BIN/worker/cairn-worker
T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-it.XXXXXX")
PIDS=()
FAILS=0
CHECKS=0

# Everything a test started must be gone when it ends. cleanup stops the
# processes in PIDS (SIGTERM; one still there after 10 s is killed and is a
# leftover) and then looks for what is left: any other process whose
# command line, environment, working folder or open files name $T (children
# of the daemons, `sh -c` tasks, a CLI left running), and any container
# under a runc root in $T. Each leftover is named, fails the test, and is
# killed or deleted all the same. A test that defines a function teardown
# has it called then (to unmount what it mounted in $T).
LEFTOVERS=0

leftover() {
    LEFTOVERS=$((LEFTOVERS + 1))
    echo "not ok - leftover: $*"
}

# cmdline PID -> the process's command line, shortened
cmdline() {
    tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | cut -c1-100 | sed 's/ *$//' || true
}

# test_procs -> the live processes, other than this shell, that name $T
test_procs() {
    local p
    # grep reads the pattern from a pipe, so its own command line does not match
    {
        grep -lsF -f <(printf '%s\n' "$T") /proc/[0-9]*/cmdline /proc/[0-9]*/environ || true
        find /proc/[0-9]*/cwd /proc/[0-9]*/fd -maxdepth 1 -lname "$T*" 2>/dev/null || true
    } | sed -n 's|^/proc/\([0-9]*\)/.*|\1|p' | sort -un | while read -r p; do
        # (not a zombie or a kernel thread: those have an empty command line)
        if [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] &&
            IFS= read -r -d '' _ 2>/dev/null <"/proc/$p/cmdline"; then
            echo "$p"
        fi
    done
    return 0
}

# runc_roots -> the runc state folders of this test's workers
runc_roots() {
    find "$T" -maxdepth 3 -type d -name runc 2>/dev/null || true
}

cleanup() {
    local rc=$? p left i r c
    cd / # so that nothing started from here has a working folder in $T
    for p in "${PIDS[@]:-}"; do
        # only a child of this shell: an id that exited may have been reused
        [ -n "$p" ] && [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = $$ ] &&
            kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = $$ ] || continue
        if ! timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null; then
            leftover "process $p ($(cmdline "$p")) ignored SIGTERM for 10 s: killed"
            # where it is stuck, for the report (gdb is optional)
            if command -v gdb >/dev/null; then
                gdb -batch -p "$p" -ex "thread apply all bt" 2>/dev/null |
                    grep -E '^(Thread|#)' | head -80 | sed 's/^/# /' || true
            fi
            { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true
        fi
    done
    # what the stopped processes started goes with them: give it 3 s
    left=
    for i in $(seq 1 30); do
        left=$(test_procs)
        [ -z "$left" ] && break
        sleep 0.1
    done
    for p in $left; do
        [ -e "/proc/$p" ] || continue # (gone since the last look)
        leftover "process $p ($(cmdline "$p")) is still running after the test: killed"
        { kill -KILL "$p" && wait "$p"; } 2>/dev/null || true # (wait: if it is this shell's)
    done
    for r in $(runc_roots); do
        for c in $(runc --root "$r" list -q 2>/dev/null); do
            leftover "container $c is still in $r: deleted"
            runc --root "$r" delete -f "$c" >/dev/null 2>&1 || true
        done
    done
    # a test's own teardown (unmounting what it mounted), once all is stopped
    if declare -F teardown >/dev/null; then teardown || true; fi
    if [ "$LEFTOVERS" -ne 0 ]; then
        echo "# $LEFTOVERS processes or containers outlived the test"
        [ "$rc" -ne 0 ] || rc=1
    else
        echo "# every process and container this test started is gone"
    fi
    if [ "${KEEP:-0}" = 1 ] || [ "$FAILS" -ne 0 ] || [ "$rc" -ne 0 ]; then
        echo "test files kept in $T"
        for f in "$T"/*.log; do if [ -f "$f" ]; then echo "--- $f (tail)"; tail -n 30 "$f"; fi; done
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
finish() {
    echo "$((CHECKS - FAILS)) passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}

# free_port: a port nobody listens on now (bind, read, close). Only for
# what cannot take port 0: the daemons can (see start_scheduler).
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_scheduler NAME [extra args]: sets HTTP_PORT, NNG_PORT, NNG_URL,
# CAIRN_SERVER. The first start binds port 0 for both and reads the ports
# from the CAIRN-START line; a restart (HTTP_PORT and NNG_PORT still set)
# takes the same ports again, so workers and the CLI find it where it was.
start_scheduler() {
    local name=$1; shift
    local before line i n
    mkdir -p "$T/dags" "$T/$name"
    before=$(grep -c CAIRN-START "$T/$name.log" 2>/dev/null || true)
    "$SCHED" --dags "$T/dags" --data "$T/$name" --listen "tcp://127.0.0.1:${NNG_PORT:-0}" \
        --http "127.0.0.1:${HTTP_PORT:-0}" "$@" >>"$T/$name.log" 2>&1 &
    SCHED_PID=$!
    PIDS+=("$SCHED_PID")
    line=
    for i in $(seq 1 100); do
        n=$(grep -c CAIRN-START "$T/$name.log" 2>/dev/null || true)
        if [ "${n:-0}" -gt "${before:-0}" ]; then
            line=$(grep CAIRN-START "$T/$name.log" | tail -n 1)
            break
        fi
        kill -0 "$SCHED_PID" 2>/dev/null || break
        sleep 0.1
    done
    # "... workers tcp://127.0.0.1:PORT, http 127.0.0.1:PORT, models ..."
    NNG_PORT=$(sed -n 's/.* workers tcp:\/\/127\.0\.0\.1:\([0-9]*\), http .*/\1/p' <<<"$line")
    HTTP_PORT=$(sed -n 's/.*, http 127\.0\.0\.1:\([0-9]*\), .*/\1/p' <<<"$line")
    if [ -z "$NNG_PORT" ] || [ -z "$HTTP_PORT" ] || [ "$NNG_PORT" = 0 ] || [ "$HTTP_PORT" = 0 ]; then
        echo "scheduler $name did not come up (no CAIRN-START line with its ports)" >&2
        return 1
    fi
    NNG_URL=tcp://127.0.0.1:$NNG_PORT
    export CAIRN_SERVER=http://127.0.0.1:$HTTP_PORT
    wait_http
}

wait_http() {
    local i
    for i in $(seq 1 100); do
        curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "scheduler did not come up" >&2
    return 1
}

# start_worker NAME [extra args]: returns once this process registered
# (a worker started again under the same name is known to the scheduler
# before it registers)
start_worker() {
    local name=$1; shift
    mkdir -p "$T/$name"
    local before
    before=$(grep -c CAIRN-WORKER-REGISTERED "$T/$name.log" 2>/dev/null || true)
    "$WORKER" --scheduler "$NNG_URL" --data "$T/$name" --name "$name" "$@" \
        >>"$T/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_$name=$pid"
    local i
    for i in $(seq 1 100); do
        if [ "$(grep -c CAIRN-WORKER-REGISTERED "$T/$name.log" 2>/dev/null)" -gt "${before:-0}" ] &&
            "$CAIRN" workers --json 2>/dev/null | grep -q "\"$name\""; then
            return 0
        fi
        sleep 0.1
    done
    echo "worker $name did not register" >&2
    return 1
}

# run_state RUN_ID DAG -> prints the run's state
run_state() {
    "$CAIRN" runs show "$1" --dag "$2" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}

# wait_run RUN_ID DAG [SECONDS]: wait until the run is success, failed or cancelled
wait_run() {
    local i s
    for i in $(seq 1 $((${3:-60} * 10))); do
        s=$(run_state "$1" "$2" 2>/dev/null || true)
        case $s in success|failed|cancelled) echo "$s"; return 0 ;; esac
        sleep 0.1
    done
    echo timeout
}

# ti FIELD RUN DAG TASK -> a task instance's field
ti() {
    "$CAIRN" runs show "$2" --dag "$3" --json |
        /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); t=[x for x in r["tasks"] if x["task"]==sys.argv[2]][0]; v=t[sys.argv[1]]; print("null" if v is None else (str(v).lower() if isinstance(v,bool) else v))' "$1" "$4"
}

# put_dag NAME: write stdin to $T/dags/NAME.yaml
put_dag() {
    mkdir -p "$T/dags"
    cat >"$T/dags/$1.yaml"
}

# rj RUN DAG JQ_FILTER -> the filter applied to `cairn runs show --json`
rj() {
    "$CAIRN" runs show "$1" --dag "$2" --json | jq -r "$3"
}

# urlenc TEXT
urlenc() {
    jq -rn --arg s "$1" '$s|@uri'
}

# attempts RUN DAG TASK -> the attempts API answer
attempts() {
    curl -sf "$CAIRN_SERVER/api/v1/runs/$(urlenc "$1")/tasks/$3/attempts?dag=$2"
}

# wait_until SECONDS COMMAND...: retry COMMAND every 0.1 s until it succeeds
wait_until() {
    local n=$1 i
    shift
    for i in $(seq 1 $((n * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# kill_wait PID [SIGNAL]: signal a process this test started and wait for
# it; one still there after 15 s gets SIGKILL. Sets EXIT_STATUS (call it
# outside a subshell: `wait` needs the process to be this shell's child).
kill_wait() {
    EXIT_STATUS=0
    { # (bash reports a job killed by a signal on stderr: not news here)
        kill "-${2:-TERM}" "$1" || true
        timeout 15 tail --pid="$1" -f /dev/null || kill -KILL "$1" || true
        wait "$1" || EXIT_STATUS=$?
    } 2>/dev/null
    forget_pid "$1"
}

# forget_pid PID: a process of PIDS was waited for; its id may be reused, so
# cleanup must not signal it
forget_pid() {
    local p rest=()
    for p in "${PIDS[@]:-}"; do
        [ "$p" = "$1" ] || rest+=("$p")
    done
    PIDS=("${rest[@]:-}")
}

# containers NAME -> the containers in worker NAME's runc root
containers() {
    runc --root "$T/$1/runc" list -q 2>/dev/null || true
}

# logged FILE PATTERN: the log has a line matching PATTERN (grep -E)
logged() {
    grep -Eq -- "$2" "$T/$1.log"
}
