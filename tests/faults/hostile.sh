#!/usr/bin/env bash
# The API under a hostile and a heavy load at once, while a run proceeds:
# 300 slowloris connections (a header byte every 2 s) and `ab` asking for
# the runs list of a DAG whose runs carry big params. Tasks keep flowing, the
# slowloris connections get 408, every list request is answered, and the
# scheduler's and the worker's memory stays bounded. The API's latency under
# this load is printed (median and 99th percentile), not asserted.
source "$(dirname "$0")/../integration/lib.sh"

N=${FAULT_SLOWLORIS:-300}
REQS=${FAULT_API_REQUESTS:-400}
big=$(head -c 60000 /dev/zero | tr '\0' x)
{
    echo "dag: fat"
    echo "params:"
    for i in 1 2 3 4; do echo "  p$i: \"$big\""; done
    echo "tasks:"
    echo '  a: {command: ["true"]}'
} | put_dag fat
put_dag flow <<'EOF2'
dag: flow
tasks:
  a: {command: [sh, -c, 'sleep 0.2']}
  b: {command: [sh, -c, 'sleep 0.2'], needs: [a]}
  c: {command: [sh, -c, 'sleep 0.2'], needs: [b]}
  d: {command: [sh, -c, 'sleep 0.2'], needs: [c]}
  e: {command: [sh, -c, 'sleep 0.2'], needs: [d]}
  f: {command: [sh, -c, 'sleep 0.2'], needs: [e]}
  g: {command: [sh, -c, 'sleep 0.2'], needs: [f]}
  h: {command: [sh, -c, 'sleep 0.2'], needs: [g]}
EOF2

start_scheduler s
start_worker w --slots 2 --isolation none
for i in $(seq 1 20); do "$CAIRN" trigger fat >/dev/null; done
wait_until 120 bash -c \
    '[ "$("$0" runs list --dag fat --state success --json | jq ".runs | length")" = 20 ]' "$CAIRN"
asan=0; grep -qa __asan_init "$SCHED" && asan=1
kb() { awk "/^$2/ {print \$2}" "/proc/$1/status"; }
echo 5 >"/proc/$SCHED_PID/clear_refs"
echo 5 >"/proc/$PID_w/clear_refs"
s0=$(kb "$SCHED_PID" VmRSS); w0=$(kb "$PID_w" VmRSS)

cat >"$T/loris.py" <<'EOF2'
# loris.py PORT N: N connections trickle a request head a byte every 2 s;
# print how many were answered 408
import socket, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
head = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 64
got = [0]
lock = threading.Lock()
def one():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=40)
        for b in head:
            s.send(bytes([b]))
            time.sleep(2)
    except OSError:
        pass
    try:
        if s.recv(64).startswith(b"HTTP/1.1 408"):
            with lock:
                got[0] += 1
    except OSError:
        pass
ts = [threading.Thread(target=one) for _ in range(n)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(got[0])
EOF2
/usr/bin/python3 "$T/loris.py" "$HTTP_PORT" "$N" >"$T/loris.out" &
loris=$!
sleep 2
r=$("$CAIRN" trigger flow)
ab -q -n "$REQS" -c 4 "$CAIRN_SERVER/api/v1/runs?dag=fat&limit=20" >"$T/ab.out" 2>&1 || true
check "the run goes on under it all" test "$(wait_run "$r" flow 120)" = success
wait "$loris"
check "the $N slowloris connections are answered 408 ($(cat "$T/loris.out"))" \
    test "$(cat "$T/loris.out")" -ge $((N * 9 / 10))
check "every list request is answered ($(awk '/^Complete requests/ {print $3}' "$T/ab.out") of $REQS)" \
    bash -c "grep -q '^Complete requests: *$REQS\$' '$T/ab.out' && grep -q '^Failed requests: *0\$' '$T/ab.out'"
p50=$(awk '$1 == "50%" {print $2}' "$T/ab.out"); p99=$(awk '$1 == "99%" {print $2}' "$T/ab.out")
echo "# runs list under the load: median ${p50:-?} ms, 99th percentile ${p99:-?} ms ($REQS requests, 4 at a time)"
sp=$(kb "$SCHED_PID" VmHWM); wp=$(kb "$PID_w" VmHWM)
echo "# peak RSS: scheduler $((s0 / 1024)) -> $((sp / 1024)) MB, worker $((w0 / 1024)) -> $((wp / 1024)) MB"
check "the scheduler's memory stays bounded" bash -c "[ $asan = 1 ] || [ $((sp - s0)) -lt 102400 ]"
check "the worker's memory stays bounded" bash -c "[ $asan = 1 ] || [ $((wp - w0)) -lt 51200 ]"
check "the slowloris connections are logged" logged s "CAIRN-HTTP-TIMEOUT 408 to 127.0.0.1:"
finish
