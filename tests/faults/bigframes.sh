#!/usr/bin/env bash
# Frames nobody signed, as big as the wire allows (16 MiB), from a stranger
# on the worker port: each is refused, the connection it came on is closed,
# and the scheduler's memory goes back to about what it was (before: 120
# such frames left it 130-300 MB bigger for good). While they arrive, what
# the scheduler holds is bounded by the connections sending at once: at
# most two frames of each (one nng reads, one waiting for the loop); nng
# 1.5 cannot limit a connection's frames before its HELLO (see
# docs/operations.md). Workers keep working.
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
conns=8
sent=$(/usr/bin/python3 "$(dirname "$0")/spflood.py" 127.0.0.1 "$NNG_PORT" $conns 15 $((16 * 1024 * 1024 - 64)))
peak=$(rss VmHWM)
echo "# $sent frames of 16 MiB sent over $conns connections; scheduler RSS before $before kB, peak $peak kB"
check "the stranger's frames went out ($sent)" [ "$sent" -ge 100 ]
asan=0; grep -qa __asan_init "$SCHED" && asan=1
check "  the peak stayed within two frames per connection ($(((peak - before) / 1024)) MB over)" \
    bash -c "[ $asan = 1 ] || [ $((peak - before)) -lt $((conns * 2 * 16 * 1024 + 64 * 1024)) ]"
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
