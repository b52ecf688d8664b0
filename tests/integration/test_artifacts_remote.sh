#!/usr/bin/env bash
# A worker that does not use the scheduler's artifact store directly
# (--artifacts-direct no, or a store folder it cannot see) gets its inputs
# and puts its outputs through the scheduler's blob routes, digest checked
# both ways (a fan-in input's every instance file too), and caches blobs by
# digest under its data folder. The routes
# take only a live lease's own credential: none or a wrong one is 401, a
# blob that is not an input of the lease is 403, an upload whose bytes do
# not match the claimed digest is 422 and stores nothing; a download
# resumes with Range.
source "$(dirname "$0")/lib.sh"

put_dag pass <<'YAML'
dag: pass
defaults: {retries: 0}
tasks:
  make:
    command: [sh, -c, "head -c 9000000 /dev/urandom > /outputs/data.bin && : > /outputs/empty && sha256sum /outputs/data.bin"]
    outputs: [data.bin, empty]
  use:
    needs: [make]
    inputs: {blob: make/data.bin, e: make/empty}
    command: [sh, -c, "sha256sum /inputs/blob && wc -c < /inputs/e && sha256sum /inputs/blob | cut -c1-64 > /outputs/sum"]
    outputs: [sum]
YAML
put_dag gather <<'YAML'
dag: gather
defaults: {retries: 0}
tasks:
  part:
    matrix: {n: [1, 2, 3]}
    command: [sh, -c, "echo part {{ item.n }} > /outputs/p.txt"]
    outputs: [p.txt]
  all:
    needs: [part]
    inputs: {p: part/p.txt}
    command: [sh, -c, "cat /inputs/p/0/p.txt /inputs/p/1/p.txt /inputs/p/2/p.txt"]
YAML
put_dag direct <<'YAML'
dag: direct
defaults: {retries: 0}
tasks:
  make:
    labels: {pool: direct}
    command: [sh, -c, "head -c 9000000 /dev/urandom > /outputs/data.bin"]
    outputs: [data.bin]
  use:
    labels: {pool: direct}
    needs: [make]
    inputs: {blob: make/data.bin}
    command: [sh, -c, "sha256sum /inputs/blob"]
YAML
put_dag resume <<'YAML'
dag: resume
defaults: {retries: 0}
tasks:
  make:
    command: [sh, -c, "seq 1 400000 > /outputs/seq.txt"]
    outputs: [seq.txt]
  use:
    labels: {pool: resume}
    needs: [make]
    inputs: {s: make/seq.txt}
    command: [sh, -c, "sha256sum < /inputs/s | cut -c1-64"]
YAML
put_dag moves <<'YAML'
dag: moves
defaults: {retries: 0}
tasks:
  make:
    labels: {role: maker}
    command: [sh, -c, "echo moved > /outputs/m.txt"]
    outputs: [m.txt]
  use:
    labels: {zone: z}
    needs: [make]
    inputs: {m: make/m.txt}
    command: [cat, /inputs/m]
YAML
put_dag hold <<'YAML'
dag: hold
defaults: {retries: 0}
tasks:
  make:
    command: [sh, -c, "echo held > /outputs/h.txt"]
    outputs: [h.txt]
  wait:
    needs: [make]
    inputs: {h: make/h.txt}
    labels: {pool: peer}
    command: ["true"]
YAML
put_dag stopx <<'YAML'
dag: stopx
defaults: {retries: 0}
tasks:
  make:
    labels: {pool: direct}
    command: [sh, -c, "echo x > /outputs/x.txt"]
    outputs: [x.txt]
  use:
    labels: {zone: s}
    needs: [make]
    inputs: {x: make/x.txt}
    command: [cat, /inputs/x]
YAML

start_scheduler s
start_worker w1 --artifacts-direct no

check "the scheduler wrote the store's marker" test -s "$T/s/artifacts/.cairn-store-id"
check "w1 says it goes through the API" wait_until 10 logged w1 "CAIRN-WORKER-STORE .*through the scheduler's API"
check "w1 announces no direct store" bash -c '"$0" workers --json | jq -e ".workers[] | select(.name==\"w1\") | .direct_stores == []" >/dev/null' "$CAIRN"

