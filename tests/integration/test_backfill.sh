#!/usr/bin/env bash
# Backfills with the real scheduler and worker (fake clock, isolation none):
# inclusive ranges, dry run, idempotence, reprocess modes, the sliding window
# under max_active_runs, fairness with manual runs, cancel, restart, errors.
source "$(dirname "$0")/lib.sh"

put_dag bf <<'YAML'
dag: bf
schedule: "0 6 * * *"
start_date: 2025-12-01
catchup: false
tasks:
  a: {command: [sh, -c, "echo a {{ ds }}"]}
  b: {command: [sh, -c, "echo b ds={{ ds }} end={{ data_interval_end }}"], needs: [a]}
  c: {command: [sh, -c, "echo c"], needs: [b]}
YAML
put_dag flaky <<YAML
dag: flaky
schedule: "0 0 * * *"
start_date: 2026-01-01
catchup: false
tasks:
  prep: {command: [sh, -c, "echo prep"]}
  load: {command: [sh, -c, "[ {{ ds }} != 2026-01-02 ] || [ -e $T/fixed ]"], needs: [prep]}
  report: {command: [sh, -c, "echo report"], needs: [load]}
YAML
put_dag slow <<'YAML'
dag: slow
schedule: "@daily"
start_date: 2026-01-01
catchup: false
max_active_runs: 3
tasks:
  nap: {command: [sh, -c, "sleep 0.4"]}
YAML
put_dag longnap <<'YAML'
dag: longnap
schedule: "@daily"
start_date: 2026-01-01
catchup: false
max_active_runs: 1
tasks:
  nap: {command: [sh, -c, "sleep 0.6 # longnap-{{ ds }}"]}
YAML
put_dag berlin <<'YAML'
dag: berlin
schedule: "30 2 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
catchup: false
params: {region: eu}
tasks:
  t: {command: [sh, -c, "echo ds={{ ds }} region={{ params.region }}"]}
YAML
put_dag manual_only <<'YAML'
dag: manual_only
tasks:
  t: {command: [true]}
YAML

runs_of() { "$CAIRN" runs list --dag "$1" --limit 1000 --json | jq -r '.runs[].run_id' | sort; }
count_of() { "$CAIRN" runs list --dag "$1" --limit 1000 --json | jq '.runs | length'; }
count_is() { [ "$(count_of "$1")" = "$2" ]; }
bfj() { "$CAIRN" backfill show "$1" --json | jq -r "$2"; }
# most runs of DAG whose [started_at, ended_at] overlap at one instant
max_overlap() {
    "$CAIRN" runs list --dag "$1" --limit 1000 --json | /usr/bin/python3 -c '
import json, sys
ev = []
for r in json.load(sys.stdin)["runs"]:
    if r["started_at"] and r["ended_at"]:
        ev += [(r["started_at"], 1), (r["ended_at"], -1)]
cur = best = 0
for _, d in sorted(ev, key=lambda e: (e[0], e[1])):
    cur += d
    best = max(best, cur)
print(best)'
}

export CAIRN_NOW=2026-01-10T12:00:00Z
start_scheduler s1
start_worker w1 --isolation none --slots 8
check "the schedule made its one run (catchup: false)" wait_until 10 count_is bf 1

# --- dry run, then the real thing
out=$("$CAIRN" backfill bf --from 2026-01-01 --to 2026-01-04 --dry-run)
check "dry run: four new logical dates, Jan 1-4 at 06:00 (bare dates are whole days)" diff \
    <(grep '  new$' <<<"$out" | cut -d' ' -f1) \
    <(printf '%s\n' 2026-01-01T06:00:00Z 2026-01-02T06:00:00Z 2026-01-03T06:00:00Z 2026-01-04T06:00:00Z)
check "dry run creates nothing" test "$(count_of bf)" = 1
rc=0; out=$("$CAIRN" backfill bf --from 2026-01-01 --to 2026-01-04 --wait 2>&1) || rc=$?
check "backfill --wait exits 0 when every run succeeded" test "$rc" = 0
check "  and says so" grep -q "backfill bf-1 success" <<<"$out"
check "  printing plain progress lines off a terminal" grep -q "^bf-1: 4/4 done" <<<"$out"
check "four backfill runs exist, one per date" diff <(runs_of bf | grep backfill__) \
    <(printf 'backfill__%s\n' 2026-01-01T06:00:00Z 2026-01-02T06:00:00Z 2026-01-03T06:00:00Z 2026-01-04T06:00:00Z)
