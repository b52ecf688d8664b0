#!/usr/bin/env bash
# Host mounts through the whole system: a runc worker started with
# --allow-mount runs a task that sees an allowed host folder read-only at its
# path (and writes to one mounted readonly: false); a link out of the
# allowed folder is refused; a worker without --allow-mount refuses every
# mount, with the reason as the task's error and without running it; a
# worker killed with SIGKILL and started again reaps its own cgroups.
#
# The scheduler must put the DAG's mounts in its leases. A scheduler build
# that does not yet (the worker logs CAIRN-TASK-MOUNT for every mount it
# gets) makes the mount checks meaningless: they are skipped, saying so.
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/host/data" "$T/host/scratch" "$T/other"
echo "landing zone $T" >"$T/host/data/file.txt"
ln -s /etc "$T/host/escape"

put_dag mounts <<EOF
dag: mounts
defaults: {image: host, timeout: 30s}
tasks:
  read:
    labels: {mounts: "yes"}
    mounts:
      - {host: $T/host/data, path: /data}
      - {host: $T/host/scratch, path: /scratch, readonly: false}
    command: [sh, -c, 'cat /data/file.txt;
      if touch /data/x 2>/tmp/e; then echo data-writable; else grep -q "Read-only" /tmp/e && echo data-readonly; fi;
      echo out > /scratch/out && echo scratch-ok']
  sneak:
    labels: {mounts: "yes"}
    mounts: [{host: $T/host/escape, path: /etc2}]
    command: [cat, /etc2/hostname]
  elsewhere:
    labels: {mounts: "no"}
    mounts: [{host: $T/host/data, path: /data}]
    command: [cat, /data/file.txt]
EOF

start_scheduler s
start_worker w1 --allow-mount "$T/host/" --allow-mount "$T/other" --labels mounts=yes
start_worker w2 --labels mounts=no

set +e
"$CAIRN" trigger mounts --wait >"$T/mounts.out" 2>&1
RC=$?
set -e
RUN=$(head -n1 "$T/mounts.out")
check "the run ended" [ "$(wait_run "$RUN" mounts 60)" != timeout ]

if ! logged w1 CAIRN-TASK-MOUNT && ! logged w2 CAIRN-TASK-MOUNT; then
    echo "# skipped: this scheduler does not put mounts in leases (no CAIRN-TASK-MOUNT logged)"
    check "the run failed, as a task without its mount does" [ "$RC" = 1 ]
    finish
    exit $?
fi

READ=$("$CAIRN" logs "$RUN" read --dag mounts)
check "read succeeded" [ "$(ti state "$RUN" mounts read)" = success ]
check "the task sees the allowed host folder at its path" grep -qx "landing zone $T" <<<"$READ"
check "a mount is read-only unless readonly: false" grep -qx data-readonly <<<"$READ"
check "readonly: false is writable" grep -qx scratch-ok <<<"$READ"
check "what it wrote there is on the host" [ "$(cat "$T/host/scratch/out")" = out ]
check "nothing was written to the read-only folder" [ ! -e "$T/host/data/x" ]
check "the worker logged what it mounted" \
    logged w1 "CAIRN-TASK-MOUNT .*host $T/host/data at /data \(read-only\)"

check "a link out of the allowed folder failed the task" \
    [ "$(ti state "$RUN" mounts sneak)" = failed ]
check "... without running it (no exit code, no output)" \
    [ "$(ti exit_code "$RUN" mounts sneak)" = null -a -z "$("$CAIRN" logs "$RUN" sneak --dag mounts 2>/dev/null)" ]
check "... and says why" [ "$(ti error "$RUN" mounts sneak)" = "host mount $T/host/escape is not allowed on worker w1 (allowed: $T/host, $T/other); start the worker with --allow-mount ($T/host/escape resolves to /etc)" ]
check "a worker without --allow-mount refuses the mount" [ "$(ti error "$RUN" mounts elsewhere)" = "host mount $T/host/data is not allowed on worker w2 (allowed: none); start the worker with --allow-mount" ]
check "the run failed" [ "$RC" = 1 ]

# --- a worker killed with SIGKILL reaps its own cgroups when it starts again
PARENT=$(sed -n 's/.*CAIRN-CGROUP .* under \(.*\)$/\1/p' "$T/w1.log" | tail -n1)
check "w1 has a cgroup parent of its own" grep -q "^/cairn/w1-[0-9a-f]\{16\}$" <<<"$PARENT"
CG=/sys/fs/cgroup/memory$PARENT
kill_wait "$PID_w1" KILL
if [ -d /sys/fs/cgroup/memory/cairn ] && [ -d "$CG" ]; then
    mkdir "$CG/cairn-left-by-w1" # as an attempt's memory cgroup made before runc ran
    start_worker w1 --allow-mount "$T/host" --labels mounts=yes
    check "w1 reaped its own leftover cgroup at start" [ ! -e "$CG/cairn-left-by-w1" ]
    check "w1 has the same parent after the restart" \
        [ "$(sed -n 's/.*CAIRN-CGROUP .* under \(.*\)$/\1/p' "$T/w1.log" | tail -n1)" = "$PARENT" ]
    kill_wait "$PID_w1" TERM
    check "a clean exit removes the worker's cgroup parent" [ ! -e "$CG" ]
fi
check "no container is left" [ -z "$(containers w1)" ]
finish
