#!/usr/bin/env bash
# The step cache with real runc workers: a second run with the same inputs
# reuses the first run's outputs without running the task; a changed input,
# param, script in the code folder or command misses; --no-cache runs the
# task and refreshes the cache (and survives a scheduler restart); a task
# without `cache: true` always runs; entries outlive a restart; an entry
# whose blob is gone misses; a result is not stored when the code changed
# while the task ran.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/dags/code"
# The cached step mixes its input, its argument and fresh random bytes into
# its output: a step that really ran never reproduces an earlier digest.
cat >"$T/dags/code/step.sh" <<'SH'
set -e
echo "step ran with salt=$1"
[ "$1" != slow ] || sleep 2
{ cat /inputs/data; echo "salt=$1"; head -c 16 /dev/urandom | od -An -tx1; } > /outputs/out.txt
echo '{"score": 0.75}' > /outputs/m.json
SH
dag_v1() {
    put_dag cachetest <<YAML
dag: cachetest
params: {n: "1", salt: a, pause: "0"}
code: code
defaults: {retries: 0}
tasks:
  make:   # not cached: runs every time; same params, same bytes
    command: [sh, -c, "sleep {{ params.pause }}; echo data-{{ params.n }} > /outputs/data.txt"]
    outputs: [data.txt]
  step:
    needs: [make]
    cache: true
    inputs: {data: make/data.txt}
    command: [sh, /pipeline/step.sh, "{{ params.salt }}"$1]
    outputs: [out.txt]
    metrics: m.json
  plain:  # not cached: never hits
    needs: [step]
    command: [sh, -c, "echo plain ran; head -c 8 /dev/urandom | od -An -tx1 > /outputs/t.txt"]
    outputs: [t.txt]
YAML
}
dag_v1 ""

start_scheduler s
start_worker w1 --slots 2

D=cachetest
# tf RUN TASK JQ -> JQ applied to the task instance
tf() { rj "$1" $D ".tasks[] | select(.task == \"$2\") | $3"; }
sha() { tf "$1" "$2" ".outputs[] | select(.name == \"$3\") | .sha256"; }
trig() { # trig [args] -> run id of a finished run (prints nothing else)
    local r
    r=$("$CAIRN" trigger $D "$@") || return 1
    [ "$(wait_run "$r" $D 90)" = success ] || echo "run $r did not succeed" >&2
    echo "$r"
}
ran() { # ran RUN TASK: the task ran (one attempt, not cached)
    [ "$(tf "$1" "$2" '[.attempts, .cached] | @tsv')" = "$(printf '1\tfalse')" ]
}
hit() { # hit RUN TASK FROM_RUN: reused FROM_RUN's outputs without running
    [ "$(tf "$1" "$2" '[.attempts, .cached, .cached_from.run_id, .state] | @tsv')" = \
      "$(printf '0\ttrue\t%s\tsuccess' "$3")" ]
}

check "the DAG's task list says which tasks are cached" \
    [ "$(curl -sf "$CAIRN_SERVER/api/v1/dags/$D" | jq -c '[.task_list[] | select(.cache) | .task]')" = '["step"]' ]

# --- a hit --------------------------------------------------------------------
r1=$(trig)
check "first run: the cached step runs" ran "$r1" step
check "  and stores a cache key" [ "$(tf "$r1" step '.cache_key | length')" = 64 ]
check "  a task without cache has no key" [ "$(tf "$r1" plain .cache_key)" = null ]

