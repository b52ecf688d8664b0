#!/usr/bin/env bash
# GPUs without a GPU: stand-in device nodes (mknod c 195 N, and 195 255 for
# nvidiactl) in folders of the test, found by workers started with
# --gpu-dev-dir. Two runc workers with 2 and 1 GPUs: tasks needing 1 and 2
# GPUs are placed on a worker with enough free ones and never share a
# device while they run at once (each writes what it sees: its /dev nodes,
# which of them it can open, NVIDIA_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES,
# its device cgroup); gpu_type picks the worker by model; a task needing 3
# GPUs stays queued with the reason in `cairn runs show`; the allocation
# survives a SIGKILL of the scheduler mid-task; `cairn workers` shows GPUs
# free and used; an --isolation none worker sets the variables only.
#
# The stand-ins have the NVIDIA major (195), which no driver serves here:
# an open that the device cgroup lets through fails with ENXIO (no such
# device) in the driver lookup, one it refuses fails with EPERM, a node
# the container was not given is ENOENT. On a GPU host the open succeeds.
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
for d in g1 g2 g3; do mkdir -p "$T/$d"; done
mknod "$T/g1/nvidia0" c 195 0
mknod "$T/g1/nvidia1" c 195 1
mknod "$T/g1/nvidiactl" c 195 255
mknod "$T/g2/nvidia2" c 195 2
mknod "$T/g2/nvidiactl" c 195 255
mknod "$T/g3/nvidia5" c 195 5
chmod 666 "$T"/g*/nvidia*

# The probe every GPU task runs: what it sees, as JSON in its output.
cat >"$T/probe.py" <<'EOF'
import errno, json, os, sys, time
start = time.time()
devs = sorted(d for d in os.listdir("/dev") if d.startswith("nvidia"))
opened = {}
for d in sorted(set(devs) | {"nvidia0", "nvidia1", "nvidia2", "nvidia5", "nvidiactl"}):
    try:
        os.close(os.open("/dev/" + d, os.O_RDWR))
        opened[d] = "ok"
    except OSError as e:
        opened[d] = errno.errorcode.get(e.errno, str(e.errno))
try:
    cgroup = open("/sys/fs/cgroup/devices/devices.list").read().split("\n")
except OSError:
    cgroup = None  # cgroup v2: the rules are an eBPF program
time.sleep(float(sys.argv[1]))
out = {"task": os.environ["CAIRN_TASK"], "devs": devs, "opened": opened, "cgroup": cgroup,
       "nvidia": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
       "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
       "order": os.environ.get("CUDA_DEVICE_ORDER"), "start": start, "end": time.time()}
with open(os.path.join(os.environ["CAIRN_OUTPUTS"], "probe.json"), "w") as f:
    json.dump(out, f)
EOF
mkdir -p "$T/code"
cp "$T/probe.py" "$T/code/probe.py"

put_dag place <<EOF
dag: place
code: $T/code
defaults: {image: host, timeout: 60s, outputs: [probe.json]}
tasks:
  solo1: {command: [$PY, /pipeline/probe.py, "3"], resources: {gpus: 1}}
  solo2: {command: [$PY, /pipeline/probe.py, "3"], resources: {gpus: 1}}
  pair:  {command: [$PY, /pipeline/probe.py, "3"], resources: {gpus: 2}}
  typed: {command: [$PY, /pipeline/probe.py, "1"], resources: {gpus: 1, gpu_type: l4}}
  plain: {command: [sh, -c, 'ls /dev > /outputs/probe.json']}
EOF
put_dag big <<EOF
dag: big
defaults: {image: host}
tasks:
  three: {command: ["true"], resources: {gpus: 3}}
EOF
put_dag hold <<EOF
dag: hold
code: $T/code
defaults: {image: host, timeout: 60s, outputs: [probe.json]}
tasks:
  long: {command: [$PY, /pipeline/probe.py, "20"], resources: {gpus: 2, gpu_type: T4}}
EOF
put_dag next <<EOF
dag: next
code: $T/code
defaults: {image: host, timeout: 60s, outputs: [probe.json]}
tasks:
  short: {command: [$PY, /pipeline/probe.py, "0"], resources: {gpus: 1, gpu_type: T4}}
EOF
put_dag bare <<EOF
dag: bare
code: $T/code
defaults: {image: host, timeout: 60s, outputs: [probe.json]}
tasks:
  env: {command: [$PY, $T/code/probe.py, "0"], resources: {gpus: 1, gpu_type: x1}}
