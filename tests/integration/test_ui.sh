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

# The page is built from scheduler/ui/ (cmake/embed.cmake): index.html with the
# file of each style sheet line in a <style>, and the files of its script lines
# in one <script>, an empty line between two. Expanded here on its own, it must
# be the served page byte for byte, so the embedded copy cannot go stale.
expand_page() { # expand_page DIR
    local line in_script=0
    local css='^<link rel="stylesheet" href="([A-Za-z0-9_.-]+)">$'
    local js='^<script src="([A-Za-z0-9_.-]+)"></script>$'
    while IFS= read -r line; do
        if [[ $line =~ $js ]]; then
            if [ "$in_script" = 0 ]; then echo "<script>"; else echo; fi
            in_script=1
            cat "$1/${BASH_REMATCH[1]}"
            continue
        fi
        if [ "$in_script" = 1 ]; then echo "</script>"; in_script=0; fi
        if [[ $line =~ $css ]]; then
            echo "<style>"; cat "$1/${BASH_REMATCH[1]}"; echo "</style>"
        else
            printf '%s\n' "$line"
        fi
    done <"$1/index.html"
    if [ "$in_script" = 1 ]; then echo "</script>"; fi
}
expand_page "$CAIRN_SRC/scheduler/ui" >"$T/ui-expected.html"
check "index.html names its style sheet and scripts" \
    bash -c 'grep -q "^<link rel=\"stylesheet\"" "$1" && grep -q "^<script src=" "$1"' _ \
    "$CAIRN_SRC/scheduler/ui/index.html"
check "the served page is scheduler/ui/ as it is now, byte for byte" \
    cmp "$T/ui-expected.html" "$T/ui.html"
outside='<link|<script [^>]|(src|action)="?(https?:)?//|(url|fetch|import)\(["'"'"'`]?(https?:)?//'
check "the served page loads nothing from elsewhere" \
    bash -c '! grep -Eiq "$1" "$2"' _ "$outside" "$T/ui.html"
finish
