#!/bin/bash
# runc_overhead.sh - Cairn's cost on top of a bare `runc run` (target: within 10%).
#
# Both sides run the same bundle (/bin/true, image "host", memory/cpu/pids
# limits; written by runc_write_bundle). "bare" is `runc run` of that bundle;
# "cairn" is worker/runc.c doing the whole attempt: write the bundle, OOM
# watch, spawn runc with piped output, wait, clean up.
#
#   sudo bench/runc_overhead.sh    # RUNS=50 BUILD=build-bench BENCH_DIR=/tmp by default
#
# BENCH_DIR holds the runc root, bundles and rootfs skeleton for both sides;
# on a tmpfs (BENCH_DIR=/dev/shm) the bundle's file operations cost less.
#
# Needs root, runc, hyperfine, jq, cmake and a C compiler.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
RUNS=${RUNS:-50}
BENCH_DIR=${BENCH_DIR:-/tmp}

cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target cairn_workerlib cairn_common >/dev/null
cc -O2 -std=c17 -D_GNU_SOURCE -I"$SRC/common" -I"$SRC/worker" "$SRC/bench/runc_driver.c" \
    -o "$BUILD/runc_driver" "$BUILD/worker/libcairn_workerlib.a" \
    "$BUILD/common/libcairn_common.a" $(pkg-config --libs libuv jansson) -lm

TMP=$(mktemp -d "$BENCH_DIR/cairn-bench-XXXXXX")
cleanup() {
    for id in bare cairn loop-bare loop-cairn; do
        runc --root "$TMP/root" delete -f "$id" >/dev/null 2>&1 || true
    done
    rm -rf "$TMP"
    for h in /sys/fs/cgroup/*/; do rmdir "$h/cairn-bench" 2>/dev/null || true; done
}
trap cleanup EXIT

"$BUILD/runc_driver" write "$TMP" bare
echo "== hyperfine: one process per run ($RUNS runs)"
hyperfine -N -w 5 -r "$RUNS" --export-json "$TMP/h.json" \
    -n bare "runc --root $TMP/root run --bundle $TMP/bare.bundle bare" \
    -n cairn "$BUILD/runc_driver once $TMP cairn"
jq -r '.results as $r | "ratio  cairn/bare (means) \($r[1].mean / $r[0].mean * 1000 | round / 1000)  (bare \($r[0].mean * 1000 * 100 | round / 100) ms, cairn \($r[1].mean * 1000 * 100 | round / 100) ms)"' "$TMP/h.json"

echo "== in-process loop, interleaved ($RUNS runs each)"
"$BUILD/runc_driver" loop "$TMP" "$RUNS"