check "run type is backfill" test "$(rj backfill__2026-01-03T06:00:00Z bf .run_type)" = backfill
check "each run renders its own dates" grep -q "b ds=2026-01-03 end=2026-01-04T06:00:00+00:00" \
    <("$CAIRN" logs backfill__2026-01-03T06:00:00Z b --dag bf)

# --- idempotence and overlap with the scheduled run
rc=0; out=$("$CAIRN" backfill bf --from 2026-01-01 --to 2026-01-04 --wait 2>&1) || rc=$?
check "the same backfill again: exit 0" test "$rc" = 0
check "  it created nothing" test "$(count_of bf)" = 5
check "  and counted four skipped" test "$(bfj bf-2 .progress.skipped)" = 4
out=$("$CAIRN" backfill bf --from 2026-01-08T06:00:00Z --to 2026-01-09T06:00:00Z --dry-run)
check "timestamps are inclusive ends; the scheduled run's date is skipped" diff <(echo "$out" | head -2) \
    <(printf '%s\n' "2026-01-08T06:00:00Z  new" \
        "2026-01-09T06:00:00Z  exists: skip (scheduled__2026-01-09T06:00:00Z, success)")
check "a date with a run cannot be triggered again" bash -c \
    '! "$0" trigger bf --logical-date 2026-01-02T06:00:00Z 2>&1 | grep -q x; "$0" trigger bf --logical-date 2026-01-02T06:00:00Z 2>&1 | grep -q "already has a run for logical date 2026-01-02T06:00:00Z: backfill__2026-01-02T06:00:00Z"' "$CAIRN"
check "  and the trigger exits 1" bash -c '! "$0" trigger bf --logical-date 2026-01-02 2>/dev/null' "$CAIRN"

# --- time zones, params, paused DAGs
out=$("$CAIRN" backfill berlin --from 2026-03-28 --to 2026-03-30 --dry-run)
check "bare dates are days in the DAG's time zone; 02:30 on the spring-forward day runs at 03:00 CEST" diff \
    <(grep '  new$' <<<"$out" | cut -d' ' -f1) \
    <(printf '%s\n' 2026-03-28T01:30:00Z 2026-03-29T01:00:00Z 2026-03-30T00:30:00Z)
"$CAIRN" dags pause berlin >/dev/null
rc=0; "$CAIRN" backfill berlin --from 2026-03-28 --to 2026-03-30 --param region=us --wait >/dev/null 2>&1 || rc=$?
check "a paused DAG still backfills (pause stops the schedule only)" test "$rc" = 0
check "  --param reaches every run" test "$("$CAIRN" runs list --dag berlin --json |
    jq -r '[.runs[] | select(.run_type == "backfill") | .params.region] | unique | join(",")')" = us
check "  and renders in its command" grep -q "ds=2026-03-29 region=us" \
    <("$CAIRN" logs backfill__2026-03-29T01:00:00Z t --dag berlin)

# --- reprocess modes
rc=0; out=$("$CAIRN" backfill flaky --from 2026-01-01 --to 2026-01-03 --wait 2>&1) || rc=$?
check "a backfill with a failed run exits 1" test "$rc" = 1
check "  the failing date failed" test "$(run_state backfill__2026-01-02T00:00:00Z flaky)" = failed
check "  the others succeeded" test "$(run_state backfill__2026-01-03T00:00:00Z flaky)" = success
check "  backfill state failed with 1 failed" test "$("$CAIRN" backfill list --dag flaky --json | jq -r '.backfills[0] | .state + " " + (.progress.failed|tostring)')" = "failed 1"
out=$("$CAIRN" backfill flaky --from 2026-01-01 --to 2026-01-03 --reprocess failed --dry-run)
check "dry run: reprocess failed reruns only the failed date" test \
    "$(grep -c '^2026.*rerun' <<<"$out") $(grep -c '^2026.*skip' <<<"$out")" = "1 2"
