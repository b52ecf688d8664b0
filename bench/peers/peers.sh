#!/usr/bin/env bash
# The three graphs of bench/throughput.sh (1,000 independent no-op tasks, a
# chain of 200, 1 -> 500 -> 1) on Dask and Snakemake from Debian's packages,
# with GNU make -j as the baseline measured in the same go:
#
#   make -jJOBS                       every task `true`
#   Dask, warm LocalCluster           JOBS worker processes x 1 thread, every
#                                     task subprocess.run(["true"])
#   snakemake --cores JOBS            every job `true && touch {output}`,
#                                     --scheduler greedy (see README.md)
#
# Usage: bench/peers/peers.sh [JOBS]     (JOBS=2 by default; PEERS_RUNS=3)
# Needs: apt-get install python3-distributed snakemake   (run with Debian's
# /usr/bin/python3). A tool that is not installed is skipped, with a message.
#
# For each graph the runs alternate (make, Dask, Snakemake, RUNS times) so the
# machine's load falls on all of them alike; each figure is the median. The
# ratio after a figure is make's time / the tool's time (1.00: as fast as
# make). Snakemake's times are whole invocations, its start included.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jobs=${1:-2}
runs=${PEERS_RUNS:-3}
py=/usr/bin/python3
w=$(mktemp -d /tmp/cairn-peers.XXXXXX)
dask_pid=
cleanup() {
    if [ -n "$dask_pid" ]; then
        exec {dask_in}>&- 2>/dev/null || true
        timeout 20 tail --pid="$dask_pid" -f /dev/null 2>/dev/null || kill -TERM "$dask_pid" 2>/dev/null || true
    fi
    rm -rf "$w"
}
trap cleanup EXIT

have_dask=1 have_smk=1 idle=
if ! $py -c 'import dask.distributed' 2>/dev/null; then
    have_dask=0
    echo "Dask: skipped (no dask.distributed for $py; apt-get install python3-distributed)"
fi
if ! $py -m snakemake --version >/dev/null 2>&1; then
    have_smk=0
    echo "Snakemake: skipped (not installed for $py; apt-get install snakemake)"
fi

# the make files, as bench/throughput.sh writes them
mkdir -p "$w/make"
$py - "$w/make" <<'PY'
import sys
w = sys.argv[1]
def mk(name, edges, n):
    with open(f"{w}/{name}.mk", "w") as f:
        f.write(".PHONY: all " + " ".join(f"t{i}" for i in range(n)) + "\n")
        f.write("all: " + " ".join(f"t{i}" for i in range(n)) + "\n")
        for i in range(n):
            f.write(f"t{i}: " + " ".join(f"t{u}" for u in edges.get(i, [])) + "\n\t@true\n")
mk("wide", {}, 1000)
mk("chain", {i: [i - 1] for i in range(1, 200)}, 200)
fan = {i: [0] for i in range(1, 501)}
fan[501] = list(range(1, 501))
mk("fan", fan, 502)
PY

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
make_once() {
    local t0
    t0=$(now)
    make -s -j"$jobs" -f "$w/make/$1.mk" all
    echo "$(now) - $t0" | bc -l
}
smk() { $py -m snakemake -s "$here/Snakefile" -d "$w/smk" --cores "$jobs" --scheduler greedy --quiet "$@"; }
smk_once() {
    local t0
    rm -rf "$w/smk/$1"
    t0=$(now)
    smk --config shape="$1" >"$w/smk.log" 2>&1 || { cat "$w/smk.log" >&2; return 1; }
    echo "$(now) - $t0" | bc -l
}
dask_once() {
    local t
    echo "$1" >&"$dask_in"
    read -r t <&"$dask_out" || { echo "Dask stopped; see $w/dask.log" >&2; return 1; }
    echo "$t"
}

if [ $have_dask = 1 ]; then
    coproc DASK { exec $py "$here/dask_shapes.py" "$jobs" 2>"$w/dask.log"; }
    # shellcheck disable=SC2153 # DASK_PID is set by coproc
    dask_pid=$DASK_PID
    exec {dask_out}<&"${DASK[0]}" {dask_in}>&"${DASK[1]}"
    eval "exec ${DASK[0]}<&- ${DASK[1]}>&-" # so that closing dask_in ends its input
    ready=
    read -r ready <&"$dask_out" || true
    if [ "$ready" != ready ]; then cat "$w/dask.log" >&2; exit 1; fi
fi
if [ $have_smk = 1 ]; then
    mkdir -p "$w/smk"
    for s in wide chain fan; do smk -n --config shape="$s" >/dev/null 2>&1; done # warm-up
fi

# fmt SHAPE TASKS SECONDS [MAKE_SECONDS]: tasks/s (ms a hop for the chain),
# and make's time / these seconds
fmt() {
    if [ "$1" = chain ]; then
        printf '%7.2f ms' "$(echo "$3 * 1000 / $2" | bc -l)"
    else
        printf '%7.0f/s ' "$(echo "$2 / $3" | bc -l)"
    fi
    if [ -n "${4:-}" ]; then printf ' %5.2f' "$(echo "$4 / $3" | bc -l)"; fi
}

echo "jobs/workers/cores: $jobs, runs: median of $runs; after a figure: make's time / its time"
printf '%-6s %6s  %-16s %-18s %-18s\n' graph tasks "make -j$jobs" "dask ${jobs}x1" "snakemake"
for g in wide:1000 fan:502 chain:200; do
    name=${g%%:*}; n=${g##*:}
    [ $have_dask = 0 ] || dask_once "$name" >/dev/null # warm-up
    : >"$w/m"; : >"$w/d"; : >"$w/s"
    for _ in $(seq "$runs"); do
        make_once "$name" >>"$w/m"
        [ $have_dask = 0 ] || dask_once "$name" >>"$w/d"
        [ $have_smk = 0 ] || smk_once "$name" >>"$w/s"
    done
    if [ $have_smk = 1 ]; then # its fixed cost: start, DAG, every output there already
        t0=$(now)
        smk --config shape="$name" >/dev/null 2>&1
        idle+=" $name $(printf '%.2f' "$(echo "$(now) - $t0" | bc -l)") s,"
    fi
    m=$(median <"$w/m")
    line=$(printf '%-6s %6d  %-16s' "$name" "$n" "$(fmt "$name" "$n" "$m")")
    if [ $have_dask = 1 ]; then line+=$(printf ' %-18s' "$(fmt "$name" "$n" "$(median <"$w/d")" "$m")")
    else line+=$(printf ' %-18s' skipped); fi
    if [ $have_smk = 1 ]; then line+=$(printf ' %-18s' "$(fmt "$name" "$n" "$(median <"$w/s")" "$m")")
    else line+=$(printf ' %-18s' skipped); fi
    echo "$line"
done
[ $have_smk = 0 ] || echo "(of Snakemake's times, an invocation with nothing to do takes:${idle%,})"
