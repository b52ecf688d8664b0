#!/usr/bin/env bash
# No-op tasks over the worker link with mutual TLS (tls+tcp://, certificates
# from `cairn certs init`) against plain TCP, in the same run: two
# schedulers, each with one worker (--isolation none), the same DAGs (1,000
# independent tasks; a 200-task chain, where every hop is a round trip),
# runs alternated between the two, median of 3. The ratio is TLS's tasks/s
# over TCP's (1.00: as fast). Usage: bench/link_tls.sh [BUILD_DIR] [SLOTS]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_init "${1:-build}"
slots=${2:-8}

mkdir -p "$w/dags"
/usr/bin/python3 - "$w" <<'PY'
import sys
w = sys.argv[1]
def dag(name, edges, n):
    with open(f"{w}/dags/{name}.yaml", "w") as f:
        f.write(f"dag: {name}\nmax_active_tasks: 100000\ndefaults: {{retries: 0}}\ntasks:\n")
        for i in range(n):
            f.write(f"  t{i}:\n    command: [true]\n")
            if edges.get(i):
                f.write("    needs: [" + ", ".join(f"t{u}" for u in edges[i]) + "]\n")
dag("wide", {}, 1000)
dag("chain", {i: [i - 1] for i in range(1, 200)}, 200)
PY
"$CAIRN" certs init "$w/pki" --scheduler-name bench-sched --worker bench >/dev/null

# start KIND: a scheduler and its worker, KIND tcp or tls; sets http_KIND
start() {
    local kind=$1 port http tls_s=() tls_w=()
    port=$(bench_port); http=$(bench_port)
    if [ "$kind" = tls ]; then
        tls_s=(--tls-cert "$w/pki/scheduler.crt" --tls-key "$w/pki/scheduler.key" --tls-ca "$w/pki/ca.crt")
        tls_w=(--tls-cert "$w/pki/bench.crt" --tls-key "$w/pki/bench.key" --tls-ca "$w/pki/ca.crt"
            --tls-server-name bench-sched)
    fi
    local url=${kind/tls/tls+tcp}://127.0.0.1:$port
    "$build/scheduler/cairn-scheduler" --dags "$w/dags" --data "$w/sched-$kind" --listen "$url" \
        --http "127.0.0.1:$http" --log-level warn "${tls_s[@]}" >"$w/sched-$kind.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$http/api/v1/health" >/dev/null && break; sleep 0.1; done
    "$build/worker/cairn-worker" --scheduler "$url" --data "$w/worker-$kind" --name bench \
        --slots "$slots" --isolation none --log-level warn "${tls_w[@]}" >"$w/worker-$kind.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do
        CAIRN_SERVER=http://127.0.0.1:$http "$CAIRN" workers --json | grep -q bench && break
        sleep 0.1
    done
    CAIRN_SERVER=http://127.0.0.1:$http "$CAIRN" workers --json | grep -q bench ||
        { echo "the $kind worker did not register" >&2; cat "$w/worker-$kind.log" >&2; exit 1; }
    eval "http_$kind=$http"
}
start tcp
start tls

# run_once KIND DAG: seconds from the run's creation to its end (as recorded)
run_once() {
    local h
    eval "h=\$http_$1"
    CAIRN_SERVER=http://127.0.0.1:$h "$CAIRN" trigger "$2" --wait --json |
        jq -r '((.ended_at | sub("Z$";"") | split(".") | (.[0] + "Z" | fromdate) + ("0." + .[1] | tonumber))
              - (.created_at | sub("Z$";"") | split(".") | (.[0] + "Z" | fromdate) + ("0." + .[1] | tonumber)))'
}
median() { sort -g | sed -n 2p; } # of 3

echo "slots: $slots, runs: median of 3, TCP and TLS alternated"
printf '%-8s %6s %10s %10s %10s %10s %7s\n' graph tasks tcp_s tls_s tcp/s tls/s tls/tcp
for g in wide:1000 chain:200; do
    name=${g%%:*}; n=${g##*:}
    run_once tcp "$name" >/dev/null; run_once tls "$name" >/dev/null # warm-up
    : >"$w/t-tcp"; : >"$w/t-tls"
    for _ in 1 2 3; do
        run_once tcp "$name" >>"$w/t-tcp"
        run_once tls "$name" >>"$w/t-tls"
    done
    a=$(median <"$w/t-tcp"); b=$(median <"$w/t-tls")
    printf '%-8s %6d %10.3f %10.3f %8.0f/s %8.0f/s %7.2f\n' "$name" "$n" "$a" "$b" \
        "$(echo "$n / $a" | bc -l)" "$(echo "$n / $b" | bc -l)" "$(echo "$a / $b" | bc -l)"
done
echo "(tls/tcp = TLS's tasks/s over plain TCP's; the aim is >= 0.90)"
