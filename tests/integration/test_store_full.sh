#!/usr/bin/env bash
# Idempotent triggers and a full disk, with the real scheduler and worker:
# an Idempotency-Key makes a repeated trigger answer with the first one's
# run (across a restart too); when the state store's disk fills up the
# scheduler refuses writes with 503, reports itself degraded on /health,
# hands out no leases, loses nothing, and recovers by itself once there is
# room again. The store lives on a small tmpfs this test mounts.
source "$(dirname "$0")/lib.sh"

D=$T/full
mkdir -p "$D"
if ! mount -t tmpfs -o size=6m cairn-test "$D" 2>/dev/null; then
    echo "ok - skipped: cannot mount a tmpfs (not root?)"
    exit 0
fi
teardown() { umount -l "$D" 2>/dev/null || true; }

put_dag hello <<'EOF2'
dag: hello
tasks:
  hi: {command: [sh, -c, 'echo hi']}
EOF2
put_dag other <<'EOF2'
dag: other
tasks:
  hi: {command: ["true"]}
EOF2

start_scheduler full
start_worker w --slots 2 --isolation none

nruns() { "$CAIRN" runs list --dag hello --json --limit 1000 | jq '.runs | length'; }
post() { # post PATH KEY -> "STATUS BODY"
    curl -s -o "$T/post.out" -w '%{http_code}' -X POST -H "Idempotency-Key: $2" \
        -H 'Content-Type: application/json' -d '{}' "$CAIRN_SERVER$1"
}

# --- idempotency
st1=$(post /api/v1/dags/hello/trigger k1); run1=$(jq -r .run_id "$T/post.out")
st2=$(post /api/v1/dags/hello/trigger k1); run2=$(jq -r .run_id "$T/post.out")
check "a first trigger with a key starts a run (201)" [ "$st1" = 201 ]
check "the same key again answers 200 with the same run ($run1)" \
    [ "$st2" = 200 -a "$run2" = "$run1" -a -n "$run1" ]
st=$(post /api/v1/dags/other/trigger k1)
check "the key used with another DAG is 409 naming the first DAG" \
    sh -c "[ $st = 409 ] && grep -q \"DAG 'hello'\" '$T/post.out'"
st=$(curl -s -o "$T/post.out" -w '%{http_code}' -X POST -H 'Idempotency-Key: a b' -H 'Content-Type: application/json' \
    -d '{}' "$CAIRN_SERVER/api/v1/dags/hello/trigger")
check "a key with a space is 400" [ "$st" = 400 ]
c1=$("$CAIRN" trigger hello --idempotency-key nightly-1)
c2=$("$CAIRN" trigger hello --idempotency-key nightly-1)
check "cairn trigger --idempotency-key twice prints one run id" [ "$c1" = "$c2" -a -n "$c1" ]
check "so hello has two runs, not four" \
    [ "$(nruns)" = 2 ]

kill_wait "$SCHED_PID"
start_scheduler full
st=$(post /api/v1/dags/hello/trigger k1); run3=$(jq -r .run_id "$T/post.out")
check "after a restart the key still answers with its run" [ "$st" = 200 -a "$run3" = "$run1" ]
check "both runs end in success" \
    [ "$(wait_run "$run1" hello 30)" = success -a "$(wait_run "$c1" hello 30)" = success ]

# --- the disk fills up
dd if=/dev/zero of="$D/filler" bs=64k 2>/dev/null || true
sent=0 refused= refused_key=
for i in $(seq 1 200); do
    st=$(post /api/v1/dags/hello/trigger "fill-$i")
    if [ "$st" = 503 ]; then refused=$i; refused_key=fill-$i; break; fi
    [ "$st" = 201 ] && sent=$((sent + 1))
    # commits may reuse pages the store freed: keep writing until one needs more
done
check "with the disk full a trigger is answered 503 (after $sent that fit)" [ -n "$refused" ]
hs=$(curl -s -o "$T/health.out" -w '%{http_code}' "$CAIRN_SERVER/api/v1/health")
check "/health answers 503 degraded with the reason" \
    sh -c "[ $hs = 503 ] && jq -e '.status == \"degraded\" and (.reason | test(\"space|full\"))' '$T/health.out' >/dev/null"
check "the scheduler logged CAIRN-STORE-FULL" logged full CAIRN-STORE-FULL
st=$(post /api/v1/dags/hello/pause x)
check "any other write is refused at once with 503 saying nothing changed" \
    sh -c "[ $st = 503 ] && grep -q 'nothing was changed' '$T/post.out'"
check "reads still work while degraded" "$CAIRN" runs show "$run1" --dag hello
check "the scheduler is still running" kill -0 "$SCHED_PID"

# --- room again
rm -f "$D/filler"
check "the scheduler takes writes again by itself (CAIRN-STORE-OK)" \
    wait_until 20 logged full CAIRN-STORE-OK
check "/health is ok again" wait_until 10 curl -sf "$CAIRN_SERVER/api/v1/health"
st=$(post /api/v1/dags/hello/trigger "$refused_key"); runr=$(jq -r .run_id "$T/post.out")
check "retrying the refused trigger with its key gives one run, not two ($st)" \
    [ "$st" = 200 -o "$st" = 201 ]
n=$(nruns)
check "hello has the runs that were accepted plus the refused one's ($n = $((2 + sent + 1)))" \
    [ "$n" = $((2 + sent + 1)) ]
check "that run ends in success" [ "$(wait_run "$runr" hello 60)" = success ]
kill_wait "$SCHED_PID"
start_scheduler full
check "after a restart every run is there" \
    [ "$(nruns)" = "$n" ]
finish
