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

# --- folders are searched as the scheduler searches --dags: recursively (at
# most 8 levels down), every *.yaml/*.yml, not names starting with '.' nor
# folders reached through a symbolic link; a summary line ends the output
good() { printf 'dag: %s\ntasks:\n  t: {command: ["true"]}\n' "$1"; }
tree=$T/tree
deep=$tree/l1/l2/l3/l4/l5/l6/l7/l8
mkdir -p "$deep/l9" "$tree/.hidden" "$T/elsewhere" "$tree/sub"
good top >"$tree/top.yaml"
good sub >"$tree/sub/sub.yml"
good deep8 >"$deep/deep8.yaml"
good deep9 >"$deep/l9/deep9.yaml"
good hidden >"$tree/.hidden/hidden.yaml"
good dotfile >"$tree/sub/.dotfile.yaml"
good linked >"$T/elsewhere/linked.yaml"
ln -s "$T/elsewhere" "$tree/link"
echo 'not yaml' >"$tree/sub/notes.txt"
out=$("$CAIRN" validate "$tree") && rc=0 || rc=$?
check "a folder tree: exit 0" [ "$rc" = 0 ]
check "  files in sub-folders are checked" grep -q "^$tree/sub/sub.yml: ok (dag 'sub', 1 task)" <<<"$out"
check "  down to 8 levels below the folder" grep -q "^$deep/deep8.yaml: ok" <<<"$out"
check "  not 9" bash -c '! grep -q deep9 <<<"$0"' "$out"
check "  not in folders or files whose name starts with '.'" bash -c '! grep -Eq "hidden|dotfile" <<<"$0"' "$out"
check "  not through a symbolic link to a folder" bash -c '! grep -q linked <<<"$0"' "$out"
check "  the last line sums up: 3 files, 3 DAGs ok" test "$(tail -n1 <<<"$out")" = "3 files, 3 DAGs ok"
out=$("$CAIRN" validate -q "$tree") && rc=0 || rc=$?
check "  -q prints only the summary" test "$out" = "3 files, 3 DAGs ok"

n=$(find "$CAIRN_SRC/examples" -name '.*' -prune -o \( -name '*.yaml' -o -name '*.yml' \) -type f -print | wc -l)
out=$("$CAIRN" validate "$CAIRN_SRC/examples/") && rc=0 || rc=$?
check "validate examples/ checks every example ($n) and exits 0" [ "$rc" = 0 ]
check "  and says how many: $n files, $n DAGs ok" test "$(tail -n1 <<<"$out")" = "$n files, $n DAGs ok"

printf 'dag: broken\ntasks:\n  t: {comand: ["true"]}\n' >"$tree/sub/broken.yaml"
out=$("$CAIRN" validate "$tree") && rc=0 || rc=$?
check "a tree with a broken file deep down exits 1" [ "$rc" = 1 ]
check "  its error is printed" grep -q "^$tree/sub/broken.yaml:3:" <<<"$out"
check "  the summary counts the files with errors" grep -q "^1 of 4 files has errors (2 errors); 3 DAGs ok$" <<<"$(tail -n1 <<<"$out")"
out=$("$CAIRN" validate --json "$tree") && rc=0 || rc=$?
check "  --json: one object per file, as before, and a summary" /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["ok"] is False, d
files = {f["file"].rsplit("/", 1)[1]: f for f in d["files"]}
assert sorted(files) == ["broken.yaml", "deep8.yaml", "sub.yml", "top.yaml"], sorted(files)
assert files["broken.yaml"]["ok"] is False and files["broken.yaml"]["diagnostics"]
assert files["top.yaml"]["ok"] is True and files["top.yaml"]["dag"] == "top"
assert d["summary"] == {"files": 4, "ok": 3, "failed": 1, "errors": 2}, d["summary"]
' "$out"
rm "$tree/sub/broken.yaml"

mkdir -p "$T/empty/sub" "$T/onlytxt"
echo x >"$T/onlytxt/readme.txt"
out=$("$CAIRN" validate "$T/empty" "$T/onlytxt" 2>&1) && rc=0 || rc=$?
check "folders without a DAG file: an error, exit 2 (a CI check cannot pass vacuously)" [ "$rc" = 2 ]
check "  the message names the paths searched" grep -q "no \*.yaml or \*.yml file in $T/empty, $T/onlytxt" <<<"$out"
out=$("$CAIRN" validate --json "$T/empty" 2>&1) && rc=0 || rc=$?
check "  also with --json" [ "$rc" = 2 ]
out=$("$CAIRN" validate "$T/empty" "$tree" 2>&1) && rc=0 || rc=$?
check "an empty folder next to one with DAGs is not an error" [ "$rc" = 0 ]
check "  but it is named" grep -q "$T/empty: no \*.yaml or \*.yml file" <<<"$out"

for f in "$CAIRN_SRC"/examples/*/*.yaml "$CAIRN_SRC"/dags/*.yaml; do
    check "example $(basename "$f") is valid" "$CAIRN" validate -q "$f"
done
finish
