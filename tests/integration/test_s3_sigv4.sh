#!/usr/bin/env bash
# The S3 store's signatures checked for real: s3rver (test_s3.sh) checks
# the key id, not the signature, so this test runs tests/s3/sigv4_s3.py, a
# small S3 server on loopback (Python's hashlib and hmac) that recomputes
# each request's AWS Signature V4 and refuses a mismatch with 403
# SignatureDoesNotMatch; it first checks its own signing against AWS's
# documented example. libcurl signs our requests (CURLOPT_AWS_SIGV4). Every
# request of a run whose output goes up in a multipart upload, of its
# downstream download and of a gc is verified; a worker holding the wrong
# secret is refused, and its task fails naming the refusal.
source "$(dirname "$0")/lib.sh"

unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_REGION \
    AWS_DEFAULT_REGION
BUCKET=cairn
PREFIX=arts
ACCESS=AKIDCAIRNTEST
SECRET="sigv4-secret-$RANDOM$RANDOM"
REGION=eu-test-1
printf '%s\n' "$SECRET" >"$T/server.secret"
/usr/bin/python3 "$CAIRN_SRC/tests/s3/sigv4_s3.py" --dir "$T/s3" --bucket "$BUCKET" \
    --access-key "$ACCESS" --secret-file "$T/server.secret" --region "$REGION" >"$T/s3.log" 2>&1 &
PIDS+=("$!")
check "the verifying server passes its self-test against AWS's example and listens" \
    wait_until 30 grep -q "listening on 127.0.0.1:" "$T/s3.log"
S3_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/s3.log" | head -n 1)
ENDPOINT=http://127.0.0.1:$S3_PORT
OBJ=$T/s3/objects/$PREFIX/blobs/sha256

printf 'aws_access_key_id = %s\naws_secret_access_key = %s\n' "$ACCESS" "$SECRET" >"$T/creds"
chmod 600 "$T/creds"

put_dag sig <<'YAML'
dag: sig
defaults: {retries: 0}
tasks:
  make:
    labels: {pool: good}
    command: [sh, -c, 'head -c 20000000 /dev/urandom > "$CAIRN_OUTPUTS/big.bin" && seq 1 1000 > "$CAIRN_OUTPUTS/n.txt" && sha256sum < "$CAIRN_OUTPUTS/big.bin" | cut -c1-64']
    outputs: [big.bin, n.txt]
  use:
    labels: {pool: good}
    needs: [make]
    inputs: {b: make/big.bin, n: make/n.txt}
    command: [sh, -c, 'sha256sum < "$CAIRN_INPUTS/b" | cut -c1-64; wc -l < "$CAIRN_INPUTS/n"']
YAML
put_dag forged <<'YAML'
dag: forged
defaults: {retries: 0}
tasks:
  make:
    labels: {pool: bad}
    command: [sh, -c, 'echo forged > "$CAIRN_OUTPUTS/f.txt"']
    outputs: [f.txt]
YAML

start_scheduler s --artifacts "s3://$BUCKET/$PREFIX?region=$REGION" --artifacts-endpoint "$ENDPOINT" \
    --artifacts-credentials "$T/creds"
AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET start_worker w1 --isolation none --labels pool=good
AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY="not-$SECRET" start_worker w2 --isolation none --labels pool=bad

r=$("$CAIRN" trigger sig)
check "a run through the verifying server succeeds" test "$(wait_run "$r" sig 120)" = success
made=$("$CAIRN" logs "$r" make --dag sig)
check "the downstream task read the 20 MB output byte for byte" \
    test "$("$CAIRN" logs "$r" use --dag sig | tr '\n' ' ')" = "$made 1000 "
check "...which is the object the server holds" \
    test "$(sha256sum <"$OBJ/${made:0:2}/${made:2}" | cut -c1-64)" = "$made"
check "it went up as a multipart upload (2 parts of 16 MiB at most), each part signed" \
    bash -c 'grep -q "COMPLETED .*'"${made:2}"' (2 parts)" "$0" && [ "$(grep -c "^PART " "$0")" = 2 ]' "$T/s3.log"
check "the signed requests include every kind the store makes" bash -c '
    for m in "HEAD" "PUT" "POST" "GET"; do grep -q "^SIGV4-OK $m /$1/" "$0" || exit 1; done' "$T/s3.log" "$BUCKET"
rep=$("$CAIRN" artifacts gc --dry-run --json)
check "gc lists the bucket with a signed ListObjectsV2" \
    bash -c 'jq -e ".blobs_kept >= 2" <<<"$1" >/dev/null && grep -Eq "^SIGV4-OK GET /$2/?\$" "$0"' "$T/s3.log" "$rep" "$BUCKET"
ok=$(grep -c "^SIGV4-OK " "$T/s3.log")
check "no request of the scheduler or w1 was refused ($ok verified)" \
    bash -c '! grep -q "^SIGV4-REFUSED" "$0"' "$T/s3.log"

r=$("$CAIRN" trigger forged)
check "w2, holding the wrong secret, fails its task" test "$(wait_run "$r" forged 60)" = failed
check "...because the server refused its signature" \
    grep -q "^SIGV4-REFUSED .* /$BUCKET/$PREFIX/blobs/sha256/.*: signature mismatch" "$T/s3.log"
check "...which the task's error names" \
    bash -c '"$0" runs show "$1" --dag forged --json | jq -e ".tasks[0].error | test(\"SignatureDoesNotMatch|403\")" >/dev/null' "$CAIRN" "$r"
forged=$(printf 'forged\n' | sha256sum | cut -c1-64)
check "...and nothing of it was stored" test ! -e "$OBJ/${forged:0:2}/${forged:2}"
finish
