#!/usr/bin/env bash
# A lease bigger than a wire message (16 MiB) fails its own task at lease
# time, saying why; the leases handed out with it still reach their worker
# (before, the whole WORK reply was dropped, and its other tasks failed
# later with "no heartbeat"). Leases that fit alone but not together go out
# in consecutive replies.
source "$(dirname "$0")/lib.sh"

# env values of a legal DAG file: one of 17 MB, two of 9 MB
mkdir -p "$T/dags"
/usr/bin/python3 - "$T/dags" <<'PY'
import sys
d = sys.argv[1]
def dag(name, tasks):
    with open(f"{d}/{name}.yaml", "w") as f:
        f.write(f"dag: {name}\ndefaults: {{image: host, retries: 0}}\ntasks:\n")
        for t, env in tasks:
            f.write(f"  {t}:\n    command: [sh, -c, 'echo ran {t}']\n")
            if env:
                f.write(f"    env: {{BIG: \"{'x' * env}\"}}\n")
dag("huge", [("big", 17 * 1000 * 1000), ("small", 0), ("small2", 0)])
dag("pair", [("a", 9 * 1000 * 1000), ("b", 9 * 1000 * 1000)])
PY

start_scheduler s
# all of a run's leases fit in one reply by slots: they go in one WORK
start_worker w1 --slots 4
R=$("$CAIRN" trigger huge)
check "the run with a 17 MB lease ends failed" [ "$(wait_run "$R" huge 120)" = failed ]
check "  the task with the big lease failed" [ "$(ti state "$R" huge big)" = failed ]
err=$(ti error "$R" huge big)
check "  saying why ($err)" grep -q "the task's lease is 16\.[0-9] MiB, over the 16 MiB message limit" <<<"$err"
check "  the scheduler logged it" logged s "CAIRN-LEASE-TOO-BIG"
check "the tasks next to it ran and succeeded" \
    [ "$(ti state "$R" huge small)" = success -a "$(ti state "$R" huge small2)" = success ]
check "  with their logs" [ "$("$CAIRN" logs "$R" small --dag huge)" = "ran small" ]
check "no reply failed to encode" bash -c '! grep -q CAIRN-WIRE-ENCODE "$0"' "$T/s.log"

R=$("$CAIRN" trigger pair)
wait_run "$R" pair 120 >/dev/null
# 9 MB of env cannot be exec'd (E2BIG): what counts is that each lease
# reached the worker and was tried there
for t in a b; do
    err=$(ti error "$R" pair $t)
    check "a 9 MB lease of two reached the worker ($t: $err)" \
        bash -c '! grep -Eqi "heartbeat|message limit|lease" <<<"$0"' "$err"
    check "  the worker tried it" logged w1 "pair/.*/$t#1"
done
check "  still no reply failed to encode" bash -c '! grep -q CAIRN-WIRE-ENCODE "$0"' "$T/s.log"
finish
