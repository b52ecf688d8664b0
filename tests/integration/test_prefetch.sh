#!/usr/bin/env bash
# Prefetched leases (a worker's queue beyond its slots) when their worker
# goes away: a worker with one slot and --prefetch 3 holds four leases of
# short tasks, one running and three queued, and then
# - dies of SIGKILL: all four leases expire after the lease TTL and the
#   tasks are queued again without using up a retry; another worker runs
#   them (attempt 2);
# - is stopped with SIGTERM: it hands all four back at once (the running
#   one stopped, the queued ones never started), not left to the TTL, and
#   they run elsewhere;
# - stops answering (SIGSTOP) past the TTL: its leases are given to another
#   worker, and when it comes back its report for the old lease is refused
#   (fencing): the attempts stay as the second worker left them.
# Tasks are --isolation none processes that wait for a gate file.
source "$(dirname "$0")/lib.sh"

put_dag warm <<'EOF'
dag: warm
tasks:
  quick: {command: [true]}
EOF
for g in 1 2 3; do
    put_dag "hold$g" <<EOF
dag: hold$g
defaults: {retries: 0}
tasks:
$(for i in 1 2 3 4; do
        echo "  t$i: {command: [sh, -c, 'while [ ! -e $T/gate$g ]; do sleep 0.05; done; echo \"on \$CAIRN_ATTEMPT\"']}"
    done)
EOF
done

start_scheduler s --lease-ttl 3000

# states RUN DAG -> the tasks' states and workers, sorted ("leased/p1 ...")
states() {
    rj "$1" "$2" '[.tasks[] | "\(.state)/\(.worker)"] | sort | join(" ")'
}
# states_are RUN DAG WANT
states_are() { [ "$(states "$1" "$2")" = "$3" ]; }
# attempts_are RUN DAG WANT: every task's attempts, "worker:state,..."
attempts_are() {
    local t
    for t in t1 t2 t3 t4; do
        [ "$(attempts "$1" "$2" "$t" | jq -r '[.attempts[] | "\(.worker):\(.state)"] | join(",")')" = "$3" ] ||
            return 1
    done
}
# prefetched WORKER GATE: a 4-task run of hold$GATE, one running on WORKER
# and three waiting in its queue; prints the run id
prefetched() {
    # a short task first: a worker gets leases beyond its slots only once
    # its tasks are known to run short
    local r
    r=$("$CAIRN" trigger warm)
    [ "$(wait_run "$r" warm 30)" = success ] || return 1
    r=$("$CAIRN" trigger "hold$2")
    wait_until 20 states_are "$r" "hold$2" "leased/$1 leased/$1 leased/$1 running/$1" || return 1
    echo "$r"
}
no_gate_waiters() { ! pgrep -f "$T/gate$1" >/dev/null; }

# --- SIGKILL: the queued leases expire like the running one ----------------
start_worker p1 --slots 1 --prefetch 3 --isolation none
RUN1=$(prefetched p1 1) || true
check "p1 holds four leases: one running, three queued beyond its slot" [ -n "$RUN1" ]
kill_wait "$PID_p1" KILL
check "all four are queued again once their leases expire (no retries used)" \
    wait_until 20 states_are "$RUN1" hold1 "queued/p1 queued/p1 queued/p1 queued/p1"
check "each first attempt failed because its lease expired" \
    [ "$(for t in t1 t2 t3 t4; do attempts "$RUN1" hold1 $t | jq -r '.attempts[0].error'; done |
        grep -c 'lease expired')" = 4 ]
check "the four expiries are logged" [ "$(grep -c CAIRN-LEASE-EXPIRED "$T/s.log")" -ge 4 ]
touch "$T/gate1"
check "(the task p1 left running ends)" wait_until 10 no_gate_waiters 1
start_worker p2 --slots 4 --isolation none
check "another worker runs the four and the run succeeds" [ "$(wait_run "$RUN1" hold1 30)" = success ]
check "  each on its second attempt" attempts_are "$RUN1" hold1 "p1:failed,p2:success"
check "  and the log is that attempt's" [ "$("$CAIRN" logs "$RUN1" t3 --dag hold1)" = "on 2" ]

# --- SIGTERM: the queued leases are handed back at once ---------------------
kill_wait "$PID_p2" TERM
start_worker p3 --slots 1 --prefetch 3 --isolation none
RUN2=$(prefetched p3 2) || true
check "p3 holds four leases: one running, three queued" [ -n "$RUN2" ]
kill_wait "$PID_p3" TERM
check "p3 exits 0 on SIGTERM" [ "$EXIT_STATUS" = 0 ]
check "it handed all four back before it exited, not left to their leases" \
    states_are "$RUN2" hold2 "queued/p3 queued/p3 queued/p3 queued/p3"
check "  the queued ones as never started, the running one as stopped" \
    [ "$(for t in t1 t2 t3 t4; do attempts "$RUN2" hold2 $t | jq -r '.attempts[-1].error'; done | sort | uniq -c |
        sed 's/^ *//' | tr '\n' ,)" = "3 worker p3 was stopped before the task started,1 worker p3 was stopped while the task ran," ]
check "  and its log says so" logged p3 "CAIRN-LEASE-DROPPED.*shutting down: not started"
check "  none of them waited for its lease to expire" \
    [ "$(grep -c "CAIRN-LEASE-EXPIRED hold2/" "$T/s.log" || true)" = 0 ]
check "(the task p3 stopped is gone)" wait_until 10 no_gate_waiters 2
touch "$T/gate2"
start_worker p2 --slots 4 --isolation none
check "another worker runs them and the run succeeds" [ "$(wait_run "$RUN2" hold2 30)" = success ]
check "  each on its next attempt, none counted against it (retries: 0)" \
    [ "$(rj "$RUN2" hold2 '[.tasks[] | .attempts] | max')" -ge 2 ]

# --- SIGSTOP past the TTL: the old leases are fenced ------------------------
kill_wait "$PID_p2" TERM
start_worker p4 --slots 1 --prefetch 3 --isolation none
RUN3=$(prefetched p4 3) || true
check "p4 holds four leases: one running, three queued" [ -n "$RUN3" ]
kill -STOP "$PID_p4"
check "p4's four leases expire while it is stopped" \
    wait_until 20 states_are "$RUN3" hold3 "queued/p4 queued/p4 queued/p4 queued/p4"
touch "$T/gate3"
start_worker p5 --slots 4 --isolation none
check "another worker runs them and the run succeeds" [ "$(wait_run "$RUN3" hold3 30)" = success ]
kill -CONT "$PID_p4"
check "p4's late report for its old lease is refused" \
    wait_until 15 logged s "CAIRN-LEASE-STALE worker p4"
check "p4 is alive again" \
    wait_until 10 bash -c "$CAIRN workers --json | jq -e '.workers[] | select(.name == \"p4\" and .state == \"alive\")'"
check "(p4 ran or dropped what it held)" wait_until 10 no_gate_waiters 3
check "the attempts stay as p5 left them" attempts_are "$RUN3" hold3 "p4:failed,p5:success"
check "the run is still a success" [ "$(run_state "$RUN3" hold3)" = success ]

kill_wait "$PID_p4" TERM
check "p4 exits 0 on SIGTERM" [ "$EXIT_STATUS" = 0 ]
finish
