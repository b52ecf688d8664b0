#!/usr/bin/env bash
# Notifications and deadlines through the real scheduler, a worker
# (isolation none) and a webhook receiver (notify_receiver.py, Python's
# http.server on loopback): a receiver that fails the first two deliveries
# gets exactly one accepted delivery per event, each signed with the
# secret (checked here with openssl), and the retries show in `cairn
# notifications list`; a command target gets the event on its stdin; a
# scheduler SIGKILLed while a delivery is pending (the receiver down)
# delivers it after its restart, once; deadlines fire while the task still
# runs, and one that passed while the scheduler was down fires after the
# restart, and one after the logical date fires at that date plus its
# duration; metric_regression fires when a metric fell by more than `drop`
# against the previous successful run by logical date, and not otherwise; a
# target that never answers is recorded failed after --notify-attempts.
source "$(dirname "$0")/lib.sh"

RECV=$CAIRN_SRC/tests/integration/notify_receiver.py
R=$T/recv
mkdir -p "$R"
printf 'hook-secret-%s\n' "$RANDOM$RANDOM" >"$T/hook.secret"

# start_receiver PORT FAIL: sets RECV_PID and RPORT
start_receiver() {
    rm -f "$R/port"
    /usr/bin/python3 "$RECV" "$R" "$1" "$2" >>"$T/recv.log" 2>&1 &
    RECV_PID=$!
    PIDS+=("$RECV_PID")
    wait_until 30 test -s "$R/port" || { echo "receiver did not start" >&2; exit 1; }
    RPORT=$(cat "$R/port")
}
# accepted EVENT_ID -> how many deliveries of it the receiver answered 200
accepted() {
    awk -v id="$1" '$2 == 200 && $3 == id' "$R/log" 2>/dev/null | wc -l
}
# events NAME -> the event ids of that event the receiver saw, once each
events() {
    awk -v e="$1" '$4 == e {print $3}' "$R/log" 2>/dev/null | sort -u
}
# nev NAME -> how many requests of that event the receiver saw
nev() {
    awk -v e="$1" '$4 == e' "$R/log" 2>/dev/null | wc -l
}
has_event() { [ "$(nev "$1")" -gt 0 ]; }
nev_over() { [ "$(nev "$1")" -gt "$2" ]; }
n_ok_over() { [ "$(awk '$2 == 200' "$R/log" 2>/dev/null | wc -l)" -ge "$1" ]; }
nl_json() { "$CAIRN" notifications list --json "$@"; }
# nl DAG JQ: the filter holds on `notifications list --json --dag DAG`
nl() { nl_json --dag "$1" | jq -e "${@:2}" >/dev/null; }
# dag_loaded NAME: the scheduler has read the DAG file
dag_loaded() { "$CAIRN" dags show "$1" >/dev/null 2>&1; }
task_state_is() { [ "$(ti state "$1" "$2" "$3")" = "$4" ]; }
wall_past() { [ "$(date +%s)" -ge "$1" ]; }
# body_of EVENT [JQ]: the last request body of that event (matching JQ)
body_of() {
    local b
    for b in $(grep -l "\"event\":\"$1\"" "$R"/req-*.body 2>/dev/null); do
        jq -e "${2:-true}" "$b" >/dev/null 2>&1 && echo "$b"
    done | tail -n 1
}

start_receiver 0 2
HOOK=http://127.0.0.1:$RPORT/hooks/cairn

put_dag alert <<EOF
dag: alert
notify:
  - on: [failure, retry]
    webhook: $HOOK
    secret_file: $T/hook.secret
tasks:
  boom:
    retries: 1
    retry_delay: 1s
    command: [sh, -c, 'echo broken >&2; exit 3']
    notify:
      - on: [failure]
        command: [sh, -c, 'cat >$T/cmd-event.json']
EOF

