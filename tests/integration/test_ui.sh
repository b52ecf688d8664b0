#!/usr/bin/env bash
# The web UI: the page the scheduler serves parses as JavaScript, and each
# view renders real data from a live scheduler (Node with a stub DOM).
source "$(dirname "$0")/lib.sh"

put_dag ui <<'YAML'
dag: ui
schedule: "@daily"
start_date: 2026-01-01
catchup: false
tasks:
  score:
    command: [sh, -c, "echo '{\"acc\": 0.93}' > $CAIRN_OUTPUTS/m.json"]
    outputs: [m.json]
    metrics: m.json
YAML
export CAIRN_NOW=2026-01-10T12:00:00Z
start_scheduler s
start_worker w1 --isolation none
r=$("$CAIRN" trigger ui --logical-date 2026-01-05)
check "a run succeeds" test "$(wait_run "$r" ui)" = success
rc=0; "$CAIRN" backfill ui --from 2026-01-01 --to 2026-01-02 --wait >/dev/null 2>&1 || rc=$?
check "a backfill succeeds" test "$rc" = 0
curl -sf "$CAIRN_SERVER/" >"$T/ui.html"
sed -n '/<script>/,/<\/script>/p' "$T/ui.html" | sed '1d;$d' >"$T/ui.js"
check "the page has its script" test -s "$T/ui.js"
check "the script parses" node --check "$T/ui.js"
out=$(node "$CAIRN_SRC/tests/ui/views.js" "$T/ui.js" "$CAIRN_SERVER" ui "$r" bf-1 2>&1) && st=0 || st=$?
echo "$out"
check "every view renders ($(grep -c '^ok' <<<"$out") checks)" test "$st" = 0
finish
