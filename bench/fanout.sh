#!/usr/bin/env bash
# Dynamic fan-out at scale: a task writes a JSON list of N items (100,000 by
# default) and a mapped task runs one no-op instance per item (scheduler +
# one worker with --isolation none, durable commits). Timed from the list
# task's end to the run's end, as the scheduler recorded them; compared, in
# the same go, with a run of N independent static no-op tasks (the figure
# fan-out should stay within 1.5x of) and with GNU make -j running N `true`.
# Also reported: the scheduler's peak RSS during the mapped run, its RSS once
# the run has ended (finished runs leave memory), and the longest loop
# iteration (expansion is done in chunks; the scheduler logs any iteration
# over 100 ms as CAIRN-LOOP-SLOW and reports the longest on /api/v1/health).
# RSS is split into the heap (RssAnon) and the pages of the LMDB file the
# kernel keeps mapped (RssFile: page cache, given back under memory pressure).
# BENCH_LOG=FILE keeps a copy of the scheduler's log; BENCH_MAPPED_ONLY=1
# runs the mapped run alone (no static run, no make: their figures are 0).
# Usage: bench/fanout.sh [BUILD_DIR] [SLOTS] [N]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
slots=${2:-8}
n=${3:-100000}

mkdir -p "$w/dags"
cat >"$w/dags/fan.yaml" <<YAML
dag: fan
max_active_tasks: 100000
defaults: {retries: 0}
tasks:
  split:
    command: [/usr/bin/python3, -c, "import json,os; json.dump(list(range($n)), open(os.environ['CAIRN_OUTPUTS'] + '/items.json', 'w'))"]
    outputs: [items.json]
  each:
    needs: [split]
    map: {from: split/items.json}
    command: ["true"]
YAML
/usr/bin/python3 - "$w" "$n" "${BENCH_MAPPED_ONLY:-}" <<'PY'
import sys
w, n = sys.argv[1], int(sys.argv[2])
if sys.argv[3]:
    sys.exit(0)
with open(f"{w}/dags/static.yaml", "w") as f:
    f.write("dag: static\nmax_active_tasks: 100000\ndefaults: {retries: 0}\ntasks:\n")
    for i in range(n):
        f.write(f"  t{i}: {{command: [\"true\"]}}\n")
with open(f"{w}/make.mk", "w") as f:
    f.write(".PHONY: all\nall: " + " ".join(f"t{i}" for i in range(n)) + "\n")
    for i in range(n):
        f.write(f"t{i}:\n\t@true\n")
PY

bench_scheduler
bench_worker "$slots"
spid=${pids[0]}

secs() { /usr/bin/python3 -c 'import sys, datetime; print(datetime.datetime.fromisoformat(sys.argv[1].rstrip("Z")).replace(tzinfo=datetime.timezone.utc).timestamp())' "$1"; }
rss_kb() { awk "/^$2:/ {print \$2}" "/proc/$1/status"; }
wait_done() { # RUN DAG
    local st
    for _ in $(seq 1 36000); do
        st=$("$CAIRN" runs show "$1" --dag "$2" --json 2>/dev/null | jq -r .state || true)
        case $st in success|failed|cancelled) echo "$st"; return 0 ;; esac
        sleep 0.1
    done
    echo timeout
}

# the loop's longest iterations, per run: the CAIRN-LOOP-SLOW lines (100 ms
# or more) logged from time FROM (UTC, as the log writes it) to TO: the
# longest, with its CPU time, and the most CPU time one of them took
# (/api/v1/health has the longest since start)
slow_ms() { { grep -o '^[^ ]* .*CAIRN-LOOP-SLOW.*took [0-9]* ms, [0-9]* ms' "$w/sched.log" || true; } |
    awk -v from="$1" -v to="${2:-9}" '$1 >= from && $1 < to {for (i = 1; i <= NF; i++) if ($i == "took") { b = $(i + 1); c = $(i + 3) }
         if (b > mb) { mb = b; mc = c } if (c > xc) xc = c; n++}
         END { if (n) printf "%d ms (%d ms CPU; at most %d ms CPU), %d over 100 ms", mb, mc, xc, n; else printf "under 100 ms" }'; }
