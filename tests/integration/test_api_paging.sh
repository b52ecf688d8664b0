#!/usr/bin/env bash
# Paging through big answers with limit and next_cursor, through the real
# scheduler and CLI: the runs list, a page at a time, returns every run
# exactly once and in order (newest first), also when a run is triggered
# between two pages; the last page says next_cursor null; a cursor the API
# did not give out is a 400 in the API's error shape. `cairn runs list
# --limit --cursor` prints the next page's cursor (in --json: next_cursor).
source "$(dirname "$0")/lib.sh"

put_dag a <<'YAML'
dag: a
tasks:
  t1: {command: ["true"]}
YAML

start_scheduler s
start_worker w1 --slots 2 --isolation none

RUNS=()
for i in 1 2 3 4 5 6 7; do
    RUNS+=("$("$CAIRN" trigger a)")
done
for r in "${RUNS[@]}"; do wait_run "$r" a 60 >/dev/null; done
check "seven distinct runs" [ "$(printf '%s\n' "${RUNS[@]}" | sort -u | wc -l)" = 7 ]

runs() { curl -sf "$CAIRN_SERVER/api/v1/runs?dag=a$1"; }
ALL=$(runs "&limit=100" | jq -r '.runs[].run_id')
check "the whole list has the seven, newest first" \
    [ "$ALL" = "$(printf '%s\n' "${RUNS[@]}" | tac)" ]
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
finish
