#!/usr/bin/env bash
# The models folder as a registry: `cairn models list|show|promote|rollback`
# and their API. Releases list with run, digest, metrics and stages; a
# release shows its lineage (params, inputs' digests, command); promote and
# rollback switch MODELS/DAG/TASK/STAGE atomically and record who and when
# in the state store (kept across a restart); 8 promotes at once leave a
# valid link and a history with all 8; a release whose run's artifacts were
# collected still lists and shows, saying so; with --api-tokens a viewer
# cannot promote (403) and an operator's promote is recorded with its name.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/pipeline" && echo 'echo trained' >"$T/pipeline/train.sh"
put_dag reg <<YAML
dag: reg
code: $T/pipeline
defaults: {retries: 0}
params: {v: "1"}
tasks:
  prep:
    command: [sh, -c, "echo data-{{ params.v }} > \$CAIRN_OUTPUTS/data.csv"]
    outputs: [data.csv]
  train:
    needs: [prep]
    inputs: {data: prep/data.csv}
    command: [sh, -c, "cp \$CAIRN_INPUTS/data \$CAIRN_OUTPUTS/model.bin && echo '{\\"accuracy\\": 0.{{ params.v }}}' > \$CAIRN_OUTPUTS/metrics.json"]
    outputs: [model.bin]
    metrics: metrics.json
    publish: [model.bin]
  notes:
    command: [sh, -c, "echo the same every time > \$CAIRN_OUTPUTS/notes.txt"]
    outputs: [notes.txt]
YAML
start_scheduler s
start_worker w1 --isolation none
M="$T/s/models/reg/train"

run_v() { # run_v V -> run id, after it succeeded
    local r
    r=$("$CAIRN" trigger reg --param "v=$1")
    [ "$(wait_run "$r" reg 60)" = success ] || { echo "run $r did not succeed" >&2; return 1; }
    echo "$r"
}
r1=$(run_v 1)
r2=$(run_v 2)
a1=$r1-a1
a2=$r2-a1

# --- list
"$CAIRN" models list reg/train --json >"$T/list.json"
check "models list: two releases, newest first" \
    test "$(jq -r '[.releases[].release] | join(" ")' "$T/list.json")" = "$a2 $a1"
check "  each with its run, digest (the file's sha256), metrics and created_at" \
    test "$(jq -r --arg a "$a1" '.releases[] | select(.release == $a) |
        "\(.run_id) \(.digest == .files[0].sha256) \(.metrics.train.accuracy) \(.created_at != null)"' \
        "$T/list.json")" = "$r1 true 0.1 true"
check "  the digest is that of the file in the folder" \
    test "$(jq -r --arg a "$a2" '.releases[] | select(.release == $a) | .digest' "$T/list.json")" = \
    "$(sha256sum <"$M/releases/$a2/model.bin" | cut -d' ' -f1)"
check "  latest is held by the newer one, no stage by anyone yet" \
    test "$(jq -r '.stages | "\(.latest) \(.production) \(.staging)"' "$T/list.json")" = "$a2 null null"
check "  the artifacts are stored" \
    test "$(jq -r '[.releases[].artifacts] | unique | join(",")' "$T/list.json")" = stored
"$CAIRN" models list >"$T/list.txt"
check "  the table lists both with their metrics" \
    bash -c 'grep -q "reg/train *$0 .*train.accuracy=0.1" "$2" && grep -q "$1 .*latest" "$2"' "$a1" "$a2" "$T/list.txt"

# --- show
"$CAIRN" models show "$a1" --json >"$T/show.json"
check "models show RELEASE: params, DAG version, command, the input's digest" \
    test "$(jq -r '"\(.params.v) \(.dag_version != null) \(.lineage.argv[0]) \(.lineage.inputs[0].sha256)"' "$T/show.json")" = \
    "1 true sh $("$CAIRN" artifacts list "$r1" --dag reg --json | jq -r '.artifacts[] | select(.task == "prep") | .sha256')"
