#!/usr/bin/env bash
# Provenance, lineage, artifacts get and metrics on a three-task pipeline
# (ingest -> train -> evaluate) passing files: what each attempt was given is
# recorded (and survives a scheduler killed mid-attempt), `cairn lineage`
# walks from an artifact back to the tasks without inputs, `cairn artifacts
# get` returns the stored bytes with their digest checked, `cairn metrics`
# lines up each task's metrics across runs.
source "$(dirname "$0")/lib.sh"

put_dag ml <<'YAML'
dag: ml
defaults: {retries: 0}
params: {acc: "0.9", gate: "none"}
tasks:
  ingest:
    command: [sh, -c, "head -c 3000000 /dev/urandom > $CAIRN_OUTPUTS/raw.bin && echo id,label > $CAIRN_OUTPUTS/schema.txt"]
    env: {STAGE: "ingest-{{ ds }}"}
    outputs: [raw.bin, schema.txt]
  train:
    needs: [ingest]
    inputs: {data: ingest/raw.bin, schema: ingest/schema.txt}
    command: [sh, -c, "(cat $CAIRN_INPUTS/schema; sha256sum < $CAIRN_INPUTS/data) > $CAIRN_OUTPUTS/model.bin && echo '{\"loss\": 0.25}' > $CAIRN_OUTPUTS/train.json"]
    metrics: train.json
    outputs: [model.bin]
  evaluate:
    needs: [train]
    inputs: {model: train/model.bin}
    command: [sh, -c, "while [ {{ params.gate }} != none ] && [ ! -e {{ params.gate }} ]; do sleep 0.05; done; wc -c < $CAIRN_INPUTS/model > $CAIRN_OUTPUTS/report.txt && echo '{\"accuracy\": {{ params.acc }}}' > $CAIRN_OUTPUTS/metrics.json"]
    metrics: metrics.json
    outputs: [report.txt]
YAML

start_scheduler s
start_worker w1 --isolation none

# jqe FILTER [ARGS...] <<<JSON: the filter holds (jq -e, quietly)
jqe() { jq -e "$@" >/dev/null; }

# sha RUN NAME -> the digest `artifacts list` gives for output NAME
sha() {
    "$CAIRN" artifacts list "$1" --dag ml --json | jq -r --arg n "$2" '.artifacts[] | select(.name == $n) | .sha256'
}

r1=$("$CAIRN" trigger ml --param acc=0.91)
check "run 1 succeeds" test "$(wait_run "$r1" ml 60)" = success
raw1=$(sha "$r1" raw.bin)
schema1=$(sha "$r1" schema.txt)
model1=$(sha "$r1" model.bin)
report1=$(sha "$r1" report.txt)

# --- provenance in the attempt record ---
att=$(attempts "$r1" ml evaluate)
check "the attempt record has the image, argv with templates rendered, and CAIRN_ env" \
    jqe '.attempts[0] | .image == "host" and .argv[0:2] == ["sh", "-c"]
        and (.argv[2] | startswith("while [ none != none ]")) and (.argv[2] | contains("\"accuracy\": 0.91"))
        and (.env | index("CAIRN_TASK=evaluate") != null)' <<<"$att"
check "and the inputs it got: name, upstream task and file, digest" \
    jqe --arg m "$model1" '.attempts[0].inputs == [{"name": "model", "task": "train", "file": "model.bin", "sha256": $m}]' <<<"$att"
ld=$(rj "$r1" ml .logical_date)
check "the declared env is recorded rendered (STAGE=ingest-${ld:0:10})" \
    jqe --arg e "STAGE=ingest-${ld:0:10}" '.attempts[0].env | index($e) != null' <<<"$(attempts "$r1" ml ingest)"

