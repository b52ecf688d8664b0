#!/usr/bin/env bash
# `make demo-image`: the iris pipeline from a container image, end to end
# and offline. Builds the image from this host's Debian packages
# (examples/iris-image/build-image.sh), starts Debian's docker-registry on
# 127.0.0.1, pushes the image with skopeo, starts a scheduler and a worker
# that know that registry (--insecure-registry: plain HTTP on loopback),
# runs examples/iris-image/iris-image.yaml by reference, then runs it again
# (the image is cached on the worker; the same digest makes train and
# evaluate step cache hits). Everything it starts stops when it ends; its
# files stay in DEMO_DIR (default BUILD_DIR/demo-image, made afresh).
# Usage: scripts/demo-image.sh [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
CAIRN=$build/cli/cairn
dir=${DEMO_DIR:-$build/demo-image}
rm -rf "$dir"
mkdir -p "$dir/dags"
pids=()
stop() {
    for p in "${pids[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]:-}"; do timeout 15 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
}
trap stop EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
for c in docker-registry skopeo umoci runc; do
    command -v "$c" >/dev/null || { echo "demo-image: $c is missing (make deps)" >&2; exit 1; }
done

say "Checking the DAG"
"$CAIRN" validate "$src/examples/iris-image/iris-image.yaml"

say "Starting docker-registry on loopback"
reg=127.0.0.1:$(port)
cat >"$dir/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $dir/registry}}
http: {addr: $reg}
YML
docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do curl -s -o /dev/null "http://$reg/v2/" && break; sleep 0.1; done
echo "registry at http://$reg/"

say "Building the image (python3 + scikit-learn + the pipeline, from this host's packages)"
t0=$(date +%s)
bash "$src/examples/iris-image/build-image.sh" "$dir/oci:1"
echo "built in $(($(date +%s) - t0)) s"
skopeo copy --quiet --dest-tls-verify=false "oci:$dir/oci:1" "docker://$reg/cairn/iris:1"
digest=$(skopeo inspect --tls-verify=false "docker://$reg/cairn/iris:1" | jq -r .Digest)
echo "pushed $reg/cairn/iris:1 ($digest)"

sed "s|localhost:5000|$reg|" "$src/examples/iris-image/iris-image.yaml" >"$dir/dags/iris-image.yaml"

http=$(port)
nng=$(port)
export CAIRN_SERVER=http://127.0.0.1:$http
say "Starting cairn-scheduler and one cairn-worker (both --insecure-registry $reg)"
"$build/scheduler/cairn-scheduler" --dags "$dir/dags" --data "$dir/scheduler" \
    --listen "tcp://127.0.0.1:$nng" --http "127.0.0.1:$http" \
    --insecure-registry "$reg" >"$dir/scheduler.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null && break; sleep 0.1; done
"$build/worker/cairn-worker" --scheduler "tcp://127.0.0.1:$nng" --data "$dir/worker" \
    --name demo-image-worker --slots 2 --insecure-registry "$reg" >"$dir/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do "$CAIRN" workers --json 2>/dev/null | grep -q demo-image-worker && break; sleep 0.1; done
for _ in $(seq 1 300); do "$CAIRN" dags list --json 2>/dev/null | grep -q '"iris-image"' && break; sleep 0.1; done

# show RUN: each task's state and image digest, and the run's pinned images
show() {
    "$CAIRN" runs show "$1" --dag iris-image --json | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
print("run %s: %s; pinned images: %s" % (r["run_id"], r["state"], json.dumps(r["images"])))
for t in r["tasks"]:
    state = t["state"] + (" (cached)" if t.get("cached") else "")
    print("  %-9s %-16s %s" % (t["task"], state, t.get("image_digest") or "-"))
m = [t for t in r["tasks"] if t["task"] == "evaluate"][0].get("metrics") or {}
print("  evaluate metrics: " + ", ".join("%s=%s" % kv for kv in m.items()))'
}
last_run() {
    "$CAIRN" runs list --dag iris-image --json | /usr/bin/python3 -c \
        'import json,sys; print(json.load(sys.stdin)["runs"][0]["run_id"])'
}

say "Run 1: the worker pulls the image (its layers show in the first task's log)"
rc=0
"$CAIRN" trigger iris-image --wait || rc=$?
run1=$(last_run)
show "$run1"
echo
"$CAIRN" logs "$run1" ingest --dag iris-image | grep '^cairn: image' || true

if [ "$rc" -eq 0 ]; then
    say "Run 2: the same tag, the same digest: no pull, train and evaluate from the step cache"
    "$CAIRN" trigger iris-image --wait || rc=$?
    run2=$(last_run)
    show "$run2"
fi

say "The worker's cached images"
"$CAIRN" workers --json | /usr/bin/python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    for i in w.get("images") or []:
        print("  %s  %s  %.0f MB" % (w["name"], i["digest"], i["size"] / 1e6))'
echo
echo "The demo's registry, scheduler and worker stop now; their files stay in $dir."
exit $rc