EOF

SCHED_ARGS=(--lease-ttl 4000)
start_scheduler s "${SCHED_ARGS[@]}"
start_worker w1 --slots 4 --gpu-dev-dir "$T/g1" --gpu-model "Stand-in T4"
start_worker w2 --slots 4 --gpu-dev-dir "$T/g2" --gpu-model "Stand-in L4"
start_worker w3 --slots 1 --isolation none --gpu-dev-dir "$T/g3" --gpu-model "Stand-in X1"

workers_json() { "$CAIRN" workers --json; }
check "w1 announced GPUs 0 and 1 with their model" \
    [ "$(workers_json | jq -c '.workers[] | select(.name=="w1") | [.gpus[] | [.index, .model]]')" \
        = '[[0,"Stand-in T4"],[1,"Stand-in T4"]]' ]
check "w2 announced GPU 2" \
    [ "$(workers_json | jq -c '.workers[] | select(.name=="w2") | [.gpus[].index]')" = '[2]' ]
check "nothing is held yet" [ "$(workers_json | jq '[.workers[].gpus_free] | add')" = 4 ]

# probe RUN DAG TASK -> the task's probe.json
probe() { "$CAIRN" artifacts get "$1" "$3/probe.json" --dag "$2" -o -; }

# --- placement, and no device shared while tasks run at once ---------------
RUN=$("$CAIRN" trigger place | head -n1)
check "the run succeeded" [ "$(wait_run "$RUN" place 90)" = success ]
for t in solo1 solo2 pair typed; do probe "$RUN" place "$t" >"$T/place-$t.json"; done
check "the 2-GPU task ran on w1, the only worker with 2" [ "$(ti worker "$RUN" place pair)" = w1 ]
check "gpu_type l4 picked w2 (Stand-in L4)" [ "$(ti worker "$RUN" place typed)" = w2 ]
check "the task instance shows its GPUs" \
    [ "$(rj "$RUN" place '.tasks[] | select(.task=="pair") | .gpus | length')" = 2 ]
check "a task without GPUs has none" \
    [ "$(rj "$RUN" place '.tasks[] | select(.task=="plain") | has("gpus")')" = false ]
check "a task without GPUs sees no GPU device" \
    bash -c "! grep -q nvidia <(\"$CAIRN\" artifacts get \"$RUN\" plain/probe.json --dag place -o -)"
"$PY" - "$T"/place-*.json >"$T/place.check" 2>&1 <<'EOF' || true
import json, sys
ps = [json.load(open(f)) for f in sys.argv[1:]]
want = {"solo1": 1, "solo2": 1, "pair": 2, "typed": 1}
bad = []
overlapped = 0
for p in ps:
    gpus = [d for d in p["devs"] if d[6:].isdigit()]
    if len(gpus) != want[p["task"]]:
        bad.append("%s sees %s" % (p["task"], gpus))
    if "nvidiactl" not in p["devs"]:
        bad.append("%s has no nvidiactl" % p["task"])
    idx = ",".join(g[6:] for g in gpus)
    if p["nvidia"] != idx:
        bad.append("%s: NVIDIA_VISIBLE_DEVICES=%s, devices %s" % (p["task"], p["nvidia"], idx))
    if p["cuda"] != ",".join(str(i) for i in range(len(gpus))):
        bad.append("%s: CUDA_VISIBLE_DEVICES=%s" % (p["task"], p["cuda"]))
    if p["order"] != "PCI_BUS_ID":
        bad.append("%s: CUDA_DEVICE_ORDER=%s" % (p["task"], p["order"]))
    for d, r in p["opened"].items():
        given = d in p["devs"]
        if given and r not in ("ok", "ENXIO"):
            bad.append("%s: its own %s: %s (the device cgroup refused it?)" % (p["task"], d, r))
        if not given and r != "ENOENT":
            bad.append("%s: %s, not given, opened as %s" % (p["task"], d, r))
    if p["cgroup"] is not None:
        rules = {l for l in p["cgroup"] if l.startswith("c 195:")}
        mine = {"c 195:%s rw" % g[6:] for g in gpus} | {"c 195:255 rw"}
        if rules != mine:
            bad.append("%s: device cgroup %s, want %s" % (p["task"], sorted(rules), sorted(mine)))
for i, a in enumerate(ps):
    for b in ps[i + 1:]:
        if a["start"] < b["end"] and b["start"] < a["end"]:
            overlapped += 1
            shared = set(a["devs"]) & set(b["devs"]) - {"nvidiactl"}
            if shared:
                bad.append("%s and %s ran at once and shared %s" % (a["task"], b["task"], shared))
