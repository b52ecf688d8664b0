#!/usr/bin/env bash
# The worker socket against bad peers: raw garbage, well-framed nng (SP)
# messages with garbage, truncated or lying Cairn frames, and requests a
# worker should not send; shared tokens (wrong token, no token, a token
# file others can read). The scheduler must stay up, say what it refused,
# and still run a DAG afterwards.
source "$(dirname "$0")/lib.sh"

put_dag hello <<'EOF'
dag: hello
tasks:
  say: {command: [sh, -c, 'echo hello']}
EOF

# A tiny nng peer: REQ over TCP (docs: nng's TCP transport, "SP" header
# 0x00 'S' 'P' 0x00, protocol REQ0 = 0x30, then frames of a 64-bit length
# and the message; a REQ message starts with its request id, high bit set).
cat >"$T/sp.py" <<'EOF'
import json, os, socket, struct, sys

host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def connect():
    s = socket.create_connection((host, port), timeout=5)
    return s

def handshake(s):
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    peer = recv_n(s, 8)
    assert peer[:4] == b"\x00SP\x00", peer
    return struct.unpack(">H", peer[4:6])[0]

def recv_n(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed after %d bytes" % len(b))
        b += c
    return b

def request(s, payload, rid=0x80000001):
    msg = struct.pack(">I", rid) + payload
    s.sendall(struct.pack(">Q", len(msg)) + msg)

def reply(s):
    n = struct.unpack(">Q", recv_n(s, 8))[0]
    m = recv_n(s, n)
    frame = m[4:]
    magic, ver, typ, flags, blen = frame[:3], frame[3], *struct.unpack(">HHI", frame[4:12])
    return magic, typ, json.loads(frame[12:12 + blen])

def frame(typ, body, ver=1, blen=None):
    b = body if isinstance(body, bytes) else json.dumps(body).encode()
    return b"CRN" + bytes([ver]) + struct.pack(">HHI", typ, 0, len(b) if blen is None else blen) + b

if what == "raw":
    s = connect()
    s.sendall(os.urandom(4096))
    s.close()
    print("sent")
elif what == "huge":
    # a valid handshake, then a length far beyond the receive limit
    s = connect()
    handshake(s)
    s.sendall(struct.pack(">Q", 1 << 40) + os.urandom(64))
    try:
        print("closed" if s.recv(1) == b"" else "open")
    except OSError:
        print("closed")
else:
    s = connect()
    proto = handshake(s)
    payloads = {
        "garbage": os.urandom(200),
        "short": b"CRN\x01\x00",
        "version": frame(1, {"worker": "x"}, ver=99),
        "lying": frame(1, {"worker": "x"}, blen=1 << 30),
        "notjson": frame(1, b"{not json"),
        "badhello": frame(1, {"worker": "x", "slots": "many"}),
        "notrequest": frame(2, {"lease_ttl_ms": 1}),
        "stranger": frame(3, {"worker": "nobody", "free": 1}),
    }
    request(s, payloads[what])
    magic, typ, body = reply(s)
    print("peer 0x%02x reply %s type %d code %s" % (proto, magic.decode(), typ, body.get("code")))
EOF
sp() { /usr/bin/python3 "$T/sp.py" 127.0.0.1 "$NNG_PORT" "$@"; }
alive() { curl -sf "$CAIRN_SERVER/api/v1/health" >/dev/null && kill -0 "$SCHED_PID"; }

start_scheduler s

# --- garbage on the worker socket ------------------------------------------
sp raw >/dev/null
check "raw garbage: the scheduler is still up" alive
check "a length past the limit: the connection is closed" [ "$(sp huge)" = closed ]
check "a length past the limit: the scheduler is still up" alive
check "SP garbage is answered with an ERROR frame" \
    [ "$(sp garbage)" = "peer 0x31 reply CRN type 9 code proto" ]
check "SP garbage is logged" logged s "CAIRN-WIRE-REJECT rejected a message: .*magic"
check "a truncated frame is refused" [ "$(sp short)" = "peer 0x31 reply CRN type 9 code proto" ]
check "an unknown protocol version is refused" \
    [ "$(sp version)" = "peer 0x31 reply CRN type 9 code version" ]
check "a frame whose length lies is refused" [ "$(sp lying)" = "peer 0x31 reply CRN type 9 code proto" ]
check "a body that is not JSON is refused" [ "$(sp notjson)" = "peer 0x31 reply CRN type 9 code proto" ]
check "a HELLO with a mistyped field is refused" \
    [ "$(sp badhello)" = "peer 0x31 reply CRN type 9 code proto" ]
check "a reply type sent as a request is refused" \
    [ "$(sp notrequest)" = "peer 0x31 reply CRN type 9 code proto" ]
check "...and logged" logged s "CAIRN-WIRE-REJECT rejected a WELCOME message"
check "a POLL from a worker that never said HELLO is refused" \
    [ "$(sp stranger)" = "peer 0x31 reply CRN type 9 code unknown_worker" ]
check "nobody registered through all that" \
    [ "$("$CAIRN" workers --json | jq '.workers | length')" = 0 ]
check "the scheduler is still up after all that" alive
start_worker w1 --isolation none
RUN=$("$CAIRN" trigger hello)
check "it still runs a DAG" [ "$(wait_run "$RUN" hello 20)" = success ]
check "...whose task printed" [ "$("$CAIRN" logs "$RUN" say --dag hello)" = hello ]
kill_wait "$PID_w1" TERM
kill_wait "$SCHED_PID" TERM
check "the scheduler stops cleanly after all that" [ "$EXIT_STATUS" = 0 ]

# --- shared tokens ---------------------------------------------------------
printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n' >"$T/token-a"
printf 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n' >"$T/token-b"
chmod 600 "$T/token-a" "$T/token-b"
cp "$T/token-a" "$T/token-open"
chmod 644 "$T/token-open"

set +e
timeout 10 "$SCHED" --dags "$T/dags" --data "$T/s-open" --listen tcp://127.0.0.1:0 \
    --http 127.0.0.1:0 --token-file "$T/token-open" >"$T/open.out" 2>&1
OPEN_RC=$?
timeout 10 "$WORKER" --scheduler "tcp://127.0.0.1:1" --data "$T/w-open" \
    --token-file "$T/token-open" >"$T/wopen.out" 2>&1
WOPEN_RC=$?
set -e
check "a scheduler refuses a token file others can read" [ "$OPEN_RC" != 0 -a "$OPEN_RC" != 124 ]
check "...and says why" grep -q "accessible by group or others (mode 0644); run: chmod 600" "$T/open.out"
check "a worker refuses a token file others can read" [ "$WOPEN_RC" = 2 ]
check "...and says why" grep -q "accessible by group or others (mode 0644)" "$T/wopen.out"

unset HTTP_PORT NNG_PORT
start_scheduler st --token-file "$T/token-a"
mkdir -p "$T/wb"
"$WORKER" --scheduler "$NNG_URL" --data "$T/wb" --name wb --token-file "$T/token-b" \
    --isolation none >>"$T/wb.log" 2>&1 &
WB=$!
PIDS+=("$WB")
"$WORKER" --scheduler "$NNG_URL" --data "$T/wn" --name wn --isolation none >>"$T/wn.log" 2>&1 &
WN=$!
PIDS+=("$WN")
check "the scheduler logs the wrong token" wait_until 10 logged st "CAIRN-WIRE-REJECT.*token does not match"
check "the scheduler logs a worker without a token" \
    wait_until 10 logged st "CAIRN-WIRE-REJECT.*not signed"
check "the worker with the wrong token says it was refused" \
    wait_until 10 logged wb "token does not match"
check "the worker without a token says how to fix it" \
    wait_until 10 logged wn "no token is configured here; set --token-file"
start_worker wa --token-file "$T/token-a" --isolation none
check "the worker with the right token registered" \
    [ "$("$CAIRN" workers --json | jq -r '[.workers[].name] | join(",")')" = wa ]
check "the worker with the wrong token did not" \
    [ "$("$CAIRN" workers --json | jq '[.workers[] | select(.name == "wb")] | length')" = 0 ]
check "the worker without a token did not" \
    [ "$("$CAIRN" workers --json | jq '[.workers[] | select(.name == "wn")] | length')" = 0 ]
RUN=$("$CAIRN" trigger hello)
check "a run goes through the worker with the right token" [ "$(wait_run "$RUN" hello 20)" = success ]
check "...on that worker" [ "$(ti worker "$RUN" hello say)" = wa ]
check "the refused workers are still up, trying" kill -0 "$WB" "$WN"
finish