# --- lineage by run and artifact ---
lin=$("$CAIRN" lineage "$r1" evaluate/report.txt --dag ml --json)
check "lineage: the root is the artifact asked for, with its producer attempt" \
    jqe --arg r "$r1" --arg s "$report1" '.lineage | .dag == "ml" and .run_id == $r and .task == "evaluate"
        and .name == "report.txt" and .attempt == 1 and .sha256 == $s and .worker == "w1"
        and .image == "host" and (.argv[2] | contains("wc -c")) and .provenance == true' <<<"$lin"
check "  its input is train's model.bin, expanded" \
    jqe --arg m "$model1" '.lineage.inputs | length == 1 and .[0].name == "model" and .[0].sha256 == $m
        and .[0].from.task == "train" and .[0].from.name == "model.bin" and .[0].from.sha256 == $m
        and .[0].from.attempt == 1 and (.[0].from.argv[2] | contains("sha256sum"))' <<<"$lin"
check "  whose inputs are ingest's two outputs" \
    jqe --arg raw "$raw1" --arg sc "$schema1" '.lineage.inputs[0].from.inputs
        | map({name, task, file, sha256}) == [{"name": "data", "task": "ingest", "file": "raw.bin", "sha256": $raw},
                                             {"name": "schema", "task": "ingest", "file": "schema.txt", "sha256": $sc}]' <<<"$lin"
check "  ingest is a leaf with its env; its second appearance is marked repeated" \
    jqe --arg e "STAGE=ingest-${ld:0:10}" '.lineage.inputs[0].from.inputs as $i
        | $i[0].from.task == "ingest" and $i[0].from.inputs == [] and ($i[0].from.env | index($e) != null)
        and $i[1].from.repeated == true and $i[1].from.inputs == null' <<<"$lin"
tree=$("$CAIRN" lineage "$r1" evaluate/report.txt)
check "the tree on a terminal names each hop" bash -c '
    grep -q "^evaluate/report.txt  sha256:${1:0:12}" <<<"$0" &&
    grep -q "└─ model ← train/model.bin  sha256:${2:0:12}" <<<"$0" &&
    grep -q "├─ data ← ingest/raw.bin  sha256:${3:0:12}  2.9 MiB" <<<"$0" &&
    grep -q "└─ schema ← ingest/schema.txt" <<<"$0" &&
    grep -q "(this attempt is shown above)" <<<"$0" &&
    grep -q "command  sh -c .(cat \$CAIRN_INPUTS/schema" <<<"$0"' "$tree" "$report1" "$model1" "$raw1"

# --- lineage by digest ---
bysha=$("$CAIRN" lineage "$model1" --json)
check "lineage by sha256 finds the producer (train, run 1, attempt 1)" \
    jqe --arg r "$r1" '.producers == 1 and .also_produced_by == [] and .lineage.task == "train"
        and .lineage.run_id == $r and .lineage.attempt == 1 and (.lineage.inputs | length) == 2' <<<"$bysha"
check "  and by a 12-character prefix, the same answer" \
    bash -c '[ "$("$0" lineage "${1:0:12}" --json)" = "$2" ]' "$CAIRN" "$model1" "$bysha"
out=$("$CAIRN" lineage 0000000000000000000000000000000000000000000000000000000000000000 2>&1) && st=0 || st=$?
check "an unknown digest: exit 1 and says so ($out)" bash -c '[ "$0" = 1 ] && grep -q "no stored artifact has sha256" <<<"$1"' "$st" "$out"
out=$("$CAIRN" lineage not-hex 2>&1) && st=0 || st=$?
check "not a digest: exit 1 and says what is expected" bash -c '[ "$0" = 1 ] && grep -q "8 to 64 lowercase hex" <<<"$1"' "$st" "$out"

# --- artifacts get ---
"$CAIRN" artifacts get "$r1" ingest/raw.bin -o "$T/raw.bin" --dag ml >"$T/get.out"
blob=$("$CAIRN" artifacts list "$r1" --dag ml --json | jq -r '.artifacts[] | select(.name == "raw.bin") | .uri' | sed 's|^file://||')
check "artifacts get writes the stored bytes" cmp -s "$T/raw.bin" "$blob"
check "  which hash to the pointer's digest and have its size" \
    bash -c '[ "$(sha256sum <"$0" | cut -c1-64)" = "$1" ] && [ "$(stat -c %s "$0")" = 3000000 ]' "$T/raw.bin" "$raw1"
