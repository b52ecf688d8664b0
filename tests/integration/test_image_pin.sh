#!/usr/bin/env bash
# Pinning image tags off the scheduler's loop: a DAG whose registry accepts
# connections and never answers (a python3 server on 127.0.0.1) keeps its
# run queued and "pinning", with no task leased, while the scheduler's API
# answers and another DAG's run (its tag pinned from Debian's
# docker-registry) succeeds. A second run of the stalled DAG shares the
# wait (the registry is asked once at a time). When the registry goes
# away the pin fails, the runs start unpinned and their tasks fail with an
# error naming the registry. A scheduler stopped while pinning stops at
# once; restarted, it asks the registry again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/images_lib.sh"

for c in umoci skopeo docker-registry runc; do
    if ! command -v "$c" >/dev/null; then
        echo "not ok - $c is not installed (run scripts/install-deps.sh)"
        exit 1
    fi
done

build_image "$T/oci" 1
start_registry plain
push "$T/oci:1" "$REG_plain/test/img:1"

# start_stall NAME: a registry that accepts and never answers; sets
# STALL_PID and STALL_<NAME>=127.0.0.1:PORT; each connection is a line in
# $T/stall-NAME.conns
start_stall() {
    local name=$1 port
    : >"$T/stall-$name.conns"
    /usr/bin/python3 -u - "$T/stall-$name.port" "$T/stall-$name.conns" <<'PY' >>"$T/stall-$name.log" 2>&1 &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)  # never answered, never closed
    with open(sys.argv[2], "a") as f:
        f.write("conn\n")
PY
    STALL_PID=$!
    PIDS+=("$STALL_PID")
    wait_until 20 [ -s "$T/stall-$name.port" ]
    port=$(cat "$T/stall-$name.port")
    eval "STALL_$name=127.0.0.1:$port"
}
conns() { wc -l <"$T/stall-$1.conns"; }
conns_at_least() { [ "$(conns "$1")" -ge "$2" ]; } # conns_at_least NAME N

start_stall a
put_dag stalled <<EOF
dag: stalled
defaults: {timeout: 60s, retries: 0}
tasks:
  t:
    image: $STALL_a/test/stall:1
    command: [true]
EOF
put_dag other <<EOF
dag: other
defaults: {timeout: 60s}
tasks:
  t:
    image: $REG_plain/test/img:1
    command: [cat, /added.txt]
EOF

start_scheduler s --insecure-registry "$REG_plain" --insecure-registry "$STALL_a" \
    --pin-timeout 600
start_worker w1 --insecure-registry "$REG_plain" --insecure-registry "$STALL_a" --slots 2

pinning() { [ "$(rj "$1" "$2" .pinning)" = true ]; }

# (a loop blocked by the request would not answer the trigger either)
timeout 60 "$CAIRN" trigger stalled >"$T/s1.out" 2>&1
S1=$(head -n1 "$T/s1.out")
check "the stalled registry was asked for the tag" wait_until 30 conns_at_least a 1
check "the run is queued while its tag is being resolved" [ "$(run_state "$S1" stalled)" = queued ]
check "... and says it is pinning" pinning "$S1" stalled
check "... also in cairn runs show" \
    grep -q "resolving image tags to digests" <<<"$("$CAIRN" runs show "$S1" --dag stalled)"
check "the API answers while the registry stalls" \
    curl -sf --max-time 30 -o /dev/null "$CAIRN_SERVER/api/v1/health"

timeout 60 "$CAIRN" trigger stalled >"$T/s2.out" 2>&1
S2=$(head -n1 "$T/s2.out")
check "a second run of the stalled DAG is pinning too" pinning "$S2" stalled

set +e
timeout 150 "$CAIRN" trigger other --wait >"$T/o.out" 2>&1
set -e
O=$(head -n1 "$T/o.out")
check "another DAG's run succeeds meanwhile" [ "$(wait_run "$O" other 60)" = success ]
check "... its tag pinned from the other registry" \
    [ "$(ti image_digest "$O" other t)" = "$(rj "$O" other ".images[\"$REG_plain/test/img:1\"]")" ]
check "... to a digest" grep -qE '^sha256:[0-9a-f]{64}$' <<<"$(ti image_digest "$O" other t)"
check "... and it ran in that image" [ "$("$CAIRN" logs "$O" t --dag other | grep -v '^cairn: ')" = added ]
check "the stalled run is still pinning after that" pinning "$S1" stalled
check "... still queued" [ "$(run_state "$S1" stalled)" = queued ]
check "... with no task leased" [ "$(ti state "$S1" stalled t)" = pending ]
check "the stalled registry was asked once (the second run waits for that answer)" \
    [ "$(conns a)" = 1 ]

# the registry goes away: the pins fail, the runs start and fail
kill_wait "$STALL_PID"
check "the first stalled run fails" [ "$(wait_run "$S1" stalled 90)" = failed ]
check "the second stalled run fails" [ "$(wait_run "$S2" stalled 90)" = failed ]
E=$(ti error "$S1" stalled t)
echo "# error: $E"
check "... its task's error names the registry" grep -q "registry $STALL_a" <<<"$E"
check "... and it is no longer pinning" [ "$(rj "$S1" stalled .pinning)" = false ]
check "the scheduler logged that it could not resolve the tag" \
    logged s "CAIRN-IMAGE-PIN .*cannot resolve $STALL_a/test/stall:1"

# stopped while pinning: the scheduler stops at once and asks again when
# it starts
start_stall b
sed -i "s|$STALL_a|$STALL_b|" "$T/dags/stalled.yaml"
kill_wait "$SCHED_PID"
start_scheduler s --insecure-registry "$REG_plain" --insecure-registry "$STALL_b" \
    --pin-timeout 600
timeout 60 "$CAIRN" trigger stalled >"$T/s3.out" 2>&1
S3=$(head -n1 "$T/s3.out")
check "a run of the changed DAG asks the new stalled registry" wait_until 30 conns_at_least b 1
check "... and is pinning" pinning "$S3" stalled
T0=$(date +%s)
kill_wait "$SCHED_PID"
echo "# the scheduler stopped in $(($(date +%s) - T0)) s while pinning (status $EXIT_STATUS)"
check "the scheduler stops while a tag is being resolved (exit 0)" [ "$EXIT_STATUS" = 0 ]
start_scheduler s --insecure-registry "$REG_plain" --insecure-registry "$STALL_b" \
    --pin-timeout 600
check "restarted, it asks the registry again" wait_until 30 conns_at_least b 2
check "... the recovered run is pinning" pinning "$S3" stalled
kill_wait "$STALL_PID"
check "... and it fails once the registry is gone" [ "$(wait_run "$S3" stalled 90)" = failed ]

finish
