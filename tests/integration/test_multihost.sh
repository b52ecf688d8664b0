#!/usr/bin/env bash
# Three hosts without a shared folder: the scheduler and two workers, each
# in a network namespace of its own joined by veth pairs (10.232.1.0/30 and
# 10.232.2.0/30, which exist only inside the namespaces this test makes),
# the worker link on mutual TLS (`cairn certs init`). Each worker also has a
# mount namespace of its own in which the scheduler's data folder and the
# pipeline's code folder are empty tmpfs, so it cannot see the artifact
# store or the code: it finds no store marker, says so, and moves every
# artifact through the scheduler's API (blob routes, the lease's own
# credential). A pipeline whose tasks are pinned by labels to w1, w2, w1
# passes its files across hosts; the code folder is edited mid-run and the
# run keeps its snapshot; a peer with a valid certificate cannot post a
# result for another worker's lease; a worker with a certificate from
# another CA is refused; a lease's blobs cannot be read without that
# lease's credential. w2 reaches the API over HTTPS (nginx in front of it,
# w2 given --api https://... and --api-ca), w1 over plain HTTP.
# Then the iris example pipeline runs across both workers while their
# links are cut mid-task: w2's while train runs, healed once train has
# ended (its model is sent when the link is back: train runs once), w1's
# while evaluate runs, healed only after the scheduler gave the lease up
# (evaluate runs again without spending a retry).
# The workers run tasks with --isolation none (`ip netns exec` mounts a
# /sys without the cgroup hierarchies runc looks for).
# Needs root and ip(8); exits 77 (skipped) without them.
set -euo pipefail
if [ -z "${CAIRN_MULTIHOST_NS:-}" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
        echo "skipped: needs root, ip(8) and unshare(1)"
        exit 77
    fi
    ns=cairn-mh-$$
    ip netns add "$ns-s"
    trap 'for n in s w1 w2; do ip netns del "$ns-$n" 2>/dev/null || true; done' EXIT
    for i in 1 2; do
        ip netns add "$ns-w$i"
        ip link add "mh$$s$i" netns "$ns-s" type veth peer name "mh$$w$i" netns "$ns-w$i"
        ip -n "$ns-s" addr add "10.232.$i.1/30" dev "mh$$s$i"
        ip -n "$ns-w$i" addr add "10.232.$i.2/30" dev "mh$$w$i"
        ip -n "$ns-s" link set "mh$$s$i" up
        ip -n "$ns-w$i" link set "mh$$w$i" up
        ip -n "$ns-w$i" link set lo up
    done
    ip -n "$ns-s" link set lo up
    rc=0
    CAIRN_MULTIHOST_NS=$ns ip netns exec "$ns-s" bash "$0" "$@" || rc=$?
    exit "$rc"
fi
# ---- from here on, inside the scheduler's namespace ----
source "$(dirname "$0")/lib.sh"
NS=$CAIRN_MULTIHOST_NS

mkdir -p "$T/code" "$T/flag" "$T/s"
printf 'code-v1\n' >"$T/code/version.txt"
printf 'sha256sum "$1" | cut -c1-64\n' >"$T/code/digest.sh"

put_dag cross <<EOF2
dag: cross
code: $T/code
defaults: {image: host, retries: 0, timeout: 60s}
tasks:
  make:
    labels: {host: w1}
    command: [sh, -c, 'head -c 3000000 /dev/urandom > "\$CAIRN_OUTPUTS/data.bin"; sh "\$CAIRN_PIPELINE_DIR/digest.sh" "\$CAIRN_OUTPUTS/data.bin"; while [ ! -e $T/flag/go ]; do sleep 0.1; done']
    outputs: [data.bin]
  train:
    labels: {host: w2}
    needs: [make]
    inputs: {data: make/data.bin}
    command: [sh, -c, 'sh "\$CAIRN_PIPELINE_DIR/digest.sh" "\$CAIRN_INPUTS/data"; cat "\$CAIRN_PIPELINE_DIR/version.txt"; cat "\$CAIRN_INPUTS/data" "\$CAIRN_PIPELINE_DIR/version.txt" > "\$CAIRN_OUTPUTS/model.bin"']
    outputs: [model.bin]
  report:
    labels: {host: w1}
    needs: [train]
    inputs: {model: train/model.bin}
    command: [sh, -c, 'wc -c < "\$CAIRN_INPUTS/model"; tail -c 8 "\$CAIRN_INPUTS/model"']
EOF2

# The iris example pipeline, its scripts run from the run's code snapshot
# ($CAIRN_PIPELINE_DIR: with --isolation none there is no /pipeline): ingest,
# validate and evaluate on w1, train and deploy on w2, so the data set and the
# model cross hosts both ways. train, once its model is fitted, marks that
# and waits for a flag, so the test can cut w2's link while it runs and let
# it end (its outputs sent and its result made while the link is down).
mkdir -p "$T/code/iris"
cp "$CAIRN_SRC"/examples/iris/pipeline/*.py "$T/code/iris/"
sed -e 's|^schedule:.*||' -e "s|^code:.*|code: $T/code/iris|" \
    -e 's|command: \[/usr/bin/python3, /pipeline/\([a-z]*\.py\)|command: [sh, -c, '"'"'exec /usr/bin/python3 "$CAIRN_PIPELINE_DIR/$0" "$@"'"'"', \1|' \
    -e "s|^    command: \[sh, -c, '[^']*', train.py, |    command: [sh, -c, '/usr/bin/python3 \"\$CAIRN_PIPELINE_DIR/train.py\" \"\$@\"; rc=\$?; touch $T/flag/train.fitted; while [ ! -e $T/flag/train.go ]; do sleep 0.1; done; echo \"train: ends with the link down\"; exit \$rc', train.py, |" \
    -e "s|^    command: \[sh, -c, '[^']*', evaluate.py\]|    command: [sh, -c, 'while [ ! -e $T/flag/evaluate.go ]; do sleep 0.1; done; exec /usr/bin/python3 \"\$CAIRN_PIPELINE_DIR/\$0\"', evaluate.py]|" \
    "$CAIRN_SRC/examples/iris/iris.yaml" >"$T/iris.yaml"
for t in ingest:w1 validate:w1 train:w2 evaluate:w1 deploy:w2; do
    sed -i "/^  ${t%%:*}:\$/a\\    labels: {host: ${t#*:}}" "$T/iris.yaml"
done
put_dag iris <"$T/iris.yaml"

# --- certificates, tokens, the scheduler --------------------------------------------------
"$CAIRN" certs init "$T/pki" --scheduler-name sched --worker w1 --worker w2 --worker w4 >/dev/null
"$CAIRN" certs init "$T/other" --scheduler-name sched --worker w3 >/dev/null
mkdir -p "$T/rogue" # w3's certificate from another CA; it trusts the scheduler's
cp "$T/other/w3.crt" "$T/other/w3.key" "$T/rogue/"
cp "$T/pki/ca.crt" "$T/rogue/ca.crt"
operator=$("$CAIRN" tokens create op --role operator --file "$T/tokens" 2>/dev/null)
export CAIRN_TOKEN=$operator
"$SCHED" --dags "$T/dags" --data "$T/s" --listen "tls+tcp://0.0.0.0:0" --http 0.0.0.0:0 \
    --tls-cert "$T/pki/scheduler.crt" --tls-key "$T/pki/scheduler.key" --tls-ca "$T/pki/ca.crt" \
    --api-tokens "$T/tokens" --http-allowed-hosts 10.232.1.1,10.232.2.1 >>"$T/s.log" 2>&1 &
SCHED_PID=$!
PIDS+=("$SCHED_PID")
wait_until 10 grep -q CAIRN-START "$T/s.log"
line=$(grep CAIRN-START "$T/s.log" | tail -n 1)
NNG_PORT=$(sed -n 's/.* workers tls+tcp:\/\/[0-9.]*:\([0-9]*\), http .*/\1/p' <<<"$line")
HTTP_PORT=$(sed -n 's/.*, http [0-9.]*:\([0-9]*\), .*/\1/p' <<<"$line")
export CAIRN_SERVER=http://127.0.0.1:$HTTP_PORT
wait_http

# w2 reaches the API over HTTPS: nginx on the scheduler's host terminates
# TLS on w2's side (a certificate for 10.232.2.1 made here, which w2 is
# given as --api-ca) and passes requests to the API on loopback.
N=$T/nginx
mkdir -p "$N/logs" "$N/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=10.232.2.1 \
    -addext "subjectAltName=IP:10.232.2.1" -keyout "$N/key.pem" -out "$N/cert.pem" 2>/dev/null
HTTPS_PORT=$(free_port)
cat >"$N/nginx.conf" <<EOF2
pid $N/nginx.pid;
error_log $N/logs/error.log;
events { worker_connections 64; }
http {
    access_log $N/logs/access.log;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    server {
        listen 10.232.2.1:$HTTPS_PORT ssl;
        ssl_certificate     $N/cert.pem;
        ssl_certificate_key $N/key.pem;
        client_max_body_size 8m;
        location / {
            proxy_pass http://127.0.0.1:$HTTP_PORT;
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 1h;
        }
    }
}
EOF2
nginx -p "$N" -c "$N/nginx.conf" -e "$N/logs/error.log" -g 'daemon off; master_process off;' \
    >"$T/nginx.log" 2>&1 &
PIDS+=("$!")
API2=https://10.232.2.1:$HTTPS_PORT
check "the API answers over HTTPS on w2's side" \
    wait_until 10 curl -sf --cacert "$N/cert.pem" -o /dev/null "$API2/api/v1/health"
check "...with a certificate w2 must be told to trust (curl without it: exit 60)" \
    sh -c "ip netns exec '$NS-w2' curl -s -o /dev/null '$API2/api/v1/health'; test \$? = 60"

# start_remote NAME I CERTDIR LABELS [WORKER ARGS]: a worker on "host" I:
# network namespace w$I, and a mount namespace where the scheduler's data
# and the code are empty
start_remote() {
    local name=$1 i=$2 dir=$3 labels=$4
    shift 4
    mkdir -p "$T/$name"
    ip netns exec "$NS-w$i" unshare -m --propagation private sh -c '
        mount -t tmpfs none "$1/s" && mount -t tmpfs none "$1/code" && shift && exec "$@"' _ "$T" \
        "$WORKER" --scheduler "tls+tcp://10.232.$i.1:$NNG_PORT" --data "$T/$name" --name "$name" \
        --slots 2 --tls-cert "$dir/$name.crt" --tls-key "$dir/$name.key" --tls-ca "$dir/ca.crt" \
        --tls-server-name sched --labels "$labels" --isolation none "$@" >>"$T/$name.log" 2>&1 &
    PIDS+=("$!")
    eval "PID_$name=$!"
}
registered() { "$CAIRN" workers --json | jq -e --arg n "$1" '.workers[] | select(.name == $n)' >/dev/null; }

start_remote w1 1 "$T/pki" host=w1
start_remote w2 2 "$T/pki" host=w2 --api "$API2" --api-ca "$N/cert.pem"
check "w1 registers over TLS from its own namespace" wait_until 20 registered w1
check "w2 too" wait_until 20 registered w2
check "w1 does not see the store: it goes through the API" \
    wait_until 10 logged w1 "CAIRN-WORKER-STORE .*through the scheduler's API"
check "w2 neither" wait_until 10 logged w2 "CAIRN-WORKER-STORE .*through the scheduler's API"
check "...and neither announces a direct store" bash -c '"$0" workers --json | jq -e "[.workers[].direct_stores[]] == []" >/dev/null' "$CAIRN"

# --- a pipeline across hosts --------------------------------------------------------------
r=$("$CAIRN" trigger cross)
make_running() { [ "$(ti state "$r" cross make)" = running ]; }
check "make runs on w1" wait_until 60 make_running
digest=$(rj "$r" cross .code_digest)
check "the run has its code snapshot ($digest)" grep -Eqx '[0-9a-f]{64}' <<<"$digest"
# a peer on w2's host with a valid certificate of its own (w4) posts a
# RESULT for make's lease, which is w1's
cat >"$T/peer.py" <<'PY'
import base64, json, socket, ssl, struct, subprocess, sys, time
host, port, pki, lease = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.crt")
ctx.load_cert_chain(pki + "/w4.crt", pki + "/w4.key")
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname="sched")
def recv_n(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
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
ts = int(time.time() * 1000)
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pki + "/w4.key"],
                     input=("cairn-hello-v1\nw4\n%d" % ts).encode(), capture_output=True,
                     check=True).stdout
