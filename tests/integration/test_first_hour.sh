#!/usr/bin/env bash
# What a new user trips over in the first hour, each a regression check:
# a publishing task's attempt ends (and `logs --follow` returns); `latest`
# follows the newest logical date, not the order runs finish in; metrics
# across runs are ordered by logical date; errors say what happened (the
# upstream that failed, the values a false `when` compared, the input that
# was never stored); optional inputs give "best of the survivors".
source "$(dirname "$0")/lib.sh"

put_dag pub <<'YAML'
dag: pub
schedule: "@daily"
start_date: 2026-11-01
catchup: false
defaults: {retries: 0}
tasks:
  train:
    command: [sh, -c, "echo '{\"acc\": 0.9}' > $CAIRN_OUTPUTS/m.json; echo {{ ds }} > $CAIRN_OUTPUTS/model.txt"]
    outputs: [model.txt]
    metrics: m.json
    publish: [model.txt]
YAML
put_dag why <<'YAML'
dag: why
params: {min_auc: 0.75}
defaults: {retries: 0}
tasks:
  select:
    command: [sh, -c, "echo '{\"auc\": 0.7124}' > $CAIRN_OUTPUTS/m.json"]
    metrics: m.json
  deploy:
    needs: [select]
    when: "select.metrics.auc >= params.min_auc"
    command: ["true"]
  train_b:
    command: [sh, -c, "echo 'loading data' >&2; echo 'ValueError: NaN in column age' >&2; exit 3"]
    outputs: [model.pkl]
  best:
    needs: [train_b]
    trigger_rule: all_done
    inputs: {model_b: train_b/model.pkl}
    command: ["true"]
  after_b:
    needs: [train_b]
    command: ["true"]
  after_after_b:
    needs: [after_b]
    command: ["true"]
YAML
put_dag best <<'YAML'
dag: best
defaults: {retries: 0}
tasks:
  train_a:
    command: [sh, -c, "echo a > $CAIRN_OUTPUTS/model.pkl"]
    outputs: [model.pkl]
  train_b:
    command: [sh, -c, "exit 1"]
    outputs: [model.pkl]
  pick:
    needs: [train_a, train_b]
    trigger_rule: all_done
    inputs:
      model_a: {from: train_a/model.pkl, optional: true}
      model_b: {from: train_b/model.pkl, optional: true}
    command: [sh, -c, "echo names=$CAIRN_INPUT_NAMES; ls $CAIRN_INPUTS; cat $CAIRN_INPUTS/model_a"]
YAML
export CAIRN_NOW=2026-12-03T12:00:00Z
start_scheduler s
start_worker w1 --isolation none
models="$T/s/models/pub/train"

# --- a publishing task's attempt ends
new=$("$CAIRN" trigger pub --logical-date 2026-12-03)
check "a run that publishes succeeds" test "$(wait_run "$new" pub)" = success
check "  its attempt is over: success, not running" \
    test "$(attempts "$new" pub train | jq -r '.attempts[0].state')" = success
check "  logs --follow of it returns" timeout 10 "$CAIRN" logs "$new" train --dag pub --follow
check "  latest is its release" test "$(readlink "$models/latest")" = "releases/$new-a1"

# --- latest follows the newest logical date
old=$("$CAIRN" trigger pub --logical-date 2026-11-26)
check "a run of an older date finishes after it" test "$(wait_run "$old" pub)" = success
check "  its release is kept" test -f "$models/releases/$old-a1/model.txt"
check "  but latest stays at the newer date's" test "$(readlink "$models/latest")" = "releases/$new-a1"
check "  and the task says it is not latest" test "$(ti published "$old" pub train | grep -c "'is_latest': False")" = 1
"$CAIRN" clear "$old" --dag pub >/dev/null
check "a retry of the older run succeeds" test "$(wait_run "$old" pub)" = success
check "  latest still stays at the newer date's" test "$(readlink "$models/latest")" = "releases/$new-a1"
"$CAIRN" clear "$new" --dag pub >/dev/null
check "a retry of the newest run succeeds" test "$(wait_run "$new" pub)" = success
check "  and takes latest (the same date, a newer attempt)" test "$(readlink "$models/latest")" = "releases/$new-a2"

# --- metrics across runs, newest logical date first
check "metrics: the newest logical date is the first row" \
    test "$("$CAIRN" metrics pub --json | jq -r '.runs[0].run_id')" = "$new"

# --- errors that say what happened
r=$("$CAIRN" trigger why)
check "a run with a false gate and a failure ends failed" test "$(wait_run "$r" why)" = failed
check "  the skip shows the values it compared" test "$(ti error "$r" why deploy)" = \
    "condition is false: select.metrics.auc (0.7124) >= params.min_auc (0.75)"
check "  upstream_failed names the task that failed" test "$(ti error "$r" why after_b)" = "upstream 'train_b' failed"
check "  ... also two levels down" test "$(ti error "$r" why after_after_b)" = "upstream 'train_b' failed"
check "  an input never stored is named, with why" test "$(ti error "$r" why best)" = \
    "cannot prepare the task: input 'model_b' (train_b/model.pkl) has no stored artifact: task 'train_b' is failed"
check "  the failed task carries the last lines of its stderr" \
    test "$(rj "$r" why '.tasks[] | select(.task == "train_b") | .stderr_tail | join("|")')" = \
    "loading data|ValueError: NaN in column age"
check "  and so does its attempt" \
    test "$(attempts "$r" why train_b | jq -r '.attempts[0].stderr_tail[-1]')" = "ValueError: NaN in column age"
check "  runs show prints it under the failure" \
    grep -q "ValueError: NaN in column age" <<<"$("$CAIRN" runs show "$r" --dag why || true)"
# --- optional inputs: best of the survivors
r=$("$CAIRN" trigger best)
wait_run "$r" best >/dev/null
check "an optional input of a failed upstream: the task runs anyway" test "$(ti state "$r" best pick)" = success
out=$("$CAIRN" logs "$r" pick --dag best)
check "  it sees the survivor's file only" test "$(grep -cx 'model_a' <<<"$out")/$(grep -c 'model_b' <<<"$out")" = 1/0
check "  CAIRN_INPUT_NAMES names what is there" grep -qx 'names=model_a' <<<"$out"
check "  with its bytes" grep -qx 'a' <<<"$out"
finish
