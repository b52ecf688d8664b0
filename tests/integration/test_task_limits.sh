#!/usr/bin/env bash
# A task's own limits, set in its DAG file: max_log_size (with on_log_limit)
# overrides the worker's --max-log-size for that task; a log over the limit
# is cut with a marker (truncate) or stops the task with a clear error
# (fail). `defaults:` gives a DAG-wide value. max_output_size and
# max_outputs_size fail an attempt whose outputs are too big before any is
# stored; a sparse output is stored sparse, with the digest of its content.
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

put_dag outlim <<'EOF2'
dag: outlim
defaults: {image: host, retries: 0}
tasks:
  sparse:
    outputs: [sparse.bin]
    command: [sh, -c, 'truncate -s 3G /outputs/sparse.bin && printf head | dd of=/outputs/sparse.bin conv=notrunc status=none']
  big:
    max_output_size: 1Mi
    outputs: [small.txt, big.bin]
    command: [sh, -c, 'echo hi > /outputs/small.txt && yes x | head -c 2000000 > /outputs/big.bin']
  many:
    max_outputs_size: 1Mi
    outputs: [a.bin, b.bin]
    command: [sh, -c, 'yes y | head -c 600000 > /outputs/a.bin && cp /outputs/a.bin /outputs/b.bin']
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

R=$("$CAIRN" trigger outlim)
check "the outputs run ends failed" [ "$(wait_run "$R" outlim 180)" = failed ]
check "a task with a 3 GB sparse output succeeds" [ "$(ti state "$R" outlim sparse)" = success ]
arts=$("$CAIRN" artifacts list "$R" --dag outlim --json)
digest=$(jq -r '.artifacts[] | select(.name=="sparse.bin") | .sha256' <<<"$arts")
blob=$(jq -r '.artifacts[] | select(.name=="sparse.bin") | .uri' <<<"$arts" | sed 's|^file://||')
# what sha256sum says of the file the task made ("head", then zeros to 3 GiB),
# computed without reading 3 GB of holes from a file
want=$(/usr/bin/python3 -c '
import hashlib
h = hashlib.sha256(b"head")
z = bytes(1 << 20)
left = (3 << 30) - 4
while left:
    n = min(left, len(z)); h.update(z[:n]); left -= n
print(h.hexdigest())')
check "  its digest is the file's sha256sum ($digest)" [ -n "$digest" -a "$digest" = "$want" ]
check "  the blob is 3 GB long" [ "$(stat -c %s "$blob")" = 3221225472 ]
used=$(du -k "$blob" | awk '{print $1}')
check "  but takes little disk in the store ($used KiB)" [ "$used" -lt 1024 ]
check "  and starts with what the task wrote" [ "$(head -c 4 "$blob")" = head ]
check "an output over max_output_size fails its task" [ "$(ti state "$R" outlim big)" = failed ]
err=$(ti error "$R" outlim big)
check "  naming the output and the sizes ($err)" \
    grep -q "output 'big.bin' is 2000000 bytes, over max_output_size 1MiB" <<<"$err"
check "outputs over max_outputs_size together fail their task" [ "$(ti state "$R" outlim many)" = failed ]
err=$(ti error "$R" outlim many)
check "  saying so ($err)" grep -q "the outputs are 1200000 bytes together, over max_outputs_size 1MiB" <<<"$err"
store=$(dirname "$(dirname "$blob")")
check "  no output of either was stored" \
    [ -z "$(find "$store" -type f \( -size 2000000c -o -size 600000c -o -size 3c \))" ]
finish
