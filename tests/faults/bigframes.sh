#!/usr/bin/env bash
# Frames nobody signed, as big as the wire allows (16 MiB), from a stranger
# on the worker port: each is refused, the connection it came on is closed,
# and the scheduler's memory goes back to about what it was (before: 120
# such frames left it 130-300 MB bigger for good). Workers keep working.
source "$(dirname "$0")/../integration/lib.sh"

put_dag after <<'EOF2'
dag: after
defaults: {image: host, retries: 0}
tasks:
  a:
    command: [echo, still here]
EOF2

start_scheduler s
rss() { awk -v k="$1:" '$1==k {print $2}' "/proc/$SCHED_PID/status"; }
before=$(rss VmRSS)
sent=$(/usr/bin/python3 "$(dirname "$0")/spflood.py" 127.0.0.1 "$NNG_PORT" 8 15 $((16 * 1024 * 1024 - 64)))
echo "# $sent frames of 16 MiB sent; scheduler RSS before $before kB, peak $(rss VmHWM) kB"
check "the stranger's frames went out ($sent)" [ "$sent" -ge 100 ]
check "  and were refused, their connections closed" logged s "CAIRN-WIRE-REJECT rejected a message of [0-9]+ bytes: .*closing its connection"
small() { [ "$(rss VmRSS)" -lt $((before + 16 * 1024)) ]; }
wait_until 30 small || true
after=$(rss VmRSS)
echo "# scheduler RSS after: $after kB"
check "the scheduler's memory is back near where it was ($before -> $after kB)" \
    [ "$after" -lt $((before + 64 * 1024)) ]
start_worker w1 --slots 1
R=$("$CAIRN" trigger after)
check "a worker registers and runs a task afterwards" [ "$(wait_run "$R" after 60)" = success ]
finish
