#!/bin/bash
# images.sh - pulling images, and starting tasks from them.
#
#   1. First pull + unpack of an image from docker-registry on loopback:
#      worker/image.c against `skopeo copy` + `umoci unpack` of the same
#      image (aim: no slower). Each side starts from an empty folder.
#   2. Warm start of a task from the cached image, as the worker makes it
#      (the pinned reference from its cache of prepared images, the bundle
#      in the attempt's work folder, the container) against a bare `runc
#      run` of a bundle with the same rootfs (aim: >= 0.9x).
#   3. 60 container tasks at 2 slots through the whole system (a scheduler
#      and a runc worker with --slots 2; a DAG of 60 independent /bin/true
#      tasks on the pulled image, pinned, warm in the worker's cache; the
#      run's created_at to ended_at) against 60 bare `runc run`s two at a
#      time (two lanes of 30, bundles of the same rootfs with the same
#      limits: 1 CPU, 256 MiB). ROUNDS rounds, interleaved; medians, and
#      the ratio bare/cairn (aim: >= 0.9x).
#
# The images, made offline from the host's files (tar, umoci):
#   small  busybox, then numpy and sklearn (2 layers; ~24 MB compressed,
#          ~78 MB unpacked)
#   big    busybox; python3 with its standard library and the shared
#          libraries it and the packages load (ldd); numpy, scipy,
#          sklearn, joblib, threadpoolctl (3 layers; ~100 MB compressed,
#          ~270 MB unpacked): a realistic training image, whose python3
#          imports sklearn (checked with a bare runc run before timing)
#
#   sudo bench/images.sh          # the small image
#   sudo bench/images.sh --big    # both, small then big, each reported
#
# PULLS=3 RUNS=20 ROUNDS=3 BUILD=build-bench BENCH_DIR=/tmp by default;
# IMAGES="small big" is what --big sets; PARTS="pull warm tasks" (all) by
# default, a subset runs only those.
#
# Needs root, runc, docker-registry, umoci, skopeo, busybox-static, jq, cmake, cc;
# for big also python3-sklearn (which brings numpy, scipy, joblib).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
PULLS=${PULLS:-3}
RUNS=${RUNS:-20}
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp}
IMAGES=${IMAGES:-small}
PARTS=${PARTS:-pull warm tasks}
case ${1:-} in
--big) IMAGES="small big" ;;
"") ;;
*) echo "usage: bench/images.sh [--big]" >&2; exit 2 ;;
esac

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
    for img in $IMAGES; do
        for id in img-bare img-cairn; do runc --root "$TMP/$img/warm/root" delete -f "$id" >/dev/null 2>&1 || true; done
        for id in img-lane0 img-lane1 img-check; do
            runc --root "$TMP/$img/bare/root" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
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

