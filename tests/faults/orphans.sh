#!/usr/bin/env bash
# A worker's containers die with it: a worker SIGKILLed while its task's
# container runs leaves nothing running (its watchdog process deletes the
# container within moments, not when the worker is started again, so the
# retry elsewhere never runs beside it). And a data folder belongs to one
# worker at a time: a second worker on it is refused, naming the lock.
source "$(dirname "$0")/../integration/lib.sh"

put_dag orphan <<'EOF2'
dag: orphan
defaults: {image: host, retries: 1}
tasks:
  work:
    command: [sh, -c, 'echo "on $CAIRN_ATTEMPT"; [ $CAIRN_ATTEMPT = 1 ] && exec sleep 3600.5; echo finished']
EOF2

start_scheduler s --lease-ttl 2000
start_worker w1 --slots 1
R=$("$CAIRN" trigger orphan)
check "the task's container runs on w1" \
    wait_until 20 bash -c "[ \"\$($CAIRN logs $R work --dag orphan)\" = 'on 1' ]"
check "  its process is there" pgrep -f 'slee[p] 3600.5'
WD=$(pgrep -x cairn-watchdog -P "$PID_w1" || true)
check "w1 has a watchdog process" [ -n "$WD" ]

out=$("$WORKER" --scheduler "$NNG_URL" --data "$T/w1" --name w1b 2>&1) && rc=0 || rc=$?
check "a second worker on w1's data folder is refused (exit $rc)" [ "$rc" != 0 ]
check "  naming the lock and the other worker" grep -q "another cairn-worker uses the data folder" <<<"$out"

kill_wait "$PID_w1" KILL
check "after w1's SIGKILL its container is gone within seconds" \
    wait_until 15 bash -c "[ -z \"\$(runc --root $T/w1/runc list -q 2>/dev/null)\" ]"
check "  and so is the task's process" wait_until 15 bash -c "! pgrep -f 'slee[p] 3600.5'"
check "  the watchdog said so" wait_until 15 logged w1 "CAIRN-WATCHDOG.*stopped 1 container"
check "  and is gone too" wait_until 15 bash -c "! kill -0 $WD 2>/dev/null"

start_worker w2 --slots 1
check "the retry runs elsewhere and the run succeeds" [ "$(wait_run "$R" orphan 30)" = success ]
check "  attempt 2, on w2" [ "$(ti worker "$R" orphan work)/$(ti attempts "$R" orphan work)" = w2/2 ]
start_worker w1 --slots 1
check "w1 comes back on its data folder with nothing left to reap" \
    bash -c '! grep -q "CAIRN-REAP.*removed" "$0"' "$T/w1.log"
finish
