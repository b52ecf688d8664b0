#!/usr/bin/env bash
# The worker link's security: mutual TLS with certificates from
# `cairn certs init` (a DAG runs over tls+tcp://); a worker with a
# certificate from another CA, an expired one, or one that names another
# worker is refused and the scheduler's log says so; a non-loopback link without
# TLS or a token does not start; a second connection cannot post results
# for another worker's lease nor take its name (over TLS with a valid
# certificate, and over plain TCP with the shared token).
source "$(dirname "$0")/lib.sh"

put_dag hello <<'EOF2'
dag: hello
tasks:
  say: {command: [sh, -c, 'echo hello over tls']}
  after: {needs: [say], command: [sh, -c, 'echo done']}
EOF2
put_dag long <<'EOF2'
dag: long
tasks:
  nap: {command: [sh, -c, 'sleep 20; echo woke']}
EOF2

# --- certificates ------------------------------------------------------------
"$CAIRN" certs init "$T/pki" --scheduler-name sched --worker w1 --worker w2 >"$T/certs.out"
check "certs init makes the CA, the scheduler's and the workers' files" \
    test -s "$T/pki/ca.crt" -a -s "$T/pki/ca.key" -a -s "$T/pki/scheduler.crt" \
    -a -s "$T/pki/w1.crt" -a -s "$T/pki/w1.key" -a -s "$T/pki/w2.crt"
check "keys are mode 0600" [ "$(stat -c %a "$T/pki/ca.key" "$T/pki/scheduler.key" \
    "$T/pki/w1.key" | sort -u)" = 600 ]
check "the worker's certificate names it" \
    bash -c "openssl x509 -in '$T/pki/w1.crt' -noout -ext subjectAltName | grep -q 'DNS:w1'"
check "the certificates chain to the CA" \
    openssl verify -CAfile "$T/pki/ca.crt" "$T/pki/scheduler.crt" "$T/pki/w1.crt"
cp "$T/pki/w1.crt" "$T/w1.crt.before"
"$CAIRN" certs init "$T/pki" --worker w1 --worker w3 >"$T/certs2.out"
check "a second run keeps what exists and adds what is new" \
    bash -c "cmp -s '$T/pki/w1.crt' '$T/w1.crt.before' && test -s '$T/pki/w3.crt' &&
             grep -q 'kept the CA' '$T/certs2.out'"
"$CAIRN" certs init "$T/other" --scheduler-name sched --worker w1 >/dev/null

P=$T/pki
TLS_S=(--tls-cert "$P/scheduler.crt" --tls-key "$P/scheduler.key" --tls-ca "$P/ca.crt")

# start_tls_scheduler NAME [args]: like start_scheduler, on tls+tcp://
start_tls_scheduler() {
    local name=$1 line i; shift
    mkdir -p "$T/$name"
    "$SCHED" --dags "$T/dags" --data "$T/$name" --listen "tls+tcp://127.0.0.1:0" \
        --http 127.0.0.1:0 "$@" >>"$T/$name.log" 2>&1 &
    SCHED_PID=$!
    PIDS+=("$SCHED_PID")
    for i in $(seq 1 100); do
        line=$(grep CAIRN-START "$T/$name.log" | tail -n 1 || true)
        [ -n "$line" ] && break
        sleep 0.1
    done
    NNG_PORT=$(sed -n 's/.* workers tls+tcp:\/\/127\.0\.0\.1:\([0-9]*\), http .*/\1/p' <<<"$line")
    HTTP_PORT=$(sed -n 's/.*, http 127\.0\.0\.1:\([0-9]*\), .*/\1/p' <<<"$line")
    [ -n "$NNG_PORT" ] && [ -n "$HTTP_PORT" ] || { echo "no TLS scheduler" >&2; return 1; }
    NNG_URL=tls+tcp://127.0.0.1:$NNG_PORT
    export CAIRN_SERVER=http://127.0.0.1:$HTTP_PORT
    wait_http
}
# tls_worker NAME CERTDIR CERTNAME [args]: a worker in the background (PID_NAME)
tls_worker() {
    local name=$1 dir=$2 cert=$3; shift 3
    mkdir -p "$T/$name"
    "$WORKER" --scheduler "$NNG_URL" --data "$T/$name" --name "$name" --isolation none \
        --tls-cert "$dir/$cert.crt" --tls-key "$dir/$cert.key" --tls-ca "$dir/ca.crt" \
        --tls-server-name sched "$@" >>"$T/$name.log" 2>&1 &
    PIDS+=("$!")
    eval "PID_$name=$!"
}
registered() { "$CAIRN" workers --json | jq -e --arg n "$1" '.workers[] | select(.name == $n)' >/dev/null; }
not_registered() { ! registered "$1"; }

