#!/usr/bin/env bash
# No-op tasks through the whole system (scheduler + one worker with
# --isolation none, durable LMDB commits): 1,000 independent tasks, a 200-task
# chain, and 1 -> 500 -> 1. Baseline in the same run: GNU make -j running the
# same graphs of `true`. Usage: bench/throughput.sh [BUILD_DIR] [SLOTS]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
slots=${2:-8}

mkdir -p "$w/dags" "$w/make"
/usr/bin/python3 - "$w" <<'PY'
import sys
w = sys.argv[1]
def dag(name, edges, n):
    with open(f"{w}/dags/{name}.yaml", "w") as f:
        f.write(f"dag: {name}\nmax_active_tasks: 100000\ndefaults: {{retries: 0}}\ntasks:\n")
        for i in range(n):
            f.write(f"  t{i}:\n    command: [true]\n")
            if edges.get(i):
                f.write("    needs: [" + ", ".join(f"t{u}" for u in edges[i]) + "]\n")
    with open(f"{w}/make/{name}.mk", "w") as f:
        f.write(".PHONY: all " + " ".join(f"t{i}" for i in range(n)) + "\n")
        f.write("all: " + " ".join(f"t{i}" for i in range(n)) + "\n")
        for i in range(n):
            f.write(f"t{i}: " + " ".join(f"t{u}" for u in edges.get(i, [])) + "\n\t@true\n")
dag("wide", {}, 1000)
dag("chain", {i: [i - 1] for i in range(1, 200)}, 200)
fan = {i: [0] for i in range(1, 501)}
fan[501] = list(range(1, 501))
dag("fan", fan, 502)
PY

bench_scheduler
bench_worker "$slots"

# time one run of DAG $1: from its creation to its end, as the scheduler
# recorded them (milliseconds; the CLI's polling interval does not count)
run_once() {
    "$CAIRN" trigger "$1" --wait --json |
        jq -r '((.ended_at | sub("Z$";"") | split(".") | (.[0] + "Z" | fromdate) + ("0." + .[1] | tonumber))
              - (.created_at | sub("Z$";"") | split(".") | (.[0] + "Z" | fromdate) + ("0." + .[1] | tonumber)))'
}
make_once() {
    local t0 t1
    t0=$(date +%s.%N)
    make -s -j"$slots" -f "$w/make/$1.mk" all
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
best() { sort -g | head -1; }

echo "slots/jobs: $slots, runs: best of 3"
printf '%-22s %10s %10s %12s %12s %8s\n' graph tasks cairn_s "cairn/s|hop" "make -j/s|hop" ratio
for g in wide:1000 fan:502 chain:200; do
    name=${g%%:*}; n=${g##*:}
    run_once "$name" >/dev/null # warm-up (page cache, first DAG load)
    c=$(for _ in 1 2 3; do run_once "$name"; done | best)
    m=$(for _ in 1 2 3; do make_once "$name"; done | best)
    if [ "$name" = chain ]; then
        cr=$(echo "$c * 1000 / $n" | bc -l); mr=$(echo "$m * 1000 / $n" | bc -l)
        printf '%-22s %10d %10.3f %9.2f ms %9.2f ms %8.2f\n' "$name (per hop)" "$n" "$c" "$cr" "$mr" "$(echo "$c / $m" | bc -l)"
    else
        cr=$(echo "$n / $c" | bc -l); mr=$(echo "$n / $m" | bc -l)
        printf '%-22s %10d %10.3f %10.0f/s %10.0f/s %8.2f\n' "$name" "$n" "$c" "$cr" "$mr" "$(echo "$c / $m" | bc -l)"
    fi
done
echo "(ratio = cairn time / make time; cairn commits every state change to LMDB before acknowledging it)"
