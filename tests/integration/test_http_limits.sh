#!/usr/bin/env bash
# The HTTP API under hostile clients, against a real scheduler, while a run
# goes on: slowloris (a header byte a second), a huge head, a huge body,
# request smuggling (Content-Length with Transfer-Encoding, two differing
# Content-Lengths), deep pipelining, and more connections than the cap. Each
# is answered with its status and logged; /api/v1/health answers during
# them (but while the connection cap is full) and the run ends in success.
. "$(dirname "$0")/lib.sh"

put_dag slow <<'EOF2'
dag: slow
tasks:
  a: {command: ["sleep", "3"]}
  b: {command: ["sleep", "3"], needs: [a]}
  c: {command: ["sleep", "3"], needs: [b]}
  d: {command: ["sleep", "3"], needs: [c]}
  e: {command: ["sleep", "3"], needs: [d]}
  f: {command: ["sleep", "3"], needs: [e]}
EOF2

start_scheduler sched
start_worker w --slots 2 --isolation none
run=$("$CAIRN" trigger slow)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$SCHED_PID/status"; }
# (AddressSanitizer's quarantine keeps freed memory: RSS says nothing there)
asan=0; grep -qa __asan_init "$SCHED" && asan=1
bounded() { [ "$asan" = 1 ] || [ $(($1 - $2)) -lt "$3" ]; }
rss0=$(rss)

cat >"$T/attack.py" <<'EOF2'
import socket, sys, time, threading
port = int(sys.argv[2]); mode = sys.argv[1]
H = "Host: 127.0.0.1\r\n"

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s

def status(s):
    data = b""
    try:
        while b"\r\n" not in data:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except OSError:
        pass
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    return line.split(" ")[1] if line.startswith("HTTP/1.1 ") else "none"

def one(raw):
    s = conn(); s.sendall(raw); st = status(s); s.close(); return st

if mode == "slowloris":
    n = int(sys.argv[3]); socks = []; t0 = time.time()
    for i in range(n):
        s = conn(); s.sendall(("GET /api/v1/health HTTP/1.1\r\n" + H).encode()); socks.append(s)
    res = {}
    def trickle(i, s):
        try:
            for k in range(40):
                time.sleep(1); s.sendall(b"X")
        except OSError:
            pass
    def reader(i, s):
        res[i] = (status(s), time.time() - t0)
    th = [threading.Thread(target=trickle, args=(i, s)) for i, s in enumerate(socks)]
    th += [threading.Thread(target=reader, args=(i, s)) for i, s in enumerate(socks)]
    for x in th: x.start()
    for x in th[n:]: x.join()
    got = [r[0] for r in res.values()]
    print("408s=%d of %d, last after %.1f s" % (got.count("408"), n, max(r[1] for r in res.values())))
elif mode == "head":
    print(one(("GET /api/v1/health HTTP/1.1\r\n" + H + "X-Big: " + "a" * 20000 + "\r\n\r\n").encode()))
elif mode == "body":
    s = conn()
    s.sendall(("POST /api/v1/dags/slow/trigger HTTP/1.1\r\n" + H +
               "Content-Type: application/json\r\nContent-Length: 9000000\r\n\r\n").encode())
    try:
        s.sendall(b"{" * 65536)
    except OSError:
        pass
    print(status(s))
elif mode == "smuggle":
    print(one(("POST /api/v1/dags/slow/pause HTTP/1.1\r\n" + H + "Content-Type: application/json\r\n"
               "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/v1/runs HTTP/1.1\r\n\r\n").encode()),
          one(("POST /api/v1/dags/slow/pause HTTP/1.1\r\n" + H + "Content-Type: application/json\r\n"
               "Content-Length: 2\r\nContent-Length: 30\r\n\r\n{}").encode()),
          one(("POST /api/v1/dags/slow/pause HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n"
               "2\r\n{}\r\n0\r\n\r\n").encode()))
elif mode == "pipeline":
    n = int(sys.argv[3]); s = conn()
    s.sendall((("GET /api/v1/health HTTP/1.1\r\n" + H + "\r\n") * n).encode())
    data = b""; s.settimeout(20)
    try:
        while data.count(b"HTTP/1.1 200 ") < n:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError:
        pass
    print(data.count(b"HTTP/1.1 200 "))
elif mode == "noread":
    n = int(sys.argv[3]); socks = []
    req = (("GET /api/v1/dags HTTP/1.1\r\n" + H + "\r\n") * 4000).encode()
    for i in range(n):
        s = conn(); s.setblocking(False); socks.append(s)
        try:
            s.send(req)
        except BlockingIOError:
            pass
    open(sys.argv[4], "w").write("sent\n")
    time.sleep(float(sys.argv[5]))
    for s in socks: s.close()