t, b = call(1, {"worker": "w4", "slots": 1, "labels": {"host": "none"}, "cert_ts": ts,
                "cert": open(pki + "/w4.crt").read(), "cert_sig": base64.b64encode(sig).decode()})
print("hello", t, b.get("code", "ok"))
t, b = call(7, {"worker": "w4", "lease_id": lease, "exit_code": 0, "outputs": []})
print("result", t, b.get("ok"), b.get("reason"))
PY
mlease=$(curl -sf -H "Authorization: Bearer $operator" \
    "$CAIRN_SERVER/api/v1/runs/$(urlenc "$r")/tasks/make/attempts?dag=cross" | jq -r '.attempts[0].lease_id')
out=$(ip netns exec "$NS-w2" /usr/bin/python3 "$T/peer.py" 10.232.2.1 "$NNG_PORT" "$T/pki" "$mlease" 2>&1 || true)
echo "$out" | sed 's/^/# /'
check "a peer with its own valid certificate registers from w2's host" grep -qx "hello 2 ok" <<<"$out"
check "...its RESULT for w1's lease is refused" \
    grep -qx "result 8 False lease was given to another worker" <<<"$out"
check "...and logged" logged s "CAIRN-LEASE-FOREIGN worker w4 sent RESULT for lease $mlease, which was given to worker w1: refused"
check "...and make is still running on w1" make_running
printf 'code-v2\n' >"$T/code/version.txt" # edited mid-run
touch "$T/flag/go"
check "the run succeeds" test "$(wait_run "$r" cross 90)" = success
m=$("$CAIRN" logs "$r" make --dag cross)
t=$("$CAIRN" logs "$r" train --dag cross)
p=$("$CAIRN" logs "$r" report --dag cross)
echo "# make: $m; train: $(tr "\n" " " <<<"$t")"
check "make ran on w1, train on w2, report on w1" \
    test "$(ti worker "$r" cross make),$(ti worker "$r" cross train),$(ti worker "$r" cross report)" = w1,w2,w1
