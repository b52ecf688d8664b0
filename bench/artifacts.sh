#!/bin/bash
# artifacts.sh - throughput of storing an output in the artifact store.
#
# Baseline: `sha256sum FILE` (read and hash only). Measured: art_put_file of
# the same FILE into a fresh store each run (read, hash, copy into the
# store's tmp/, fsync, rename), through bench/art_driver.c. Also the cache-hit
# latency proxy: art_put_file of a 1 KiB file whose content is stored already
# (the dedupe path), timed in-process and as a whole process.
#
#   bench/artifacts.sh          # SIZE_MIB=200 RUNS=10 BUILD=build BENCH_DIR=/tmp by default
#
# The store and the file live in BENCH_DIR (the filesystem under test); the
# file is in the page cache for both sides after the warm-up run.
# Needs hyperfine, jq, cmake and a C compiler.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
RUNS=${RUNS:-10}
SIZE_MIB=${SIZE_MIB:-200}
BENCH_DIR=${BENCH_DIR:-/tmp}

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
if ! out=$(cmake --build "$BUILD" -j2 --target cairn_common 2>&1); then
    echo "$out" >&2
    exit 1
fi

TMP=$(mktemp -d "$BENCH_DIR/cairn-art-bench-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
DRIVER=$TMP/art_driver
(cd "$SRC" && cc -O2 -std=c17 -D_GNU_SOURCE -Icommon bench/art_driver.c \
    "$BUILD/common/libcairn_common.a" -lcrypto -lcurl -ljansson -llmdb -lyaml -luv -lnng -lpthread \
    -lm -o "$DRIVER")

FILE=$TMP/out.bin
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE"
echo "== $SIZE_MIB MiB of random bytes in $TMP ($(df -T "$TMP" | awk 'NR==2 {print $2}'))"

# Both must agree on the digest.
want=$(sha256sum "$FILE" | cut -d' ' -f1)
got=$("$DRIVER" put "$TMP/check-store" "$FILE" | cut -d' ' -f1)
[ "$want" = "$got" ] || { echo "digest mismatch: sha256sum $want, art_put_file $got" >&2; exit 1; }
rm -rf "$TMP/check-store"

hyperfine -N -w 1 -r "$RUNS" --export-json "$TMP/h.json" \
    --prepare "rm -rf $TMP/store" \
    -n sha256sum "sha256sum $FILE" \
    -n art_hash_file "$DRIVER hash $FILE" \
    -n art_put_file "$DRIVER put $TMP/store $FILE"
jq -r --argjson mib "$SIZE_MIB" '
    .results as $r
    | ($r[] | "\(.command)  mean \(.mean * 1000 | round) ms  \($mib / .mean | round) MiB/s"),
      "ratio art_put_file/sha256sum: time \($r[2].mean / $r[0].mean * 100 | round / 100),"
      + " throughput \($r[0].mean / $r[2].mean * 100 | round / 100)x"' "$TMP/h.json"

echo "== cache hit: 1 KiB file already stored (dedupe path)"
head -c 1024 /dev/urandom >"$TMP/small.bin"
"$DRIVER" hit "$TMP/hit-store" "$TMP/small.bin" 2000
hyperfine -N -w 5 -r 300 --export-json "$TMP/hit.json" \
    -n "art_put_file (dedupe)" "$DRIVER put $TMP/hit-store $TMP/small.bin" \
    -n "sha256sum" "sha256sum $TMP/small.bin" >/dev/null 2>&1
jq -r '.results[] | "whole process, \(.command): mean \(.mean * 1e6 | round) us"' "$TMP/hit.json"
echo "(a whole process is mostly exec and dynamic loading of libcrypto; the in-process"
echo " figure above is what a worker pays per output)"
