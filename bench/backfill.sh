#!/usr/bin/env bash
# A backfill of 1,000 daily runs of a 3-task no-op DAG (a -> b -> c) through
# the whole system: scheduler + one worker with --isolation none, durable
# LMDB commits, max_active_runs 16. Timed from the backfill's creation to its
# last run's end, as the scheduler recorded them. Baseline in the same run:
# GNU make -j running the same 1,000 chains of `true` (3,000 processes).
# Usage: bench/backfill.sh [BUILD_DIR] [SLOTS] [DAYS]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
slots=${2:-8}
days=${3:-1000}
CAIRN=$build/cli/cairn
w=$(mktemp -d /tmp/cairn-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]:-}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
    rm -rf "$w"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$w/dags"
cat >"$w/dags/nightly.yaml" <<'YAML'
dag: nightly
schedule: "0 2 * * *"
start_date: 2020-01-01
catchup: false
max_active_runs: 16
max_active_tasks: 100000
tasks:
  a: {command: [true]}
  b: {command: [true], needs: [a]}
  c: {command: [true], needs: [b]}
YAML
/usr/bin/python3 - "$w/make.mk" "$days" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write(".PHONY: all\nall: " + " ".join(f"c{i}" for i in range(n)) + "\n")
    for i in range(n):
        f.write(f"a{i}:\n\t@true\nb{i}: a{i}\n\t@true\nc{i}: b{i}\n\t@true\n")
PY

http=$(port); nng=$(port)
export CAIRN_SERVER=http://127.0.0.1:$http
CAIRN_NOW=2026-01-01T12:00:00Z "$build/scheduler/cairn-scheduler" --dags "$w/dags" --data "$w/sched" \
    --listen "tcp://127.0.0.1:$nng" --http "127.0.0.1:$http" --log-level warn >"$w/sched.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null && break; sleep 0.1; done
"$build/worker/cairn-worker" --scheduler "tcp://127.0.0.1:$nng" --data "$w/worker" --name bench \
    --slots "$slots" --isolation none --log-level warn >"$w/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do "$CAIRN" workers --json | grep -q bench && break; sleep 0.1; done

secs() { sed 's/Z$//' | /usr/bin/python3 -c 'import sys, datetime; print(datetime.datetime.fromisoformat(sys.stdin.read().strip()).replace(tzinfo=datetime.timezone.utc).timestamp())'; }
from=$(date -u -d "2025-12-30 - $((days - 1)) days" +%F)
t0=$(date +%s.%N)
"$CAIRN" backfill nightly --from "$from" --to 2025-12-30 --wait --json >"$w/bf.json"
t1=$(date +%s.%N)
state=$(jq -r .state "$w/bf.json")
n=$(jq -r .progress.success "$w/bf.json")
created=$(jq -r .created_at "$w/bf.json" | secs)
ended=$(jq -r .ended_at "$w/bf.json" | secs)
c=$(echo "$ended - $created" | bc -l)
m0=$(date +%s.%N)
make -s -j"$slots" -f "$w/make.mk" all
m1=$(date +%s.%N)
m=$(echo "$m1 - $m0" | bc -l)
printf 'backfill of %d daily runs x 3 no-op tasks (%s, %d succeeded), %d slots\n' "$days" "$state" "$n" "$slots"
printf '  cairn:   %7.2f s  %7.0f runs/s  %7.0f tasks/s   (CLI wall time incl. polling: %.2f s)\n' \
    "$c" "$(echo "$days / $c" | bc -l)" "$(echo "3 * $days / $c" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"
printf '  make -j: %7.2f s  %7.0f chains/s\n' "$m" "$(echo "$days / $m" | bc -l)"
printf '  ratio cairn/make: %.2f\n' "$(echo "$c / $m" | bc -l)"