check "  the code: folder and its digest" \
    test "$(jq -r '"\(.lineage.code.dir) \(.lineage.code.sha256 | test("^[0-9a-f]{64}$"))"' "$T/show.json")" = "$T/pipeline true"
check "  the release's output links its lineage" \
    curl -sf "$CAIRN_SERVER$(jq -r '.outputs[0].lineage' "$T/show.json")" -o /dev/null
check "  DAG/TASK/RELEASE works too" "$CAIRN" models show "reg/train/$a1" --json
"$CAIRN" models show nope >/dev/null 2>"$T/nope.err" && rc=0 || rc=$?
check "  an unknown release: exit 1, said so" \
    bash -c '[ "$0" = 1 ] && grep -q "no release .nope." "$1"' "$rc" "$T/nope.err"

# --- promote and rollback
"$CAIRN" models promote "$a1" --stage staging >"$T/p.out"
check "promote to staging: the link points at the release" \
    test "$(readlink "$M/staging")" = "releases/$a1"
check "  and says so" grep -q "staging is now $a1 (was none), by local" "$T/p.out"
"$CAIRN" models promote "$a1" --stage production >/dev/null
"$CAIRN" models promote "$a2" --stage production >/dev/null
check "promote to production twice: the link is the second" \
    test "$(readlink "$M/production")" = "releases/$a2"
check "  a reader sees the release's files through it" \
    cmp "$M/production/model.bin" "$M/releases/$a2/model.bin"
"$CAIRN" models promote "$a1" --stage prod >/dev/null 2>&1 && rc=0 || rc=$?
check "  an unknown stage is a usage error" test "$rc" = 2
check "  an unknown stage through the API: 400" test "$(curl -s -o /dev/null -w '%{http_code}' \
    -X POST -H 'Content-Type: application/json' -d '{"stage":"latest"}' \
    "$CAIRN_SERVER/api/v1/models/reg/train/releases/$a1/promote")" = 400
"$CAIRN" models rollback reg/train --stage production >"$T/rb.out"
check "rollback: production is back on the release before" \
    test "$(readlink "$M/production")" = "releases/$a1"
check "  and says which it was" grep -q "production is now $a1 (was $a2)" "$T/rb.out"
"$CAIRN" models rollback reg/train --stage production >/dev/null 2>"$T/rb2.err" && rc=0 || rc=$?
check "  a second rollback: nothing before it, exit 1, link unchanged" \
    bash -c '[ "$0" = 1 ] && grep -q "nothing to roll back to" "$1" && [ "$(readlink "$2")" = "releases/$3" ]' \
    "$rc" "$T/rb2.err" "$M/production" "$a1"
check "  latest was left alone" test "$(readlink "$M/latest")" = "releases/$a2"
"$CAIRN" models show "$a1" >"$T/show.txt"
check "models show: stages held and the stage history" \
    bash -c 'grep -q "^stages *production,staging" "$0" && grep -c "by local" "$0" | grep -qx 4' "$T/show.txt"

"$CAIRN" lineage "$r2" train/model.bin --dag reg --json >"$T/lin.json"
check "lineage of a published file names its release, stages and stage history" \
    test "$(jq -r '.releases[0] | "\(.release) \(.stages | join(",")) \([.history[].action] | join(","))"' "$T/lin.json")" = \
    "$a2 latest promote,rollback"
check "  and says so in text" bash -c '"$0" lineage "$1" train/model.bin --dag reg | grep -q "published as reg/train/$2"' \
    "$CAIRN" "$r2" "$a2"

# --- runs compare
"$CAIRN" runs compare "$r1" "$r2" --dag reg --json >"$T/cmp.json"
check "runs compare: the param that differs, and only it" \
    test "$(jq -r '[.params[] | select(.differs) | "\(.name)=\(.a)/\(.b)"] | join(",")' "$T/cmp.json")" = "v=1/2"
