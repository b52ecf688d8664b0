#!/usr/bin/env bash
# A task's own limits, set in its DAG file: max_log_size (with on_log_limit)
# overrides the worker's --max-log-size for that task; a log over the limit
# is cut with a marker (truncate) or stops the task with a clear error
# (fail). `defaults:` gives a DAG-wide value.
source "$(dirname "$0")/lib.sh"

put_dag loglim <<'EOF2'
dag: loglim
defaults: {image: host, retries: 0, max_log_size: 256Ki}
tasks:
  cut:
    command: [sh, -c, 'yes "some line of output" | head -c 3000000; echo; echo done']
  own:
    max_log_size: 512Ki
    command: [sh, -c, 'yes "some line of output" | head -c 3000000; echo; echo done']
  stop:
    max_log_size: 1Mi
    on_log_limit: fail
    command: [sh, -c, 'yes "a line that never ends"']
  nolimit:
    max_log_size: 0
    command: [sh, -c, 'yes "some line of output" | head -c 3000000; echo; echo done']
EOF2

start_scheduler s
# the worker's own limit is far above what the tasks print: theirs apply
start_worker w1 --slots 4 --max-log-size 100Mi
R=$("$CAIRN" trigger loglim)
check "the run ends failed (one task is over its limit)" [ "$(wait_run "$R" loglim 120)" = failed ]
size=$("$CAIRN" logs "$R" cut --dag loglim | wc -c)
check "defaults' max_log_size cuts a task's log near 256 KiB ($size bytes)" \
    [ "$size" -ge 262144 -a "$size" -lt 270000 ]
check "  with the marker" bash -c '"$0" logs "$1" cut --dag loglim | tail -n 1 | grep -q "the task.s max_log_size of 256KiB"' \
    "$CAIRN" "$R"
check "  and the task went on to success" [ "$(ti state "$R" loglim cut)" = success ]
size=$("$CAIRN" logs "$R" own --dag loglim | wc -c)
check "a task's own max_log_size wins over defaults' ($size bytes)" \
    [ "$size" -ge 524288 -a "$size" -lt 540000 ]
check "  and it succeeded" [ "$(ti state "$R" loglim own)" = success ]
check "on_log_limit: fail stops the task: failed" [ "$(ti state "$R" loglim stop)" = failed ]
err=$(ti error "$R" loglim stop)
check "  with the error ($err)" grep -q "log exceeded max_log_size 1MiB" <<<"$err"
size=$("$CAIRN" logs "$R" stop --dag loglim | wc -c)
check "  its log stops near 1 MiB ($size bytes)" [ "$size" -ge 1048576 -a "$size" -lt 1100000 ]
size=$("$CAIRN" logs "$R" nolimit --dag loglim | wc -c)
check "max_log_size: 0 is no limit ($size bytes)" [ "$size" -ge 3000000 ]
check "  ending as the task ended" bash -c '"$0" logs "$1" nolimit --dag loglim | tail -n 1 | grep -qx done' \
    "$CAIRN" "$R"

# cairn validate names the place of a bad value
put_dag badlim <<'EOF2'
dag: badlim
tasks:
  a:
    command: [echo]
    max_log_size: lots
    on_log_limit: explode
EOF2
out=$("$CAIRN" validate "$T/dags/badlim.yaml" 2>&1 || true)
echo "$out"
check "validate refuses a bad max_log_size with file:line:col" grep -q "badlim.yaml:5:19: .*max_log_size" <<<"$out"
check "validate refuses a bad on_log_limit with file:line:col" grep -q "badlim.yaml:6:19: .*on_log_limit 'explode'" <<<"$out"
rm -f "$T/dags/badlim.yaml"
finish