r=$("$CAIRN" trigger pass)
check "a DAG passing files through the API succeeds" test "$(wait_run "$r" pass 60)" = success
made=$("$CAIRN" logs "$r" make --dag pass | awk '{print $1}')
used=$("$CAIRN" logs "$r" use --dag pass | awk 'NR==1{print $1}')
check "the downstream task reads the same bytes" test -n "$made" -a "$made" = "$used"
check "the empty output arrives empty" test "$("$CAIRN" logs "$r" use --dag pass | sed -n 2p)" = 0
arts=$("$CAIRN" artifacts list "$r" --dag pass --json)
blob=$(jq -r '.artifacts[] | select(.name=="data.bin") | .uri' <<<"$arts" | sed 's|^file://||')
check "the output is in the scheduler's store" test "$(sha256sum "$blob" | awk '{print $1}')" = "$made"
check "...under the store's own URI" grep -q "^$T/s/artifacts/blobs/sha256/" <<<"$blob"
check "w1 cached the blob by digest" test -f "$T/w1/blob-cache/blobs/sha256/${made:0:2}/${made:2}"
check "nothing is left being uploaded" bash -c '[ -z "$(ls -A "$0" 2>/dev/null)" ]' "$T/s/uploads"

r=$("$CAIRN" trigger gather)
check "a fan-in task gets every instance's file through the API" test "$(wait_run "$r" gather 60)" = success
check "...each one's own bytes" test "$("$CAIRN" logs "$r" all --dag gather | tr '\n' ' ')" = "part 1 part 2 part 3 "

# --- a download resumes where a broken one stopped ---------------------------
# w1's cache already holds the first half of the blob (as a download cut
# off would leave it): w1 asks for the rest only. Then a .part whose bytes
# are not the blob's start: w1 notices the digest and starts over.
seq 1 400000 >"$T/seq.txt"
ssha=$(sha256sum <"$T/seq.txt" | cut -c1-64)
r=$("$CAIRN" trigger resume)
rmake_done() { [ "$(ti state "$r" resume make)" = success ]; }
check "make (on w1) stores the blob" wait_until 60 rmake_done
kill_wait "$PID_w1"
rm -f "$T/w1/blob-cache/blobs/sha256/${ssha:0:2}/${ssha:2}" # make's own copy
mkdir -p "$T/w1/blob-cache/tmp"
head -c 1000000 "$T/seq.txt" >"$T/w1/blob-cache/tmp/$ssha.part"
start_worker w1 --artifacts-direct no --labels pool=resume
check "a run whose input w1 half had succeeds" test "$(wait_run "$r" resume 60)" = success
check "...reading the whole input" test "$("$CAIRN" logs "$r" use --dag resume)" = "$ssha"
check "...after resuming at 1000000 bytes" logged w1 "CAIRN-XFER resuming the download of $ssha after 1000000 bytes"
rm -f "$T/w1/blob-cache/blobs/sha256/${ssha:0:2}/${ssha:2}"
head -c 1000000 /dev/zero >"$T/w1/blob-cache/tmp/$ssha.part"
"$CAIRN" clear "$r" --dag resume --task use >/dev/null
check "with a .part of other bytes the task still succeeds" test "$(wait_run "$r" resume 60)" = success
check "...w1 started over" logged w1 "CAIRN-XFER .*starting over without the 1000000 bytes"
check "...and has the right bytes" test "$("$CAIRN" logs "$r" use --dag resume)" = "$ssha"

