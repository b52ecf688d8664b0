#!/usr/bin/env bash
# Paging through big answers with limit and next_cursor, through the real
# scheduler and CLI: the runs list, a page at a time, returns every run
# exactly once and in order (newest first), also when a run is triggered
# between two pages; the last page says next_cursor null; a cursor the API
# did not give out is a 400 in the API's error shape. `cairn runs list
# --limit --cursor` prints the next page's cursor (in --json: next_cursor).
# Then a run's task rows, a page at a time (?tasks=all&limit=N&cursor=I):
# in the DAG's order, each once, for a run in memory and for one read back
# from the store after a restart; `cairn runs show --all` of a 1,001-task
# run gets them a page at a time and prints them all.
source "$(dirname "$0")/lib.sh"

put_dag a <<'YAML'
dag: a
tasks:
  t1: {command: ["true"]}
YAML

start_scheduler s
start_worker w1 --slots 2 --isolation none

RUNS=()
# logical dates out of order: run ids (the store's key order) are not the
# order the runs were made in
for day in 05 02 07 01 04 06 03; do
    RUNS+=("$("$CAIRN" trigger a --logical-date 2026-01-${day})")
done
for r in "${RUNS[@]}"; do wait_run "$r" a 60 >/dev/null; done
check "seven distinct runs" [ "$(printf '%s\n' "${RUNS[@]}" | sort -u | wc -l)" = 7 ]

runs() { curl -sf "$CAIRN_SERVER/api/v1/runs?dag=a$1"; }
ALL=$(runs "&limit=100" | jq -r '.runs[].run_id')
check "the whole list has the seven, newest first" \
    [ "$ALL" = "$(printf '%s\n' "${RUNS[@]}" | tac)" ]
check "  (their key order is not their creation order)" \
    [ "$(printf '%s\n' "${RUNS[@]}" | sort)" != "$(printf '%s\n' "${RUNS[@]}")" ]
check "  and a list that fits says next_cursor null" [ "$(runs "&limit=100" | jq -c .next_cursor)" = null ]
check "  also when it fits exactly" [ "$(runs "&limit=7" | jq -c '[(.runs | length), .next_cursor]')" = '[7,null]' ]

P1=$(runs "&limit=3")
C1=$(jq -r .next_cursor <<<"$P1")
check "a first page of 3 has a next cursor" bash -c '[ "$(jq ".runs | length" <<<"$1")" = 3 ] && [ "$2" != null ]' _ "$P1" "$C1"
# a run arrives while the client pages: it is newer, so it is not on the pages still to come
NEW=$("$CAIRN" trigger a)
wait_run "$NEW" a 60 >/dev/null
P2=$(runs "&limit=3&cursor=$C1")
C2=$(jq -r .next_cursor <<<"$P2")
P3=$(runs "&limit=3&cursor=$C2")
PAGED=$(for p in "$P1" "$P2" "$P3"; do jq -r '.runs[].run_id' <<<"$p"; done)
check "the pages hold each of the seven once, in order, the new run on none" [ "$PAGED" = "$ALL" ]
check "  the last page has one run and next_cursor null" \
    [ "$(jq -c '[(.runs | length), .next_cursor]' <<<"$P3")" = '[1,null]' ]
check "the new run heads a fresh first page" [ "$(runs "&limit=1" | jq -r '.runs[0].run_id')" = "$NEW" ]
check "paging composes with a state filter" \
    [ "$(runs "&state=success&limit=3&cursor=$C1" | jq -r '.runs[].run_id')" = "$(jq -r '.runs[].run_id' <<<"$P2")" ]

code() { curl -s -o "$T/answer" -w '%{http_code}' "$CAIRN_SERVER$1"; }
for bad in xyz r r12x r-3 12; do
    check "cursor '$bad' is a 400" [ "$(code "/api/v1/runs?dag=a&cursor=$bad")" = 400 ]
    check "  in the API's error shape" [ "$(jq -r .error.code "$T/answer")" = bad_request ]
done
check "  naming the cursor" grep -q "cursor 'xyz' is not one this API gave out" <("$CAIRN" runs list --cursor xyz 2>&1)

# the CLI
OUT=$("$CAIRN" runs list --dag a --limit 3)
HINT=$(sed -n 's/.*--cursor \([^ )]*\).*/\1/p' <<<"$OUT")
check "runs list --limit 3 prints three rows and the next page's cursor" \
    bash -c '[ "$(grep -c "^manual__\|^[a-z]" <<<"$1")" -ge 3 ] && [ -n "$2" ]' _ "$OUT" "$HINT"
