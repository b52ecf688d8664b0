#!/usr/bin/env bash
# The step cache: how long a run takes when every task hits the cache,
# against the same run computing (`trigger --no-cache`), through the whole
# system (scheduler + one worker with --isolation none, durable LMDB
# commits). Two DAGs of 6 cached tasks (prep -> 4 in parallel -> join, each
# passing a file on): one whose tasks do 100 ms of work each, one whose
# tasks do none (so the figure is the scheduler's and worker's own cost).
# Usage: bench/cache_hit.sh [BUILD_DIR] [RUNS]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
runs=${2:-10}

mkdir -p "$w/dags"
dag() { # dag NAME SLEEP
    cat >"$w/dags/$1.yaml" <<YAML
dag: $1
max_active_runs: 1
defaults: {retries: 0, cache: true}
tasks:
  prep:
    command: [sh, -c, 'sleep $2; seq 1 100000 > \$CAIRN_OUTPUTS/data.txt']
    outputs: [data.txt]
YAML
    for i in 1 2 3 4; do
        cat >>"$w/dags/$1.yaml" <<YAML
  f$i:
    needs: [prep]
    inputs: {data: prep/data.txt}
    command: [sh, -c, 'sleep $2; sort -rn \$CAIRN_INPUTS/data | head -n $((i * 1000)) > \$CAIRN_OUTPUTS/out.txt']
    outputs: [out.txt]
YAML
    done
    cat >>"$w/dags/$1.yaml" <<YAML
  join:
    needs: [f1, f2, f3, f4]
    inputs: {a: f1/out.txt, b: f2/out.txt, c: f3/out.txt, d: f4/out.txt}
    command: [sh, -c, 'sleep $2; cat \$CAIRN_INPUTS/a \$CAIRN_INPUTS/b \$CAIRN_INPUTS/c \$CAIRN_INPUTS/d | wc -l > \$CAIRN_OUTPUTS/n.txt']
    outputs: [n.txt]
YAML
}
dag work 0.1
dag nowork 0

bench_scheduler
bench_worker 4

# For each DAG: one computing run to fill the cache, then RUNS pairs of
# (computing with no_cache, all hits), interleaved so that drift hits both
# alike. Latency is what a client sees: from sending the trigger until it
# reads the run as finished (the API answers only what is committed), by
# polling every 2 ms; the scheduler's own record (created_at to ended_at) is
# printed too.
/usr/bin/python3 - "$CAIRN_SERVER" "$runs" <<'PY'
import json, statistics, sys, time, urllib.parse, urllib.request
server, runs = sys.argv[1], int(sys.argv[2])

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

def ms(ts):  # "2026-11-23T13:05:50.821Z" -> epoch ms
    base, frac = ts.rstrip("Z").split(".")
    return time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int(frac)

def once(dag, no_cache):
    t0 = time.perf_counter()
    run = call("POST", f"/api/v1/dags/{dag}/trigger", {"no_cache": no_cache})
    path = f"/api/v1/runs/{urllib.parse.quote(run['run_id'])}?dag={dag}"
    while run["state"] not in ("success", "failed"):
        time.sleep(0.002)
        run = call("GET", path)
    t1 = time.perf_counter()
    hits = sum(1 for t in run["tasks"] if t.get("cached"))
    want = 0 if no_cache else len(run["tasks"])
    if run["state"] != "success" or hits != want:
        sys.exit(f"{dag}: run {run['run_id']} {run['state']} with {hits} hits, expected {want}")
    return (t1 - t0) * 1000, ms(run["ended_at"]) - ms(run["created_at"])

print(f"6 tasks per run (prep -> 4 in parallel -> join), 4 slots, --isolation none; "
      f"median of {runs} runs each")
print(f"{'dag':8} {'computing ms':>13} {'all hits ms':>12} {'ratio':>7}   "
      f"(scheduler's record: computing / hits ms)")
for dag in ("work", "nowork"):
    once(dag, True)
    comp, hit, comp_rec, hit_rec = [], [], [], []
    for _ in range(runs):
        a, b = once(dag, True)
        comp.append(a); comp_rec.append(b)
        a, b = once(dag, False)
        hit.append(a); hit_rec.append(b)
    c, h = statistics.median(comp), statistics.median(hit)
    print(f"{dag:8} {c:13.1f} {h:12.1f} {c / h:6.0f}x   "
          f"({statistics.median(comp_rec):.0f} / {statistics.median(hit_rec):.0f})")
PY
