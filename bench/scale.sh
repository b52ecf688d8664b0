#!/usr/bin/env bash
# Scale: what a big run costs the scheduler (scheduler + one worker with
# --isolation none, durable commits).
#   1. one run of N independent no-op tasks (100,000 by default): how long
#      the trigger takes to answer, the longest loop iteration while it is
#      triggered and runs, how long `runs show` takes meanwhile (median and
#      longest), and the scheduler's RSS before, at its peak and after;
#   2. memory over repeated runs: R runs of a 10,000-task DAG one after the
#      other, RSS after the first and after the last;
#   3. many finished task instances in LMDB: B runs of a 10,000-task DAG
#      whose tasks are all skipped by `when` (no worker time), RSS once they
#      are finished and how long `runs list` takes;
#   4. startup after SIGKILL with all of that in the store and an N-task run
#      in flight: time until the API answers, and the RSS then;
#   5. a clear of the finished run of 1. (read back from LMDB): how long it
#      takes to answer and the slow loop iterations it makes.
# RSS is split into the heap (RssAnon) and the pages of the LMDB file that
# are mapped (RssFile).
# Nothing here is asserted; it prints figures. A smaller run for a quick look:
#   bench/scale.sh build 10000 3 10
# Usage: bench/scale.sh [BUILD_DIR] [N] [R] [B] [SLOTS]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
n=${2:-100000}
reps=${3:-10}
batch=${4:-100}
slots=${5:-8}

mkdir -p "$w/dags"
/usr/bin/python3 - "$w" "$n" <<'PY'
import sys
w, n = sys.argv[1], int(sys.argv[2])
def wide(name, count, extra=""):
    with open(f"{w}/dags/{name}.yaml", "w") as f:
        f.write(f"dag: {name}\nmax_active_tasks: 100000\nparams: {{go: 'yes'}}\n"
                f"defaults: {{retries: 0{extra}}}\ntasks:\n")
        for i in range(count):
            f.write(f"  t{i}: {{command: [\"true\"]}}\n")
wide("big", n)
wide("tenk", 10000)
wide("skipped", 10000, ", when: \"params.go == 'no'\"")
PY

bench_scheduler
bench_worker "$slots"
spid=${pids[0]}
rss_mb() { awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }
# "N MB (heap A MB, store pages F MB)": RssAnon is the scheduler's own memory,
# RssFile mostly the pages of the LMDB file it has read (the kernel's to drop)
rss_split() {
    awk '/^VmRSS:/ {t = $2} /^RssAnon:/ {a = $2} /^RssFile:/ {f = $2}
         END {printf "%d MB (heap %d MB, store pages %d MB)", t / 1024, a / 1024, f / 1024}' \
        "/proc/$1/status"
}
recent_max() { curl -sf "$CAIRN_SERVER/api/v1/health" | jq -r '.loop.recent_max_iteration_ms // 0'; }
recent_cpu() { curl -sf "$CAIRN_SERVER/api/v1/health" | jq -r '.loop.recent_max_iteration_cpu_ms // 0'; }
state() { "$CAIRN" runs show "$1" --dag "$2" --json 2>/dev/null | jq -r .state || true; }
wait_done() { # RUN DAG -> final state
    local st
    for _ in $(seq 1 72000); do
        st=$(state "$1" "$2")
        case $st in success|failed|cancelled) echo "$st"; return 0 ;; esac
        sleep 0.5
    done
    echo timeout
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

# --- 1. one big run
echo "== 1. one run of $n no-op tasks ($slots slots)"
rss0=$(rss_mb "$spid")
t0=$(date +%s.%N)
run=$("$CAIRN" trigger big)
t1=$(date +%s.%N)
peak=$rss0
loopmax=0
cpumax=0
: >"$w/show.times"
while :; do
    st=$(curl -s -o "$w/show.json" -w '%{time_total}\n' \
        "$CAIRN_SERVER/api/v1/runs/$run?dag=big" >>"$w/show.times"; jq -r .state "$w/show.json")
    r=$(rss_mb "$spid"); [ "$r" -gt "$peak" ] && peak=$r
    l=$(recent_max); [ "$l" -gt "$loopmax" ] && loopmax=$l
    l=$(recent_cpu); [ "$l" -gt "$cpumax" ] && cpumax=$l
    case $st in success|failed|cancelled) break ;; esac
    sleep 1