now_utc() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

# the static run first (the same N through the same path, no expansion)
static_s=0
t_static=$(now_utc)
if [ -z "${BENCH_MAPPED_ONLY:-}" ]; then
    r=$("$CAIRN" trigger static)
    [ "$(wait_done "$r" static)" = success ] || { echo "static run failed" >&2; exit 1; }
    j=$("$CAIRN" runs show "$r" --dag static --json)
    static_s=$(echo "$(secs "$(jq -r .ended_at <<<"$j")") - $(secs "$(jq -r .started_at <<<"$j")")" | bc -l)
fi

sleep 1 # the static run leaves memory
t_fan=$(now_utc)
static_slow=$(slow_ms "$t_static" "$t_fan")
base_rss=$(rss_kb "$spid" VmRSS)
base_anon=$(rss_kb "$spid" RssAnon) base_file=$(rss_kb "$spid" RssFile)
r=$("$CAIRN" trigger fan)
peak=$base_rss peak_anon=$base_anon
while :; do
    st=$("$CAIRN" runs show "$r" --dag fan --json 2>/dev/null | jq -r .state || true)
    now=$(rss_kb "$spid" VmRSS); [ "$now" -gt "$peak" ] && peak=$now
    now=$(rss_kb "$spid" RssAnon); [ "$now" -gt "$peak_anon" ] && peak_anon=$now
    case $st in success|failed|cancelled) break ;; esac
    sleep 0.2
done
[ "$st" = success ] || { echo "mapped run: $st" >&2; exit 1; }
j=$("$CAIRN" runs show "$r" --dag fan --json)
split_end=$(jq -r '.tasks[] | select(.task == "split") | .ended_at' <<<"$j")
fan_s=$(echo "$(secs "$(jq -r .ended_at <<<"$j")") - $(secs "$split_end")" | bc -l)
sleep 1
fan_slow=$(slow_ms "$t_fan")
after_rss=$(rss_kb "$spid" VmRSS)
after_anon=$(rss_kb "$spid" RssAnon) after_file=$(rss_kb "$spid" RssFile)
loop=$(curl -sf "$CAIRN_SERVER/api/v1/health" | jq -r '.loop.max_iteration_ms // "?"')
[ -n "${BENCH_LOG:-}" ] && cp "$w/sched.log" "$BENCH_LOG"

make_s=0
if [ -z "${BENCH_MAPPED_ONLY:-}" ]; then
    t0=$(date +%s.%N); make -s -j"$slots" -f "$w/make.mk" all; t1=$(date +%s.%N)
    make_s=$(echo "$t1 - $t0" | bc -l)
fi

printf 'N = %d items, %d slots\n' "$n" "$slots"
printf '%-34s %10.2f s %10.0f/s\n' "mapped: list end -> last instance" "$fan_s" "$(echo "$n / $fan_s" | bc -l)"
if [ -z "${BENCH_MAPPED_ONLY:-}" ]; then
    printf '%-34s %10.2f s %10.0f/s\n' "static: N independent tasks" "$static_s" "$(echo "$n / $static_s" | bc -l)"
    printf '%-34s %10.2f s %10.0f/s\n' "make -j$slots: N x true" "$make_s" "$(echo "$n / $make_s" | bc -l)"
    printf 'mapped / static time: %.2f   mapped / make time: %.2f\n' "$(echo "$fan_s / $static_s" | bc -l)" "$(echo "$fan_s / $make_s" | bc -l)"
fi
printf 'scheduler RSS: %d MB before, %d MB peak, %d MB after the run\n' $((base_rss / 1024)) $((peak / 1024)) $((after_rss / 1024))
printf '  of which the heap (RssAnon): %d MB before, %d MB peak, %d MB after; the state store'"'"'s mapped pages (RssFile): %d MB before, %d MB after\n' \
    $((base_anon / 1024)) $((peak_anon / 1024)) $((after_anon / 1024)) $((base_file / 1024)) $((after_file / 1024))
printf 'longest loop iteration: mapped run %s; static run %s; since start %s ms\n' "$fan_slow" "$static_slow" "$loop"
