#!/usr/bin/env bash
# Crashes and restarts with real runc workers: the scheduler killed with
# SIGKILL mid-run and restarted on the same data; the scheduler stopped
# with SIGTERM mid-run (graceful drain); a worker killed with SIGKILL
# mid-task, with its watchdog, while a second worker is around (lease
# expiry, retry, reaping the container it left when it comes back); a worker stopped with SIGTERM
# mid-task (the task is queued again without using up a retry).
source "$(dirname "$0")/lib.sh"

put_dag chain <<'EOF'
dag: chain
defaults: {image: host}
tasks:
  first: {command: [sh, -c, 'echo first']}
  middle:
    needs: [first]
    command: [sh, -c, 'echo before; sleep 3; echo after']
  last: {needs: [middle], command: [sh, -c, 'echo last']}
EOF

# the first attempt outlives the worker that runs it; the second is short
put_dag long <<'EOF'
dag: long
defaults: {image: host}
tasks:
  work:
    command: [sh, -c, 'echo "on $CAIRN_ATTEMPT"; [ $CAIRN_ATTEMPT = 1 ] && sleep 60; echo finished']
EOF

SCHED_ARGS=(--lease-ttl 3000)
start_scheduler s "${SCHED_ARGS[@]}"
start_worker w1 --slots 2

task_is() { # task_is RUN DAG TASK STATE
    [ "$(ti state "$1" "$2" "$3" 2>/dev/null)" = "$4" ]
}

# --- SIGKILL of the scheduler while a task runs ----------------------------
# `trigger --wait` follows the run through the restart
"$CAIRN" trigger chain --wait >"$T/wait.out" 2>"$T/wait.err" &
WAITER=$!
PIDS+=("$WAITER")
wait_until 10 test -s "$T/wait.out"
RUN=$(head -n1 "$T/wait.out")
check "the middle task is running" wait_until 20 task_is "$RUN" chain middle running
kill_wait "$SCHED_PID" KILL
check "the scheduler died of SIGKILL" [ "$EXIT_STATUS" = 137 ]
start_scheduler s "${SCHED_ARGS[@]}"
check "the run is still there after the restart" [ "$(run_state "$RUN" chain)" = running ]
check "the run went on and succeeded" [ "$(wait_run "$RUN" chain 30)" = success ]
WAIT_RC=0
wait "$WAITER" || WAIT_RC=$?
forget_pid "$WAITER"
check "trigger --wait rode out the restart and exited 0" [ "$WAIT_RC" = 0 ]
check "...and said the run succeeded" grep -q "^run $RUN success" "$T/wait.out"
check "the task done before the crash was not redone" [ "$(ti attempts "$RUN" chain first)" = 1 ]
check "the task in flight was reported by its worker, not redone" \
    [ "$(ti attempts "$RUN" chain middle)" = 1 ]
check "the task after the crash ran once" [ "$(ti attempts "$RUN" chain last)" = 1 ]
check "the log of the task in flight is whole" \
    [ "$("$CAIRN" logs "$RUN" middle --dag chain | tr '\n' ' ')" = "before after " ]
check "the restart is logged" logged s "CAIRN-RECOVER.*recovered 1 unfinished run"

# --- SIGTERM of the scheduler while a task runs ----------------------------
RUN2=$("$CAIRN" trigger chain)
check "the middle task is running again" wait_until 20 task_is "$RUN2" chain middle running
"$CAIRN" runs list --json | jq -c '.runs[] | {run_id, state}' >"$T/before.txt"
kill_wait "$SCHED_PID" TERM
check "SIGTERM: the scheduler exits 0" [ "$EXIT_STATUS" = 0 ]
check "SIGTERM: it logged that it stopped" logged s "CAIRN-STOPPED"
start_scheduler s "${SCHED_ARGS[@]}"
"$CAIRN" runs list --json | jq -c '.runs[] | {run_id, state}' >"$T/after.txt"
check "after the restart the runs are the same" cmp -s "$T/before.txt" "$T/after.txt"
check "the run goes on and succeeds" [ "$(wait_run "$RUN2" chain 30)" = success ]
check "no task of it ran twice" \
    [ "$(rj "$RUN2" chain '[.tasks[].attempts] | join(",")')" = "1,1,1" ]