elif mode == "flood":
    n = int(sys.argv[3]); socks = []
    for i in range(n):
        try:
            socks.append(conn())
        except OSError:
            break
    time.sleep(1)
    codes = {}
    for s in socks:
        s.setblocking(False)
        try:
            d = s.recv(200)
            c = d.split(b" ")[1].decode() if d.startswith(b"HTTP/1.1 ") else ("closed" if d == b"" else "?")
        except BlockingIOError:
            c = "open"
        except OSError:
            c = "reset"
        codes[c] = codes.get(c, 0) + 1
    print(" ".join("%s=%d" % kv for kv in sorted(codes.items())))
    sys.stdout.flush()
    open(sys.argv[4], "w").write("held\n")
    time.sleep(float(sys.argv[5]))
    for s in socks: s.close()
EOF2
py() { /usr/bin/python3 "$T/attack.py" "$1" "$HTTP_PORT" "${@:2}"; }
health() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$CAIRN_SERVER/api/v1/health"; }

# --- slowloris, with health probes while it goes on
py slowloris 50 >"$T/slow.out" &
slow_pid=$!
PIDS+=("$slow_pid")
hok=0; hbad=0
for i in $(seq 1 16); do
    if [ "$(health)" = 200 ]; then hok=$((hok + 1)); else hbad=$((hbad + 1)); fi
    sleep 0.5
done
wait "$slow_pid" || true
forget_pid "$slow_pid"
cat "$T/slow.out"
check "slowloris: all 50 connections got 408 within the head timeout (10 s)" \
    sh -c "grep -q '^408s=50 of 50' '$T/slow.out' && awk '{if (\$6+0 > 13) exit 1}' '$T/slow.out'"
check "health answered all along ($hok ok, $hbad not)" [ "$hbad" = 0 ]
check "the timeouts are logged" logged sched "CAIRN-HTTP-TIMEOUT 408 to 127.0.0.1:[0-9]+: the request head did not arrive in time"

# --- a huge head, a huge body, smuggling
check "a 20 KB head is 431" [ "$(py head)" = 431 ]
check "and logged" logged sched "CAIRN-HTTP-REFUSED 431 to 127.0.0.1"
check "a 9 MB body is 413" [ "$(py body)" = 413 ]
check "and logged" logged sched "CAIRN-HTTP-REFUSED 413 to 127.0.0.1"
sm=$(py smuggle)
check "Content-Length with Transfer-Encoding, differing Content-Lengths: 400; chunked alone: 411 ($sm)" \
    [ "$sm" = "400 400 411" ]
check "the smuggling attempts are logged" \
    sh -c "grep -q 'CAIRN-HTTP-REFUSED 400 .*both Content-Length and Transfer-Encoding' '$T/sched.log' && grep -q 'CAIRN-HTTP-REFUSED 400 .*conflicting Content-Length' '$T/sched.log'"
check "the smuggled request did not pause the DAG" \
    sh -c "'$CAIRN' dags show slow --json | jq -e '.paused == false' >/dev/null"

# --- deep pipelining on one connection: every request answered, in order
check "500 pipelined requests on one connection: 500 answers" [ "$(py pipeline 500)" = 500 ]

# --- clients that pipeline thousands of requests and never read an answer
py noread 60 "$T/sent" 4 &
nr_pid=$!
PIDS+=("$nr_pid")
wait_until 20 test -s "$T/sent" || true
sleep 1
check "with 60 clients that never read, health answers" [ "$(health)" = 200 ]
rss_nr=$(rss)
check "and the scheduler holds no more than 50 MB for them (${rss0} KiB -> ${rss_nr} KiB)" \
    bounded "$rss_nr" "$rss0" 50000
wait "$nr_pid" || true
forget_pid "$nr_pid"

# --- more connections than the cap (1024)
py flood 1100 "$T/held" 3 >"$T/flood.out" &
flood_pid=$!
PIDS+=("$flood_pid")
wait_until 30 test -s "$T/held" || true
cat "$T/flood.out"
check "beyond 1024 connections, new ones get 503 ($(cat "$T/flood.out"))" \
    sh -c "grep -Eq '503=(7[0-9]|[89][0-9])' '$T/flood.out' && grep -Eq 'open=10(2[0-4]|1[0-9])' '$T/flood.out'"
check "a health probe while the cap is full is refused, not stalled" \
    sh -c "st=\$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 '$CAIRN_SERVER/api/v1/health'); [ \"\$st\" = 503 ] || [ \"\$st\" = 000 ]"
wait "$flood_pid" || true
forget_pid "$flood_pid"
check "the refused connections are logged" logged sched "CAIRN-HTTP-TOO-MANY more than 1024 connections: 503 to"
check "once they are gone, health answers again" wait_until 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 '$CAIRN_SERVER/api/v1/health')\" = 200 ]"

# --- through all of it
check "the scheduler is alive" kill -0 "$SCHED_PID"
rss1=$(rss)
check "its memory stayed bounded (${rss0} KiB -> ${rss1} KiB)" bounded "$rss1" "$rss0" 100000
check "the run started before the attacks ends in success" [ "$(wait_run "$run" slow 90)" = success ]
check "the scheduler's loop never stalled for a second" \
    sh -c "curl -s '$CAIRN_SERVER/api/v1/health' | jq -e '.loop.max_iteration_ms < 1000' >/dev/null"
finish
