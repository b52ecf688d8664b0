#!/usr/bin/env bash
# The artifact store on an S3-compatible server: s3rver (npm, tests/s3/),
# started here on 127.0.0.1 with its own folder. A pipeline's outputs go to
# the bucket as content-addressed objects and a downstream task reads them;
# a 1 GiB output goes up as a multipart upload while the worker's peak RSS
# stays far below it; an object corrupted in the server's folder is refused
# by its digest; the credentials (a 0600 file for the scheduler, the
# environment for the worker) are never in the state store, the logs, or
# a task's environment; a `map: from:` list and the step cache work on the
# store; a worker without credentials fails its task saying so; gc lists
# and deletes what nothing references.
# BIG_MIB (default 1024) sets the size of the large output.
source "$(dirname "$0")/lib.sh"

S3RVER=$CAIRN_SRC/tests/s3/node_modules/.bin/s3rver
if [ ! -x "$S3RVER" ]; then
    echo "tests/s3/node_modules is missing: run scripts/install-deps.sh" >&2
    exit 1
fi
BIG_MIB=${BIG_MIB:-1024}
# (credentials reach the daemons only as this test gives them)
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_REGION \
    AWS_DEFAULT_REGION
BUCKET=cairn
PREFIX=team/arts
SECRET="cairn-s3-secret-$RANDOM$RANDOM-value"
# s3rver knows one account (S3RVER) and checks the key id, not the
# signature: the secret is ours to choose, and distinctive enough to grep.
ACCESS=S3RVER

mkdir -p "$T/s3"
"$S3RVER" -d "$T/s3" -a 127.0.0.1 -p 0 --configure-bucket "$BUCKET" >"$T/s3rver.log" 2>&1 &
S3_PID=$!
PIDS+=("$S3_PID")
wait_until 60 grep -q "listening on 127.0.0.1:" "$T/s3rver.log" || {
    echo "s3rver did not start" >&2
    exit 1
}
S3_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/s3rver.log" | head -n 1)
ENDPOINT=http://127.0.0.1:$S3_PORT
OBJ=$T/s3/$BUCKET/$PREFIX/blobs/sha256
# obj SHA -> the file s3rver keeps the object's bytes in
obj() { echo "$OBJ/${1:0:2}/${1:2}._S3rver_object"; }

printf 'aws_access_key_id = %s\naws_secret_access_key = %s\n' "$ACCESS" "$SECRET" >"$T/creds"
chmod 644 "$T/creds"
mkdir -p "$T/dags" "$T/bad"
set +e
timeout 30 "$SCHED" --dags "$T/dags" --data "$T/bad" --http 127.0.0.1:0 --listen tcp://127.0.0.1:0 \
    --artifacts "s3://$BUCKET/$PREFIX" --artifacts-endpoint "$ENDPOINT" \
    --artifacts-credentials "$T/creds" >"$T/bad.out" 2>&1
brc=$?
set -e
check "a credentials file readable by others is refused at start, saying why" \
    bash -c '[ "$0" != 0 ] && [ "$0" != 124 ] && grep -q "mode 0644" "$1" && grep -q "chmod 600" "$1"' \
    "$brc" "$T/bad.out"
chmod 600 "$T/creds"

put_dag s3p <<'YAML'
dag: s3p
defaults: {retries: 0}
params: {big_mib: "1"}
tasks:
  make:
    command: [sh, -c, "seq 1 100000 > $CAIRN_OUTPUTS/nums.txt && head -c $(( {{ params.big_mib }} * 1048576 )) /dev/zero > $CAIRN_OUTPUTS/big.bin"]
    outputs: [nums.txt, big.bin]
  count:
    needs: [make]
    inputs: {n: make/nums.txt}
    command: [sh, -c, "wc -l < $CAIRN_INPUTS/n > $CAIRN_OUTPUTS/count.txt && env > $CAIRN_OUTPUTS/env.txt"]
    outputs: [count.txt, env.txt]
  bigsum:
    needs: [make]
    inputs: {b: make/big.bin}
    command: [sh, -c, "cmp -s -n $(( {{ params.big_mib }} * 1048576 )) $CAIRN_INPUTS/b /dev/zero && wc -c < $CAIRN_INPUTS/b > $CAIRN_OUTPUTS/sum.txt"]
    outputs: [sum.txt]
YAML

start_scheduler s --artifacts "s3://$BUCKET/$PREFIX" --artifacts-endpoint "$ENDPOINT" \
    --artifacts-credentials "$T/creds"
