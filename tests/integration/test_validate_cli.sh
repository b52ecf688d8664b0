#!/usr/bin/env bash
# `cairn validate` and `cairn render` as a user runs them.
source "$(dirname "$0")/lib.sh"

fx=$CAIRN_SRC/tests/fixtures

out=$("$CAIRN" validate "$fx/full.yaml") && rc=0 || rc=$?
check "a valid file exits 0" [ "$rc" = 0 ]
check "and says ok" grep -q "ok (dag 'full-example', 5 tasks)" <<<"$out"

out=$("$CAIRN" validate "$fx/dag-errors/unknown-dependency.yaml") && rc=0 || rc=$?
check "an invalid file exits 1" [ "$rc" = 1 ]
check "error is FILE:LINE:COL: error: message" \
    grep -q "unknown-dependency.yaml:6:13: error: task 'train' needs unknown task 'ingset'" <<<"$out"
check "with a did-you-mean hint" grep -q "hint: did you mean 'ingest'?" <<<"$out"

out=$("$CAIRN" validate "$fx/dag-errors") && rc=0 || rc=$?
check "a folder with broken files exits 1" [ "$rc" = 1 ]
n=$(grep -c ": error: " <<<"$out" || true)
check "every file's errors are printed ($n)" [ "$n" -ge 25 ]

out=$("$CAIRN" validate --json "$fx/dag-errors/cycle.yaml" "$fx/full.yaml") && rc=0 || rc=$?
check "--json exits 1 when a file is bad" [ "$rc" = 1 ]
check "--json gives structured diagnostics" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
bad, good = d["files"]
assert d["ok"] is False and bad["ok"] is False and good["ok"] is True, d
diag = bad["diagnostics"][0]
assert diag["line"] == 6 and diag["column"] == 20, diag
assert "a -> b -> c -> a" in diag["message"], diag
assert good["dag"] == "full-example" and good["tasks"] == 5
' "$out"

"$CAIRN" validate /nonexistent.yaml >/dev/null 2>&1 && rc=0 || rc=$?
check "a missing path exits 1" [ "$rc" = 1 ]
"$CAIRN" validate >/dev/null 2>&1 && rc=0 || rc=$?
check "no path is a usage error (2)" [ "$rc" = 2 ]

out=$("$CAIRN" render "$fx/full.yaml" --date 2026-03-02 --param model=xgb)
check "render shows the logical date in the DAG's zone" \
    grep -q "logical date 2026-03-02T06:30:00+01:00" <<<"$out"
check "render renders templates" grep -q "python3 /pipeline/ingest.py --date 2026-03-02" <<<"$out"
check "render applies --param" grep -q "python3 /pipeline/train.py xgb" <<<"$out"
check "render shows env" grep -q "RUN=scheduled__2026-03-02T05:30:00Z" <<<"$out"
"$CAIRN" render "$fx/full.yaml" --param nope=1 >/dev/null 2>&1 && rc=0 || rc=$?
check "render refuses an unknown param" [ "$rc" = 1 ]
out=$("$CAIRN" render --json "$fx/full.yaml" --date 2026-03-02)
check "render --json" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
t = {x["task"]: x for x in d["tasks"]}
assert t["validate"]["command"][2] == "20260302", t["validate"]
assert t["ingest"]["env"]["SHARED"] == "own"
' "$out"

for f in "$CAIRN_SRC"/examples/*/*.yaml "$CAIRN_SRC"/dags/*.yaml; do
    check "example $(basename "$f") is valid" "$CAIRN" validate -q "$f"
done
finish