check "train on w2 read make's bytes from w1" test -n "$m" -a "$(sed -n 1p <<<"$t")" = "$m"
check "train saw the code of the run's start, not the edit" test "$(sed -n 2p <<<"$t")" = code-v1
check "report on w1 read train's output from w2" test "$(sed -n 2p <<<"$p")" = code-v1 -a "$(sed -n 1p <<<"$p")" = 3000008
check "w2 cached make's blob" test -f "$T/w2/blob-cache/blobs/sha256/${m:0:2}/${m:2}"
check "w2 fetched make's blob over HTTPS (the proxy's log)" \
    grep -Eq "\"GET /api/v1/leases/[0-9]+/blobs/$m HTTP/1.1\" 200 " "$N/logs/access.log"
check "...and sent train's model that way" \
    grep -Eq "\"POST /api/v1/leases/[0-9]+/uploads/[0-9a-f]{64}/commit\?size=3000008 HTTP/1.1\" 200 " "$N/logs/access.log"
check "...while w1 sent make's blob over plain HTTP, not through the proxy" \
    bash -c '! grep -q "/uploads/$0" "$1"' "$m" "$N/logs/access.log"
check "the outputs are in the scheduler's store" test -f "$T/s/artifacts/blobs/sha256/${m:0:2}/${m:2}"
check "lineage of report's input names the code digest" \
    bash -c '"$0" lineage "$1" train/model.bin --dag cross --json | grep -q "\"code_digest\": *\"$2\""' "$CAIRN" "$r" "$digest"

