#!/usr/bin/env bash
# `cairn artifacts gc`: the pointers of finished runs outside the retention
# go, then the blobs nothing references; the last runs of each DAG, an
# unfinished run, and bytes another run still references stay; young blobs
# are protected by --min-age; --dry-run removes nothing.
source "$(dirname "$0")/lib.sh"

put_dag gc <<'YAML'
dag: gc
defaults: {retries: 0}
params: {gate: "none"}
tasks:
  make:
    command: [sh, -c, "head -c 200000 /dev/urandom > $CAIRN_OUTPUTS/data.bin && echo same > $CAIRN_OUTPUTS/const.txt"]
    outputs: [data.bin, const.txt]
  use:
    needs: [make]
    inputs: {d: make/data.bin}
    command: [sh, -c, "while [ {{ params.gate }} != none ] && [ ! -e {{ params.gate }} ]; do sleep 0.05; done; sha256sum < $CAIRN_INPUTS/d > $CAIRN_OUTPUTS/sum.txt"]
    outputs: [sum.txt]
YAML
put_dag other <<'YAML'
dag: other
tasks:
  only:
    command: [sh, -c, "head -c 1000 /dev/urandom > $CAIRN_OUTPUTS/o.bin"]
    outputs: [o.bin]
YAML

start_scheduler s
start_worker w1 --isolation none --slots 2

jqe() { jq -e "$@" >/dev/null; }
# blob DAG RUN NAME -> the path of the blob of that output
blob() {
    "$CAIRN" artifacts list "$2" --dag "$1" --json |
        jq -r --arg n "$3" '.artifacts[] | select(.name == $n) | .uri' | sed 's|^file://||'
}
nblobs() { find "$T/s/artifacts/blobs" -type f | wc -l; }
gc() { "$CAIRN" artifacts gc --json "$@"; }

for i in 1 2 3; do
    r=$("$CAIRN" trigger gc)
    check "gc run $i succeeds" test "$(wait_run "$r" gc 60)" = success
    eval "r$i=\$r"
done
o1=$("$CAIRN" trigger other)
check "the other DAG's run succeeds" test "$(wait_run "$o1" other 60)" = success
# run 4 stays unfinished: make has stored its outputs, use waits for $T/gate
r4=$("$CAIRN" trigger gc --param "gate=$T/gate")
wait_until 30 bash -c '[ "$("$0" runs show "$1" --dag gc --json | jq -r ".tasks[1].state")" = running ]' "$CAIRN" "$r4"
for i in 1 2 3; do
    eval "r=\$r$i"
    eval "data$i=\$(blob gc $r data.bin); sum$i=\$(blob gc $r sum.txt)"
done
data4=$(blob gc "$r4" data.bin)
const=$(blob gc "$r1" const.txt)
obin=$(blob other "$o1" o.bin)
check "const.txt is one blob shared by every run" \
    bash -c '[ "$0" = "$1" ] && [ "$0" = "$2" ]' "$const" "$(blob gc "$r3" const.txt)" "$(blob gc "$r4" const.txt)"
sumsz=$(stat -c %s "$sum1")
gone=$((2 * 200000 + 2 * sumsz)) # data.bin and sum.txt of runs 1 and 2
# 4 data.bin + 3 sum.txt + const.txt + o.bin
check "9 blobs in the store" test "$(nblobs)" = 9

rep=$(gc --keep-last 1 --dry-run)
check "dry run: the pointers of runs 1 and 2 would go (3 each), none of the blobs (younger than 1h)" \
    jqe --arg a "$r1" --arg b "$r2" --argjson g "$gone" '.dry_run == true and .runs == 2 and .pointers_removed == 6
        and .pointer_bytes == $g + 2 * 5 and .blobs_removed == 0 and .min_age_ms == 3600000
        and ([.removed_runs[].run_id] | sort) == ([$a, $b] | sort)' <<<"$rep"
rep=$(gc --keep-last 1 --dry-run --min-age 0)
check "dry run with --min-age 0: 4 blobs would go (data and sum of runs 1 and 2)" \
    jqe --argjson g "$gone" '.blobs_removed == 4 and .blob_bytes == $g and .blobs_kept == 5' <<<"$rep"
check "  and nothing was removed" bash -c '[ "$("$0" artifacts list "$1" --dag gc --json | jq ".artifacts | length")" = 3 ] && [ "$2" = 9 ]' "$CAIRN" "$r1" "$(nblobs)"