r2=$(trig)
check "second run, same params: the step is a hit from the first run" hit "$r2" step "$r1"
check "  cached_from names the task and attempt" \
    [ "$(tf "$r2" step '.cached_from | "\(.dag)/\(.task)#\(.attempt)"')" = "$D/step#1" ]
check "  the step did not run: no attempt" [ "$(attempts "$r2" $D step | jq '.attempts | length')" = 0 ]
check "  no log" [ -z "$("$CAIRN" logs "$r2" step --dag $D)" ]
check "  and the worker never started it" bash -c '! grep -q "$0/step#" "$1"' "$r2" "$T/w1.log"
check "  the first run's step did run on the worker" grep -q "$r1/step#1" "$T/w1.log"
check "  same output digest as the first run" [ "$(sha "$r2" step out.txt)" = "$(sha "$r1" step out.txt)" ]
check "  same metrics" [ "$(tf "$r2" step .metrics.score)" = 0.75 ]
check "  same key" [ "$(tf "$r2" step .cache_key)" = "$(tf "$r1" step .cache_key)" ]
check "  the upstream without cache ran again (same bytes)" ran "$r2" make
check "  the downstream without cache ran again" ran "$r2" plain
check "  and read the cached output as its input" \
    [ "$(tf "$r2" plain .state)" = success ]
arts=$("$CAIRN" artifacts list "$r2" --dag $D --json)
check "  artifacts list of the second run has the reused output, naming where it came from" \
    [ "$(jq -r --arg s "$(sha "$r1" step out.txt)" \
        '.artifacts[] | select(.name == "out.txt" and .sha256 == $s) | .cached_from.run_id' <<<"$arts")" = "$r1" ]
show=$("$CAIRN" runs show "$r2" --dag $D)
check "  runs show says success (cached)" grep -Eq "^step +success \(cached\) +0/1" <<<"$show"
check "  and where from" grep -qF "step: cached from run $r1 (attempt 1)" <<<"$show"
check "  the scheduler logged the hit" logged s "CAIRN-CACHE-HIT $D/$r2/step"

# --- misses -------------------------------------------------------------------
r3=$(trig --param n=2)
check "an input that changes (param of the upstream): miss" ran "$r3" step
check "  its input digest differs" [ "$(sha "$r3" make data.txt)" != "$(sha "$r1" make data.txt)" ]
check "  and so does the output" [ "$(sha "$r3" step out.txt)" != "$(sha "$r1" step out.txt)" ]
r3b=$(trig --param n=2)
check "  the same changed input again: hit from that run" hit "$r3b" step "$r3"

r4=$(trig --param salt=b)
check "a param that changes the rendered command: miss" ran "$r4" step
check "  (with the same input as the first run)" [ "$(sha "$r4" make data.txt)" = "$(sha "$r1" make data.txt)" ]
check "  the log shows the new argument" bash -c '"$0" logs "$1" step --dag "$2" | grep -q "salt=b"' "$CAIRN" "$r4" $D

echo "# a comment changes the script" >>"$T/dags/code/step.sh"
r5=$(trig)
check "an edited script in the code folder: miss" ran "$r5" step
check "  with a new key" [ "$(tf "$r5" step .cache_key)" != "$(tf "$r1" step .cache_key)" ]

v1=$("$CAIRN" dags list --json | jq -r ".dags[] | select(.dag == \"$D\") | .version")
dag_v1 ', "--verbose"'
check "the edited DAG is loaded" wait_until 15 bash -c \
    '[ "$("$0" dags list --json | jq -r ".dags[] | select(.dag == \"$1\") | .version")" != "$2" ]' "$CAIRN" $D "$v1"
r6=$(trig)
check "a changed command in the DAG file: miss" ran "$r6" step
r7=$(trig)
check "  and the new command is cached in turn" hit "$r7" step "$r6"

# --- --no-cache -------------------------------------------------------------------
r8=$(trig --no-cache)
check "--no-cache runs the step although the cache has it" ran "$r8" step
check "  the run and its tasks say no_cache" \
    [ "$(rj "$r8" $D '[.no_cache, (.tasks[] | .no_cache)] | all')" = true ]
check "  runs show says so" bash -c '"$0" runs show "$1" --dag "$2" | grep -q "^cache .*--no-cache"' "$CAIRN" "$r8" $D
check "  the output is new" [ "$(sha "$r8" step out.txt)" != "$(sha "$r6" step out.txt)" ]
r9=$(trig)
check "  and refreshed the cache: the next run is a hit from it" hit "$r9" step "$r8"
check "  with its bytes" [ "$(sha "$r9" step out.txt)" = "$(sha "$r8" step out.txt)" ]

body=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"no_cache": "yes"}' \
    "$CAIRN_SERVER/api/v1/dags/$D/trigger")
