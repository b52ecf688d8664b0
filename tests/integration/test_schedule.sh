#!/usr/bin/env bash
# Scheduled runs with the test-only fake clock (CAIRN_NOW): logical dates and
# data intervals, catchup true and false, restart without double fire or gap,
# pause and unpause, next-runs.
source "$(dirname "$0")/lib.sh"

put_dag daily <<'YAML'
dag: daily
schedule: "0 6 * * *"
start_date: 2026-01-01
catchup: true
tasks:
  show:
    command: [sh, -c, "echo ds={{ ds }} start={{ data_interval_start }} end={{ data_interval_end }}"]
YAML
put_dag latest <<'YAML'
dag: latest
schedule: "@hourly"
start_date: 2026-01-01
catchup: false
tasks:
  t: {command: [true]}
YAML
put_dag weekly <<'YAML'
dag: weekly
schedule: "@weekly"
start_date: 2025-12-20
catchup: true
tasks:
  t: {command: [sh, -c, "echo ds={{ ds }} end={{ data_interval_end }}"]}
YAML
put_dag hourly <<'YAML'
dag: hourly
schedule: "15 * * * *"
start_date: 2026-01-04T09:00:00Z
catchup: true
tasks:
  t: {command: [sh, -c, "echo ts={{ ts }} end={{ data_interval_end }}"]}
YAML
put_dag berlin <<'YAML'
dag: berlin
schedule: "30 2 * * *"
timezone: Europe/Berlin
start_date: 2025-03-27
end_date: 2025-03-31T23:00:00+02:00
catchup: true
tasks:
  t: {command: [sh, -c, "echo {{ ts }}"]}
YAML

runs_of() { "$CAIRN" runs list --dag "$1" --json | jq -r '.runs[] | "\(.run_type) \(.run_id)"' | sort; }
count_of() { "$CAIRN" runs list --dag "$1" --json | jq '.runs | length'; }
count_is() { [ "$(count_of "$1")" = "$2" ]; }

export CAIRN_NOW=2026-01-04T12:00:00Z
start_scheduler s1
start_worker w1 --isolation none
check "catchup: three daily runs are due (Jan 1, 2, 3 at 06:00)" wait_until 10 count_is daily 3
check "run ids say what made them" diff <(runs_of daily) <(printf '%s\n' \
    "scheduled scheduled__2026-01-01T06:00:00Z" "scheduled scheduled__2026-01-02T06:00:00Z" \
    "scheduled scheduled__2026-01-03T06:00:00Z")
check "catchup false: only the latest complete hour" wait_until 10 count_is latest 1
check "  which is 11:00-12:00" test "$(runs_of latest)" = "scheduled scheduled__2026-01-04T11:00:00Z"
r=scheduled__2026-01-02T06:00:00Z
check "the run finishes" test "$(wait_run $r daily)" = success
out=$("$CAIRN" logs "$r" show --dag daily)
check "templates render the data interval [Jan 2 06:00, Jan 3 06:00)" grep -q \
    "ds=2026-01-02 start=2026-01-02T06:00:00+00:00 end=2026-01-03T06:00:00+00:00" <<<"$out"
check "Berlin: one run a day from start_date to end_date" wait_until 10 count_is berlin 5
check "02:30 falls in the 2025-03-30 spring-forward gap: it fires once, at 03:00 CEST" diff \
    <("$CAIRN" runs list --dag berlin --json | jq -r '.runs[].logical_date' | sort) \
    <(printf '%s\n' 2025-03-27T01:30:00Z 2025-03-28T01:30:00Z 2025-03-29T01:30:00Z \
        2025-03-30T01:00:00Z 2025-03-31T00:30:00Z)
check "weekly: intervals start on Sundays since start_date, the last complete one ends Jan 4" diff \
    <("$CAIRN" runs list --dag weekly --json | jq -r '.runs[].logical_date' | sort) \
    <(printf '%s\n' 2025-12-21T00:00:00Z 2025-12-28T00:00:00Z)
check "  a weekly run finishes" test "$(wait_run scheduled__2025-12-28T00:00:00Z weekly)" = success
check "  its interval is [Sunday, next Sunday)" grep -q "ds=2025-12-28 end=2026-01-04T00:00:00+00:00" \
    <("$CAIRN" logs scheduled__2025-12-28T00:00:00Z t --dag weekly)
check "hourly at :15 from 09:00: 09:15, 10:15 complete by 12:00 (11:15 is not)" diff \
    <("$CAIRN" runs list --dag hourly --json | jq -r '.runs[].logical_date' | sort) \
    <(printf '%s\n' 2026-01-04T09:15:00Z 2026-01-04T10:15:00Z)
check "next-runs names the next logical date and when it is created" \
    bash -c '"$0" dags next-runs daily -n 2 | grep -q "2026-01-04T06:00:00Z *2026-01-05T06:00:00Z"' "$CAIRN"

# restart later: the missed Jan 4 and Jan 5 come, nothing twice
kill_wait "$SCHED_PID" KILL
export CAIRN_NOW=2026-01-06T07:00:00Z
start_scheduler s1
check "after a restart the missed intervals are created" wait_until 10 count_is daily 5
check "no interval twice" test "$(runs_of daily | sort | uniq -d | wc -l)" = 0
check "catchup false after restart: the latest hour only" wait_until 10 count_is latest 2

# pause: no scheduled runs, manual triggers still work; unpause catches up
"$CAIRN" dags pause daily >/dev/null
check "dags list shows paused" bash -c '"$0" dags list --json | jq -e ".dags[] | select(.dag==\"daily\") | .paused"' "$CAIRN"
kill_wait "$SCHED_PID" TERM
export CAIRN_NOW=2026-01-08T07:00:00Z
start_scheduler s1
sleep 1.5
check "a paused DAG gets no scheduled runs (pause survives restart)" test "$(count_of daily)" = 5
check "manual trigger of a paused DAG works" "$CAIRN" trigger daily --wait
"$CAIRN" dags unpause daily >/dev/null
check "unpaused, the missed days are created" wait_until 10 count_is daily 8
check "unknown DAG: pause fails" bash -c '! "$0" dags pause nope 2>/dev/null' "$CAIRN"
finish
