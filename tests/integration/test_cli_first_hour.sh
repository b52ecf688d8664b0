#!/usr/bin/env bash
# What a new user trips over in the CLI, each a regression check: a backfill
# that was cancelled counts its runs as cancelled, not failed.
source "$(dirname "$0")/lib.sh"

put_dag bfc <<'YAML'
dag: bfc
schedule: "@daily"
start_date: 2026-01-01
end_date: 2026-01-08
catchup: false
defaults: {retries: 0}
tasks:
  nap: {command: [sh, -c, "if [ {{ ds }} = 2026-01-01 ]; then exit 1; fi; sleep 30 # bfc-marker-{{ ds }}"]}
YAML
put_dag flaky <<YAML
dag: flaky
defaults: {retries: 0}
tasks:
  prep: {command: [sh, -c, "echo prep"]}
  work:
    needs: [prep]
    command: [sh, -c, "echo err-1 >&2; echo err-2 >&2; sleep 0.5; [ -e $T/fixed ] || exit 3"]
  after: {needs: [work], command: ["true"]}
YAML
export CAIRN_NOW=2026-01-10T12:00:00Z
start_scheduler s
start_worker w1 --isolation none --slots 4
wait_until 10 bash -c '"$0" dags list --json | jq -e "[.dags[] | select(.dag == \"bfc\" or .dag == \"flaky\")] | length == 2"' "$CAIRN"

# --- a cancelled backfill: its runs are cancelled, not failed
"$CAIRN" backfill bfc --from 2026-01-01 --to 2026-01-04 --max-active-runs 2 --wait \
    >"$T/bf-wait.out" 2>&1 &
bf_wait=$!
PIDS+=("$bf_wait")
id=
wait_until 10 bash -c '"$0" backfill list --dag bfc --json | jq -e ".backfills | length == 1"' "$CAIRN"
id=$("$CAIRN" backfill list --dag bfc --json | jq -r '.backfills[0].id')
# (the [2] keeps pgrep from finding this very command line)
check "the backfill runs two dates at a time" wait_until 20 bash -c \
    'pgrep -f bfc-marker-2026-01-0[2] >/dev/null && pgrep -f bfc-marker-2026-01-0[3] >/dev/null'
out=$("$CAIRN" backfill cancel "$id")
check "backfill cancel counts the cancelled runs as cancelled" \
    grep -q "backfill $id cancelled: 3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped" <<<"$out"
check "  the API agrees (1 failed, 2 cancelled)" \
    test "$("$CAIRN" backfill show "$id" --json | jq -c '[.progress.failed, .progress.cancelled]')" = "[1,2]"
check "  backfill show" grep -q "^progress      3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped$" \
    <<<"$("$CAIRN" backfill show "$id")"
check "  backfill list" grep -q "$id .* 3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped" \
    <<<"$("$CAIRN" backfill list --dag bfc)"
kill_wait "$bf_wait" 0 # (signal 0: only wait for it)
check "  backfill --wait ends, exit 1 (not every run succeeded)" test "$EXIT_STATUS" = 1
check "  its last progress line counts them as cancelled" \
    grep -q "^$id: 3/4 done, 0 running, 0 queued, 1 failed, 2 cancelled, 0 skipped$" "$T/bf-wait.out"
check "  and it says how the backfill ended" grep -q "^backfill $id cancelled in " "$T/bf-wait.out"

finish
