#!/usr/bin/env bash
# Publishing to the models folder runs off the scheduler's loop: while a big
# release is copied the task shows running with publishing: true and the
# API keeps answering; cancelling the run meanwhile leaves the task
# cancelled and `latest` where it was (the release folder is built, never
# pointed at); a later run publishes normally.
source "$(dirname "$0")/lib.sh"

put_dag big <<'YAML'
dag: big
defaults: {retries: 0}
params: {mb: "600"}
tasks:
  train:
    command: [sh, -c, "head -c {{ params.mb }}M /dev/urandom > $CAIRN_OUTPUTS/model.bin"]
    outputs: [model.bin]
    publish: [model.bin]
  after:
    needs: [train]
    command: [true]
YAML
start_scheduler s
start_worker w1 --isolation none
models="$T/s/models/big/train"
publishing() { "$CAIRN" runs show "$1" --dag big --json | jq -e '.tasks[0].publishing == true' >/dev/null; }

# a small release first: latest points at it
r0=$("$CAIRN" trigger big --param mb=1)
check "a small model is published" test "$(wait_run "$r0" big 60)" = success
first=$(readlink "$models/latest")
check "  latest points at its release" test "$first" = "releases/$r0-a1"

r1=$("$CAIRN" trigger big)
check "a 600 MB release is being copied: the task shows running, publishing" wait_until 60 publishing "$r1"
check "  the API answers meanwhile: runs list, and the copy is still going after it" \
    bash -c '"$0" runs list --dag big >/dev/null && "$0" runs show "$1" --dag big --json | jq -e ".tasks[0].publishing == true" >/dev/null' "$CAIRN" "$r1"
"$CAIRN" runs cancel "$r1" --dag big >/dev/null
check "  cancelling then: the run and the task are cancelled" test \
    "$(run_state "$r1" big)/$(ti state "$r1" big train)/$(ti state "$r1" big after)" = cancelled/cancelled/cancelled
check "  the finished copy is dropped (logged)" wait_until 60 logged s "CAIRN-PUBLISH-DROPPED big/$r1/train"
check "  latest still points at the small model's release" test "$(readlink "$models/latest")" = "$first"
check "  the cancelled run's release folder is whole but not latest" bash -c \
    '[ -f "$0/releases/$1-a1/model.bin" ] && [ -f "$0/releases/$1-a1/publish.json" ]' "$models" "$r1"
check "  the scheduler is still well" curl -sf "$CAIRN_SERVER/api/v1/health" -o /dev/null

r2=$("$CAIRN" trigger big --param mb=2)
check "a later run publishes normally" test "$(wait_run "$r2" big 60)" = success
check "  latest is its release" test "$(readlink "$models/latest")" = "releases/$r2-a1"
check "  with the bytes of its artifact" test "$(sha256sum <"$models/latest/model.bin" | cut -d' ' -f1)" = \
    "$("$CAIRN" artifacts list "$r2" --dag big --json | jq -r '.artifacts[0].sha256')"
finish
