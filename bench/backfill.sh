#!/usr/bin/env bash
# A backfill of 1,000 daily runs of a 3-task no-op DAG (a -> b -> c) through
# the whole system: scheduler + one worker with --isolation none, durable
# LMDB commits, max_active_runs 16. Timed from the backfill's creation to its
# last run's end, as the scheduler recorded them. Baseline in the same run:
# GNU make -j running the same 1,000 chains of `true` (3,000 processes).
# Usage: bench/backfill.sh [BUILD_DIR] [SLOTS] [DAYS]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
slots=${2:-8}
days=${3:-1000}

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

CAIRN_NOW=2026-01-01T12:00:00Z bench_scheduler
bench_worker "$slots"

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
