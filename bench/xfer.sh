#!/usr/bin/env bash
# Artifact transfer through the scheduler against a static file server, in
# the same run, on loopback: a 1 GiB blob downloaded from the scheduler's
# blob route (GET /api/v1/leases/ID/blobs/SHA, as a worker that does not
# see the store gets its inputs: read and hashed on the thread pool a few
# chunks ahead of the one being written) and the same file from
# `python3 -m http.server`, both with curl to /dev/null, alternated, median
# of 3. The ratio is the scheduler's MB/s over the static server's (1.00:
# as fast). A tiny wire peer holds the lease whose input the blob is.
# XFER_PERF=FILE also records a perf profile of the scheduler during one
# more download. Usage: bench/xfer.sh [BUILD_DIR] [SIZE_MIB] (default 1024)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
size_mib=${2:-1024}

mkdir -p "$w/dags"
cat >"$w/dags/big.yaml" <<EOF
dag: big
defaults: {retries: 0}
tasks:
  make:
    command: [sh, -c, 'head -c ${size_mib}M /dev/urandom > "\$CAIRN_OUTPUTS/blob"']
    outputs: [blob]
  hold:
    needs: [make]
    labels: {pool: peer}
    inputs: {b: make/blob}
    command: ["true"]
EOF
bench_scheduler
bench_worker 1
"$CAIRN" trigger big >/dev/null
cat >"$w/peer.py" <<'PY'
import json, socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
def recv_n(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b
recv_n(8)
rid = [0x80000001]
def call(typ, body):
    b = json.dumps(body).encode()
    m = struct.pack(">I", rid[0]) + b"CRN\x01" + struct.pack(">HHI", typ, 0, len(b)) + b
    rid[0] += 1
    s.sendall(struct.pack(">Q", len(m)) + m)
    fr = recv_n(struct.unpack(">Q", recv_n(8))[0])[4:]
    t, _, bl = struct.unpack(">HHI", fr[4:12])
    return t, json.loads(fr[12:12 + bl])
call(1, {"worker": "peer", "slots": 1, "labels": {"pool": "peer"}})
while True:
    t, b = call(3, {"worker": "peer", "free": 1, "leases": [], "wait_ms": 0})
    if b.get("leases"):
        l = b["leases"][0]
        break
    time.sleep(0.2)
print(l["lease_id"], l["xfer_token"], l["inputs"][0]["sha256"], flush=True)
while True:  # heartbeats until killed
    call(3, {"worker": "peer", "free": 0, "leases": [l["lease_id"]], "wait_ms": 0})
    time.sleep(0.5)
PY
/usr/bin/python3 "$w/peer.py" "$nng" >"$w/peer.out" 2>"$w/peer.err" &
pids+=($!)
for _ in $(seq 600); do [ -s "$w/peer.out" ] && break; sleep 0.2; done
[ -s "$w/peer.out" ] || { echo "the peer got no lease" >&2; cat "$w/peer.err" >&2; exit 1; }
read -r lease token sha <"$w/peer.out"
blob=$w/sched/artifacts/blobs/sha256/${sha:0:2}/${sha:2}
static_port=$(bench_port)
(cd "$(dirname "$blob")" && exec /usr/bin/python3 -m http.server "$static_port" --bind 127.0.0.1 \
    >"$w/static.log" 2>&1) &
pids+=($!)
static_pid=$!
for _ in $(seq 50); do curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$static_port/${sha:2}" && break; sleep 0.1; done

via_sched() {
    curl -sf -o /dev/null -w '%{speed_download}\n' -H "Authorization: Bearer $token" \
        "$CAIRN_SERVER/api/v1/leases/$lease/blobs/$sha"
}
via_static() { curl -sf -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$static_port/${sha:2}"; }
median() { sort -g | sed -n 2p; } # of 3
# CPU seconds (user + system) a process has used so far
# (PID/task/PID: its main thread, the scheduler's loop)
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

via_sched >/dev/null; via_static >/dev/null # warm-up (page cache)
if [ -n "${XFER_PERF:-}" ]; then # profile the scheduler during one more download
    perf record -q -g -o "$XFER_PERF" -p "${pids[0]}" -- sleep 30 2>/dev/null &
    perf_pid=$!
    sleep 1
    via_sched >/dev/null
    kill -INT "$perf_pid"; wait "$perf_pid" || true
fi
: >"$w/a"; : >"$w/b"
ca0=$(cpu_s "${pids[0]}"); cb0=$(cpu_s "$static_pid"); cl0=$(cpu_s "${pids[0]}/task/${pids[0]}")
for _ in 1 2 3; do via_sched >>"$w/a"; via_static >>"$w/b"; done
ca=$(echo "($(cpu_s "${pids[0]}") - $ca0) / 3" | bc -l)
cl=$(echo "($(cpu_s "${pids[0]}/task/${pids[0]}") - $cl0) / 3" | bc -l) cb=$(echo "($(cpu_s "$static_pid") - $cb0) / 3" | bc -l)
a=$(median <"$w/a"); b=$(median <"$w/b")
printf 'blob: %s bytes, median of 3, alternated\n' "$(stat -c %s "$blob")"
printf '%-34s %10.0f MB/s %6.2f CPU s each\n' "scheduler blob route (hashed)" "$(echo "$a / 1000000" | bc -l)" "$ca"
printf '%-34s %10s      %6.2f CPU s each\n' "  of it on the scheduler's loop" "" "$cl"
printf '%-34s %10.0f MB/s %6.2f CPU s each\n' "python3 -m http.server" "$(echo "$b / 1000000" | bc -l)" "$cb"
printf '%-34s %10.2f\n' "ratio scheduler/static" "$(echo "$a / $b" | bc -l)"
