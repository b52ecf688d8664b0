#!/usr/bin/env bash
# Dynamic fan-out with real daemons: a hyperparameter sweep (matrix) trained
# with scikit-learn, the best model picked by argmax; a map over a JSON list
# an upstream wrote (1,000 items, three workers), gathered by a fan-in task
# (its manifest made over loop iterations); zip chaining; a failing
# instance retried, then `runs retry` of just that instance; an empty list;
# a list over the limit; and a scheduler SIGKILLed while it expands 20,000
# items (exactly 20,000 instances afterwards).
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/dags/pipeline"
cat >"$T/dags/pipeline/train.py" <<'PY'
import json, os, pickle, sys
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
lr, depth = float(sys.argv[1]), int(sys.argv[2])
X, y = load_iris(return_X_y=True)
Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.5, random_state=0)
m = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(Xa, ya)
out = os.environ["CAIRN_OUTPUTS"]
pickle.dump(m, open(os.path.join(out, "model.pkl"), "wb"))
json.dump({"accuracy": m.score(Xb, yb), "depth": depth, "lr": lr}, open(os.path.join(out, "metrics.json"), "w"))
PY
cat >"$T/dags/pipeline/pick.py" <<'PY'
import json, os, sys
best = sys.argv[1]
ins = os.environ["CAIRN_INPUTS"]
man = json.load(open(os.path.join(ins, "models", "manifest.json")))
print("instances", len(man))
print("best", best, "item", [m["item"] for m in man if str(m["index"]) == best][0])
assert os.path.exists(os.path.join(ins, "models", best, "model.pkl"))
PY

put_dag sweep <<'YAML'
dag: sweep
code: pipeline
params: {min_accuracy: 0.5}
defaults: {retries: 0}
tasks:
  train:
    matrix: {lr: [0.1, 0.01], depth: [1, 3, 5]}
    command: [sh, -c, "/usr/bin/python3 $CAIRN_PIPELINE_DIR/train.py {{ item.lr }} {{ item.depth }}"]
    outputs: [model.pkl, metrics.json]
    metrics: metrics.json
    max_parallel: 2
  pick:
    needs: [train]
    inputs: {models: train/model.pkl}
    when: "max(train.metrics.accuracy) >= params.min_accuracy"
    command: [sh, -c, "/usr/bin/python3 $CAIRN_PIPELINE_DIR/pick.py {{ argmax(train.metrics.accuracy) }}"]
YAML
put_dag shards <<'YAML'
dag: shards
defaults: {retries: 0}
params: {n: "1000"}
tasks:
  split:
    command: [/usr/bin/python3, -c, "import json,os; json.dump([{'path': 'part-%d' % i, 'rows': i} for i in range({{ params.n }})], open(os.environ['CAIRN_OUTPUTS'] + '/shards.json', 'w'))"]
    outputs: [shards.json]
  score:
    needs: [split]
    map: {from: split/shards.json}
    command: [sh, -c, "echo scored {{ item.path }} {{ map_index }} > $CAIRN_OUTPUTS/score.txt"]
    outputs: [score.txt]
  check:
    needs: [score]
    map: {zip: score}
    inputs: {s: score/score.txt}
    command: [sh, -c, "grep -q 'scored part-{{ map_index }} {{ map_index }}' $CAIRN_INPUTS/s"]
  gather:
    needs: [score]
    inputs: {all: score/score.txt}
    command: [/usr/bin/python3, -c, "import json, os; d = os.environ['CAIRN_INPUTS'] + '/all'; m = json.load(open(d + '/manifest.json')); assert len(m) == {{ params.n }}, len(m); i = {{ params.n }} - 1; assert open(d + '/%d/score.txt' % i).read().strip() == 'scored part-%d %d' % (i, i)"]
YAML
put_dag flaky <<'YAML'
dag: flaky
params: {items: [a, b, c], flag: /nonexistent}
tasks:
  work:
    map: {over: params.items}
    retries: 1
    retry_delay: 0s
    command: [sh, -c, "test {{ item }} != b || test -e {{ params.flag }}"]
YAML
put_dag limits <<'YAML'
dag: limits
max_map_items: 10
params: {n: "0"}
defaults: {retries: 0}
tasks:
  split:
    command: [/usr/bin/python3, -c, "import json,os; json.dump(list(range({{ params.n }})), open(os.environ['CAIRN_OUTPUTS'] + '/l.json', 'w'))"]
    outputs: [l.json]
  each:
    needs: [split]
    map: {from: split/l.json}
    command: ["true"]
  after:
    needs: [each]
    command: ["true"]
YAML
put_dag big <<'YAML'
dag: big
max_active_tasks: 100000
defaults: {retries: 0}
tasks:
  split:
    command: [/usr/bin/python3, -c, "import json,os; json.dump(list(range(20000)), open(os.environ['CAIRN_OUTPUTS'] + '/l.json', 'w'))"]
    outputs: [l.json]
  each:
    needs: [split]
    map: {from: split/l.json}
    command: ["true"]
