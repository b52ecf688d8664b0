#!/bin/bash
# s3.sh - the S3 artifact store's transfers against plain curl.
#
# One s3rver (tests/s3/) on 127.0.0.1 with its folder in BENCH_DIR. A blob of
# SIZE_MIB random bytes goes up and comes back, RUNS times each way:
#   cairn: art_put_file into s3://bench/runN (hash, HEAD, a multipart upload
#          of 16 MiB parts, hashed again on the way) and art_fetch (GET into
#          a temporary file while hashing, rename), through bench/art_driver.c
#   curl:  curl --aws-sigv4 -T FILE (one PUT) and curl -o (one GET) of the
#          same bytes to/from the same server
#   curl multipart: the same 16 MiB multipart upload as cairn's, made with
#          curl (initiate, one curl -T per part from pre-split files, complete)
#          - s3rver's multipart is much slower than its single PUT (it copies
#          the parts into the object on completion), so this is the baseline
#          for the same work
# Each run uses a fresh prefix (no dedupe). Prints the median seconds of
# each and the ratio curl/cairn (1.0: as fast as curl; higher is better).
#
#   bench/s3.sh            # SIZE_MIB=200 RUNS=3 BUILD=build BENCH_DIR=/tmp by default
#
# Needs node (tests/s3/node_modules: scripts/install-deps.sh), curl, cmake
# and a C compiler.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build}
RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-200}
BENCH_DIR=${BENCH_DIR:-/tmp}
S3RVER=$SRC/tests/s3/node_modules/.bin/s3rver
[ -x "$S3RVER" ] || { echo "tests/s3/node_modules is missing: run scripts/install-deps.sh" >&2; exit 1; }

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
if ! out=$(cmake --build "$BUILD" -j2 --target cairn_common 2>&1); then
    echo "$out" >&2
    exit 1
fi

TMP=$(mktemp -d "$BENCH_DIR/cairn-s3-bench-XXXXXX")
S3_PID=
cleanup() {
    if [ -n "$S3_PID" ]; then
        kill -TERM "$S3_PID" 2>/dev/null || true
        timeout 10 tail --pid="$S3_PID" -f /dev/null 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
DRIVER=$TMP/art_driver
(cd "$SRC" && cc -O2 -std=c17 -D_GNU_SOURCE -Icommon bench/art_driver.c \
    "$BUILD/common/libcairn_common.a" -lcrypto -lcurl -ljansson -llmdb -lyaml -luv -lnng \
    -lpthread -lm -o "$DRIVER")

mkdir -p "$TMP/s3"
"$S3RVER" -d "$TMP/s3" -a 127.0.0.1 -p 0 --silent --configure-bucket bench >"$TMP/s3rver.log" 2>&1 &
S3_PID=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$TMP/s3rver.log" 2>/dev/null && break
    sleep 0.1
done
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/s3rver.log" | head -n 1)
[ -n "$PORT" ] || { echo "s3rver did not start" >&2; cat "$TMP/s3rver.log" >&2; exit 1; }
EP=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
SIG=(--aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")

FILE=$TMP/blob.bin
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE"
HEX=$(sha256sum "$FILE" | cut -c1-64)
mkdir -p "$TMP/parts"
split -b 16777216 -d -a 4 "$FILE" "$TMP/parts/p."
# curl_multipart KEY: the 16 MiB multipart upload of $FILE with curl
curl_multipart() {
    local url=$EP/bench/$1 id n=0 f etag xml="<CompleteMultipartUpload>"
    id=$(curl -sf "${SIG[@]}" -X POST "$url?uploads=" | sed -n 's/.*<UploadId>\([^<]*\)<.*/\1/p')
    for f in "$TMP"/parts/p.*; do
        n=$((n + 1))
        etag=$(curl -sf "${SIG[@]}" -H "Expect:" -T "$f" -D - -o /dev/null \
            "$url?partNumber=$n&uploadId=$id" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
        xml="$xml<Part><PartNumber>$n</PartNumber><ETag>$etag</ETag></Part>"
    done
    curl -sf "${SIG[@]}" -X POST --data-binary "$xml</CompleteMultipartUpload>" \
        "$url?uploadId=$id" -o /dev/null
}
echo "== $SIZE_MIB MiB blob, s3rver on 127.0.0.1:$PORT, $RUNS runs each"

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cput=() cget=() uput=() uget=() umput=()
for i in $(seq 1 "$RUNS"); do
    store="s3://bench/cairn$i?endpoint=$EP"
    t0=$(now); "$DRIVER" put "$store" "$FILE" >/dev/null 2>&1; t1=$(now)
    cput+=("$(secs "$t0" "$t1")")
    rm -f "$TMP/c.out"
    t0=$(now); "$DRIVER" get "$store" "$HEX" "$TMP/c.out" 2>/dev/null; t1=$(now)
    cget+=("$(secs "$t0" "$t1")")
    cmp -s "$FILE" "$TMP/c.out" || { echo "cairn's download differs" >&2; exit 1; }

    t0=$(now); curl -sf "${SIG[@]}" -H "Expect:" -T "$FILE" "$EP/bench/curl$i/blob" -o /dev/null; t1=$(now)
    uput+=("$(secs "$t0" "$t1")")
    t0=$(now); curl_multipart "curlmp$i/blob"; t1=$(now)
    umput+=("$(secs "$t0" "$t1")")
    rm -f "$TMP/u.out"
    t0=$(now); curl -sf "${SIG[@]}" "$EP/bench/curl$i/blob" -o "$TMP/u.out"; t1=$(now)
    uget+=("$(secs "$t0" "$t1")")
    cmp -s "$FILE" "$TMP/u.out" || { echo "curl's download differs" >&2; exit 1; }
    cmp -s "$FILE" "$TMP/s3/bench/curlmp$i/blob._S3rver_object" ||
        { echo "curl's multipart upload differs" >&2; exit 1; }
    rm -rf "$TMP/s3/bench/cairn$i" "$TMP/s3/bench/curl$i" "$TMP/s3/bench/curlmp$i" # (space)
done

mcp=$(median "${cput[@]}") mcg=$(median "${cget[@]}")
mup=$(median "${uput[@]}") mug=$(median "${uget[@]}") mump=$(median "${umput[@]}")
mibs() { echo "scale=1; $SIZE_MIB / $1" | bc; }
printf 'upload:   cairn %6.2f s (%s MiB/s)   curl %6.2f s (%s MiB/s)   curl/cairn %.2f\n' \
    "$mcp" "$(mibs "$mcp")" "$mup" "$(mibs "$mup")" "$(echo "$mup / $mcp" | bc -l)"
printf 'upload:   cairn %6.2f s (%s MiB/s)   curl multipart %6.2f s (%s MiB/s)   curl/cairn %.2f\n' \
    "$mcp" "$(mibs "$mcp")" "$mump" "$(mibs "$mump")" "$(echo "$mump / $mcp" | bc -l)"
printf 'download: cairn %6.2f s (%s MiB/s)   curl %6.2f s (%s MiB/s)   curl/cairn %.2f\n' \
    "$mcg" "$(mibs "$mcg")" "$mug" "$(mibs "$mug")" "$(echo "$mug / $mcg" | bc -l)"
echo "runs (s): cairn put ${cput[*]} | curl put ${uput[*]} | curl multipart ${umput[*]}"
echo "          cairn get ${cget[*]} | curl get ${uget[*]}"
