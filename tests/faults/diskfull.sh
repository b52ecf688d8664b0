#!/usr/bin/env bash
# A full disk on a worker's data folder, and on the scheduler's artifact
# store, each a small loop-mounted ext4 file system this test makes: the
# attempt whose output does not fit fails with a clear error (and its retry
# goes on), the worker keeps its place and runs the next task, nothing
# half-written is left behind, and everything works again once there is
# room, without a restart.
source "$(dirname "$0")/../integration/lib.sh"

MOUNTS=()
loopfs() { # loopfs DIR MB: a fresh ext4 of MB megabytes mounted on DIR
    mkdir -p "$1"
    truncate -s "$2M" "$1.img" && mkfs.ext4 -q -F "$1.img" && mount -o loop "$1.img" "$1" &&
        MOUNTS+=("$1")
}
teardown() {
    local m
    for m in "${MOUNTS[@]:-}"; do [ -n "$m" ] && umount -l "$m" 2>/dev/null; done
    return 0
}
if ! loopfs "$T/w" 24 2>/dev/null; then
    echo "ok - skipped: cannot mount a loop file system (not root, or no loop devices)"
    exit 0
fi

put_dag fill <<EOF2
dag: fill
defaults: {image: host}
params: {mb: 40}
tasks:
  big:
    command: [sh, -c, 'head -c {{ params.mb }}000000 /dev/zero > /outputs/out.bin']
    outputs: [out.bin]
  small:
    command: [sh, -c, 'echo fine > /outputs/note.txt']
    outputs: [note.txt]
EOF2

start_scheduler s
start_worker w --slots 1

# --- the worker's data folder is too small for the output
r=$("$CAIRN" trigger fill)
check "the run ends" test "$(wait_run "$r" fill 120)" = failed
check "the task fails (its own write failed: exit code 1)" test "$(ti error "$r" fill big)" = "exit code 1"
check "  and its log says why" bash -c '"$0" logs "$1" big --dag fill | grep -qi "no space left"' "$CAIRN" "$r"
check "  the task next to it succeeds on the same worker" test "$(ti state "$r" fill small)" = success
check "the worker is still alive" bash -c '"$0" workers --json | jq -e ".workers[0].state == \"alive\""' "$CAIRN"
check "nothing of the failed attempt is left on the worker's disk" \
    bash -c "[ \$(du -sm '$T/w' | cut -f1) -lt 8 ]"
r=$("$CAIRN" trigger fill --param mb=4)
check "with an output that fits, the same worker runs it all" test "$(wait_run "$r" fill 120)" = success

# --- the scheduler's artifact store is full
kill_wait "$SCHED_PID"
loopfs "$T/s/artifacts" 16
start_scheduler s
r=$("$CAIRN" trigger fill --param mb=20) # fits the worker's disk, not the store's
check "with the store full, the run ends" test "$(wait_run "$r" fill 120)" = failed
err=$(ti error "$r" fill big)
check "  its attempt fails naming the store's full disk ($err)" grep -qi "no space left" <<<"$err"
check "  the scheduler stays healthy" curl -sf "$CAIRN_SERVER/api/v1/health"
check "  and stores the small output" test "$(ti state "$r" fill small)" = success
check "no half-written blob is left in the store" \
    bash -c "[ \$(du -sm '$T/s/artifacts' | cut -f1) -lt 4 ]"
r=$("$CAIRN" trigger fill --param mb=4)
check "once it fits, the run succeeds, no restart needed" test "$(wait_run "$r" fill 120)" = success
finish