touch "$T/fixed"
rc=0; out=$("$CAIRN" backfill flaky --from 2026-01-01 --to 2026-01-03 --reprocess failed --wait 2>&1) || rc=$?
check "reprocess failed: exit 0 once the cause is fixed" test "$rc" = 0
r=backfill__2026-01-02T00:00:00Z
check "  the failed run succeeded" test "$(run_state $r flaky)" = success
check "  the failed task ran again (attempt 2)" test "$(ti attempts $r flaky load)" = 2
check "  its downstream ran (attempt 1, it never ran before)" test "$(ti attempts $r flaky report)" = 1
check "  the upstream success was reused (still attempt 1)" test "$(ti attempts $r flaky prep)" = 1
check "  the successful runs were left alone" test "$(ti attempts backfill__2026-01-03T00:00:00Z flaky prep)" = 1
rc=0; "$CAIRN" backfill flaky --from 2026-01-03 --to 2026-01-03 --reprocess all --wait >/dev/null 2>&1 || rc=$?
check "reprocess all: reruns a successful run in full" test \
    "$rc $(ti attempts backfill__2026-01-03T00:00:00Z flaky prep) $(ti attempts backfill__2026-01-03T00:00:00Z flaky report)" = "0 2 2"
check "runs list --json has the documented fields" test "$("$CAIRN" runs list --dag flaky --json |
    jq -r '.runs[0] | [has("run_id"), has("dag"), has("state"), has("logical_date"), has("run_type"), has("started_at"), has("ended_at")] | all')" = true

# --- the window: max_active_runs of the DAG (3) and of the backfill (2)
"$CAIRN" backfill slow --from 2026-01-01 --to 2026-01-06 --wait >/dev/null 2>&1
check "six runs under the DAG's max_active_runs 3" test "$(count_of slow)" = 7
check "  never more than 3 at once (overlap of start/end times)" test "$(max_overlap slow)" -le 3
check "  but more than one at once (a window, not one by one)" test "$(max_overlap slow)" -ge 2
"$CAIRN" backfill slow --from 2025-12-01 --to 2025-12-31 --max-active-runs 2 >/dev/null 2>&1 || true
check "a range before start_date has no logical dates: refused" bash -c \
    '"$0" backfill slow --from 2025-12-01 --to 2025-12-31 2>&1 | grep -q "no logical date"' "$CAIRN"
"$CAIRN" backfill slow --from 2026-01-07 --to 2026-01-09 --max-active-runs 1 --wait >/dev/null 2>&1
check "--max-active-runs 1: the three runs never overlap" test "$("$CAIRN" runs list --dag slow --limit 1000 --json |
    jq '[.runs[] | select(.logical_date >= "2026-01-07")] | length')" = 3
