#!/usr/bin/env bash
# Task containers through the whole system: a real scheduler and a runc
# worker run tasks that look at their own sandbox (PID 1, /proc, network,
# read-only root, writable /outputs and /workspace, tmpfs /tmp, environment),
# a memory hog and a task past its timeout; logs through `cairn logs`
# (stdout and stderr, --follow, --attempt, after the worker is gone);
# `cairn trigger --wait` exit codes.
source "$(dirname "$0")/lib.sh"

HTTP_PORT=$(free_port)
PY=/usr/bin/python3
# connect to the scheduler's HTTP port on 127.0.0.1: prints "connected" or
# "refused ERRNO"
CONNECT="import socket; s = socket.socket(); s.settimeout(3); r = s.connect_ex(('127.0.0.1', $HTTP_PORT)); print('connected' if r == 0 else 'refused %d' % r)"

put_dag iso <<EOF
dag: iso
defaults: {image: host, timeout: 30s}
tasks:
  pid1:
    command: [sh, -c, 'echo "pid=\$\$"; ls /proc | grep -c "^[0-9]"']
  nonet:
    command: [sh, -c, 'cat /proc/net/dev; $PY -c "\$0"', "$CONNECT"]
  hostnet:
    network: true
    command: [sh, -c, 'cat /proc/net/dev; $PY -c "\$0"', "$CONNECT"]
  fs:
    command: [sh, -c, 'if touch /usr/x 2>/tmp/err; then echo usr-writable; else grep -q "Read-only file system" /tmp/err && echo usr-readonly; fi;
      echo o > /outputs/o.txt && echo outputs-ok; echo w > /workspace/w.txt && echo workspace-ok;
      grep " /tmp " /proc/mounts']
  env:
    env: {FOO: "bar-{{ ds }}", WHO: "{{ task }}"}
    command: [env]
  streams:
    command: [sh, -c, 'echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2']
EOF

put_dag fails <<EOF
dag: fails
defaults: {image: host}
tasks:
  hog:
    resources: {memory: 64Mi}
    command: [$PY, -c, 'b = bytearray(500 * 1024 * 1024); print("survived")']
  slow:
    timeout: 2s
    command: [sleep, "60"]
EOF

put_dag follow <<'EOF'
dag: follow
defaults: {image: host}
tasks:
  ticks:
    command: [sh, -c, 'for i in 1 2 3 4 5 6; do echo "line $i"; sleep 0.5; done']
  flaky:
    retries: 1
    retry_delay: 1s
    command: [sh, -c, 'echo "attempt $CAIRN_ATTEMPT"; [ "$CAIRN_ATTEMPT" -ge 2 ]']
EOF

start_scheduler s
start_worker w1 --slots 4

# --- a run that succeeds; --wait exits 0 --------------------------------
set +e
"$CAIRN" trigger iso --wait >"$T/iso.out" 2>&1 &
ISO_WAIT=$!
"$CAIRN" trigger fails --wait >"$T/fails.out" 2>&1 &
FAILS_WAIT=$!
FAILS_T0=$(date +%s)
wait "$ISO_WAIT"
ISO_RC=$?
wait "$FAILS_WAIT"
FAILS_RC=$?
FAILS_SECS=$(($(date +%s) - FAILS_T0))
set -e
ISO=$(head -n1 "$T/iso.out")
FRUN=$(head -n1 "$T/fails.out")
check "trigger --wait exits 0 when the run succeeds" [ "$ISO_RC" = 0 ]
check "trigger --wait exits 1 when the run fails" [ "$FAILS_RC" = 1 ]
check "run iso succeeded" [ "$(run_state "$ISO" iso)" = success ]

log() { "$CAIRN" logs "$ISO" "$1" --dag iso; }
check "the task is PID 1" [ "$(log pid1 | head -n1)" = "pid=1" ]
check "/proc shows only the container's processes" [ "$(log pid1 | sed -n 2p)" -le 4 ]
NONET=$(log nonet)
HOSTNET=$(log hostnet)
check "no network: only lo in /proc/net/dev" \
    [ "$(grep -c ':' <<<"$NONET")" = 1 -a "$(grep -c '^ *lo:' <<<"$NONET")" = 1 ]
check "no network: the host's port cannot be reached" grep -q '^refused ' <<<"$NONET"
check "network: true sees the host's interfaces" \
    [ "$(grep -c ':' <<<"$HOSTNET")" = "$(grep -c ':' /proc/net/dev)" ]
check "network: true reaches a host port" grep -qx connected <<<"$HOSTNET"
FS=$(log fs)
check "the root filesystem is read-only" grep -qx usr-readonly <<<"$FS"
check "/outputs is writable" grep -qx outputs-ok <<<"$FS"
check "/workspace is writable" grep -qx workspace-ok <<<"$FS"
check "/tmp is a tmpfs" grep -q '^tmpfs /tmp tmpfs' <<<"$FS"
ENV=$(log env)
LD=$(rj "$ISO" iso .logical_date)
check "CAIRN_DAG is set" grep -qx "CAIRN_DAG=iso" <<<"$ENV"
check "CAIRN_RUN_ID is set" grep -qx "CAIRN_RUN_ID=$ISO" <<<"$ENV"
check "CAIRN_TASK is set" grep -qx "CAIRN_TASK=env" <<<"$ENV"
check "CAIRN_ATTEMPT is set" grep -qx "CAIRN_ATTEMPT=1" <<<"$ENV"
check "CAIRN_LOGICAL_DATE is the run's logical date" grep -qx "CAIRN_LOGICAL_DATE=$LD" <<<"$ENV"
check "the task's env is rendered" grep -qx "FOO=bar-${LD:0:10}" <<<"$ENV"
check "templates in env see the task" grep -qx "WHO=env" <<<"$ENV"
check "logs show stdout and stderr in order" \
    [ "$(log streams | tr '\n' ' ')" = "out1 err1 out2 " ]

# --- memory limit and timeout -------------------------------------------
check "the memory hog failed" [ "$(ti state "$FRUN" fails hog)" = failed ]
check "the memory hog is oom_killed" [ "$(ti oom_killed "$FRUN" fails hog)" = true ]
check "the memory hog did not get its memory" \
    bash -c "! $CAIRN logs $FRUN hog --dag fails | grep -q survived"
check "the slow task failed" [ "$(ti state "$FRUN" fails slow)" = failed ]
check "the slow task timed_out" [ "$(ti timed_out "$FRUN" fails slow)" = true ]
check "the slow task is not oom_killed" [ "$(ti oom_killed "$FRUN" fails slow)" = false ]
check "the run with the timeout ended within 15 s ($FAILS_SECS s)" [ "$FAILS_SECS" -le 15 ]
check "runs show --json says the run failed" [ "$(run_state "$FRUN" fails)" = failed ]

# --- logs --follow and --attempt -----------------------------------------
FOLLOW=$("$CAIRN" trigger follow)
wait_until 20 bash -c "[ \"\$($CAIRN runs show $FOLLOW --dag follow --json | jq -r '.tasks[0].state')\" = running ]"
# timestamp each line as it arrives
timeout 30 "$CAIRN" logs "$FOLLOW" ticks --dag follow --follow |
    while IFS= read -r line; do echo "$(date +%s.%N) $line"; done >"$T/follow.txt" || true
check "logs --follow printed every line until the task ended" \
    [ "$(cut -d' ' -f2- "$T/follow.txt" | tr '\n' ' ')" = "line 1 line 2 line 3 line 4 line 5 line 6 " ]
check "logs --follow streamed the lines as they came" \
    awk 'NR==1{a=$1} END{exit !($1 - a >= 1.0)}' "$T/follow.txt"
check "the task had ended when --follow returned" \
    [ "$(ti state "$FOLLOW" follow ticks)" = success ]
check "run follow succeeded" [ "$(wait_run "$FOLLOW" follow 30)" = success ]
check "flaky took 2 attempts" [ "$(ti attempts "$FOLLOW" follow flaky)" = 2 ]
check "logs --attempt 1 shows the failed attempt" \
    [ "$("$CAIRN" logs "$FOLLOW" flaky --dag follow --attempt 1)" = "attempt 1" ]
check "logs shows the latest attempt by default" \
    [ "$("$CAIRN" logs "$FOLLOW" flaky --dag follow)" = "attempt 2" ]
check "logs --attempt 3 is an error" \
    bash -c "! $CAIRN logs $FOLLOW flaky --dag follow --attempt 3 2>/dev/null"

# --- logs outlive the worker; nothing is left behind ---------------------
kill_wait "$PID_w1" KILL
check "logs are readable after the worker is gone" \
    [ "$(log streams | tr '\n' ' ')" = "out1 err1 out2 " ]
check "no container is left" [ -z "$(containers w1)" ]
finish