YAML

start_scheduler s
start_worker w1 --isolation none --slots 4
start_worker w2 --isolation none --slots 4
start_worker w3 --isolation none --slots 4

# --- the sweep
r=$("$CAIRN" trigger sweep)
check "a 6-point sweep runs to success" test "$(wait_run "$r" sweep 120)" = success
check "  train is one row with 6 instances, all success" \
    test "$(rj "$r" sweep '.tasks[] | select(.task == "train") | "\(.map.n) \(.map.counts.success)"')" = "6 6"
check "  the instances are named train[0]..train[5]" \
    test "$("$CAIRN" runs show "$r" --dag sweep --task train --json | jq -r '[.instances[].task] | join(",")')" = \
    "train[0],train[1],train[2],train[3],train[4],train[5]"
out=$("$CAIRN" logs "$r" pick --dag sweep)
# argmax: the lowest index among equal best values, as numpy's
best=$(jq -r '[.instances[] | .metrics.accuracy] | . as $a | ($a | max) as $m | $a | index($m)' \
    <<<"$("$CAIRN" runs show "$r" --dag sweep --task train --json)")
check "  pick saw 6 models in its manifest" grep -qx "instances 6" <<<"$out"
check "  and was given the argmax of accuracy ($best)" grep -q "^best $best " <<<"$out"
check "  an instance's artifact is train[N]/model.pkl" \
    "$CAIRN" artifacts get "$r" "train[$best]/model.pkl" --dag sweep -o "$T/best.pkl"

# --- a map over an upstream's list of 1,000, and zip chaining
r=$("$CAIRN" trigger shards)
check "a map over 1,000 items (and a zip over them) succeeds" test "$(wait_run "$r" shards 180)" = success
check "  1,000 score instances and 1,000 check instances" \
    test "$(rj "$r" shards '[.tasks[] | select(.map) | .map.n] | map(tostring) | join(" ")')" = "1000 1000"
check "  all three workers took some" bash -c \
    'for w in w1 w2 w3; do "$0" runs show "$1" --dag shards --task score --all --json | jq -e --arg w "$w" "[.instances[] | select(.worker == \$w)] | length > 0" >/dev/null || exit 1; done' \
    "$CAIRN" "$r"
check "  a fan-in task gets every instance's file and a manifest of 1,000" test "$(ti state "$r" shards gather)" = success
check "  an instance renders its item" bash -c '"$0" logs "$1" "score[7]" --dag shards >/dev/null; "$0" artifacts get "$1" "score[7]/score.txt" --dag shards -o - | grep -qx "scored part-7 7"' "$CAIRN" "$r"

# --- a failing instance, retried, then `runs retry` of just that one
r=$("$CAIRN" trigger flaky --param flag="$T/flag")
check "an instance that fails twice fails its run" test "$(wait_run "$r" flaky)" = failed
check "  only work[1] failed, after 2 attempts" \
    test "$("$CAIRN" runs show "$r" --dag flaky --task work --json | jq -r '[.instances[] | "\(.state)/\(.attempts)"] | join(" ")')" = \
    "success/1 failed/2 success/1"
touch "$T/flag"
"$CAIRN" runs retry "$r" --dag flaky >/dev/null
check "runs retry reruns just the failed instance, and the run succeeds" test "$(wait_run "$r" flaky)" = success
check "  work[0] and work[2] did not run again" \
    test "$("$CAIRN" runs show "$r" --dag flaky --task work --json | jq -r '[.instances[] | .attempts] | join(" ")')" = "1 3 1"

# --- an empty list, and one over the limit
r=$("$CAIRN" trigger limits --param n=0)
check "an empty list: zero instances, the task is skipped" test "$(wait_run "$r" limits)" = success
check "  each is skipped, and so is what needs it" test "$(ti state "$r" limits each)/$(ti state "$r" limits after)" = skipped/skipped
r=$("$CAIRN" trigger limits --param n=11)
check "a list over max_map_items fails the run" test "$(wait_run "$r" limits)" = failed
check "  naming the file and the limit" bash -c '"$0" runs show "$1" --dag limits --json | jq -r ".tasks[1].error" | grep -q "split/l.json has 11 items, more than max_map_items (10)"' "$CAIRN" "$r"

# --- SIGKILL while expanding 20,000 instances
r=$("$CAIRN" trigger big)
check "the big map starts expanding" wait_until 60 logged s "CAIRN-MAP-EXPAND big/$r/each: 20000 instances"
kill_wait "$SCHED_PID" KILL
start_scheduler s
check "after a SIGKILL mid-expansion the run still succeeds" test "$(wait_run "$r" big 300)" = success
check "  with exactly 20,000 instances, each success once" \
    test "$(rj "$r" big '.tasks[] | select(.task == "each") | "\(.map.n) \(.map.counts.success)"')" = "20000 20000"
finish
