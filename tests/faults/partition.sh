#!/usr/bin/env bash
# Network partitions between hosts: the scheduler and two workers each in a
# network namespace of their own, joined by veth pairs (addresses of a
# private test network that exists only inside those namespaces; the test
# and the CLI run in the scheduler's). A worker's link is cut while it runs
# a task:
#   - shorter than the lease TTL: when it heals, nothing was lost and
#     nothing ran again (one attempt, its whole log);
#   - longer than the TTL: the lease expires, the task runs on the other
#     worker, and the cut-off worker's late RESULT is refused (fencing): the
#     run's answer is the second attempt's.
# The workers run tasks with --isolation none: `ip netns exec` mounts a
# /sys of its own, without the cgroup hierarchies runc looks for.
# Needs root (ip netns); exits 77 (skipped) without it.
set -euo pipefail
if [ -z "${CAIRN_PARTITION_NS:-}" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
        echo "skipped: needs root and ip(8)"
        exit 77
    fi
    ns=cairn-part-$$
    ip netns add "$ns-s"
    trap 'for n in s w1 w2; do ip netns del "$ns-$n" 2>/dev/null || true; done' EXIT
    for i in 1 2; do
        ip netns add "$ns-w$i"
        ip link add "cp$$s$i" netns "$ns-s" type veth peer name "cp$$w$i" netns "$ns-w$i"
        ip -n "$ns-s" addr add "10.231.$i.1/30" dev "cp$$s$i"
        ip -n "$ns-w$i" addr add "10.231.$i.2/30" dev "cp$$w$i"
        ip -n "$ns-s" link set "cp$$s$i" up
        ip -n "$ns-w$i" link set "cp$$w$i" up
        ip -n "$ns-w$i" link set lo up
    done
    ip -n "$ns-s" link set lo up
    rc=0
    CAIRN_PARTITION_NS=$ns ip netns exec "$ns-s" bash "$0" "$@" || rc=$?
    exit "$rc"
fi
# ---- from here on, inside the scheduler's namespace ----
source "$(dirname "$0")/../integration/lib.sh"
NS=$CAIRN_PARTITION_NS

put_dag pinned <<'EOF'
dag: pinned
defaults: {image: host, retries: 0}
tasks:
  work:
    labels: {zone: a}
    command: [sh, -c, 'echo "start $CAIRN_ATTEMPT"; sleep 4; echo "end $CAIRN_ATTEMPT"']
EOF
put_dag free <<'EOF'
dag: free
defaults: {image: host, retries: 0}
tasks:
  work:
    command: [sh, -c, 'echo "start $CAIRN_ATTEMPT"; sleep 8; echo "end $CAIRN_ATTEMPT"']
EOF

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/token"
chmod 600 "$T/token"
TTL=3000
mkdir -p "$T/s"
"$SCHED" --dags "$T/dags" --data "$T/s" --listen "tcp://0.0.0.0:0" --http 127.0.0.1:0 \
    --token-file "$T/token" --lease-ttl "$TTL" >>"$T/s.log" 2>&1 &
SCHED_PID=$!
PIDS+=("$SCHED_PID")
wait_until 10 grep -q CAIRN-START "$T/s.log"
line=$(grep CAIRN-START "$T/s.log" | tail -n 1)
NNG_PORT=$(sed -n 's/.* workers tcp:\/\/[0-9.]*:\([0-9]*\), http .*/\1/p' <<<"$line")
HTTP_PORT=$(sed -n 's/.*, http 127\.0\.0\.1:\([0-9]*\), .*/\1/p' <<<"$line")
export CAIRN_SERVER=http://127.0.0.1:$HTTP_PORT
wait_http

# start_remote NAME I LABELS: a worker in namespace w$I, dialing 10.231.I.1
start_remote() {
    mkdir -p "$T/$1"
    ip netns exec "$NS-w$2" "$WORKER" --scheduler "tcp://10.231.$2.1:$NNG_PORT" \
        --data "$T/$1" --name "$1" --slots 1 --token-file "$T/token" --labels "$3" --isolation none \
        >>"$T/$1.log" 2>&1 &
    PIDS+=("$!")
    eval "PID_$1=$!"
    wait_until 20 sh -c "'$CAIRN' workers --json | grep -q '\"$1\"'"
}
link() { # link I up|down: the worker namespace's end of the cable
    ip -n "$NS-w$1" link set "cp${NS#cairn-part-}w$1" "$2"
}
running_on() { # running_on RUN DAG WORKER
    attempts "$1" "$2" work | jq -e --arg w "$3" \
        '.attempts | last | .state == "running" and .worker == $w' >/dev/null
}

check "worker w1 in its own namespace registers over the veth" start_remote w1 1 zone=a

# --- a cut shorter than the lease TTL ------------------------------------
R1=$("$CAIRN" trigger pinned --json | jq -r .run_id)
check "a pinned task runs on w1" wait_until 20 running_on "$R1" pinned w1
link 1 down
sleep 1
link 1 up
check "after a 1 s cut (TTL 3 s) the run succeeds" [ "$(wait_run "$R1" pinned 30)" = success ]
check "  with one attempt: nothing ran again" [ "$(ti attempts "$R1" pinned work)" = 1 ]
check "  and its whole log" bash -c '"$0" logs "$1" work --dag pinned | grep -qx "end 1"' \
    "$CAIRN" "$R1"
check "  no lease expired" bash -c '! grep -q CAIRN-LEASE-EXPIRED "$0"' "$T/s.log"

# --- a cut longer than the lease TTL ---------------------------------------
R2=$("$CAIRN" trigger free --json | jq -r .run_id)
check "a task runs on w1" wait_until 20 running_on "$R2" free w1
link 1 down
check "w2 (another namespace) registers" start_remote w2 2 zone=b
check "with w1 cut off past the TTL its lease expires" \
    wait_until 20 grep -q CAIRN-LEASE-EXPIRED "$T/s.log"
check "  and the task runs again, on w2" wait_until 20 running_on "$R2" free w2
link 1 up
check "the run succeeds" [ "$(wait_run "$R2" free 60)" = success ]
won=$(attempts "$R2" free work | jq -r '[.attempts[] | select(.state == "success") | "\(.attempt)@\(.worker)"] | join(",")')
check "  with the answer of attempt 2, from w2 (got $won)" [ "$won" = 2@w2 ]
# w1's task ends on its own after the heal; its RESULT must not count
check "w1's late result for the expired lease is refused" \
    wait_until 20 sh -c "grep -qE 'CAIRN-LEASE-STALE worker w1 sent RESULT' '$T/s.log'"
a1=$(attempts "$R2" free work | jq -r '.attempts[0].state')
check "  and attempt 1 stays as the lease expiry left it ($a1)" [ "$a1" != success ] 
check "  the run is still success" [ "$(run_state "$R2" free)" = success ]
finish