check "the scheduler names the S3 store (and no credentials) at start" \
    bash -c 'grep CAIRN-START "$0" | grep -q "artifacts s3://cairn/team/arts?endpoint=http://127.0.0.1:"' "$T/s.log"
AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET start_worker w1 --isolation none --slots 2

t0=$(date +%s)
r1=$("$CAIRN" trigger s3p --param "big_mib=$BIG_MIB")
check "the run with a $BIG_MIB MiB output succeeds" test "$(wait_run "$r1" s3p 240)" = success
echo "# the run with a $BIG_MIB MiB output (up, down, hashed at both ends) took $(($(date +%s) - t0)) s"
arts=$("$CAIRN" artifacts list "$r1" --dag s3p --json)
sha() { jq -r --arg n "$1" '.artifacts[] | select(.name == $n) | .sha256' <<<"$arts"; }
nums=$(sha nums.txt)
big=$(sha big.bin)
check "the pointers are s3:// URIs of the content-addressed keys" \
    jq -e --arg b "$big" '([.artifacts[].uri | startswith("s3://cairn/team/arts/blobs/sha256/")] | all)
        and (.artifacts[] | select(.name == "big.bin") | .uri) == "s3://cairn/team/arts/blobs/sha256/\($b[0:2])/\($b[2:])"' <<<"$arts"
check "every output is an object in the s3rver folder (5 blobs)" \
    test "$(find "$OBJ" -name "*._S3rver_object" | wc -l)" = 5
check "  nums.txt's object holds its bytes" cmp -s <(seq 1 100000) "$(obj "$nums")"
check "  the large one has all $BIG_MIB MiB" test "$(stat -c %s "$(obj "$big")")" = $((BIG_MIB * 1048576))
check "  and nothing went to the scheduler's folder" \
    test "$(find "$T/s/artifacts" -type f 2>/dev/null | wc -l)" = 0
check "the downstream task read nums.txt from S3" \
    bash -c '[ "$(cat "$0")" = 100000 ]' "$(obj "$(sha count.txt)")"
check "the downstream task read the large output whole (the worker checked its digest; the task its bytes)" \
    bash -c '[ "$(cat "$0")" = "$1" ]' "$(obj "$(sha sum.txt)")" $((BIG_MIB * 1048576))
parts=$(grep -c "Stored part [0-9]* of" "$T/s3rver.log" || true)
check "the large output went up as a multipart upload of 16 MiB parts ($parts)" \
    test "$parts" = $(((BIG_MIB + 15) / 16))
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID_w1/status")
echo "# worker peak RSS (VmHWM) after a $BIG_MIB MiB upload and download: $((hwm_kb / 1024)) MiB"
check "the worker's peak RSS stayed below 200 MB" test "$hwm_kb" -lt 195312

code=$(curl -s -o "$T/content.json" -w '%{http_code}' \
    "$CAIRN_SERVER/api/v1/runs/$(urlenc "$r1")/artifacts/make/nums.txt/content?dag=s3p")
check "the API cannot serve an S3 blob's content: 501, naming its s3:// URI" \
    bash -c '[ "$0" = 501 ] && jq -e --arg u "s3://cairn/team/arts/blobs/sha256/${1:0:2}/${1:2}" \
        ".error.code == \"not_implemented\" and (.error.message | contains(\$u))" "$2" >/dev/null' \
    "$code" "$nums" "$T/content.json"

# The object of nums.txt is corrupted in the server's folder (same size):
# the next run stores nums.txt again (found, same size: not sent again), and
# its downstream read is refused by the digest.
python3 - "$(obj "$nums")" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[10] ^= 0x01
open(p, "wb").write(bytes(b))
PY
r2=$("$CAIRN" trigger s3p)
check "a run reading the corrupted object fails" test "$(wait_run "$r2" s3p 60)" = failed
err=$(ti error "$r2" s3p count)
check "  the task says the artifact is corrupt, naming its digest" \
    bash -c 'grep -q "corrupt" <<<"$0" && grep -q "$1" <<<"$0"' "$err" "$nums"
check "  the rest of the run read its inputs" test "$(ti state "$r2" s3p bigsum)" = success

