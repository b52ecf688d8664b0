#!/usr/bin/env bash
# A task that prints far more than anyone will read does not take its worker
# down: its log is cut at the worker's --max-log-size with a marker (the
# task goes on and succeeds), a task next to it runs as usual, and with no
# limit the worker's memory stays bounded while the whole log goes through
# (the task waits on its pipe when the queue to the scheduler is full).
source "$(dirname "$0")/../integration/lib.sh"

put_dag chatty <<'EOF2'
dag: chatty
defaults: {image: host, retries: 0}
params: {mb: 200}
tasks:
  loud:
    command: [sh, -c, 'yes "a line of output that nobody will read, again and again" | head -c {{ params.mb }}000000; echo; echo done']
  quiet:
    command: [sh, -c, 'sleep 1; echo quiet']
EOF2

rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

start_scheduler s
start_worker w1 --slots 2 --max-log-size 1Mi
R=$("$CAIRN" trigger chatty)
check "the run with a 200 MB printer succeeds" [ "$(wait_run "$R" chatty 120)" = success ]
check "  the quiet task next to it too" [ "$("$CAIRN" logs "$R" quiet --dag chatty)" = quiet ]
size=$("$CAIRN" logs "$R" loud --dag chatty | wc -c)
check "  the loud task's log is cut near 1 MiB ($size bytes)" \
    [ "$size" -ge 1048576 -a "$size" -lt 1100000 ]
check "  ending with the marker" bash -c '"$0" logs "$1" loud --dag chatty | tail -n 1 | grep -q "max-log-size of 1048576 bytes"' \
    "$CAIRN" "$R"
check "  and the worker logged it" logged w1 "CAIRN-LOG-LIMIT"
hwm=$(rss_kb "$PID_w1")
echo "# worker peak RSS with the limit: $hwm kB"
check "  the worker's peak RSS stayed under 64 MB ($hwm kB)" [ "$hwm" -lt 65536 ]
kill_wait "$PID_w1"

start_worker w2 --slots 2 --max-log-size 0
R=$("$CAIRN" trigger chatty --param mb=100)
check "without a limit the run succeeds" [ "$(wait_run "$R" chatty 180)" = success ]
size=$("$CAIRN" logs "$R" loud --dag chatty | wc -c)
check "  with the whole log at the scheduler ($size bytes)" [ "$size" -ge 100000000 ]
check "  ending as the task ended" bash -c '"$0" logs "$1" loud --dag chatty | tail -n 1 | grep -qx done' \
    "$CAIRN" "$R"
hwm=$(rss_kb "$PID_w2")
echo "# worker peak RSS without a limit, 100 MB of log: $hwm kB"
check "  the worker's peak RSS stayed under 96 MB ($hwm kB)" [ "$hwm" -lt 98304 ]
check "  its output waited for the link" logged w2 "CAIRN-LOG-BACKPRESSURE"
finish