check "  and it says so" grep -q "raw.bin: ingest/raw.bin of run $r1, 2.9 MiB, sha256 $raw1 (verified)" "$T/get.out"
check "-o - writes the bytes to stdout" \
    bash -c '[ "$("$0" artifacts get "$1" ingest/raw.bin -o - | sha256sum | cut -c1-64)" = "$2" ]' "$CAIRN" "$r1" "$raw1"
out=$("$CAIRN" artifacts get "$r1" ingest/nope.bin -o "$T/nope" 2>&1) && st=0 || st=$?
check "a missing artifact: exit 1, a message naming what the task stored ($out)" \
    bash -c '[ "$0" = 1 ] && grep -q "has no artifact .nope.bin. (it stored: raw.bin, schema.txt)" <<<"$1"' "$st" "$out"
check "  and no file, not even a temporary one" bash -c '! ls "$0"/nope* 2>/dev/null | grep -q .' "$T"
out=$("$CAIRN" artifacts get "$r1" ingest/raw.bin 2>&1) && st=0 || st=$?
check "no -o: a usage error (exit 2)" bash -c '[ "$0" = 2 ] && grep -q "missing -o FILE" <<<"$1"' "$st" "$out"

# --- metrics across runs ---
r2=$("$CAIRN" trigger ml --param acc=0.87)
check "run 2 succeeds" test "$(wait_run "$r2" ml 60)" = success
r3=$("$CAIRN" trigger ml --param acc=0.8)
check "run 3 succeeds" test "$(wait_run "$r3" ml 60)" = success
met=$("$CAIRN" metrics ml --json)
check "metrics: one row per run, newest first, with each task's metrics" \
    jqe --arg a "$r1" --arg b "$r2" --arg c "$r3" '.columns == ["train.loss", "evaluate.accuracy"]
        and [.runs[].run_id] == [$c, $b, $a] and [.runs[].metrics["evaluate.accuracy"]] == [0.8, 0.87, 0.91]
        and [.runs[].metrics["train.loss"]] == [0.25, 0.25, 0.25] and [.runs[].state] == ["success", "success", "success"]' <<<"$met"
check "--metric accuracy --last 2 keeps that column and two runs" \
    jqe --arg b "$r2" --arg c "$r3" '.columns == ["evaluate.accuracy"] and [.runs[].run_id] == [$c, $b]
        and (.runs[0].metrics | keys) == ["evaluate.accuracy"]' <<<"$("$CAIRN" metrics ml --metric accuracy --last 2 --json)"
table=$("$CAIRN" metrics ml)
check "the table has a column per task.metric and a row per run" bash -c '
    head -1 <<<"$0" | grep -Eq "^RUN ID +LOGICAL DATE +STATE +train.loss +evaluate.accuracy$" &&
    grep -Eq "^$1 .* success +0.25 +0.91$" <<<"$0" && [ "$(wc -l <<<"$0")" = 4 ]' "$table" "$r1"
out=$("$CAIRN" metrics nodag 2>&1) && st=0 || st=$?
check "metrics of an unknown DAG: exit 1 ($out)" bash -c '[ "$0" = 1 ] && grep -q "no DAG .nodag." <<<"$1"' "$st" "$out"

