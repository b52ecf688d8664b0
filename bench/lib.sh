# shellcheck shell=bash
# bench/lib.sh - the setup of the benchmarks that run the whole system: the
# build folder, a work folder, and a scheduler and one worker on free local
# ports, all stopped and removed when the script exits. Source it from a
# bench script, after its `set -euo pipefail`:
#
#     . "$(dirname "$0")/lib.sh"
#     bench_init "${1:-build}"   # sets src, build, CAIRN and w (the work folder)
#     mkdir -p "$w/dags"         # ... and write the DAGs there
#     bench_scheduler            # sets CAIRN_SERVER (exported), http and nng
#     bench_worker 8             # a worker named "bench" with 8 slots
#
# Variables set on the call of bench_scheduler reach the scheduler, not the
# worker: `CAIRN_NOW=2026-01-01T12:00:00Z bench_scheduler` sets its clock.

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pids=()

# bench_init BUILD_DIR: the build folder (relative to the source tree unless
# absolute), the cairn binary in it and a new work folder under /tmp.
bench_init() {
    build=$1
    case $build in /*) ;; *) build=$src/$build ;; esac
    CAIRN=$build/cli/cairn
    w=$(mktemp -d /tmp/cairn-bench.XXXXXX)
    trap bench_cleanup EXIT
}

# Stop what bench_scheduler and bench_worker started (TERM, then up to 10 s
# each to exit) and remove the work folder.
bench_cleanup() {
    for p in "${pids[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]:-}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
    rm -rf "$w"
}

# A TCP port free on 127.0.0.1 at the time of asking.
bench_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Start the scheduler on the DAGs in $w/dags (data in $w/sched, log in
# $w/sched.log) and wait up to 5 s for its API to answer.
bench_scheduler() {
    http=$(bench_port); nng=$(bench_port)
    export CAIRN_SERVER=http://127.0.0.1:$http
    "$build/scheduler/cairn-scheduler" --dags "$w/dags" --data "$w/sched" --listen "tcp://127.0.0.1:$nng" \
        --http "127.0.0.1:$http" --log-level warn >"$w/sched.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null && break; sleep 0.1; done
}

# bench_worker SLOTS: start one worker ("bench", --isolation none, data in
# $w/worker, log in $w/worker.log) and wait up to 5 s for the scheduler to
# list it.
bench_worker() {
    "$build/worker/cairn-worker" --scheduler "tcp://127.0.0.1:$nng" --data "$w/worker" --name bench \
        --slots "$1" --isolation none --log-level warn >"$w/worker.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do "$CAIRN" workers --json | grep -q bench && break; sleep 0.1; done
}