check "  the same DAG version on both sides" \
    test "$(jq -r '"\(.dag_version_differs) \(.a.dag_version == .b.dag_version) \(.a.run_id) \(.b.run_id)"' "$T/cmp.json")" = \
    "false true $r1 $r2"
check "  the metric that changed, with B - A" \
    test "$(jq -r '.tasks[] | select(.task == "train") | .metrics[] | select(.name == "accuracy") |
        "\(.a) \(.b) \(.differs) \((.delta * 1000 | round))"' "$T/cmp.json")" = "0.1 0.2 true 100"
check "  per task state and durations" \
    test "$(jq -r '[.tasks[] | "\(.task):\(.a.state)/\(.b.state):\(.a.duration_ms >= 0 and .b.duration_ms >= 0 and .duration_delta_ms == .b.duration_ms - .a.duration_ms)"] | join(" ")' "$T/cmp.json")" = \
    "prep:success/success:true train:success/success:true notes:success/success:true"
check "  the outputs whose digests differ (not the one that is the same)" \
    test "$(jq -r '.outputs_differ | join(",")' "$T/cmp.json")/$(jq -r '.tasks[] | select(.task == "notes") | .outputs[0].differs' "$T/cmp.json")" = \
    "prep/data.csv,train/model.bin,train/metrics.json/false"
"$CAIRN" runs compare "$r1" "$r2" >"$T/cmp.txt"
check "  the text form: params, metrics with the change, outputs that differ" \
    bash -c 'grep -Eq "^v +1 +2 +differs" "$0" && grep -Eq "^train.accuracy +0.1 +0.2 +\+0.1" "$0" && grep -q "^  train/model.bin " "$0" && ! grep -q "notes/notes.txt" "$0"' "$T/cmp.txt"
"$CAIRN" runs compare "$r1" nope --dag reg >/dev/null 2>"$T/cmp.err" && rc=0 || rc=$?
check "  an unknown run: exit 1, said so" bash -c '[ "$0" = 1 ] && grep -q "nope" "$1"' "$rc" "$T/cmp.err"
check "  through the API without ?with: 400" test "$(curl -s -o /dev/null -w '%{http_code}' \
    "$CAIRN_SERVER/api/v1/runs/$(urlenc "$r1")/compare?dag=reg")" = 400

# --- 8 promotes at once
runs=()
for v in 3 4 5 6 7 8; do
    runs+=("$("$CAIRN" trigger reg --param "v=$v")")
done
for r in "${runs[@]}"; do
    [ "$(wait_run "$r" reg 120)" = success ] || bad "run $r succeeded"
done
rels=("$a1" "$a2")
for r in "${runs[@]}"; do rels+=("$r-a1"); done
before=$(curl -sf "$CAIRN_SERVER/api/v1/models/reg/train" | jq '.history | length')
pids=()
for rel in "${rels[@]}"; do
    "$CAIRN" models promote "$rel" --stage production --json >"$T/par-$rel.json" &
    pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
check "8 promotes at once all succeed" test "$fails" = 0
curl -sf "$CAIRN_SERVER/api/v1/models/reg/train" >"$T/model.json"
check "  the history has all 8, in sequence" \
    test "$(jq --argjson b "$before" '[.history[$b:][] | select(.action == "promote" and .stage == "production")] | length' "$T/model.json")/$(jq '[.history[].seq] | . == ([range(1; length + 1)])' "$T/model.json")" = "8/true"
check "  each names the release the one before it left" \
    test "$(jq --argjson b "$before" '.history[$b - 1:] | [range(1; length) as $i | .[$i].previous == .[$i - 1].release] | all' "$T/model.json")" = true
last=$(jq -r '.history[-1].release' "$T/model.json")
check "  the link is valid and points at the last one recorded" \
    bash -c '[ "$(readlink "$0/production")" = "releases/$1" ] && [ -f "$0/production/model.bin" ]' "$M" "$last"
