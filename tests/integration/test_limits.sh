#!/usr/bin/env bash
# Concurrency limits and worker selection through the real scheduler and
# workers (isolation none): max_active_runs, max_active_tasks and task
# labels against worker --labels.
source "$(dirname "$0")/lib.sh"

put_dag serial <<'EOF'
dag: serial
max_active_runs: 1
tasks:
  work: {command: [sleep, "1"]}
EOF

put_dag wide <<EOF
dag: wide
max_active_tasks: 2
defaults:
  command: [sh, -c, 'echo "start \$(date +%s.%N)" >>$T/wide.\$CAIRN_TASK; sleep 1;
    echo "end \$(date +%s.%N)" >>$T/wide.\$CAIRN_TASK']
tasks: {t1: {}, t2: {}, t3: {}, t4: {}, t5: {}}
EOF

put_dag routed <<'EOF'
dag: routed
defaults: {command: [sleep, "0.3"]}
tasks:
  gpu1: {labels: {gpu: "true"}}
  gpu2: {labels: {gpu: "true"}}
  gpu3: {labels: {gpu: "true"}}
  any1: {}
  any2: {}
  any3: {}
  any4: {}
EOF

# a chain on a worker with one slot: each task frees the slot the next needs
put_dag hops <<'EOF'
dag: hops
defaults: {labels: {gpu: "true"}, command: ["true"]}
tasks:
  h1: {}
  h2: {needs: [h1]}
  h3: {needs: [h2]}
  h4: {needs: [h3]}
  h5: {needs: [h4]}
EOF

put_dag nowhere <<'EOF'
dag: nowhere
tasks:
  tpu: {labels: {gpu: "true", tpu: v4}, command: ["true"]}
EOF

start_scheduler s
start_worker w1 --slots 4 --isolation none
start_worker gpu --slots 1 --labels gpu=true,zone=a --isolation none

# intervals FILE: "start end" lines of the runs or tasks in a JSON array
intervals() {
    jq -r 'def t: (sub("\\.[0-9]+Z$"; "Z") | fromdate)
                  + ((capture("\\.(?<ms>[0-9]+)Z$").ms | tonumber) / 1000);
           .[] | "\(.started_at | t) \(.ended_at | t)"' "$1"
}
# most intervals (lines "start end") that overlap at one instant
max_overlap() {
    awk '{print $1, 1; print $2, -1}' | sort -k1,1g -k2,2n |
        awk '{n += $2; if (n > m) m = n} END {print m + 0}'
}

# --- max_active_runs: 1 ----------------------------------------------------
R1=$("$CAIRN" trigger serial)
R2=$("$CAIRN" trigger serial)
R3=$("$CAIRN" trigger serial)
check "the second run waits as queued" [ "$(run_state "$R2" serial)" = queued ]
check "the third run waits as queued" [ "$(run_state "$R3" serial)" = queued ]
WIDE=$("$CAIRN" trigger wide)
NOWHERE=$("$CAIRN" trigger nowhere)
ROUTED=$("$CAIRN" trigger routed)
for r in "$R1" "$R2" "$R3"; do
    check "serial run $r succeeded" [ "$(wait_run "$r" serial 30)" = success ]
done
for r in "$R1" "$R2" "$R3"; do "$CAIRN" runs show "$r" --dag serial --json; done | jq -s . >"$T/serial.json"
intervals "$T/serial.json" >"$T/serial.iv"
cat "$T/serial.iv" | sed 's/^/# serial run: /'
check "the runs of a max_active_runs: 1 DAG never overlapped" [ "$(max_overlap <"$T/serial.iv")" = 1 ]
check "the runs started in the order they were triggered" \
    [ "$(jq -r '[.[].started_at] | . == sort' "$T/serial.json")" = true ]

# --- max_active_tasks: 2 on a worker with 4 free slots --------------------
check "run wide succeeded" [ "$(wait_run "$WIDE" wide 30)" = success ]
"$CAIRN" runs show "$WIDE" --dag wide --json | jq .tasks >"$T/wide.json"
intervals "$T/wide.json" >"$T/wide.iv"
check "never more than 2 of its tasks were running (scheduler's times)" \
    [ "$(max_overlap <"$T/wide.iv")" = 2 ]
cat "$T"/wide.t? | paste -d' ' - - | awk '{print $2, $4}' >"$T/wide.host.iv"
check "never more than 2 of its tasks were running (the tasks' own clocks)" \
    [ "$(max_overlap <"$T/wide.host.iv")" = 2 ]
check "all 5 tasks ran" [ "$(wc -l <"$T/wide.host.iv")" = 5 ]

# --- labels --------------------------------------------------------------
check "run routed succeeded" [ "$(wait_run "$ROUTED" routed 30)" = success ]
"$CAIRN" runs show "$ROUTED" --dag routed --json >"$T/routed.json"
check "tasks labelled gpu=true ran on the gpu worker" \
    [ "$(jq -r '[.tasks[] | select(.task | startswith("gpu")) | .worker] | unique | join(",")' "$T/routed.json")" = gpu ]
check "unlabelled tasks ran on the workers there are" \
    [ "$(jq -r '[.tasks[] | select(.task | startswith("any")) | .worker | select(. == "w1" or . == "gpu")] | length' "$T/routed.json")" = 4 ]
check "w1 ran unlabelled tasks" \
    [ "$(jq -r '[.tasks[] | select(.worker == "w1")] | length' "$T/routed.json")" -ge 1 ]
# --- a slot that frees up is used at once -----------------------------------
T0=$(date +%s%N)
HOPS=$("$CAIRN" trigger hops)
check "run hops succeeded" [ "$(wait_run "$HOPS" hops 30)" = success ]
MS=$((($(date +%s%N) - T0) / 1000000))
check "5 tasks in a row on a 1-slot worker took well under a heartbeat each (${MS} ms)" \
    [ "$MS" -lt 3000 ]

check "a task needing a label no worker has stays queued" \
    [ "$(ti state "$NOWHERE" nowhere tpu)" = queued ]
check "its run is still running" [ "$(run_state "$NOWHERE" nowhere)" = running ]
"$CAIRN" workers --json >"$T/workers.json"
check "workers lists the gpu worker's labels" \
    [ "$(jq -c '.workers[] | select(.name == "gpu") | .labels' "$T/workers.json")" = '{"gpu":"true","zone":"a"}' ]
check "both workers are alive and idle" \
    [ "$(jq -r '[.workers[] | "\(.state)/\(.busy)"] | join(",")' "$T/workers.json")" = "alive/0,alive/0" ]
finish