# --- SIGTERM while several workers wait in a POLL, a few times -----------
for n in w3 w4 w5; do start_worker "$n" --isolation none --labels idle=yes; done
alive_workers() {
    [ "$("$CAIRN" workers --json | jq '[.workers[] | select(.state == "alive")] | length')" -ge "$1" ]
}
STOPS=""
for i in 1 2 3 4; do
    wait_until 10 alive_workers 4 || true
    sleep 0.3 # let their POLLs park
    T0=$(date +%s%N)
    kill_wait "$SCHED_PID" TERM
    STOPS="$STOPS $EXIT_STATUS/$((($(date +%s%N) - T0) / 1000000))ms"
    start_scheduler s "${SCHED_ARGS[@]}"
done
echo "# SIGTERM exit status/time:$STOPS"
check "SIGTERM with workers connected: exit 0 every time" \
    [ "$(tr ' ' '\n' <<<"$STOPS" | grep -c '^0/')" = 4 ]
for n in w3 w4 w5; do kill_wait "$(eval echo "\$PID_$n")" TERM; done

# --- SIGKILL of a worker mid-task, with a second worker --------------------
RUN3=$("$CAIRN" trigger long)
check "the task runs on w1" wait_until 20 task_is "$RUN3" long work running
check "...on w1" [ "$(ti worker "$RUN3" long work)" = w1 ]
start_worker w2 --slots 2
check "its first line reached the scheduler" \
    wait_until 10 bash -c "[ \"\$($CAIRN logs $RUN3 work --dag long)\" = 'on 1' ]"
# the watchdog that would stop w1's containers dies first (as under an OOM
# killer that takes both): what is left is reaped when w1 comes back
# (tests/faults/orphans.sh has the watchdog at work)
WD=$(pgrep -x cairn-watchdog -P "$PID_w1" || true)
check "w1 has its watchdog process" [ -n "$WD" ]
kill -KILL $WD
kill_wait "$PID_w1" KILL
KILLED_AT=$(date +%s)
check "the killed worker's container is still there" [ -n "$(containers w1)" ]
check "w1 is lost after the lease time to live" \
    wait_until 10 bash -c "$CAIRN workers --json | jq -e '.workers[] | select(.name == \"w1\" and .state == \"lost\")'"
check "the task is retried and succeeds" [ "$(wait_run "$RUN3" long 30)" = success ]
echo "# retried run ended $(($(date +%s) - KILLED_AT)) s after the kill"
check "it ran on w2 the second time" [ "$(ti worker "$RUN3" long work)" = w2 ]
A=$(attempts "$RUN3" long work)
check "2 attempts: the first failed, the second succeeded" \
    [ "$(jq -r '[.attempts[] | "\(.worker):\(.state)"] | join(",")' <<<"$A")" = "w1:failed,w2:success" ]
check "the first attempt failed because its lease expired" \
    [ "$(jq -r '.attempts[0].error | test("lease expired")' <<<"$A")" = true ]
check "the expiry is logged" logged s "CAIRN-LEASE-EXPIRED"
check "the log is the second attempt's" \
    [ "$("$CAIRN" logs "$RUN3" work --dag long | tr '\n' ' ')" = "on 2 finished " ]
check "the killed attempt's log is still readable" \
    [ "$("$CAIRN" logs "$RUN3" work --dag long --attempt 1)" = "on 1" ]

# w1 comes back on the same data folder: it reaps what it left
check "the container w1 left still runs" [ -n "$(containers w1)" ]
start_worker w1 --slots 2
check "the restarted worker removed the container it left" [ -z "$(containers w1)" ]
check "the reaping is logged" logged w1 "CAIRN-REAP.*removed 1 container"
check "w1 is alive again" \
    wait_until 5 bash -c "$CAIRN workers --json | jq -e '.workers[] | select(.name == \"w1\" and .state == \"alive\")'"

# --- a worker that stops answering (SIGSTOP) past its lease ----------------
# Its task is given to w2; when it comes back, its result for the lease that
# was taken back is refused (fencing) and the record stays as it was.
put_dag nap <<'EOF'
dag: nap
defaults: {image: host}
tasks:
  work:
    command: [sh, -c, 'echo "on $CAIRN_ATTEMPT"; [ $CAIRN_ATTEMPT = 1 ] && sleep 4; echo finished']
