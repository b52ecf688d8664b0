#!/usr/bin/env bash
# The iris example's five scripts, run outside containers with Debian's
# /usr/bin/python3: each step gets its own inputs and outputs folder
# (CAIRN_INPUTS, CAIRN_OUTPUTS), wired as examples/iris/iris.yaml declares,
# and runs the command `cairn render` gives for it (with /pipeline pointed
# at examples/iris/pipeline).
source "$(dirname "$0")/lib.sh"

ex=$CAIRN_SRC/examples/iris
dag=$ex/iris.yaml
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
ds=2026-03-02
run_id=manual__2026-03-02T03:00:00Z

check "iris.yaml is valid" "$CAIRN" validate -q "$dag"

# The wiring below is the DAG's: each inputs line must be in iris.yaml.
for w in "validate:.*inputs: {raw: ingest/raw.csv}" \
         "train:.*inputs: {raw: ingest/raw.csv}" \
         "evaluate:.*inputs: {model: train/model.pkl, raw: ingest/raw.csv}" \
         "deploy:.*inputs: {model: train/model.pkl, metrics: evaluate/metrics.json}"; do
    check "the DAG declares ${w%%:*}'s inputs as this test wires them" \
        $PY -c 'import re,sys; t,p=sys.argv[2].split(":.*",1); s=open(sys.argv[1]).read()
m=re.search(r"^  "+re.escape(t)+r":\n((?:    .*\n|\s*\n)*)", s, re.M); sys.exit(not (m and p in m.group(1)))' "$dag" "$w"
done

# plan NAME [--param k=v]...: render the DAG for $ds into $T/NAME/plan.json
plan() {
    local name=$1; shift
    mkdir -p "$T/$name"
    "$CAIRN" render --json "$dag" --date "$ds" "$@" >"$T/$name/plan.json"
}

# step RUN TASK [NAME=FILE]...: stage copies of the inputs (read-only), run the task's
# rendered command; sets RC and SECS, output in $T/RUN/TASK.log
step() {
    local run=$1 task=$2 kv cmd; shift 2
    local d=$T/$run/$task
    mkdir -p "$d/in" "$d/out"
    for kv in "$@"; do
        cp "${kv#*=}" "$d/in/${kv%%=*}"
        chmod a-w "$d/in/${kv%%=*}"
    done
    mapfile -t cmd < <(jq -r --arg t "$task" '.tasks[] | select(.task == $t) | .command[]' \
        "$T/$run/plan.json" | sed "s#^/pipeline/#$ex/pipeline/#")
    local t0; t0=$(date +%s%N)
    RC=0
    env CAIRN_INPUTS="$d/in" CAIRN_OUTPUTS="$d/out" CAIRN_DAG=iris CAIRN_TASK="$task" \
        CAIRN_RUN_ID="$run_id" CAIRN_LOGICAL_DATE="${ds}T03:00:00+00:00" CAIRN_ATTEMPT=1 \
        "${cmd[@]}" >"$T/$run/$task.log" 2>&1 || RC=$?
    SECS=$(( ($(date +%s%N) - t0) / 1000000 ))
    SECS=$((SECS / 1000)).$(printf %03d $((SECS % 1000)))
    echo "# $run/$task: exit $RC in $SECS s"
    [ "$RC" = 0 ] || sed 's/^/#   /' "$T/$run/$task.log"
}

# --- the good path, default params ------------------------------------------
plan good
r=$T/good
step good ingest
check "ingest exits 0" [ "$RC" = 0 ]
raw=$r/ingest/out/raw.csv
check "raw.csv has a header and 150 rows" [ "$(wc -l <"$raw")" = 151 ]
check "raw.csv's header" [ "$(head -n 1 "$raw")" = "sepal_length,sepal_width,petal_length,petal_width,species,ds" ]
check "every row carries the logical date" [ "$(cut -d, -f6 "$raw" | tail -n +2 | sort -u)" = "$ds" ]
check "all three classes, 50 rows each" [ "$(cut -d, -f5 "$raw" | tail -n +2 | sort | uniq -c | awk '{print $1}' | sort -u)" = 50 ]

step good validate raw="$raw"
check "validate passes good data" [ "$RC" = 0 ]
check "and writes report.json saying ok" $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] is True and r["rows"] == 150, r' "$r/validate/out/report.json"

step good train raw="$raw"
check "train exits 0" [ "$RC" = 0 ]
check "train writes model.pkl" [ -s "$r/train/out/model.pkl" ]
check "train prints training info" grep -q "105 training rows of 150" "$r/train.log"

