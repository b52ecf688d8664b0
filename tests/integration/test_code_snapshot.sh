#!/usr/bin/env bash
# The `code:` folder is snapshotted into the artifact store when a run is
# created: every task of the run sees that snapshot at /pipeline, also
# after the folder is edited mid-run, also on a worker that does not see
# the store (it builds the folder from blobs it gets through the
# scheduler's API); the run's code_digest is in `runs show --json` and in
# `cairn lineage`; a new run after the edit gets a new digest and the new
# code; files that did not change are stored once.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/code/data" "$T/flag"
printf 'v1\n' >"$T/code/data/v.txt"
printf '#!/bin/sh\necho step-v1\n' >"$T/code/step.sh"
chmod +x "$T/code/step.sh"
printf 'same\n' >"$T/code/same.txt"

put_dag snap <<EOF2
dag: snap
code: $T/code
defaults: {retries: 0, image: host, timeout: 60s}
tasks:
  first:
    labels: {side: a}
    mounts: [{host: $T/flag, path: /flag}]
    command: [sh, -c, "cat /pipeline/data/v.txt > /outputs/first.txt; while [ ! -e /flag/go ]; do sleep 0.1; done"]
    outputs: [first.txt]
  second:
    labels: {side: b}
    needs: [first]
    inputs: {f: first/first.txt}
    command: [sh, -c, "cat /pipeline/data/v.txt; /pipeline/step.sh; cat /inputs/f; if touch /pipeline/x 2>/dev/null; then echo WRITABLE; fi"]
EOF2

start_scheduler s
start_worker wa --labels side=a --allow-mount "$T/flag"
start_worker wb --labels side=b --artifacts-direct no

r=$("$CAIRN" trigger snap)
first_running() { [ "$(ti state "$r" snap first)" = running ]; }
check "first runs" wait_until 60 first_running
digest=$(rj "$r" snap .code_digest)
check "the run has a code_digest" grep -Eqx '[0-9a-f]{64}' <<<"$digest"
check "...which names a manifest in the store" \
    test -f "$T/s/artifacts/blobs/sha256/${digest:0:2}/${digest:2}"
# the folder is edited while the run is under way
printf 'v2\n' >"$T/code/data/v.txt"
printf '#!/bin/sh\necho step-v2\n' >"$T/code/step.sh"
touch "$T/flag/go"
check "the run succeeds" test "$(wait_run "$r" snap 60)" = success
out=$("$CAIRN" logs "$r" second --dag snap)
echo "$out" | sed 's/^/# /'
check "second (on wb, through the API) saw the code of the run's start" \
    test "$(sed -n 1p <<<"$out")" = v1
check "...and ran its executable as it was" test "$(sed -n 2p <<<"$out")" = step-v1
check "first saw it too" test "$(sed -n 3p <<<"$out")" = v1
check "/pipeline is read-only" bash -c '! grep -q WRITABLE <<<"$0"' "$out"
check "wb built the snapshot from its blob cache" test -d "$T/wb/code/$digest"
check "the run's digest is unchanged" test "$(rj "$r" snap .code_digest)" = "$digest"
lin=$("$CAIRN" lineage "$r" second/f --dag snap --json 2>/dev/null || "$CAIRN" lineage "$r" first/first.txt --dag snap --json)
check "lineage records the code digest" grep -q "\"code_digest\": *\"$digest\"" <<<"$lin"
check "runs show prints it" bash -c '"$0" runs show "$1" --dag snap | grep -q "$2"' "$CAIRN" "$r" "$digest"

nblobs=$(find "$T/s/artifacts/blobs" -type f | wc -l)
rm -f "$T/flag/go"
r2=$("$CAIRN" trigger snap)
check "a new run waits in first" wait_until 60 bash -c '[ "$("$0" runs show "$1" --dag snap --json | jq -r ".tasks[] | select(.task==\"first\") | .state")" = running ]' "$CAIRN" "$r2"
touch "$T/flag/go"
check "the new run succeeds" test "$(wait_run "$r2" snap 60)" = success
d2=$(rj "$r2" snap .code_digest)
check "...with a new code digest" test -n "$d2" -a "$d2" != "$digest"
check "...and the new code" test "$("$CAIRN" logs "$r2" second --dag snap | sed -n 2p)" = step-v2
# the new run stored v.txt and step.sh (changed) and its manifest; same.txt
# is the blob it was, and first.txt has v.txt's bytes
now=$(find "$T/s/artifacts/blobs" -type f | wc -l)
check "unchanged files are stored once ($nblobs -> $now blobs)" test "$now" -eq $((nblobs + 3))

finish