check "  and --cursor gives the page after" \
    [ "$("$CAIRN" runs list --dag a --limit 3 --cursor "$HINT" --json | jq -r '.runs[].run_id')" = \
      "$(printf '%s\n' "$ALL" | sed -n 3,5p)" ]
check "  --json has next_cursor" [ "$("$CAIRN" runs list --dag a --limit 3 --json | jq -r .next_cursor)" = "$HINT" ]
check "  the last page prints no cursor" bash -c "! $CAIRN runs list --dag a --limit 100 | grep -q -- --cursor"

# ---- a run's task rows, a page at a time
{
    echo "dag: b"
    echo "tasks:"
    for i in $(seq 1 1001); do echo "  t$i: {command: [\"true\"]}"; done
} | put_dag b
check "the 1,001-task DAG loads" wait_until 30 bash -c "$CAIRN dags list --json | jq -e '.dags[] | select(.dag == \"b\")'"
RB=$("$CAIRN" trigger b)
run_page() { curl -sf "$CAIRN_SERVER/api/v1/runs/$RB?dag=b&tasks=all$1"; }
pages() { # every row, following next_cursor from 0 with limit $1
    local cur=0 n=0
    while [ "$cur" != null ]; do
        run_page "&limit=$1&cursor=$cur" >"$T/page"
        jq -r '.tasks[].task' "$T/page"
        cur=$(jq -r .next_cursor "$T/page")
        n=$((n + 1)); [ $n -lt 2000 ] || return 1
    done
}
NAMES=$(seq 1 1001 | sed 's/^/t/')
check "while the run goes, pages of 400 hold every task once, in the DAG's order" [ "$(pages 400)" = "$NAMES" ]
check "  answered from memory (the run has its change cursor)" [ "$(run_page "&limit=1" | jq 'has("cursor")')" = true ]
check "  a page is at most limit rows, with next_cursor" \
    [ "$(run_page "&limit=400&cursor=400" | jq -c '[(.tasks | length), .next_cursor, .tasks[0].task]')" = '[400,800,"t401"]' ]
check "  the last page has next_cursor null" \
    [ "$(run_page "&limit=400&cursor=800" | jq -c '[(.tasks | length), .next_cursor]')" = '[201,null]' ]
check "  a cursor past the end is an empty last page" \
    [ "$(run_page "&limit=5&cursor=5000" | jq -c '[(.tasks | length), .next_cursor]')" = '[0,null]' ]
for q in "limit=0" "limit=x" "limit=10001" "cursor=-1" "cursor=r3" "cursor="; do
    check "run page ?$q is a 400 bad_request" \
        [ "$(code "/api/v1/runs/$RB?dag=b&tasks=all&$q")/$(jq -r .error.code "$T/answer")" = 400/bad_request ]
done
check "without limit or cursor the big run is still summarised" \
    [ "$(curl -sf "$CAIRN_SERVER/api/v1/runs/$RB?dag=b" | jq -c '[.tasks_omitted, (.tasks | length)]')" = '[true,0]' ]
check "the big run succeeds" [ "$(wait_run "$RB" b 180)" = success ]
check "runs show --all lists every task" \
    [ "$("$CAIRN" runs show "$RB" --dag b --all --json | jq -c '[(.tasks | length), (.tasks | map(.state) | unique), has("next_cursor")]')" = '[1001,["success"],false]' ]
check "  and prints a row for each" [ "$("$CAIRN" runs show "$RB" --dag b --all | grep -c '^t[0-9]* *success')" = 1001 ]

kill_wait "$SCHED_PID"
start_scheduler s
check "after a restart the finished run is answered from the store (no change cursor)" \
    [ "$(run_page "&limit=1" | jq 'has("cursor")')" = false ]
check "read back from the store, pages of 300 hold every task once, in order" [ "$(pages 300)" = "$NAMES" ]
check "  each row as the whole answer has it" \
    [ "$(run_page "&limit=2&cursor=999" | jq -c '[.tasks[] | [.task, .state, .attempts]], .next_cursor')" = \
      "$("$CAIRN" runs show "$RB" --dag b --all --json | jq -c '[.tasks[999:][] | [.task, .state, .attempts]], null')" ]
check "  runs show --all still lists every task" \
    [ "$("$CAIRN" runs show "$RB" --dag b --all --json | jq '.tasks | length')" = 1001 ]
finish
