#!/usr/bin/env bash
# --blob-cache-size: a worker that moves artifacts through the scheduler's
# API keeps DATA/blob-cache within its limit, the least recently used blobs
# going first, and never removes what a task needs: a task whose inputs
# together are over the limit still gets them all, byte for byte.
source "$(dirname "$0")/lib.sh"

# fill: a 6 MB output made of one byte repeated (CAIRN_PARAM_C), so the same
# param gives the same blob
put_dag fill <<'YAML'
dag: fill
params: {c: a}
defaults: {retries: 0}
tasks:
  make:
    command: [sh, -c, 'head -c 6000000 /dev/zero | tr "\0" "$CAIRN_PARAM_C" > /outputs/f.bin']
    outputs: [f.bin]
YAML
put_dag big <<'YAML'
dag: big
defaults: {retries: 0}
tasks:
  m1: {command: [sh, -c, 'head -c 6000000 /dev/zero | tr "\0" 1 > /outputs/f.bin'], outputs: [f.bin]}
  m2: {command: [sh, -c, 'head -c 6000000 /dev/zero | tr "\0" 2 > /outputs/f.bin'], outputs: [f.bin]}
  m3: {command: [sh, -c, 'head -c 6000000 /dev/zero | tr "\0" 3 > /outputs/f.bin'], outputs: [f.bin]}
  use:
    needs: [m1, m2, m3]
    inputs: {a: m1/f.bin, b: m2/f.bin, c: m3/f.bin}
    command: [sh, -c, 'sha256sum /inputs/a /inputs/b /inputs/c | cut -c1-64']
YAML

sha_of() { head -c 6000000 /dev/zero | tr '\0' "$1" | sha256sum | cut -c1-64; }
blob() { echo "$T/w1/blob-cache/blobs/sha256/${1:0:2}/${1:2}"; }
cache_bytes() { find "$T/w1/blob-cache/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
LIMIT=15728640 # 15Mi: two of the 6 MB blobs fit, three do not

start_scheduler s
out=$("$WORKER" --scheduler "$NNG_URL" --data "$T/bad" --blob-cache-size 0 2>&1 || true)
check "--blob-cache-size 0 is refused" grep -q -- "--blob-cache-size: must be more than 0 (or none)" <<<"$out"
out=$("$WORKER" --scheduler "$NNG_URL" --data "$T/bad" --blob-cache-size 5X 2>&1 || true)
check "...and so is a size that does not parse" grep -q -- "--blob-cache-size: .*5X" <<<"$out"
start_worker w1 --artifacts-direct no --blob-cache-size 15Mi --slots 1

fill() {
    local r
    r=$("$CAIRN" trigger fill --param "c=$1")
    test "$(wait_run "$r" fill 60)" = success
}
A=$(sha_of a) B=$(sha_of b) C=$(sha_of c)
check "a fills the cache" fill a
check "b too" fill b
check "...both are kept (12 MB of 15Mi)" test -f "$(blob "$A")" -a -f "$(blob "$B")"
check "nothing was removed yet" bash -c '! grep -q CAIRN-BLOB-CACHE "$0"' "$T/w1.log"
check "a again: it is used (sent again from the cache)" fill a
check "c: over the limit" fill c
check "...b, the least recently used, is gone" test ! -e "$(blob "$B")"
check "...a (used after b) and c are kept" test -f "$(blob "$A")" -a -f "$(blob "$C")"
check "...which is logged" logged w1 "CAIRN-BLOB-CACHE removed 1 least recently used blob \(6000000 bytes\)"
check "...and the cache is within its limit" test "$(cache_bytes)" -le "$LIMIT"

r=$("$CAIRN" trigger big)
check "a task whose inputs (18 MB) are over the limit succeeds" test "$(wait_run "$r" big 90)" = success
check "...with every input's bytes" \
    test "$("$CAIRN" logs "$r" use --dag big | tr '\n' ' ')" = "$(sha_of 1) $(sha_of 2) $(sha_of 3) "
check "...and the cache is within its limit again" test "$(cache_bytes)" -le "$LIMIT"
check "...holding the newest blobs" test -f "$(blob "$(sha_of 3)")"
check "the scheduler's store kept everything" \
    bash -c 'for s in "$@"; do test -f "'"$T"'/s/artifacts/blobs/sha256/${s:0:2}/${s:2}" || exit 1; done' _ \
    "$A" "$B" "$C" "$(sha_of 1)" "$(sha_of 2)" "$(sha_of 3)"

# none: no limit
kill_wait "$PID_w1"
start_worker w1 --artifacts-direct no --blob-cache-size none --slots 1
before=$(grep -c CAIRN-BLOB-CACHE "$T/w1.log")
check "with none, a comes back" fill a
check "...and b" fill b
check "...past the limit, nothing removed" \
    test "$(cache_bytes)" -gt "$LIMIT" -a "$(grep -c CAIRN-BLOB-CACHE "$T/w1.log")" = "$before"
finish
