#!/usr/bin/env bash
# Prometheus metrics end to end: a real Prometheus (Debian's package) on
# 127.0.0.1 scrapes the scheduler's /metrics and a worker's --metrics every
# second while a DAG runs; the test then asks Prometheus's HTTP API for
# `up`, for task counters that moved, for histogram buckets and for a task
# metric from metrics.json, and `promtool check metrics` lints the raw
# output of both daemons.
source "$(dirname "$0")/lib.sh"

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    echo "not ok - prometheus and promtool are needed (scripts/install-deps.sh installs them)"
    exit 1
fi

put_dag m <<EOF
dag: m
tasks:
  train:
    outputs: [model.bin]
    metrics: metrics.json
    command: [sh, -c, 'printf model >\$CAIRN_OUTPUTS/model.bin;
      echo "{\"accuracy\": 0.875, \"loss\": 2}" >\$CAIRN_OUTPUTS/metrics.json']
  slow:
    needs: [train]
    command: [sleep, "1.2"]
  broken:
    command: [sh, -c, 'exit 3']
EOF

start_scheduler s
start_worker w1 --slots 2 --isolation none --metrics 127.0.0.1:0
WPORT=$(sed -n 's/.*CAIRN-METRICS worker metrics at http:\/\/127\.0\.0\.1:\([0-9]*\)\/metrics.*/\1/p' \
    "$T/w1.log" | tail -n 1)
check "the worker logs where its metrics are" [ -n "$WPORT" ]

# --- the raw exposition, linted ------------------------------------------
curl -sf "$CAIRN_SERVER/metrics" >"$T/sched0.txt"
check "promtool accepts the scheduler's /metrics before any run" \
    promtool check metrics <"$T/sched0.txt"
check "the scheduler answers in the text format 0.0.4" \
    grep -qi '^content-type: text/plain; version=0.0.4' \
    <(curl -sfI "$CAIRN_SERVER/metrics" | tr -d '\r')
check "the worker answers 404 outside /metrics" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WPORT/nope")" = 404 ]

# --- Prometheus, scraping both every second -------------------------------
PPORT=$(free_port)
mkdir -p "$T/prom"
cat >"$T/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: scheduler
    static_configs: [{targets: ["127.0.0.1:$HTTP_PORT"]}]
  - job_name: worker
    static_configs: [{targets: ["127.0.0.1:$WPORT"]}]
EOF
check "promtool accepts the scrape configuration" \
    promtool check config "$T/prom/prometheus.yml" >/dev/null
prometheus --config.file="$T/prom/prometheus.yml" --storage.tsdb.path="$T/prom/data" \
    --web.listen-address="127.0.0.1:$PPORT" >"$T/prom.log" 2>&1 &
PIDS+=("$!")

# query EXPR -> the first result's value ("" if none)
query() {
    curl -sfG "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
        jq -r '.data.result[0].value[1] // empty' 2>/dev/null || true
}
# wait_query EXPR WANT [SECONDS]: until the query gives WANT
wait_query() {
    local i v
    for i in $(seq 1 $((${3:-30} * 4))); do
        v=$(query "$1")
        [ "$v" = "$2" ] && return 0
        sleep 0.25
    done
    echo "# $1 = '${v:-}' (wanted $2)"
    return 1
}

check "Prometheus sees the scheduler up" wait_query 'up{job="scheduler"}' 1 40
check "Prometheus sees the worker up" wait_query 'up{job="worker"}' 1 20

RUN=$("$CAIRN" trigger m)
check "the run failed (broken fails)" [ "$(wait_run "$RUN" m 30)" = failed ]
"$CAIRN" runs show "$RUN" --dag m --json >/dev/null

check "Prometheus: train counted as succeeded once" \
    wait_query 'cairn_task_finished_total{dag="m",task="train",state="success"}' 1
check "Prometheus: broken counted as failed once" \
    wait_query 'cairn_task_finished_total{dag="m",task="broken",state="failed"}' 1
check "Prometheus: the run counted as failed" \
    wait_query 'cairn_runs_finished_total{dag="m",state="failed"}' 1
# slow sleeps 1.2 s: above the 1 s bucket, within 2.5 s
check "Prometheus: slow's duration is not in the 1 s bucket" \
    wait_query 'cairn_task_duration_seconds_bucket{dag="m",task="slow",le="1"}' 0