start_tls_scheduler s "${TLS_S[@]}"
check "the scheduler listens on tls+tcp://" [ -n "$NNG_PORT" ]

# --- a certificate from another CA ------------------------------------------------
# (its own CA file trusts the scheduler, so the refusal is the scheduler's)
cp "$T/pki/ca.crt" "$T/other/trust.crt"
mkdir -p "$T/rogueca"
cp "$T/other/w1.crt" "$T/other/w1.key" "$T/rogueca/"
cp "$T/pki/ca.crt" "$T/rogueca/ca.crt"
tls_worker w1 "$T/rogueca" w1
RUN=$("$CAIRN" trigger hello)
sleep 3
check "a worker with another CA's certificate is refused in the handshake (scheduler log)" \
    logged s "CAIRN-TLS-REFUSED refused [0-9]+ worker connections? .*not from this scheduler's CA"
check "...and the worker says so" logged w1 "CAIRN-TLS-REFUSED TLS handshake .* failed"
check "...it never registered" not_registered w1
check "...and the run did not get its tasks" [ "$(ti state "$RUN" hello say)" = queued ]
kill_wait "$PID_w1" TERM

# --- an expired certificate from the right CA ---------------------------------------
mkdir -p "$T/expired"
cp "$T/pki/ca.crt" "$T/expired/"
(cd "$T/expired" && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout w1.key -out w1.csr -subj /CN=w1 2>/dev/null &&
    printf 'subjectAltName=DNS:w1\nextendedKeyUsage=clientAuth\n' >w1.ext &&
    openssl x509 -req -in w1.csr -CA "$T/pki/ca.crt" -CAkey "$T/pki/ca.key" -CAcreateserial \
        -out w1.crt -days -1 -extfile w1.ext 2>/dev/null && chmod 600 w1.key)
sleep 1.5 # the scheduler logs refused handshakes once a second: let the last ones show
BEFORE=$(grep -c CAIRN-TLS-REFUSED "$T/s.log" || true)
WBEFORE=$(wc -l <"$T/w1.log")
tls_worker w1 "$T/expired" w1
more_refusals() { [ "$(grep -c CAIRN-TLS-REFUSED "$T/s.log" || true)" -gt "$BEFORE" ]; }
check "a worker with an expired certificate is refused in the handshake (scheduler log)" \
    wait_until 10 more_refusals
check "...and the worker says so" \
    bash -c "tail -n +$((WBEFORE + 1)) '$T/w1.log' | grep -q 'CAIRN-TLS-REFUSED TLS handshake .* failed'"
check "...it never registered" not_registered w1
check "...and the run still did not get its tasks" [ "$(ti state "$RUN" hello say)" = queued ]
kill_wait "$PID_w1" TERM

# --- a certificate for another name ------------------------------------------------
tls_worker w9 "$P" w2
check "a worker whose certificate is for another name is refused" \
    wait_until 10 logged s "CAIRN-WORKER-REFUSED HELLO as worker 'w9' refused: the worker's certificate is for 'w2', not 'w9'"
check "...it never registered" not_registered w9
kill_wait "$PID_w9" TERM

# --- the right certificate -----------------------------------------------------------
tls_worker w1 "$P" w1
check "a worker with its own certificate registers over TLS" wait_until 10 registered w1
check "the run goes to success over TLS" [ "$(wait_run "$RUN" hello 30)" = success ]
check "...and its task's log came over the link" \
    [ "$("$CAIRN" logs "$RUN" say --dag hello)" = "hello over tls" ]

# --- another worker's lease ----------------------------------------------------------------
# A tiny peer that speaks the wire (SP over TLS or TCP, Cairn frames signed
# with the token when it has one).
cat >"$T/peer.py" <<'PY'
import base64, hashlib, hmac, json, socket, ssl, struct, subprocess, sys, time

port, mode, name, lease = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
pki = sys.argv[5] if len(sys.argv) > 5 else ""
key = b""
s = None

def connect():
    global s, key
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if mode == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(pki + "/ca.crt")
        ctx.load_cert_chain(pki + "/w2.crt", pki + "/w2.key")
        s = ctx.wrap_socket(raw, server_hostname="sched")
    else:
        s = raw
        key = open(sys.argv[5]).read().strip().encode()
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    recv_n(8)