# --- the routes, by a peer that holds a lease ------------------------------
# A tiny wire peer (plain TCP on loopback, no token) takes hold/wait's
# lease (it has the label pool=peer) and prints the lease's id, credential
# and input digest.
cat >"$T/peer.py" <<'PY'
import json, socket, struct, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
def recv_n(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b
recv_n(8)
rid = [0x80000001]
def call(typ, body):
    b = json.dumps(body).encode()
    f = b"CRN\x01" + struct.pack(">HHI", typ, 0, len(b)) + b
    m = struct.pack(">I", rid[0]) + f
    rid[0] += 1
    s.sendall(struct.pack(">Q", len(m)) + m)
    n = struct.unpack(">Q", recv_n(8))[0]
    fr = recv_n(n)[4:]
    t, _, bl = struct.unpack(">HHI", fr[4:12])
    return t, json.loads(fr[12:12 + bl])
t, b = call(1, {"worker": "peer", "slots": 1, "labels": {"pool": "peer"}})
assert t == 2, (t, b)
for i in range(300):
    t, b = call(3, {"worker": "peer", "free": 1, "leases": [], "wait_ms": 0})
    if b.get("leases"):
        l = b["leases"][0]
        print(l["lease_id"], l.get("xfer_token", ""), l["inputs"][0]["sha256"])
        sys.stdout.flush()
        break
    time.sleep(0.1)
# keep the lease alive until told to report
for i in range(600):
    try:
        open(sys.argv[2]).close()
        break
    except OSError:
        pass
    call(3, {"worker": "peer", "free": 0, "leases": [l["lease_id"]], "wait_ms": 0})
    time.sleep(0.2)
t, b = call(7, {"worker": "peer", "lease_id": l["lease_id"], "exit_code": 0, "outputs": []})
print("result", t)
PY
rh=$("$CAIRN" trigger hold)
/usr/bin/python3 "$T/peer.py" "$NNG_PORT" "$T/peer.done" >"$T/peer.out" 2>&1 &
PEER=$!
PIDS+=("$PEER")
check "the peer got the lease" wait_until 30 test -s "$T/peer.out"
read -r LEASE TOKEN HSHA <"$T/peer.out"
check "the lease carries a blob credential" test ${#TOKEN} = 64
B=$CAIRN_SERVER/api/v1/leases/$LEASE
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
check "no credential: 401" test "$(code "$B/blobs/$HSHA")" = 401
check "a wrong credential: 401" test "$(code -H "Authorization: Bearer ${TOKEN//[0-9a-f]/0}" "$B/blobs/$HSHA")" = 401
check "another lease's id with this credential: 401" test "$(code -H "Authorization: Bearer $TOKEN" "$CAIRN_SERVER/api/v1/leases/1/blobs/$HSHA")" = 401
A=(-H "Authorization: Bearer $TOKEN")
check "its input: 200 with the bytes" test "$(code "${A[@]}" "$B/blobs/$HSHA")" = 200 -a "$(cat "$T/body")" = held
check "a range of it: 206" test "$(code "${A[@]}" -r 2- "$B/blobs/$HSHA")" = 206 -a "$(cat "$T/body")" = "ld"
check "a range past its end: 416" test "$(code "${A[@]}" -r 99- "$B/blobs/$HSHA")" = 416
check "a blob that is not its input: 403" test "$(code "${A[@]}" "$B/blobs/$made")" = 403
check "...with the API's error shape" jq -e '.error.code == "forbidden"' "$T/body"
printf 'forged bytes' >"$T/forged"
fake=$(printf 'other bytes!' | sha256sum | awk '{print $1}')
check "a chunk whose bytes are not the claimed blob's is taken" test "$(code "${A[@]}" -X PUT --data-binary @"$T/forged" -H 'Content-Type: application/octet-stream' "$B/uploads/$fake?offset=0")" = 200
check "...but its commit is refused: 422" test "$(code "${A[@]}" -X POST "$B/uploads/$fake/commit?size=12")" = 422
check "...as digest_mismatch" jq -e '.error.code == "digest_mismatch"' "$T/body"
check "...and nothing was stored" test ! -e "$T/s/artifacts/blobs/sha256/${fake:0:2}/${fake:2}"
good=$(sha256sum "$T/forged" | awk '{print $1}')
check "a chunk at the wrong offset: 409" test "$(code "${A[@]}" -X PUT --data-binary @"$T/forged" "$B/uploads/$good?offset=5")" = 409
check "two chunks and a commit store a blob" bash -c '
  set -e
  c1=$(curl -s -o /dev/null -w "%{http_code}" -H "$1" -X PUT --data-binary "forged " "$2?offset=0")
  c2=$(curl -s -o /dev/null -w "%{http_code}" -H "$1" -X PUT --data-binary "bytes" "$2?offset=7")
  c3=$(curl -s -w "%{http_code}" -o "$3" -H "$1" -X POST "$2/commit?size=12")
  [ "$c1$c2$c3" = 200200200 ]' _ "Authorization: Bearer $TOKEN" "$B/uploads/$good" "$T/body"
check "...whose bytes are in the store" cmp "$T/forged" "$T/s/artifacts/blobs/sha256/${good:0:2}/${good:2}"
check "a stored blob commits without an upload (dedupe)" test "$(code "${A[@]}" -X POST "$B/uploads/$good/commit?size=12")" = 200
check "human API tokens play no part: a viewer's bearer is 401" test "$(code -H "Authorization: Bearer cairn_x" "$B/blobs/$HSHA")" = 401
# --- detection: a worker on this host (auto) sees the store and uses it ------
start_worker w2 --labels pool=direct,role=maker
check "w2 (auto) finds the store's marker and reaches it directly" \
    wait_until 10 logged w2 "CAIRN-WORKER-STORE .*: reached directly"
check "...and announces it in HELLO" bash -c '"$0" workers --json | jq -e ".workers[] | select(.name==\"w2\") | .direct_stores == [\"file://$1/s/artifacts\"]" >/dev/null' "$CAIRN" "$T"
touch "$T/peer.done"
check "the peer reports" wait_until 30 grep -q "^result" "$T/peer.out"
check "the hold run ends" test "$(wait_run "$rh" hold 30)" = success
check "after the lease ended its credential is refused: 401" test "$(code "${A[@]}" "$B/blobs/$HSHA")" = 401

# --- a worker that cannot get an input ---------------------------------------
# w3 (zone z) cannot reach the API (--api names a closed port): its attempt
# fails without spending a retry (retries: 0), w3 is not given the task
# again, also after the scheduler restarts (the exclusion is in the task
# instance's record), and the task waits for another worker, which runs it.
rm_=$(free_port)
r=$("$CAIRN" trigger moves)
make_done() { [ "$(ti state "$r" moves make)" = success ]; }
check "make runs on w2 (role maker)" wait_until 60 make_done
kill_wait "$PID_w2"
start_worker w3 --labels zone=z --artifacts-direct no --api "http://127.0.0.1:$rm_"
check "w3 takes use and cannot get its input" \
    wait_until 60 logged s "CAIRN-INPUT-UNAVAILABLE .*moves/.*/use attempt 1: worker w3 could not get the inputs"
check "...so use waits, saying why, instead of failing" \
    wait_until 30 bash -c '"$0" runs show "$1" --dag moves --json | jq -e ".tasks[] | select(.task==\"use\") | .state == \"queued\" and (.waiting | test(\"could not get its inputs .*w3\"))" >/dev/null' "$CAIRN" "$r"
check "...and the exclusion is stored with the task instance" \
    wait_until 30 bash -c 'mdb_dump -p -s tis "$0/s/state" 2>/dev/null | grep -q "excluded.*w3"' "$T"
kill_wait "$SCHED_PID"
start_scheduler s
check "after a restart use still waits for a worker other than w3" \
    wait_until 30 bash -c '"$0" runs show "$1" --dag moves --json | jq -e ".tasks[] | select(.task==\"use\") | .state == \"queued\" and (.waiting | test(\"could not get its inputs .*w3\"))" >/dev/null' "$CAIRN" "$r"
check "...with w3 back and polling" wait_until 30 bash -c '"$0" workers --json | jq -e ".workers[] | select(.name==\"w3\") | .state == \"alive\"" >/dev/null' "$CAIRN"
start_worker w4 --labels zone=z --artifacts-direct no
check "w4 (which can) runs it and the run succeeds" test "$(wait_run "$r" moves 60)" = success
check "...on w4" test "$(ti worker "$r" moves use)" = w4
check "...reading the input" test "$("$CAIRN" logs "$r" use --dag moves)" = moved
check "w3 was given use once only" test "$(grep -c "moves/.*/use#[0-9]*: not started" "$T/w3.log")" = 1
start_worker w2 --labels pool=direct

# --- a worker stopped while it waits out an outage ----------------------------
# w5 cannot reach the API either; SIGTERM while it tries again ends the
# wait at once (it does not sit out the lease TTL) and the task goes back
# to the queue without spending its retry.
r=$("$CAIRN" trigger stopx)
start_worker w5 --labels zone=s --artifacts-direct no --api "http://127.0.0.1:$rm_"
check "w5 takes use and keeps trying to get its input" \
    wait_until 60 logged w5 "CAIRN-XFER the download of [0-9a-f]{64} failed .*: trying again for up to [0-9]+ ms"
kill_wait "$PID_w5"
check "SIGTERM ends the wait: w5 gives the download up, saying why" \
    logged w5 "CAIRN-XFER the download of [0-9a-f]{64} given up: the worker is stopping"
check "...and stops (not after the tries ran out)" \
    bash -c 'grep -q CAIRN-STOPPED "$0" && ! grep -q "given up after" "$0"' "$T/w5.log"
# (fetching its inputs it has not started: a stopping worker says so, as
# for the leases it held queued)
check "...the scheduler heard the attempt was interrupted" \
    logged s "CAIRN-WORKER-STOPPED-TASK stopx/$r/use attempt 1: worker w5 was stopped (while the task ran|before the task started)"
# (a lease that reached w5 while it stopped is left to expire, as any
# does: use is queued again after that, no retry spent on either)
use_queued() { rj "$r" stopx '.tasks[] | select(.task == "use") | .state == "queued" and .max_attempts - .attempts == 1 and .error != null' | grep -qx true; }
check "...use is queued again, its retry not spent" wait_until 60 use_queued

r=$("$CAIRN" trigger direct)
check "a run on w2 (direct) succeeds" test "$(wait_run "$r" direct 60)" = success
check "...without w2 caching anything (it used the store itself)" test ! -e "$T/w2/blob-cache"

finish