# tries 0.5 s, 1 s, 2 s, 4 s apart, 5 in all: a dead target gives up in ~8 s
SFLAGS=(--notify-attempts 5 --notify-backoff 500)
start_scheduler s "${SFLAGS[@]}"
start_worker w1 --isolation none --slots 4

# --- retries of deliveries, signatures, a command target ----------------
RUN=$("$CAIRN" trigger alert)
check "run alert failed" [ "$(wait_run "$RUN" alert 60)" = failed ]
check "the retry and the run's failure each reached the receiver" wait_until 60 n_ok_over 2
RETRY_ID=$(events retry)
FAIL_ID=$(events failure)
check "one retry event (boom's first attempt)" [ "$(wc -w <<<"$RETRY_ID")" = 1 ]
check "one failure event (the run's)" [ "$(wc -w <<<"$FAIL_ID")" = 1 ]
check "the first two deliveries were refused with 500" [ "$(awk '$2 == 500' "$R/log" | wc -l)" = 2 ]
check "four requests in all" [ "$(wc -l <"$R/log")" = 4 ]
check "exactly one accepted delivery of the retry" [ "$(accepted "$RETRY_ID")" = 1 ]
check "exactly one accepted delivery of the failure" [ "$(accepted "$FAIL_ID")" = 1 ]
sigs_ok=0
sigs=0
for b in "$R"/req-*.body; do
    n=${b%.body}
    got="sha256=$(openssl dgst -sha256 -hmac "$(cat "$T/hook.secret")" -hex <"$b" | sed 's/^.*= //')"
    sigs=$((sigs + 1))
    [ "$(cat "$n.sig")" = "$got" ] && sigs_ok=$((sigs_ok + 1))
done
check "every request was signed with the secret ($sigs_ok of $sigs)" [ "$sigs" = 4 ] && [ "$sigs_ok" = 4 ]
check "a body signed with another key does not verify" \
    [ "$(cat "$R/req-1.sig")" != "sha256=$(openssl dgst -sha256 -hmac other -hex <"$R/req-1.body" | sed 's/^.*= //')" ]
check "the failure's body names the DAG, run, state and a UI link" \
    jq -e --arg run "$RUN" '.dag == "alert" and .run_id == $run and .task == null and
        .state == "failed" and (.url | test("/#/run/alert/")) and (.text | test("failure"))
        and (.event_id | length > 0)' "$(body_of failure)"
check "the retry's body names the task, its error and its attempt" \
    jq -e '.task == "boom" and .state == "up_for_retry" and .attempt == 1 and
        (.error | length > 0)' "$(body_of retry)"
check "notifications list shows both webhook deliveries delivered" \
    nl alert '[.notifications[] | select(.kind == "webhook") | .state] == ["delivered", "delivered"]'
check "notifications list counts the tries (4 in all) and keeps the last error" \
    nl alert '([.notifications[] | select(.kind == "webhook") | .attempts] | add) == 4 and
        ([.notifications[] | select(.kind == "webhook" and .attempts > 1) | .last_error] | length >= 1 and all(test("500")))'
check "the listing shows the webhook without its path (it may be a secret)" \
    nl alert --arg t "http://127.0.0.1:$RPORT/..." \
        '[.notifications[] | select(.kind == "webhook") | .target] | all(. == $t)'
check "and so does the log" [ "$(grep -c 'hooks/cairn' "$T/s.log")" = 0 ]
check "the text listing shows HTTP 500" sh -c "'$CAIRN' notifications list --dag alert | grep -q 'HTTP 500'"
check "the command target got the task's failure on stdin" \
    wait_until 30 jq -e '.event == "failure" and .task == "boom" and .state == "failed"' "$T/cmd-event.json"
check "the command delivery is recorded" \
    wait_until 30 nl alert '[.notifications[] | select(.kind == "command" and .state == "delivered")] | length == 1'

# --- a target that never answers: given up after the tries ----------------
DEAD=$(free_port)
put_dag nowhere <<EOF
dag: nowhere
notify:
  - on: [success]
    webhook: http://127.0.0.1:$DEAD/hook
