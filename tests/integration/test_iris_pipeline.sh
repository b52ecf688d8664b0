#!/usr/bin/env bash
# The example ML pipeline end to end in runc containers, and `when` gates:
# true and false (skipping propagates, the run still succeeds), bad data
# failing loudly, and a missing metric failing with its name. deploy
# publishes the model to the models folder (the same bytes as the
# artifact, with a record of the run); a false gate publishes nothing; a
# second run reuses train's and evaluate's results from the step cache.
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

put_dag pubfail <<'YAML'
dag: pubfail
defaults: {retries: 0}
tasks:
  make:
    command: [sh, -c, "echo weights > /outputs/m.bin"]
    outputs: [m.bin]
    publish: [m.bin]
YAML

start_scheduler s
start_worker w1

tj() { "$CAIRN" runs show "$1" --dag "$2" --json; }

r=$("$CAIRN" trigger iris)
check "the iris pipeline succeeds in containers" test "$(wait_run "$r" iris 120)" = success
acc=$(tj "$r" iris | jq '.tasks[] | select(.task=="evaluate") | .metrics.accuracy')
check "evaluate's metrics are stored with the task (accuracy $acc)" \
    /usr/bin/python3 -c 'import sys; assert float(sys.argv[1]) >= 0.9' "$acc"
check "runs show prints them below the task table" grep -Eq "^  evaluate +accuracy=$acc( |$)" \
    <("$CAIRN" runs show "$r" --dag iris)
check "deploy ran" test "$(ti state "$r" iris deploy)" = success
check "the deployed model is the trained one (same digest)" test "$("$CAIRN" artifacts list "$r" --dag iris --json |
    jq -r '[.artifacts[] | select(.name=="model.pkl") | .sha256] | unique | length')" = 1

# the models folder (the scheduler's default: DATA/models)
models=$T/s/models/iris/deploy
art=$("$CAIRN" artifacts list "$r" --dag iris --json |
    jq -r '.artifacts[] | select(.task=="deploy" and .name=="model.pkl") | .sha256')
pub=$(tj "$r" iris | jq -c '.tasks[] | select(.task=="deploy") | .published')
rel=$(jq -r .path <<<"$pub")
check "deploy says where it published ($rel)" test "$rel" = "$models/releases/$r-a1"
check "  latest points at that release" test "$(readlink "$models/latest")" = "releases/$r-a1"
check "  the published model has the artifact's digest" \
    test "$(sha256sum "$models/latest/model.pkl" | awk '{print $1}')" = "$art"
check "  it is a read-only copy" test "$(stat -c %a "$models/latest/model.pkl")" = 444
rec=$models/latest/publish.json
check "  the record names the run, task and attempt" \
    test "$(jq -r '"\(.dag) \(.run_id) \(.task) \(.attempt)"' "$rec")" = "iris $r deploy 1"
check "  the file's name and digest" test "$(jq -r '.files[0] | "\(.name) \(.sha256)"' "$rec")" = "model.pkl $art"
check "  the logical date and the params" \
    test "$(jq -r '"\(.logical_date == $ld) \(.params.min_accuracy)"' --arg ld "$(tj "$r" iris | jq -r .logical_date)" "$rec")" = "true 0.9"
check "  and the metrics that let it through the gate" \
    test "$(jq -r .metrics.evaluate.accuracy "$rec")" = "$acc"
check "  the API's files match the record" test "$(jq -c .files <<<"$pub")" = "$(jq -c .files "$rec")"
check "runs show says where" bash -c '"$0" runs show "$1" --dag iris | grep -qF "deploy: published to $2"' "$CAIRN" "$r" "$rel"
first=$r

r=$("$CAIRN" trigger iris --param min_accuracy=0.99)
check "a gate that is false skips deploy and the run succeeds" test "$(wait_run "$r" iris 120)" = success
check "  deploy is skipped" test "$(ti state "$r" iris deploy)" = skipped
check "  and says why" bash -c '"$0" runs show "$1" --dag iris --json | jq -r ".tasks[4].error" | grep -q "condition is false"' "$CAIRN" "$r"
check "  nothing is published: no new release" test "$(ls "$models/releases" | wc -l)" = 1
check "  latest still points at the first run's model" test "$(readlink "$models/latest")" = "releases/$first-a1"
check "  and the task has no published field" test "$(tj "$r" iris | jq -c '.tasks[4].published')" = null
check "  train came from the step cache (same data and scripts)" \
    test "$(tj "$r" iris | jq -r '.tasks[] | select(.task=="train") | "\(.cached) \(.cached_from.run_id) \(.attempts)"')" = "true $first 0"
check "  and so did evaluate's metrics, which the gate read" \
    test "$(tj "$r" iris | jq -r '.tasks[] | select(.task=="evaluate") | "\(.cached) \(.metrics.accuracy)"')" = "true $acc"

r=$("$CAIRN" trigger iris --param corrupt=true)
check "bad data fails the run" test "$(wait_run "$r" iris 120)" = failed
check "  at validate" test "$(ti state "$r" iris validate)" = failed
check "  loudly, naming the row and column" bash -c '"$0" logs "$1" validate --dag iris | grep -q "line 77, column sepal_length"' "$CAIRN" "$r"
check "  and nothing downstream runs" test "$(ti state "$r" iris train)" = upstream_failed

mkdir -p "$T/s/models"
: >"$T/s/models/pubfail"   # a file where the DAG's folder should go
r=$("$CAIRN" trigger pubfail)
check "a publish that cannot be written fails the task" test "$(wait_run "$r" pubfail 60)" = failed
check "  saying why" bash -c '"$0" runs show "$1" --dag pubfail --json | jq -r ".tasks[0].error" |
    grep -q "^cannot publish to the models folder: cannot create .*/models/pubfail/make/releases"' "$CAIRN" "$r"
rm "$T/s/models/pubfail"
r=$("$CAIRN" trigger pubfail)
check "  and works once the folder can be made" test "$(wait_run "$r" pubfail 60)" = success
check "  with the task's bytes" test "$(cat "$T/s/models/pubfail/make/latest/m.bin")" = weights

r=$("$CAIRN" trigger gate)
check "gate run finishes" test "$(wait_run "$r" gate 60)" = failed
check "a true gate runs the task" test "$(ti state "$r" gate high)" = success
check "  and its downstream" test "$(ti state "$r" gate after_high)" = success
check "a missing metric fails the task" test "$(ti state "$r" gate typo)" = failed
err=$(ti error "$r" gate typo)
check "  with a message naming the metric ($err)" grep -q "scroe" <<<"$err"
finish
