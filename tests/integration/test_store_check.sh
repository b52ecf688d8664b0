#!/usr/bin/env bash
# The state store's own tools through the real scheduler: --check walks
# every record (exit 0 on a sound store), --backup copies the store while a
# scheduler runs on it and the copy restores every run; a record that does
# not decode is named by --check (exit 1); a store with damaged pages is
# never called sound; a scheduler killed with SIGKILL checks the store at
# its next start and refuses a damaged one with a clear message (instead of
# serving it and crashing on the first request that reads a bad page),
# decoding what a start reads and walking the finished runs' records; and
# --check never makes a store where there is none.
source "$(dirname "$0")/lib.sh"

put_dag hello <<'YAML'
dag: hello
tasks:
  hi: {command: [sh, -c, 'echo hi']}
YAML

start_scheduler s
start_worker w --slots 2 --isolation none
runs=()
for i in 1 2 3; do runs+=("$("$CAIRN" trigger hello)"); done
for r in "${runs[@]}"; do wait_run "$r" hello 30 >/dev/null; done

out=$("$SCHED" --data "$T/s" --backup "$T/bk" 2>&1); rc=$?
check "--backup while the scheduler runs: exit 0 ($out)" [ "$rc" = 0 -a -s "$T/bk/data.mdb" ]
kill_wait "$SCHED_PID"
out=$("$SCHED" --data "$T/s" --check 2>&1) && rc=0 || rc=$?
check "--check of a sound store: exit 0 and a count ($out)" \
    sh -c "[ $rc = 0 ] && echo '$out' | grep -Eq '^ok: [0-9]+ records, 0 bad'"

# restore: the copy is a store
mkdir -p "$T/r/state"
cp "$T/bk/data.mdb" "$T/r/state/data.mdb"
HTTP_PORT= NNG_PORT= start_scheduler r
check "a scheduler on the restored copy has every run" \
    [ "$("$CAIRN" runs list --dag hello --json | jq '[.runs[] | select(.state == "success")] | length')" = 3 ]
kill_wait "$SCHED_PID"

# a record that does not decode
mdb_load -T -s runs "$T/s/state" <<'EOF2'
hello\1fbroken
{"v":1,"dag":"hello","run_id":"broken","state":["running"],"dag_version":"x"}
EOF2
out=$("$SCHED" --data "$T/s" --check 2>&1) && rc=0 || rc=$?
check "--check names a record that does not decode and exits 1" \
    sh -c "[ $rc = 1 ] && echo \"\$0\" | grep -q \"bad record: runs 'hello/broken': run record: field 'state' must be a string\"" "$out"

# damaged pages: 64 bytes of garbage in every page but the two meta pages
mkdir -p "$T/d/state"
cp "$T/bk/data.mdb" "$T/d/state/data.mdb"
/usr/bin/python3 - "$T/d/state/data.mdb" <<'PY'
import os, random, sys
random.seed(7)
p = sys.argv[1]; n = os.path.getsize(p) // 4096
with open(p, "r+b") as f:
    for pg in range(2, n):
        f.seek(pg * 4096 + random.randrange(16, 4096 - 64))
        f.write(os.urandom(64))
PY
out=$("$SCHED" --data "$T/d" --check 2>&1) && rc=0 || rc=$?
check "--check of a store with damaged pages does not call it sound (exit $rc)" [ "$rc" != 0 ]
check "  and says it is damaged" grep -qiE "damaged|bad record" <<<"$out"

# a SIGKILLed scheduler: its next start checks the store first
start_scheduler s2
kill_wait "$SCHED_PID" KILL
check "a killed scheduler leaves its marker" [ -f "$T/s2/state/running" ]
start_scheduler s2
check "  the next start checks the store and serves a sound one" logged s2 CAIRN-STORE-CHECK
kill_wait "$SCHED_PID" KILL
cp "$T/d/state/data.mdb" "$T/s2/state/data.mdb"
"$SCHED" --dags "$T/dags" --data "$T/s2" --listen tcp://127.0.0.1:0 --http 127.0.0.1:0 \
    >"$T/s2b.log" 2>&1 && rc=0 || rc=$?
check "  a damaged one is refused at start with exit 1 (got $rc)" [ "$rc" = 1 ]
check "  saying so" grep -q "CAIRN-STORE-DAMAGED" "$T/s2b.log"
check "  and pointing to a backup" grep -q "restore a backup" "$T/s2b.log"

# the start's check after an unclean stop decodes what a start reads (the
# runs, and the task instances of unfinished runs) and walks the records of
# finished runs without decoding them; --check decodes everything
mkdir -p "$T/s3/state"
cp "$T/bk/data.mdb" "$T/s3/state/data.mdb"
echo 1 >"$T/s3/state/running" # as a killed scheduler leaves it
printf 'hello\\1f%s\\1fhi\n{"v":1,"task":\n' "${runs[0]}" >"$T/badti.txt"
mdb_load -T -s tis "$T/s3/state" <"$T/badti.txt"
HTTP_PORT='' NNG_PORT='' start_scheduler s3
check "a bad record of a finished run does not stop the start after a kill" \
    grep -q "of finished runs walked, not decoded), 0 bad" "$T/s3.log"
other_reads() { "$CAIRN" runs show "${runs[1]}" --dag hello --json | jq -e '.state == "success"' >/dev/null; }
check "  and the other runs read" other_reads
kill_wait "$SCHED_PID" KILL
out=$("$SCHED" --data "$T/s3" --check 2>&1) && rc=0 || rc=$?
check "  --check names it (exit $rc)" \
    sh -c "[ $rc = 1 ] && echo \"\$0\" | grep -q \"bad record: tis 'hello/${runs[0]}/hi'\"" "$out"
# an unfinished run's task instance that does not decode is found at start
rm -rf "$T/s4"
HTTP_PORT='' NNG_PORT='' start_scheduler s4 # no worker: the run stays unfinished
live=$("$CAIRN" trigger hello)
hi_queued() { "$CAIRN" runs show "$live" --dag hello --json | jq -e '.tasks[0].state == "queued"' >/dev/null; }
wait_until 30 hi_queued
check "an unfinished run with its task queued (no worker)" hi_queued
kill_wait "$SCHED_PID" KILL
printf 'hello\\1f%s\\1fhi\n{"v":1,"task":\n' "$live" >"$T/badti.txt"
mdb_load -T -s tis "$T/s4/state" <"$T/badti.txt"
"$SCHED" --dags "$T/dags" --data "$T/s4" --listen tcp://127.0.0.1:0 --http 127.0.0.1:0 \
    >"$T/s4b.log" 2>&1 && rc=0 || rc=$?
check "a bad task instance of an unfinished run is refused at start (exit $rc)" [ "$rc" = 1 ]
check "  naming it" grep -q "bad record: tis 'hello/$live/hi'" "$T/s4b.log"

out=$("$SCHED" --data "$T/none" --check 2>&1) && rc=0 || rc=$?
check "--check where there is no store: exit 2, and no store made" \
    sh -c "[ $rc = 2 ] && [ ! -e '$T/none/state/data.mdb' ]"
finish
