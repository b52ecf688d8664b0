#!/usr/bin/env bash
# Operating runs: clear (one task, with downstream, failed only), runs retry
# reusing successes, runs cancel stopping what runs, DAG versions kept by a
# run while its file changes, dags show.
source "$(dirname "$0")/lib.sh"

put_dag ops <<YAML
dag: ops
description: clear and retry
tasks:
  extract: {command: [sh, -c, "echo extract | tee -a $T/ran"]}
  transform: {command: [sh, -c, "echo transform | tee -a $T/ran; [ -e $T/fixed ]"], needs: [extract]}
  load: {command: [sh, -c, "echo load | tee -a $T/ran"], needs: [transform]}
  side: {command: [sh, -c, "echo side | tee -a $T/ran"], needs: [extract]}
YAML

start_scheduler s1
start_worker w1 --isolation none
r=$("$CAIRN" trigger ops --logical-date 2026-03-01)
check "the run fails at transform" test "$(wait_run "$r" ops)" = failed
check "  load is upstream_failed, side succeeded" test "$(ti state "$r" ops load) $(ti state "$r" ops side)" = "upstream_failed success"

# --- retry: only what failed and its downstream; successes are reused
touch "$T/fixed"
: >"$T/ran"
out=$("$CAIRN" runs retry "$r" --dag ops)
check "runs retry says the run runs again" grep -q "is running again\|is queued again" <<<"$out"
check "  and it succeeds" test "$(wait_run "$r" ops)" = success
check "  running transform and load only" diff <(sort "$T/ran") <(printf '%s\n' load transform)
check "  transform's attempts go on (attempt 2), with a fresh retry budget" test \
    "$(ti attempts "$r" ops transform) $(ti max_attempts "$r" ops transform)" = "2 2"
check "  extract kept its first attempt" test "$(ti attempts "$r" ops extract)" = 1
check "  the failed first attempt is still on record" test \
    "$(attempts "$r" ops transform | jq -r '[.attempts[] | .state] | join(",")')" = "failed,success"
check "  and its log still readable" bash -c '"$0" logs "$1" transform --dag ops --attempt 1 | grep -q transform' "$CAIRN" "$r"
check "retry of a run with nothing failed is refused" bash -c \
    '"$0" runs retry "$1" --dag ops 2>&1 | grep -q "has no failed task"' "$CAIRN" "$r"

# --- clear one task, then one task with its downstream
: >"$T/ran"
"$CAIRN" clear "$r" --dag ops --task side >/dev/null
ran_is() { # ran_is RUN TASK...: the run succeeded, having run exactly those tasks
    local run=$1; shift
    [ "$(wait_run "$run" ops)" = success ] && diff <(sort "$T/ran") <(printf '%s\n' "$@" | sort)
}
check "clear --task side reruns side only" ran_is "$r" side
: >"$T/ran"
"$CAIRN" clear "$r" --task transform --downstream --json >"$T/clear.json"
check "clear --downstream answers with the run, queued or running again" \
    jq -e '.state == "queued" or .state == "running"' "$T/clear.json"
check "  and reruns transform and load, not extract or side" ran_is "$r" transform load
check "clear of an unknown task suggests the name" bash -c \
    '"$0" clear "$1" --task transfrom 2>&1 | grep -q "did you mean .transform."' "$CAIRN" "$r"
check "clear of an unknown run is an error" bash -c '! "$0" clear nope --dag ops 2>/dev/null' "$CAIRN"

# --- cancel (the tasks' command lines name $T, so that the processes of
# another test run on this machine do not count)
put_dag naps <<YAML
dag: naps
tasks:
  nap: {command: [sh, -c, "sleep 60 # naps-marker-$T"]}
  after: {command: [true], needs: [nap]}
  other: {command: [sh, -c, "sleep 60 # naps-marker-$T"]}
YAML
wait_until 10 bash -c '"$0" dags list --json | jq -e ".dags[] | select(.dag == \"naps\")"' "$CAIRN"
n=$("$CAIRN" trigger naps)
wait_until 10 bash -c '[ "$(pgrep -fc "naps-marke[r]-$0")" = 2 ]' "$T"
out=$("$CAIRN" runs cancel "$n" --dag naps)
check "runs cancel answers" grep -q "cancelled" <<<"$out"
check "  the run is cancelled" test "$(run_state "$n" naps)" = cancelled
check "  running tasks cancelled, the rest too" test \
    "$(ti state "$n" naps nap) $(ti state "$n" naps other) $(ti state "$n" naps after)" = "cancelled cancelled cancelled"
check "  the processes are stopped at once" wait_until 5 bash -c '! pgrep -f "naps-marke[r]-$0"' "$T"
check "cancel of a finished run is refused" bash -c \
    '"$0" runs cancel "$1" --dag ops 2>&1 | grep -q "has already finished"' "$CAIRN" "$r"
check "runs list --state cancelled finds it" test \
    "$("$CAIRN" runs list --state cancelled --json | jq -r '.runs[0].run_id')" = "$n"
check "the worker's slots are free again" wait_until 5 bash -c \
    '"$0" workers --json | jq -e ".workers[0].busy == 0"' "$CAIRN"

# --- a run keeps its DAG version when the file changes
v1=$(rj "$r" ops .dag_version)
put_dag ops <<YAML
dag: ops
tasks:
  extract: {command: [sh, -c, "echo extract-v2 | tee -a $T/ran"]}
YAML
wait_until 10 bash -c '[ "$("$0" dags list --json | jq -r ".dags[] | select(.dag == \"ops\") | .version")" != "$1" ]' "$CAIRN" "$v1"
check "runs show still lists the removed tasks of the old version" test \
    "$(rj "$r" ops '[.tasks[].task] | join(",")')" = "extract,transform,load,side"
check "  and shows its version" bash -c '"$0" runs show "$1" --dag ops | grep -q "^version *${2:0:12}"' "$CAIRN" "$r" "$v1"
: >"$T/ran"
"$CAIRN" clear "$r" --dag ops >/dev/null
check "clearing the old run reruns it with its own version (four tasks, old commands)" \
    ran_is "$r" extract transform load side
check "  its version is unchanged" test "$(rj "$r" ops .dag_version)" = "$v1"
r2=$("$CAIRN" trigger ops)
check "a new run uses the new version" test "$(wait_run "$r2" ops) $(rj "$r2" ops '[.tasks[].task] | join(",")')" = "success extract"

# --- dags show
out=$("$CAIRN" dags show naps)
check "dags show lists tasks with their dependencies" grep -Eq '^after +nap +all_success' <<<"$out"
check "  and the last runs" grep -q "$n" <<<"$out"
check "dags show --json has the task list" test "$("$CAIRN" dags show naps --json | jq '.task_list | length')" = 3
check "dags show of an unknown DAG fails" bash -c '! "$0" dags show nope 2>/dev/null' "$CAIRN"
finish
