#!/usr/bin/env bash
# The scheduler frozen (SIGSTOP) for 25 s while a worker polls and its tasks
# run, then let go (SIGCONT). Meanwhile the worker gave up waiting on
# several POLLs and BATCHes (each after its heartbeat plus 5 s) and sent new
# ones; when the scheduler wakes it reads them all at once. A lease it puts
# in the answer to a request the worker gave up on never reaches the
# worker: before, such leases expired and their tasks ran again as lost
# (using up the lease-loss budget, or failing without having run). Now each
# request says which of the worker's earlier ones it gave up on, and the
# scheduler hands those leases again in its next answer. So afterwards the
# run succeeds, every task ran once, in one attempt, and no lease expired.
# FAULT_STOP_S sets the length of the stop (default 25).
source "$(dirname "$0")/../integration/lib.sh"

stop_s=${FAULT_STOP_S:-25}
tasks=40
LEDGER=$T/ledger
: >"$LEDGER"
{
    echo "dag: frozen"
    echo "max_active_tasks: 1000"
    echo "defaults: {retries: 0}"
    echo "tasks:"
    for i in $(seq 1 $tasks); do
        echo "  t$i: {command: [sh, -c, 'sleep 0.4; echo \"t$i \$CAIRN_ATTEMPT\" >> $LEDGER']}"
    done
} | put_dag frozen

# a short TTL (heartbeat 1 s): the worker gives up on a POLL after 6 s, on
# a BATCH after 5 s, so a 25 s stop leaves several of each
start_scheduler s --lease-ttl 3000
start_worker w1 --slots 2 --isolation none
R=$("$CAIRN" trigger frozen)
lines() { wc -l <"$LEDGER"; }
check "tasks run before the stop" wait_until 60 bash -c "[ \$(wc -l <'$LEDGER') -ge 4 ]"

kill -STOP "$SCHED_PID"
t0=$(date +%s)
before=$(lines)
gaveup0=$(grep -c CAIRN-SCHEDULER-UNREACHABLE "$T/w1.log" || true)
echo "# scheduler stopped with $before of $tasks tasks done"
# the stop itself is the fault: it lasts stop_s seconds, and at least until
# the worker gave up on two POLLs (a loaded machine may be slow to)
frozen_enough() {
    local n
    n=$(grep -c CAIRN-SCHEDULER-UNREACHABLE "$T/w1.log" || true)
    [ $(($(date +%s) - t0)) -ge "$stop_s" ] && [ "$((n - gaveup0))" -ge 2 ]
}
wait_until $((stop_s + 60)) frozen_enough || true
during=$(lines)
gaveup=$(($(grep -c CAIRN-SCHEDULER-UNREACHABLE "$T/w1.log" || true) - gaveup0))
kill -CONT "$SCHED_PID"
echo "# scheduler resumed after $(($(date +%s) - t0)) s; $during tasks done by then;" \
    "the worker gave up on $gaveup POLLs meanwhile"
check "the worker gave up on POLLs while the scheduler was stopped ($gaveup)" [ "$gaveup" -ge 2 ]

check "the run succeeds" [ "$(wait_run "$R" frozen 180)" = success ]
attempts=$("$CAIRN" runs show "$R" --dag frozen --json | jq -r '[.tasks[].attempts] | add')
echo "# $attempts attempts for $tasks tasks; $(lines) executions"
check "every task ran once, in one attempt ($attempts attempts)" [ "$attempts" = "$tasks" ]
check "  each task is in the ledger once, attempt 1" \
    [ "$(sort -u "$LEDGER" | grep -c ' 1$')" = "$tasks" -a "$(lines)" = "$tasks" ]
over=$("$CAIRN" runs show "$R" --dag frozen --json |
    jq -r '[.tasks[] | select(.attempts != 1) | "\(.task):\(.attempts)"] | join(" ")')
check "  (tasks with more than one attempt: ${over:-none})" [ -z "$over" ]
echo "# leases sent again after the worker gave up on their answer:" \
    "$(grep -c CAIRN-LEASE-RESEND "$T/s.log" || true)"
check "no lease expired" bash -c '! grep -q CAIRN-LEASE-EXPIRED "$0"' "$T/s.log"
check "the stop was seen as a stall, not as lost workers" logged s CAIRN-LOOP-STALL
finish
