#!/usr/bin/env bash
# How fast does `cairn validate` load and check a 10,000-task DAG, and how
# much memory does it take? Baseline in the same run: PyYAML with its libyaml
# C loader parsing the same file (parse only, no checks).
# Usage: bench/dag_parse.sh [BUILD_DIR] [N]
set -euo pipefail
build=${1:-build}
n=${2:-10000}
src=$(cd "$(dirname "$0")/.." && pwd)
cairn=$src/$build/cli/cairn
[ -x "$cairn" ] || cairn=$build/cli/cairn
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$src/bench/gen_dag.py" "$n" > "$work/big.yaml"
/usr/bin/python3 "$src/bench/gen_dag.py" "$((n / 10))" > "$work/small.yaml"
echo "DAG: $n tasks, $(du -h "$work/big.yaml" | cut -f1) of YAML"
"$cairn" validate -q "$work/big.yaml"
cat > "$work/pyyaml.py" <<'PY'
import sys, yaml
with open(sys.argv[1]) as f:
    yaml.load(f, Loader=yaml.CSafeLoader)
PY
hyperfine -N --warmup 3 --runs 20 \
    -n "cairn validate ($n tasks)" "$cairn validate -q $work/big.yaml" \
    -n "pyyaml CSafeLoader parse only" "/usr/bin/python3 $work/pyyaml.py $work/big.yaml" \
    --export-markdown "$work/report.md"
echo
echo "Peak memory (max RSS), $n vs $((n / 10)) tasks:"
for f in big small; do
    /usr/bin/time -v "$cairn" validate -q "$work/$f.yaml" 2>&1 >/dev/null |
        awk -v f="$f" '/Maximum resident/ {print "  " f ": " $6 " KiB"}'
done