tasks:
  ok:
    command: ["true"]
EOF
wait_until 30 dag_loaded nowhere
NOWHERE=$("$CAIRN" trigger nowhere)
check "run nowhere succeeded" [ "$(wait_run "$NOWHERE" nowhere 60)" = success ]
# (checked at the end: its tries take ~8 s)

# --- SIGKILL while a delivery is pending ---------------------------------
put_dag crash <<EOF
dag: crash
notify:
  - on: [success]
    webhook: $HOOK
tasks:
  ok:
    command: ["true"]
EOF
kill_wait "$RECV_PID"
wait_until 30 dag_loaded crash
CRASH=$("$CAIRN" trigger crash)
check "run crash succeeded" [ "$(wait_run "$CRASH" crash 60)" = success ]
check "its delivery is pending after a failed try (receiver down)" \
    wait_until 60 nl crash '.notifications[0].state == "pending" and .notifications[0].attempts >= 1'
kill_wait "$SCHED_PID" KILL
check "the scheduler died of SIGKILL" [ "$EXIT_STATUS" = 137 ]
start_receiver "$RPORT" 0
start_scheduler s "${SFLAGS[@]}"
check "the pending delivery arrived after the restart" wait_until 90 has_event success
SUCC=$(events success)
check "exactly once" [ "$(accepted "$SUCC")" = 1 ]
check "and is recorded delivered" wait_until 30 nl crash '.notifications[0].state == "delivered"'

# --- deadlines while the task runs ---------------------------------------
put_dag slow <<EOF
dag: slow
deadline: {after_start: 2s}
notify:
  - on: [deadline_missed]
    webhook: $HOOK
tasks:
  nap:
    deadline: {after_start: 2s}
    command: [sh, -c, 'i=0; while [ ! -e $T/release-slow ] && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i+1)); done']
EOF
wait_until 30 dag_loaded slow
SLOW=$("$CAIRN" trigger slow)
check "deadline_missed arrived for the run and for the task" \
    wait_until 60 nev_over deadline_missed 1
check "the task was still running when its deadline fired" task_state_is "$SLOW" slow nap running
check "the task's event says running" \
    jq -e '.state == "running" and (.deadline | length > 0)' "$(body_of deadline_missed '.task == "nap"')"
check "the run's event says running" \
    jq -e '.state == "running"' "$(body_of deadline_missed '.task == null')"
check "runs show has deadline_missed_at for the run and the task" \
    sh -c "'$CAIRN' runs show '$SLOW' --dag slow --json | jq -e '.deadline_missed_at != null and ([.tasks[] | select(.task == \"nap\") | .deadline_missed_at] | .[0] != null)'"
touch "$T/release-slow"
check "run slow then succeeded" [ "$(wait_run "$SLOW" slow 60)" = success ]
check "each deadline fired once" [ "$(nev deadline_missed)" = 2 ]

# --- a deadline that passed while the scheduler was down ------------------
put_dag late <<EOF
dag: late
deadline: {after_start: 8s}
notify:
  - on: [deadline_missed]
    webhook: $HOOK
tasks:
  nap:
    command: [sh, -c, 'i=0; while [ ! -e $T/release-late ] && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i+1)); done']
EOF
wait_until 30 dag_loaded late
LATE=$("$CAIRN" trigger late)
check "late's task runs" wait_until 60 task_state_is "$LATE" late nap running
STARTED=$(rj "$LATE" late '.started_at | sub("\\.[0-9]+Z$"; "Z") | fromdate')
kill_wait "$SCHED_PID" KILL
before=$(nev deadline_missed)
check "late's deadline had not fired before the kill" \
    [ -z "$(grep -l '"dag":"late"' "$R"/req-*.body 2>/dev/null)" ]