check "  no temporary link is left" test -z "$(find "$M" -maxdepth 1 -name '.*' ! -name . -print)"

# --- a restart keeps the history
kill_wait "$SCHED_PID"
forget_pid "$SCHED_PID"
start_scheduler s
check "after a restart the history is read back from the store" \
    test "$(curl -sf "$CAIRN_SERVER/api/v1/models/reg/train" | jq '.history | length')" = \
    "$(jq '.history | length' "$T/model.json")"
"$CAIRN" models rollback reg/train --stage production >/dev/null
check "  and a rollback goes back one promote" \
    test "$(readlink "$M/production")" = \
    "releases/$(jq -r '.history[-2].release' "$T/model.json")"

# --- a release whose run's artifacts were collected
"$CAIRN" artifacts gc --keep-last 1 --min-age 0s >/dev/null
"$CAIRN" models list reg/train --json >"$T/list2.json"
check "after artifacts gc the old releases still list, with artifacts collected" \
    test "$(jq -r --arg a "$a1" '.releases[] | select(.release == $a) | .artifacts' "$T/list2.json")/$(jq '.releases | length' "$T/list2.json")" = collected/8
check "  those of the run created last are still stored" \
    test "$(jq -r --arg a "${runs[5]}-a1" '.releases[] | select(.release == $a) | .artifacts' "$T/list2.json")" = stored
"$CAIRN" models show "$a1" >"$T/gone.txt"
check "  models show says the artifacts are gone, and still shows its lineage" \
    bash -c 'grep -q "^artifacts *gone" "$0" && grep -q "^params *v=1" "$0" && grep -q "artifact collected" "$0"' "$T/gone.txt"
check "  its files in the models folder are intact" test -f "$M/releases/$a1/model.bin"

# --- roles: a viewer cannot promote, an operator's promote is recorded with its name
kill_wait "$SCHED_PID"
forget_pid "$SCHED_PID"
TOK=$T/tokens
viewer=$("$CAIRN" tokens create v1 --role viewer --file "$TOK" 2>/dev/null)
operator=$("$CAIRN" tokens create o1 --role operator --file "$TOK" 2>/dev/null)
start_scheduler s --api-tokens "$TOK"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "with tokens: a viewer's promote is refused (403)" test "$(code -X POST \
    -H "Authorization: Bearer $viewer" -H 'Content-Type: application/json' -d '{"stage":"staging"}' \
    "$CAIRN_SERVER/api/v1/models/reg/train/releases/$a2/promote")" = 403
check "  so is its rollback" test "$(code -X POST \
    -H "Authorization: Bearer $viewer" -H 'Content-Type: application/json' -d '{"stage":"staging"}' \
    "$CAIRN_SERVER/api/v1/models/reg/train/rollback")" = 403
check "  and the link did not move" test "$(readlink "$M/staging")" = "releases/$a1"
check "  a viewer can list" test "$(code -H "Authorization: Bearer $viewer" "$CAIRN_SERVER/api/v1/models")" = 200
CAIRN_TOKEN=$viewer "$CAIRN" models promote "$a2" --stage staging >/dev/null 2>&1 && rc=0 || rc=$?
check "  the CLI with the viewer's token: exit 1" test "$rc" = 1
CAIRN_TOKEN=$operator "$CAIRN" models promote "$a2" --stage staging >"$T/op.out"
check "  an operator's promote is recorded with its token's name" \
    bash -c 'grep -q "by o1" "$0" && [ "$(readlink "$1/staging")" = "releases/$2" ] &&
        [ "$(CAIRN_TOKEN=$3 "$4" models show "$2" --json | jq -r ".history[-1].by")" = o1 ]' \
    "$T/op.out" "$M" "$a2" "$viewer" "$CAIRN"
finish