def recv_n(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b

rid = [0x80000001]
sent = []

def call_frame(f):
    m = struct.pack(">I", rid[0]) + f
    rid[0] += 1
    s.sendall(struct.pack(">Q", len(m)) + m)
    n = struct.unpack(">Q", recv_n(8))[0]
    fr = recv_n(n)[4:]
    t, _, bl = struct.unpack(">HHI", fr[4:12])
    return t, json.loads(fr[12:12 + bl])

def call(typ, body):
    b = json.dumps(body).encode()
    f = b"CRN\x01" + struct.pack(">HHI", typ, 1 if key else 0, len(b)) + b
    if key:
        f += hmac.new(key, f, hashlib.sha256).digest()
    t, r = call_frame(f)
    if typ == 1 and t == 9 and r.get("code") == "challenge":  # answer the nonce
        sent.append(None)
        return call(typ, dict(body, nonce=r["message"]))
    sent.append(f)
    return t, r

connect()

def hello(worker):
    h = {"worker": worker, "slots": 1}
    if mode == "tls":  # w2's certificate, and a good signature made with its key
        ts = int(time.time() * 1000)
        text = "cairn-hello-v1\n%s\n%d" % (worker, ts)
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pki + "/w2.key"],
                             input=text.encode(), capture_output=True, check=True).stdout
        h.update(cert=open(pki + "/w2.crt").read(), cert_ts=ts,
                 cert_sig=base64.b64encode(sig).decode())
    return h

if name == "hello-as-w1":
    t, b = call(1, hello("w1"))
    print("hello-as-w1", t, b.get("code"), b.get("message"))
    sys.exit(0)
t, b = call(1, hello("w2"))
print("hello", t, b.get("code", "ok"))
if name == "replay":
    # the HELLO that was welcomed, sent again as it is on a new connection
    frame = sent[-1]
    connect()
    t, b = call_frame(frame)
    print("replayed-hello", t, b.get("code"))
    t, b = call(3, {"worker": "w2", "free": 1, "leases": [], "wait_ms": 0})
    print("replayed-poll", t, b.get("code"))
    sys.exit(0)
res = {"lease_id": lease, "exit_code": 0, "signal": 0, "oom": False, "timed_out": False,
       "duration_ms": 1, "outputs": []}
t, b = call(7, dict(res, worker="w2"))
print("own-name", t, b.get("ok"), b.get("reason"))
t, b = call(7, dict(res, worker="w1"))
print("their-name", t, b.get("code"))
t, b = call(6, {"worker": "w1", "lease_id": lease, "stream": 1, "offset": 0, "data": "forged\n"})
print("their-log", t, b.get("code"))
PY

LRUN=$("$CAIRN" trigger long)
wait_until 20 logged w1 "long/.*/nap#1: started \(lease [0-9]+\)"
LEASE=$(sed -n 's/.*long\/.*\/nap#1: started (lease \([0-9]*\)).*/\1/p' "$T/w1.log" | head -n 1)
check "w1 holds the long task's lease" [ -n "$LEASE" ]
OUT=$(/usr/bin/python3 "$T/peer.py" "$NNG_PORT" tls w2 "$LEASE" "$P" 2>&1 || true)
echo "$OUT" | sed 's/^/# /'
check "a second worker (w2, its own valid certificate) registers" grep -qx "hello 2 ok" <<<"$OUT"
check "its RESULT for w1's lease is refused" \
    grep -qx "own-name 8 False lease was given to another worker" <<<"$OUT"
check "...and logged with the reason" \
    logged s "CAIRN-LEASE-FOREIGN worker w2 sent RESULT for lease $LEASE, which was given to worker w1: refused"
check "a RESULT in w1's name from w2's connection is refused" grep -qx "their-name 9 unknown_worker" <<<"$OUT"
check "...and logged" logged s "CAIRN-WORKER-REFUSED RESULT as worker 'w1' refused: it did not come on the connection"
check "a LOG in w1's name from w2's connection is refused" grep -qx "their-log 9 unknown_worker" <<<"$OUT"
check "the task is still running on w1" [ "$(ti state "$LRUN" long nap)" = running ]
check "...and its log has nothing forged" bash -c "! '$CAIRN' logs '$LRUN' nap --dag long | grep -q forged"
OUT=$(/usr/bin/python3 "$T/peer.py" "$NNG_PORT" tls hello-as-w1 "$LEASE" "$P" 2>&1 || true)
check "w2 cannot say HELLO as w1 with its own certificate" \
    grep -q "^hello-as-w1 9 auth .*the worker's certificate is for 'w2', not 'w1'" <<<"$OUT"
"$CAIRN" runs cancel "$LRUN" --dag long >/dev/null 2>&1 || true
kill_wait "$PID_w1" TERM
kill_wait "$SCHED_PID" TERM
check "the TLS scheduler stops cleanly" [ "$EXIT_STATUS" = 0 ]