# --- provenance survives a scheduler killed while the attempt runs ---
# (evaluate waits for the file $T/gate, so the attempt spans the restart)
r4=$("$CAIRN" trigger ml --param "gate=$T/gate" --param acc=0.5)
wait_until 30 bash -c '[ "$("$0" runs show "$1" --dag ml --json | jq -r ".tasks[2].state")" = running ]' "$CAIRN" "$r4"
kill_wait "$SCHED_PID" KILL
start_scheduler s
touch "$T/gate"
check "after a SIGKILL and restart, run 4 succeeds" test "$(wait_run "$r4" ml 60)" = success
check "  its evaluate attempt was recovered, not run again" logged s "recovered 1 unfinished run \(1 attempt in flight" 
model4=$(sha "$r4" model.bin)
check "  and its evaluate attempt record kept its provenance when it was rewritten" \
    jqe --arg m "$model4" '.attempts | length == 1 and .[0].state == "success"
        and (.[0].argv[2] | contains("[ ! -e '"$T/gate"' ]")) and .[0].inputs[0].sha256 == $m' <<<"$(attempts "$r4" ml evaluate)"

# --- identical bytes from several runs ---
check "report.txt has the same bytes in every run" test "$(sha "$r4" report.txt)" = "$report1"
same=$("$CAIRN" lineage "$report1" --json)
check "lineage by digest: the earliest producer is the root, the others are listed" \
    jqe --arg a "$r1" --arg b "$r2" --arg c "$r3" --arg d "$r4" '.producers == 4 and .lineage.run_id == $a
        and ([.also_produced_by[].run_id] | sort) == ([$b, $c, $d] | sort)' <<<"$same"

# --- a cleared task stores new outputs; the earlier attempt's keep their lineage ---
raw2=$(sha "$r2" raw.bin)
model2=$(sha "$r2" model.bin)
"$CAIRN" clear "$r2" --dag ml --task ingest --downstream >/dev/null
check "run 2 cleared from ingest succeeds again" test "$(wait_run "$r2" ml 60)" = success
raw2b=$(sha "$r2" raw.bin)
check "  ingest stored new bytes (attempt 2), listed once" test \
    "$("$CAIRN" artifacts list "$r2" --dag ml --json | jq '[.artifacts[] | select(.name == "raw.bin")] | length') $raw2b" != "1 $raw2"
check "  artifacts get returns the new bytes" bash -c \
    '"$0" artifacts get "$1" ingest/raw.bin --dag ml -o - | sha256sum | grep -q "^$2 "' "$CAIRN" "$r2" "$raw2b"
old=$("$CAIRN" lineage "$model2" --json)
check "  lineage of the first model still names attempt 1 and its input bytes" \
    jqe --arg r "$r2" --arg raw "$raw2" '.lineage.run_id == $r and .lineage.attempt == 1 and .lineage.superseded == true
        and (.lineage.inputs[] | select(.name == "data") | .sha256 == $raw and .from.attempt == 1)' <<<"$old"
new=$("$CAIRN" lineage "$r2" train/model.bin --dag ml --json)
check "  lineage of the new model names attempt 2 and the new input" \
    jqe --arg raw "$raw2b" '.lineage.attempt == 2 and (.lineage.inputs[] | select(.name == "data") | .sha256 == $raw and .from.attempt == 2)' <<<"$new"

# --- a damaged blob is not delivered as if it were whole ---
chmod u+w "$blob"
printf 'X' | dd of="$blob" bs=1 seek=1000 conv=notrunc 2>/dev/null
out=$("$CAIRN" artifacts get "$r1" ingest/raw.bin -o "$T/bad.bin" 2>&1) && st=0 || st=$?
check "a corrupted blob: exit 1, the download is cut short and said to be ($out)" \
    bash -c '[ "$0" = 1 ] && grep -q "the download broke after" <<<"$1" && grep -q CAIRN-ARTIFACT-CORRUPT <<<"$1"' "$st" "$out"
check "  no file is written" bash -c '! ls "$0"/bad.bin* 2>/dev/null | grep -q .' "$T"
check "  the scheduler logs CAIRN-ARTIFACT-CORRUPT" logged s "CAIRN-ARTIFACT-CORRUPT artifact ml/$r1/ingest/raw.bin"
check "  -o -: exit 1" bash -c '! "$0" artifacts get "$1" ingest/raw.bin -o - >/dev/null 2>&1' "$CAIRN" "$r1"
finish
