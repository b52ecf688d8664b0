#!/usr/bin/env bash
# lib.sh's cleanup fails a test that leaves something behind: a process in
# PIDS that ignores SIGTERM, a process it started without tracking it (found
# by its open file in the test's folder) and, with runc and root, a
# container whose worker (and its watchdog) was SIGKILLed. Each is named, the test fails
# although its own checks passed, and each is gone afterwards.
source "$(dirname "$0")/lib.sh"

cat >"$T/inner.sh" <<'INNER'
source "$CAIRN_SRC/tests/integration/lib.sh"
echo "T=$T"
sleep 600 >"$T/untracked.out" &
echo "UNTRACKED=$!"
bash -c 'trap "" TERM; while :; do sleep 0.2; done' &
PIDS+=("$!")
echo "STUBBORN=$!"
if [ "${WITH_CONTAINER:-0}" = 1 ]; then
    put_dag nap <<'DAG'
dag: nap
defaults: {image: host}
tasks:
  nap: {command: [sleep, "600"]}
DAG
    start_scheduler s
    start_worker w1
    RUN=$("$CAIRN" trigger nap)
    running() { [ "$(ti state "$RUN" nap nap)" = running ]; }
    check "the task runs in a container" wait_until 30 running
    # its watchdog first, which would stop the container (worker/watchdog.h)
    kill -KILL $(pgrep -x cairn-watchdog -P "$PID_w1")
    kill_wait "$PID_w1" KILL
fi
check "the test's own checks pass" true
finish
INNER

with=0
if [ "$(id -u)" = 0 ] && command -v runc >/dev/null; then with=1; fi
set +e
TMPDIR=$T WITH_CONTAINER=$with bash "$T/inner.sh" >"$T/inner.out" 2>&1
RC=$?
set -e
sed 's/^/# inner: /' "$T/inner.out"
T2=$(sed -n 's/^T=//p' "$T/inner.out")
UNTRACKED=$(sed -n 's/^UNTRACKED=//p' "$T/inner.out")
STUBBORN=$(sed -n 's/^STUBBORN=//p' "$T/inner.out")

check "a test that leaves something behind fails (exit $RC)" [ "$RC" = 1 ]
check "its own checks had passed" grep -q "^[0-9]* passed, 0 failed" "$T/inner.out"
check "the process that ignored SIGTERM is named" \
    grep -q "^not ok - leftover: process $STUBBORN (bash -c trap .*) ignored SIGTERM for 10 s: killed" "$T/inner.out"
check "the untracked process is named (its output goes to the test's folder)" \
    grep -q "^not ok - leftover: process $UNTRACKED (sleep 600) is still running after the test: killed" "$T/inner.out"
if [ "$with" = 1 ]; then
    check "the container of the killed worker is named" \
        grep -q "^not ok - leftover: container [^ ]* is still in $T2/w1/runc: deleted" "$T/inner.out"
    check "...and deleted" [ -z "$(runc --root "$T2/w1/runc" list -q 2>/dev/null)" ]
else
    echo "ok - # SKIP the container case needs root and runc"
fi
check "the files are kept for a look" grep -q "^test files kept in $T2" "$T/inner.out"
check "the untracked process is gone" bash -c '! kill -0 "$0" 2>/dev/null' "$UNTRACKED"
check "the stubborn process is gone" bash -c '! kill -0 "$0" 2>/dev/null' "$STUBBORN"
check "nothing that names the inner test's folder is left" [ -z "$(test_procs)" ]
finish
