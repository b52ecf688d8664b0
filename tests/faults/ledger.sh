#!/usr/bin/env bash
# The ledger test: a layered DAG whose tasks each append "TASK ATTEMPT START
# END WORKDIR" (epoch seconds; the workdir names the worker) to a host file
# when they finish, three workers, and
# the scheduler and the
# workers SIGKILLed at random instants while it runs (each comes back a
# moment later on the same data). Afterwards:
#   - the run and every task are `success`, each task exactly once;
#   - every task ran at least once, and never before its upstreams had
#     finished (the ledger is in the order the tasks ended);
#   - re-executions happened only for attempts in flight at a kill: every
#     execution of a task but its last one ran on a worker that was killed
#     while it ran or just after it ended (its result not yet durable), or
#     ran while the scheduler was down. A killed
#     scheduler usually costs none (its workers report to the next one), but
#     one whose restart outlasts the short lease TTL here (2 s; a loaded
#     machine) has its running tasks' leases expire, and they run again;
#   - no result was applied twice (each task has one successful attempt, and
#     the attempts the scheduler records cover every line of the ledger).
# Sizes: FAULT_TASKS (default 150), FAULT_SCHED_KILLS (6), FAULT_WORKER_KILLS
# (3); `make faults` runs the long form (500 tasks, 20 and 10 kills).
# FAULT_SEED makes the kill instants repeatable.
source "$(dirname "$0")/../integration/lib.sh"

tasks=${FAULT_TASKS:-150}
sched_kills=${FAULT_SCHED_KILLS:-6}
worker_kills=${FAULT_WORKER_KILLS:-3}
seed=${FAULT_SEED:-$$}
slots=2
RANDOM=$seed
LEDGER=$T/ledger
: >"$LEDGER"
echo "# $tasks tasks, $sched_kills scheduler and $worker_kills worker SIGKILLs, seed $seed"

# layers of 25 tasks; each task after the first layer needs two of the
# layer before it
mkdir -p "$T/dags"
/usr/bin/python3 - "$T/dags/ledger.yaml" "$tasks" "$LEDGER" "$seed" <<'PY'
import random, sys
path, n, ledger, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rnd = random.Random(seed)
width = 25
with open(path, "w") as f:
    f.write("dag: ledger\nmax_active_tasks: 100000\n")
    f.write("defaults: {retries: 2, retry_delay: 0s}\ntasks:\n")
    for i in range(n):
        f.write(f"  t{i}:\n")
        f.write("    command: [sh, -c, 's0=$(date +%s.%N); sleep 0.$((RANDOM % 3 + 1)); "
                f"echo \"t{i} $CAIRN_ATTEMPT $s0 $(date +%s.%N) $PWD\" >> {ledger}']\n")
        layer = i // width
        if layer:
            prev = list(range((layer - 1) * width, min(layer * width, n)))
            ups = sorted(rnd.sample(prev, min(2, len(prev))))
            f.write("    needs: [" + ", ".join(f"t{u}" for u in ups) + "]\n")
PY
"$CAIRN" validate "$T/dags/ledger.yaml" >/dev/null

SCHED_ARGS=(--lease-ttl 2000)
start_scheduler s "${SCHED_ARGS[@]}"
for w in w1 w2 w3; do start_worker "$w" --slots "$slots" --isolation none; done

RUN=$("$CAIRN" trigger ledger --json | jq -r .run_id)
check "the run was created" [ -n "$RUN" ]

run_done() {
    local s
    s=$(run_state "$RUN" ledger 2>/dev/null) || return 1
    case $s in success | failed | cancelled) return 0 ;; esac
    return 1
}