overlap=$("$CAIRN" runs list --dag slow --limit 1000 --json | /usr/bin/python3 -c '
import json, sys
rs = sorted((r["started_at"], r["ended_at"]) for r in json.load(sys.stdin)["runs"] if r["logical_date"] >= "2026-01-07")
print(sum(1 for a, b in zip(rs, rs[1:]) if b[0] < a[1]))')
check "  (checked pairwise: $overlap overlaps)" test "$overlap" = 0

# --- fairness: a manual run waits for one slot, not for the whole backfill
id=$("$CAIRN" backfill longnap --from 2026-01-01 --to 2026-01-06 2>/dev/null)
wait_until 10 bash -c '"$0" runs list --dag longnap --state running --json | jq -e ".runs | length == 1"' "$CAIRN"
m=$("$CAIRN" trigger longnap)
"$CAIRN" backfill show "$id" >/dev/null
wait_until 30 bash -c '"$0" backfill show "$1" --json | jq -e ".state == \"success\""' "$CAIRN" "$id"
after=$("$CAIRN" runs list --dag longnap --limit 100 --json | jq --arg m "$m" \
    '(.runs[] | select(.run_id == $m) | .started_at) as $ms | [.runs[] | select(.run_type == "backfill" and .started_at > $ms)] | length')
check "the manual run started before most of the backfill ($after of 6 backfill runs after it)" test "$after" -ge 3
check "  and no two longnap runs overlapped (max_active_runs 1)" test "$(max_overlap longnap)" = 1

# --- cancel (the tasks' command lines name $T, so that the processes of
# another test run on this machine do not count)
put_dag sleepy <<YAML
dag: sleepy
schedule: "@daily"
start_date: 2026-01-01
end_date: 2026-01-08
catchup: false
tasks:
  nap: {command: [sh, -c, "sleep 30 # sleepy-marker-$T-{{ ds }}"]}
YAML
wait_until 10 bash -c '"$0" dags list --json | jq -e ".dags[] | select(.dag == \"sleepy\")"' "$CAIRN"
id=$("$CAIRN" backfill sleepy --from 2026-01-01 --to 2026-01-08 --max-active-runs 2 2>/dev/null)
check "a slow backfill runs two at a time" wait_until 10 bash -c \
    '[ "$("$0" runs list --dag sleepy --state running --json | jq "[.runs[] | select(.run_type == \"backfill\")] | length")" = 2 ] && pgrep -f "sleepy-marker-$1-2026-01-0[2]" >/dev/null' "$CAIRN" "$T"
out=$("$CAIRN" backfill cancel "$id")
check "backfill cancel answers" grep -q "backfill $id cancelled" <<<"$out"
check "  its state is cancelled" test "$(bfj "$id" .state)" = cancelled
check "  its running runs are cancelled" test "$("$CAIRN" runs list --dag sleepy --state cancelled --json | jq '.runs | length')" -ge 2
check "  their processes are stopped" wait_until 10 bash -c '! pgrep -f "sleepy-marker-$0-2026-01-0[12]"' "$T"
check "  no further run is created" bash -c 'sleep 1; [ "$("$0" runs list --dag sleepy --limit 100 --json | jq "[.runs[] | select(.run_type == \"backfill\")] | length")" = 2 ]' "$CAIRN"
check "  cancelling again is an error" bash -c '! "$0" backfill cancel "$1" 2>/dev/null' "$CAIRN" "$id"

# --- a scheduler killed mid-backfill resumes where it was
id=$("$CAIRN" backfill slow --from 2026-01-10 --to 2026-01-17 --max-active-runs 1 2>/dev/null)
wait_until 20 bash -c '[ "$("$0" backfill show "$1" --json | jq .progress.success)" -ge 2 ]' "$CAIRN" "$id"
kill_wait "$SCHED_PID" KILL
start_scheduler s1
check "after SIGKILL the backfill is still there, running" test "$(bfj "$id" .state)" = running
check "  and finishes" wait_until 40 bash -c '"$0" backfill show "$1" --json | jq -e ".state == \"success\""' "$CAIRN" "$id"
check "  with exactly one run per date, eight in all" test "$("$CAIRN" runs list --dag slow --limit 1000 --json |
    jq '[.runs[] | select(.logical_date >= "2026-01-10" and .logical_date < "2026-01-18")] | length')" = 8
check "  never two at once (the window held across the restart)" test "$("$CAIRN" runs list --dag slow --limit 1000 --json | /usr/bin/python3 -c '
import json, sys
rs = sorted((r["started_at"], r["ended_at"]) for r in json.load(sys.stdin)["runs"] if "2026-01-10" <= r["logical_date"] < "2026-01-18")
print(sum(1 for a, b in zip(rs, rs[1:]) if b[0] < a[1]))')" = 0
check "backfill list shows every backfill" test "$("$CAIRN" backfill list --json | jq '.backfills | length')" -ge 8

# --- errors
err() { "$CAIRN" backfill "$@" 2>&1 >/dev/null; }
check "unknown DAG" grep -q "no DAG 'nope'" <<<"$(err nope --from 2026-01-01 --to 2026-01-02)"
check "a DAG without a schedule" grep -q "has no schedule" <<<"$(err manual_only --from 2026-01-01 --to 2026-01-02)"
check "from after to" grep -q "is after --to" <<<"$(err bf --from 2026-01-05 --to 2026-01-02)"
check "a bad date" grep -q "is not a date" <<<"$(err bf --from 2026-13-01 --to 2026-01-02)"
check "an unknown param" grep -q "unknown param" <<<"$(err bf --from 2026-01-01 --to 2026-01-02 --param nope=1)"
rc=0; "$CAIRN" backfill bf --from 2026-01-01 --to 2026-01-02 --reprocess some >/dev/null 2>&1 || rc=$?
check "a bad --reprocess is a usage error (2)" test "$rc" = 2
put_dag minutely <<'YAML'
dag: minutely
schedule: "* * * * *"
start_date: 2000-01-01
catchup: false
tasks:
  t: {command: [true]}
YAML
wait_until 10 bash -c '"$0" dags list --json | jq -e ".dags[] | select(.dag == \"minutely\")"' "$CAIRN"
check "a range with millions of ticks is refused at once" grep -q "more than 100000 logical dates" \
    <<<"$(err minutely --from 2000-01-01 --to 2025-12-31)"
check "  and the scheduler still answers" curl -sf "$CAIRN_SERVER/api/v1/health" -o /dev/null
finish
