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
#
#   sudo bench/images.sh    # PULLS=3 RUNS=20 BUILD=build-bench BENCH_DIR=/tmp by default
#
# Needs root, runc, docker-registry, umoci, skopeo, busybox-static, jq, cmake, cc.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
PULLS=${PULLS:-3}
RUNS=${RUNS:-20}
BENCH_DIR=${BENCH_DIR:-/tmp}

cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target cairn_workerlib cairn_common >/dev/null
cc -O2 -std=c17 -D_GNU_SOURCE -I"$SRC/common" -I"$SRC/worker" "$SRC/bench/image_driver.c" \
    -o "$BUILD/image_driver" "$BUILD/worker/libcairn_workerlib.a" \
    "$BUILD/common/libcairn_common.a" \
    $(pkg-config --libs libuv jansson libcurl libarchive libcrypto) -lm

TMP=$(mktemp -d "$BENCH_DIR/cairn-bench-img-XXXXXX")
REG_PID=
cleanup() {
    [ -z "$REG_PID" ] || kill "$REG_PID" 2>/dev/null || true
    for id in img-bare img-cairn; do runc --root "$TMP/warm/root" delete -f "$id" >/dev/null 2>&1 || true; done
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
