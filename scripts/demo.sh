#!/usr/bin/env bash
# `make demo`: check the examples, start a scheduler and a worker, run the
# example pipeline in runc containers with live progress, show what happened,
# and stop the daemons again. The demo's DAGs and data stay in BUILD_DIR/demo
# (made afresh each time), so `cairn standalone` can bring the UI back with
# them. Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
CAIRN=$build/cli/cairn
dir=$build/demo
rm -rf "$dir"
mkdir -p "$dir"
pids=()
stop() {
    for p in "${pids[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]:-}"; do timeout 15 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
}
trap stop EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Checking the example DAGs"
"$CAIRN" validate "$src/examples"/*/*.yaml

http=$(port)
nng=$(port)
export CAIRN_SERVER=http://127.0.0.1:$http
mkdir -p "$dir/dags"
cp "$src/examples/hello/hello.yaml" "$src/examples/iris/iris.yaml" "$dir/dags/"
cp -r "$src/examples/iris/pipeline" "$dir/dags/pipeline"

say "Starting cairn-scheduler (http :$http, workers :$nng) and one cairn-worker"
"$build/scheduler/cairn-scheduler" --dags "$dir/dags" --data "$dir/scheduler" \
    --listen "tcp://127.0.0.1:$nng" --http "127.0.0.1:$http" >"$dir/scheduler.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null && break; sleep 0.1; done
"$build/worker/cairn-worker" --scheduler "tcp://127.0.0.1:$nng" --data "$dir/worker" \
    --name demo-worker --slots 2 >"$dir/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do "$CAIRN" workers --json 2>/dev/null | grep -q demo-worker && break; sleep 0.1; done
"$CAIRN" dags list
"$CAIRN" workers

say "Triggering the iris pipeline: ingest -> validate -> train -> evaluate -> deploy"
echo "(each step runs scikit-learn in its own runc container; files move as artifacts;"
echo " the schedules of both DAGs also created their latest due runs on start)"
rc=0
"$CAIRN" trigger iris --wait || rc=$?
run=$("$CAIRN" runs list --dag iris --json | /usr/bin/python3 -c \
    'import json,sys; print(json.load(sys.stdin)["runs"][0]["run_id"])')

say "Metrics of 'evaluate' (deploy runs only if accuracy >= params.min_accuracy)"
"$CAIRN" runs show "$run" --dag iris --json | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
t = {x["task"]: x for x in r["tasks"]}
for k, v in t["evaluate"]["metrics"].items():
    print(f"  {k:10} {v}")
d = t["deploy"]
print("  deploy     " + d["state"] + ("" if d["state"] == "success" else " (" + str(d["error"]) + ")"))'

say "Artifacts (content-addressed, SHA-256)"
"$CAIRN" artifacts list "$run" --dag iris

say "The models folder (deploy publishes model.pkl there when the gate lets it through)"
latest=$("$CAIRN" runs show "$run" --dag iris --json | /usr/bin/python3 -c '
import json, sys
d = [t for t in json.load(sys.stdin)["tasks"] if t["task"] == "deploy"][0]
print((d.get("published") or {}).get("latest", ""))')
if [ -n "$latest" ]; then
    echo "published: $latest -> $(readlink "$latest")"
    ls -l "$latest/"
    echo "sha256 of the published model: $(sha256sum "$latest/model.pkl" | cut -d' ' -f1)"
    echo
    echo "$latest/publish.json (which run produced it):"
    cat "$latest/publish.json"
    echo "(the models folder is --models, by default DATA/models of the scheduler; this"
    echo " demo's is under $dir)"
else
    echo "nothing was published: deploy did not run (see its state above)"
fi

say "Logs of 'evaluate'"
"$CAIRN" logs "$run" evaluate --dag iris

say "Keep exploring"
echo "The demo's scheduler and worker stop now, and with them the web UI that was at"
echo "$CAIRN_SERVER/. Its DAGs and data stay in $dir; to bring everything back"
echo "(UI and API on http://127.0.0.1:7780/, the runs you just saw included):"
echo
echo "    $CAIRN standalone --dags $dir/dags --data $dir"
echo
echo "then, in another terminal: $CAIRN runs list; $CAIRN trigger hello --wait;"
echo "$CAIRN lineage $run deploy/model.pkl --dag iris. The manual is in docs/."
exit $rc