# --- refusals -----------------------------------------------------------------------------
start_remote w3 2 "$T/rogue" host=w3
check "a worker (on w2's host) with a certificate from another CA is refused" \
    wait_until 30 logged s "CAIRN-TLS-REFUSED refused [0-9]+ worker connections? .*not from this scheduler's CA"
check "...and says so" wait_until 30 logged w3 "CAIRN-TLS-REFUSED TLS handshake .* failed"
check "...it never registered" bash -c '! "$0" workers --json | jq -e ".workers[] | select(.name == \"w3\")" >/dev/null' "$CAIRN"
lease=$(curl -sf -H "Authorization: Bearer $operator" \
    "$CAIRN_SERVER/api/v1/runs/$(urlenc "$r")/tasks/train/attempts?dag=cross" | jq -r '.attempts[0].lease_id')
code=$(ip netns exec "$NS-w2" curl -s -o /dev/null -w '%{http_code}' \
    "http://10.232.2.1:$HTTP_PORT/api/v1/leases/$lease/blobs/$m")
check "from w2's host, make's blob without a lease credential: 401" test "$code" = 401
code=$(ip netns exec "$NS-w2" curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $operator" \
    "http://10.232.2.1:$HTTP_PORT/api/v1/leases/$lease/blobs/$m")
check "...nor with an operator's API token: 401" test "$code" = 401

# --- the iris pipeline across hosts, links cut mid-task ---------------------------------
# w2's link goes down while train runs (its model fitted, the task not
# ended) and comes back once train has ended and w2 has tried to send its
# model: the attempt's work is kept (train runs once). The cut is short
# next to the lease TTL (15 s) whatever the machine's load. w1's link goes down while evaluate runs and stays down until
# the scheduler has given evaluate's lease up: evaluate runs again (not
# spending a retry) once w1 is back, and the first attempt is stopped.
ri=$("$CAIRN" trigger iris)
check "iris: train runs on w2 and fits its model" wait_until 180 test -e "$T/flag/train.fitted"
W1DEV=mh${NS#cairn-mh-}w1 W2DEV=mh${NS#cairn-mh-}w2
ip -n "$NS-w2" link set "$W2DEV" down
touch "$T/flag/train.go"
check "...it ends while w2's link is down, and w2 cannot send its model: it keeps trying" \
    wait_until 60 logged w2 "CAIRN-XFER the upload of [0-9a-f]{64} failed .*: trying again for up to [0-9]+ ms"
ip -n "$NS-w2" link set "$W2DEV" up
eval_running() { [ "$(ti state "$ri" iris evaluate)" = running ]; }
check "with w2's link back, train succeeds and evaluate runs on w1" wait_until 120 eval_running
check "...train ran once" test "$(rj "$ri" iris '.tasks[] | select(.task == "train") | .attempts')" = 1
check "...and its log arrived whole, with the line written while the link was down" \
    bash -c '"$0" logs "$1" train --dag iris >"$2" && grep -q "^train: fitted in " "$2" && grep -q "^train: wrote .*model.pkl" "$2" && grep -qx "train: ends with the link down" "$2"' "$CAIRN" "$ri" "$T/train.log"
ip -n "$NS-w1" link set "$W1DEV" down
check "w1's link down: evaluate's lease expires" \
    wait_until 90 logged s "CAIRN-LEASE-EXPIRED iris/$ri/evaluate attempt 1: lease expired: worker w1"
ip -n "$NS-w1" link set "$W1DEV" up
eval_again() { [ "$(ti state "$ri" iris evaluate)" = running ] && [ "$(rj "$ri" iris '.tasks[] | select(.task == "evaluate") | .attempts')" = 2 ]; }
check "w1's link back: evaluate runs again on w1" wait_until 90 eval_again
check "...and its first attempt was stopped on w1" \
    wait_until 60 logged w1 "CAIRN-TASK-EXIT iris/$ri/evaluate#1: .*signal"
touch "$T/flag/evaluate.go"
check "the iris run succeeds" test "$(wait_run "$ri" iris 180)" = success
"$CAIRN" runs show "$ri" --dag iris | sed 's/^/# /'
check "...ingest, validate, evaluate on w1; train, deploy on w2" test "$(for t in ingest validate train evaluate deploy; do ti worker "$ri" iris $t; done | tr '\n' ,)" = w1,w1,w2,w1,w2,
check "...evaluate's lost attempt spent no retry" \
    test "$(rj "$ri" iris '.tasks[] | select(.task == "evaluate") | "\(.attempts)/\(.max_attempts)"')" = 2/3
acc=$(rj "$ri" iris '.tasks[] | select(.task=="evaluate") | .metrics.accuracy')
check "...evaluate on w1 scored w2's model (accuracy $acc)" \
    /usr/bin/python3 -c 'import sys; assert float(sys.argv[1]) >= 0.9' "$acc"
model=$("$CAIRN" artifacts list "$ri" --dag iris --json | jq -r '[.artifacts[] | select(.name=="model.pkl") | .sha256] | unique | .[]')
check "...deploy on w2 released train's model, byte for byte" \
    test "$(sha256sum "$T/s/models/iris/deploy/latest/model.pkl" | cut -c1-64)" = "$model"

finish