# What the scheduler itself reads from the store: a `map: from:` list
# (fetched, as the store has no local files), the step cache's check that a
# cached output is still stored (a HEAD), and publish (a download).
put_dag s3f <<'YAML'
dag: s3f
defaults: {retries: 0}
tasks:
  split:
    command: [sh, -c, "echo '[\"a\", \"b\", \"c\"]' > $CAIRN_OUTPUTS/l.json"]
    outputs: [l.json]
  each:
    needs: [split]
    map: {from: split/l.json}
    command: [sh, -c, "echo {{ item }} > $CAIRN_OUTPUTS/x.txt"]
    outputs: [x.txt]
  step:
    cache: true
    command: [sh, -c, "head -c 16 /dev/urandom | od -An -tx1 > $CAIRN_OUTPUTS/r.txt"]
    outputs: [r.txt]
    publish: [r.txt]
YAML
wait_until 30 bash -c '"$0" dags --json | grep -q s3f' "$CAIRN"
f1=$("$CAIRN" trigger s3f)
check "a run mapping over a list in S3 succeeds" test "$(wait_run "$f1" s3f 60)" = success
check "  with one instance per item of the list, all success" \
    test "$(rj "$f1" s3f '.tasks[] | select(.task == "each") | "\(.map.n) \(.map.counts.success)"')" = "3 3"
rsha=$(rj "$f1" s3f '.tasks[] | select(.task == "step") | .outputs[0].sha256')
check "publish copied the output from S3 into the models folder" \
    cmp -s "$(obj "$rsha")" "$T/s/models/s3f/step/latest/r.txt"
f2=$("$CAIRN" trigger s3f)
check "the next run succeeds" test "$(wait_run "$f2" s3f 60)" = success
check "  and its cached step is a hit on the S3 blob" \
    test "$(rj "$f2" s3f '.tasks[] | select(.task == "step") | [.cached, .cached_from.run_id] | @tsv')" = \
    "$(printf 'true\t%s' "$f1")"

# A worker without credentials of its own fails the attempt saying so.
put_dag s3n <<'YAML'
dag: s3n
defaults: {retries: 0}
tasks:
  out:
    labels: {creds: none}
    command: [sh, -c, "echo hi > $CAIRN_OUTPUTS/hi.txt"]
    outputs: [hi.txt]
YAML
wait_until 30 bash -c '"$0" dags --json | grep -q s3n' "$CAIRN"
start_worker w2 --isolation none --labels creds=none
n1=$("$CAIRN" trigger s3n)
check "a worker without S3 credentials fails the task" test "$(wait_run "$n1" s3n 60)" = failed
check "  saying which credentials it lacks" \
    bash -c 'grep -q "no credentials for the S3 artifact store" <<<"$0"' "$(ti error "$n1" s3n out)"

check "the secret is nowhere in the scheduler's data folder (the state store)" \
    bash -c '! grep -raqF -- "$0" "$1"' "$SECRET" "$T/s"
check "nor in the worker's folder" bash -c '! grep -raqF -- "$0" "$1"' "$SECRET" "$T/w1"
check "nor in any log of the scheduler, the worker or the CLI" \
    bash -c '! grep -aqF -- "$0" "$1"/s.log "$1"/w1.log "$1"/w2.log "$1"/bad.out' "$SECRET" "$T"
check "nor in a task's environment (its env.txt output)" \
    bash -c '! grep -qF -- "$0" "$1" && ! grep -q AWS_ "$1"' "$SECRET" "$(obj "$(sha env.txt)")"
check "nor did the API serve it" \
    bash -c '! curl -sf "$CAIRN_SERVER/api/v1/workers" "$CAIRN_SERVER/api/v1/runs?dag=s3p" | grep -qF -- "$0"' "$SECRET"

rep=$("$CAIRN" artifacts gc --keep-last 1 --json)
check "gc with the default min-age removes run 1's pointers, no blob (they are young)" \
    jq -e '.runs == 2 and .blobs_removed == 0 and .blobs_kept == 12' <<<"$rep"
rep=$("$CAIRN" artifacts gc --keep-last 1 --min-age 0 --json)
check "gc --min-age 0 deletes the 4 objects only run 1 referenced (big.bin, count.txt, env.txt, sum.txt)" \
    jq -e --argjson big $((BIG_MIB * 1048576)) '.blobs_removed == 4 and .blob_bytes > $big and .blobs_kept == 8' <<<"$rep"
check "  the large object is gone from the server" test ! -e "$(obj "$big")"
check "  nums.txt's object (run 2 references it) stays" test -e "$(obj "$nums")"
check "  and so does the cached step's output" test -e "$(obj "$(rj "$f2" s3f '.tasks[] | select(.task == "step") | .outputs[0].sha256')")"
check "  what is left matches the store's count" \
    test "$(find "$OBJ" -name '*._S3rver_object' | wc -l)" = "$(jq '.blobs_kept' <<<"$rep")"

finish
