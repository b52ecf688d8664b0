#!/usr/bin/env bash
# Run a libFuzzer target for a bounded time over a seed corpus made of the
# examples and test fixtures. Fails on any crash, leak, timeout or OOM.
set -euo pipefail
bin=$1
seconds=${2:-30}
src=$(cd "$(dirname "$0")/../.." && pwd)
name=$(basename "$bin")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
case $name in
fuzz_dag)
    find "$src/examples" "$src/dags" "$src/tests/fixtures" -name '*.yaml' -exec cp -t "$work/corpus" {} + 2>/dev/null || true
    # names collide across folders: keep them apart by content hash
    for f in "$src"/tests/fixtures/dag-errors/*.yaml "$src"/tests/fixtures/*.yaml; do
        cp "$f" "$work/corpus/$(sha1sum "$f" | cut -c1-12).yaml"
    done
    ;;
esac
[ -d "$src/tests/fuzz/corpus/$name" ] && cp "$src/tests/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null || true
echo "fuzz: $name for ${seconds}s over $(ls "$work/corpus" | wc -l) seeds"
set +e
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
"$bin" "$work/corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" >"$work/out.txt" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
    grep -A 40 -m1 -E "ERROR: |==[0-9]+==" "$work/out.txt" || tail -n 60 "$work/out.txt"
else
    tail -n 8 "$work/out.txt"
fi
set -e
if [ "$rc" -ne 0 ]; then
    echo "fuzz: $name FAILED (exit $rc); reproducer:" >&2
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null >&2 || true
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
        [ -f "$f" ] && { mkdir -p "$src/build-fuzz/artifacts"; cp "$f" "$src/build-fuzz/artifacts/"; }
    done
    exit 1
fi
echo "fuzz: $name ok"
