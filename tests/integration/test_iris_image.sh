#!/usr/bin/env bash
# `make demo-image` end to end, so that examples/iris-image cannot rot:
# scripts/demo-image.sh builds the iris image from the host's packages,
# pushes it to a docker-registry on loopback, and runs the pipeline twice
# from it. Then a scheduler is started again on the demo's state and the
# test checks what happened: every task ran the pinned digest of the pushed
# image, the model was published, the second run reused train and evaluate
# from the step cache and pulled nothing.
source "$(dirname "$0")/lib.sh"

for c in umoci skopeo docker-registry runc jq; do
    if ! command -v "$c" >/dev/null; then
        echo "not ok - $c is not installed (run scripts/install-deps.sh)"
        exit 1
    fi
done

D=$T/demo
set +e
DEMO_DIR=$D timeout 240 bash "$CAIRN_SRC/scripts/demo-image.sh" "$CAIRN_BIN" >"$T/demo.out" 2>&1
RC=$?
set -e
sed 's/^/# /' "$T/demo.out" | grep -v '^# [0-9:]* [a-z]* \(leased\|running\)' | tail -n 40
check "make demo-image's script succeeded" [ "$RC" = 0 ]
check "it stopped what it started (no registry, scheduler or worker left)" \
    [ -z "$(test_procs)" ]

PUSHED=$(sed -n 's/^pushed [^ ]* (\(sha256:[0-9a-f]*\))$/\1/p' "$T/demo.out")
check "the image was pushed" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$PUSHED"

# the demo's state, read by a scheduler of the test's own
mkdir -p "$T/dags"
cp "$D/dags/iris-image.yaml" "$T/dags/"
start_scheduler demo/scheduler
RUNS=$("$CAIRN" runs list --dag iris-image --json | jq -r '.runs | sort_by(.created_at) | .[].run_id')
R1=$(sed -n 1p <<<"$RUNS")
R2=$(sed -n 2p <<<"$RUNS")
check "two runs" [ "$(wc -l <<<"$RUNS")" = 2 ]
check "run 1 succeeded" [ "$(run_state "$R1" iris-image)" = success ]
check "run 2 succeeded" [ "$(run_state "$R2" iris-image)" = success ]
check "run 1 pinned the tag to the pushed digest" \
    [ "$(rj "$R1" iris-image '.images | to_entries[0].value')" = "$PUSHED" ]
for t in ingest validate train evaluate deploy; do
    check "run 1's $t ran the pinned image" [ "$(ti image_digest "$R1" iris-image "$t")" = "$PUSHED" ]
done
check "the first task's log shows the pull (3 layers)" \
    grep -q "cairn: image: pulling $PUSHED (3 layers" <<<"$("$CAIRN" logs "$R1" ingest --dag iris-image)"
check "run 1's evaluate measured the model" \
    [ "$(rj "$R1" iris-image '.tasks[] | select(.task=="evaluate") | .metrics.accuracy > 0.9')" = true ]
check "deploy published the model" [ -s "$D/scheduler/models/iris-image/deploy/latest/model.pkl" ]
check "run 2: the same digest" [ "$(rj "$R2" iris-image '.images | to_entries[0].value')" = "$PUSHED" ]
check "run 2's train came from the step cache" [ "$(ti cached "$R2" iris-image train)" = true ]
check "run 2's evaluate came from the step cache" [ "$(ti cached "$R2" iris-image evaluate)" = true ]
no_pull() { ! grep -q "cairn: image: pulling" <<<"$("$CAIRN" logs "$1" ingest --dag iris-image)"; }
check "run 2 pulled nothing (the image was cached on the worker)" no_pull "$R2"

finish