EOF
kill_wait "$PID_w2" TERM
wait_until 10 bash -c "grep -q 'DAG nap' $T/s.log"
RUN4=$("$CAIRN" trigger nap)
check "the task runs on w1" wait_until 20 task_is "$RUN4" nap work running
start_worker w2 --slots 2
kill -STOP "$PID_w1"
check "the task is retried on w2 and succeeds" [ "$(wait_run "$RUN4" nap 30)" = success ]
kill -CONT "$PID_w1"
check "w1's late report is refused" wait_until 10 logged s "CAIRN-LEASE-STALE worker w1"
sleep 1
A=$(attempts "$RUN4" nap work)
check "the attempts stay: w1 lost its lease, w2 succeeded" \
    [ "$(jq -r '[.attempts[] | "\(.worker):\(.state)"] | join(",")' <<<"$A")" = "w1:failed,w2:success" ]
check "the run is still a success on w2" \
    [ "$(rj "$RUN4" nap '"\(.state)/\(.tasks[0].worker)/\(.tasks[0].attempts)"')" = "success/w2/2" ]
check "w1 is alive again" \
    wait_until 5 bash -c "$CAIRN workers --json | jq -e '.workers[] | select(.name == \"w1\" and .state == \"alive\")'"

# --- SIGTERM of a worker while it runs a task -------------------------------
# It stops the container and reports it; a lease that reaches it while it
# shuts down is not started and not failed: another worker runs the task.
put_dag stubborn <<'EOF'
dag: stubborn
defaults: {image: host}
tasks:
  hold: {command: [sh, -c, 'echo up; [ $CAIRN_ATTEMPT != 1 ] || sleep 30; echo done']}
EOF
put_dag later <<'EOF'
dag: later
defaults: {image: host}
tasks:
  quick: {command: [echo, done]}
EOF
kill_wait "$PID_w2" TERM
wait_until 10 bash -c "grep -q 'DAG later' $T/s.log"
RUN5=$("$CAIRN" trigger stubborn)
check "the task runs on w1" wait_until 20 task_is "$RUN5" stubborn hold running
kill -TERM "$PID_w1"
RUN6=$("$CAIRN" trigger later)
kill_wait "$PID_w1" TERM
check "w1 exits 0 after stopping its task" [ "$EXIT_STATUS" = 0 ]
check "the stopped task was reported at once, not left to its lease, and queued again" \
    [ "$(ti state "$RUN5" stubborn hold)" = queued ]
check "  not counted against the task (it has no retries)" \
    [ "$(ti error "$RUN5" stubborn hold)" = "worker w1 was stopped while the task ran" ]
check "no container is left in w1's runc root after its drain" [ -z "$(containers w1)" ]
logged w1 CAIRN-LEASE-DROPPED && echo "# a lease reached w1 while it drained: dropped"
start_worker w2 --slots 2
check "the task triggered during the drain ran on another worker" \
    [ "$(wait_run "$RUN6" later 20)/$(ti worker "$RUN6" later quick)" = success/w2 ]
check "the interrupted task ran again there and succeeded (attempt 2)" \
    [ "$(wait_run "$RUN5" stubborn 20)/$(ti worker "$RUN5" stubborn hold)/$(ti attempts "$RUN5" stubborn hold)" = success/w2/2 ]
start_worker w1 --slots 2

# --- the scheduler itself stalls (SIGSTOP) past the lease TTL -------------
put_dag steady <<'EOF2'
dag: steady
defaults: {image: host, retries: 0}
tasks:
  work: {command: [sh, -c, 'sleep 4; echo steady']}
EOF2
wait_until 10 bash -c "grep -q 'DAG steady' $T/s.log"
RUN7=$("$CAIRN" trigger steady)
check "(the steady task runs)" wait_until 20 task_is "$RUN7" steady work running
kill -STOP "$SCHED_PID"
sleep 5
kill -CONT "$SCHED_PID"
check "a scheduler stalled past the lease TTL does not take the lease back" \
    [ "$(wait_run "$RUN7" steady 30)/$(ti attempts "$RUN7" steady work)" = success/1 ]
check "  and logs the stall" logged s "CAIRN-LOOP-STALL"

# both workers stop cleanly and leave nothing behind
kill_wait "$PID_w1" TERM
check "w1 exits 0 on SIGTERM" [ "$EXIT_STATUS" = 0 ]
kill_wait "$PID_w2" TERM
check "w2 exits 0 on SIGTERM" [ "$EXIT_STATUS" = 0 ]
check "no container is left in w1's runc root" [ -z "$(containers w1)" ]
check "no container is left in w2's runc root" [ -z "$(containers w2)" ]
finish
