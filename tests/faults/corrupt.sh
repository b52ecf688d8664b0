#!/usr/bin/env bash
# A damaged state store (DATA/state/data.mdb) of a scheduler that stopped
# cleanly, each damage on its own copy of the same store:
#   - 64 random bytes at a random place in a few of its pages (a bad disk
#     block), several times over with different pages: the quick check at
#     start (every page and key read, in order) refuses what LMDB would
#     trip over, and what it lets through (damage inside a record's bytes)
#     is answered for the request that reads it as the store has it (500,
#     logged, for a record that does not decode; 404 for one whose key was
#     changed); the scheduler never dies of it (no SIGSEGV, no SIGBUS);
#   - 64 random bytes over the node offsets of each page of the runs
#     table (found by lmdbpages.py; before, the scheduler died of SIGSEGV
#     at start, reading the runs);
#   - 64 random bytes at the head of every page but the two meta pages;
#   - the file cut to half its size;
#   - the file cut to nothing;
#   - a schema record from a newer Cairn.
# The last five are refused at start with a clear message and a non-zero
# exit, none starts as an empty store, and the store is left as it was for
# a restore. The backup taken before the damage restores every run.
# (Before: damaged pages crashed the scheduler with SIGSEGV on GET
# /api/v1/runs/ID, unless it had been killed, which made its next start
# check the store.) FAULT_DAMAGES sets how many random damages (default 6).
source "$(dirname "$0")/../integration/lib.sh"

put_dag many <<'EOF2'
dag: many
params: {note: "a run record with something in it"}
tasks:
  a: {command: [sh, -c, 'echo a']}
  b: {command: [sh, -c, 'echo b'], needs: [a]}
  c: {command: [sh, -c, 'echo c'], needs: [a]}
EOF2
start_scheduler s
start_worker w --slots 4 --isolation none
runs=()
for i in $(seq 1 30); do runs+=("$("$CAIRN" trigger many --param note="run $i $(head -c 600 /dev/zero | tr '\0' n)")"); done
for r in "${runs[@]}"; do wait_run "$r" many 60 >/dev/null; done
nruns=$("$CAIRN" runs list --dag many --limit 100 --json | jq '[.runs[] | select(.state == "success")] | length')
check "30 runs to keep ($nruns)" [ "$nruns" = 30 ]
out=$("$SCHED" --data "$T/s" --backup "$T/bk" 2>&1) && rc=0 || rc=$?
check "a backup first (exit $rc)" [ "$rc" = 0 ]
kill_wait "$PID_w"
kill_wait "$SCHED_PID"
check "the scheduler stopped cleanly" [ "$EXIT_STATUS" = 0 -a ! -e "$T/s/state/running" ]
size=$(stat -c %s "$T/s/state/data.mdb")
pages=$((size / 4096))
echo "# the store: $size bytes, $pages pages"