if overlapped == 0:
    bad.append("no two tasks ran at once")
print("\n".join(bad) if bad else "ok %d overlapping pairs" % overlapped)
sys.exit(1 if bad else 0)
EOF
check "each task saw exactly its GPUs and nvidiactl, could open them and no other, the \
variables name them, and tasks that ran at once shared none ($(head -c 300 "$T/place.check"))" \
    grep -q '^ok' "$T/place.check"

# --- a task needing more GPUs than any worker has waits, saying why ---------
BIG=$("$CAIRN" trigger big | head -n1)
sleep 1
check "the 3-GPU task stays queued" [ "$(ti state "$BIG" big three)" = queued ]
"$CAIRN" runs show "$BIG" --dag big >"$T/big.out"
check "runs show says why it waits" \
    grep -q "three: waiting: needs 3 GPUs; the most a live worker has is 2 (w1)" "$T/big.out"
"$CAIRN" runs cancel "$BIG" --dag big >/dev/null
check "it was cancelled, never leased" [ "$(ti attempts "$BIG" big three)" = 0 ]

# --- the allocation survives a SIGKILL of the scheduler ---------------------
HOLD=$("$CAIRN" trigger hold | head -n1)
# (long holds its GPUs for 20 s: the checks and the restart below happen
# while it runs, also on a loaded machine)
check "the 2-GPU task is running on w1" wait_until 20 bash -c \
    '[ "$("$0" runs show "$1" --dag hold --json | jq -r ".tasks[0].state")" = running ]' \
    "$CAIRN" "$HOLD"
"$CAIRN" workers >"$T/workers.out"
check "cairn workers shows w1's GPUs used" grep -Eq '^w1 .* 0 free, 2 used' "$T/workers.out"
check "...and which task holds each" \
    [ "$(grep -Ec '^w1 +[01] +Stand-in T4 +hold/long' "$T/workers.out")" = 2 ]
kill_wait "$SCHED_PID" KILL
start_scheduler s "${SCHED_ARGS[@]}"
w1_held() {
    [ "$(workers_json | jq -c '.workers[] | select(.name=="w1" and .state=="alive") |
        [.gpus[] | .free]')" = '[false,false]' ]
}
check "after the restart w1's GPUs are held again by the lease in flight" wait_until 15 w1_held
NEXT=$("$CAIRN" trigger next | head -n1)
sleep 1
"$CAIRN" runs show "$NEXT" --dag next >"$T/next.out"
check "a 1-GPU task for w1 waits while they are held" \
    grep -q "short: waiting: needs 1 free GPU of type T4; they are in use (w1: 0 of 2 free)" \
    "$T/next.out"
check "the task in flight finished" [ "$(wait_run "$HOLD" hold 60)" = success ]
check "...once, reported by its worker through the restart" [ "$(ti attempts "$HOLD" hold long)" = 1 ]
check "the waiting task ran after it" [ "$(wait_run "$NEXT" next 30)" = success ]
probe "$HOLD" hold long >"$T/long.json"
probe "$NEXT" next short >"$T/short.json"
check "...on a GPU the long task had, and not while it ran" "$PY" -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(0 if b["start"] >= a["end"] and set(b["devs"]) - {"nvidiactl"} <= set(a["devs"]) else 1)
' "$T/long.json" "$T/short.json"
w1_free_2() { [ "$(workers_json | jq '.workers[] | select(.name=="w1") | .gpus_free')" = 2 ]; }
check "and w1's GPUs are free again" \
    wait_until 10 w1_free_2

# --- --isolation none: the variables name the host's indices ----------------
BARE=$("$CAIRN" trigger bare | head -n1)
check "the task on the --isolation none worker succeeded" [ "$(wait_run "$BARE" bare 30)" = success ]
probe "$BARE" bare env >"$T/bare.json"
check "...with NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES = 5" \
    [ "$(jq -r '[.nvidia, .cuda] | join(" ")' "$T/bare.json")" = "5 5" ]

# --- a worker refuses --gpus it does not have --------------------------------
check "--gpus naming a missing device stops the worker with a clear error" bash -c \
    "! \"$WORKER\" --scheduler \"$NNG_URL\" --data \"$T/w4\" --gpus 0,7 --gpu-dev-dir \"$T/g1\" \
        2>\"$T/w4.err\" && grep -q 'nvidia7 is not a character device' \"$T/w4.err\""
finish
