#!/usr/bin/env bash
# No silent loss of log lines: when the scheduler cannot store part of an
# attempt's log (its log folder's disk is full), the rest of the log is still
# stored once there is room, and the attempt's log says it is incomplete
# (log_lost, "complete": false) instead of ending "complete" with lines
# missing. The logs live on a small tmpfs this test mounts.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/s/logs"
if ! mount -t tmpfs -o size=256k cairn-test "$T/s/logs" 2>/dev/null; then
    echo "ok - skipped: cannot mount a tmpfs (not root?)"
    exit 0
fi
teardown() { umount -l "$T/s/logs" 2>/dev/null || true; }

put_dag talk <<EOF2
dag: talk
tasks:
  say:
    command:
      - sh
      - -c
      - |
        for i in 1 2 3; do echo "before-\$i"; done
        while [ ! -e $T/go1 ]; do sleep 0.05; done
        i=0; while [ \$i -lt 40 ]; do echo "middle-\$i \$(printf '%2000s' '' | tr ' ' x)"; i=\$((i+1)); done
        while [ ! -e $T/go2 ]; do sleep 0.05; done
        for i in 1 2 3; do echo "after-\$i"; done
EOF2

start_scheduler s
start_worker w --slots 1 --isolation none

r=$("$CAIRN" trigger talk)
wait_until 30 bash -c '"$0" logs "$1" say --dag talk | grep -q before-3' "$CAIRN" "$r"
check "the first lines are stored" bash -c '"$0" logs "$1" say --dag talk | grep -q before-3' "$CAIRN" "$r"

# fill the log folder's disk, then let the task print its middle part
dd if=/dev/zero of="$T/s/logs/filler" bs=4k 2>/dev/null || true
touch "$T/go1"
check "the scheduler says which log lost bytes" wait_until 30 logged s CAIRN-LOG-LOST
# room again: the rest of the output is stored
rm -f "$T/s/logs/filler"
touch "$T/go2"
check "the task still succeeds" test "$(wait_run "$r" talk)" = success

out=$("$CAIRN" logs "$r" say --dag talk 2>"$T/logs.err")
check "lines printed after the disk had room again are stored" grep -q after-3 <<<"$out"
check "  and those before it" grep -q before-1 <<<"$out"
check "cairn logs says the log is incomplete" grep -q "incomplete" "$T/logs.err"
chunk=$(curl -sf "$CAIRN_SERVER/api/v1/runs/$(urlenc "$r")/tasks/say/logs?dag=talk&attempt=1&offset=0&limit=1048576")
check "the log is final but not complete" test "$(jq -r '"\(.final) \(.complete)"' <<<"$chunk")" = "true false"
check "  with the lost bytes counted" test "$(jq -r '.log_lost > 0' <<<"$chunk")" = true
check "runs show counts them too" test "$(rj "$r" talk '.tasks[0].log_lost > 0')" = true
check "the attempt record keeps them" test "$(attempts "$r" talk say | jq -r '.attempts[0].log_lost > 0')" = true
check "cairn logs --follow ends on such a log" timeout 20 "$CAIRN" logs "$r" say --dag talk --follow

# a log with nothing lost is complete, as before
r2=$("$CAIRN" trigger talk)
check "a second run succeeds" test "$(wait_run "$r2" talk)" = success
chunk=$(curl -sf "$CAIRN_SERVER/api/v1/runs/$(urlenc "$r2")/tasks/say/logs?dag=talk&attempt=1&offset=0&limit=1048576")
check "  and its log is complete, nothing lost" test "$(jq -r '"\(.final) \(.complete) \(.log_lost)"' <<<"$chunk")" = "true true 0"
check "  with every line" test "$(jq -r .data <<<"$chunk" | grep -c middle-)" = 40
finish