# --- the shared token on plain TCP: the same binding ---------------------------------------
printf 'tttttttttttttttttttttttttttttttt\n' >"$T/token"
chmod 600 "$T/token"
unset HTTP_PORT NNG_PORT
start_scheduler st --token-file "$T/token"
start_worker w1 --token-file "$T/token" --isolation none
LRUN=$("$CAIRN" trigger long)
wait_until 20 logged w1 "long/$LRUN/nap#1: started"
LEASE=$(sed -n "s/.*long\/$LRUN\/nap#1: started (lease \([0-9]*\)).*/\1/p" "$T/w1.log" | head -n 1)
OUT=$(/usr/bin/python3 "$T/peer.py" "$NNG_PORT" token w2 "$LEASE" "$T/token" 2>&1 || true)
echo "$OUT" | sed 's/^/# /'
check "token: a RESULT for w1's lease from another worker is refused" \
    grep -qx "own-name 8 False lease was given to another worker" <<<"$OUT"
check "token: a RESULT in w1's name from another connection is refused" \
    grep -qx "their-name 9 unknown_worker" <<<"$OUT"
OUT=$(/usr/bin/python3 "$T/peer.py" "$NNG_PORT" token hello-as-w1 "$LEASE" "$T/token" 2>&1 || true)
check "token: another connection cannot say HELLO as connected w1" \
    grep -q "^hello-as-w1 9 name_in_use" <<<"$OUT"
check "...logged" logged st "CAIRN-WORKER-REFUSED HELLO as worker 'w1' refused: that worker is connected"
OUT=$(/usr/bin/python3 "$T/peer.py" "$NNG_PORT" token replay "$LEASE" "$T/token" 2>&1 || true)
echo "$OUT" | sed 's/^/# /'
check "token: a HELLO replayed on a new connection is challenged, not welcomed" \
    grep -qx "replayed-hello 9 challenge" <<<"$OUT"
check "token: ...and a POLL after it is refused" grep -qx "replayed-poll 9 unknown_worker" <<<"$OUT"
check "...logged" logged st "CAIRN-WORKER-REFUSED HELLO with a nonce this connection was not given"
check "token: the task is still running on w1" [ "$(ti state "$LRUN" long nap)" = running ]
"$CAIRN" runs cancel "$LRUN" --dag long >/dev/null 2>&1 || true
RUN=$("$CAIRN" trigger hello)
check "token: w1 still runs a DAG" [ "$(wait_run "$RUN" hello 30)" = success ]
kill_wait "$PID_w1" TERM
kill_wait "$SCHED_PID" TERM

# --- secure by default ---------------------------------------------------------------------
rc=0
timeout 10 "$SCHED" --dags "$T/dags" --data "$T/open" --listen tcp://0.0.0.0:0 \
    --http 127.0.0.1:0 >"$T/open.log" 2>&1 || rc=$?
check "a non-loopback link without TLS or a token does not start" [ "$rc" = 1 ]
check "...and says why" grep -q "is not on loopback: give it TLS .* or start with --insecure" "$T/open.log"
unset HTTP_PORT NNG_PORT
"$SCHED" --dags "$T/dags" --data "$T/ins" --listen tcp://0.0.0.0:0 --http 127.0.0.1:0 \
    --insecure >"$T/ins.log" 2>&1 &
PID_ins=$!
PIDS+=("$PID_ins")
check "--insecure starts it" wait_until 10 grep -q CAIRN-START "$T/ins.log"
check "...and says so loudly" grep -q "CAIRN-INSECURE INSECURE: the worker link tcp://0.0.0.0:0" "$T/ins.log"
kill_wait "$PID_ins" TERM
"$SCHED" --dags "$T/dags" --data "$T/tok" --listen tcp://0.0.0.0:0 --http 127.0.0.1:0 \
    --token-file "$T/token" >"$T/tok.log" 2>&1 &
PID_tok=$!
PIDS+=("$PID_tok")
check "a token is enough on a non-loopback link" wait_until 10 grep -q CAIRN-START "$T/tok.log"
kill_wait "$PID_tok" TERM
"$SCHED" --dags "$T/dags" --data "$T/tls0" --listen tls+tcp://0.0.0.0:0 --http 127.0.0.1:0 \
    "${TLS_S[@]}" >"$T/tls0.log" 2>&1 &
PID_tls0=$!
PIDS+=("$PID_tls0")
check "TLS is enough on a non-loopback link" wait_until 10 grep -q CAIRN-START "$T/tls0.log"
kill_wait "$PID_tls0" TERM
rc=0
timeout 10 "$SCHED" --dags "$T/dags" --data "$T/mix" --listen tcp://127.0.0.1:0 \
    --http 127.0.0.1:0 "${TLS_S[@]}" >"$T/mix.log" 2>&1 || rc=$?
check "TLS files with a plain tcp:// address are refused" \
    bash -c "[ $rc = 1 ] && grep -q 'needs a tls+tcp:// --listen address' '$T/mix.log'"

finish
