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
sched_pid=${pids[0]} worker_pid=${pids[1]}

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
median() { sort -g | sed -n 2p; } # of 3
# cpu_ms PID: the CPU time (user + system) the process has used, in ms
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }

echo "slots/jobs: $slots, runs: median of 3"
printf '%-22s %6s %8s %12s %12s %6s %10s %10s\n' graph tasks cairn_s "cairn/s|hop" "make/s|hop" make/c \
    "sched_cpu" "worker_cpu"
for g in wide:1000 fan:502 chain:200; do
    name=${g%%:*}; n=${g##*:}
    run_once "$name" >/dev/null # warm-up (page cache, first DAG load)
    s0=$(cpu_ms "$sched_pid"); w0=$(cpu_ms "$worker_pid")
    c=$(for _ in 1 2 3; do run_once "$name"; done | median)
    s1=$(cpu_ms "$sched_pid"); w1=$(cpu_ms "$worker_pid")
    m=$(for _ in 1 2 3; do make_once "$name"; done | median)
    # CPU per task (ms) of the scheduler and of the worker process itself
    # (not its tasks), over the three runs
    sc=$(echo "($s1 - $s0) / (3 * $n)" | bc -l); wc=$(echo "($w1 - $w0) / (3 * $n)" | bc -l)
    if [ "$name" = chain ]; then
        cr=$(echo "$c * 1000 / $n" | bc -l); mr=$(echo "$m * 1000 / $n" | bc -l)
        printf '%-22s %6d %8.3f %9.2f ms %9.2f ms %6.2f %7.3f ms %7.3f ms\n' "$name (per hop)" "$n" "$c" "$cr" "$mr" \
            "$(echo "$m / $c" | bc -l)" "$sc" "$wc"
    else
        cr=$(echo "$n / $c" | bc -l); mr=$(echo "$n / $m" | bc -l)
        printf '%-22s %6d %8.3f %10.0f/s %10.0f/s %6.2f %7.3f ms %7.3f ms\n' "$name" "$n" "$c" "$cr" "$mr" \
            "$(echo "$m / $c" | bc -l)" "$sc" "$wc"
    fi
done
echo "(make/c = make's time / cairn's time: 1.00 is as fast as make -j; cairn commits every state change"
echo " to LMDB before acknowledging it; sched_cpu and worker_cpu are CPU time per task)"