rep=$(gc --keep-last 1)
check "gc --keep-last 1 removes the pointers of runs 1 and 2; the blobs are young and stay" \
    jqe '.dry_run == false and .runs == 2 and .pointers_removed == 6 and .pointers_kept == 6 and .blobs_removed == 0' <<<"$rep"
check "  run 1 lists no artifacts any more" \
    bash -c '[ "$("$0" artifacts list "$1" --dag gc --json | jq ".artifacts | length")" = 0 ]' "$CAIRN" "$r1"
out=$("$CAIRN" artifacts get "$r1" make/data.bin -o "$T/x" 2>&1) && st=0 || st=$?
check "  and artifacts get says it was removed by gc ($out)" \
    bash -c '[ "$0" = 1 ] && grep -q "was removed by .cairn artifacts gc." <<<"$1"' "$st" "$out"
check "  the blobs are still there" test "$(nblobs)" = 9

rep=$(gc --keep-last 1 --min-age 0)
check "gc --keep-last 1 --min-age 0 removes the 4 blobs no pointer references" \
    jqe --argjson g "$gone" '.pointers_removed == 0 and .blobs_removed == 4 and .blob_bytes == $g and .blobs_kept == 5' <<<"$rep"
check "  the blobs of runs 1 and 2 are gone" \
    bash -c 'for f; do [ ! -e "$f" ] || exit 1; done' "$data1" "$sum1" "$data2" "$sum2"
check "  the last run's blobs stay" bash -c '[ -f "$0" ] && [ -f "$1" ]' "$data3" "$sum3"
check "  the unfinished run's blob stays" test -f "$data4"
check "  the blob runs 1 and 2 shared with runs 3 and 4 stays" test -f "$const"
check "  the other DAG's only run keeps its blob (the last N are per DAG)" test -f "$obin"
check "  5 blobs are left, as reported" test "$(nblobs)" = 5
"$CAIRN" artifacts get "$r3" make/data.bin -o "$T/d3" >/dev/null
check "  run 3's data.bin still downloads, digest checked" cmp -s "$T/d3" "$data3"

rep=$(gc --older-than 1h --min-age 0)
check "--older-than 1h: every run ended within the hour, nothing goes" \
    jqe '.pointers_removed == 0 and .blobs_removed == 0 and .older_than_ms == 3600000 and .keep_last == null' <<<"$rep"
txt=$("$CAIRN" artifacts gc --keep-last 1 --dry-run)
check "the human report says what would go" \
    bash -c 'grep -q "^would remove 0 artifact pointers (0 B) of 0 finished runs; 6 kept$" <<<"$0" &&
             grep -q "^would remove 0 blobs (0 B) and 0 temporary files (0 B); 5 blobs kept" <<<"$0"' "$txt"

touch "$T/gate"
check "the unfinished run then succeeds" test "$(wait_run "$r4" gc 60)" = success
sum4=$(blob gc "$r4" sum.txt)
rep=$(gc --keep-last 1 --min-age 0)
check "now run 3 is outside the last 1: its pointers and its own blobs go" \
    jqe --arg c "$r3" '.runs == 1 and .removed_runs == [{"dag": "gc", "run_id": $c}] and .pointers_removed == 3
        and .blobs_removed == 2' <<<"$rep"
check "  run 4's blobs and the shared one stay" bash -c '[ -f "$0" ] && [ -f "$1" ] && [ -f "$2" ] && [ ! -e "$3" ]' \
    "$data4" "$sum4" "$const" "$data3"
rep=$(gc --older-than 1ms --dry-run)
check "--older-than alone: every finished run that ended before would go, the last ones too" \
    jqe --arg d "$r4" --arg o "$o1" '.runs == 2 and .pointers_removed == 4
        and ([.removed_runs[].run_id] | sort) == ([$d, $o] | sort)' <<<"$rep"
rep=$(gc --older-than 1ms --keep-last 1 --dry-run)
check "with --keep-last too, a run either rule keeps stays" jqe '.runs == 0 and .pointers_removed == 0' <<<"$rep"
check "gc takes no positional argument (usage error)" bash -c '"$0" artifacts gc now >/dev/null 2>&1; [ $? = 2 ]' "$CAIRN"
check "the scheduler logged each collection" test "$(grep -c CAIRN-ARTIFACT-GC "$T/s.log")" = 9
finish