check "Prometheus: slow's duration is in the 2.5 s bucket" \
    wait_query 'cairn_task_duration_seconds_bucket{dag="m",task="slow",le="2.5"}' 1
check "Prometheus: three tasks waited for a lease (+Inf bucket)" \
    wait_query 'cairn_schedule_delay_seconds_bucket{le="+Inf"}' 3
check "Prometheus: the task metric from metrics.json" \
    wait_query 'cairn_task_metric{dag="m",task="train",name="accuracy"}' 0.875
check "Prometheus: the worker counted two successes" \
    wait_query 'cairn_worker_leases_done_total{result="success"}' 2
check "Prometheus: the worker counted one failure" \
    wait_query 'cairn_worker_leases_done_total{result="failed"}' 1
check "Prometheus: the worker stored 2 outputs" \
    wait_query 'cairn_worker_outputs_stored_total' 2
check "Prometheus: one live worker with 2 free slots" \
    wait_query 'cairn_worker_slots{state="free"}' 2
check "Prometheus: the loop's iterations are counted" \
    wait_query '(cairn_loop_iteration_seconds_count > 0) > bool 0' 1
check "Prometheus: trigger requests counted by route pattern" \
    wait_query 'cairn_http_requests_total{route="/api/v1/dags/{dag}/trigger",code="201"}' 1

# --- the raw exposition after the run -------------------------------------
curl -sf "$CAIRN_SERVER/metrics" >"$T/sched.txt"
curl -sf "http://127.0.0.1:$WPORT/metrics" >"$T/worker.txt"
check "promtool accepts the scheduler's /metrics after the run" \
    promtool check metrics <"$T/sched.txt"
check "promtool accepts the worker's /metrics" promtool check metrics <"$T/worker.txt"
check "no run id is a label value" bash -c "! grep -qF '$RUN' '$T/sched.txt'"
check "the run lookup is counted under its pattern" \
    grep -q '^cairn_http_requests_total{route="/api/v1/runs/{run}",code="200"} [1-9]' "$T/sched.txt"
check "the state store's sizes are there" grep -q '^cairn_store_bytes{kind="map"} [1-9]' "$T/sched.txt"
check "the artifact store holds the outputs' bytes" \
    grep -q '^cairn_artifact_store_bytes [1-9]' "$T/sched.txt"
check "the worker counts the outputs' bytes" \
    grep -qE '^cairn_worker_output_bytes_total [1-9]' "$T/worker.txt"

# --- a DAG of more than 1,000 tasks: one series for its tasks, not 1,001 ---
{
    echo "dag: wide"
    echo "tasks:"
    for i in $(seq 1 1001); do echo "  t$i: {command: [\"true\"]}"; done
} | put_dag wide
wait_until 30 bash -c '"$0" dags list --json | jq -e ".dags[] | select(.dag == \"wide\")"' "$CAIRN"
WR=$("$CAIRN" trigger wide)
check "the 1,001-task run succeeds" test "$(wait_run "$WR" wide 300)" = success
curl -sf "$CAIRN_SERVER/metrics" >"$T/wide.txt"
check "its finished tasks are counted under task=\"_all\"" \
    grep -q '^cairn_task_finished_total{dag="wide",task="_all",state="success"} 1001$' "$T/wide.txt"
check "  with no series of its own per task" bash -c "! grep -q 'dag=\"wide\",task=\"t[0-9]' '$T/wide.txt'"
check "  and the exposition stays small ($(wc -l <"$T/wide.txt") lines)" \
    test "$(wc -l <"$T/wide.txt")" -lt 1000
check "promtool accepts it" promtool check metrics <"$T/wide.txt"

# --- after a restart: the latest run's task metrics come from the store ---
kill_wait "$SCHED_PID"
start_scheduler s
curl -sf "$CAIRN_SERVER/metrics" >"$T/sched2.txt"
check "after a restart the latest run's metric is exported again" \
    grep -q '^cairn_task_metric{dag="m",task="train",name="accuracy"} 0.875$' "$T/sched2.txt"
check "... with the others of its task" \
    grep -q '^cairn_task_metric{dag="m",task="train",name="loss"} 2$' "$T/sched2.txt"
check "counters start again from zero" \
    bash -c "! grep -q '^cairn_task_finished_total' '$T/sched2.txt'"
check "promtool accepts it" promtool check metrics <"$T/sched2.txt"

finish
