#!/usr/bin/env bash
# Incremental run answers through the real scheduler, worker and CLI: a run
# in memory carries a cursor; ?changes_after=CURSOR answers only the task
# rows that changed since (a row that did not change is left out), a cursor
# of another scheduler process or a malformed one gets the whole run, and
# `cairn trigger --wait`, which follows runs this way, still prints every
# task's change once and ends with the whole task table.
source "$(dirname "$0")/lib.sh"

GATE_A=$T/gate-a GATE_B=$T/gate-b # a and b wait for these files
put_dag steps <<YAML
dag: steps
tasks:
  a: {command: [sh, -c, 'while [ ! -e $GATE_A ]; do sleep 0.05; done']}
  b: {needs: [a], command: [sh, -c, 'while [ ! -e $GATE_B ]; do sleep 0.05; done']}
  c: {needs: [b], command: ["true"]}
YAML

start_scheduler s
start_worker w --slots 2 --isolation none

run=$("$CAIRN" trigger steps)
get() { curl -sf "$CAIRN_SERVER/api/v1/runs/$(urlenc "$run")?dag=steps$1"; }
state_of() { "$CAIRN" runs show "$run" --dag steps --json | jq -r ".tasks[] | select(.task == \"$1\") | .state"; }
is_running() { [ "$(state_of "$1")" = running ]; }
check "a starts" wait_until 20 is_running a
first=$(get "")
c1=$(jq -r .cursor <<<"$first")
check "a run in memory carries a cursor ($c1)" grep -Eq '^[0-9]+-[0-9]+$' <<<"$c1"
check "  and its first answer has every task" [ "$(jq '.tasks | length' <<<"$first")" = 3 ]
touch "$GATE_A"
check "b starts" wait_until 20 is_running b
inc=$(get "&changes_after=$c1")
check "changes_after answers incrementally" [ "$(jq -r .incremental <<<"$inc")" = true ]
check "  with a and b (they changed)" \
    [ "$(jq -r '[.tasks[].task] | (index("a") != null) and (index("b") != null)' <<<"$inc")" = true ]
check "  without c (pending since before the cursor)" \
    [ "$(jq -r '[.tasks[].task] | index("c") == null' <<<"$inc")" = true ]
c2=$(jq -r .cursor <<<"$inc")
check "  and a newer cursor" [ "${c2#*-}" -gt "${c1#*-}" ]
# a row can be stamped once more just after b starts (seen once in CI, on
# a loaded machine; not yet explained): follow the cursor until the run is
# quiet, then a cursor must give no rows
for _ in $(seq 1 20); do
    same=$(get "&changes_after=$c2")
    [ "$(jq '.tasks | length' <<<"$same")" = 0 ] && break
    c2=$(jq -r .cursor <<<"$same")
    sleep 0.2
done
check "nothing changed since the last cursor: no rows" [ "$(jq '.tasks | length' <<<"$same")" = 0 ]
other=$(get "&changes_after=1-${c2#*-}")
check "a cursor of another process gets the whole run" \
    [ "$(jq '[(.tasks | length), (.incremental // false)] | tojson' -r <<<"$other")" = '[3,false]' ]
bad=$(get "&changes_after=nonsense")
check "a malformed cursor gets the whole run" [ "$(jq '.tasks | length' <<<"$bad")" = 3 ]
touch "$GATE_B"
check "the run ends in success" [ "$(wait_run "$run" steps 30)" = success ]

# the CLI follows a run with cursors and misses nothing
out=$("$CAIRN" trigger steps --wait)
for t in a b c; do
    check "trigger --wait printed $t's success once" \
        [ "$(grep -cE "^[0-9:]+ $t success" <<<"$out")" = 1 ]
done
check "  and ended with the task table of all three" \
    [ "$(grep -cE '^(a|b|c) +success' <<<"$out")" = 3 ]
check "  and the run's outcome" grep -q "^run manual__.* success" <<<"$out"
finish
