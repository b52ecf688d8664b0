#!/bin/bash
# images.sh - pulling images, and starting tasks from them.
#
#   1. First pull + unpack of a ~100 MB image (busybox and numpy/sklearn
#      from the host, two layers) from docker-registry on loopback:
#      worker/image.c against `skopeo copy` + `umoci unpack` of the same
#      image (aim: no slower). Each side starts from an empty folder.
#   2. Warm start of a task from the cached image (image_prepare of the
#      pinned reference + the container) against a bare `runc run` of a
#      bundle with the same rootfs (aim: >= 0.9x).
#   3. 60 container tasks at 2 slots through the whole system (a scheduler
#      and a runc worker with --slots 2; a DAG of 60 independent /bin/true
#      tasks on the pulled image, pinned, warm in the worker's cache; the
#      run's created_at to ended_at) against 60 bare `runc run`s two at a
#      time (two lanes of 30, bundles of the same rootfs with the same
#      limits: 1 CPU, 256 MiB). ROUNDS rounds, interleaved; medians, and
#      the ratio bare/cairn (aim: >= 0.9x).
#
#   sudo bench/images.sh    # PULLS=3 RUNS=20 ROUNDS=3 BUILD=build-bench BENCH_DIR=/tmp by default
#
# Needs root, runc, docker-registry, umoci, skopeo, busybox-static, jq, cmake, cc.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
PULLS=${PULLS:-3}
RUNS=${RUNS:-20}
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp}

cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target cairn_workerlib cairn_common cairn-scheduler cairn-worker cairn \
    >/dev/null
cc -O2 -std=c17 -D_GNU_SOURCE -I"$SRC/common" -I"$SRC/worker" "$SRC/bench/image_driver.c" \
    -o "$BUILD/image_driver" "$BUILD/worker/libcairn_workerlib.a" \
    "$BUILD/common/libcairn_common.a" \
    $(pkg-config --libs libuv jansson libcurl libarchive libcrypto) -lm

