#!/usr/bin/env bash
# The example ML pipeline end to end in runc containers, and `when` gates:
# true and false (skipping propagates, the run still succeeds), bad data
# failing loudly, and a missing metric failing with its name.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/dags"
cp "$CAIRN_SRC/examples/iris/iris.yaml" "$T/dags/"
cp -r "$CAIRN_SRC/examples/iris/pipeline" "$T/dags/pipeline"
sed -i 's|^schedule:.*||' "$T/dags/iris.yaml"   # manual runs only in this test
put_dag gate <<'YAML'
dag: gate
params: {threshold: 0.5}
defaults: {retries: 0}
tasks:
  score:
    command: [sh, -c, "echo '{\"score\": 0.7}' > /outputs/m.json"]
    metrics: m.json
  high:
    needs: [score]
    when: "score.metrics.score >= params.threshold"
    command: [echo, high]
  after_high:
    needs: [high]
    command: [echo, after]
  typo:
    needs: [score]
    when: "score.metrics.scroe > 0"
    command: [echo, never]
YAML

start_scheduler s
start_worker w1

tj() { "$CAIRN" runs show "$1" --dag "$2" --json; }

r=$("$CAIRN" trigger iris)
check "the iris pipeline succeeds in containers" test "$(wait_run "$r" iris 120)" = success
acc=$(tj "$r" iris | jq '.tasks[] | select(.task=="evaluate") | .metrics.accuracy')
check "evaluate's metrics are stored with the task (accuracy $acc)" \
    /usr/bin/python3 -c 'import sys; assert float(sys.argv[1]) >= 0.9' "$acc"
check "deploy ran" test "$(ti state "$r" iris deploy)" = success
check "the deployed model is the trained one (same digest)" test "$("$CAIRN" artifacts list "$r" --dag iris --json |
    jq -r '[.artifacts[] | select(.name=="model.pkl") | .sha256] | unique | length')" = 1

r=$("$CAIRN" trigger iris --param min_accuracy=0.99)
check "a gate that is false skips deploy and the run succeeds" test "$(wait_run "$r" iris 120)" = success
check "  deploy is skipped" test "$(ti state "$r" iris deploy)" = skipped
check "  and says why" bash -c '"$0" runs show "$1" --dag iris --json | jq -r ".tasks[4].error" | grep -q "condition is false"' "$CAIRN" "$r"

r=$("$CAIRN" trigger iris --param corrupt=true)
check "bad data fails the run" test "$(wait_run "$r" iris 120)" = failed
check "  at validate" test "$(ti state "$r" iris validate)" = failed
check "  loudly, naming the row and column" bash -c '"$0" logs "$1" validate --dag iris | grep -q "line 77, column sepal_length"' "$CAIRN" "$r"
check "  and nothing downstream runs" test "$(ti state "$r" iris train)" = upstream_failed

r=$("$CAIRN" trigger gate)
check "gate run finishes" test "$(wait_run "$r" gate 60)" = failed
check "a true gate runs the task" test "$(ti state "$r" gate high)" = success
check "  and its downstream" test "$(ti state "$r" gate after_high)" = success
check "a missing metric fails the task" test "$(ti state "$r" gate typo)" = failed
err=$(ti error "$r" gate typo)
check "  with a message naming the metric ($err)" grep -q "scroe" <<<"$err"
finish