# the kills, in a random order, at random instants while the run is going
plan=()
for _ in $(seq 1 "$sched_kills"); do plan+=(s); done
for _ in $(seq 1 "$worker_kills"); do plan+=(w); done
for i in $(seq $((${#plan[@]} - 1)) -1 1); do # Fisher-Yates
    j=$((RANDOM % (i + 1)))
    t=${plan[i]} plan[i]=${plan[j]} plan[j]=$t
done
done_s=0 done_w=0
KILLS=$T/kills # "WHO EPOCH_KILLED EPOCH_BACK" of each kill (WHO: s, w1, w2, w3)
: >"$KILLS"
for k in "${plan[@]}"; do
    sleep "0.$((RANDOM % 9 + 1))"
    run_done && break
    if [ "$k" = s ]; then
        t0=$(date +%s.%N)
        kill_wait "$SCHED_PID" KILL
        sleep "0.$((RANDOM % 5))"
        start_scheduler s "${SCHED_ARGS[@]}"
        echo "s $t0 $(date +%s.%N)" >>"$KILLS"
        done_s=$((done_s + 1))
    else
        w=w$((RANDOM % 3 + 1))
        pid_var=PID_$w
        t0=$(date +%s.%N)
        kill_wait "${!pid_var}" KILL
        sleep "0.$((RANDOM % 5))"
        start_worker "$w" --slots "$slots" --isolation none
        echo "$w $t0 $(date +%s.%N)" >>"$KILLS"
        done_w=$((done_w + 1))
    fi
done
echo "# $done_s scheduler and $done_w worker SIGKILLs done while the run went on"
check "at least one scheduler and one worker were killed mid-run" \
    [ "$done_s" -ge 1 -a "$done_w" -ge 1 ]

check "the run succeeded" [ "$(wait_run "$RUN" ledger 300)" = success ]
"$CAIRN" runs show "$RUN" --dag ledger --all --json >"$T/run.json"
# what a killed worker's orphaned tasks still write comes in a moment later
sleep 1

/usr/bin/python3 - "$T/run.json" "$LEDGER" "$T/dags/ledger.yaml" "$tasks" \
    "$done_w" "$slots" "$KILLS" <<'PY' >"$T/verdict"
import json, re, sys
run = json.load(open(sys.argv[1]))
lines = [l.split() for l in open(sys.argv[2]) if l.strip()]
n, worker_kills, slots = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
needs, cur = {}, None
for l in open(sys.argv[3]):
    m = re.match(r"  (t\d+):", l)
    if m:
        cur = m.group(1); needs[cur] = []
    m = re.match(r"    needs: \[(.*)\]", l)
    if m:
        needs[cur] = [x.strip() for x in m.group(1).split(",")]
tis = {t["task"]: t for t in run["tasks"]}
def say(name, ok, detail=""):
    print(("ok " + name) if ok else ("bad " + name + (": " + detail if detail else "")))
say("every task is in the answer", len(tis) == n, f"{len(tis)} of {n}")
notok = [t for t, x in tis.items() if x["state"] != "success"]
say("every task is success", not notok, " ".join(notok[:5]))
ran = {}
first = {}
for pos, (task, att, *_) in enumerate(lines):
    ran.setdefault(task, []).append(int(att))
    first.setdefault(task, pos)
missing = [t for t in needs if t not in ran]
say("every task ran at least once", not missing, " ".join(missing[:5]))
early = []
for t, ups in needs.items():
    if t in first and ups and not all(u in first and first[u] < first[t] for u in ups):
        early.append(t)
say("no task ended before its upstreams had", not early, " ".join(early[:5]))
extra = len(lines) - len(ran)
# An execution that did not count was "in flight at a kill" if its worker
# was killed while it ran or within GRACE s after it ended (its RESULT not
# yet durable), or if it ran while the scheduler was down (until it was
# back, plus the lease TTL: its lease may have expired at the new one).
kills = [(w, float(a), float(b)) for w, a, b in
         (l.split() for l in open(sys.argv[7]) if l.strip())]
GRACE, TTL = 2.0, 2.0
why = {"worker": 0, "scheduler": 0}
def in_flight(worker, start, end):
    for who, k0, back in kills:
        if who == worker and start <= k0 <= end + GRACE:
            why["worker"] += 1
            return True
    for who, k0, back in kills:
        if who == "s" and start <= back + TTL + GRACE and end >= k0 - GRACE:
            why["scheduler"] += 1
            return True
    return False
by_task = {}
for task, att, start, end, wd in lines:
    m = re.search(r"/(w[0-9]+)/", wd + "/")
    by_task.setdefault(task, []).append((int(att), float(start), float(end),
                                         m.group(1) if m else "?"))
unexplained = []
for task, execs in by_task.items():
    execs.sort()
    for att, start, end, worker in execs[:-1]: # every execution but the one that counted
        if not in_flight(worker, start, end):
            unexplained.append(f"{task}#{att}@{worker}")
print(f"# {len(lines)} executions of {n} tasks: {extra} re-executions, "
      f"{len(kills)} kills; {why['worker']} in flight on a killed worker, "
      f"{why['scheduler']} while the scheduler was down")
say("re-executions only for attempts in flight at a kill", not unexplained,
    " ".join(unexplained[:5]))
uncovered = [t for t, atts in ran.items()
             if t in tis and max(atts) > int(tis[t].get("attempts") or 0)]
say("the scheduler's attempts cover every execution", not uncovered, " ".join(uncovered[:5]))
dup = [t for t, atts in ran.items() if len(atts) != len(set(atts))]
say("no attempt number ran twice", not dup, " ".join(dup[:5]))
PY
cat "$T/verdict" | grep '^#' || true
while read -r verdict name; do
    [ "$verdict" = "#" ] && continue
    if [ "$verdict" = ok ]; then ok "$name"; else bad "$name"; fi
done <"$T/verdict"
finish