TMP=$(mktemp -d "$BENCH_DIR/cairn-bench-img-XXXXXX")
REG_PID=
SYS_PIDS=()
cleanup() {
    for p in "${SYS_PIDS[@]:-}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${SYS_PIDS[@]:-}"; do timeout 15 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
    [ -z "$REG_PID" ] || kill "$REG_PID" 2>/dev/null || true
    for id in img-bare img-cairn; do runc --root "$TMP/warm/root" delete -f "$id" >/dev/null 2>&1 || true; done
    for id in img-lane0 img-lane1; do runc --root "$TMP/bare/root" delete -f "$id" >/dev/null 2>&1 || true; done
    rm -rf "$TMP"
    for h in /sys/fs/cgroup/*/; do rmdir "$h/cairn-bench" 2>/dev/null || true; done
}
trap cleanup EXIT

# the registry
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat >"$TMP/reg.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $TMP/reg}}
http: {addr: $REG}
YML
docker-registry serve "$TMP/reg.yml" >"$TMP/reg.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://$REG/v2/" && break; sleep 0.1; done

# the image: busybox, then the Python packages
mkdir -p "$TMP/l1/bin" "$TMP/l2/usr/lib/python3/dist-packages"
cp /bin/busybox "$TMP/l1/bin/"
ln -s busybox "$TMP/l1/bin/true"; ln -s busybox "$TMP/l1/bin/sh"
for p in numpy sklearn; do cp -a "/usr/lib/python3/dist-packages/$p" "$TMP/l2/usr/lib/python3/dist-packages/"; done
tar -C "$TMP/l1" --numeric-owner -cf "$TMP/l1.tar" .
tar -C "$TMP/l2" --numeric-owner -cf "$TMP/l2.tar" .
umoci init --layout "$TMP/oci"
umoci new --image "$TMP/oci:big"
umoci raw add-layer --image "$TMP/oci:big" "$TMP/l1.tar"
umoci raw add-layer --image "$TMP/oci:big" "$TMP/l2.tar"
skopeo copy --quiet --dest-tls-verify=false "oci:$TMP/oci:big" "docker://$REG/bench/big:1"
SIZE=$(du -sb "$TMP/reg" | cut -f1)
echo "image: $REG/bench/big:1, $((SIZE / 1000000)) MB in the registry (compressed), $(du -sm "$TMP/l2" | cut -f1) MB unpacked"

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "== first pull + unpack ($PULLS each, alternating, from an empty folder)"
: >"$TMP/c.ms"; : >"$TMP/s.ms"
for i in $(seq 1 "$PULLS"); do
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    "$BUILD/image_driver" pull "$TMP/c$i" "$REG/bench/big:1" "$REG" >>"$TMP/c.ms"
    rm -rf "$TMP/c$i"
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    t0=$(now)
    skopeo copy --quiet --src-tls-verify=false "docker://$REG/bench/big:1" "oci:$TMP/s$i:big"
    umoci unpack --image "$TMP/s$i:big" "$TMP/u$i" >/dev/null
    echo "scale=1; ($(now) - $t0) / 1000000" | bc >>"$TMP/s.ms"
    rm -rf "$TMP/s$i" "$TMP/u$i"
done
C=$(median <"$TMP/c.ms"); S=$(median <"$TMP/s.ms")
echo "cairn          median $C ms  (all: $(tr '\n' ' ' <"$TMP/c.ms"))"
echo "skopeo+umoci   median $S ms  (all: $(tr '\n' ' ' <"$TMP/s.ms"))"
echo "speed  (skopeo+umoci)/cairn (medians) $(echo "scale=3; $S / $C" | bc)"

echo "== warm task start from the cached image ($RUNS each, interleaved)"
mkdir -p "$TMP/warm"
"$BUILD/image_driver" warm "$TMP/warm" "$REG/bench/big:1" "$REG" "$RUNS"

echo "== 60 container tasks at 2 slots: scheduler + runc worker against bare runc two at a time ($ROUNDS rounds, interleaved)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$TMP/sys/dags"
{
    echo "dag: sixty"
    echo "max_active_tasks: 1000"
    echo "defaults: {image: \"$REG/bench/big:1\", retries: 0, network: false, resources: {cpus: 1, memory: 256Mi}}"
    echo "tasks:"
    for i in $(seq 0 59); do echo "  t$i: {command: [/bin/true]}"; done
} >"$TMP/sys/dags/sixty.yaml"
HTTP=$(port); NNG=$(port)
export CAIRN_SERVER=http://127.0.0.1:$HTTP
"$BUILD/scheduler/cairn-scheduler" --dags "$TMP/sys/dags" --data "$TMP/sys/sched" \
    --listen "tcp://127.0.0.1:$NNG" --http "127.0.0.1:$HTTP" --insecure-registry "$REG" \
    --log-level warn >"$TMP/sys/sched.log" 2>&1 &
SYS_PIDS+=($!)
for _ in $(seq 100); do curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null && break; sleep 0.1; done
"$BUILD/worker/cairn-worker" --scheduler "tcp://127.0.0.1:$NNG" --data "$TMP/sys/worker" \
    --name bench --slots 2 --insecure-registry "$REG" --log-level warn >"$TMP/sys/worker.log" 2>&1 &
SYS_PIDS+=($!)
for _ in $(seq 100); do "$BUILD/cli/cairn" workers --json 2>/dev/null | grep -q '"bench"' && break; sleep 0.1; done
for _ in $(seq 100); do "$BUILD/cli/cairn" dags list --json 2>/dev/null | grep -q '"sixty"' && break; sleep 0.1; done
# run_ms: one run of the DAG, its created_at to ended_at in ms (fails unless it succeeded)
run_ms() {
    local rid
    # (to a file: a pipe to head would end --wait at its second line)
    "$BUILD/cli/cairn" trigger sixty --wait >"$TMP/sys/trigger.out" 2>&1 || true
    rid=$(head -n 1 "$TMP/sys/trigger.out")
    "$BUILD/cli/cairn" runs show "$rid" --dag sixty --json | python3 -c '
import datetime, json, sys
r = json.load(sys.stdin)
if r["state"] != "success":
    bad = [t for t in r["tasks"] if t["state"] != "success"]
    sys.exit("the run ended %s: %d tasks did not succeed, e.g. %s: %s" % (
        r["state"], len(bad), bad[0]["task"], bad[0].get("error")))
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
print("%.1f" % (t(r["ended_at"]) - t(r["created_at"])))'
}
run_ms >/dev/null # the first run pulls the image; the timed ones find it cached
mkdir -p "$TMP/bare"
"$BUILD/image_driver" bundles "$TMP/bare" "$REG/bench/big:1" "$REG" 2 >/dev/null
lane() {
    for _ in $(seq 1 30); do
        runc --root "$TMP/bare/root" run --bundle "$TMP/bare/lane$1.bundle" "img-lane$1" \
            </dev/null >/dev/null
    done
}
: >"$TMP/sb.ms"; : >"$TMP/sc.ms"
for i in $(seq 1 "$ROUNDS"); do
    t0=$(now)
    lane 0 & l0=$!
    lane 1 & l1=$!
    wait "$l0" "$l1"
    echo "scale=1; ($(now) - $t0) / 1000000" | bc >>"$TMP/sb.ms"
    run_ms >>"$TMP/sc.ms"
done
B=$(median <"$TMP/sb.ms"); C=$(median <"$TMP/sc.ms")
echo "bare runc x2    median $B ms  (all: $(tr '\n' ' ' <"$TMP/sb.ms"))"
echo "cairn 2 slots   median $C ms  (all: $(tr '\n' ' ' <"$TMP/sc.ms"))"
echo "speed  bare/cairn (medians) $(echo "scale=3; $B / $C" | bc)"