# the scheduler stays down until its deadline (8 s after the start) is past
wait_until 60 wall_past $((STARTED + 10))
start_scheduler s "${SFLAGS[@]}"
check "the missed deadline fired after the restart" wait_until 60 nev_over deadline_missed "$before"
check "it is late's run deadline" \
    jq -e --arg r "$LATE" '.dag == "late" and .run_id == $r and .task == null' "$(body_of deadline_missed '.dag == "late"')"
touch "$T/release-late"
check "run late succeeded" [ "$(wait_run "$LATE" late 90)" = success ]
check "late's deadline fired once" [ "$(nev deadline_missed)" = $((before + 1)) ]

# --- metric_regression ----------------------------------------------------
put_dag model <<EOF
dag: model
params: {acc: 0.9}
notify:
  - on: [metric_regression]
    webhook: $HOOK
    metric: {task: evaluate, name: accuracy, drop: 0.02}
tasks:
  evaluate:
    command: [sh, -c, 'echo "{\"accuracy\": {{ params.acc }}}" >\$CAIRN_OUTPUTS/metrics.json']
    metrics: metrics.json
EOF
wait_until 30 dag_loaded model
M1=$("$CAIRN" trigger model --logical-date 2026-01-01T00:00:00Z --param acc=0.95)
check "model run 1 succeeded" [ "$(wait_run "$M1" model 60)" = success ]
M2=$("$CAIRN" trigger model --logical-date 2026-01-02T00:00:00Z --param acc=0.90)
check "model run 2 succeeded" [ "$(wait_run "$M2" model 60)" = success ]
check "metric_regression arrived for run 2" wait_until 60 has_event metric_regression
check "it names the metric, both values and the previous run" \
    jq -e --arg m1 "$M1" --arg m2 "$M2" '.run_id == $m2 and .task == "evaluate" and
        .metric.name == "accuracy" and .metric.previous == 0.95 and .metric.current == 0.9 and
        .metric.previous_run == $m1' "$(body_of metric_regression)"
M3=$("$CAIRN" trigger model --logical-date 2026-01-03T00:00:00Z --param acc=0.895)
check "model run 3 succeeded" [ "$(wait_run "$M3" model 60)" = success ]
check "no delivery for run 3 (a drop of 0.005)" \
    nl model --arg r "$M3" '[.notifications[] | select(.run_id == $r)] | length == 0'
check "one metric_regression in all" [ "$(nev metric_regression)" = 1 ]

# --- the dead target; a deadline after the logical date -------------------
check "the delivery to a dead target is recorded failed after 5 tries" \
    wait_until 60 nl nowhere '.notifications[0].state == "failed" and
        .notifications[0].attempts == 5 and (.notifications[0].last_error | test("onnect"))'
put_dag ld <<EOF
dag: ld
deadline: {after_logical_date: 3s}
notify:
  - on: [deadline_missed]
    command: [sh, -c, 'cat >$T/ld-event.json']
tasks:
  nap:
    command: [sh, -c, 'i=0; while [ ! -e $T/release-ld ] && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i+1)); done']
EOF
wait_until 30 dag_loaded ld
LD=$("$CAIRN" trigger ld --logical-date "$(date -u -d "@$(($(date +%s) + 2))" +%Y-%m-%dT%H:%M:%SZ)")
check "after_logical_date: the event came while the run ran" \
    wait_until 60 jq -e --arg r "$LD" '.run_id == $r and .event == "deadline_missed" and
        .state == "running"' "$T/ld-event.json"
LDAT=$(rj "$LD" ld '.deadline_missed_at | sub("\\.[0-9]+Z$"; "Z") | fromdate')
LDATE=$(rj "$LD" ld '.logical_date | fromdate')
check "it fired 3 s after the logical date or later ($((LDAT - LDATE)) s)" [ $((LDAT - LDATE)) -ge 3 ]
touch "$T/release-ld"
check "run ld succeeded" [ "$(wait_run "$LD" ld 60)" = success ]

finish
