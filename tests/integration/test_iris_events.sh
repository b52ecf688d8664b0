#!/usr/bin/env bash
# The operations features on the real ML pipeline: examples/iris publishes
# its model, and a scoring DAG with `trigger: {on_publish: iris/deploy}`
# runs by itself on each new release, loading that release's model.pkl
# (the path comes as a param: a path on the scheduler's host, which the
# scoring worker here shares) and scoring with it; a retraining on noisy
# data (params.noise) drops evaluate's accuracy, and the DAG's
# `notify: metric_regression` entry fires with the old and new values.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/dags"
cp "$CAIRN_SRC/examples/iris/iris.yaml" "$T/dags/"
cp -r "$CAIRN_SRC/examples/iris/pipeline" "$T/dags/pipeline"
/usr/bin/python3 - "$T/dags/iris.yaml" "$T/regression.json" <<'PY'
import sys
path, out = sys.argv[1], sys.argv[2]
s = open(path).read()
s = s.replace('schedule: "0 3 * * *"\n', "")  # manual runs only in this test
s = s.replace("defaults:\n", "notify:\n"
              "  - on: [metric_regression]\n"
              f"    command: [sh, -c, 'cat > {out}']\n"
              "    metric: {task: evaluate, name: accuracy, drop: 0.02}\n"
              "defaults:\n  labels: {role: train}\n", 1)
open(path, "w").write(s)
PY
put_dag score <<'YAML'
dag: score
description: scores new measurements with each model iris/deploy releases
trigger: {on_publish: iris/deploy}
defaults: {image: host, retries: 0, labels: {role: score}}
tasks:
  score:
    command:
      - /usr/bin/python3
      - -c
      - |
        import pickle, sys
        model = pickle.load(open(sys.argv[1] + "/model.pkl", "rb"))
        print("release", sys.argv[2], "scored", model.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]).tolist())
      - "{{ params.release_path }}"
      - "{{ params.release_id }}"
YAML
"$CAIRN" validate "$T/dags" >/dev/null

start_scheduler s
start_worker w --slots 2 --labels role=train
# the scoring worker reads the scheduler's models folder (same host)
start_worker ws --slots 1 --isolation none --labels role=score

r1=$("$CAIRN" trigger iris)
check "iris trains and deploys" test "$(wait_run "$r1" iris 180)" = success
check "  and publishes a release" test "$(ti state "$r1" iris deploy)" = success
scored() { "$CAIRN" runs list --dag score --json | jq -r '.runs[0].run_id // empty'; }
check "the release starts a scoring run by itself" wait_until 60 bash -c '[ -n "$("$0" runs list --dag score --json | jq -r ".runs[0].run_id // empty")" ]' "$CAIRN"
s1=$(scored)
check "  an event run" test "$(rj "$s1" score .run_type)" = event
check "  that scores with the released model" test "$(wait_run "$s1" score 120)" = success
out=$("$CAIRN" logs "$s1" score --dag score)
check "  (its log names the release and the classes: $out)" grep -q "release $r1-a1 scored \['setosa', 'virginica'\]" <<<"$out"
check "  the event says which release" test "$(rj "$s1" score .event.kind)" = on_publish

r2=$("$CAIRN" trigger iris --param noise=0.5)
check "a retraining on noisy data ends" test "$(wait_run "$r2" iris 180)" = success
acc1=$(rj "$r1" iris '.tasks[] | select(.task == "evaluate") | .metrics.accuracy')
acc2=$(rj "$r2" iris '.tasks[] | select(.task == "evaluate") | .metrics.accuracy')
check "  with a lower accuracy ($acc1 -> $acc2)" \
    /usr/bin/python3 -c "import sys; sys.exit(not float('$acc2') < float('$acc1') - 0.02)"
check "metric_regression is delivered" wait_until 30 test -s "$T/regression.json"
check "  naming the metric, both values and both runs" /usr/bin/python3 - "$T/regression.json" \
    "$r2" "$r1" "$acc1" "$acc2" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
m = e.get("metric") or {}
ok = (e.get("event") == "metric_regression" and e.get("run_id") == sys.argv[2]
      and (m.get("task") or e.get("task")) == "evaluate" and m.get("name") == "accuracy"
      and m.get("previous_run") == sys.argv[3] and m.get("previous") == float(sys.argv[4])
      and m.get("current") == float(sys.argv[5]))
print(json.dumps(e)[:400])
sys.exit(0 if ok else 1)
PY
n=$("$CAIRN" runs list --dag score --json | jq '.runs | length')
if [ "$(ti state "$r2" iris deploy)" = success ]; then
    check "a deployed noisy model starts a second scoring run" test "$n" = 2
else
    check "an undeployed noisy model starts no scoring run" test "$n" = 1
fi
finish