check "the API refuses a no_cache that is not a boolean" \
    [ "$(jq -r .error.code <<<"$body")" = bad_request ]

# --- restarts -------------------------------------------------------------------
kill_wait "$SCHED_PID" TERM
start_scheduler s
r10=$(trig)
check "cache entries outlive a scheduler restart" hit "$r10" step "$r8"

# no_cache is kept with the task instance: the step becomes ready only after
# a restart, and still runs
r11=$("$CAIRN" trigger $D --no-cache --param pause=3)
check "  (the upstream of a --no-cache run is running)" wait_until 20 \
    bash -c '[ "$("$0" runs show "$1" --dag "$2" --json | jq -r ".tasks[0].state")" = running ]' "$CAIRN" "$r11" $D
kill_wait "$SCHED_PID" KILL
start_scheduler s
check "  the run finishes after a SIGKILL and restart" [ "$(wait_run "$r11" $D 60)" = success ]
check "  and its step ran: no_cache survived the restart" ran "$r11" step

# --- a blob that is gone --------------------------------------------------------------
r12=$(trig)
check "(a hit before the blob goes)" hit "$r12" step "$r11"
s12=$(sha "$r12" step out.txt)
rm -f "$T/s/artifacts/blobs/sha256/${s12:0:2}/${s12:2}"
r13=$(trig)
check "an entry whose output blob is gone: miss" ran "$r13" step
check "  logged" logged s "CAIRN-CACHE-STALE $D/$r13/step"

# --- the code changes while the step runs ------------------------------------------
# The run's tasks see its code snapshot (dag-yaml.md, "Code snapshots"), so
# an edit while the step runs changes neither what it ran nor its key: its
# result is cached, and a run of the code it started with hits it.
cp "$T/dags/code/step.sh" "$T/step.sh.orig"
r14=$("$CAIRN" trigger $D --param salt=slow)
check "(the slow step is running)" wait_until 20 \
    bash -c '[ "$("$0" runs show "$1" --dag "$2" --json | jq -r ".tasks[1].state")" = running ]' "$CAIRN" "$r14" $D
echo "# edited while it runs" >>"$T/dags/code/step.sh"
check "a step whose code folder changed while it ran succeeds" [ "$(wait_run "$r14" $D 60)" = success ]
check "  and its result is cached: it ran the run's snapshot" bash -c '! grep -q "CAIRN-CACHE-CHANGED $1/$2/step" "$0"' "$T/s.log" $D "$r14"
r14b=$(trig --param salt=slow)
check "  a run of the edited code misses" ran "$r14b" step
cp "$T/step.sh.orig" "$T/dags/code/step.sh"
r15=$(trig --param salt=slow)
check "  a run of the code it started with hits it" hit "$r15" step "$r14"
r16=$(trig --param salt=slow)
check "  and so does the next" hit "$r16" step "$r14"

# --- clear forces recomputation ----------------------------------------------------
check "(r16's step came from the cache)" hit "$r16" step "$r14"
"$CAIRN" clear "$r16" --dag $D --task step >/dev/null
check "a cleared cached step runs again" test "$(wait_run "$r16" $D 60)" = success
check "  (attempt 1, not cached, no cached_from)" test \
    "$(tf "$r16" step '[.attempts, .cached, .cached_from] | @tsv')" = "$(printf '1\tfalse\t')"
check "  with a new digest (the step mixes in random bytes)" test "$(sha "$r16" step out.txt)" != "$(sha "$r14" step out.txt)"

# --- validation -------------------------------------------------------------------
cat >"$T/bad.yaml" <<'YAML'
dag: bad
tasks:
  a:
    command: [echo]
    cache: yes
YAML
out=$("$CAIRN" validate "$T/bad.yaml" 2>&1) && rc=0 || rc=$?
check "cache: yes is refused with its position" [ "$rc" = 1 ]
check "  and a clear message ($out)" grep -qF "bad.yaml:5:12: error: 'cache' must be true or false, got 'yes'" <<<"$out"
finish
