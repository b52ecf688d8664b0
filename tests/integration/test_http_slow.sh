#!/usr/bin/env bash
# Clients that hold the scheduler's memory. Big params do not make every
# runs list big (values over 1 KiB are left out of lists). 10 connections
# that ask for a 4 MB answer and never read it are dropped (a response is
# written a chunk at a time; one that is not read for 15 s, or while the
# responses held for all clients pass --http-response-memory, here 8 MiB,
# ends its connection), so the
# scheduler's memory stays bounded, /health answers and runs go on. And
# one address may hold only so many connections (--http-max-conns-per-ip).
. "$(dirname "$0")/lib.sh"

# a DAG whose runs carry four 60 KB params
big=$(head -c 60000 /dev/zero | tr '\0' x)
{
    echo "dag: fat"
    echo "params:"
    for i in 1 2 3 4; do echo "  p$i: \"$big\""; done
    echo "tasks:"
    echo '  a: {command: ["true"]}'
} | put_dag fat
# and one of 10,000 mapped instances: the list of them all is MBs
{
    echo "dag: wide"
    echo "tasks:"
    echo "  t:"
    echo '    command: ["true"]'
    echo "    matrix: {i: [$(seq -s, 1 10000)]}"
} | put_dag wide
put_dag quick <<'EOF2'
dag: quick
tasks:
  a: {command: ["true"]}
EOF2

start_scheduler s --http-response-memory 8Mi
start_worker w --slots 2 --isolation none
for i in $(seq 1 20); do "$CAIRN" trigger fat >/dev/null; done
check "20 runs of a DAG with big params" wait_until 120 bash -c \
    '[ "$("$0" runs list --dag fat --state success --limit 100 --json | jq ".runs | length")" = 20 ]' "$CAIRN"
list=$(curl -s "$CAIRN_SERVER/api/v1/runs?dag=fat&limit=20")
check "their runs list stays small ($(wc -c <<<"$list") bytes, 4.8 MB of params)" \
    test "$(wc -c <<<"$list")" -lt 200000
check "  naming the params it left out" test \
    "$(jq -c '.runs[0].params_elided' <<<"$list")" = '["p1","p2","p3","p4"]'
check "  with their size instead" test \
    "$(jq -r '.runs[0].params_effective.p1' <<<"$list")" = "(60000 bytes: see the run)"
run1=$(jq -r '.runs[0].run_id' <<<"$list")
check "runs show has the values" test "$(rj "$run1" fat '.params_effective.p1 | length')" = 60000

# --- clients that never read their answers
kill_wait "$PID_w" # the wide run stays queued: no worker
wide=$("$CAIRN" trigger wide)
inst="/api/v1/runs/$(urlenc "$wide")/tasks/t/instances?dag=wide&limit=10000"
check "the wide run has its 10,000 instances" wait_until 60 bash -c \
    '[ "$(curl -s "$0" | jq ".instances | length")" = 10000 ]' "$CAIRN_SERVER$inst"
size=$(curl -s "$CAIRN_SERVER$inst" | wc -c)
check "the list of them is over 4 MB ($size bytes)" test "$size" -gt 4000000

asan=0; grep -qa __asan_init "$SCHED" && asan=1 # (its quarantine keeps freed memory)
kb() { awk "/^$1/ {print \$2}" "/proc/$SCHED_PID/status"; }
# what one reader of that list costs the scheduler at its peak (building
# the answer takes more than the answer itself)...
rss0=$(kb VmRSS)
echo 5 >"/proc/$SCHED_PID/clear_refs" # restart the peak (VmHWM) from here
curl -s "$CAIRN_SERVER$inst" >/dev/null
one=$(($(kb VmHWM) - rss0))
echo 5 >"/proc/$SCHED_PID/clear_refs"
rss0=$(kb VmRSS)

cat >"$T/sloth.py" <<'EOF2'
# sloth.py PORT PATH N SECONDS: N connections each send three requests for
# PATH and read nothing; after SECONDS print how many were closed
import socket, sys, time
port, path, n, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode() * 3
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(req)
    socks.append(s)
time.sleep(secs)
closed = 0
for s in socks:  # a dropped connection shows as a reset or an end of stream
    s.setblocking(False)
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                closed += 1
                break
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(closed)
EOF2
/usr/bin/python3 "$T/sloth.py" "$HTTP_PORT" "$inst" 10 25 >"$T/sloth.out" &
sloth=$!
sleep 2
check "health answers while they hold their connections" \
    curl -sf --max-time 20 "$CAIRN_SERVER/api/v1/health"
wait "$sloth"
check "the slow readers are dropped ($(cat "$T/sloth.out") of 10)" test "$(cat "$T/sloth.out")" -ge 8
check "  and logged" logged s "CAIRN-HTTP-SLOW-READER dropped 127.0.0.1:"
# ...and what ten that never read cost: the 8 MiB budget and one answer
# more (and what the heap cannot give back between them), not ten answers
ten=$(($(kb VmHWM) - rss0))
check "the scheduler's memory stayed bounded (one reader: +$((one / 1024)) MB, ten slow ones: +$((ten / 1024)) MB)" \
    bash -c "[ $asan = 1 ] || [ $ten -lt $((one + 36864)) ]"
start_worker w2 --slots 2 --isolation none
r=$("$CAIRN" trigger quick)
check "runs go on" test "$(wait_run "$r" quick)" = success
check "a normal client still reads the whole answer" test \
    "$(curl -s --max-time 60 "$CAIRN_SERVER$inst" | jq '.instances | length')" = 10000

# --- connections per address
kill_wait "$SCHED_PID"
start_scheduler s --http-max-conns-per-ip 20
cat >"$T/hold.py" <<'EOF2'
# hold.py PORT N: open N idle connections; print how many got a 503 at once
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks, refused = [], 0
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
for s in socks:
    s.settimeout(1.0)
    try:
        if s.recv(4096).startswith(b"HTTP/1.1 503"):
            refused += 1
    except socket.timeout:
        pass
print(refused)
EOF2
refused=$(/usr/bin/python3 "$T/hold.py" "$HTTP_PORT" 30)
check "beyond 20 connections from one address, new ones get 503 ($refused of 30)" test "$refused" = 10
check "  and are logged" logged s "CAIRN-HTTP-TOO-MANY more than 20 connections from 127.0.0.1"
check "once they are gone, the address is served again" \
    wait_until 10 curl -sf "$CAIRN_SERVER/api/v1/health"
check "a bad --http-max-conns-per-ip is refused" bash -c \
    '"$0" --dags "$1" --data "$2" --http-max-conns-per-ip lots 2>&1 | grep -q "takes a number"' \
    "$SCHED" "$T/dags" "$T/bad"
finish