done
t2=$(date +%s.%N)
sleep 2
rss1=$(rss_mb "$spid")
printf '  trigger answered in %.0f ms; the run took %.1f s (%.0f tasks/s), ended %s\n' \
    "$(echo "($t1 - $t0) * 1000" | bc -l)" "$(echo "$t2 - $t1" | bc -l)" \
    "$(echo "$n / ($t2 - $t1)" | bc -l)" "$st"
printf '  longest loop iteration: %s ms wall, %s ms of the loop'"'"'s CPU (over 100 ms wall: %s)\n' \
    "$loopmax" "$cpumax" "$(grep -c CAIRN-LOOP-SLOW "$w/sched.log" || true)"
printf '  runs show during the run: median %.1f ms, longest %.1f ms (%d polls)\n' \
    "$(median <"$w/show.times" | awk '{print $1 * 1000}')" \
    "$(sort -g "$w/show.times" | tail -1 | awk '{print $1 * 1000}')" "$(wc -l <"$w/show.times")"
printf '  scheduler RSS: %d MB before, %d MB peak, %d MB after\n' "$rss0" "$peak" "$rss1"
printf '  after: %s\n' "$(rss_split "$spid")"
run1=$run

# --- 2. repeated runs
echo "== 2. $reps runs of 10,000 tasks, one after the other"
first=0
for i in $(seq 1 "$reps"); do
    r=$("$CAIRN" trigger tenk)
    [ "$(wait_done "$r" tenk)" = success ] || echo "  run $i did not succeed"
    sleep 1
    [ "$i" = 1 ] && first=$(rss_mb "$spid") && first_split=$(rss_split "$spid")
done
last=$(rss_mb "$spid")
printf '  RSS after the first: %d MB, after the last: %d MB (%.2fx)\n' "$first" "$last" \
    "$(echo "$last / $first" | bc -l)"
printf '  after the first: %s; after the last: %s\n' "$first_split" "$(rss_split "$spid")"

# --- 3. many finished task instances
echo "== 3. $batch runs of 10,000 skipped tasks ($((batch * 10000)) task instances)"
t0=$(date +%s.%N)
for i in $(seq 0 $((batch - 1))); do
    "$CAIRN" trigger skipped --logical-date "$(date -u -d "2020-01-01 + $i days" +%FT00:00:00Z)" >/dev/null
done
while [ "$("$CAIRN" runs list --dag skipped --state success --limit 100000 --json | jq '.runs | length')" -lt "$batch" ]; do
    sleep 2
done
t1=$(date +%s.%N)
sleep 2
printf '  all finished in %.1f s; scheduler RSS %s\n' "$(echo "$t1 - $t0" | bc -l)" "$(rss_split "$spid")"
for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_total}\n' "$CAIRN_SERVER/api/v1/runs?limit=100"
done >"$w/list.times"
printf '  runs list (100 newest): median %.1f ms\n' "$(median <"$w/list.times" | awk '{print $1 * 1000}')"

# --- 4. startup after SIGKILL with a big run in flight
echo "== 4. startup after SIGKILL, with an $n-task run in flight"
run=$("$CAIRN" trigger big)
sleep 5
kill -KILL "$spid"
wait "$spid" 2>/dev/null || true
t0=$(date +%s.%N)
"$build/scheduler/cairn-scheduler" --dags "$w/dags" --data "$w/sched" --listen "tcp://127.0.0.1:$nng" \
    --http "127.0.0.1:$http" --log-level notice >"$w/sched2.log" 2>&1 &
spid=$!
pids+=("$spid")
until curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null 2>&1; do sleep 0.05; done
t1=$(date +%s.%N)
printf '  the API answered %.2f s after the start; RSS then %s\n' "$(echo "$t1 - $t0" | bc -l)" \
    "$(rss_split "$spid")"
grep -E 'CAIRN-(STORE-CHECK|RECOVER|START)' "$w/sched2.log" | sed 's/^/  | /' || true
st=$(wait_done "$run" big)
printf '  the run in flight ended %s\n' "$st"

# --- 5. a clear of the finished big run: it is loaded back from LMDB
echo "== 5. clear of the finished $n-task run of 1. (read back from the store)"
before=$(grep -c CAIRN-LOOP-SLOW "$w/sched2.log" || true)
t0=$(date +%s.%N)
"$CAIRN" clear "$run1" --dag big >/dev/null
t1=$(date +%s.%N)
sleep 2
printf '  the clear answered in %.0f ms; the slow loop iterations since:\n' \
    "$(echo "($t1 - $t0) * 1000" | bc -l)"
grep CAIRN-LOOP-SLOW "$w/sched2.log" | tail -n +$((before + 1)) | head -5 | sed 's/^/  | /' || true