# the images (build_image NAME: pushed as $REG/bench/NAME:1)
layer() { # layer DIR TAR: the folder as a layer tarball, numeric owners
    tar -C "$1" --numeric-owner -cf "$2" .
}
# libs DEST FILE...: the shared libraries FILEs load (ldd), copied into
# DEST under the names the loader looks for (/lib is usr/lib there)
libs() {
    local dest=$1 l
    shift
    for l in $(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}' | sort -u); do
        case $l in
        /lib64/*) mkdir -p "$dest/lib64"; cp -L "$l" "$dest/lib64/" ;;
        *) mkdir -p "$dest/usr/lib/x86_64-linux-gnu"; cp -L "$l" "$dest/usr/lib/x86_64-linux-gnu/$(basename "$l")" ;;
        esac
    done
}
build_image() {
    local name=$1 d=$TMP/$1/layers n=0 dp=/usr/lib/python3/dist-packages
    mkdir -p "$d/l1/bin"
    cp /bin/busybox "$d/l1/bin/"
    ln -s busybox "$d/l1/bin/true"; ln -s busybox "$d/l1/bin/sh"
    if [ "$name" = small ]; then
        mkdir -p "$d/l2$dp"
        for p in numpy sklearn; do cp -a "$dp/$p" "$d/l2$dp/"; done
        n=2
    else
        # python3, its standard library and the libraries it loads
        local py
        py=$(readlink -f /usr/bin/python3)
        mkdir -p "$d/l2/usr/bin" "$d/l2/usr/lib"
        cp -a "$py" "$d/l2/usr/bin/"; ln -s "$(basename "$py")" "$d/l2/usr/bin/python3"
        cp -a "/usr/lib/$(basename "$py")" "$d/l2/usr/lib/"
        ln -s usr/lib "$d/l2/lib"
        mkdir -p "$d/l3$dp"
        for p in numpy scipy sklearn joblib threadpoolctl.py; do cp -a "$dp/$p" "$d/l3$dp/"; done
        libs "$d/l2" "$py" $(find "$d/l2/usr/lib" "$d/l3" -name '*.so*' -type f)
        n=3
    fi
    umoci init --layout "$TMP/$name/oci"
    umoci new --image "$TMP/$name/oci:img"
    for i in $(seq 1 $n); do
        layer "$d/l$i" "$d/l$i.tar"
        umoci raw add-layer --image "$TMP/$name/oci:img" "$d/l$i.tar"
    done
    local before
    before=$(du -sb "$TMP/reg" 2>/dev/null | cut -f1 || echo 0)
    skopeo copy --quiet --dest-tls-verify=false "oci:$TMP/$name/oci:img" "docker://$REG/bench/$name:1"
    local after
    after=$(du -sb "$TMP/reg" | cut -f1)
    echo "image $name: $REG/bench/$name:1, $n layers, $(((after - ${before:-0}) / 1000000)) MB in the registry (compressed), $(du -smc "$d"/l? | tail -1 | cut -f1) MB unpacked"
    rm -rf "$d"
}
for img in $IMAGES; do build_image "$img"; done

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# the whole system for part 3: one scheduler and one runc worker, a DAG
# of 60 /bin/true tasks per image
mkdir -p "$TMP/sys/dags"
for img in $IMAGES; do
    {
        echo "dag: sixty_$img"
        echo "max_active_tasks: 1000"
        echo "defaults: {image: \"$REG/bench/$img:1\", retries: 0, network: false, resources: {cpus: 1, memory: 256Mi}}"
        echo "tasks:"
        for i in $(seq 0 59); do echo "  t$i: {command: [/bin/true]}"; done
    } >"$TMP/sys/dags/sixty_$img.yaml"
done
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
for img in $IMAGES; do
    for _ in $(seq 100); do "$BUILD/cli/cairn" dags list --json 2>/dev/null | grep -q "\"sixty_$img\"" && break; sleep 0.1; done
done
# run_ms DAG: one run of the DAG, its created_at to ended_at in ms (fails unless it succeeded)
run_ms() {
    local rid
    # (to a file: a pipe to head would end --wait at its second line)
    "$BUILD/cli/cairn" trigger "$1" --wait >"$TMP/sys/trigger.out" 2>&1 || true
    rid=$(head -n 1 "$TMP/sys/trigger.out")
    "$BUILD/cli/cairn" runs show "$rid" --dag "$1" --json | python3 -c '
import datetime, json, sys
r = json.load(sys.stdin)
if r["state"] != "success":
    bad = [t for t in r["tasks"] if t["state"] != "success"]
    sys.exit("the run ended %s: %d tasks did not succeed, e.g. %s: %s" % (
        r["state"], len(bad), bad[0]["task"], bad[0].get("error")))
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
print("%.1f" % (t(r["ended_at"]) - t(r["created_at"])))'
}

# bench_image NAME: the three parts on that image
bench_image() {
    local img=$1 ref=$REG/bench/$1:1 w=$TMP/$1 C S B
    echo "=== image $img"
    part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
    if part pull; then
        echo "== first pull + unpack ($PULLS each, alternating, from an empty folder)"
        : >"$w/c.ms"; : >"$w/s.ms"
        for i in $(seq 1 "$PULLS"); do
            sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
            "$BUILD/image_driver" pull "$w/c$i" "$ref" "$REG" >>"$w/c.ms"
            rm -rf "$w/c$i"
            sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
            t0=$(now)
            skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$w/s$i:img"
            umoci unpack --image "$w/s$i:img" "$w/u$i" >/dev/null
            echo "scale=1; ($(now) - $t0) / 1000000" | bc >>"$w/s.ms"
            rm -rf "$w/s$i" "$w/u$i"
        done
        C=$(median <"$w/c.ms"); S=$(median <"$w/s.ms")
        echo "cairn          median $C ms  (all: $(tr '\n' ' ' <"$w/c.ms"))"
        echo "skopeo+umoci   median $S ms  (all: $(tr '\n' ' ' <"$w/s.ms"))"
        echo "speed  (skopeo+umoci)/cairn (medians) $(echo "scale=3; $S / $C" | bc)"
    fi

    if part warm; then
        echo "== warm task start from the cached image ($RUNS each, interleaved)"
        mkdir -p "$w/warm"
        "$BUILD/image_driver" warm "$w/warm" "$ref" "$REG" "$RUNS"
    fi

    part tasks || return 0
    echo "== 60 container tasks at 2 slots: scheduler + runc worker against bare runc two at a time ($ROUNDS rounds, interleaved)"
    run_ms "sixty_$img" >/dev/null # the first run pulls the image; the timed ones find it cached
    mkdir -p "$w/bare"
    "$BUILD/image_driver" bundles "$w/bare" "$ref" "$REG" 2 >/dev/null
    if [ "$img" = big ]; then
        # the image is what it claims: its python3 imports sklearn
        sed 's|"args":\["/bin/true"\]|"args":["/usr/bin/python3","-c","import sklearn, scipy; print(sklearn.__version__)"]|' \
            "$w/bare/lane0.bundle/config.json" >"$w/check.json"
        mkdir -p "$w/check.bundle"; mv "$w/check.json" "$w/check.bundle/config.json"
        echo "python3 in the image imports sklearn $(runc --root "$w/bare/root" run --bundle "$w/check.bundle" img-check </dev/null)"
    fi
    lane() {
        for _ in $(seq 1 30); do
            runc --root "$w/bare/root" run --bundle "$w/bare/lane$1.bundle" "img-lane$1" \
                </dev/null >/dev/null
        done
    }
    : >"$w/sb.ms"; : >"$w/sc.ms"
    for i in $(seq 1 "$ROUNDS"); do
        t0=$(now)
        lane 0 & l0=$!
        lane 1 & l1=$!
        wait "$l0" "$l1"
        echo "scale=1; ($(now) - $t0) / 1000000" | bc >>"$w/sb.ms"
        run_ms "sixty_$img" >>"$w/sc.ms"
    done
    B=$(median <"$w/sb.ms"); C=$(median <"$w/sc.ms")
    echo "bare runc x2    median $B ms  (all: $(tr '\n' ' ' <"$w/sb.ms"))"
    echo "cairn 2 slots   median $C ms  (all: $(tr '\n' ' ' <"$w/sc.ms"))"
    echo "speed  bare/cairn (medians) $(echo "scale=3; $B / $C" | bc)"
}
for img in $IMAGES; do bench_image "$img"; done