step good evaluate model="$r/train/out/model.pkl" raw="$raw"
check "evaluate exits 0" [ "$RC" = 0 ]
m=$r/evaluate/out/metrics.json
check "metrics.json is a flat object of numbers with the declared keys" $PY -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert isinstance(m, dict) and set(m) == {"accuracy", "f1", "n_test"}, m
assert all(type(v) in (int, float) for v in m.values()), m
assert m["n_test"] == 45, m' "$m"
check "accuracy >= 0.9 (the default gate opens)" $PY -c 'import json,sys; a=json.load(open(sys.argv[1]))["accuracy"]; sys.exit(not a >= 0.9)' "$m"
check "accuracy < 0.99 (the README's min_accuracy=0.99 closes the gate)" $PY -c 'import json,sys; a=json.load(open(sys.argv[1]))["accuracy"]; sys.exit(not a < 0.99)' "$m"

MODELS_DIR=$T/models step good deploy model="$r/train/out/model.pkl" metrics="$m"
check "deploy exits 0" [ "$RC" = 0 ]
sha=$(sha256sum "$r/train/out/model.pkl" | cut -d' ' -f1)
check "deployed.json records the model's sha256 and the run" $PY -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["sha256"] == sys.argv[2], (d["sha256"], sys.argv[2])
assert d["run_id"] == sys.argv[3] and d["dag"] == "iris", d
assert d["logical_date"].startswith(sys.argv[4]), d
assert d["metrics"] == json.load(open(sys.argv[5])), d' \
    "$r/deploy/out/deployed.json" "$sha" "$run_id" "$ds" "$m"
check "deploy's model.pkl is train's" cmp -s "$r/train/out/model.pkl" "$r/deploy/out/model.pkl"
check "MODELS_DIR gets models/<run_id>/model.pkl" cmp -s "$r/train/out/model.pkl" "$T/models/$run_id/model.pkl"
check "and deployed.json" cmp -s "$r/deploy/out/deployed.json" "$T/models/$run_id/deployed.json"
check "and latest points at it" [ "$(readlink "$T/models/latest")" = "$run_id" ]

touch "$T/not-a-dir"
MODELS_DIR=$T/not-a-dir/models step good deploy model="$r/train/out/model.pkl" metrics="$m"
check "a MODELS_DIR that cannot be written is a warning, not a failure" [ "$RC" = 0 ]
check "that names MODELS_DIR" grep -q "MODELS_DIR=.*cannot be written" "$r/deploy.log"

# --- the failure path: --param corrupt=true ---------------------------------
plan bad --param corrupt=true
step bad ingest
check "ingest --corrupt=true exits 0" [ "$RC" = 0 ]
step bad validate raw="$T/bad/ingest/out/raw.csv"
check "validate fails on corrupt data" [ "$RC" != 0 ]
log=$T/bad/validate.log
check "naming the NaN's row and column" grep -q "line 5, column sepal_width: 'nan' is not a finite number" "$log"
check "naming the negative length" grep -q "line 42, column petal_length: -3.2 cm is outside the plausible range" "$log"
check "naming the non-number" grep -q "line 77, column sepal_length: '5,1cm' is not a number" "$log"
check "naming the unknown class" grep -q "line 120, column species: unknown class 'virginca'" "$log"

# --- other params: rows, noise, model ---------------------------------------
plan small --param rows=60 --param noise=0.1 --param model=logreg
step small ingest
check "rows=60 noise=0.1: exit 0" [ "$RC" = 0 ]
check "and 60 rows" [ "$(wc -l <"$T/small/ingest/out/raw.csv")" = 61 ]
step small validate raw="$T/small/ingest/out/raw.csv"
check "and they validate" [ "$RC" = 0 ]
step small train raw="$T/small/ingest/out/raw.csv"
check "model=logreg trains" [ "$RC" = 0 ]
check "a logistic regression" grep -q "LogisticRegression" "$T/small/train.log"
step small evaluate model="$T/small/train/out/model.pkl" raw="$T/small/ingest/out/raw.csv"
check "and evaluates" [ "$RC" = 0 ]
check "to accuracy >= 0.9" $PY -c 'import json,sys; a=json.load(open(sys.argv[1]))["accuracy"]; sys.exit(not a >= 0.9)' "$T/small/evaluate/out/metrics.json"

plan tiny --param rows=20
step tiny ingest
step tiny validate raw="$T/tiny/ingest/out/raw.csv"
check "rows=20 fails validation" [ "$RC" != 0 ]
check "because of too few rows" grep -q "only 20 rows, at least 30 required" "$T/tiny/validate.log"

check "no __pycache__ left in examples/iris/pipeline" [ ! -e "$ex/pipeline/__pycache__" ]
finish