# start_on NAME: a scheduler on $T/NAME (a damaged copy); sets rc, out
start_on() {
    "$SCHED" --dags "$T/dags" --data "$T/$1" --listen tcp://127.0.0.1:0 --http 127.0.0.1:0 \
        >"$T/$1.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    # a scheduler that starts after all is stopped once it has answered
    wait_until 60 bash -c "grep -q CAIRN-START '$T/$1.log' || ! kill -0 $pid" || true
    if grep -q CAIRN-START "$T/$1.log"; then
        STARTED=1
        poke "$1" || true
        ALIVE=0
        kill -0 "$pid" 2>/dev/null && ALIVE=1
        kill -TERM "$pid" 2>/dev/null || true
    else
        STARTED=0
    fi
    wait "$pid" && rc=0 || rc=$?
    forget_pid "$pid"
    out=$(cat "$T/$1.log")
}
# poke NAME: ask the started scheduler for every run, as the UI would
poke() {
    local port
    port=$(sed -n 's/.*, http 127\.0\.0\.1:\([0-9]*\), .*/\1/p' "$T/$1.log" | tail -n 1)
    local base=http://127.0.0.1:$port/api/v1 u
    : >"$T/$1.codes"
    for r in "${runs[@]}"; do
        u=$(urlenc "$r")
        for p in "runs/$u?dag=many" "runs/$u/tasks/a/attempts?dag=many" \
            "runs/$u/tasks/b/attempts?dag=many" "runs/$u/tasks/c/logs?dag=many"; do
            curl -s -o /dev/null -w '%{http_code}\n' -m 20 "$base/$p" >>"$T/$1.codes" || true
        done
    done
    curl -s -o /dev/null -w '%{http_code}\n' -m 20 "$base/runs?dag=many&limit=100" >>"$T/$1.codes" || true
}
damaged() { # damaged NAME WHAT: a copy of the store, damaged by the python below
    mkdir -p "$T/$1/state"
    cp "$T/s/state/data.mdb" "$T/$1/state/data.mdb"
    /usr/bin/python3 - "$T/$1/state/data.mdb" "$2" <<'PY'
import os, random, sys
p, what = sys.argv[1], sys.argv[2].split()
n = os.path.getsize(p)
if what[0] == "pages":  # 64 random bytes in 4 of the pages past the two meta pages
    random.seed(int(what[1]))
    with open(p, "r+b") as f:
        for pg in random.sample(range(2, n // 4096), min(4, n // 4096 - 2)):
            f.seek(pg * 4096 + random.randrange(0, 4096 - 64))
            f.write(random.randbytes(64))
elif what[0] == "heads":  # the head of every page: its header and first nodes
    random.seed(99)
    with open(p, "r+b") as f:
        for pg in range(2, n // 4096):
            f.seek(pg * 4096)
            f.write(random.randbytes(64))
elif what[0] == "half":
    os.truncate(p, n // 2)
elif what[0] == "zero":
    os.truncate(p, 0)
PY
}
refused() { # refused NAME: exit status 1 or 2, no signal, saying what to do
    local sig=
    [ "$rc" -ge 128 ] && sig=" (killed by signal $((rc - 128)))"
    check "$1: refused at start, exit $rc$sig" [ "$rc" -ge 1 -a "$rc" -lt 128 -a "$STARTED" = 0 ]
    check "  with a clear message" grep -qE "damaged|truncated|not an LMDB database|newer Cairn" <<<"$out"
    check "  naming the way out" grep -qiE "backup|restore" <<<"$out"
}

# random damage: refused, or served without dying
served=0 refused_n=0
for seed in $(seq 1 "${FAULT_DAMAGES:-6}"); do
    damaged "pg$seed" "pages $seed"
    before=$(md5sum <"$T/pg$seed/state/data.mdb")
    start_on "pg$seed"
    if [ "$STARTED" = 1 ]; then
        served=$((served + 1))
        check "damage $seed: started, answered every request, stopped cleanly (exit $rc; answers: $(sort "$T/pg$seed.codes" | uniq -c | tr -s ' \n' ' '))" \
            [ "$rc" = 0 -a "$ALIVE" = 1 ]
        check "  every request answered (none lost to a crash)" \
            bash -c '! grep -vqxE "200|404|500" "$0"' "$T/pg$seed.codes"
        if grep -qx 500 "$T/pg$seed.codes"; then
            check "  each 500 logged with the bad record" logged "pg$seed" "CAIRN-RECORD-BAD|CAIRN-STORE-BAD-RECORD"
        fi
    else
        refused_n=$((refused_n + 1))
        refused "damage $seed"
        check "  the store is left as it was" [ "$(md5sum <"$T/pg$seed/state/data.mdb")" = "$before" ]
    fi
done
echo "# random damages: $refused_n refused at start, $served started and served"

mkdir -p "$T/runs/state"
cp "$T/s/state/data.mdb" "$T/runs/state/data.mdb"
n=$(/usr/bin/python3 "$(dirname "$0")/lmdbpages.py" "$T/runs/state/data.mdb" runs 5)
before=$(md5sum <"$T/runs/state/data.mdb")
start_on runs
refused "the runs table's $n leaf pages damaged"
check "  the store is left as it was" [ "$(md5sum <"$T/runs/state/data.mdb")" = "$before" ]

damaged heads heads
before=$(md5sum <"$T/heads/state/data.mdb")
start_on heads
refused "64 random bytes at the head of every page"
check "  the store is left as it was" [ "$(md5sum <"$T/heads/state/data.mdb")" = "$before" ]

damaged half half
start_on half
refused "cut to half its size"
check "  the store keeps its size" [ "$(stat -c %s "$T/half/state/data.mdb")" = $((size / 2)) ]

damaged zero zero
start_on zero
refused "cut to nothing"
check "  it is not made into an empty store" [ "$(stat -c %s "$T/zero/state/data.mdb")" = 0 ]

mkdir -p "$T/new/state"
cp "$T/s/state/data.mdb" "$T/new/state/data.mdb"
printf 'schema_version\n{"v":1,"value":999}\n' | mdb_load -T -s meta "$T/new/state"
start_on new
refused "a newer schema"

# the backup restores every run
mkdir -p "$T/r/state"
cp "$T/bk/data.mdb" "$T/r/state/data.mdb"
HTTP_PORT='' NNG_PORT='' start_scheduler r
check "the backup restores all 30 runs" \
    [ "$("$CAIRN" runs list --dag many --limit 100 --json | jq '[.runs[] | select(.state == "success")] | length')" = 30 ]
check "no scheduler left a core or died of a signal" bash -c '! ls "$0"/*/core* 2>/dev/null | grep -q .' "$T"
finish
