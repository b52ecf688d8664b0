#!/usr/bin/env bash
# Files declared in `outputs` are hashed into the content-addressed store and
# reach downstream `inputs` read-only with the same bytes; a declared output
# that is missing fails the attempt with a clear message.
source "$(dirname "$0")/lib.sh"

put_dag pass <<'YAML'
dag: pass
defaults: {retries: 0}
tasks:
  make:
    command: [sh, -c, "head -c 3000000 /dev/urandom > /outputs/data.bin && echo hi > /outputs/note.txt && sha256sum /outputs/data.bin"]
    outputs: [data.bin, note.txt]
  use:
    needs: [make]
    inputs: {blob: make/data.bin, note: make/note.txt}
    command: [sh, -c, "sha256sum /inputs/blob && cat /inputs/note && if echo x > /inputs/blob; then echo WRITABLE; fi; ls -l /inputs/"]
  later:
    needs: [use]
    inputs: {again: make/data.bin}
    command: [sh, -c, "sha256sum /inputs/again"]
YAML
put_dag missing <<'YAML'
dag: missing
defaults: {retries: 0}
tasks:
  forgetful:
    command: [sh, -c, "echo no outputs written"]
    outputs: [model.pkl]
  after:
    needs: [forgetful]
    inputs: {m: forgetful/model.pkl}
    command: [true]
YAML

start_scheduler s
start_worker w1

r=$("$CAIRN" trigger pass)
check "a DAG passing files between tasks succeeds" test "$(wait_run "$r" pass 60)" = success
made=$("$CAIRN" logs "$r" make --dag pass | awk '{print $1}')
used=$("$CAIRN" logs "$r" use --dag pass | grep ' /inputs/blob$' | awk '{print $1}')
later=$("$CAIRN" logs "$r" later --dag pass | awk '{print $1}')
check "the downstream task reads the same bytes (sha256 $made)" test -n "$made" -a "$made" = "$used"
check "and so does a task two hops away" test "$made" = "$later"
check "inputs are read-only in the container" bash -c '! "$0" logs "$1" use --dag pass | grep -q WRITABLE' "$CAIRN" "$r"
arts=$("$CAIRN" artifacts list "$r" --dag pass --json)
check "artifacts list names both outputs with their digest and size" /usr/bin/python3 -c '
import json, sys
a = {x["name"]: x for x in json.loads(sys.argv[1])["artifacts"]}
assert set(a) == {"data.bin", "note.txt"}, a
assert a["data.bin"]["sha256"] == sys.argv[2] and a["data.bin"]["size"] == 3000000, a
assert a["data.bin"]["task"] == "make" and a["data.bin"]["attempt"] == 1
assert a["data.bin"]["uri"].startswith("file:///")
' "$arts" "$made"
blob=$(jq -r '.artifacts[] | select(.name=="data.bin") | .uri' <<<"$arts" | sed 's|^file://||')
check "the blob in the store hashes to its name" test "$(sha256sum "$blob" | awk '{print $1}')" = "$made"
check "runs show carries the outputs of a task" bash -c '"$0" runs show "$1" --dag pass --json | jq -e ".tasks[0].outputs | length == 2"' "$CAIRN" "$r"

r=$("$CAIRN" trigger missing)
check "a missing declared output fails the run" test "$(wait_run "$r" missing 60)" = failed
err=$(ti error "$r" missing forgetful)
check "  with a message naming the output ($err)" test "$err" = "declared output 'model.pkl' was not written to /outputs"
check "  and the downstream task is upstream_failed" test "$(ti state "$r" missing after)" = upstream_failed
finish
